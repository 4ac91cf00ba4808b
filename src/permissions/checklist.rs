//! A permission checklist as a form submits it: every permission shown, and
//! the ticked ones. Only shown permissions change, so a filtered list
//! revokes nothing hidden. `SetGroupPermissions` saves one for a group.

use std::collections::BTreeSet;

use super::{
    PermissionName, catalog,
    grants::{self, Grantee},
};
use crate::{
    Result,
    accounts::{Group, groups},
    actor::Actor,
    db::{Finish, Sql, Transaction},
};

pub struct Checklist {
    /// None: every permission is shown (a whole list, as the API's PUT sends it).
    shown: Option<BTreeSet<String>>,
    ticked: BTreeSet<String>,
}

/// What saving a checklist changes.
#[derive(Debug, PartialEq, Eq)]
pub struct ChecklistChange {
    pub grant: Vec<PermissionName>,
    pub revoke: Vec<PermissionName>,
}

impl Checklist {
    /// From the form's fields: `shown` for each listed permission, `perm` for each ticked one.
    pub fn from_fields(fields: &[(String, String)]) -> Checklist {
        let values = |key: &str| {
            fields
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .collect()
        };
        Checklist {
            shown: Some(values("shown")),
            ticked: values("perm"),
        }
    }

    /// Exactly these permissions, and no others: every permission is shown.
    pub fn exactly(perms: &[PermissionName]) -> Checklist {
        Checklist {
            shown: None,
            ticked: perms.iter().map(|p| p.as_str().to_string()).collect(),
        }
    }

    fn shows(&self, perm: &str) -> bool {
        self.shown.as_ref().is_none_or(|shown| shown.contains(perm))
    }

    /// The grants and revokes that make `held` match the shown part of the list.
    pub fn against(&self, held: &BTreeSet<String>) -> Result<ChecklistChange> {
        let parse = |names: Vec<&String>| -> Result<Vec<PermissionName>> {
            names
                .into_iter()
                .map(|n| PermissionName::parse(n))
                .collect()
        };
        Ok(ChecklistChange {
            grant: parse(
                self.ticked
                    .iter()
                    .filter(|p| self.shows(p) && !held.contains(*p))
                    .collect(),
            )?,
            revoke: parse(
                held.iter()
                    .filter(|p| self.shows(p) && !self.ticked.contains(*p))
                    .collect(),
            )?,
        })
    }
}

/// Saves a group's permission checklist: the diff against what the group
/// holds, read inside the transaction, granted and revoked there.
pub struct SetGroupPermissions {
    pub actor: Actor,
    pub group_id: i64,
    pub checklist: Checklist,
    pub now: i64,
}

/// What saving a checklist did.
pub struct Saved {
    pub group: Group,
    pub granted: Vec<PermissionName>,
    pub revoked: Vec<PermissionName>,
    /// What the group holds now, sorted.
    pub held: Vec<PermissionName>,
}

impl Transaction for SetGroupPermissions {
    type Output = Saved;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Saved>> {
        let group = groups::get_by_id(sql, self.group_id).await?;
        let held: BTreeSet<String> = catalog::of_group(sql, self.group_id)
            .await?
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        let ChecklistChange { grant, revoke } = self.checklist.against(&held)?;
        let (actor, now) = (&self.actor, self.now);
        if !grant.is_empty() {
            grants::grant(sql, actor, Grantee::Group(&group), &grant, now).await?;
        }
        if !revoke.is_empty() {
            grants::revoke(sql, actor, Grantee::Group(&group), &revoke, now).await?;
        }
        let mut now_held = held;
        now_held.extend(grant.iter().map(|p| p.to_string()));
        for p in &revoke {
            now_held.remove(p.as_str());
        }
        Ok(Finish::Commit(Saved {
            group,
            granted: grant,
            revoked: revoke,
            held: PermissionName::parse_all(&now_held.into_iter().collect::<Vec<_>>())?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_shown_permissions_change() {
        let list = Checklist::from_fields(&fields(&[
            ("shown", "blog.add_post"),
            ("shown", "blog.view_post"),
            ("perm", "blog.add_post"),
            // Ticked but not shown: ignored.
            ("perm", "blog.delete_post"),
        ]));
        let held: BTreeSet<String> = ["blog.view_post", "blog.change_post"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let change = list.against(&held).unwrap();
        let names = |v: &[PermissionName]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&change.grant), ["blog.add_post"]);
        // blog.change_post is held but not shown: kept.
        assert_eq!(names(&change.revoke), ["blog.view_post"]);
    }

    #[test]
    fn an_exact_list_revokes_everything_else() {
        let wanted = PermissionName::parse_all(&["blog.add_post", "blog.view_post"]).unwrap();
        let held: BTreeSet<String> = ["blog.view_post", "blog.change_post"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let change = Checklist::exactly(&wanted).against(&held).unwrap();
        let names = |v: &[PermissionName]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&change.grant), ["blog.add_post"]);
        assert_eq!(names(&change.revoke), ["blog.change_post"]);
        let nothing = Checklist::exactly(&[]).against(&held).unwrap();
        assert_eq!(nothing.revoke.len(), 2);
        assert!(nothing.grant.is_empty());
    }
}
