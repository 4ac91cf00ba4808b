//! Who is asking, as the handlers see it: the signed-in user (by a browser
//! session, `auth`, or an API token, `api_auth`) and what they hold as of
//! this request. Both ways in put a `Viewer` on the request.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::{
    Error, Result,
    accounts::User,
    actor::{Actor, ActorToken, Source},
    permissions::EffectivePermissions,
};

/// A signed-in, active user and their permissions as of this request.
pub struct CurrentUser {
    /// Shared with this process's memory of the token (`permissions::revision`),
    /// so a token request copies no account.
    pub user: Arc<User>,
    pub perms: Arc<EffectivePermissions>,
    /// The API token the request came with; `None` for a browser session.
    pub token: Option<TokenInUse>,
}

impl CurrentUser {
    pub fn has_perm(&self, perm: &str) -> bool {
        self.perms.has_perm(perm)
    }

    /// Staff pages are open to active staff and the superuser.
    pub fn is_staff(&self) -> bool {
        self.user.is_active && (self.user.is_staff || self.user.is_superuser)
    }

    /// The actor for a change made in the web console.
    pub fn web_actor(&self) -> Actor {
        Actor::user((*self.user).clone(), Source::Web)
    }

    /// The actor for a change made through the API: audited with source
    /// `api` and, for a token, its name; narrowed as the token is.
    pub fn api_actor(&self) -> Actor {
        let mut actor = Actor::user((*self.user).clone(), Source::Api);
        actor.token = self.token.as_ref().map(|t| ActorToken {
            name: t.name.to_string(),
            scope: t.scope.clone(),
        });
        actor
    }
}

/// Marks a request authenticated by an API token (no CSRF check applies).
#[derive(Clone, Copy)]
pub struct Bearer;

/// The request's viewer: `None` when anonymous. Set by `auth::load_viewer` or, for a
/// token, `api_auth::admit`.
#[derive(Clone)]
pub struct Viewer(pub Option<Arc<CurrentUser>>);

/// The token a request presented, as the handlers see it.
#[derive(Debug, Clone)]
pub struct TokenInUse {
    pub token_id: i64,
    pub name: Arc<str>,
    pub scope: Option<Arc<Vec<String>>>,
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Viewer> {
        Ok(parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .unwrap_or(Viewer(None)))
    }
}

/// Extracts the signed-in user; routes behind a guard always have one.
pub struct SignedIn(pub Arc<CurrentUser>);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<SignedIn> {
        parts
            .extensions
            .get::<Viewer>()
            .and_then(|v| v.0.clone())
            .map(SignedIn)
            .ok_or(Error::Unauthorized)
    }
}
