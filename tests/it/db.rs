//! `Db::run`: whole write transactions through the `Sql` trait. On
//! SQLite they run on the write thread, several to one COMMIT, each in a
//! savepoint of its own; on PostgreSQL in a pooled transaction. Either way
//! each job commits, rolls back or fails on its own.

use ladder::{
    Error, binds,
    db::{Backend, Finish},
};

use crate::helpers::{TestLadder, WriteInline};

on_both_backends!(
    each_job_in_a_group_commits_rolls_back_or_fails_on_its_own,
    placeholders_bind_by_number_in_any_order_and_a_job_sees_its_own_writes,
);

async fn probe_table(t: &TestLadder) {
    sqlx::query(
        "create table write_probe (n bigint primary key, label text not null unique, note text)",
    )
    .execute(t.ladder.db.pool())
    .await
    .unwrap();
}

async fn labels(t: &TestLadder) -> Vec<String> {
    sqlx::query_scalar("select label from write_probe order by n")
        .fetch_all(t.ladder.db.pool())
        .await
        .unwrap()
}

/// What job `n` does after its insert.
fn ending(n: i64) -> &'static str {
    ["commit", "rollback", "fail", "panic"][(n % 4) as usize]
}

async fn each_job_in_a_group_commits_rolls_back_or_fails_on_its_own(t: TestLadder) {
    probe_table(&t).await;
    sqlx::query("insert into write_probe (n, label) values (0, 'taken')")
        .execute(t.ladder.db.pool())
        .await
        .unwrap();
    // On SQLite, holding the write turn makes the jobs queue up, so the write
    // thread takes them as one group when it is given back.
    let turn = t.ladder.db.hold_write_turn().await.unwrap();
    let commits_before = t.ladder.db.group_commits();
    let mut jobs = Vec::new();
    for n in 1..=24_i64 {
        let db = t.ladder.db.clone();
        let mut job = Box::pin(async move {
            db.write(move |w| {
                Box::pin(async move {
                    w.execute(
                        "insert into write_probe (n, label) values ($1, $2)",
                        binds![n, format!("job {n}")],
                    )
                    .await?;
                    match ending(n) {
                        "commit" => Ok(Finish::Commit(n)),
                        "rollback" => Ok(Finish::Rollback(n)),
                        // A unique violation: the job's own insert must go too.
                        "fail" => w
                            .execute(
                                "insert into write_probe (n, label) values ($1, 'taken')",
                                binds![n + 1000],
                            )
                            .await
                            .map(|_| Finish::Commit(n)),
                        _ => panic!("job {n} panics on purpose"),
                    }
                })
            })
            .await
        });
        // Polled once, a job is queued for the write thread (on PostgreSQL it
        // waits for its transaction); no sleep is needed for that.
        if t.ladder.db.backend() == Backend::Sqlite {
            assert!(futures_util::poll!(&mut job).is_pending());
        }
        jobs.push(tokio::spawn(job));
    }
    drop(turn);
    for (n, job) in (1..).zip(jobs) {
        let result = job
            .await
            .expect("the caller's task survives a panicking job");
        match ending(n) {
            "commit" | "rollback" => assert_eq!(result.unwrap(), n, "job {n}"),
            _ => assert!(
                matches!(result, Err(Error::Duplicate(_) | Error::Unexpected(_))),
                "job {n}: {result:?}"
            ),
        }
    }
    // All 24 queued while the turn was held, so the thread took them as one
    // group: one COMMIT for all of them (none on PostgreSQL's path).
    let commits = t.ladder.db.group_commits() - commits_before;
    match t.ladder.db.backend() {
        Backend::Sqlite => assert_eq!(commits, 1, "24 queued jobs, one commit"),
        Backend::Postgres => assert_eq!(commits, 0),
    }
    let mut expected = vec!["taken".to_string()];
    expected.extend(
        (1..=24)
            .filter(|n| ending(*n) == "commit")
            .map(|n| format!("job {n}")),
    );
    assert_eq!(labels(&t).await, expected);
    // The write path still works after the failures.
    let n = t
        .ladder
        .db
        .write(|w| {
            Box::pin(async move {
                w.execute(
                    "insert into write_probe (n, label) values (100, 'after')",
                    vec![],
                )
                .await?;
                Ok(Finish::Commit(100_i64))
            })
        })
        .await
        .unwrap();
    assert_eq!(n, 100);
    assert_eq!(labels(&t).await.last().unwrap(), "after");
}

async fn placeholders_bind_by_number_in_any_order_and_a_job_sees_its_own_writes(t: TestLadder) {
    probe_table(&t).await;
    let (first, all, missing) = t
        .ladder
        .db
        .write(|w| {
            Box::pin(async move {
                // $2 before $1, and $1 twice; a typed NULL.
                w.execute(
                    "insert into write_probe (n, label, note) values ($2, $1 || '-' || $1, $3)",
                    binds!["x", 7_i64, None::<String>],
                )
                .await?;
                w.execute(
                    "insert into write_probe (n, label, note) values ($1, $2, $3)",
                    binds![8_i64, "y", "noted"],
                )
                .await?;
                let first = w
                    .fetch_i64(
                        "select n from write_probe where label = $1 and note is null",
                        binds!["x-x"],
                    )
                    .await?;
                let all = w
                    .fetch_i64s("select n from write_probe order by n", vec![])
                    .await?;
                let missing = w
                    .fetch_i64("select n from write_probe where n = $1", binds![9_i64])
                    .await?;
                Ok(Finish::Commit((first, all, missing)))
            })
        })
        .await
        .unwrap();
    assert_eq!(first, Some(7));
    assert_eq!(all, vec![7, 8]);
    assert_eq!(missing, None);
    let changed = t
        .ladder
        .db
        .write(|w| {
            Box::pin(async move {
                let n = w
                    .execute("update write_probe set note = $1", binds!["all"])
                    .await?;
                Ok(Finish::Commit(n))
            })
        })
        .await
        .unwrap();
    assert_eq!(changed, 2, "rows changed");
}
