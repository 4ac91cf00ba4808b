//! A per-process cache of effective permissions that never outlives a change.
//!
//! Two counters are bumped in the same transaction as a change: a change that
//! can reach many users (a group's permissions, a deleted group) bumps the
//! global `permission_epoch.version`; a change to one user (their groups,
//! their direct permissions) bumps that user's `users.perm_version`. A check
//! reads both in one indexed read and trusts an entry only if both are
//! unchanged since it was stored; a new epoch drops the whole cache. Because
//! the counters are read *before* the permissions are loaded, an entry can be
//! older than its tags only in the safe direction: a commit that lands in
//! between bumps a counter, and the next check reloads. So a revocation
//! committed by any process on the same database is seen by the very next
//! check in every process, and one promotion no longer makes every process
//! reload everyone's permissions.
//!
//! Within one request (or one CLI command), read the counter once with
//! `snapshot` and answer all the request's checks from that snapshot in memory.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::{EffectivePermissions, effective};
use crate::{Result, db::Sql};

pub struct PermissionCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    epoch: i64,
    /// user id → (their perm_version when loaded, their permissions).
    entries: HashMap<i64, (Option<i64>, Arc<EffectivePermissions>)>,
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
        sql: &mut dyn Sql,
        user_id: i64,
    ) -> Result<Arc<EffectivePermissions>> {
        let (epoch, version) = super::current_versions(sql, user_id).await?;
        self.snapshot_at(sql, user_id, epoch, version).await
    }

    /// As `snapshot`, with the versions just read by the caller (with the user).
    pub async fn snapshot_at(
        &self,
        sql: &mut dyn Sql,
        user_id: i64,
        epoch: i64,
        version: Option<i64>,
    ) -> Result<Arc<EffectivePermissions>> {
        if let Some(hit) = self.get(epoch, version, user_id) {
            return Ok(hit);
        }
        let loaded = Arc::new(effective::load(sql, user_id).await?);
        self.put(epoch, version, loaded.clone());
        Ok(loaded)
    }

    /// Convenience for a single check.
    pub async fn has_perm(&self, sql: &mut dyn Sql, user_id: i64, perm: &str) -> Result<bool> {
        Ok(self.snapshot(sql, user_id).await?.has_perm(perm))
    }

    fn get(
        &self,
        epoch: i64,
        version: Option<i64>,
        user_id: i64,
    ) -> Option<Arc<EffectivePermissions>> {
        let mut inner = self.inner.lock().expect("cache lock");
        if inner.epoch != epoch {
            inner.entries.clear();
            inner.epoch = epoch;
            return None;
        }
        inner
            .entries
            .get(&user_id)
            .filter(|(v, _)| *v == version)
            .map(|(_, perms)| perms.clone())
    }

    fn put(&self, epoch: i64, version: Option<i64>, perms: Arc<EffectivePermissions>) {
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
        inner.entries.insert(perms.user_id, (version, perms));
    }

    pub fn len(&self) -> usize {
        self.inner.lock().expect("cache lock").entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
