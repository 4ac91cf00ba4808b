//! The database: one pool and one query layer for SQLite and PostgreSQL.
//!
//! Queries go through sqlx's `Any` driver with `$1` placeholders, which both
//! backends accept, so every query is written once. Only migrations (and the
//! few statements that have no common form) differ per backend.
//!
//! Domain code runs its statements through `&mut dyn Sql` (`sql`). Every
//! write transaction is a named value implementing [`Transaction`], run by
//! [`Db::run`]: on a SQLite file on a thread of its own (`sqlite_writer`),
//! committed in groups; on PostgreSQL (and in-memory SQLite) in a pooled
//! transaction.

use std::{
    ops::{Deref, DerefMut},
    str::FromStr,
    sync::Arc,
};

use sqlx::{
    Any, AnyConnection, AnyPool, Executor,
    any::{AnyPoolOptions, AnyTypeInfo, AnyTypeInfoKind},
    error::BoxDynError,
    migrate::Migrator,
    sqlite::SqliteConnectOptions,
};

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Result, config::DatabaseSettings};

use sqlite_writer::SqliteWriter;

mod sql;
mod sqlite_reader;
mod sqlite_writer;
mod transaction;

pub use sql::{Bind, FromRow, FromValue, Row, Sql, Value};
pub use transaction::{Finish, Transaction};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// A connection inside a transaction or from the pool; every query function takes one.
pub type Conn = AnyConnection;

/// A write transaction from [`Db::begin`]; derefs to the connection, so
/// `&mut tx` goes wherever a `&mut Conn` does. Commit it, or drop it to roll back.
pub(crate) struct Tx {
    inner: sqlx::Transaction<'static, Any>,
    /// On SQLite, this process's turn to write; given back after the transaction ends.
    _turn: Option<OwnedSemaphorePermit>,
}

impl Tx {
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.inner.commit().await
    }

    pub async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}

impl Deref for Tx {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.inner
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.inner
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    /// On SQLite, the connection that `begin` uses, taken only
    /// while holding the write turn. Keeping writers off the read pool means
    /// no task ever holds a read connection and the turn while waiting for
    /// the other, so writers and readers cannot deadlock. On PostgreSQL (and
    /// in-memory SQLite, which has one database per pool) it is `pool`.
    write_pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Writers in this process wait their
    /// turn here, in order, rather than in SQLite's busy handler, which polls
    /// with sleeps of up to 100 ms and leaves the CPU idle under load.
    /// Other processes (the CLI) still meet the busy handler.
    write_turn: Arc<Semaphore>,
    /// On a SQLite file, the thread that runs [`Db::write`] jobs.
    sqlite_writer: Option<std::sync::mpsc::Sender<sqlite_writer::Job>>,
    /// Groups the SQLite write thread has committed (see [`Db::group_commits`]).
    group_commits: Arc<std::sync::atomic::AtomicU64>,
    /// Tasks waiting for the write turn (see [`Db::waiting_for_write_turn`]).
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    /// Signalled after every commit through [`Db::run`], so this process's
    /// revision watcher (`permissions::revision`) looks for changes at once.
    committed: Arc<tokio::sync::watch::Sender<u64>>,
    /// The SQLite file, for reads on the calling thread (`sqlite_reader`).
    sqlite_file: Option<Arc<std::path::PathBuf>>,
}

impl Db {
    /// Opens the pool. A SQLite file (and its folder) is created on first use,
    /// in WAL mode with foreign keys on.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if settings.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut url = settings.url.clone();
        let mut sqlite_file = None;
        if backend == Backend::Sqlite {
            url = prepare_sqlite_file(&url)?;
            sqlite_file = Some(
                SqliteConnectOptions::from_str(&url)?
                    .get_filename()
                    .to_owned(),
            )
            .filter(|path| path.as_os_str() != ":memory:");
        }
        let pool = pool_options(backend)
            .max_connections(settings.max_connections)
            .connect(&url)
            .await?;
        let write_pool = match &sqlite_file {
            Some(_) => {
                pool_options(backend)
                    .max_connections(1)
                    .connect(&url)
                    .await?
            }
            None => pool.clone(),
        };
        let write_turn = Arc::new(Semaphore::new(1));
        let group_commits = Arc::default();
        // After the pool: its first connection created the file and set WAL.
        let sqlite_writer = match &sqlite_file {
            Some(path) => Some(sqlite_writer::spawn(
                path,
                write_turn.clone(),
                Arc::clone(&group_commits),
            )?),
            None => None,
        };
        Ok(Db {
            pool,
            write_pool,
            backend,
            write_turn,
            sqlite_writer,
            group_commits,
            waiting: Arc::default(),
            committed: Arc::new(tokio::sync::watch::Sender::new(0)),
            sqlite_file: sqlite_file.map(Arc::new),
        })
    }

    /// How many COMMITs the SQLite write thread has made: each covers every
    /// [`Db::write`] job that queued while the one before ran. Always 0 on
    /// PostgreSQL, where each job commits on its own.
    pub fn group_commits(&self) -> u64 {
        self.group_commits
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many tasks wait for this process's write turn at `begin`,
    /// `hold_write_turn` or `run` right now. Always 0 on PostgreSQL, which has no turn.
    pub fn waiting_for_write_turn(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies the schema migrations for this backend.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
        Ok(())
    }

    /// Starts a transaction that will write. On SQLite it takes this
    /// process's write turn, then the write connection (always in that order),
    /// and the write lock up front (BEGIN IMMEDIATE): a deferred transaction
    /// that reads and then writes can fail with "database is locked" instead
    /// of waiting its turn. Never call it while this task holds another `Tx`
    /// on SQLite: the second would wait for the first forever. Do slow work
    /// (password hashing, rendering, network) before, never inside.
    async fn begin(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = self.write_turn().await?;
                let conn = self.write_pool.acquire().await?;
                Tx {
                    inner: sqlx::Transaction::begin(conn, Some("begin immediate".into())).await?,
                    _turn: turn,
                }
            }
            Backend::Postgres => Tx {
                inner: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    /// Holds this process's write turn until the guard drops, so writers
    /// queue behind it (on SQLite; PostgreSQL has no turn: None). For tests
    /// that need transactions to pile up, e.g. to see them commit as a group.
    #[doc(hidden)]
    pub async fn hold_write_turn(&self) -> Result<Option<OwnedSemaphorePermit>> {
        self.write_turn().await
    }

    /// This process's turn to write: on SQLite writers wait in line here
    /// instead of in the busy handler. None on PostgreSQL, which needs none.
    async fn write_turn(&self) -> Result<Option<OwnedSemaphorePermit>> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let _waiting = Waiting::count(&self.waiting);
                Some(
                    self.write_turn
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|e| anyhow::anyhow!("write turn: {e}"))?,
                )
            }
            Backend::Postgres => None,
        })
    }

    /// Runs one write transaction and commits it, unless it answers
    /// `Finish::Rollback` or fails. On a SQLite file it runs on the write
    /// thread (see `sqlite_writer`), in a savepoint of a group commit, so
    /// the transaction must do nothing but its `Sql` calls: no other awaits
    /// (pool reads, network, sleeps). Slow work belongs before it.
    pub async fn run<T: Transaction>(&self, transaction: T) -> Result<T::Output> {
        if let Some(thread) = &self.sqlite_writer {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let stopped = || anyhow::anyhow!("the SQLite write thread has stopped");
            // Waiting until the thread, holding the write turn, starts the job.
            let waiting = Waiting::count(&self.waiting);
            thread
                .send(Box::new(move |w: &mut SqliteWriter| {
                    drop(waiting);
                    let result = w.run(transaction);
                    Box::new(move |commit_failed: Option<String>| {
                        let _ = reply.send(match commit_failed {
                            None => result,
                            Some(why) => Err(anyhow::anyhow!("{why}").into()),
                        });
                    })
                }))
                .map_err(|_| stopped())?;
            let result = answer.await.map_err(|_| stopped())?;
            self.committed.send_modify(|n| *n = n.wrapping_add(1));
            return result;
        }
        let mut tx = self.begin().await?;
        // A panic rolls back (the transaction is dropped) and is an error, as on SQLite.
        let outcome = AssertUnwindSafe(transaction.run(&mut tx))
            .catch_unwind()
            .await;
        let finish =
            outcome.map_err(|_| anyhow::anyhow!("a write transaction panicked; rolled back"))??;
        match finish {
            Finish::Commit(value) => {
                tx.commit().await?;
                self.committed.send_modify(|n| *n = n.wrapping_add(1));
                Ok(value)
            }
            Finish::Rollback(value) => {
                tx.rollback().await?;
                Ok(value)
            }
        }
    }

    /// Counts this process's commits through [`Db::run`]: `changed()` on
    /// the receiver resolves after the next one (at once if one happened
    /// since the receiver last looked). Each watcher (the revision watcher,
    /// the webhook worker) holds its own.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// A pooled connection for reads.
    /// On a SQLite file, runs one small read on the calling thread, without
    /// a pooled connection (`sqlite_reader`); `None` elsewhere. It blocks the
    /// thread for the read, so keep it to a row or two.
    pub fn read_sqlite_here<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Option<Result<T>> {
        let path = self.sqlite_file.as_deref()?;
        Some(sqlite_reader::read(path, read))
    }

    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        Ok(self.pool.acquire().await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.write_pool.close().await;
    }
}

/// The pool settings both pools share; each then sets its own size.
fn pool_options(backend: Backend) -> AnyPoolOptions {
    AnyPoolOptions::new()
        // A ping before each use guards against a server that went away;
        // an in-process SQLite connection cannot, and the ping is a round
        // trip to its worker thread on every acquire.
        .test_before_acquire(backend == Backend::Postgres)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // busy_timeout makes writers queue instead of failing at once.
                    // mmap: reads come from the OS page cache, shared by all
                    // connections, without a read() call per page. A search
                    // over a million users: p99 24 ms with it, 52-62 ms with
                    // the default or a 64 MiB per-connection cache. It costs
                    // write-heavy work (remaps as the file grows): the
                    // workflow benchmark ran ~15% slower. docs/benchmarks.md.
                    Executor::execute(
                        conn,
                        "pragma journal_mode = wal; pragma foreign_keys = on; \
                         pragma synchronous = normal; pragma busy_timeout = 10000; \
                         pragma mmap_size = 1073741824;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
}

/// Adds `mode=rwc` and creates the parent folder, so `sqlite://data/ladder.db`
/// works on a fresh checkout.
fn prepare_sqlite_file(url: &str) -> Result<String> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| crate::Error::invalid("database.url", e.to_string()))?;
    let path = options.get_filename();
    if path.as_os_str() != ":memory:"
        && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            crate::Error::invalid(
                "database.url",
                format!("cannot create {}: {e}", parent.display()),
            )
        })?;
    }
    if url.contains("mode=") {
        return Ok(url.to_string());
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}mode=rwc"))
}

/// A boolean column: SQLite stores 0/1 integers, PostgreSQL real booleans.
/// Use with `#[sqlx(try_from = "Flag")]` on `bool` fields.
#[derive(Debug, Clone, Copy)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

impl sqlx::Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <bool as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        matches!(
            ty.kind(),
            AnyTypeInfoKind::Bool
                | AnyTypeInfoKind::SmallInt
                | AnyTypeInfoKind::Integer
                | AnyTypeInfoKind::BigInt
        )
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Flag, BoxDynError> {
        // Decode through the boolean or the integer path, whichever the backend sent.
        if let Ok(b) = <bool as sqlx::Decode<Any>>::decode(value.clone()) {
            return Ok(Flag(b));
        }
        let n = <i64 as sqlx::Decode<Any>>::decode(value)?;
        Ok(Flag(n != 0))
    }
}

/// Counts one waiter for as long as it lives (a cancelled wait too); owned,
/// so it can travel with a [`Db::run`] job to the write thread.
struct Waiting(Arc<std::sync::atomic::AtomicUsize>);

impl Waiting {
    fn count(counter: &Arc<std::sync::atomic::AtomicUsize>) -> Waiting {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Waiting(Arc::clone(counter))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Picks the statement for this backend; for the rare SQL with no common form.
pub fn pick<'a>(backend: Backend, sqlite: &'a str, postgres: &'a str) -> &'a str {
    match backend {
        Backend::Sqlite => sqlite,
        Backend::Postgres => postgres,
    }
}

/// Collects binds for a query built piece by piece; `push` returns the `$n` to write.
#[derive(Default)]
pub struct Binds(Vec<Bind>);

impl Binds {
    pub fn push(&mut self, value: Bind) -> String {
        self.0.push(value);
        format!("${}", self.0.len())
    }

    pub fn text(&mut self, value: impl Into<String>) -> String {
        self.push(Bind::Text(value.into()))
    }

    pub fn int(&mut self, value: i64) -> String {
        self.push(Bind::Int(value))
    }

    pub fn bool(&mut self, value: bool) -> String {
        self.push(Bind::Bool(value))
    }

    /// The values, in order, for `sqlx::query_as_with`.
    pub fn into_arguments(self) -> Result<sqlx::any::AnyArguments<'static>> {
        sql::arguments(self.0)
    }

    /// The values, in order, for [`Sql`] calls.
    pub fn into_vec(self) -> Vec<Bind> {
        self.0
    }
}
