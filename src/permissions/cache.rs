//! A per-process cache of effective permissions that never outlives a change.
//!
//! Every change that can alter anyone's permissions bumps a single counter,
//! `permission_epoch.version`, in the same transaction as the change. A check
//! reads the counter first (one indexed single-row read) and trusts the cache
//! only if the counter is unchanged since the entry was stored; otherwise the
//! whole cache is dropped. Because the counter is read *before* the permissions
//! are loaded, an entry can be older than its tag only in the safe direction:
//! a commit that lands in between bumps the counter, and the next check reloads.
//! So a revocation committed by any process on the same database is seen by the
//! very next check in every process.
//!
//! Within one request (or one CLI command), read the counter once with
//! `snapshot` and answer all the request's checks from that snapshot in memory.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::{EffectivePermissions, effective};
use crate::{Result, db::Conn};

pub struct PermissionCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    epoch: i64,
    entries: HashMap<i64, Arc<EffectivePermissions>>,
}

impl PermissionCache {
    /// `capacity` users at most; 0 disables caching (every check loads).
    pub fn new(capacity: usize) -> PermissionCache {
        PermissionCache {
            capacity,
            inner: Mutex::new(Inner {
                epoch: -1,
                entries: HashMap::new(),
            }),
        }
    }

    /// The user's current effective permissions: from memory when the epoch
    /// is unchanged, from the database otherwise.
    pub async fn snapshot(
        &self,
        conn: &mut Conn,
        user_id: i64,
    ) -> Result<Arc<EffectivePermissions>> {
        let epoch = super::current_epoch(conn).await?;
        if let Some(hit) = self.get(epoch, user_id) {
            return Ok(hit);
        }
        let loaded = Arc::new(effective::load(conn, user_id).await?);
        self.put(epoch, loaded.clone());
        Ok(loaded)
    }

    /// Convenience for a single check.
    pub async fn has_perm(&self, conn: &mut Conn, user_id: i64, perm: &str) -> Result<bool> {
        Ok(self.snapshot(conn, user_id).await?.has_perm(perm))
    }

    fn get(&self, epoch: i64, user_id: i64) -> Option<Arc<EffectivePermissions>> {
        let mut inner = self.inner.lock().expect("cache lock");
        if inner.epoch != epoch {
            inner.entries.clear();
            inner.epoch = epoch;
            return None;
        }
        inner.entries.get(&user_id).cloned()
    }

    fn put(&self, epoch: i64, perms: Arc<EffectivePermissions>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().expect("cache lock");
        // A newer epoch was seen meanwhile: this entry may be stale, drop it.
        if inner.epoch != epoch {
            return;
        }
        if inner.entries.len() >= self.capacity {
            inner.entries.clear();
        }
        inner.entries.insert(perms.user_id, perms);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().expect("cache lock").entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
