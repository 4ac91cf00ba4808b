//! The groups table and group membership; a promotion's membership is in
//! `promotion_grant`.

use std::fmt;

use serde_json::json;
use sqlx::FromRow;

use super::User;
use crate::{
    Error, Result,
    actor::{Actor, ActorPermissions},
    audit::{self, AuditEntry},
    db::{Conn, Writer},
    permissions::{self, PermissionName, delegation::Change},
};

/// 1–150 characters, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(raw: &str) -> Result<GroupName> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid("group", "name must not be empty"));
        }
        if trimmed.chars().count() > 150 {
            return Err(Error::invalid(
                "group",
                "name must be at most 150 characters",
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Error::invalid(
                "group",
                "name must not contain control characters",
            ));
        }
        Ok(GroupName(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct Group {
    pub group_id: i64,
    pub name: String,
    pub created_at: i64,
}

/// A group with its member count, for listings.
#[derive(Debug, Clone, FromRow)]
pub struct GroupSummary {
    pub group_id: i64,
    pub name: String,
    pub members: i64,
    pub permissions: i64,
}

pub async fn find_by_name(conn: &mut Conn, name: &str) -> Result<Option<Group>> {
    Ok(
        sqlx::query_as("select group_id, name, created_at from groups where name = $1")
            .bind(name.trim())
            .fetch_optional(conn)
            .await?,
    )
}

/// The group named `name`, created (with no permissions) when there is none;
/// the flag says whether it was created.
pub async fn find_or_create(
    conn: &mut Conn,
    actor: &Actor,
    name: &str,
    now: i64,
) -> Result<(Group, bool)> {
    if let Some(group) = find_by_name(conn, name).await? {
        return Ok((group, false));
    }
    Ok((
        create(conn, actor, &GroupName::parse(name)?, now).await?,
        true,
    ))
}

pub async fn get_by_name(conn: &mut Conn, name: &str) -> Result<Group> {
    find_by_name(conn, name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("group {:?}", name.trim())))
}

pub async fn list(conn: &mut Conn) -> Result<Vec<GroupSummary>> {
    Ok(sqlx::query_as(
        "select g.group_id, g.name, \
           (select count(*) from user_groups ug where ug.group_id = g.group_id) as members, \
           (select count(*) from group_permissions gp where gp.group_id = g.group_id) as permissions \
         from groups g order by g.name",
    )
    .fetch_all(conn)
    .await?)
}

/// Every group's name, sorted; cheap enough for every page (no member counts).
pub async fn names(conn: &mut Conn) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("select name from groups order by name")
        .fetch_all(conn)
        .await?)
}

/// Usernames of the group's members, sorted.
pub async fn member_names(conn: &mut Conn, group_id: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select u.username from user_groups ug join users u on u.user_id = ug.user_id \
         where ug.group_id = $1 order by u.username_key",
    )
    .bind(group_id)
    .fetch_all(conn)
    .await?)
}

pub async fn is_member(conn: &mut Conn, user_id: i64, group_id: i64) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("select 1 from user_groups where user_id = $1 and group_id = $2")
            .bind(user_id)
            .bind(group_id)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Creates a group; needs `auth.add_group`. A duplicate name is a conflict.
pub async fn create(conn: &mut Conn, actor: &Actor, name: &GroupName, now: i64) -> Result<Group> {
    let actor_perms = actor.permissions(conn).await?;
    permissions::delegation::authorize(&actor_perms, &Change::CreateGroup)?;
    let group: Group = sqlx::query_as(
        "insert into groups (name, created_at) values ($1, $2) returning group_id, name, created_at",
    )
    .bind(name.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| {
        Error::from(e).on_duplicate(|| Error::Conflict(format!("group {:?} already exists", name.as_str())))
    })?;
    audit::record(
        conn,
        actor,
        AuditEntry::group("group.create", &group).after(json!({ "name": group.name })),
        now,
    )
    .await?;
    Ok(group)
}

pub async fn find_by_id(conn: &mut Conn, group_id: i64) -> Result<Option<Group>> {
    Ok(
        sqlx::query_as("select group_id, name, created_at from groups where group_id = $1")
            .bind(group_id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn get_by_id(conn: &mut Conn, group_id: i64) -> Result<Group> {
    find_by_id(conn, group_id)
        .await?
        .ok_or_else(|| Error::NotFound("That group".into()))
}

pub async fn member_count(conn: &mut Conn, group_id: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from user_groups where group_id = $1")
            .bind(group_id)
            .fetch_one(conn)
            .await?,
    )
}

/// Members whose username contains `search` (all when empty), by username, at most `limit`.
pub async fn members(
    conn: &mut Conn,
    group_id: i64,
    search: &str,
    limit: i64,
) -> Result<Vec<User>> {
    let pattern = format!(
        "%{}%",
        crate::accounts::username_key(search).replace(['%', '_'], "")
    );
    Ok(sqlx::query_as(
        "select u.user_id, u.username, u.email, u.display_name, u.password_hash, u.is_active, \
                u.is_staff, u.is_superuser, u.last_login, u.created_at \
           from user_groups ug join users u on u.user_id = ug.user_id \
          where ug.group_id = $1 and u.username_key like $2 \
          order by u.username_key limit $3",
    )
    .bind(group_id)
    .bind(pattern)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// A further rule a rename or delete must pass once the delegation rule has,
/// given the actor's permissions: a higher module's rule about the group.
/// Accounts know nothing of promotion tracks; `promotions::group_changes`
/// passes the one that guards a group a track is bound to.
pub type Guard<'a> = &'a (dyn Fn(&ActorPermissions) -> Result<()> + Sync);

/// Renames a group; needs `auth.change_group`, then `guard`. Callers go
/// through `promotions::group_changes::rename_group`.
pub(crate) async fn rename(
    conn: &mut Conn,
    actor: &Actor,
    group: &Group,
    name: &GroupName,
    now: i64,
    guard: Guard<'_>,
) -> Result<Group> {
    let actor_perms = actor.permissions(conn).await?;
    permissions::delegation::authorize(&actor_perms, &Change::RenameGroup)?;
    guard(&actor_perms)?;
    sqlx::query("update groups set name = $1 where group_id = $2")
        .bind(name.as_str())
        .bind(group.group_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            Error::from(e).on_duplicate(|| {
                Error::Conflict(format!("group {:?} already exists", name.as_str()))
            })
        })?;
    let renamed = Group {
        name: name.as_str().to_string(),
        ..group.clone()
    };
    audit::record(
        conn,
        actor,
        AuditEntry::group("group.rename", &renamed)
            .before(json!({ "name": group.name }))
            .after(json!({ "name": renamed.name })),
        now,
    )
    .await?;
    Ok(renamed)
}

/// Deletes a group and with it every membership. Needs `auth.delete_group`
/// and, like any revocation, every permission the group holds; then `guard`.
/// Callers go through `promotions::group_changes::delete_group`.
pub(crate) async fn delete(
    conn: &mut Conn,
    actor: &Actor,
    group: &Group,
    now: i64,
    guard: Guard<'_>,
) -> Result<()> {
    let group_perms: Vec<PermissionName> = permissions::catalog::of_group(conn, group.group_id)
        .await?
        .into_iter()
        .map(|p| p.name())
        .collect();
    let actor_perms = actor.permissions(conn).await?;
    permissions::delegation::authorize(
        &actor_perms,
        &Change::DeleteGroup {
            group: &group.name,
            group_perms: &group_perms,
        },
    )?;
    guard(&actor_perms)?;
    let members = member_names(conn, group.group_id).await?;
    sqlx::query("delete from user_groups where group_id = $1")
        .bind(group.group_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("delete from group_permissions where group_id = $1")
        .bind(group.group_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("delete from groups where group_id = $1")
        .bind(group.group_id)
        .execute(&mut *conn)
        .await?;
    permissions::bump_epoch(conn).await?;
    let names: Vec<&str> = group_perms.iter().map(PermissionName::as_str).collect();
    audit::record(
        conn,
        actor,
        AuditEntry::group("group.delete", group)
            .before(json!({ "name": group.name, "members": members, "permissions": names })),
        now,
    )
    .await?;
    Ok(())
}

/// Adds `user` to `group`. Under the delegation rule this grants every
/// permission of the group, so the actor must hold them all.
/// Returns false when the user was already a member.
pub async fn add_member(
    conn: &mut Conn,
    actor: &Actor,
    group: &Group,
    user: &User,
    now: i64,
) -> Result<bool> {
    change_membership(conn, actor, group, user, true, now).await
}

/// Removes `user` from `group`; returns false when they were not a member.
pub async fn remove_member(
    conn: &mut Conn,
    actor: &Actor,
    group: &Group,
    user: &User,
    now: i64,
) -> Result<bool> {
    change_membership(conn, actor, group, user, false, now).await
}

async fn change_membership(
    conn: &mut Conn,
    actor: &Actor,
    group: &Group,
    user: &User,
    add: bool,
    now: i64,
) -> Result<bool> {
    let membership = Membership {
        group,
        user,
        add,
        request_id: None,
    };
    write_membership(conn, actor, membership, now).await
}

/// One membership change; `request_id` marks one made by a promotion.
pub(super) struct Membership<'a> {
    pub(super) group: &'a Group,
    pub(super) user: &'a User,
    pub(super) add: bool,
    pub(super) request_id: Option<i64>,
}

/// Authorises and writes a membership change: the delegation rule for a
/// promotion needs only the group's permissions; otherwise auth.change_user too.
pub(super) async fn write_membership(
    conn: &mut Conn,
    actor: &Actor,
    m: Membership<'_>,
    now: i64,
) -> Result<bool> {
    let group_perms = perms_of(conn, m.group).await?;
    let actor_perms = actor.permissions(conn).await?;
    let change = match m.request_id {
        Some(_) => Change::PromotionGrant {
            group: &m.group.name,
            group_perms: &group_perms,
        },
        None => Change::Membership {
            target: m.user,
            group: &m.group.name,
            group_perms: &group_perms,
        },
    };
    permissions::delegation::authorize(&actor_perms, &change)?;
    let changed = if m.add {
        sqlx::query(
            "insert into user_groups (user_id, group_id, created_at) values ($1, $2, $3) \
             on conflict do nothing",
        )
        .bind(m.user.user_id)
        .bind(m.group.group_id)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    } else {
        sqlx::query("delete from user_groups where user_id = $1 and group_id = $2")
            .bind(m.user.user_id)
            .bind(m.group.group_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    };
    if changed == 0 {
        return Ok(false);
    }
    permissions::bump_user(conn, m.user.user_id).await?;
    record_membership(conn, actor, &m, now).await?;
    Ok(true)
}

pub(super) async fn perms_of(conn: &mut Conn, group: &Group) -> Result<Vec<PermissionName>> {
    Ok(permissions::catalog::of_group(conn, group.group_id)
        .await?
        .into_iter()
        .map(|p| p.name())
        .collect())
}

pub(super) async fn record_membership(
    w: &mut dyn Writer,
    actor: &Actor,
    m: &Membership<'_>,
    now: i64,
) -> Result<()> {
    let action = if m.add {
        "group.add_user"
    } else {
        "group.remove_user"
    };
    let mut after = json!({ "group": m.group.name, "member": m.add });
    if let Some(id) = m.request_id {
        after["promotion_request"] = json!(id);
    }
    audit::record(
        w,
        actor,
        AuditEntry::user(action, m.user)
            .before(json!({ "group": m.group.name, "member": !m.add }))
            .after(after),
        now,
    )
    .await
}
