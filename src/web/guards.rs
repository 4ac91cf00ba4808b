//! The one mechanism that guards routes. `router.rs` gives every route a
//! `Rule`; this layer enforces it before the handler runs.

use axum::{
    extract::Request,
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    error::ApiError,
    viewer::{CurrentUser, Viewer},
};
use crate::Error;

/// Who may reach a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in, active user.
    SignedIn,
    /// Active staff, or the superuser.
    Staff,
    /// A signed-in user holding this permission.
    Perm(&'static str),
    /// Staff holding this permission (the admin console's pages).
    StaffPerm(&'static str),
    /// Staff holding both (e.g. creating a user needs add_user and change_user).
    StaffPerms(&'static str, &'static str),
    /// A signed-in user holding both (the API's form of `StaffPerms`).
    Perms(&'static str, &'static str),
}

/// Enforces `rule`. Anonymous users are sent to sign in and come back; a
/// signed-in user who lacks the right gets 403 naming what is missing (Django's
/// decorator would send them to the login page instead).
pub async fn enforce(rule: Rule, req: Request, next: Next) -> Response {
    if rule == Rule::Public {
        return next.run(req).await;
    }
    let api = req.uri().path().starts_with("/api/");
    let viewer = req.extensions().get::<Viewer>().and_then(|v| v.0.clone());
    let Some(current) = viewer else {
        // Programs get 401; people are sent to sign in and brought back.
        return if api {
            ApiError(Error::Unauthorized).into_response()
        } else {
            sign_in_first(&req)
        };
    };
    let what = if api { "This endpoint" } else { "This page" };
    match verdict(rule, &current, what) {
        Ok(()) => next.run(req).await,
        Err(e) if api => ApiError(e).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whether `current` passes `rule`, or the refusal naming what is missing;
/// `what` is "This page" or "This endpoint".
fn verdict(rule: Rule, current: &CurrentUser, what: &str) -> Result<(), Error> {
    let missing = |perm: &str| {
        Error::Forbidden(format!(
            "{what} needs the permission {perm}, which you do not hold."
        ))
    };
    let staff = || Error::Forbidden(format!("{what} is for staff only."));
    match rule {
        Rule::Public | Rule::SignedIn => Ok(()),
        Rule::Staff => current.is_staff().then_some(()).ok_or_else(staff),
        Rule::Perm(p) => current.has_perm(p).then_some(()).ok_or_else(|| missing(p)),
        Rule::StaffPerm(p) => {
            if !current.is_staff() {
                Err(staff())
            } else {
                current.has_perm(p).then_some(()).ok_or_else(|| missing(p))
            }
        }
        Rule::StaffPerms(a, b) => {
            if !current.is_staff() {
                Err(staff())
            } else if !current.has_perm(a) {
                Err(missing(a))
            } else {
                current.has_perm(b).then_some(()).ok_or_else(|| missing(b))
            }
        }
        Rule::Perms(a, b) => {
            if !current.has_perm(a) {
                Err(missing(a))
            } else {
                current.has_perm(b).then_some(()).ok_or_else(|| missing(b))
            }
        }
    }
}

/// 302 to /login with a `next` that brings the user back here.
pub fn sign_in_first(req: &Request) -> Response {
    let back = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let target = if req.method() == axum::http::Method::GET {
        back
    } else {
        "/"
    };
    let encoded: String = serde_urlencoded::to_string([("next", target)]).unwrap_or_default();
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/login?{encoded}"))],
    )
        .into_response()
}

/// A `next` target that stays on this site: a local path, never `//host`,
/// `/\host` or a URL with a scheme. Anything else falls back to `/`.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else { return "/".into() };
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if local { next.to_string() } else { "/".into() }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_accepts_local_paths_only() {
        assert_eq!(safe_next(Some("/posts/mine?x=1")), "/posts/mine?x=1");
        for evil in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/%0a\n//x",
            "",
        ] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
