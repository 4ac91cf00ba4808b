//! Ladder started the way `ladder serve` starts it (`ladder::web::run`: the
//! server, the email and webhook workers and the scheduler side by side):
//! the workers send what a request queued, and a stop lets a request in
//! flight finish.

use std::time::{Duration, Instant};

use ladder::{
    Ladder,
    config::{MailTransport, SmtpTls},
    db::Backend,
    mail::transport::Transport,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::{
    helpers::{Client, TestLadder},
    mailbox::Mailbox,
};

on_both_backends!(
    the_email_worker_that_serve_runs_sends_what_a_request_queued,
    the_webhook_worker_that_serve_runs_delivers_what_a_change_queued,
    a_request_in_flight_when_the_stop_arrives_still_gets_its_answer,
);

/// Ladder running as `serve` runs it, on a port of its own.
struct Served {
    address: String,
    stop: Option<oneshot::Sender<()>>,
    done: JoinHandle<ladder::Result<()>>,
}

impl Served {
    /// Binds 127.0.0.1:0 and runs `ladder::web::run`, the path `serve` takes
    /// once it has bound `server.address`, until `stop`.
    async fn start(ladder: Ladder) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = ladder::web::Application::with_listener(ladder.clone(), listener)
            .await
            .unwrap();
        let address = format!("127.0.0.1:{}", app.port());
        let transport = Transport::from_settings(&ladder.settings.mail).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(ladder::web::run(ladder, app, transport, async {
            let _ = stopped.await;
        }));
        Served {
            address,
            stop: Some(stop),
            done,
        }
    }

    /// A browser-like client (cookies kept, redirects not followed).
    fn client(&self) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{}", self.address),
        }
    }

    async fn signed_in(&self, username: &str) -> Client {
        let client = self.client();
        let response = client
            .login(username, &format!("{username}-password"))
            .await;
        assert_eq!(response.status(), 303, "sign-in as {username} failed");
        client
    }

    fn send_stop(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Polls `done` every 20 ms until it holds, for at most ten seconds.
pub async fn within_ten_seconds(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn the_email_worker_that_serve_runs_sends_what_a_request_queued(t: TestLadder) {
    let smtp = Mailbox::start();
    let writer = t.user("writer").await;
    let editor = t.user("editor").await;
    t.join(&writer, &t.group("Writers", &[]).await).await;
    t.join(&editor, &t.group("Editors", &[]).await).await;
    // Another "process" on the same database, sending through SMTP.
    let ladder = t
        .reopen(|s| {
            s.mail.transport = MailTransport::Smtp;
            s.mail.smtp_host = "127.0.0.1".into();
            s.mail.smtp_port = smtp.port;
            s.mail.smtp_tls = SmtpTls::None;
        })
        .await;
    let served = Served::start(ladder).await;

    let client = served.signed_in("writer").await;
    let token = client.csrf("/promotions/new").await;
    let response = client
        .post_form(
            "/promotions/new",
            &token,
            &[("track", "senior-writer"), ("justification", "Ready.")],
        )
        .await;
    assert_eq!(response.status(), 303, "the promotion request");

    // Nothing here drains the outbox: the worker `run` started sends it.
    let received = smtp.wait_for(1);
    assert_eq!(received.len(), 1, "one email, to the one approver");
    assert!(
        received[0]
            .to
            .iter()
            .any(|to| to.contains("editor@example.com"))
    );
    // The worker marks the row after the server accepted the message.
    within_ten_seconds("the outbox row to be marked sent", async || {
        let states: Vec<String> = sqlx::query_scalar("select state from mail_outbox")
            .fetch_all(t.ladder.db.pool())
            .await
            .unwrap();
        states == ["sent"]
    })
    .await;
}

async fn the_webhook_worker_that_serve_runs_delivers_what_a_change_queued(t: TestLadder) {
    // A receiver that records each body (the signature is the webhook tests').
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let kept = bodies.clone();
    let receiver = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| async move {
            kept.lock().unwrap().push(body);
            axum::http::StatusCode::OK
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await });
    t.superuser("admin").await;
    let ladder = t
        .reopen(|s| {
            s.webhooks.allow_private_targets = true;
            // The email worker's polls commit (its claims) more often than
            // the webhook worker polls.
            s.mail.poll_interval_ms = 100;
        })
        .await;
    let served = Served::start(ladder).await;
    // Past the worker's first look at the endpoints (at its start), so only
    // a later poll can find this one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Registered by another process (the CLI, another instance) once `run`
    // is going: only the worker's poll can learn of it, however often the
    // email worker's own polls commit meanwhile.
    t.ladder
        .db
        .run(ladder::webhooks::CreateEndpoint {
            actor: t.system(),
            url,
            description: String::new(),
            event_types: vec!["user.created".into()],
            is_active: true,
            now: t.now(),
        })
        .await
        .unwrap();
    let client = served.signed_in("admin").await;
    let token = client.csrf("/admin/users/new").await;
    let response = client
        .post_form(
            "/admin/users/new",
            &token,
            &[
                ("username", "newbie"),
                ("email", "newbie@example.com"),
                ("display_name", ""),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "the new user");

    // Nothing here runs the worker: the one `run` started delivers.
    within_ten_seconds("the user.created delivery", async || {
        bodies
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains("\"username\":\"newbie\""))
    })
    .await;
    within_ten_seconds("the delivery to be marked delivered", async || {
        let states: Vec<String> = sqlx::query_scalar("select state from webhook_deliveries")
            .fetch_all(t.ladder.db.pool())
            .await
            .unwrap();
        states == ["delivered"]
    })
    .await;
}

async fn a_request_in_flight_when_the_stop_arrives_still_gets_its_answer(t: TestLadder) {
    t.superuser("admin").await;
    // The same Db as the test's (so, on SQLite, the same write turn). `run`
    // closes it at the end; afterwards the test reads through another Ladder.
    let mut served = Served::start(t.ladder.clone()).await;
    let client = served.signed_in("admin").await;
    let token = client.csrf("/admin/groups").await;

    // Hold what creating a group must wait for: this process's write turn on
    // SQLite, a lock on the groups table on PostgreSQL.
    let sqlite = t.ladder.db.backend() == Backend::Sqlite;
    let turn = if sqlite {
        Some(t.ladder.db.hold_write_turn().await.unwrap())
    } else {
        None
    };
    let lock = if sqlite {
        None
    } else {
        let mut lock = t.ladder.db.pool().begin().await.unwrap();
        sqlx::query("lock table groups in exclusive mode")
            .execute(&mut *lock)
            .await
            .unwrap();
        Some(lock)
    };
    let post = tokio::spawn(async move {
        client
            .post_form("/admin/groups/new", &token, &[("name", "Made in flight")])
            .await
    });
    // The request has reached its write and waits there.
    within_ten_seconds("the POST to wait for the write", async || {
        if sqlite {
            t.ladder.db.waiting_for_write_turn() == 1
        } else {
            let waiting: i64 = sqlx::query_scalar(
                "select count(*) from pg_locks where not granted and relation = to_regclass('groups')",
            )
            .fetch_one(t.ladder.db.pool())
            .await
            .unwrap();
            waiting == 1
        }
    })
    .await;

    served.send_stop();
    // The server stops accepting connections while the request is still parked.
    within_ten_seconds("the server to stop accepting", async || {
        tokio::net::TcpStream::connect(&served.address)
            .await
            .is_err()
    })
    .await;
    assert!(
        !post.is_finished(),
        "the POST was answered before its write"
    );

    if let Some(lock) = lock {
        lock.rollback().await.unwrap();
    }
    drop(turn);
    let response = tokio::time::timeout(Duration::from_secs(10), post)
        .await
        .expect("the POST is answered")
        .unwrap();
    assert_eq!(response.status(), 303, "the request in flight");
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        location.starts_with("/admin/groups/"),
        "sent to the new group's page, not back to the list: {location:?}"
    );
    let served_until_stopped = tokio::time::timeout(Duration::from_secs(10), &mut served.done)
        .await
        .expect("the server stops once the request is answered")
        .unwrap();
    served_until_stopped.unwrap();

    // The group was created (read through another Ladder: `run` closed the pool).
    let after = t.reopen(|_| {}).await;
    let made: i64 = sqlx::query_scalar("select count(*) from groups where name = 'Made in flight'")
        .fetch_one(after.db.pool())
        .await
        .unwrap();
    assert_eq!(made, 1);
}
