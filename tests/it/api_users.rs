//! `/api/v1/users`: the list (the console's search), get, create, update
//! and passwords, with every error each documents.

use ladder::accounts::{Email, User, Username, users};
use reqwest::header;
use serde_json::{Value, json};

use crate::{
    api_caller::{Api, after, answer, by_token, current_revision, events},
    helpers::{TestApp, TestLadder},
    web_helpers::{make_staff, set_active},
};

on_both_backends!(
    the_user_list_searches_filters_and_pages_as_the_console_does,
    creating_a_user_answers_201_with_its_location_revision_and_an_api_audit_event,
    getting_a_user_shows_their_groups_and_direct_permissions,
    an_update_sets_what_is_given_all_or_nothing_under_the_console_rules,
    a_password_set_through_the_api_signs_in_and_a_service_account_cannot_have_one,
);

/// What the delegate holds: the user rights, and a little of the blog.
pub const DELEGATE: &[&str] = &[
    "auth.view_user",
    "auth.change_user",
    "auth.add_user",
    "auth.view_group",
    "auth.change_group",
    "blog.add_post",
    "blog.view_post",
];

/// Tokens of the superuser `root` and of a `delegate` holding [`DELEGATE`].
pub struct Callers {
    pub as_root: Api,
    pub as_delegate: Api,
}

impl Callers {
    pub async fn new(t: &TestLadder, app: &TestApp) -> Callers {
        let root = t.superuser("root").await;
        let delegate = t.user("delegate").await;
        t.grant(&delegate, DELEGATE).await;
        Callers {
            as_root: Api::as_user(t, app, &root, "root-tool").await,
            as_delegate: Api::as_user(t, app, &delegate, "support-tool").await,
        }
    }
}

fn usernames(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

async fn listed(api: &Api, query: &str) -> Vec<String> {
    usernames(api.get(&format!("/api/v1/users?{query}")).await.ok(200))
}

async fn the_user_list_searches_filters_and_pages_as_the_console_does(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    for name in ["alice", "alina", "dave"] {
        t.user(name).await;
    }
    let writers = t.group("Writers", &[]).await;
    let bob = t.user("bob").await;
    t.join(&bob, &writers).await;
    let carol = t.user("carol").await;
    make_staff(&t, &carol).await;
    set_active(&t, &carol, false).await;
    let api = &c.as_delegate;

    let everyone = listed(api, "").await;
    assert_eq!(
        everyone,
        ["alice", "alina", "bob", "carol", "dave", "delegate", "root"]
    );
    // The console's search: a substring of three or more characters, a prefix below that.
    assert_eq!(listed(api, "q=lin").await, ["alina"]);
    assert_eq!(listed(api, "q=AL").await, ["alice", "alina"]);
    assert_eq!(listed(api, "q=nobody-at-all").await, Vec::<String>::new());
    assert_eq!(listed(api, "group=Writers").await, ["bob"]);
    assert_eq!(listed(api, "active=false").await, ["carol"]);
    assert_eq!(listed(api, "staff=true").await, ["carol", "root"]);
    assert_eq!(listed(api, "staff=true&active=true").await, ["root"]);
    let first = &api.get("/api/v1/users?q=alice").await.body["items"][0];
    assert_eq!(
        (first["email"].clone(), first["is_active"].clone()),
        (json!("alice@example.com"), json!(true))
    );

    // Pages of two, each after the last: every user once, then no next.
    let mut walked = Vec::new();
    let mut path = "/api/v1/users?limit=2".to_string();
    loop {
        let page = api.get(&path).await;
        let page = page.ok(200);
        assert!(page["items"].as_array().unwrap().len() <= 2);
        walked.extend(usernames(page));
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/users?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(walked, everyone);
    // Filters and paging together.
    let page = api.get("/api/v1/users?q=example.com&limit=3").await;
    let next = page.ok(200)["next"].as_str().unwrap().to_string();
    assert_eq!(usernames(&page.body), ["alice", "alina", "bob"]);
    let rest = format!("/api/v1/users?q=example.com&limit=3&cursor={next}");
    assert_eq!(
        usernames(api.get(&rest).await.ok(200)),
        ["carol", "dave", "delegate"]
    );

    api.get("/api/v1/users?limit=0")
        .await
        .error(422, Some("limit"));
    api.get("/api/v1/users?limit=501")
        .await
        .error(422, Some("limit"));
    api.get("/api/v1/users?cursor=zz")
        .await
        .error(422, Some("cursor"));
    api.get("/api/v1/users?limit=abc").await.error(400, None);
    api.get("/api/v1/users?active=maybe").await.error(400, None);
    let writer = Api::as_user(&t, &app, &bob, "bobs-tool").await;
    writer.get("/api/v1/users").await.refused("auth.view_user");
}

async fn creating_a_user_answers_201_with_its_location_revision_and_an_api_audit_event(
    t: TestLadder,
) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    let api = &c.as_delegate;
    let before = current_revision(&t).await;

    let created = api
        .post(
            "/api/v1/users",
            json!({"username": "newbie", "email": "newbie@Example.COM",
                   "display_name": "New Bie", "password": "a-long-passphrase"}),
        )
        .await;
    let body = created.ok(201);
    assert_eq!(created.location.as_deref(), Some("/api/v1/users/newbie"));
    assert_eq!(body["username"], "newbie");
    assert_eq!(body["email"], "newbie@example.com");
    assert_eq!(body["display_name"], "New Bie");
    assert_eq!(
        (body["is_active"].clone(), body["is_staff"].clone()),
        (json!(true), json!(false))
    );
    assert!(created.revision() >= before);
    let shown = api.get("/api/v1/users/newbie").await;
    assert_eq!(shown.ok(200)["groups"], json!([]));
    assert_eq!(shown.body["permissions"], json!([]));
    assert_eq!(
        app.client()
            .login("newbie", "a-long-passphrase")
            .await
            .status(),
        303
    );
    let event = by_token(events(&t, "user.create").await, "support-tool");
    assert_eq!(event.target_name, "newbie");
    assert_eq!(event.actor_name, "delegate");

    // Taken, whatever the case.
    let users_before = t.count("users").await;
    let taken = api
        .post(
            "/api/v1/users",
            json!({"username": "NEWBIE", "email": "n@example.com"}),
        )
        .await;
    assert!(taken.error(409, None).contains("already taken"));
    // Created deactivated: one more event, under the rule for that.
    let inactive = api
        .post(
            "/api/v1/users",
            json!({"username": "dormant", "email": "d@example.com", "is_active": false}),
        )
        .await;
    assert_eq!(inactive.ok(201)["is_active"], false);
    assert!(!get(&t, "dormant").await.is_active);
    by_token(events(&t, "user.deactivate").await, "support-tool");
    // Only the superuser makes staff.
    let staff = json!({"username": "boss", "email": "b@example.com", "is_staff": true});
    api.post("/api/v1/users", staff.clone())
        .await
        .refused("only the superuser may create staff users");
    assert_eq!(
        c.as_root.post("/api/v1/users", staff).await.ok(201)["is_staff"],
        true
    );

    for (body, field) in [
        (json!({"email": "x@example.com"}), Some("username")),
        (
            json!({"username": "a b", "email": "x@example.com"}),
            Some("username"),
        ),
        (
            json!({"username": "..", "email": "x@example.com"}),
            Some("username"),
        ),
        (json!({"username": "x1"}), Some("email")),
        (
            json!({"username": "x2", "email": "not-an-address"}),
            Some("email"),
        ),
        (
            json!({"username": "x3", "email": "x@example.com", "password": "short"}),
            Some("password"),
        ),
        (
            json!({"username": "x4", "email": "x@example.com", "password": "x4"}),
            Some("password"),
        ),
        (
            json!({"username": "x5", "email": "x@example.com", "display_name": "d".repeat(151)}),
            Some("display_name"),
        ),
        // The wrong shape: serde says what, with no single field.
        (
            json!({"username": "x6", "email": "x@example.com", "admin": true}),
            None,
        ),
        (json!({"username": 6, "email": "x@example.com"}), None),
    ] {
        api.post("/api/v1/users", body).await.error(422, field);
    }
    let not_json = reqwest::Client::new()
        .post(format!("{}/api/v1/users", app.base))
        .bearer_auth(&api.token)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    answer(not_json).await.error(400, None);
    // The route's two permissions, each checked.
    for (holds, lacks) in [
        ("auth.add_user", "auth.change_user"),
        ("auth.change_user", "auth.add_user"),
    ] {
        let half = t.user(&format!("half-{}", lacks.replace('.', "-"))).await;
        t.grant(&half, &[holds]).await;
        let half = Api::as_user(&t, &app, &half, "half").await;
        half.post(
            "/api/v1/users",
            json!({"username": "x7", "email": "x@example.com"}),
        )
        .await
        .refused(lacks);
    }
    assert_eq!(t.count("users").await, users_before + 2 + 2);
}

async fn get(t: &TestLadder, name: &str) -> User {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    users::get_by_username(&mut conn, name).await.unwrap()
}

async fn getting_a_user_shows_their_groups_and_direct_permissions(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    let bob = t.user("bob").await;
    let writers = t.group("Writers", &["blog.add_post"]).await;
    let editors = t.group("Editors", &[]).await;
    t.join(&bob, &writers).await;
    t.join(&bob, &editors).await;
    t.grant(&bob, &["blog.publish_post", "blog.delete_post"])
        .await;

    let shown = c.as_delegate.get("/api/v1/users/BOB").await;
    let body = shown.ok(200);
    assert_eq!(body["username"], "bob");
    assert_eq!(
        body["groups"],
        json!([{"id": editors.group_id, "name": "Editors"}, {"id": writers.group_id, "name": "Writers"}])
    );
    assert_eq!(
        body["permissions"],
        json!(["blog.delete_post", "blog.publish_post"])
    );
    assert!(body["date_joined"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["last_login"], Value::Null);
    assert!(
        c.as_delegate
            .get("/api/v1/users/nobody")
            .await
            .error(404, None)
            .contains("nobody")
    );
    let plain = Api::as_user(&t, &app, &bob, "bobs-tool").await;
    plain
        .get("/api/v1/users/bob")
        .await
        .refused("auth.view_user");
}

async fn an_update_sets_what_is_given_all_or_nothing_under_the_console_rules(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    let bob = t.user("bob").await;
    let carol = t.user("carol").await;
    t.grant(&carol, &["blog.publish_post"]).await;
    t.user("alice").await;
    let api = &c.as_delegate;

    let before = current_revision(&t).await;
    let patched = api
        .patch(
            "/api/v1/users/bob",
            json!({"display_name": "Bobby", "email": "bobby@Elsewhere.org"}),
        )
        .await;
    let body = patched.ok(200);
    assert_eq!(
        (body["display_name"].clone(), body["email"].clone()),
        (json!("Bobby"), json!("bobby@elsewhere.org"))
    );
    // A display name touches no one's permissions: the revision stays.
    assert_eq!(patched.revision(), before);
    let event = by_token(events(&t, "user.update").await, "support-tool");
    assert_eq!(
        after(&event),
        json!({"display_name": "Bobby", "email": "bobby@elsewhere.org"})
    );
    // The console's search index follows.
    assert_eq!(listed(api, "q=elsewhere").await, ["bob"]);
    // Nothing given, nothing changed.
    assert_eq!(
        api.patch("/api/v1/users/bob", json!({})).await.ok(200)["display_name"],
        "Bobby"
    );

    // All or nothing: the refused staff flag keeps the display name too.
    api.patch(
        "/api/v1/users/bob",
        json!({"display_name": "Robert", "is_staff": true}),
    )
    .await
    .refused("only the superuser may set or clear is_staff");
    assert_eq!(t.reload(&bob).await.display_name, "Bobby");
    assert_eq!(
        c.as_root
            .patch("/api/v1/users/bob", json!({"is_staff": true}))
            .await
            .ok(200)["is_staff"],
        true
    );
    // Now staff: the superuser's alone to act on.
    api.patch("/api/v1/users/bob", json!({"is_active": false}))
        .await
        .refused("only the superuser may change the account of bob");
    // Acting on an account needs everything it holds: its email too.
    for change in [
        json!({"is_active": false}),
        json!({"email": "carol@evil.example"}),
    ] {
        api.patch("/api/v1/users/carol", change)
            .await
            .refused("blog.publish_post");
    }
    assert_eq!(t.reload(&carol).await.email, "carol@example.com");
    api.patch("/api/v1/users/delegate", json!({"display_name": "Me"}))
        .await
        .refused("only the superuser may change their own");

    let deactivated = api
        .patch("/api/v1/users/alice", json!({"is_active": false}))
        .await;
    assert_eq!(deactivated.ok(200)["is_active"], false);
    assert!(
        deactivated.revision() > before,
        "deactivating changes what alice holds"
    );
    by_token(events(&t, "user.deactivate").await, "support-tool");
    c.as_root
        .patch("/api/v1/users/root", json!({"is_active": false}))
        .await
        .error(409, None);

    api.patch("/api/v1/users/nobody", json!({"display_name": "x"}))
        .await
        .error(404, None);
    api.patch("/api/v1/users/bob", json!({"email": "bad"}))
        .await
        .error(422, Some("email"));
    api.patch(
        "/api/v1/users/bob",
        json!({"display_name": "x".repeat(151)}),
    )
    .await
    .error(422, Some("display_name"));
    api.patch("/api/v1/users/bob", json!({"is_active": "yes"}))
        .await
        .error(422, None);
    api.patch("/api/v1/users/bob", json!({"colour": "red"}))
        .await
        .error(422, None);
}

async fn a_password_set_through_the_api_signs_in_and_a_service_account_cannot_have_one(
    t: TestLadder,
) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    t.user("alice").await;
    let carol = t.user("carol").await;
    t.grant(&carol, &["blog.publish_post"]).await;
    let service = service_account(&t, "reporting").await;
    let api = &c.as_delegate;
    let set = |name: &str, password: &str| {
        let path = format!("/api/v1/users/{name}/password");
        let body = json!({ "password": password });
        async move { api.put(&path, body).await }
    };

    let done = set("alice", "a-brand-new-secret").await;
    assert_eq!(done.ok(200)["username"], "alice");
    assert_eq!(
        app.client()
            .login("alice", "a-brand-new-secret")
            .await
            .status(),
        303
    );
    assert_ne!(
        app.client().login("alice", "alice-password").await.status(),
        303
    );
    let event = by_token(events(&t, "user.set_password").await, "support-tool");
    assert!(event.after_state.is_none(), "no hash in the audit log");

    set("alice", "short").await.error(422, Some("password"));
    set("alice", "1234567890")
        .await
        .error(422, Some("password"));
    set("nobody", "a-brand-new-secret").await.error(404, None);
    set("carol", "a-brand-new-secret")
        .await
        .refused("blog.publish_post");
    let hash = t.reload(&service).await.password_hash;
    let refused = c
        .as_root
        .put(
            "/api/v1/users/reporting/password",
            json!({"password": "a-brand-new-secret"}),
        )
        .await;
    assert!(refused.error(409, None).contains("service account"));
    assert_eq!(t.reload(&service).await.password_hash, hash);
}

/// A service account, made as `ladder user add NAME --service` makes one.
async fn service_account(t: &TestLadder, name: &str) -> User {
    let new = users::NewUser {
        username: Username::parse(name).unwrap(),
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        display_name: String::new(),
        password: None,
        is_staff: false,
        is_service: true,
    };
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let user = users::create(&mut tx, &t.system(), new, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    user
}
