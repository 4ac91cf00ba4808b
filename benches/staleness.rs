//! How long a `consistency=cached` check on another instance serves a
//! permission after it was revoked; see docs/benchmarks.md.
//!
//! `LADDER_BENCH_DATABASE_URL=postgres://…/empty_db cargo bench --bench staleness`
//! (or a `sqlite://` file, where the other instance sees the change by its
//! poll rather than by NOTIFY). Knob: LADDER_BENCH_ROUNDS (300).
//!
//! Two Ladder instances on one database, each with its own pool, cache and
//! revision watcher (on PostgreSQL each LISTENs on its own connection), as two
//! processes would be. Each round, instance A commits a grant or a revoke;
//! the clock starts when A's commit returns. Instance B is asked the cached
//! check in a loop until its answer changes; the clock stops at that answer.

use std::time::{Duration, Instant};

use ladder::{
    Ladder,
    accounts::{Email, Username, users},
    actor::{Actor, Source},
    config::Settings,
    db::{Finish, Sql, Transaction},
    permissions::{
        PermissionName,
        check::{self, Asker, Consistency},
        grants::{self, Grantee},
    },
};

struct Grant {
    username: String,
    on: bool,
    now: i64,
}

impl Transaction for Grant {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> ladder::Result<Finish<()>> {
        let actor = Actor::system(Source::Cli);
        let user = users::get_by_username(sql, &self.username).await?;
        let perm = [PermissionName::parse("blog.publish_post")?];
        if self.on {
            grants::grant(sql, &actor, Grantee::User(&user), &perm, self.now).await?;
        } else {
            grants::revoke(sql, &actor, Grantee::User(&user), &perm, self.now).await?;
        }
        Ok(Finish::Commit(()))
    }
}

struct MakeUser(String, i64);

impl Transaction for MakeUser {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> ladder::Result<Finish<()>> {
        let new = users::NewUser {
            username: Username::parse(&self.0)?,
            email: Email::parse(&format!("{}@example.com", self.0))?,
            display_name: String::new(),
            password: None,
            is_staff: false,
            is_service: false,
        };
        users::create(sql, &Actor::system(Source::Cli), new, self.1).await?;
        Ok(Finish::Commit(()))
    }
}

async fn cached_answer(ladder: &Ladder, username: &str) -> bool {
    let asker = Asker {
        username: username.to_string(),
        may_view_users: true,
    };
    let checks = [(username.to_string(), "blog.publish_post".to_string())];
    let answers = check::check_all(ladder, &asker, &checks, Consistency::Cached)
        .await
        .unwrap();
    answers[0].as_ref().unwrap().allowed
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("LADDER_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/ladder.db", dir.path().display()));
    let rounds: usize = std::env::var("LADDER_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let a = Ladder::open(Settings::with_database_url(&url))
        .await
        .unwrap();
    let b = Ladder::open(Settings::with_database_url(&url))
        .await
        .unwrap();
    let postgres = url.starts_with("postgres").then(|| url.clone());
    a.live.start(&a.db, postgres.clone());
    b.live.start(&b.db, postgres);
    let name = "stale-check";
    a.db.run(MakeUser(name.into(), a.clock.now()))
        .await
        .unwrap();
    // Let both watchers start and B remember the user.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!cached_answer(&b, name).await);

    let mut lags = Vec::with_capacity(rounds);
    let mut polls = 0u64;
    for round in 0..rounds {
        let on = round % 2 == 0;
        a.db.run(Grant {
            username: name.into(),
            on,
            now: a.clock.now(),
        })
        .await
        .unwrap();
        let committed = Instant::now();
        loop {
            polls += 1;
            if cached_answer(&b, name).await == on {
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(5),
                "B never saw round {round}"
            );
            tokio::task::yield_now().await;
        }
        lags.push(committed.elapsed());
        // Rounds apart, so each starts with B settled.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lags.sort();
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "{backend}: from a committed grant or revoke on instance A to the first cached check on instance B that sees it, {rounds} rounds: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({polls} checks asked)",
        percentile(&lags, 0.50).as_secs_f64() * 1e3,
        percentile(&lags, 0.99).as_secs_f64() * 1e3,
        lags.last().unwrap().as_secs_f64() * 1e3,
    );
}
