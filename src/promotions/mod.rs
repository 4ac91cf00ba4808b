//! The promotion workflow: a member of one group asks to join another; the
//! approvers decide; approval grants the membership in the same transaction.

pub mod api;
pub mod group_changes;
pub mod handlers;
pub mod notifications;
pub mod policy;
pub mod reasons;
pub mod schedule;
pub mod track;
pub mod transitions;

use serde::Serialize;
use sqlx::{
    Any, FromRow,
    any::{AnyTypeInfo, AnyValueRef},
    error::BoxDynError,
};

pub use track::Track;

use crate::{
    Error, Result,
    db::{Binds, Conn},
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

impl sqlx::Type<Any> for State {
    fn type_info() -> AnyTypeInfo {
        <String as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for State {
    fn decode(value: AnyValueRef<'r>) -> Result<State, BoxDynError> {
        let raw = <String as sqlx::Decode<'r, Any>>::decode(value)?;
        Ok(State::try_from(raw)?)
    }
}

/// A request row, with the names a page or the API shows.
#[derive(Debug, Clone, FromRow, Serialize)]
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

pub(crate) const SELECT: &str = "select r.request_id, r.track, r.requester_id, u.username as requester, \
     r.justification, r.state, d.username as decided_by, r.decided_at, r.decision_reason, \
     r.expires_at, r.grant_ends_at, r.ended_at, r.created_at, r.updated_at \
     from promotion_requests r join users u on u.user_id = r.requester_id \
     left join users d on d.user_id = r.decided_by";

pub async fn find(conn: &mut Conn, request_id: i64) -> Result<Option<Request>> {
    Ok(sqlx::query_as(&format!("{SELECT} where r.request_id = $1"))
        .bind(request_id)
        .fetch_optional(conn)
        .await?)
}

pub async fn get(conn: &mut Conn, request_id: i64) -> Result<Request> {
    find(conn, request_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("promotion request {request_id}")))
}

/// One approval so far.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Approval {
    pub approver: String,
    pub comment: String,
    pub created_at: i64,
}

pub async fn approvals(conn: &mut Conn, request_id: i64) -> Result<Vec<Approval>> {
    Ok(sqlx::query_as(
        "select u.username as approver, a.comment, a.created_at from promotion_approvals a \
         join users u on u.user_id = a.approver_id where a.request_id = $1 order by a.created_at, u.username_key",
    )
    .bind(request_id)
    .fetch_all(conn)
    .await?)
}

/// A requester's own requests, newest first.
pub async fn by_requester(conn: &mut Conn, user_id: i64) -> Result<Vec<Request>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} where r.requester_id = $1 order by r.request_id desc"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// Filters for the review dashboard and the API list.
#[derive(Debug, Default, Clone)]
pub struct RequestFilter {
    /// Only these tracks (the ones the viewer approves); None: all.
    pub tracks: Option<Vec<String>>,
    pub track: Option<String>,
    pub state: Option<State>,
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
pub async fn list(conn: &mut Conn, filter: &RequestFilter) -> Result<RequestPage> {
    let mut sql = format!("{SELECT} where 1 = 1");
    let mut binds = Binds::default();
    if let Some(tracks) = &filter.tracks {
        if tracks.is_empty() {
            return Ok(RequestPage {
                requests: vec![],
                next: None,
            });
        }
        let params: Vec<String> = tracks.iter().map(|t| binds.text(t.clone())).collect();
        sql += &format!(" and r.track in ({})", params.join(", "));
    }
    if let Some(track) = &filter.track {
        sql += &format!(" and r.track = {}", binds.text(track.clone()));
    }
    if let Some(state) = filter.state {
        sql += &format!(" and r.state = {}", binds.text(state.as_str()));
    }
    if let Some(requester) = &filter.requester {
        let key = crate::accounts::username_key(requester.trim());
        sql += &format!(" and u.username_key = {}", binds.text(key));
    }
    let op = if filter.newest_first { "<" } else { ">" };
    if let Some(after) = &filter.after {
        let (at, id) = after
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
            .ok_or_else(|| Error::invalid("after", "is not a valid page cursor"))?;
        let (a, b) = (binds.int(at), binds.int(id));
        sql += &format!(
            " and (r.created_at {op} {a} or (r.created_at = {a} and r.request_id {op} {b}))"
        );
    }
    let dir = if filter.newest_first { "desc" } else { "asc" };
    let limit = binds.int(filter.limit + 1);
    sql += &format!(" order by r.created_at {dir}, r.request_id {dir} limit {limit}");
    let mut requests = sqlx::query_as_with::<_, Request, _>(&sql, binds.into_arguments()?)
        .fetch_all(conn)
        .await?;
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
pub async fn pending_count(conn: &mut Conn, tracks: &[String], cap: i64) -> Result<i64> {
    if tracks.is_empty() {
        return Ok(0);
    }
    let params: Vec<String> = (1..=tracks.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "select count(*) from (select 1 from promotion_requests where state = 'pending' \
         and track in ({}) limit ${}) capped",
        params.join(", "),
        tracks.len() + 1
    );
    let mut query = sqlx::query_scalar(&sql);
    for t in tracks {
        query = query.bind(t.clone());
    }
    Ok(query.bind(cap).fetch_one(conn).await?)
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
