//! Which changes are webhook events, and what each one says. Every change
//! is written to the audit log in its own transaction (`audit::record`);
//! the same call queues one delivery per subscribed endpoint here, so an
//! event exists exactly when its change commits.

use serde_json::{Map, Value, json};

use crate::{Result, actor::Actor, audit::AuditEntry, binds, clock, db::Sql};

/// Every event type, in the order the documentation lists them.
pub const EVENT_TYPES: [&str; 12] = [
    "promotion.submitted",
    "promotion.approved",
    "promotion.rejected",
    "promotion.withdrawn",
    "promotion.expired",
    "promotion.ended",
    "permission.granted",
    "permission.revoked",
    "membership.added",
    "membership.removed",
    "user.created",
    "user.deactivated",
];

/// The event an audit entry is, if it is one. An approval that is one of
/// several needed records a vote, not a decision, and is no event.
fn event_type(entry: &AuditEntry) -> Option<&'static str> {
    Some(match entry.action() {
        "promotion.submit" => "promotion.submitted",
        "promotion.approve" => {
            let state = entry.after_state().and_then(|a| a.get("state"));
            if state.and_then(Value::as_str) != Some("approved") {
                return None;
            }
            "promotion.approved"
        }
        "promotion.reject" => "promotion.rejected",
        "promotion.withdraw" => "promotion.withdrawn",
        "promotion.expire" => "promotion.expired",
        "promotion.end" => "promotion.ended",
        "permission.grant" => "permission.granted",
        "permission.revoke" => "permission.revoked",
        "group.add_user" => "membership.added",
        "group.remove_user" => "membership.removed",
        "user.create" | "user.create_superuser" => "user.created",
        "user.deactivate" => "user.deactivated",
        _ => return None,
    })
}

/// What the event is about, to keep its deliveries in order: a user
/// (`user:7`) or a group (`group:3`). A promotion is about its requester.
fn subject(entry: &AuditEntry) -> String {
    let concerned = entry
        .context_of()
        .and_then(|c| c.pointer("/user/id"))
        .and_then(Value::as_i64);
    let (kind, id, _) = entry.target();
    match concerned {
        Some(user_id) => format!("user:{user_id}"),
        None => format!("{kind}:{}", id.unwrap_or(0)),
    }
}

/// The `data` of an event (docs/webhooks.md lists each type's fields).
fn data(entry: &AuditEntry, actor: &Actor) -> Value {
    let mut data = Map::new();
    let after = entry
        .after_state()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let (kind, id, name) = entry.target();
    match kind {
        "user" => {
            let mut user = Map::new();
            user.insert("id".into(), json!(id));
            user.insert("username".into(), json!(name));
            if entry.action().starts_with("user.") {
                // The account's state after the change, beside its name.
                user.extend(after.into_iter().filter(|(k, _)| k != "username"));
            } else {
                data.extend(after);
            }
            data.insert("user".into(), Value::Object(user));
        }
        "group" => {
            data.insert("group".into(), json!({ "id": id, "name": name }));
            data.extend(after);
        }
        _ => {
            let context = entry.context_of().cloned().unwrap_or_else(|| json!({}));
            let mut request = Map::new();
            request.insert("id".into(), json!(id));
            request.insert("track".into(), context["track"].clone());
            request.extend(after);
            data.insert("request".into(), Value::Object(request));
            data.insert("user".into(), context["user"].clone());
        }
    }
    data.insert(
        "actor".into(),
        json!({
            "id": actor.user_id(),
            "username": actor.name(),
            "source": actor.source.as_str(),
            "token": actor.token.as_ref().map(|t| t.name.clone()),
        }),
    );
    Value::Object(data)
}

/// Queues the event `entry` is, if any, for every active endpoint that
/// takes its type: one statement, no rows when nobody listens.
pub async fn publish(sql: &mut dyn Sql, actor: &Actor, entry: &AuditEntry, now: i64) -> Result<()> {
    let Some(event_type) = event_type(entry) else {
        return Ok(());
    };
    let message_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let payload = json!({
        "id": message_id,
        "type": event_type,
        "timestamp": clock::rfc3339(now),
        "data": data(entry, actor),
    });
    sql.execute(
        "insert into webhook_deliveries (endpoint_id, message_id, event_type, subject, payload, \
         state, attempts, next_attempt_at, created_at) \
         select e.endpoint_id, $1, $2, $3, $4, 'pending', 0, $5, $5 \
           from webhook_subscriptions s join webhook_endpoints e on e.endpoint_id = s.endpoint_id \
          where s.event_type = $2 and e.is_active = $6 order by e.endpoint_id",
        binds![
            message_id,
            event_type,
            subject(entry),
            payload.to_string(),
            now,
            true,
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vote_is_no_event_and_a_decision_is() {
        let vote = AuditEntry::new("promotion.approve", "promotion", Some(1), "#1")
            .after(json!({ "approvals": 1, "needed": 2 }));
        assert_eq!(event_type(&vote), None);
        let decision = AuditEntry::new("promotion.approve", "promotion", Some(1), "#1")
            .after(json!({ "state": "approved" }));
        assert_eq!(event_type(&decision), Some("promotion.approved"));
        let renamed = AuditEntry::new("group.rename", "group", Some(1), "g");
        assert_eq!(event_type(&renamed), None);
    }

    #[test]
    fn a_promotion_is_about_its_requester() {
        let entry = AuditEntry::new("promotion.submit", "promotion", Some(9), "#9")
            .context(json!({ "track": "t", "user": { "id": 7, "username": "walt" } }));
        assert_eq!(subject(&entry), "user:7");
        let grant = AuditEntry::new("permission.grant", "group", Some(3), "Editors");
        assert_eq!(subject(&grant), "group:3");
    }
}
