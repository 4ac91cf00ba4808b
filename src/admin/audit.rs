//! The audit log page: filter by actor, target, action and date; newest first.

use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    audit::{self, AuditEvent, AuditFilter},
    db::Sql,
    web::{page::Page, state::AppState, templates::render},
};

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Serialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    action: String,
    /// YYYY-MM-DD, inclusive.
    #[serde(default)]
    from: String,
    /// YYYY-MM-DD, inclusive.
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Serialize)]
pub struct EventRow {
    id: i64,
    time: i64,
    actor: String,
    action: String,
    target_type: String,
    target: String,
    before: String,
    after: String,
    source: String,
}

pub fn event_row(e: &AuditEvent) -> EventRow {
    EventRow {
        id: e.audit_event_id,
        time: e.created_at,
        actor: e.actor_name.clone(),
        action: e.action.clone(),
        target_type: e.target_type.clone(),
        target: e.target_name.clone(),
        before: e.before_state.clone().unwrap_or_default(),
        after: e.after_state.clone().unwrap_or_default(),
        source: e.source.clone(),
    }
}

/// Parses `YYYY-MM-DD` to unix seconds at midnight UTC.
fn day(field: &'static str, raw: &str) -> Result<Option<i64>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &format)
        .map(|d| Some(d.midnight().assume_utc().unix_timestamp()))
        .map_err(|_| Error::invalid(field, "use the form YYYY-MM-DD"))
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The latest events about one user, for their page.
pub async fn recent(sql: &mut dyn Sql, user_id: i64) -> Result<Vec<EventRow>> {
    let filter = AuditFilter {
        user_id: Some(user_id),
        limit: 20,
        ..Default::default()
    };
    Ok(audit::list(sql, &filter)
        .await?
        .iter()
        .map(event_row)
        .collect())
}

impl AuditQuery {
    /// The filter for one page (one more row than shown, to know if there is
    /// a next), and the problem with a date, if any.
    fn filter(&self) -> (AuditFilter, Option<String>) {
        let mut error = None;
        let mut date = |field, raw: &str| {
            day(field, raw).unwrap_or_else(|e| {
                error = Some(e.to_string());
                None
            })
        };
        let since = date("from", &self.from);
        let until = date("to", &self.to).map(|t| t + 86_400);
        let filter = AuditFilter {
            actor: non_empty(&self.actor),
            target: non_empty(&self.target),
            action: non_empty(&self.action),
            since,
            until,
            before_id: self.before,
            limit: PAGE_SIZE + 1,
            ..Default::default()
        };
        (filter, error)
    }

    /// The query string of the page after the one ending at `before`.
    fn next(&self, before: i64) -> String {
        serde_urlencoded::to_string([
            ("actor", self.actor.as_str()),
            ("target", &self.target),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
            ("before", &before.to_string()),
        ])
        .unwrap_or_default()
    }
}

pub async fn list(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<AuditQuery>,
) -> Result<Response> {
    let (filter, error) = query.filter();
    let mut conn = state.ladder.db.acquire().await?;
    let mut events = audit::list(&mut conn, &filter).await?;
    drop(conn);
    let more = events.len() as i64 > PAGE_SIZE;
    events.truncate(PAGE_SIZE as usize);
    let next_query = more
        .then(|| events.last().map(|e| query.next(e.audit_event_id)))
        .flatten();
    let events: Vec<EventRow> = events.iter().map(event_row).collect();
    Ok(render(
        "admin/audit.html",
        crate::ctx! { page, events, query, next_query, error },
    )?
    .into_response())
}
