//! `ladder group …`.

use super::{ActorArg, GroupCommand, acting::resolve_actor, output};
use crate::{
    Ladder, Result,
    accounts::{
        GroupName,
        group_changes::{ChangeMembership, CreateGroup},
        groups::{self, GroupRef},
    },
    permissions::catalog,
};

pub(super) async fn group(ladder: &Ladder, cmd: GroupCommand) -> Result<()> {
    match cmd {
        GroupCommand::Add { name, actor } => {
            let name = GroupName::parse(&name)?;
            let actor = resolve_actor(ladder, &actor).await?;
            let now = ladder.clock.now();
            let group = ladder.db.run(CreateGroup { actor, name, now }).await?;
            println!("Group {:?} created.", group.name);
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
        } => membership(ladder, group, username, &actor, true).await?,
        GroupCommand::RemoveUser {
            group,
            username,
            actor,
        } => membership(ladder, group, username, &actor, false).await?,
    }
    Ok(())
}

async fn membership(
    ladder: &Ladder,
    group: String,
    username: String,
    actor: &ActorArg,
    add: bool,
) -> Result<()> {
    let change = ChangeMembership {
        actor: resolve_actor(ladder, actor).await?,
        group: GroupRef::Name(group),
        username,
        add,
        now: ladder.clock.now(),
    };
    let done = ladder.db.run(change).await?;
    let (user, group) = (&done.user.username, &done.group.name);
    // The CLI quotes the group's name.
    let message = match (add, done.changed) {
        (true, true) => format!("Added {user} to {group:?}."),
        (true, false) => format!("{user} is already in {group:?}."),
        (false, true) => format!("Removed {user} from {group:?}."),
        (false, false) => format!("{user} was not in {group:?}."),
    };
    println!("{message}");
    Ok(())
}
