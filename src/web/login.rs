//! Sign-in and sign-out pages.

use std::net::SocketAddr;

use axum::{
    Form,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    AppState, auth, csrf, guards::safe_next, page::Page, templates::render, viewer::Viewer,
};
use crate::{Result, accounts::sign_in};

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Result<Response> {
    let next = safe_next(q.next.as_deref());
    if viewer.0.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let view = LoginView {
        status: StatusCode::OK,
        next,
        username: "",
        error: None,
    };
    login_page(&state, &viewer, &session, &headers, view).await
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
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Result<Response> {
    let ladder = &state.ladder;
    let user = sign_in::sign_in(
        &ladder.db,
        &peer.ip().to_string(),
        form.username.trim(),
        &form.password,
        ladder.settings.server.login_attempts_per_minute,
        ladder.clock.now(),
    )
    .await?;
    let next = safe_next(form.next.as_deref());
    let Some(user) = user else {
        let error = "That username and password do not match an active account.";
        let view = LoginView {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            next,
            username: &form.username,
            error: Some(error),
        };
        return login_page(&state, &viewer, &session, &headers, view).await;
    };
    auth::sign_in(&state, &session, &user).await?;
    Ok(Redirect::to(&next).into_response())
}

struct LoginView<'a> {
    status: StatusCode,
    next: String,
    username: &'a str,
    error: Option<&'a str>,
}

/// The sign-in page. The visitor is not signed in, so nothing is stored for
/// them: the form's CSRF token comes from the anonymous cookie pair.
async fn login_page(
    state: &AppState,
    viewer: &Viewer,
    session: &Session,
    headers: &HeaderMap,
    view: LoginView<'_>,
) -> Result<Response> {
    let LoginView {
        status,
        next,
        username,
        error,
    } = view;
    let csrf = csrf::anonymous(
        &state.ladder.secret,
        headers,
        state.ladder.settings.server.secure_cookies,
    );
    // Built only here: a redirect (signed in already, or just now) leaves
    // the flash for the page it leads to.
    let mut page = Page::new(state, viewer, session).await?;
    page.csrf_token = csrf.token;
    let body = render("login.html", crate::ctx! { page, next, username, error })?;
    let mut response = (status, body).into_response();
    if let Some(cookie) = csrf.set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

pub async fn logout(session: Session) -> Result<Response> {
    auth::sign_out(&session).await?;
    Ok(Redirect::to("/").into_response())
}
