//! Approving: the busiest transition. The reads and checks run first, on a
//! pooled connection; the writes then run as one `Db::write` job that
//! re-checks, under the row lock, what may have changed meanwhile.

use serde_json::json;

use super::{entry, locking};
use crate::{
    Error, Ladder, Result,
    accounts::{User, promotion_grant},
    actor::Actor,
    audit, binds,
    db::Finish,
    promotions::{
        self,
        notifications::{self, tell_other_approvers},
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

/// How an approval's write transaction ended.
enum Decided {
    Approved,
    Recorded(u32),
    AlreadyApproved,
    NotPending,
    NotEligible,
}

/// An approver says yes. The last approval needed grants the membership;
/// the requester and the other approvers are told.
pub async fn approve(
    ladder: &Ladder,
    actor: &Actor,
    approver: &User,
    request_id: i64,
    comment: Comment,
) -> Result<Approval> {
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
    // The approval is checked and recorded under the row lock (PostgreSQL;
    // SQLite's write transaction is exclusive), so of concurrent approvers
    // exactly one sees the last approval needed.
    let lock_sql = locking(
        ladder,
        "select 1 from promotion_requests r where request_id = $1 and state = 'pending'",
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
                if w.fetch_i64(&lock_sql, binds![request_id]).await?.is_none() {
                    return Ok(Finish::Rollback(Decided::NotPending));
                }
                let added = w
                    .execute(
                        "insert into promotion_approvals (request_id, approver_id, comment, created_at) \
                         values ($1, $2, $3, $4) on conflict do nothing",
                        binds![request_id, approver.user_id, comment.as_str(), now],
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
                let audit_entry = entry("promotion.approve", request);
                if have < need {
                    audit::record(
                        w,
                        actor,
                        audit_entry.after(json!({ "approvals": have, "needed": need, "comment": comment.as_str() })),
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
                        binds![approver.user_id, now, comment.as_str(), grant_ends_at, request_id],
                    )
                    .await?;
                if changed == 0 {
                    return Ok(Finish::Rollback(Decided::NotPending));
                }
                let granted = promotion_grant::grant_promotion(
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
                        .after(json!({ "state": "approved", "approvals": have, "comment": comment.as_str(), "grant_ends_at": grant_ends_at })),
                    now,
                )
                .await?;
                // The request as read before: what the emails need of it cannot change.
                let context = notifications::context(ladder, request, track, json!({
                    "decided_by": approver.username,
                    "comment": comment.as_str(),
                    "grant_ends_at": grant_ends_at.map(crate::clock::rfc3339),
                }));
                notifications::queue(ladder, w, "request_approved", requester, context.clone(), now)
                    .await?;
                tell_other_approvers(ladder, w, &others, approver, "approved", context, now)
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
