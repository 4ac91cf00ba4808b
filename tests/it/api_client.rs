//! What the API contract tests share: tokens made as the CLI makes them, a
//! client that sends them, and the demo's groups and cast for the workflow.

use ladder::{
    accounts::{User, tokens::CreateToken},
    permissions::PermissionName,
};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;

use crate::{
    helpers::{TestApp, TestLadder},
    web_helpers::{EDITOR, SENIOR_WRITER, WRITER},
};

/// A token for `user` named `name`, narrowed to `scope` if given.
pub async fn token(t: &TestLadder, user: &User, name: &str, scope: Option<&[&str]>) -> String {
    let scope = scope.map(|perms| {
        perms
            .iter()
            .map(|p| PermissionName::parse(p).unwrap())
            .collect()
    });
    t.ladder
        .db
        .run(CreateToken {
            actor: t.system(),
            owner: user.username.clone(),
            name: name.to_string(),
            expires_at: None,
            scope,
            now: t.now(),
        })
        .await
        .unwrap()
        .secret
}

/// An answer: status, headers and the JSON body (Null if there was none).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error envelope's code and field.
    pub fn error(&self) -> (&str, Option<&str>) {
        let error = &self.body["error"];
        assert_eq!(
            error["status"].as_u64(),
            Some(u64::from(self.status.as_u16())),
            "an error envelope: {}",
            self.body
        );
        (
            error["code"].as_str().unwrap_or_default(),
            error["field"].as_str(),
        )
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    /// The usernames, ids or names of a page's items, by `key`.
    pub fn items(&self, key: &str) -> Vec<Value> {
        self.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("not a page: {}", self.body))
            .iter()
            .map(|item| item[key].clone())
            .collect()
    }
}

/// Calls the API over HTTP with a bearer token.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(app: &TestApp) -> Api {
        Api {
            base: app.base.clone(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::read(request.send().await.unwrap()).await
    }

    /// A POST of `body` exactly as written, as JSON.
    pub async fn post_raw(
        &self,
        token: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::read(request.send().await.unwrap()).await
    }

    async fn read(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> Answer {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(token), Some(&body), &[])
            .await
    }
}

/// The demo's groups on the "senior-writer" track (Writers ask to join
/// Senior Writers; Editors decide), and one user in each: alice a writer,
/// erin an editor; `root` is the superuser.
pub struct Workflow {
    pub alice: User,
    pub erin: User,
    pub root: User,
}

impl Workflow {
    pub async fn new(t: &TestLadder) -> Workflow {
        let root = t.superuser("root").await;
        let alice = t.user("alice").await;
        let erin = t.user("erin").await;
        // Editors first: the track's approvers must hold what Senior Writers get.
        t.join(&erin, &t.group("Editors", EDITOR).await).await;
        t.group("Senior Writers", SENIOR_WRITER).await;
        t.join(&alice, &t.group("Writers", WRITER).await).await;
        Workflow { alice, erin, root }
    }

    /// Another writer, who may ask.
    pub async fn writer(&self, t: &TestLadder, name: &str) -> User {
        let user = t.user(name).await;
        t.join(&user, &t.group("Writers", &[]).await).await;
        user
    }
}
