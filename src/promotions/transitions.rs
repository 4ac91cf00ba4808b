//! The transitions of a promotion request: submit, approve, reject,
//! withdraw, expire and end. Each changes state with one atomic
//! `update … where state = …` (so of two deciders only one wins; the other
//! gets "already decided"), writes an audit event and queues its emails in
//! the same transaction. Who may do what is `policy`'s; what the emails say
//! is `notifications`'.
//!
//! `submit` and `approve`, the busy ones, do their reads first and then their
//! writes as one named transaction run by `Db::run` (on SQLite, on the write thread: SQLite has
//! one writer, so a write should last only as long as its statements). What
//! may change in between is checked again by the writes themselves (the
//! request's state, one open request per person, the requester's
//! eligibility in the membership insert). The others run in the caller's
//! transaction.

mod approve;

pub use approve::{Approval, approve};
use serde_json::json;

use super::{
    Request, State,
    notifications::{self, tell_other_approvers, tell_requester},
    policy::{self, Decision, already},
    reasons::{Justification, Reason},
};
use crate::{
    Error, Ladder, Result,
    accounts::{Group, User, groups, promotion_grant, users},
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    db::{Conn, Finish, Sql, Transaction, pick},
    mail::Message,
};

/// The audit event of `action` on `request`.
fn entry(action: &'static str, request: &Request) -> AuditEntry {
    let Request {
        request_id,
        track,
        requester,
        ..
    } = request;
    AuditEntry::new(
        action,
        "promotion",
        Some(*request_id),
        &format!("#{request_id} {track} for {requester}"),
    )
}

/// Moves a pending request to `to` with no decider (withdrawn, expired);
/// false if it was no longer pending.
async fn close(conn: &mut Conn, request_id: i64, to: State, now: i64) -> Result<bool> {
    let sql = format!(
        "update promotion_requests set state = '{}', decided_at = $1, updated_at = $1 \
         where request_id = $2 and state = 'pending'",
        to.as_str()
    );
    let changed = sqlx::query(&sql)
        .bind(now)
        .bind(request_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(changed > 0)
}

/// The one row lock on a request: `select_where`, a query on
/// `promotion_requests r` up to its where clause, made to lock the row it
/// reads until the transaction ends (PostgreSQL; SQLite's write transaction
/// is exclusive already).
fn locking(ladder: &Ladder, select_where: &str) -> String {
    format!(
        "{select_where}{}",
        pick(ladder.db.backend(), "", " for update of r")
    )
}

/// The request, locked for the rest of the transaction.
async fn lock(ladder: &Ladder, conn: &mut Conn, request_id: i64) -> Result<Request> {
    let sql = locking(
        ladder,
        &format!("{} where r.request_id = $1", super::SELECT),
    );
    sqlx::query_as(&sql)
        .bind(request_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("promotion request {request_id}")))
}

/// The request, locked, if it is still pending; "already decided" otherwise.
async fn lock_pending(ladder: &Ladder, conn: &mut Conn, request_id: i64) -> Result<Request> {
    let request = lock(ladder, conn, request_id).await?;
    if request.state != State::Pending {
        return Err(already(&request));
    }
    Ok(request)
}

/// The writes of a request: the row, its audit event, the approvers' emails.
struct Submit {
    actor: Actor,
    request: Request,
    messages: Vec<Message>,
}

impl Transaction for Submit {
    type Output = Option<Request>;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Option<Request>>> {
        let Submit {
            actor,
            mut request,
            messages,
        } = self;
        let now = request.created_at;
        // The unique index on open requests skips a second one made meanwhile.
        let Some(request_id) = sql
            .fetch_i64(
                "insert into promotion_requests (track, requester_id, justification, state, \
                 expires_at, created_at, updated_at) values ($1, $2, $3, 'pending', $4, $5, $5) \
                 on conflict do nothing returning request_id",
                binds![
                    &request.track,
                    request.requester_id,
                    &request.justification,
                    request.expires_at,
                    now,
                ],
            )
            .await?
        else {
            return Ok(Finish::Rollback(None));
        };
        request.request_id = request_id;
        let after = json!({ "state": "pending", "justification": request.justification });
        audit::record(
            sql,
            &actor,
            entry("promotion.submit", &request).after(after),
            now,
        )
        .await?;
        notifications::queue_all(sql, messages, now).await?;
        Ok(Finish::Commit(Some(request)))
    }
}

/// A writer asks. Each approver gets an email of their own.
pub async fn submit(
    ladder: &Ladder,
    actor: &Actor,
    requester: &User,
    track_name: &str,
    justification: Justification,
) -> Result<Request> {
    let track = ladder.track(track_name)?;
    let justification = justification.required(track.reason_required)?;
    let recipients = {
        let mut conn = ladder.db.acquire().await?;
        if let Some(why) = policy::ineligibility(&mut conn, track, requester).await? {
            return Err(Error::Conflict(why));
        }
        policy::approvers(&mut conn, track, Some(requester.user_id)).await?
    };
    let now = ladder.clock.now();
    let expires_at = track.pending_expires_after.map(|d| now + d);
    let request = Request {
        request_id: 0,
        track: track.name.clone(),
        requester_id: requester.user_id,
        requester: requester.username.clone(),
        justification: justification.as_str().to_string(),
        state: State::Pending,
        decided_by: None,
        decided_at: None,
        decision_reason: None,
        expires_at,
        grant_ends_at: None,
        ended_at: None,
        created_at: now,
        updated_at: now,
    };
    // Rendered now, queued only if the request is stored.
    let context = notifications::context(ladder, &request, track, json!({}));
    let messages = recipients
        .iter()
        .map(|approver| {
            notifications::message(ladder, "request_submitted", approver, context.clone())
        })
        .collect::<Result<_>>()?;
    let stored = ladder
        .db
        .run(Submit {
            actor: actor.clone(),
            request,
            messages,
        })
        .await?;
    let request = stored
        .ok_or_else(|| Error::Conflict("There is already an open request on this track.".into()))?;
    ladder.mail_wake.notify_one();
    Ok(request)
}

/// An approver says no, with a reason; the requester is told it.
pub async fn reject(
    ladder: &Ladder,
    actor: &Actor,
    approver: &User,
    request_id: i64,
    reason: Reason,
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
    reason: Reason,
) -> Result<()> {
    let request = lock_pending(ladder, conn, request_id).await?;
    let track = ladder.track(&request.track)?;
    let approves = policy::is_approver(conn, track, approver).await?;
    policy::may_decide(
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
    .bind(reason.as_str())
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
        entry("promotion.reject", &request)
            .before(json!({ "state": "pending" }))
            .after(json!({ "state": "rejected", "reason": reason.as_str() })),
        now,
    )
    .await?;
    let decision = json!({ "decided_by": approver.username, "reason": reason.as_str() });
    tell_requester(
        ladder,
        conn,
        &request,
        "request_rejected",
        decision.clone(),
        now,
    )
    .await?;
    let others = policy::approvers(conn, track, Some(request.requester_id)).await?;
    let context = notifications::context(ladder, &request, track, decision);
    tell_other_approvers(ladder, conn, &others, approver, "rejected", context, now).await
}

/// The requester takes a pending request back.
pub async fn withdraw(
    ladder: &Ladder,
    actor: &Actor,
    requester: &User,
    request_id: i64,
) -> Result<()> {
    let mut tx = ladder.db.begin().await?;
    let request = lock_pending(ladder, &mut tx, request_id).await?;
    if request.requester_id != requester.user_id {
        return Err(Error::Forbidden(
            "Only the person who asked can withdraw a request.".into(),
        ));
    }
    let now = ladder.clock.now();
    close(&mut tx, request_id, State::Withdrawn, now).await?;
    audit::record(
        &mut tx,
        actor,
        entry("promotion.withdraw", &request)
            .before(json!({ "state": "pending" }))
            .after(json!({ "state": "withdrawn" })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A pending request past its expiry becomes expired, and the requester is
/// told. False if it was no longer pending.
pub async fn expire(
    ladder: &Ladder,
    conn: &mut Conn,
    actor: &Actor,
    request_id: i64,
    now: i64,
) -> Result<bool> {
    if !close(conn, request_id, State::Expired, now).await? {
        return Ok(false);
    }
    let request = super::get(conn, request_id).await?;
    audit::record(
        conn,
        actor,
        entry("promotion.expire", &request)
            .before(json!({ "state": "pending" }))
            .after(json!({ "state": "expired" })),
        now,
    )
    .await?;
    tell_requester(ladder, conn, &request, "request_expired", json!({}), now).await?;
    Ok(true)
}

/// Ends an approved grant: removes the membership. `decider` None is the scheduler.
pub async fn end_grant(
    ladder: &Ladder,
    conn: &mut Conn,
    actor: &Actor,
    decider: Option<&User>,
    request_id: i64,
) -> Result<()> {
    let request = lock(ladder, conn, request_id).await?;
    if request.state != State::Approved {
        return Err(Error::Conflict(format!(
            "Request #{request_id} is {}; only an approved grant can be ended.",
            request.state.as_str()
        )));
    }
    let track = ladder.track(&request.track)?;
    if let Some(decider) = decider
        && !policy::is_approver(conn, track, decider).await?
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
        promotion_grant::change_membership_for_promotion(
            conn, actor, &to_group, requester, false, request_id, now,
        )
        .await?;
    }
    audit::record(
        conn,
        actor,
        entry("promotion.end", &request)
            .before(json!({ "state": "approved" }))
            .after(json!({ "state": "ended", "by": decider.map(|d| d.username.clone()) })),
        now,
    )
    .await?;
    if let Some(requester) = requester {
        let context = notifications::context(ladder, &request, track, json!({}));
        let message = notifications::message(ladder, "grant_ended", &requester, context)?;
        crate::mail::enqueue(conn, message, now).await?;
    }
    Ok(())
}
