//! How an `Error` answers a browser: a status and a plain, helpful page.
//! JSON API handlers wrap errors in `ApiError` instead (see `api`).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use super::templates;
use crate::Error;

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
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
            "Something went wrong on our side. It has been logged; please try again.".into()
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
        let body = templates::render_string(
            "error.html",
            crate::ctx! { status => status.as_u16(), title, message => self.public_message() },
        )
        .unwrap_or_else(|_| format!("{} {title}", status.as_u16()));
        let mut response = (status, Html(body)).into_response();
        if let Error::RateLimited(secs) = self
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
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
        let status = err.status();
        let code = match &err {
            Error::Invalid { .. } => "invalid",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Forbidden(_) => "forbidden",
            Error::Unauthorized => "unauthorized",
            Error::RateLimited(_) => "rate_limited",
            Error::Database(_) | Error::Unexpected(_) => "internal",
        };
        let field = match &err {
            Error::Invalid { field, .. } => Some(*field),
            _ => None,
        };
        let body = serde_json::json!({
            "error": { "status": status.as_u16(), "code": code, "message": err.public_message(), "field": field }
        });
        (status, axum::Json(body)).into_response()
    }
}

/// A JSON body whose rejections are API errors: malformed JSON is 400, a body
/// of the wrong shape 422.
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
                let (status, message) = match &rejection {
                    JsonRejection::JsonDataError(e) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, e.body_text())
                    }
                    other => (StatusCode::BAD_REQUEST, other.body_text()),
                };
                let code = if status == StatusCode::BAD_REQUEST {
                    "bad_request"
                } else {
                    "invalid"
                };
                let body = serde_json::json!({
                    "error": { "status": status.as_u16(), "code": code, "message": message, "field": null }
                });
                Err((status, axum::Json(body)).into_response())
            }
        }
    }
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
