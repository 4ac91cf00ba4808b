//! Hostile input at every edge, on both backends: control characters in every
//! kind of text a request or a command carries, an over-long sign-in name,
//! the API's CSRF header and error envelope, drafts that must not be seen to
//! exist, `.` and `..` as usernames, and a client's request id.

use ladder::{
    accounts::User,
    blog::{self, Draft},
};
use reqwest::{Response, StatusCode, header};
use serde_json::Value;

use crate::{
    helpers::{Client, TestLadder, csrf_from, stderr},
    web_helpers::raw_post,
};

on_both_backends!(
    a_control_character_in_any_web_input_is_a_422_and_changes_nothing,
    a_control_character_in_any_api_input_is_a_json_422_and_changes_nothing,
    multi_line_text_keeps_its_line_breaks_and_tabs,
    a_control_character_in_a_command_line_argument_is_bad_input,
    an_over_long_sign_in_name_is_refused_before_it_is_stored,
    the_api_refuses_a_bodiless_request_whose_csrf_header_is_not_the_sessions_token,
    every_error_under_the_api_is_the_json_envelope,
    someone_elses_draft_is_not_found_on_every_post_route,
    dot_and_dot_dot_are_not_usernames,
    ladder_makes_its_own_request_id_whatever_the_client_sends,
);

const WRITER: &[&str] = &["blog.add_post", "blog.change_post", "blog.view_post"];
const SENIOR_WRITER: &[&str] = &[
    "blog.add_post",
    "blog.change_post",
    "blog.delete_post",
    "blog.view_post",
    "blog.publish_post",
];
const EDITOR: &[&str] = &[
    "blog.add_post",
    "blog.change_post",
    "blog.delete_post",
    "blog.view_post",
    "blog.publish_post",
    "blog.feature_post",
];

/// `admin` (the superuser), `writer` in Writers, `senior` in Senior Writers
/// (who may also delete their own posts), `editor` in Editors.
struct Cast {
    writer: User,
}

impl Cast {
    async fn new(t: &TestLadder) -> Cast {
        t.superuser("admin").await;
        let writer = t.user("writer").await;
        let senior = t.user("senior").await;
        let editor = t.user("editor").await;
        // Editors first: a track's approvers must hold what approval grants.
        let editors = t.group("Editors", EDITOR).await;
        t.join(&writer, &t.group("Writers", WRITER).await).await;
        t.join(&senior, &t.group("Senior Writers", SENIOR_WRITER).await)
            .await;
        t.join(&editor, &editors).await;
        Cast { writer }
    }
}

/// Everything a refused request must have left alone: every row of every
/// table, and the count of sign-in attempts (which the fingerprint leaves out).
async fn state_of(t: &TestLadder) -> (crate::helpers::Fingerprint, i64) {
    (t.fingerprint().await, t.count("login_attempts").await)
}

async fn token(client: &Client) -> String {
    let page = client.get("/posts/mine").await;
    if page.status() == StatusCode::OK {
        csrf_from(&page.text().await.unwrap()).unwrap()
    } else {
        client.csrf("/login").await
    }
}

async fn post(client: &Client, path: &str, fields: &[(&str, &str)]) -> Response {
    let token = token(client).await;
    client.post_form(path, &token, fields).await
}

async fn post_json(client: &Client, path: &str, body: &str) -> Response {
    client
        .http
        .post(client.url(path))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// A 422 page that says a control character was refused.
async fn refused_page(what: &str, response: Response) -> Result<(), String> {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status == 422 && body.contains("must not contain control characters") {
        Ok(())
    } else {
        let start = body.find("<main").unwrap_or(0);
        let excerpt: String = body[start..].chars().take(300).collect();
        Err(format!("{what}: {status} {excerpt}"))
    }
}

/// The JSON error envelope, with its status and code checked.
async fn envelope(what: &str, response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "{what}");
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {content_type}"
    );
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["status"], status, "{what}: {body}");
    assert_eq!(error["code"], code, "{what}: {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert!(error.get("field").is_some(), "{what}: {body}");
    body
}

async fn post_by(t: &TestLadder, author: &User, title: &str, published: bool) -> i64 {
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    let draft = Draft::parse(title, "Some words.").unwrap();
    let post_id = blog::create(&mut tx, author.user_id, &draft, t.now())
        .await
        .unwrap();
    if published {
        assert!(blog::publish(&mut tx, post_id, t.now()).await.unwrap());
    }
    tx.commit().await.unwrap();
    post_id
}

// ---------------------------------------------------------------------------
// Control characters
// ---------------------------------------------------------------------------

async fn a_control_character_in_any_web_input_is_a_422_and_changes_nothing(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let target = t.user("target").await;
    let group = t.group("Reviewers", &[]).await.group_id;
    let draft = post_by(&t, &cast.writer, "A draft", false).await;
    let app = t.serve().await;
    let anonymous = app.client();
    let writer = app.signed_in("writer").await;
    let admin = app.signed_in("admin").await;
    let before = state_of(&t).await;
    let mut wrong = Vec::new();

    // Sign-in: the username (NUL, and an escape sequence) and `next`.
    for name in ["wri\0ter", "\u{1b}[2Jwriter"] {
        let response = anonymous.login(name, "writer-password").await;
        if let Err(e) = refused_page("login username", response).await {
            wrong.push(e);
        }
    }
    let gets = [
        (&anonymous, "/login?next=/posts%00".to_string()),
        // Searches and filters
        (&admin, "/admin/users?q=%00".into()),
        (&admin, "/admin/users?q=ali%00ce".into()),
        (&admin, "/admin/users?group=%00".into()),
        (&admin, "/admin/users?active=%00&staff=%07".into()),
        (&admin, "/admin/audit?actor=%00".into()),
        (&admin, "/admin/audit?target=a%0Ab&action=%09".into()),
        (&admin, format!("/admin/groups/{group}?member_q=%00")),
        (&admin, format!("/admin/groups/{group}?perm_q=%1B")),
        (&admin, "/admin/mail?state=%00".into()),
        (&admin, "/promotions/review?track=%00".into()),
        (&admin, "/promotions/review?tab=history&state=%00".into()),
        // Path segments
        (&admin, "/admin/users/tar%00get".into()),
        (&admin, "/admin/users/%0A".into()),
        (&writer, format!("/posts/{draft}%00")),
        (&writer, format!("/posts/{draft}%00/edit")),
    ];
    for (client, path) in gets {
        if let Err(e) = refused_page(&path, client.get(&path).await).await {
            wrong.push(e);
        }
    }
    let target = target.username.as_str();
    let posts = [
        (
            &writer,
            "/posts/new".to_string(),
            vec![("title", "A\0title"), ("body", "Words.")],
        ),
        (
            &writer,
            "/posts/new".into(),
            vec![("title", "A title"), ("body", "Wor\0ds.")],
        ),
        // A title is one line: a line break or a tab is refused by the title itself.
        (
            &writer,
            "/posts/new".into(),
            vec![("title", "A\ntitle"), ("body", "Words.")],
        ),
        (
            &writer,
            "/posts/new".into(),
            vec![("title", "A\ttitle"), ("body", "Words.")],
        ),
        (
            &writer,
            format!("/posts/{draft}/edit"),
            vec![("title", "Edited\0"), ("body", "Words.")],
        ),
        (
            &writer,
            "/promotions/new".into(),
            vec![("track", "senior-writer"), ("justification", "Rea\0dy.")],
        ),
        (
            &writer,
            "/promotions/new".into(),
            vec![("track", "senior\0writer"), ("justification", "Ready.")],
        ),
        (
            &writer,
            "/promotions/new".into(),
            vec![("track", "senior-writer"), ("justification", "Ready.\u{7}")],
        ),
        (
            &admin,
            "/admin/users/new".into(),
            vec![
                ("username", "new\0comer"),
                ("email", "newcomer@example.com"),
                ("display_name", ""),
                ("password", ""),
            ],
        ),
        (
            &admin,
            "/admin/users/new".into(),
            vec![
                ("username", "newcomer"),
                ("email", "new\0comer@example.com"),
                ("display_name", ""),
                ("password", ""),
            ],
        ),
        (
            &admin,
            "/admin/users/new".into(),
            vec![
                ("username", "newcomer"),
                ("email", "newcomer@example.com"),
                ("display_name", "New\0comer"),
                ("password", ""),
            ],
        ),
        (
            &admin,
            "/admin/users/new".into(),
            vec![
                ("username", "newcomer"),
                ("email", "newcomer@example.com"),
                ("display_name", "New\ncomer"),
                ("password", ""),
            ],
        ),
        (
            &admin,
            "/admin/groups/new".into(),
            vec![("name", "Bad\0group")],
        ),
        (
            &admin,
            format!("/admin/groups/{group}/rename"),
            vec![("name", "Re\0named")],
        ),
        (
            &admin,
            format!("/admin/groups/{group}/members"),
            vec![("username", "tar\0get"), ("action", "add")],
        ),
        (
            &admin,
            format!("/admin/users/{target}/permissions"),
            vec![("permission", "blog.view_post\0"), ("action", "grant")],
        ),
        (
            &admin,
            "/admin/users/tar%00get/active".into(),
            vec![("value", "false")],
        ),
        (
            &admin,
            format!("/admin/users/{target}/password"),
            vec![("password", "a-long-pass\0phrase")],
        ),
    ];
    for (client, path, fields) in posts {
        let what = format!("POST {path} {fields:?}");
        if let Err(e) = refused_page(&what, post(client, &path, &fields).await).await {
            wrong.push(e);
        }
    }
    assert!(wrong.is_empty(), "not refused:\n{}", wrong.join("\n"));
    assert_eq!(
        state_of(&t).await,
        before,
        "a refused input changed something"
    );
}

async fn a_control_character_in_any_api_input_is_a_json_422_and_changes_nothing(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let _ = cast;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let editor = app.signed_in("editor").await;
    let before = state_of(&t).await;

    for body in [
        r#"{"track": "senior-writer", "justification": "Rea\u0000dy."}"#,
        r#"{"track": "senior\u0000writer", "justification": "Ready."}"#,
        r#"{"track": "senior-writer", "justification": "Ready.", "ex\u0001tra": 1}"#,
    ] {
        let response = post_json(&writer, "/api/v1/promotions", body).await;
        let error = envelope(body, response, 422, "invalid").await;
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("control characters"),
            "{error}"
        );
    }
    for path in [
        "/api/v1/promotions?requester=%00",
        "/api/v1/promotions?state=pending&track=%1B",
        "/api/v1/promotions?after=%00",
        "/api/v1/promotions/1%00",
    ] {
        envelope(path, editor.get(path).await, 422, "invalid").await;
    }
    assert_eq!(state_of(&t).await, before);

    // The decisions' texts too (approve reads its body itself).
    let response = post_json(
        &writer,
        "/api/v1/promotions",
        r#"{"track": "senior-writer", "justification": "Ready."}"#,
    )
    .await;
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let before = state_of(&t).await;
    for (path, body) in [
        (
            format!("/api/v1/promotions/{id}/approve"),
            r#"{"comment": "Wel\u0000come."}"#,
        ),
        (
            format!("/api/v1/promotions/{id}/reject"),
            r#"{"reason": "Not \u0000yet."}"#,
        ),
    ] {
        let response = post_json(&editor, &path, body).await;
        envelope(&path, response, 422, "invalid").await;
    }
    assert_eq!(state_of(&t).await, before);
    let shown: Value = editor
        .get(&format!("/api/v1/promotions/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["state"], "pending");
}

async fn multi_line_text_keeps_its_line_breaks_and_tabs(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let body = "First line,\r\n\tthen an indented one.";
    let response = post(&writer, "/posts/new", &[("title", "Lines"), ("body", body)]).await;
    assert_eq!(response.status(), 303);
    let stored: String = sqlx::query_scalar("select body from posts where title = 'Lines'")
        .fetch_one(t.ladder.db.pool())
        .await
        .unwrap();
    assert_eq!(stored, body);
    let justification = "Two reasons:\n\t1. forty posts\r\n\t2. no complaints";
    let response = post_json(
        &writer,
        "/api/v1/promotions",
        &serde_json::json!({ "track": "senior-writer", "justification": justification })
            .to_string(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["justification"], justification);
}

async fn a_control_character_in_a_command_line_argument_is_bad_input(t: TestLadder) {
    Cast::new(&t).await;
    let before = state_of(&t).await;
    for args in [
        vec!["user", "list", "--search", "\u{1}"],
        vec!["user", "list", "--search", "wri\u{1b}[2Jter"],
        vec!["user", "show", "wri\u{7}ter"],
        vec!["audit", "--user", "admin\n"],
        vec!["check", "writer", "blog.add_post\t"],
        vec!["group", "add", "New\u{7f}group"],
        vec![
            "user",
            "add",
            "newcomer",
            "--email",
            "newcomer@example.com",
            "--display-name",
            "New\u{1}comer",
        ],
    ] {
        let out = t.cli(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("must not contain control characters"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{7}'),
            "{args:?}: {err:?}"
        );
    }
    assert_eq!(state_of(&t).await, before);
}

// ---------------------------------------------------------------------------
// Sign-in
// ---------------------------------------------------------------------------

async fn an_over_long_sign_in_name_is_refused_before_it_is_stored(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let client = app.client();
    let attempts = t.count("login_attempts").await;
    for name in ["a".repeat(151), "é".repeat(151), "x".repeat(200_000)] {
        let response = client.login(&name, "whatever").await;
        assert_eq!(response.status(), 422);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("at most 150 characters")
        );
    }
    assert_eq!(
        t.count("login_attempts").await,
        attempts,
        "an over-long name was stored"
    );
    let longest: Option<i64> =
        sqlx::query_scalar("select max(length(attempt_key)) from login_attempts")
            .fetch_one(t.ladder.db.pool())
            .await
            .unwrap();
    assert!(longest.unwrap_or(0) < 200, "{longest:?}");
    // 150 characters is still a name: an ordinary failed attempt, counted.
    let response = client.login(&"a".repeat(150), "whatever").await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("do not match an active account")
    );
    assert!(t.count("login_attempts").await > attempts);
}

// ---------------------------------------------------------------------------
// The API: CSRF and the error envelope
// ---------------------------------------------------------------------------

async fn the_api_refuses_a_bodiless_request_whose_csrf_header_is_not_the_sessions_token(
    t: TestLadder,
) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let admin = app.signed_in("admin").await;
    let response = post_json(
        &writer,
        "/api/v1/promotions",
        r#"{"track": "senior-writer", "justification": "Ready."}"#,
    )
    .await;
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/promotions/{id}/withdraw");
    let withdraw = |token: Option<String>| {
        let mut request = writer
            .http
            .post(writer.url(&path))
            .header(header::CONTENT_LENGTH, "0");
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send()
    };
    let before = state_of(&t).await;
    let others = token(&admin).await;
    for wrong in [
        None,
        Some("anything".to_string()),
        Some("0".repeat(64)),
        Some(others),
    ] {
        let what = format!("X-CSRF-Token {wrong:?}");
        let response = withdraw(wrong).await.unwrap();
        let body = envelope(&what, response, 403, "forbidden").await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("CSRF"),
            "{body}"
        );
    }
    assert_eq!(state_of(&t).await, before);
    // The session's own token is accepted, so the refusals were the token's.
    let response = withdraw(Some(token(&writer).await)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["state"],
        "withdrawn"
    );
}

async fn every_error_under_the_api_is_the_json_envelope(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let writer = app.signed_in("writer").await;
    let anonymous = app.client();
    let http = &writer.http;

    // A query string that does not parse (axum's rejection was plain text).
    for path in [
        "/api/v1/promotions?limit=abc",
        "/api/v1/promotions?limit=1&limit=2",
    ] {
        envelope(path, writer.get(path).await, 400, "bad_request").await;
    }
    envelope(
        "limit=0",
        writer.get("/api/v1/promotions?limit=0").await,
        422,
        "invalid",
    )
    .await;
    // Bodies: not JSON, the wrong shape, over the limit (2 MiB read; 4 MiB refused unread).
    let not_json = post_json(&writer, "/api/v1/promotions", "{not json").await;
    envelope("not JSON", not_json, 400, "bad_request").await;
    let shape = post_json(&writer, "/api/v1/promotions", r#"{"track": 5}"#).await;
    envelope("wrong shape", shape, 422, "invalid").await;
    // Over the limit: 3 MiB is read up to the 2 MiB limit, 5 MiB refused unread.
    // Sent by hand, as the server answers before taking the whole body.
    for (size, path) in [
        (3 << 20, "/api/v1/promotions"),
        (3 << 20, "/api/v1/promotions/1/approve"),
        (5 << 20, "/api/v1/promotions"),
    ] {
        let (status, body) = raw_post(&writer.base, path, "", size).await;
        assert_eq!(status, 413, "{size} bytes to {path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        assert_eq!(body["error"]["code"], "too_large", "{body}");
    }
    // A CSRF refusal (a form's content type) was an HTML page.
    let response = http
        .post(writer.url("/api/v1/promotions"))
        .form(&[("track", "senior-writer")])
        .send()
        .await
        .unwrap();
    envelope("form body", response, 403, "forbidden").await;
    // Unknown endpoints, whatever the method; known ones with a wrong method.
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/api/v1/nothing", "/api/", "/api/v1/promotions/1/nothing"] {
            let response = http
                .request(method.parse().unwrap(), writer.url(path))
                .header(header::CONTENT_TYPE, "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            envelope(&format!("{method} {path}"), response, 404, "not_found").await;
        }
    }
    for (method, path) in [
        ("PUT", "/api/v1/promotions"),
        ("DELETE", "/api/v1/promotions/1"),
        ("GET", "/api/v1/promotions/1/approve"),
    ] {
        let response = http
            .request(method.parse().unwrap(), writer.url(path))
            .header(header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        envelope(
            &format!("{method} {path}"),
            response,
            405,
            "method_not_allowed",
        )
        .await;
    }
    // Not signed in is still 401, and the pages outside /api/ are still pages.
    envelope(
        "anonymous",
        anonymous.get("/api/v1/promotions").await,
        401,
        "unauthorized",
    )
    .await;
    let page = writer.get("/no/such/page").await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("<h1>Not found</h1>"));
}

// ---------------------------------------------------------------------------
// Drafts
// ---------------------------------------------------------------------------

async fn someone_elses_draft_is_not_found_on_every_post_route(t: TestLadder) {
    let cast = Cast::new(&t).await;
    let draft = post_by(&t, &cast.writer, "A secret draft", false).await;
    let published = post_by(&t, &cast.writer, "A published post", true).await;
    let missing = draft + published + 1000;
    let app = t.serve().await;
    // `senior` may publish, edit and delete their own posts, not see others' drafts.
    let senior = app.signed_in("senior").await;
    let before = state_of(&t).await;
    let routes = |id: i64| {
        vec![
            ("GET", format!("/posts/{id}"), vec![]),
            ("GET", format!("/posts/{id}/edit"), vec![]),
            (
                "POST",
                format!("/posts/{id}/edit"),
                vec![("title", "Mine now"), ("body", "x")],
            ),
            ("POST", format!("/posts/{id}/publish"), vec![]),
            ("GET", format!("/posts/{id}/delete"), vec![]),
            ("POST", format!("/posts/{id}/delete"), vec![]),
        ]
    };
    for ((method, draft_path, fields), (_, missing_path, _)) in
        routes(draft).into_iter().zip(routes(missing))
    {
        let answer = |path: String| {
            let senior = &senior;
            let fields = fields.clone();
            async move {
                let response = if method == "GET" {
                    senior.get(&path).await
                } else {
                    post(senior, &path, &fields).await
                };
                (response.status(), response.text().await.unwrap())
            }
        };
        let (draft_status, draft_body) = answer(draft_path.clone()).await;
        let (missing_status, missing_body) = answer(missing_path).await;
        assert_eq!(draft_status, 404, "{method} {draft_path}");
        assert_eq!(missing_status, 404, "{method} the missing post");
        assert_eq!(
            draft_body, missing_body,
            "{method} {draft_path} tells the draft exists"
        );
    }
    assert_eq!(state_of(&t).await, before);
    // A post they may see but not change is still refused as not theirs.
    let response = senior.get(&format!("/posts/{published}/edit")).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("blog.feature_post"));
    // The author and an editor still reach the draft.
    for who in ["writer", "editor"] {
        let client = app.signed_in(who).await;
        assert_eq!(
            client.get(&format!("/posts/{draft}/edit")).await.status(),
            200,
            "{who}"
        );
    }
}

// ---------------------------------------------------------------------------
// Usernames and request ids
// ---------------------------------------------------------------------------

async fn dot_and_dot_dot_are_not_usernames(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let admin = app.signed_in("admin").await;
    let before = state_of(&t).await;
    for name in [".", ".."] {
        let fields = [
            ("username", name),
            ("email", "dots@example.com"),
            ("display_name", ""),
            ("password", ""),
        ];
        let response = post(&admin, "/admin/users/new", &fields).await;
        assert_eq!(response.status(), 422, "{name:?}");
        assert!(
            response.text().await.unwrap().contains("must not be"),
            "{name:?}"
        );
        let out = t.cli(&["user", "add", name, "--email", "dots@example.com"]);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("must not be"), "{}", stderr(&out));
        let out = t.cli_with(
            &[
                "createsuperuser",
                "--username",
                name,
                "--email",
                "dots@example.com",
                "--no-input",
            ],
            None,
            &[("LADDER_SUPERUSER_PASSWORD", "a-long-passphrase")],
        );
        assert_eq!(out.status.code(), Some(2), "{name:?}: {}", stderr(&out));
    }
    assert_eq!(state_of(&t).await, before);
    // Dots inside a name are still Django's.
    let fields = [
        ("username", "j.r.r"),
        ("email", "jrr@example.com"),
        ("display_name", ""),
        ("password", ""),
    ];
    assert_eq!(
        post(&admin, "/admin/users/new", &fields).await.status(),
        303
    );
}

async fn ladder_makes_its_own_request_id_whatever_the_client_sends(t: TestLadder) {
    let app = t.serve().await;
    let client = app.client();
    let mut seen = Vec::new();
    for sent in [
        "attacker-chosen",
        "attacker-chosen",
        "a b\tc",
        "0f8e2c4a-1b2c-4d5e-8f90-123456789abc",
    ] {
        let response = client
            .http
            .get(client.url("/healthz"))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap()
            .to_string();
        assert_ne!(id, sent);
        assert!(uuid_like(&id), "{id}");
        seen.push(id);
    }
    let without = client.get("/healthz").await;
    assert!(uuid_like(
        without.headers()["x-request-id"].to_str().unwrap()
    ));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "request ids repeat: {seen:?}");
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}
