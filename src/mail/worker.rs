//! The outbox worker: claims due emails, sends them, records the outcome.

use std::time::Duration;

use futures_util::StreamExt;
use lettre::message::Mailbox;
use sqlx::FromRow;
use tokio::sync::Notify;

use super::transport::{Outgoing, SendError, Transport};
use crate::{Ladder, Result, db::pick};

/// How long a claim lasts: past this another worker may take the row (the
/// first one crashed). Longer than any send.
const CLAIM_SECONDS: i64 = 120;
const BATCH: i64 = 64;
/// Emails in flight at once per worker.
const PARALLEL_SENDS: usize = 8;

#[derive(FromRow)]
struct Claimed {
    outbox_id: i64,
    message_id: String,
    recipient: String,
    subject: String,
    body_text: String,
    body_html: String,
    attempts: i64,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub sent: u32,
    pub retrying: u32,
    pub failed: u32,
}

/// Seconds to wait after the n-th failed attempt: 30 s, 1 min, 2 min … capped at an hour.
pub fn backoff(attempts: i64) -> i64 {
    let exp = (attempts - 1).clamp(0, 20) as u32;
    (30_i64.saturating_mul(1 << exp)).min(3_600)
}

/// Sends every email that is due now, in batches, until none is left.
pub async fn drain(ladder: &Ladder, transport: &Transport) -> Result<Drained> {
    let from: Mailbox = ladder
        .settings
        .mail
        .from
        .parse()
        .map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
    let mut total = Drained::default();
    loop {
        let claimed = claim(ladder).await?;
        if claimed.is_empty() {
            return Ok(total);
        }
        // Several sends at once: a slow server round trip should not hold up the queue.
        let outcomes: Vec<(Claimed, Result<(), SendError>)> = futures_util::stream::iter(claimed)
            .map(|row| async {
                let outgoing = Outgoing {
                    message_id: &row.message_id,
                    to: &row.recipient,
                    subject: &row.subject,
                    text: &row.body_text,
                    html: &row.body_html,
                };
                let outcome = transport.send(&from, &outgoing).await;
                (row, outcome)
            })
            .buffer_unordered(PARALLEL_SENDS)
            .collect()
            .await;
        let now = ladder.clock.now();
        let mut sent = Vec::new();
        let mut tx = ladder.db.begin().await?;
        for (row, outcome) in outcomes {
            match outcome {
                Ok(()) => {
                    tracing::info!(message_id = %row.message_id, to = %row.recipient, via = %transport.describe(), "email sent");
                    sent.push(row.outbox_id);
                    total.sent += 1;
                }
                Err(err) => {
                    let (permanent, message) = match err {
                        SendError::Permanent(m) => (true, m),
                        SendError::Transient(m) => (false, m),
                    };
                    let attempts = row.attempts + 1;
                    let give_up =
                        permanent || attempts >= i64::from(ladder.settings.mail.max_attempts);
                    sqlx::query(
                        "update mail_outbox set attempts = $1, last_error = $2, next_attempt_at = $3, \
                         state = $4, claimed_until = null where outbox_id = $5",
                    )
                    .bind(attempts)
                    .bind(&message)
                    .bind(now + backoff(attempts))
                    .bind(if give_up { "failed" } else { "pending" })
                    .bind(row.outbox_id)
                    .execute(&mut *tx)
                    .await?;
                    tracing::warn!(message_id = %row.message_id, attempts, error = %message, give_up, "email not sent");
                    if give_up {
                        total.failed += 1;
                    } else {
                        total.retrying += 1;
                    }
                }
            }
        }
        if !sent.is_empty() {
            // One statement for the batch: on SQLite the write lock is held
            // for one round trip, not one per email. Ids are our own integers.
            let ids = sent
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            sqlx::query(&format!(
                "update mail_outbox set state = 'sent', sent_at = $1, attempts = attempts + 1, \
                 claimed_until = null, last_error = null where outbox_id in ({ids})"
            ))
            .persistent(false)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    }
}

/// Claims a batch of due rows for this worker, atomically.
async fn claim(ladder: &Ladder) -> Result<Vec<Claimed>> {
    let now = ladder.clock.now();
    let sql = pick(
        ladder.db.backend(),
        "update mail_outbox set claimed_until = $1 where outbox_id in (\
           select outbox_id from mail_outbox where state = 'pending' and next_attempt_at <= $2 \
             and (claimed_until is null or claimed_until < $2) order by outbox_id limit $3) \
         returning outbox_id, message_id, recipient, subject, body_text, body_html, attempts",
        "update mail_outbox set claimed_until = $1 where outbox_id in (\
           select outbox_id from mail_outbox where state = 'pending' and next_attempt_at <= $2 \
             and (claimed_until is null or claimed_until < $2) order by outbox_id limit $3 \
             for update skip locked) \
         returning outbox_id, message_id, recipient, subject, body_text, body_html, attempts",
    );
    let mut tx = ladder.db.begin().await?;
    let mut rows: Vec<Claimed> = sqlx::query_as(sql)
        .bind(now + CLAIM_SECONDS)
        .bind(now)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    rows.sort_by_key(|r| r.outbox_id);
    Ok(rows)
}

/// Runs until `stop` is notified: drains the outbox whenever woken (after a
/// commit that queued mail) or every `poll_interval_ms`.
pub async fn run(
    ladder: Ladder,
    transport: Transport,
    wake: std::sync::Arc<Notify>,
    stop: std::sync::Arc<Notify>,
) {
    let every = Duration::from_millis(ladder.settings.mail.poll_interval_ms);
    tracing::info!(via = %transport.describe(), "email worker started");
    loop {
        if let Err(e) = drain(&ladder, &transport).await {
            tracing::error!(error = %e, "email worker pass failed; will retry");
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
            _ = stop.notified() => {
                tracing::info!("email worker stopped");
                return;
            }
        }
    }
}
