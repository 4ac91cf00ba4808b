//! `Writer`: the statements of a write transaction, written once for both
//! backends and for both ways of running them.
//!
//! Most writes go through sqlx (`Conn`, `Tx`). The busiest transactions run
//! through [`Db::write`](super::Db::write) instead, which on SQLite hands the
//! whole transaction to one thread that owns a connection of its own; see
//! `sqlite_writer` for why. Code that only writes (an audit event, an outbox
//! row, a permission version) takes `&mut dyn Writer`, so it runs in either.

use futures_util::future::BoxFuture;
use sqlx::{Any, AnyConnection, Arguments, any::AnyArguments, pool::PoolConnection};

use super::{Backend, Tx};
use crate::Result;

/// One bound value. A NULL carries its type, which PostgreSQL needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Bool(bool),
    NullText,
    NullInt,
}

impl From<&str> for Bind {
    fn from(v: &str) -> Bind {
        Bind::Text(v.to_string())
    }
}

impl From<String> for Bind {
    fn from(v: String) -> Bind {
        Bind::Text(v)
    }
}

impl From<&String> for Bind {
    fn from(v: &String) -> Bind {
        Bind::Text(v.clone())
    }
}

impl From<i64> for Bind {
    fn from(v: i64) -> Bind {
        Bind::Int(v)
    }
}

impl From<bool> for Bind {
    fn from(v: bool) -> Bind {
        Bind::Bool(v)
    }
}

impl From<Option<i64>> for Bind {
    fn from(v: Option<i64>) -> Bind {
        v.map_or(Bind::NullInt, Bind::Int)
    }
}

impl From<Option<String>> for Bind {
    fn from(v: Option<String>) -> Bind {
        v.map_or(Bind::NullText, Bind::Text)
    }
}

impl From<Option<&str>> for Bind {
    fn from(v: Option<&str>) -> Bind {
        v.map_or(Bind::NullText, Bind::from)
    }
}

/// `binds![a, b, c]`: the values for `$1, $2, $3`.
#[macro_export]
macro_rules! binds {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::db::Bind::from($value)),*]
    };
}

/// Runs statements with `$n` placeholders inside a write transaction.
pub trait Writer: Send {
    fn backend(&self) -> Backend;

    /// Runs one statement; returns the number of rows it changed.
    fn execute<'a>(&'a mut self, sql: &'a str, binds: Vec<Bind>) -> BoxFuture<'a, Result<u64>>;

    /// The first column of the first row (`returning id`, `count(*)`, a lock
    /// that selects 1), or None for no row.
    fn fetch_i64<'a>(
        &'a mut self,
        sql: &'a str,
        binds: Vec<Bind>,
    ) -> BoxFuture<'a, Result<Option<i64>>>;

    /// The first column of every row (`update … returning id`).
    fn fetch_i64s<'a>(
        &'a mut self,
        sql: &'a str,
        binds: Vec<Bind>,
    ) -> BoxFuture<'a, Result<Vec<i64>>>;
}

/// How a [`Db::write`](super::Db::write) job ends its transaction.
#[derive(Debug)]
pub enum Finish<T> {
    Commit(T),
    /// Undo the writes, but the outcome is an answer, not a failure
    /// (e.g. "already decided").
    Rollback(T),
}

/// The values as sqlx arguments, for `query_with` and `query_as_with`.
pub fn arguments(binds: Vec<Bind>) -> Result<AnyArguments<'static>> {
    let mut args = AnyArguments::default();
    for b in binds {
        match b {
            Bind::Text(v) => args.add(v),
            Bind::Int(v) => args.add(v),
            Bind::Bool(v) => args.add(v),
            Bind::NullText => args.add(None::<String>),
            Bind::NullInt => args.add(None::<i64>),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

fn backend_of(conn: &AnyConnection) -> Backend {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

impl Writer for AnyConnection {
    fn backend(&self) -> Backend {
        backend_of(self)
    }

    fn execute<'a>(&'a mut self, sql: &'a str, binds: Vec<Bind>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            Ok(sqlx::query_with(sql, arguments(binds)?)
                .execute(self)
                .await?
                .rows_affected())
        })
    }

    fn fetch_i64<'a>(
        &'a mut self,
        sql: &'a str,
        binds: Vec<Bind>,
    ) -> BoxFuture<'a, Result<Option<i64>>> {
        Box::pin(async move {
            use sqlx::Row;
            let row = sqlx::query_with(sql, arguments(binds)?)
                .fetch_optional(self)
                .await?;
            Ok(match row {
                Some(row) => Some(row.try_get::<i64, _>(0)?),
                None => None,
            })
        })
    }

    fn fetch_i64s<'a>(
        &'a mut self,
        sql: &'a str,
        binds: Vec<Bind>,
    ) -> BoxFuture<'a, Result<Vec<i64>>> {
        Box::pin(async move {
            use sqlx::Row;
            let rows = sqlx::query_with(sql, arguments(binds)?)
                .fetch_all(self)
                .await?;
            Ok(rows
                .iter()
                .map(|row| row.try_get::<i64, _>(0))
                .collect::<Result<_, _>>()?)
        })
    }
}

/// Delegates to the connection, so `&mut tx` and `&mut conn` pass as writers.
macro_rules! writer_by_deref {
    ($ty:ty) => {
        impl Writer for $ty {
            fn backend(&self) -> Backend {
                backend_of(self)
            }

            fn execute<'a>(
                &'a mut self,
                sql: &'a str,
                binds: Vec<Bind>,
            ) -> BoxFuture<'a, Result<u64>> {
                let conn: &'a mut AnyConnection = self;
                Writer::execute(conn, sql, binds)
            }

            fn fetch_i64<'a>(
                &'a mut self,
                sql: &'a str,
                binds: Vec<Bind>,
            ) -> BoxFuture<'a, Result<Option<i64>>> {
                let conn: &'a mut AnyConnection = self;
                Writer::fetch_i64(conn, sql, binds)
            }

            fn fetch_i64s<'a>(
                &'a mut self,
                sql: &'a str,
                binds: Vec<Bind>,
            ) -> BoxFuture<'a, Result<Vec<i64>>> {
                let conn: &'a mut AnyConnection = self;
                Writer::fetch_i64s(conn, sql, binds)
            }
        }
    };
}

writer_by_deref!(Tx);
writer_by_deref!(PoolConnection<Any>);
