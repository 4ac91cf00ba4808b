//! `ladder group …`.

use serde_json::json;

use super::{ActorArg, GroupCommand, JsonArg, acting::resolve_actor, output};
use crate::{
    Ladder, Result,
    accounts::{
        GroupName,
        group_changes::{ChangeMembership, CreateGroup},
        groups::{self, GroupRef},
    },
    clock::rfc3339,
    permissions::{catalog, revision::WithRevision},
};

pub(super) async fn group(ladder: &Ladder, cmd: GroupCommand) -> Result<()> {
    match cmd {
        GroupCommand::Add { name, actor, json } => {
            let name = GroupName::parse(&name)?;
            let actor = resolve_actor(ladder, &actor).await?;
            let now = ladder.clock.now();
            let change = CreateGroup { actor, name, now };
            let (group, revision) = ladder.db.run(WithRevision(change)).await?;
            let text = format!("Group {:?} created.", group.name);
            let value = json!({
                "id": group.group_id,
                "name": group.name,
                "created_at": rfc3339(group.created_at),
            });
            output::written(json.json, &text, value, revision);
        }
        GroupCommand::List { json } => {
            let mut conn = ladder.db.acquire().await?;
            output::group_list(&groups::list(&mut conn).await?, json);
        }
        GroupCommand::Show { name, json } => {
            let mut conn = ladder.db.acquire().await?;
            let group = groups::get_by_name(&mut conn, &name).await?;
            let perms = catalog::of_group(&mut conn, group.group_id).await?;
            let members = groups::member_names(&mut conn, group.group_id).await?;
            output::group_show(&group, &perms, &members, json);
        }
        GroupCommand::AddUser {
            group,
            username,
            actor,
            json,
        } => membership(ladder, group, username, &actor, true, json).await?,
        GroupCommand::RemoveUser {
            group,
            username,
            actor,
            json,
        } => membership(ladder, group, username, &actor, false, json).await?,
    }
    Ok(())
}

async fn membership(
    ladder: &Ladder,
    group: String,
    username: String,
    actor: &ActorArg,
    add: bool,
    json: JsonArg,
) -> Result<()> {
    let change = ChangeMembership {
        actor: resolve_actor(ladder, actor).await?,
        group: GroupRef::Name(group),
        username,
        add,
        now: ladder.clock.now(),
    };
    let (done, revision) = ladder.db.run(WithRevision(change)).await?;
    let (user, group) = (&done.user.username, &done.group.name);
    // The CLI quotes the group's name.
    let message = match (add, done.changed) {
        (true, true) => format!("Added {user} to {group:?}."),
        (true, false) => format!("{user} is already in {group:?}."),
        (false, true) => format!("Removed {user} from {group:?}."),
        (false, false) => format!("{user} was not in {group:?}."),
    };
    let value = json!({
        "action": if add { "add_user" } else { "remove_user" },
        "group": group,
        "user": user,
        "changed": done.changed,
    });
    output::written(json.json, &message, value, revision);
    Ok(())
}
