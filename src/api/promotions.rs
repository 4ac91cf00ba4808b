//! The promotion workflow: `/api/v1/promotions` and a request's decisions.
//!
//! Who may do what is the workflow's (`promotions::policy`), as in the
//! console. A token narrowed with `--perm` acts for its user: it may submit
//! and withdraw the user's own requests, and decide only where its scope
//! names every permission that approval grants (`policy::may_decide`).
//! Changes are audited with source `api` and the token's name.

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiResult,
    openapi::ErrorBody,
    paging::{Page, PageQuery, cursor_of},
};
use crate::{
    Error, Ladder, Result,
    clock::rfc3339,
    db::Sql,
    promotions::{
        self, Approval, Request, RequestFilter, State as RequestState, policy,
        reasons::{Comment, Justification, Reason},
        transitions::{self, Committed},
    },
    web::{
        error::{ApiJson, Id},
        state::AppState,
        viewer::SignedIn,
    },
};

/// Where a request stands.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum PromotionState {
    Pending,
    Approved,
    Rejected,
    Withdrawn,
    Expired,
    Ended,
}

impl From<RequestState> for PromotionState {
    fn from(state: RequestState) -> PromotionState {
        match state {
            RequestState::Pending => PromotionState::Pending,
            RequestState::Approved => PromotionState::Approved,
            RequestState::Rejected => PromotionState::Rejected,
            RequestState::Withdrawn => PromotionState::Withdrawn,
            RequestState::Expired => PromotionState::Expired,
            RequestState::Ended => PromotionState::Ended,
        }
    }
}

/// One approval so far.
#[derive(Serialize, ToSchema)]
pub struct ApprovalJson {
    approver: String,
    comment: String,
    #[schema(format = DateTime)]
    at: String,
}

/// A promotion request, as every answer shows it (docs/api.md).
#[derive(Serialize, ToSchema)]
pub struct PromotionRequest {
    id: i64,
    track: String,
    requester: String,
    justification: String,
    state: PromotionState,
    approvals: Vec<ApprovalJson>,
    decided_by: Option<String>,
    #[schema(format = DateTime)]
    decided_at: Option<String>,
    decision_reason: Option<String>,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    #[schema(format = DateTime)]
    grant_ends_at: Option<String>,
    #[schema(format = DateTime)]
    ended_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl PromotionRequest {
    fn of(r: &Request, approvals: &[Approval]) -> PromotionRequest {
        PromotionRequest {
            id: r.request_id,
            track: r.track.clone(),
            requester: r.requester.clone(),
            justification: r.justification.clone(),
            state: r.state.into(),
            approvals: approvals
                .iter()
                .map(|a| ApprovalJson {
                    approver: a.approver.clone(),
                    comment: a.comment.clone(),
                    at: rfc3339(a.created_at),
                })
                .collect(),
            decided_by: r.decided_by.clone(),
            decided_at: r.decided_at.map(rfc3339),
            decision_reason: r.decision_reason.clone(),
            expires_at: r.expires_at.map(rfc3339),
            grant_ends_at: r.grant_ends_at.map(rfc3339),
            ended_at: r.ended_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
        }
    }
}

/// A request as a write left it, with the revision the write committed.
#[derive(Serialize, ToSchema)]
pub struct PromotionWritten {
    #[serde(flatten)]
    request: PromotionRequest,
    /// The revision this write committed: a check with
    /// `consistency=at_least=REV` sees it.
    revision: i64,
}

/// The list's filters; each is optional and they all apply.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromotionQuery {
    /// Only requests in this state.
    #[param(value_type = Option<PromotionState>)]
    state: Option<String>,
    /// Only requests on this track (a name from `GET /api/v1/tracks`).
    track: Option<String>,
    /// Only requests by this user.
    requester: Option<String>,
    /// Only your own requests, on any track (what "My requests" shows).
    mine: Option<bool>,
    /// Only decided requests, in any state but pending (the review
    /// dashboard's history tab).
    decided: Option<bool>,
    /// `oldest` first (the default: the review queue) or `newest` first.
    #[param(value_type = Option<Order>, inline)]
    order: Option<String>,
    /// The same as `cursor` (kept for clients of the first release; prefer `cursor`).
    after: Option<String>,
}

/// The list's order, by when each request was made. (Only its schema is
/// used: the parameter is read as text, so that a wrong value is a 422.)
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Order {
    Oldest,
    Newest,
}

/// A list's sort key: (created_at, request_id) of its last request.
type RequestKey = (i64, i64);

impl PromotionQuery {
    /// The domain's filter: each value parsed, an unknown track or state a
    /// 422 naming the parameter.
    fn filter(&self, ladder: &Ladder, page: &PageQuery) -> Result<RequestFilter> {
        let state = self.state.as_deref().map(RequestState::parse).transpose()?;
        let decided = self.decided == Some(true);
        if decided && state == Some(RequestState::Pending) {
            return Err(Error::invalid(
                "state",
                "pending contradicts decided=true (decided requests are no longer pending)",
            ));
        }
        if let Some(track) = &self.track
            && ladder.track(track).is_err()
        {
            return Err(Error::invalid(
                "track",
                format!("there is no track named {track:?} (GET /api/v1/tracks lists them)"),
            ));
        }
        let newest_first = match self.order.as_deref() {
            None | Some("oldest") => false,
            Some("newest") => true,
            Some(_) => return Err(Error::invalid("order", "must be oldest or newest")),
        };
        Ok(RequestFilter {
            tracks: None,
            track: self.track.clone(),
            state,
            decided,
            requester: self.requester.clone().filter(|r| !r.trim().is_empty()),
            after: self.after_key(page)?,
            newest_first,
            limit: page.limit()?,
        })
    }

    /// Where the page starts: `cursor`, or `after` holding a cursor or the
    /// `created_at:id` that the first release answered with.
    fn after_key(&self, page: &PageQuery) -> Result<Option<String>> {
        let key = match (page.after::<RequestKey>()?, &self.after) {
            (Some(key), _) => key,
            (None, None) => return Ok(None),
            (None, Some(raw)) => {
                let as_cursor = PageQuery {
                    limit: None,
                    cursor: Some(raw.clone()),
                };
                match as_cursor.after::<RequestKey>() {
                    Ok(Some(key)) => key,
                    // The domain reads (and refuses) the older form itself.
                    _ => return Ok(Some(raw.clone())),
                }
            }
        };
        Ok(Some(format!("{}:{}", key.0, key.1)))
    }
}

/// Requests you may see, filtered, a page at a time.
///
/// You see the requests on the tracks you approve, or, if you approve none
/// (or ask for `mine`), your own.
#[utoipa::path(
    get, path = "/api/v1/promotions", tag = "promotions",
    params(PromotionQuery, PageQuery),
    responses(
        (status = 200, description = "A page of requests", body = Page<PromotionRequest>),
        (status = 422, description = "An unknown state, track or order, or a bad cursor; `field` names it", body = ErrorBody),
    )
)]
pub async fn list_promotions(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(q): Query<PromotionQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<PromotionRequest>>> {
    let ladder = &state.ladder;
    let mut filter = q.filter(ladder, &page)?;
    let mut conn = ladder.db.acquire().await?;
    let mine = q.mine == Some(true);
    policy::visible_list(ladder, &mut conn, &current.user, mine, &mut filter).await?;
    let found = promotions::list(&mut conn, &filter).await?;
    let ids: Vec<i64> = found.requests.iter().map(|r| r.request_id).collect();
    let mut approvals = promotions::approvals_of(&mut conn, &ids).await?;
    let next = found
        .next
        .and(found.requests.last())
        .map(|r| cursor_of(&(r.created_at, r.request_id)));
    let items = found
        .requests
        .iter()
        .map(|r| {
            let of_this = approvals.remove(&r.request_id).unwrap_or_default();
            PromotionRequest::of(r, &of_this)
        })
        .collect();
    Ok(Json(Page { items, next }))
}

#[derive(Deserialize, ToSchema)]
pub struct SubmitBody {
    /// The track to be promoted on.
    track: String,
    /// Why; required where the track says so.
    #[serde(default)]
    #[schema(max_length = 2000)]
    justification: String,
}

/// Ask for a promotion: as the caller, on a track whose from group they are in.
///
/// Each approver is emailed. Send an `Idempotency-Key` to make a retry safe.
#[utoipa::path(
    post, path = "/api/v1/promotions", tag = "promotions",
    request_body = SubmitBody,
    responses(
        (status = 201, description = "The new request, pending", body = PromotionWritten),
        (status = 404, description = "No such track", body = ErrorBody),
        (status = 409, description = "You may not ask on this track now (not in its from group, already in its to group, an open request, a closed track)", body = ErrorBody),
        (status = 422, description = "The justification is missing where required, or too long", body = ErrorBody),
    )
)]
pub async fn submit_promotion(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    ApiJson(body): ApiJson<SubmitBody>,
) -> ApiResult<(StatusCode, Json<PromotionWritten>)> {
    let justification = Justification::parse(&body.justification)?;
    let Committed { outcome, revision } = transitions::submit(
        &state.ladder,
        &current.api_actor(),
        &current.user,
        &body.track,
        justification,
    )
    .await?;
    // A new request has no approvals yet: nothing to read back.
    let request = PromotionRequest::of(&outcome, &[]);
    Ok((
        StatusCode::CREATED,
        Json(PromotionWritten { request, revision }),
    ))
}

/// One request: to its requester and the track's approvers (to anyone else
/// it does not exist).
#[utoipa::path(
    get, path = "/api/v1/promotions/{request_id}", tag = "promotions",
    params(("request_id" = i64, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request", body = PromotionRequest),
        (status = 404, description = "No such request, or one you may not see", body = ErrorBody),
    )
)]
pub async fn show_promotion(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
) -> ApiResult<Json<PromotionRequest>> {
    let ladder = &state.ladder;
    let mut conn = ladder.db.acquire().await?;
    let request = policy::visible_to(ladder, &mut conn, &current.user, request_id).await?;
    let approvals = promotions::approvals(&mut conn, request_id).await?;
    Ok(Json(PromotionRequest::of(&request, &approvals)))
}

/// The answer to a decision: the request as it now stands, and the revision.
async fn written(
    sql: &mut dyn Sql,
    request_id: i64,
    revision: i64,
) -> Result<Json<PromotionWritten>> {
    let request = promotions::get(sql, request_id).await?;
    let approvals = promotions::approvals(sql, request_id).await?;
    let request = PromotionRequest::of(&request, &approvals);
    Ok(Json(PromotionWritten { request, revision }))
}

/// Checks the caller may see the request: 404 otherwise, as for a missing one.
async fn check_visible(state: &AppState, user: &crate::accounts::User, id: i64) -> Result<()> {
    let mut conn = state.ladder.db.acquire().await?;
    policy::visible_to(&state.ladder, &mut conn, user, id).await?;
    Ok(())
}

#[derive(Deserialize, ToSchema, Default)]
pub struct ApproveBody {
    /// Told to the requester.
    #[serde(default)]
    #[schema(max_length = 2000)]
    comment: String,
}

/// Approve: the last approval a track needs grants the membership at once.
#[utoipa::path(
    post, path = "/api/v1/promotions/{request_id}/approve", tag = "promotions",
    params(("request_id" = i64, Path, description = "The request's id")),
    request_body(content = Option<ApproveBody>, description = "Optional; no body means no comment"),
    responses(
        (status = 200, description = "The request: `approved` once enough approvals are in", body = PromotionWritten),
        (status = 403, description = "Your own request; you do not hold a permission approval grants; or a narrowed token whose scope does not name one (the message names it)", body = ErrorBody),
        (status = 404, description = "No such request, or a track you do not approve", body = ErrorBody),
        (status = 409, description = "Already decided; already approved by you; the requester may no longer be promoted; the track is closed", body = ErrorBody),
    )
)]
pub async fn approve_promotion(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
    body: Bytes,
) -> ApiResult<Json<PromotionWritten>> {
    // The body is optional here: none, only blanks or `null` means no comment.
    let comment = if body.iter().all(u8::is_ascii_whitespace) {
        Comment::default()
    } else {
        let body = serde_json::from_slice::<Option<ApproveBody>>(&body).map_err(|e| {
            Error::invalid(
                "body",
                format!("not a JSON object with an optional \"comment\": {e}"),
            )
        })?;
        Comment::parse(&body.unwrap_or_default().comment)?
    };
    let ladder = &state.ladder;
    // approve checks who may decide (and so who may see) among its reads.
    let done = transitions::approve(
        ladder,
        &current.api_actor(),
        &current.user,
        request_id,
        comment,
    )
    .await?;
    let mut conn = ladder.db.acquire().await?;
    Ok(written(&mut conn, request_id, done.revision).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct RejectBody {
    /// Why; required, and told to the requester.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000)]
    reason: String,
}

/// Reject, with a reason the requester is told.
#[utoipa::path(
    post, path = "/api/v1/promotions/{request_id}/reject", tag = "promotions",
    params(("request_id" = i64, Path, description = "The request's id")),
    request_body = RejectBody,
    responses(
        (status = 200, description = "The request, rejected", body = PromotionWritten),
        (status = 403, description = "Your own request, or a narrowed token whose scope does not name a permission approval grants (the message names it)", body = ErrorBody),
        (status = 404, description = "No such request, or a track you do not approve", body = ErrorBody),
        (status = 409, description = "Already decided", body = ErrorBody),
        (status = 422, description = "No reason, or one too long (`field`: `reason`)", body = ErrorBody),
    )
)]
pub async fn reject_promotion(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
    ApiJson(body): ApiJson<RejectBody>,
) -> ApiResult<Json<PromotionWritten>> {
    check_visible(&state, &current.user, request_id).await?;
    let reason = Reason::parse(&body.reason)?;
    let ladder = &state.ladder;
    let actor = current.api_actor();
    let done = transitions::reject(ladder, &actor, &current.user, request_id, reason).await?;
    let mut conn = ladder.db.acquire().await?;
    Ok(written(&mut conn, request_id, done.revision).await?)
}

/// Withdraw your own pending request.
#[utoipa::path(
    post, path = "/api/v1/promotions/{request_id}/withdraw", tag = "promotions",
    params(("request_id" = i64, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request, withdrawn", body = PromotionWritten),
        (status = 403, description = "Not your request", body = ErrorBody),
        (status = 404, description = "No such request, or one you may not see", body = ErrorBody),
        (status = 409, description = "No longer pending", body = ErrorBody),
    )
)]
pub async fn withdraw_promotion(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Id(request_id): Id,
) -> ApiResult<Json<PromotionWritten>> {
    check_visible(&state, &current.user, request_id).await?;
    let ladder = &state.ladder;
    let actor = current.api_actor();
    let done = transitions::withdraw(ladder, &actor, &current.user, request_id).await?;
    let mut conn = ladder.db.acquire().await?;
    Ok(written(&mut conn, request_id, done.revision).await?)
}
