//! CSRF protection for every state-changing request, in one layer.
//!
//! Forms carry the session's token in a `csrf_token` field (or the
//! `X-CSRF-Token` header). The JSON API is exempt from the token only when the
//! body is `application/json`: a browser cannot send that cross-site without a
//! CORS preflight, which Ladder never grants. A bodiless API request needs the
//! session's token in the header, compared like the form's.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use super::auth::expected_csrf;
use crate::Error;

const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

pub async fn verify(session: Session, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let refused = || {
        Error::Forbidden(
            "This form has expired or did not come from Ladder (CSRF check failed). \
             Go back, reload the page and try again."
                .into(),
        )
        .into_response()
    };
    if req.uri().path().starts_with("/api/") {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json {
            return next.run(req).await;
        }
        // A request without a body cannot be JSON; it needs the session's token.
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v == "0");
        let expected = expected_csrf(&session).await.ok().flatten();
        return match (empty, header_token(&req), expected) {
            (true, Some(token), Some(expected))
                if constant_time_eq(token.as_bytes(), expected.as_bytes()) =>
            {
                next.run(req).await
            }
            _ => refused(),
        };
    }
    let Ok(Some(expected)) = expected_csrf(&session).await else {
        return refused();
    };
    if let Some(token) = header_token(&req) {
        return if constant_time_eq(token.as_bytes(), expected.as_bytes()) {
            next.run(req).await
        } else {
            refused()
        };
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return Error::invalid("form", "the form is too large").into_response();
    };
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf_token"))
        .map(|(_, v)| v);
    match token {
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => refused(),
    }
}

fn header_token(req: &Request) -> Option<String> {
    req.headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
