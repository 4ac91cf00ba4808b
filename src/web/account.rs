//! Everyone's own account pages: changing one's password.

use axum::{Form, response::Response};
use serde::Deserialize;

use crate::web::outcome::Changer;
use crate::{
    Result,
    accounts::{NewPassword, sign_in, user_changes::ChangeOwnPassword},
    web::{
        auth,
        form::{FieldErrors, form_page},
        outcome::flash_and_redirect,
        page::Page,
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
    c: Changer,
    page: Page,
    Form(form): Form<OwnPasswordForm>,
) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let ladder = &state.ladder;
    let mut errors = FieldErrors::default();
    if !sign_in::check_own_password(ladder, &current.user, &form.current).await? {
        errors.insert("current", "That is not your current password.");
    }
    let new = errors.check(NewPassword::parse(&form.new, &current.user.username));
    if form.new != form.confirm {
        errors.insert("confirm", "The two new passwords differ.");
    }
    let (Some(new), true) = (new, errors.is_empty()) else {
        return form_page("account_password.html", crate::ctx! { page }, &errors);
    };
    let change = ChangeOwnPassword {
        actor: current.web_actor(),
        user: (*current.user).clone(),
        password: new.hash().await?,
        now: ladder.clock.now(),
    };
    let updated = ladder.db.run(change).await?;
    auth::sign_in(&state, &session, &updated).await?;
    let done = Ok("Password changed. Your other sessions have ended.".to_string());
    flash_and_redirect(&session, done, "/").await
}
