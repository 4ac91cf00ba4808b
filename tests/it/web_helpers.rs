//! What the web tests share: the demo's groups and the cast of users in
//! them, posting a form as a browser would (with the session's CSRF token),
//! reading a redirect's target and a page's flash, the security headers every
//! answer carries, and changes made directly (a post, staff, active).

use ladder::{
    accounts::{Group, User, users},
    blog::{self, Draft},
};
use reqwest::{
    Response, StatusCode,
    header::{self, HeaderMap},
};

use crate::helpers::{Client, TestLadder, csrf_from};

pub const WRITER: &[&str] = &["blog.add_post", "blog.change_post", "blog.view_post"];
pub const SENIOR_WRITER: &[&str] = &[
    "blog.add_post",
    "blog.change_post",
    "blog.view_post",
    "blog.publish_post",
];
pub const EDITOR: &[&str] = &[
    "blog.add_post",
    "blog.change_post",
    "blog.delete_post",
    "blog.view_post",
    "blog.publish_post",
    "blog.feature_post",
    "auth.view_user",
];

/// The cast of the matrix and of several other tests: one user per role,
/// each named after it, in the demo's groups.
pub struct Cast {
    pub writer: User,
    pub admin: User,
    pub writers: Group,
}

impl Cast {
    pub async fn new(t: &TestLadder) -> Cast {
        let admin = t.superuser("admin").await;
        let writer = t.user("writer").await;
        let senior = t.user("senior").await;
        let editor = t.user("editor").await;
        let staff = t.user("staff").await;
        // Editors first: the promotion track's approvers must hold what Senior Writers get.
        t.join(&editor, &t.group("Editors", EDITOR).await).await;
        let writers = t.group("Writers", WRITER).await;
        t.join(&writer, &writers).await;
        t.join(&senior, &t.group("Senior Writers", SENIOR_WRITER).await)
            .await;
        make_staff(t, &staff).await;
        Cast {
            writer,
            admin,
            writers,
        }
    }
}

/// Posts a form as a browser would, with the session's current CSRF token
/// (from the sign-out form of a signed-in page, or from the sign-in page).
pub async fn submit(client: &Client, path: &str, fields: &[(&str, &str)]) -> Response {
    let token = session_token(client).await;
    client.post_form(path, &token, fields).await
}

pub async fn session_token(client: &Client) -> String {
    let page = client.get("/posts/mine").await;
    if page.status() == StatusCode::OK {
        csrf_from(&page.text().await.unwrap()).expect("a signed-in page carries the token")
    } else {
        client.csrf("/login").await
    }
}

pub fn location(response: &Response) -> &str {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The first flash message on a page.
pub fn flash_of(html: &str) -> Option<String> {
    let start = html.find("class=\"flash flash-")?;
    let text = html[start..].split_once('>')?.1;
    Some(text.split("</p>").next()?.to_string())
}

pub fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

pub fn assert_security_headers(what: &str, headers: &HeaderMap) {
    let header = |name: header::HeaderName| {
        headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what} has no {name}"))
            .to_string()
    };
    let csp = header(header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.split(';').any(|d| d.trim() == "script-src 'self'"),
        "{what}: {csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(header(header::X_FRAME_OPTIONS), "DENY", "{what}");
    assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{what}");
    assert_eq!(header(header::REFERRER_POLICY), "same-origin", "{what}");
}

pub async fn post_by(t: &TestLadder, author: &User, title: &str, published: bool) -> i64 {
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

/// Staff, set by the superuser's rule through the system actor.
pub async fn make_staff(t: &TestLadder, user: &User) {
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    users::set_staff(&mut tx, &t.system(), user, true, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

pub async fn set_active(t: &TestLadder, user: &User, active: bool) {
    let current = t.reload(user).await;
    let mut tx = crate::helpers::begin(&t.ladder.db).await.unwrap();
    users::set_active(&mut tx, &t.system(), &current, active, t.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// POSTs a JSON body of `size` bytes (`headers`: more header lines, each
/// ending in `\r\n`) over a bare connection and reads the
/// answer even if the server stops reading the body part-way (a client such
/// as reqwest gives up on the broken pipe instead). Returns status and body.
pub async fn raw_post(base: &str, path: &str, headers: &str, size: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n{headers}\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(head.as_bytes()).await;
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0;
        while sent < size {
            let n = chunk.len().min(size - sent);
            if writer.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            sent += n;
        }
    });
    let mut answer = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    // Until the server closes (a reset after the answer ends the read too).
    while let Ok(Ok(n)) =
        tokio::time::timeout(std::time::Duration::from_secs(10), reader.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if complete(&answer) {
            break;
        }
    }
    sending.abort();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Whether an HTTP answer holds its whole body, by its Content-Length.
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .is_some_and(|length| body.len() >= length)
}
