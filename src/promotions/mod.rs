//! The promotion workflow: a member of one group asks to join another; the
//! approvers decide; approval grants the membership in the same transaction.

pub mod group_changes;
pub mod handlers;
pub mod notifications;
pub mod policy;
pub mod reasons;
pub mod schedule;
pub mod track;
pub mod transitions;
pub mod view;

use serde::Serialize;

pub use track::Track;

use crate::{
    Error, Result, binds,
    db::{Binds, FromValue, Sql, Value},
    from_row,
};

/// Where a request stands. Stored as text; every change is one atomic
/// `update … where state = 'pending'` (or 'approved'), see `transitions`.
/// Read from the database, a value that names no state is an error (the
/// request fails to load), never a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Approved,
    Rejected,
    Withdrawn,
    Expired,
    /// An approved, time-bound (or manually ended) grant that is over.
    Ended,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Rejected => "rejected",
            State::Withdrawn => "withdrawn",
            State::Expired => "expired",
            State::Ended => "ended",
        }
    }

    pub fn parse(raw: &str) -> Result<State> {
        Ok(match raw {
            "pending" => State::Pending,
            "approved" => State::Approved,
            "rejected" => State::Rejected,
            "withdrawn" => State::Withdrawn,
            "expired" => State::Expired,
            "ended" => State::Ended,
            _ => {
                return Err(Error::invalid(
                    "state",
                    "must be pending, approved, rejected, withdrawn, expired or ended",
                ));
            }
        })
    }
}

impl TryFrom<String> for State {
    type Error = Error;

    /// A state as stored: anything else means the row is corrupt, so say so loudly.
    fn try_from(raw: String) -> Result<State> {
        State::parse(&raw).map_err(|_| {
            Error::Unexpected(anyhow::anyhow!(
                "promotion_requests.state holds {raw:?}, which is no state"
            ))
        })
    }
}

impl FromValue for State {
    fn from_value(value: &Value) -> std::result::Result<State, String> {
        State::try_from(String::from_value(value)?).map_err(|e| e.to_string())
    }
}

/// A request row, with the names a page or the API shows.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub request_id: i64,
    pub track: String,
    pub requester_id: i64,
    pub requester: String,
    pub justification: String,
    pub state: State,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_reason: Option<String>,
    pub expires_at: Option<i64>,
    pub grant_ends_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

from_row!(Request {
    request_id,
    track,
    requester_id,
    requester,
    justification,
    state,
    decided_by,
    decided_at,
    decision_reason,
    expires_at,
    grant_ends_at,
    ended_at,
    created_at,
    updated_at,
});

pub(crate) const SELECT: &str = "select r.request_id, r.track, r.requester_id, u.username as requester, \
     r.justification, r.state, d.username as decided_by, r.decided_at, r.decision_reason, \
     r.expires_at, r.grant_ends_at, r.ended_at, r.created_at, r.updated_at \
     from promotion_requests r join users u on u.user_id = r.requester_id \
     left join users d on d.user_id = r.decided_by";

pub async fn find(sql: &mut dyn Sql, request_id: i64) -> Result<Option<Request>> {
    sql.fetch_optional(
        &format!("{SELECT} where r.request_id = $1"),
        binds![request_id],
    )
    .await
}

pub async fn get(sql: &mut dyn Sql, request_id: i64) -> Result<Request> {
    find(sql, request_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("promotion request {request_id}")))
}

/// One approval so far.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub approver: String,
    pub comment: String,
    pub created_at: i64,
}

from_row!(Approval {
    approver,
    comment,
    created_at
});

pub async fn approvals(sql: &mut dyn Sql, request_id: i64) -> Result<Vec<Approval>> {
    Ok(approvals_of(sql, &[request_id])
        .await?
        .remove(&request_id)
        .unwrap_or_default())
}

/// The approvals of each of `request_ids`, in one query (a page of requests
/// reads them all at once).
pub async fn approvals_of(
    sql: &mut dyn Sql,
    request_ids: &[i64],
) -> Result<std::collections::BTreeMap<i64, Vec<Approval>>> {
    let mut by_request = std::collections::BTreeMap::new();
    if request_ids.is_empty() {
        return Ok(by_request);
    }
    let mut binds = Binds::default();
    let params: Vec<String> = request_ids.iter().map(|id| binds.int(*id)).collect();
    let query = format!(
        "select a.request_id, u.username as approver, a.comment, a.created_at from promotion_approvals a \
         join users u on u.user_id = a.approver_id where a.request_id in ({}) \
         order by a.request_id, a.created_at, u.username_key",
        params.join(", ")
    );
    for row in sql.fetch_rows(&query, binds.into_vec()).await? {
        let approval = <Approval as crate::db::FromRow>::from_row(&row)?;
        by_request
            .entry(row.get::<i64>("request_id")?)
            .or_insert_with(Vec::new)
            .push(approval);
    }
    Ok(by_request)
}

/// A requester's own requests, newest first.
pub async fn by_requester(sql: &mut dyn Sql, user_id: i64) -> Result<Vec<Request>> {
    sql.fetch_all(
        &format!("{SELECT} where r.requester_id = $1 order by r.request_id desc"),
        binds![user_id],
    )
    .await
}

/// Filters for the review dashboard and the API list.
#[derive(Debug, Default, Clone)]
pub struct RequestFilter {
    /// Only these tracks (the ones the viewer approves); None: all.
    pub tracks: Option<Vec<String>>,
    pub track: Option<String>,
    pub state: Option<State>,
    /// Only requests that are no longer pending (the history).
    pub decided: bool,
    pub requester: Option<String>,
    /// Keyset cursor `created_at:request_id` from the previous page.
    pub after: Option<String>,
    /// Oldest first (the queue) or newest first (history).
    pub newest_first: bool,
    pub limit: i64,
}

pub struct RequestPage {
    pub requests: Vec<Request>,
    pub next: Option<String>,
}

/// A page of requests by keyset pagination on (created_at, request_id).
pub async fn list(sql: &mut dyn Sql, filter: &RequestFilter) -> Result<RequestPage> {
    let mut query = format!("{SELECT} where 1 = 1");
    let mut binds = Binds::default();
    if let Some(tracks) = &filter.tracks {
        if tracks.is_empty() {
            return Ok(RequestPage {
                requests: vec![],
                next: None,
            });
        }
        let params: Vec<String> = tracks.iter().map(|t| binds.text(t.clone())).collect();
        query += &format!(" and r.track in ({})", params.join(", "));
    }
    if let Some(track) = &filter.track {
        query += &format!(" and r.track = {}", binds.text(track.clone()));
    }
    if let Some(state) = filter.state {
        query += &format!(" and r.state = {}", binds.text(state.as_str()));
    }
    if filter.decided {
        query += " and r.state <> 'pending'";
    }
    if let Some(requester) = &filter.requester {
        let key = crate::accounts::username_key(requester.trim());
        query += &format!(" and u.username_key = {}", binds.text(key));
    }
    let op = if filter.newest_first { "<" } else { ">" };
    if let Some(after) = &filter.after {
        let (at, id) = after
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
            .ok_or_else(|| Error::invalid("after", "is not a valid page cursor"))?;
        let (a, b) = (binds.int(at), binds.int(id));
        query += &format!(
            " and (r.created_at {op} {a} or (r.created_at = {a} and r.request_id {op} {b}))"
        );
    }
    let dir = if filter.newest_first { "desc" } else { "asc" };
    let limit = binds.int(filter.limit + 1);
    query += &format!(" order by r.created_at {dir}, r.request_id {dir} limit {limit}");
    let mut requests: Vec<Request> = sql.fetch_all(&query, binds.into_vec()).await?;
    let next = if requests.len() as i64 > filter.limit {
        requests.truncate(filter.limit as usize);
        requests
            .last()
            .map(|r| format!("{}:{}", r.created_at, r.request_id))
    } else {
        None
    };
    Ok(RequestPage { requests, next })
}

/// Pending requests on these tracks, counted up to `cap` (for the navigation badge).
pub async fn pending_count(sql: &mut dyn Sql, tracks: &[String], cap: i64) -> Result<i64> {
    if tracks.is_empty() {
        return Ok(0);
    }
    let params: Vec<String> = (1..=tracks.len()).map(|i| format!("${i}")).collect();
    let query = format!(
        "select count(*) from (select 1 from promotion_requests where state = 'pending' \
         and track in ({}) limit ${}) capped",
        params.join(", "),
        tracks.len() + 1
    );
    let mut values: Vec<crate::db::Bind> = tracks.iter().map(crate::db::Bind::from).collect();
    values.push(cap.into());
    sql.fetch_one(&query, values).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_as_itself() {
        for state in [
            State::Pending,
            State::Approved,
            State::Rejected,
            State::Withdrawn,
            State::Expired,
            State::Ended,
        ] {
            assert_eq!(State::try_from(state.as_str().to_string()).unwrap(), state);
        }
    }

    #[test]
    fn an_unknown_stored_state_is_an_error_not_pending() {
        for raw in ["paused", "Pending", ""] {
            let err = State::try_from(raw.to_string()).unwrap_err();
            assert!(!err.is_user_error(), "{raw:?}: {err}");
            assert!(err.to_string().contains(&format!("{raw:?}")), "{err}");
        }
    }
}
