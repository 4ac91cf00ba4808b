//! Who may change whose permissions. Ladder is stricter than Django here:
//!
//! - Only the superuser, or a holder of `auth.change_user`, may change another
//!   user's permissions or groups, and such a holder may grant (or take away)
//!   only permissions they hold themselves. Joining a group counts as being
//!   granted every permission of the group.
//! - Only the superuser may grant `auth.change_user`, set is_staff, or change
//!   their own permissions, or touch the superuser's.
//! - Acting on another user's account (their password, active flag, sessions,
//!   second factor, API tokens) lets the actor sign in as them or lock them
//!   out, so it counts as acting on every permission they hold: the actor
//!   must hold each one. A target who is staff or holds `auth.change_user`
//!   (another administrator) is the superuser's alone to act on.
//!
//! A refusal changes nothing and names what is missing.

use super::EffectivePermissions;
use super::PermissionName;
use crate::{Error, Result, accounts::User, actor::ActorPermissions};

const CHANGE_USER: &str = "auth.change_user";

/// A change to be authorised.
pub enum Change<'a> {
    /// Grant or revoke a user's direct permissions.
    UserPerms {
        target: &'a User,
        perms: &'a [PermissionName],
    },
    /// Add a user to, or remove them from, a group holding `group_perms`.
    Membership {
        target: &'a User,
        group: &'a str,
        group_perms: &'a [PermissionName],
    },
    /// Grant or revoke a group's permissions.
    GroupPerms {
        group: &'a str,
        perms: &'a [PermissionName],
    },
    Staff {
        target: &'a User,
    },
    /// Act on another user's account: set their password, (de)activate
    /// them, end their sessions, reset a second factor, make API tokens for
    /// them. `target_perms` are the target's effective permissions now.
    Account {
        target: &'a User,
        target_perms: &'a EffectivePermissions,
    },
    CreateUser {
        staff: bool,
    },
    CreateGroup,
    RenameGroup,
    /// A promotion's approver grants (or a grant's end removes) a group
    /// membership: no auth.change_user needed, but the approver must hold
    /// every permission of the group.
    PromotionGrant {
        group: &'a str,
        group_perms: &'a [PermissionName],
    },
    /// Deleting a group takes `group_perms` from every member.
    DeleteGroup {
        group: &'a str,
        group_perms: &'a [PermissionName],
    },
}

pub fn authorize(actor: &ActorPermissions, change: &Change<'_>) -> Result<()> {
    match actor {
        ActorPermissions::System => Ok(()),
        ActorPermissions::User(perms) => authorize_user(perms, change),
    }
}

/// The rule as a dry run, for a page that offers only what would be
/// accepted: the same function the change itself will ask.
pub fn allows(perms: &EffectivePermissions, change: &Change<'_>) -> bool {
    authorize_user(perms, change).is_ok()
}

fn authorize_user(perms: &EffectivePermissions, change: &Change<'_>) -> Result<()> {
    if !perms.is_active {
        return Err(Error::Forbidden("your account is inactive".into()));
    }
    if perms.is_superuser {
        return Ok(());
    }
    let need = |perm: &str, what: &str| -> Result<()> {
        if perms.has_perm(perm) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{what} needs {perm}, which you do not hold"
            )))
        }
    };
    let not_self_or_superuser = |target: &User| -> Result<()> {
        if target.user_id == perms.user_id {
            return Err(Error::Forbidden(
                "only the superuser may change their own permissions, groups or flags".into(),
            ));
        }
        if target.is_superuser {
            return Err(Error::Forbidden(
                "only the superuser may change the superuser".into(),
            ));
        }
        Ok(())
    };
    let may_grant_each = |granted: &[PermissionName], context: &str| -> Result<()> {
        for p in granted {
            if p.as_str() == CHANGE_USER {
                return Err(Error::Forbidden(format!(
                    "only the superuser may grant {CHANGE_USER}{context}"
                )));
            }
            if !perms.has_perm(p.as_str()) {
                return Err(Error::Forbidden(format!(
                    "you do not hold {p}, so you cannot grant it{context}"
                )));
            }
        }
        Ok(())
    };
    match change {
        Change::UserPerms {
            target,
            perms: granted,
        } => {
            not_self_or_superuser(target)?;
            need(CHANGE_USER, "changing another user's permissions")?;
            may_grant_each(granted, "")
        }
        Change::Membership {
            target,
            group,
            group_perms,
        } => {
            not_self_or_superuser(target)?;
            need(CHANGE_USER, "changing another user's groups")?;
            may_grant_each(group_perms, &format!(" (group {group:?} holds it)"))
        }
        Change::GroupPerms { perms: granted, .. } => {
            need("auth.change_group", "changing a group's permissions")?;
            may_grant_each(granted, "")
        }
        Change::Staff { .. } => Err(Error::Forbidden(
            "only the superuser may set or clear is_staff".into(),
        )),
        Change::Account {
            target,
            target_perms,
        } => {
            not_self_or_superuser(target)?;
            need(CHANGE_USER, "changing another user's account")?;
            // `assigned`, not `has_perm`: an inactive account is one
            // reactivation away from holding all of it again.
            let mut assigned = target_perms.assigned().collect::<Vec<_>>();
            assigned.sort_unstable();
            if target.is_staff || assigned.contains(&CHANGE_USER) {
                return Err(Error::Forbidden(format!(
                    "only the superuser may change the account of {}, who is staff or holds {CHANGE_USER}",
                    target.username
                )));
            }
            // Whoever controls the account can use all it holds.
            for perm in assigned {
                if !perms.has_perm(perm) {
                    return Err(Error::Forbidden(format!(
                        "{} holds {perm}, which you do not hold, so you cannot change their account",
                        target.username
                    )));
                }
            }
            Ok(())
        }
        Change::CreateUser { staff } => {
            if *staff {
                return Err(Error::Forbidden(
                    "only the superuser may create staff users".into(),
                ));
            }
            need("auth.add_user", "creating a user")
        }
        Change::CreateGroup => need("auth.add_group", "creating a group"),
        Change::RenameGroup => need("auth.change_group", "renaming a group"),
        Change::PromotionGrant { group, group_perms } => {
            may_grant_each(group_perms, &format!(" (group {group:?} holds it)"))
        }
        Change::DeleteGroup { group, group_perms } => {
            need("auth.delete_group", "deleting a group")?;
            may_grant_each(group_perms, &format!(" (group {group:?} holds it)"))
        }
    }
}
