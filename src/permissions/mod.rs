//! The permission core: names, the catalog, effective permissions, the cache
//! that serves checks, the delegation rules and the audited grants.

pub mod cache;
pub mod catalog;
pub mod check;
pub mod checklist;
pub mod delegation;
pub mod effective;
pub mod grants;
pub mod listing;
mod name;
pub mod revision;

pub use cache::PermissionCache;
pub use effective::{Denial, EffectivePermissions, Explanation, Via};
pub use name::PermissionName;

use crate::{Result, binds, db::Sql};

/// Marks that someone's effective permissions may have changed. Call it in the
/// transaction that makes the change; see `cache` for why this is enough.
pub async fn bump_epoch(sql: &mut dyn Sql) -> Result<()> {
    sql.execute(
        "update permission_epoch set version = version + 1 where permission_epoch_id = 1",
        binds![],
    )
    .await?;
    revision::advance(sql, None).await?;
    Ok(())
}

/// Marks that one user's effective permissions may have changed (their
/// groups or direct permissions), in the transaction that makes the change.
pub async fn bump_user(sql: &mut dyn Sql, user_id: i64) -> Result<()> {
    sql.execute(
        "update users set perm_version = perm_version + 1 where user_id = $1",
        binds![user_id],
    )
    .await?;
    revision::advance(sql, Some(user_id)).await?;
    Ok(())
}

pub async fn current_epoch(sql: &mut dyn Sql) -> Result<i64> {
    sql.fetch_one(
        "select version from permission_epoch where permission_epoch_id = 1",
        binds![],
    )
    .await
}

/// The global epoch and `user_id`'s own version (None for no such user), in one read.
pub async fn current_versions(sql: &mut dyn Sql, user_id: i64) -> Result<(i64, Option<i64>)> {
    sql.fetch_one(
        "select e.version, u.perm_version from permission_epoch e \
         left join users u on u.user_id = $1 where e.permission_epoch_id = 1",
        binds![user_id],
    )
    .await
}
