//! Tests written to kill the mutants cargo-mutants left alive in the
//! promotion workflow's rules (docs/testing.md, "Mutation testing"). Each
//! names the mutant it was written for.

use ladder::{
    Error, Ladder,
    accounts::{User, users},
    actor::{Actor, Source},
    promotions::{self, policy, schedule, transitions},
    seed::demo,
};

use crate::helpers::{TestLadder, state_of, workflow};

on_both_backends!(
    the_approvers_email_about_a_new_request_links_to_that_request,
    a_justification_may_be_two_thousand_characters_long_but_not_one_more,
    only_the_requester_and_the_tracks_active_approvers_see_a_request,
    only_an_approver_who_did_not_ask_may_reject,
    only_an_approver_may_end_a_grant_early,
    a_time_bound_grant_is_not_warned_about_before_its_last_day,
    expiring_a_request_that_is_no_longer_pending_changes_nothing,
);

/// The demo (Writers alice and bob, Editors erin and ed, admin the
/// superuser), after `edit` is applied to the settings.
async fn demo(t: &mut TestLadder, edit: impl FnOnce(&mut ladder::config::Settings)) {
    t.ladder = t.reopen(edit).await;
    demo::seed(&t.ladder, Some("demo-password-1"))
        .await
        .unwrap();
}

async fn user(ladder: &Ladder, name: &str) -> User {
    let mut conn = ladder.db.acquire().await.unwrap();
    users::get_by_username(&mut conn, name).await.unwrap()
}

fn actor(user: &User) -> Actor {
    Actor::user(user.clone(), Source::Web)
}

async fn submit(ladder: &Ladder, who: &str, why: &str) -> ladder::Result<promotions::Request> {
    let requester = user(ladder, who).await;
    workflow::submit(ladder, &actor(&requester), &requester, "senior-writer", why).await
}

async fn requests(ladder: &Ladder) -> i64 {
    sqlx::query_scalar("select count(*) from promotion_requests")
        .fetch_one(ladder.db.pool())
        .await
        .unwrap()
}

/// Kills `replace > with >= in parse_text` (2,000 refused) and
/// `replace > with == in parse_text` (2,001 allowed). Counted in
/// characters, not bytes: "é" is two bytes.
async fn a_justification_may_be_two_thousand_characters_long_but_not_one_more(mut t: TestLadder) {
    demo(&mut t, |_| {}).await;
    let err = submit(&t.ladder, "alice", &"é".repeat(2_001))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Invalid {
                field: "justification",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        requests(&t.ladder).await,
        0,
        "a refused request is not stored"
    );
    let longest = "é".repeat(2_000);
    let r = submit(&t.ladder, "alice", &format!("  {longest}\n"))
        .await
        .unwrap();
    assert_eq!(r.justification, longest, "trimmed, then kept whole");
}

/// Kills `replace is_approver -> Result<bool> with Ok(true)`, `replace ||
/// with && in visible_to`, `replace == with != in visible_to`, and the
/// mutants of `decides` that let an inactive editor or stop the superuser.
async fn only_the_requester_and_the_tracks_active_approvers_see_a_request(mut t: TestLadder) {
    demo(&mut t, |_| {}).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let ed = user(&t.ladder, "ed").await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    users::set_active(&mut tx, &t.system(), &ed, false, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for (who, sees) in [
        ("alice", true),
        ("erin", true),
        ("admin", true),
        ("bob", false),
        ("ed", false),
    ] {
        let viewer = user(&t.ladder, who).await;
        let mut conn = t.ladder.db.acquire().await.unwrap();
        let seen = policy::visible_to(&t.ladder, &mut conn, &viewer, r.request_id).await;
        match seen {
            Ok(request) if sees => assert_eq!(request.request_id, r.request_id),
            Err(Error::NotFound(_)) if !sees => {}
            other => panic!(
                "{who} should {}see the request: {other:?}",
                if sees { "" } else { "not " }
            ),
        }
        let track = t.ladder.track("senior-writer").unwrap();
        let approves = policy::is_approver(&mut conn, track, &viewer)
            .await
            .unwrap();
        assert_eq!(
            approves,
            matches!(who, "erin" | "admin"),
            "{who} approves the track"
        );
    }
}

/// Kills `replace may_decide -> Result<()> with Ok(())` and `replace
/// is_approver -> Result<bool> with Ok(true)` on the path of a rejection,
/// which (unlike an approval) relies on `may_decide` alone.
async fn only_an_approver_who_did_not_ask_may_reject(mut t: TestLadder) {
    demo(&mut t, |_| {}).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let before = t.fingerprint().await;
    for (who, refusal) in [("alice", "forbidden"), ("bob", "not found")] {
        let decider = user(&t.ladder, who).await;
        let err = workflow::reject(&t.ladder, &actor(&decider), &decider, r.request_id, "No")
            .await
            .unwrap_err();
        let kind = match err {
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not found",
            _ => "other",
        };
        assert_eq!(kind, refusal, "{who} rejecting: {err:?}");
        crate::helpers::assert_unchanged(&before, &t.fingerprint().await, who);
    }
    let erin = user(&t.ladder, "erin").await;
    workflow::reject(&t.ladder, &actor(&erin), &erin, r.request_id, "Not yet")
        .await
        .unwrap();
    assert_eq!(state_of(&t.ladder, r.request_id).await, "rejected");
}

/// Kills `delete ! in end_grant`: a writer may not end a grant, an editor may.
async fn only_an_approver_may_end_a_grant_early(mut t: TestLadder) {
    demo(&mut t, |_| {}).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let erin = user(&t.ladder, "erin").await;
    workflow::approve(&t.ladder, &actor(&erin), &erin, r.request_id, "ok")
        .await
        .unwrap();
    let bob = user(&t.ladder, "bob").await;
    let err = transitions::end_grant(&t.ladder, &actor(&bob), Some(&bob), r.request_id)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Forbidden(m) if m.contains("Editors")),
        "{err:?}"
    );
    assert_eq!(state_of(&t.ladder, r.request_id).await, "approved");
    transitions::end_grant(&t.ladder, &actor(&erin), Some(&erin), r.request_id)
        .await
        .unwrap();
    assert_eq!(state_of(&t.ladder, r.request_id).await, "ended");
    let alice = user(&t.ladder, "alice").await;
    let mut conn = t.ladder.db.acquire().await.unwrap();
    assert!(
        !users::group_names(&mut conn, alice.user_id)
            .await
            .unwrap()
            .contains(&"Senior Writers".to_string())
    );
}

/// Kills `replace + with * in end_due_grants`: the warning window is the
/// last day before the grant ends, not "any time before now × 86,400".
async fn a_time_bound_grant_is_not_warned_about_before_its_last_day(mut t: TestLadder) {
    demo(&mut t, |s| s.promotions[0].grant_duration = "30d".into()).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let erin = user(&t.ladder, "erin").await;
    workflow::approve(&t.ladder, &actor(&erin), &erin, r.request_id, "ok")
        .await
        .unwrap();
    let due = |ladder: Ladder| async move { schedule::end_due_grants(&ladder).await.unwrap() };
    t.ladder.clock.advance(28 * 86_400);
    assert_eq!(
        due(t.ladder.clone()).await,
        (0, 0),
        "two days before the end"
    );
    t.ladder.clock.advance(86_400 + 60);
    assert_eq!(due(t.ladder.clone()).await, (1, 0), "on the last day");
}

/// Kills `replace > with >= in close`: a request that is no longer pending
/// (withdrawn here; approved in a race with the scheduler) is not expired
/// again, audited or mailed about.
async fn expiring_a_request_that_is_no_longer_pending_changes_nothing(mut t: TestLadder) {
    demo(&mut t, |_| {}).await;
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let alice = user(&t.ladder, "alice").await;
    workflow::withdraw(&t.ladder, &actor(&alice), &alice, r.request_id)
        .await
        .unwrap();
    let before = t.fingerprint().await;
    let expired = transitions::expire(
        &t.ladder,
        &Actor::system(Source::System),
        r.request_id,
        t.now(),
    )
    .await
    .unwrap();
    assert!(!expired, "a withdrawn request is not expired");
    assert_eq!(state_of(&t.ladder, r.request_id).await, "withdrawn");
    assert_eq!(t.fingerprint().await, before, "nothing written");
}

/// The approvers' emails are rendered before the request is stored; each
/// must still name and link the request by the id the insert gave it.
async fn the_approvers_email_about_a_new_request_links_to_that_request(mut t: TestLadder) {
    demo(&mut t, |_| {}).await;
    submit(&t.ladder, "bob", "Earlier").await.unwrap();
    let r = submit(&t.ladder, "alice", "Please").await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select subject, body_text from mail_outbox where template = 'request_submitted' order by outbox_id",
    )
    .fetch_all(t.ladder.db.pool())
    .await
    .unwrap();
    let alices: Vec<_> = rows
        .iter()
        .filter(|(_, body)| body.contains("alice"))
        .collect();
    assert_eq!(alices.len(), 2, "one per editor: {rows:?}");
    for (subject, body) in alices {
        let link = format!("/promotions/{}", r.request_id);
        assert!(body.contains(&link), "{link} in {body}");
        assert!(!body.contains("918273645546372819"), "{body}");
        assert!(!subject.contains("918273645546372819"), "{subject}");
    }
}
