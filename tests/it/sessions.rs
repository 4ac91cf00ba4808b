//! Session renewal and expiry run on Ladder's injectable clock
//! (`Ladder::clock`), so hours and days pass without waiting.

use crate::helpers::TestLadder;

on_both_backends!(
    a_session_in_use_is_written_back_once_an_hour_and_not_on_every_request,
    a_session_expires_session_days_after_its_last_renewal,
);

/// Every stored session: id, data and expiry.
async fn sessions(t: &TestLadder) -> Vec<(String, String, i64)> {
    sqlx::query_as("select session_id, data, expires_at from sessions order by session_id")
        .fetch_all(t.ladder.db.pool())
        .await
        .unwrap()
}

/// Moves the clock to one second past the next full hour.
fn to_next_hour(t: &TestLadder) {
    let now = t.now();
    t.ladder.clock.advance(3_600 - now.rem_euclid(3_600) + 1);
}

async fn a_session_in_use_is_written_back_once_an_hour_and_not_on_every_request(t: TestLadder) {
    t.user("alice").await;
    to_next_hour(&t);
    let app = t.serve().await;
    let alice = app.signed_in("alice").await;
    // The first page after sign-in stores the new identity's CSRF token.
    assert_eq!(alice.get("/posts/mine").await.status(), 200);
    let signed_in = sessions(&t).await;
    assert_eq!(
        signed_in.len(),
        1,
        "one session after sign-in: {signed_in:?}"
    );

    // Within the hour, pages are read without writing the session.
    for _ in 0..3 {
        assert_eq!(alice.get("/posts/mine").await.status(), 200);
        assert_eq!(
            sessions(&t).await,
            signed_in,
            "a page read wrote the session"
        );
    }
    t.ladder.clock.advance(1_800);
    assert_eq!(alice.get("/posts/mine").await.status(), 200);
    assert_eq!(sessions(&t).await, signed_in, "renewed within the hour");

    // In the next hour, the first request renews it once: same id, expiry an hour later.
    t.ladder.clock.advance(1_800);
    assert_eq!(alice.get("/posts/mine").await.status(), 200);
    let renewed = sessions(&t).await;
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].0, signed_in[0].0, "renewal keeps the session id");
    let moved = renewed[0].2 - signed_in[0].2;
    assert!(
        (3_600..=3_602).contains(&moved),
        "the expiry moved by {moved} s, not an hour"
    );
    assert_eq!(alice.get("/posts/mine").await.status(), 200);
    assert_eq!(sessions(&t).await, renewed, "renewed twice in one hour");
}

async fn a_session_expires_session_days_after_its_last_renewal(mut t: TestLadder) {
    t.ladder = t.reopen(|s| s.server.session_days = 1).await;
    t.user("alice").await;
    to_next_hour(&t);
    let app = t.serve().await;
    let alice = app.signed_in("alice").await;
    let day = 86_400;

    // A second short of a day after sign-in it still holds (and is renewed).
    t.ladder.clock.advance(day - 1);
    assert_eq!(alice.get("/posts/mine").await.status(), 200);

    // A day and a second after that renewal, it is gone.
    t.ladder.clock.advance(day + 1);
    let response = alice.get("/posts/mine").await;
    assert_eq!(response.status(), 302, "an expired session still signs in");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/login?next="), "{location}");
}
