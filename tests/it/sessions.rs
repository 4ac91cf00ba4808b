//! Sessions over a real port, on both backends: a deactivated user's
//! session, and a user's other sessions after a password change (their own or
//! one set in the admin console), stop working on their next request; reading
//! pages does not write the session, a flash does. Session renewal and expiry
//! run on Ladder's injectable clock (`Ladder::clock`), so hours and days pass
//! without waiting.

use crate::{
    helpers::TestLadder,
    web_helpers::{Cast, location, set_active, submit},
};

on_both_backends!(
    a_session_in_use_is_written_back_once_an_hour_and_not_on_every_request,
    a_session_expires_session_days_after_its_last_renewal,
    a_deactivated_users_session_stops_working_on_their_next_request,
    changing_your_password_ends_your_other_sessions_but_keeps_this_one,
    reading_pages_does_not_write_the_session_but_a_flash_does,
    a_password_set_in_the_admin_console_ends_that_users_sessions,
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

async fn a_deactivated_users_session_stops_working_on_their_next_request(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    assert_eq!(writer.get("/posts/mine").await.status(), 200);

    let admin = app.signed_in("admin").await;
    assert_eq!(admin.get("/admin/users/writer/active").await.status(), 200);
    let response = submit(&admin, "/admin/users/writer/active", &[("value", "false")]).await;
    assert_eq!(response.status(), 303);
    assert!(!t.reload(&cast.writer).await.is_active);

    let response = writer.get("/posts/mine").await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/login?next=%2Fposts%2Fmine");

    // The session was ended, not suspended: reactivating does not revive it.
    set_active(&t, &cast.writer, true).await;
    assert_eq!(writer.get("/posts/mine").await.status(), 302);
    assert_eq!(
        app.signed_in("writer")
            .await
            .get("/posts/mine")
            .await
            .status(),
        200
    );
}

async fn changing_your_password_ends_your_other_sessions_but_keeps_this_one(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let here = app.signed_in("writer").await;
    let there = app.signed_in("writer").await;

    // A wrong current password changes nothing.
    let response = submit(
        &here,
        "/account/password",
        &[
            ("current", "not-my-password"),
            ("new", "a-brand-new-passphrase"),
            ("confirm", "a-brand-new-passphrase"),
        ],
    )
    .await;
    assert_eq!(response.status(), 422);
    assert_eq!(there.get("/posts/mine").await.status(), 200);

    let response = submit(
        &here,
        "/account/password",
        &[
            ("current", "writer-password"),
            ("new", "a-brand-new-passphrase"),
            ("confirm", "a-brand-new-passphrase"),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(here.get("/posts/mine").await.status(), 200);
    let response = there.get("/posts/mine").await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/login?next=%2Fposts%2Fmine");

    assert_eq!(
        app.client()
            .login("writer", "writer-password")
            .await
            .status(),
        422
    );
    assert_eq!(
        app.client()
            .login("writer", "a-brand-new-passphrase")
            .await
            .status(),
        303
    );
}

async fn reading_pages_does_not_write_the_session_but_a_flash_does(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    // The first signed-in request renews the session (the hour of renewal).
    assert_eq!(writer.get("/posts/mine").await.status(), 200);
    let hour = || time::OffsetDateTime::now_utc().unix_timestamp() / 3_600;
    // Mark the row: any write by the session layer would set a new expiry.
    let marker = t.now() + 1_000;
    sqlx::query("update sessions set expires_at = $1")
        .bind(marker)
        .execute(t.ladder.db.pool())
        .await
        .unwrap();
    let (before, started) = (sessions(&t).await, hour());
    for path in ["/posts/mine", "/posts", "/promotions/mine", "/posts/new"] {
        assert_eq!(writer.get(path).await.status(), 200, "{path}");
    }
    // Across an hour boundary the renewal writes once, by design.
    if hour() == started {
        assert_eq!(sessions(&t).await, before, "a page view wrote the session");
    }

    // A message for the next page is a change, and is written.
    let token = writer.csrf("/posts/new").await;
    let response = writer
        .post_form(
            "/posts/new",
            &token,
            &[("title", "Hello"), ("body", "World")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let after = sessions(&t).await;
    assert_ne!(after, before);
    let page = writer.get(location(&response)).await.text().await.unwrap();
    assert!(
        page.contains("class=\"flash"),
        "the flash is shown once: {page}"
    );
}

async fn a_password_set_in_the_admin_console_ends_that_users_sessions(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let admin = app.signed_in("admin").await;
    let response = submit(
        &admin,
        "/admin/users/writer/password",
        &[("password", "set-by-the-admin")],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(writer.get("/posts/mine").await.status(), 302);
    assert_eq!(admin.get("/admin").await.status(), 200);
    assert_eq!(
        app.client()
            .login("writer", "set-by-the-admin")
            .await
            .status(),
        303
    );
}
