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
