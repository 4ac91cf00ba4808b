//! One caller of the API, for the users and groups contract tests: a
//! token of one user, requests that answer status, body and Location, and
//! the checks every test makes of an answer (a success with its status, or
//! the error envelope with its field); and the audit events a write left.

use ladder::{
    accounts::User,
    audit::{self, AuditEvent, AuditFilter},
    permissions::revision,
};
use reqwest::{Method, header};
use serde_json::Value;

use crate::helpers::{TestApp, TestLadder};

/// Calls the API as one user, with a token named `name`.
pub struct Api {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

/// What one request answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub location: Option<String>,
}

impl Api {
    /// A fresh token for `user`, named `name`.
    pub async fn as_user(t: &TestLadder, app: &TestApp, user: &User, name: &str) -> Api {
        Api {
            base: app.base.clone(),
            token: crate::api_client::token(t, user, name, None).await,
            http: reqwest::Client::new(),
        }
    }

    /// The same token, against another instance.
    pub fn on(&self, app: &TestApp) -> Api {
        Api {
            base: app.base.clone(),
            token: self.token.clone(),
            http: self.http.clone(),
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }

    /// A POST with an `Idempotency-Key`; the answer and whether it was replayed.
    pub async fn post_keyed(&self, path: &str, body: Value, key: &str) -> (Answer, bool) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let replayed = response.headers().contains_key("idempotent-replayed");
        (answer(response).await, replayed)
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// A PUT without a body (adding a member, granting a permission).
    pub async fn put_empty(&self, path: &str) -> Answer {
        self.send(Method::PUT, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }
}

/// Reads any response as an `Answer`.
pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text:?}"));
    Answer {
        status,
        body,
        location,
    }
}

impl Answer {
    /// The body of a success with exactly this status.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        &self.body
    }

    /// The error envelope's message, after checking the status, its code and
    /// (for a 422) the field.
    #[track_caller]
    pub fn error(&self, status: u16, field: Option<&str>) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        let error = &self.body["error"];
        assert_eq!(error["status"], status, "{}", self.body);
        let code = match status {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            409 => "conflict",
            422 => "invalid",
            other => panic!("no code for {other}"),
        };
        assert_eq!(error["code"], code, "{}", self.body);
        if status == 422 || field.is_some() {
            assert_eq!(error["field"].as_str(), field, "{}", self.body);
        }
        error["message"].as_str().unwrap().to_string()
    }

    /// A 403 whose message names `what` (the missing permission, say).
    #[track_caller]
    pub fn refused(&self, what: &str) {
        let message = self.error(403, None);
        assert!(message.contains(what), "{what:?} not in {message:?}");
    }

    /// The revision a write answered with.
    #[track_caller]
    pub fn revision(&self) -> i64 {
        self.body["revision"]
            .as_i64()
            .unwrap_or_else(|| panic!("no revision in {}", self.body))
    }
}

/// The revision committed last.
pub async fn current_revision(t: &TestLadder) -> i64 {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    revision::current(&mut conn).await.unwrap()
}

/// Audit events of one action, oldest first.
pub async fn events(t: &TestLadder, action: &str) -> Vec<AuditEvent> {
    let mut conn = t.ladder.db.acquire().await.unwrap();
    let filter = AuditFilter {
        action: Some(action.to_string()),
        limit: 1000,
        ..AuditFilter::default()
    };
    let mut found = audit::list(&mut conn, &filter).await.unwrap();
    found.reverse();
    found
}

/// An event's `after` state as JSON.
pub fn after(event: &AuditEvent) -> Value {
    serde_json::from_str(event.after_state.as_deref().unwrap_or("null")).unwrap()
}

/// The last event of `action`, which the API must have written with source
/// `api` and the token's name.
#[track_caller]
pub fn by_token(mut events: Vec<AuditEvent>, token: &str) -> AuditEvent {
    let event = events.pop().expect("an audit event");
    assert_eq!(
        (event.source.as_str(), event.token_name.as_deref()),
        ("api", Some(token)),
        "{event:?}"
    );
    event
}
