//! Granting and revoking permissions, for users and for groups. Each call
//! authorises the actor, changes the rows, bumps the epoch and writes one
//! audit event, all in the caller's transaction. `ChangePermissions` is
//! one grant or revocation as a transaction of its own.

use serde_json::json;

use super::{PermissionName, catalog, delegation::Change};
use crate::{
    Result,
    accounts::{
        Group, User,
        groups::GroupRef,
        users::{self},
    },
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    db::{Finish, Sql, Transaction},
};

/// Whom a grant is for.
pub enum Grantee<'a> {
    User(&'a User),
    Group(&'a Group),
}

/// Whom a grant is for, as the caller names them.
pub enum HolderRef {
    /// By username.
    User(String),
    Group(GroupRef),
}

/// Whom a grant was for, as read in its transaction.
pub enum Holder {
    User(User),
    Group(Group),
}

impl Holder {
    pub fn grantee(&self) -> Grantee<'_> {
        match self {
            Holder::User(u) => Grantee::User(u),
            Holder::Group(g) => Grantee::Group(g),
        }
    }
}

/// Grants (`grant`) or revokes `perms`, directly to a user or to a group.
pub struct ChangePermissions {
    pub actor: Actor,
    pub holder: HolderRef,
    pub perms: Vec<PermissionName>,
    pub grant: bool,
    pub now: i64,
}

impl Transaction for ChangePermissions {
    /// The holder, and the permissions that changed.
    type Output = (Holder, Vec<PermissionName>);

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Self::Output>> {
        let holder = match &self.holder {
            HolderRef::User(name) => Holder::User(users::get_by_username(sql, name).await?),
            HolderRef::Group(group) => Holder::Group(group.get(sql).await?),
        };
        let grantee = holder.grantee();
        let changed = change(sql, &self.actor, grantee, &self.perms, self.grant, self.now).await?;
        Ok(Finish::Commit((holder, changed)))
    }
}

/// Grants `perms`; returns the ones that were not already held directly.
pub async fn grant(
    sql: &mut dyn Sql,
    actor: &Actor,
    grantee: Grantee<'_>,
    perms: &[PermissionName],
    now: i64,
) -> Result<Vec<PermissionName>> {
    change(sql, actor, grantee, perms, true, now).await
}

/// Revokes `perms`; returns the ones that were actually held directly.
pub async fn revoke(
    sql: &mut dyn Sql,
    actor: &Actor,
    grantee: Grantee<'_>,
    perms: &[PermissionName],
    now: i64,
) -> Result<Vec<PermissionName>> {
    change(sql, actor, grantee, perms, false, now).await
}

async fn change(
    sql: &mut dyn Sql,
    actor: &Actor,
    grantee: Grantee<'_>,
    perms: &[PermissionName],
    grant: bool,
    now: i64,
) -> Result<Vec<PermissionName>> {
    let rows = catalog::resolve(sql, perms).await?;
    let actor_perms = actor.permissions(sql).await?;
    let check = match &grantee {
        Grantee::User(target) => Change::UserPerms { target, perms },
        Grantee::Group(group) => Change::GroupPerms {
            group: &group.name,
            perms,
        },
    };
    super::delegation::authorize(&actor_perms, &check)?;

    let (table, key, id) = match &grantee {
        Grantee::User(u) => ("user_permissions", "user_id", u.user_id),
        Grantee::Group(g) => ("group_permissions", "group_id", g.group_id),
    };
    let insert = format!(
        "insert into {table} ({key}, permission_id, created_at) values ($1, $2, $3) \
         on conflict do nothing"
    );
    let delete = format!("delete from {table} where {key} = $1 and permission_id = $2");
    let mut changed = Vec::new();
    for row in &rows {
        let affected = if grant {
            sql.execute(&insert, binds![id, row.permission_id, now])
                .await?
        } else {
            sql.execute(&delete, binds![id, row.permission_id]).await?
        };
        if affected > 0 {
            changed.push(row.name());
        }
    }
    if changed.is_empty() {
        return Ok(changed);
    }
    // A track's approvers must keep holding what approval grants.
    if let Grantee::Group(g) = &grantee {
        crate::promotions::track::check_rules_for_group(sql, g.group_id).await?;
    }
    // A user's own grants concern only them; a group's reach its members.
    match &grantee {
        Grantee::User(u) => super::bump_user(sql, u.user_id).await?,
        Grantee::Group(_) => super::bump_epoch(sql).await?,
    }
    let names: Vec<&str> = changed.iter().map(PermissionName::as_str).collect();
    let action = if grant {
        "permission.grant"
    } else {
        "permission.revoke"
    };
    let entry = match &grantee {
        Grantee::User(u) => AuditEntry::user(action, u),
        Grantee::Group(g) => AuditEntry::group(action, g),
    };
    let entry = entry
        .before(json!({ "permissions": names, "held": !grant }))
        .after(json!({ "permissions": names, "held": grant }));
    audit::record(sql, actor, entry, now).await?;
    Ok(changed)
}
