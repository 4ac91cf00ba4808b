//! Signing in over a real port, on both backends: an anonymous visitor is
//! sent to sign in and back to `next`, never off site; sign-in attempts (and
//! guesses of the current password) are rate limited per address and per
//! username; an inactive user cannot sign in and is told the same as for a
//! wrong password.

use std::net::IpAddr;

use reqwest::{Response, header};

use crate::{
    helpers::{Client, Kind, TestApp, TestLadder, csrf_from, skip_or_fail},
    web_helpers::{Cast, assert_security_headers, html_unescape, location, set_active, submit},
};

on_both_backends!(
    an_anonymous_visitor_is_sent_to_sign_in_and_back,
    sign_in_never_sends_anyone_off_site,
    an_inactive_user_cannot_sign_in_and_is_told_the_same_as_for_a_wrong_password,
);

on_both_backends_with_settings!(
    guessing_the_current_password_is_rate_limited,
    the_fourth_sign_in_attempt_in_a_minute_is_refused_with_when_to_try_again,
    sign_in_attempts_are_limited_per_address_and_per_username,
);

// ---------------------------------------------------------------------------
// Sign-in and `next`
// ---------------------------------------------------------------------------

async fn an_anonymous_visitor_is_sent_to_sign_in_and_back(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let visitor = app.client();

    let response = visitor.get("/posts/new?title=x").await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "/login?next=%2Fposts%2Fnew%3Ftitle%3Dx"
    );

    let form = visitor.get(location(&response)).await;
    assert_eq!(form.status(), 200);
    // Nothing is stored for an anonymous visitor: the form's CSRF token is
    // tied to a cookie of its own, not to a session row.
    assert_eq!(session_cookie(&form), None);
    assert_eq!(t.count("sessions").await, 0);
    let html = form.text().await.unwrap();
    assert_eq!(
        field_value(&html, "next").as_deref(),
        Some("/posts/new?title=x")
    );

    let token = csrf_from(&html).unwrap();
    let response = visitor
        .post_form(
            "/login",
            &token,
            &[
                ("username", "writer"),
                ("password", "writer-password"),
                ("next", "/posts/new?title=x"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/posts/new?title=x");
    // Signing in starts the session.
    assert!(session_cookie(&response).is_some());
    assert_eq!(t.count("sessions").await, 1);
    assert_eq!(visitor.get("/posts/new?title=x").await.status(), 200);
}

async fn sign_in_never_sends_anyone_off_site(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    for evil in ["//evil.example", "https://evil.example", "/\\evil.example"] {
        let visitor = app.client();
        let query = serde_urlencoded::to_string([("next", evil)]).unwrap();
        // The form does not carry it on...
        let html = visitor
            .get(&format!("/login?{query}"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(field_value(&html, "next").as_deref(), Some("/"), "{evil}");
        // ...and a hand-made form with it lands on the home page.
        let token = csrf_from(&html).unwrap();
        let response = visitor
            .post_form(
                "/login",
                &token,
                &[
                    ("username", "writer"),
                    ("password", "writer-password"),
                    ("next", evil),
                ],
            )
            .await;
        assert_eq!(response.status(), 303, "{evil}");
        assert_eq!(location(&response), "/", "{evil}");
        // Signed in, the sign-in page sends them on: home, not off site.
        let response = visitor.get(&format!("/login?{query}")).await;
        assert_eq!(response.status(), 303, "{evil}");
        assert_eq!(location(&response), "/", "{evil}");
    }
    // A local `next` is honoured.
    let visitor = app.client();
    let token = visitor.csrf("/login").await;
    let response = visitor
        .post_form(
            "/login",
            &token,
            &[
                ("username", "writer"),
                ("password", "writer-password"),
                ("next", "/posts/mine?x=1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/posts/mine?x=1");
}

// ---------------------------------------------------------------------------
// Rate limiting and inactive users at sign-in
// ---------------------------------------------------------------------------

async fn the_fourth_sign_in_attempt_in_a_minute_is_refused_with_when_to_try_again(kind: Kind) {
    let Some(t) = TestLadder::start_with(kind, |s| s.server.login_attempts_per_minute = 3).await
    else {
        return;
    };
    t.user("alice").await;
    let app = t.serve().await;
    let visitor = app.client();
    for _ in 0..3 {
        assert_eq!(visitor.login("alice", "wrong-password").await.status(), 422);
    }
    // The right password does not help once the limit is reached.
    let response = visitor.login("alice", "alice-password").await;
    assert_eq!(response.status(), 429);
    assert_security_headers("429", response.headers());
    let wait: u64 = response
        .headers()
        .get(header::RETRY_AFTER)
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let body = response.text().await.unwrap();
    assert!(body.contains("Too many attempts"));
    assert!(
        body.contains(&format!("try again in {wait} seconds")),
        "{body}"
    );
    assert_eq!(visitor.get("/posts/mine").await.status(), 302);

    // A minute later the window has moved on.
    t.ladder.clock.advance(61);
    assert_eq!(visitor.login("alice", "alice-password").await.status(), 303);
}

async fn sign_in_attempts_are_limited_per_address_and_per_username(kind: Kind) {
    let Some(t) = TestLadder::start_with(kind, |s| s.server.login_attempts_per_minute = 3).await
    else {
        return;
    };
    t.user("alice").await;
    t.user("bob").await;
    let app = t.serve().await;
    let here = app.client();
    for _ in 0..3 {
        assert_eq!(here.login("alice", "wrong-password").await.status(), 422);
    }
    // This address and alice together are over the limit: even the right
    // password is not checked from here.
    assert_eq!(here.login("alice", "alice-password").await.status(), 429);
    // Failing for alice does not lock this address out of other accounts.
    assert_eq!(here.login("bob", "bob-password").await.status(), 303);

    // From another address: alice's name is over its limit, so a wrong
    // password is told to wait, but the right one still gets in: nobody can
    // lock alice out by failing on purpose.
    let Some(elsewhere) = second_address_client(&app, "127.0.0.2") else {
        return;
    };
    assert_eq!(
        elsewhere.login("alice", "wrong-password").await.status(),
        429
    );
    assert_eq!(
        elsewhere.login("alice", "alice-password").await.status(),
        303
    );

    // One address spraying many usernames meets the per-address limit (ten
    // times the per-pair limit).
    let Some(sprayer) = second_address_client(&app, "127.0.0.3") else {
        return;
    };
    for n in 0..30 {
        let status = sprayer
            .login(&format!("nobody{n}"), "wrong-password")
            .await
            .status();
        assert_eq!(status, 422, "attempt {n}");
    }
    assert_eq!(sprayer.login("bob", "bob-password").await.status(), 429);
}

/// A client whose requests come from `address` (another loopback address).
/// Where it cannot be bound the rest of the test is skipped, and under CI
/// fails instead (`helpers::skip_or_fail`), naming the address.
fn second_address_client(app: &TestApp, address: &str) -> Option<Client> {
    static NOTICE: std::sync::Once = std::sync::Once::new();
    let other: IpAddr = address.parse().unwrap();
    if let Err(e) = std::net::TcpListener::bind((other, 0)) {
        skip_or_fail(
            &format!(
                "the loopback address {address} cannot be bound ({e}), so requests cannot come from a second address"
            ),
            &NOTICE,
        );
        return None;
    }
    Some(client_from(app, other))
}

async fn an_inactive_user_cannot_sign_in_and_is_told_the_same_as_for_a_wrong_password(
    t: TestLadder,
) {
    t.user("bob").await;
    let carol = t.user("carol").await;
    set_active(&t, &carol, false).await;
    let app = t.serve().await;
    let visitor = app.client();
    let message = "That username and password do not match an active account.";

    let wrong_password = visitor.login("bob", "wrong-password").await;
    assert_eq!(wrong_password.status(), 422);
    assert!(wrong_password.text().await.unwrap().contains(message));

    let inactive = visitor.login("carol", "carol-password").await;
    assert_eq!(inactive.status(), 422);
    let inactive = inactive.text().await.unwrap();
    assert!(inactive.contains(message));
    // Nothing on the page tells that carol's password was right.
    let inactive_wrong = visitor.login("carol", "wrong-password").await;
    assert_eq!(inactive_wrong.status(), 422);
    assert_eq!(inactive_wrong.text().await.unwrap(), inactive);
    assert_eq!(visitor.get("/posts/mine").await.status(), 302);
}

async fn guessing_the_current_password_is_rate_limited(kind: Kind) {
    let Some(t) = TestLadder::start_with(kind, |s| s.server.login_attempts_per_minute = 3).await
    else {
        return;
    };
    Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let attempt = |current: &'static str| {
        let writer = &writer;
        async move {
            submit(
                writer,
                "/account/password",
                &[
                    ("current", current),
                    ("new", "a-brand-new-passphrase"),
                    ("confirm", "a-brand-new-passphrase"),
                ],
            )
            .await
            .status()
        }
    };
    // The same limit as sign-in's, here three a minute.
    for _ in 0..3 {
        assert_eq!(attempt("a-wrong-guess").await, 422);
    }
    // The fourth waits, even with the right password, and changes nothing.
    assert_eq!(attempt("writer-password").await, 429);
    assert_eq!(
        app.client()
            .login("writer", "writer-password")
            .await
            .status(),
        303
    );
}

/// The session id a response sets, if it sets one.
fn session_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("ladder_session="))
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
}

/// The value of a form's `name=` input, unescaped.
fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html_unescape(&html[start..end]))
}

/// A browser-like client whose requests come from `ip` (another loopback address).
fn client_from(app: &TestApp, ip: IpAddr) -> Client {
    Client {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip)
            .build()
            .unwrap(),
        base: app.base.clone(),
    }
}
