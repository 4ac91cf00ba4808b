//! `/api/v1/check`: answers with their sources, who may ask, batches, and
//! the consistency levels across two instances.

use std::time::{Duration, Instant};

use ladder::{
    accounts::{User, tokens::CreateToken},
    permissions::{PermissionName, grants, revision},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestLadder},
    web_helpers::raw_post,
};

on_both_backends!(
    a_check_says_where_a_permission_comes_from_or_why_it_is_missing,
    anyone_may_check_themselves_and_only_viewers_may_check_others,
    a_batch_answers_in_order_with_an_error_per_failed_check,
    a_grant_is_seen_at_least_at_its_revision_on_another_instance,
    a_tokens_check_takes_the_short_lane_with_the_same_guards_and_layers,
);

/// A token for `user`, narrowed to `scope` if given.
async fn token(t: &TestLadder, user: &User, scope: Option<&[&str]>) -> String {
    let scope = scope.map(|perms| {
        perms
            .iter()
            .map(|p| PermissionName::parse(p).unwrap())
            .collect()
    });
    let made = t
        .ladder
        .db
        .run(CreateToken {
            actor: t.system(),
            owner: user.username.clone(),
            name: format!("checks-{}", scope.is_some()),
            expires_at: None,
            scope,
            now: t.now(),
        })
        .await
        .unwrap();
    made.secret
}

async fn get(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/check?{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn post(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/check", app.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn kinds(answer: &Value) -> Vec<String> {
    answer["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| match s["group"].as_str() {
            Some(g) => format!("{}:{g}", s["kind"].as_str().unwrap()),
            None => s["kind"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// A service account that may check anyone.
async fn checker(t: &TestLadder) -> User {
    let svc = t.user("checker").await;
    t.grant(&svc, &["auth.view_user"]).await;
    svc
}

async fn a_check_says_where_a_permission_comes_from_or_why_it_is_missing(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post"]).await;
    let writers = t
        .group("Writers", &["blog.add_post", "blog.change_post"])
        .await;
    t.join(&alice, &writers).await;
    t.superuser("root").await;
    let gone = t.user("gone").await;
    t.grant(&gone, &["blog.add_post"]).await;
    t.ladder
        .db
        .run(ladder::accounts::user_changes::SetFlag {
            actor: t.system(),
            username: gone.username.clone(),
            flag: ladder::accounts::user_changes::Flag::Active(false),
            now: t.now(),
        })
        .await
        .unwrap();
    let svc = checker(&t).await;
    let token = token(&t, &svc, None).await;
    let app = t.serve().await;

    let (status, answer) = get(&app, &token, "user=alice&perm=blog.add_post").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["user"], "alice");
    assert_eq!(answer["perm"], "blog.add_post");
    assert_eq!(kinds(&answer), ["direct", "group:Writers"]);
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let now = revision::current(&mut conn).await.unwrap();
    assert_eq!(
        answer["revision"], now,
        "a full check reads the current revision"
    );

    let (_, answer) = get(&app, &token, "user=alice&perm=blog.change_post").await;
    assert_eq!(
        (answer["allowed"].clone(), kinds(&answer)),
        (json!(true), vec!["group:Writers".to_string()])
    );
    let (_, answer) = get(&app, &token, "user=alice&perm=blog.delete_post").await;
    assert_eq!(
        (answer["allowed"].clone(), kinds(&answer)),
        (json!(false), vec!["not_held".to_string()])
    );
    // Django's rule: an unknown permission is simply not held; the superuser holds even that.
    let (_, answer) = get(&app, &token, "user=alice&perm=made.up").await;
    assert_eq!(answer["allowed"], false);
    let (_, answer) = get(&app, &token, "user=root&perm=made.up").await;
    assert_eq!(
        (answer["allowed"].clone(), kinds(&answer)),
        (json!(true), vec!["superuser".to_string()])
    );
    let (_, answer) = get(&app, &token, "user=gone&perm=blog.add_post").await;
    assert_eq!(
        (answer["allowed"].clone(), kinds(&answer)),
        (json!(false), vec!["inactive".to_string()])
    );
    // Usernames fold case, as everywhere.
    let (_, answer) = get(&app, &token, "user=ALICE&perm=blog.add_post").await;
    assert_eq!(answer["allowed"], true);

    let (status, answer) = get(&app, &token, "user=nobody&perm=blog.add_post").await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let (status, answer) = get(&app, &token, "user=alice&perm=no-dot").await;
    assert_eq!(status, 422);
    assert_eq!(answer["error"]["field"], "perm");
    let (status, answer) = get(&app, &token, "user=alice").await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = get(
        &app,
        &token,
        "user=alice&perm=blog.add_post&consistency=fresh",
    )
    .await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("consistency"))
    );
    // Every level gives the same answer about a settled state.
    for level in [
        "consistency=cached",
        "consistency=full",
        &format!("at_least={now}"),
    ] {
        let (status, answer) = get(
            &app,
            &token,
            &format!("user=alice&perm=blog.add_post&{level}"),
        )
        .await;
        assert_eq!(
            (status, answer["allowed"].clone()),
            (StatusCode::OK, json!(true)),
            "{level}"
        );
        assert_eq!(kinds(&answer), ["direct", "group:Writers"], "{level}");
    }
    let (status, _) = get(&app, "ldr_not-a-token", "user=alice&perm=blog.add_post").await;
    assert_eq!(status, 401);
}

async fn anyone_may_check_themselves_and_only_viewers_may_check_others(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post"]).await;
    t.user("bob").await;
    let alices = token(&t, &alice, None).await;
    let svc = checker(&t).await;
    t.grant(&svc, &["blog.add_post"]).await;
    // Narrowed to blog.add_post: it no longer holds auth.view_user.
    let narrowed = token(&t, &svc, Some(&["blog.add_post"])).await;
    let app = t.serve().await;

    let (status, answer) = get(&app, &alices, "user=alice&perm=blog.add_post").await;
    assert_eq!(
        (status, answer["allowed"].clone()),
        (StatusCode::OK, json!(true))
    );
    for (who, token) in [("alice", &alices), ("a narrowed token", &narrowed)] {
        let (status, answer) = get(&app, token, "user=bob&perm=blog.add_post").await;
        assert_eq!(status, 403, "{who}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("auth.view_user")
        );
    }
    // Refused before the lookup: whether "nobody" exists is not told.
    let (status, _) = get(&app, &alices, "user=nobody&perm=blog.add_post").await;
    assert_eq!(status, 403);
    // Anonymous callers are told to authenticate, in the envelope.
    let response = reqwest::get(format!(
        "{}/api/v1/check?user=alice&perm=blog.add_post",
        app.base
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

async fn a_batch_answers_in_order_with_an_error_per_failed_check(t: TestLadder) {
    let alice = t.user("alice").await;
    t.grant(&alice, &["blog.add_post"]).await;
    let svc = checker(&t).await;
    let token = token(&t, &svc, None).await;
    let app = t.serve().await;

    let checks = json!([
        {"user": "alice", "perm": "blog.add_post"},
        {"user": "nobody", "perm": "blog.add_post"},
        {"user": "alice", "perm": "bad perm"},
        {"user": "alice", "perm": "blog.delete_post"},
    ]);
    let (status, answer) = post(&app, &token, json!({ "checks": checks })).await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["allowed"], true);
    assert_eq!(
        (
            results[1]["user"].clone(),
            results[1]["error"]["status"].clone()
        ),
        (json!("nobody"), json!(404))
    );
    assert_eq!(
        (
            results[2]["error"]["status"].clone(),
            results[2]["error"]["field"].clone()
        ),
        (json!(422), json!("perm"))
    );
    assert_eq!(results[3]["allowed"], false);

    let (status, answer) = post(
        &app,
        &token,
        json!({ "checks": checks, "consistency": "cached" }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["results"][0]["allowed"], true);

    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"user": "alice", "perm": "blog.add_post"}))
        .collect();
    let (status, answer) = post(&app, &token, json!({ "checks": many })).await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("checks"))
    );
    let (status, _) = post(&app, &token, json!({ "checks": [], "extra": 1 })).await;
    assert_eq!(status, 422);
    let (status, answer) = post(&app, &token, json!({ "checks": [] })).await;
    assert_eq!(
        (status, answer["results"].clone()),
        (StatusCode::OK, json!([]))
    );
}

/// Another instance on the same database: a grant's revision is seen at
/// once with `at_least`, and a cached check catches up by itself.
async fn a_grant_is_seen_at_least_at_its_revision_on_another_instance(t: TestLadder) {
    let alice = t.user("alice").await;
    let svc = checker(&t).await;
    let token = token(&t, &svc, None).await;
    let other = TestLadder::serve_ladder(t.reopen(|_| {}).await).await;
    let query = "user=alice&perm=blog.publish_post";
    // The other instance remembers alice without the permission.
    let (_, answer) = get(&other, &token, &format!("{query}&consistency=cached")).await;
    assert_eq!(answer["allowed"], false);

    t.grant(&alice, &["blog.publish_post"]).await;
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let granted = revision::current(&mut conn).await.unwrap();
    let (status, answer) = get(&other, &token, &format!("{query}&at_least={granted}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["allowed"], true,
        "at_least={granted} saw an answer from before it: {answer}"
    );
    assert!(answer["revision"].as_i64().unwrap() >= granted);
    let (_, answer) = get(
        &other,
        &token,
        &format!("{query}&consistency=at_least={granted}"),
    )
    .await;
    assert_eq!(answer["allowed"], true);

    // Cached answers follow the change log by themselves (bounded wait, not a timing assertion).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, answer) = get(&other, &token, &format!("{query}&consistency=cached")).await;
        if answer["allowed"] == true {
            assert!(answer["revision"].as_i64().unwrap() >= granted);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cached answer never caught up: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A revocation is seen by the very next full check there.
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    grants::revoke(
        &mut tx,
        &t.system(),
        grants::Grantee::User(&alice),
        &[PermissionName::parse("blog.publish_post").unwrap()],
        t.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (_, answer) = get(&other, &token, query).await;
    assert_eq!(
        answer["allowed"], false,
        "a full check served a revoked permission"
    );
}

/// A token's check skips the browser's layers (`web::check_lane`); what a
/// caller sees must not change: the screen for control characters, the
/// JSON errors, the security headers and the request id.
async fn a_tokens_check_takes_the_short_lane_with_the_same_guards_and_layers(t: TestLadder) {
    let svc = checker(&t).await;
    let token = token(&t, &svc, None).await;
    let app = t.serve().await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!(
            "{}/api/v1/check?user=checker&perm=auth.view_user",
            app.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    for name in [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "x-request-id",
    ] {
        assert!(headers.contains_key(name), "{name} is missing");
    }

    // A NUL never reaches the database (PostgreSQL would refuse it with a 500).
    let (status, answer) = get(&app, &token, "user=al%00ice&perm=blog.add_post").await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("user"))
    );
    let (status, answer) = post(
        &app,
        &token,
        json!({"checks": [{"user": "al\u{0}ice", "perm": "blog.add_post"}, {"user": "checker", "perm": "auth.view_user"}]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["error"]["status"], 422);
    assert_eq!(answer["results"][1]["allowed"], true);

    // Refusals are the API's JSON envelope, as on the full stack.
    let (status, answer) = get(&app, "ldr_not-a-token", "user=checker&perm=auth.view_user").await;
    assert_eq!(
        (status, answer["error"]["status"].clone()),
        (StatusCode::UNAUTHORIZED, json!(401))
    );
    let (status, answer) = get(&app, &token, "user=checker").await;
    assert_eq!(
        (status, answer["error"]["status"].clone()),
        (StatusCode::BAD_REQUEST, json!(400))
    );
    // Over the body limits: 3 MiB read up to the 2 MiB limit, 5 MiB refused unread.
    let bearer = format!("Authorization: Bearer {token}\r\n");
    for size in [3 << 20, 5 << 20] {
        let (status, body) = raw_post(&app.base, "/api/v1/check", &bearer, size).await;
        assert_eq!(status, 413, "{size} bytes: {body}");
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        assert_eq!(body["error"]["code"], "too_large", "{body}");
    }
    // Other methods take the full stack and get its 405.
    let response = client
        .delete(format!("{}/api/v1/check", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["status"], 405);
}
