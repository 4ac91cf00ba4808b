//! Approving: the busiest transition. The reads and checks run first, on a
//! pooled connection, and the emails are rendered; the writes then run as
//! one transaction, `Approve`, that re-checks, under the row lock, what may have changed meanwhile.

use serde_json::json;

use super::{Committed, entry, locking};
use crate::{
    Error, Ladder, Result,
    accounts::{Group, User, promotion_grant},
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    db::{Finish, Sql, Transaction},
    mail::Message,
    permissions::revision,
    promotions::{
        self, notifications,
        policy::{self, already},
        reasons::Comment,
    },
};

/// What an approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The last approval needed: the membership is granted.
    Approved,
    /// Recorded; more approvals are needed.
    Recorded { have: u32, need: u32 },
}

/// How an approval's write transaction ended (with the revision it committed at).
enum Decided {
    Approved(i64),
    Recorded(u32, i64),
    AlreadyApproved,
    NotPending,
    NotEligible,
}

/// The writes of an approval, checked again under the row lock (PostgreSQL;
/// SQLite's write transaction is exclusive), so of concurrent approvers
/// exactly one sees the last approval needed.
struct Approve {
    lock_sql: String,
    actor: Actor,
    approver: User,
    requester: User,
    audit_entry: AuditEntry,
    request_id: i64,
    comment: Comment,
    need: u32,
    from_group_id: i64,
    to_group: Group,
    grant_ends_at: Option<i64>,
    /// To the requester and the other approvers, queued with the last approval.
    messages: Vec<Message>,
    now: i64,
}

impl Transaction for Approve {
    type Output = Decided;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Decided>> {
        let Approve {
            request_id, now, ..
        } = self;
        let comment = self.comment.as_str();
        if sql
            .fetch_i64(&self.lock_sql, binds![request_id])
            .await?
            .is_none()
        {
            return Ok(Finish::Rollback(Decided::NotPending));
        }
        let added = sql
            .execute(
                "insert into promotion_approvals (request_id, approver_id, comment, created_at) \
                 values ($1, $2, $3, $4) on conflict do nothing",
                binds![request_id, self.approver.user_id, comment, now],
            )
            .await?;
        if added == 0 {
            return Ok(Finish::Rollback(Decided::AlreadyApproved));
        }
        let have = sql
            .fetch_i64(
                "select count(*) from promotion_approvals where request_id = $1",
                binds![request_id],
            )
            .await?
            .unwrap_or(0) as u32;
        if have < self.need {
            let after = json!({ "approvals": have, "needed": self.need, "comment": comment });
            audit::record(sql, &self.actor, self.audit_entry.after(after), now).await?;
            let revision = revision::current(sql).await?;
            return Ok(Finish::Commit(Decided::Recorded(have, revision)));
        }
        let changed = sql
            .execute(
                "update promotion_requests set state = 'approved', decided_by = $1, decided_at = $2, \
                 decision_reason = $3, grant_ends_at = $4, updated_at = $2 \
                 where request_id = $5 and state = 'pending'",
                binds![self.approver.user_id, now, comment, self.grant_ends_at, request_id],
            )
            .await?;
        if changed == 0 {
            return Ok(Finish::Rollback(Decided::NotPending));
        }
        let granted = promotion_grant::grant_promotion(
            sql,
            &self.actor,
            &self.to_group,
            self.from_group_id,
            &self.requester,
            request_id,
            now,
        )
        .await?;
        if !granted {
            return Ok(Finish::Rollback(Decided::NotEligible));
        }
        let after = json!({
            "state": "approved", "approvals": have, "comment": comment,
            "grant_ends_at": self.grant_ends_at,
        });
        let audit_entry = self
            .audit_entry
            .before(json!({ "state": "pending" }))
            .after(after);
        audit::record(sql, &self.actor, audit_entry, now).await?;
        notifications::queue_all(sql, self.messages, now).await?;
        // The grant advanced the revision; this reads the one it committed.
        let revision = revision::current(sql).await?;
        Ok(Finish::Commit(Decided::Approved(revision)))
    }
}

/// An approver says yes. The last approval needed grants the membership;
/// the requester and the other approvers are told.
pub async fn approve(
    ladder: &Ladder,
    actor: &Actor,
    approver: &User,
    request_id: i64,
    comment: Comment,
) -> Result<Committed<Approval>> {
    // Reads first, outside the write transaction (see the module's doc).
    let (request, track, requester, to_group, others) = {
        let mut conn = ladder.db.acquire().await?;
        let request = promotions::get(&mut conn, request_id).await?;
        let track = ladder.track(&request.track)?;
        // One read gives both who may decide and who is told.
        let members = policy::approver_group(&mut conn, track).await?;
        let approves = policy::decides(
            approver,
            members.iter().any(|m| m.user_id == approver.user_id),
        );
        let (requester, to_group) =
            policy::may_approve(&mut conn, track, &request, approver, actor, approves).await?;
        let others = policy::mailable(members, Some(request.requester_id));
        (request, track, requester, to_group, others)
    };

    let now = ladder.clock.now();
    let grant_ends_at = track.grant_duration.map(|d| now + d);
    // Rendered now, sent only if the last approval commits.
    let context = notifications::context(
        ladder,
        &request,
        track,
        json!({
            "decided_by": approver.username,
            "comment": comment.as_str(),
            "grant_ends_at": grant_ends_at.map(crate::clock::rfc3339),
        }),
    );
    let mut messages = vec![notifications::message(
        ladder,
        "request_approved",
        &requester,
        context.clone(),
    )?];
    messages.extend(notifications::to_other_approvers(
        ladder, &others, approver, "approved", context,
    )?);
    let outcome = ladder
        .db
        .run(Approve {
            lock_sql: locking(
                ladder,
                "select 1 from promotion_requests r where request_id = $1 and state = 'pending'",
            ),
            actor: actor.clone(),
            approver: approver.clone(),
            requester: requester.clone(),
            audit_entry: entry("promotion.approve", &request),
            request_id,
            comment,
            need: track.approvals_required,
            from_group_id: track.bound()?.from,
            to_group,
            grant_ends_at,
            messages,
            now,
        })
        .await?;
    match outcome {
        Decided::Approved(revision) => {
            ladder.mail_wake.notify_one();
            Ok(Committed {
                outcome: Approval::Approved,
                revision,
            })
        }
        Decided::Recorded(have, revision) => Ok(Committed {
            outcome: Approval::Recorded {
                have,
                need: track.approvals_required,
            },
            revision,
        }),
        Decided::AlreadyApproved => Err(Error::Conflict(
            "You have already approved this request.".into(),
        )),
        Decided::NotPending => {
            let mut conn = ladder.db.acquire().await?;
            Err(already(&promotions::get(&mut conn, request_id).await?))
        }
        Decided::NotEligible => {
            // The requester changed since the reads above; say exactly how.
            let mut conn = ladder.db.acquire().await?;
            policy::still_eligible(&mut conn, track, &request).await?;
            Err(Error::Conflict(format!(
                "{} can no longer be promoted on this track.",
                requester.username
            )))
        }
    }
}
