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
use axum::{extract::State, response::Response};
use tower_sessions::Session;

use crate::{
    Error, Result,
    actor::{Actor, Source},
    db::Conn,
    permissions::{PermissionName, catalog},
    web::{
        AppState,
        auth::{CurrentUser, Viewer},
        page::Page,
        templates::render,
    },
};

pub async fn index(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("admin/index.html", crate::ctx! { page })?.into_response())
}

/// The signed-in user as the actor of a web change.
pub fn web_actor(current: &CurrentUser) -> Actor {
    Actor::user(current.user.clone(), Source::Web)
}

/// Whether `current` could grant `perm` under the delegation rules, so forms
/// offer only what would be accepted. The domain re-checks on submit.
pub fn may_grant(current: &CurrentUser, perm: &str) -> bool {
    let p = &current.perms;
    if p.is_active && p.is_superuser {
        return true;
    }
    perm != "auth.change_user" && p.has_perm("auth.change_user") && p.has_perm(perm)
}

/// Whether `current` could add `perm` to (or take it from) a group:
/// auth.change_group and holding the permission; auth.change_user only for the superuser.
pub fn may_grant_to_group(current: &CurrentUser, perm: &str) -> bool {
    let p = &current.perms;
    if p.is_active && p.is_superuser {
        return true;
    }
    perm != "auth.change_user" && p.has_perm("auth.change_group") && p.has_perm(perm)
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

/// Turns a domain refusal into a flash message on the page the user came
/// from; anything else stays an error.
pub async fn flash_outcome(session: &Session, outcome: Result<String>) -> Result<()> {
    use crate::web::auth::flash;
    match outcome {
        Ok(message) => flash(session, "success", message).await,
        Err(
            e @ (Error::Forbidden(_)
            | Error::Conflict(_)
            | Error::Invalid { .. }
            | Error::NotFound(_)),
        ) => flash(session, "error", format!("Not done: {e}")).await,
        Err(e) => Err(e),
    }
}
