//! `Idempotency-Key` on POSTs that create something (today: asking for a
//! promotion): a repeat returns the first answer and does nothing; another
//! request under the same key is a 422; keys are per user and last 24
//! hours; a concurrent duplicate never runs the action twice.

use ladder::{
    db::Backend,
    jobs::{self, JobName},
    mail::transport::Transport,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    api_client::{Answer, Api, Workflow, token},
    helpers::{Fingerprint, TestLadder, assert_unchanged},
    serve::within_ten_seconds,
};

on_both_backends!(
    a_repeat_with_the_same_key_returns_the_first_answer_and_does_nothing,
    another_request_under_the_same_key_is_refused_and_keys_are_per_user,
    a_refusal_is_kept_as_the_first_answer_and_a_key_lasts_a_day,
    a_concurrent_duplicate_never_runs_the_action_twice,
);

const ASK: &str = "/api/v1/promotions";

fn ask(justification: &str) -> Value {
    json!({ "track": "senior-writer", "justification": justification })
}

async fn keyed(api: &Api, token: &str, key: &str, body: &Value) -> Answer {
    api.send(
        Method::POST,
        ASK,
        Some(token),
        Some(body),
        &[("Idempotency-Key", key)],
    )
    .await
}

fn replayed(answer: &Answer) -> bool {
    answer
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// Every row but the tokens' (their last use is recorded as it happens).
async fn rows(t: &TestLadder) -> Fingerprint {
    t.fingerprint().await.without(&["api_tokens"])
}

async fn a_repeat_with_the_same_key_returns_the_first_answer_and_does_nothing(t: TestLadder) {
    let w = Workflow::new(&t).await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    let first = keyed(&api, &alice, "7d1c-first", &ask("Ready.")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!replayed(&first));
    assert_eq!(t.count("promotion_requests").await, 1);
    let emails = t.count("mail_outbox").await;
    assert_eq!(emails, 1, "the approver is emailed once");
    let before = rows(&t).await;
    // Later, the same request: the same answer, and nothing happens.
    t.ladder.clock.advance(3_600);
    for _ in 0..2 {
        let again = keyed(&api, &alice, "7d1c-first", &ask("Ready.")).await;
        assert_eq!(again.status, 201);
        assert_eq!(again.body, first.body, "the first answer, byte for byte");
        assert!(replayed(&again));
    }
    assert_unchanged(&before, &rows(&t).await, "a repeated request");

    // Without a key the request runs (and is refused: one open request at a time).
    let unkeyed = api.post(&alice, ASK, ask("Ready.")).await;
    assert_eq!(unkeyed.status, 409);
    assert!(!replayed(&unkeyed));
    // A key on a route that creates nothing is not looked at.
    let id = first.body["id"].as_i64().unwrap();
    let path = format!("{ASK}/{id}/withdraw");
    for expected in [200, 409] {
        let answer = api
            .send(
                Method::POST,
                &path,
                Some(&alice),
                Some(&json!({})),
                &[("Idempotency-Key", "w")],
            )
            .await;
        assert_eq!(answer.status, expected, "{}", answer.body);
    }
    // The document says which operations take the key.
    let document: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let takes_key = |path: &str| {
        document["paths"][path]["post"]["parameters"]
            .as_array()
            .is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
            })
    };
    assert!(takes_key(ASK));
    assert!(!takes_key("/api/v1/promotions/{request_id}/withdraw"));
}

async fn another_request_under_the_same_key_is_refused_and_keys_are_per_user(t: TestLadder) {
    let w = Workflow::new(&t).await;
    let bob = w.writer(&t, "bob").await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let alice_again = token(&t, &w.alice, "alice-other-app", None).await;
    let bob = token(&t, &bob, "bob-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    let first = keyed(&api, &alice, "shared-key", &ask("Ready.")).await;
    assert_eq!(first.status, 201);
    let before = rows(&t).await;
    let other = keyed(&api, &alice, "shared-key", &ask("Something else.")).await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(other.error(), ("invalid", Some("Idempotency-Key")));
    // The same JSON written differently is a different request: bytes count.
    let spaced = r#"{ "track": "senior-writer", "justification": "Ready." }"#;
    let spaced = api
        .post_raw(&alice, ASK, spaced, &[("Idempotency-Key", "shared-key")])
        .await;
    assert_eq!(spaced.status, 422, "{}", spaced.body);
    assert_unchanged(&before, &rows(&t).await, "a refused key");

    // Keys are the user's, whichever token sends them; another user's are their own.
    let same_user = keyed(&api, &alice_again, "shared-key", &ask("Ready.")).await;
    assert!(replayed(&same_user));
    assert_eq!(same_user.body, first.body);
    let bobs = keyed(&api, &bob, "shared-key", &ask("Ready.")).await;
    assert_eq!(bobs.status, 201, "{}", bobs.body);
    assert!(!replayed(&bobs));
    assert_ne!(bobs.body["id"], first.body["id"]);
    assert_eq!(bobs.body["requester"], "bob");

    // A key must be 1 to 255 visible ASCII characters.
    for key in ["two words", &"k".repeat(256)] {
        let answer = keyed(&api, &alice, key, &ask("Ready.")).await;
        assert_eq!(answer.status, 422, "{key:?}");
        assert_eq!(answer.error(), ("invalid", Some("Idempotency-Key")));
    }
    assert_eq!(t.count("promotion_requests").await, 2);
}

async fn a_refusal_is_kept_as_the_first_answer_and_a_key_lasts_a_day(t: TestLadder) {
    // Time moves only when the test says: the day is counted to the second.
    t.ladder.clock.freeze();
    let w = Workflow::new(&t).await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    // Asking on a track that does not exist: the 404 is the answer kept.
    let wrong = json!({ "track": "astronaut", "justification": "Up." });
    let refused = keyed(&api, &alice, "key-404", &wrong).await;
    assert_eq!(refused.status, 404);
    let again = keyed(&api, &alice, "key-404", &wrong).await;
    assert_eq!((again.status, &again.body), (refused.status, &refused.body));
    assert!(replayed(&again));

    let asked = keyed(&api, &alice, "key-201", &ask("Ready.")).await;
    assert_eq!(asked.status, 201);
    let id = asked.body["id"].clone();
    // Withdrawn, so that asking again would succeed if it ran.
    api.post(&alice, &format!("{ASK}/{id}/withdraw"), json!({}))
        .await;
    t.ladder.clock.advance(24 * 3_600 - 1);
    let within_a_day = keyed(&api, &alice, "key-201", &ask("Ready.")).await;
    assert!(replayed(&within_a_day));
    assert_eq!(within_a_day.body["id"], id);
    assert_eq!(t.count("promotion_requests").await, 1);

    // After 24 hours the key is free: the same request runs again.
    t.ladder.clock.advance(1);
    let next_day = keyed(&api, &alice, "key-201", &ask("Ready.")).await;
    assert_eq!(next_day.status, 201, "{}", next_day.body);
    assert!(!replayed(&next_day));
    assert_ne!(next_day.body["id"], id);
    assert_eq!(t.count("promotion_requests").await, 2);

    // The sessions job deletes expired keys ("key-404"), not the fresh one.
    let transport = Transport::from_settings(&t.ladder.settings.mail).unwrap();
    let summary = jobs::run_once(&t.ladder, JobName::Sessions, &transport)
        .await
        .unwrap();
    assert!(
        summary.contains("and 1 expired idempotency key(s) deleted"),
        "{summary}"
    );
    let left: Vec<String> = sqlx::query_scalar("select idem_key from idempotency_keys")
        .fetch_all(t.ladder.db.pool())
        .await
        .unwrap();
    assert_eq!(left, ["key-201"]);
}

async fn a_concurrent_duplicate_never_runs_the_action_twice(t: TestLadder) {
    let w = Workflow::new(&t).await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let app = t.serve().await;
    let api = std::sync::Arc::new(Api::new(&app));
    // The token's first use writes its last use; let that happen first, so
    // that the only writes waiting below are the two claims.
    assert_eq!(api.get(&alice, ASK).await.status, 200);
    within_ten_seconds("the token's first use to be recorded", async || {
        let used: i64 =
            sqlx::query_scalar("select count(*) from api_tokens where last_used_at is not null")
                .fetch_one(t.ladder.db.pool())
                .await
                .unwrap();
        used == 1
    })
    .await;

    // Hold what a claim must wait for (this process's write turn on SQLite,
    // the keys table on PostgreSQL), send the same keyed request twice, and
    // let both go at once.
    let sqlite = t.ladder.db.backend() == Backend::Sqlite;
    let turn = if sqlite {
        Some(t.ladder.db.hold_write_turn().await.unwrap())
    } else {
        None
    };
    let lock = if sqlite {
        None
    } else {
        let mut lock = t.ladder.db.pool().begin().await.unwrap();
        sqlx::query("lock table idempotency_keys in exclusive mode")
            .execute(&mut *lock)
            .await
            .unwrap();
        Some(lock)
    };
    let send = || {
        let (api, alice) = (api.clone(), alice.clone());
        tokio::spawn(async move { keyed(&api, &alice, "twice", &ask("Ready.")).await })
    };
    let (one, two) = (send(), send());
    within_ten_seconds("both requests to wait at their claim", async || {
        if sqlite {
            t.ladder.db.waiting_for_write_turn() == 2
        } else {
            let waiting: i64 = sqlx::query_scalar(
                "select count(*) from pg_locks where not granted \
                 and relation = to_regclass('idempotency_keys')",
            )
            .fetch_one(t.ladder.db.pool())
            .await
            .unwrap();
            waiting == 2
        }
    })
    .await;
    if let Some(lock) = lock {
        lock.rollback().await.unwrap();
    }
    drop(turn);
    let answers = [one.await.unwrap(), two.await.unwrap()];

    // One ran. The other found its claim: still being answered (409 naming
    // the key), or, if it came late, the first answer again. Never a second run.
    let (ran, other): (Vec<&Answer>, Vec<&Answer>) = answers
        .iter()
        .partition(|a| a.status == 201 && !replayed(a));
    assert_eq!(ran.len(), 1, "exactly one ran");
    let other = other[0];
    match other.status.as_u16() {
        409 => assert!(
            other.message().contains("Idempotency-Key"),
            "{}",
            other.body
        ),
        201 => assert_eq!(other.body, ran[0].body),
        status => panic!("the duplicate got {status}: {}", other.body),
    }
    assert_eq!(t.count("promotion_requests").await, 1);
    let submits: i64 =
        sqlx::query_scalar("select count(*) from audit_events where action = 'promotion.submit'")
            .fetch_one(t.ladder.db.pool())
            .await
            .unwrap();
    assert_eq!(submits, 1);
    assert_eq!(t.count("mail_outbox").await, 1);
    // Once answered, the key replays.
    let later = keyed(&api, &alice, "twice", &ask("Ready.")).await;
    assert!(replayed(&later));
    assert_eq!(later.body, ran[0].body);
}
