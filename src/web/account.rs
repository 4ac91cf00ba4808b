//! Everyone's own account pages: changing one's password.

use axum::{
    Form,
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::admin::web_actor;
use crate::{
    Error, Result,
    accounts::{NewPassword, password, users},
    web::{
        auth::{self, SignedIn, flash},
        form::{FieldErrors, form_page},
        page::Page,
        state::AppState,
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

pub async fn own_password_form(page: Page) -> Result<Response> {
    form_page(
        "account_password.html",
        crate::ctx! { page },
        &FieldErrors::default(),
    )
}

/// Anyone may change their own password, knowing the current one. Their
/// other sessions end; this one continues.
pub async fn own_password(
    State(state): State<AppState>,
    page: Page,
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
    let mut errors = FieldErrors::default();
    let stored = current.user.password_hash.clone();
    let given = form.current.clone();
    let ok = tokio::task::spawn_blocking(move || password::verify(&given, stored.as_deref()))
        .await
        .map_err(|e| anyhow::anyhow!("password check: {e}"))?;
    if !ok {
        errors.insert("current", "That is not your current password.");
    }
    let new = errors.check(NewPassword::parse(&form.new, &current.user.username));
    if form.new != form.confirm {
        errors.insert("confirm", "The two new passwords differ.");
    }
    let (Some(new), true) = (new, errors.is_empty()) else {
        return form_page("account_password.html", crate::ctx! { page }, &errors);
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
