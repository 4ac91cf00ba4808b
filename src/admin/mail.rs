//! The outbox in the admin console: what is queued, sent and failed, with a
//! retry button for failed email.

use crate::web::error::Id;
use axum::{
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::{
    Result,
    mail::{self, RetryEmail},
    web::{auth::flash, page::Page, state::AppState, templates::render},
};

#[derive(Deserialize)]
pub struct MailQuery {
    #[serde(default)]
    state: String,
}

pub async fn list(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<MailQuery>,
) -> Result<Response> {
    let shown = match query.state.as_str() {
        "pending" | "sent" => query.state.clone(),
        _ => "failed".to_string(),
    };
    let mut conn = state.ladder.db.acquire().await?;
    let emails = mail::list(&mut conn, &shown, 200).await?;
    drop(conn);
    Ok(render("admin/mail.html", crate::ctx! { page, emails, shown })?.into_response())
}

pub async fn retry(
    State(state): State<AppState>,
    session: Session,
    Id(outbox_id): Id,
) -> Result<Response> {
    let now = state.ladder.clock.now();
    let queued = state.ladder.db.run(RetryEmail { outbox_id, now }).await?;
    state.ladder.mail_wake.notify_one();
    // Not failed any more is news, not a refusal: flashed as info.
    let (kind, message) = if queued {
        (
            "success",
            "Queued again; it goes out on the worker's next pass.",
        )
    } else {
        ("info", "That email is not in the failed list any more.")
    };
    flash(&session, kind, message).await?;
    Ok(Redirect::to("/admin/mail").into_response())
}
