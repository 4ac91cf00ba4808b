//! Browser sessions: the signed-in user, loaded once per request from the
//! server-side session with a snapshot of their effective permissions;
//! signing in and out; the session's CSRF token and flash messages. An API
//! token is resolved by `api_auth` instead.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::{
    AppState,
    viewer::{CurrentUser, Viewer},
};
use crate::{
    Error, Result,
    accounts::{User, users},
    secret::{ServerSecret, constant_time_eq},
};

const AUTH_KEY: &str = "auth";
const CSRF_KEY: &str = "csrf";
const FLASH_KEY: &str = "flash";
/// The hour of the session's last renewal; see `renew`.
const RENEWED_KEY: &str = "renewed";

/// What the session remembers about the signed-in user.
#[derive(Serialize, Deserialize)]
struct SessionAuth {
    user_id: i64,
    /// A fingerprint of the password hash: a password change ends every other session.
    auth_hash: String,
}

/// The fingerprint stored in sessions: an HMAC of the password hash under
/// the server secret (as Django's `get_session_auth_hash`), so a password
/// change ends every other session and the session table reveals nothing
/// about the hash.
pub fn auth_hash(secret: &ServerSecret, user: &User) -> String {
    let hash = user.password_hash.as_deref().unwrap_or("");
    secret.sign("session-auth", hash.as_bytes())
}

/// Middleware: resolves the session to a user. An inactive user, or a
/// session from before a password change, is signed out here.
pub async fn load_viewer(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with("/api/") && super::api_auth::bearer(req.headers()).is_some() {
        // A token speaks for itself: the session (and its CSRF rule) is not consulted.
        return match super::api_auth::admit(&state, req).await {
            Ok(req) => next.run(req).await,
            Err(refused) => refused,
        };
    }
    let viewer = match resolve(&state, &session).await {
        Ok(v) => v,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    req.extensions_mut().insert(Viewer(viewer));
    next.run(req).await
}

async fn resolve(state: &AppState, session: &Session) -> Result<Option<Arc<CurrentUser>>> {
    let auth: Option<SessionAuth> = session.get(AUTH_KEY).await.map_err(session_error)?;
    let Some(auth) = auth else { return Ok(None) };
    let mut conn = state.ladder.db.acquire().await?;
    let found = users::find_with_versions(&mut conn, auth.user_id).await?;
    let Some(found) = found.filter(|f| {
        f.user.is_active
            && constant_time_eq(
                auth_hash(&state.ladder.secret, &f.user).as_bytes(),
                auth.auth_hash.as_bytes(),
            )
    }) else {
        session.flush().await.map_err(session_error)?;
        return Ok(None);
    };
    let perms = found
        .permissions(&state.ladder.permissions, &mut conn)
        .await?;
    let user = found.user;
    renew(session, state.ladder.clock.now()).await?;
    Ok(Some(Arc::new(CurrentUser {
        user: Arc::new(user),
        perms,
        token: None,
    })))
}

/// Keeps an active session alive without writing it on every request.
/// The session layer saves (and pushes the idle expiry forward) only when the
/// data changed, so the data changes once an hour: a session then ends between
/// `session_days` minus an hour and `session_days` after its last request, and
/// a busy user costs one session write an hour instead of one a request.
/// `now` is the application's clock, so tests move through hours without waiting.
async fn renew(session: &Session, now: i64) -> Result<()> {
    let hour = now / 3_600;
    session
        .insert(RENEWED_KEY, hour)
        .await
        .map_err(session_error)
}

pub fn session_error(e: tower_sessions::session::Error) -> Error {
    Error::Unexpected(anyhow::anyhow!("session: {e}"))
}

/// Signs `user` in: a new session id (no fixation), then the auth record.
pub async fn sign_in(state: &AppState, session: &Session, user: &User) -> Result<()> {
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(
            AUTH_KEY,
            SessionAuth {
                user_id: user.user_id,
                auth_hash: auth_hash(&state.ladder.secret, user),
            },
        )
        .await
        .map_err(session_error)?;
    // Renewed now: the first page after sign-in need not write the session again.
    renew(session, state.ladder.clock.now()).await?;
    // A fresh CSRF token for the new identity.
    session
        .remove_value(CSRF_KEY)
        .await
        .map_err(session_error)?;
    Ok(())
}

pub async fn sign_out(session: &Session) -> Result<()> {
    session.flush().await.map_err(session_error)
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> Result<String> {
    if let Some(token) = session
        .get::<String>(CSRF_KEY)
        .await
        .map_err(session_error)?
    {
        return Ok(token);
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    session
        .insert(CSRF_KEY, &token)
        .await
        .map_err(session_error)?;
    Ok(token)
}

pub async fn expected_csrf(session: &Session) -> Result<Option<String>> {
    session.get(CSRF_KEY).await.map_err(session_error)
}

/// A message shown once, on the next page.
#[derive(Serialize, Deserialize, Clone)]
pub struct Flash {
    pub kind: String,
    pub text: String,
}

pub async fn flash(session: &Session, kind: &str, text: impl Into<String>) -> Result<()> {
    let mut all: Vec<Flash> = session
        .get(FLASH_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default();
    all.push(Flash {
        kind: kind.into(),
        text: text.into(),
    });
    session.insert(FLASH_KEY, all).await.map_err(session_error)
}

pub async fn take_flash(session: &Session) -> Result<Vec<Flash>> {
    // `remove` marks the session changed even when the key is absent, and a
    // changed session is written back: look first, so most pages write nothing.
    let pending: Option<Vec<Flash>> = session.get(FLASH_KEY).await.map_err(session_error)?;
    if pending.is_none() {
        return Ok(Vec::new());
    }
    Ok(session
        .remove::<Vec<Flash>>(FLASH_KEY)
        .await
        .map_err(session_error)?
        .unwrap_or_default())
}
