//! The emails about a request: the context every one of them is rendered
//! from, rendered before the transaction that queues them.

use serde_json::{Value, json};

use super::{Request, Track};
use crate::{
    Ladder, Result,
    accounts::User,
    db::Sql,
    mail::{self, Message},
};

/// What every email about `request` can say, with `extra` (an object) on top.
pub fn context(ladder: &Ladder, request: &Request, track: &Track, extra: Value) -> Value {
    let mut context = json!({
        "request_id": request.request_id,
        "requester": request.requester,
        "track": track.name,
        "from_group": track.from_group,
        "to_group": track.to_group,
        "justification": request.justification,
        "url": format!("{}/promotions/{}", ladder.settings.server.public_url.trim_end_matches('/'), request.request_id),
    });
    if let Value::Object(extra) = extra {
        context.as_object_mut().expect("an object").extend(extra);
    }
    context
}

/// The email `template` to `to`, addressed by their display name (or
/// username), rendered now: before the transaction that queues it.
pub fn message(
    ladder: &Ladder,
    template: &'static str,
    to: &User,
    mut context: Value,
) -> Result<Message> {
    context["recipient"] = json!(if to.display_name.is_empty() {
        &to.username
    } else {
        &to.display_name
    });
    Message::render(
        template,
        &to.email,
        context,
        &ladder.settings.server.public_url,
    )
}

/// The emails telling the track's other approvers (`approvers` but the decider) the outcome.
pub fn to_other_approvers(
    ladder: &Ladder,
    approvers: &[User],
    decider: &User,
    outcome: &str,
    mut context: Value,
) -> Result<Vec<Message>> {
    context["outcome"] = json!(outcome);
    context["decided_by"] = json!(decider.username);
    approvers
        .iter()
        .filter(|a| a.user_id != decider.user_id)
        .map(|other| message(ladder, "request_decided", other, context.clone()))
        .collect()
}

/// Queues rendered emails in the caller's transaction.
pub async fn queue_all(sql: &mut dyn Sql, messages: Vec<Message>, now: i64) -> Result<()> {
    for m in messages {
        mail::enqueue(sql, m, now).await?;
    }
    Ok(())
}
