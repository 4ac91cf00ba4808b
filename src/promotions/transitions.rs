//! The transitions of a promotion request: submit, approve, reject,
//! withdraw, expire and end. Each changes state with one atomic
//! `update … where state = …` (so of two deciders only one wins; the other
//! gets "already decided"), writes an audit event and queues its emails in
//! the same transaction. Who may do what is `policy`'s; what the emails say
//! is `notifications`'.
//!
//! Each transition reads what its emails need first and renders them, then
//! runs one named transaction (`Submit`, `Approve`, `Reject`, `Withdraw`,
//! `Expire`, `EndGrant`) through `Db::run` (on SQLite, on the write thread:
//! SQLite has one writer, so a write should last only as long as its
//! statements). The transaction checks again, under the row lock, whatever
//! may have changed in between (the request's state, one open request per
//! person, the requester's eligibility in the membership insert).

mod approve;
mod end;
mod reject;

pub use approve::{Approval, approve};
pub use end::{end_grant, expire};
pub use reject::reject;
use serde_json::json;

use crate::permissions::revision;

use super::{
    Request, State, notifications,
    policy::{self, already},
    reasons::Justification,
};
use crate::{
    Error, Ladder, Result,
    accounts::User,
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    db::{Finish, Sql, Transaction, pick},
    mail::Message,
};

/// What a transition committed, and the revision it committed at (see
/// `permissions::revision`): an approval that grants a membership advances
/// it; a transition that changes no one's permissions answers the revision
/// current when it committed. Either way a check `at_least` this revision
/// sees the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<T> {
    pub outcome: T,
    pub revision: i64,
}

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
    .context(json!({
        "track": track,
        "user": { "id": request.requester_id, "username": requester },
    }))
}

/// Moves a pending request to `to` with no decider (withdrawn, expired);
/// false if it was no longer pending.
async fn close(sql: &mut dyn Sql, request_id: i64, to: State, now: i64) -> Result<bool> {
    let query = format!(
        "update promotion_requests set state = '{}', decided_at = $1, updated_at = $1 \
         where request_id = $2 and state = 'pending'",
        to.as_str()
    );
    let changed = sql.execute(&query, binds![now, request_id]).await?;
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

/// The query that reads a request and locks it (see `locking`); built
/// before the transaction, which cannot ask the `Ladder` for its backend.
fn lock_sql(ladder: &Ladder) -> String {
    locking(
        ladder,
        &format!("{} where r.request_id = $1", super::SELECT),
    )
}

/// The request, locked for the rest of the transaction (`lock_sql` from `lock_sql`).
async fn lock(sql: &mut dyn Sql, lock_sql: &str, request_id: i64) -> Result<Request> {
    sql.fetch_optional(lock_sql, binds![request_id])
        .await?
        .ok_or_else(|| Error::NotFound(format!("promotion request {request_id}")))
}

/// The request, locked, if it is still pending; "already decided" otherwise.
async fn lock_pending(sql: &mut dyn Sql, lock_sql: &str, request_id: i64) -> Result<Request> {
    let request = lock(sql, lock_sql, request_id).await?;
    if request.state != State::Pending {
        return Err(already(&request));
    }
    Ok(request)
}

/// The id a new request's emails are rendered with, before the insert gives
/// the real one; digits that no other part of an email holds.
const UNSAVED_ID: i64 = 918_273_645_546_372_819;

/// The writes of a request: the row, its audit event, the approvers' emails.
struct Submit {
    actor: Actor,
    request: Request,
    messages: Vec<Message>,
}

impl Transaction for Submit {
    type Output = Option<Committed<Request>>;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Option<Committed<Request>>>> {
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
        let mut messages = messages;
        for m in &mut messages {
            m.fill_in(&UNSAVED_ID.to_string(), &request_id.to_string());
        }
        let after = json!({ "state": "pending", "justification": request.justification });
        audit::record(
            sql,
            &actor,
            entry("promotion.submit", &request).after(after),
            now,
        )
        .await?;
        notifications::queue_all(sql, messages, now).await?;
        let revision = revision::current(sql).await?;
        Ok(Finish::Commit(Some(Committed {
            outcome: request,
            revision,
        })))
    }
}

/// A writer asks. Each approver gets an email of their own.
pub async fn submit(
    ladder: &Ladder,
    actor: &Actor,
    requester: &User,
    track_name: &str,
    justification: Justification,
) -> Result<Committed<Request>> {
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
        // Rendered into the emails, then replaced by the id the insert gives.
        request_id: UNSAVED_ID,
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
    let committed = stored
        .ok_or_else(|| Error::Conflict("There is already an open request on this track.".into()))?;
    ladder.mail_wake.notify_one();
    Ok(committed)
}

/// The requester takes a pending request back.
struct Withdraw {
    actor: Actor,
    requester_id: i64,
    request_id: i64,
    lock_sql: String,
    now: i64,
}

impl Transaction for Withdraw {
    type Output = Committed<()>;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Committed<()>>> {
        let request = lock_pending(sql, &self.lock_sql, self.request_id).await?;
        if request.requester_id != self.requester_id {
            return Err(Error::Forbidden(
                "Only the person who asked can withdraw a request.".into(),
            ));
        }
        close(sql, self.request_id, State::Withdrawn, self.now).await?;
        let entry = entry("promotion.withdraw", &request)
            .before(json!({ "state": "pending" }))
            .after(json!({ "state": "withdrawn" }));
        audit::record(sql, &self.actor, entry, self.now).await?;
        let revision = revision::current(sql).await?;
        Ok(Finish::Commit(Committed {
            outcome: (),
            revision,
        }))
    }
}

/// The requester takes a pending request back.
pub async fn withdraw(
    ladder: &Ladder,
    actor: &Actor,
    requester: &User,
    request_id: i64,
) -> Result<Committed<()>> {
    ladder
        .db
        .run(Withdraw {
            actor: actor.clone(),
            requester_id: requester.user_id,
            request_id,
            lock_sql: lock_sql(ladder),
            now: ladder.clock.now(),
        })
        .await
}
