//! Promotion pages: asking, one's own requests, the review dashboard, a request.

use std::sync::Arc;

use axum::{
    Form,
    extract::{FromRequestParts, Query, State},
    http::request::Parts,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    policy,
    reasons::{Comment, Justification, Reason},
    transitions::{self, Approval},
    view::{self, RequestView, ReviewQuery},
};
use crate::web::outcome::Changer;
use crate::{
    Error, Result,
    actor::Actor,
    web::{
        auth::flash,
        error::Id,
        form::{FieldErrors, form_page},
        outcome::flash_and_redirect,
        page::Page,
        state::AppState,
        templates::render,
        viewer::{CurrentUser, SignedIn},
    },
};

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct AskForm {
    #[serde(default)]
    track: String,
    #[serde(default)]
    justification: String,
}

async fn ask_page(
    state: &AppState,
    page: Page,
    current: &CurrentUser,
    form: &AskForm,
    errors: &FieldErrors,
) -> Result<Response> {
    let tracks = view::ask_options(&state.ladder, &current.user).await?;
    let eligible = tracks.iter().any(|t| t.blocked.is_none());
    let ctx = crate::ctx! {
        page, tracks, eligible, track => form.track, justification => form.justification,
    };
    form_page("promotions/new.html", ctx, errors)
}

pub async fn new_form(
    State(state): State<AppState>,
    page: Page,
    SignedIn(current): SignedIn,
) -> Result<Response> {
    ask_page(
        &state,
        page,
        &current,
        &AskForm::default(),
        &FieldErrors::default(),
    )
    .await
}

pub async fn submit(c: Changer, page: Page, Form(form): Form<AskForm>) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let mut errors = FieldErrors::default();
    if let Some(justification) = errors.check(Justification::parse(&form.justification)) {
        let (ladder, actor) = (&state.ladder, current.web_actor());
        match transitions::submit(ladder, &actor, &current.user, &form.track, justification).await {
            Ok(committed) => {
                let sent = format!(
                    "Request #{} sent. The approvers have been emailed.",
                    committed.outcome.request_id
                );
                return flash_and_redirect(&session, Ok(sent), "/promotions/mine").await;
            }
            Err(e) => errors.refusal("track", e)?,
        }
    }
    ask_page(&state, page, &current, &form, &errors).await
}

pub async fn mine(
    State(state): State<AppState>,
    page: Page,
    SignedIn(current): SignedIn,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let requests = super::by_requester(&mut conn, current.user.user_id).await?;
    Ok(render("promotions/mine.html", crate::ctx! { page, requests })?.into_response())
}

/// The approvers' dashboard: open requests on the tracks the viewer decides,
/// oldest first; the history tab shows decided ones, newest first.
pub async fn review(
    State(state): State<AppState>,
    page: Page,
    SignedIn(current): SignedIn,
    Query(query): Query<ReviewQuery>,
) -> Result<Response> {
    let found = view::review(&state.ladder, &current.user, &query, PAGE_SIZE).await?;
    let now = state.ladder.clock.now();
    let view::Review {
        requests,
        tracks,
        history,
        next_query,
    } = found;
    let ctx = crate::ctx! { page, requests, tracks, query, history, next_query, now };
    Ok(render("promotions/review.html", ctx)?.into_response())
}

/// A request: who asks, what they hold now, exactly what approval would add,
/// and the request's audit trail.
pub async fn show(
    State(state): State<AppState>,
    page: Page,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
) -> Result<Response> {
    let actor = current.web_actor();
    let view = RequestView::load(&state.ladder, &current.user, &actor, request_id).await?;
    let trail: Vec<_> = view
        .trail
        .iter()
        .map(crate::admin::audit::event_row)
        .collect();
    let mut ctx = serde_json::to_value(&view).map_err(anyhow::Error::from)?;
    ctx["trail"] = serde_json::to_value(trail).map_err(anyhow::Error::from)?;
    ctx["page"] = serde_json::to_value(page).map_err(anyhow::Error::from)?;
    Ok(render("promotions/show.html", ctx)?.into_response())
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reason: String,
}

/// Who decides which request: what every decision handler extracts.
pub struct Decider {
    state: AppState,
    current: Arc<CurrentUser>,
    session: Session,
    request_id: i64,
}

impl FromRequestParts<AppState> for Decider {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Decider, Response> {
        let Changer {
            state,
            current,
            session,
        } = Changer::from_request_parts(parts, state).await?;
        let Id(request_id) = Id::from_request_parts(parts, &state).await?;
        Ok(Decider {
            state,
            current,
            session,
            request_id,
        })
    }
}

impl Decider {
    fn actor(&self) -> Actor {
        self.current.web_actor()
    }

    /// Runs one decision and turns the outcome into a flash message on the
    /// request page: "already decided" is news, not an error page.
    async fn decide(&self, action: impl AsyncFnOnce() -> Result<String>) -> Result<Response> {
        let (ladder, request_id) = (&self.state.ladder, self.request_id);
        // Someone who may not see the request learns nothing about it, not even its state.
        {
            let mut conn = ladder.db.acquire().await?;
            policy::visible_to(ladder, &mut conn, &self.current.user, request_id).await?;
        }
        // The transition has its own transaction; on an error nothing was written.
        match action().await {
            Ok(message) => flash(&self.session, "success", message).await?,
            Err(e @ (Error::Conflict(_) | Error::Invalid { .. })) => {
                flash(&self.session, "error", e.to_string()).await?;
            }
            Err(e) => return Err(e),
        }
        Ok(Redirect::to(&format!("/promotions/{request_id}")).into_response())
    }
}

pub async fn approve(d: Decider, Form(form): Form<DecisionForm>) -> Result<Response> {
    let (ladder, actor, user) = (&d.state.ladder, d.actor(), &d.current.user);
    d.decide(async || {
        let comment = Comment::parse(&form.comment)?;
        Ok(
            match transitions::approve(ladder, &actor, user, d.request_id, comment)
                .await?
                .outcome
            {
                Approval::Approved => {
                    "Approved. The membership is granted and the requester has been emailed."
                        .to_string()
                }
                Approval::Recorded { have, need } => {
                    format!("Your approval is recorded ({have} of {need}).")
                }
            },
        )
    })
    .await
}

pub async fn reject(d: Decider, Form(form): Form<DecisionForm>) -> Result<Response> {
    let (ladder, actor, user) = (&d.state.ladder, d.actor(), &d.current.user);
    d.decide(async || {
        let reason = Reason::parse(&form.reason)?;
        transitions::reject(ladder, &actor, user, d.request_id, reason).await?;
        Ok("Rejected. The requester has been emailed your reason.".to_string())
    })
    .await
}

pub async fn withdraw_form(
    State(state): State<AppState>,
    page: Page,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let request = policy::visible_to(&state.ladder, &mut conn, &current.user, request_id).await?;
    if request.requester_id != current.user.user_id {
        return Err(Error::Forbidden(
            "Only the person who asked can withdraw a request.".into(),
        ));
    }
    Ok(render("promotions/withdraw.html", crate::ctx! { page, request })?.into_response())
}

pub async fn withdraw(d: Decider) -> Result<Response> {
    let (ladder, actor, user) = (&d.state.ladder, d.actor(), &d.current.user);
    d.decide(async || {
        transitions::withdraw(ladder, &actor, user, d.request_id).await?;
        Ok("Request withdrawn.".to_string())
    })
    .await
}

pub async fn end(d: Decider) -> Result<Response> {
    let (ladder, actor, user) = (&d.state.ladder, d.actor(), &d.current.user);
    d.decide(async || {
        transitions::end_grant(ladder, &actor, Some(user), d.request_id).await?;
        ladder.mail_wake.notify_one();
        Ok("The grant has ended; the membership is removed.".to_string())
    })
    .await
}
