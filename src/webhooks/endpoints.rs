//! Registered endpoints: register (with a fresh secret), change, rotate the
//! secret, delete, and read them.

use serde_json::json;

use super::{events, signature, target};
use crate::{
    Error, Ladder, Result,
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    db::{Finish, Sql, Transaction},
};

/// A registered endpoint (never its secret).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub endpoint_id: i64,
    pub url: String,
    pub description: String,
    pub is_active: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The event types it takes, in `events::EVENT_TYPES` order.
    pub event_types: Vec<String>,
}

#[derive(Debug, Clone)]
struct EndpointRow {
    endpoint_id: i64,
    url: String,
    description: String,
    is_active: bool,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

crate::from_row!(EndpointRow {
    endpoint_id,
    url,
    description,
    is_active,
    created_by,
    created_at,
    updated_at,
});

const ENDPOINT_COLUMNS: &str =
    "endpoint_id, url, description, is_active, created_by, created_at, updated_at";

impl Endpoint {
    fn audit_state(&self) -> serde_json::Value {
        json!({
            "url": self.url,
            "description": self.description,
            "event_types": self.event_types,
            "is_active": self.is_active,
        })
    }
}

/// What an admin asks for: the URL is checked (`target::check`) before
/// the transaction, since that may ask DNS.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

/// Event types as given, checked and in the documented order; none is an error.
pub fn parse_event_types(given: &[String]) -> Result<Vec<String>> {
    let mut wanted = Vec::new();
    for name in given {
        let name = name.trim();
        if name == "*" {
            return Ok(events::EVENT_TYPES.iter().map(|t| t.to_string()).collect());
        }
        if !events::EVENT_TYPES.contains(&name) {
            return Err(Error::invalid(
                "event_types",
                format!(
                    "{name:?} is not an event type; one of {} (or \"*\" for all)",
                    events::EVENT_TYPES.join(", ")
                ),
            ));
        }
        wanted.push(name);
    }
    if wanted.is_empty() {
        return Err(Error::invalid(
            "event_types",
            "choose at least one event type",
        ));
    }
    Ok(events::EVENT_TYPES
        .iter()
        .filter(|t| wanted.contains(t))
        .map(|t| t.to_string())
        .collect())
}

fn check_description(description: &str) -> Result<String> {
    let description = description.trim();
    if description.chars().any(char::is_control) {
        return Err(Error::invalid(
            "description",
            "must be one line, without control characters",
        ));
    }
    if description.chars().count() > 200 {
        return Err(Error::invalid(
            "description",
            "must be at most 200 characters",
        ));
    }
    Ok(description.to_string())
}

/// Registers an endpoint: checks the target, then writes it with a fresh
/// secret. Answers the endpoint and the secret, which is shown only now.
pub async fn register(
    ladder: &Ladder,
    actor: &Actor,
    input: EndpointInput,
) -> Result<(Endpoint, String)> {
    let url = input
        .url
        .ok_or_else(|| Error::invalid("url", "is required"))?;
    let url = target::check(&url, ladder.settings.webhooks.allow_private_targets)
        .await?
        .to_string();
    let event_types = parse_event_types(&input.event_types.unwrap_or_default())?;
    let description = check_description(input.description.as_deref().unwrap_or(""))?;
    let created = ladder
        .db
        .run(CreateEndpoint {
            actor: actor.clone(),
            url,
            description,
            event_types,
            is_active: input.is_active.unwrap_or(true),
            now: ladder.clock.now(),
        })
        .await?;
    // This process's worker learns of the endpoint now, not at its next poll.
    ladder.webhook_wake.notify_one();
    Ok(created)
}

/// Changes what is given of an endpoint; a new URL is checked as at registration.
pub async fn update(
    ladder: &Ladder,
    actor: &Actor,
    endpoint_id: i64,
    input: EndpointInput,
) -> Result<Endpoint> {
    let url = match input.url {
        Some(url) => Some(
            target::check(&url, ladder.settings.webhooks.allow_private_targets)
                .await?
                .to_string(),
        ),
        None => None,
    };
    let event_types = input
        .event_types
        .as_deref()
        .map(parse_event_types)
        .transpose()?;
    let description = input
        .description
        .as_deref()
        .map(check_description)
        .transpose()?;
    let updated = ladder
        .db
        .run(UpdateEndpoint {
            actor: actor.clone(),
            endpoint_id,
            url,
            description,
            event_types,
            is_active: input.is_active,
            now: ladder.clock.now(),
        })
        .await?;
    ladder.webhook_wake.notify_one();
    Ok(updated)
}

pub struct CreateEndpoint {
    pub actor: Actor,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub is_active: bool,
    pub now: i64,
}

impl Transaction for CreateEndpoint {
    type Output = (Endpoint, String);

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<(Endpoint, String)>> {
        let secret = signature::new_secret();
        let row: EndpointRow = sql
            .fetch_one(
                &format!(
                    "insert into webhook_endpoints (url, description, secret, is_active, created_by, \
                     created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $6) \
                     returning {ENDPOINT_COLUMNS}"
                ),
                binds![
                    &self.url,
                    &self.description,
                    &secret,
                    self.is_active,
                    self.actor.name(),
                    self.now
                ],
            )
            .await?;
        subscribe(sql, row.endpoint_id, &self.event_types).await?;
        let endpoint = with_types(row, self.event_types);
        let entry = AuditEntry::new(
            "webhook.create",
            "webhook",
            Some(endpoint.endpoint_id),
            &endpoint.url,
        )
        .after(endpoint.audit_state());
        audit::record(sql, &self.actor, entry, self.now).await?;
        Ok(Finish::Commit((endpoint, secret)))
    }
}

pub struct UpdateEndpoint {
    pub actor: Actor,
    pub endpoint_id: i64,
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub is_active: Option<bool>,
    pub now: i64,
}

impl Transaction for UpdateEndpoint {
    type Output = Endpoint;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Endpoint>> {
        let before = get(sql, self.endpoint_id).await?;
        sql.execute(
            "update webhook_endpoints set url = $1, description = $2, is_active = $3, updated_at = $4 \
             where endpoint_id = $5",
            binds![
                self.url.clone().unwrap_or_else(|| before.url.clone()),
                self.description
                    .clone()
                    .unwrap_or_else(|| before.description.clone()),
                self.is_active.unwrap_or(before.is_active),
                self.now,
                self.endpoint_id,
            ],
        )
        .await?;
        if let Some(types) = &self.event_types {
            sql.execute(
                "delete from webhook_subscriptions where endpoint_id = $1",
                binds![self.endpoint_id],
            )
            .await?;
            subscribe(sql, self.endpoint_id, types).await?;
        }
        let after = get(sql, self.endpoint_id).await?;
        let entry = AuditEntry::new(
            "webhook.update",
            "webhook",
            Some(after.endpoint_id),
            &after.url,
        )
        .before(before.audit_state())
        .after(after.audit_state());
        audit::record(sql, &self.actor, entry, self.now).await?;
        Ok(Finish::Commit(after))
    }
}

/// Replaces an endpoint's secret at once: every later attempt, retries
/// included, is signed with the new one. Answers the new secret.
pub struct RotateSecret {
    pub actor: Actor,
    pub endpoint_id: i64,
    pub now: i64,
}

impl Transaction for RotateSecret {
    type Output = String;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<String>> {
        let endpoint = get(sql, self.endpoint_id).await?;
        let secret = signature::new_secret();
        sql.execute(
            "update webhook_endpoints set secret = $1, updated_at = $2 where endpoint_id = $3",
            binds![&secret, self.now, self.endpoint_id],
        )
        .await?;
        let entry = AuditEntry::new(
            "webhook.rotate_secret",
            "webhook",
            Some(endpoint.endpoint_id),
            &endpoint.url,
        );
        audit::record(sql, &self.actor, entry, self.now).await?;
        Ok(Finish::Commit(secret))
    }
}

/// Deletes an endpoint with its deliveries, sent or not.
pub struct DeleteEndpoint {
    pub actor: Actor,
    pub endpoint_id: i64,
    pub now: i64,
}

impl Transaction for DeleteEndpoint {
    type Output = Endpoint;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Endpoint>> {
        let endpoint = get(sql, self.endpoint_id).await?;
        // Explicitly: SQLite enforces the cascade only with foreign keys on.
        sql.execute(
            "delete from webhook_deliveries where endpoint_id = $1",
            binds![self.endpoint_id],
        )
        .await?;
        sql.execute(
            "delete from webhook_subscriptions where endpoint_id = $1",
            binds![self.endpoint_id],
        )
        .await?;
        sql.execute(
            "delete from webhook_endpoints where endpoint_id = $1",
            binds![self.endpoint_id],
        )
        .await?;
        let entry = AuditEntry::new(
            "webhook.delete",
            "webhook",
            Some(endpoint.endpoint_id),
            &endpoint.url,
        )
        .before(endpoint.audit_state());
        audit::record(sql, &self.actor, entry, self.now).await?;
        Ok(Finish::Commit(endpoint))
    }
}

async fn subscribe(sql: &mut dyn Sql, endpoint_id: i64, event_types: &[String]) -> Result<()> {
    for event_type in event_types {
        sql.execute(
            "insert into webhook_subscriptions (endpoint_id, event_type) values ($1, $2)",
            binds![endpoint_id, event_type],
        )
        .await?;
    }
    Ok(())
}

fn with_types(row: EndpointRow, mut event_types: Vec<String>) -> Endpoint {
    event_types.sort_by_key(|t| events::EVENT_TYPES.iter().position(|e| e == t));
    Endpoint {
        endpoint_id: row.endpoint_id,
        url: row.url,
        description: row.description,
        is_active: row.is_active,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        event_types,
    }
}

async fn types_of(sql: &mut dyn Sql, endpoint_id: i64) -> Result<Vec<String>> {
    sql.fetch_all::<String>(
        "select event_type from webhook_subscriptions where endpoint_id = $1",
        binds![endpoint_id],
    )
    .await
}

/// One endpoint; a missing one is NotFound.
pub async fn get(sql: &mut dyn Sql, endpoint_id: i64) -> Result<Endpoint> {
    let row: Option<EndpointRow> = sql
        .fetch_optional(
            &format!("select {ENDPOINT_COLUMNS} from webhook_endpoints where endpoint_id = $1"),
            binds![endpoint_id],
        )
        .await?;
    let row = row.ok_or_else(|| Error::NotFound(format!("webhook {endpoint_id}")))?;
    let types = types_of(sql, endpoint_id).await?;
    Ok(with_types(row, types))
}

/// Every endpoint, oldest first (a deployment has a handful).
pub async fn list(sql: &mut dyn Sql) -> Result<Vec<Endpoint>> {
    let rows: Vec<EndpointRow> = sql
        .fetch_all(
            &format!("select {ENDPOINT_COLUMNS} from webhook_endpoints order by endpoint_id"),
            binds![],
        )
        .await?;
    let mut endpoints = Vec::with_capacity(rows.len());
    for row in rows {
        let types = types_of(sql, row.endpoint_id).await?;
        endpoints.push(with_types(row, types));
    }
    Ok(endpoints)
}
