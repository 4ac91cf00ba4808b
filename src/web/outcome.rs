//! The end of a change made from a button or a form: flash what happened and
//! send the browser on (post/redirect/get).

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::request::Parts,
    response::{IntoResponse, Redirect, Response},
};
use tower_sessions::Session;

use super::{
    auth::flash,
    state::AppState,
    viewer::{CurrentUser, SignedIn},
};
use crate::{Error, Result};

/// Flashes the outcome of a change and redirects to `to`. A refusal
/// (forbidden, conflict, invalid, not found) is a message on the next page;
/// anything else stays an error.
pub async fn flash_and_redirect(
    session: &Session,
    outcome: Result<String>,
    to: &str,
) -> Result<Response> {
    flash_outcome(session, outcome).await?;
    Ok(Redirect::to(to).into_response())
}

/// Turns a domain refusal into a flash message on the next page; anything
/// else stays an error.
pub async fn flash_outcome(session: &Session, outcome: Result<String>) -> Result<()> {
    match outcome {
        Ok(message) => flash(session, "success", message).await,
        Err(
            e @ (Error::Forbidden(_)
            | Error::Conflict(_)
            | Error::Invalid { .. }
            | Error::NotFound(_)),
        ) => flash(session, "error", format!("Not done: {e}")).await,
        Err(e) => Err(e),
    }
}

/// A signed-in change from a form or a button: the state, who acts, and
/// their session (for the flash). What every change handler extracts first.
pub struct Changer {
    pub state: AppState,
    pub current: Arc<CurrentUser>,
    pub session: Session,
}

impl FromRequestParts<AppState> for Changer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Changer, Response> {
        let SignedIn(current) = SignedIn::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Changer {
            state: state.clone(),
            current,
            session,
        })
    }
}
