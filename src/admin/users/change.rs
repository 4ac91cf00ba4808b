//! Changes to one user: groups, direct permissions, active, staff, password.

use axum::{
    Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{user_row, user_url};
use crate::admin::{existing_permission, web_actor};
use crate::web::outcome::flash_outcome;
use crate::{
    Error, Result,
    accounts::{NewPassword, groups, users},
    permissions::grants::{self, Grantee},
    web::{
        auth::{self, SignedIn, Viewer},
        page::Page,
        state::AppState,
        templates::render,
    },
};

#[derive(Deserialize)]
pub struct GroupChange {
    group_id: i64,
    action: String,
}

pub async fn change_group(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<GroupChange>,
) -> Result<Response> {
    change_user(&state, &session, &username, async |conn, user| {
        let group = groups::get_by_id(conn, form.group_id).await?;
        let actor = web_actor(&current);
        let now = state.ladder.clock.now();
        Ok(match form.action.as_str() {
            "add" => {
                if groups::add_member(conn, &actor, &group, user, now).await? {
                    format!("Added {} to {}.", user.username, group.name)
                } else {
                    format!("{} was already in {}.", user.username, group.name)
                }
            }
            "remove" => {
                groups::remove_member(conn, &actor, &group, user, now).await?;
                format!("Removed {} from {}.", user.username, group.name)
            }
            _ => return Err(Error::invalid("action", "must be add or remove")),
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct PermissionChange {
    permission: String,
    action: String,
}

pub async fn change_permission(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<PermissionChange>,
) -> Result<Response> {
    change_user(&state, &session, &username, async |conn, user| {
        let perm = existing_permission(conn, &form.permission).await?;
        let actor = web_actor(&current);
        let now = state.ladder.clock.now();
        let perms = [perm.clone()];
        Ok(match form.action.as_str() {
            "grant" => {
                grants::grant(conn, &actor, Grantee::User(user), &perms, now).await?;
                format!("Granted {perm} to {}.", user.username)
            }
            "revoke" => {
                grants::revoke(conn, &actor, Grantee::User(user), &perms, now).await?;
                format!("Revoked {perm} from {}.", user.username)
            }
            _ => return Err(Error::invalid("action", "must be grant or revoke")),
        })
    })
    .await
}

/// The confirmation page before deactivating (or reactivating).
pub async fn active_form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
    Path(username): Path<String>,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let user = users::get_by_username(&mut conn, &username).await?;
    drop(conn);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render(
        "admin/user_active.html",
        crate::ctx! { page, user => user_row(&user) },
    )?
    .into_response())
}

#[derive(Deserialize)]
pub struct FlagForm {
    value: String,
}

pub async fn set_active(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<FlagForm>,
) -> Result<Response> {
    let active = form.value == "true";
    change_user(&state, &session, &username, async |conn, user| {
        users::set_active(
            conn,
            &web_actor(&current),
            user,
            active,
            state.ladder.clock.now(),
        )
        .await?;
        Ok(if active {
            format!("{} can sign in again.", user.username)
        } else {
            format!(
                "{} is deactivated: they hold no permissions and are signed out.",
                user.username
            )
        })
    })
    .await
}

pub async fn set_staff(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<FlagForm>,
) -> Result<Response> {
    let staff = form.value == "true";
    change_user(&state, &session, &username, async |conn, user| {
        users::set_staff(
            conn,
            &web_actor(&current),
            user,
            staff,
            state.ladder.clock.now(),
        )
        .await?;
        Ok(format!(
            "{} is {}staff.",
            user.username,
            if staff { "now " } else { "no longer " }
        ))
    })
    .await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

pub async fn set_password(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response> {
    let user = {
        let mut conn = state.ladder.db.acquire().await?;
        users::get_by_username(&mut conn, &username).await?
    };
    let hashed = match NewPassword::parse(&form.password, &user.username) {
        Ok(pw) => Ok(pw.hash().await?),
        Err(e) => Err(e),
    };
    let mut tx = state.ladder.db.begin().await?;
    let outcome = async {
        // Judged on the account as it is inside the transaction.
        let user = users::get_by_username(&mut tx, &username).await?;
        users::set_password(
            &mut tx,
            &web_actor(&current),
            &user,
            hashed?,
            state.ladder.clock.now(),
        )
        .await?;
        Ok(format!(
            "Password set for {}; their other sessions have ended.",
            user.username
        ))
    }
    .await;
    if outcome.is_ok() {
        tx.commit().await?;
        if user.user_id == current.user.user_id {
            // The superuser set their own password here: keep this session.
            let mut conn = state.ladder.db.acquire().await?;
            if let Some(updated) = users::find_by_id(&mut conn, user.user_id).await? {
                auth::sign_in(&state, &session, &updated).await?;
            }
        }
    }
    flash_outcome(&session, outcome).await?;
    Ok(Redirect::to(&user_url(&user.username)).into_response())
}

/// One change to the user named `username`, in one write transaction: it is
/// committed if `change` succeeds; either way the outcome is shown on the
/// user's page, where this redirects.
async fn change_user(
    state: &AppState,
    session: &Session,
    username: &str,
    change: impl AsyncFnOnce(&mut crate::db::Conn, &users::User) -> Result<String>,
) -> Result<Response> {
    let mut tx = state.ladder.db.begin().await?;
    let user = users::get_by_username(&mut tx, username).await?;
    let outcome = change(&mut tx, &user).await;
    if outcome.is_ok() {
        tx.commit().await?;
    }
    flash_outcome(session, outcome).await?;
    Ok(Redirect::to(&user_url(&user.username)).into_response())
}
