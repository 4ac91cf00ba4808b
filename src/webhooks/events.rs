//! Which changes are webhook events, and what each one says. Every change
//! is written to the audit log in its own transaction (`audit::record`);
//! the same call queues one delivery per subscribed endpoint here, so an
//! event exists exactly when its change commits.

use serde_json::{Map, Value, json};

use crate::{Result, actor::Actor, binds, clock, db::Sql};

/// A change as the audit log records it (`audit::record` makes one from
/// its entry): what was done, to what, the state after, and what the change
/// concerns beyond its target (a promotion request's track and requester).
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<i64>,
    pub target_name: &'a str,
    pub after: Option<&'a Value>,
    pub context: Option<&'a Value>,
}

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
fn event_type(change: &Change) -> Option<&'static str> {
    Some(match change.action {
        "promotion.submit" => "promotion.submitted",
        "promotion.approve" => {
            let state = change.after.and_then(|a| a.get("state"));
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
fn subject(change: &Change) -> String {
    let concerned = change
        .context
        .and_then(|c| c.pointer("/user/id"))
        .and_then(Value::as_i64);
    match concerned {
        Some(user_id) => format!("user:{user_id}"),
        None => format!("{}:{}", change.target_type, change.target_id.unwrap_or(0)),
    }
}

/// The `data` of an event (docs/webhooks.md lists each type's fields).
fn data(change: &Change, actor: &Actor) -> Value {
    let mut data = Map::new();
    let after = change
        .after
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let (id, name) = (change.target_id, change.target_name);
    match change.target_type {
        "user" => {
            let mut user = Map::new();
            user.insert("id".into(), json!(id));
            user.insert("username".into(), json!(name));
            if change.action.starts_with("user.") {
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
            let context = change.context.cloned().unwrap_or_else(|| json!({}));
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

/// Queues the event `change` is, if any, for every active endpoint that
/// takes its type: one statement, no rows when nobody listens.
pub async fn publish(sql: &mut dyn Sql, actor: &Actor, change: Change<'_>, now: i64) -> Result<()> {
    let Some(event_type) = event_type(&change) else {
        return Ok(());
    };
    let message_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let payload = json!({
        "id": message_id,
        "type": event_type,
        "timestamp": clock::rfc3339(now),
        "data": data(&change, actor),
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
            subject(&change),
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

    fn change<'a>(action: &'a str, target_type: &'a str) -> Change<'a> {
        Change {
            action,
            target_type,
            target_id: Some(3),
            target_name: "x",
            after: None,
            context: None,
        }
    }

    #[test]
    fn a_vote_is_no_event_and_a_decision_is() {
        let vote = json!({ "approvals": 1, "needed": 2 });
        let approve = change("promotion.approve", "promotion");
        let voted = Change {
            after: Some(&vote),
            ..approve
        };
        assert_eq!(event_type(&voted), None);
        let decided = json!({ "state": "approved" });
        let decision = Change {
            after: Some(&decided),
            ..approve
        };
        assert_eq!(event_type(&decision), Some("promotion.approved"));
        assert_eq!(event_type(&change("group.rename", "group")), None);
    }

    #[test]
    fn a_promotion_is_about_its_requester() {
        let context = json!({ "track": "t", "user": { "id": 7, "username": "walt" } });
        let submit = Change {
            context: Some(&context),
            ..change("promotion.submit", "promotion")
        };
        assert_eq!(subject(&submit), "user:7");
        assert_eq!(subject(&change("permission.grant", "group")), "group:3");
    }
}
