//! CSRF over a real port, on both backends: a form without the session's
//! token (none, a made-up one, another session's, a wrong header) is refused
//! and changes nothing; signing out needs it; the API takes JSON without one
//! but refuses what another site's form can send; signing in needs the
//! sign-in page's token, and a refusal is not even an attempt.

use ladder::accounts::groups;
use reqwest::header;

use crate::{
    helpers::TestLadder,
    web_helpers::{Cast, session_token, submit},
};

on_both_backends!(a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing);

async fn a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let group = t.group("Reviewers", &[]).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let admin = app.signed_in("admin").await;
    let others_token = session_token(&admin).await;

    // Creating a post: no token, a made-up one, another session's, a wrong header.
    let before = (t.fingerprint().await, t.count("posts").await);
    let form = [("title", "Sneaky"), ("body", "Posted from elsewhere.")];
    let attempts = [
        writer.http.post(writer.url("/posts/new")).form(&form),
        writer
            .http
            .post(writer.url("/posts/new"))
            .form(&[("csrf_token", "0".repeat(64).as_str()), ("title", "Sneaky")]),
        writer
            .http
            .post(writer.url("/posts/new"))
            .form(&[("csrf_token", others_token.as_str()), ("title", "Sneaky")]),
        writer
            .http
            .post(writer.url("/posts/new"))
            .header("x-csrf-token", others_token.as_str())
            .form(&form),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), 403);
        assert!(response.text().await.unwrap().contains("CSRF check failed"));
    }
    assert_eq!((t.fingerprint().await, t.count("posts").await), before);
    // The same form with the session's token works, so the refusals were the token's.
    assert_eq!(submit(&writer, "/posts/new", &form).await.status(), 303);
    assert_eq!(t.count("posts").await, before.1 + 1);

    // Adding a group member.
    let before = t.fingerprint().await;
    let path = format!("/admin/groups/{}/members", group.group_id);
    let add = [("username", "writer"), ("action", "add")];
    let response = admin
        .http
        .post(admin.url(&path))
        .form(&add)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = admin.post_form(&path, "not-the-token", &add).await;
    assert_eq!(response.status(), 403);
    assert_eq!(t.fingerprint().await, before);
    let mut conn = t.ladder.db.acquire().await.unwrap();
    assert!(
        !groups::is_member(&mut conn, cast.writer.user_id, group.group_id)
            .await
            .unwrap()
    );
    drop(conn);

    // Signing out: without the token the session goes on.
    let sessions = t.count("sessions").await;
    let response = writer
        .http
        .post(writer.url("/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(writer.get("/posts/mine").await.status(), 200);
    assert_eq!(t.count("sessions").await, sessions);

    // The API takes JSON without a token, as no other site can send JSON with
    // our cookie; what another site's form can send is refused.
    let requests = t.count("promotion_requests").await;
    let ask = "track=senior-writer&justification=Ready.";
    for content_type in ["application/x-www-form-urlencoded", "text/plain"] {
        let response = writer
            .http
            .post(writer.url("/api/v1/promotions"))
            .header(header::CONTENT_TYPE, content_type)
            .body(ask)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{content_type}");
    }
    assert_eq!(t.count("promotion_requests").await, requests);

    // Signing in needs the sign-in page's token too; a refusal is not even an attempt.
    let attempts = t.count("login_attempts").await;
    let stranger = app.client();
    let response = stranger
        .http
        .post(stranger.url("/login"))
        .form(&[("username", "writer"), ("password", "writer-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(stranger.get("/posts/mine").await.status(), 302);
    assert_eq!(t.count("login_attempts").await, attempts);
}
