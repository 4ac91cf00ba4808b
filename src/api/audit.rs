//! `GET /api/v1/audit`: the audit log with the console's filters (actor,
//! target, action, from, to), newest first, a page at a time.

use axum::{
    Json,
    extract::{Query, State},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiResult,
    openapi::ErrorBody,
    paging::{Page, PageQuery},
};
use crate::{
    Error, Result,
    audit::{self, AuditEvent, AuditFilter},
    clock::{parse_rfc3339, rfc3339},
    web::state::AppState,
};

/// The filters; each is optional and they all apply.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Who acted: a username, or `system`.
    actor: Option<String>,
    /// What was acted on, by name: a username, a group's name, a permission,
    /// a promotion request (`#12 senior-writer for alice`).
    target: Option<String>,
    /// What was done, e.g. `permission.grant` or `promotion.approve`.
    action: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Events before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
}

fn given(raw: &Option<String>) -> Option<String> {
    raw.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn time(field: &'static str, raw: &Option<String>) -> Result<Option<i64>> {
    given(raw)
        .map(|t| {
            parse_rfc3339(&t).ok_or_else(|| {
                Error::invalid(field, "must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z")
            })
        })
        .transpose()
}

impl AuditQuery {
    fn filter(&self, page: &PageQuery) -> Result<AuditFilter> {
        let (since, until) = (time("from", &self.from)?, time("to", &self.to)?);
        if let (Some(from), Some(to)) = (since, until)
            && to < from
        {
            return Err(Error::invalid("to", "must not be before from"));
        }
        Ok(AuditFilter {
            actor: given(&self.actor),
            target: given(&self.target),
            action: given(&self.action),
            since,
            until,
            before_id: page.after::<i64>()?,
            // One more than asked: it only says there is a next page.
            limit: page.limit()? + 1,
            ..Default::default()
        })
    }
}

/// One change, as it was recorded.
#[derive(Serialize, ToSchema)]
pub struct AuditEventJson {
    id: i64,
    #[schema(format = DateTime)]
    at: String,
    /// Who acted: a username, or `system`.
    actor: String,
    action: String,
    /// `user`, `group`, `permission`, `promotion`, …
    target_type: String,
    target_id: Option<i64>,
    /// The target's name when the change was made.
    target: String,
    /// What changed, before and after (as recorded; null where not applicable).
    #[schema(value_type = Option<Object>)]
    before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    after: Option<serde_json::Value>,
    /// `cli`, `web`, `api` or `system`.
    source: String,
    /// The API token the change came through, by name.
    token: Option<String>,
}

/// A state as stored: JSON, kept as it is; anything else (never written by
/// Ladder) is shown as `{"text": …}` rather than lost.
fn state(raw: Option<String>) -> Option<serde_json::Value> {
    raw.map(|text| match serde_json::from_str(&text) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        _ => serde_json::json!({ "text": text }),
    })
}

impl From<AuditEvent> for AuditEventJson {
    fn from(e: AuditEvent) -> AuditEventJson {
        AuditEventJson {
            id: e.audit_event_id,
            at: rfc3339(e.created_at),
            actor: e.actor_name,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            target: e.target_name,
            before: state(e.before_state),
            after: state(e.after_state),
            source: e.source,
            token: e.token_name,
        }
    }
}

/// The audit log, newest first.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery, PageQuery),
    responses(
        (status = 200, description = "A page of events", body = Page<AuditEventJson>),
        (status = 422, description = "A time that is not RFC 3339, `to` before `from`, or a bad cursor; `field` names it", body = ErrorBody),
    )
)]
pub async fn list_audit_events(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<AuditEventJson>>> {
    let filter = q.filter(&page)?;
    let mut conn = state.ladder.db.acquire().await?;
    let events = audit::list(&mut conn, &filter).await?;
    let page = Page::of(events, filter.limit - 1, |e| e.audit_event_id);
    Ok(Json(page.map(AuditEventJson::from)))
}
