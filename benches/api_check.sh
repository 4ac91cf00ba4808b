#!/usr/bin/env bash
# Permission checks over HTTP with 1,000,000 seeded users, on SQLite and PostgreSQL.
#
#   benches/api_check.sh [sqlite|postgres|both]
#
# For each backend: build the release binary, seed USERS users into a fresh
# database (`ladder seed`, which also gives them groups and permissions),
# make a service account holding auth.view_user and a token for it
# (`ladder user add --service`, `ladder grant`, `ladder token create`),
# start `ladder serve`, then run wrk with keep-alive and the token:
#   - GET /api/v1/check for SAMPLE different users (a wrk Lua script walks
#     through them), with consistency=cached and with the default full;
#   - POST /api/v1/check with a batch of 1,000 checks (over those users),
#     one connection, so each request's latency is the batch's.
# Traffic goes to 127.0.0.1 only; server and wrk share the machine's cores.
#
# Needs: cargo, curl, wrk, sqlite3 and psql. Environment, with defaults:
#   USERS=1000000  SAMPLE=1000  DURATION=10s  CONNECTIONS=32  THREADS=1  PORT=18090
#   PG_URL=postgres://postgres@127.0.0.1:5432  PG_DB=ladder_bench_api
#   KEEP=1 keeps the work directory (database, logs, scripts).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${1:-both}
USERS=${USERS:-1000000}
SAMPLE=${SAMPLE:-1000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PORT=${PORT:-18090}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_DB=${PG_DB:-ladder_bench_api}
case "$BACKENDS" in
  sqlite | postgres) BACKENDS=("$BACKENDS") ;;
  both) BACKENDS=(sqlite postgres) ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
for tool in cargo curl wrk sqlite3 psql; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/ladder-bench-api.XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

echo "== building (cargo build --release)" >&2
timeout 1800 cargo build --release --quiet
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/ladder"

to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
    printf "%.2f", n }'
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

sql() { # backend query -> rows
  if [ "$1" = sqlite ]; then sqlite3 "$WORK/ladder.db" "$2"; else psql -X -qAt "$DB_URL" -c "$2"; fi
}

run_wrk() { # backend name connections script [extra wrk args...]
  local backend=$1 name=$2 conns=$3 script=$4 out p50 p99 rps errors
  shift 4
  out=$(timeout 300 wrk -t"$THREADS" -c"$conns" -d"$DURATION" --latency -s "$script" \
    -H "Authorization: Bearer $TOKEN" "$@" "http://127.0.0.1:$PORT")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
  errors=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$name" "$conns" "$p50" "$p99" "$rps" "${errors:-0}" >>"$RESULTS"
  printf '  %-34s c=%-3s p50 %7s ms  p99 %7s ms  %7s req/s  %s\n' "$name" "$conns" "$p50" "$p99" "$rps" "${errors:+non-2xx: $errors}" >&2
}

for backend in "${BACKENDS[@]}"; do
  echo "== $backend: seeding $USERS users" >&2
  if [ "$backend" = sqlite ]; then
    DB_URL="sqlite://$WORK/ladder.db"
  else
    psql -X -q "$PG_URL/postgres" -c "drop database if exists $PG_DB with (force)" -c "create database $PG_DB"
    DB_URL="$PG_URL/$PG_DB"
  fi
  # The rate limit is per token; the benchmark is one token doing everything.
  export LADDER_DATABASE__URL="$DB_URL" LADDER_SERVER__ADDRESS="127.0.0.1:$PORT"
  export LADDER_API__REQUESTS_PER_SECOND=0 LADDER_LOG=warn
  (cd "$WORK" && timeout 900 "$BIN" seed --users "$USERS") >&2
  (cd "$WORK" && "$BIN" user add checker --email checker@example.com --service) >&2
  (cd "$WORK" && "$BIN" grant --user checker auth.view_user) >&2
  TOKEN=$(cd "$WORK" && "$BIN" token create checker --name bench | tail -1)
  if [ "$backend" = sqlite ]; then
    timeout 300 sqlite3 "$WORK/ladder.db" "pragma wal_checkpoint(truncate)" >/dev/null
  else
    timeout 300 psql -X -q "$DB_URL" -c checkpoint
  fi

  # SAMPLE users spread over the table, with permissions a writer or editor might ask about.
  sql "$backend" "select username from users where not is_superuser and username <> 'checker' \
    order by user_id limit $SAMPLE offset $((USERS / 7))" >"$WORK/users.txt"
  {
    echo 'local users = {}'
    echo 'for line in io.lines("'"$WORK/users.txt"'") do users[#users + 1] = line end'
    echo 'local perms = {"blog.add_post", "blog.publish_post", "blog.feature_post", "auth.view_user"}'
    echo 'local i = 0'
    echo 'request = function()'
    echo '  i = i + 1'
    echo '  local path = "/api/v1/check?user=" .. users[(i % #users) + 1] .. "&perm=" .. perms[(i % #perms) + 1] .. SUFFIX'
    echo '  return wrk.format("GET", path)'
    echo 'end'
  } >"$WORK/check.lua.in"
  sed 's/ \.\. SUFFIX/ .. "\&consistency=cached"/' "$WORK/check.lua.in" >"$WORK/cached.lua"
  sed 's/ \.\. SUFFIX//' "$WORK/check.lua.in" >"$WORK/full.lua"
  # One batch of 1,000 checks over the sample.
  awk 'BEGIN { printf "{\"checks\": [" } { if (NR > 1000) exit; if (NR > 1) printf ","; printf "{\"user\": \"%s\", \"perm\": \"blog.publish_post\"}", $0 }
       END { printf "]}" }' "$WORK/users.txt" >"$WORK/batch.json"
  {
    # wrk.format with a header table drops the -H headers, so the token goes here too.
    echo 'local f = io.open("'"$WORK/batch.json"'"); local body = f:read("*a"); f:close()'
    echo 'request = function() return wrk.format("POST", "/api/v1/check", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer '"$TOKEN"'"}, body) end'
  } >"$WORK/batch.lua"

  (cd "$WORK" && exec "$BIN" serve) >"$WORK/serve-$backend.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 60); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
    sleep 0.5
  done
  first=$(head -1 "$WORK/users.txt")
  curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/check?user=$first&perm=blog.add_post" >&2
  echo >&2

  echo "== $backend: wrk -t$THREADS -d$DURATION, $SAMPLE users" >&2
  run_wrk "$backend" "GET check, cached (warm-up)" "$CONNECTIONS" "$WORK/cached.lua" >/dev/null
  run_wrk "$backend" "GET check, consistency=cached" "$CONNECTIONS" "$WORK/cached.lua"
  run_wrk "$backend" "GET check, full (default)" "$CONNECTIONS" "$WORK/full.lua"
  run_wrk "$backend" "POST batch of 1,000, full" 1 "$WORK/batch.lua"
  sed -i 's/"checks"/"consistency": "cached", "checks"/' "$WORK/batch.json"
  run_wrk "$backend" "POST batch of 1,000, cached" 1 "$WORK/batch.lua"

  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
done

echo
echo "Permission checks over HTTP, $USERS users, $SAMPLE distinct users asked about; wrk -t$THREADS -d$DURATION, keep-alive; $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
echo
printf '| %-9s | %-32s | %5s | %9s | %9s | %8s |\n' backend request conns "p50 (ms)" "p99 (ms)" "req/s"
printf '|%s|%s|%s|%s|%s|%s|\n' ----------- ---------------------------------- ------: ----------: ----------: ---------:
grep -v warm-up "$RESULTS" | while IFS=$'\t' read -r backend name conns p50 p99 rps errors; do
  note=
  [ "$errors" != 0 ] && note=" ($errors non-2xx)"
  printf '| %-9s | %-32s | %5s | %9s | %9s | %8s |%s\n' "$backend" "$name" "$conns" "$p50" "$p99" "$rps" "$note"
done
