//! The promotion story in a real browser: headless Chromium, driven through
//! chromedriver, typing and clicking as people do, on both backends. The
//! admin first registers a webhook in the console; the approval reaches it.
//!
//! Needs /usr/bin/chromedriver and /usr/bin/chromium (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them). Without chromedriver the test
//! says so in one line and passes. Screenshots go to
//! `target/browser-screenshots/` for a person to look at.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, Once},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use ladder::{
    config::{MailTransport, SmtpTls},
    mail::transport::Transport,
    seed::demo,
};

use crate::{helpers::TestLadder, mailbox::Mailbox};

on_both_backends!(a_writer_is_promoted_and_publishes_in_a_real_browser);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const PW: &str = "demo-password-1";
/// How long any one thing may take to appear on a page.
const WAIT: Duration = Duration::from_secs(10);
/// A hang guard for the whole story, far above what it needs.
const STORY_LIMIT: Duration = Duration::from_secs(300);

static SKIP_NOTICE: Once = Once::new();

async fn a_writer_is_promoted_and_publishes_in_a_real_browser(mut t: TestLadder) {
    if !Path::new(CHROMEDRIVER).exists() {
        crate::helpers::skip_or_fail(
            "/usr/bin/chromedriver is missing (apt-get install chromium chromium-driver): the browser test",
            &SKIP_NOTICE,
        );
        return;
    }
    let smtp = Mailbox::start();
    t.ladder = t
        .reopen(|s| {
            s.mail.transport = MailTransport::Smtp;
            s.mail.smtp_host = "127.0.0.1".into();
            s.mail.smtp_port = smtp.port;
            s.mail.smtp_tls = SmtpTls::None;
            // The webhook receiver is on loopback.
            s.webhooks.allow_private_targets = true;
        })
        .await;
    demo::seed(&t.ladder, Some(PW)).await.unwrap();
    let app = t.serve().await;
    let shots = format!("{:?}", t.kind).to_lowercase();

    let driver = Arc::new(Chromedriver::start().await);
    // The story runs in a task of its own so that, whatever happens in it,
    // every browser is closed before the test reports.
    let mut story = tokio::spawn(story(t, smtp, app.base.clone(), driver.clone(), shots));
    let outcome = tokio::time::timeout(STORY_LIMIT, &mut story).await;
    story.abort();
    driver.close_sessions().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the browser story did not finish: {e}"),
        Err(_) => panic!("the browser story hung for {STORY_LIMIT:?}"),
    }
}

async fn story(
    t: TestLadder,
    smtp: Mailbox,
    base: String,
    driver: Arc<Chromedriver>,
    shots: String,
) {
    let url = |path: &str| format!("{base}{path}");
    let (hook_url, hooks) = receiver().await;

    // 0. The admin registers a webhook for approvals; the secret shows once.
    let admin = driver.session().await;
    sign_in(&admin, &url("/login"), "admin").await;
    admin.goto(&url("/admin")).await.unwrap();
    find(&admin, "a[href='/admin/webhooks']")
        .await
        .click()
        .await
        .unwrap();
    wait_for_path(&admin, "the webhooks page", |p| p == "/admin/webhooks").await;
    find(&admin, "#url")
        .await
        .send_keys(&hook_url)
        .await
        .unwrap();
    find(&admin, "#description")
        .await
        .send_keys("The publishing pipeline")
        .await
        .unwrap();
    find(&admin, "input[name=event][value='promotion.approved']")
        .await
        .click()
        .await
        .unwrap();
    click_button(&admin, "Register").await;
    let webhook_path = wait_for_path(&admin, "the new endpoint", |p| {
        p.strip_prefix("/admin/webhooks/")
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    })
    .await;
    let secret = text_of(&admin, "#webhook-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    admin.refresh().await.unwrap();
    find(&admin, "h1").await;
    assert!(
        admin.find(Locator::Css("#webhook-secret")).await.is_err(),
        "the secret is shown once"
    );

    // 1. alice signs in and writes a draft: no Publish button on it.
    let alice = driver.session().await;
    sign_in(&alice, &url("/login"), "alice").await;
    alice.goto(&url("/posts/new")).await.unwrap();
    find(&alice, "#title")
        .await
        .send_keys("My first post")
        .await
        .unwrap();
    find(&alice, "#body")
        .await
        .send_keys("Hello from a real browser.")
        .await
        .unwrap();
    click_button(&alice, "Save draft").await;
    let post_path = wait_for_path(&alice, "the new draft", |p| {
        p.strip_prefix("/posts/")
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    })
    .await;
    assert_eq!(text_of(&alice, ".flash").await, "Draft saved.");
    assert_eq!(text_of(&alice, ".state").await, "draft");
    assert!(
        buttons(&alice, "Publish").await.is_empty(),
        "a Writer's draft offers Publish"
    );

    // 2. She asks for the promotion through the form; it shows as pending.
    alice.goto(&url("/promotions/new")).await.unwrap();
    find(&alice, "input[name=track][value=senior-writer]")
        .await
        .click()
        .await
        .unwrap();
    find(&alice, "#justification")
        .await
        .send_keys("I have written 40 posts.")
        .await
        .unwrap();
    click_button(&alice, "Send request").await;
    wait_for_path(&alice, "my requests", |p| p == "/promotions/mine").await;
    let flash = text_of(&alice, ".flash").await;
    assert!(
        flash.ends_with("sent. The approvers have been emailed."),
        "{flash}"
    );
    let row = text_of(&alice, "tbody tr").await;
    assert!(
        row.contains("senior-writer") && row.contains("pending"),
        "{row}"
    );

    // 3. The outbox is sent: one email each for erin and ed, nobody else.
    let transport = Transport::from_settings(&t.ladder.settings.mail).unwrap();
    ladder::mail::worker::drain(&t.ladder, &transport)
        .await
        .unwrap();
    let mail = smtp.wait_for(2);
    assert_eq!(mail.len(), 2, "{mail:?}");
    for editor in ["erin@example.com", "ed@example.com"] {
        assert_eq!(smtp.to(editor).len(), 1, "emails to {editor}");
    }

    // 4. erin, in a browser of her own, sees one request waiting and approves it.
    let erin = driver.session().await;
    sign_in(&erin, &url("/login"), "erin").await;
    let review = find(&erin, "nav a[href='/promotions/review']").await;
    let badge = find(&erin, "nav a[href='/promotions/review'] .badge").await;
    assert_eq!(badge.text().await.unwrap(), "1");
    assert_eq!(
        badge.attr("aria-label").await.unwrap().as_deref(),
        Some("1 pending")
    );
    review.click().await.unwrap();
    wait_for_path(&erin, "the review page", |p| p == "/promotions/review").await;
    let request = find(&erin, "//tbody/tr[td[normalize-space()='alice']]/td[1]/a").await;
    assert!(
        text_of(&erin, "tbody")
            .await
            .contains("I have written 40 posts."),
        "the review page shows the justification"
    );
    screenshot(&erin, &format!("review-{shots}.png")).await;
    request.click().await.unwrap();
    let request_path = wait_for_path(&erin, "the request", |p| {
        p.starts_with("/promotions/") && p != "/promotions/review"
    })
    .await;
    assert!(text_of(&erin, "h1").await.starts_with("Request #"));
    find(&erin, "//code[normalize-space()='+ blog.publish_post']").await;
    screenshot(&erin, &format!("request-{shots}.png")).await;
    find(&erin, "#comment")
        .await
        .send_keys("Well earned")
        .await
        .unwrap();
    click_button(&erin, "Approve").await;
    find(&erin, ".state-approved").await;
    assert_eq!(path_of(&erin).await, request_path);
    assert!(buttons(&erin, "Approve").await.is_empty());

    // 5. alice's next page load has the Publish button; publishing works.
    alice.goto(&url(&post_path)).await.unwrap();
    find(&alice, "//button[normalize-space()='Publish']")
        .await
        .click()
        .await
        .unwrap();
    find(&alice, ".state-published").await;
    assert_eq!(text_of(&alice, ".flash").await, "Published.");
    assert_eq!(path_of(&alice).await, post_path);
    screenshot(&alice, &format!("post-{shots}.png")).await;
    find(&alice, "nav a[href='/posts']:not(.brand)")
        .await
        .click()
        .await
        .unwrap();
    wait_for_path(&alice, "the published posts", |p| p == "/posts").await;
    find(
        &alice,
        &format!("//article//a[@href='{post_path}' and normalize-space()='My first post']"),
    )
    .await;

    // 6. The approval went to the webhook, signed with the secret shown;
    // the admin sees it delivered in the endpoint's log.
    let client = ladder::webhooks::worker::client(&t.ladder).unwrap();
    ladder::webhooks::worker::drain(&t.ladder, &client)
        .await
        .unwrap();
    let got = hooks.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let (signature, id, timestamp, body) = &got[0];
    assert!(body.contains("\"type\":\"promotion.approved\""), "{body}");
    assert!(body.contains("\"username\":\"alice\""), "{body}");
    let expected = ladder::webhooks::signature::sign(&secret, id, timestamp.parse().unwrap(), body);
    assert_eq!(signature, &expected);
    admin.goto(&url(&webhook_path)).await.unwrap();
    let log = text_of(&admin, "tbody").await;
    assert!(
        log.contains("promotion.approved")
            && log.contains("alice")
            && log.contains("delivered")
            && log.contains("HTTP 200"),
        "{log}"
    );
    screenshot(&admin, &format!("webhook-{shots}.png")).await;
}

/// Each delivery's signature, id, timestamp and body.
type Hooks = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A webhook receiver on 127.0.0.1 that keeps what arrives.
async fn receiver() -> (String, Hooks) {
    let hooks: Hooks = Arc::default();
    let kept = hooks.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/pipeline", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/pipeline",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: String| async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                kept.lock().unwrap().push((
                    header("webhook-signature"),
                    header("webhook-id"),
                    header("webhook-timestamp"),
                    body,
                ));
                axum::http::StatusCode::OK
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hooks)
}

/// Types into the sign-in form and clicks the button, then waits for the signed-in menu.
async fn sign_in(c: &Client, login_url: &str, username: &str) {
    c.goto(login_url).await.unwrap();
    find(c, "#username")
        .await
        .send_keys(username)
        .await
        .unwrap();
    find(c, "#password").await.send_keys(PW).await.unwrap();
    click_button(c, "Sign in").await;
    find(c, "nav a[href='/posts/mine']").await;
    // The menu names whoever is signed in (display name or username).
    let who = text_of(c, "nav a[href='/account/password']").await;
    assert!(who.eq_ignore_ascii_case(username), "signed in as {who}");
}

/// The element matching `locator` (CSS, or XPath when it starts with `/`),
/// waiting up to `WAIT` for it to appear.
async fn find(c: &Client, locator: &str) -> Element {
    let by = if locator.starts_with('/') {
        Locator::XPath(locator)
    } else {
        Locator::Css(locator)
    };
    match c
        .wait()
        .at_most(WAIT)
        .every(Duration::from_millis(50))
        .for_element(by)
        .await
    {
        Ok(element) => element,
        Err(e) => panic!("no `{locator}` within {WAIT:?}: {e}\n{}", describe(c).await),
    }
}

async fn text_of(c: &Client, locator: &str) -> String {
    find(c, locator)
        .await
        .text()
        .await
        .unwrap()
        .trim()
        .to_string()
}

/// The submit buttons labelled `label` on the current page.
async fn buttons(c: &Client, label: &str) -> Vec<Element> {
    c.find_all(Locator::XPath(&format!(
        "//button[normalize-space()='{label}']"
    )))
    .await
    .unwrap()
}

async fn click_button(c: &Client, label: &str) {
    find(c, &format!("//main//button[normalize-space()='{label}']"))
        .await
        .click()
        .await
        .unwrap();
}

async fn path_of(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

/// Waits up to `WAIT` for the browser to be on a path that `ok` accepts; returns it.
async fn wait_for_path(c: &Client, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let path = path_of(c).await;
        if ok(&path) {
            return path;
        }
        if start.elapsed() > WAIT {
            panic!(
                "never reached {what} within {WAIT:?}\n{}",
                describe(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where the browser is and what the page says, for a failure message.
async fn describe(c: &Client) -> String {
    let url = c
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let text = match c.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let text: String = text.chars().take(1500).collect();
    format!("at {url}, the page says:\n{text}")
}

/// Saves a PNG of the viewport, after checking the stylesheet is applied.
async fn screenshot(c: &Client, name: &str) {
    let header = find(c, "header.top").await;
    assert_eq!(
        header.css_value("background-color").await.unwrap(),
        "rgba(244, 246, 250, 1)",
        "the page is unstyled\n{}",
        describe(c).await
    );
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// chromedriver on a port of 127.0.0.1 it chose itself, killed (with its browsers) on drop.
struct Chromedriver {
    child: Child,
    url: String,
    sessions: Mutex<Vec<(Client, tempfile::TempDir)>>,
}

impl Chromedriver {
    async fn start() -> Chromedriver {
        // --port=0: chromedriver binds a port itself and says which, so no
        // port is found free here and then taken by someone else.
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so drop can end the browsers it started too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let port = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
                line.split("started successfully on port ")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches('.').trim().parse::<u16>().ok())
            });
            // Keep reading, so chromedriver never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            port
        });
        let port = tokio::time::timeout(WAIT, port)
            .await
            .expect("chromedriver says its port in time")
            .unwrap()
            .expect("chromedriver says which port it bound");
        let url = format!("http://127.0.0.1:{port}");
        if let Err(e) = wait_until_ready(&mut child, &url).await {
            panic!("chromedriver did not start: {e}");
        }
        Chromedriver {
            child,
            url,
            sessions: Mutex::new(vec![]),
        }
    }

    /// A new browser with a fresh profile: no cookies, nobody signed in.
    async fn session(&self) -> Client {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            "timeouts": { "pageLoad": 30_000, "script": 10_000, "implicit": 0 },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("start Chromium through chromedriver: {e}"));
        client.set_window_size(1280, 900).await.unwrap();
        self.sessions
            .lock()
            .unwrap()
            .push((client.clone(), profile));
        client
    }

    /// Closes every browser this driver opened.
    async fn close_sessions(&self) {
        let sessions = std::mem::take(&mut *self.sessions.lock().unwrap());
        for (client, profile) in sessions {
            let _ = tokio::time::timeout(WAIT, client.close()).await;
            drop(profile);
        }
    }
}

async fn wait_until_ready(child: &mut Child, url: &str) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("it exited with {status}"));
        }
        if let Ok(r) = http.get(format!("{url}/status")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("no answer on {url} within {WAIT:?}"))
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The whole process group: chromedriver and any browser left behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
