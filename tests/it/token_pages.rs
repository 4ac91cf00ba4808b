//! API tokens in the web console: `/account/tokens` (one's own tokens; a new
//! secret shown once, in the POST's answer, never cached) and the tokens on
//! the admin user page, revoked under the account rule. Also a service
//! account in the console: no sign-in, no password.

use ladder::{
    accounts::{
        User,
        tokens::{self, CreateToken, Token},
    },
    audit::{self, AuditFilter},
};
use reqwest::{Response, header};

use crate::{
    helpers::{Client, TestApp, TestLadder},
    web_helpers::{flash_of, html_unescape, location, make_staff, submit},
};

on_both_backends!(
    a_user_makes_a_token_and_sees_its_secret_once_in_an_uncached_answer,
    the_form_shows_each_problem_beside_its_field_and_makes_nothing,
    the_form_offers_only_permissions_the_user_holds_and_narrows_to_them,
    a_user_revokes_their_own_token_and_another_users_is_not_found,
    a_form_without_the_csrf_token_makes_and_revokes_nothing,
    the_admin_page_lists_tokens_without_secrets_and_revokes_under_the_account_rule,
    a_service_account_cannot_sign_in_or_be_given_a_password_in_the_console,
);

async fn tokens_of(t: &TestLadder, user: &User) -> Vec<Token> {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    tokens::of_user(&mut conn, user.user_id).await.unwrap()
}

/// The `ldr_…` secret on a page, if one is shown.
fn secret_on(html: &str) -> Option<String> {
    let html = html_unescape(html);
    let at = html.find("ldr_")?;
    let secret: String = html[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    tokens::looks_like_token(&secret).then_some(secret)
}

async fn make(client: &Client, fields: &[(&str, &str)]) -> (u16, Option<String>, String) {
    let response = submit(client, "/account/tokens", fields).await;
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (status, cache, response.text().await.unwrap())
}

async fn check_self(app: &TestApp, secret: &str, user: &str) -> u16 {
    reqwest::Client::new()
        .get(format!(
            "{}/api/v1/check?user={user}&perm=blog.add_post",
            app.base
        ))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn events(t: &TestLadder, action: &str) -> Vec<audit::AuditEvent> {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let filter = AuditFilter {
        action: Some(action.into()),
        limit: 100,
        ..Default::default()
    };
    audit::list(&mut conn, &filter).await.unwrap()
}

async fn a_user_makes_a_token_and_sees_its_secret_once_in_an_uncached_answer(t: TestLadder) {
    let alice = t.user("alice").await;
    let app = t.serve().await;
    let client = app.signed_in("alice").await;
    let page = client.get("/account/tokens").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("No tokens yet."));

    let (status, cache, html) = make(&client, &[("name", "laptop"), ("lifetime", "30d")]).await;
    assert_eq!(
        status, 200,
        "the secret is in this answer, not behind a redirect"
    );
    assert_eq!(cache.as_deref(), Some("no-store"));
    let secret = secret_on(&html).expect("the new secret is shown");
    assert_eq!(html.matches(&secret[10..]).count(), 1);
    let made = tokens_of(&t, &alice).await;
    assert_eq!(made.len(), 1);
    assert_eq!(
        (made[0].name.as_str(), made[0].scope.as_deref()),
        ("laptop", None)
    );
    assert_eq!(made[0].expires_at, Some(made[0].created_at + 30 * 86_400));
    assert_eq!(made[0].created_by, "alice");
    assert!(format!("{:?}", t.fingerprint().await).contains(&tokens::hash(&secret)));
    // It is never shown again: the next page has its name and hint only.
    let again = client.get("/account/tokens").await.text().await.unwrap();
    assert!(again.contains("laptop") && again.contains(&secret[..10]));
    assert_eq!(secret_on(&again), None);
    assert!(!again.contains(&secret[10..]));
    // It works, and its making is audited as alice's, from the web.
    assert_eq!(check_self(&app, &secret, "alice").await, 200);
    let created = events(&t, "token.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        (created[0].actor_name.as_str(), created[0].source.as_str()),
        ("alice", "web")
    );
    assert!(!format!("{created:?}").contains(&secret[10..]));
    // "No expiry" is a choice too.
    let (status, _, _) = make(&client, &[("name", "forever"), ("lifetime", "never")]).await;
    assert_eq!(status, 200);
    assert_eq!(tokens_of(&t, &alice).await[0].expires_at, None);
}

async fn the_form_shows_each_problem_beside_its_field_and_makes_nothing(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post"]).await;
    let app = t.serve().await;
    let client = app.signed_in("alice").await;
    make(&client, &[("name", "laptop"), ("lifetime", "90d")]).await;
    let before = t.fingerprint().await;
    for (fields, field, says) in [
        (
            &[("name", "  "), ("lifetime", "90d")][..],
            "name",
            "1 to 100 characters",
        ),
        (
            &[("name", "x"), ("lifetime", "5y")],
            "lifetime",
            "Choose one of the lifetimes",
        ),
        (
            &[("name", "x"), ("lifetime", "1m")],
            "lifetime",
            "Choose one of the lifetimes",
        ),
        (
            &[
                ("name", "x"),
                ("lifetime", "90d"),
                ("perm", "blog.delete_post"),
            ],
            "perm",
            "alice does not hold blog.delete_post",
        ),
        (
            &[("name", "x"), ("lifetime", "90d"), ("perm", "blog.no_such")],
            "perm",
            "does not exist",
        ),
        (
            &[("name", "x"), ("lifetime", "90d"), ("perm", "nodot")],
            "perm",
            "not a permission name",
        ),
        (
            &[("name", "laptop"), ("lifetime", "90d")],
            "name",
            "already has a token named",
        ),
    ] {
        let (status, cache, html) = make(&client, fields).await;
        assert_eq!(status, 422, "{fields:?}");
        assert_eq!(cache.as_deref(), Some("no-store"));
        let html = html_unescape(&html);
        let marker = format!("id=\"{field}-error\">");
        let at = html
            .find(&marker)
            .unwrap_or_else(|| panic!("{fields:?}: no {field} error"));
        let message = html[at + marker.len()..].split("</p>").next().unwrap();
        assert!(message.contains(says), "{fields:?}: {message}");
        assert_eq!(secret_on(&html), None);
        // What was entered is shown again.
        let name = fields[0].1.trim();
        if !name.is_empty() {
            assert!(html.contains(&format!("value=\"{name}\"")), "{fields:?}");
        }
    }
    crate::helpers::assert_unchanged(&before, &t.fingerprint().await, "the refused forms");
}

async fn the_form_offers_only_permissions_the_user_holds_and_narrows_to_them(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post", "blog.view_post"]).await;
    let app = t.serve().await;
    let client = app.signed_in("alice").await;
    let html = client.get("/account/tokens").await.text().await.unwrap();
    let offered: Vec<&str> = html
        .split("name=\"perm\" value=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert_eq!(offered, ["blog.add_post", "blog.view_post"]);
    let (status, _, html) = make(
        &client,
        &[
            ("name", "narrow"),
            ("lifetime", "7d"),
            ("perm", "blog.view_post"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("narrowed to"));
    assert_eq!(
        tokens_of(&t, &alice).await[0].scope(),
        Some(vec!["blog.view_post".to_string()])
    );
}

async fn a_user_revokes_their_own_token_and_another_users_is_not_found(t: TestLadder) {
    let alice = t.user("alice").await;
    t.user("bob").await;
    let app = t.serve().await;
    let client = app.signed_in("alice").await;
    let (_, _, html) = make(&client, &[("name", "laptop"), ("lifetime", "90d")]).await;
    let secret = secret_on(&html).unwrap();
    let id = tokens_of(&t, &alice).await[0].token_id;

    // bob cannot revoke it, nor tell that it exists.
    let bob = app.signed_in("bob").await;
    let before = t.fingerprint().await;
    let response = submit(&bob, &format!("/account/tokens/{id}/revoke"), &[]).await;
    assert_eq!(response.status(), 404);
    let unknown = submit(&bob, "/account/tokens/999999/revoke", &[]).await;
    assert_eq!(unknown.status(), 404);
    crate::helpers::assert_unchanged(&before, &t.fingerprint().await, "bob's attempt");
    assert_eq!(check_self(&app, &secret, "alice").await, 200);

    let response = submit(&client, &format!("/account/tokens/{id}/revoke"), &[]).await;
    assert_eq!(
        (response.status().as_u16(), location(&response)),
        (303, "/account/tokens")
    );
    let page = client.get("/account/tokens").await.text().await.unwrap();
    assert!(html_unescape(&flash_of(&page).unwrap()).contains("Revoked the token \"laptop\""));
    assert_eq!(tokens_of(&t, &alice).await[0].status(t.now()), "revoked");
    assert_eq!(check_self(&app, &secret, "alice").await, 401);
    let revoked = events(&t, "token.revoke").await;
    assert_eq!((revoked.len(), revoked[0].source.as_str()), (1, "web"));
    // Again: said, and nothing more happens.
    submit(&client, &format!("/account/tokens/{id}/revoke"), &[]).await;
    let page = client.get("/account/tokens").await.text().await.unwrap();
    assert!(html_unescape(&flash_of(&page).unwrap()).contains("already revoked"));
    assert_eq!(events(&t, "token.revoke").await.len(), 1);
}

async fn a_form_without_the_csrf_token_makes_and_revokes_nothing(t: TestLadder) {
    let alice = t.user("alice").await;
    let made = t
        .ladder
        .db
        .run(CreateToken {
            actor: t.system(),
            owner: "alice".into(),
            name: "ci".into(),
            expires_at: None,
            scope: None,
            now: t.now(),
        })
        .await
        .unwrap();
    let app = t.serve().await;
    let client = app.signed_in("alice").await;
    let before = t.fingerprint().await;
    let revoke = format!("/account/tokens/{}/revoke", made.token.token_id);
    let attempts: [(&str, &[(&str, &str)]); 2] = [
        (
            "/account/tokens",
            &[("name", "sneaky"), ("lifetime", "90d")],
        ),
        (&revoke, &[]),
    ];
    for (path, fields) in attempts {
        let response: Response = client
            .http
            .post(client.url(path))
            .form(fields)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(secret_on(&response.text().await.unwrap()), None);
    }
    crate::helpers::assert_unchanged(
        &before,
        &t.fingerprint().await,
        "forms without a CSRF token",
    );
    assert_eq!(tokens_of(&t, &alice).await.len(), 1);
}

async fn the_admin_page_lists_tokens_without_secrets_and_revokes_under_the_account_rule(
    t: TestLadder,
) {
    let admin = t.superuser("admin").await;
    let alice = t.user("alice").await;
    let delegate = t.user("delegate").await;
    make_staff(&t, &delegate).await;
    t.grant(&delegate, &["auth.change_user", "auth.view_user"])
        .await;
    let mut secrets = Vec::new();
    for owner in ["alice", "alice", "admin"] {
        let made = t
            .ladder
            .db
            .run(CreateToken {
                actor: t.system(),
                owner: owner.into(),
                name: format!("token {}", secrets.len()),
                expires_at: None,
                scope: None,
                now: t.now(),
            })
            .await
            .unwrap();
        secrets.push((made.token.token_id, made.secret));
    }
    let app = t.serve().await;
    let root = app.signed_in("admin").await;
    let page = root.get("/admin/users/alice").await.text().await.unwrap();
    for (id, secret) in &secrets[..2] {
        assert!(page.contains(&secret[..10]), "the hint");
        assert!(!page.contains(&secret[10..]), "a secret on the admin page");
        assert!(page.contains(&format!("/admin/tokens/{id}/revoke")));
    }
    let (alices, _) = &secrets[0];
    let response = submit(&root, &format!("/admin/tokens/{alices}/revoke"), &[]).await;
    assert_eq!(
        (response.status().as_u16(), location(&response)),
        (303, "/admin/users/alice")
    );
    let page = root.get("/admin/users/alice").await.text().await.unwrap();
    assert!(html_unescape(&flash_of(&page).unwrap()).contains("Revoked alice's token \"token 0\""));
    assert_eq!(check_self(&app, &secrets[0].1, "alice").await, 401);
    let revoked = events(&t, "token.revoke").await;
    assert_eq!(
        (
            revoked[0].actor_name.as_str(),
            revoked[0].target_name.as_str()
        ),
        ("admin", "alice")
    );

    // A delegate may revoke a plain user's token, never the superuser's.
    let deputy = app.signed_in("delegate").await;
    let page = deputy.get("/admin/users/admin").await.text().await.unwrap();
    assert!(
        page.contains("token 2") && !page.contains("/admin/tokens/"),
        "no revoke button"
    );
    let before = t.fingerprint().await;
    let (admins, admin_secret) = &secrets[2];
    let response = submit(&deputy, &format!("/admin/tokens/{admins}/revoke"), &[]).await;
    assert_eq!(
        (response.status().as_u16(), location(&response)),
        (303, "/admin/users/admin")
    );
    let page = deputy.get("/admin/users/admin").await.text().await.unwrap();
    let flash = html_unescape(&flash_of(&page).unwrap());
    assert!(
        flash.contains("Not done") && flash.contains("only the superuser"),
        "{flash}"
    );
    crate::helpers::assert_unchanged(&before, &t.fingerprint().await, "the delegate's revoke");
    assert_eq!(check_self(&app, admin_secret, "admin").await, 200);
    let (other, _) = &secrets[1];
    let response = submit(&deputy, &format!("/admin/tokens/{other}/revoke"), &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(tokens_of(&t, &alice).await[0].status(t.now()), "revoked");
    // A token that does not exist is a 404.
    assert_eq!(
        submit(&root, "/admin/tokens/999999/revoke", &[])
            .await
            .status(),
        404
    );
    drop(admin);
}

async fn a_service_account_cannot_sign_in_or_be_given_a_password_in_the_console(t: TestLadder) {
    t.superuser("admin").await;
    let out = t.cli(&[
        "user",
        "add",
        "billing",
        "--service",
        "--email",
        "billing@example.com",
    ]);
    assert!(out.status.success());
    let app = t.serve().await;
    let root = app.signed_in("admin").await;
    let list = root.get("/admin/users").await.text().await.unwrap();
    let row = list
        .split("<tr>")
        .find(|r| r.contains(">billing<"))
        .unwrap();
    assert!(row.contains("service"), "{row}");
    let page = root.get("/admin/users/billing").await.text().await.unwrap();
    assert!(page.contains("Service account"));
    assert!(
        !page.contains("/admin/users/billing/password"),
        "no password form"
    );
    let before = t.fingerprint().await;
    let response = submit(
        &root,
        "/admin/users/billing/password",
        &[("password", "a-long-passphrase")],
    )
    .await;
    assert_eq!(response.status(), 303);
    let page = root.get("/admin/users/billing").await.text().await.unwrap();
    let flash = html_unescape(&flash_of(&page).unwrap());
    assert!(flash.contains("billing is a service account"), "{flash}");
    crate::helpers::assert_unchanged(
        &before,
        &t.fingerprint().await,
        "a service account's password",
    );
    // No password opens it: the sign-in form refuses as for a wrong password.
    for password in ["", "a-long-passphrase"] {
        let response = app.client().login("billing", password).await;
        assert_ne!(response.status(), 303, "signed in with {password:?}");
    }
}
