//! Who needs CSRF proof on the API: an anonymous request (no token, no
//! session) meets its route's rule, a 401, whatever its body; a signed-in
//! session still needs the CSRF token or a JSON body, as documented.

use reqwest::header;
use serde_json::json;

use crate::{
    api_caller::{Answer, answer, events},
    api_users::Callers,
    helpers::TestLadder,
    web_helpers::session_token,
};

on_both_backends!(an_anonymous_api_request_meets_its_rule_and_a_session_still_needs_csrf);

async fn an_anonymous_api_request_meets_its_rule_and_a_session_still_needs_csrf(t: TestLadder) {
    let app = t.serve().await;
    let _callers = Callers::new(&t, &app).await;
    t.user("bob").await;
    let group = t.group("Readers", &[]).await;
    let member = format!("/api/v1/users/bob/groups/{}", group.group_id);
    let url = |path: &str| format!("{}{path}", app.base);
    let session = app.signed_in("delegate").await;
    let before = t.fingerprint().await;

    // Neither a token nor a session: the rule's 401, whatever the body.
    let anonymous = reqwest::Client::new();
    let tries = [
        anonymous
            .post(url("/api/v1/users"))
            .form(&[("username", "x")]),
        anonymous.delete(url(&format!("/api/v1/groups/{}", group.group_id))),
        anonymous.put(url(&member)),
        anonymous
            .put(url("/api/v1/users/bob/password"))
            .header(header::CONTENT_TYPE, "text/plain")
            .body("password=a-long-passphrase"),
    ];
    for request in tries {
        answer(request.send().await.unwrap()).await.error(401, None);
    }
    // The same without CSRF proof from a signed-in session: refused as CSRF.
    let form = session
        .http
        .post(session.url("/api/v1/users"))
        .form(&[("username", "x")]);
    let bodiless = session
        .http
        .put(session.url(&member))
        .header(header::CONTENT_LENGTH, "0");
    for request in [form, bodiless] {
        assert!(
            answer(request.send().await.unwrap())
                .await
                .error(403, None)
                .contains("CSRF")
        );
    }
    crate::helpers::assert_unchanged(&before, &t.fingerprint().await, "refused");
    // With the session's token, or as JSON, it is done, audited as the API without a token.
    let token = session_token(&session).await;
    let done = session
        .http
        .put(session.url(&member))
        .header(header::CONTENT_LENGTH, "0")
        .header("x-csrf-token", token)
        .send()
        .await
        .unwrap();
    let done: Answer = answer(done).await;
    assert_eq!(done.ok(200)["member"], true);
    let event = events(&t, "group.add_user").await.pop().unwrap();
    assert_eq!((event.source.as_str(), event.token_name), ("api", None));
    let created = session
        .http
        .post(session.url("/api/v1/users"))
        .json(&json!({"username": "by-session", "email": "s@example.com"}))
        .send()
        .await
        .unwrap();
    answer(created).await.ok(201);
}
