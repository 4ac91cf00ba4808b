//! `/api/v1/groups`: list, get, create, rename, delete, members and the
//! group's permissions, with every error each documents; the delegation
//! rule and the promotion tracks' rules apply as in the console.

use ladder::accounts::Group;
use serde_json::{Value, json};

use crate::{
    api_caller::{Api, after, by_token, current_revision, events},
    helpers::{TestApp, TestLadder},
};

on_both_backends!(
    groups_are_listed_by_name_in_pages_and_shown_with_their_permissions,
    creating_renaming_and_deleting_a_group_answer_as_documented,
    a_groups_members_are_listed_in_pages,
    a_groups_permissions_are_set_whole_or_one_at_a_time_under_the_delegation_rule,
);

/// What the group admin holds: every group right, and some of the blog.
const GROUP_ADMIN: &[&str] = &[
    "auth.view_group",
    "auth.add_group",
    "auth.change_group",
    "auth.delete_group",
    "auth.view_user",
    "blog.add_post",
    "blog.view_post",
    "blog.change_post",
];

/// Tokens of the superuser `root` and of `groupie`, holding [`GROUP_ADMIN`].
struct Callers {
    as_root: Api,
    as_admin: Api,
}

impl Callers {
    async fn new(t: &TestLadder, app: &TestApp) -> Callers {
        let root = t.superuser("root").await;
        let admin = t.user("groupie").await;
        t.grant(&admin, GROUP_ADMIN).await;
        Callers {
            as_root: Api::as_user(t, app, &root, "root-tool").await,
            as_admin: Api::as_user(t, app, &admin, "groups-tool").await,
        }
    }
}

fn names(page: &Value, key: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g[key].as_str().unwrap().to_string())
        .collect()
}

/// Every item of a list, page by page, checking each page's size.
async fn walk(api: &Api, path: &str, key: &str, limit: usize) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut all = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page_path = match &next {
            None => format!("{path}{sep}limit={limit}"),
            Some(cursor) => format!("{path}{sep}limit={limit}&cursor={cursor}"),
        };
        let page = api.get(&page_path).await;
        let items = names(page.ok(200), key);
        assert!(items.len() <= limit);
        all.extend(items);
        match page.body["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_string()),
            None => return all,
        }
    }
}

async fn groups_are_listed_by_name_in_pages_and_shown_with_their_permissions(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    // The promotion track's groups (Editors, Senior Writers, Writers) exist already.
    let alpha = t.group("Alpha", &["blog.view_post", "blog.add_post"]).await;
    t.group("Zeta", &[]).await;
    let api = &c.as_admin;

    let all = names(api.get("/api/v1/groups").await.ok(200), "name");
    assert_eq!(
        all,
        ["Alpha", "Editors", "Senior Writers", "Writers", "Zeta"]
    );
    assert_eq!(walk(api, "/api/v1/groups", "name", 2).await, all);
    assert_eq!(walk(api, "/api/v1/groups", "name", 1).await, all);
    let first = &api.get("/api/v1/groups?limit=1").await.body["items"][0];
    assert_eq!(first["id"], alpha.group_id);
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));

    let shown = api.get(&format!("/api/v1/groups/{}", alpha.group_id)).await;
    let body = shown.ok(200);
    assert_eq!(
        (body["name"].clone(), body["permissions"].clone()),
        (json!("Alpha"), json!(["blog.add_post", "blog.view_post"]))
    );
    for missing in ["/api/v1/groups/999999", "/api/v1/groups/Alpha"] {
        api.get(missing).await.error(404, None);
    }
    api.get("/api/v1/groups?limit=0")
        .await
        .error(422, Some("limit"));
    api.get("/api/v1/groups?cursor=zz")
        .await
        .error(422, Some("cursor"));
    api.get("/api/v1/groups?limit=x").await.error(400, None);
    let writer = t.user("walter").await;
    let writer = Api::as_user(&t, &app, &writer, "walters-tool").await;
    writer
        .get("/api/v1/groups")
        .await
        .refused("auth.view_group");
    writer
        .get(&format!("/api/v1/groups/{}", alpha.group_id))
        .await
        .refused("auth.view_group");
}

async fn group_named(t: &TestLadder, name: &str) -> Option<Group> {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    ladder::accounts::groups::find_by_name(&mut conn, name)
        .await
        .unwrap()
}

async fn creating_renaming_and_deleting_a_group_answer_as_documented(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    let api = &c.as_admin;

    let before = current_revision(&t).await;
    let created = api
        .post("/api/v1/groups", json!({"name": "  Reviewers  "}))
        .await;
    let body = created.ok(201);
    let id = body["id"].as_i64().unwrap();
    assert_eq!(body["name"], "Reviewers");
    assert_eq!(
        created.location.as_deref(),
        Some(format!("/api/v1/groups/{id}").as_str())
    );
    assert_eq!(created.revision(), before, "an empty group changes no one");
    let event = by_token(events(&t, "group.create").await, "groups-tool");
    assert_eq!(event.target_name, "Reviewers");
    assert_eq!(
        api.get(&format!("/api/v1/groups/{id}")).await.ok(200)["permissions"],
        json!([])
    );
    api.post("/api/v1/groups", json!({"name": "Reviewers"}))
        .await
        .error(409, None);
    for (body, field) in [
        (json!({"name": "  "}), Some("name")),
        (json!({}), Some("name")),
        (json!({"name": "n".repeat(151)}), Some("name")),
        (json!({"name": "Fine", "colour": "red"}), None),
        (json!({"name": 5}), None),
    ] {
        api.post("/api/v1/groups", body).await.error(422, field);
    }

    let path = format!("/api/v1/groups/{id}");
    let renamed = api.patch(&path, json!({"name": "Proofreaders"})).await;
    assert_eq!(
        (renamed.ok(200)["name"].clone(), renamed.body["id"].clone()),
        (json!("Proofreaders"), json!(id))
    );
    let event = by_token(events(&t, "group.rename").await, "groups-tool");
    assert_eq!(after(&event), json!({"name": "Proofreaders"}));
    api.patch(&path, json!({"name": "Writers"}))
        .await
        .error(409, None);
    api.patch(&path, json!({"name": ""}))
        .await
        .error(422, Some("name"));
    api.patch("/api/v1/groups/999999", json!({"name": "Other"}))
        .await
        .error(404, None);
    // A promotion track's group is the superuser's to rename or delete.
    let writers = group_named(&t, "Writers").await.unwrap();
    let writers_path = format!("/api/v1/groups/{}", writers.group_id);
    api.patch(&writers_path, json!({"name": "Authors"}))
        .await
        .refused("promotion track senior-writer");
    api.delete(&writers_path)
        .await
        .refused("promotion track senior-writer");
    assert!(group_named(&t, "Writers").await.is_some());
    c.as_root
        .patch(&writers_path, json!({"name": "Authors"}))
        .await
        .ok(200);

    // Deleting takes the group's permissions from its members: the caller must hold them.
    let member = t.user("bob").await;
    let held = t.group("Publishers", &["blog.publish_post"]).await;
    t.join(&member, &held).await;
    api.delete(&format!("/api/v1/groups/{}", held.group_id))
        .await
        .refused("blog.publish_post");
    assert!(group_named(&t, "Publishers").await.is_some());
    let before = current_revision(&t).await;
    let deleted = api.delete(&path).await;
    assert_eq!(deleted.ok(200)["name"], "Proofreaders");
    assert!(
        deleted.revision() > before,
        "a deletion reaches every member"
    );
    by_token(events(&t, "group.delete").await, "groups-tool");
    api.get(&path).await.error(404, None);
    api.delete(&path).await.error(404, None);
    api.delete("/api/v1/groups/x").await.error(404, None);

    // Each route's own permission.
    let viewer = t.user("viewer").await;
    t.grant(&viewer, &["auth.view_group"]).await;
    let viewer = Api::as_user(&t, &app, &viewer, "viewers-tool").await;
    viewer
        .post("/api/v1/groups", json!({"name": "Mine"}))
        .await
        .refused("auth.add_group");
    viewer
        .patch(&writers_path, json!({"name": "Mine"}))
        .await
        .refused("auth.change_group");
    viewer
        .delete(&writers_path)
        .await
        .refused("auth.delete_group");
}

async fn a_groups_members_are_listed_in_pages(t: TestLadder) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    let group = t.group("Readers", &[]).await;
    let empty = t.group("Nobody Here", &[]).await;
    for name in ["erin", "Dave", "carol", "bob", "alice"] {
        let user = t.user(name).await;
        t.join(&user, &group).await;
    }
    t.user("outsider").await;
    let api = &c.as_admin;
    let path = format!("/api/v1/groups/{}/members", group.group_id);

    let all = names(api.get(&path).await.ok(200), "username");
    assert_eq!(all, ["alice", "bob", "carol", "Dave", "erin"]);
    assert_eq!(walk(api, &path, "username", 2).await, all);
    let first = &api.get(&path).await.body["items"][0];
    assert_eq!(first["is_active"], true);
    assert!(first["joined_at"].as_str().unwrap().ends_with('Z'));
    let none = api
        .get(&format!("/api/v1/groups/{}/members", empty.group_id))
        .await;
    assert_eq!(none.ok(200), &json!({"items": [], "next": null}));
    api.get("/api/v1/groups/999999/members")
        .await
        .error(404, None);
    api.get(&format!("{path}?limit=501"))
        .await
        .error(422, Some("limit"));
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

async fn a_groups_permissions_are_set_whole_or_one_at_a_time_under_the_delegation_rule(
    t: TestLadder,
) {
    let app = t.serve().await;
    let c = Callers::new(&t, &app).await;
    let group = t.group("Reviewers", &[]).await;
    let bob = t.user("bob").await;
    t.join(&bob, &group).await;
    let api = &c.as_admin;
    let path = format!("/api/v1/groups/{}/permissions", group.group_id);
    let held = async || {
        let shown = api.get(&format!("/api/v1/groups/{}", group.group_id)).await;
        strings(&shown.body["permissions"])
    };

    let before = current_revision(&t).await;
    let set = api
        .put(
            &path,
            json!({"permissions": ["blog.view_post", "blog.add_post"]}),
        )
        .await;
    let body = set.ok(200);
    assert_eq!(
        body["group"],
        json!({"id": group.group_id, "name": "Reviewers"})
    );
    assert_eq!(
        strings(&body["permissions"]),
        ["blog.add_post", "blog.view_post"]
    );
    assert_eq!(
        strings(&body["granted"]),
        ["blog.add_post", "blog.view_post"]
    );
    assert_eq!(body["revoked"], json!([]));
    assert!(set.revision() > before);
    // A member holds it at once, as a check at that revision says.
    let check = format!(
        "/api/v1/check?user=bob&perm=blog.view_post&at_least={}",
        set.revision()
    );
    assert_eq!(api.get(&check).await.ok(200)["allowed"], true);
    let event = by_token(events(&t, "permission.grant").await, "groups-tool");
    assert_eq!(event.target_name, "Reviewers");

    // The whole list again: the difference is granted and revoked, once each.
    let set = api
        .put(
            &path,
            json!({"permissions": ["blog.view_post", "blog.change_post", "blog.change_post"]}),
        )
        .await;
    assert_eq!(
        (
            strings(&set.ok(200)["granted"]),
            strings(&set.body["revoked"])
        ),
        (
            vec!["blog.change_post".into()],
            vec!["blog.add_post".into()]
        )
    );
    assert_eq!(held().await, ["blog.change_post", "blog.view_post"]);
    let unchanged = api
        .put(
            &path,
            json!({"permissions": ["blog.change_post", "blog.view_post"]}),
        )
        .await;
    assert_eq!(
        (unchanged.ok(200)["granted"].clone(), unchanged.revision()),
        (json!([]), set.revision())
    );

    // Neither granting nor revoking what the caller does not hold; nothing changes.
    api.put(
        &path,
        json!({"permissions": ["blog.view_post", "blog.publish_post"]}),
    )
    .await
    .refused("you do not hold blog.publish_post");
    assert_eq!(held().await, ["blog.change_post", "blog.view_post"]);
    c.as_root
        .put_empty(&format!("{path}/blog.publish_post"))
        .await
        .ok(200);
    api.put(&path, json!({"permissions": []}))
        .await
        .refused("blog.publish_post");
    assert_eq!(
        held().await,
        ["blog.change_post", "blog.publish_post", "blog.view_post"]
    );
    api.delete(&format!("{path}/blog.publish_post"))
        .await
        .refused("you do not hold blog.publish_post");

    // One at a time.
    let one = api.put_empty(&format!("{path}/blog.add_post")).await;
    assert_eq!(
        one.ok(200),
        &json!({"group": {"id": group.group_id, "name": "Reviewers"}, "permission": "blog.add_post",
                "granted": true, "changed": true, "revision": one.revision()})
    );
    let again = api.put_empty(&format!("{path}/blog.add_post")).await;
    assert_eq!(again.ok(200)["changed"], false);
    let gone = api.delete(&format!("{path}/blog.add_post")).await;
    assert_eq!(
        (
            gone.ok(200)["granted"].clone(),
            gone.body["changed"].clone()
        ),
        (json!(false), json!(true))
    );
    by_token(events(&t, "permission.revoke").await, "groups-tool");

    // Malformed, unknown, missing.
    for body in [
        json!({"permissions": ["nodot"]}),
        json!({"permissions": ["blog.add-post"]}),
    ] {
        api.put(&path, body).await.error(422, Some("permissions"));
    }
    for body in [json!({"permissions": "blog.add_post"}), json!({})] {
        api.put(&path, body).await.error(422, None);
    }
    api.put(&path, json!({"permissions": ["blog.no_such_thing"]}))
        .await
        .error(404, None);
    api.put_empty(&format!("{path}/nodot"))
        .await
        .error(422, Some("perm"));
    api.put_empty(&format!("{path}/blog.no_such_thing"))
        .await
        .error(404, None);
    for missing in [
        "/api/v1/groups/999999/permissions/blog.add_post",
        "/api/v1/groups/x/permissions/blog.add_post",
    ] {
        api.put_empty(missing).await.error(404, None);
        api.delete(missing).await.error(404, None);
    }
    api.put(
        "/api/v1/groups/999999/permissions",
        json!({"permissions": []}),
    )
    .await
    .error(404, None);

    // A track's approvers must hold what approval grants: a 409, even for the superuser.
    let seniors = group_named(&t, "Senior Writers").await.unwrap();
    let seniors = format!("/api/v1/groups/{}/permissions", seniors.group_id);
    c.as_root
        .put_empty(&format!("{seniors}/blog.add_post"))
        .await
        .error(409, None);
    c.as_root
        .put(&seniors, json!({"permissions": ["blog.add_post"]}))
        .await
        .error(409, None);

    let viewer = t.user("viewer").await;
    t.grant(&viewer, &["auth.view_group", "blog.add_post"])
        .await;
    let viewer = Api::as_user(&t, &app, &viewer, "viewers-tool").await;
    viewer
        .put(&path, json!({"permissions": []}))
        .await
        .refused("auth.change_group");
    viewer
        .put_empty(&format!("{path}/blog.add_post"))
        .await
        .refused("auth.change_group");
}
