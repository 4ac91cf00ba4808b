//! The append-only audit log. Every change is recorded in the transaction
//! that makes it, so the log and the data never disagree.

use crate::{
    Result,
    accounts::{Group, User},
    actor::Actor,
    binds,
    db::Sql,
    webhooks::events::{self, Change},
};

/// One event to record.
pub struct AuditEntry {
    action: &'static str,
    target_type: &'static str,
    target_id: Option<i64>,
    target_name: String,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    /// What the event concerns beyond its target, for its webhook payload
    /// (a promotion request's track and requester); not kept in the log.
    context: Option<serde_json::Value>,
}

impl AuditEntry {
    pub fn user(action: &'static str, user: &User) -> AuditEntry {
        AuditEntry::new(action, "user", Some(user.user_id), &user.username)
    }

    pub fn group(action: &'static str, group: &Group) -> AuditEntry {
        AuditEntry::new(action, "group", Some(group.group_id), &group.name)
    }

    pub fn new(
        action: &'static str,
        target_type: &'static str,
        target_id: Option<i64>,
        target_name: &str,
    ) -> AuditEntry {
        AuditEntry {
            action,
            target_type,
            target_id,
            target_name: target_name.to_string(),
            before: None,
            after: None,
            context: None,
        }
    }

    pub fn before(mut self, state: serde_json::Value) -> AuditEntry {
        self.before = Some(state);
        self
    }

    pub fn after(mut self, state: serde_json::Value) -> AuditEntry {
        self.after = Some(state);
        self
    }

    pub fn context(mut self, context: serde_json::Value) -> AuditEntry {
        self.context = Some(context);
        self
    }
}

/// Writes the event, and the webhook deliveries it causes, in the caller's
/// transaction: a change, its audit event and its webhooks commit together.
pub async fn record(sql: &mut dyn Sql, actor: &Actor, entry: AuditEntry, now: i64) -> Result<()> {
    let change = Change {
        action: entry.action,
        target_type: entry.target_type,
        target_id: entry.target_id,
        target_name: &entry.target_name,
        after: entry.after.as_ref(),
        context: entry.context.as_ref(),
    };
    events::publish(sql, actor, change, now).await?;
    sql.execute(
        "insert into audit_events (actor_id, actor_name, action, target_type, target_id, \
         target_name, before_state, after_state, source, token_name, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        binds![
            actor.user_id(),
            actor.name(),
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.target_name,
            entry.before.map(|v| v.to_string()),
            entry.after.map(|v| v.to_string()),
            actor.source.as_str(),
            actor.token.as_ref().map(|t| t.name.clone()),
            now,
        ],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub audit_event_id: i64,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<i64>,
    pub target_name: String,
    pub before_state: Option<String>,
    pub after_state: Option<String>,
    pub source: String,
    /// The API token a change came through.
    pub token_name: Option<String>,
    pub created_at: i64,
}

crate::from_row!(AuditEvent {
    audit_event_id,
    actor_id,
    actor_name,
    action,
    target_type,
    target_id,
    target_name,
    before_state,
    after_state,
    source,
    token_name,
    created_at,
});

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Events where this user acted or was the target.
    pub user_id: Option<i64>,
    /// Events by this actor (username, or `system`).
    pub actor: Option<String>,
    /// Events about a target of this name (a username or group name).
    pub target: Option<String>,
    /// Events of this action, e.g. `permission.grant`.
    pub action: Option<String>,
    /// Events at or after this unix time.
    pub since: Option<i64>,
    /// Events before this unix time.
    pub until: Option<i64>,
    /// Keyset cursor: only events older than this id.
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Newest first. Each filter is optional; `$n is null` lets one statement serve all combinations.
pub async fn list(sql: &mut dyn Sql, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
    sql.fetch_all(
        "select audit_event_id, actor_id, actor_name, action, target_type, target_id, target_name, \
         before_state, after_state, source, token_name, created_at from audit_events \
         where ($1 is null or actor_id = $1 or (target_type = 'user' and target_id = $1)) \
           and ($2 is null or audit_event_id < $2) \
           and ($3 is null or actor_name = $3) \
           and ($4 is null or target_name = $4) \
           and ($5 is null or action = $5) \
           and ($6 is null or created_at >= $6) \
           and ($7 is null or created_at < $7) \
         order by audit_event_id desc limit $8",
        binds![
            filter.user_id,
            filter.before_id,
            filter.actor.clone(),
            filter.target.clone(),
            filter.action.clone(),
            filter.since,
            filter.until,
            filter.limit,
        ],
    )
    .await
}

/// Every event about one target (e.g. a promotion request), oldest first.
pub async fn for_target(
    sql: &mut dyn Sql,
    target_type: &str,
    target_id: i64,
) -> Result<Vec<AuditEvent>> {
    sql.fetch_all(
        "select audit_event_id, actor_id, actor_name, action, target_type, target_id, target_name, \
         before_state, after_state, source, token_name, created_at from audit_events \
         where target_type = $1 and target_id = $2 order by audit_event_id",
        binds![target_type, target_id],
    )
    .await
}
