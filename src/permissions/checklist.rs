//! A permission checklist as a form submits it: every permission shown, and
//! the ticked ones. Only shown permissions change, so a filtered list
//! revokes nothing hidden.

use std::collections::BTreeSet;

use super::PermissionName;
use crate::Result;

pub struct Checklist {
    shown: BTreeSet<String>,
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
            shown: values("shown"),
            ticked: values("perm"),
        }
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
                    .filter(|p| self.shown.contains(*p) && !held.contains(*p))
                    .collect(),
            )?,
            revoke: parse(
                self.shown
                    .iter()
                    .filter(|p| !self.ticked.contains(*p) && held.contains(*p))
                    .collect(),
            )?,
        })
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
}
