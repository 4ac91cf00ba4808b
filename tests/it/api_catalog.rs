//! `/api/v1/tracks`, `/api/v1/permissions` and
//! `/api/v1/permissions/{perm}/holders`: what each answers, its filters and
//! pages, who may ask, and every error status.

use ladder::{
    config::TrackSettings,
    permissions::{
        PermissionName, catalog,
        listing::{self, Walk},
    },
};
use serde_json::{Value, json};

use crate::{
    api_client::{Api, Workflow, token},
    helpers::TestLadder,
    web_helpers::{SENIOR_WRITER, make_staff, set_active},
};

on_both_backends!(
    the_tracks_list_their_rules_and_what_the_caller_may_do_there,
    the_catalog_filters_by_app_and_resource_and_pages_with_a_cursor,
    holders_are_listed_by_username_with_every_way_they_hold_it,
    the_catalog_routes_answer_each_error_they_document,
);

fn track(name: &str, from: &str, to: &str, approver: &str) -> TrackSettings {
    TrackSettings {
        name: name.into(),
        from_group: from.into(),
        to_group: to.into(),
        approver_group: approver.into(),
        approvals_required: 2,
        reason_required: false,
        pending_expires_after: String::new(),
        remind_after: String::new(),
        grant_duration: "30d".into(),
    }
}

async fn the_tracks_list_their_rules_and_what_the_caller_may_do_there(t: TestLadder) {
    let w = Workflow::new(&t).await;
    // Another Ladder on the database with two more tracks: one bound to
    // groups that exist, one naming a group that does not.
    let ladder = t
        .reopen(|s| {
            s.promotions
                .push(track("editor", "Senior Writers", "Editors", "Editors"));
            s.promotions
                .push(track("ghost", "Writers", "Nobody Here", "Editors"));
        })
        .await;
    let app = TestLadder::serve_ladder(ladder).await;
    let api = Api::new(&app);
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let erin = token(&t, &w.erin, "erin-app", None).await;

    let all = api.get(&alice, "/api/v1/tracks").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.items("name"), ["editor", "ghost", "senior-writer"]);
    assert_eq!(all.body["next"], Value::Null);
    let senior = &all.body["items"][2];
    let mut grants: Vec<&str> = SENIOR_WRITER.to_vec();
    grants.sort();
    assert_eq!(
        senior,
        &json!({
            "name": "senior-writer", "from_group": "Writers", "to_group": "Senior Writers",
            "approver_group": "Editors", "approvals_required": 1, "reason_required": true,
            "pending_expires_after_seconds": 14 * 86_400, "remind_after_seconds": 2 * 86_400,
            "grant_duration_seconds": null, "open": true, "problem": null, "grants": grants,
            "you_approve": false, "you_may_ask": true, "why_not": null,
        })
    );
    let editor = &all.body["items"][0];
    assert_eq!(editor["approvals_required"], 2);
    assert_eq!(editor["grant_duration_seconds"], 30 * 86_400);
    assert_eq!(editor["you_may_ask"], false);
    assert_eq!(
        editor["why_not"],
        "Only members of Senior Writers can ask for this."
    );
    let ghost = &all.body["items"][1];
    assert_eq!(ghost["open"], false);
    assert!(
        ghost["problem"].as_str().unwrap().contains("Nobody Here"),
        "{ghost}"
    );
    assert_eq!(ghost["grants"], json!([]));

    // What the caller may do is the caller's: erin approves, and may not ask.
    let as_erin = api.get(&erin, "/api/v1/tracks").await;
    let senior = &as_erin.body["items"][2];
    assert_eq!(senior["you_approve"], true);
    assert_eq!(senior["you_may_ask"], false);
    assert_eq!(
        senior["why_not"],
        "Only members of Writers can ask for this."
    );

    // Pages by name.
    let first = api.get(&alice, "/api/v1/tracks?limit=2").await;
    assert_eq!(first.items("name"), ["editor", "ghost"]);
    let next = first.body["next"].as_str().unwrap();
    let rest = api
        .get(&alice, &format!("/api/v1/tracks?limit=2&cursor={next}"))
        .await;
    assert_eq!(rest.items("name"), ["senior-writer"]);
    assert_eq!(rest.body["next"], Value::Null);
}

async fn the_catalog_filters_by_app_and_resource_and_pages_with_a_cursor(t: TestLadder) {
    let alice = t.user("alice").await;
    let alice = token(&t, &alice, "alice-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    let all = api.get(&alice, "/api/v1/permissions?limit=500").await;
    assert_eq!(all.status, 200, "{}", all.body);
    let perms = all.items("perm");
    assert!(perms.len() >= 30, "{perms:?}");
    let mut sorted = perms.clone();
    sorted.sort_by_key(|p| {
        let p = p.as_str().unwrap();
        let (app, code) = p.split_once('.').unwrap();
        (app.to_string(), code.to_string())
    });
    assert_eq!(perms, sorted, "by app, then codename");
    let publish = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["perm"] == "blog.publish_post")
        .unwrap();
    assert_eq!(
        publish,
        &json!({ "perm": "blog.publish_post", "app": "blog", "resource": "post",
                 "codename": "publish_post", "name": "Can publish post" })
    );

    let blog = api.get(&alice, "/api/v1/permissions?app=blog").await;
    assert_eq!(
        blog.items("codename"),
        [
            "add_post",
            "change_post",
            "delete_post",
            "feature_post",
            "publish_post",
            "view_post"
        ]
    );
    let users = api.get(&alice, "/api/v1/permissions?resource=user").await;
    assert_eq!(
        users.items("perm"),
        [
            "auth.add_user",
            "auth.change_user",
            "auth.delete_user",
            "auth.view_user"
        ]
    );
    let none = api
        .get(&alice, "/api/v1/permissions?app=blog&resource=user")
        .await;
    assert_eq!(none.items("perm"), Vec::<Value>::new());

    // Pages of five, walked by the cursor, make the whole list once.
    let mut walked = Vec::new();
    let mut path = "/api/v1/permissions?limit=5".to_string();
    loop {
        let page = api.get(&alice, &path).await;
        assert!(page.items("perm").len() <= 5);
        walked.extend(page.items("perm"));
        match page.body["next"].as_str() {
            Some(next) => path = format!("/api/v1/permissions?limit=5&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(walked, perms);
}

async fn holders_are_listed_by_username_with_every_way_they_hold_it(t: TestLadder) {
    Workflow::new(&t).await;
    // carol holds it directly and through Senior Writers; dave held it, but
    // is inactive; frank holds nothing.
    let carol = t.user("carol").await;
    t.grant(&carol, &["blog.publish_post"]).await;
    t.join(&carol, &t.group("Senior Writers", &[]).await).await;
    let dave = t.user("dave").await;
    t.grant(&dave, &["blog.publish_post"]).await;
    set_active(&t, &dave, false).await;
    t.user("frank").await;
    let service = t.user("svc").await;
    t.grant(&service, &["auth.view_user"]).await;
    let svc = token(&t, &service, "svc-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);

    let held = api
        .get(&svc, "/api/v1/permissions/blog.publish_post/holders")
        .await;
    assert_eq!(held.status, 200, "{}", held.body);
    assert_eq!(
        held.body["items"],
        json!([
            { "username": "carol", "display_name": "",
              "sources": [{ "kind": "direct" }, { "kind": "group", "group": "Senior Writers" }] },
            { "username": "erin", "display_name": "",
              "sources": [{ "kind": "group", "group": "Editors" }] },
            { "username": "root", "display_name": "", "sources": [{ "kind": "superuser" }] },
        ])
    );
    assert_eq!(held.body["next"], Value::Null);
    // Someone who holds nothing of it is not listed; the superuser holds everything that exists.
    let feature = api
        .get(&svc, "/api/v1/permissions/blog.feature_post/holders")
        .await;
    assert_eq!(feature.items("username"), ["erin", "root"]);
    let nobody = api
        .get(&svc, "/api/v1/permissions/auth.delete_group/holders")
        .await;
    assert_eq!(nobody.items("username"), ["root"]);

    // One at a time, by the cursor.
    let mut walked = Vec::new();
    let base = "/api/v1/permissions/blog.publish_post/holders?limit=1";
    let mut path = base.to_string();
    loop {
        let page = api.get(&svc, &path).await;
        walked.extend(page.items("username"));
        match page.body["next"].as_str() {
            Some(next) => path = format!("{base}&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(walked, ["carol", "erin", "root"]);

    // A page is found from the holders' ids when few hold a permission, by
    // walking the users by name when many do: both ways give the same pages.
    let mut conn = t.ladder.db.acquire().await.unwrap();
    for perm in [
        "blog.publish_post",
        "blog.feature_post",
        "blog.add_post",
        "auth.delete_group",
    ] {
        let name = PermissionName::parse(perm).unwrap();
        let permission = catalog::resolve(&mut conn, &[name])
            .await
            .unwrap()
            .remove(0);
        for after in [
            None,
            Some("alice"),
            Some("carol"),
            Some("erin"),
            Some("root"),
        ] {
            let mut by = async |walk| {
                listing::holders_page_by(&mut conn, &permission, after, 1, walk)
                    .await
                    .unwrap()
            };
            let from_holders = by(Walk::FromHolders).await;
            let by_name = by(Walk::ByName).await;
            assert_eq!(from_holders, by_name, "{perm} after {after:?}");
        }
    }
}

async fn the_catalog_routes_answer_each_error_they_document(t: TestLadder) {
    let w = Workflow::new(&t).await;
    let staff = t.user("staffer").await;
    make_staff(&t, &staff).await;
    let alice = token(&t, &w.alice, "alice-app", None).await;
    let erin = token(&t, &w.erin, "erin-app", None).await;
    let erin_narrow = token(&t, &w.erin, "erin-narrow", Some(&["blog.view_post"])).await;
    let staff = token(&t, &staff, "staff-app", None).await;
    let app = t.serve().await;
    let api = Api::new(&app);
    let holders = "/api/v1/permissions/blog.add_post/holders";

    for path in ["/api/v1/tracks", "/api/v1/permissions", holders] {
        for token in [None, Some("ldr_not-a-token")] {
            let answer = api.send(reqwest::Method::GET, path, token, None, &[]).await;
            assert_eq!(answer.status, 401, "{path}");
            assert_eq!(answer.error().0, "unauthorized");
        }
    }
    // Who holds what is about users: auth.view_user, narrowed tokens included.
    for (who, token) in [
        ("alice", &alice),
        ("staff", &staff),
        ("narrow", &erin_narrow),
    ] {
        let answer = api.get(token, holders).await;
        assert_eq!(answer.status, 403, "{who}: {}", answer.body);
        assert!(answer.message().contains("auth.view_user"), "{who}");
    }
    assert_eq!(api.get(&erin, holders).await.status, 200);

    let missing = api
        .get(&erin, "/api/v1/permissions/blog.nothing/holders")
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error().0, "not_found");
    assert!(missing.message().contains("blog.nothing"));
    for (path, field) in [
        ("/api/v1/permissions/nodot/holders", "perm"),
        ("/api/v1/permissions/a.b.c/holders", "perm"),
        ("/api/v1/permissions/blog.add-post/holders", "perm"),
        (
            "/api/v1/permissions/blog.add_post/holders?cursor=zz",
            "cursor",
        ),
        ("/api/v1/permissions/blog.add_post/holders?limit=0", "limit"),
        ("/api/v1/permissions?app=two%20words", "app"),
        ("/api/v1/permissions?app=", "app"),
        ("/api/v1/permissions?resource=a.b", "resource"),
        ("/api/v1/permissions?cursor=abc", "cursor"),
        ("/api/v1/permissions?limit=501", "limit"),
        ("/api/v1/tracks?cursor=zz", "cursor"),
        ("/api/v1/tracks?limit=0", "limit"),
    ] {
        let answer = api.get(&erin, path).await;
        assert_eq!(answer.status, 422, "{path}: {}", answer.body);
        assert_eq!(answer.error(), ("invalid", Some(field)), "{path}");
    }
}
