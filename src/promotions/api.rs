//! The workflow's JSON API under /api/v1/promotions. Session auth for now.

use crate::web::error::Id;
use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Request, RequestFilter, State as RequestState, policy,
    reasons::{Comment, Justification, Reason},
    transitions,
};
use crate::{
    Error,
    actor::{Actor, Source},
    clock::rfc3339,
    db::Sql,
    web::{
        auth::{CurrentUser, SignedIn},
        error::{ApiError, ApiJson},
        state::AppState,
    },
};

type ApiResult<T> = std::result::Result<T, ApiError>;

fn api_actor(current: &CurrentUser) -> Actor {
    Actor::user(current.user.clone(), Source::Api)
}

/// The stable JSON shape of a request (documented in docs/api.md).
async fn request_json(conn: &mut dyn crate::db::Sql, r: &Request) -> crate::Result<Value> {
    Ok(json_of(r, &super::approvals(conn, r.request_id).await?))
}

fn json_of(r: &Request, approvals: &[super::Approval]) -> Value {
    let approvals: Vec<Value> = approvals
        .iter()
        .map(|a| json!({ "approver": a.approver, "comment": a.comment, "at": rfc3339(a.created_at) }))
        .collect();
    json!({
        "id": r.request_id,
        "track": r.track,
        "requester": r.requester,
        "justification": r.justification,
        "state": r.state,
        "approvals": approvals,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at.map(rfc3339),
        "decision_reason": r.decision_reason,
        "expires_at": r.expires_at.map(rfc3339),
        "grant_ends_at": r.grant_ends_at.map(rfc3339),
        "ended_at": r.ended_at.map(rfc3339),
        "created_at": rfc3339(r.created_at),
    })
}

async fn visible(
    state: &AppState,
    conn: &mut dyn Sql,
    current: &CurrentUser,
    request_id: i64,
) -> crate::Result<Request> {
    policy::visible_to(&state.ladder, conn, &current.user, request_id).await
}

#[derive(Deserialize)]
pub struct SubmitBody {
    track: String,
    #[serde(default)]
    justification: String,
}

pub async fn submit(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    ApiJson(body): ApiJson<SubmitBody>,
) -> ApiResult<Response> {
    let request = transitions::submit(
        &state.ladder,
        &api_actor(&current),
        &current.user,
        &body.track,
        Justification::parse(&body.justification)?,
    )
    .await?;
    // A new request has no approvals yet: nothing to read back.
    Ok((StatusCode::CREATED, Json(json_of(&request, &[]))).into_response())
}

#[derive(Deserialize, Default)]
pub struct ApproveBody {
    #[serde(default)]
    comment: String,
}

#[derive(Deserialize)]
pub struct RejectBody {
    #[serde(default)]
    reason: String,
}

/// Checks the caller may see the request (404 otherwise, as for a missing one).
async fn check_visible(
    state: &AppState,
    current: &CurrentUser,
    request_id: i64,
) -> crate::Result<()> {
    let mut conn = state.ladder.db.acquire().await?;
    visible(state, &mut conn, current, request_id).await?;
    Ok(())
}

/// The answer to a transition: the request as it now stands.
async fn answer(state: &AppState, request_id: i64) -> ApiResult<Json<Value>> {
    let mut conn = state.ladder.db.acquire().await?;
    let request = super::get(&mut conn, request_id).await?;
    Ok(Json(request_json(&mut conn, &request).await?))
}

pub async fn approve(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    // The body is optional here: no body means no comment.
    let comment = if body.iter().all(u8::is_ascii_whitespace) {
        Comment::default()
    } else {
        let body = serde_json::from_slice::<ApproveBody>(&body).map_err(|e| {
            Error::invalid(
                "body",
                format!("not a JSON object with an optional \"comment\": {e}"),
            )
        })?;
        Comment::parse(&body.comment)?
    };
    // approve checks visibility itself, among its reads.
    transitions::approve(
        &state.ladder,
        &api_actor(&current),
        &current.user,
        request_id,
        comment,
    )
    .await?;
    answer(&state, request_id).await
}

pub async fn reject(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
    ApiJson(body): ApiJson<RejectBody>,
) -> ApiResult<Json<Value>> {
    check_visible(&state, &current, request_id).await?;
    transitions::reject(
        &state.ladder,
        &api_actor(&current),
        &current.user,
        request_id,
        Reason::parse(&body.reason)?,
    )
    .await?;
    answer(&state, request_id).await
}

pub async fn withdraw(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
) -> ApiResult<Json<Value>> {
    check_visible(&state, &current, request_id).await?;
    transitions::withdraw(
        &state.ladder,
        &api_actor(&current),
        &current.user,
        request_id,
    )
    .await?;
    answer(&state, request_id).await
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
) -> ApiResult<Json<Value>> {
    let mut conn = state.ladder.db.acquire().await?;
    let request = visible(&state, &mut conn, &current, request_id).await?;
    Ok(Json(request_json(&mut conn, &request).await?))
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    track: Option<String>,
    requester: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

/// Requests on the tracks the caller approves, plus their own; oldest first.
pub async fn list(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Error::invalid("limit", "must be between 1 and 500").into());
    }
    let mut conn = state.ladder.db.acquire().await?;
    let tracks = policy::approved_tracks(&state.ladder, &mut conn, &current.user).await?;
    // Non-approvers see only their own requests.
    let requester = if tracks.is_empty() {
        Some(current.user.username.clone())
    } else {
        q.requester.clone()
    };
    let filter = RequestFilter {
        tracks: if tracks.is_empty() {
            None
        } else {
            Some(tracks)
        },
        track: q.track.clone(),
        state: q.state.as_deref().map(RequestState::parse).transpose()?,
        requester,
        after: q.after.clone(),
        newest_first: false,
        limit,
    };
    let page = super::list(&mut conn, &filter).await?;
    let mut items = Vec::with_capacity(page.requests.len());
    for r in &page.requests {
        items.push(request_json(&mut conn, r).await?);
    }
    Ok(Json(json!({ "items": items, "next": page.next })))
}

pub async fn not_found() -> impl IntoResponse {
    ApiError(Error::NotFound("That API endpoint".into()))
}
