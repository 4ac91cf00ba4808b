//! The emails about a request: the context every one of them is rendered
//! from, and queueing them in the transaction of the change that causes them.

use serde_json::{Value, json};

use super::{Request, Track};
use crate::{
    Ladder, Result,
    accounts::{User, users},
    db::{Conn, Writer},
    mail::{self, Email},
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

/// Queues `template` for `to`, addressed by their display name (or username).
pub async fn queue(
    ladder: &Ladder,
    w: &mut dyn Writer,
    template: &'static str,
    to: &User,
    mut context: Value,
    now: i64,
) -> Result<()> {
    context["recipient"] = json!(if to.display_name.is_empty() {
        &to.username
    } else {
        &to.display_name
    });
    mail::enqueue(
        w,
        &ladder.settings.server.public_url,
        Email {
            template,
            to: to.email.clone(),
            context,
            dedupe_key: None,
        },
        now,
    )
    .await?;
    Ok(())
}

/// Tells the requester of `request` about it with `template` (and `extra` in
/// the context), if their account and the request's track still exist.
/// Returns whether an email was queued.
pub async fn tell_requester(
    ladder: &Ladder,
    conn: &mut Conn,
    request: &Request,
    template: &'static str,
    extra: Value,
    now: i64,
) -> Result<bool> {
    let requester = users::find_by_id(conn, request.requester_id).await?;
    let (Ok(track), Some(requester)) = (ladder.track(&request.track), requester) else {
        return Ok(false);
    };
    let context = context(ladder, request, track, extra);
    queue(ladder, conn, template, &requester, context, now).await?;
    Ok(true)
}

/// Tells the track's other approvers (`approvers` but the decider) the outcome.
pub async fn tell_other_approvers(
    ladder: &Ladder,
    w: &mut dyn Writer,
    approvers: &[User],
    decider: &User,
    outcome: &str,
    mut context: Value,
    now: i64,
) -> Result<()> {
    context["outcome"] = json!(outcome);
    context["decided_by"] = json!(decider.username);
    for other in approvers.iter().filter(|a| a.user_id != decider.user_id) {
        queue(ladder, w, "request_decided", other, context.clone(), now).await?;
    }
    Ok(())
}
