//! The delegation rules as the admin console applies them, over a real port
//! on both backends: a holder of `auth.change_user` is offered, and allowed,
//! only what they hold; joining Senior Writers shows the publish button on
//! the next page of the session already open; the group delete page says how
//! many members will lose access.

use ladder::{accounts::Group, blog};

use crate::{
    helpers::TestLadder,
    web_helpers::{
        Cast, EDITOR, SENIOR_WRITER, WRITER, flash_of, html_unescape, location, make_staff,
        post_by, submit,
    },
};

on_both_backends!(
    a_change_user_holder_is_offered_and_allowed_only_what_they_hold,
    joining_senior_writers_shows_the_publish_button_on_the_next_page,
    the_group_delete_page_says_how_many_members_will_lose_access,
);

async fn a_change_user_holder_is_offered_and_allowed_only_what_they_hold(t: TestLadder) {
    let alice = t.user("alice").await;
    t.join(&alice, &t.group("Writers", WRITER).await).await;
    // The promotion track's approvers must hold what Senior Writers get.
    t.group("Editors", EDITOR).await;
    let senior_writers = t.group("Senior Writers", SENIOR_WRITER).await;
    t.group("Contributors", &["blog.add_post"]).await;
    let sam = t.user("sam").await;
    make_staff(&t, &sam).await;
    t.grant(
        &sam,
        &["auth.view_user", "auth.change_user", "blog.add_post"],
    )
    .await;
    let app = t.serve().await;
    let staff = app.signed_in("sam").await;

    // The user page offers only what sam could grant.
    let page = staff.get("/admin/users/alice").await.text().await.unwrap();
    assert_eq!(
        options(&page, "grant-perm"),
        ["auth.view_user", "blog.add_post"]
    );
    let groups_offered = options(&page, "add-group");
    assert!(
        groups_offered.contains(&"Contributors".to_string()),
        "{groups_offered:?}"
    );
    assert!(
        !groups_offered.contains(&"Senior Writers".to_string()),
        "{groups_offered:?}"
    );

    // Anything else is refused, says why, and changes nothing.
    let refusals = [
        (
            "permissions",
            vec![
                ("permission", "blog.publish_post".to_string()),
                ("action", "grant".into()),
            ],
            "you do not hold blog.publish_post, so you cannot grant it",
        ),
        (
            "permissions",
            vec![
                ("permission", "auth.change_user".to_string()),
                ("action", "grant".into()),
            ],
            "only the superuser may grant auth.change_user",
        ),
        (
            "groups",
            vec![
                ("group_id", senior_writers.group_id.to_string()),
                ("action", "add".into()),
            ],
            "(group \"Senior Writers\" holds it)",
        ),
    ];
    for (what, fields, reason) in refusals {
        let before = t.fingerprint().await;
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = submit(&staff, &format!("/admin/users/alice/{what}"), &fields).await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/admin/users/alice");
        assert_eq!(t.fingerprint().await, before, "{reason}");
        let page = staff.get("/admin/users/alice").await.text().await.unwrap();
        let flash = flash_of(&page).expect("a flash message");
        assert!(flash.starts_with("Not done: "), "{flash}");
        assert!(html_unescape(&flash).contains(reason), "{flash}");
    }
    assert!(!t.has_perm(&alice, "blog.publish_post").await);

    // What is offered is accepted.
    let response = submit(
        &staff,
        "/admin/users/alice/permissions",
        &[("permission", "auth.view_user"), ("action", "grant")],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert!(t.has_perm(&alice, "auth.view_user").await);
    let page = staff.get("/admin/users/alice").await.text().await.unwrap();
    assert_eq!(
        flash_of(&page).as_deref(),
        Some("Granted auth.view_user to alice.")
    );
    assert_eq!(options(&page, "grant-perm"), ["blog.add_post"]);
}

async fn joining_senior_writers_shows_the_publish_button_on_the_next_page(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let draft = post_by(&t, &cast.writer, "Ready to go", false).await;
    let senior_writers = t.group("Senior Writers", SENIOR_WRITER).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let publish_button = format!("action=\"/posts/{draft}/publish\"");
    assert!(
        !writer
            .get("/posts/mine")
            .await
            .text()
            .await
            .unwrap()
            .contains(&publish_button)
    );

    let admin = app.signed_in("admin").await;
    let group_id = senior_writers.group_id.to_string();
    let response = submit(
        &admin,
        "/admin/users/writer/groups",
        &[("group_id", group_id.as_str()), ("action", "add")],
    )
    .await;
    assert_eq!(response.status(), 303);
    let page = admin.get("/admin/users/writer").await.text().await.unwrap();
    assert_eq!(
        flash_of(&page).as_deref(),
        Some("Added writer to Senior Writers.")
    );

    // Her next page load, in the session she already had.
    let mine = writer.get("/posts/mine").await.text().await.unwrap();
    assert!(mine.contains(&publish_button), "{mine}");
    let post = writer
        .get(&format!("/posts/{draft}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(post.contains(&publish_button));
    assert_eq!(
        submit(&writer, &format!("/posts/{draft}/publish"), &[])
            .await
            .status(),
        303
    );
    let mut conn = t.ladder.db.acquire().await.unwrap();
    assert!(
        blog::find(&mut conn, draft)
            .await
            .unwrap()
            .unwrap()
            .is_published()
    );
}

async fn the_group_delete_page_says_how_many_members_will_lose_access(t: TestLadder) {
    Cast::new(&t).await;
    let crowd = t.group("Crowd", &["blog.view_post"]).await;
    let solo = t.group("Solo", &[]).await;
    let empty = t.group("Empty", &[]).await;
    for name in ["ann", "ben", "cat"] {
        t.join(&t.user(name).await, &crowd).await;
    }
    t.join(&t.user("dan").await, &solo).await;
    let app = t.serve().await;
    let admin = app.signed_in("admin").await;
    let confirm = |group: &Group| format!("/admin/groups/{}/delete", group.group_id);

    for (group, count) in [
        (&crowd, "3 members"),
        (&solo, "1 member"),
        (&empty, "0 members"),
    ] {
        let response = admin.get(&confirm(group)).await;
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        assert!(
            body.contains(&format!("<strong>{count}</strong>")),
            "{}: {body}",
            group.name
        );
    }
    // The count is the current one.
    let path = format!("/admin/groups/{}/members", crowd.group_id);
    let response = submit(&admin, &path, &[("username", "ann"), ("action", "remove")]).await;
    assert_eq!(response.status(), 303);
    let body = admin.get(&confirm(&crowd)).await.text().await.unwrap();
    assert!(body.contains("<strong>2 members</strong>"));
}

/// The texts of a `<select id=...>`'s options.
fn options(html: &str, select_id: &str) -> Vec<String> {
    let start = html
        .find(&format!("<select id=\"{select_id}\""))
        .unwrap_or_else(|| panic!("no select {select_id}"));
    let select = &html[start..start + html[start..].find("</select>").unwrap()];
    select
        .split("<option")
        .skip(1)
        .filter_map(|o| {
            Some(html_unescape(
                o.split_once('>')?.1.split("</option>").next()?,
            ))
        })
        .collect()
}
