//! Effective permissions: Django's `has_perm` semantics, and `explain`.

use std::collections::BTreeMap;

// foldhash: every check hashes a permission name here.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::PermissionName;
use crate::{Result, accounts::User, binds, db::Sql};

/// Where a held permission comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    Superuser,
    Direct,
    Group(String),
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Superuser => f.write_str("superuser"),
            Via::Direct => f.write_str("direct"),
            Via::Group(name) => write!(f, "group {name:?}"),
        }
    }
}

/// Why a permission is not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    Inactive,
    NotGranted,
}

impl Denial {
    pub fn as_str(self) -> &'static str {
        match self {
            Denial::Inactive => "inactive",
            Denial::NotGranted => "not granted",
        }
    }
}

/// The answer to "why may (or may not) this user do this?".
#[derive(Debug, Clone)]
pub struct Explanation {
    pub permission: String,
    pub allowed: bool,
    /// Every source, when allowed.
    pub sources: Vec<Via>,
    /// The reason, when denied.
    pub denial: Option<Denial>,
}

/// A user's permissions at one moment: their own plus their groups', each with
/// its sources. Answers checks from memory.
#[derive(Debug, Clone, Default)]
pub struct EffectivePermissions {
    pub user_id: i64,
    pub is_active: bool,
    pub is_superuser: bool,
    granted: HashMap<String, Vec<Via>>,
    apps: HashSet<String>,
}

impl EffectivePermissions {
    /// Django's rules: an inactive user has nothing; an active superuser has
    /// everything, even permissions that do not exist; otherwise what was granted.
    pub fn has_perm(&self, perm: &str) -> bool {
        self.is_active && (self.is_superuser || self.granted.contains_key(perm))
    }

    /// Every permission must hold; the empty list holds.
    pub fn has_perms<S: AsRef<str>>(&self, perms: &[S]) -> bool {
        perms.iter().all(|p| self.has_perm(p.as_ref()))
    }

    /// Any permission of the app.
    pub fn has_module_perms(&self, app_label: &str) -> bool {
        self.is_active && (self.is_superuser || self.apps.contains(app_label))
    }

    pub fn explain(&self, perm: &str) -> Explanation {
        let mut sources = Vec::new();
        if self.is_active {
            if self.is_superuser {
                sources.push(Via::Superuser);
            }
            if let Some(vias) = self.granted.get(perm) {
                sources.extend(vias.iter().cloned());
            }
        }
        let allowed = !sources.is_empty();
        let denial = match (allowed, self.is_active) {
            (true, _) => None,
            (false, false) => Some(Denial::Inactive),
            (false, true) => Some(Denial::NotGranted),
        };
        Explanation {
            permission: perm.to_string(),
            allowed,
            sources,
            denial,
        }
    }

    /// What a token narrowed to `scope` may do: the permissions in `scope`
    /// that the user holds now, with their sources. Never a superuser: a
    /// narrowed token of the superuser holds only what it names.
    pub fn narrowed(&self, scope: &[String]) -> EffectivePermissions {
        let mut granted = HashMap::new();
        for perm in scope {
            let sources = self.explain(perm).sources;
            if !sources.is_empty() {
                granted.insert(perm.clone(), sources);
            }
        }
        let apps = granted
            .keys()
            .filter_map(|p: &String| p.split_once('.').map(|(app, _)| app.to_string()))
            .collect();
        EffectivePermissions {
            user_id: self.user_id,
            is_active: self.is_active,
            is_superuser: false,
            granted,
            apps,
        }
    }

    /// What the user holds, or would hold again if reactivated: their own
    /// and their groups' grants, whether or not the account is active.
    pub fn assigned(&self) -> impl Iterator<Item = &str> {
        self.granted.keys().map(String::as_str)
    }

    /// Granted permissions (not the superuser's implicit ones) with their
    /// sources, sorted. Empty for an inactive user.
    pub fn granted(&self) -> BTreeMap<&str, &[Via]> {
        if !self.is_active {
            return BTreeMap::new();
        }
        self.granted
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect()
    }
}

struct GrantRow {
    app_label: String,
    codename: String,
    group_name: Option<String>,
}

crate::from_row!(GrantRow {
    app_label,
    codename,
    group_name,
});

struct Flags {
    is_active: bool,
    is_superuser: bool,
}

crate::from_row!(Flags {
    is_active,
    is_superuser,
});

/// Reads a user's effective permissions from the database (two queries).
/// An unknown user has none.
pub async fn load(sql: &mut dyn Sql, user_id: i64) -> Result<EffectivePermissions> {
    let flags: Option<Flags> = sql
        .fetch_optional(
            "select is_active, is_superuser from users where user_id = $1",
            binds![user_id],
        )
        .await?;
    let Some(flags) = flags else {
        return Ok(EffectivePermissions {
            user_id,
            ..Default::default()
        });
    };
    let rows: Vec<GrantRow> = sql
        .fetch_all(
            "select p.app_label, p.codename, null as group_name \
           from user_permissions up join permissions p on p.permission_id = up.permission_id \
          where up.user_id = $1 \
         union all \
         select p.app_label, p.codename, g.name as group_name \
           from user_groups ug \
           join groups g on g.group_id = ug.group_id \
           join group_permissions gp on gp.group_id = ug.group_id \
           join permissions p on p.permission_id = gp.permission_id \
          where ug.user_id = $1",
            binds![user_id],
        )
        .await?;
    Ok(from_rows(
        user_id,
        flags.is_active,
        flags.is_superuser,
        rows,
    ))
}

fn from_rows(
    user_id: i64,
    is_active: bool,
    is_superuser: bool,
    rows: Vec<GrantRow>,
) -> EffectivePermissions {
    let mut granted: HashMap<String, Vec<Via>> = HashMap::with_capacity(rows.len());
    let mut apps = HashSet::new();
    for row in rows {
        let via = row.group_name.map_or(Via::Direct, Via::Group);
        apps.insert(row.app_label.clone());
        let vias = granted
            .entry(format!("{}.{}", row.app_label, row.codename))
            .or_default();
        if !vias.contains(&via) {
            vias.push(via);
        }
    }
    for vias in granted.values_mut() {
        vias.sort();
    }
    EffectivePermissions {
        user_id,
        is_active,
        is_superuser,
        granted,
        apps,
    }
}

/// Active users who hold `perm`: directly, through a group, or as the superuser.
pub async fn users_with_perm(sql: &mut dyn Sql, perm: &PermissionName) -> Result<Vec<User>> {
    sql.fetch_all(
        "select u.user_id, u.username, u.email, u.display_name, u.password_hash, u.is_active, \
                u.is_staff, u.is_superuser, u.is_service, u.last_login, u.created_at \
           from users u \
          where u.is_active and (u.is_superuser \
             or exists (select 1 from user_permissions up \
                          join permissions p on p.permission_id = up.permission_id \
                         where up.user_id = u.user_id and p.app_label = $1 and p.codename = $2) \
             or exists (select 1 from user_groups ug \
                          join group_permissions gp on gp.group_id = ug.group_id \
                          join permissions p on p.permission_id = gp.permission_id \
                         where ug.user_id = u.user_id and p.app_label = $1 and p.codename = $2)) \
          order by u.username_key",
        binds![perm.app_label(), perm.codename()],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(app: &str, code: &str, group: Option<&str>) -> GrantRow {
        GrantRow {
            app_label: app.into(),
            codename: code.into(),
            group_name: group.map(Into::into),
        }
    }

    fn writer() -> EffectivePermissions {
        from_rows(
            1,
            true,
            false,
            vec![
                row("blog", "add_post", Some("Writers")),
                row("blog", "add_post", None),
                row("blog", "view_post", Some("Writers")),
            ],
        )
    }

    #[test]
    fn a_new_user_holds_nothing() {
        let p = from_rows(1, true, false, vec![]);
        assert!(!p.has_perm("blog.add_post"));
        assert!(!p.has_module_perms("blog"));
        assert!(p.granted().is_empty());
    }

    #[test]
    fn own_and_group_permissions_are_unioned_and_listed_once() {
        let p = writer();
        assert!(p.has_perm("blog.add_post"));
        assert!(p.has_perm("blog.view_post"));
        assert_eq!(p.granted().len(), 2);
        assert_eq!(
            p.explain("blog.add_post").sources,
            vec![Via::Direct, Via::Group("Writers".into())]
        );
    }

    #[test]
    fn an_inactive_superuser_has_nothing() {
        let p = from_rows(1, false, true, vec![row("blog", "add_post", None)]);
        assert!(!p.has_perm("blog.add_post"));
        assert!(!p.has_perm("made.up"));
        assert!(!p.has_module_perms("blog"));
        assert!(!p.has_perms(&["blog.add_post"]));
        assert_eq!(p.explain("blog.add_post").denial, Some(Denial::Inactive));
        assert!(p.granted().is_empty());
    }

    #[test]
    fn an_active_superuser_holds_even_made_up_permissions() {
        let p = from_rows(1, true, true, vec![]);
        assert!(p.has_perm("made.up"));
        assert!(p.has_module_perms("anything"));
        assert_eq!(p.explain("made.up").sources, vec![Via::Superuser]);
    }

    #[test]
    fn has_perms_needs_all_and_the_empty_list_holds() {
        let p = writer();
        assert!(p.has_perms::<&str>(&[]));
        assert!(p.has_perms(&["blog.add_post", "blog.view_post"]));
        assert!(!p.has_perms(&["blog.add_post", "blog.publish_post"]));
    }

    #[test]
    fn module_perms_hold_for_any_permission_of_the_app() {
        let p = writer();
        assert!(p.has_module_perms("blog"));
        assert!(!p.has_module_perms("auth"));
    }

    #[test]
    fn checks_are_case_sensitive_and_unknown_ones_are_not_held() {
        let p = writer();
        assert!(!p.has_perm("blog.Add_post"));
        assert!(!p.has_perm("nope"));
        assert_eq!(
            p.explain("blog.publish_post").denial,
            Some(Denial::NotGranted)
        );
    }
}
