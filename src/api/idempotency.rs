//! `Idempotency-Key` on POSTs that create something, so a client may retry
//! one safely: within 24 hours, a repeat with the same key and the same
//! request returns the first answer (status and body) and does nothing
//! again; the same key with a different request is a 422. Keys are per user.
//!
//! An operation opts in with one line in the rule table, `idempotent(routes!(…))`:
//! that documents the header on its POSTs and puts `keep_first_answer` in
//! front of them. A request is claimed in `idempotency_keys` before it runs
//! (the table's primary key lets one claim win; a concurrent duplicate finds
//! the claim and gets a 409), and its answer is stored when it is done. The
//! action runs in a task of its own, so a client that hangs up cannot stop
//! it between doing the work and recording the answer. A 5xx is not kept:
//! the claim is released and the same request may be sent again.
//! Expired keys are deleted by the `sessions` job ([`PurgeExpired`]).

use axum::{
    Extension,
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{Next, from_fn},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use tracing::Instrument;
use utoipa::openapi::{
    ObjectBuilder, RefOr, Required, Type,
    content::ContentBuilder,
    path::{ParameterBuilder, ParameterIn},
    response::ResponseBuilder,
    schema::Ref,
};
use utoipa_axum::router::UtoipaMethodRouter;

use crate::{
    Error, Ladder, Result, binds,
    db::{Finish, Sql, Transaction},
    web::{
        error::{ApiError, envelope},
        state::AppState,
        viewer::Viewer,
    },
};

pub const HEADER: &str = "Idempotency-Key";
/// Sent on an answer that repeats a stored one.
pub const REPLAYED: &str = "Idempotent-Replayed";
/// How long a key (and its answer) is kept.
pub const KEEP_SECS: i64 = 24 * 3_600;
const MAX_KEY_LEN: usize = 255;
/// The largest body a keyed request may have (the API's JSON limit).
const MAX_BODY: usize = 2 * 1024 * 1024;

/// Makes the POST operations of `routes` idempotent: documents the header
/// and the 409 for a request still being answered, and keeps first answers.
pub fn idempotent(routes: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, mut paths, handler) = routes;
    for item in paths.paths.values_mut() {
        let Some(operation) = item.post.as_mut() else {
            continue;
        };
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(header_parameter()));
        also(
            operation,
            "409",
            "A request with the same Idempotency-Key is still being answered.",
        );
        also(
            operation,
            "422",
            "The Idempotency-Key is malformed, or was used for a different request.",
        );
    }
    (schemas, paths, handler.layer(from_fn(keep_first_answer)))
}

/// Adds `text` to the description of the operation's `status` answer.
fn also(operation: &mut utoipa::openapi::path::Operation, status: &str, text: &str) {
    let response = operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(error_response("")));
    if let RefOr::T(response) = response {
        response.description = match response.description.trim_end_matches('.') {
            "" => text.to_string(),
            before => format!("{before}. {text}"),
        };
    }
}

fn header_parameter() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(HEADER)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Any unique string (1 to 255 visible ASCII characters, e.g. a UUID). Within 24 \
             hours a repeat with the same key and the same request returns the first answer \
             and does nothing; the same key with a different request is a 422.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_KEY_LEN))
                .pattern(Some("^[!-~]+$")),
        ))
        .build()
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// The key a request carries, checked: 1 to 255 visible ASCII characters.
fn key_of(headers: &HeaderMap) -> Option<Result<String>> {
    let raw = headers.get(HEADER)?;
    let invalid = || {
        Error::invalid(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()));
    Some(key.map(String::from).ok_or_else(invalid))
}

/// What makes two requests "the same": method, path and query, and body,
/// byte for byte.
fn fingerprint(method: &Method, uri: &axum::http::Uri, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update([0]);
    hash.update(uri.path_and_query().map_or("", |pq| pq.as_str()).as_bytes());
    hash.update([0]);
    hash.update(body);
    hex::encode(hash.finalize())
}

/// The middleware `idempotent` adds: without a key (or on another method)
/// the request passes through; with one it is claimed, replayed or refused.
async fn keep_first_answer(
    Extension(state): Extension<AppState>,
    Viewer(viewer): Viewer,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    // The route's guard runs first, so a keyed request here has a user.
    let (key, current) = match (key_of(req.headers()), viewer) {
        (Some(Ok(key)), Some(current)) => (key, current),
        (Some(Err(e)), Some(_)) => return ApiError(e).into_response(),
        _ => return next.run(req).await,
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        let too_large = StatusCode::PAYLOAD_TOO_LARGE;
        return envelope(too_large, "The request body is too large.", None);
    };
    let keyed = Keyed {
        user_id: current.user.user_id,
        key,
    };
    let claim = Claim {
        keyed: keyed.clone(),
        fingerprint: fingerprint(&parts.method, &parts.uri, &bytes),
        now: state.ladder.clock.now(),
    };
    match state.ladder.db.run(claim).await {
        Err(e) => ApiError(e).into_response(),
        Ok(Claimed::Mismatch) => ApiError(reused_for_another_request()).into_response(),
        Ok(Claimed::Busy) => ApiError(still_answering()).into_response(),
        Ok(Claimed::Replay { status, body }) => replay(status, body),
        Ok(Claimed::Ours) => {
            let req = Request::from_parts(parts, Body::from(bytes));
            answer_claimed(&state, keyed, req, next).await
        }
    }
}

fn reused_for_another_request() -> Error {
    Error::invalid(
        "Idempotency-Key",
        "was used for a different request in the last 24 hours; send a new key",
    )
}

fn still_answering() -> Error {
    Error::Conflict(
        "A request with this Idempotency-Key is still being answered; ask again shortly.".into(),
    )
}

/// Answers a request whose key this process just claimed, on a task of its
/// own so that a panic frees the key instead of holding it for a day.
async fn answer_claimed(state: &AppState, keyed: Keyed, req: Request, next: Next) -> Response {
    let run = run_and_keep(state.ladder.clone(), keyed.clone(), req, next);
    match tokio::spawn(run.in_current_span()).await {
        Ok(response) => response,
        Err(e) => {
            // The action panicked: nothing is kept, the key is free again.
            release(&state.ladder, keyed).await;
            ApiError(Error::Unexpected(anyhow::anyhow!(
                "idempotent request: {e}"
            )))
            .into_response()
        }
    }
}

/// Runs the claimed request and keeps its answer (or frees the key after a 5xx).
async fn run_and_keep(ladder: Ladder, keyed: Keyed, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            release(&ladder, keyed).await;
            let failed = Error::Unexpected(anyhow::anyhow!("reading an answer: {e}"));
            return ApiError(failed).into_response();
        }
    };
    if parts.status.is_server_error() {
        release(&ladder, keyed).await;
    } else {
        let keep = Keep {
            keyed,
            status: i64::from(parts.status.as_u16()),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if let Err(e) = ladder.db.run(keep).await {
            // The claim stays: a repeat is told it is still being answered
            // (409) until the key expires, never run twice.
            tracing::error!(error = %e, "could not keep an idempotent answer");
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn release(ladder: &Ladder, keyed: Keyed) {
    if let Err(e) = ladder.db.run(Release { keyed }).await {
        tracing::error!(error = %e, "could not release an idempotency key");
    }
}

/// A stored answer, sent again.
fn replay(status: i64, body: String) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Bytes::from(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// One user's key.
#[derive(Clone)]
struct Keyed {
    user_id: i64,
    key: String,
}

/// What claiming a key found.
enum Claimed {
    /// The key is this request's now: run it.
    Ours,
    /// The same request was answered: here is the answer.
    Replay { status: i64, body: String },
    /// The same request is being answered right now.
    Busy,
    /// The key was used for another request.
    Mismatch,
}

/// Claims a key for a request, in one transaction: an expired claim is
/// deleted first, then the insert either wins or finds the row that did
/// (on PostgreSQL it waits for a concurrent claim of the same key to commit).
/// `status` 0 marks a claim whose answer is not in yet.
struct Claim {
    keyed: Keyed,
    fingerprint: String,
    now: i64,
}

impl Transaction for Claim {
    type Output = Claimed;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Claimed>> {
        let Keyed { user_id, key } = &self.keyed;
        sql.execute(
            "delete from idempotency_keys where user_id = $1 and idem_key = $2 and created_at <= $3",
            binds![*user_id, key, self.now - KEEP_SECS],
        )
        .await?;
        let claimed = sql
            .execute(
                "insert into idempotency_keys (user_id, idem_key, request_hash, status, body, created_at) \
                 values ($1, $2, $3, 0, '', $4) on conflict do nothing",
                binds![*user_id, key, &self.fingerprint, self.now],
            )
            .await?;
        if claimed == 1 {
            return Ok(Finish::Commit(Claimed::Ours));
        }
        let (fingerprint, status, body): (String, i64, String) = sql
            .fetch_one(
                "select request_hash, status, body from idempotency_keys where user_id = $1 and idem_key = $2",
                binds![*user_id, key],
            )
            .await?;
        Ok(Finish::Commit(if fingerprint != self.fingerprint {
            Claimed::Mismatch
        } else if status == 0 {
            Claimed::Busy
        } else {
            Claimed::Replay { status, body }
        }))
    }
}

/// Stores the first answer on its claim.
struct Keep {
    keyed: Keyed,
    status: i64,
    body: String,
}

impl Transaction for Keep {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        sql.execute(
            "update idempotency_keys set status = $1, body = $2 \
             where user_id = $3 and idem_key = $4 and status = 0",
            binds![self.status, &self.body, self.keyed.user_id, &self.keyed.key],
        )
        .await?;
        Ok(Finish::Commit(()))
    }
}

/// Frees a claim whose request gave no answer worth keeping.
struct Release {
    keyed: Keyed,
}

impl Transaction for Release {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        sql.execute(
            "delete from idempotency_keys where user_id = $1 and idem_key = $2 and status = 0",
            binds![self.keyed.user_id, &self.keyed.key],
        )
        .await?;
        Ok(Finish::Commit(()))
    }
}

/// Deletes the keys older than 24 hours (the `sessions` job runs it);
/// answers how many went.
pub struct PurgeExpired {
    pub now: i64,
}

impl Transaction for PurgeExpired {
    type Output = u64;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<u64>> {
        let purged = sql
            .execute(
                "delete from idempotency_keys where created_at <= $1",
                binds![self.now - KEEP_SECS],
            )
            .await?;
        Ok(Finish::Commit(purged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        let key = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, HeaderValue::from_str(v).unwrap());
            key_of(&headers).unwrap().is_ok()
        };
        assert!(key("3f1c0a7e-5b9d-4c1e-9f7a-2d8b6e4c0a11"));
        assert!(key(&"k".repeat(255)));
        assert!(!key(&"k".repeat(256)));
        assert!(!key(""));
        assert!(!key("two words"));
        assert!(key_of(&HeaderMap::new()).is_none());
    }

    #[test]
    fn the_same_request_has_the_same_fingerprint_and_any_difference_changes_it() {
        let post = Method::POST;
        let uri: axum::http::Uri = "/api/v1/promotions".parse().unwrap();
        let other: axum::http::Uri = "/api/v1/groups".parse().unwrap();
        let one = fingerprint(&post, &uri, b"{\"track\":\"a\"}");
        assert_eq!(one, fingerprint(&post, &uri, b"{\"track\":\"a\"}"));
        assert_ne!(one, fingerprint(&post, &uri, b"{\"track\":\"b\"}"));
        assert_ne!(one, fingerprint(&post, &other, b"{\"track\":\"a\"}"));
        assert_ne!(one, fingerprint(&Method::PUT, &uri, b"{\"track\":\"a\"}"));
    }
}
