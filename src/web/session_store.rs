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
    Result, binds,
    clock::Clock,
    db::{Db, Finish, Sql, Transaction},
};

/// Times in the table are on Ladder's clock (`Clock`), so a test that moves
/// the clock moves session expiry with it. tower-sessions computes a record's
/// expiry from the system time; the store shifts it by the clock's offset on
/// the way in and back on the way out.
#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
    clock: Clock,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessionStore")
    }
}

impl DbSessionStore {
    pub fn new(db: Db, clock: Clock) -> DbSessionStore {
        DbSessionStore { db, clock }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A record's expiry (system time) on Ladder's clock.
    fn expires_at(&self, record: &Record) -> i64 {
        record.expiry_date.unix_timestamp() + self.clock.offset()
    }
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// A new session under a fresh id; answers the id it was stored under.
pub struct CreateSession {
    pub id: Id,
    pub data: String,
    pub expires_at: i64,
    pub now: i64,
}

impl Transaction for CreateSession {
    type Output = Id;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Id>> {
        let mut id = self.id;
        // Ids are random; on the rare collision pick another rather than overwrite.
        loop {
            let inserted = sql
                .execute(
                    "insert into sessions (session_id, data, expires_at, created_at) \
                     values ($1, $2, $3, $4) on conflict (session_id) do nothing",
                    binds![id.to_string(), &self.data, self.expires_at, self.now],
                )
                .await?;
            if inserted == 1 {
                return Ok(Finish::Commit(id));
            }
            id = Id::default();
        }
    }
}

/// A session's data and expiry, stored (created if it is gone).
pub struct SaveSession {
    pub id: Id,
    pub data: String,
    pub expires_at: i64,
    pub now: i64,
}

impl Transaction for SaveSession {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        sql.execute(
            "insert into sessions (session_id, data, expires_at, created_at) values ($1, $2, $3, $4) \
             on conflict (session_id) do update set data = excluded.data, expires_at = excluded.expires_at",
            binds![self.id.to_string(), self.data, self.expires_at, self.now],
        )
        .await?;
        Ok(Finish::Commit(()))
    }
}

/// Ends a session.
pub struct DeleteSession {
    pub id: Id,
}

impl Transaction for DeleteSession {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        sql.execute(
            "delete from sessions where session_id = $1",
            binds![self.id.to_string()],
        )
        .await?;
        Ok(Finish::Commit(()))
    }
}

/// Deletes the sessions expired by `now`; answers how many went.
pub struct DeleteExpiredSessions {
    pub now: i64,
}

impl Transaction for DeleteExpiredSessions {
    type Output = u64;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<u64>> {
        Ok(Finish::Commit(delete_expired(sql, self.now).await?))
    }
}

async fn delete_expired(sql: &mut dyn Sql, now: i64) -> Result<u64> {
    sql.execute("delete from sessions where expires_at <= $1", binds![now])
        .await
}

/// Deletes expired sessions and sign-in attempts older than an hour (the
/// limit looks back one minute); the `sessions` job runs it. Answers how
/// many of each went.
pub struct SweepSessions {
    pub now: i64,
}

impl Transaction for SweepSessions {
    type Output = (u64, u64);

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<(u64, u64)>> {
        let sessions = delete_expired(sql, self.now).await?;
        let attempts = sql
            .execute(
                "delete from login_attempts where created_at < $1",
                binds![self.now - 3600],
            )
            .await?;
        Ok(Finish::Commit((sessions, attempts)))
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let create = CreateSession {
            id: record.id,
            data: serde_json::to_string(&record.data).map_err(backend)?,
            expires_at: self.expires_at(record),
            now: self.now(),
        };
        record.id = self.db.run(create).await.map_err(backend)?;
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let save = SaveSession {
            id: record.id,
            data: serde_json::to_string(&record.data).map_err(backend)?,
            expires_at: self.expires_at(record),
            now: self.now(),
        };
        self.db.run(save).await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut conn = self.db.acquire().await.map_err(backend)?;
        let sql: &mut dyn Sql = &mut conn;
        let row: Option<(String, i64)> = sql
            .fetch_optional(
                "select data, expires_at from sessions where session_id = $1 and expires_at > $2",
                binds![id.to_string(), self.now()],
            )
            .await
            .map_err(backend)?;
        drop(conn);
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_str(&data).map_err(backend)?,
            expiry_date: OffsetDateTime::from_unix_timestamp(expires_at - self.clock.offset())
                .map_err(backend)?,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.db
            .run(DeleteSession { id: *id })
            .await
            .map_err(backend)
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        let now = self.now();
        self.db
            .run(DeleteExpiredSessions { now })
            .await
            .map_err(backend)?;
        Ok(())
    }
}
