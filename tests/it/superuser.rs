//! Superuser transfer: only the superuser hands the role on, only to an
//! active user, in one transaction; the CLI command end to end.

use ladder::{
    Error,
    accounts::users,
    actor::{Actor, Source},
};

use crate::helpers::{TestLadder, assert_unchanged, stderr, stdout};

on_both_backends!(
    transfer_superuser_is_refused_for_an_inactive_target_and_changes_nothing,
    the_cli_transfers_the_superuser_and_both_accounts_are_right_after_it,
);

async fn superusers(t: &TestLadder) -> Vec<String> {
    sqlx::query_scalar("select username from users where is_superuser = $1 order by username")
        .bind(true)
        .fetch_all(t.ladder.db.pool())
        .await
        .unwrap()
}

async fn transfer_superuser_is_refused_for_an_inactive_target_and_changes_nothing(t: TestLadder) {
    let admin = t.superuser("admin").await;
    let bob = t.user("bob").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let bob = users::set_active(&mut tx, &t.system(), &bob, false, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let before = t.fingerprint().await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = users::transfer_superuser(&mut tx, &Actor::user(admin, Source::Cli), &bob, t.now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("bob is inactive")),
        "{err:?}"
    );
    tx.commit().await.unwrap();
    assert_unchanged(&before, &t.fingerprint().await, "a refused transfer");
    assert_eq!(superusers(&t).await, ["admin"]);
}

async fn the_cli_transfers_the_superuser_and_both_accounts_are_right_after_it(t: TestLadder) {
    let admin = t.superuser("admin").await;
    let bob = t.user("bob").await;
    let out = t.cli(&["transfer-superuser", "--to", "bob"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "bob is now the superuser");

    let old = t.reload(&admin).await;
    assert!(!old.is_superuser, "the old superuser is no longer one");
    assert!(old.is_active, "the old superuser keeps their account");
    assert!(!t.has_perm(&old, "made_up.permission").await);
    let new = t.reload(&bob).await;
    assert!(new.is_superuser && new.is_staff && new.is_active);
    assert!(t.has_perm(&new, "made_up.permission").await);
    assert_eq!(superusers(&t).await, ["bob"]);

    // One audit event, from the CLI, naming both.
    let event: (String, String, Option<String>, Option<String>) = sqlx::query_as(
        "select source, target_name, before_state, after_state from audit_events \
         where action = 'user.transfer_superuser'",
    )
    .fetch_one(t.ladder.db.pool())
    .await
    .unwrap();
    assert_eq!(event.0, "cli");
    assert_eq!(event.1, "bob");
    assert_eq!(event.2.as_deref(), Some(r#"{"superuser":"admin"}"#));
    assert_eq!(event.3.as_deref(), Some(r#"{"superuser":"bob"}"#));

    // The new superuser is the CLI's default actor now: a change by it is theirs.
    let out = t.cli(&["grant", "--user", "admin", "blog.add_post"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let actor: String = sqlx::query_scalar(
        "select actor_name from audit_events where action = 'permission.grant' \
         order by audit_event_id desc limit 1",
    )
    .fetch_one(t.ladder.db.pool())
    .await
    .unwrap();
    assert_eq!(actor, "bob");

    // Handing it on to someone unknown fails, changing nothing.
    let before = t.fingerprint().await;
    let out = t.cli(&["transfer-superuser", "--to", "nobody"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nobody"), "{}", stderr(&out));
    assert_unchanged(&before, &t.fingerprint().await, "a transfer to nobody");
}
