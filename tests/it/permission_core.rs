//! Django's rules and Ladder's stricter ones, through the library, on both backends.

use ladder::{
    Error,
    accounts::{groups, users},
    actor::{Actor, Source},
    audit::{self, AuditFilter},
    config::ResourceSettings,
    permissions::{
        Denial, PermissionName, Via, catalog, effective,
        grants::{self, Grantee},
    },
};

use crate::helpers::{TestLadder, names};

on_both_backends!(
    a_new_user_holds_no_permissions,
    an_inactive_superuser_has_nothing_and_an_active_one_holds_made_up_permissions,
    permissions_from_user_and_groups_are_unioned_and_listed_once,
    has_module_perms_holds_for_any_permission_of_the_app,
    users_with_perm_finds_direct_group_and_superuser_holders_but_not_inactive_ones,
    a_deactivated_user_loses_every_permission_on_the_next_check,
    a_revoke_by_another_process_is_seen_by_the_next_check,
    a_change_to_one_user_by_another_process_is_seen_and_spares_the_rest_of_the_cache,
    a_change_user_holder_can_grant_what_they_hold,
    a_change_user_holder_cannot_grant_a_permission_they_lack,
    a_change_user_holder_cannot_add_someone_to_a_group_holding_more_than_they_hold,
    only_the_superuser_may_grant_change_user_or_set_staff,
    nobody_but_the_superuser_changes_their_own_permissions,
    a_user_without_change_user_cannot_grant_anything,
    the_database_refuses_a_second_superuser,
    transfer_superuser_moves_the_flag_in_one_transaction,
    every_change_writes_an_audit_event_and_a_rolled_back_change_writes_none,
    the_audit_log_is_append_only,
    migrate_is_idempotent_and_picks_up_new_permissions_and_reports_removed_ones,
    granting_an_unknown_permission_names_it_and_changes_nothing,
    usernames_are_unique_regardless_of_case,
);

async fn a_new_user_holds_no_permissions(t: TestLadder) {
    let alice = t.user("alice").await;
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let perms = effective::load(&mut conn, alice.user_id).await.unwrap();
    assert!(perms.granted().is_empty());
    assert!(!perms.has_perm("blog.add_post"));
    assert!(!perms.has_module_perms("blog"));
}

async fn an_inactive_superuser_has_nothing_and_an_active_one_holds_made_up_permissions(
    t: TestLadder,
) {
    let admin = t.superuser("admin").await;
    assert!(t.has_perm(&admin, "made.up").await);
    assert!(t.has_perm(&admin, "blog.publish_post").await);
    // Ladder refuses to deactivate the superuser; the rule must hold even if the row says so.
    sqlx::query("update users set is_active = $1 where user_id = $2")
        .bind(false)
        .bind(admin.user_id)
        .execute(t.ladder.db.pool())
        .await
        .unwrap();
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    ladder::permissions::bump_epoch(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    assert!(!t.has_perm(&admin, "made.up").await);
    assert!(!t.has_perm(&admin, "blog.publish_post").await);
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let perms = effective::load(&mut conn, admin.user_id).await.unwrap();
    assert_eq!(
        perms.explain("blog.add_post").denial,
        Some(Denial::Inactive)
    );
}

async fn permissions_from_user_and_groups_are_unioned_and_listed_once(t: TestLadder) {
    let alice = t.user("alice").await;
    let writers = t
        .group("Writers", &["blog.add_post", "blog.view_post"])
        .await;
    let reviewers = t.group("Reviewers", &["blog.view_post"]).await;
    t.join(&alice, &writers).await;
    t.join(&alice, &reviewers).await;
    t.grant(&alice, &["blog.add_post", "blog.publish_post"])
        .await;

    let mut conn = t.ladder.db.acquire().await.unwrap();
    let perms = effective::load(&mut conn, alice.user_id).await.unwrap();
    let granted: Vec<&str> = perms.granted().keys().copied().collect();
    assert_eq!(
        granted,
        ["blog.add_post", "blog.publish_post", "blog.view_post"]
    );
    assert_eq!(
        perms.explain("blog.add_post").sources,
        vec![Via::Direct, Via::Group("Writers".into())]
    );
    assert_eq!(
        perms.explain("blog.view_post").sources,
        vec![Via::Group("Reviewers".into()), Via::Group("Writers".into())]
    );
    assert!(perms.has_perms(&["blog.add_post", "blog.publish_post", "blog.view_post"]));
    assert!(!perms.has_perms(&["blog.add_post", "blog.delete_post"]));
    assert!(perms.has_perms::<&str>(&[]));
}

async fn has_module_perms_holds_for_any_permission_of_the_app(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.view_post"]).await;
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let perms = effective::load(&mut conn, alice.user_id).await.unwrap();
    assert!(perms.has_module_perms("blog"));
    assert!(!perms.has_module_perms("auth"));
}

async fn users_with_perm_finds_direct_group_and_superuser_holders_but_not_inactive_ones(
    t: TestLadder,
) {
    t.superuser("admin").await;
    let direct = t.user("direct").await;
    let grouped = t.user("grouped").await;
    let gone = t.user("gone").await;
    t.user("nobody").await;
    let editors = t.group("Editors", &["blog.publish_post"]).await;
    t.grant(&direct, &["blog.publish_post"]).await;
    t.join(&grouped, &editors).await;
    t.join(&gone, &editors).await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    users::set_active(&mut tx, &t.system(), &gone, false, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut conn = t.ladder.db.acquire().await.unwrap();
    let perm = PermissionName::parse("blog.publish_post").unwrap();
    let holders: Vec<String> = effective::users_with_perm(&mut conn, &perm)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(holders, ["admin", "direct", "grouped"]);
}

async fn a_deactivated_user_loses_every_permission_on_the_next_check(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post"]).await;
    assert!(t.has_perm(&alice, "blog.add_post").await);
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    users::set_active(&mut tx, &t.system(), &alice, false, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!t.has_perm(&alice, "blog.add_post").await);
}

async fn a_revoke_by_another_process_is_seen_by_the_next_check(t: TestLadder) {
    let alice = t.user("alice").await;
    let writers = t.group("Writers", &["blog.add_post"]).await;
    t.join(&alice, &writers).await;
    // Warm this process's cache.
    assert!(t.has_perm(&alice, "blog.add_post").await);
    assert!(t.has_perm(&alice, "blog.add_post").await);
    assert!(!t.ladder.permissions.is_empty());

    // Another process (the CLI binary) revokes.
    let out = t.cli(&["revoke", "--group", "Writers", "blog.add_post"]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    assert!(!t.has_perm(&alice, "blog.add_post").await);

    // And the other way round: this process grants, another process checks.
    t.grant(&alice, &["blog.view_post"]).await;
    let out = t.cli(&["check", "alice", "blog.view_post"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::helpers::stdout(&out)
    );
    let out = t.cli(&["group", "remove-user", "Writers", "alice"]);
    assert!(out.status.success());
    let out = t.cli(&["user", "deactivate", "alice"]);
    assert!(out.status.success());
    assert!(!t.has_perm(&alice, "blog.view_post").await);
}

async fn a_change_to_one_user_by_another_process_is_seen_and_spares_the_rest_of_the_cache(
    t: TestLadder,
) {
    let alice = t.user("alice").await;
    let bob = t.user("bob").await;
    let writers = t.group("Writers", &["blog.add_post"]).await;
    t.join(&alice, &writers).await;
    t.join(&bob, &writers).await;
    t.grant(&alice, &["blog.view_post"]).await;
    // Warm this process's cache with both.
    assert!(t.has_perm(&alice, "blog.view_post").await);
    assert!(t.has_perm(&bob, "blog.add_post").await);
    assert_eq!(t.ladder.permissions.len(), 2);

    // Another process revokes alice's own permission, then takes her out of
    // the group: each is seen by this process's very next check.
    let out = t.cli(&["revoke", "--user", "alice", "blog.view_post"]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    assert!(!t.has_perm(&alice, "blog.view_post").await);
    assert!(t.has_perm(&alice, "blog.add_post").await);
    let out = t.cli(&["group", "remove-user", "Writers", "alice"]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    assert!(!t.has_perm(&alice, "blog.add_post").await);

    // Changes to alice alone left bob's entry in place.
    assert_eq!(t.ladder.permissions.len(), 2);
    assert!(t.has_perm(&bob, "blog.add_post").await);

    // A change to the group reaches every member: the whole cache goes.
    let out = t.cli(&["revoke", "--group", "Writers", "blog.add_post"]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    assert!(!t.has_perm(&bob, "blog.add_post").await);
    assert_eq!(t.ladder.permissions.len(), 1);
}

/// An editor who may change users and holds the blog permissions, but not publish.
async fn delegate(t: &TestLadder) -> ladder::accounts::User {
    let editor = t.user("editor").await;
    t.grant(
        &editor,
        &["auth.change_user", "blog.add_post", "blog.view_post"],
    )
    .await;
    editor
}

async fn a_change_user_holder_can_grant_what_they_hold(t: TestLadder) {
    let editor = delegate(&t).await;
    let alice = t.user("alice").await;
    let actor = Actor::user(editor, Source::Cli);
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let changed = grants::grant(
        &mut tx,
        &actor,
        Grantee::User(&alice),
        &names(&["blog.add_post"]),
        t.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(changed, names(&["blog.add_post"]));
    assert!(t.has_perm(&alice, "blog.add_post").await);
}

async fn a_change_user_holder_cannot_grant_a_permission_they_lack(t: TestLadder) {
    let editor = delegate(&t).await;
    let alice = t.user("alice").await;
    let before = t.fingerprint().await;
    let actor = Actor::user(editor, Source::Cli);
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = grants::grant(
        &mut tx,
        &actor,
        Grantee::User(&alice),
        &names(&["blog.add_post", "blog.publish_post"]),
        t.now(),
    )
    .await
    .unwrap_err();
    drop(tx);
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("blog.publish_post")),
        "{err}"
    );
    assert_eq!(t.fingerprint().await, before);
    assert!(!t.has_perm(&alice, "blog.add_post").await);
}

async fn a_change_user_holder_cannot_add_someone_to_a_group_holding_more_than_they_hold(
    t: TestLadder,
) {
    let editor = delegate(&t).await;
    let alice = t.user("alice").await;
    // The promotion track's approvers must hold what Senior Writers get.
    t.group("Editors", &["blog.add_post", "blog.publish_post"])
        .await;
    let seniors = t
        .group("Senior Writers", &["blog.add_post", "blog.publish_post"])
        .await;
    let writers = t.group("Writers", &["blog.add_post"]).await;
    let before = t.fingerprint().await;
    let actor = Actor::user(editor, Source::Cli);

    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = groups::add_member(&mut tx, &actor, &seniors, &alice, t.now())
        .await
        .unwrap_err();
    drop(tx);
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("blog.publish_post") && m.contains("Senior Writers")),
        "{err}"
    );
    assert_eq!(t.fingerprint().await, before);

    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    assert!(
        groups::add_member(&mut tx, &actor, &writers, &alice, t.now())
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
}

async fn only_the_superuser_may_grant_change_user_or_set_staff(t: TestLadder) {
    let editor = delegate(&t).await;
    let alice = t.user("alice").await;
    let group = t.group("Admins", &[]).await;
    let before = t.fingerprint().await;
    let actor = Actor::user(editor.clone(), Source::Cli);

    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = grants::grant(
        &mut tx,
        &actor,
        Grantee::User(&alice),
        &names(&["auth.change_user"]),
        t.now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("auth.change_user")),
        "{err}"
    );
    let err = users::set_staff(&mut tx, &actor, &alice, true, t.now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("is_staff")),
        "{err}"
    );
    let err = grants::grant(
        &mut tx,
        &actor,
        Grantee::Group(&group),
        &names(&["auth.change_user"]),
        t.now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)));
    drop(tx);
    assert_eq!(t.fingerprint().await, before);

    let admin = t.superuser("admin").await;
    let boss = Actor::user(admin, Source::Cli);
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    grants::grant(
        &mut tx,
        &boss,
        Grantee::User(&alice),
        &names(&["auth.change_user"]),
        t.now(),
    )
    .await
    .unwrap();
    users::set_staff(&mut tx, &boss, &alice, true, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(t.reload(&alice).await.is_staff);
}

async fn nobody_but_the_superuser_changes_their_own_permissions(t: TestLadder) {
    let editor = delegate(&t).await;
    let actor = Actor::user(editor.clone(), Source::Cli);
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = grants::grant(
        &mut tx,
        &actor,
        Grantee::User(&editor),
        &names(&["blog.view_post"]),
        t.now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("their own")),
        "{err}"
    );
    drop(tx);

    let admin = t.superuser("admin").await;
    let boss = Actor::user(admin.clone(), Source::Cli);
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    grants::grant(
        &mut tx,
        &boss,
        Grantee::User(&admin),
        &names(&["blog.view_post"]),
        t.now(),
    )
    .await
    .unwrap();
    // Nor may a delegate touch the superuser.
    let err = grants::revoke(
        &mut tx,
        &actor,
        Grantee::User(&admin),
        &names(&["blog.view_post"]),
        t.now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)));
}

async fn a_user_without_change_user_cannot_grant_anything(t: TestLadder) {
    let writer = t.user("writer").await;
    t.grant(&writer, &["blog.add_post"]).await;
    let alice = t.user("alice").await;
    let actor = Actor::user(writer, Source::Web);
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = grants::grant(
        &mut tx,
        &actor,
        Grantee::User(&alice),
        &names(&["blog.add_post"]),
        t.now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("auth.change_user")),
        "{err}"
    );
}

async fn the_database_refuses_a_second_superuser(t: TestLadder) {
    t.superuser("admin").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = users::create_superuser(
        &mut tx,
        &t.system(),
        ladder::accounts::Username::parse("root").unwrap(),
        ladder::accounts::Email::parse("root@example.com").unwrap(),
        ladder::accounts::NewPassword::parse("root-password", "root")
            .unwrap()
            .hash()
            .await
            .unwrap(),
        t.now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    drop(tx);
    // Even a raw write cannot make a second one.
    let bob = t.user("bob").await;
    let raw = sqlx::query("update users set is_superuser = $1 where user_id = $2")
        .bind(true)
        .bind(bob.user_id)
        .execute(t.ladder.db.pool())
        .await;
    let err = raw.expect_err("a second superuser");
    assert!(
        matches!(&err, sqlx::Error::Database(db) if db.is_unique_violation()),
        "the database refuses it as a unique violation: {err:?}"
    );
}

async fn transfer_superuser_moves_the_flag_in_one_transaction(t: TestLadder) {
    let admin = t.superuser("admin").await;
    let bob = t.user("bob").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    users::transfer_superuser(
        &mut tx,
        &Actor::user(admin.clone(), Source::Cli),
        &bob,
        t.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(!t.reload(&admin).await.is_superuser);
    let bob = t.reload(&bob).await;
    assert!(bob.is_superuser && bob.is_staff);
    assert!(t.has_perm(&bob, "anything.at_all").await);
    assert!(!t.has_perm(&admin, "anything.at_all").await);
}

async fn every_change_writes_an_audit_event_and_a_rolled_back_change_writes_none(t: TestLadder) {
    let admin = t.superuser("admin").await;
    let alice = t.user("alice").await;
    let actor = Actor::user(admin, Source::Api);
    let events_before = t.count("audit_events").await;

    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    grants::grant(
        &mut tx,
        &actor,
        Grantee::User(&alice),
        &names(&["blog.add_post"]),
        t.now(),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(t.count("audit_events").await, events_before);
    assert!(!t.has_perm(&alice, "blog.add_post").await);

    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    grants::grant(
        &mut tx,
        &actor,
        Grantee::User(&alice),
        &names(&["blog.add_post"]),
        t.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let events = audit::list(
        &mut conn,
        &AuditFilter {
            user_id: Some(alice.user_id),
            limit: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e = &events[0];
    assert_eq!(e.action, "permission.grant");
    assert_eq!(e.actor_name, "admin");
    assert_eq!(e.source, "api");
    assert_eq!(e.target_name, "alice");
    assert!(
        e.before_state
            .as_deref()
            .unwrap()
            .contains("\"held\":false")
    );
    assert!(e.after_state.as_deref().unwrap().contains("blog.add_post"));
}

async fn the_audit_log_is_append_only(t: TestLadder) {
    t.user("alice").await;
    let update = sqlx::query("update audit_events set actor_name = 'mallory'")
        .execute(t.ladder.db.pool())
        .await;
    assert!(
        matches!(&update, Err(sqlx::Error::Database(db)) if db.message().contains("append-only")),
        "{update:?}"
    );
    let delete = sqlx::query("delete from audit_events")
        .execute(t.ladder.db.pool())
        .await;
    assert!(
        matches!(&delete, Err(sqlx::Error::Database(db)) if db.message().contains("append-only")),
        "{delete:?}"
    );
}

async fn migrate_is_idempotent_and_picks_up_new_permissions_and_reports_removed_ones(
    t: TestLadder,
) {
    let again = t.ladder.migrate().await.unwrap();
    assert!(again.created.is_empty());
    assert!(again.orphaned.is_empty());

    let wiki = ResourceSettings {
        app: "wiki".into(),
        model: "page".into(),
        permissions: vec![("lock_page".into(), "Can lock page".into())],
    };
    let with_wiki = t.reopen(|s| s.resources.push(wiki.clone())).await;
    let report = with_wiki.migrate().await.unwrap();
    assert!(report.created.is_empty(), "opening already synced");
    let mut conn = with_wiki.db.acquire().await.unwrap();
    let all: Vec<String> = catalog::all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    for p in [
        "wiki.add_page",
        "wiki.change_page",
        "wiki.delete_page",
        "wiki.view_page",
        "wiki.lock_page",
    ] {
        assert!(all.contains(&p.to_string()), "{p} missing");
    }
    drop(conn);

    // Removed from config: reported, never deleted.
    let report = t.ladder.migrate().await.unwrap();
    assert_eq!(report.orphaned.len(), 5);
    assert_eq!(t.count("permissions").await, 30 + 5);
}

async fn granting_an_unknown_permission_names_it_and_changes_nothing(t: TestLadder) {
    let alice = t.user("alice").await;
    let before = t.fingerprint().await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = grants::grant(
        &mut tx,
        &t.system(),
        Grantee::User(&alice),
        &names(&["blog.add_post", "blog.teleport"]),
        t.now(),
    )
    .await
    .unwrap_err();
    drop(tx);
    assert!(
        matches!(&err, Error::NotFound(m) if m.contains("blog.teleport")),
        "{err}"
    );
    assert_eq!(t.fingerprint().await, before);
}

async fn usernames_are_unique_regardless_of_case(t: TestLadder) {
    t.user("alice").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = users::create(
        &mut tx,
        &t.system(),
        users::NewUser {
            username: ladder::accounts::Username::parse("ALICE").unwrap(),
            email: ladder::accounts::Email::parse("other@example.com").unwrap(),
            display_name: String::new(),
            password: None,
            is_staff: false,
            is_service: false,
        },
        t.now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
}
