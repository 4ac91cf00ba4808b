//! Promotion tracks are bound to their groups by id (security review, issue 9,
//! items 3, 4 and 11): renaming groups cannot move a track, a group change
//! that breaks a track's rule is refused, a broken track pauses approvals
//! instead of stopping Ladder, and the request page offers only the decisions
//! that would go through.

use ladder::{
    Error, Ladder,
    accounts::{Email, Group, GroupName, User, Username, groups, users},
    actor::{Actor, Source},
    permissions::grants::{self, Grantee},
    promotions::{self, group_changes, policy},
    seed::demo,
};

use crate::helpers::{TestLadder, csrf_from, names, stderr, stdout, workflow};

const PW: &str = "correct-horse-battery";

on_both_backends!(
    only_the_superuser_may_rename_or_delete_a_group_a_track_is_bound_to,
    renaming_groups_cannot_hand_a_track_to_another_group,
    a_start_creates_no_group_and_only_migrate_does_and_says_so,
    a_group_change_that_breaks_a_tracks_rule_is_refused_naming_the_track,
    a_broken_track_pauses_approvals_until_the_groups_are_fixed_without_a_restart,
    the_request_page_offers_only_the_decisions_the_viewer_may_make,
);

async fn user(ladder: &Ladder, name: &str) -> User {
    let mut conn = ladder.db.acquire().await.unwrap();
    users::get_by_username(&mut conn, name).await.unwrap()
}

async fn group(ladder: &Ladder, name: &str) -> Group {
    let mut conn = ladder.db.acquire().await.unwrap();
    groups::get_by_name(&mut conn, name).await.unwrap()
}

/// A staff member who may rename, delete and edit groups, but is not the superuser.
async fn group_admin(t: &TestLadder, name: &str) -> User {
    let password = ladder::accounts::NewPassword::parse(PW, name)
        .unwrap()
        .hash()
        .await
        .unwrap();
    let new = users::NewUser {
        username: Username::parse(name).unwrap(),
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        display_name: String::new(),
        password: Some(password),
        is_staff: true,
        is_service: false,
    };
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let user = users::create(&mut tx, &t.system(), new, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    t.grant(
        &user,
        &[
            "auth.view_group",
            "auth.change_group",
            "auth.delete_group",
            "auth.add_group",
        ],
    )
    .await;
    user
}

async fn rename(t: &TestLadder, actor: &Actor, from: &str, to: &str) -> ladder::Result<()> {
    let g = group(&t.ladder, from).await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    group_changes::rename_group(&mut tx, actor, &g, &GroupName::parse(to).unwrap(), t.now())
        .await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn submit(ladder: &Ladder, who: &str) -> promotions::Request {
    let requester = user(ladder, who).await;
    let actor = Actor::user(requester.clone(), Source::Web);
    workflow::submit(ladder, &actor, &requester, "senior-writer", "Please")
        .await
        .unwrap()
}

async fn approve(ladder: &Ladder, who: &str, id: i64) -> ladder::Result<workflow::Approval> {
    let approver = user(ladder, who).await;
    let actor = Actor::user(approver.clone(), Source::Web);
    workflow::approve(ladder, &actor, &approver, id, "ok").await
}

async fn reject(ladder: &Ladder, who: &str, id: i64) -> ladder::Result<()> {
    let approver = user(ladder, who).await;
    let actor = Actor::user(approver.clone(), Source::Web);
    workflow::reject(ladder, &actor, &approver, id, "no").await
}

/// Gives a group a permission behind Ladder's back, as a change made before
/// this rule existed (or by hand in the database) would have.
async fn grant_by_hand(ladder: &Ladder, group: &str, perm: &str) {
    let (app, codename) = perm.split_once('.').unwrap();
    sqlx::query(
        "insert into group_permissions (group_id, permission_id, created_at) \
         select g.group_id, p.permission_id, 0 from groups g, permissions p \
         where g.name = $1 and p.app_label = $2 and p.codename = $3",
    )
    .bind(group)
    .bind(app)
    .bind(codename)
    .execute(ladder.db.pool())
    .await
    .unwrap();
}

async fn only_the_superuser_may_rename_or_delete_a_group_a_track_is_bound_to(t: TestLadder) {
    demo::seed(&t.ladder, Some(PW)).await.unwrap();
    let mallory = group_admin(&t, "mallory").await;
    // She holds every permission of the groups, so only the track rule stops her.
    t.join(&mallory, &group(&t.ladder, "Editors").await).await;
    let as_mallory = Actor::user(mallory.clone(), Source::Web);
    // Library: refused, naming the track, and nothing changes.
    for name in ["Editors", "Writers", "Senior Writers"] {
        let err = rename(&t, &as_mallory, name, "Elsewhere")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Forbidden(m) if m.contains("senior-writer") && m.contains("only the superuser")),
            "{err}"
        );
        let g = group(&t.ladder, name).await;
        let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
        let err = group_changes::delete_group(&mut tx, &as_mallory, &g, t.now())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Forbidden(m) if m.contains("senior-writer")),
            "{err}"
        );
    }
    // A group no track names is renamed as before.
    t.group("Interns", &[]).await;
    rename(&t, &as_mallory, "Interns", "Trainees")
        .await
        .unwrap();

    // Console: the same refusal, flashed on the group's page.
    let app = t.serve().await;
    let client = app.client();
    assert_eq!(client.login("mallory", PW).await.status(), 303);
    let editors = group(&t.ladder, "Editors").await;
    let page = format!("/admin/groups/{}", editors.group_id);
    let token = client.csrf(&page).await;
    let r = client
        .post_form(
            &format!("{page}/rename"),
            &token,
            &[("name", "Editors (old)")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let html = client.get(&page).await.text().await.unwrap();
    assert!(
        html.contains("promotion track senior-writer"),
        "the refusal names the track"
    );
    assert_eq!(group(&t.ladder, "Editors").await.group_id, editors.group_id);

    // The superuser may.
    let admin = user(&t.ladder, "admin").await;
    rename(
        &t,
        &Actor::user(admin, Source::Web),
        "Editors",
        "Editors (old)",
    )
    .await
    .unwrap();
}

async fn renaming_groups_cannot_hand_a_track_to_another_group(t: TestLadder) {
    demo::seed(&t.ladder, Some(PW)).await.unwrap();
    let mallory = group_admin(&t, "mallory").await;
    let crew = t.group("Crew", &[]).await;
    t.join(&mallory, &crew).await;
    let request = submit(&t.ladder, "alice").await;

    // The attack: rename Editors away, and the crew to "Editors".
    let as_mallory = Actor::user(mallory.clone(), Source::Web);
    assert!(
        rename(&t, &as_mallory, "Editors", "Old Editors")
            .await
            .is_err()
    );

    // Even the superuser doing both does not move the running track.
    let system = Actor::system(Source::Cli);
    rename(&t, &system, "Editors", "Old Editors").await.unwrap();
    rename(&t, &system, "Crew", "Editors").await.unwrap();
    let track = t.ladder.track("senior-writer").unwrap();
    let mut conn = t.ladder.db.acquire().await.unwrap();
    assert!(
        !policy::is_approver(&mut conn, track, &mallory)
            .await
            .unwrap()
    );
    drop(conn);
    let err = reject(&t.ladder, "mallory", request.request_id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    // erin, in the group the track is bound to (now "Old Editors"), decides.
    assert_eq!(
        approve(&t.ladder, "erin", request.request_id)
            .await
            .unwrap(),
        workflow::Approval::Approved
    );

    // At the next start the config's "Editors" is another group: the track is
    // refused, with a warning naming it, until the config says which group.
    let next = t.reopen(|_| {}).await;
    let problems = next.check_tracks().await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("senior-writer") && problems[0].contains("Old Editors"),
        "{problems:?}"
    );
    let mut conn = next.db.acquire().await.unwrap();
    let track = next.track("senior-writer").unwrap();
    assert!(
        !policy::is_approver(&mut conn, track, &mallory)
            .await
            .unwrap()
    );
    let bob = user(&next, "bob").await;
    let why = policy::ineligibility(&mut conn, track, &bob)
        .await
        .unwrap()
        .unwrap();
    assert!(why.contains("senior-writer"), "{why}");
}

async fn a_start_creates_no_group_and_only_migrate_does_and_says_so(t: TestLadder) {
    demo::seed(&t.ladder, Some(PW)).await.unwrap();
    let system = Actor::system(Source::Cli);
    rename(&t, &system, "Editors", "Reviewers").await.unwrap();

    // Neither a start nor a CLI command re-creates "Editors".
    let next = t.reopen(|_| {}).await;
    let out = t.cli(&["group", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut conn = next.db.acquire().await.unwrap();
    assert!(
        groups::find_by_name(&mut conn, "Editors")
            .await
            .unwrap()
            .is_none()
    );
    drop(conn);
    let problems = next.check_tracks().await.unwrap();
    assert!(
        problems.iter().any(|p| p.contains("senior-writer")
            && p.contains("\"Editors\" no longer exists")
            && p.contains("Reviewers")),
        "{problems:?}"
    );
    // Nor does migrate, for a group that was renamed: the config must follow it.
    let out = t.cli(&["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains("created group"), "{}", stdout(&out));
    assert!(stderr(&out).contains("senior-writer"), "{}", stderr(&out));

    // A deleted group is gone for the track too; migrate makes a new one and says so.
    let reviewers = group(&t.ladder, "Reviewers").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    group_changes::delete_group(&mut tx, &system, &reviewers, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let out = t.cli(&["group", "list"]);
    assert!(!stdout(&out).contains("Editors"), "{}", stdout(&out));
    let out = t.cli(&["migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("created group Editors for track senior-writer"),
        "{}",
        stdout(&out)
    );
}

async fn a_group_change_that_breaks_a_tracks_rule_is_refused_naming_the_track(t: TestLadder) {
    demo::seed(&t.ladder, Some(PW)).await.unwrap();
    let before = t.fingerprint().await;
    // Library: giving Senior Writers what Editors lack, or taking from Editors
    // what Senior Writers hold.
    let seniors = group(&t.ladder, "Senior Writers").await;
    let editors = group(&t.ladder, "Editors").await;
    for (grantee, perm, grant) in [
        (&seniors, "auth.view_group", true),
        (&editors, "blog.publish_post", false),
    ] {
        let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
        let perms = names(&[perm]);
        let outcome = if grant {
            grants::grant(
                &mut tx,
                &t.system(),
                Grantee::Group(grantee),
                &perms,
                t.now(),
            )
            .await
        } else {
            grants::revoke(
                &mut tx,
                &t.system(),
                Grantee::Group(grantee),
                &perms,
                t.now(),
            )
            .await
        };
        let err = outcome.unwrap_err();
        assert!(
            matches!(&err, Error::Conflict(m) if m.contains("track senior-writer") && m.contains(perm)),
            "{err}"
        );
    }
    // CLI: exit 2, one line naming the track.
    let out = t.cli(&["grant", "--group", "Senior Writers", "auth.view_group"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("senior-writer"), "{}", stderr(&out));
    assert_eq!(
        t.fingerprint().await,
        before,
        "a refused change changes nothing"
    );
    assert!(t.ladder.check_tracks().await.unwrap().is_empty());

    // Console: the permission checklist of Senior Writers.
    let app = t.serve().await;
    let admin = app.client();
    assert_eq!(admin.login("admin", PW).await.status(), 303);
    // Signing in records last_login; the refusal below must change nothing more.
    let before = t.fingerprint().await;
    let page = format!("/admin/groups/{}", seniors.group_id);
    let token = admin.csrf(&page).await;
    let form = [("shown", "auth.view_group"), ("perm", "auth.view_group")];
    admin
        .post_form(&format!("{page}/permissions"), &token, &form)
        .await;
    let html = admin.get(&page).await.text().await.unwrap();
    assert!(html.contains("track senior-writer"), "{html}");
    assert_eq!(t.fingerprint().await, before);

    // Giving the approvers the permission first makes the same grant fine.
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let perms = names(&["auth.view_group"]);
    grants::grant(
        &mut tx,
        &t.system(),
        Grantee::Group(&editors),
        &perms,
        t.now(),
    )
    .await
    .unwrap();
    grants::grant(
        &mut tx,
        &t.system(),
        Grantee::Group(&seniors),
        &perms,
        t.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn a_broken_track_pauses_approvals_until_the_groups_are_fixed_without_a_restart(
    t: TestLadder,
) {
    demo::seed(&t.ladder, Some(PW)).await.unwrap();
    let request = submit(&t.ladder, "alice").await;
    grant_by_hand(&t.ladder, "Senior Writers", "auth.view_group").await;

    // A start warns instead of refusing to start.
    let next = t.reopen(|_| {}).await;
    let problems = next.check_tracks().await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("senior-writer") && problems[0].contains("auth.view_group"),
        "{problems:?}"
    );
    // Approvals are refused with a 409 naming the track; nothing is granted.
    let err = approve(&next, "erin", request.request_id)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("senior-writer") && m.contains("paused")),
        "{err}"
    );
    let mut conn = next.db.acquire().await.unwrap();
    assert_eq!(
        promotions::get(&mut conn, request.request_id)
            .await
            .unwrap()
            .state,
        promotions::State::Pending
    );
    drop(conn);

    // Fixing the groups reopens the track at once, in the running process.
    let editors = group(&next, "Editors").await;
    let mut tx = crate::helpers::begin(&next.db).await.unwrap();
    grants::grant(
        &mut tx,
        &t.system(),
        Grantee::Group(&editors),
        &names(&["auth.view_group"]),
        t.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(next.check_tracks().await.unwrap().is_empty());
    assert_eq!(
        approve(&next, "erin", request.request_id).await.unwrap(),
        workflow::Approval::Approved
    );
}

async fn the_request_page_offers_only_the_decisions_the_viewer_may_make(t: TestLadder) {
    demo::seed(&t.ladder, Some(PW)).await.unwrap();
    let request = submit(&t.ladder, "alice").await;
    let app = t.serve().await;
    let page = format!("/promotions/{}", request.request_id);
    let approve_form = format!("action=\"/promotions/{}/approve\"", request.request_id);
    let reject_form = format!("action=\"/promotions/{}/reject\"", request.request_id);

    let erin = app.client();
    assert_eq!(erin.login("erin", PW).await.status(), 303);
    let html = erin.get(&page).await.text().await.unwrap();
    assert!(html.contains(&approve_form) && html.contains(&reject_form));

    // The requester is offered neither.
    let alice = app.client();
    assert_eq!(alice.login("alice", PW).await.status(), 303);
    let html = alice.get(&page).await.text().await.unwrap();
    assert!(!html.contains(&approve_form) && !html.contains(&reject_form));

    // A paused track: no Approve button, the reason instead; Reject stays.
    grant_by_hand(&t.ladder, "Senior Writers", "auth.view_group").await;
    let html = erin.get(&page).await.text().await.unwrap();
    assert!(
        !html.contains(&approve_form),
        "Approve offered on a paused track"
    );
    assert!(html.contains(&reject_form));
    assert!(html.contains("paused"), "the page says why");
    // And the button would indeed have failed.
    let token = csrf_from(&html).unwrap();
    let r = erin
        .post_form(&format!("{page}/approve"), &token, &[("comment", "")])
        .await;
    assert_eq!(r.status(), 303);
    let html = erin.get(&page).await.text().await.unwrap();
    assert!(html.contains("paused"));
    let mut conn = t.ladder.db.acquire().await.unwrap();
    assert_eq!(
        promotions::get(&mut conn, request.request_id)
            .await
            .unwrap()
            .state,
        promotions::State::Pending
    );
}
