//! What the scheduler does to requests: expire the pending ones past their
//! time, remind approvers of the ones waiting, warn of and end time-bound
//! grants, and send each approver a daily digest. Each runs in the job's
//! transaction; `jobs` decides when.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Request, State, notifications,
    policy::approvers,
    transitions::{end_grant, expire},
};
use crate::{
    Error, Ladder, Result,
    accounts::User,
    actor::{Actor, Source},
    db::Conn,
    mail::{self, Message},
};

/// The requests in `state` whose `deadline` (a column) is at or before `now`, by id.
async fn due(conn: &mut Conn, state: State, deadline: &str, now: i64) -> Result<Vec<i64>> {
    let sql = format!(
        "select request_id from promotion_requests where state = '{}' and {deadline} <= $1 order by request_id",
        state.as_str()
    );
    Ok(sqlx::query_scalar(&sql).bind(now).fetch_all(conn).await?)
}

/// Pending requests past their expiry become expired. Returns how many.
pub async fn expire_due(ladder: &Ladder, conn: &mut Conn) -> Result<u32> {
    let now = ladder.clock.now();
    let due = due(conn, State::Pending, "expires_at", now).await?;
    let system = Actor::system(Source::System);
    let mut count = 0;
    for request_id in due {
        if expire(ladder, conn, &system, request_id, now).await? {
            count += 1;
        }
    }
    Ok(count)
}

/// Warns a day before a time-bound grant ends, and ends the ones due.
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
        let ends = json!({ "grant_ends_at": request.grant_ends_at.map(crate::clock::rfc3339) });
        if notifications::tell_requester(ladder, conn, &request, "grant_ending_soon", ends, now)
            .await?
        {
            warned += 1;
        }
    }
    let due = due(conn, State::Approved, "grant_ends_at", now).await?;
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

/// Reminds approvers (who have not approved yet) of requests that
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
            let context = notifications::context(ladder, &request, track, json!({}));
            for approver in approvers(conn, track, Some(request.requester_id)).await? {
                if !approved_by.contains(&approver.user_id) {
                    let message =
                        notifications::message(ladder, "reminder", &approver, context.clone())?;
                    mail::enqueue(conn, message, now).await?;
                    sent += 1;
                }
            }
        }
    }
    Ok(sent)
}

/// One email a day to each approver with anything pending.
pub async fn digest(ladder: &Ladder, conn: &mut Conn) -> Result<u32> {
    let now = ladder.clock.now();
    let day = crate::clock::rfc3339(now)
        .chars()
        .take(10)
        .collect::<String>();
    let mut by_approver: BTreeMap<i64, (User, Vec<Value>)> = BTreeMap::new();
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
                list.push(notifications::context(ladder, r, track, json!({})));
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
        let message = Message::render(
            "digest",
            &approver.email,
            context,
            &ladder.settings.server.public_url,
        )?
        .dedupe(format!("digest:{user_id}:{day}"));
        let queued = mail::enqueue(conn, message, now).await?;
        if queued {
            sent += 1;
        }
    }
    Ok(sent)
}
