//! The transitions of a promotion request. Each changes state with one atomic
//! `update … where state = …` (so of two deciders only one wins; the other
//! gets "already decided"), writes an audit event and queues its emails in
//! the same transaction.
//!
//! `submit` and `approve`, the busy ones, do their reads first and then their
//! writes as one `Db::write` job (on SQLite, on the write thread: SQLite has
//! one writer, so a write should last only as long as its statements). What
//! may change in between is checked again by the writes themselves (the
//! request's state, one open request per person, the requester's
//! eligibility in the membership insert). The others run in the caller's
//! transaction.

use serde_json::json;

use super::{
    Request, State, Track,
    track::{self, Role},
};
use crate::{
    Error, Ladder, Result,
    accounts::{Group, User, groups, users},
    actor::{Actor, Source},
    audit::{self, AuditEntry},
    binds,
    db::{Conn, Finish, Writer, pick},
    mail::{self, Email},
};

/// Justifications and reasons: trimmed, at most 2,000 characters, no control
/// characters but line breaks and tabs.
pub fn parse_text(field: &'static str, raw: &str, required: bool) -> Result<String> {
    let text = raw.trim();
    if required && text.is_empty() {
        return Err(Error::invalid(field, "Please give a reason."));
    }
    if text.chars().count() > 2_000 {
        return Err(Error::invalid(field, "Keep it under 2,000 characters."));
    }
    crate::text::check(field, text, crate::text::Lines::Many)?;
    Ok(text.to_string())
}

/// Why someone may not ask for a track right now.
pub async fn ineligibility(conn: &mut Conn, track: &Track, user: &User) -> Result<Option<String>> {
    if !user.is_active {
        return Ok(Some("The account is inactive.".into()));
    }
    if let Err(closed) = track.bound() {
        return Ok(Some(closed.to_string()));
    }
    if !track::in_role(conn, track, Role::From, user.user_id).await? {
        return Ok(Some(format!(
            "Only members of {} can ask for this.",
            track.from_group
        )));
    }
    if track::in_role(conn, track, Role::To, user.user_id).await? {
        return Ok(Some(format!("Already a member of {}.", track.to_group)));
    }
    let open: Option<i64> = sqlx::query_scalar(
        "select request_id from promotion_requests where requester_id = $1 and track = $2 and state = 'pending'",
    )
    .bind(user.user_id)
    .bind(&track.name)
    .fetch_optional(conn)
    .await?;
    if let Some(id) = open {
        return Ok(Some(format!(
            "There is already an open request (#{id}) on this track."
        )));
    }
    Ok(None)
}

/// Everyone in the track's approver group (the group it is bound to, by id),
/// active or not, by username; nobody while the track is refused.
async fn approver_group(conn: &mut Conn, track: &Track) -> Result<Vec<User>> {
    let Some(ids) = track.groups else {
        return Ok(vec![]);
    };
    Ok(sqlx::query_as(
        "select u.user_id, u.username, u.email, u.display_name, u.password_hash, u.is_active, \
                u.is_staff, u.is_superuser, u.last_login, u.created_at \
           from promotion_track_groups b \
           join user_groups ug on ug.group_id = b.group_id \
           join users u on u.user_id = ug.user_id \
          where b.track = $1 and b.role = $2 and b.group_id = $3 order by u.username_key",
    )
    .bind(&track.name)
    .bind(Role::Approver.as_str())
    .bind(ids.approver)
    .fetch_all(&mut *conn)
    .await?)
}

/// Who of `members` gets a track's emails: the active ones with an email, except `except`.
fn mailable(members: Vec<User>, except: Option<i64>) -> Vec<User> {
    members
        .into_iter()
        .filter(|u| u.is_active && !u.email.is_empty() && Some(u.user_id) != except)
        .collect()
}

/// Active members of the approver group who have an email, except `except`.
pub async fn approvers(conn: &mut Conn, track: &Track, except: Option<i64>) -> Result<Vec<User>> {
    Ok(mailable(approver_group(conn, track).await?, except))
}

/// Whether `user` decides requests on `track`: an active member of its approver group, or the superuser.
pub async fn is_approver(conn: &mut Conn, track: &Track, user: &User) -> Result<bool> {
    if !user.is_active || user.is_superuser {
        return Ok(decides(user, false));
    }
    let member = track::in_role(conn, track, Role::Approver, user.user_id).await?;
    Ok(decides(user, member))
}

/// The rule behind `is_approver`, given whether `user` is in the approver group.
fn decides(user: &User, in_approver_group: bool) -> bool {
    user.is_active && (user.is_superuser || in_approver_group)
}

/// The request, if `user` may see it: its requester and the track's approvers
/// may; to anyone else it does not exist (404, not 403, so ids reveal nothing).
pub async fn visible_to(
    ladder: &Ladder,
    conn: &mut Conn,
    user: &User,
    request_id: i64,
) -> Result<Request> {
    let hidden = || Error::NotFound(format!("promotion request {request_id}"));
    let request = super::find(conn, request_id).await?.ok_or_else(hidden)?;
    let track = ladder.track(&request.track)?;
    if request.requester_id == user.user_id || is_approver(conn, track, user).await? {
        Ok(request)
    } else {
        Err(hidden())
    }
}

/// The tracks `user` approves.
pub async fn approved_tracks(ladder: &Ladder, conn: &mut Conn, user: &User) -> Result<Vec<String>> {
    let mut tracks = Vec::new();
    for track in ladder.tracks.iter() {
        if is_approver(conn, track, user).await? {
            tracks.push(track.name.clone());
        }
    }
    Ok(tracks)
}

fn entry(action: &'static str, request_id: i64, track: &str, requester: &str) -> AuditEntry {
    AuditEntry::new(
        action,
        "promotion",
        Some(request_id),
        &format!("#{request_id} {track} for {requester}"),
    )
}

fn request_context(ladder: &Ladder, request: &Request, track: &Track) -> serde_json::Value {
    json!({
        "request_id": request.request_id,
        "requester": request.requester,
        "track": track.name,
        "from_group": track.from_group,
        "to_group": track.to_group,
        "justification": request.justification,
        "url": format!("{}/promotions/{}", ladder.settings.server.public_url.trim_end_matches('/'), request.request_id),
    })
}

async fn queue(
    ladder: &Ladder,
    w: &mut dyn Writer,
    template: &'static str,
    to: &User,
    context: serde_json::Value,
    now: i64,
) -> Result<()> {
    let mut context = context;
    context["recipient"] = json!(if to.display_name.is_empty() {
        &to.username
    } else {
        &to.display_name
    });
    mail::enqueue(
        w,
        &ladder.settings.server.public_url,
        Email {
            template,
            to: to.email.clone(),
            context,
            dedupe_key: None,
        },
        now,
    )
    .await?;
    Ok(())
}

/// A writer asks. Each approver gets an email of their own.
pub async fn submit(
    ladder: &Ladder,
    actor: &Actor,
    requester: &User,
    track_name: &str,
    justification: &str,
) -> Result<Request> {
    let track = ladder.track(track_name)?;
    let justification = parse_text("justification", justification, track.reason_required)?;
    let recipients = {
        let mut conn = ladder.db.acquire().await?;
        if let Some(why) = ineligibility(&mut conn, track, requester).await? {
            return Err(Error::Conflict(why));
        }
        approvers(&mut conn, track, Some(requester.user_id)).await?
    };
    let now = ladder.clock.now();
    let expires_at = track.pending_expires_after.map(|d| now + d);
    let request = Request {
        request_id: 0,
        track: track.name.clone(),
        requester_id: requester.user_id,
        requester: requester.username.clone(),
        justification,
        state: State::Pending.as_str().to_string(),
        decided_by: None,
        decided_at: None,
        decision_reason: None,
        expires_at,
        grant_ends_at: None,
        ended_at: None,
        created_at: now,
        updated_at: now,
    };
    let (job_ladder, actor, track) = (ladder.clone(), actor.clone(), track.clone());
    let stored = ladder
        .db
        .write(move |w| {
            Box::pin(async move {
                let ladder = &job_ladder;
                let mut request = request;
                // The unique index on open requests skips a second one made meanwhile.
                let Some(request_id) = w
                    .fetch_i64(
                        "insert into promotion_requests (track, requester_id, justification, state, \
                         expires_at, created_at, updated_at) values ($1, $2, $3, 'pending', $4, $5, $5) \
                         on conflict do nothing returning request_id",
                        binds![
                            &track.name,
                            request.requester_id,
                            &request.justification,
                            expires_at,
                            now,
                        ],
                    )
                    .await?
                else {
                    return Ok(Finish::Rollback(None));
                };
                request.request_id = request_id;
                audit::record(
                    w,
                    &actor,
                    entry("promotion.submit", request_id, &track.name, &request.requester)
                        .after(json!({ "state": "pending", "justification": request.justification })),
                    now,
                )
                .await?;
                let context = request_context(ladder, &request, &track);
                for approver in &recipients {
                    queue(ladder, w, "request_submitted", approver, context.clone(), now).await?;
                }
                Ok(Finish::Commit(Some(request)))
            })
        })
        .await?;
    let request = stored
        .ok_or_else(|| Error::Conflict("There is already an open request on this track.".into()))?;
    ladder.mail_wake.notify_one();
    Ok(request)
}

/// What an approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The last approval needed: the membership is granted.
    Approved,
    /// Recorded; more approvals are needed.
    Recorded { have: u32, need: u32 },
}

/// Locks the request row for the rest of the transaction (PostgreSQL; SQLite's
/// write transaction is already exclusive) and checks it is still pending.
async fn lock_pending(ladder: &Ladder, conn: &mut Conn, request_id: i64) -> Result<Request> {
    let lock = pick(ladder.db.backend(), "", " for update of r");
    let request: Request =
        sqlx::query_as(&format!("{} where r.request_id = $1{lock}", super::SELECT))
            .bind(request_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::NotFound(format!("promotion request {request_id}")))?;
    if request.state() != State::Pending {
        return Err(already(&request));
    }
    Ok(request)
}

fn already(request: &Request) -> Error {
    let by = request
        .decided_by
        .as_deref()
        .map(|d| format!(" by {d}"))
        .unwrap_or_default();
    Error::Conflict(format!(
        "Request #{} is already {}{by}.",
        request.request_id, request.state
    ))
}

/// Refuses a decider who is the requester (403) or who does not approve the
/// track (404: to them the request does not exist, as in `visible_to`).
fn check_decider(request: &Request, decider: &User, approves: bool) -> Result<()> {
    if decider.user_id == request.requester_id {
        return Err(Error::Forbidden(
            "You cannot decide your own request.".into(),
        ));
    }
    if !approves {
        return Err(Error::NotFound(format!(
            "promotion request {}",
            request.request_id
        )));
    }
    Ok(())
}

/// Re-checks, at decision time, that the requester may still be promoted.
pub async fn still_eligible(conn: &mut Conn, track: &Track, request: &Request) -> Result<User> {
    let requester = users::find_by_id(conn, request.requester_id)
        .await?
        .ok_or_else(|| Error::NotFound("the requester".into()))?;
    if !requester.is_active {
        return Err(Error::Conflict(format!(
            "{} is no longer active, so this cannot be approved.",
            requester.username
        )));
    }
    if !track::in_role(conn, track, Role::From, requester.user_id).await? {
        return Err(Error::Conflict(format!(
            "{} is no longer in {}, so this cannot be approved.",
            requester.username, track.from_group
        )));
    }
    if track::in_role(conn, track, Role::To, requester.user_id).await? {
        return Err(Error::Conflict(format!(
            "{} is already in {}.",
            requester.username, track.to_group
        )));
    }
    Ok(requester)
}

/// A decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// The one rule for deciding: may `decider` (acting as `actor`; `approves`
/// from `is_approver`) make `decision` on `request` now? Refuses the requester
/// (403) and non-approvers (404), a decided request (409), and, for an
/// approval: a track that is closed or whose approvers lack a permission it
/// grants (409), a requester who may no longer be promoted (409), a second
/// approval by the same person (409) and an approver who does not hold every
/// permission of the target group (403). `approve` and `reject` call it before
/// they write; the request page calls it in a dry run, so it offers only the
/// decisions that would go through.
pub async fn may_decide(
    conn: &mut Conn,
    track: &Track,
    request: &Request,
    decider: &User,
    actor: &Actor,
    approves: bool,
    decision: Decision,
) -> Result<()> {
    match decision {
        Decision::Reject => {
            // Before the state: someone who may not see the request learns nothing.
            check_decider(request, decider, approves)?;
            if request.state() != State::Pending {
                return Err(already(request));
            }
            Ok(())
        }
        Decision::Approve => may_approve(conn, track, request, decider, actor, approves)
            .await
            .map(|_| ()),
    }
}

/// `may_decide` for an approval; returns the requester and the target group as read.
async fn may_approve(
    conn: &mut Conn,
    track: &Track,
    request: &Request,
    approver: &User,
    actor: &Actor,
    approves: bool,
) -> Result<(User, Group)> {
    check_decider(request, approver, approves)?;
    if request.state() != State::Pending {
        return Err(already(request));
    }
    track::check_open(conn, track).await?;
    let requester = still_eligible(conn, track, request).await?;
    let approved: Option<i64> = sqlx::query_scalar(
        "select 1 from promotion_approvals where request_id = $1 and approver_id = $2",
    )
    .bind(request.request_id)
    .bind(approver.user_id)
    .fetch_optional(&mut *conn)
    .await?;
    if approved.is_some() {
        return Err(Error::Conflict(
            "You have already approved this request.".into(),
        ));
    }
    let to_group = groups::get_by_id(conn, track.bound()?.to).await?;
    groups::authorize_promotion(conn, actor, &to_group).await?;
    Ok((requester, to_group))
}

pub async fn approve(
    ladder: &Ladder,
    actor: &Actor,
    approver: &User,
    request_id: i64,
    comment: &str,
) -> Result<Approval> {
    let comment = parse_text("comment", comment, false)?;
    // Reads first, outside the write transaction (see the module's doc).
    let (request, track, requester, to_group, others) = {
        let mut conn = ladder.db.acquire().await?;
        let request = super::get(&mut conn, request_id).await?;
        let track = ladder.track(&request.track)?;
        // One read gives both who may decide and who is told.
        let members = approver_group(&mut conn, track).await?;
        let approves = decides(
            approver,
            members.iter().any(|m| m.user_id == approver.user_id),
        );
        let (requester, to_group) =
            may_approve(&mut conn, track, &request, approver, actor, approves).await?;
        let others = mailable(members, Some(request.requester_id));
        (request, track, requester, to_group, others)
    };

    let now = ladder.clock.now();
    let grant_ends_at = track.grant_duration.map(|d| now + d);
    // The approval is checked and recorded under the row lock (PostgreSQL;
    // SQLite's write transaction is exclusive), so of concurrent approvers
    // exactly one sees the last approval needed.
    let lock = format!(
        "select 1 from promotion_requests where request_id = $1 and state = 'pending'{}",
        pick(ladder.db.backend(), "", " for update")
    );
    let need = track.approvals_required;
    let from_group_id = track.bound()?.from;
    let (job_ladder, job_actor, job_track, job_approver, job_requester) = (
        ladder.clone(),
        actor.clone(),
        track.clone(),
        approver.clone(),
        requester.clone(),
    );
    let job_request = request.clone();
    let outcome = ladder
        .db
        .write(move |w| {
            Box::pin(async move {
                let (ladder, actor, track) = (&job_ladder, &job_actor, &job_track);
                let (approver, requester, request) = (&job_approver, &job_requester, &job_request);
                if w.fetch_i64(&lock, binds![request_id]).await?.is_none() {
                    return Ok(Finish::Rollback(Decided::NotPending));
                }
                let added = w
                    .execute(
                        "insert into promotion_approvals (request_id, approver_id, comment, created_at) \
                         values ($1, $2, $3, $4) on conflict do nothing",
                        binds![request_id, approver.user_id, &comment, now],
                    )
                    .await?;
                if added == 0 {
                    return Ok(Finish::Rollback(Decided::AlreadyApproved));
                }
                let have = w
                    .fetch_i64(
                        "select count(*) from promotion_approvals where request_id = $1",
                        binds![request_id],
                    )
                    .await?
                    .unwrap_or(0) as u32;
                let audit_entry =
                    entry("promotion.approve", request_id, &track.name, &request.requester);
                if have < need {
                    audit::record(
                        w,
                        actor,
                        audit_entry.after(json!({ "approvals": have, "needed": need, "comment": comment })),
                        now,
                    )
                    .await?;
                    return Ok(Finish::Commit(Decided::Recorded(have)));
                }
                let changed = w
                    .execute(
                        "update promotion_requests set state = 'approved', decided_by = $1, decided_at = $2, \
                         decision_reason = $3, grant_ends_at = $4, updated_at = $2 \
                         where request_id = $5 and state = 'pending'",
                        binds![approver.user_id, now, &comment, grant_ends_at, request_id],
                    )
                    .await?;
                if changed == 0 {
                    return Ok(Finish::Rollback(Decided::NotPending));
                }
                let granted = groups::grant_promotion(
                    w,
                    actor,
                    &to_group,
                    from_group_id,
                    requester,
                    request_id,
                    now,
                )
                .await?;
                if !granted {
                    return Ok(Finish::Rollback(Decided::NotEligible));
                }
                audit::record(
                    w,
                    actor,
                    audit_entry
                        .before(json!({ "state": "pending" }))
                        .after(json!({ "state": "approved", "approvals": have, "comment": comment, "grant_ends_at": grant_ends_at })),
                    now,
                )
                .await?;
                // The request as read before: what the emails need of it cannot change.
                let mut context = request_context(ladder, request, track);
                context["decided_by"] = json!(approver.username);
                context["comment"] = json!(comment);
                context["grant_ends_at"] = json!(grant_ends_at.map(crate::clock::rfc3339));
                queue(ladder, w, "request_approved", requester, context.clone(), now).await?;
                notify_other_approvers(ladder, w, &others, approver, "approved", context, now)
                    .await?;
                Ok(Finish::Commit(Decided::Approved))
            })
        })
        .await?;
    match outcome {
        Decided::Approved => {
            ladder.mail_wake.notify_one();
            Ok(Approval::Approved)
        }
        Decided::Recorded(have) => Ok(Approval::Recorded { have, need }),
        Decided::AlreadyApproved => Err(Error::Conflict(
            "You have already approved this request.".into(),
        )),
        Decided::NotPending => {
            let mut conn = ladder.db.acquire().await?;
            Err(already(&super::get(&mut conn, request_id).await?))
        }
        Decided::NotEligible => {
            // The requester changed since the reads above; say exactly how.
            let mut conn = ladder.db.acquire().await?;
            still_eligible(&mut conn, track, &request).await?;
            Err(Error::Conflict(format!(
                "{} can no longer be promoted on this track.",
                requester.username
            )))
        }
    }
}

/// How an approval's write transaction ended.
enum Decided {
    Approved,
    Recorded(u32),
    AlreadyApproved,
    NotPending,
    NotEligible,
}

/// Tells the track's other approvers (`approvers` but the decider) the outcome.
async fn notify_other_approvers(
    ladder: &Ladder,
    w: &mut dyn Writer,
    approvers: &[User],
    decider: &User,
    outcome: &str,
    mut context: serde_json::Value,
    now: i64,
) -> Result<()> {
    context["outcome"] = json!(outcome);
    context["decided_by"] = json!(decider.username);
    for other in approvers.iter().filter(|a| a.user_id != decider.user_id) {
        queue(ladder, w, "request_decided", other, context.clone(), now).await?;
    }
    Ok(())
}

/// An approver says no, with a reason; the requester is told it.
pub async fn reject(
    ladder: &Ladder,
    actor: &Actor,
    approver: &User,
    request_id: i64,
    reason: &str,
) -> Result<()> {
    let mut tx = ladder.db.begin().await?;
    reject_in(ladder, &mut tx, actor, approver, request_id, reason).await?;
    tx.commit().await?;
    ladder.mail_wake.notify_one();
    Ok(())
}

async fn reject_in(
    ladder: &Ladder,
    conn: &mut Conn,
    actor: &Actor,
    approver: &User,
    request_id: i64,
    reason: &str,
) -> Result<()> {
    let reason = parse_text("reason", reason, true)?;
    let request = lock_pending(ladder, conn, request_id).await?;
    let track = ladder.track(&request.track)?;
    let approves = is_approver(conn, track, approver).await?;
    may_decide(
        conn,
        track,
        &request,
        approver,
        actor,
        approves,
        Decision::Reject,
    )
    .await?;
    let now = ladder.clock.now();
    let changed = sqlx::query(
        "update promotion_requests set state = 'rejected', decided_by = $1, decided_at = $2, \
         decision_reason = $3, updated_at = $2 where request_id = $4 and state = 'pending'",
    )
    .bind(approver.user_id)
    .bind(now)
    .bind(&reason)
    .bind(request_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(already(&super::get(conn, request_id).await?));
    }
    audit::record(
        conn,
        actor,
        entry(
            "promotion.reject",
            request_id,
            &track.name,
            &request.requester,
        )
        .before(json!({ "state": "pending" }))
        .after(json!({ "state": "rejected", "reason": reason })),
        now,
    )
    .await?;
    let requester = users::find_by_id(conn, request.requester_id).await?;
    let mut context = request_context(ladder, &request, track);
    context["decided_by"] = json!(approver.username);
    context["reason"] = json!(reason);
    if let Some(requester) = requester {
        queue(
            ladder,
            conn,
            "request_rejected",
            &requester,
            context.clone(),
            now,
        )
        .await?;
    }
    let others = approvers(conn, track, Some(request.requester_id)).await?;
    notify_other_approvers(ladder, conn, &others, approver, "rejected", context, now).await
}

/// The requester takes a pending request back.
pub async fn withdraw(
    ladder: &Ladder,
    actor: &Actor,
    requester: &User,
    request_id: i64,
) -> Result<()> {
    let mut tx = ladder.db.begin().await?;
    withdraw_in(ladder, &mut tx, actor, requester, request_id).await?;
    tx.commit().await?;
    Ok(())
}

async fn withdraw_in(
    ladder: &Ladder,
    conn: &mut Conn,
    actor: &Actor,
    requester: &User,
    request_id: i64,
) -> Result<()> {
    let request = lock_pending(ladder, conn, request_id).await?;
    if request.requester_id != requester.user_id {
        return Err(Error::Forbidden(
            "Only the person who asked can withdraw a request.".into(),
        ));
    }
    let now = ladder.clock.now();
    sqlx::query(
        "update promotion_requests set state = 'withdrawn', decided_at = $1, updated_at = $1 \
         where request_id = $2 and state = 'pending'",
    )
    .bind(now)
    .bind(request_id)
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        actor,
        entry(
            "promotion.withdraw",
            request_id,
            &request.track,
            &request.requester,
        )
        .before(json!({ "state": "pending" }))
        .after(json!({ "state": "withdrawn" })),
        now,
    )
    .await
}

/// Ends an approved grant: removes the membership. `decider` None is the scheduler.
pub async fn end_grant(
    ladder: &Ladder,
    conn: &mut Conn,
    actor: &Actor,
    decider: Option<&User>,
    request_id: i64,
) -> Result<()> {
    let lock = pick(ladder.db.backend(), "", " for update of r");
    let request: Request =
        sqlx::query_as(&format!("{} where r.request_id = $1{lock}", super::SELECT))
            .bind(request_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::NotFound(format!("promotion request {request_id}")))?;
    if request.state() != State::Approved {
        return Err(Error::Conflict(format!(
            "Request #{request_id} is {}; only an approved grant can be ended.",
            request.state
        )));
    }
    let track = ladder.track(&request.track)?;
    if let Some(decider) = decider
        && !is_approver(conn, track, decider).await?
    {
        return Err(Error::Forbidden(format!(
            "Only members of {} can end this grant.",
            track.approver_group
        )));
    }
    let now = ladder.clock.now();
    sqlx::query(
        "update promotion_requests set state = 'ended', ended_at = $1, updated_at = $1 \
         where request_id = $2 and state = 'approved'",
    )
    .bind(now)
    .bind(request_id)
    .execute(&mut *conn)
    .await?;
    let requester = users::find_by_id(conn, request.requester_id).await?;
    let to_group: Group = groups::get_by_id(conn, track.bound()?.to).await?;
    if let Some(requester) = &requester {
        groups::change_membership_for_promotion(
            conn, actor, &to_group, requester, false, request_id, now,
        )
        .await?;
    }
    audit::record(
        conn,
        actor,
        entry("promotion.end", request_id, &track.name, &request.requester)
            .before(json!({ "state": "approved" }))
            .after(json!({ "state": "ended", "by": decider.map(|d| d.username.clone()) })),
        now,
    )
    .await?;
    if let Some(requester) = requester {
        let context = request_context(ladder, &request, track);
        queue(ladder, conn, "grant_ended", &requester, context, now).await?;
    }
    Ok(())
}

/// Scheduler: pending requests past their expiry become expired. Returns how many.
pub async fn expire_due(ladder: &Ladder, conn: &mut Conn) -> Result<u32> {
    let now = ladder.clock.now();
    let due: Vec<i64> = sqlx::query_scalar(
        "select request_id from promotion_requests where state = 'pending' and expires_at <= $1 order by request_id",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let system = Actor::system(Source::System);
    let mut count = 0;
    for request_id in due {
        let changed = sqlx::query(
            "update promotion_requests set state = 'expired', decided_at = $1, updated_at = $1 \
             where request_id = $2 and state = 'pending'",
        )
        .bind(now)
        .bind(request_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if changed == 0 {
            continue;
        }
        let request = super::get(conn, request_id).await?;
        audit::record(
            conn,
            &system,
            entry(
                "promotion.expire",
                request_id,
                &request.track,
                &request.requester,
            )
            .before(json!({ "state": "pending" }))
            .after(json!({ "state": "expired" })),
            now,
        )
        .await?;
        if let (Ok(track), Some(requester)) = (
            ladder.track(&request.track),
            users::find_by_id(conn, request.requester_id).await?,
        ) {
            let context = request_context(ladder, &request, track);
            queue(ladder, conn, "request_expired", &requester, context, now).await?;
        }
        count += 1;
    }
    Ok(count)
}

/// Scheduler: warns a day before a time-bound grant ends, and ends the ones due.
pub async fn end_due_grants(ladder: &Ladder, conn: &mut Conn) -> Result<(u32, u32)> {
    let now = ladder.clock.now();
    let to_warn: Vec<i64> = sqlx::query_scalar(
        "select request_id from promotion_requests where state = 'approved' and grant_ends_at is not null \
         and warned_at is null and grant_ends_at > $1 and grant_ends_at <= $2 order by request_id",
    )
    .bind(now)
    .bind(now + 86_400)
    .fetch_all(&mut *conn)
    .await?;
    let mut warned = 0;
    for request_id in to_warn {
        let changed = sqlx::query("update promotion_requests set warned_at = $1 where request_id = $2 and warned_at is null")
            .bind(now)
            .bind(request_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if changed == 0 {
            continue;
        }
        let request = super::get(conn, request_id).await?;
        if let (Ok(track), Some(requester)) = (
            ladder.track(&request.track),
            users::find_by_id(conn, request.requester_id).await?,
        ) {
            let mut context = request_context(ladder, &request, track);
            context["grant_ends_at"] = json!(request.grant_ends_at.map(crate::clock::rfc3339));
            queue(ladder, conn, "grant_ending_soon", &requester, context, now).await?;
            warned += 1;
        }
    }
    let due: Vec<i64> = sqlx::query_scalar(
        "select request_id from promotion_requests where state = 'approved' and grant_ends_at <= $1 order by request_id",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let system = Actor::system(Source::System);
    let mut ended = 0;
    for request_id in due {
        match end_grant(ladder, conn, &system, None, request_id).await {
            Ok(()) => ended += 1,
            // A closed track: the grant ends once the track is fixed.
            Err(Error::Conflict(why)) => {
                tracing::warn!(request_id, %why, "a due grant was not ended");
            }
            Err(e) => return Err(e),
        }
    }
    Ok((warned, ended))
}

/// Scheduler: reminds approvers (who have not approved yet) of requests that
/// have waited longer than remind_after, at most once per request per period.
pub async fn remind_due(ladder: &Ladder, conn: &mut Conn) -> Result<u32> {
    let now = ladder.clock.now();
    let mut sent = 0;
    for track in ladder.tracks.iter() {
        let Some(every) = track.remind_after else {
            continue;
        };
        let due: Vec<i64> = sqlx::query_scalar(
            "select request_id from promotion_requests where state = 'pending' and track = $1 \
             and created_at <= $2 and (last_reminded_at is null or last_reminded_at <= $2) order by request_id",
        )
        .bind(&track.name)
        .bind(now - every)
        .fetch_all(&mut *conn)
        .await?;
        for request_id in due {
            let changed = sqlx::query(
                "update promotion_requests set last_reminded_at = $1 where request_id = $2 \
                 and (last_reminded_at is null or last_reminded_at <= $3)",
            )
            .bind(now)
            .bind(request_id)
            .bind(now - every)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if changed == 0 {
                continue;
            }
            let request = super::get(conn, request_id).await?;
            let approved_by: Vec<i64> = sqlx::query_scalar(
                "select approver_id from promotion_approvals where request_id = $1",
            )
            .bind(request_id)
            .fetch_all(&mut *conn)
            .await?;
            let context = request_context(ladder, &request, track);
            for approver in approvers(conn, track, Some(request.requester_id)).await? {
                if !approved_by.contains(&approver.user_id) {
                    queue(ladder, conn, "reminder", &approver, context.clone(), now).await?;
                    sent += 1;
                }
            }
        }
    }
    Ok(sent)
}

/// Scheduler: one email a day to each approver with anything pending.
pub async fn digest(ladder: &Ladder, conn: &mut Conn) -> Result<u32> {
    let now = ladder.clock.now();
    let day = crate::clock::rfc3339(now)
        .chars()
        .take(10)
        .collect::<String>();
    let mut by_approver: std::collections::BTreeMap<i64, (User, Vec<serde_json::Value>)> =
        Default::default();
    for track in ladder.tracks.iter() {
        let pending: Vec<Request> = sqlx::query_as(&format!(
            "{} where r.state = 'pending' and r.track = $1 order by r.created_at, r.request_id limit 200",
            super::SELECT
        ))
        .bind(&track.name)
        .fetch_all(&mut *conn)
        .await?;
        if pending.is_empty() {
            continue;
        }
        for approver in approvers(conn, track, None).await? {
            let list = &mut by_approver
                .entry(approver.user_id)
                .or_insert_with(|| (approver.clone(), vec![]))
                .1;
            for r in pending
                .iter()
                .filter(|r| r.requester_id != approver.user_id)
            {
                list.push(request_context(ladder, r, track));
            }
        }
    }
    let mut sent = 0;
    for (user_id, (approver, requests)) in by_approver {
        if requests.is_empty() {
            continue;
        }
        let mut context = json!({ "requests": requests, "count": requests.len() });
        context["recipient"] = json!(approver.username);
        let queued = mail::enqueue(
            conn,
            &ladder.settings.server.public_url,
            Email {
                template: "digest",
                to: approver.email.clone(),
                context,
                dedupe_key: Some(format!("digest:{user_id}:{day}")),
            },
            now,
        )
        .await?;
        if queued {
            sent += 1;
        }
    }
    Ok(sent)
}
