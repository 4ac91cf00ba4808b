//! Decision-time checks: what held when a request was made is checked again
//! when it is decided, and a delegate cannot take away what they do not hold.

use ladder::{
    Error, Ladder,
    accounts::{Group, User, groups, promotion_grant, users},
    actor::{Actor, Source},
    config::{MailTransport, SmtpTls},
    permissions::grants::{self, Grantee},
    seed::demo,
};

use crate::{
    helpers::{TestLadder, assert_unchanged, names, state_of, workflow},
    mailbox::Mailbox,
};

on_both_backends!(
    an_approval_is_refused_when_the_requester_was_deactivated_after_asking,
    an_approval_is_refused_when_the_requester_joined_the_target_group_after_asking,
    a_delegate_cannot_revoke_a_permission_they_do_not_hold,
);

async fn story(t: &mut TestLadder, smtp: &Mailbox) {
    let port = smtp.port;
    t.ladder = t
        .reopen(|s| {
            s.mail.transport = MailTransport::Smtp;
            s.mail.smtp_host = "127.0.0.1".into();
            s.mail.smtp_port = port;
            s.mail.smtp_tls = SmtpTls::None;
        })
        .await;
    demo::seed(&t.ladder, Some("demo-password-1"))
        .await
        .unwrap();
}

async fn user(ladder: &Ladder, name: &str) -> User {
    let mut conn = ladder.db.acquire().await.unwrap();
    users::get_by_username(&mut conn, name).await.unwrap()
}

async fn group(ladder: &Ladder, name: &str) -> Group {
    let mut conn = ladder.db.acquire().await.unwrap();
    groups::get_by_name(&mut conn, name).await.unwrap()
}

/// alice asks; then `change` happens; erin's approval must be refused with
/// `needle`, leaving every row as it was, and so must the grant's own check.
async fn refused_after(t: &TestLadder, change: impl AsyncFnOnce(&TestLadder, &User), needle: &str) {
    let alice = user(&t.ladder, "alice").await;
    let actor = Actor::user(alice.clone(), Source::Web);
    let r = workflow::submit(&t.ladder, &actor, &alice, "senior-writer", "Please")
        .await
        .unwrap();
    change(t, &alice).await;
    let before = t.fingerprint().await;

    let erin = user(&t.ladder, "erin").await;
    let err = workflow::approve(
        &t.ladder,
        &Actor::user(erin.clone(), Source::Web),
        &erin,
        r.request_id,
        "ok",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains(needle)),
        "expected a conflict naming {needle:?}, got {err:?}"
    );
    assert_eq!(state_of(&t.ladder, r.request_id).await, "pending");
    assert_unchanged(&before, &t.fingerprint().await, "a refused approval");

    // The grant tests the same as it writes, for a change that lands
    // between the approver's reads and the write.
    let seniors = group(&t.ladder, "Senior Writers").await;
    let writers = group(&t.ladder, "Writers").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let granted = promotion_grant::grant_promotion(
        &mut tx,
        &Actor::user(erin, Source::Web),
        &seniors,
        writers.group_id,
        &t.reload(&alice).await,
        r.request_id,
        t.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(!granted, "the grant's own check refuses too");
    assert_unchanged(&before, &t.fingerprint().await, "a refused grant");
}

async fn an_approval_is_refused_when_the_requester_was_deactivated_after_asking(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, &smtp).await;
    refused_after(
        &t,
        async |t, alice| {
            let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
            users::set_active(&mut tx, &t.system(), alice, false, t.now())
                .await
                .unwrap();
            tx.commit().await.unwrap();
        },
        "alice is no longer active",
    )
    .await;
}

async fn an_approval_is_refused_when_the_requester_joined_the_target_group_after_asking(
    mut t: TestLadder,
) {
    let smtp = Mailbox::start();
    story(&mut t, &smtp).await;
    refused_after(
        &t,
        async |t, alice| {
            let seniors = group(&t.ladder, "Senior Writers").await;
            let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
            let added = groups::add_member(&mut tx, &t.system(), &seniors, alice, t.now())
                .await
                .unwrap();
            assert!(added);
            tx.commit().await.unwrap();
        },
        "alice is already in Senior Writers",
    )
    .await;
}

async fn a_delegate_cannot_revoke_a_permission_they_do_not_hold(t: TestLadder) {
    let editor = t.user("editor").await;
    t.grant(&editor, &["auth.change_user", "blog.add_post"])
        .await;
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post", "blog.publish_post"])
        .await;
    let before = t.fingerprint().await;
    let actor = Actor::user(editor, Source::Web);
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = grants::revoke(
        &mut tx,
        &actor,
        Grantee::User(&alice),
        &names(&["blog.publish_post"]),
        t.now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("you do not hold blog.publish_post")),
        "{err:?}"
    );
    tx.commit().await.unwrap();
    assert_unchanged(&before, &t.fingerprint().await, "a refused revoke");
    assert!(t.has_perm(&alice, "blog.publish_post").await);

    // What they do hold, they may take away.
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let revoked = grants::revoke(
        &mut tx,
        &actor,
        Grantee::User(&alice),
        &names(&["blog.add_post"]),
        t.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(revoked, names(&["blog.add_post"]));
    assert!(!t.has_perm(&alice, "blog.add_post").await);
}
