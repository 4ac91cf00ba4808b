//! How an `Error` answers a browser: a status and a plain, helpful page.
//! JSON API handlers wrap errors in `ApiError` instead (see `api`).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use super::templates;
use crate::Error;

/// What a person is told about a failure of Ladder's (the cause goes to the log).
const GENERIC_FAILURE: &str =
    "Something went wrong on our side. It has been logged; please try again.";

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::Duplicate(_) => StatusCode::CONFLICT,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Database(_) | Error::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What a person may be shown: the message for their own mistakes, a
    /// generic line for ours (the cause goes to the log).
    pub fn public_message(&self) -> String {
        if self.is_user_error() {
            self.to_string()
        } else {
            GENERIC_FAILURE.into()
        }
    }

    /// Logs a server-side failure once, inside the request's span.
    pub fn log(&self) {
        if !self.is_user_error() {
            tracing::error!(error = %self, "request failed");
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::UNAUTHORIZED => "Please sign in",
            StatusCode::UNPROCESSABLE_ENTITY => "Please check your input",
            _ => "Something went wrong",
        };
        let said = Said {
            message: self.public_message(),
            field: match &self {
                Error::Invalid { field, .. } => Some(*field),
                _ => None,
            },
        };
        let body = templates::render_string(
            "error.html",
            crate::ctx! { status => status.as_u16(), title, message => said.message },
        )
        .unwrap_or_else(|_| format!("{} {title}", status.as_u16()));
        let mut response = (status, Html(body)).into_response();
        if let Error::RateLimited(secs) = self
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        // Kept for `api_json_errors`, which answers it as JSON under /api/.
        response.extensions_mut().insert(said);
        response
    }
}

/// What an error page said, kept on the response.
#[derive(Clone)]
struct Said {
    message: String,
    field: Option<&'static str>,
}

/// The 404 for unknown paths.
pub async fn not_found() -> Response {
    Error::NotFound("That page".into()).into_response()
}

/// An error answered as JSON, for the API: `{"error": {"status", "code", "message", "field"}}`.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        err.log();
        let field = match &err {
            Error::Invalid { field, .. } => Some(*field),
            _ => None,
        };
        envelope(err.status(), &err.public_message(), field)
    }
}

/// The API's error body, `{"error": {"status", "code", "message", "field"}}`
/// (docs/api.md); the code follows from the status.
pub fn envelope(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    let body = serde_json::json!({
        "error": { "status": status.as_u16(), "code": code_of(status), "message": message, "field": field }
    });
    (status, axum::Json(body)).into_response()
}

/// The envelope's `code` for a status.
pub fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "too_large",
        422 => "invalid",
        429 => "rate_limited",
        503 => "unavailable",
        500.. => "internal",
        _ => "bad_request",
    }
}

/// Middleware: every error under `/api/` is the JSON envelope, whoever made
/// it: a handler's `Error` (its message and field are kept), axum's own
/// rejections and plain-text answers (a bad query string, a wrong method, a
/// body over the limit), the fallback's 404, a timeout, a caught panic.
pub async fn api_json_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let response = next.run(req).await;
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    if !is_error || content_type_is(response.headers(), "application/json") {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let (message, field) = match parts.extensions.remove::<Said>() {
        Some(said) => (said.message, said.field),
        None => (unworded(status, &parts.headers, body).await, None),
    };
    let (json_parts, json_body) = envelope(status, &message, field).into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &json_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, json_body)
}

fn content_type_is(headers: &axum::http::HeaderMap, prefix: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(prefix))
}

/// The message for an error answer that Ladder did not word itself: axum's
/// rejections say what was wrong in plain text; the rest get a message for
/// their status.
async fn unworded(
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> String {
    let plain_text = content_type_is(headers, "text/plain");
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) if plain_text && status.is_client_error() => {
            String::from_utf8_lossy(&bytes).trim().to_string()
        }
        _ => String::new(),
    };
    if !text.is_empty() {
        text
    } else if status.is_server_error() {
        GENERIC_FAILURE.to_string()
    } else {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => "This endpoint does not take that method.".into(),
            StatusCode::PAYLOAD_TOO_LARGE => "The request body is too large.".into(),
            other => other
                .canonical_reason()
                .unwrap_or("Bad request")
                .to_string(),
        }
    }
}

/// A JSON body whose rejections are API errors: malformed JSON is 400, a body
/// of the wrong shape 422, a body over the limit 413.
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                let status = match &rejection {
                    JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        StatusCode::PAYLOAD_TOO_LARGE
                    }
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(envelope(status, &rejection.body_text(), None))
            }
        }
    }
}

/// A numeric id from a path segment: anything but a number names nothing
/// (404, "`what` does not exist"), as a missing row does.
pub fn path_id(raw: &str, what: &str) -> crate::Result<i64> {
    raw.parse().map_err(|_| Error::NotFound(what.into()))
}

/// A numeric id from the path (`/posts/{id}`). Anything else names no page:
/// 404, as the HTML page or, under `/api/`, as a JSON error (axum's own
/// answer would be a plain-text 400).
pub struct Id(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Id {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Id, Response> {
        match axum::extract::Path::<i64>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(Id(id)),
            Err(_) => {
                let missing = Error::NotFound("That page".into());
                Err(if parts.uri.path().starts_with("/api/") {
                    ApiError(missing).into_response()
                } else {
                    missing.into_response()
                })
            }
        }
    }
}
