//! Rejecting: an approver says no, with a reason; the requester is told it,
//! and so are the other approvers.

use serde_json::json;

use super::{Committed, entry, lock_pending, lock_sql};
use crate::{
    Ladder, Result,
    accounts::{User, users},
    actor::Actor,
    audit, binds,
    db::{Finish, Sql, Transaction},
    mail::Message,
    promotions::{
        self, notifications,
        policy::{self, Decision, already},
        reasons::Reason,
        track::Track,
    },
};

/// The writes of a rejection; who may decide is checked again under the lock.
struct Reject {
    track: Track,
    actor: Actor,
    approver: User,
    request_id: i64,
    reason: Reason,
    lock_sql: String,
    /// To the requester and the other approvers.
    messages: Vec<Message>,
    now: i64,
}

impl Transaction for Reject {
    type Output = Committed<()>;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Committed<()>>> {
        let Reject {
            request_id, now, ..
        } = self;
        let request = lock_pending(sql, &self.lock_sql, request_id).await?;
        let (track, approver) = (&self.track, &self.approver);
        let approves = policy::is_approver(sql, track, approver).await?;
        let decide = Decision::Reject;
        policy::may_decide(
            sql,
            track,
            &request,
            approver,
            &self.actor,
            approves,
            decide,
        )
        .await?;
        let reason = self.reason.as_str();
        let changed = sql
            .execute(
                "update promotion_requests set state = 'rejected', decided_by = $1, decided_at = $2, \
                 decision_reason = $3, updated_at = $2 where request_id = $4 and state = 'pending'",
                binds![self.approver.user_id, now, reason, request_id],
            )
            .await?;
        if changed == 0 {
            return Err(already(&promotions::get(sql, request_id).await?));
        }
        let entry = entry("promotion.reject", &request)
            .before(json!({ "state": "pending" }))
            .after(json!({ "state": "rejected", "reason": reason }));
        audit::record(sql, &self.actor, entry, now).await?;
        notifications::queue_all(sql, self.messages, now).await?;
        let revision = crate::permissions::revision::current(sql).await?;
        Ok(Finish::Commit(Committed {
            outcome: (),
            revision,
        }))
    }
}

/// An approver says no, with a reason; the requester is told it.
pub async fn reject(
    ladder: &Ladder,
    actor: &Actor,
    approver: &User,
    request_id: i64,
    reason: Reason,
) -> Result<Committed<()>> {
    let (messages, request_track) = {
        let mut conn = ladder.db.acquire().await?;
        let request = promotions::get(&mut conn, request_id).await?;
        let track = ladder.track(&request.track)?;
        let approves = policy::is_approver(&mut conn, track, approver).await?;
        let decide = Decision::Reject;
        policy::may_decide(
            &mut conn, track, &request, approver, actor, approves, decide,
        )
        .await?;
        let decision = json!({ "decided_by": approver.username, "reason": reason.as_str() });
        let context = notifications::context(ladder, &request, track, decision);
        let mut messages = Vec::new();
        if let Some(requester) = users::find_by_id(&mut conn, request.requester_id).await? {
            let to_requester = context.clone();
            messages.push(notifications::message(
                ladder,
                "request_rejected",
                &requester,
                to_requester,
            )?);
        }
        let others = policy::approvers(&mut conn, track, Some(request.requester_id)).await?;
        messages.extend(notifications::to_other_approvers(
            ladder, &others, approver, "rejected", context,
        )?);
        (messages, request.track)
    };
    let committed = ladder
        .db
        .run(Reject {
            track: ladder.track(&request_track)?.clone(),
            actor: actor.clone(),
            approver: approver.clone(),
            request_id,
            reason,
            lock_sql: lock_sql(ladder),
            messages,
            now: ladder.clock.now(),
        })
        .await?;
    ladder.mail_wake.notify_one();
    Ok(committed)
}
