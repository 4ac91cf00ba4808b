//! Promotion pages: asking, one's own requests, the review dashboard, a request.

use crate::web::error::Id;
use std::collections::BTreeMap;

use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::{
    RequestFilter, State as RequestState,
    policy::{self, Decision},
    reasons::{Comment, Justification, Reason},
    transitions::{self, Approval},
};
use crate::{
    Error, Result,
    accounts::{groups, users},
    actor::{Actor, Source},
    audit,
    permissions::{catalog, effective},
    web::{
        auth::{SignedIn, Viewer, flash},
        page::Page,
        state::AppState,
        templates::render,
    },
};

const PAGE_SIZE: i64 = 50;

fn web_actor(current: &crate::web::auth::CurrentUser) -> Actor {
    Actor::user(current.user.clone(), Source::Web)
}

#[derive(Serialize)]
struct TrackOption {
    name: String,
    from_group: String,
    to_group: String,
    reason_required: bool,
    /// Why this viewer may not ask, if they may not.
    blocked: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct AskForm {
    #[serde(default)]
    track: String,
    #[serde(default)]
    justification: String,
}

async fn ask_page(
    state: &AppState,
    viewer: &Viewer,
    session: &Session,
    form: &AskForm,
    errors: BTreeMap<&'static str, String>,
) -> Result<Response> {
    let SignedIn(current) = SignedIn(viewer.0.clone().ok_or(Error::Unauthorized)?);
    let mut conn = state.ladder.db.acquire().await?;
    let mut tracks = Vec::new();
    for track in state.ladder.tracks.iter() {
        tracks.push(TrackOption {
            name: track.name.clone(),
            from_group: track.from_group.clone(),
            to_group: track.to_group.clone(),
            reason_required: track.reason_required,
            blocked: policy::ineligibility(&mut conn, track, &current.user).await?,
        });
    }
    drop(conn);
    let eligible = tracks.iter().any(|t| t.blocked.is_none());
    let page = Page::new(state, viewer, session).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = render(
        "promotions/new.html",
        crate::ctx! { page, tracks, eligible, errors, track => form.track, justification => form.justification },
    )?;
    Ok((status, body).into_response())
}

pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    ask_page(
        &state,
        &viewer,
        &session,
        &AskForm::default(),
        BTreeMap::new(),
    )
    .await
}

pub async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Form(form): Form<AskForm>,
) -> Result<Response> {
    let outcome = async {
        let justification = Justification::parse(&form.justification)?;
        transitions::submit(
            &state.ladder,
            &web_actor(&current),
            &current.user,
            &form.track,
            justification,
        )
        .await
    }
    .await;
    match outcome {
        Ok(request) => {
            flash(
                &session,
                "success",
                format!(
                    "Request #{} sent. The approvers have been emailed.",
                    request.request_id
                ),
            )
            .await?;
            Ok(Redirect::to("/promotions/mine").into_response())
        }
        Err(Error::Invalid { field, message }) => {
            ask_page(
                &state,
                &viewer,
                &session,
                &form,
                BTreeMap::from([(field, message)]),
            )
            .await
        }
        Err(e @ (Error::Conflict(_) | Error::NotFound(_))) => {
            ask_page(
                &state,
                &viewer,
                &session,
                &form,
                BTreeMap::from([("track", e.to_string())]),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

pub async fn mine(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let requests = super::by_requester(&mut conn, current.user.user_id).await?;
    drop(conn);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("promotions/mine.html", crate::ctx! { page, requests })?.into_response())
}

#[derive(Deserialize, Serialize, Default)]
pub struct ReviewQuery {
    #[serde(default)]
    track: String,
    /// "pending" (the queue) or "history".
    #[serde(default)]
    tab: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    requester: String,
    #[serde(default)]
    after: String,
}

/// The approvers' dashboard: open requests on the tracks the viewer decides,
/// oldest first; the history tab shows decided ones, newest first.
pub async fn review(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Query(query): Query<ReviewQuery>,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let tracks = policy::approved_tracks(&state.ladder, &mut conn, &current.user).await?;
    if tracks.is_empty() {
        return Err(Error::Forbidden(
            "The review dashboard is for approvers: members of a track's approver group.".into(),
        ));
    }
    let history = query.tab == "history";
    let state_filter = if history {
        Some(query.state.as_str())
            .filter(|s| !s.is_empty() && *s != "pending")
            .map(RequestState::parse)
            .transpose()?
    } else {
        Some(RequestState::Pending)
    };
    let filter = RequestFilter {
        tracks: Some(tracks.clone()),
        track: Some(query.track.clone()).filter(|t| !t.is_empty()),
        state: state_filter,
        requester: Some(query.requester.clone()).filter(|r| !r.trim().is_empty()),
        after: Some(query.after.clone()).filter(|a| !a.is_empty()),
        newest_first: history,
        limit: PAGE_SIZE,
    };
    let found = super::list(&mut conn, &filter).await?;
    let mut requests = Vec::new();
    for r in found
        .requests
        .into_iter()
        .filter(|r| !history || r.state != RequestState::Pending)
    {
        let approvals = super::approvals(&mut conn, r.request_id).await?;
        requests.push(crate::ctx! { r, approvals, needed => state.ladder.track(&r.track).map(|t| t.approvals_required).unwrap_or(1) });
    }
    drop(conn);
    let next_query = found.next.map(|next| {
        serde_urlencoded::to_string([
            ("track", query.track.as_str()),
            ("tab", &query.tab),
            ("state", &query.state),
            ("requester", &query.requester),
            ("after", &next),
        ])
        .unwrap_or_default()
    });
    let now = state.ladder.clock.now();
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render(
        "promotions/review.html",
        crate::ctx! { page, requests, tracks, query, history, next_query, now },
    )?
    .into_response())
}

/// A request: who asks, what they hold now, exactly what approval would add,
/// and the request's audit trail.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Id(request_id): Id,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let request = policy::visible_to(&state.ladder, &mut conn, &current.user, request_id).await?;
    let track = state.ladder.track(&request.track)?.clone();
    let is_requester = request.requester_id == current.user.user_id;
    let is_approver = policy::is_approver(&mut conn, &track, &current.user).await?;
    let requester = users::find_by_id(&mut conn, request.requester_id)
        .await?
        .ok_or_else(|| Error::NotFound("the requester".into()))?;
    let requester_groups = users::group_names(&mut conn, requester.user_id).await?;
    let eff = effective::load(&mut conn, requester.user_id).await?;
    let held: Vec<String> = eff.granted().keys().map(|k| k.to_string()).collect();
    let would_add: Vec<String> = match track.groups {
        Some(ids) => catalog::of_group(&mut conn, ids.to)
            .await?
            .iter()
            .map(|p| p.name().to_string())
            .filter(|p| !eff.has_perm(p))
            .collect(),
        None => vec![],
    };
    // The group as it is called now (the track follows it by id).
    let to_group = match track.groups {
        Some(ids) => groups::find_by_id(&mut conn, ids.to).await?.map(|g| g.name),
        None => None,
    }
    .unwrap_or_else(|| track.to_group.clone());
    let approvals = super::approvals(&mut conn, request_id).await?;
    let trail: Vec<_> = audit::for_target(&mut conn, "promotion", request_id)
        .await?
        .iter()
        .map(crate::admin::audit::event_row)
        .collect();
    let pending = request.state == RequestState::Pending;
    let already_approved = approvals
        .iter()
        .any(|a| a.approver == current.user.username);
    // What the viewer may decide: the decision's own rule, in a dry run.
    let actor = web_actor(&current);
    let mut dry_run = async |decision| {
        policy::may_decide(
            &mut conn,
            &track,
            &request,
            &current.user,
            &actor,
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
        Err(e @ (Error::Conflict(_) | Error::Forbidden(_))) if !is_requester => Some(e.to_string()),
        _ if is_requester => policy::still_eligible(&mut conn, &track, &request)
            .await
            .err()
            .map(|e| e.to_string()),
        _ => None,
    };
    drop(conn);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render(
        "promotions/show.html",
        crate::ctx! {
            page, request, track, to_group, requester_groups, held, would_add, approvals, trail, blocked,
            can_approve, can_reject, already_approved,
            can_withdraw => pending && is_requester,
            can_end => request.state == RequestState::Approved && is_approver,
        },
    )?
    .into_response())
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reason: String,
}

/// Runs one decision in a transaction and turns the outcome into a flash
/// message on the request page: "already decided" is news, not an error page.
async fn decide(
    state: &AppState,
    session: &Session,
    current: &crate::web::auth::CurrentUser,
    request_id: i64,
    action: impl AsyncFnOnce() -> Result<String>,
) -> Result<Response> {
    // Someone who may not see the request learns nothing about it, not even its state.
    {
        let mut conn = state.ladder.db.acquire().await?;
        policy::visible_to(&state.ladder, &mut conn, &current.user, request_id).await?;
    }
    // The transition has its own transaction; on an error nothing was written.
    match action().await {
        Ok(message) => flash(session, "success", message).await?,
        Err(e @ Error::Forbidden(_)) => return Err(e),
        Err(e @ (Error::Conflict(_) | Error::Invalid { .. })) => {
            flash(session, "error", e.to_string()).await?;
        }
        Err(e) => return Err(e),
    }
    Ok(Redirect::to(&format!("/promotions/{request_id}")).into_response())
}

pub async fn approve(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(request_id): Id,
    Form(form): Form<DecisionForm>,
) -> Result<Response> {
    let ladder = state.ladder.clone();
    decide(&state, &session, &current, request_id, async || {
        Ok(
            match transitions::approve(
                &ladder,
                &web_actor(&current),
                &current.user,
                request_id,
                Comment::parse(&form.comment)?,
            )
            .await?
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

pub async fn reject(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(request_id): Id,
    Form(form): Form<DecisionForm>,
) -> Result<Response> {
    let ladder = state.ladder.clone();
    decide(&state, &session, &current, request_id, async || {
        transitions::reject(
            &ladder,
            &web_actor(&current),
            &current.user,
            request_id,
            Reason::parse(&form.reason)?,
        )
        .await?;
        Ok("Rejected. The requester has been emailed your reason.".to_string())
    })
    .await
}

pub async fn withdraw_form(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Id(request_id): Id,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let request = policy::visible_to(&state.ladder, &mut conn, &current.user, request_id).await?;
    drop(conn);
    if request.requester_id != current.user.user_id {
        return Err(Error::Forbidden(
            "Only the person who asked can withdraw a request.".into(),
        ));
    }
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("promotions/withdraw.html", crate::ctx! { page, request })?.into_response())
}

pub async fn withdraw(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(request_id): Id,
) -> Result<Response> {
    let ladder = state.ladder.clone();
    decide(&state, &session, &current, request_id, async || {
        transitions::withdraw(&ladder, &web_actor(&current), &current.user, request_id).await?;
        Ok("Request withdrawn.".to_string())
    })
    .await
}

pub async fn end(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(request_id): Id,
) -> Result<Response> {
    let ladder = state.ladder.clone();
    decide(&state, &session, &current, request_id, async || {
        let mut tx = ladder.db.begin().await?;
        transitions::end_grant(
            &ladder,
            &mut tx,
            &web_actor(&current),
            Some(&current.user),
            request_id,
        )
        .await?;
        tx.commit().await?;
        ladder.mail_wake.notify_one();
        Ok("The grant has ended; the membership is removed.".to_string())
    })
    .await
}
