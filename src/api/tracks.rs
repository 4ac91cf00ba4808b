//! `GET /api/v1/tracks`: the promotion tracks with their rules, as config
//! sets them and as they stand now.

use axum::{
    Json,
    extract::{Query, State},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    ApiResult,
    paging::{Page, PageQuery},
};
use crate::{
    promotions::view::{self, TrackStatus},
    web::{state::AppState, viewer::SignedIn},
};

/// A track: members of `from_group` ask to join `to_group`; members of
/// `approver_group` decide.
#[derive(Serialize, ToSchema)]
pub struct TrackJson {
    name: String,
    from_group: String,
    to_group: String,
    approver_group: String,
    /// Approvals needed before the membership is granted.
    approvals_required: u32,
    /// Whether asking needs a justification.
    reason_required: bool,
    /// Seconds until an undecided request expires; null: never.
    pending_expires_after_seconds: Option<i64>,
    /// Seconds before approvers are reminded, and between reminders; null: never.
    remind_after_seconds: Option<i64>,
    /// Seconds a granted membership lasts; null: for good.
    grant_duration_seconds: Option<i64>,
    /// Whether requests may be approved now.
    open: bool,
    /// Why not, while closed (its groups are missing or rebound, or its
    /// approvers lack a permission that approval grants).
    problem: Option<String>,
    /// The permissions approval grants: the to group's, now.
    grants: Vec<String>,
    /// Whether you decide requests on this track.
    you_approve: bool,
    /// Whether you may ask for this track now.
    you_may_ask: bool,
    /// Why you may not, if you may not.
    why_not: Option<String>,
}

impl From<TrackStatus> for TrackJson {
    fn from(s: TrackStatus) -> TrackJson {
        let t = s.track;
        TrackJson {
            name: t.name,
            from_group: t.from_group,
            to_group: t.to_group,
            approver_group: t.approver_group,
            approvals_required: t.approvals_required,
            reason_required: t.reason_required,
            pending_expires_after_seconds: t.pending_expires_after,
            remind_after_seconds: t.remind_after,
            grant_duration_seconds: t.grant_duration,
            open: s.problem.is_none(),
            problem: s.problem,
            grants: s.grants,
            you_approve: s.approves,
            you_may_ask: s.blocked.is_none(),
            why_not: s.blocked,
        }
    }
}

/// The promotion tracks, by name, with their rules.
#[utoipa::path(
    get, path = "/api/v1/tracks", tag = "promotions",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of tracks", body = Page<TrackJson>),
    )
)]
pub async fn list_tracks(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<TrackJson>>> {
    let limit = page.limit()?;
    let after = page.after::<String>()?;
    let tracks =
        view::track_statuses(&state.ladder, &current.user, after.as_deref(), limit).await?;
    let page = Page::of(tracks, limit, |s| s.track.name.clone());
    Ok(Json(page.map(TrackJson::from)))
}
