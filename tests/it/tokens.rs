//! API tokens from the command line: made, listed and revoked with `ladder
//! token`, shown once and stored only hashed, unique by live name, made for
//! others only under the account rule; and the `revision` every `--json`
//! write carries. At the API's door: `token_use.rs`.

use std::process::Output;

use ladder::{
    accounts::tokens::{self, CreateToken},
    permissions::revision,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    helpers::{TestApp, TestLadder, WriteInline, stderr, stdout},
    web_helpers::make_staff,
};

on_both_backends!(
    token_create_prints_the_secret_alone_on_its_last_line_and_stores_only_its_hash,
    token_create_json_is_one_object_with_the_token_and_the_revision,
    token_create_refuses_bad_input_with_one_line_and_writes_nothing,
    token_list_shows_every_token_with_its_status_and_never_a_secret,
    token_revoke_says_when_a_token_was_already_revoked_and_refuses_an_unknown_id,
    a_delegate_can_neither_make_nor_revoke_the_superusers_tokens,
    a_live_token_name_is_unique_per_user_and_free_again_once_revoked,
    json_writes_carry_the_revision_they_committed,
);

pub(crate) fn one_error_line(out: &Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {err}");
    lines[0].to_string()
}

pub(crate) fn ok(out: Output) -> Output {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out
}

pub(crate) fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

pub(crate) fn last_line(out: &Output) -> String {
    stdout(out).lines().last().unwrap_or_default().to_string()
}

/// `ladder token create`'s secret, as a script takes it (`tail -1`).
pub(crate) fn create(t: &TestLadder, args: &[&str]) -> String {
    let mut all = vec!["token", "create"];
    all.extend_from_slice(args);
    last_line(&ok(t.cli(&all)))
}

/// `GET /api/v1/check?user=U&perm=P` with a bearer token.
pub(crate) async fn check(
    app: &TestApp,
    token: &str,
    user: &str,
    perm: &str,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/check?user={user}&perm={perm}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn revision_now(t: &TestLadder) -> i64 {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    revision::current(&mut conn).await.unwrap()
}

async fn token_create_prints_the_secret_alone_on_its_last_line_and_stores_only_its_hash(
    t: TestLadder,
) {
    t.user("alice").await;
    let out = ok(t.cli(&["token", "create", "alice", "--name", "deploy"]));
    let secret = last_line(&out);
    assert!(tokens::looks_like_token(&secret), "last line: {secret:?}");
    assert_eq!(stdout(&out).matches(&secret).count(), 1, "shown once");
    // Stored as its SHA-256 and a short hint; nowhere in any table in full.
    let everything = format!("{:?}", t.fingerprint().await);
    assert!(!everything.contains(&secret[4..]), "the secret is stored");
    assert!(everything.contains(&tokens::hash(&secret)));
    assert!(everything.contains(&secret[..10]), "the hint is stored");
    let listed = stdout(&ok(t.cli(&["token", "list", "alice"])));
    assert!(!listed.contains(&secret[10..]), "{listed}");
    // It works, as alice.
    let app = t.serve().await;
    let (status, answer) = check(&app, &secret, "alice", "blog.add_post").await;
    assert_eq!(
        (status, answer["allowed"].as_bool()),
        (StatusCode::OK, Some(false))
    );
}

async fn token_create_json_is_one_object_with_the_token_and_the_revision(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post", "blog.view_post"]).await;
    let out = ok(t.cli(&[
        "token",
        "create",
        "Alice",
        "--name",
        "ci",
        "--expires",
        "90d",
        "--perm",
        "blog.view_post",
        "--perm",
        "blog.add_post",
        "--json",
    ]));
    let v = json_of(&out);
    assert_eq!(v["user"], "alice", "the canonical username");
    assert_eq!(v["name"], "ci");
    assert_eq!(
        v["scope"],
        serde_json::json!(["blog.add_post", "blog.view_post"])
    );
    assert_eq!(v["status"], "active");
    let secret = v["token"].as_str().unwrap();
    assert!(tokens::looks_like_token(secret));
    assert!(secret.starts_with(v["hint"].as_str().unwrap()));
    assert_eq!(v["revision"], revision_now(&t).await);
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let stored = tokens::find(&mut conn, v["token_id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    let lifetime = stored.expires_at.unwrap() - stored.created_at;
    assert_eq!(lifetime, 90 * 86_400);
    assert_eq!(
        v["expires_at"],
        ladder::clock::rfc3339(stored.expires_at.unwrap())
    );
}

async fn token_create_refuses_bad_input_with_one_line_and_writes_nothing(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post"]).await;
    let before = t.fingerprint().await;
    for (args, says) in [
        (
            &["nobody", "--name", "x"][..],
            "user \"nobody\" does not exist",
        ),
        (&["alice", "--name", "  "], "name"),
        (&["alice", "--name", &"n".repeat(101)], "name"),
        (&["alice", "--name", "x", "--expires", "5y"], "expires"),
        (&["alice", "--name", "x", "--expires", "90"], "expires"),
        (
            &["alice", "--name", "x", "--expires", "0m"],
            "between 1 minute and 10 years",
        ),
        (
            &["alice", "--name", "x", "--expires", "4000d"],
            "between 1 minute and 10 years",
        ),
        (
            &["alice", "--name", "x", "--perm", "blog.delete_post"],
            "alice does not hold blog.delete_post",
        ),
        (
            &["alice", "--name", "x", "--perm", "blog.no_such"],
            "permission \"blog.no_such\" does not exist",
        ),
        (
            &["alice", "--name", "x", "--perm", "nodot"],
            "not a permission name",
        ),
        (&["alice"], "--name"),
    ] {
        let mut all = vec!["token", "create"];
        all.extend_from_slice(args);
        let out = t.cli(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        let line = one_error_line(&out);
        assert!(line.contains(says), "{args:?}: {line}");
        assert!(stdout(&out).is_empty(), "{args:?} printed {}", stdout(&out));
    }
    crate::helpers::assert_unchanged(&before, &t.fingerprint().await, "a refused token create");
}

async fn token_list_shows_every_token_with_its_status_and_never_a_secret(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post"]).await;
    let live = create(&t, &["alice", "--name", "live", "--perm", "blog.add_post"]);
    let revoked = create(&t, &["alice", "--name", "gone"]);
    let expired = t
        .ladder
        .db
        .run(CreateToken {
            actor: t.system(),
            owner: "alice".into(),
            name: "old".into(),
            expires_at: Some(t.now() - 1),
            scope: None,
            now: t.now() - 100,
        })
        .await
        .unwrap();
    let listed = json_of(&ok(t.cli(&["token", "list", "alice", "--json"])));
    let gone_id = listed.as_array().unwrap()[1]["token_id"].to_string();
    ok(t.cli(&["token", "revoke", &gone_id]));

    let listed = json_of(&ok(t.cli(&["token", "list", "alice", "--json"])));
    let rows = listed.as_array().unwrap();
    let statuses: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [("old", "expired"), ("gone", "revoked"), ("live", "active")]
    );
    assert!(rows.iter().all(|r| r.get("token").is_none()), "{listed}");
    assert_eq!(rows[2]["scope"], serde_json::json!(["blog.add_post"]));
    assert_eq!(rows[0]["scope"], Value::Null);

    let table = stdout(&ok(t.cli(&["token", "list", "alice"])));
    let header = table.lines().next().unwrap();
    for column in [
        "id",
        "name",
        "hint",
        "scope",
        "created",
        "expires",
        "last used",
        "status",
    ] {
        assert!(header.contains(column), "{header}");
    }
    for secret in [&live, &revoked, &expired.secret] {
        assert!(table.contains(&secret[..10]), "the hint of each: {table}");
        assert!(!table.contains(&secret[10..]), "a secret: {table}");
    }
    assert!(table.contains("expired") && table.contains("revoked") && table.contains("active"));
    let out = t.cli(&["token", "list", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out).contains("user \"nobody\" does not exist"));
}

async fn token_revoke_says_when_a_token_was_already_revoked_and_refuses_an_unknown_id(
    t: TestLadder,
) {
    t.user("alice").await;
    let v = json_of(&ok(
        t.cli(&["token", "create", "alice", "--name", "ci", "--json"])
    ));
    let id = v["token_id"].to_string();
    let out = ok(t.cli(&["token", "revoke", &id]));
    assert!(stdout(&out).contains("Revoked token"), "{}", stdout(&out));
    let out = ok(t.cli(&["token", "revoke", &id, "--json"]));
    let again = json_of(&out);
    assert_eq!(
        (again["changed"].as_bool(), again["status"].as_str()),
        (Some(false), Some("revoked"))
    );
    let out = ok(t.cli(&["token", "revoke", &id]));
    assert!(stdout(&out).contains("already revoked"), "{}", stdout(&out));

    let before = t.fingerprint().await;
    for (id, says) in [
        ("999999", "token 999999 does not exist"),
        ("abc", "invalid value"),
    ] {
        let out = t.cli(&["token", "revoke", id]);
        assert_eq!(out.status.code(), Some(2), "{id}");
        assert!(
            one_error_line(&out).contains(says),
            "{id}: {}",
            stderr(&out)
        );
    }
    crate::helpers::assert_unchanged(&before, &t.fingerprint().await, "a refused revoke");
}

async fn a_delegate_can_neither_make_nor_revoke_the_superusers_tokens(t: TestLadder) {
    t.superuser("admin").await;
    let bob = t.user("bob").await;
    let delegate = t.user("delegate").await;
    make_staff(&t, &delegate).await;
    t.grant(&delegate, &["auth.change_user"]).await;
    let admins = json_of(&ok(
        t.cli(&["token", "create", "admin", "--name", "root", "--json"])
    ));
    let before = t.fingerprint().await;
    let out = t.cli(&[
        "token", "create", "admin", "--name", "mine", "--as", "delegate",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        one_error_line(&out).contains("only the superuser"),
        "{}",
        stderr(&out)
    );
    let id = admins["token_id"].to_string();
    let out = t.cli(&["token", "revoke", &id, "--as", "delegate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        one_error_line(&out).contains("only the superuser"),
        "{}",
        stderr(&out)
    );
    crate::helpers::assert_unchanged(&before, &t.fingerprint().await, "the delegate's attempts");
    // A plain user's account is the delegate's to act on, and the audit log says who.
    ok(t.cli(&[
        "token", "create", "bob", "--name", "for-bob", "--as", "delegate",
    ]));
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let bobs = tokens::of_user(&mut conn, bob.user_id).await.unwrap();
    assert_eq!(bobs[0].created_by, "delegate");
    let audit = json_of(&ok(t.cli(&["audit", "--user", "bob", "--json"])));
    let event = &audit[0];
    assert_eq!(
        (event["action"].as_str(), event["actor"].as_str()),
        (Some("token.create"), Some("delegate"))
    );
}

async fn a_live_token_name_is_unique_per_user_and_free_again_once_revoked(t: TestLadder) {
    let alice = t.user("alice").await;
    t.user("bob").await;
    create(&t, &["alice", "--name", "ci"]);
    let before = t.fingerprint().await;
    let out = t.cli(&["token", "create", "alice", "--name", "ci"]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out);
    assert!(
        line.contains("alice already has a token named \"ci\""),
        "{line}"
    );
    crate::helpers::assert_unchanged(&before, &t.fingerprint().await, "a duplicate name");
    // The domain's answer is the conflict naming the token, not the database's text.
    let again = t.ladder.db.run(CreateToken {
        actor: t.system(),
        owner: "alice".into(),
        name: " ci ".into(),
        expires_at: None,
        scope: None,
        now: t.now(),
    });
    match again.await {
        Err(ladder::Error::Conflict(m)) => assert!(m.contains("\"ci\""), "{m}"),
        other => panic!("expected a conflict, got {:?}", other.map(|m| m.token)),
    }
    // The database itself refuses a second live name, whatever code writes it.
    let raw = t
        .ladder
        .db
        .write(move |sql| {
            Box::pin(async move {
                sql.execute(
                    "insert into api_tokens (user_id, name, hint, token_hash, created_by, created_at) \
                     values ($1, 'ci', 'ldr_x', 'not-a-real-hash', 'test', 0)",
                    ladder::binds![alice.user_id],
                )
                .await?;
                Ok(ladder::db::Finish::Commit(()))
            })
        })
        .await;
    assert!(matches!(raw, Err(ladder::Error::Duplicate(_))), "{raw:?}");
    // Another user may use the name; once revoked, so may alice again.
    create(&t, &["bob", "--name", "ci"]);
    let listed = json_of(&ok(t.cli(&["token", "list", "alice", "--json"])));
    ok(t.cli(&["token", "revoke", &listed[0]["token_id"].to_string()]));
    create(&t, &["alice", "--name", "ci"]);
    let listed = json_of(&ok(t.cli(&["token", "list", "alice", "--json"])));
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "revoked"]);
}

async fn json_writes_carry_the_revision_they_committed(t: TestLadder) {
    t.user("alice").await;
    t.group("Writers", &["blog.add_post"]).await;
    let revision_of = |out: Output| -> i64 {
        let v = json_of(&ok(out));
        v["revision"]
            .as_i64()
            .unwrap_or_else(|| panic!("no revision: {v}"))
    };
    let granted = json_of(&ok(t.cli(&[
        "grant",
        "--user",
        "alice",
        "blog.view_post",
        "--json",
    ])));
    assert_eq!(granted["changed"], serde_json::json!(["blog.view_post"]));
    assert_eq!(granted["user"], "alice");
    let first = granted["revision"].as_i64().unwrap();
    assert_eq!(first, revision_now(&t).await, "the grant's own revision");
    let second = revision_of(t.cli(&["grant", "--user", "alice", "blog.change_post", "--json"]));
    assert!(second > first, "{second} after {first}");
    // Nothing to change advances nothing, and says so.
    let same = json_of(&ok(t.cli(&[
        "grant",
        "--user",
        "alice",
        "blog.change_post",
        "--json",
    ])));
    assert_eq!(
        (same["revision"].as_i64(), same["changed"].clone()),
        (Some(second), serde_json::json!([]))
    );
    let mut last = second;
    for args in [
        &["revoke", "--user", "alice", "blog.change_post", "--json"][..],
        &["grant", "--group", "Writers", "blog.view_post", "--json"],
        &["group", "add-user", "Writers", "alice", "--json"],
        &["group", "remove-user", "Writers", "alice", "--json"],
        &["user", "deactivate", "alice", "--json"],
        &["user", "activate", "alice", "--json"],
    ] {
        let revision = revision_of(t.cli(args));
        assert!(revision > last, "{args:?}: {revision} after {last}");
        assert_eq!(revision, revision_now(&t).await, "{args:?}");
        last = revision;
    }
    create(&t, &["alice", "--name", "ci"]);
    let listed = json_of(&ok(t.cli(&["token", "list", "alice", "--json"])));
    let revoked = revision_of(t.cli(&[
        "token",
        "revoke",
        &listed[0]["token_id"].to_string(),
        "--json",
    ]));
    assert!(revoked > last);
    // A check at least at a write's revision sees it.
    let viewer = t.user("viewer").await;
    t.grant(&viewer, &["auth.view_user"]).await;
    let token = create(&t, &["viewer", "--name", "checks"]);
    let granted = revision_of(t.cli(&["grant", "--user", "alice", "blog.delete_post", "--json"]));
    let app = t.serve().await;
    let (status, answer) = check(
        &app,
        &token,
        "alice",
        &format!("blog.delete_post&consistency=at_least={granted}"),
    )
    .await;
    assert_eq!(
        (status, answer["allowed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{answer}"
    );
    assert!(answer["revision"].as_i64().unwrap() >= granted);
    // Without --json, a sentence as before.
    let out = ok(t.cli(&["grant", "--user", "alice", "blog.publish_post"]));
    assert_eq!(
        stdout(&out).trim(),
        "Granted blog.publish_post to user alice."
    );
}
