//! Scheduled jobs. Each only writes decisions and outbox rows; the email
//! worker does the sending. Every job is idempotent (state changes are
//! conditional updates, reminders carry a timestamp guard, digests a dedupe
//! key), and each scheduled run is also claimed in `job_runs` with a unique
//! (job, slot) key, so with several instances one of them does the work.

use std::fmt;

use tokio_cron_scheduler::{Job, JobScheduler};

use crate::{
    Error, Ladder, Result,
    api::idempotency::PurgeExpired,
    binds,
    config::JobSettings,
    db::{Finish, Sql, Transaction},
    mail::{transport::Transport, worker},
    promotions::schedule,
    web::session_store::SweepSessions,
    webhooks::PurgeDeliveries,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JobName {
    /// Send due email, including retries.
    Outbox,
    /// Expire pending requests past their deadline.
    Expire,
    /// Remind approvers of requests that have waited.
    Remind,
    /// Warn a day before time-bound grants end, and end the ones due.
    EndGrants,
    /// One daily email per approver with anything pending.
    Digest,
    /// Delete expired sessions, sign-in attempts older than an hour and
    /// API idempotency keys older than a day.
    Sessions,
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobName::Outbox => "outbox",
            JobName::Expire => "expire",
            JobName::Remind => "remind",
            JobName::EndGrants => "end-grants",
            JobName::Digest => "digest",
            JobName::Sessions => "sessions",
        })
    }
}

const ALL: [JobName; 6] = [
    JobName::Outbox,
    JobName::Expire,
    JobName::Remind,
    JobName::EndGrants,
    JobName::Digest,
    JobName::Sessions,
];

fn schedule(settings: &JobSettings, job: JobName) -> &str {
    match job {
        JobName::Outbox => &settings.outbox,
        JobName::Expire => &settings.expire,
        JobName::Remind => &settings.remind,
        JobName::EndGrants => &settings.end_grants,
        JobName::Digest => &settings.digest,
        JobName::Sessions => &settings.sessions,
    }
}

/// Checks every non-empty schedule parses; the error names the job.
pub fn check_schedules(settings: &JobSettings) -> Result<(), String> {
    for job in ALL {
        let expr = schedule(settings, job).trim();
        if expr.is_empty() {
            continue;
        }
        if Job::new_async(expr, |_, _| Box::pin(async {})).is_err() {
            return Err(format!(
                "{}: {expr:?} is not a cron schedule with seconds (\"sec min hour day month weekday\")",
                job.to_string().replace('-', "_")
            ));
        }
    }
    Ok(())
}

/// Runs one job now and says what it did. `transport` is needed for `outbox`.
pub async fn run_once(ladder: &Ladder, job: JobName, transport: &Transport) -> Result<String> {
    let summary = match job {
        JobName::Outbox => {
            let d = worker::drain(ladder, transport).await?;
            format!(
                "{} sent, {} to retry, {} failed",
                d.sent, d.retrying, d.failed
            )
        }
        JobName::Expire => {
            let n = schedule::expire_due(ladder).await?;
            format!("{n} request(s) expired")
        }
        JobName::Remind => {
            let n = schedule::remind_due(ladder).await?;
            format!("{n} reminder(s) queued")
        }
        JobName::EndGrants => {
            let (warned, ended) = schedule::end_due_grants(ladder).await?;
            format!("{warned} warning(s) queued, {ended} grant(s) ended")
        }
        JobName::Digest => {
            let n = schedule::digest(ladder).await?;
            format!("{n} digest(s) queued")
        }
        JobName::Sessions => {
            let now = ladder.clock.now();
            let (sessions, attempts) = ladder.db.run(SweepSessions { now }).await?;
            let keys = ladder.db.run(PurgeExpired { now }).await?;
            let keep = i64::from(ladder.settings.webhooks.keep_days) * 86_400;
            let before = now - keep;
            let hooks = ladder.db.run(PurgeDeliveries { before }).await?;
            format!(
                "{sessions} expired session(s), {attempts} old sign-in attempt(s), \
                 {hooks} old webhook delivery(ies) and {keys} expired idempotency key(s) deleted"
            )
        }
    };
    ladder.mail_wake.notify_one();
    tracing::info!(job = %job, %summary, "job ran");
    Ok(summary)
}

/// Claims one run of a job: the first instance to insert its (job, slot)
/// row does the work. Answers whether this one did.
struct ClaimRun {
    job: JobName,
    now: i64,
}

impl Transaction for ClaimRun {
    type Output = bool;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<bool>> {
        let inserted = sql
            .execute(
                "insert into job_runs (job, slot, created_at) values ($1, $2, $3) \
                 on conflict do nothing",
                binds![self.job.to_string(), self.now / 10, self.now],
            )
            .await?;
        Ok(Finish::Commit(inserted == 1))
    }
}

/// Claims this run of `job` for this instance. Runs of one schedule tick land
/// in the same ten-second slot, so only the first instance gets it.
async fn claim(ladder: &Ladder, job: JobName) -> Result<bool> {
    let now = ladder.clock.now();
    ladder.db.run(ClaimRun { job, now }).await
}

/// Starts the scheduler with every job that has a schedule.
pub async fn start(ladder: Ladder) -> Result<JobScheduler> {
    let scheduler = JobScheduler::new()
        .await
        .map_err(|e| anyhow::anyhow!("scheduler: {e}"))?;
    for job in ALL {
        let expr = schedule(&ladder.settings.jobs, job).trim().to_string();
        if expr.is_empty() {
            continue;
        }
        let ladder = ladder.clone();
        let cron = Job::new_async(expr.as_str(), move |_, _| {
            let ladder = ladder.clone();
            Box::pin(async move {
                if let Err(e) = scheduled_run(&ladder, job).await {
                    tracing::error!(job = %job, error = %e, "scheduled job failed");
                }
            })
        })
        .map_err(|e| Error::invalid("jobs", format!("{job}: {e}")))?;
        scheduler
            .add(cron)
            .await
            .map_err(|e| anyhow::anyhow!("scheduler: {e}"))?;
        tracing::info!(job = %job, schedule = %expr, "job scheduled");
    }
    scheduler
        .start()
        .await
        .map_err(|e| anyhow::anyhow!("scheduler: {e}"))?;
    Ok(scheduler)
}

/// What one schedule tick does in this instance: claims the run, then does
/// the work. Some(summary) if this instance did it, None if another instance
/// had already taken this run. (The outbox sweep only wakes this process's
/// worker, which claims each email itself.)
pub async fn scheduled_run(ladder: &Ladder, job: JobName) -> Result<Option<String>> {
    if job == JobName::Outbox {
        ladder.mail_wake.notify_one();
        return Ok(Some("email worker woken".into()));
    }
    if !claim(ladder, job).await? {
        tracing::debug!(job = %job, "another instance took this run");
        return Ok(None);
    }
    let transport = Transport::from_settings(&ladder.settings.mail)?;
    run_once(ladder, job, &transport).await.map(Some)
}
