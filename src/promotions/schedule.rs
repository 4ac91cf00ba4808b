//! What the scheduler does to requests: expire the pending ones past their
//! time, remind approvers of the ones waiting, warn of and end time-bound
//! grants, and send each approver a daily digest. `jobs` decides when.
//!
//! Each reads what is due, renders its emails, and then writes each piece of
//! work in a transaction of its own whose conditional update (`… where
//! warned_at is null`) makes a second run, or a second instance, do nothing.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Request, State, notifications,
    policy::approvers,
    transitions::{end_grant, expire},
};
use crate::{
    Error, Ladder, Result,
    accounts::{User, users},
    actor::{Actor, Source},
    binds,
    db::{Finish, Sql, Transaction},
    mail::{self, Message},
};

/// The requests in `state` whose `deadline` (a column) is at or before `now`, by id.
async fn due(sql: &mut dyn Sql, state: State, deadline: &str, now: i64) -> Result<Vec<i64>> {
    let query = format!(
        "select request_id from promotion_requests where state = '{}' and {deadline} <= $1 order by request_id",
        state.as_str()
    );
    sql.fetch_i64s(&query, binds![now]).await
}

/// Pending requests past their expiry become expired. Returns how many.
pub async fn expire_due(ladder: &Ladder) -> Result<u32> {
    let now = ladder.clock.now();
    let due = due(
        &mut ladder.db.acquire().await?,
        State::Pending,
        "expires_at",
        now,
    )
    .await?;
    let system = Actor::system(Source::System);
    let mut count = 0;
    for request_id in due {
        if expire(ladder, &system, request_id, now).await? {
            count += 1;
        }
    }
    Ok(count)
}

/// Marks one piece of scheduled work done, with `mark` (an update that
/// changes a row only the first time), and queues its emails if it did.
struct MarkAndQueue {
    mark: &'static str,
    binds: Vec<crate::db::Bind>,
    messages: Vec<Message>,
    now: i64,
}

impl Transaction for MarkAndQueue {
    type Output = bool;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<bool>> {
        if sql.execute(self.mark, self.binds).await? == 0 {
            return Ok(Finish::Commit(false));
        }
        notifications::queue_all(sql, self.messages, self.now).await?;
        Ok(Finish::Commit(true))
    }
}

/// Warns a day before a time-bound grant ends, and ends the ones due.
pub async fn end_due_grants(ladder: &Ladder) -> Result<(u32, u32)> {
    let now = ladder.clock.now();
    let mut conn = ladder.db.acquire().await?;
    let to_warn = warnable(&mut conn, now).await?;
    let mut warned = 0;
    for request_id in to_warn {
        let request = super::get(&mut conn, request_id).await?;
        let requester = users::find_by_id(&mut conn, request.requester_id).await?;
        // Marked warned even with nobody to tell (no account, no track any more).
        let mut messages = Vec::new();
        if let (Ok(track), Some(requester)) = (ladder.track(&request.track), requester) {
            let ends = json!({ "grant_ends_at": request.grant_ends_at.map(crate::clock::rfc3339) });
            let context = notifications::context(ladder, &request, track, ends);
            messages.push(notifications::message(
                ladder,
                "grant_ending_soon",
                &requester,
                context,
            )?);
        }
        let told = !messages.is_empty();
        let mark = MarkAndQueue {
            mark: "update promotion_requests set warned_at = $1 where request_id = $2 and warned_at is null",
            binds: binds![now, request_id],
            messages,
            now,
        };
        if ladder.db.run(mark).await? && told {
            warned += 1;
        }
    }
    let due = due(&mut conn, State::Approved, "grant_ends_at", now).await?;
    drop(conn);
    let system = Actor::system(Source::System);
    let mut ended = 0;
    for request_id in due {
        match end_grant(ladder, &system, None, request_id).await {
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

/// Approved grants that end within a day and have not been warned of.
async fn warnable(sql: &mut dyn Sql, now: i64) -> Result<Vec<i64>> {
    sql.fetch_i64s(
        "select request_id from promotion_requests where state = 'approved' and grant_ends_at is not null \
         and warned_at is null and grant_ends_at > $1 and grant_ends_at <= $2 order by request_id",
        binds![now, now + 86_400],
    )
    .await
}

/// Reminds approvers (who have not approved yet) of requests that
/// have waited longer than remind_after, at most once per request per period.
pub async fn remind_due(ladder: &Ladder) -> Result<u32> {
    let now = ladder.clock.now();
    let mut conn = ladder.db.acquire().await?;
    let mut sent = 0;
    for track in ladder.tracks.iter() {
        let Some(every) = track.remind_after else {
            continue;
        };
        let due = (&mut conn as &mut dyn Sql).fetch_i64s(
                "select request_id from promotion_requests where state = 'pending' and track = $1 \
                 and created_at <= $2 and (last_reminded_at is null or last_reminded_at <= $2) order by request_id",
                binds![&track.name, now - every],
            )
            .await?;
        for request_id in due {
            let request = super::get(&mut conn, request_id).await?;
            let approved_by = (&mut conn as &mut dyn Sql)
                .fetch_i64s(
                    "select approver_id from promotion_approvals where request_id = $1",
                    binds![request_id],
                )
                .await?;
            let context = notifications::context(ladder, &request, track, json!({}));
            let messages = approvers(&mut conn, track, Some(request.requester_id))
                .await?
                .iter()
                .filter(|a| !approved_by.contains(&a.user_id))
                .map(|a| notifications::message(ladder, "reminder", a, context.clone()))
                .collect::<Result<Vec<_>>>()?;
            let count = messages.len() as u32;
            let mark = MarkAndQueue {
                mark: "update promotion_requests set last_reminded_at = $1 where request_id = $2 \
                       and (last_reminded_at is null or last_reminded_at <= $3)",
                binds: binds![now, request_id, now - every],
                messages,
                now,
            };
            if ladder.db.run(mark).await? {
                sent += count;
            }
        }
    }
    Ok(sent)
}

/// Queues each approver's digest; the dedupe key makes it once a day.
struct QueueDigests {
    messages: Vec<Message>,
    now: i64,
}

impl Transaction for QueueDigests {
    type Output = u32;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<u32>> {
        let mut queued = 0;
        for message in self.messages {
            if mail::enqueue(sql, message, self.now).await? {
                queued += 1;
            }
        }
        Ok(Finish::Commit(queued))
    }
}

/// One email a day to each approver with anything pending.
pub async fn digest(ladder: &Ladder) -> Result<u32> {
    let now = ladder.clock.now();
    let day = crate::clock::rfc3339(now)
        .chars()
        .take(10)
        .collect::<String>();
    let mut by_approver: BTreeMap<i64, (User, Vec<Value>)> = BTreeMap::new();
    let mut conn = ladder.db.acquire().await?;
    for track in ladder.tracks.iter() {
        let sql: &mut dyn Sql = &mut conn;
        let pending: Vec<Request> = sql
            .fetch_all(
                &format!(
                    "{} where r.state = 'pending' and r.track = $1 order by r.created_at, r.request_id limit 200",
                    super::SELECT
                ),
                binds![&track.name],
            )
            .await?;
        if pending.is_empty() {
            continue;
        }
        for approver in approvers(&mut conn, track, None).await? {
            let list = &mut by_approver
                .entry(approver.user_id)
                .or_insert_with(|| (approver.clone(), vec![]))
                .1;
            for r in pending
                .iter()
                .filter(|r| r.requester_id != approver.user_id)
            {
                list.push(notifications::context(ladder, r, track, json!({})));
            }
        }
    }
    drop(conn);
    let mut messages = Vec::new();
    for (user_id, (approver, requests)) in by_approver {
        if requests.is_empty() {
            continue;
        }
        let mut context = json!({ "requests": requests, "count": requests.len() });
        context["recipient"] = json!(approver.username);
        let public_url = &ladder.settings.server.public_url;
        let message = Message::render("digest", &approver.email, context, public_url)?;
        messages.push(message.dedupe(format!("digest:{user_id}:{day}")));
    }
    ladder.db.run(QueueDigests { messages, now }).await
}
