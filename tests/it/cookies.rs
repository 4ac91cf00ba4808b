//! The cookies' flags: HttpOnly, SameSite=Lax, Path=/, and Secure exactly
//! when `server.secure_cookies` is on. The sign-in form sets the anonymous
//! CSRF cookie (no session is stored for a visitor); signing in, the session.

use reqwest::header::SET_COOKIE;

use crate::helpers::TestLadder;

on_both_backends!(
    the_session_cookie_is_httponly_lax_site_wide_and_not_secure_by_default,
    the_session_cookie_is_secure_when_secure_cookies_is_on,
);

/// The attributes of the CSRF cookie set by the sign-in form and of the
/// session cookie set by signing in, lower-cased, without the value.
async fn session_cookie_attributes(t: &TestLadder) -> Vec<Vec<String>> {
    t.user("alice").await;
    let app = t.serve().await;
    let client = app.client();
    let form = client.get("/login").await;
    assert!(
        form.headers()
            .get_all(SET_COOKIE)
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("ladder_session=")),
        "a visitor gets no session"
    );
    let mut seen = vec![attributes(&form, "ladder_csrf")];
    let token = crate::helpers::csrf_from(&form.text().await.unwrap()).unwrap();
    let signed_in = client
        .post_form(
            "/login",
            &token,
            &[("username", "alice"), ("password", "alice-password")],
        )
        .await;
    assert_eq!(signed_in.status(), 303, "sign-in as alice");
    seen.push(attributes(&signed_in, "ladder_session"));
    seen
}

fn attributes(response: &reqwest::Response, name: &str) -> Vec<String> {
    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{} sets no {name} cookie", response.url()));
    let mut attrs: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.starts_with("max-age=") && !a.starts_with("expires="))
        .collect();
    attrs.sort();
    attrs
}

async fn the_session_cookie_is_httponly_lax_site_wide_and_not_secure_by_default(t: TestLadder) {
    assert!(!t.ladder.settings.server.secure_cookies);
    for attrs in session_cookie_attributes(&t).await {
        assert_eq!(attrs, ["httponly", "path=/", "samesite=lax"]);
    }
}

async fn the_session_cookie_is_secure_when_secure_cookies_is_on(mut t: TestLadder) {
    t.ladder = t.reopen(|s| s.server.secure_cookies = true).await;
    for attrs in session_cookie_attributes(&t).await {
        assert_eq!(attrs, ["httponly", "path=/", "samesite=lax", "secure"]);
    }
}
