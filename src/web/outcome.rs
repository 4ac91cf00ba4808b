//! The end of a change made from a button or a form: flash what happened and
//! send the browser on (post/redirect/get).

use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::auth::flash;
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
