//! Creating a user from the console.

use axum::{
    Form,
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::super::web_actor;
use super::user_url;
use crate::{
    Error, Result,
    accounts::{
        Email, NewPassword, Username, parse_display_name,
        users::{self, NewUser},
    },
    web::{
        auth::{SignedIn, flash},
        form::{FieldErrors, form_page},
        page::Page,
        state::AppState,
    },
};

#[derive(Deserialize, Serialize, Default)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    staff: Option<String>,
}

fn new_user_page(page: Page, form: &NewUserForm, errors: &FieldErrors) -> Result<Response> {
    let ctx = crate::ctx! {
        page,
        username => form.username, email => form.email, display_name => form.display_name,
        staff => form.staff.is_some(),
    };
    form_page("admin/user_new.html", ctx, errors)
}

pub async fn new_form(page: Page) -> Result<Response> {
    new_user_page(page, &NewUserForm::default(), &FieldErrors::default())
}

pub async fn create(
    State(state): State<AppState>,
    page: Page,
    SignedIn(current): SignedIn,
    session: Session,
    Form(form): Form<NewUserForm>,
) -> Result<Response> {
    // Collect every field's problem at once, so the form shows them all.
    let mut errors = FieldErrors::default();
    let username = errors.check(Username::parse(form.username.trim()));
    let email = errors.check(Email::parse(&form.email));
    let display_name = errors.check(parse_display_name(&form.display_name));
    let pw = match form.password.as_str() {
        "" => None,
        given => errors.check(NewPassword::parse(given, form.username.trim())),
    };
    let (Some(username), Some(email), Some(display_name), true) =
        (username, email, display_name, errors.is_empty())
    else {
        return new_user_page(page, &form, &errors);
    };
    let password = match pw {
        Some(pw) => Some(pw.hash().await?),
        None => None,
    };
    let new = NewUser {
        username,
        email,
        display_name,
        password,
        is_staff: form.staff.is_some(),
    };
    let mut tx = state.ladder.db.begin().await?;
    let created = users::create(&mut tx, &web_actor(&current), new, state.ladder.clock.now()).await;
    let user = match created {
        Ok(user) => user,
        Err(e) => {
            // A taken name is the username's problem; a refusal, the staff box's.
            let field = if matches!(e, Error::Conflict(_)) {
                "username"
            } else {
                "staff"
            };
            errors.refusal(field, e)?;
            return new_user_page(page, &form, &errors);
        }
    };
    tx.commit().await?;
    flash(
        &session,
        "success",
        format!("User {} created.", user.username),
    )
    .await?;
    Ok(Redirect::to(&user_url(&user.username)).into_response())
}
