//! The fixes from the security review (issue 9) that live in the permission
//! core, the database layer and sign-in: each test fails without its fix.

use ladder::{
    Error,
    accounts::{NewPassword, User, users},
    actor::{Actor, Source},
    config::Settings,
    jobs::{self, JobName},
    mail::transport::Transport,
};

use crate::helpers::{Kind, TestLadder, stderr};

on_both_backends!(
    a_delegate_cannot_take_over_an_account_that_holds_more_than_they_do,
    a_delegate_may_act_on_an_account_holding_only_what_they_hold,
    the_cli_and_the_console_apply_the_account_rule_too,
    expired_sessions_and_old_sign_in_attempts_are_swept,
    the_session_fingerprint_is_an_hmac_under_the_server_secret,
);

/// dora holds auth.change_user (given by the superuser) but not blog.publish_post.
async fn delegate(t: &TestLadder) -> User {
    let dora = t.user("dora").await;
    t.grant(
        &dora,
        &["auth.change_user", "auth.view_user", "blog.add_post"],
    )
    .await;
    t.reload(&dora).await
}

async fn as_dora_set_password(t: &TestLadder, dora: &User, target: &User) -> Result<(), Error> {
    let hash = NewPassword::parse("a-brand-new-password", &target.username)
        .unwrap()
        .hash()
        .await
        .unwrap();
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let target = t.reload(target).await;
    let actor = Actor::user(dora.clone(), Source::Cli);
    let done = users::set_password(&mut tx, &actor, &target, hash, t.now()).await;
    if done.is_ok() {
        tx.commit().await.unwrap();
    }
    done
}

async fn as_dora_set_active(
    t: &TestLadder,
    dora: &User,
    target: &User,
    active: bool,
) -> Result<User, Error> {
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let target = t.reload(target).await;
    let actor = Actor::user(dora.clone(), Source::Cli);
    let done = users::set_active(&mut tx, &actor, &target, active, t.now()).await;
    if done.is_ok() {
        tx.commit().await.unwrap();
    }
    done
}

fn forbidden(result: Result<impl std::fmt::Debug, Error>, naming: &str) {
    match result {
        Err(Error::Forbidden(message)) => assert!(
            message.contains(naming),
            "the refusal {message:?} should name {naming:?}"
        ),
        other => panic!("expected a refusal naming {naming:?}, got {other:?}"),
    }
}

async fn a_delegate_cannot_take_over_an_account_that_holds_more_than_they_do(t: TestLadder) {
    let dora = delegate(&t).await;
    let senior = t
        .group("Publishers", &["blog.add_post", "blog.publish_post"])
        .await;
    let tina = t.user("tina").await;
    t.join(&tina, &senior).await;
    let before = t.reload(&tina).await;

    // Setting the password of, or deactivating, someone who holds what dora
    // lacks would let dora use it (or lock them out): refused, naming it.
    forbidden(
        as_dora_set_password(&t, &dora, &tina).await,
        "blog.publish_post",
    );
    forbidden(
        as_dora_set_active(&t, &dora, &tina, false).await,
        "blog.publish_post",
    );

    // Another administrator (auth.change_user) or a staff member: the superuser's alone.
    let admin2 = t.user("admin2").await;
    t.grant(&admin2, &["auth.change_user"]).await;
    forbidden(
        as_dora_set_password(&t, &dora, &admin2).await,
        "only the superuser",
    );
    let staff = t.user("sam").await;
    sqlx::query("update users set is_staff = $1 where user_id = $2")
        .bind(true)
        .bind(staff.user_id)
        .execute(t.ladder.db.pool())
        .await
        .unwrap();
    forbidden(
        as_dora_set_password(&t, &dora, &staff).await,
        "only the superuser",
    );
    forbidden(
        as_dora_set_active(&t, &dora, &staff, false).await,
        "only the superuser",
    );

    // An inactive account is one reactivation away from all it holds:
    // reactivating it, or setting its password first, is refused too.
    let root = Actor::user(t.superuser("root").await, Source::Cli);
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    users::set_active(&mut tx, &root, &tina, false, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    forbidden(
        as_dora_set_password(&t, &dora, &tina).await,
        "blog.publish_post",
    );
    forbidden(
        as_dora_set_active(&t, &dora, &tina, true).await,
        "blog.publish_post",
    );

    // Nothing about tina changed but what the superuser did.
    let after = t.reload(&tina).await;
    assert_eq!(after.password_hash, before.password_hash);
    assert!(!after.is_active);
}

async fn a_delegate_may_act_on_an_account_holding_only_what_they_hold(t: TestLadder) {
    let dora = delegate(&t).await;
    let writers = t.group("Writers", &["blog.add_post"]).await;
    let walt = t.user("walt").await;
    t.join(&walt, &writers).await;
    let before = t.reload(&walt).await;
    as_dora_set_password(&t, &dora, &walt).await.unwrap();
    assert_ne!(t.reload(&walt).await.password_hash, before.password_hash);
    let walt = as_dora_set_active(&t, &dora, &walt, false).await.unwrap();
    assert!(!walt.is_active);
    as_dora_set_active(&t, &dora, &walt, true).await.unwrap();
    // Still never oneself.
    forbidden(
        as_dora_set_password(&t, &dora, &dora).await,
        "only the superuser",
    );
}

async fn the_cli_and_the_console_apply_the_account_rule_too(t: TestLadder) {
    let dora = delegate(&t).await;
    t.grant(&dora, &[]).await;
    sqlx::query("update users set is_staff = $1 where user_id = $2")
        .bind(true)
        .bind(dora.user_id)
        .execute(t.ladder.db.pool())
        .await
        .unwrap();
    let senior = t
        .group("Publishers", &["blog.add_post", "blog.publish_post"])
        .await;
    let tina = t.user("tina").await;
    t.join(&tina, &senior).await;
    let before = t.reload(&tina).await;

    let out = t.cli_with(
        &["user", "set-password", "tina", "--as", "dora"],
        Some("a-brand-new-password\n"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("blog.publish_post"),
        "{}",
        stderr(&out)
    );
    let out = t.cli(&["user", "deactivate", "tina", "--as", "dora"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("blog.publish_post"),
        "{}",
        stderr(&out)
    );

    let app = t.serve().await;
    let console = app.signed_in("dora").await;
    let token = console.csrf("/admin/users/tina").await;
    let response = console
        .post_form(
            "/admin/users/tina/password",
            &token,
            &[("password", "a-brand-new-password")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let page = console.get("/admin/users/tina").await.text().await.unwrap();
    assert!(
        page.contains("blog.publish_post, which you do not hold"),
        "{page}"
    );
    let response = console
        .post_form("/admin/users/tina/active", &token, &[("value", "false")])
        .await;
    assert_eq!(response.status(), 303);

    let after = t.reload(&tina).await;
    assert_eq!(after.password_hash, before.password_hash);
    assert!(after.is_active);
    // The old password still signs tina in.
    app.signed_in("tina").await;
}

async fn expired_sessions_and_old_sign_in_attempts_are_swept(t: TestLadder) {
    let now = t.now();
    for (id, expires) in [("old", now - 10), ("live", now + 3600)] {
        sqlx::query(
            "insert into sessions (session_id, data, expires_at, created_at) values ($1, '{}', $2, $3)",
        )
        .bind(id)
        .bind(expires)
        .bind(now - 100)
        .execute(t.ladder.db.pool())
        .await
        .unwrap();
    }
    for (key, at) in [("ip:1", now - 7200), ("ip:2", now - 30)] {
        sqlx::query("insert into login_attempts (attempt_key, created_at) values ($1, $2)")
            .bind(key)
            .bind(at)
            .execute(t.ladder.db.pool())
            .await
            .unwrap();
    }
    let transport = Transport::from_settings(&t.ladder.settings.mail).unwrap();
    let summary = jobs::run_once(&t.ladder, JobName::Sessions, &transport)
        .await
        .unwrap();
    assert!(
        summary.starts_with("1 expired session(s), 1 old sign-in attempt(s)"),
        "{summary}"
    );
    let left: Vec<String> = sqlx::query_scalar("select session_id from sessions")
        .fetch_all(t.ladder.db.pool())
        .await
        .unwrap();
    assert_eq!(left, ["live"]);
    assert_eq!(t.count("login_attempts").await, 1);
    // And from the CLI, as an operator would.
    let out = t.cli(&["jobs", "run", "sessions"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

async fn the_session_fingerprint_is_an_hmac_under_the_server_secret(t: TestLadder) {
    let bob = t.user("bob").await;
    let app = t.serve().await;
    let client = app.signed_in("bob").await;
    let data: String = sqlx::query_scalar("select data from sessions")
        .fetch_one(t.ladder.db.pool())
        .await
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    let fingerprint = data["auth"]["auth_hash"].as_str().unwrap().to_string();
    let hash = bob.password_hash.unwrap();
    // Nothing of the password hash is in the session table.
    assert_eq!(fingerprint.len(), 64);
    let reversed: String = fingerprint.chars().rev().collect();
    for piece in [&fingerprint, &reversed] {
        assert!(
            !hash.contains(&piece[..12]),
            "the fingerprint is part of the hash"
        );
    }
    assert_eq!(
        t.ladder.secret.sign("session-auth", hash.as_bytes()),
        fingerprint
    );
    assert_eq!(client.get("/posts/mine").await.status(), 200);

    // Another secret: the same session no longer matches and is signed out.
    let other = t
        .reopen(|s: &mut Settings| s.server.secret_key = "x".repeat(40))
        .await;
    assert_ne!(
        other.secret.sign("session-auth", b"h"),
        t.ladder.secret.sign("session-auth", b"h")
    );
    drop(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reopened = ladder::web::Application::with_listener(other, listener)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", reopened.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(reopened.run_until(async {
        let _ = stopped.await;
    }));
    let response = client
        .http
        .get(format!("{base}/posts/mine"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "the session should have ended");
    let _ = stop.send(());
}

/// Many sign-ins and page views at once against a pool of two connections:
/// writers take the write turn and then the write connection, readers only
/// the pool, and no password is hashed while either is held, so nothing
/// waits on the pool until it times out.
async fn many_concurrent_sign_ins_and_page_views_on_a_small_pool_all_succeed(kind: Kind) {
    let Some(t) = TestLadder::start_with(kind, |s| {
        s.database.max_connections = 2;
        s.server.login_attempts_per_minute = 1000;
    })
    .await
    else {
        return;
    };
    const USERS: usize = 8;
    for n in 0..USERS {
        t.user(&format!("user{n}")).await;
    }
    let app = t.serve().await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for n in 0..40 {
        let client = app.client();
        tasks.push(tokio::spawn(async move {
            let name = format!("user{}", n % USERS);
            let signed_in = client
                .login(&name, &format!("{name}-password"))
                .await
                .status();
            let page = client.get("/posts/mine").await.status();
            let ready = client.get("/readyz").await.status();
            (signed_in.as_u16(), page.as_u16(), ready.as_u16())
        }));
    }
    for task in tasks {
        let (signed_in, page, ready) = task.await.unwrap();
        assert_eq!((signed_in, page, ready), (303, 200, 200));
    }
    // Not a timing assertion: a deadlock would have waited out the pool's
    // 30-second acquire timeout and answered 5xx above.
    eprintln!(
        "40 sign-ins on a 2-connection pool took {:?}",
        started.elapsed()
    );
}

mod many_concurrent_sign_ins_and_page_views_on_a_small_pool_all_succeed {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::many_concurrent_sign_ins_and_page_views_on_a_small_pool_all_succeed(
            super::Kind::Sqlite,
        )
        .await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::many_concurrent_sign_ins_and_page_views_on_a_small_pool_all_succeed(
            super::Kind::Postgres,
        )
        .await;
    }
}
