//! The `ladder` binary: exit codes, one-line errors, JSON output, on both backends.

use crate::helpers::{TestLadder, stderr, stdout};

on_both_backends!(
    createsuperuser_takes_the_password_from_stdin_and_refuses_a_second_one,
    createsuperuser_refuses_weak_passwords,
    bad_input_exits_2_with_one_line_and_changes_nothing,
    check_exits_0_when_all_are_allowed_and_1_when_any_is_denied,
    perms_lists_a_permission_held_twice_once_with_both_sources,
    grant_as_a_delegate_applies_the_delegation_rules,
    user_and_group_commands_round_trip_with_json,
    demo_is_idempotent_and_uses_ladder_demo_password,
    audit_lists_changes_newest_first,
    a_bad_setting_stops_with_one_line_naming_the_key,
);

fn one_error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {err}");
    lines[0].to_string()
}

async fn createsuperuser_takes_the_password_from_stdin_and_refuses_a_second_one(t: TestLadder) {
    let out = t.cli_with(
        &[
            "createsuperuser",
            "--username",
            "admin",
            "--email",
            "admin@Example.COM",
            "--no-input",
            "--password-stdin",
        ],
        Some("a-long-password\n"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.cli(&["user", "show", "admin", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["is_superuser"], true);
    assert_eq!(v["email"], "admin@example.com");

    let before = t.fingerprint().await;
    let out = t.cli_with(
        &[
            "createsuperuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
            "--no-input",
        ],
        None,
        &[("LADDER_SUPERUSER_PASSWORD", "another-long-password")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out).contains("already exists"));
    assert_eq!(t.fingerprint().await, before);
}

async fn createsuperuser_refuses_weak_passwords(t: TestLadder) {
    for weak in ["short", "12345678901234", "adminadmin1"] {
        let out = t.cli_with(
            &[
                "createsuperuser",
                "--username",
                "adminadmin1",
                "--email",
                "a@example.com",
                "--no-input",
            ],
            None,
            &[("LADDER_SUPERUSER_PASSWORD", weak)],
        );
        assert_eq!(out.status.code(), Some(2), "{weak}");
        assert!(one_error_line(&out).contains("password"), "{weak}");
    }
    let out = t.cli(&[
        "createsuperuser",
        "--username",
        "admin",
        "--email",
        "a@example.com",
        "--no-input",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(t.count("users").await, 0);
}

async fn bad_input_exits_2_with_one_line_and_changes_nothing(t: TestLadder) {
    t.superuser("admin").await;
    t.user("alice").await;
    t.group("Writers", &["blog.add_post"]).await;
    let before = t.fingerprint().await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["user", "add", "bad name", "--email", "x@example.com"],
            "username",
        ),
        (
            &["user", "add", "<script>", "--email", "x@example.com"],
            "username",
        ),
        (
            &["user", "add", "carol", "--email", "not-an-email"],
            "email",
        ),
        (
            &["user", "add", "ALICE", "--email", "a2@example.com"],
            "taken",
        ),
        (
            &["grant", "--user", "alice", "blog.teleport"],
            "blog.teleport",
        ),
        (&["grant", "--user", "alice", "nodot"], "permission"),
        (&["grant", "--user", "alice", "a.b.c"], "permission"),
        (&["grant", "--user", "nobody", "blog.add_post"], "nobody"),
        (&["grant", "--group", "Nope", "blog.add_post"], "Nope"),
        (
            &[
                "grant",
                "--user",
                "alice",
                "--group",
                "Writers",
                "blog.add_post",
            ],
            "cannot be used",
        ),
        (&["revoke", "--user", "alice"], "required"),
        (&["group", "add", "Writers"], "already exists"),
        (&["group", "add-user", "Nope", "alice"], "Nope"),
        (&["group", "add-user", "Writers", "nobody"], "nobody"),
        (&["group", "show", "Nope"], "Nope"),
        (&["user", "list", "--group", "Nope"], "Nope"),
        (&["user", "show", "nobody"], "nobody"),
        (&["check", "alice", "nodot"], "permission"),
        (&["user", "deactivate", "admin"], "superuser"),
        (&["audit", "--limit", "0"], "0"),
        (&["frobnicate"], "frobnicate"),
    ];
    for (args, needle) in cases {
        let out = t.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let line = one_error_line(&out);
        assert!(line.contains(needle), "{args:?}: {line}");
        assert_eq!(t.fingerprint().await, before, "{args:?} changed something");
    }
}

async fn check_exits_0_when_all_are_allowed_and_1_when_any_is_denied(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post"]).await;
    let out = t.cli(&["check", "alice", "blog.add_post"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("allowed  blog.add_post  via direct"));

    let out = t.cli(&[
        "check",
        "alice",
        "blog.add_post",
        "blog.publish_post",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["results"][0]["allowed"], true);
    assert_eq!(v["results"][0]["sources"][0], "direct");
    assert_eq!(v["results"][1]["reason"], "not granted");

    let out = t.cli(&["user", "deactivate", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.cli(&["check", "alice", "blog.add_post"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("inactive"));
}

async fn perms_lists_a_permission_held_twice_once_with_both_sources(t: TestLadder) {
    let alice = t.user("alice").await;
    // The promotion track's approvers must hold what Senior Writers get.
    t.group("Editors", &["blog.add_post"]).await;
    let writers = t.group("Senior Writers", &["blog.add_post"]).await;
    t.join(&alice, &writers).await;
    t.grant(&alice, &["blog.add_post"]).await;
    let out = t.cli(&["perms", "alice", "--explain"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        "blog.add_post  via direct, group \"Senior Writers\""
    );
    let out = t.cli(&["perms", "alice", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["permissions"].as_array().unwrap().len(), 1);
}

async fn grant_as_a_delegate_applies_the_delegation_rules(t: TestLadder) {
    t.superuser("admin").await;
    let editor = t.user("editor").await;
    t.grant(&editor, &["auth.change_user", "blog.add_post"])
        .await;
    t.user("alice").await;
    t.group("Editors", &["blog.publish_post"]).await;
    t.group("Senior Writers", &["blog.publish_post"]).await;
    let before = t.fingerprint().await;
    for (args, needle) in [
        (
            vec![
                "grant",
                "--user",
                "alice",
                "blog.publish_post",
                "--as",
                "editor",
            ],
            "blog.publish_post",
        ),
        (
            vec![
                "grant",
                "--user",
                "alice",
                "auth.change_user",
                "--as",
                "editor",
            ],
            "only the superuser",
        ),
        (
            vec![
                "group",
                "add-user",
                "Senior Writers",
                "alice",
                "--as",
                "editor",
            ],
            "blog.publish_post",
        ),
        (
            vec![
                "user",
                "add",
                "carol",
                "--email",
                "c@example.com",
                "--staff",
                "--as",
                "editor",
            ],
            "staff",
        ),
        (
            vec![
                "grant",
                "--user",
                "editor",
                "blog.add_post",
                "--as",
                "alice",
            ],
            "auth.change_user",
        ),
        (
            vec![
                "grant",
                "--user",
                "editor",
                "blog.view_post",
                "--as",
                "editor",
            ],
            "their own",
        ),
    ] {
        let out = t.cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            one_error_line(&out).contains(needle),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(t.fingerprint().await, before);
    let out = t.cli(&[
        "grant",
        "--user",
        "alice",
        "blog.add_post",
        "--as",
        "editor",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.cli(&["audit", "--user", "alice", "--limit", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["actor"], "editor");
    assert_eq!(v[0]["source"], "cli");
}

async fn user_and_group_commands_round_trip_with_json(t: TestLadder) {
    t.superuser("admin").await;
    let out = t.cli_with(
        &[
            "user",
            "add",
            "carol",
            "--email",
            "Carol@Example.com",
            "--display-name",
            "Carol C",
            "--password-stdin",
        ],
        Some("carol-secret-pw\n"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.cli(&["group", "add", "Reviewers"]).status.success());
    assert!(
        t.cli(&[
            "grant",
            "--group",
            "Reviewers",
            "blog.add_post",
            "blog.view_post"
        ])
        .status
        .success()
    );
    assert!(
        t.cli(&["group", "add-user", "Reviewers", "carol"])
            .status
            .success()
    );

    let v: serde_json::Value =
        serde_json::from_slice(&t.cli(&["group", "show", "Reviewers", "--json"]).stdout).unwrap();
    assert_eq!(v["members"], serde_json::json!(["carol"]));
    assert_eq!(
        v["permissions"],
        serde_json::json!(["blog.add_post", "blog.view_post"])
    );

    let v: serde_json::Value = serde_json::from_slice(
        &t.cli(&["user", "list", "--search", "CAROL", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["email"], "Carol@example.com");
    assert_eq!(v[0]["display_name"], "Carol C");
    assert_eq!(v[0]["has_password"], true);

    let v: serde_json::Value = serde_json::from_slice(
        &t.cli(&["user", "list", "--group", "Reviewers", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(v[0]["username"], "carol");
    let v: serde_json::Value =
        serde_json::from_slice(&t.cli(&["group", "list", "--json"]).stdout).unwrap();
    let reviewers = v
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Reviewers")
        .unwrap();
    assert_eq!(reviewers["members"], 1);
    assert_eq!(reviewers["permissions"], 2);

    assert!(
        t.cli(&["group", "remove-user", "Reviewers", "carol"])
            .status
            .success()
    );
    assert!(t.cli(&["user", "deactivate", "carol"]).status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&t.cli(&["user", "show", "carol", "--json"]).stdout).unwrap();
    assert_eq!(v["is_active"], false);
    assert_eq!(v["groups"], serde_json::json!([]));
    assert!(t.cli(&["user", "activate", "carol"]).status.success());
}

async fn demo_is_idempotent_and_uses_ladder_demo_password(t: TestLadder) {
    let env = [("LADDER_DEMO_PASSWORD", "demo-password-1")];
    let out = t.cli_with(&["demo"], None, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = t.fingerprint().await;
    let out = t.cli_with(&["demo"], None, &env);
    assert!(out.status.success());
    let second = t.fingerprint().await;
    // Re-running only re-sets the passwords (audited), nothing else.
    let same = |f: &crate::helpers::Fingerprint| {
        f.without(&["audit_events", "permission_epoch"])
            .masking("password_hash")
    };
    crate::helpers::assert_unchanged(&same(&first), &same(&second), "a second demo");

    let mut conn = t.ladder.db.acquire().await.unwrap();
    let alice = ladder::accounts::users::get_by_username(&mut conn, "alice")
        .await
        .unwrap();
    assert!(ladder::accounts::password::verify(
        "demo-password-1",
        alice.password_hash.as_deref()
    ));
    drop(conn);
    let check = |args: &[&str]| t.cli(args).status.code();
    assert_eq!(
        check(&[
            "check",
            "alice",
            "blog.add_post",
            "blog.change_post",
            "blog.view_post"
        ]),
        Some(0)
    );
    assert_eq!(check(&["check", "alice", "blog.publish_post"]), Some(1));
    assert_eq!(
        check(&[
            "check",
            "erin",
            "blog.feature_post",
            "blog.publish_post",
            "auth.view_user"
        ]),
        Some(0)
    );
    assert_eq!(check(&["check", "admin", "made.up"]), Some(0));

    // Without LADDER_DEMO_PASSWORD on a fresh database, passwords are generated and printed once.
    let fresh = TestLadder::start(t.kind).await.unwrap();
    let out = fresh.cli(&["demo"]);
    assert!(stdout(&out).contains("shown once"));
    let out = fresh.cli(&["demo"]);
    assert!(!stdout(&out).contains("shown once"));
}

async fn audit_lists_changes_newest_first(t: TestLadder) {
    t.superuser("admin").await;
    t.user("alice").await;
    assert!(
        t.cli(&["grant", "--user", "alice", "blog.add_post"])
            .status
            .success()
    );
    let v: serde_json::Value =
        serde_json::from_slice(&t.cli(&["audit", "--json", "--limit", "2"]).stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["action"], "permission.grant");
    assert_eq!(v[1]["action"], "user.create");
    for field in [
        "id",
        "time",
        "actor",
        "action",
        "target_type",
        "target",
        "before",
        "after",
        "source",
    ] {
        assert!(v[0].get(field).is_some(), "missing {field}");
    }
}

async fn a_bad_setting_stops_with_one_line_naming_the_key(t: TestLadder) {
    let out = t.cli_with(
        &["user", "list"],
        None,
        &[("LADDER_DATABASE__MAX_CONNECTIONS", "lots")],
    );
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out);
    assert!(line.to_lowercase().contains("max_connections"), "{line}");
    let out = t.cli_with(
        &["user", "list"],
        None,
        &[("LADDER_DATABASE__URL", "mysql://x")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out).contains("database.url"));
}
