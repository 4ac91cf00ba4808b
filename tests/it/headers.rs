//! Every answer over a real port carries the security headers (pages,
//! JSON, redirects, refusals, errors, and what the outer layers answer
//! themselves); health and readiness answer in JSON; an unknown path, or an
//! id that is not a number, gets the not-found page. On both backends.

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::{
    helpers::{TestApp, TestLadder},
    web_helpers::{Cast, assert_security_headers, submit},
};

on_both_backends!(
    every_response_carries_the_security_headers,
    health_and_readiness_answer_in_json,
    an_unknown_path_gets_the_not_found_page,
);

async fn every_response_carries_the_security_headers(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let visitor = app.client();
    let writer = app.signed_in("writer").await;
    let responses = vec![
        ("a page", visitor.get("/posts").await),
        ("the sign-in page", visitor.get("/login").await),
        ("JSON", visitor.get("/healthz").await),
        ("the stylesheet", visitor.get("/static/app.css").await),
        ("a redirect", visitor.get("/").await),
        ("a redirect to sign in", visitor.get("/posts/mine").await),
        ("a 404", visitor.get("/no/such/page").await),
        (
            "a CSRF refusal",
            visitor
                .http
                .post(visitor.url("/logout"))
                .send()
                .await
                .unwrap(),
        ),
        ("a refusal", writer.get("/admin").await),
        (
            "a form with errors",
            submit(&writer, "/posts/new", &[("title", "")]).await,
        ),
        (
            "a form's redirect",
            submit(&writer, "/posts/new", &[("title", "Hi")]).await,
        ),
        ("a wrong method", visitor.get("/logout").await),
    ];
    for (what, response) in &responses {
        assert_security_headers(what, response.headers());
    }
    // Answers made by the outer layers, not the app: here the body-size limit's.
    let (status, headers) = raw_request(
        &app,
        "POST /posts/new HTTP/1.1\r\nHost: ladder\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000000\r\n\r\n",
    )
    .await;
    assert_eq!(status, 413);
    assert_security_headers("a body over the size limit", &headers);
}

async fn health_and_readiness_answer_in_json(t: TestLadder) {
    let app = t.serve().await;
    let visitor = app.client();
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = visitor.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(content_type, "application/json", "{path}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json, serde_json::json!({ "status": status }), "{path}");
    }
}

async fn an_unknown_path_gets_the_not_found_page(t: TestLadder) {
    Cast::new(&t).await;
    let app = t.serve().await;
    let admin = app.signed_in("admin").await;
    // Unknown paths are not behind any guard, even under /admin.
    for (client, path) in [
        (&app.client(), "/no/such/page"),
        (&app.client(), "/admin/no-such-page"),
        (&admin, "/posts/not-a-number/edit/more"),
    ] {
        let response = client.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("<h1>Not found</h1>"), "{path}: {body}");
        assert!(body.contains("That page does not exist"), "{path}: {body}");
    }
    // A path whose id is not a number names no page either: the 404 page, not
    // a plain-text 400; under /api/ a JSON error.
    for path in [
        "/posts/abc",
        "/posts/99999999999999999999/edit",
        "/admin/groups/x",
        "/promotions/1x",
    ] {
        let response = admin.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("That page does not exist"), "{path}: {body}");
    }
    let response = admin.get("/api/v1/promotions/abc").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}

/// Sends `head` (a request with no body sent) over a bare TCP connection and
/// reads the answer's status and headers: for requests reqwest will not make.
async fn raw_request(app: &TestApp, head: &str) -> (u16, HeaderMap) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).await.unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok());
    let mut headers = HeaderMap::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').expect("a header line");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    (
        status.unwrap_or_else(|| panic!("no status in {text:?}")),
        headers,
    )
}
