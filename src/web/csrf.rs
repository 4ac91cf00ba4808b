//! CSRF protection for every state-changing request, in one layer.
//!
//! Forms carry the session's token in a `csrf_token` field (or the
//! `X-CSRF-Token` header). The JSON API is exempt from the token only when the
//! body is `application/json`: a browser cannot send that cross-site without a
//! CORS preflight, which Ladder never grants. A bodiless API request needs the
//! session's token in the header, compared like the form's. A bearer token
//! is never attached by a browser on its own, so it needs neither; and an
//! API request with neither a token nor a signed-in session has no
//! identity to forge, so it goes on to its route's rule (a 401).

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::{
    Session,
    cookie::{Cookie, SameSite},
};

use super::{AppState, auth::expected_csrf};
use crate::{
    Error,
    secret::{ServerSecret, constant_time_eq, random_hex},
};

const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    // A token is sent deliberately, never attached by a browser on its own.
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.extensions().get::<super::viewer::Bearer>().is_some()
    {
        return next.run(req).await;
    }
    let checked = if req.uri().path().starts_with("/api/") {
        api_request(&session, req).await
    } else {
        form_request(&state, &session, req).await
    };
    match checked {
        Ok(req) => next.run(req).await,
        Err(refusal) => refusal,
    }
}

fn refused() -> Response {
    Error::Forbidden(
        "This form has expired or did not come from Ladder (CSRF check failed). \
         Go back, reload the page and try again."
            .into(),
    )
    .into_response()
}

/// A browser's API call: JSON (which a form on another site cannot send),
/// or a request without a body that carries the session's token in a header.
async fn api_request(session: &Session, req: Request) -> Result<Request, Response> {
    // Nobody signed in, by token or session: there is no identity for a
    // forged request to borrow, so there is nothing to protect, and the
    // route's rule answers (401), not a CSRF refusal.
    let signed_in = req
        .extensions()
        .get::<super::viewer::Viewer>()
        .is_some_and(|v| v.0.is_some());
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !signed_in || json {
        return Ok(req);
    }
    // A request without a body cannot be JSON; it needs the session's token.
    let empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v == "0");
    let expected = expected_csrf(session).await.ok().flatten();
    match (empty, header_token(&req), expected) {
        (true, Some(token), Some(expected))
            if constant_time_eq(token.as_bytes(), expected.as_bytes()) =>
        {
            Ok(req)
        }
        _ => Err(refused()),
    }
}

/// A form: its `csrf_token` field (or the header) must match the session's
/// token. A visitor without a session (the sign-in form) proves the form
/// with the anonymous cookie pair.
async fn form_request(
    state: &AppState,
    session: &Session,
    req: Request,
) -> Result<Request, Response> {
    let expected = match expected_csrf(session).await {
        Ok(Some(token)) => token,
        Ok(None) => match anonymous_nonce(req.headers()) {
            Some(nonce) => anonymous_token(&state.ladder.secret, &nonce),
            None => return Err(refused()),
        },
        Err(_) => return Err(refused()),
    };
    let matches = |token: &str| constant_time_eq(token.as_bytes(), expected.as_bytes());
    if let Some(token) = header_token(&req) {
        return if matches(&token) {
            Ok(req)
        } else {
            Err(refused())
        };
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return Err(Error::invalid("form", "the form is too large").into_response());
    };
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf_token"))
        .map(|(_, v)| v);
    match token {
        Some(t) if matches(&t) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => Err(refused()),
    }
}

/// The cookie that ties an anonymous visitor's form to their browser.
const ANONYMOUS_COOKIE: &str = "ladder_csrf";

/// A CSRF token for a visitor who is not signed in, and the cookie to set
/// if they have none yet. Nothing is stored on the server for them: the
/// token is an HMAC of the cookie's random value under the server secret, so
/// another site can neither read the cookie nor forge a token for it.
pub struct AnonymousCsrf {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

pub fn anonymous(secret: &ServerSecret, headers: &HeaderMap, secure: bool) -> AnonymousCsrf {
    if let Some(nonce) = anonymous_nonce(headers) {
        return AnonymousCsrf {
            token: anonymous_token(secret, &nonce),
            set_cookie: None,
        };
    }
    let nonce = random_hex(16);
    let cookie = Cookie::build((ANONYMOUS_COOKIE, nonce.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build();
    AnonymousCsrf {
        token: anonymous_token(secret, &nonce),
        set_cookie: HeaderValue::from_str(&cookie.to_string()).ok(),
    }
}

fn anonymous_token(secret: &ServerSecret, nonce: &str) -> String {
    secret.sign("anonymous-csrf", nonce.as_bytes())
}

fn anonymous_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(std::result::Result::ok)
        .find(|c| c.name() == ANONYMOUS_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn header_token(req: &Request) -> Option<String> {
    req.headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
