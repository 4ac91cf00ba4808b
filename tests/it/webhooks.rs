//! Signed webhooks, end to end: an endpoint registered over the API, the
//! delivery worker running as `ladder serve` runs it, and a receiver on
//! 127.0.0.1 (`tests/support/webhook_receiver.py`) that checks every
//! delivery with the official `standardwebhooks` package from PyPI, so the
//! signature is verified by an implementation that is not Ladder's.
//!
//! The package comes from the virtualenv `.ci/run` makes (`.ci/venv`), or
//! the Python that `LADDER_WEBHOOK_PYTHON` names. Without it these tests
//! skip, and under CI they fail.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Once},
    time::{Duration, Instant},
};

use ladder::{
    actor::{Actor, Source},
    config::Settings,
    jobs::{self, JobName},
    mail::transport::Transport,
    promotions::transitions,
    webhooks::CreateEndpoint,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    api_client::{Answer, Api, Workflow, token},
    helpers::{Kind, TestLadder, skip_or_fail, workflow},
    web_helpers::{flash_of, html_unescape, location, submit},
};

static SKIP_NOTICE: Once = Once::new();

fn python() -> Option<PathBuf> {
    let path = std::env::var_os("LADDER_WEBHOOK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/venv/bin/python"))
        });
    let works = Command::new(&path)
        .args(["-c", "import standardwebhooks"])
        .output()
        .is_ok_and(|o| o.status.success());
    works.then_some(path)
}

/// The receiver process; killed when dropped.
struct Receiver {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Receiver {
    /// Starts one, on `port` if given. None (after skip_or_fail) without the package.
    fn start(port: Option<u16>) -> Option<Receiver> {
        let Some(python) = python() else {
            skip_or_fail(
                "the standardwebhooks package is not installed (.ci/run makes .ci/venv; or set LADDER_WEBHOOK_PYTHON)",
                &SKIP_NOTICE,
            );
            return None;
        };
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/webhook_receiver.py"
        );
        let mut command = Command::new(python);
        command.arg(script);
        if let Some(port) = port {
            command.arg(port.to_string());
        }
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the receiver prints its port");
        Some(Receiver {
            child,
            port,
            http: reqwest::Client::new(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn set(&self, settings: Value) {
        let answer = self
            .http
            .post(self.url("/_control"))
            .body(settings.to_string())
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }

    async fn log(&self) -> Value {
        self.http
            .get(self.url("/_log"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn deliveries(&self) -> Vec<Value> {
        self.log().await["deliveries"].as_array().unwrap().clone()
    }

    /// Waits (up to 30 s) until `enough` holds for the deliveries answered so far.
    async fn wait_for(&self, what: &str, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.deliveries().await;
            if enough(&seen) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {what}; the receiver has: {seen:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The delivery worker, as `ladder serve` runs it; stopped when dropped.
struct Worker(Arc<tokio::sync::Notify>);

impl Worker {
    fn start(ladder: &ladder::Ladder) -> Worker {
        let stop = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(ladder::webhooks::worker::run(
            ladder.clone(),
            ladder.webhook_wake.clone(),
            stop.clone(),
        ));
        Worker(stop)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// What the tests change: private targets allowed (the receiver is on
/// loopback), quick retries and polls.
fn quick(s: &mut Settings) {
    s.webhooks.allow_private_targets = true;
    s.webhooks.retry_base_seconds = 1;
    s.webhooks.poll_interval_ms = 100;
    s.webhooks.timeout_ms = 10_000;
    s.api.requests_per_second = 0;
}

/// What most tests start from: a receiver, a Ladder with `edit`ed
/// settings serving the API, the workflow's cast and the superuser's token.
struct Scene {
    receiver: Receiver,
    t: TestLadder,
    w: Workflow,
    api: Api,
    root: String,
    _app: crate::helpers::TestApp,
}

impl Scene {
    /// None (after skip_or_fail) without the package or the backend.
    async fn start(kind: Kind, edit: impl FnOnce(&mut Settings)) -> Option<Scene> {
        let receiver = Receiver::start(None)?;
        let t = TestLadder::start_with(kind, edit).await?;
        let w = Workflow::new(&t).await;
        let app = t.serve().await;
        let api = Api::new(&app);
        let root = token(&t, &w.root, "root", None).await;
        Some(Scene {
            receiver,
            t,
            w,
            api,
            root,
            _app: app,
        })
    }
}

/// Registers an endpoint for `types` over the API as `token`; answers its
/// id and secret.
async fn register(api: &Api, token: &str, url: &str, types: &[&str]) -> (i64, String) {
    let answer = api
        .post(
            token,
            "/api/v1/webhooks",
            json!({ "url": url, "event_types": types, "description": "the test receiver" }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let secret = answer.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (answer.body["id"].as_i64().unwrap(), secret)
}

async fn deliveries_of(api: &Api, token: &str, webhook: i64, query: &str) -> Vec<Value> {
    let answer = api
        .get(
            token,
            &format!("/api/v1/webhooks/{webhook}/deliveries?limit=500{query}"),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["items"].as_array().unwrap().clone()
}

/// Waits (up to 30 s) until the endpoint's delivery log satisfies `enough`.
async fn wait_for_log(
    api: &Api,
    token: &str,
    webhook: i64,
    what: &str,
    enough: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = deliveries_of(api, token, webhook, "").await;
        if enough(&log) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "waited 30 s for {what}; the log has: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn answered(seen: &[Value], status: u64) -> Vec<&Value> {
    seen.iter()
        .filter(|d| d["answered"].as_u64() == Some(status))
        .collect()
}

on_both_backends_with_settings!(
    every_event_type_is_delivered_once_signed_and_in_order,
    deliveries_wait_out_a_receiver_that_is_down_or_failing_and_none_is_lost_or_doubled,
    a_delivery_out_of_attempts_is_failed_and_the_console_retries_it,
    a_slow_receiver_does_not_slow_the_change,
    an_old_timestamp_and_a_rotated_secret_are_refused_by_the_library,
    redirects_are_not_followed,
    private_targets_are_refused_without_the_setting,
);

async fn every_event_type_is_delivered_once_signed_and_in_order(kind: Kind) {
    let Some(scene) = Scene::start(kind, quick).await else {
        return;
    };
    let Scene {
        receiver,
        t,
        w,
        api,
        root,
        _app,
    } = scene;
    let (webhook, secret) = register(&api, &root, &receiver.url("/hooks/ladder"), &["*"]).await;
    receiver.set(json!({ "secret": secret })).await;
    let _worker = Worker::start(&t.ladder);

    // Every kind of change, about one person (walt), in this order.
    let writers = t.group("Writers", &[]).await.group_id;
    let created = api
        .post(
            &root,
            "/api/v1/users",
            json!({ "username": "walt", "email": "walt@example.com" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    for path in [
        format!("/api/v1/users/walt/groups/{writers}"),
        "/api/v1/users/walt/permissions/blog.view_post".to_string(),
    ] {
        let put = api.send(Method::PUT, &path, Some(&root), None, &[]).await;
        assert_eq!(put.status, 200, "{path}: {}", put.body);
    }
    let revoked = api
        .send(
            Method::DELETE,
            "/api/v1/users/walt/permissions/blog.view_post",
            Some(&root),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let walt = {
        let mut conn = t.ladder.db.acquire().await.unwrap();
        ladder::accounts::users::get_by_username(&mut conn, "walt")
            .await
            .unwrap()
    };
    let as_walt = Actor::user(walt.clone(), Source::Web);
    let as_erin = Actor::user(w.erin.clone(), Source::Web);
    let r = workflow::submit(&t.ladder, &as_walt, &walt, "senior-writer", "Ready.")
        .await
        .unwrap();
    workflow::approve(&t.ladder, &as_erin, &w.erin, r.request_id, "Welcome.")
        .await
        .unwrap();
    transitions::end_grant(&t.ladder, &as_erin, Some(&w.erin), r.request_id)
        .await
        .unwrap();
    let r = workflow::submit(&t.ladder, &as_walt, &walt, "senior-writer", "Again.")
        .await
        .unwrap();
    workflow::withdraw(&t.ladder, &as_walt, &walt, r.request_id)
        .await
        .unwrap();
    let r = workflow::submit(&t.ladder, &as_walt, &walt, "senior-writer", "Once more.")
        .await
        .unwrap();
    workflow::reject(&t.ladder, &as_erin, &w.erin, r.request_id, "Not yet.")
        .await
        .unwrap();
    let r = workflow::submit(&t.ladder, &as_walt, &walt, "senior-writer", "Last try.")
        .await
        .unwrap();
    let system = Actor::system(Source::System);
    assert!(
        transitions::expire(&t.ladder, &system, r.request_id, t.now())
            .await
            .unwrap()
    );
    let left = api
        .send(
            Method::DELETE,
            &format!("/api/v1/users/walt/groups/{writers}"),
            Some(&root),
            None,
            &[],
        )
        .await;
    assert_eq!(left.status, 200, "{}", left.body);
    let off = api
        .send(
            Method::PATCH,
            "/api/v1/users/walt",
            Some(&root),
            Some(&json!({ "is_active": false })),
            &[],
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);

    let expected = [
        "user.created",
        "membership.added",
        "permission.granted",
        "permission.revoked",
        "promotion.submitted",
        "membership.added",
        "promotion.approved",
        "membership.removed",
        "promotion.ended",
        "promotion.submitted",
        "promotion.withdrawn",
        "promotion.submitted",
        "promotion.rejected",
        "promotion.submitted",
        "promotion.expired",
        "membership.removed",
        "user.deactivated",
    ];
    let subject = format!("user:{}", walt.user_id);
    receiver
        .wait_for("every event about walt", |seen| {
            answered(seen, 200).len() >= expected.len()
        })
        .await;
    // Let a duplicate, if the worker made one, arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = receiver.deliveries().await;
    for d in &seen {
        assert_eq!(d["verified"], true, "the library verifies it: {d:#}");
        assert_eq!(
            d["tampered_refused"], true,
            "and refuses it tampered: {d:#}"
        );
        assert_eq!(d["path"], "/hooks/ladder");
        assert_eq!(d["content_type"], "application/json");
        assert_eq!(d["answered"], 200);
    }
    let types: Vec<&str> = seen
        .iter()
        .map(|d| d["payload"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types, expected,
        "each event once, in the order of the changes"
    );
    let mut ids: Vec<&str> = seen.iter().map(|d| d["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), expected.len(), "one message id per event");
    let covered: std::collections::BTreeSet<&str> = types.iter().copied().collect();
    assert_eq!(
        covered.len(),
        ladder::webhooks::events::EVENT_TYPES.len(),
        "every event type"
    );

    // The documented payloads.
    let by_type = |ty: &str| -> Vec<&Value> {
        seen.iter()
            .map(|d| &d["payload"])
            .filter(|p| p["type"] == ty)
            .collect()
    };
    for d in &seen {
        let p = &d["payload"];
        assert_eq!(p["id"], d["id"], "the body names the webhook-id");
        assert!(p["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(p["data"]["actor"]["username"].is_string(), "{p:#}");
    }
    let user = &by_type("user.created")[0]["data"]["user"];
    assert_eq!(user["username"], "walt");
    assert_eq!(user["email"], "walt@example.com");
    assert_eq!(user["id"], walt.user_id);
    assert_eq!(
        by_type("user.created")[0]["data"]["actor"]["username"],
        "root"
    );
    assert_eq!(by_type("user.created")[0]["data"]["actor"]["token"], "root");
    assert_eq!(
        by_type("user.deactivated")[0]["data"]["user"]["is_active"],
        false
    );
    let joined = &by_type("membership.added")[0]["data"];
    assert_eq!(
        (&joined["user"]["username"], &joined["group"]),
        (&json!("walt"), &json!("Writers"))
    );
    let promoted = &by_type("membership.added")[1]["data"];
    assert_eq!(promoted["group"], "Senior Writers");
    assert_eq!(
        promoted["promotion_request"],
        by_type("promotion.approved")[0]["data"]["request"]["id"]
    );
    let granted = &by_type("permission.granted")[0]["data"];
    assert_eq!(granted["permissions"], json!(["blog.view_post"]));
    assert_eq!(granted["user"]["username"], "walt");
    let approved = &by_type("promotion.approved")[0]["data"];
    assert_eq!(approved["request"]["track"], "senior-writer");
    assert_eq!(approved["request"]["state"], "approved");
    assert_eq!(approved["user"]["username"], "walt");
    assert_eq!(approved["actor"]["username"], "erin");
    assert_eq!(
        by_type("promotion.rejected")[0]["data"]["request"]["reason"],
        "Not yet."
    );

    // The delivery log agrees: each delivered at the first attempt, about walt.
    let log = deliveries_of(&api, &root, webhook, "").await;
    assert_eq!(log.len(), expected.len());
    for d in &log {
        assert_eq!(
            (&d["state"], &d["attempts"], &d["last_status"]),
            (&json!("delivered"), &json!(1), &json!(200)),
            "{d:#}"
        );
        assert_eq!(d["subject"], subject);
        assert!(d["next_attempt_at"].is_null());
    }
}

async fn deliveries_wait_out_a_receiver_that_is_down_or_failing_and_none_is_lost_or_doubled(
    kind: Kind,
) {
    let Some(scene) = Scene::start(kind, quick).await else {
        return;
    };
    let Scene {
        receiver,
        t,
        api,
        root,
        _app,
        ..
    } = scene;
    let types = ["user.created", "membership.added", "permission.granted"];
    let (webhook, secret) = register(&api, &root, &receiver.url("/down"), &types).await;
    let port = receiver.port;
    drop(receiver);
    let _worker = Worker::start(&t.ladder);

    // Down: nothing listens on the port. Three events about one person, and
    // one about another.
    let writers = t.group("Writers", &[]).await;
    let xavier = t.user("xavier").await;
    t.join(&xavier, &writers).await;
    t.grant(&xavier, &["blog.view_post"]).await;
    t.user("yvonne").await;
    let log = wait_for_log(&api, &root, webhook, "failed attempts while down", |log| {
        log.len() == 4
            && log
                .iter()
                .filter(|d| d["attempts"].as_i64() >= Some(1))
                .count()
                == 2
    })
    .await;
    // Newest first: yvonne's, then xavier's granted, added, created.
    let attempts: Vec<i64> = log
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap())
        .collect();
    assert_eq!(
        &attempts[1..],
        [0, 0, attempts[3]],
        "xavier's later events wait behind his first: {log:#?}"
    );
    for d in &log {
        assert_eq!(d["state"], "pending", "waiting, not lost: {d:#}");
        assert!(d["next_attempt_at"].is_string());
    }
    assert!(
        log[3]["last_error"].as_str().unwrap().contains("connect"),
        "{:#}",
        log[3]
    );

    // Failing: up again on the same port, answering 500.
    let receiver = Receiver::start(Some(port)).unwrap();
    receiver
        .set(json!({ "secret": secret, "status": 500 }))
        .await;
    t.user("zoe").await;
    receiver
        .wait_for("a 500 for the head of each subject", |seen| {
            let ids: std::collections::BTreeSet<_> = answered(seen, 500)
                .iter()
                .map(|d| d["id"].to_string())
                .collect();
            ids.len() == 3
        })
        .await;
    let log = deliveries_of(&api, &root, webhook, "").await;
    assert!(log.iter().all(|d| d["state"] == "pending"), "{log:#?}");
    assert!(log.iter().any(|d| d["last_status"] == 500), "{log:#?}");

    // Back: every one arrives exactly once, and xavier's in order.
    receiver.set(json!({ "status": 200 })).await;
    wait_for_log(&api, &root, webhook, "all five delivered", |log| {
        log.len() == 5 && log.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = receiver.deliveries().await;
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    let mut about_xavier = Vec::new();
    for d in answered(&seen, 200) {
        assert_eq!(d["verified"], true);
        let name = d["payload"]["data"]["user"]["username"].as_str().unwrap();
        *delivered
            .entry(format!("{name} {}", d["payload"]["type"].as_str().unwrap()))
            .or_default() += 1;
        if name == "xavier" {
            about_xavier.push(d["payload"]["type"].as_str().unwrap().to_string());
        }
    }
    let expected: BTreeMap<String, usize> = [
        "xavier user.created",
        "xavier membership.added",
        "xavier permission.granted",
        "yvonne user.created",
        "zoe user.created",
    ]
    .iter()
    .map(|name| (name.to_string(), 1))
    .collect();
    assert_eq!(delivered, expected, "each once: none lost, none doubled");
    assert_eq!(
        about_xavier, types,
        "one person's events in the order of the changes"
    );
}

async fn a_delivery_out_of_attempts_is_failed_and_the_console_retries_it(kind: Kind) {
    let scene = Scene::start(kind, |s| {
        quick(s);
        s.webhooks.max_attempts = 2;
    });
    let Some(scene) = scene.await else {
        return;
    };
    let Scene {
        receiver,
        t,
        api,
        root,
        _app: app,
        ..
    } = scene;

    // Registered from the console: the secret is shown on the next page, once.
    let admin = app.signed_in("root").await;
    let bad = submit(
        &admin,
        "/admin/webhooks/new",
        &[
            ("url", &receiver.url("/console")),
            ("description", "no events"),
        ],
    )
    .await;
    assert_eq!(bad.status(), 422);
    let page = html_unescape(&bad.text().await.unwrap());
    assert!(
        page.contains("choose at least one event type"),
        "a field message: {page}"
    );
    assert!(
        page.contains(&receiver.url("/console")),
        "the form keeps what was typed"
    );
    let made = submit(
        &admin,
        "/admin/webhooks/new",
        &[
            ("url", &receiver.url("/console")),
            ("event", "user.created"),
            ("active", "on"),
        ],
    )
    .await;
    assert_eq!(made.status(), 303);
    let at = location(&made).to_string();
    assert!(at.starts_with("/admin/webhooks/"), "{at}");
    let webhook: i64 = at.trim_start_matches("/admin/webhooks/").parse().unwrap();
    let page = html_unescape(&admin.get(&at).await.text().await.unwrap());
    let secret = page
        .split("id=\"webhook-secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new secret is on the page")
        .to_string();
    assert!(secret.starts_with("whsec_"));
    let again = html_unescape(&admin.get(&at).await.text().await.unwrap());
    assert!(!again.contains(&secret), "shown once");

    receiver
        .set(json!({ "secret": secret, "status": 500 }))
        .await;
    let worker = Worker::start(&t.ladder);
    t.user("unlucky").await;
    let log = wait_for_log(&api, &root, webhook, "the delivery to fail", |log| {
        log.len() == 1 && log[0]["state"] == "failed"
    })
    .await;
    assert_eq!(
        (&log[0]["attempts"], &log[0]["last_status"]),
        (&json!(2), &json!(500))
    );
    let failed_page = admin
        .get(&format!("{at}?state=failed"))
        .await
        .text()
        .await
        .unwrap();
    assert!(failed_page.contains("HTTP 500"), "{failed_page}");
    let delivery = log[0]["id"].as_i64().unwrap();
    receiver.set(json!({ "status": 200 })).await;
    let retried = submit(&admin, &format!("{at}/deliveries/{delivery}/retry"), &[]).await;
    assert_eq!(retried.status(), 303);
    assert_eq!(location(&retried), at);
    let page = html_unescape(&admin.get(&at).await.text().await.unwrap());
    assert!(
        flash_of(&page).unwrap_or_default().contains("Queued again"),
        "{page}"
    );
    let log = wait_for_log(&api, &root, webhook, "the retry to be delivered", |log| {
        log[0]["state"] == "delivered"
    })
    .await;
    assert_eq!(log[0]["attempts"], 1, "a fresh attempt budget");
    let twice = api
        .post(
            &root,
            &format!("/api/v1/webhooks/{webhook}/deliveries/{delivery}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(twice.status, 409, "{}", twice.body);
    let seen = receiver.deliveries().await;
    assert_eq!(answered(&seen, 200).len(), 1);

    // After `keep_days` the sessions job deletes what was delivered, never
    // what is still owed.
    drop(worker);
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.user("still-owed").await;
    t.ladder.clock.advance(31 * 86_400);
    let transport = Transport::from_settings(&t.ladder.settings.mail).unwrap();
    let summary = jobs::run_once(&t.ladder, JobName::Sessions, &transport)
        .await
        .unwrap();
    assert!(summary.contains("1 old webhook delivery(ies)"), "{summary}");
    let log = deliveries_of(&api, &root, webhook, "").await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["state"], "pending");
    assert_eq!(log[0]["payload"]["data"]["user"]["username"], "still-owed");
}

async fn a_slow_receiver_does_not_slow_the_change(kind: Kind) {
    let Some(scene) = Scene::start(kind, quick).await else {
        return;
    };
    let Scene {
        receiver,
        t,
        api,
        root,
        _app,
        ..
    } = scene;
    let (_, secret) = register(&api, &root, &receiver.url("/slow"), &["user.created"]).await;
    receiver
        .set(json!({ "secret": secret, "delay": 3.0 }))
        .await;
    let _worker = Worker::start(&t.ladder);

    let first = api
        .post(
            &root,
            "/api/v1/users",
            json!({ "username": "first", "email": "first@example.com" }),
        )
        .await;
    assert_eq!(first.status, 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.log().await["in_flight"] != 1 {
        assert!(Instant::now() < deadline, "the first delivery never began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While the receiver sits on the first delivery, a change goes through.
    let second = api
        .post(
            &root,
            "/api/v1/users",
            json!({ "username": "second", "email": "second@example.com" }),
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.body);
    let log = receiver.log().await;
    assert!(
        log["deliveries"].as_array().unwrap().is_empty(),
        "the change was answered while its predecessor's delivery was still in flight"
    );
    let seen = receiver
        .wait_for("both delivered", |seen| answered(seen, 200).len() == 2)
        .await;
    let names: Vec<&str> = seen
        .iter()
        .map(|d| d["payload"]["data"]["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second"]);
}

async fn an_old_timestamp_and_a_rotated_secret_are_refused_by_the_library(kind: Kind) {
    let Some(scene) = Scene::start(kind, quick).await else {
        return;
    };
    let Scene {
        receiver,
        t,
        api,
        root,
        _app,
        ..
    } = scene;
    let (webhook, secret) =
        register(&api, &root, &receiver.url("/strict"), &["user.created"]).await;
    receiver.set(json!({ "secret": secret })).await;
    let _worker = Worker::start(&t.ladder);

    // Signed ten minutes ago: the library's five-minute window refuses it.
    t.ladder.clock.advance(-600);
    t.user("from-the-past").await;
    let seen = receiver
        .wait_for("the old delivery", |seen| !seen.is_empty())
        .await;
    assert_eq!(seen[0]["verified"], false);
    assert!(
        seen[0]["error"].as_str().unwrap().contains("too old"),
        "{:#}",
        seen[0]
    );
    assert_eq!(seen[0]["answered"], 400);
    // Signed now, the retry passes.
    t.ladder.clock.advance(600);
    receiver
        .wait_for("the retry", |seen| !answered(seen, 200).is_empty())
        .await;

    // Rotated: the receiver still has the old secret, so it refuses what comes.
    let rotated = api
        .post(
            &root,
            &format!("/api/v1/webhooks/{webhook}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let fresh = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(fresh, secret);
    t.user("after-rotation").await;
    let seen = receiver
        .wait_for("a refusal under the old secret", |seen| {
            seen.iter().any(|d| {
                d["verified"] == false && d["error"].as_str().unwrap_or("").contains("signature")
            })
        })
        .await;
    assert_eq!(
        answered(&seen, 200).len(),
        1,
        "nothing new verified under the old secret"
    );
    receiver.set(json!({ "secret": fresh })).await;
    let seen = receiver
        .wait_for("delivery under the new secret", |seen| {
            answered(seen, 200).len() == 2
        })
        .await;
    assert_eq!(
        answered(&seen, 200)[1]["payload"]["data"]["user"]["username"],
        "after-rotation"
    );
}

async fn redirects_are_not_followed(kind: Kind) {
    let Some(scene) = Scene::start(kind, quick).await else {
        return;
    };
    let Scene {
        receiver,
        t,
        api,
        root,
        _app,
        ..
    } = scene;
    let elsewhere = Receiver::start(None).unwrap();
    let (webhook, secret) = register(&api, &root, &receiver.url("/moved"), &["user.created"]).await;
    receiver
        .set(json!({ "secret": secret, "redirect": elsewhere.url("/elsewhere") }))
        .await;
    elsewhere.set(json!({ "secret": secret })).await;
    let _worker = Worker::start(&t.ladder);
    t.user("redirected").await;
    let log = wait_for_log(&api, &root, webhook, "an attempt", |log| {
        log[0]["attempts"].as_i64() >= Some(1)
    })
    .await;
    assert_eq!(log[0]["state"], "pending");
    assert_eq!(log[0]["last_status"], 307);
    assert!(
        log[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed")
    );
    assert_eq!(answered(&receiver.deliveries().await, 307).len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        elsewhere.deliveries().await.is_empty(),
        "the redirect's target heard nothing"
    );
}

async fn private_targets_are_refused_without_the_setting(kind: Kind) {
    let Some(scene) = Scene::start(kind, |_| {}).await else {
        return;
    };
    let Scene {
        receiver,
        t,
        api,
        root,
        _app,
        ..
    } = scene;
    for url in [
        receiver.url("/"),
        format!("http://localhost:{}/", receiver.port),
        "http://10.0.0.7/hook".into(),
        "http://192.168.1.1/hook".into(),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://[::1]/hook".into(),
        "http://0.0.0.0/".into(),
    ] {
        let answer = api
            .post(
                &root,
                "/api/v1/webhooks",
                json!({ "url": url, "event_types": ["*"] }),
            )
            .await;
        assert_eq!(answer.status, 422, "{url}: {}", answer.body);
        assert_eq!(answer.error(), ("invalid", Some("url")));
        assert!(
            answer.message().contains("webhooks.allow_private_targets"),
            "{}",
            answer.message()
        );
    }
    for (body, field) in [
        (
            json!({ "url": "ftp://example.com/", "event_types": ["*"] }),
            "url",
        ),
        (json!({ "event_types": ["*"] }), "url"),
        (
            json!({ "url": "https://93.184.216.34/\nhook", "event_types": ["*"] }),
            "url",
        ),
        (
            json!({ "url": format!("https://93.184.216.34/{}", "a".repeat(2001)), "event_types": ["*"] }),
            "url",
        ),
        (
            json!({ "url": "https://93.184.216.34/", "event_types": ["*"], "description": "two\tparts" }),
            "description",
        ),
        (
            json!({ "url": "https://93.184.216.34/", "event_types": ["*"], "description": "d".repeat(201) }),
            "description",
        ),
        (
            json!({ "url": "https://93.184.216.34/", "event_types": ["user.renamed"] }),
            "event_types",
        ),
        (
            json!({ "url": "https://93.184.216.34/", "event_types": [] }),
            "event_types",
        ),
    ] {
        let answer = api.post(&root, "/api/v1/webhooks", body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.body);
        assert_eq!(answer.error().1, Some(field), "{body}");
    }
    let listed = api.get(&root, "/api/v1/webhooks").await;
    assert_eq!(listed.body["items"], json!([]), "nothing was registered");
    // A public address is accepted.
    let public: Answer = api
        .post(
            &root,
            "/api/v1/webhooks",
            json!({ "url": "https://93.184.216.34/hook", "event_types": ["user.created"] }),
        )
        .await;
    assert_eq!(public.status, 201, "{}", public.body);

    // Registered where it was allowed, then sent by an instance where it is
    // not: refused at delivery too (the check is made at every attempt).
    let lab = t.reopen(|s| s.webhooks.allow_private_targets = true).await;
    let (endpoint, secret) = lab
        .db
        .run(CreateEndpoint {
            actor: Actor::system(Source::Cli),
            url: receiver.url("/inside"),
            description: String::new(),
            event_types: vec!["user.created".into()],
            is_active: true,
            now: t.now(),
        })
        .await
        .unwrap();
    receiver.set(json!({ "secret": secret })).await;
    let strict = t.reopen(|s| s.webhooks.poll_interval_ms = 100).await;
    let _worker = Worker::start(&strict);
    t.user("kept-inside").await;
    let log = wait_for_log(
        &api,
        &root,
        endpoint.endpoint_id,
        "a refused attempt",
        |log| log.len() == 1 && log[0]["attempts"].as_i64() >= Some(1),
    )
    .await;
    assert!(
        log[0]["last_error"].as_str().unwrap().contains("private"),
        "{:#}",
        log[0]
    );
    assert!(
        receiver.deliveries().await.is_empty(),
        "nothing reached the private address"
    );
}
