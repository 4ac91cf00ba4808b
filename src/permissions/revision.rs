//! Revisions: one counter for every change to who holds what, and the
//! in-memory view that `consistency=cached` checks are answered from.
//!
//! Every change that can alter someone's permissions (or their tokens)
//! advances `revisions.revision` in its own transaction and records what it
//! touched in `revision_changes`. The counter row is locked until commit, so
//! revisions commit in order and the log has no holes. A write answers with
//! the revision it committed; a check given `at_least=REV` can be answered
//! from memory once this process has seen REV, and reads the database
//! otherwise.
//!
//! [`Live`] is that memory. A watcher task reads the log after every commit
//! in this process (at once), after a PostgreSQL `NOTIFY` from another
//! instance (milliseconds), and every `POLL` in any case (the CLI on SQLite,
//! or a lost notification), and drops exactly the users each change touched.
//! So a cached answer is at most one poll behind a change made by another
//! process, and is never used while the watcher is not running.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use foldhash::HashMap;

use super::{EffectivePermissions, effective};
use crate::{
    Result, binds,
    db::{Backend, Db, Finish, Sql, Transaction},
};

/// How often the watcher reads the log even without a signal.
pub const POLL: Duration = Duration::from_millis(100);

/// The PostgreSQL channel that tells other instances to read the log.
const CHANNEL: &str = "ladder_revisions";

/// Records a change to `user` (or to everyone, for `None`) and returns its
/// revision. Call it in the transaction that makes the change.
pub async fn advance(sql: &mut dyn Sql, user: Option<i64>) -> Result<i64> {
    let revision: i64 = sql
        .fetch_one(
            "update revisions set revision = revision + 1 where revision_id = 1 returning revision",
            binds![],
        )
        .await?;
    sql.execute(
        "insert into revision_changes (revision, user_id) values ($1, $2)",
        binds![revision, user],
    )
    .await?;
    if sql.backend() == Backend::Postgres {
        // Delivered at commit, in commit order, to every listening instance.
        sql.execute(&format!("notify {CHANNEL}"), binds![]).await?;
    }
    Ok(revision)
}

/// The last committed revision.
pub async fn current(sql: &mut dyn Sql) -> Result<i64> {
    sql.fetch_one(
        "select revision from revisions where revision_id = 1",
        binds![],
    )
    .await
}

/// Runs a write and answers, with its outcome, the revision as of its
/// commit: the one it committed if it advanced the counter, else the latest
/// committed before it. Read in the write's own transaction, so a check
/// `at_least` that revision sees the write. What the CLI's `--json` and
/// the API's write answers report as `revision`.
pub struct WithRevision<T>(pub T);

impl<T: Transaction> Transaction for WithRevision<T> {
    type Output = (T::Output, i64);

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<(T::Output, i64)>> {
        Ok(match self.0.run(sql).await? {
            Finish::Commit(value) => Finish::Commit((value, current(sql).await?)),
            Finish::Rollback(value) => Finish::Rollback((value, current(sql).await?)),
        })
    }
}

/// The last committed revision, read the cheapest way this database allows
/// (on a SQLite file, on the calling thread with no pooled connection).
pub async fn latest(db: &Db) -> Result<i64> {
    let here = db.read_sqlite_here(|conn| {
        conn.prepare_cached("select revision from revisions where revision_id = 1")?
            .query_row([], |row| row.get(0))
    });
    match here {
        Some(read) => read,
        None => current(&mut db.acquire().await?).await,
    }
}

/// A token as the cached path knows it (see `accounts::tokens`).
#[derive(Clone, Debug)]
pub struct CachedToken {
    pub token_id: i64,
    /// The owner as read with the token: usernames never change, and a
    /// change to the account's flags drops every cached token.
    pub user: Arc<crate::accounts::User>,
    pub name: Arc<str>,
    pub scope: Option<Arc<Vec<String>>>,
    pub expires_at: Option<i64>,
}

// foldhash, not SipHash: a batch of checks makes thousands of lookups, and
// the keys are usernames of existing accounts and token digests.
#[derive(Default)]
struct Memory {
    /// username key → user id (usernames never change).
    names: HashMap<String, i64>,
    users: HashMap<i64, Arc<EffectivePermissions>>,
    /// the token's SHA-256 (`accounts::tokens::digest`) → token.
    tokens: HashMap<[u8; 32], CachedToken>,
}

/// This process's memory of permissions, kept current by the watcher.
pub struct Live {
    capacity: usize,
    memory: RwLock<Memory>,
    /// The last revision the watcher has applied.
    seen: AtomicI64,
    /// Bumped whenever anything is dropped, so a load that raced a change is
    /// not stored (it may hold what the change removed).
    generation: AtomicU64,
    watching: AtomicBool,
    started: AtomicBool,
}

impl Live {
    pub fn new(capacity: usize) -> Live {
        Live {
            capacity,
            memory: RwLock::default(),
            seen: AtomicI64::new(-1),
            generation: AtomicU64::new(0),
            watching: AtomicBool::new(false),
            started: AtomicBool::new(false),
        }
    }

    /// The revision this memory reflects; `None` while nobody watches.
    pub fn seen(&self) -> Option<i64> {
        self.watching
            .load(Ordering::Acquire)
            .then(|| self.seen.load(Ordering::Acquire))
    }

    /// True when this memory has seen `revision` (and is being kept current).
    pub fn has_seen(&self, revision: i64) -> bool {
        self.seen().is_some_and(|seen| seen >= revision)
    }

    /// Starts the watcher once; later calls do nothing. It stops when the
    /// last handle to this memory is dropped.
    pub fn start(self: &Arc<Self>, db: &Db, postgres_url: Option<String>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let live = Arc::downgrade(self);
        let db = db.clone();
        tokio::spawn(watch(live, db, postgres_url));
    }

    /// Applies every change since `seen`.
    async fn catch_up(&self, db: &Db) -> Result<()> {
        let mut conn = db.acquire().await?;
        let seen = self.seen.load(Ordering::Acquire);
        if seen < 0 {
            let now = current(&mut conn).await?;
            self.forget_all();
            self.seen.store(now, Ordering::Release);
            return Ok(());
        }
        let changes: Vec<(i64, Option<i64>)> = conn_sql(&mut conn)
            .fetch_all(
                "select revision, user_id from revision_changes where revision > $1 \
                 order by revision limit 10000",
                binds![seen],
            )
            .await?;
        let Some(&(last, _)) = changes.last() else {
            return Ok(());
        };
        let contiguous = changes.first().is_some_and(|(r, _)| *r == seen + 1)
            && last - seen == changes.len() as i64;
        if !contiguous || changes.iter().any(|(_, user)| user.is_none()) {
            self.forget_all();
        } else {
            self.forget_users(changes.iter().filter_map(|(_, u)| *u));
        }
        self.seen.store(last, Ordering::Release);
        Ok(())
    }

    fn forget_all(&self) {
        let mut memory = self.memory.write().expect("live memory");
        self.generation.fetch_add(1, Ordering::AcqRel);
        *memory = Memory::default();
    }

    fn forget_users(&self, users: impl Iterator<Item = i64>) {
        let mut memory = self.memory.write().expect("live memory");
        self.generation.fetch_add(1, Ordering::AcqRel);
        for user in users {
            memory.users.remove(&user);
            memory.tokens.retain(|_, t| t.user.user_id != user);
        }
    }

    /// The moment a load starts; pass it to the matching `remember_*`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn user_id(&self, username_key: &str) -> Option<i64> {
        let memory = self.memory.read().expect("live memory");
        memory.names.get(username_key).copied()
    }

    pub fn permissions(&self, user_id: i64) -> Option<Arc<EffectivePermissions>> {
        let memory = self.memory.read().expect("live memory");
        memory.users.get(&user_id).cloned()
    }

    pub fn token(&self, digest: &[u8; 32]) -> Option<CachedToken> {
        let memory = self.memory.read().expect("live memory");
        memory.tokens.get(digest).cloned()
    }

    pub fn remember_name(&self, username_key: String, user_id: i64) {
        let mut memory = self.memory.write().expect("live memory");
        if memory.names.len() >= self.capacity {
            memory.names.clear();
        }
        memory.names.insert(username_key, user_id);
    }

    /// Stores what was loaded since `generation`, unless something changed meanwhile.
    pub fn remember_permissions(&self, generation: u64, perms: Arc<EffectivePermissions>) {
        let mut memory = self.memory.write().expect("live memory");
        if self.generation() != generation || self.capacity == 0 {
            return;
        }
        if memory.users.len() >= self.capacity {
            memory.users.clear();
        }
        memory.users.insert(perms.user_id, perms);
    }

    pub fn remember_token(&self, generation: u64, digest: [u8; 32], token: CachedToken) {
        let mut memory = self.memory.write().expect("live memory");
        if self.generation() != generation || self.capacity == 0 {
            return;
        }
        if memory.tokens.len() >= self.capacity {
            memory.tokens.clear();
        }
        memory.tokens.insert(digest, token);
    }

    /// A user's permissions from memory, or loaded and remembered.
    pub async fn load_permissions(
        &self,
        sql: &mut dyn Sql,
        user_id: i64,
    ) -> Result<Arc<EffectivePermissions>> {
        if let Some(hit) = self.permissions(user_id) {
            return Ok(hit);
        }
        let generation = self.generation();
        let loaded = Arc::new(effective::load(sql, user_id).await?);
        self.remember_permissions(generation, loaded.clone());
        Ok(loaded)
    }
}

async fn watch(live: std::sync::Weak<Live>, db: Db, postgres_url: Option<String>) {
    let mut listener = match &postgres_url {
        Some(url) => listen(url).await,
        None => None,
    };
    let mut commits = db.commits();
    loop {
        let Some(me) = live.upgrade() else { return };
        match me.catch_up(&db).await {
            Ok(()) => me.watching.store(true, Ordering::Release),
            Err(e) => {
                // Until the log can be read again, nothing is answered from memory.
                me.watching.store(false, Ordering::Release);
                tracing::warn!(error = %e, "revision watcher: cannot read the change log");
            }
        }
        drop(me);
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = commits.changed() => {}
            ok = notified => if !ok {
                // The listener reconnects on its next recv; the poll covers the gap.
                tokio::time::sleep(POLL).await;
            },
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

fn conn_sql(conn: &mut sqlx::pool::PoolConnection<sqlx::Any>) -> &mut dyn Sql {
    conn
}

async fn listen(url: &str) -> Option<sqlx::postgres::PgListener> {
    let mut listener = match sqlx::postgres::PgListener::connect(url).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "revision watcher: cannot LISTEN; polling only");
            return None;
        }
    };
    match listener.listen(CHANNEL).await {
        Ok(()) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "revision watcher: cannot LISTEN; polling only");
            None
        }
    }
}
