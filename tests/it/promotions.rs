//! The promotion workflow end to end, with a real SMTP server on 127.0.0.1,
//! on both backends. Time moves by the injectable clock, never by sleeping.

use ladder::{
    Error, Ladder,
    accounts::{User, groups, promotion_grant, users},
    actor::{Actor, Source},
    config::{MailTransport, Settings, SmtpTls},
    jobs::{self, JobName},
    mail::transport::Transport,
    promotions,
    seed::demo,
};

use crate::{
    helpers::{TestLadder, csrf_from, state_of, workflow},
    mailbox::Mailbox,
};

const PW: &str = "demo-password-1";

on_both_backends!(
    the_whole_story_a_writer_asks_editors_are_emailed_one_approves_and_the_writer_can_publish,
    a_rejection_needs_a_reason_and_emails_it_to_the_requester,
    a_withdrawn_request_cannot_be_approved,
    the_scheduler_expires_stale_requests_and_emails_the_requester,
    a_time_bound_grant_warns_a_day_ahead_and_then_ends,
    an_approver_cannot_decide_their_own_request,
    two_of_three_approvals_are_needed_when_the_track_says_so,
    twenty_concurrent_approvals_give_one_grant_and_one_set_of_emails,
    ineligible_requesters_are_refused_and_nothing_is_stored,
    a_decision_rechecks_that_the_requester_may_still_be_promoted,
    an_smtp_outage_loses_nothing_and_sends_each_email_once,
    reminders_go_once_per_period_and_digests_once_a_day,
    the_api_drives_the_workflow_with_json_errors,
    a_track_whose_approvers_lack_a_target_permission_is_refused,
    two_processes_draining_one_outbox_send_each_email_once,
    a_failed_email_can_be_retried_from_the_admin_console,
    a_request_whose_stored_state_is_unknown_fails_to_load_instead_of_reading_as_pending,
);

/// Points `t` at `smtp_port`, applies `edit`, and seeds the demo
/// (Writers alice and bob, Editors erin and ed, the senior-writer track).
async fn story(t: &mut TestLadder, smtp_port: u16, edit: impl FnOnce(&mut Settings)) {
    t.ladder = t
        .reopen(|s| {
            s.mail.transport = MailTransport::Smtp;
            s.mail.smtp_host = "127.0.0.1".into();
            s.mail.smtp_port = smtp_port;
            s.mail.smtp_tls = SmtpTls::None;
            edit(s);
        })
        .await;
    demo::seed(&t.ladder, Some(PW)).await.unwrap();
}

async fn user(ladder: &Ladder, name: &str) -> User {
    let mut conn = ladder.db.acquire().await.unwrap();
    users::get_by_username(&mut conn, name).await.unwrap()
}

async fn drain(ladder: &Ladder) -> ladder::mail::worker::Drained {
    let transport = Transport::from_settings(&ladder.settings.mail).unwrap();
    ladder::mail::worker::drain(ladder, &transport)
        .await
        .unwrap()
}

async fn run(ladder: &Ladder, job: JobName) -> String {
    let transport = Transport::from_settings(&ladder.settings.mail).unwrap();
    jobs::run_once(ladder, job, &transport).await.unwrap()
}

async fn submit(ladder: &Ladder, who: &str, why: &str) -> ladder::Result<promotions::Request> {
    let requester = user(ladder, who).await;
    let actor = Actor::user(requester.clone(), Source::Web);
    workflow::submit(ladder, &actor, &requester, "senior-writer", why).await
}

async fn approve(
    ladder: &Ladder,
    who: &str,
    request_id: i64,
) -> ladder::Result<workflow::Approval> {
    let approver = user(ladder, who).await;
    let actor = Actor::user(approver.clone(), Source::Web);
    workflow::approve(ladder, &actor, &approver, request_id, "ok").await
}

async fn in_group(ladder: &Ladder, who: &str, group: &str) -> bool {
    let u = user(ladder, who).await;
    let mut conn = ladder.db.acquire().await.unwrap();
    users::group_names(&mut conn, u.user_id)
        .await
        .unwrap()
        .contains(&group.to_string())
}

async fn outbox_count(ladder: &Ladder) -> i64 {
    sqlx::query_scalar("select count(*) from mail_outbox")
        .fetch_one(ladder.db.pool())
        .await
        .unwrap()
}

async fn the_whole_story_a_writer_asks_editors_are_emailed_one_approves_and_the_writer_can_publish(
    mut t: TestLadder,
) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    let app = t.serve().await;

    // alice drafts a post: no Publish button yet.
    let alice = app.client();
    assert_eq!(alice.login("alice", PW).await.status(), 303);
    let token = alice.csrf("/posts/mine").await;
    let r = alice
        .post_form(
            "/posts/new",
            &token,
            &[("title", "My first post"), ("body", "Hello")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let post_url = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        !alice
            .get(&post_url)
            .await
            .text()
            .await
            .unwrap()
            .contains(">Publish<")
    );

    // She asks, through the form.
    let form = alice.get("/promotions/new").await.text().await.unwrap();
    assert!(form.contains("Senior Writers"));
    let r = alice
        .post_form(
            "/promotions/new",
            &token,
            &[
                ("track", "senior-writer"),
                ("justification", "I have written 40 posts."),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    drain(&t.ladder).await;

    // Each editor gets an email of their own; nobody else does.
    let mail = smtp.wait_for(2);
    assert_eq!(mail.len(), 2);
    for editor in ["erin@example.com", "ed@example.com"] {
        let theirs = smtp.to(editor);
        assert_eq!(theirs.len(), 1, "{editor}");
        assert_eq!(theirs[0].to.len(), 1, "one recipient per message");
        assert!(theirs[0].data.contains("I have written 40 posts."));
        assert!(theirs[0].data.contains("/promotions/"));
    }
    assert_ne!(mail[0].header("Message-ID"), mail[1].header("Message-ID"));

    // erin sees it on the dashboard, with what it would add, and approves.
    let erin = app.client();
    assert_eq!(erin.login("erin", PW).await.status(), 303);
    let dashboard = erin.get("/promotions/review").await.text().await.unwrap();
    assert!(
        dashboard.contains("I have written 40 posts."),
        "{dashboard}"
    );
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let request_id = promotions::by_requester(&mut conn, user(&t.ladder, "alice").await.user_id)
        .await
        .unwrap()[0]
        .request_id;
    drop(conn);
    let page = erin
        .get(&format!("/promotions/{request_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("+ blog.publish_post"));
    let token = csrf_from(&page).unwrap();
    let r = erin
        .post_form(
            &format!("/promotions/{request_id}/approve"),
            &token,
            &[("comment", "Well earned")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(state_of(&t.ladder, request_id).await, "approved");
    assert!(in_group(&t.ladder, "alice", "Senior Writers").await);

    // alice's very next page load has the Publish button, and publishing works.
    let page = alice.get(&post_url).await.text().await.unwrap();
    assert!(page.contains(">Publish<"), "{page}");
    let r = alice
        .post_form(&format!("{post_url}/publish"), &token_of(&alice).await, &[])
        .await;
    assert_eq!(r.status(), 303);
    assert!(
        alice
            .get("/posts")
            .await
            .text()
            .await
            .unwrap()
            .contains("My first post")
    );

    // alice hears the decision; ed hears it was decided, by erin.
    drain(&t.ladder).await;
    let mail = smtp.wait_for(4);
    assert_eq!(mail.len(), 4);
    let to_alice = smtp.to("alice@example.com");
    assert_eq!(to_alice.len(), 1);
    assert!(to_alice[0].data.contains("Well earned"));
    let to_ed = smtp.to("ed@example.com");
    assert_eq!(to_ed.len(), 2);
    assert!(to_ed[1].data.contains("erin"));
    assert_eq!(smtp.to("erin@example.com").len(), 1);
}

async fn token_of(client: &crate::helpers::Client) -> String {
    client.csrf("/posts/mine").await
}

async fn a_rejection_needs_a_reason_and_emails_it_to_the_requester(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let erin = user(&t.ladder, "erin").await;
    let actor = Actor::user(erin.clone(), Source::Web);

    let err = workflow::reject(&t.ladder, &actor, &erin, r.request_id, "  ")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                field: "reason",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(state_of(&t.ladder, r.request_id).await, "pending");

    workflow::reject(
        &t.ladder,
        &actor,
        &erin,
        r.request_id,
        "Not enough published work yet",
    )
    .await
    .unwrap();
    assert_eq!(state_of(&t.ladder, r.request_id).await, "rejected");
    assert!(!in_group(&t.ladder, "alice", "Senior Writers").await);
    drain(&t.ladder).await;
    let mail = smtp.wait_for(4);
    assert_eq!(mail.len(), 4, "2 on submit, 1 to alice, 1 to ed");
    let to_alice = smtp.to("alice@example.com");
    assert_eq!(to_alice.len(), 1);
    assert!(to_alice[0].data.contains("Not enough published work yet"));
    // A decided request stays decided.
    let err = approve(&t.ladder, "ed", r.request_id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("already rejected by erin")),
        "{err}"
    );
}

async fn a_withdrawn_request_cannot_be_approved(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let alice = user(&t.ladder, "alice").await;
    let bob = user(&t.ladder, "bob").await;
    let err = workflow::withdraw(
        &t.ladder,
        &Actor::user(bob.clone(), Source::Web),
        &bob,
        r.request_id,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)));
    workflow::withdraw(
        &t.ladder,
        &Actor::user(alice.clone(), Source::Web),
        &alice,
        r.request_id,
    )
    .await
    .unwrap();
    assert_eq!(state_of(&t.ladder, r.request_id).await, "withdrawn");
    let err = approve(&t.ladder, "erin", r.request_id).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)));
    // She may ask again.
    submit(&t.ladder, "alice", "Again").await.unwrap();
}

async fn the_scheduler_expires_stale_requests_and_emails_the_requester(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    run(&t.ladder, JobName::Expire).await;
    assert_eq!(
        state_of(&t.ladder, r.request_id).await,
        "pending",
        "not yet due"
    );
    t.ladder.clock.advance(14 * 86_400 + 1);
    assert_eq!(
        run(&t.ladder, JobName::Expire).await,
        "1 request(s) expired"
    );
    assert_eq!(state_of(&t.ladder, r.request_id).await, "expired");
    assert_eq!(
        run(&t.ladder, JobName::Expire).await,
        "0 request(s) expired"
    );
    drain(&t.ladder).await;
    smtp.wait_for(3);
    assert_eq!(smtp.messages().len(), 3);
    assert!(smtp.to("alice@example.com")[0].data.contains("expired"));
    let events: i64 =
        sqlx::query_scalar("select count(*) from audit_events where action = 'promotion.expire'")
            .fetch_one(t.ladder.db.pool())
            .await
            .unwrap();
    assert_eq!(events, 1);
}

async fn a_time_bound_grant_warns_a_day_ahead_and_then_ends(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |s| {
        s.promotions[0].grant_duration = "30d".into()
    })
    .await;
    let r = submit(&t.ladder, "alice", "For the election coverage")
        .await
        .unwrap();
    approve(&t.ladder, "erin", r.request_id).await.unwrap();
    assert!(in_group(&t.ladder, "alice", "Senior Writers").await);
    drain(&t.ladder).await;
    smtp.wait_for(4);

    t.ladder.clock.advance(29 * 86_400 + 60);
    assert_eq!(
        run(&t.ladder, JobName::EndGrants).await,
        "1 warning(s) queued, 0 grant(s) ended"
    );
    assert_eq!(
        run(&t.ladder, JobName::EndGrants).await,
        "0 warning(s) queued, 0 grant(s) ended"
    );
    assert!(in_group(&t.ladder, "alice", "Senior Writers").await);
    t.ladder.clock.advance(86_400);
    assert_eq!(
        run(&t.ladder, JobName::EndGrants).await,
        "0 warning(s) queued, 1 grant(s) ended"
    );
    assert_eq!(state_of(&t.ladder, r.request_id).await, "ended");
    assert!(!in_group(&t.ladder, "alice", "Senior Writers").await);
    let alice = user(&t.ladder, "alice").await;
    assert!(
        !t.ladder
            .permissions
            .has_perm(
                &mut t.ladder.db.acquire().await.unwrap(),
                alice.user_id,
                "blog.publish_post"
            )
            .await
            .unwrap()
    );
    drain(&t.ladder).await;
    smtp.wait_for(6);
    let to_alice = smtp.to("alice@example.com");
    assert_eq!(to_alice.len(), 3, "approved, ending soon, ended");
    // The last two go out in one batch, in parallel: their order may vary.
    assert!(to_alice.iter().any(|m| m.data.contains("ends soon")));
    assert!(to_alice.iter().any(|m| m.data.contains("has ended")));
}

async fn an_approver_cannot_decide_their_own_request(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    // erin is an editor who also writes.
    let writers = {
        let mut c = t.ladder.db.acquire().await.unwrap();
        groups::get_by_name(&mut c, "Writers").await.unwrap()
    };
    let erin = user(&t.ladder, "erin").await;
    t.join(&erin, &writers).await;
    let r = submit(&t.ladder, "erin", "Me too").await.unwrap();
    let err = approve(&t.ladder, "erin", r.request_id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("your own")),
        "{err}"
    );
    assert_eq!(state_of(&t.ladder, r.request_id).await, "pending");
    drain(&t.ladder).await;
    // Only ed was emailed about erin's request.
    assert_eq!(smtp.wait_for(1).len(), 1);
    assert_eq!(smtp.to("ed@example.com").len(), 1);
    // A writer who is not an approver cannot decide either: to him the
    // request does not exist (as over HTTP, where he gets a 404).
    let err = approve(&t.ladder, "bob", r.request_id).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert_eq!(state_of(&t.ladder, r.request_id).await, "pending");
}

async fn two_of_three_approvals_are_needed_when_the_track_says_so(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |s| {
        s.promotions[0].approvals_required = 2
    })
    .await;
    let editors = {
        let mut c = t.ladder.db.acquire().await.unwrap();
        groups::get_by_name(&mut c, "Editors").await.unwrap()
    };
    let eve = t.user("eve").await;
    t.join(&eve, &editors).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    assert_eq!(
        approve(&t.ladder, "erin", r.request_id).await.unwrap(),
        workflow::Approval::Recorded { have: 1, need: 2 }
    );
    assert_eq!(state_of(&t.ladder, r.request_id).await, "pending");
    assert!(!in_group(&t.ladder, "alice", "Senior Writers").await);
    let err = approve(&t.ladder, "erin", r.request_id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("already approved")),
        "{err}"
    );
    assert_eq!(
        approve(&t.ladder, "ed", r.request_id).await.unwrap(),
        workflow::Approval::Approved
    );
    assert!(in_group(&t.ladder, "alice", "Senior Writers").await);
    assert!(matches!(
        approve(&t.ladder, "eve", r.request_id).await,
        Err(Error::Conflict(_))
    ));
    // 3 on submit; on approval alice + erin and eve (not ed, who decided).
    assert_eq!(outbox_count(&t.ladder).await, 6);
}

async fn twenty_concurrent_approvals_give_one_grant_and_one_set_of_emails(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    let editors = {
        let mut c = t.ladder.db.acquire().await.unwrap();
        groups::get_by_name(&mut c, "Editors").await.unwrap()
    };
    let mut names = vec!["erin".to_string(), "ed".to_string()];
    for i in 0..18 {
        let name = format!("editor{i}");
        let u = t.user(&name).await;
        t.join(&u, &editors).await;
        names.push(name);
    }
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    assert_eq!(outbox_count(&t.ladder).await, 20);
    let attempts = names.iter().map(|n| {
        let ladder = t.ladder.clone();
        let n = n.clone();
        tokio::spawn(async move { approve(&ladder, &n, r.request_id).await })
    });
    let results = futures_join(attempts).await;
    let approved = results
        .iter()
        .filter(|r| matches!(r, Ok(workflow::Approval::Approved)))
        .count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Conflict(_))))
        .count();
    assert_eq!((approved, conflicts), (1, 19), "{results:?}");
    let memberships: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where action = 'group.add_user' and target_name = 'alice' and after_state like '%promotion_request%'",
    )
    .fetch_one(t.ladder.db.pool())
    .await
    .unwrap();
    assert_eq!(memberships, 1);
    // One set: alice, plus the 19 approvers who did not decide.
    assert_eq!(outbox_count(&t.ladder).await, 20 + 1 + 19);
    drain(&t.ladder).await;
    assert_eq!(smtp.wait_for(40).len(), 40);
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

async fn ineligible_requesters_are_refused_and_nothing_is_stored(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    t.user("outsider").await;
    for (who, needle) in [
        ("outsider", "Only members of Writers"),
        ("erin", "Only members of Writers"),
    ] {
        let err = submit(&t.ladder, who, "Please").await.unwrap_err();
        assert!(
            matches!(&err, Error::Conflict(m) if m.contains(needle)),
            "{err}"
        );
    }
    submit(&t.ladder, "alice", "Please").await.unwrap();
    let err = submit(&t.ladder, "alice", "Again").await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("already an open request")),
        "{err}"
    );
    let err = submit(&t.ladder, "bob", "").await.unwrap_err();
    assert!(matches!(
        err,
        Error::Invalid {
            field: "justification",
            ..
        }
    ));
    let count: i64 = sqlx::query_scalar("select count(*) from promotion_requests")
        .fetch_one(t.ladder.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(outbox_count(&t.ladder).await, 2);
    // An approved member of the target group may not ask again.
    let r: i64 = sqlx::query_scalar("select request_id from promotion_requests")
        .fetch_one(t.ladder.db.pool())
        .await
        .unwrap();
    approve(&t.ladder, "erin", r).await.unwrap();
    let err = submit(&t.ladder, "alice", "More").await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("Already a member")),
        "{err}"
    );
}

async fn an_smtp_outage_loses_nothing_and_sends_each_email_once(mut t: TestLadder) {
    let reserved = Mailbox::reserve();
    story(&mut t, reserved.port, |_| {}).await;
    // SMTP is down while alice asks: the request is stored anyway.
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let d = drain(&t.ladder).await;
    assert_eq!((d.sent, d.retrying), (0, 2));
    let (attempts, error): (i64, Option<String>) =
        sqlx::query_as("select attempts, last_error from mail_outbox order by outbox_id limit 1")
            .fetch_one(t.ladder.db.pool())
            .await
            .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.is_some());
    assert_eq!(state_of(&t.ladder, r.request_id).await, "pending");

    // Not due yet: backoff.
    let smtp = reserved.start();
    assert_eq!(drain(&t.ladder).await.sent, 0);
    t.ladder.clock.advance(31);
    assert_eq!(drain(&t.ladder).await.sent, 2);
    assert_eq!(drain(&t.ladder).await.sent, 0);
    let mail = smtp.wait_for(2);
    assert_eq!(mail.len(), 2);
    let ids: std::collections::BTreeSet<_> = mail.iter().map(|m| m.header("Message-ID")).collect();
    assert_eq!(
        ids.len(),
        2,
        "each email once, each with its own Message-ID"
    );
}

async fn reminders_go_once_per_period_and_digests_once_a_day(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    submit(&t.ladder, "alice", "Please").await.unwrap();
    assert_eq!(
        run(&t.ladder, JobName::Remind).await,
        "0 reminder(s) queued"
    );
    t.ladder.clock.advance(2 * 86_400 + 1);
    assert_eq!(
        run(&t.ladder, JobName::Remind).await,
        "2 reminder(s) queued"
    );
    assert_eq!(
        run(&t.ladder, JobName::Remind).await,
        "0 reminder(s) queued"
    );
    t.ladder.clock.advance(2 * 86_400 + 1);
    assert_eq!(
        run(&t.ladder, JobName::Remind).await,
        "2 reminder(s) queued"
    );
    assert_eq!(run(&t.ladder, JobName::Digest).await, "2 digest(s) queued");
    assert_eq!(run(&t.ladder, JobName::Digest).await, "0 digest(s) queued");
    assert_eq!(
        run(&t.ladder, JobName::Outbox).await,
        "8 sent, 0 to retry, 0 failed"
    );
    assert_eq!(smtp.wait_for(8).len(), 8);
}

async fn the_api_drives_the_workflow_with_json_errors(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    let app = t.serve().await;
    let anonymous = app.client();
    let r = anonymous
        .http
        .get(anonymous.url("/api/v1/promotions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );

    let alice = app.client();
    assert_eq!(
        alice.login("alice", PW).await.status(),
        303,
        "sign-in as alice"
    );
    let post = |c: &crate::helpers::Client, path: &str, body: &str| {
        c.http
            .post(c.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let r = post(&alice, "/api/v1/promotions", "{not json")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(&alice, "/api/v1/promotions", r#"{"justification": "x"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = post(
        &alice,
        "/api/v1/promotions",
        r#"{"track": "nope", "justification": "x"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let r = post(
        &alice,
        "/api/v1/promotions",
        r#"{"track": "senior-writer", "justification": "Via the API"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["state"], "pending");
    let id = created["id"].as_i64().unwrap();
    let r = post(
        &alice,
        "/api/v1/promotions",
        r#"{"track": "senior-writer", "justification": "Again"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
    // Form-encoded POSTs to the API are refused (CSRF): JSON only.
    let r = alice
        .http
        .post(alice.url("/api/v1/promotions"))
        .form(&[("track", "senior-writer")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let erin = app.client();
    assert_eq!(
        erin.login("erin", PW).await.status(),
        303,
        "sign-in as erin"
    );
    let list: serde_json::Value = erin
        .get("/api/v1/promotions?state=pending")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let r = post(&erin, &format!("/api/v1/promotions/{id}/reject"), "{}")
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = post(&erin, "/api/v1/promotions/999999/approve", "{}")
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = post(
        &erin,
        &format!("/api/v1/promotions/{id}/approve"),
        r#"{"comment": "Yes"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let approved: serde_json::Value = r.json().await.unwrap();
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["approvals"][0]["approver"], "erin");
    let r = post(&erin, &format!("/api/v1/promotions/{id}/approve"), "{}")
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = post(&alice, &format!("/api/v1/promotions/{id}/withdraw"), "{}")
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // bob may not see alice's request.
    let bob = app.client();
    assert_eq!(bob.login("bob", PW).await.status(), 303, "sign-in as bob");
    assert_eq!(
        bob.get(&format!("/api/v1/promotions/{id}")).await.status(),
        404
    );
    assert_eq!(bob.get("/api/v1/nothing-here").await.status(), 404);
}

async fn a_track_whose_approvers_lack_a_target_permission_is_refused(t: TestLadder) {
    demo::seed(&t.ladder, Some(PW)).await.unwrap();
    assert!(t.ladder.check_tracks().await.unwrap().is_empty());
    let seniors = {
        let mut c = t.ladder.db.acquire().await.unwrap();
        groups::get_by_name(&mut c, "Senior Writers").await.unwrap()
    };
    // The change that would break the track is refused, naming the track
    // (more in tests/it/tracks.rs).
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let err = ladder::permissions::grants::grant(
        &mut tx,
        &t.system(),
        ladder::permissions::grants::Grantee::Group(&seniors),
        &crate::helpers::names(&["auth.view_group"]),
        t.now(),
    )
    .await
    .unwrap_err();
    drop(tx);
    assert!(
        err.to_string().contains("auth.view_group") && err.to_string().contains("senior-writer"),
        "{err}"
    );
    assert!(t.ladder.check_tracks().await.unwrap().is_empty());
    // Bad durations stop start-up with one line naming the field.
    let out = t.cli_with(
        &["migrate"],
        None,
        &[(
            "LADDER_CONFIG",
            &write_config(&t, "pending_expires_after = \"two weeks\""),
        )],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(crate::helpers::stderr(&out).contains("pending_expires_after"));
}

fn write_config(t: &TestLadder, extra: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "ladder-track-{}-{:?}.toml",
        std::process::id(),
        t.kind
    ));
    std::fs::write(
        &path,
        format!(
            "[[promotions]]\nname = \"senior-writer\"\nfrom_group = \"Writers\"\nto_group = \"Senior Writers\"\napprover_group = \"Editors\"\n{extra}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

async fn two_processes_draining_one_outbox_send_each_email_once(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    let other = t
        .reopen(|s| {
            s.mail = t.ladder.settings.mail.clone();
        })
        .await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    for i in 0..60 {
        let message = ladder::mail::Message::render(
            "grant_ended",
            &format!("user{i}@example.com"),
            serde_json::json!({ "recipient": "you", "to_group": "Senior Writers", "url": "http://x" }),
            "http://127.0.0.1",
        )
        .unwrap();
        ladder::mail::enqueue(&mut tx, message, t.now())
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let (a, b) = tokio::join!(drain(&t.ladder), drain(&other));
    assert_eq!(a.sent + b.sent, 60, "{a:?} {b:?}");
    let mail = smtp.wait_for(60);
    assert_eq!(mail.len(), 60);
    let ids: std::collections::BTreeSet<_> = mail.iter().map(|m| m.header("Message-ID")).collect();
    assert_eq!(ids.len(), 60);
}

async fn a_failed_email_can_be_retried_from_the_admin_console(mut t: TestLadder) {
    let reserved = Mailbox::reserve();
    story(&mut t, reserved.port, |s| s.mail.max_attempts = 1).await;
    submit(&t.ladder, "alice", "Please").await.unwrap();
    assert_eq!(drain(&t.ladder).await.failed, 2);
    let app = t.serve().await;
    let admin = app.client();
    assert_eq!(admin.login("admin", PW).await.status(), 303);
    let page = admin.get("/admin/mail").await.text().await.unwrap();
    assert!(page.contains("alice asks to join Senior Writers"), "{page}");
    let token = csrf_from(&page).unwrap();
    let id: i64 =
        sqlx::query_scalar("select outbox_id from mail_outbox order by outbox_id limit 1")
            .fetch_one(t.ladder.db.pool())
            .await
            .unwrap();
    let r = admin
        .post_form(&format!("/admin/mail/{id}/retry"), &token, &[])
        .await;
    assert_eq!(r.status(), 303);
    let smtp = reserved.start();
    assert_eq!(drain(&t.ladder).await.sent, 1);
    assert_eq!(smtp.wait_for(1).len(), 1);
    // A writer cannot see the outbox.
    let alice = app.client();
    assert_eq!(
        alice.login("alice", PW).await.status(),
        303,
        "sign-in as alice"
    );
    assert_eq!(alice.get("/admin/mail").await.status(), 403);
}

async fn a_decision_rechecks_that_the_requester_may_still_be_promoted(mut t: TestLadder) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let (writers, seniors) = {
        let mut c = t.ladder.db.acquire().await.unwrap();
        (
            groups::get_by_name(&mut c, "Writers").await.unwrap(),
            groups::get_by_name(&mut c, "Senior Writers").await.unwrap(),
        )
    };
    let alice = user(&t.ladder, "alice").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    groups::remove_member(&mut tx, &t.system(), &writers, &alice, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let err = approve(&t.ladder, "erin", r.request_id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("no longer in Writers")),
        "{err}"
    );
    assert_eq!(state_of(&t.ladder, r.request_id).await, "pending");
    assert!(!in_group(&t.ladder, "alice", "Senior Writers").await);

    // The grant itself tests eligibility as it writes, for a change that lands
    // between the approver's reads and the write transaction.
    let erin = user(&t.ladder, "erin").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let granted = promotion_grant::grant_promotion(
        &mut tx,
        &Actor::user(erin.clone(), Source::Web),
        &seniors,
        writers.group_id,
        &alice,
        r.request_id,
        t.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(!granted);
    assert!(!in_group(&t.ladder, "alice", "Senior Writers").await);

    // Back in Writers, the approval goes through and grants once.
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    groups::add_member(&mut tx, &t.system(), &writers, &alice, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    approve(&t.ladder, "erin", r.request_id).await.unwrap();
    assert!(in_group(&t.ladder, "alice", "Senior Writers").await);
}

async fn a_request_whose_stored_state_is_unknown_fails_to_load_instead_of_reading_as_pending(
    mut t: TestLadder,
) {
    let smtp = Mailbox::start();
    story(&mut t, smtp.port, |_| {}).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    sqlx::query("update promotion_requests set state = 'paused' where request_id = $1")
        .bind(r.request_id)
        .execute(t.ladder.db.pool())
        .await
        .unwrap();
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let err = promotions::get(&mut conn, r.request_id).await.unwrap_err();
    assert!(!err.is_user_error(), "{err}");
    assert!(err.to_string().contains("\"paused\""), "{err}");
    drop(conn);
    let err = approve(&t.ladder, "erin", r.request_id).await.unwrap_err();
    assert!(!err.is_user_error(), "{err}");
}
