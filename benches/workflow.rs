//! The promotion workflow over HTTP, with a real SMTP server; see docs/benchmarks.md.
//!
//! `cargo bench --bench workflow` (SQLite in a temp dir), or with
//! `LADDER_BENCH_DATABASE_URL=postgres://…` for PostgreSQL (an empty database).
//! Knobs: LADDER_BENCH_CYCLES (2000), LADDER_BENCH_CONCURRENCY (16),
//! LADDER_BENCH_PENDING (100000), LADDER_BENCH_CONNECTIONS (16),
//! LADDER_BENCH_WEBHOOKS (1: an endpoint takes every event; 0: none).
//!
//! It measures, in one process on loopback (server, email worker, SMTP server
//! and load generator share the machine, as a single-box deployment would):
//! 1. submit-and-approve cycles per second: a writer POSTs a request, an editor
//!    approves it; every cycle queues four emails that the worker sends over SMTP;
//! 2. from the start of each submit to the SMTP server accepting the approvers'
//!    email (p50/p99);
//! 3. with a webhook endpoint on a fast local receiver taking every event
//!    (three a cycle), deliveries per second while the cycles run, and from
//!    each submit's answer (its commit came before it) to the delivery of its
//!    `promotion.submitted` (p50/p99);
//! 4. the review dashboard with 100,000 pending requests (p50/p99), first page
//!    and keyset pages further in.

use std::{
    collections::HashMap,
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use ladder::{
    Ladder,
    accounts::users,
    config::{MailTransport, Settings, SmtpTls},
    mail::transport::Transport,
    seed::demo,
    web::{Application, auth::auth_hash},
};
use mailin_embedded::{Handler, Response, Server, SslConfig, response};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every accepted message with the moment it arrived.
type Arrivals = Arc<Mutex<Vec<(Instant, String)>>>;

/// Records when each message arrived and which request it is about.
#[derive(Clone)]
struct Sink {
    arrivals: Arrivals,
    data: Vec<u8>,
}

impl Handler for Sink {
    fn data_start(&mut self, _: &str, _: &str, _: bool, _: &[String]) -> Response {
        self.data.clear();
        response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        let text = String::from_utf8_lossy(&self.data).into_owned();
        self.arrivals.lock().unwrap().push((Instant::now(), text));
        response::OK
    }
}

fn start_smtp() -> (u16, Arrivals) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let mut server = Server::new(Sink {
        arrivals: arrivals.clone(),
        data: vec![],
    });
    server
        .with_name("bench.smtp")
        .with_ssl(SslConfig::None)
        .unwrap()
        .with_num_threads(64)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, arrivals)
}

/// CPU time this process has used, all threads (user + system), from /proc.
/// Every webhook delivery with the moment it arrived, and its body.
type Hooks = Arc<Mutex<Vec<(Instant, axum::body::Bytes)>>>;

/// A fast webhook receiver on its own thread: answers 204 at once and
/// records the arrival.
fn start_receiver() -> (u16, Hooks) {
    let hooks: Hooks = Arc::new(Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let kept = hooks.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let kept = kept.clone();
                    async move {
                        kept.lock().unwrap().push((Instant::now(), body));
                        axum::http::StatusCode::NO_CONTENT
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (port, hooks)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses: utime is the 12th, stime the 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Inserts `count` active users named `{prefix}{n}` in Writers, in batches, and
/// returns their ids. Bulk SQL: this is set-up, not what is measured.
async fn bulk_writers(ladder: &Ladder, prefix: &str, count: usize, now: i64) -> Vec<i64> {
    let writers: i64 = sqlx::query_scalar("select group_id from groups where name = 'Writers'")
        .fetch_one(ladder.db.pool())
        .await
        .unwrap();
    let mut ids = Vec::with_capacity(count);
    for chunk_start in (0..count).step_by(500) {
        let end = (chunk_start + 500).min(count);
        let mut tx = ladder.db.pool().begin().await.unwrap();
        for n in chunk_start..end {
            let name = format!("{prefix}{n}");
            let id: i64 = sqlx::query_scalar(
                "insert into users (username, username_key, email, display_name, password_hash, \
                 is_active, is_staff, is_superuser, created_at) values ($1, $1, $2, '', $3, $4, $5, $5, $6) \
                 returning user_id",
            )
            .bind(&name)
            .bind(format!("{name}@example.com"))
            .bind(format!("bench-not-a-real-hash-{name}"))
            .bind(true)
            .bind(false)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "insert into user_groups (user_id, group_id, created_at) values ($1, $2, $3)",
            )
            .bind(id)
            .bind(writers)
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
            ids.push(id);
        }
        ladder::permissions::bump_epoch(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    ids
}

/// A signed-in session for `user_id`, written straight into the session table.
async fn session_for(ladder: &Ladder, user_id: i64) -> String {
    let mut conn = ladder.db.acquire().await.unwrap();
    let user = users::find_by_id(&mut conn, user_id)
        .await
        .unwrap()
        .unwrap();
    let id = tower_sessions::session::Id::default();
    // As sign-in leaves it: the auth record and the hour of renewal.
    let hour = time::OffsetDateTime::now_utc().unix_timestamp() / 3_600;
    let data = serde_json::json!({ "auth": { "user_id": user_id, "auth_hash": auth_hash(&ladder.secret, &user) }, "renewed": hour });
    sqlx::query(
        "insert into sessions (session_id, data, expires_at, created_at) values ($1, $2, $3, $4)",
    )
    .bind(id.to_string())
    .bind(data.to_string())
    .bind(ladder.clock.now() + 86_400)
    .bind(ladder.clock.now())
    .execute(&mut *conn)
    .await
    .unwrap();
    format!("ladder_session={id}")
}

/// Submit-and-approve cycles from `concurrency` clients until every writer
/// has asked once; returns the number of failed requests.
async fn cycles_load(
    base: String,
    concurrency: usize,
    cookies: Arc<Vec<String>>,
    erin_cookie: String,
    submitted: Arc<Mutex<HashMap<i64, (Instant, Instant)>>>,
    finished_at: Arc<Mutex<Vec<Instant>>>,
) -> usize {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, base, next, submitted, cookies, erin_cookie, finished_at) = (
            http.clone(),
            base.clone(),
            next.clone(),
            submitted.clone(),
            cookies.clone(),
            erin_cookie.clone(),
            finished_at.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut failures = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cookies.len() {
                    return failures;
                }
                let t0 = Instant::now();
                let r = http
                    .post(format!("{base}/api/v1/promotions"))
                    .header("cookie", &cookies[i])
                    .header("content-type", "application/json")
                    .body(r#"{"track": "senior-writer", "justification": "Benchmark cycle"}"#)
                    .send()
                    .await
                    .unwrap();
                if r.status() != 201 {
                    failures += 1;
                    continue;
                }
                let answered = Instant::now();
                let body: serde_json::Value = r.json().await.unwrap();
                let id = body["id"].as_i64().unwrap();
                submitted.lock().unwrap().insert(id, (t0, answered));
                let r = http
                    .post(format!("{base}/api/v1/promotions/{id}/approve"))
                    .header("cookie", &erin_cookie)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                if r.status() != 200 {
                    failures += 1;
                }
                finished_at.lock().unwrap().push(Instant::now());
            }
        }));
    }
    let mut failures = 0;
    for t in tasks {
        failures += t.await.unwrap();
    }
    failures
}

/// Deliveries per second while the cycles ran, and the time from each
/// submit's answer to the delivery of its `promotion.submitted`.
async fn webhook_report(
    hooks: &Hooks,
    cycles: usize,
    started: Instant,
    elapsed: Duration,
    submitted: &HashMap<i64, (Instant, Instant)>,
) {
    // Three events a cycle: submitted, membership.added, approved.
    let expected = cycles * 3;
    let wait_start = Instant::now();
    while hooks.lock().unwrap().len() < expected && wait_start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hooks = hooks.lock().unwrap().clone();
    let during = hooks
        .iter()
        .filter(|(at, _)| at.duration_since(started) <= elapsed)
        .count();
    let last = hooks.iter().map(|(at, _)| *at).max().unwrap_or(started);
    println!(
        "webhook deliveries: {} of {expected}; {during} while the cycles ran = {:.0}/s; \
         all delivered {:.2} s after the first submit",
        hooks.len(),
        during as f64 / elapsed.as_secs_f64(),
        last.duration_since(started).as_secs_f64()
    );
    let mut latencies: Vec<Duration> = hooks
        .iter()
        .filter_map(|(at, body)| {
            let event: serde_json::Value = serde_json::from_slice(body).ok()?;
            if event["type"] != "promotion.submitted" {
                return None;
            }
            let id = event["data"]["request"]["id"].as_i64()?;
            Some(at.saturating_duration_since(submitted.get(&id)?.1))
        })
        .collect();
    latencies.sort();
    println!(
        "submit answered -> promotion.submitted delivered: n={} p50 {} p99 {} max {}",
        latencies.len(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
}

/// The worker's own ceiling: `n` users made while it is stopped, then the
/// time a fresh worker takes to deliver their `user.created` events.
async fn backlog(ladder: &Ladder, hooks: &Hooks, stop: &tokio::sync::Notify, n: usize) {
    stop.notify_one();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = hooks.lock().unwrap().len();
    let actor = ladder::actor::Actor::system(ladder::actor::Source::Cli);
    for i in 0..n {
        let new = users::NewUser {
            username: ladder::accounts::Username::parse(&format!("backlog-{i}")).unwrap(),
            email: ladder::accounts::Email::parse(&format!("backlog-{i}@example.com")).unwrap(),
            display_name: String::new(),
            password: None,
            is_staff: false,
            is_service: false,
        };
        let create = ladder::accounts::user_changes::CreateUser {
            actor: actor.clone(),
            new,
            active: true,
            now: ladder.clock.now(),
        };
        ladder.db.run(create).await.unwrap();
    }
    assert_eq!(
        hooks.lock().unwrap().len(),
        before,
        "the worker was stopped"
    );
    let started = Instant::now();
    tokio::spawn(ladder::webhooks::worker::run(
        ladder.clone(),
        ladder.webhook_wake.clone(),
        Arc::new(tokio::sync::Notify::new()),
    ));
    while hooks.lock().unwrap().len() < before + n && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    println!(
        "webhook backlog: {} of {n} queued deliveries sent in {:.2} s = {:.0}/s",
        hooks.lock().unwrap().len() - before,
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let cycles = env_usize("LADDER_BENCH_CYCLES", 2000);
    let concurrency = env_usize("LADDER_BENCH_CONCURRENCY", 16);
    let pending = env_usize("LADDER_BENCH_PENDING", 100_000);
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("LADDER_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
    let (smtp_port, arrivals) = start_smtp();
    let mut settings = Settings::with_database_url(&url);
    settings.database.max_connections = env_usize("LADDER_BENCH_CONNECTIONS", 16) as u32;
    settings.mail.transport = MailTransport::Smtp;
    settings.mail.smtp_host = "127.0.0.1".into();
    settings.mail.smtp_port = smtp_port;
    settings.mail.smtp_tls = SmtpTls::None;
    settings.mail.poll_interval_ms = 100;
    // The receiver is on loopback.
    settings.webhooks.allow_private_targets = true;
    let mut ladder = Ladder::open(settings).await.unwrap();
    // As `ladder demo` does: the track's groups first, then the demo in them.
    ladder.setup_tracks().await.unwrap();
    demo::seed(&ladder, Some("bench-password-1")).await.unwrap();
    let now = ladder.clock.now();
    let backend = if url.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    println!("backend: {backend}; cycles: {cycles}; concurrency: {concurrency}");

    let writer_ids = bulk_writers(&ladder, "cycle", cycles, now).await;
    let mut writer_cookies = Vec::with_capacity(cycles);
    for id in &writer_ids {
        writer_cookies.push(session_for(&ladder, *id).await);
    }
    let erin: i64 = sqlx::query_scalar("select user_id from users where username = 'erin'")
        .fetch_one(ladder.db.pool())
        .await
        .unwrap();
    let erin_cookie = session_for(&ladder, erin).await;

    // The server and the email worker, in this process.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::with_listener(ladder.clone(), listener)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let transport = Transport::from_settings(&ladder.settings.mail).unwrap();
    tokio::spawn(ladder::mail::worker::run(
        ladder.clone(),
        transport,
        ladder.mail_wake.clone(),
        stop.clone(),
    ));

    // A webhook endpoint taking every event, and the delivery worker.
    let webhooks = env_usize("LADDER_BENCH_WEBHOOKS", 1) == 1;
    let hooks_stop = Arc::new(tokio::sync::Notify::new());
    let (hook_port, hooks) = start_receiver();
    if webhooks {
        ladder
            .db
            .run(ladder::webhooks::CreateEndpoint {
                actor: ladder::actor::Actor::system(ladder::actor::Source::Cli),
                url: format!("http://127.0.0.1:{hook_port}/hook"),
                description: "benchmark receiver".into(),
                event_types: ladder::webhooks::events::EVENT_TYPES
                    .iter()
                    .map(|t| t.to_string())
                    .collect(),
                is_active: true,
                now,
            })
            .await
            .unwrap();
        tokio::spawn(ladder::webhooks::worker::run(
            ladder.clone(),
            ladder.webhook_wake.clone(),
            hooks_stop.clone(),
        ));
    }
    println!(
        "webhooks: {}",
        if webhooks {
            "an endpoint takes every event"
        } else {
            "none"
        }
    );

    // The load generator runs on its own threads (a runtime of its own), as a
    // separate client process would: its tasks do not queue up behind the
    // server's on the server's worker threads.
    let submitted: Arc<Mutex<HashMap<i64, (Instant, Instant)>>> =
        Arc::new(Mutex::new(HashMap::new()));
    // When each cycle finished, for the rate in each quarter of the run.
    let finished_at: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::with_capacity(cycles)));
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let failures = {
        let (base, submitted, finished_at) = (base.clone(), submitted.clone(), finished_at.clone());
        let cookies = Arc::new(writer_cookies);
        let erin_cookie = erin_cookie.clone();
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let failures = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap()
                .block_on(cycles_load(
                    base,
                    concurrency,
                    cookies,
                    erin_cookie,
                    submitted,
                    finished_at,
                ));
            let _ = done.send(failures);
        });
        result.await.unwrap()
    };
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "submit-and-approve: {cycles} cycles in {:.2} s = {:.0} cycles/s ({failures} failed)",
        elapsed.as_secs_f64(),
        cycles as f64 / elapsed.as_secs_f64()
    );
    let finished = finished_at.lock().unwrap().clone();
    let quarter = finished.len() / 4;
    if quarter > 0 {
        let rates: Vec<String> = (0..4)
            .map(|q| {
                let from = if q == 0 {
                    started
                } else {
                    finished[q * quarter - 1]
                };
                let to = finished[(q + 1) * quarter - 1];
                format!(
                    "{:.0}",
                    quarter as f64 / to.duration_since(from).as_secs_f64()
                )
            })
            .collect();
        println!("cycles/s by quarter of the run: {}", rates.join(", "));
    }
    println!(
        "CPU, all threads of this process (server, email worker, SMTP server, load generator): \
         {:.0}% of one core, {:.2} ms per cycle",
        cpu / elapsed.as_secs_f64() * 100.0,
        cpu / cycles as f64 * 1000.0
    );

    // Every cycle queues 4 emails: 2 approvers on submit, the requester and the other approver on approval.
    let expected = cycles * 4;
    let wait_start = Instant::now();
    while arrivals.lock().unwrap().len() < expected
        && wait_start.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_sent = started.elapsed();
    let arrivals = arrivals.lock().unwrap().clone();
    println!(
        "emails accepted by SMTP: {} of {expected}; all accepted {:.2} s after the first submit",
        arrivals.len(),
        all_sent.as_secs_f64()
    );
    let submitted = submitted.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = arrivals
        .iter()
        .filter(|(_, text)| text.contains("asks to join"))
        .filter_map(|(at, text)| {
            let id: i64 = text
                .split("/promotions/")
                .nth(1)?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()?;
            Some(at.duration_since(submitted.get(&id)?.0))
        })
        .collect();
    latencies.sort();
    println!(
        "submit -> approver email accepted: n={} p50 {} p99 {} max {}",
        latencies.len(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );

    if webhooks {
        webhook_report(&hooks, cycles, started, elapsed, &submitted).await;
        backlog(&ladder, &hooks, &hooks_stop, 5000).await;
    }

    // The dashboard with `pending` open requests.
    // As `ladder seed --requests` does it (ANALYZE included on PostgreSQL).
    bulk_writers(&ladder, "waiting", pending, now).await;
    ladder::seed::seed_requests(&ladder, pending as u64, 42, |_| {})
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut first_page = Vec::new();
    let mut deep_pages = Vec::new();
    let mut after = String::new();
    for round in 0..400 {
        let path = if round % 2 == 0 || after.is_empty() {
            "/promotions/review".to_string()
        } else {
            format!("/promotions/review?after={after}")
        };
        let t0 = Instant::now();
        let r = http
            .get(format!("{base}{path}"))
            .header("cookie", &erin_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        let took = t0.elapsed();
        if path == "/promotions/review" {
            first_page.push(took);
        } else {
            deep_pages.push(took);
        }
        // Follow the "Next page" link further into the queue.
        if let Some(pos) = html.find("after=") {
            after = html[pos + 6..]
                .chars()
                .take_while(|c| *c != '"' && *c != '&')
                .collect::<String>()
                .replace("%3A", ":");
        }
    }
    first_page.sort();
    deep_pages.sort();
    println!(
        "dashboard, {pending} pending: first page p50 {} p99 {}; keyset pages p50 {} p99 {}",
        ms(percentile(&first_page, 0.50)),
        ms(percentile(&first_page, 0.99)),
        ms(percentile(&deep_pages, 0.50)),
        ms(percentile(&deep_pages, 0.99))
    );
    stop.notify_one();
}
