//! Escaping over a real port, on both backends: markup in a display name, a
//! group name and a post's title and body is shown as text on every page
//! that shows them, public and admin, and in the flash after deleting.

use ladder::accounts::{
    Email, NewPassword, User, Username,
    users::{self, NewUser},
};

use crate::{
    helpers::TestLadder,
    web_helpers::{Cast, SENIOR_WRITER, html_unescape, location, submit},
};

on_both_backends!(markup_in_names_and_titles_is_shown_as_text_on_every_page);

const MARKUP: &str = "<script>alert(1)</script>";
const RAW: &str = "<script>alert(1)";
const ESCAPED: &str = "&lt;script&gt;alert(1)";

async fn markup_in_names_and_titles_is_shown_as_text_on_every_page(t: TestLadder) {
    Cast::new(&t).await;
    // Usernames cannot hold markup; this one holds every other character allowed.
    let name = "mal.o+brien@x_y-1";
    let mallory = user_with_display_name(&t, name, MARKUP).await;
    t.grant(&mallory, SENIOR_WRITER).await;
    let crew = t
        .group(&format!("{MARKUP} crew"), &["blog.view_post"])
        .await;
    t.join(&mallory, &crew).await;
    let app = t.serve().await;

    // Mallory writes and publishes through the forms.
    let author = app.signed_in(name).await;
    let response = submit(
        &author,
        "/posts/new",
        &[("title", MARKUP), ("body", MARKUP)],
    )
    .await;
    assert_eq!(response.status(), 303);
    let post = location(&response).to_string();
    let draft_page = author.get(&post).await.text().await.unwrap();
    assert_escaped("the post page of a draft", &draft_page);
    assert_eq!(
        submit(&author, &format!("{post}/publish"), &[])
            .await
            .status(),
        303
    );

    let mut pages = vec![
        ("my posts", author.get("/posts/mine").await),
        ("the edit form", author.get(&format!("{post}/edit")).await),
        ("the posts list", app.client().get("/posts").await),
        ("the post page", app.client().get(&post).await),
    ];
    let admin = app.signed_in("admin").await;
    let search = serde_urlencoded::to_string([("q", MARKUP)]).unwrap();
    let users = admin
        .get(&format!("/admin/users?{search}"))
        .await
        .text()
        .await
        .unwrap();
    assert_escaped("the users list", &users);
    assert!(
        users.contains(">mal.o+brien@x_y-1</a>"),
        "the search finds mallory by name"
    );
    // Follow the list's link, as a browser would.
    let link = href_to(&users, "/admin/users/mal").expect("a link to mallory's page");
    assert_eq!(link, "/admin/users/mal.o%2Bbrien%40x_y-1");
    pages.extend([
        ("the user page", admin.get(&link).await),
        (
            "the users list filtered by group",
            admin
                .get(&format!(
                    "/admin/users?{}",
                    serde_urlencoded::to_string([("group", format!("{MARKUP} crew"))]).unwrap()
                ))
                .await,
        ),
        (
            "the group page",
            admin.get(&format!("/admin/groups/{}", crew.group_id)).await,
        ),
        ("the groups list", admin.get("/admin/groups").await),
        (
            "the permissions page",
            admin.get("/admin/permissions").await,
        ),
        ("the audit log", admin.get("/admin/audit").await),
    ]);
    for (page, response) in pages {
        assert_eq!(response.status(), 200, "{page}");
        let body = response.text().await.unwrap();
        assert_escaped(page, &body);
    }
    // The group page lists mallory among the members.
    let group_page = admin
        .get(&format!("/admin/groups/{}", crew.group_id))
        .await
        .text()
        .await
        .unwrap();
    assert!(group_page.contains(">mal.o+brien@x_y-1</a>"));

    // The delete page and the flash after deleting show the title as text too.
    let editor = app.signed_in("editor").await;
    let confirm = editor.get(&format!("{post}/delete")).await;
    assert_eq!(confirm.status(), 200);
    assert_escaped("the delete page", &confirm.text().await.unwrap());
    assert_eq!(
        submit(&editor, &format!("{post}/delete"), &[])
            .await
            .status(),
        303
    );
    assert_escaped(
        "the flash after deleting",
        &editor.get("/posts/mine").await.text().await.unwrap(),
    );
}

fn assert_escaped(page: &str, body: &str) {
    assert!(!body.contains(RAW), "{page} shows the markup raw:\n{body}");
    assert!(
        body.contains(ESCAPED),
        "{page} does not show the markup as text:\n{body}"
    );
}

/// The first link whose target starts with `prefix`, unescaped.
fn href_to(html: &str, prefix: &str) -> Option<String> {
    html.split("href=\"")
        .skip(1)
        .map(|rest| html_unescape(rest.split('"').next().unwrap_or("")))
        .find(|href| href.starts_with(prefix))
}

/// A user with a display name, and the factories' password "<name>-password".
async fn user_with_display_name(t: &TestLadder, name: &str, display_name: &str) -> User {
    let new = NewUser {
        username: Username::parse(name).unwrap(),
        email: Email::parse("mallory@example.com").unwrap(),
        display_name: display_name.to_string(),
        password: Some(
            NewPassword::parse(&format!("{name}-password"), name)
                .unwrap()
                .hash()
                .await
                .unwrap(),
        ),
        is_staff: false,
        is_service: false,
    };
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let user = users::create(&mut tx, &t.system(), new, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    user
}
