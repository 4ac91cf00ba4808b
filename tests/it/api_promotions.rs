//! `/api/v1/promotions` with tokens: asking, listing with filters and
//! cursors, deciding, every error status, the revision of each write, the
//! audit trail (source `api`, the token's name), and what a narrowed token
//! may do in the workflow.

use ladder::permissions::revision;
use serde_json::{Value, json};

use crate::{
    api_client::{Api, Workflow, token},
    helpers::{Fingerprint, TestLadder, assert_unchanged},
    web_helpers::SENIOR_WRITER,
};

on_both_backends!(
    a_writer_asks_and_an_editor_approves_with_tokens_each_write_with_its_revision,
    each_change_is_audited_with_source_api_and_the_token_name,
    the_list_filters_by_state_track_requester_mine_and_decided_and_pages_with_a_cursor,
    every_error_the_promotion_routes_document_is_answered,
    a_narrowed_token_asks_and_withdraws_but_decides_only_within_its_scope,
);

const ASK: &str = "/api/v1/promotions";

fn ask(justification: &str) -> Value {
    json!({ "track": "senior-writer", "justification": justification })
}

/// Every row but the tokens' (whose first use is recorded as it happens).
async fn rows(t: &TestLadder) -> Fingerprint {
    t.fingerprint().await.without(&["api_tokens"])
}

async fn current_revision(t: &TestLadder) -> i64 {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    revision::current(&mut conn).await.unwrap()
}

async fn a_writer_asks_and_an_editor_approves_with_tokens_each_write_with_its_revision(
    t: TestLadder,
) {
    let w = Workflow::new(&t).await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let erin = token(&t, &w.erin, "erin-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    let before = current_revision(&t).await;
    let asked = api.post(&alice, ASK, ask("I have written 40 posts.")).await;
    assert_eq!(asked.status, 201, "{}", asked.body);
    let id = asked.body["id"].as_i64().unwrap();
    for (key, want) in [
        ("track", json!("senior-writer")),
        ("requester", json!("alice")),
        ("justification", json!("I have written 40 posts.")),
        ("state", json!("pending")),
        ("approvals", json!([])),
        ("decided_by", Value::Null),
        ("decided_at", Value::Null),
        ("decision_reason", Value::Null),
        ("grant_ends_at", Value::Null),
        ("ended_at", Value::Null),
        // Asking changes no one's permissions: the revision current at its commit.
        ("revision", json!(before)),
    ] {
        assert_eq!(asked.body[key], want, "{key} in {}", asked.body);
    }
    assert!(asked.body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(asked.body["created_at"].as_str().unwrap().ends_with('Z'));

    // The requester and the approver see it; the list is erin's queue.
    let shown = api.get(&alice, &format!("{ASK}/{id}")).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["id"], id);
    assert!(
        shown.body.get("revision").is_none(),
        "a read has no revision"
    );
    let queue = api.get(&erin, &format!("{ASK}?state=pending")).await;
    assert_eq!(queue.items("id"), [json!(id)]);

    let approved = api
        .post(
            &erin,
            &format!("{ASK}/{id}/approve"),
            json!({ "comment": "Welcome." }),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["state"], "approved");
    assert_eq!(approved.body["decided_by"], "erin");
    assert_eq!(approved.body["approvals"][0]["approver"], "erin");
    assert_eq!(approved.body["approvals"][0]["comment"], "Welcome.");
    // The grant advanced the revision, and the answer is the revision it committed.
    let granted_at = approved.body["revision"].as_i64().unwrap();
    assert!(granted_at > before, "{granted_at} after {before}");
    assert_eq!(granted_at, current_revision(&t).await);
    let check = api
        .get(
            &alice,
            &format!(
                "/api/v1/check?user=alice&perm=blog.publish_post&consistency=at_least={granted_at}"
            ),
        )
        .await;
    assert_eq!(check.body["allowed"], true, "{}", check.body);
    assert!(check.body["revision"].as_i64().unwrap() >= granted_at);
}

async fn each_change_is_audited_with_source_api_and_the_token_name(t: TestLadder) {
    let w = Workflow::new(&t).await;
    let bob = w.writer(&t, "bob").await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let bob_token = token(&t, &bob, "bobs-laptop", None).await;
    let erin = token(&t, &w.erin, "review-bot", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    let first = api.post(&alice, ASK, ask("First.")).await.body["id"].clone();
    let second = api.post(&bob_token, ASK, ask("Second.")).await.body["id"].clone();
    let third = api.post(&erin, ASK, ask("Not a writer.")).await;
    assert_eq!(third.status, 409, "erin is no writer: {}", third.body);
    let rejected = api
        .post(
            &erin,
            &format!("{ASK}/{first}/reject"),
            json!({ "reason": "Not yet." }),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert_eq!(rejected.body["state"], "rejected");
    assert_eq!(rejected.body["decision_reason"], "Not yet.");
    assert!(rejected.body["revision"].is_i64());
    let withdrawn = api
        .post(&bob_token, &format!("{ASK}/{second}/withdraw"), json!({}))
        .await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.body);
    assert_eq!(withdrawn.body["state"], "withdrawn");

    let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "select action, actor_name, source, token_name from audit_events \
         where target_type = 'promotion' order by audit_event_id",
    )
    .fetch_all(t.ladder.db.pool())
    .await
    .unwrap();
    let said = |a: &str, b: &str, c: &str| {
        (
            a.to_string(),
            b.to_string(),
            "api".to_string(),
            Some(c.to_string()),
        )
    };
    assert_eq!(
        rows,
        [
            said("promotion.submit", "alice", "alice-app"),
            said("promotion.submit", "bob", "bobs-laptop"),
            said("promotion.reject", "erin", "review-bot"),
            said("promotion.withdraw", "bob", "bobs-laptop"),
        ]
    );
}

async fn the_list_filters_by_state_track_requester_mine_and_decided_and_pages_with_a_cursor(
    t: TestLadder,
) {
    let w = Workflow::new(&t).await;
    let erin = token(&t, &w.erin, "erin-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);
    // Five writers ask, one second apart; two are decided.
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for name in ["w1", "w2", "w3", "w4", "w5"] {
        let writer = w.writer(&t, name).await;
        let writer_token = token(&t, &writer, "app", None).await;
        let asked = api.post(&writer_token, ASK, ask("Ready.")).await;
        ids.push(asked.body["id"].clone());
        tokens.push(writer_token);
        t.ladder.clock.advance(1);
    }
    let reject = json!({ "reason": "No." });
    api.post(&erin, &format!("{ASK}/{}/reject", ids[1]), reject)
        .await;
    api.post(&tokens[3], &format!("{ASK}/{}/withdraw", ids[3]), json!({}))
        .await;

    let list = async |query: &str| api.get(&erin, &format!("{ASK}?{query}")).await.items("id");
    assert_eq!(list("").await, ids, "oldest first");
    assert_eq!(
        list("state=pending").await,
        [ids[0].clone(), ids[2].clone(), ids[4].clone()]
    );
    assert_eq!(list("state=rejected").await, [ids[1].clone()]);
    assert_eq!(
        list("decided=true&order=newest").await,
        [ids[3].clone(), ids[1].clone()],
        "the history tab: decided, newest first"
    );
    assert_eq!(list("requester=W3").await, [ids[2].clone()]);
    assert_eq!(
        list("track=senior-writer&requester=w5").await,
        [ids[4].clone()]
    );
    assert_eq!(list("requester=nobody").await, Vec::<Value>::new());
    // An approver with no request of their own has none under `mine`.
    assert_eq!(list("mine=true").await, Vec::<Value>::new());
    // A writer approves no track: they see their own requests only, whatever they ask.
    let own = api.get(&tokens[0], ASK).await;
    assert_eq!(own.items("id"), [ids[0].clone()]);
    let others = api.get(&tokens[0], &format!("{ASK}?requester=w2")).await;
    assert_eq!(others.items("id"), Vec::<Value>::new());

    // Pages of two, newest first, by the cursor; `after` takes the same cursor.
    let first = api.get(&erin, &format!("{ASK}?order=newest&limit=2")).await;
    assert_eq!(first.items("id"), [ids[4].clone(), ids[3].clone()]);
    let next = first.body["next"].as_str().unwrap().to_string();
    let second = api
        .get(&erin, &format!("{ASK}?order=newest&limit=2&cursor={next}"))
        .await;
    assert_eq!(second.items("id"), [ids[2].clone(), ids[1].clone()]);
    let by_after = api
        .get(&erin, &format!("{ASK}?order=newest&limit=2&after={next}"))
        .await;
    assert_eq!(by_after.items("id"), second.items("id"));
    let cursor = second.body["next"].as_str().unwrap().to_string();
    let last = api
        .get(
            &erin,
            &format!("{ASK}?order=newest&limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(last.items("id"), [ids[0].clone()]);
    assert_eq!(last.body["next"], Value::Null);
    // The first release's `after=created_at:id` still works.
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let oldest = ladder::promotions::get(&mut conn, ids[0].as_i64().unwrap())
        .await
        .unwrap();
    drop(conn);
    let legacy = format!("{}:{}", oldest.created_at, oldest.request_id);
    assert_eq!(
        list(&format!("after={legacy}")).await,
        ids[1..].to_vec(),
        "after the oldest"
    );
}

async fn every_error_the_promotion_routes_document_is_answered(t: TestLadder) {
    let w = Workflow::new(&t).await;
    let outsider = t.user("outsider").await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let erin = token(&t, &w.erin, "erin-app", None).await;
    let outsider = token(&t, &outsider, "outsider-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);
    let id = api.post(&alice, ASK, ask("Ready.")).await.body["id"]
        .as_i64()
        .unwrap();
    let request = format!("{ASK}/{id}");

    // 401: no token, or one that is not a token.
    for token in [None, Some("ldr_not-a-token")] {
        for (method, path) in [
            (reqwest::Method::GET, ASK.to_string()),
            (reqwest::Method::POST, ASK.to_string()),
            (reqwest::Method::GET, request.clone()),
            (reqwest::Method::POST, format!("{request}/approve")),
            (reqwest::Method::POST, format!("{request}/reject")),
            (reqwest::Method::POST, format!("{request}/withdraw")),
        ] {
            let answer = api
                .send(method.clone(), &path, token, Some(&json!({})), &[])
                .await;
            assert_eq!(answer.status, 401, "{method} {path}");
            assert_eq!(answer.error().0, "unauthorized");
        }
    }

    let before = rows(&t).await;
    // 403: deciding one's own request; withdrawing someone else's.
    let own = api
        .post(&alice, &format!("{request}/approve"), json!({}))
        .await;
    assert_eq!(own.status, 403, "{}", own.body);
    assert!(
        own.message().contains("your own request"),
        "{}",
        own.message()
    );
    let not_yours = api
        .post(&erin, &format!("{request}/withdraw"), json!({}))
        .await;
    assert_eq!(not_yours.status, 403);
    assert!(not_yours.message().contains("Only the person who asked"));

    // 404: no such track, no such request, a request one may not see.
    let no_track = api
        .post(
            &alice,
            ASK,
            json!({ "track": "astronaut", "justification": "x" }),
        )
        .await;
    assert_eq!(
        (no_track.status.as_u16(), no_track.error().0),
        (404, "not_found")
    );
    for path in [
        format!("{ASK}/999999"),
        format!("{ASK}/abc"),
        request.clone(),
    ] {
        let answer = api.get(&outsider, &path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    for decision in ["approve", "reject", "withdraw"] {
        let body = json!({ "reason": "No." });
        let answer = api
            .post(&outsider, &format!("{request}/{decision}"), body)
            .await;
        assert_eq!(
            answer.status, 404,
            "{decision} by a stranger: {}",
            answer.body
        );
    }

    // 409: a second open request on the track; a stranger to the from group.
    let again = api.post(&alice, ASK, ask("Again.")).await;
    assert_eq!((again.status.as_u16(), again.error().0), (409, "conflict"));
    let not_writer = api.post(&outsider, ASK, ask("Me too.")).await;
    assert_eq!(not_writer.status, 409);
    assert!(not_writer.message().contains("Only members of Writers"));

    // 422: a missing justification where the track needs one; a missing
    // reason; a body of the wrong shape; filters naming no track or state.
    for (path, body, field) in [
        (
            ASK.to_string(),
            json!({ "track": "senior-writer" }),
            "justification",
        ),
        (
            ASK.to_string(),
            json!({ "track": "senior-writer", "justification": "é".repeat(2_001) }),
            "justification",
        ),
        (format!("{request}/reject"), json!({}), "reason"),
        (
            format!("{request}/approve"),
            json!({ "comment": 5 }),
            "body",
        ),
    ] {
        let answer = api.post(&erin, &path, body).await;
        assert_eq!(answer.status, 422, "{path}: {}", answer.body);
        assert_eq!(answer.error(), ("invalid", Some(field)), "{path}");
    }
    for (query, field) in [
        ("state=paused", "state"),
        ("track=astronaut", "track"),
        ("order=sideways", "order"),
        ("state=pending&decided=true", "state"),
        ("cursor=zz", "cursor"),
        ("after=yesterday", "after"),
        ("limit=501", "limit"),
    ] {
        let answer = api.get(&erin, &format!("{ASK}?{query}")).await;
        assert_eq!(answer.status, 422, "{query}: {}", answer.body);
        assert_eq!(answer.error(), ("invalid", Some(field)), "{query}");
    }
    // None of the refusals changed anything.
    assert_unchanged(&before, &rows(&t).await, "a refused API call");

    // 409: deciding a request that is no longer pending.
    let approve = format!("{request}/approve");
    assert_eq!(api.post(&erin, &approve, json!({})).await.status, 200);
    for decision in ["approve", "reject", "withdraw"] {
        let (token, body) = match decision {
            "withdraw" => (&alice, json!({})),
            _ => (&erin, json!({ "reason": "Late." })),
        };
        let late = api
            .post(token, &format!("{request}/{decision}"), body)
            .await;
        assert_eq!(late.status, 409, "{decision}: {}", late.body);
        assert!(
            late.message().contains("already approved by erin"),
            "{}",
            late.message()
        );
    }
}

async fn a_narrowed_token_asks_and_withdraws_but_decides_only_within_its_scope(t: TestLadder) {
    let w = Workflow::new(&t).await;
    let bob = w.writer(&t, "bob").await;
    // A writer's token that can only check: it may still ask and withdraw.
    let alice_narrow = token(&t, &w.alice, "alice-checks", Some(&["blog.view_post"])).await;
    let bob_token = token(&t, &bob, "bob-app", None).await;
    // erin's tokens: one for checks only; one naming all but one permission
    // Senior Writers hold; one naming all of them.
    let checks_only = token(&t, &w.erin, "erin-checks", Some(&["auth.view_user"])).await;
    let almost = &["blog.add_post", "blog.change_post", "blog.view_post"];
    let almost = token(&t, &w.erin, "erin-almost", Some(almost)).await;
    let enough = token(&t, &w.erin, "erin-decides", Some(SENIOR_WRITER)).await;
    // The superuser's narrowed token is narrowed too.
    let root_narrow = token(&t, &w.root, "root-checks", Some(&["auth.view_user"])).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    let asked = api.post(&alice_narrow, ASK, ask("Narrow, but mine.")).await;
    assert_eq!(asked.status, 201, "{}", asked.body);
    let id = asked.body["id"].clone();
    let withdrawn = api
        .post(&alice_narrow, &format!("{ASK}/{id}/withdraw"), json!({}))
        .await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.body);

    let bobs = api.post(&bob_token, ASK, ask("Bob asks.")).await.body["id"].clone();
    let before = rows(&t).await;
    for (who, token) in [
        ("erin-checks", &checks_only),
        ("erin-almost", &almost),
        ("root-checks", &root_narrow),
    ] {
        // Reading is as the user: the narrowed token sees the request.
        assert_eq!(api.get(token, &format!("{ASK}/{bobs}")).await.status, 200);
        for (decision, body) in [
            ("approve", json!({})),
            ("reject", json!({ "reason": "No." })),
        ] {
            let answer = api
                .post(token, &format!("{ASK}/{bobs}/{decision}"), body)
                .await;
            assert_eq!(answer.status, 403, "{who} {decision}: {}", answer.body);
            assert!(
                answer.message().contains("blog.publish_post") && answer.message().contains(who),
                "{who} {decision}: the refusal names the permission and the token: {}",
                answer.message()
            );
        }
    }
    assert_unchanged(&before, &rows(&t).await, "a narrowed token's decision");

    let approved = api
        .post(&enough, &format!("{ASK}/{bobs}/approve"), json!({}))
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["state"], "approved");
    let token_name: Option<String> = sqlx::query_scalar(
        "select token_name from audit_events where action = 'promotion.approve'",
    )
    .fetch_one(t.ladder.db.pool())
    .await
    .unwrap();
    assert_eq!(token_name.as_deref(), Some("erin-decides"));
}
