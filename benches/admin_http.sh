#!/usr/bin/env bash
# Admin console latency over HTTP with 1,000,000 seeded users, on SQLite and PostgreSQL.
#
#   benches/admin_http.sh [sqlite|postgres|both]
#
# For each backend: build the release binary, seed USERS users into a fresh
# database (`ladder seed`), create the superuser, start `ladder serve` on
# 127.0.0.1, sign in with curl, then run wrk with the session cookie against
# the user list (first page, a later page by keyset cursor) and admin
# searches, and print p50/p99 per request. Traffic goes to 127.0.0.1 only.
#
# Needs: cargo, curl, wrk (apt-get install -y wrk), sqlite3 and psql (to pick
# a cursor and a rare term from the seeded data; psql also creates the
# PostgreSQL database). Environment, with defaults:
#   USERS=1000000  DURATION=10s  CONNECTIONS=2  THREADS=1  PORT=18089
#   PG_URL=postgres://postgres@127.0.0.1:5432  PG_DB=ladder_bench
#   KEEP=1 keeps the SQLite file and the logs (in the printed work directory).
# Runtime is bounded: each step has a timeout; the whole run takes about
# 10 minutes for 1M users on both backends (2 cores), plus the build.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKENDS=${1:-both}
USERS=${USERS:-1000000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-2}
THREADS=${THREADS:-1}
PORT=${PORT:-18089}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_DB=${PG_DB:-ladder_bench}
PASSWORD='bench-admin-password-1'
case "$BACKENDS" in
  sqlite | postgres) BACKENDS=("$BACKENDS") ;;
  both) BACKENDS=(sqlite postgres) ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
for tool in cargo curl wrk sqlite3 psql; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/ladder-bench.XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

echo "== building (cargo build --release)" >&2
timeout 1800 cargo build --release --quiet
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/ladder"

# wrk prints latencies like 812.00us, 3.21ms, 1.02s; this makes them milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
    printf "%.1f", n }'
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
SEEDS="$WORK/seeds.tsv"
: >"$SEEDS"
LOADS="$WORK/loads.tsv"
: >"$LOADS"

sql() { # backend query -> one value
  if [ "$1" = sqlite ]; then sqlite3 "$WORK/ladder.db" "$2"; else psql -X -qAt "$DB_URL" -c "$2"; fi
}

bench() { # backend name path
  local out p50 p99 rps errors
  curl -fsS -o /dev/null -b "ladder_session=$COOKIE" "http://127.0.0.1:$PORT$3" # warm-up, and fail loudly
  out=$(timeout 300 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -H "Cookie: ladder_session=$COOKIE" "http://127.0.0.1:$PORT$3")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
  errors=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$p50" "$p99" "$rps" "${errors:-0}" >>"$RESULTS"
  printf '  %-26s p50 %7s ms  p99 %7s ms  %6s req/s  %s\n' "$2" "$p50" "$p99" "$rps" "${errors:+non-2xx: $errors}" >&2
}

for backend in "${BACKENDS[@]}"; do
  echo "== $backend: seeding $USERS users" >&2
  if [ "$backend" = sqlite ]; then
    DB_URL="sqlite://$WORK/ladder.db"
  else
    psql -X -q "$PG_URL/postgres" -c "drop database if exists $PG_DB with (force)" -c "create database $PG_DB"
    DB_URL="$PG_URL/$PG_DB"
  fi
  export LADDER_DATABASE__URL="$DB_URL" LADDER_SUPERUSER_PASSWORD="$PASSWORD"
  export LADDER_SERVER__ADDRESS="127.0.0.1:$PORT" LADDER_SERVER__LOGIN_ATTEMPTS_PER_MINUTE=100000
  (cd "$WORK" && timeout 900 "$BIN" seed --users "$USERS") | tee "$WORK/seed-$backend.txt" >&2
  seed_secs=$(awk '/^Seeded [0-9]+ users in/ { print $(NF-3) }' "$WORK/seed-$backend.txt")
  printf '%s\t%s\n' "$backend" "$seed_secs" >>"$SEEDS"
  (cd "$WORK" && timeout 60 "$BIN" createsuperuser --username admin --email a@example.com --no-input) >&2
  # Write the bulk load out before measuring, so wrk sees a settled database
  # rather than a checkpoint flushing a million rows (it stalls every commit,
  # and the session layer commits on most requests).
  if [ "$backend" = sqlite ]; then
    timeout 300 sqlite3 "$WORK/ladder.db" "pragma wal_checkpoint(truncate)" >/dev/null
  else
    timeout 300 psql -X -q "$DB_URL" -c checkpoint
  fi

  (cd "$WORK" && exec "$BIN" serve) >"$WORK/serve-$backend.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 60); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
    sleep 0.5
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz"

  # Sign in like a browser: the form's CSRF token, then the POST.
  jar="$WORK/cookies-$backend"
  token=$(curl -fsS -c "$jar" -b "$jar" "http://127.0.0.1:$PORT/login" |
    grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
  status=$(curl -sS -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
    --data-urlencode "csrf_token=$token" --data-urlencode username=admin \
    --data-urlencode "password=$PASSWORD" "http://127.0.0.1:$PORT/login")
  [ "$status" = 303 ] || { echo "sign-in failed: HTTP $status" >&2; exit 1; }
  COOKIE=$(awk '$6 == "ladder_session" { print $7 }' "$jar")

  # A cursor in the middle of the username order, and a rare term: one user's full username.
  middle=$(sql "$backend" "select username_key from users order by username_key limit 1 offset $((USERS / 2))")
  rare=$(sql "$backend" "select username from users where not is_superuser order by user_id limit 1 offset $((USERS / 3))")

  echo "== $backend: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (middle cursor $middle, rare term $rare)" >&2
  load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
  bench "$backend" "first page" "/admin/users"
  bench "$backend" "later page (cursor)" "/admin/users?after=$middle"
  bench "$backend" "search surname" "/admin/users?q=smith"
  bench "$backend" "search email fragment" "/admin/users?q=%40acme.io"
  bench "$backend" "search 2-char prefix" "/admin/users?q=jo"
  bench "$backend" "search rare term" "/admin/users?q=$rare"
  bench "$backend" "search common domain" "/admin/users?q=gmail.com"
  bench "$backend" "search first name" "/admin/users?q=mia"
  bench "$backend" "search, no match" "/admin/users?q=zzqx"
  bench "$backend" "search, later page" "/admin/users?q=smith&after=$middle"

  printf '%s\t%s\t%s\n' "$backend" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')" >>"$LOADS"
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
done

echo
echo "Admin console over HTTP, $USERS users; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
echo
printf '| %-9s | %-24s | %9s | %9s | %7s |\n' backend request "p50 (ms)" "p99 (ms)" "req/s"
printf '|%s|%s|%s|%s|%s|\n' ----------- -------------------------- ----------: ----------: ---------:
while IFS=$'\t' read -r backend name path p50 p99 rps errors; do
  note=
  [ "$errors" != 0 ] && note=" ($errors non-2xx)"
  printf '| %-9s | %-24s | %9s | %9s | %7s |%s\n' "$backend" "$name" "$p50" "$p99" "$rps" "$note"
done <"$RESULTS"
echo
while IFS=$'\t' read -r backend secs; do
  echo "seed of $USERS users on $backend: $secs s"
done <"$SEEDS"
while IFS=$'\t' read -r backend before after; do
  echo "load average on $backend: $before before wrk, $after after (other processes share the cores)"
done <"$LOADS"
