//! `Transaction`: a write transaction as a named value that owns its data
//! (`Approve { request, approver, comment }`), run by [`Db::run`](super::Db::run),
//! the one way Ladder writes.

use std::future::Future;

use super::Sql;
use crate::Result;

/// A write transaction. `run` does its reads, checks and writes through
/// `sql` and says how to end: commit, or roll back with an answer. An error
/// (or a panic) rolls back too.
///
/// On a SQLite file `run` executes on the write thread, so it must await
/// nothing but `sql`'s calls.
pub trait Transaction: Send + 'static {
    type Output: Send + 'static;

    fn run(self, sql: &mut dyn Sql) -> impl Future<Output = Result<Finish<Self::Output>>> + Send;
}

/// How a transaction ends.
#[derive(Debug)]
pub enum Finish<T> {
    Commit(T),
    /// Undo the writes, but the outcome is an answer, not a failure
    /// (e.g. "already decided").
    Rollback(T),
}
