//! Everyone's own account pages: changing one's password.

use std::collections::BTreeMap;

use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::admin::web_actor;
use crate::{
    Error, Result,
    accounts::{NewPassword, password, users},
    web::{
        AppState,
        auth::{self, SignedIn, Viewer, flash},
        page::{Page, note},
        templates::render,
    },
};

#[derive(Deserialize, Default)]
pub struct OwnPasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn own_password_page(
    state: &AppState,
    viewer: &Viewer,
    session: &Session,
    errors: BTreeMap<&'static str, String>,
) -> Result<Response> {
    let page = Page::new(state, viewer, session).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        render("account_password.html", crate::ctx! { page, errors })?,
    )
        .into_response())
}

pub async fn own_password_form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    own_password_page(&state, &viewer, &session, BTreeMap::new()).await
}

/// Anyone may change their own password, knowing the current one. Their
/// other sessions end; this one continues.
pub async fn own_password(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Form(form): Form<OwnPasswordForm>,
) -> Result<Response> {
    // Guessing the current password from a borrowed session is limited as
    // sign-in is: every attempt counts, per user, across instances.
    let limit = state.ladder.settings.server.login_attempts_per_minute;
    let keys = [format!("password:{}", current.user.user_id)];
    let mut tx = state.ladder.db.begin().await?;
    let wait =
        crate::accounts::sign_in::rate_limit(&mut tx, &keys, limit, state.ladder.clock.now())
            .await?;
    tx.commit().await?;
    if let Some(wait) = wait {
        return Err(Error::RateLimited(wait));
    }
    let mut errors = BTreeMap::new();
    let stored = current.user.password_hash.clone();
    let given = form.current.clone();
    let ok = tokio::task::spawn_blocking(move || password::verify(&given, stored.as_deref()))
        .await
        .map_err(|e| anyhow::anyhow!("password check: {e}"))?;
    if !ok {
        errors.insert("current", "That is not your current password.".to_string());
    }
    let new = NewPassword::parse(&form.new, &current.user.username)
        .map_err(|e| note(&mut errors, e))
        .ok();
    if form.new != form.confirm {
        errors.insert("confirm", "The two new passwords differ.".to_string());
    }
    let (Some(new), true) = (new, errors.is_empty()) else {
        return own_password_page(&state, &viewer, &session, errors).await;
    };
    let hash = new.hash().await?;
    let mut tx = state.ladder.db.begin().await?;
    let updated = users::change_own_password(
        &mut tx,
        &web_actor(&current),
        &current.user,
        hash,
        state.ladder.clock.now(),
    )
    .await?;
    tx.commit().await?;
    auth::sign_in(&state, &session, &updated).await?;
    flash(
        &session,
        "success",
        "Password changed. Your other sessions have ended.",
    )
    .await?;
    Ok(Redirect::to("/").into_response())
}
