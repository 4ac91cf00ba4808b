//! Reads of a SQLite file on the calling thread, without sqlx.
//!
//! Through sqlx each statement is a round trip to a connection's worker
//! thread (see `sqlite_writer`). The hottest read Ladder makes, the revision
//! counter behind every full-consistency permission check, is one row: here
//! it is read through a connection kept per thread and per file, in a few
//! microseconds, with no thread hop. WAL readers never wait for the writer.

use std::{
    cell::RefCell,
    collections::HashMap,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OpenFlags};

use crate::{Error, Result};

/// Files open on one thread at most (tests open many databases).
const FILES_PER_THREAD: usize = 8;

thread_local! {
    static READERS: RefCell<HashMap<PathBuf, Connection>> = RefCell::new(HashMap::new());
}

/// Runs `read` on this thread's connection to `path`.
pub(super) fn read<T>(
    path: &Path,
    read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T> {
    READERS.with(|readers| {
        let mut readers = readers.borrow_mut();
        if !readers.contains_key(path) {
            if readers.len() >= FILES_PER_THREAD {
                readers.clear();
            }
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .and_then(|conn| {
                conn.execute_batch("pragma busy_timeout = 5000; pragma query_only = on;")?;
                Ok(conn)
            })
            .map_err(unexpected)?;
            readers.insert(path.to_path_buf(), conn);
        }
        let conn = readers.get(path).expect("just opened");
        read(conn).map_err(unexpected)
    })
}

fn unexpected(e: rusqlite::Error) -> Error {
    Error::Unexpected(anyhow::anyhow!("reading the SQLite file: {e}"))
}
