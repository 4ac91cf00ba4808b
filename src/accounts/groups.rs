//! The groups table and group membership; a promotion's membership is in
//! `promotion_grant`.

use serde_json::json;

use super::{GroupName, User};
use crate::{
    Error, Result,
    actor::{Actor, ActorPermissions},
    audit::{self, AuditEntry},
    binds,
    db::Sql,
    permissions::{self, PermissionName, delegation::Change},
};

#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: i64,
    pub name: String,
    pub created_at: i64,
}

crate::from_row!(Group {
    group_id,
    name,
    created_at,
});

/// A group with its member count, for listings.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub group_id: i64,
    pub name: String,
    pub members: i64,
    pub permissions: i64,
}

crate::from_row!(GroupSummary {
    group_id,
    name,
    members,
    permissions,
});

/// A group as a caller names it: by id (the console) or by name (the CLI).
#[derive(Debug, Clone)]
pub enum GroupRef {
    Id(i64),
    Name(String),
}

impl GroupRef {
    /// The group; not found is an error.
    pub async fn get(&self, sql: &mut dyn Sql) -> Result<Group> {
        match self {
            GroupRef::Id(id) => get_by_id(sql, *id).await,
            GroupRef::Name(name) => get_by_name(sql, name).await,
        }
    }
}

pub async fn find_by_name(sql: &mut dyn Sql, name: &str) -> Result<Option<Group>> {
    sql.fetch_optional(
        "select group_id, name, created_at from groups where name = $1",
        binds![name.trim()],
    )
    .await
}

/// The group named `name`, created (with no permissions) when there is none;
/// the flag says whether it was created.
pub async fn find_or_create(
    sql: &mut dyn Sql,
    actor: &Actor,
    name: &str,
    now: i64,
) -> Result<(Group, bool)> {
    if let Some(group) = find_by_name(sql, name).await? {
        return Ok((group, false));
    }
    Ok((
        create(sql, actor, &GroupName::parse(name)?, now).await?,
        true,
    ))
}

pub async fn get_by_name(sql: &mut dyn Sql, name: &str) -> Result<Group> {
    find_by_name(sql, name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("group {:?}", name.trim())))
}

pub async fn list(sql: &mut dyn Sql) -> Result<Vec<GroupSummary>> {
    sql.fetch_all(
        "select g.group_id, g.name, \
           (select count(*) from user_groups ug where ug.group_id = g.group_id) as members, \
           (select count(*) from group_permissions gp where gp.group_id = g.group_id) as permissions \
         from groups g order by g.name",
        binds![],
    )
    .await
}

/// Up to `limit` groups by name after `after` (keyset paging: no OFFSET, no counts).
pub async fn page(sql: &mut dyn Sql, after: Option<&str>, limit: i64) -> Result<Vec<Group>> {
    sql.fetch_all(
        "select group_id, name, created_at from groups \
         where ($1 is null or name > $1) order by name limit $2",
        binds![after, limit],
    )
    .await
}

/// A group's member as its member list shows them.
#[derive(Debug, Clone)]
pub struct Member {
    pub username: String,
    pub is_active: bool,
    /// When they joined the group.
    pub joined_at: i64,
}

crate::from_row!(Member {
    username,
    is_active,
    joined_at,
});

/// Up to `limit` members of a group by username, after the username key
/// `after` (keyset paging: no OFFSET, no counts).
pub async fn member_page(
    sql: &mut dyn Sql,
    group_id: i64,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Member>> {
    sql.fetch_all(
        "select u.username, u.is_active, ug.created_at as joined_at \
           from user_groups ug join users u on u.user_id = ug.user_id \
          where ug.group_id = $1 and ($2 is null or u.username_key > $2) \
          order by u.username_key limit $3",
        binds![group_id, after, limit],
    )
    .await
}

/// Every group's name, sorted; cheap enough for every page (no member counts).
pub async fn names(sql: &mut dyn Sql) -> Result<Vec<String>> {
    sql.fetch_all("select name from groups order by name", binds![])
        .await
}

/// The groups a user belongs to, by name.
pub async fn of_user(sql: &mut dyn Sql, user_id: i64) -> Result<Vec<Group>> {
    sql.fetch_all(
        "select g.group_id, g.name, g.created_at from user_groups ug \
         join groups g on g.group_id = ug.group_id where ug.user_id = $1 order by g.name",
        binds![user_id],
    )
    .await
}

/// Usernames of the group's members, sorted.
pub async fn member_names(sql: &mut dyn Sql, group_id: i64) -> Result<Vec<String>> {
    sql.fetch_all(
        "select u.username from user_groups ug join users u on u.user_id = ug.user_id \
         where ug.group_id = $1 order by u.username_key",
        binds![group_id],
    )
    .await
}

pub async fn is_member(sql: &mut dyn Sql, user_id: i64, group_id: i64) -> Result<bool> {
    let found = sql
        .fetch_i64(
            "select 1 from user_groups where user_id = $1 and group_id = $2",
            binds![user_id, group_id],
        )
        .await?;
    Ok(found.is_some())
}

/// Creates a group; needs `auth.add_group`. A duplicate name is a conflict.
pub async fn create(sql: &mut dyn Sql, actor: &Actor, name: &GroupName, now: i64) -> Result<Group> {
    let actor_perms = actor.permissions(sql).await?;
    permissions::delegation::authorize(&actor_perms, &Change::CreateGroup)?;
    let group: Group = sql
        .fetch_one(
            "insert into groups (name, created_at) values ($1, $2) returning group_id, name, created_at",
            binds![name.as_str(), now],
        )
        .await
        .map_err(|e| {
            e.on_duplicate(|| {
                Error::Conflict(format!("group {:?} already exists", name.as_str()))
            })
        })?;
    audit::record(
        sql,
        actor,
        AuditEntry::group("group.create", &group).after(json!({ "name": group.name })),
        now,
    )
    .await?;
    Ok(group)
}

pub async fn find_by_id(sql: &mut dyn Sql, group_id: i64) -> Result<Option<Group>> {
    sql.fetch_optional(
        "select group_id, name, created_at from groups where group_id = $1",
        binds![group_id],
    )
    .await
}

pub async fn get_by_id(sql: &mut dyn Sql, group_id: i64) -> Result<Group> {
    find_by_id(sql, group_id)
        .await?
        .ok_or_else(|| Error::NotFound("That group".into()))
}

pub async fn member_count(sql: &mut dyn Sql, group_id: i64) -> Result<i64> {
    sql.fetch_one(
        "select count(*) from user_groups where group_id = $1",
        binds![group_id],
    )
    .await
}

/// Members whose username contains `search` (all when empty), by username, at most `limit`.
pub async fn members(
    sql: &mut dyn Sql,
    group_id: i64,
    search: &str,
    limit: i64,
) -> Result<Vec<User>> {
    let pattern = format!(
        "%{}%",
        crate::accounts::username_key(search).replace(['%', '_'], "")
    );
    sql.fetch_all(
        "select u.user_id, u.username, u.email, u.display_name, u.password_hash, u.is_active, \
                u.is_staff, u.is_superuser, u.is_service, u.last_login, u.created_at \
           from user_groups ug join users u on u.user_id = ug.user_id \
          where ug.group_id = $1 and u.username_key like $2 \
          order by u.username_key limit $3",
        binds![group_id, pattern, limit],
    )
    .await
}

/// A further rule a rename or delete must pass once the delegation rule has,
/// given the actor's permissions: a higher module's rule about the group.
/// Accounts know nothing of promotion tracks; `promotions::group_changes`
/// passes the one that guards a group a track is bound to.
pub type Guard<'a> = &'a (dyn Fn(&ActorPermissions) -> Result<()> + Sync);

/// Renames a group; needs `auth.change_group`, then `guard`. Callers go
/// through `promotions::group_changes::rename_group`.
pub(crate) async fn rename(
    sql: &mut dyn Sql,
    actor: &Actor,
    group: &Group,
    name: &GroupName,
    now: i64,
    guard: Guard<'_>,
) -> Result<Group> {
    let actor_perms = actor.permissions(sql).await?;
    permissions::delegation::authorize(&actor_perms, &Change::RenameGroup)?;
    guard(&actor_perms)?;
    sql.execute(
        "update groups set name = $1 where group_id = $2",
        binds![name.as_str(), group.group_id],
    )
    .await
    .map_err(|e| {
        e.on_duplicate(|| Error::Conflict(format!("group {:?} already exists", name.as_str())))
    })?;
    let renamed = Group {
        name: name.as_str().to_string(),
        ..group.clone()
    };
    audit::record(
        sql,
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
    sql: &mut dyn Sql,
    actor: &Actor,
    group: &Group,
    now: i64,
    guard: Guard<'_>,
) -> Result<()> {
    let group_perms: Vec<PermissionName> = permissions::catalog::of_group(sql, group.group_id)
        .await?
        .into_iter()
        .map(|p| p.name())
        .collect();
    let actor_perms = actor.permissions(sql).await?;
    permissions::delegation::authorize(
        &actor_perms,
        &Change::DeleteGroup {
            group: &group.name,
            group_perms: &group_perms,
        },
    )?;
    guard(&actor_perms)?;
    let members = member_names(sql, group.group_id).await?;
    sql.execute(
        "delete from user_groups where group_id = $1",
        binds![group.group_id],
    )
    .await?;
    sql.execute(
        "delete from group_permissions where group_id = $1",
        binds![group.group_id],
    )
    .await?;
    sql.execute(
        "delete from groups where group_id = $1",
        binds![group.group_id],
    )
    .await?;
    permissions::bump_epoch(sql).await?;
    let names: Vec<&str> = group_perms.iter().map(PermissionName::as_str).collect();
    audit::record(
        sql,
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
    sql: &mut dyn Sql,
    actor: &Actor,
    group: &Group,
    user: &User,
    now: i64,
) -> Result<bool> {
    write_membership(sql, actor, Membership::plain(group, user, true), now).await
}

/// Removes `user` from `group`; returns false when they were not a member.
pub async fn remove_member(
    sql: &mut dyn Sql,
    actor: &Actor,
    group: &Group,
    user: &User,
    now: i64,
) -> Result<bool> {
    write_membership(sql, actor, Membership::plain(group, user, false), now).await
}

/// One membership change; `request_id` marks one made by a promotion.
pub(super) struct Membership<'a> {
    pub(super) group: &'a Group,
    pub(super) user: &'a User,
    pub(super) add: bool,
    pub(super) request_id: Option<i64>,
}

impl<'a> Membership<'a> {
    /// A change made by hand (the console, the CLI), not by a promotion.
    fn plain(group: &'a Group, user: &'a User, add: bool) -> Membership<'a> {
        Membership {
            group,
            user,
            add,
            request_id: None,
        }
    }
}

/// Authorises and writes a membership change: the delegation rule for a
/// promotion needs only the group's permissions; otherwise auth.change_user too.
pub(super) async fn write_membership(
    sql: &mut dyn Sql,
    actor: &Actor,
    m: Membership<'_>,
    now: i64,
) -> Result<bool> {
    let group_perms = perms_of(sql, m.group).await?;
    let actor_perms = actor.permissions(sql).await?;
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
        sql.execute(
            "insert into user_groups (user_id, group_id, created_at) values ($1, $2, $3) \
             on conflict do nothing",
            binds![m.user.user_id, m.group.group_id, now],
        )
        .await?
    } else {
        sql.execute(
            "delete from user_groups where user_id = $1 and group_id = $2",
            binds![m.user.user_id, m.group.group_id],
        )
        .await?
    };
    if changed == 0 {
        return Ok(false);
    }
    permissions::bump_user(sql, m.user.user_id).await?;
    record_membership(sql, actor, &m, now).await?;
    Ok(true)
}

pub(super) async fn perms_of(sql: &mut dyn Sql, group: &Group) -> Result<Vec<PermissionName>> {
    Ok(permissions::catalog::of_group(sql, group.group_id)
        .await?
        .into_iter()
        .map(|p| p.name())
        .collect())
}

pub(super) async fn record_membership(
    sql: &mut dyn Sql,
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
        sql,
        actor,
        AuditEntry::user(action, m.user)
            .before(json!({ "group": m.group.name, "member": !m.add }))
            .after(after),
        now,
    )
    .await
}
