//! The ends of a request that nobody decides now: a pending request that
//! expires, and an approved grant that ends (on time, or by an approver).

use serde_json::json;

use super::{close, entry, lock, lock_sql};
use crate::{
    Error, Ladder, Result,
    accounts::{Group, User, groups, promotion_grant, users},
    actor::Actor,
    audit, binds,
    db::{Finish, Sql, Transaction},
    mail::Message,
    promotions::{self, State, notifications, policy, track::Track},
};

/// A pending request past its expiry becomes expired; the requester is told.
struct Expire {
    actor: Actor,
    request_id: i64,
    message: Option<Message>,
    now: i64,
}

impl Transaction for Expire {
    type Output = bool;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<bool>> {
        if !close(sql, self.request_id, State::Expired, self.now).await? {
            return Ok(Finish::Commit(false));
        }
        let request = promotions::get(sql, self.request_id).await?;
        let entry = entry("promotion.expire", &request)
            .before(json!({ "state": "pending" }))
            .after(json!({ "state": "expired" }));
        audit::record(sql, &self.actor, entry, self.now).await?;
        if let Some(message) = self.message {
            crate::mail::enqueue(sql, message, self.now).await?;
        }
        Ok(Finish::Commit(true))
    }
}

/// A pending request past its expiry becomes expired, and the requester is
/// told. False if it was no longer pending.
pub async fn expire(ladder: &Ladder, actor: &Actor, request_id: i64, now: i64) -> Result<bool> {
    let message = {
        let mut conn = ladder.db.acquire().await?;
        let request = promotions::get(&mut conn, request_id).await?;
        let requester = users::find_by_id(&mut conn, request.requester_id).await?;
        match (ladder.track(&request.track), requester) {
            (Ok(track), Some(requester)) => {
                let context = notifications::context(ladder, &request, track, json!({}));
                Some(notifications::message(
                    ladder,
                    "request_expired",
                    &requester,
                    context,
                )?)
            }
            _ => None,
        }
    };
    ladder
        .db
        .run(Expire {
            actor: actor.clone(),
            request_id,
            message,
            now,
        })
        .await
}

/// An approved grant ends: the membership goes, the requester is told.
struct EndGrant {
    actor: Actor,
    decider: Option<User>,
    track: Track,
    request_id: i64,
    requester: Option<User>,
    to_group: Group,
    lock_sql: String,
    message: Option<Message>,
    now: i64,
}

impl Transaction for EndGrant {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        let EndGrant {
            request_id, now, ..
        } = self;
        let request = lock(sql, &self.lock_sql, request_id).await?;
        if request.state != State::Approved {
            return Err(Error::Conflict(format!(
                "Request #{request_id} is {}; only an approved grant can be ended.",
                request.state.as_str()
            )));
        }
        if let Some(decider) = &self.decider
            && !policy::is_approver(sql, &self.track, decider).await?
        {
            return Err(Error::Forbidden(format!(
                "Only members of {} can end this grant.",
                self.track.approver_group
            )));
        }
        sql.execute(
            "update promotion_requests set state = 'ended', ended_at = $1, updated_at = $1 \
             where request_id = $2 and state = 'approved'",
            binds![now, request_id],
        )
        .await?;
        if let Some(requester) = &self.requester {
            let (actor, group) = (&self.actor, &self.to_group);
            promotion_grant::change_membership_for_promotion(
                sql, actor, group, requester, false, request_id, now,
            )
            .await?;
        }
        let by = self.decider.as_ref().map(|d| d.username.clone());
        let entry = entry("promotion.end", &request)
            .before(json!({ "state": "approved" }))
            .after(json!({ "state": "ended", "by": by }));
        audit::record(sql, &self.actor, entry, now).await?;
        if let Some(message) = self.message {
            crate::mail::enqueue(sql, message, now).await?;
        }
        Ok(Finish::Commit(()))
    }
}

/// Ends an approved grant: removes the membership. `decider` None is the scheduler.
pub async fn end_grant(
    ladder: &Ladder,
    actor: &Actor,
    decider: Option<&User>,
    request_id: i64,
) -> Result<()> {
    let mut conn = ladder.db.acquire().await?;
    let request = promotions::get(&mut conn, request_id).await?;
    let track = ladder.track(&request.track)?;
    let requester = users::find_by_id(&mut conn, request.requester_id).await?;
    let to_group = groups::get_by_id(&mut conn, track.bound()?.to).await?;
    drop(conn);
    let message = match &requester {
        Some(requester) => {
            let context = notifications::context(ladder, &request, track, json!({}));
            Some(notifications::message(
                ladder,
                "grant_ended",
                requester,
                context,
            )?)
        }
        None => None,
    };
    ladder
        .db
        .run(EndGrant {
            actor: actor.clone(),
            decider: decider.cloned(),
            track: track.clone(),
            request_id,
            requester,
            to_group,
            lock_sql: lock_sql(ladder),
            message,
            now: ladder.clock.now(),
        })
        .await
}
