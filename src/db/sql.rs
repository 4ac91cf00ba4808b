//! `Sql`: the one query interface. Domain code reads and writes through
//! `&mut dyn Sql`, whatever runs the statements underneath: a pooled sqlx
//! connection for reads, a sqlx transaction on PostgreSQL, or the SQLite
//! write thread (`sqlite_writer`) inside [`Db::run`](super::Db::run).
//!
//! Rows come back as [`Row`]s of plain [`Value`]s, decoded by name with
//! [`FromRow`] (see the `from_row!` macro), so one decoder serves both
//! backends and both engines.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::{
    Any, AnyConnection, Arguments, Column, Row as _, ValueRef as _, any::AnyArguments,
    any::AnyTypeInfoKind, pool::PoolConnection,
};

use super::{Backend, Tx};
use crate::{Error, Result};

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

/// One column's value as either backend returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

/// One result row: its column names (shared by the rows of one query) and values.
#[derive(Debug, Clone)]
pub struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(names: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { names, values }
    }

    /// The value of the column named `column`.
    pub fn get<T: FromValue>(&self, column: &str) -> Result<T> {
        let index = self
            .names
            .iter()
            .position(|n| n == column)
            .ok_or_else(|| anyhow::anyhow!("no column {column} in the result"))?;
        self.decode(index)
    }

    /// The value of the column at `index` (0-based).
    pub fn at<T: FromValue>(&self, index: usize) -> Result<T> {
        if index >= self.values.len() {
            return Err(anyhow::anyhow!("no column {index} in the result").into());
        }
        self.decode(index)
    }

    fn decode<T: FromValue>(&self, index: usize) -> Result<T> {
        T::from_value(&self.values[index]).map_err(|why| {
            let name = self.names.get(index).map_or("?", String::as_str);
            anyhow::anyhow!("column {name}: {why}").into()
        })
    }
}

/// A Rust value read from one column.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> std::result::Result<Self, String>;
}

fn mismatch(expected: &str, found: &Value) -> String {
    format!("expected {expected}, found {found:?}")
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> std::result::Result<i64, String> {
        match value {
            Value::Int(n) => Ok(*n),
            Value::Bool(b) => Ok(i64::from(*b)),
            other => Err(mismatch("an integer", other)),
        }
    }
}

macro_rules! narrow_ints {
    ($($ty:ty),*) => {$(
        impl FromValue for $ty {
            fn from_value(value: &Value) -> std::result::Result<$ty, String> {
                let n = i64::from_value(value)?;
                <$ty>::try_from(n).map_err(|_| format!("{n} is out of range"))
            }
        }
    )*};
}

narrow_ints!(i32, u32, u64, usize);

impl FromValue for f64 {
    fn from_value(value: &Value) -> std::result::Result<f64, String> {
        match value {
            Value::Real(x) => Ok(*x),
            Value::Int(n) => Ok(*n as f64),
            other => Err(mismatch("a number", other)),
        }
    }
}

/// SQLite stores booleans as 0 and 1, PostgreSQL as booleans.
impl FromValue for bool {
    fn from_value(value: &Value) -> std::result::Result<bool, String> {
        match value {
            Value::Bool(b) => Ok(*b),
            Value::Int(n) => Ok(*n != 0),
            other => Err(mismatch("a boolean", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> std::result::Result<String, String> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => Err(mismatch("text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> std::result::Result<Vec<u8>, String> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(mismatch("bytes", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> std::result::Result<Option<T>, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A Rust value read from a whole row. Structs implement it with
/// `from_row!`; single values and tuples read their columns by position.
pub trait FromRow: Sized {
    fn from_row(row: &Row) -> Result<Self>;
}

macro_rules! scalar_rows {
    ($($ty:ty),*) => {$(
        impl FromRow for $ty {
            fn from_row(row: &Row) -> Result<$ty> {
                row.at(0)
            }
        }
    )*};
}

scalar_rows!(
    i64,
    i32,
    u32,
    u64,
    bool,
    f64,
    String,
    Option<i64>,
    Option<String>,
    Option<bool>
);

macro_rules! tuple_rows {
    ($(($($ty:ident $i:tt),+))*) => {$(
        impl<$($ty: FromValue),+> FromRow for ($($ty,)+) {
            fn from_row(row: &Row) -> Result<Self> {
                Ok(($(row.at::<$ty>($i)?,)+))
            }
        }
    )*};
}

tuple_rows! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
}

/// `from_row!(User { user_id, username, ... })` reads each field from the
/// column of the same name.
#[macro_export]
macro_rules! from_row {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::db::FromRow for $ty {
            fn from_row(row: &$crate::db::Row) -> $crate::Result<$ty> {
                Ok($ty { $($field: row.get(stringify!($field))?),* })
            }
        }
    };
}

/// Runs statements with `$n` placeholders, on either backend.
pub trait Sql: Send {
    fn backend(&self) -> Backend;

    /// Runs one statement; returns the number of rows it changed.
    fn execute<'a>(&'a mut self, sql: &'a str, binds: Vec<Bind>) -> BoxFuture<'a, Result<u64>>;

    /// Every row the statement returns.
    fn fetch_rows<'a>(
        &'a mut self,
        sql: &'a str,
        binds: Vec<Bind>,
    ) -> BoxFuture<'a, Result<Vec<Row>>>;
}

impl<'s> dyn Sql + 's {
    /// Every row, decoded.
    pub async fn fetch_all<T: FromRow>(&mut self, sql: &str, binds: Vec<Bind>) -> Result<Vec<T>> {
        self.fetch_rows(sql, binds)
            .await?
            .iter()
            .map(T::from_row)
            .collect()
    }

    /// The first row, if any.
    pub async fn fetch_optional<T: FromRow>(
        &mut self,
        sql: &str,
        binds: Vec<Bind>,
    ) -> Result<Option<T>> {
        match self.fetch_rows(sql, binds).await?.first() {
            Some(row) => Ok(Some(T::from_row(row)?)),
            None => Ok(None),
        }
    }

    /// The first row; no row is an error of Ladder's (a row that must exist).
    pub async fn fetch_one<T: FromRow>(&mut self, sql: &str, binds: Vec<Bind>) -> Result<T> {
        self.fetch_optional(sql, binds)
            .await?
            .ok_or_else(|| anyhow::anyhow!("expected a row from: {sql}").into())
    }

    /// The first column of the first row (`returning id`, `count(*)`, a lock
    /// that selects 1), or None for no row.
    pub async fn fetch_i64(&mut self, sql: &str, binds: Vec<Bind>) -> Result<Option<i64>> {
        self.fetch_optional::<i64>(sql, binds).await
    }

    /// The first column of every row (`update … returning id`).
    pub async fn fetch_i64s(&mut self, sql: &str, binds: Vec<Bind>) -> Result<Vec<i64>> {
        self.fetch_all::<i64>(sql, binds).await
    }
}

/// The values as sqlx arguments.
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

/// A sqlx error as Ladder's: a unique violation becomes [`Error::Duplicate`]
/// on both backends, so domain code maps it to a field error in one way.
fn sqlx_error(e: sqlx::Error) -> Error {
    Error::from(e)
}

fn values_of(row: &sqlx::any::AnyRow) -> Result<Vec<Value>> {
    let mut values = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let raw = row.try_get_raw(i).map_err(sqlx_error)?;
        if raw.is_null() {
            values.push(Value::Null);
            continue;
        }
        let kind = raw.type_info().kind();
        let value = match kind {
            AnyTypeInfoKind::Null => Value::Null,
            AnyTypeInfoKind::Bool => Value::Bool(row.try_get_unchecked(i).map_err(sqlx_error)?),
            AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                Value::Int(row.try_get_unchecked(i).map_err(sqlx_error)?)
            }
            AnyTypeInfoKind::Real => Value::Real(f64::from(
                row.try_get_unchecked::<f32, _>(i).map_err(sqlx_error)?,
            )),
            AnyTypeInfoKind::Double => Value::Real(row.try_get_unchecked(i).map_err(sqlx_error)?),
            AnyTypeInfoKind::Text => Value::Text(row.try_get_unchecked(i).map_err(sqlx_error)?),
            AnyTypeInfoKind::Blob => Value::Blob(row.try_get_unchecked(i).map_err(sqlx_error)?),
        };
        values.push(value);
    }
    Ok(values)
}

impl Sql for AnyConnection {
    fn backend(&self) -> Backend {
        backend_of(self)
    }

    fn execute<'a>(&'a mut self, sql: &'a str, binds: Vec<Bind>) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            Ok(sqlx::query_with(sql, arguments(binds)?)
                .execute(self)
                .await
                .map_err(sqlx_error)?
                .rows_affected())
        })
    }

    fn fetch_rows<'a>(
        &'a mut self,
        sql: &'a str,
        binds: Vec<Bind>,
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(async move {
            let rows = sqlx::query_with(sql, arguments(binds)?)
                .fetch_all(self)
                .await
                .map_err(sqlx_error)?;
            let Some(first) = rows.first() else {
                return Ok(Vec::new());
            };
            let names: Arc<[String]> = first
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect();
            rows.iter()
                .map(|row| Ok(Row::new(Arc::clone(&names), values_of(row)?)))
                .collect()
        })
    }
}

/// Delegates to the connection, so `&mut tx` and `&mut conn` pass as `&mut dyn Sql`.
macro_rules! sql_by_deref {
    ($ty:ty) => {
        impl Sql for $ty {
            fn backend(&self) -> Backend {
                backend_of(self)
            }

            fn execute<'a>(
                &'a mut self,
                sql: &'a str,
                binds: Vec<Bind>,
            ) -> BoxFuture<'a, Result<u64>> {
                let conn: &'a mut AnyConnection = self;
                Sql::execute(conn, sql, binds)
            }

            fn fetch_rows<'a>(
                &'a mut self,
                sql: &'a str,
                binds: Vec<Bind>,
            ) -> BoxFuture<'a, Result<Vec<Row>>> {
                let conn: &'a mut AnyConnection = self;
                Sql::fetch_rows(conn, sql, binds)
            }
        }
    };
}

sql_by_deref!(Tx);
sql_by_deref!(PoolConnection<Any>);
