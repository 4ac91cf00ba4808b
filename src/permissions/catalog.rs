//! The permission catalog: which permissions exist. Built from Ladder's own
//! resources and the `[[resources]]` in config by `sync`, which `migrate` runs.

use std::collections::{BTreeMap, BTreeSet};

use super::PermissionName;
use crate::{
    Error, Result,
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    config::ResourceSettings,
    db::Sql,
};

/// A permission row.
#[derive(Debug, Clone)]
pub struct Permission {
    pub permission_id: i64,
    pub app_label: String,
    pub model: String,
    pub codename: String,
    pub name: String,
}

crate::from_row!(Permission {
    permission_id,
    app_label,
    model,
    codename,
    name,
});

impl Permission {
    pub fn name(&self) -> PermissionName {
        PermissionName::from_parts(&self.app_label, &self.codename)
    }
}

/// Ladder's own resources: the auth models, and the blog that ships with it.
fn builtin_resources() -> Vec<ResourceSettings> {
    let plain = |app: &str, model: &str| ResourceSettings {
        app: app.into(),
        model: model.into(),
        permissions: vec![],
    };
    vec![
        plain("auth", "user"),
        plain("auth", "group"),
        plain("auth", "permission"),
        // Django's admin.logentry: view_logentry opens the audit log.
        plain("admin", "logentry"),
        // The email outbox: view_email lists it, change_email retries a failed one.
        plain("mail", "email"),
        // Webhook endpoints: view_ lists them and their deliveries, change_
        // edits, rotates and retries, add_ registers (with auth.view_user).
        plain("webhooks", "webhook"),
        ResourceSettings {
            app: "blog".into(),
            model: "post".into(),
            permissions: vec![
                ("publish_post".into(), "Can publish post".into()),
                ("feature_post".into(), "Can feature post".into()),
            ],
        },
    ]
}

/// Checks a configured resource's labels, so a typo stops start-up.
pub fn check_resource(resource: &ResourceSettings) -> Result<(), String> {
    let ident = |s: &str| {
        !s.is_empty() && s.len() <= 100 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !ident(&resource.app) {
        return Err(format!(
            "app {:?} must be letters, digits and _",
            resource.app
        ));
    }
    if !ident(&resource.model) {
        return Err(format!(
            "model {:?} must be letters, digits and _",
            resource.model
        ));
    }
    for (codename, name) in &resource.permissions {
        if !ident(codename) {
            return Err(format!(
                "{}.{}: codename {codename:?} must be letters, digits and _",
                resource.app, resource.model
            ));
        }
        if name.trim().is_empty() {
            return Err(format!(
                "{}.{codename}: the human name must not be empty",
                resource.app
            ));
        }
    }
    Ok(())
}

/// Every permission a resource defines: the four defaults, then its own.
fn permissions_of(resource: &ResourceSettings) -> Vec<(String, String)> {
    let m = &resource.model;
    let mut all: Vec<(String, String)> = ["add", "change", "delete", "view"]
        .iter()
        .map(|verb| (format!("{verb}_{m}"), format!("Can {verb} {m}")))
        .collect();
    all.extend(resource.permissions.iter().cloned());
    all
}

/// What `sync` did.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub created: Vec<PermissionName>,
    /// In the database but no longer in config: kept, and reported.
    pub orphaned: Vec<PermissionName>,
}

/// Creates missing permissions for built-in and configured resources and
/// updates changed human names. Idempotent; never deletes.
pub async fn sync(
    sql: &mut dyn Sql,
    configured: &[ResourceSettings],
    now: i64,
) -> Result<SyncReport> {
    let existing: BTreeSet<PermissionName> = all(sql).await?.iter().map(Permission::name).collect();
    let mut wanted = BTreeSet::new();
    let mut report = SyncReport::default();
    let system = Actor::system(crate::actor::Source::System);
    for resource in builtin_resources().iter().chain(configured) {
        for (codename, human) in permissions_of(resource) {
            let name = PermissionName::from_parts(&resource.app, &codename);
            wanted.insert(name.clone());
            if existing.contains(&name) {
                sql.execute(
                    "update permissions set name = $1, model = $2 \
                     where app_label = $3 and codename = $4 and (name <> $1 or model <> $2)",
                    binds![&human, &resource.model, &resource.app, &codename],
                )
                .await?;
                continue;
            }
            let inserted = sql
                .execute(
                    "insert into permissions (app_label, model, codename, name, created_at) \
                     values ($1, $2, $3, $4, $5) on conflict (app_label, codename) do nothing",
                    binds![&resource.app, &resource.model, &codename, &human, now],
                )
                .await?;
            if inserted > 0 {
                audit::record(
                    sql,
                    &system,
                    AuditEntry::new("permission.create", "permission", None, name.as_str())
                        .after(serde_json::json!({ "name": human })),
                    now,
                )
                .await?;
                report.created.push(name);
            }
        }
    }
    report.orphaned = existing.difference(&wanted).cloned().collect();
    Ok(report)
}

pub async fn all(sql: &mut dyn Sql) -> Result<Vec<Permission>> {
    sql.fetch_all(
        "select permission_id, app_label, model, codename, name from permissions \
         order by app_label, model, codename",
        binds![],
    )
    .await
}

/// Looks up each name; the first unknown one is an error that names it.
pub async fn resolve(sql: &mut dyn Sql, names: &[PermissionName]) -> Result<Vec<Permission>> {
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        let row: Option<Permission> = sql
            .fetch_optional(
                "select permission_id, app_label, model, codename, name from permissions \
                 where app_label = $1 and codename = $2",
                binds![name.app_label(), name.codename()],
            )
            .await?;
        found.push(row.ok_or_else(|| Error::NotFound(format!("permission {:?}", name.as_str())))?);
    }
    Ok(found)
}

/// A group's own permissions.
pub async fn of_group(sql: &mut dyn Sql, group_id: i64) -> Result<Vec<Permission>> {
    sql.fetch_all(
        "select p.permission_id, p.app_label, p.model, p.codename, p.name \
         from group_permissions gp join permissions p on p.permission_id = gp.permission_id \
         where gp.group_id = $1 order by p.app_label, p.codename",
        binds![group_id],
    )
    .await
}

/// A user's directly granted permissions (not through groups).
pub async fn of_user(sql: &mut dyn Sql, user_id: i64) -> Result<Vec<Permission>> {
    sql.fetch_all(
        "select p.permission_id, p.app_label, p.model, p.codename, p.name \
         from user_permissions up join permissions p on p.permission_id = up.permission_id \
         where up.user_id = $1 order by p.app_label, p.codename",
        binds![user_id],
    )
    .await
}

/// Each group's permission names, by group id.
pub async fn by_group(sql: &mut dyn Sql) -> Result<BTreeMap<i64, Vec<String>>> {
    let rows: Vec<(i64, String, String)> = sql
        .fetch_all(
            "select gp.group_id, p.app_label, p.codename from group_permissions gp \
             join permissions p on p.permission_id = gp.permission_id",
            binds![],
        )
        .await?;
    let mut map: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (group_id, app, code) in rows {
        map.entry(group_id)
            .or_default()
            .push(format!("{app}.{code}"));
    }
    Ok(map)
}

/// Who holds one permission: the groups, and the first direct holders.
pub struct Holders {
    pub groups: Vec<String>,
    /// At most the `shown` asked for, by username.
    pub users: Vec<String>,
    /// Direct holders beyond `users`.
    pub more_users: i64,
}

/// Every permission with its holders, listing at most `shown` direct holders
/// each (with a count: the table may hold millions of users).
pub async fn with_holders(sql: &mut dyn Sql, shown: i64) -> Result<Vec<(Permission, Holders)>> {
    let group_rows: Vec<(i64, String)> = sql
        .fetch_all(
            "select gp.permission_id, g.name from group_permissions gp \
             join groups g on g.group_id = gp.group_id order by g.name",
            binds![],
        )
        .await?;
    let mut by_permission: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (pid, name) in group_rows {
        by_permission.entry(pid).or_default().push(name);
    }
    let mut out = Vec::new();
    for p in all(sql).await? {
        let users: Vec<String> = sql
            .fetch_all(
                "select u.username from user_permissions up join users u on u.user_id = up.user_id \
                 where up.permission_id = $1 order by u.username_key limit $2",
                binds![p.permission_id, shown],
            )
            .await?;
        let total: i64 = sql
            .fetch_one(
                "select count(*) from user_permissions where permission_id = $1",
                binds![p.permission_id],
            )
            .await?;
        let holders = Holders {
            groups: by_permission.remove(&p.permission_id).unwrap_or_default(),
            more_users: total - users.len() as i64,
            users,
        };
        out.push((p, holders));
    }
    Ok(out)
}
