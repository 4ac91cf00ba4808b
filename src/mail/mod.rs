//! Email: a durable outbox in the database and a worker that sends it.
//!
//! Nothing is sent inside a request. `Message::render` renders the templates
//! before the transaction, and `enqueue` writes the row in it, so an email exists exactly when the
//! change that causes it commits. The worker claims due rows (with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several instances never take the
//! same row), sends them through lettre, and on failure retries with
//! exponential backoff, keeping the attempt count and last error on the row.
//! Each row has its own Message-ID, kept across retries.

pub mod transport;
pub mod worker;

use serde::Serialize;

use crate::{
    Result, binds,
    db::{Finish, Sql, Transaction},
    templates::render_string,
};

/// A finished email, rendered before the transaction that queues it (slow
/// work stays outside the write lock), so the outbox stores what is sent.
#[derive(Debug, Clone)]
pub struct Message {
    pub template: &'static str,
    pub to: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// When set, a second email with the same key is not queued.
    pub dedupe_key: Option<String>,
}

impl Message {
    /// Renders `templates/email/<template>/{subject.txt, body.txt, body.html}`
    /// from `context`, with `public_url` added.
    pub fn render(
        template: &'static str,
        to: &str,
        mut context: serde_json::Value,
        public_url: &str,
    ) -> Result<Message> {
        if let Some(map) = context.as_object_mut() {
            map.insert("public_url".into(), public_url.trim_end_matches('/').into());
        }
        let base = format!("email/{template}");
        let subject = render_string(&format!("{base}/subject.txt"), &context)?
            .trim()
            .replace(['\r', '\n'], " ");
        Ok(Message {
            template,
            to: to.to_string(),
            subject,
            body_text: render_string(&format!("{base}/body.txt"), &context)?,
            body_html: render_string(&format!("{base}/body.html"), &context)?,
            dedupe_key: None,
        })
    }

    /// Puts `value` where the rendering had `placeholder` (say, the id of a
    /// row the same transaction inserts, unknown when the email was rendered).
    pub fn fill_in(&mut self, placeholder: &str, value: &str) {
        for text in [&mut self.subject, &mut self.body_text, &mut self.body_html] {
            if text.contains(placeholder) {
                *text = text.replace(placeholder, value);
            }
        }
    }

    pub fn dedupe(mut self, key: String) -> Message {
        self.dedupe_key = Some(key);
        self
    }
}

/// Writes the outbox row in the caller's transaction. Returns false when
/// the dedupe key was already used.
pub async fn enqueue(sql: &mut dyn Sql, message: Message, now: i64) -> Result<bool> {
    let message_id = format!("<{}@ladder>", uuid::Uuid::new_v4().simple());
    let inserted = sql
        .execute(
            "insert into mail_outbox (message_id, dedupe_key, template, recipient, subject, body_text, \
             body_html, state, attempts, next_attempt_at, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8) on conflict do nothing",
            binds![
                message_id,
                message.dedupe_key,
                message.template,
                message.to,
                message.subject,
                message.body_text,
                message.body_html,
                now,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

/// An outbox row, for the admin console.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub outbox_id: i64,
    pub message_id: String,
    pub template: String,
    pub recipient: String,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub created_at: i64,
}

crate::from_row!(OutboxRow {
    outbox_id,
    message_id,
    template,
    recipient,
    subject,
    state,
    attempts,
    last_error,
    next_attempt_at,
    sent_at,
    created_at,
});

/// Emails in `state` ("pending", "sent" or "failed"), newest first.
pub async fn list(sql: &mut dyn Sql, state: &str, limit: i64) -> Result<Vec<OutboxRow>> {
    sql.fetch_all(
        "select outbox_id, message_id, template, recipient, subject, state, attempts, last_error, \
         next_attempt_at, sent_at, created_at from mail_outbox where state = $1 \
         order by outbox_id desc limit $2",
        binds![state, limit],
    )
    .await
}

/// Puts a failed email back in the queue, due now, with a fresh attempt budget.
pub async fn retry(sql: &mut dyn Sql, outbox_id: i64, now: i64) -> Result<bool> {
    let done = sql
        .execute(
            "update mail_outbox set state = 'pending', attempts = 0, next_attempt_at = $1, claimed_until = null \
             where outbox_id = $2 and state = 'failed'",
            binds![now, outbox_id],
        )
        .await?;
    Ok(done == 1)
}

/// `retry` as a transaction: true when the email was failed and is queued again.
pub struct RetryEmail {
    pub outbox_id: i64,
    pub now: i64,
}

impl Transaction for RetryEmail {
    type Output = bool;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<bool>> {
        Ok(Finish::Commit(retry(sql, self.outbox_id, self.now).await?))
    }
}
