//! Renaming and deleting a group, with the rule promotion tracks add: only
//! the superuser (or Ladder itself) may rename or delete a group a track is
//! bound to, since anyone else could otherwise hand the track to another
//! group. A deleted group's track is closed until its config names an
//! existing group.
//!
//! `accounts::groups` does the change and checks the delegation rule first;
//! it knows nothing of tracks, so every caller (the console, tests) comes in
//! here, and this module hands it the track rule as its guard.

use super::track;
use crate::{
    Error, Result,
    accounts::{Group, GroupName, groups},
    actor::{Actor, ActorPermissions},
    db::Conn,
};

/// Renames a group: `auth.change_group`, then the track rule.
pub async fn rename_group(
    conn: &mut Conn,
    actor: &Actor,
    group: &Group,
    name: &GroupName,
    now: i64,
) -> Result<Group> {
    let bound = track::bound_to(conn, group.group_id).await?;
    let guard = |perms: &ActorPermissions| authorize_group_change(perms, group, &bound, "rename");
    groups::rename(conn, actor, group, name, now, &guard).await
}

/// Deletes a group: `auth.delete_group` and the group's permissions, then the
/// track rule.
pub async fn delete_group(conn: &mut Conn, actor: &Actor, group: &Group, now: i64) -> Result<()> {
    let bound = track::bound_to(conn, group.group_id).await?;
    let guard = |perms: &ActorPermissions| authorize_group_change(perms, group, &bound, "delete");
    groups::delete(conn, actor, group, now, &guard).await
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
