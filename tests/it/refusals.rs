//! "A refused change changes nothing": every row of every table (not only
//! row counts; see `TestLadder::fingerprint`) is the same after a refusal,
//! through the library (with the caller's transaction committed anyway, so a
//! write made before the refusal would show), the CLI and HTTP.

use ladder::{
    Error,
    accounts::{Email, GroupName, NewPassword, User, Username, groups, users},
    actor::{Actor, Source},
    permissions::grants::{self, Grantee},
    promotions::group_changes,
};

use crate::helpers::{TestLadder, assert_unchanged, names, stderr};

on_both_backends!(
    a_refused_library_change_writes_nothing_even_when_the_caller_commits,
    a_refused_cli_change_writes_nothing_and_exits_2_naming_why,
    a_refused_admin_form_writes_nothing_and_says_why,
);

/// A non-staff delegate: may change users, holds blog.add_post and blog.view_post only.
struct Cast {
    admin: User,
    editor: User,
    alice: User,
}

async fn cast(t: &TestLadder) -> Cast {
    let admin = t.superuser("admin").await;
    let editor = t.user("editor").await;
    t.grant(
        &editor,
        &[
            "auth.change_user",
            "auth.view_user",
            "blog.add_post",
            "blog.view_post",
        ],
    )
    .await;
    let alice = t.user("alice").await;
    t.group("Publishers", &["blog.add_post", "blog.publish_post"])
        .await;
    Cast {
        admin: t.reload(&admin).await,
        editor: t.reload(&editor).await,
        alice: t.reload(&alice).await,
    }
}

#[track_caller]
fn assert_refused(result: ladder::Result<impl std::fmt::Debug>, forbidden: bool, needle: &str) {
    let err = result.expect_err("refused");
    let kind_ok = match &err {
        Error::Forbidden(m) | Error::Conflict(m) => {
            matches!(err, Error::Forbidden(_)) == forbidden && m.contains(needle)
        }
        _ => false,
    };
    assert!(
        kind_ok,
        "expected {} naming {needle:?}, got {err:?}",
        if forbidden { "Forbidden" } else { "Conflict" }
    );
}

async fn a_refused_library_change_writes_nothing_even_when_the_caller_commits(t: TestLadder) {
    let c = cast(&t).await;
    let seniors = {
        let mut conn = t.ladder.db.acquire().await.unwrap();
        groups::get_by_name(&mut conn, "Publishers").await.unwrap()
    };
    let editor = Actor::user(c.editor.clone(), Source::Cli);
    let admin = Actor::user(c.admin.clone(), Source::Cli);
    let now = t.now();
    for case in 0..12 {
        let before = t.fingerprint().await;
        let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
        let what = match case {
            0 => {
                let r = grants::grant(
                    &mut tx,
                    &editor,
                    Grantee::User(&c.alice),
                    &names(&["blog.add_post", "blog.publish_post"]),
                    now,
                )
                .await;
                assert_refused(r, true, "blog.publish_post");
                "a grant of a permission the delegate lacks"
            }
            1 => {
                let r = groups::add_member(&mut tx, &editor, &seniors, &c.alice, now).await;
                assert_refused(r, true, "blog.publish_post");
                "adding to a group that holds more"
            }
            2 => {
                let r = users::set_staff(&mut tx, &editor, &c.alice, true, now).await;
                assert_refused(r, true, "is_staff");
                "a delegate setting is_staff"
            }
            3 => {
                let r = users::set_active(&mut tx, &editor, &c.admin, false, now).await;
                assert_refused(r, true, "superuser");
                "a delegate deactivating the superuser"
            }
            4 => {
                let r = users::set_active(&mut tx, &admin, &c.admin, false, now).await;
                assert_refused(r, false, "cannot be deactivated");
                "the superuser deactivating themselves"
            }
            5 => {
                let pw = NewPassword::parse("a-brand-new-password", "admin")
                    .unwrap()
                    .hash_now()
                    .unwrap();
                let r = users::set_password(&mut tx, &editor, &c.admin, pw, now).await;
                assert_refused(r, true, "superuser");
                "a delegate setting the superuser's password"
            }
            6 => {
                let pw = NewPassword::parse("a-brand-new-password", "editor")
                    .unwrap()
                    .hash_now()
                    .unwrap();
                let r = users::set_password(&mut tx, &editor, &c.editor, pw, now).await;
                assert_refused(r, true, "their own");
                "a delegate setting their own password through the admin path"
            }
            7 => {
                let name = GroupName::parse("Renamed").unwrap();
                let r = group_changes::rename_group(&mut tx, &editor, &seniors, &name, now).await;
                assert_refused(r, true, "auth.change_group");
                "a rename without auth.change_group"
            }
            8 => {
                let r = group_changes::delete_group(&mut tx, &editor, &seniors, now).await;
                assert_refused(r, true, "auth.delete_group");
                "a delete without auth.delete_group"
            }
            9 => {
                let new = users::NewUser {
                    username: Username::parse("carol").unwrap(),
                    email: Email::parse("carol@example.com").unwrap(),
                    display_name: String::new(),
                    password: None,
                    is_staff: true,
                    is_service: false,
                };
                let r = users::create(&mut tx, &editor, new, now).await;
                assert_refused(r, true, "staff");
                "a delegate creating a staff user"
            }
            10 => {
                let r = grants::revoke(
                    &mut tx,
                    &editor,
                    Grantee::Group(&seniors),
                    &names(&["blog.publish_post"]),
                    now,
                )
                .await;
                assert_refused(r, true, "auth.change_group");
                "a revoke from a group without auth.change_group"
            }
            _ => {
                let r = users::transfer_superuser(&mut tx, &editor, &c.alice, now).await;
                assert_refused(r, true, "only the superuser");
                "a non-superuser handing the superuser role on"
            }
        };
        // A careless caller commits anyway: the refusal itself must have written nothing.
        tx.commit().await.unwrap();
        assert_unchanged(&before, &t.fingerprint().await, what);
    }
}

async fn a_refused_cli_change_writes_nothing_and_exits_2_naming_why(t: TestLadder) {
    cast(&t).await;
    let bob = t.user("bob").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    users::set_active(&mut tx, &t.system(), &bob, false, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for (args, stdin, needle) in [
        (
            vec!["user", "deactivate", "admin"],
            None,
            "cannot be deactivated",
        ),
        (
            vec!["user", "deactivate", "alice", "--as", "alice"],
            None,
            "only the superuser may change their own",
        ),
        (
            vec!["user", "set-password", "admin", "--as", "editor"],
            Some("a-brand-new-password\n"),
            "only the superuser may change the superuser",
        ),
        (
            vec!["user", "activate", "bob", "--as", "alice"],
            None,
            "auth.change_user",
        ),
        (
            vec!["group", "add", "Critics", "--as", "editor"],
            None,
            "auth.add_group",
        ),
        (
            vec![
                "revoke",
                "--group",
                "Publishers",
                "blog.add_post",
                "--as",
                "editor",
            ],
            None,
            "auth.change_group",
        ),
        (vec!["transfer-superuser", "--to", "bob"], None, "inactive"),
        (
            vec!["transfer-superuser", "--to", "admin"],
            None,
            "already the superuser",
        ),
    ] {
        let before = t.fingerprint().await;
        let out = t.cli_with(&args, stdin, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{args:?} should name {needle:?}: {}",
            stderr(&out)
        );
        assert_unchanged(&before, &t.fingerprint().await, &format!("{args:?}"));
    }
}

async fn a_refused_admin_form_writes_nothing_and_says_why(t: TestLadder) {
    let c = cast(&t).await;
    // Staff, so the admin routes let the delegate in; the domain rules refuse.
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    users::set_staff(&mut tx, &t.system(), &c.editor, true, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let app = t.serve().await;
    let editor = app.signed_in("editor").await;
    let token = editor.csrf("/admin/users/alice").await;
    for (path, fields, needle) in [
        (
            "/admin/users/alice/permissions",
            vec![("permission", "blog.publish_post"), ("action", "grant")],
            "blog.publish_post",
        ),
        (
            "/admin/users/alice/staff",
            vec![("value", "true")],
            "is_staff",
        ),
        (
            "/admin/users/admin/active",
            vec![("value", "false")],
            "superuser",
        ),
        (
            "/admin/users/admin/password",
            vec![("password", "a-brand-new-password")],
            "superuser",
        ),
        (
            "/admin/users/editor/permissions",
            vec![("permission", "blog.add_post"), ("action", "revoke")],
            "their own",
        ),
    ] {
        let before = t.fingerprint().await;
        let response = editor.post_form(path, &token, &fields).await;
        assert_eq!(response.status(), 303, "{path}");
        let target = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_unchanged(&before, &t.fingerprint().await, path);
        // The refusal is told on the page it leads to, naming why.
        let page = editor.get(&target).await.text().await.unwrap();
        let page = page.replace("&#x27;", "'").replace("&quot;", "\"");
        assert!(
            page.contains("Not done") && page.contains(needle),
            "{path}: the page after it should say why ({needle:?})"
        );
    }
}
