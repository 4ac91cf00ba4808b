//! Renaming and deleting a group, with the rule promotion tracks add: only
//! the superuser (or Ladder itself) may rename or delete a group a track is
//! bound to, since anyone else could otherwise hand the track to another
//! group. A deleted group's track is closed until its config names an
//! existing group.
//!
//! `accounts::groups` does the change and checks the delegation rule first;
//! it knows nothing of tracks, so every caller (the console, tests) comes in
//! here, and this module hands it the track rule as its guard.
//!
//! `RenameGroup` and `DeleteGroup` are these changes as transactions, read
//! the group inside, and are what the console runs.

use super::track;
use crate::{
    Error, Result,
    accounts::{Group, GroupName, groups},
    actor::{Actor, ActorPermissions},
    db::{Finish, Sql, Transaction},
};

/// Renames a group: `auth.change_group`, then the track rule.
pub async fn rename_group(
    sql: &mut dyn Sql,
    actor: &Actor,
    group: &Group,
    name: &GroupName,
    now: i64,
) -> Result<Group> {
    let bound = track::bound_to(sql, group.group_id).await?;
    let guard = |perms: &ActorPermissions| authorize_group_change(perms, group, &bound, "rename");
    groups::rename(sql, actor, group, name, now, &guard).await
}

/// Deletes a group: `auth.delete_group` and the group's permissions, then the
/// track rule.
pub async fn delete_group(sql: &mut dyn Sql, actor: &Actor, group: &Group, now: i64) -> Result<()> {
    let bound = track::bound_to(sql, group.group_id).await?;
    let guard = |perms: &ActorPermissions| authorize_group_change(perms, group, &bound, "delete");
    groups::delete(sql, actor, group, now, &guard).await
}

/// Renames the group `group_id` to `name`.
pub struct RenameGroup {
    pub actor: Actor,
    pub group_id: i64,
    pub name: GroupName,
    pub now: i64,
}

impl Transaction for RenameGroup {
    /// The group before, and after.
    type Output = (Group, Group);

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<(Group, Group)>> {
        let group = groups::get_by_id(sql, self.group_id).await?;
        let renamed = rename_group(sql, &self.actor, &group, &self.name, self.now).await?;
        Ok(Finish::Commit((group, renamed)))
    }
}

/// Deletes the group `group_id`.
pub struct DeleteGroup {
    pub actor: Actor,
    pub group_id: i64,
    pub now: i64,
}

impl Transaction for DeleteGroup {
    /// The group as it was.
    type Output = Group;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Group>> {
        let group = groups::get_by_id(sql, self.group_id).await?;
        delete_group(sql, &self.actor, &group, self.now).await?;
        Ok(Finish::Commit(group))
    }
}

/// The track rule: refuses anyone but the superuser (or Ladder itself) when
/// the group is bound to a track (`bound`, from `track::bound_to`). `what`
/// is "rename" or "delete".
fn authorize_group_change(
    actor: &ActorPermissions,
    group: &Group,
    bound: &[(String, String)],
    what: &str,
) -> Result<()> {
    let superuser = match actor {
        ActorPermissions::System => true,
        ActorPermissions::User(p) => p.is_active && p.is_superuser,
    };
    if superuser {
        return Ok(());
    }
    match bound.first() {
        None => Ok(()),
        Some((track, role)) => Err(Error::Forbidden(format!(
            "Group {:?} is the {role} of promotion track {track}; only the superuser may {what} it.",
            group.name
        ))),
    }
}
