//! `GET /api/v1/audit`: the console's filters (actor, target, action, from,
//! to) in RFC 3339, newest first, cursor pages, who may read it, and every
//! error status.

use ladder::clock::rfc3339;
use serde_json::{Value, json};

use crate::{
    api_client::{Api, Workflow, token},
    helpers::TestLadder,
    web_helpers::make_staff,
};

on_both_backends!(
    the_audit_log_filters_by_actor_target_action_and_time_newest_first,
    only_staff_holding_view_logentry_read_the_audit_log_and_bad_filters_are_422,
);

const AUDIT: &str = "/api/v1/audit";

async fn the_audit_log_filters_by_actor_target_action_and_time_newest_first(t: TestLadder) {
    t.ladder.clock.freeze();
    let w = Workflow::new(&t).await;
    let root = token(&t, &w.root, "root-app", None).await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let erin = token(&t, &w.erin, "erin-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    t.ladder.clock.advance(3_600);
    let asked_at = t.now();
    let body = json!({ "track": "senior-writer", "justification": "Ready." });
    let asked = api.post(&alice, "/api/v1/promotions", body).await;
    let id = asked.body["id"].as_i64().unwrap();
    t.ladder.clock.advance(3_600);
    let rejected_at = t.now();
    let reason = json!({ "reason": "Not yet." });
    api.post(&erin, &format!("/api/v1/promotions/{id}/reject"), reason)
        .await;
    t.ladder.clock.advance(3_600);
    t.grant(&w.alice, &["blog.view_post"]).await;

    let by_alice = api.get(&root, &format!("{AUDIT}?actor=alice")).await;
    assert_eq!(by_alice.status, 200, "{}", by_alice.body);
    let target = format!("#{id} senior-writer for alice");
    assert_eq!(
        by_alice.body["items"],
        json!([{
            "id": by_alice.body["items"][0]["id"], "at": rfc3339(asked_at), "actor": "alice",
            "action": "promotion.submit", "target_type": "promotion", "target_id": id,
            "target": target, "before": null,
            "after": { "state": "pending", "justification": "Ready." },
            "source": "api", "token": "alice-app",
        }])
    );
    let rejections = api
        .get(&root, &format!("{AUDIT}?action=promotion.reject"))
        .await;
    assert_eq!(rejections.items("actor"), ["erin"]);
    assert_eq!(rejections.items("token"), ["erin-app"]);
    assert_eq!(rejections.items("at"), [rfc3339(rejected_at)]);
    let about = api
        .get(
            &root,
            &format!(
                "{AUDIT}?target={}",
                target.replace(' ', "%20").replace('#', "%23")
            ),
        )
        .await;
    assert_eq!(
        about.items("action"),
        ["promotion.reject", "promotion.submit"]
    );
    let about_alice = api.get(&root, &format!("{AUDIT}?target=alice")).await;
    let actions = about_alice.items("action");
    assert_eq!(
        actions.first(),
        Some(&json!("permission.grant")),
        "{actions:?}"
    );
    assert!(actions.len() >= 2, "created and joined too: {actions:?}");
    assert!(about_alice.items("target").iter().all(|t| t == "alice"));
    let by_system_and_action = api
        .get(
            &root,
            &format!("{AUDIT}?actor=system&action=permission.grant&target=alice"),
        )
        .await;
    assert_eq!(by_system_and_action.items("source"), ["cli"]);
    assert_eq!(by_system_and_action.items("token"), [Value::Null]);

    // `from` is inclusive, `to` exclusive; any offset is read as the same instant.
    let window = format!(
        "{AUDIT}?from={}&to={}",
        rfc3339(asked_at),
        rfc3339(rejected_at)
    );
    assert_eq!(
        api.get(&root, &window).await.items("action"),
        ["promotion.submit"]
    );
    let plus_two = time::OffsetDateTime::from_unix_timestamp(asked_at)
        .unwrap()
        .to_offset(time::macros::offset!(+2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(plus_two.contains("+02:00"), "{plus_two}");
    let from_offset = format!("{AUDIT}?from={}", plus_two.replace('+', "%2B"));
    assert_eq!(
        api.get(&root, &from_offset).await.items("action"),
        ["permission.grant", "promotion.reject", "promotion.submit"]
    );

    // Newest first; pages of three walked by the cursor make the whole log once.
    let all = api.get(&root, &format!("{AUDIT}?limit=500")).await;
    let ids: Vec<i64> = all
        .items("id")
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(ids.len() > 6, "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let mut walked = Vec::new();
    let mut path = format!("{AUDIT}?limit=3");
    loop {
        let page = api.get(&root, &path).await;
        walked.extend(page.items("id").iter().map(|v| v.as_i64().unwrap()));
        match page.body["next"].as_str() {
            Some(next) => path = format!("{AUDIT}?limit=3&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(walked, ids);
}

async fn only_staff_holding_view_logentry_read_the_audit_log_and_bad_filters_are_422(
    t: TestLadder,
) {
    let w = Workflow::new(&t).await;
    let clerk = t.user("clerk").await;
    make_staff(&t, &clerk).await;
    let auditor = t.user("auditor").await;
    make_staff(&t, &auditor).await;
    // auth.view_user too, so a token may be narrowed to it alone.
    t.grant(&auditor, &["admin.view_logentry", "auth.view_user"])
        .await;
    // Not staff, though holding the permission.
    t.grant(&w.erin, &["admin.view_logentry"]).await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let erin = token(&t, &w.erin, "erin-app", None).await;
    let clerk = token(&t, &clerk, "clerk-app", None).await;
    let auditor_narrow = token(&t, &auditor, "auditor-checks", Some(&["auth.view_user"])).await;
    let auditor = token(&t, &auditor, "auditor-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    for token in [None, Some("ldr_not-a-token")] {
        let answer = api
            .send(reqwest::Method::GET, AUDIT, token, None, &[])
            .await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.error().0, "unauthorized");
    }
    for (who, token, says) in [
        ("alice", &alice, "staff only"),
        ("erin", &erin, "staff only"),
        ("clerk", &clerk, "admin.view_logentry"),
        ("auditor-checks", &auditor_narrow, "admin.view_logentry"),
    ] {
        let answer = api.get(token, AUDIT).await;
        assert_eq!(answer.status, 403, "{who}: {}", answer.body);
        assert_eq!(answer.error().0, "forbidden");
        assert!(
            answer.message().contains(says),
            "{who}: {}",
            answer.message()
        );
    }
    assert_eq!(api.get(&auditor, AUDIT).await.status, 200);

    for (query, field) in [
        ("from=yesterday", "from"),
        ("from=2026-12-01", "from"),
        ("to=2026-12-01T25:00:00Z", "to"),
        ("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "to"),
        ("cursor=zz", "cursor"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
    ] {
        let answer = api.get(&auditor, &format!("{AUDIT}?{query}")).await;
        assert_eq!(answer.status, 422, "{query}: {}", answer.body);
        assert_eq!(answer.error(), ("invalid", Some(field)), "{query}");
    }
    let bad_limit = api.get(&auditor, &format!("{AUDIT}?limit=abc")).await;
    assert_eq!(bad_limit.status, 400, "{}", bad_limit.body);
}
