//! Creating a user from the console.

use std::collections::BTreeMap;

use axum::{
    Form,
    extract::State,
    http::StatusCode,
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
        AppState,
        auth::{SignedIn, Viewer, flash},
        page::{Page, note},
        templates::render,
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

async fn new_user_page(
    state: &AppState,
    viewer: &Viewer,
    session: &Session,
    form: &NewUserForm,
    errors: BTreeMap<&'static str, String>,
) -> Result<Response> {
    let page = Page::new(state, viewer, session).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = render(
        "admin/user_new.html",
        crate::ctx! {
            page,
            username => form.username, email => form.email, display_name => form.display_name,
            staff => form.staff.is_some(), errors,
        },
    )?;
    Ok((status, body).into_response())
}

pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    new_user_page(
        &state,
        &viewer,
        &session,
        &NewUserForm::default(),
        BTreeMap::new(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Form(form): Form<NewUserForm>,
) -> Result<Response> {
    // Collect every field's problem at once, so the form shows them all.
    let mut errors = BTreeMap::new();
    let username = Username::parse(form.username.trim())
        .map_err(|e| note(&mut errors, e))
        .ok();
    let email = Email::parse(&form.email)
        .map_err(|e| note(&mut errors, e))
        .ok();
    let display_name = parse_display_name(&form.display_name)
        .map_err(|e| note(&mut errors, e))
        .ok();
    let pw = if form.password.is_empty() {
        None
    } else {
        NewPassword::parse(&form.password, form.username.trim())
            .map_err(|e| note(&mut errors, e))
            .ok()
    };
    let (Some(username), Some(email), Some(display_name), true) =
        (username, email, display_name, errors.is_empty())
    else {
        return new_user_page(&state, &viewer, &session, &form, errors).await;
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
        Err(Error::Conflict(message)) => {
            errors.insert("username", message);
            return new_user_page(&state, &viewer, &session, &form, errors).await;
        }
        Err(e @ Error::Forbidden(_)) => {
            errors.insert("staff", e.to_string());
            return new_user_page(&state, &viewer, &session, &form, errors).await;
        }
        Err(e) => return Err(e),
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
