//! API tokens at the API's door: a revoked token, an expired token, a
//! deactivated user's token and a revoked permission each fail on the very
//! next call; a narrowed token holds only what its scope and its user both
//! hold; a service account holds tokens but never a password.

use ladder::{
    accounts::{
        NewPassword, sign_in,
        tokens::{self, CreateToken},
        user_changes::{ChangeOwnPassword, SetPassword},
        users,
    },
    actor::{Actor, ActorPermissions, ActorToken, Source},
};
use reqwest::StatusCode;

use crate::{
    helpers::{TestLadder, WriteInline, stderr, stdout},
    tokens::{check, create, json_of, ok, one_error_line},
};

on_both_backends!(
    a_revoked_token_fails_on_its_very_next_call,
    an_expired_token_fails_on_its_very_next_call,
    a_deactivated_users_token_fails_on_its_very_next_call,
    a_revoked_permission_is_gone_from_the_very_next_check,
    a_narrowed_token_holds_only_what_its_scope_and_its_user_both_hold,
    a_service_account_holds_tokens_but_never_a_password,
);

async fn a_revoked_token_fails_on_its_very_next_call(t: TestLadder) {
    t.user("alice").await;
    let v = json_of(&ok(
        t.cli(&["token", "create", "alice", "--name", "ci", "--json"])
    ));
    let secret = v["token"].as_str().unwrap();
    let app = t.serve().await;
    assert_eq!(check(&app, secret, "alice", "blog.add_post").await.0, 200);
    ok(t.cli(&["token", "revoke", &v["token_id"].to_string()]));
    let (status, body) = check(&app, secret, "alice", "blog.add_post").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
}

async fn an_expired_token_fails_on_its_very_next_call(t: TestLadder) {
    // Frozen, so a second boundary crossed between calls cannot expire it early.
    t.ladder.clock.freeze();
    t.user("alice").await;
    let made = t
        .ladder
        .db
        .run(CreateToken {
            actor: t.system(),
            owner: "alice".into(),
            name: "short".into(),
            expires_at: Some(t.now() + tokens::parse_lifetime("1m").unwrap()),
            scope: None,
            now: t.now(),
        })
        .await
        .unwrap();
    let app = t.serve().await;
    assert_eq!(
        check(&app, &made.secret, "alice", "blog.add_post").await.0,
        200
    );
    t.ladder.clock.advance(59);
    assert_eq!(
        check(&app, &made.secret, "alice", "blog.add_post").await.0,
        200
    );
    t.ladder.clock.advance(1);
    assert_eq!(
        check(&app, &made.secret, "alice", "blog.add_post").await.0,
        401
    );
}

async fn a_deactivated_users_token_fails_on_its_very_next_call(t: TestLadder) {
    t.user("alice").await;
    let secret = create(&t, &["alice", "--name", "ci"]);
    let app = t.serve().await;
    assert_eq!(check(&app, &secret, "alice", "blog.add_post").await.0, 200);
    ok(t.cli(&["user", "deactivate", "alice"]));
    assert_eq!(check(&app, &secret, "alice", "blog.add_post").await.0, 401);
    ok(t.cli(&["user", "activate", "alice"]));
    assert_eq!(check(&app, &secret, "alice", "blog.add_post").await.0, 200);
}

async fn a_revoked_permission_is_gone_from_the_very_next_check(t: TestLadder) {
    t.user("alice").await;
    ok(t.cli(&["grant", "--user", "alice", "blog.add_post"]));
    let secret = create(&t, &["alice", "--name", "ci", "--perm", "blog.add_post"]);
    let app = t.serve().await;
    let (status, answer) = check(&app, &secret, "alice", "blog.add_post").await;
    assert_eq!(
        (status, answer["allowed"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    ok(t.cli(&["revoke", "--user", "alice", "blog.add_post"]));
    let (status, answer) = check(&app, &secret, "alice", "blog.add_post").await;
    assert_eq!(
        (status, answer["allowed"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{answer}"
    );
}

async fn a_narrowed_token_holds_only_what_its_scope_and_its_user_both_hold(t: TestLadder) {
    t.user("alice").await;
    let svc = t.user("svc").await;
    t.grant(&svc, &["auth.view_user", "blog.add_post"]).await;
    let viewer = create(&t, &["svc", "--name", "viewer", "--perm", "auth.view_user"]);
    let adder = create(&t, &["svc", "--name", "adder", "--perm", "blog.add_post"]);
    let app = t.serve().await;
    // Asking about someone else needs auth.view_user, which only `viewer` holds.
    assert_eq!(check(&app, &viewer, "alice", "blog.add_post").await.0, 200);
    let (status, body) = check(&app, &adder, "alice", "blog.add_post").await;
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("auth.view_user")
    );
    // Its user loses the permission: so does the token, at once; and gains it back.
    ok(t.cli(&["revoke", "--user", "svc", "auth.view_user"]));
    assert_eq!(check(&app, &viewer, "alice", "blog.add_post").await.0, 403);
    ok(t.cli(&["grant", "--user", "svc", "auth.view_user"]));
    assert_eq!(check(&app, &viewer, "alice", "blog.add_post").await.0, 200);
    // The actor a narrowed token makes changes as holds the intersection too.
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let mut actor = Actor::user(svc.clone(), Source::Api);
    actor.token = Some(ActorToken {
        name: "adder".into(),
        scope: Some(std::sync::Arc::new(vec![
            "blog.add_post".into(),
            "blog.delete_post".into(),
        ])),
    });
    let ActorPermissions::User(held) = actor.permissions(&mut conn).await.unwrap() else {
        panic!("a user's permissions");
    };
    let held: Vec<&str> = held.assigned().collect();
    assert_eq!(held, ["blog.add_post"]);
}

async fn a_service_account_holds_tokens_but_never_a_password(t: TestLadder) {
    let made = json_of(&ok(t.cli(&[
        "user",
        "add",
        "billing",
        "--service",
        "--json",
    ])));
    assert_eq!(
        (made["is_service"].as_bool(), made["has_password"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(made["email"], "");
    let listed = stdout(&ok(t.cli(&["user", "list"])));
    let row = listed.lines().find(|l| l.starts_with("billing")).unwrap();
    assert!(row.trim_end().ends_with("service"), "{row}");
    let out = t.cli(&["user", "add", "other", "--service", "--password-stdin"]);
    assert_eq!(out.status.code(), Some(2));
    one_error_line(&out);

    let before = t.fingerprint().await;
    let out = t.cli_with(
        &["user", "set-password", "billing"],
        Some("a-long-passphrase\n"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        one_error_line(&out).contains("billing is a service account"),
        "{}",
        stderr(&out)
    );
    let password = NewPassword::parse("a-long-passphrase", "billing")
        .unwrap()
        .hash()
        .await
        .unwrap();
    let refused = t.ladder.db.run(SetPassword {
        actor: t.system(),
        username: "billing".into(),
        password,
        now: t.now(),
    });
    assert!(matches!(refused.await, Err(ladder::Error::Conflict(_))));
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let billing = users::get_by_username(&mut conn, "billing").await.unwrap();
    drop(conn);
    let password = NewPassword::parse("a-long-passphrase", "billing")
        .unwrap()
        .hash()
        .await
        .unwrap();
    let own = t.ladder.db.run(ChangeOwnPassword {
        actor: Actor::user(billing.clone(), Source::Web),
        user: billing.clone(),
        password,
        now: t.now(),
    });
    assert!(matches!(own.await, Err(ladder::Error::Conflict(_))));
    crate::helpers::assert_unchanged(
        &before,
        &t.fingerprint().await,
        "setting a service account's password",
    );

    // Even with a password forced into its row, it does not sign in.
    let hash = NewPassword::parse("a-long-passphrase", "billing")
        .unwrap()
        .hash()
        .await
        .unwrap()
        .into_string();
    t.ladder
        .db
        .write(move |sql| {
            Box::pin(async move {
                sql.execute(
                    "update users set password_hash = $1 where username = 'billing'",
                    ladder::binds![hash],
                )
                .await?;
                Ok(ladder::db::Finish::Commit(()))
            })
        })
        .await
        .unwrap();
    let signed_in = sign_in::authenticate(&t.ladder.db, "billing", "a-long-passphrase", t.now());
    assert!(signed_in.await.unwrap().is_none());

    // Its tokens work, with what it is granted.
    ok(t.cli(&["grant", "--user", "billing", "blog.view_post"]));
    let secret = create(&t, &["billing", "--name", "billing-app"]);
    let app = t.serve().await;
    let (status, answer) = check(&app, &secret, "billing", "blog.view_post").await;
    assert_eq!(
        (status, answer["allowed"].as_bool()),
        (StatusCode::OK, Some(true))
    );
}
