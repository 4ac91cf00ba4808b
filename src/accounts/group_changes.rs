//! The write transactions on groups that know nothing of promotion tracks,
//! run by `Db::run`, the same for the console and the CLI: creating a group
//! and changing its members. Renaming and deleting pass the track rule too:
//! they are `promotions::group_changes`.

use super::{
    Group, GroupName, User,
    groups::{self, GroupRef},
    users,
};
use crate::{
    Result,
    actor::Actor,
    db::{Finish, Sql, Transaction},
};

/// Creates a group (`auth.add_group`).
pub struct CreateGroup {
    pub actor: Actor,
    pub name: GroupName,
    pub now: i64,
}

impl Transaction for CreateGroup {
    type Output = Group;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Group>> {
        let group = groups::create(sql, &self.actor, &self.name, self.now).await?;
        Ok(Finish::Commit(group))
    }
}

/// Adds a user to a group or removes them, under the delegation rule for a
/// membership (the actor holds every permission of the group).
pub struct ChangeMembership {
    pub actor: Actor,
    pub group: GroupRef,
    pub username: String,
    pub add: bool,
    pub now: i64,
}

/// What a membership change did: `changed` is false when the user already
/// was (or was not) a member.
pub struct MembershipChanged {
    pub group: Group,
    pub user: User,
    pub add: bool,
    pub changed: bool,
}

impl MembershipChanged {
    /// What the console says: "Added bob to Editors.", "bob `is` already
    /// in Editors." (each page has its tense), "Removed bob from Editors.".
    pub fn say(&self, is: &str) -> String {
        let (user, group) = (&self.user.username, &self.group.name);
        match (self.add, self.changed) {
            (true, true) => format!("Added {user} to {group}."),
            (true, false) => format!("{user} {is} already in {group}."),
            (false, _) => format!("Removed {user} from {group}."),
        }
    }
}

impl Transaction for ChangeMembership {
    type Output = MembershipChanged;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<MembershipChanged>> {
        let group = self.group.get(sql).await?;
        let user = users::get_by_username(sql, &self.username).await?;
        let (actor, now) = (&self.actor, self.now);
        let changed = if self.add {
            groups::add_member(sql, actor, &group, &user, now).await?
        } else {
            groups::remove_member(sql, actor, &group, &user, now).await?
        };
        Ok(Finish::Commit(MembershipChanged {
            group,
            user,
            add: self.add,
            changed,
        }))
    }
}
