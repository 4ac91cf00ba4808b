//! The admin console: users, groups, permissions and the audit log, written
//! for support and editorial staff. Every change goes through the same
//! domain functions as the CLI, so the delegation rules and the audit log apply.

pub mod audit;
pub mod groups;
pub mod mail;
pub mod permissions;
pub mod users;

use std::collections::BTreeMap;

use axum::response::IntoResponse;
use axum::response::Response;

use crate::{
    Result,
    actor::{Actor, Source},
    db::Conn,
    permissions::{PermissionName, catalog},
    web::{auth::CurrentUser, page::Page, templates::render},
};

pub async fn index(page: Page) -> Result<Response> {
    Ok(render("admin/index.html", crate::ctx! { page })?.into_response())
}

/// The signed-in user as the actor of a web change.
pub fn web_actor(current: &CurrentUser) -> Actor {
    Actor::user(current.user.clone(), Source::Web)
}

/// Each group's permission names, by group id.
pub async fn group_permission_map(conn: &mut Conn) -> Result<BTreeMap<i64, Vec<String>>> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "select gp.group_id, p.app_label, p.codename from group_permissions gp \
         join permissions p on p.permission_id = gp.permission_id",
    )
    .fetch_all(conn)
    .await?;
    let mut map: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (group_id, app, code) in rows {
        map.entry(group_id)
            .or_default()
            .push(format!("{app}.{code}"));
    }
    Ok(map)
}

/// Parses a permission name from a form and checks it exists.
pub async fn existing_permission(conn: &mut Conn, raw: &str) -> Result<PermissionName> {
    let name = PermissionName::parse(raw)?;
    catalog::resolve(conn, std::slice::from_ref(&name)).await?;
    Ok(name)
}
