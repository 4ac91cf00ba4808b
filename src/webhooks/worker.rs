//! The delivery worker: claims due deliveries, sends them signed, records
//! the outcome.
//!
//! Order: a delivery is claimed only when no earlier delivery to the same
//! endpoint about the same subject is still pending, so one endpoint hears
//! about one user in the order of the changes, even across retries and
//! instances. Different subjects and endpoints go out side by side; a
//! batch is recorded (with the next one claimed, in one transaction) when
//! its last attempt ends, so a slow receiver can hold up the others in its
//! batch by up to the timeout, and never the change that caused an event.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use tokio::sync::Notify;

use super::{signature, target};
use crate::{
    Ladder, Result, binds,
    db::{Bind, Finish, Sql, Transaction, pick},
};

/// How long a claim lasts past the attempt's timeout: after that another
/// worker may take the row (the first one crashed).
const CLAIM_MARGIN_SECONDS: i64 = 60;
const BATCH: i64 = 64;
/// Deliveries in flight at once per pass.
const PARALLEL_SENDS: usize = 16;
/// The longest wait between two attempts.
const MAX_BACKOFF_SECONDS: i64 = 3_600;
/// The most of a failing answer's status line kept as the error.
const ERROR_LEN: usize = 300;

/// A claimed delivery with what sending it needs.
#[derive(Debug)]
struct Claimed {
    delivery_id: i64,
    message_id: String,
    payload: String,
    attempts: i64,
    url: String,
    secret: String,
}

crate::from_row!(Claimed {
    delivery_id,
    message_id,
    payload,
    attempts,
    url,
    secret,
});

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub delivered: u32,
    pub retrying: u32,
    pub failed: u32,
    /// The pass's own commits (claims and outcomes), which the worker must
    /// not take for news.
    commits: u64,
}

/// How one attempt went.
struct Attempt {
    status: Option<u16>,
    error: Option<String>,
}

impl Attempt {
    fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// Seconds to wait after the n-th failed attempt: base, 2 × base, 4 × base …
/// capped at an hour.
pub fn backoff(base_seconds: u32, attempts: i64) -> i64 {
    let exp = (attempts - 1).clamp(0, 20) as u32;
    (i64::from(base_seconds).saturating_mul(1 << exp)).min(MAX_BACKOFF_SECONDS)
}

/// The delivery worker's HTTP client, built from the settings.
pub fn client(ladder: &Ladder) -> Result<reqwest::Client> {
    let settings = &ladder.settings.webhooks;
    target::client(
        settings.allow_private_targets,
        Duration::from_millis(settings.timeout_ms),
    )
}

/// Sends every delivery that is due now, in batches, until none is left.
pub async fn drain(ladder: &Ladder, client: &reqwest::Client) -> Result<Drained> {
    let mut total = Drained::default();
    // What the last batch's attempts came to, written in the transaction
    // that claims the next batch: one write per batch.
    let mut updates = Vec::new();
    loop {
        let claimed = record_and_claim(ladder, std::mem::take(&mut updates)).await?;
        total.commits += 1;
        if claimed.is_empty() {
            return Ok(total);
        }
        let outcomes: Vec<(Claimed, Attempt)> = futures_util::stream::iter(claimed)
            .map(|row| async {
                let attempt = send(ladder, client, &row).await;
                (row, attempt)
            })
            .buffer_unordered(PARALLEL_SENDS)
            .collect()
            .await;
        let now = ladder.clock.now();
        let settings = &ladder.settings.webhooks;
        for (row, attempt) in outcomes {
            let attempts = row.attempts + 1;
            let status = attempt.status.map(i64::from);
            if attempt.delivered() {
                total.delivered += 1;
                tracing::debug!(message_id = %row.message_id, url = %row.url, "webhook delivered");
                updates.push(binds![
                    "delivered",
                    attempts,
                    status,
                    None::<String>,
                    now,
                    Some(now),
                    now,
                    row.delivery_id
                ]);
                continue;
            }
            let give_up = attempts >= i64::from(settings.max_attempts);
            let error = attempt.error.unwrap_or_default();
            tracing::warn!(message_id = %row.message_id, url = %row.url, attempts, %error, give_up, "webhook not delivered");
            if give_up {
                total.failed += 1;
            } else {
                total.retrying += 1;
            }
            updates.push(binds![
                if give_up { "failed" } else { "pending" },
                attempts,
                status,
                Some(error),
                now + backoff(settings.retry_base_seconds, attempts),
                None::<i64>,
                now,
                row.delivery_id
            ]);
        }
    }
}

/// One attempt: signs now, posts, and reads only the status.
async fn send(ladder: &Ladder, client: &reqwest::Client, row: &Claimed) -> Attempt {
    let failed = |error: String| Attempt {
        status: None,
        error: Some(error),
    };
    let allow_private = ladder.settings.webhooks.allow_private_targets;
    let url = match reqwest::Url::parse(&row.url) {
        Ok(url) if target::literal_allowed(&url, allow_private) => url,
        Ok(_) => return failed("the target is a private or loopback address".into()),
        Err(e) => return failed(format!("bad URL: {e}")),
    };
    let timestamp = ladder.clock.now();
    let signature = signature::sign(&row.secret, &row.message_id, timestamp, &row.payload);
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &row.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(row.payload.clone())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Attempt {
            status: Some(response.status().as_u16()),
            error: None,
        },
        Ok(response) => {
            let status = response.status();
            let mut error = format!("answered {status}");
            if status.is_redirection() {
                error.push_str(" (redirects are not followed)");
            }
            error.truncate(ERROR_LEN);
            Attempt {
                status: Some(status.as_u16()),
                error: Some(error),
            }
        }
        Err(e) => {
            let mut error = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                format!("could not connect: {}", root_cause(&e))
            } else {
                root_cause(&e)
            };
            error.truncate(ERROR_LEN);
            failed(error)
        }
    }
}

/// The innermost error's text: reqwest's own is "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Records the last batch's attempts, then claims a batch of due
/// deliveries, each the first pending one of its endpoint and subject, at
/// an active endpoint, and loads them: one transaction.
struct RecordAndClaim {
    /// Binds for one update each: state, attempts, last status, last error,
    /// next attempt, delivered at, attempted at, id.
    updates: Vec<Vec<Bind>>,
    claim: &'static str,
    until: i64,
    now: i64,
}

impl Transaction for RecordAndClaim {
    type Output = Vec<Claimed>;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Vec<Claimed>>> {
        for binds in self.updates {
            sql.execute(
                "update webhook_deliveries set state = $1, attempts = $2, last_status = $3, \
                 last_error = $4, next_attempt_at = $5, delivered_at = $6, last_attempt_at = $7, \
                 claimed_until = null where delivery_id = $8",
                binds,
            )
            .await?;
        }
        let binds = binds![self.until, self.now, BATCH, true];
        let ids = sql.fetch_i64s(self.claim, binds).await?;
        if ids.is_empty() {
            return Ok(Finish::Commit(vec![]));
        }
        // Ids are our own integers.
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let claimed = sql
            .fetch_all(
                &format!(
                    "select d.delivery_id, d.message_id, d.payload, d.attempts, e.url, e.secret \
                     from webhook_deliveries d join webhook_endpoints e on e.endpoint_id = d.endpoint_id \
                     where d.delivery_id in ({list}) order by d.delivery_id"
                ),
                binds![],
            )
            .await?;
        Ok(Finish::Commit(claimed))
    }
}

async fn record_and_claim(ladder: &Ladder, updates: Vec<Vec<Bind>>) -> Result<Vec<Claimed>> {
    let now = ladder.clock.now();
    let timeout = (ladder.settings.webhooks.timeout_ms / 1000) as i64;
    ladder
        .db
        .run(RecordAndClaim {
            updates,
            claim: pick(ladder.db.backend(), CLAIM_SQLITE, CLAIM_POSTGRES),
            until: now + timeout + CLAIM_MARGIN_SECONDS,
            now,
        })
        .await
}

/// The claim statement, with PostgreSQL's row locking where it goes, so two
/// instances never take the same delivery.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "update webhook_deliveries set claimed_until = $1 where delivery_id in (",
            "select d.delivery_id from webhook_deliveries d ",
            "join webhook_endpoints e on e.endpoint_id = d.endpoint_id ",
            "where d.state = 'pending' and d.next_attempt_at <= $2 ",
            "and (d.claimed_until is null or d.claimed_until < $2) and e.is_active = $4 ",
            "and not exists (select 1 from webhook_deliveries p where p.endpoint_id = d.endpoint_id ",
            "and p.subject = d.subject and p.state = 'pending' and p.delivery_id < d.delivery_id) ",
            "order by d.delivery_id limit $3",
            $lock,
            ") returning delivery_id"
        )
    };
}

const CLAIM_SQLITE: &str = claim_sql!("");
const CLAIM_POSTGRES: &str = claim_sql!(" for update of d skip locked");

/// Whether any endpoint is active, so a commit with nothing to send costs
/// the worker no query. Re-read on every poll.
struct Listening(AtomicBool);

impl Listening {
    async fn refresh(&self, ladder: &Ladder) -> Result<bool> {
        let mut conn = ladder.db.acquire().await?;
        let sql: &mut dyn Sql = &mut conn;
        let any = sql
            .fetch_i64(
                "select count(*) from webhook_endpoints where is_active = $1",
                binds![true],
            )
            .await?
            .unwrap_or(0)
            > 0;
        self.0.store(any, Ordering::Relaxed);
        Ok(any)
    }
}

/// Runs until `stop` is notified: drains when this process commits a
/// change (if any endpoint listens), when `wake` is notified (a retry from
/// the console) and every `webhooks.poll_interval_ms` (for what other
/// instances and the CLI queue, and retries that came due). On stop it
/// finishes the pass it is in, so nothing sent goes unrecorded.
pub async fn run(ladder: Ladder, wake: Arc<Notify>, stop: Arc<Notify>) {
    let client = match client(&ladder) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook worker cannot start");
            return;
        }
    };
    tracing::info!("webhook worker started");
    let poll = Duration::from_millis(ladder.settings.webhooks.poll_interval_ms);
    let listening = Listening(AtomicBool::new(true));
    let mut commits = ladder.db.commits();
    let mut polled = true;
    // A deadline, not a fresh sleep each turn: other commits (the email
    // worker's claims, every request's writes) must not put the poll off.
    let mut next_poll = tokio::time::Instant::now() + poll;
    loop {
        if polled && let Err(e) = listening.refresh(&ladder).await {
            tracing::warn!(error = %e, "webhook worker: cannot read endpoints");
        }
        let seen = *commits.borrow_and_update();
        let mut own = 0;
        if listening.0.load(Ordering::Relaxed) {
            match drain(&ladder, &client).await {
                Ok(drained) => own = drained.commits,
                Err(e) => tracing::error!(error = %e, "webhook delivery pass failed"),
            }
        }
        // Only the pass's own commits since it began: nothing new to send.
        if commits.borrow().wrapping_sub(seen) <= own {
            commits.borrow_and_update();
        }
        polled = false;
        // A stop that came during the pass is kept by the Notify until here.
        tokio::select! {
            _ = stop.notified() => break,
            _ = commits.changed() => {}
            _ = wake.notified() => polled = true,
            _ = tokio::time::sleep_until(next_poll) => {
                polled = true;
                next_poll = tokio::time::Instant::now() + poll;
            }
        }
    }
    tracing::info!("webhook worker stopped");
}
