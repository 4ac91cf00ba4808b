//! The test harness: a fresh migrated database per test, on either backend,
//! factories for users and groups, and a runner for the built `ladder` binary.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
    sync::{
        Once,
        atomic::{AtomicU32, Ordering},
    },
};

use ladder::{
    Ladder,
    accounts::{
        Email, Group, GroupName, NewPassword, User, Username, groups,
        users::{self, NewUser},
    },
    actor::{Actor, Source},
    config::Settings,
    permissions::{
        PermissionName,
        grants::{self, Grantee},
    },
};

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// Generates `mod name { fn sqlite(); fn postgres(); }` for each
/// `async fn name(t: TestLadder)` so every test runs on both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let t = $crate::helpers::TestLadder::start($crate::helpers::Kind::Sqlite).await.unwrap();
                super::$name(t).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(t) = $crate::helpers::TestLadder::start($crate::helpers::Kind::Postgres).await {
                    super::$name(t).await;
                }
            }
        }
    )*};
}

/// Like `on_both_backends!`, for tests that start their own `TestLadder`
/// (with settings of their own) from the backend kind.
macro_rules! on_both_backends_with_settings {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Kind::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Kind::Postgres).await;
            }
        }
    )*};
}

/// Tables a refused request may write by design; see `TestLadder::fingerprint`.
const VOLATILE_TABLES: &[&str] = &["sessions", "login_attempts", "_sqlx_migrations"];

/// Every row of every (non-volatile) table, by table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(pub std::collections::BTreeMap<String, Vec<String>>);

impl Fingerprint {
    /// The same, leaving out the given tables.
    pub fn without(&self, tables: &[&str]) -> Fingerprint {
        let mut all = self.0.clone();
        all.retain(|t, _| !tables.contains(&t.as_str()));
        Fingerprint(all)
    }

    /// The same, with one column's values hidden (e.g. a re-salted password hash).
    pub fn masking(&self, column: &str) -> Fingerprint {
        let prefix = format!("{column}=");
        let all = self
            .0
            .iter()
            .map(|(t, rows)| {
                let rows = rows
                    .iter()
                    .map(|r| {
                        r.split(" | ")
                            .map(|f| {
                                if f.starts_with(&prefix) {
                                    prefix.as_str()
                                } else {
                                    f
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(" | ")
                    })
                    .collect();
                (t.clone(), rows)
            })
            .collect();
        Fingerprint(all)
    }

    /// The rows that differ, table by table, for a readable failure.
    pub fn diff(&self, other: &Fingerprint) -> String {
        let mut out = String::new();
        for (table, rows) in &self.0 {
            let empty = vec![];
            let theirs = other.0.get(table).unwrap_or(&empty);
            for r in rows.iter().filter(|r| !theirs.contains(r)) {
                out.push_str(&format!("{table}: - {r}\n"));
            }
            for r in theirs.iter().filter(|r| !rows.contains(r)) {
                out.push_str(&format!("{table}: + {r}\n"));
            }
        }
        out
    }
}

/// Panics, naming every changed row, unless nothing changed.
#[track_caller]
pub fn assert_unchanged(before: &Fingerprint, after: &Fingerprint, what: &str) {
    if before != after {
        panic!("{what} changed the database:\n{}", before.diff(after));
    }
}

/// Whether the tests run in CI (`.ci/run` sets CI), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Says once that a test part is skipped for lack of `what`; under CI, fails instead.
#[track_caller]
pub fn skip_or_fail(what: &str, notice: &'static Once) {
    if in_ci() {
        panic!("CI is set but {what}: this test must not be skipped in CI");
    }
    notice.call_once(|| {
        // Written past the test harness's capture, so it shows once.
        let _ = writeln!(std::io::stderr(), "note: {what}; skipped");
    });
}

static SCHEMA_COUNTER: AtomicU32 = AtomicU32::new(0);
static SKIP_NOTICE: Once = Once::new();

pub struct TestLadder {
    pub ladder: Ladder,
    pub url: String,
    pub kind: Kind,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

impl TestLadder {
    /// A migrated, empty Ladder. None for PostgreSQL when it is not configured.
    pub async fn start(kind: Kind) -> Option<TestLadder> {
        Self::start_with(kind, |_| {}).await
    }

    /// Like `start`, with settings adjusted (e.g. the login rate limit).
    pub async fn start_with(kind: Kind, edit: impl FnOnce(&mut Settings)) -> Option<TestLadder> {
        let (url, dir, pg_cleanup) = match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/ladder.db", dir.path().display());
                (url, Some(dir), None)
            }
            Kind::Postgres => {
                let Ok(base) = std::env::var("LADDER_TEST_POSTGRES_URL") else {
                    skip_or_fail(
                        "LADDER_TEST_POSTGRES_URL is not set (the PostgreSQL half of the tests)",
                        &SKIP_NOTICE,
                    );
                    return None;
                };
                // A schema per test keeps tests isolated and is much cheaper than a database.
                let schema = format!(
                    "t_{}_{}",
                    std::process::id(),
                    SCHEMA_COUNTER.fetch_add(1, Ordering::Relaxed)
                );
                run_pg(&base, &format!("create schema {schema}")).await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options[search_path]={schema},public");
                (url, None, Some((base, schema)))
            }
        };
        let mut settings = Settings::with_database_url(&url);
        // Tests share one client address; keep the limiter out of their way.
        settings.server.login_attempts_per_minute = 1000;
        edit(&mut settings);
        let mut ladder = Ladder::open(settings).await.unwrap();
        // What `ladder migrate` does: the promotion track's groups (empty), bound.
        ladder.setup_tracks().await.unwrap();
        Some(TestLadder {
            ladder,
            url,
            kind,
            _dir: dir,
            pg_cleanup,
        })
    }

    /// A Ladder with the same database and custom settings (another "process").
    pub async fn reopen(&self, edit: impl FnOnce(&mut Settings)) -> Ladder {
        let mut settings = Settings::with_database_url(&self.url);
        settings.server.login_attempts_per_minute = 1000;
        edit(&mut settings);
        Ladder::open(settings).await.unwrap()
    }

    pub fn system(&self) -> Actor {
        Actor::system(Source::Cli)
    }

    pub fn now(&self) -> i64 {
        self.ladder.clock.now()
    }

    /// Creates an active user with a password of "<name>-password".
    pub async fn user(&self, name: &str) -> User {
        let new = NewUser {
            username: Username::parse(name).unwrap(),
            email: Email::parse(&format!("{name}@example.com")).unwrap(),
            display_name: String::new(),
            password: Some(
                NewPassword::parse(&format!("{name}-password"), name)
                    .unwrap()
                    .hash()
                    .await
                    .unwrap(),
            ),
            is_staff: false,
            is_service: false,
        };
        let mut tx = crate::helpers::begin(&self.ladder.db).await.unwrap();
        let user = users::create(&mut tx, &self.system(), new, self.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        user
    }

    pub async fn superuser(&self, name: &str) -> User {
        let mut tx = crate::helpers::begin(&self.ladder.db).await.unwrap();
        let user = users::create_superuser(
            &mut tx,
            &self.system(),
            Username::parse(name).unwrap(),
            Email::parse(&format!("{name}@example.com")).unwrap(),
            NewPassword::parse(&format!("{name}-password"), name)
                .unwrap()
                .hash()
                .await
                .unwrap(),
            self.now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        user
    }

    /// A group holding `perms` (created unless it exists).
    pub async fn group(&self, name: &str, perms: &[&str]) -> Group {
        let mut tx = crate::helpers::begin(&self.ladder.db).await.unwrap();
        // `setup_tracks` already made the promotion track's groups (empty); reuse those.
        let group = match groups::find_by_name(&mut tx, name).await.unwrap() {
            Some(g) => g,
            None => groups::create(
                &mut tx,
                &self.system(),
                &GroupName::parse(name).unwrap(),
                self.now(),
            )
            .await
            .unwrap(),
        };
        grants::grant(
            &mut tx,
            &self.system(),
            Grantee::Group(&group),
            &names(perms),
            self.now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        group
    }

    pub async fn join(&self, user: &User, group: &Group) {
        let mut tx = crate::helpers::begin(&self.ladder.db).await.unwrap();
        groups::add_member(&mut tx, &self.system(), group, user, self.now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    pub async fn grant(&self, user: &User, perms: &[&str]) {
        let mut tx = crate::helpers::begin(&self.ladder.db).await.unwrap();
        grants::grant(
            &mut tx,
            &self.system(),
            Grantee::User(user),
            &names(perms),
            self.now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    /// The user as stored now.
    pub async fn reload(&self, user: &User) -> User {
        let mut conn = self.ladder.db.acquire().await.unwrap();
        users::find_by_id(&mut conn, user.user_id)
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn has_perm(&self, user: &User, perm: &str) -> bool {
        let mut conn = self.ladder.db.acquire().await.unwrap();
        self.ladder
            .permissions
            .has_perm(&mut conn, user.user_id, perm)
            .await
            .unwrap()
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(self.ladder.db.pool())
            .await
            .unwrap()
    }

    /// Every row of every table, as text, so a refusal that flips a flag,
    /// renames a group or writes a new password hash is seen, not only one
    /// that adds or removes rows. Compare two with [`assert_unchanged`].
    ///
    /// Left out: `sessions` and `login_attempts`, which a refused request
    /// over HTTP writes by design (the session's renewal, the counted
    /// attempt), and sqlx's own migration table.
    pub async fn fingerprint(&self) -> Fingerprint {
        let pool = self.ladder.db.pool();
        let tables: Vec<String> = match self.kind {
            Kind::Sqlite => sqlx::query_scalar(
                "select name from sqlite_master where type = 'table' \
                 and name not like 'sqlite_%' order by name",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
            Kind::Postgres => sqlx::query_scalar(
                "select cast(table_name as text) from information_schema.tables \
                 where table_schema = current_schema() and table_type = 'BASE TABLE' \
                 order by 1",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
        };
        let mut all = std::collections::BTreeMap::new();
        for table in tables {
            if VOLATILE_TABLES.contains(&table.as_str()) {
                continue;
            }
            let columns: Vec<String> = match self.kind {
                Kind::Sqlite => {
                    sqlx::query_scalar("select name from pragma_table_info($1) order by cid")
                        .bind(&table)
                        .fetch_all(pool)
                        .await
                        .unwrap()
                }
                Kind::Postgres => sqlx::query_scalar(
                    "select cast(column_name as text) from information_schema.columns \
                     where table_schema = current_schema() and table_name = $1 \
                     order by ordinal_position",
                )
                .bind(&table)
                .fetch_all(pool)
                .await
                .unwrap(),
            };
            let row = columns
                .iter()
                .map(|c| match self.kind {
                    // quote() renders any value, blobs included, as a literal.
                    Kind::Sqlite => format!("'{c}=' || quote({c})"),
                    Kind::Postgres => format!("'{c}=' || coalesce(cast({c} as text), 'NULL')"),
                })
                .collect::<Vec<_>>()
                .join(" || ' | ' || ");
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "select r from (select {row} as r from {table}) x order by r"
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            all.insert(table, rows);
        }
        assert!(
            all.contains_key("users") && all.contains_key("audit_events"),
            "the fingerprint found no tables: {:?}",
            all.keys()
        );
        Fingerprint(all)
    }

    /// Runs the built `ladder` binary against this database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, None, &[])
    }

    pub fn cli_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ladder"));
        cmd.args(args)
            .env_remove("LADDER_CONFIG")
            .env_remove("LADDER_DEMO_PASSWORD")
            .env_remove("LADDER_SUPERUSER_PASSWORD")
            .env("LADDER_DATABASE__URL", &self.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run ladder");
        {
            let mut pipe = child.stdin.take().unwrap();
            if let Some(input) = stdin {
                pipe.write_all(input.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for TestLadder {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.pg_cleanup.take() {
            // Drop runs outside async; use a short-lived runtime on its own thread.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(run_pg(
                        &base,
                        &format!("drop schema if exists {schema} cascade"),
                    ));
            })
            .join();
        }
    }
}

async fn run_pg(url: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to LADDER_TEST_POSTGRES_URL");
    conn.execute(sql).await.unwrap();
    let _ = conn.close().await;
}

pub fn names(perms: &[&str]) -> Vec<PermissionName> {
    perms
        .iter()
        .map(|p| PermissionName::parse(p).unwrap())
        .collect()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running server on a real port (127.0.0.1:0) over this test's database.
pub struct TestApp {
    pub base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestLadder {
    pub async fn serve(&self) -> TestApp {
        Self::serve_ladder(self.ladder.clone()).await
    }

    /// Serves another Ladder (another "process", see `reopen`).
    pub async fn serve_ladder(ladder: Ladder) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = ladder::web::Application::with_listener(ladder, listener)
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            shutdown: Some(tx),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A browser-like HTTP client: keeps cookies, does not follow redirects.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl TestApp {
    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.base.clone(),
        }
    }

    /// A client signed in as `username` (password "<username>-password", as the factories set).
    pub async fn signed_in(&self, username: &str) -> Client {
        let client = self.client();
        let response = client
            .login(username, &format!("{username}-password"))
            .await;
        assert_eq!(response.status(), 303, "sign-in as {username} failed");
        client
    }
}

impl Client {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// The CSRF token from a page's first form (the session's token).
    pub async fn csrf(&self, path: &str) -> String {
        let html = self.get(path).await.text().await.unwrap();
        csrf_from(&html).unwrap_or_else(|| panic!("no csrf_token on {path}"))
    }

    /// Posts a form with the session's CSRF token added.
    pub async fn post_form(
        &self,
        path: &str,
        token: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token)];
        all.extend_from_slice(fields);
        self.http
            .post(self.url(path))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        let token = self.csrf("/login").await;
        self.post_form(
            "/login",
            &token,
            &[("username", username), ("password", password)],
        )
        .await
    }
}

pub fn csrf_from(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// A promotion request's state, as a test compares it.
pub async fn state_of(ladder: &ladder::Ladder, request_id: i64) -> String {
    let mut conn = ladder.db.acquire().await.unwrap();
    let request = ladder::promotions::get(&mut conn, request_id)
        .await
        .unwrap();
    request.state.as_str().to_string()
}

/// The promotion transitions called with text as a form sends it: each
/// parses the text into the workflow's own type first, as the pages do.
pub mod workflow {
    use ladder::{
        Ladder, Result,
        accounts::User,
        actor::Actor,
        promotions::{
            Request,
            reasons::{Comment, Justification, Reason},
            transitions,
        },
    };

    pub use ladder::promotions::transitions::Approval;

    pub async fn submit(
        ladder: &Ladder,
        actor: &Actor,
        requester: &User,
        track: &str,
        justification: &str,
    ) -> Result<Request> {
        let justification = Justification::parse(justification)?;
        transitions::submit(ladder, actor, requester, track, justification)
            .await
            .map(|c| c.outcome)
    }

    pub async fn approve(
        ladder: &Ladder,
        actor: &Actor,
        approver: &User,
        request_id: i64,
        comment: &str,
    ) -> Result<Approval> {
        let comment = Comment::parse(comment)?;
        transitions::approve(ladder, actor, approver, request_id, comment)
            .await
            .map(|c| c.outcome)
    }

    pub async fn reject(
        ladder: &Ladder,
        actor: &Actor,
        approver: &User,
        request_id: i64,
        reason: &str,
    ) -> Result<()> {
        let reason = Reason::parse(reason)?;
        transitions::reject(ladder, actor, approver, request_id, reason)
            .await
            .map(|c| c.outcome)
    }

    pub async fn withdraw(
        ladder: &Ladder,
        actor: &Actor,
        requester: &User,
        request_id: i64,
    ) -> Result<()> {
        transitions::withdraw(ladder, actor, requester, request_id)
            .await
            .map(|c| c.outcome)
    }
}

/// A test's write transaction written inline: `db.write(|sql| Box::pin(async move { … }))`.
/// Ladder's own transactions are named values; a test's one-off steps need no name.
pub struct InTx<F>(pub F);

impl<T, F> ladder::db::Transaction for InTx<F>
where
    T: Send + 'static,
    F: for<'s> FnOnce(
            &'s mut dyn ladder::db::Sql,
        )
            -> futures_util::future::BoxFuture<'s, ladder::Result<ladder::db::Finish<T>>>
        + Send
        + 'static,
{
    type Output = T;

    fn run(
        self,
        sql: &mut dyn ladder::db::Sql,
    ) -> impl std::future::Future<Output = ladder::Result<ladder::db::Finish<T>>> + Send {
        (self.0)(sql)
    }
}

/// `db.write(closure)` for tests, through `Db::run`.
pub trait WriteInline {
    fn write<F>(
        &self,
        f: F,
    ) -> impl std::future::Future<
        Output = ladder::Result<<InTx<F> as ladder::db::Transaction>::Output>,
    > + Send
    where
        InTx<F>: ladder::db::Transaction;
}

impl WriteInline for ladder::db::Db {
    fn write<F>(
        &self,
        f: F,
    ) -> impl std::future::Future<
        Output = ladder::Result<<InTx<F> as ladder::db::Transaction>::Output>,
    > + Send
    where
        InTx<F>: ladder::db::Transaction,
    {
        self.run(InTx(f))
    }
}

/// A transaction a test opens, fills through domain functions and commits
/// itself, on a pooled connection (Ladder's own writes go through `Db::run`).
/// It takes the write lock up front on SQLite, as Ladder's writers do.
pub struct TestTx(sqlx::Transaction<'static, sqlx::Any>);

pub async fn begin(db: &ladder::db::Db) -> ladder::Result<TestTx> {
    let conn = db.pool().acquire().await?;
    let start = match db.backend() {
        ladder::db::Backend::Sqlite => Some("begin immediate".into()),
        ladder::db::Backend::Postgres => None,
    };
    Ok(TestTx(sqlx::Transaction::begin(conn, start).await?))
}

impl TestTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.0.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.0.rollback().await
    }
}

impl std::ops::Deref for TestTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.0
    }
}

impl std::ops::DerefMut for TestTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.0
    }
}

impl ladder::db::Sql for TestTx {
    fn backend(&self) -> ladder::db::Backend {
        ladder::db::Sql::backend(&*self.0)
    }

    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        binds: Vec<ladder::db::Bind>,
    ) -> futures_util::future::BoxFuture<'a, ladder::Result<u64>> {
        ladder::db::Sql::execute(&mut *self.0, sql, binds)
    }

    fn fetch_rows<'a>(
        &'a mut self,
        sql: &'a str,
        binds: Vec<ladder::db::Bind>,
    ) -> futures_util::future::BoxFuture<'a, ladder::Result<Vec<ladder::db::Row>>> {
        ladder::db::Sql::fetch_rows(&mut *self.0, sql, binds)
    }
}
