//! Two Ladder instances on one database, as two processes would be: each
//! scheduled run of a job is done by exactly one of them.

use ladder::{
    Ladder,
    actor::{Actor, Source},
    jobs::{self, JobName},
};

use crate::helpers::{TestLadder, workflow};

on_both_backends!(each_scheduled_run_is_done_by_exactly_one_of_two_instances);

const DAY: i64 = 24 * 60 * 60;

async fn count_where(t: &TestLadder, sql: &str, value: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(value.to_string())
        .fetch_one(t.ladder.db.pool())
        .await
        .unwrap()
}

/// Runs the same schedule tick of `job` on both instances at once; returns
/// what each said (None: "another instance took this run").
async fn tick_on_both(
    one: &Ladder,
    other: &Ladder,
    job: JobName,
) -> (Option<String>, Option<String>) {
    let (a, b) = tokio::join!(
        jobs::scheduled_run(one, job),
        jobs::scheduled_run(other, job)
    );
    (a.unwrap(), b.unwrap())
}

#[track_caller]
fn exactly_one_did(job: JobName, answers: (Option<String>, Option<String>), work: &str) {
    match answers {
        (Some(done), None) | (None, Some(done)) => {
            assert_eq!(done, work, "what the instance that took {job} did")
        }
        both => panic!(
            "{job}: expected one instance to do the run and the other to find it taken, got {both:?}"
        ),
    }
}

async fn each_scheduled_run_is_done_by_exactly_one_of_two_instances(t: TestLadder) {
    // The "senior-writer" track: a Writer asks, an Editor is reminded after
    // two days, the request expires after fourteen.
    let writer = t.user("writer").await;
    let editor = t.user("editor").await;
    t.join(&writer, &t.group("Writers", &[]).await).await;
    t.join(&editor, &t.group("Editors", &[]).await).await;
    // One clock for both instances, stopped, so that both ticks fall in the
    // same slot however long the runs take.
    t.ladder.clock.freeze();
    let mut other = t.reopen(|_| {}).await;
    other.clock = t.ladder.clock.clone();
    let actor = Actor::user(writer.clone(), Source::Web);
    workflow::submit(&t.ladder, &actor, &writer, "senior-writer", "Ready.")
        .await
        .unwrap();

    t.ladder.clock.advance(2 * DAY + 1);
    exactly_one_did(
        JobName::Remind,
        tick_on_both(&t.ladder, &other, JobName::Remind).await,
        "1 reminder(s) queued",
    );
    let reminders = "select count(*) from mail_outbox where template = $1";
    assert_eq!(count_where(&t, reminders, "reminder").await, 1);

    t.ladder.clock.advance(12 * DAY);
    exactly_one_did(
        JobName::Expire,
        tick_on_both(&t.ladder, &other, JobName::Expire).await,
        "1 request(s) expired",
    );
    let events = "select count(*) from audit_events where action = $1";
    assert_eq!(count_where(&t, events, "promotion.expire").await, 1);
    let runs = "select count(*) from job_runs where job = $1";
    assert_eq!(count_where(&t, runs, "expire").await, 1);

    // The claim is per slot, not for ever: the next tick runs again (with
    // nothing left to expire), on whichever instance comes first.
    t.ladder.clock.advance(10);
    exactly_one_did(
        JobName::Expire,
        tick_on_both(&t.ladder, &other, JobName::Expire).await,
        "0 request(s) expired",
    );
    assert_eq!(count_where(&t, runs, "expire").await, 2);
    assert_eq!(count_where(&t, events, "promotion.expire").await, 1);
}
