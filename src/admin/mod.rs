//! The admin console: users, groups, permissions and the audit log, written
//! for support and editorial staff. Every change goes through the same
//! domain functions as the CLI, so the delegation rules and the audit log apply.

pub mod audit;
pub mod groups;
pub mod mail;
pub mod permissions;
pub mod tokens;
pub mod users;
pub mod webhooks;

use axum::response::IntoResponse;
use axum::response::Response;

use crate::{
    Error, Result,
    accounts::{
        group_changes::{ChangeMembership, MembershipChanged},
        groups::GroupRef,
    },
    web::{page::Page, state::AppState, templates::render, viewer::CurrentUser},
};

pub async fn index(page: Page) -> Result<Response> {
    Ok(render("admin/index.html", crate::ctx! { page })?.into_response())
}

/// A membership form's change by `current`: `action` is "add" or "remove".
pub(crate) async fn membership(
    state: &AppState,
    current: &CurrentUser,
    group: GroupRef,
    username: &str,
    action: &str,
) -> Result<MembershipChanged> {
    let add = match action {
        "add" => true,
        "remove" => false,
        _ => return Err(Error::invalid("action", "must be add or remove")),
    };
    let change = ChangeMembership {
        actor: current.web_actor(),
        group,
        username: username.to_string(),
        add,
        now: state.ladder.clock.now(),
    };
    state.ladder.db.run(change).await
}
