//! The delivery log: list deliveries, retry a failed one, and delete old ones.

use serde_json::json;

use super::endpoints::get;
use crate::{
    Error, Result,
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    db::{Finish, Sql, Transaction},
};

/// One delivery of one event to one endpoint, as the console and API list it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub delivery_id: i64,
    pub endpoint_id: i64,
    pub message_id: String,
    pub event_type: String,
    pub subject: String,
    pub payload: String,
    /// pending, delivered or failed.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

crate::from_row!(Delivery {
    delivery_id,
    endpoint_id,
    message_id,
    event_type,
    subject,
    payload,
    state,
    attempts,
    next_attempt_at,
    last_status,
    last_error,
    last_attempt_at,
    delivered_at,
    created_at,
});

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<i64>,
    pub state: Option<String>,
    /// Keyset cursor: only deliveries older than this id.
    pub before_id: Option<i64>,
    pub limit: i64,
}

pub const DELIVERY_STATES: [&str; 3] = ["pending", "delivered", "failed"];

/// One delivery of an endpoint.
pub async fn delivery(sql: &mut dyn Sql, endpoint_id: i64, delivery_id: i64) -> Result<Delivery> {
    let found: Option<Delivery> = sql
        .fetch_optional(
            &format!(
                "select {DELIVERY_COLUMNS} from webhook_deliveries                  where delivery_id = $1 and endpoint_id = $2"
            ),
            binds![delivery_id, endpoint_id],
        )
        .await?;
    found.ok_or_else(|| Error::NotFound(format!("delivery {delivery_id}")))
}

const DELIVERY_COLUMNS: &str = "delivery_id, endpoint_id, message_id, event_type, subject, \
    payload, state, attempts, next_attempt_at, last_status, last_error, last_attempt_at, \
    delivered_at, created_at";

/// Deliveries, newest first.
pub async fn deliveries(sql: &mut dyn Sql, filter: &DeliveryFilter) -> Result<Vec<Delivery>> {
    sql.fetch_all(
        &format!(
            "select {DELIVERY_COLUMNS} from webhook_deliveries \
         where ($1 is null or endpoint_id = $1) and ($2 is null or state = $2) \
           and ($3 is null or delivery_id < $3) \
         order by delivery_id desc limit $4"
        ),
        binds![
            filter.endpoint_id,
            filter.state.clone(),
            filter.before_id,
            filter.limit
        ],
    )
    .await
}

/// Puts a failed delivery back in the queue, due now, with a fresh attempt
/// budget. NotFound if the endpoint has no such delivery; false if it was
/// not failed.
pub struct RetryDelivery {
    pub actor: Actor,
    pub endpoint_id: i64,
    pub delivery_id: i64,
    pub now: i64,
}

impl Transaction for RetryDelivery {
    type Output = bool;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<bool>> {
        let endpoint = get(sql, self.endpoint_id).await?;
        sql.fetch_i64(
            "select delivery_id from webhook_deliveries where delivery_id = $1 and endpoint_id = $2",
            binds![self.delivery_id, self.endpoint_id],
        )
        .await?
        .ok_or_else(|| Error::NotFound(format!("delivery {}", self.delivery_id)))?;
        let done = sql
            .execute(
                "update webhook_deliveries set state = 'pending', attempts = 0, next_attempt_at = $1, \
                 claimed_until = null where delivery_id = $2 and state = 'failed'",
                binds![self.now, self.delivery_id],
            )
            .await?;
        if done == 0 {
            return Ok(Finish::Rollback(false));
        }
        let entry = AuditEntry::new(
            "webhook.retry",
            "webhook",
            Some(endpoint.endpoint_id),
            &endpoint.url,
        )
        .after(json!({ "delivery": self.delivery_id }));
        audit::record(sql, &self.actor, entry, self.now).await?;
        Ok(Finish::Commit(true))
    }
}

/// Deletes delivered and failed deliveries made before `before` (the
/// `sessions` job runs it, keeping `webhooks.keep_days`); answers how many
/// went. Pending ones are kept, however old: they are still owed.
pub struct PurgeDeliveries {
    pub before: i64,
}

impl Transaction for PurgeDeliveries {
    type Output = u64;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<u64>> {
        let purged = sql
            .execute(
                "delete from webhook_deliveries where state <> 'pending' and created_at < $1",
                binds![self.before],
            )
            .await?;
        Ok(Finish::Commit(purged))
    }
}
