//! Forms shown again: every field's problem beside its field, with 422.

use std::collections::BTreeMap;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::templates::render;
use crate::{Error, Result};

/// The problems of one submitted form, by field name.
#[derive(Debug, Default, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    /// The parsed value, or None with its validation error filed under its
    /// field. Other errors are not the form's and are dropped here: only
    /// parsing goes through `check`.
    pub fn check<T>(&mut self, parsed: Result<T>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(e) => {
                self.note(e);
                None
            }
        }
    }

    /// Files a validation error under its field.
    pub fn note(&mut self, e: Error) {
        if let Error::Invalid { field, message } = e {
            self.0.insert(field, message);
        }
    }

    /// Files `message` under `field`.
    pub fn insert(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.insert(field, message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A domain refusal shown beside `field`: conflicts, refusals and
    /// validation errors belong to the form; anything else stays an error.
    pub fn refusal(&mut self, field: &'static str, e: Error) -> Result<()> {
        match e {
            Error::Invalid { field, message } => self.insert(field, message),
            e @ (Error::Conflict(_)
            | Error::Forbidden(_)
            | Error::NotFound(_)
            | Error::RateLimited(_)) => self.insert(field, e.to_string()),
            e => return Err(e),
        }
        Ok(())
    }
}

/// Renders the form page `template`: 200 when `errors` is empty, else 422.
/// `ctx` (from `ctx!`) gets `errors` added.
pub fn form_page(
    template: &str,
    mut ctx: serde_json::Value,
    errors: &FieldErrors,
) -> Result<Response> {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    ctx["errors"] = serde_json::to_value(errors).map_err(anyhow::Error::from)?;
    Ok((status, render(template, ctx)?).into_response())
}
