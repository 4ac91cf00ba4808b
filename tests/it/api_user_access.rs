//! A user's groups and direct permissions through the API: the console's
//! delegation rules with every refusal naming what is missing, only the
//! superuser granting `auth.change_user`, each write's revision seen by a
//! check `at_least` it; and what a user holds in effect, with its sources.

use serde_json::{Value, json};

use crate::{
    api_caller::{Api, after, by_token, current_revision, events},
    api_users::Callers,
    helpers::TestLadder,
    web_helpers::set_active,
};

on_both_backends!(
    memberships_follow_the_delegation_rule_for_the_groups_permissions,
    direct_grants_name_what_is_missing_and_only_the_superuser_grants_change_user,
    a_grant_through_the_api_is_seen_by_a_check_at_least_its_revision,
    effective_permissions_say_where_each_one_comes_from,
);

async fn is_member(t: &TestLadder, user: &str, group: i64) -> bool {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let user = ladder::accounts::users::get_by_username(&mut conn, user)
        .await
        .unwrap();
    ladder::accounts::groups::is_member(&mut conn, user.user_id, group)
        .await
        .unwrap()
}

async fn memberships_follow_the_delegation_rule_for_the_groups_permissions(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    t.user("bob").await;
    // The delegate holds what Writers hold, but not what Editors hold.
    let writers = t
        .group("Writers", &["blog.add_post", "blog.view_post"])
        .await;
    let editors = t.group("Editors", &["blog.publish_post"]).await;
    let api = &c.as_delegate;
    let path = |user: &str, group: i64| format!("/api/v1/users/{user}/groups/{group}");

    let before = current_revision(&t).await;
    let added = api.put_empty(&path("bob", writers.group_id)).await;
    assert_eq!(
        added.ok(200),
        &json!({"user": "bob", "group": {"id": writers.group_id, "name": "Writers"},
                "member": true, "changed": true, "revision": added.revision()})
    );
    assert!(added.revision() > before);
    assert!(is_member(&t, "bob", writers.group_id).await);
    let event = by_token(events(&t, "group.add_user").await, "support-tool");
    assert_eq!(event.target_name, "bob");
    let again = api.put_empty(&path("BOB", writers.group_id)).await;
    assert_eq!(
        (again.ok(200)["changed"].clone(), again.revision()),
        (json!(false), added.revision())
    );

    // Joining Editors would grant blog.publish_post, which the delegate lacks.
    api.put_empty(&path("bob", editors.group_id))
        .await
        .refused("blog.publish_post");
    assert!(!is_member(&t, "bob", editors.group_id).await);
    // And so would leaving it: a removal takes what the group gives.
    let carol = t.user("carol").await;
    t.join(&carol, &editors).await;
    api.delete(&path("carol", editors.group_id))
        .await
        .refused("blog.publish_post");
    assert!(is_member(&t, "carol", editors.group_id).await);
    api.put_empty(&path("delegate", writers.group_id))
        .await
        .refused("only the superuser may change their own");
    api.put_empty(&path("root", writers.group_id))
        .await
        .refused("only the superuser may change the superuser");
    c.as_root
        .put_empty(&path("bob", editors.group_id))
        .await
        .ok(200);

    let removed = api.delete(&path("bob", writers.group_id)).await;
    assert_eq!(
        (
            removed.ok(200)["member"].clone(),
            removed.body["changed"].clone()
        ),
        (json!(false), json!(true))
    );
    assert!(!is_member(&t, "bob", writers.group_id).await);
    by_token(events(&t, "group.remove_user").await, "support-tool");
    let again = api.delete(&path("bob", writers.group_id)).await;
    assert_eq!(again.ok(200)["changed"], false);

    for missing in [
        path("bob", 999_999),
        "/api/v1/users/bob/groups/abc".into(),
        path("nobody", writers.group_id),
    ] {
        api.put_empty(&missing).await.error(404, None);
        api.delete(&missing).await.error(404, None);
    }
    let writer = t.user("walter").await;
    let writer = Api::as_user(&t, &app, &writer, "walters-tool").await;
    writer
        .put_empty(&path("bob", writers.group_id))
        .await
        .refused("auth.change_user");
}

async fn direct_grants_name_what_is_missing_and_only_the_superuser_grants_change_user(
    t: TestLadder,
) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    t.user("bob").await;
    let api = &c.as_delegate;
    let path = |user: &str, perm: &str| format!("/api/v1/users/{user}/permissions/{perm}");

    let granted = api.put_empty(&path("bob", "blog.add_post")).await;
    assert_eq!(
        granted.ok(200),
        &json!({"user": "bob", "permission": "blog.add_post", "granted": true,
                "changed": true, "revision": granted.revision()})
    );
    let event = by_token(events(&t, "permission.grant").await, "support-tool");
    assert_eq!(
        after(&event),
        json!({"held": true, "permissions": ["blog.add_post"]})
    );
    let again = api.put_empty(&path("bob", "blog.add_post")).await;
    assert_eq!(again.ok(200)["changed"], false);
    let shown = api.get("/api/v1/users/bob").await;
    assert_eq!(shown.ok(200)["permissions"], json!(["blog.add_post"]));

    // What the delegate does not hold, it can neither grant nor revoke.
    api.put_empty(&path("bob", "blog.publish_post"))
        .await
        .refused("you do not hold blog.publish_post");
    let carol = t.user("carol").await;
    t.grant(&carol, &["blog.publish_post"]).await;
    api.delete(&path("carol", "blog.publish_post"))
        .await
        .refused("you do not hold blog.publish_post");
    // auth.change_user is the superuser's to give, even by one who holds it.
    api.put_empty(&path("bob", "auth.change_user"))
        .await
        .refused("only the superuser may grant auth.change_user");
    assert_eq!(
        api.get("/api/v1/users/bob").await.body["permissions"],
        json!(["blog.add_post"])
    );
    let by_root = c.as_root.put_empty(&path("bob", "auth.change_user")).await;
    assert_eq!(by_root.ok(200)["granted"], true);
    api.put_empty(&path("root", "blog.add_post"))
        .await
        .refused("only the superuser may change the superuser");
    api.put_empty(&path("delegate", "blog.view_post"))
        .await
        .refused("only the superuser may change their own");

    let revoked = api.delete(&path("bob", "blog.add_post")).await;
    assert_eq!(
        (
            revoked.ok(200)["granted"].clone(),
            revoked.body["changed"].clone()
        ),
        (json!(false), json!(true))
    );
    by_token(events(&t, "permission.revoke").await, "support-tool");

    api.put_empty(&path("bob", "blog.no_such_thing"))
        .await
        .error(404, None);
    api.put_empty(&path("nobody", "blog.add_post"))
        .await
        .error(404, None);
    for malformed in ["nodot", "a.b.c", "blog.add-post"] {
        api.put_empty(&path("bob", malformed))
            .await
            .error(422, Some("perm"));
        api.delete(&path("bob", malformed))
            .await
            .error(422, Some("perm"));
    }
}

async fn a_grant_through_the_api_is_seen_by_a_check_at_least_its_revision(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    t.user("bob").await;
    let writers = t.group("Writers", &["blog.view_post"]).await;
    let api = &c.as_delegate;
    let check = |perm: &str, at_least: i64| {
        let path = format!("/api/v1/check?user=bob&perm={perm}&at_least={at_least}");
        async move { api.get(&path).await }
    };
    // Another instance on the same database answers the checks.
    let other = crate::helpers::TestLadder::serve_ladder(t.reopen(|_| {}).await).await;
    let elsewhere = api.on(&other);
    let seen = elsewhere
        .get("/api/v1/check?user=bob&perm=blog.add_post&consistency=cached")
        .await;
    assert_eq!(seen.ok(200)["allowed"], false);

    let mut revisions = vec![current_revision(&t).await];
    let granted = api
        .put_empty("/api/v1/users/bob/permissions/blog.add_post")
        .await;
    revisions.push(granted.revision());
    for checker in [api, &elsewhere] {
        let path = format!(
            "/api/v1/check?user=bob&perm=blog.add_post&at_least={}",
            granted.revision()
        );
        let answer = checker.get(&path).await;
        assert_eq!(answer.ok(200)["allowed"], true, "{}", answer.body);
        assert!(answer.revision() >= granted.revision());
    }
    let joined = api
        .put_empty(&format!("/api/v1/users/bob/groups/{}", writers.group_id))
        .await;
    revisions.push(joined.revision());
    let answer = check("blog.view_post", joined.revision()).await;
    assert_eq!(
        answer.ok(200)["sources"],
        json!([{"kind": "group", "group": "Writers"}])
    );
    let revoked = api
        .delete("/api/v1/users/bob/permissions/blog.add_post")
        .await;
    revisions.push(revoked.revision());
    assert_eq!(
        check("blog.add_post", revoked.revision()).await.ok(200)["allowed"],
        false
    );
    // Each change to what bob holds is a revision of its own, in order.
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "revisions do not increase: {revisions:?}"
    );
}

fn sources(answer: &Value) -> Vec<(String, Vec<String>)> {
    answer["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let from = p["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| match s["group"].as_str() {
                    Some(g) => format!("group:{g}"),
                    None => s["kind"].as_str().unwrap().to_string(),
                })
                .collect();
            (p["permission"].as_str().unwrap().to_string(), from)
        })
        .collect()
}

async fn effective_permissions_say_where_each_one_comes_from(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    let bob = t.user("bob").await;
    let writers = t
        .group("Writers", &["blog.add_post", "blog.view_post"])
        .await;
    t.join(&bob, &writers).await;
    t.grant(&bob, &["blog.add_post"]).await;
    let carol = t.user("carol").await;
    t.grant(&carol, &["blog.add_post"]).await;
    set_active(&t, &carol, false).await;
    let api = &c.as_delegate;

    let now = current_revision(&t).await;
    let held = api.get("/api/v1/users/bob/permissions").await;
    assert_eq!(
        sources(held.ok(200)),
        [
            (
                "blog.add_post".to_string(),
                vec!["direct".to_string(), "group:Writers".to_string()]
            ),
            (
                "blog.view_post".to_string(),
                vec!["group:Writers".to_string()]
            ),
        ]
    );
    assert!(held.revision() >= now);
    assert_eq!(
        (
            held.body["is_active"].clone(),
            held.body["is_superuser"].clone()
        ),
        (json!(true), json!(false))
    );
    // The superuser holds every permission in the catalog.
    let root = api.get("/api/v1/users/root/permissions").await;
    let all = sources(root.ok(200));
    assert_eq!(all.len() as i64, t.count("permissions").await);
    assert!(all.iter().all(|(_, from)| from == &["superuser"]));
    // An inactive user holds nothing, whatever was granted.
    let inactive = api.get("/api/v1/users/carol/permissions").await;
    assert_eq!(inactive.ok(200)["permissions"], json!([]));
    assert_eq!(inactive.body["is_active"], false);
    api.get("/api/v1/users/nobody/permissions")
        .await
        .error(404, None);
    let own = Api::as_user(&t, &app, &bob, "bobs-tool").await;
    own.get("/api/v1/users/bob/permissions")
        .await
        .refused("auth.view_user");
}
