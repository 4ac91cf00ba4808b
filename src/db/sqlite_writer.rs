//! The SQLite write thread: one connection of its own, whole transactions,
//! committed in groups.
//!
//! Through sqlx every statement is a round trip to the connection's worker
//! thread, and under load each costs 80-280 µs of thread wake-ups, most of it
//! waiting for a CPU. SQLite runs one write transaction at a time, so the
//! time a transaction holds the lock is the whole server's write budget: an
//! approval's dozen statements held it for about 1.6 ms, which capped the
//! workflow near 300 cycles a second with the CPUs half idle
//! (docs/benchmarks.md). Here a job runs on this thread with no hop between
//! statements.
//!
//! The jobs that queued while one ran go into the same SQLite transaction,
//! each in a savepoint of its own (group commit): a job that fails or rolls
//! back undoes only itself, and nobody hears back before the COMMIT, so a
//! reply still means "durable". One commit writes each changed page once for
//! the group, where one transaction per job wrote the same index leaves over
//! and over.
//!
//! The connection shares the database file with the pool (WAL: readers see
//! each commit as soon as it lands). It takes the same in-process write turn
//! as sqlx's writers, so the two never wait for each other in SQLite's busy
//! handler.

use std::{
    panic::AssertUnwindSafe,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
};

use futures_util::future::{BoxFuture, ready};
use rusqlite::{
    Connection, OpenFlags,
    types::{Null, ValueRef},
};
use tokio::sync::Semaphore;

use super::{
    Backend, Finish, Transaction,
    sql::{Bind, Row, Sql, Value},
};
use crate::{Error, Result};

/// A transaction to run on the write thread. It runs, then hands back what
/// to do once the group's COMMIT has succeeded (`None`) or failed.
pub(super) type Job = Box<dyn FnOnce(&mut SqliteWriter) -> Reply + Send>;
pub(super) type Reply = Box<dyn FnOnce(Option<String>) + Send>;

/// Jobs in one group at most, so sqlx's writers are not kept waiting long.
const JOBS_PER_GROUP: usize = 64;

pub struct SqliteWriter {
    conn: Connection,
    /// Why the group's transaction is unusable (BEGIN failed, a savepoint
    /// could not be undone); every statement then fails with it.
    broken: Option<String>,
}

/// Opens the write connection on `path` and starts its thread. The thread
/// ends when the last sender (the last clone of the `Db`) is dropped.
/// `commits` counts the groups committed, so a test can see jobs share one.
pub(super) fn spawn(
    path: &Path,
    turn: Arc<Semaphore>,
    commits: Arc<AtomicU64>,
) -> Result<mpsc::Sender<Job>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_error)?;
    // As the pool's connections, without mmap (it slows writes). The page
    // cache stays valid between groups, as only this connection writes: a
    // large one saves a pread per page. Savepoints journal in memory, not in
    // temporary files.
    conn.execute_batch(
        "pragma foreign_keys = on; pragma synchronous = normal; pragma busy_timeout = 10000; \
         pragma cache_size = -65536; pragma temp_store = memory;",
    )
    .map_err(sqlite_error)?;
    conn.set_prepared_statement_cache_capacity(128);
    let (sender, jobs) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("ladder-sqlite-writer".into())
        .spawn(move || {
            let mut writer = SqliteWriter { conn, broken: None };
            while let Ok(first) = jobs.recv() {
                let Ok(turn) = futures_executor::block_on(turn.clone().acquire_owned()) else {
                    return;
                };
                writer.broken = writer
                    .conn
                    .execute_batch("begin immediate")
                    .err()
                    .map(|e| format!("SQLite: {e}"));
                let mut replies = vec![first(&mut writer)];
                for job in jobs.try_iter().take(JOBS_PER_GROUP - 1) {
                    replies.push(job(&mut writer));
                }
                let committed = match writer.broken.take() {
                    Some(why) => Some(why),
                    None => writer
                        .conn
                        .execute_batch("commit")
                        .err()
                        .map(|e| format!("SQLite: {e}")),
                };
                if committed.is_none() {
                    commits.fetch_add(1, Ordering::Relaxed);
                }
                if !writer.conn.is_autocommit() {
                    let _ = writer.conn.execute_batch("rollback");
                }
                drop(turn);
                for reply in replies {
                    reply(committed.clone());
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("starting the SQLite writer: {e}"))?;
    Ok(sender)
}

/// As `sql::sqlx_error`: a unique violation is [`Error::Duplicate`].
fn sqlite_error(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(failure, message) = &e
        && matches!(
            failure.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    {
        return Error::Duplicate(message.clone().unwrap_or_else(|| e.to_string()));
    }
    anyhow::anyhow!("SQLite: {e}").into()
}

impl SqliteWriter {
    /// Runs `transaction` in a savepoint of the group's transaction: keeps
    /// its writes on `Finish::Commit`, undoes them on `Finish::Rollback`, an
    /// error or a panic.
    pub(super) fn run<T: Transaction>(&mut self, transaction: T) -> Result<T::Output> {
        self.control("savepoint job")?;
        // Its futures are ready at once: every statement runs right here.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            futures_executor::block_on(transaction.run(self))
        }));
        match outcome {
            Ok(Ok(Finish::Commit(value))) => {
                self.control("release job")?;
                Ok(value)
            }
            Ok(Ok(Finish::Rollback(value))) => {
                self.undo()?;
                Ok(value)
            }
            Ok(Err(e)) => {
                self.undo()?;
                Err(e)
            }
            Err(_) => {
                self.undo()?;
                Err(anyhow::anyhow!("a write transaction panicked; rolled back").into())
            }
        }
    }

    fn undo(&mut self) -> Result<()> {
        self.control("rollback to job")?;
        self.control("release job")
    }

    /// A savepoint statement. If it fails, the group cannot tell which writes
    /// are whose, so the whole group fails.
    fn control(&mut self, sql: &str) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(anyhow::anyhow!("{why}").into());
        }
        self.conn.execute_batch(sql).map_err(|e| {
            let why = format!("SQLite: {e}");
            self.broken = Some(why.clone());
            anyhow::anyhow!(why).into()
        })
    }

    fn usable(&self) -> Result<()> {
        match &self.broken {
            Some(why) => Err(anyhow::anyhow!("{why}").into()),
            None => Ok(()),
        }
    }

    /// Prepares `sql` (cached) and binds `$n` to `binds[n - 1]`, by name, as
    /// sqlx does: a placeholder may appear out of order or twice.
    fn bound<'c>(
        conn: &'c Connection,
        sql: &str,
        binds: &[Bind],
    ) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
        let mut stmt = conn.prepare_cached(sql)?;
        for index in 1..=stmt.parameter_count() {
            let n: usize = stmt
                .parameter_name(index)
                .and_then(|name| name.strip_prefix('$'))
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=binds.len()).contains(n))
                .ok_or_else(|| rusqlite::Error::InvalidParameterCount(index, binds.len()))?;
            match &binds[n - 1] {
                Bind::Text(v) => stmt.raw_bind_parameter(index, v)?,
                Bind::Int(v) => stmt.raw_bind_parameter(index, v)?,
                Bind::Bool(v) => stmt.raw_bind_parameter(index, i64::from(*v))?,
                Bind::NullText | Bind::NullInt => stmt.raw_bind_parameter(index, Null)?,
            }
        }
        Ok(stmt)
    }

    fn execute_now(&mut self, sql: &str, binds: &[Bind]) -> Result<u64> {
        self.usable()?;
        let mut stmt = Self::bound(&self.conn, sql, binds).map_err(sqlite_error)?;
        Ok(stmt.raw_execute().map_err(sqlite_error)? as u64)
    }

    fn fetch_rows_now(&mut self, sql: &str, binds: &[Bind]) -> Result<Vec<Row>> {
        self.usable()?;
        let mut stmt = Self::bound(&self.conn, sql, binds).map_err(sqlite_error)?;
        let names: std::sync::Arc<[String]> =
            stmt.column_names().into_iter().map(String::from).collect();
        let width = names.len();
        let mut rows = stmt.raw_query();
        let mut all = Vec::new();
        // Steps to the end, so an `insert … returning` has finished its work.
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match row.get_ref(i).map_err(sqlite_error)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Real(x) => Value::Real(x),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            all.push(Row::new(std::sync::Arc::clone(&names), values));
        }
        Ok(all)
    }
}

impl Sql for SqliteWriter {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn execute<'a>(&'a mut self, sql: &'a str, binds: Vec<Bind>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(ready(self.execute_now(sql, &binds)))
    }

    fn fetch_rows<'a>(
        &'a mut self,
        sql: &'a str,
        binds: Vec<Bind>,
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(ready(self.fetch_rows_now(sql, &binds)))
    }
}
