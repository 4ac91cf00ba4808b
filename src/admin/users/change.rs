//! Changes to one user: groups, direct permissions, active, staff, password.

use std::sync::Arc;

use axum::{
    Form,
    extract::{FromRequestParts, Path, State},
    http::request::Parts,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{user_row, user_url};
use crate::admin::membership;
use crate::web::outcome::Changer;
use crate::{
    Error, Result,
    accounts::{
        NewPassword, User,
        groups::GroupRef,
        user_changes::{Flag, SetFlag, SetPassword},
        users,
    },
    permissions::{
        PermissionName,
        grants::{ChangePermissions, HolderRef},
    },
    web::{
        auth, outcome::flash_and_redirect, page::Page, state::AppState, templates::render,
        viewer::CurrentUser,
    },
};

#[derive(Deserialize)]
pub struct GroupChange {
    group_id: i64,
    action: String,
}

pub async fn change_group(c: UserChange, Form(form): Form<GroupChange>) -> Result<Response> {
    let (state, current) = (&c.state, &c.current);
    c.apply(async |user| {
        let group = GroupRef::Id(form.group_id);
        let change = membership(state, current, group, &user.username, &form.action);
        change.await.map(|done| done.say("was"))
    })
    .await
}

#[derive(Deserialize)]
pub struct PermissionChange {
    permission: String,
    action: String,
}

pub async fn change_permission(
    c: UserChange,
    Form(form): Form<PermissionChange>,
) -> Result<Response> {
    let (state, current) = (&c.state, &c.current);
    c.apply(async |user| {
        let perm = PermissionName::parse(&form.permission)?;
        let grant = match form.action.as_str() {
            "grant" => true,
            "revoke" => false,
            _ => return Err(Error::invalid("action", "must be grant or revoke")),
        };
        let change = ChangePermissions {
            actor: current.web_actor(),
            holder: HolderRef::User(user.username.clone()),
            perms: vec![perm.clone()],
            grant,
            now: state.ladder.clock.now(),
        };
        state.ladder.db.run(change).await?;
        Ok(match grant {
            true => format!("Granted {perm} to {}.", user.username),
            false => format!("Revoked {perm} from {}.", user.username),
        })
    })
    .await
}

/// The confirmation page before deactivating (or reactivating).
pub async fn active_form(
    State(state): State<AppState>,
    page: Page,
    Path(username): Path<String>,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let user = users::get_by_username(&mut conn, &username).await?;
    drop(conn);
    let ctx = crate::ctx! { page, user => user_row(&user) };
    Ok(render("admin/user_active.html", ctx)?.into_response())
}

#[derive(Deserialize)]
pub struct FlagForm {
    value: String,
}

pub async fn set_active(c: UserChange, Form(form): Form<FlagForm>) -> Result<Response> {
    let active = form.value == "true";
    c.set_flag(Flag::Active(active)).await
}

pub async fn set_staff(c: UserChange, Form(form): Form<FlagForm>) -> Result<Response> {
    let staff = form.value == "true";
    c.set_flag(Flag::Staff(staff)).await
}

impl UserChange {
    /// Sets `flag` on the user's account.
    async fn set_flag(&self, flag: Flag) -> Result<Response> {
        let state = &self.state;
        self.apply(async |user| {
            let change = SetFlag {
                actor: self.current.web_actor(),
                username: user.username.clone(),
                flag,
                now: state.ladder.clock.now(),
            };
            let name = state.ladder.db.run(change).await?.username;
            Ok(match flag {
                Flag::Active(true) => format!("{name} can sign in again."),
                Flag::Active(false) => {
                    format!("{name} is deactivated: they hold no permissions and are signed out.")
                }
                Flag::Staff(true) => format!("{name} is now staff."),
                Flag::Staff(false) => format!("{name} is no longer staff."),
            })
        })
        .await
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

pub async fn set_password(c: UserChange, Form(form): Form<PasswordForm>) -> Result<Response> {
    let (state, current, session) = (&c.state, &c.current, &c.session);
    c.apply(async |user| {
        let password = NewPassword::parse(&form.password, &user.username)?
            .hash()
            .await?;
        let (actor, now) = (current.web_actor(), state.ladder.clock.now());
        let username = user.username.clone();
        let user = (state.ladder.db)
            .run(SetPassword {
                actor,
                username,
                password,
                now,
            })
            .await?;
        if user.user_id == current.user.user_id {
            // The superuser set their own password here: keep this session.
            auth::sign_in(state, session, &user).await?;
        }
        Ok(format!(
            "Password set for {}; their other sessions have ended.",
            user.username
        ))
    })
    .await
}

/// Who changes which user: what every change handler here extracts.
pub struct UserChange {
    state: AppState,
    current: Arc<CurrentUser>,
    session: Session,
    username: String,
}

impl FromRequestParts<AppState> for UserChange {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<UserChange, Response> {
        let Changer {
            state,
            current,
            session,
        } = Changer::from_request_parts(parts, state).await?;
        let Path(username) = Path::<String>::from_request_parts(parts, &state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(UserChange {
            state,
            current,
            session,
            username,
        })
    }
}

impl UserChange {
    /// One change to the user: a user who is not there is a 404; otherwise
    /// the outcome of `change` (given the user as read before it, to name in
    /// its transaction) is flashed on the user's page, where this redirects.
    async fn apply(&self, change: impl AsyncFnOnce(&User) -> Result<String>) -> Result<Response> {
        let mut conn = self.state.ladder.db.acquire().await?;
        let user = users::get_by_username(&mut conn, &self.username).await?;
        drop(conn);
        let outcome = change(&user).await;
        flash_and_redirect(&self.session, outcome, &user_url(&user.username)).await
    }
}
