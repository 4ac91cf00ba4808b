//! Sign-in and sign-out pages.

use std::net::SocketAddr;

use axum::{
    Form,
    extract::{ConnectInfo, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    AppState,
    auth::{self, Viewer},
    guards::safe_next,
    page::Page,
    templates::render,
};
use crate::{Error, Result, accounts::sign_in, accounts::username_key};

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
    Query(q): Query<NextQuery>,
) -> Result<Response> {
    let next = safe_next(q.next.as_deref());
    if viewer.0.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    auth::csrf_token(&session).await?;
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("login.html", crate::ctx! { page, next, username => "" })?.into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    // No account has a longer name; refused before the name becomes a rate-limit key.
    let max = crate::accounts::Username::MAX_CHARS;
    if form.username.trim().chars().count() > max {
        let why = format!("must be at most {max} characters");
        return Err(Error::invalid("username", why));
    }
    let next = safe_next(form.next.as_deref());
    let now = state.ladder.clock.now();
    let limit = state.ladder.settings.server.login_attempts_per_minute;
    let keys = [
        format!("ip:{}", peer.ip()),
        format!("user:{}", username_key(form.username.trim())),
    ];
    let mut tx = state.ladder.db.begin().await?;
    if let Some(wait) = sign_in::rate_limit(&mut tx, &keys, limit, now).await? {
        tx.commit().await?;
        return Err(Error::RateLimited(wait));
    }
    let user = sign_in::authenticate(&mut tx, form.username.trim(), &form.password, now).await?;
    tx.commit().await?;
    let Some(user) = user else {
        auth::csrf_token(&session).await?;
        let page = Page::new(&state, &viewer, &session).await?;
        let error = "That username and password do not match an active account.";
        let body = render(
            "login.html",
            crate::ctx! { page, next, username => form.username, error },
        )?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, body).into_response());
    };
    auth::sign_in(&session, &user).await?;
    Ok(Redirect::to(&next).into_response())
}

pub async fn logout(session: Session) -> Result<Response> {
    auth::sign_out(&session).await?;
    Ok(Redirect::to("/").into_response())
}
