//! What the promotion pages show, read and decided here so the handlers stay
//! thin: the tracks one may ask for, the review queue, and one request with
//! exactly what approval would add and which decisions the viewer may make.

use serde::Serialize;
use serde_json::Value;

use super::{
    Approval, Request, RequestFilter, State,
    policy::{self, Decision},
    track::Track,
};
use crate::{
    Error, Ladder, Result,
    accounts::{User, groups, users},
    actor::Actor,
    audit::{self, AuditEvent},
    permissions::{catalog, effective},
};

/// A track on the "ask" form.
#[derive(Serialize)]
pub struct TrackOption {
    pub name: String,
    pub from_group: String,
    pub to_group: String,
    pub reason_required: bool,
    /// Why this viewer may not ask, if they may not.
    pub blocked: Option<String>,
}

/// Every track, each with why `user` may not ask for it now (the eligibility rule).
pub async fn ask_options(ladder: &Ladder, user: &User) -> Result<Vec<TrackOption>> {
    let mut conn = ladder.db.acquire().await?;
    let mut tracks = Vec::new();
    for track in ladder.tracks.iter() {
        tracks.push(TrackOption {
            name: track.name.clone(),
            from_group: track.from_group.clone(),
            to_group: track.to_group.clone(),
            reason_required: track.reason_required,
            blocked: policy::ineligibility(&mut conn, track, user).await?,
        });
    }
    Ok(tracks)
}

/// A track as the API lists it: its rules, whether approvals may go ahead
/// now, what approval grants, and what the viewer may do on it.
pub struct TrackStatus {
    pub track: Track,
    /// Why the track is closed or its approvals paused, read now; None while open.
    pub problem: Option<String>,
    /// The permissions approval grants (the to group's now), by name.
    pub grants: Vec<String>,
    /// Whether the viewer decides requests on it.
    pub approves: bool,
    /// Why the viewer may not ask for it now; None if they may.
    pub blocked: Option<String>,
}

/// The tracks by name after `after`, up to `limit + 1` (the extra one only
/// says there is a next page), each as `user` sees it.
pub async fn track_statuses(
    ladder: &Ladder,
    user: &User,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<TrackStatus>> {
    let mut tracks: Vec<&Track> = ladder
        .tracks
        .iter()
        .filter(|t| after.is_none_or(|a| t.name.as_str() > a))
        .collect();
    tracks.sort_by(|a, b| a.name.cmp(&b.name));
    tracks.truncate(usize::try_from(limit + 1).unwrap_or(usize::MAX));
    let mut conn = ladder.db.acquire().await?;
    let mut statuses = Vec::with_capacity(tracks.len());
    for track in tracks {
        let problem = match super::track::check_open(&mut conn, track).await {
            Ok(()) => None,
            Err(Error::Conflict(why)) => Some(why),
            Err(e) => return Err(e),
        };
        let grants = match track.groups {
            Some(ids) => catalog::of_group(&mut conn, ids.to)
                .await?
                .iter()
                .map(|p| p.name().to_string())
                .collect(),
            None => vec![],
        };
        statuses.push(TrackStatus {
            track: track.clone(),
            problem,
            grants,
            approves: policy::is_approver(&mut conn, track, user).await?,
            blocked: policy::ineligibility(&mut conn, track, user).await?,
        });
    }
    Ok(statuses)
}

/// The review dashboard's filters, as the query string gives them.
#[derive(Debug, Default, Clone, serde::Deserialize, Serialize)]
pub struct ReviewQuery {
    #[serde(default)]
    pub track: String,
    /// "pending" (the queue) or "history".
    #[serde(default)]
    pub tab: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub requester: String,
    #[serde(default)]
    pub after: String,
}

/// A page of the review dashboard.
#[derive(Serialize)]
pub struct Review {
    /// Each request with its approvals and how many it needs.
    pub requests: Vec<Value>,
    pub tracks: Vec<String>,
    pub history: bool,
    /// The query string of the next page, if any.
    pub next_query: Option<String>,
}

/// The requests on the tracks `user` decides: open ones oldest first, or
/// (the history tab) decided ones newest first. Refused to non-approvers.
pub async fn review(
    ladder: &Ladder,
    user: &User,
    query: &ReviewQuery,
    limit: i64,
) -> Result<Review> {
    let mut conn = ladder.db.acquire().await?;
    let tracks = policy::approved_tracks(ladder, &mut conn, user).await?;
    if tracks.is_empty() {
        return Err(Error::Forbidden(
            "The review dashboard is for approvers: members of a track's approver group.".into(),
        ));
    }
    let history = query.tab == "history";
    let state = match history {
        true => Some(query.state.as_str())
            .filter(|s| !s.is_empty() && *s != "pending")
            .map(State::parse)
            .transpose()?,
        false => Some(State::Pending),
    };
    let filter = RequestFilter {
        tracks: Some(tracks.clone()),
        track: Some(query.track.clone()).filter(|t| !t.is_empty()),
        state,
        decided: history,
        requester: Some(query.requester.clone()).filter(|r| !r.trim().is_empty()),
        after: Some(query.after.clone()).filter(|a| !a.is_empty()),
        newest_first: history,
        limit,
    };
    let found = super::list(&mut conn, &filter).await?;
    // The history holds decided requests only (`decided`), so every page is full.
    let shown: Vec<Request> = found.requests;
    let ids: Vec<i64> = shown.iter().map(|r| r.request_id).collect();
    let mut approvals = super::approvals_of(&mut conn, &ids).await?;
    let requests = shown
        .into_iter()
        .map(|r| {
            let needed = ladder.track(&r.track).map_or(1, |t| t.approvals_required);
            let approvals = approvals.remove(&r.request_id).unwrap_or_default();
            crate::ctx! { r, approvals, needed }
        })
        .collect();
    let next_query = found.next.map(|next| {
        let mut next_page = query.clone();
        next_page.after = next;
        serde_urlencoded::to_string(&next_page).unwrap_or_default()
    });
    Ok(Review {
        requests,
        tracks,
        history,
        next_query,
    })
}

/// One request as its page shows it to the viewer.
#[derive(Serialize)]
pub struct RequestView {
    pub request: Request,
    pub track: Track,
    /// The target group as it is called now (the track follows it by id).
    pub to_group: String,
    pub requester_groups: Vec<String>,
    pub held: Vec<String>,
    pub would_add: Vec<String>,
    pub approvals: Vec<Approval>,
    /// The request's audit events; the page shows them as the console does.
    #[serde(skip)]
    pub trail: Vec<AuditEvent>,
    /// Why an approval would not go through now, if it would not.
    pub blocked: Option<String>,
    pub can_approve: bool,
    pub can_reject: bool,
    pub already_approved: bool,
    pub can_withdraw: bool,
    pub can_end: bool,
}

impl RequestView {
    /// The request `request_id` as `viewer` (acting as `actor`) may see it; a
    /// request they may not see does not exist (404).
    pub async fn load(
        ladder: &Ladder,
        viewer: &User,
        actor: &Actor,
        request_id: i64,
    ) -> Result<RequestView> {
        let mut conn = ladder.db.acquire().await?;
        let request = policy::visible_to(ladder, &mut conn, viewer, request_id).await?;
        let track = ladder.track(&request.track)?.clone();
        let is_requester = request.requester_id == viewer.user_id;
        let is_approver = policy::is_approver(&mut conn, &track, viewer).await?;
        let requester = users::find_by_id(&mut conn, request.requester_id)
            .await?
            .ok_or_else(|| Error::NotFound("the requester".into()))?;
        let requester_groups = users::group_names(&mut conn, requester.user_id).await?;
        let eff = effective::load(&mut conn, requester.user_id).await?;
        let (would_add, to_group) = match track.groups {
            Some(ids) => (
                catalog::of_group(&mut conn, ids.to)
                    .await?
                    .iter()
                    .map(|p| p.name().to_string())
                    .filter(|p| !eff.has_perm(p))
                    .collect(),
                groups::find_by_id(&mut conn, ids.to).await?.map(|g| g.name),
            ),
            None => (vec![], None),
        };
        let approvals = super::approvals(&mut conn, request_id).await?;
        let trail = audit::for_target(&mut conn, "promotion", request_id).await?;
        let pending = request.state == State::Pending;
        let already_approved = approvals.iter().any(|a| a.approver == viewer.username);
        // What the viewer may decide: the decision's own rule, in a dry run.
        let mut dry_run = async |decision| {
            policy::may_decide(
                &mut conn,
                &track,
                &request,
                viewer,
                actor,
                is_approver,
                decision,
            )
            .await
        };
        let approval = dry_run(Decision::Approve).await;
        let can_reject = dry_run(Decision::Reject).await.is_ok();
        let can_approve = approval.is_ok();
        let blocked = match approval {
            _ if !pending || already_approved => None,
            Err(e @ (Error::Conflict(_) | Error::Forbidden(_))) if !is_requester => {
                Some(e.to_string())
            }
            _ if is_requester => policy::still_eligible(&mut conn, &track, &request)
                .await
                .err()
                .map(|e| e.to_string()),
            _ => None,
        };
        Ok(RequestView {
            to_group: to_group.unwrap_or_else(|| track.to_group.clone()),
            held: eff.granted().keys().map(|k| k.to_string()).collect(),
            can_withdraw: pending && is_requester,
            can_end: request.state == State::Approved && is_approver,
            request,
            track,
            requester_groups,
            would_add,
            approvals,
            trail,
            blocked,
            can_approve,
            can_reject,
            already_approved,
        })
    }
}
