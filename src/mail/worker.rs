//! The outbox worker: claims due emails, sends them, records the outcome.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use futures_util::StreamExt;
use lettre::message::Mailbox;
use sqlx::FromRow;
use tokio::sync::Notify;

use super::transport::{Outgoing, SendError, Transport};
use crate::{
    Ladder, Result, binds,
    db::{Finish, Sql, Transaction, pick},
};

/// How long a claim lasts: past this another worker may take the row (the
/// first one crashed). Longer than any send.
const CLAIM_SECONDS: i64 = 120;
const BATCH: i64 = 64;
/// Emails in flight at once per pass.
const PARALLEL_SENDS: usize = 8;
/// Passes at once per worker.
const DRAINERS: usize = 3;

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
    let from: &Mailbox = &ladder.settings.mail.from;
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
                let outcome = transport.send(from, &outgoing).await;
                (row, outcome)
            })
            .buffer_unordered(PARALLEL_SENDS)
            .collect()
            .await;
        let now = ladder.clock.now();
        let max_attempts = i64::from(ladder.settings.mail.max_attempts);
        let mut sent = Vec::new();
        let mut retries = Vec::new();
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
                    let give_up = permanent || attempts >= max_attempts;
                    tracing::warn!(message_id = %row.message_id, attempts, error = %message, give_up, "email not sent");
                    if give_up {
                        total.failed += 1;
                    } else {
                        total.retrying += 1;
                    }
                    retries.push(binds![
                        attempts,
                        message,
                        now + backoff(attempts),
                        if give_up { "failed" } else { "pending" },
                        row.outbox_id,
                    ]);
                }
            }
        }
        ladder.db.run(RecordOutcomes { sent, retries, now }).await?;
    }
}

/// What a pass learnt: the sent rows, and the failed ones with their next attempt.
struct RecordOutcomes {
    sent: Vec<i64>,
    /// Binds for one update each: attempts, error, next attempt, state, id.
    retries: Vec<Vec<crate::db::Bind>>,
    now: i64,
}

impl Transaction for RecordOutcomes {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        for binds in self.retries {
            sql.execute(
                "update mail_outbox set attempts = $1, last_error = $2, next_attempt_at = $3, \
                 state = $4, claimed_until = null where outbox_id = $5",
                binds,
            )
            .await?;
        }
        if !self.sent.is_empty() {
            // One statement for the batch. Ids are our own integers.
            sql.execute(
                &format!(
                    "update mail_outbox set state = 'sent', sent_at = $1, attempts = attempts + 1, \
                     claimed_until = null, last_error = null where outbox_id in ({})",
                    id_list(&self.sent)
                ),
                binds![self.now],
            )
            .await?;
        }
        Ok(Finish::Commit(()))
    }
}

/// Claims a batch of due rows until `until`; answers their ids.
struct Claim {
    sql: &'static str,
    now: i64,
}

impl Transaction for Claim {
    type Output = Vec<i64>;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Vec<i64>>> {
        let binds = binds![self.now + CLAIM_SECONDS, self.now, BATCH];
        Ok(Finish::Commit(sql.fetch_i64s(self.sql, binds).await?))
    }
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Claims a batch of due rows for this worker, atomically, and loads them.
async fn claim(ladder: &Ladder) -> Result<Vec<Claimed>> {
    let now = ladder.clock.now();
    let sql = pick(
        ladder.db.backend(),
        "update mail_outbox set claimed_until = $1 where outbox_id in (\
           select outbox_id from mail_outbox where state = 'pending' and next_attempt_at <= $2 \
             and (claimed_until is null or claimed_until < $2) order by outbox_id limit $3) \
         returning outbox_id",
        "update mail_outbox set claimed_until = $1 where outbox_id in (\
           select outbox_id from mail_outbox where state = 'pending' and next_attempt_at <= $2 \
             and (claimed_until is null or claimed_until < $2) order by outbox_id limit $3 \
             for update skip locked) \
         returning outbox_id",
    );
    let ids = ladder.db.run(Claim { sql, now }).await?;
    if ids.is_empty() {
        return Ok(vec![]);
    }
    // Ours until the claim runs out: nobody else changes these rows meanwhile.
    let mut conn = ladder.db.acquire().await?;
    Ok(sqlx::query_as(&format!(
        "select outbox_id, message_id, recipient, subject, body_text, body_html, attempts \
           from mail_outbox where outbox_id in ({}) order by outbox_id",
        id_list(&ids)
    ))
    .persistent(false)
    .fetch_all(&mut *conn)
    .await?)
}

/// Runs until `stop` is notified: drains the outbox whenever woken (after a
/// commit that queued mail) or every `poll_interval_ms`, in `DRAINERS`
/// passes at once, so one pass's claim and bookkeeping overlap another's
/// sending. Claims keep them off each other's rows. On stop each finishes
/// the pass it is in, so nothing sent goes unrecorded.
pub async fn run(
    ladder: Ladder,
    transport: Transport,
    wake: std::sync::Arc<Notify>,
    stop: std::sync::Arc<Notify>,
) {
    tracing::info!(via = %transport.describe(), "email worker started");
    let stopping = AtomicBool::new(false);
    let stopped = Notify::new();
    let drainers = futures_util::future::join_all(
        (0..DRAINERS).map(|_| drain_until_stopped(&ladder, &transport, &wake, &stopping, &stopped)),
    );
    tokio::pin!(drainers);
    tokio::select! {
        _ = &mut drainers => {}
        _ = stop.notified() => {
            stopping.store(true, Ordering::SeqCst);
            stopped.notify_waiters();
            drainers.await;
        }
    }
    tracing::info!("email worker stopped");
}

async fn drain_until_stopped(
    ladder: &Ladder,
    transport: &Transport,
    wake: &Notify,
    stopping: &AtomicBool,
    stopped: &Notify,
) {
    let every = Duration::from_millis(ladder.settings.mail.poll_interval_ms);
    while !stopping.load(Ordering::SeqCst) {
        if let Err(e) = drain(ladder, transport).await {
            tracing::error!(error = %e, "email worker pass failed; will retry");
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
            _ = stopped.notified() => {}
        }
    }
}
