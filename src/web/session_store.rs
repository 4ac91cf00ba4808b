//! Sessions kept in Ladder's own database (SQLite or PostgreSQL), so any
//! instance can serve any session and a restart signs nobody out.

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{self, ExpiredDeletion},
};

use crate::{
    Result,
    db::{Conn, Db},
};

#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessionStore")
    }
}

impl DbSessionStore {
    pub fn new(db: Db) -> DbSessionStore {
        DbSessionStore { db }
    }
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut conn = self.db.write_conn().await.map_err(backend)?;
        // Ids are random; on the rare collision pick another rather than overwrite.
        loop {
            let data = serde_json::to_string(&record.data).map_err(backend)?;
            let inserted = sqlx::query(
                "insert into sessions (session_id, data, expires_at, created_at) \
                 values ($1, $2, $3, $4) on conflict (session_id) do nothing",
            )
            .bind(record.id.to_string())
            .bind(data)
            .bind(record.expiry_date.unix_timestamp())
            .bind(now())
            .execute(&mut *conn)
            .await
            .map_err(backend)?
            .rows_affected();
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = serde_json::to_string(&record.data).map_err(backend)?;
        let mut conn = self.db.write_conn().await.map_err(backend)?;
        sqlx::query(
            "insert into sessions (session_id, data, expires_at, created_at) values ($1, $2, $3, $4) \
             on conflict (session_id) do update set data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(record.id.to_string())
        .bind(data)
        .bind(record.expiry_date.unix_timestamp())
        .bind(now())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "select data, expires_at from sessions where session_id = $1 and expires_at > $2",
        )
        .bind(id.to_string())
        .bind(now())
        .fetch_optional(self.db.pool())
        .await
        .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_str(&data).map_err(backend)?,
            expiry_date: OffsetDateTime::from_unix_timestamp(expires_at).map_err(backend)?,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut conn = self.db.write_conn().await.map_err(backend)?;
        sqlx::query("delete from sessions where session_id = $1")
            .bind(id.to_string())
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        let mut conn = self.db.write_conn().await.map_err(backend)?;
        sqlx::query("delete from sessions where expires_at <= $1")
            .bind(now())
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// Deletes expired sessions and sign-in attempts older than an hour (the
/// limit looks back one minute); the `sessions` job runs it. Answers how
/// many of each went.
pub async fn sweep(conn: &mut Conn, now: i64) -> Result<(u64, u64)> {
    let sessions = sqlx::query("delete from sessions where expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let attempts = sqlx::query("delete from login_attempts where created_at < $1")
        .bind(now - 3600)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok((sessions, attempts))
}
