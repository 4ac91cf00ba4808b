//! One check for every text input before a handler, and so any SQL, sees it:
//! the path's segments, the query string, a form and a JSON body may hold no
//! control character (see `crate::text`). A NUL would otherwise reach
//! PostgreSQL, which refuses it, and the request would end in a 500.
//!
//! Bodies may hold newlines, tabs and carriage returns, which multi-line
//! fields (a post's body, a justification) need; single-line fields refuse
//! those too, in their own types (`Username`, `GroupName`, a post's title).
//! A refusal is a 422 page, or under `/api/` the JSON error.

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::error::envelope;
use crate::{
    Error, Result,
    text::{self, Lines},
};

/// The largest form or JSON body Ladder reads (axum's own default for its
/// extractors, so a body that passes here is not refused by them).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Form,
    Json,
}

pub async fn refuse_control_characters(req: Request, next: Next) -> Response {
    if let Err(e) = check_uri(req.uri()) {
        return e.into_response();
    }
    let Some(kind) = body_kind(&req) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return match kind {
            BodyKind::Form => Error::invalid("form", "the form is too large").into_response(),
            BodyKind::Json => envelope(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is larger than 2 MiB.",
                None,
            ),
        };
    };
    let checked = match kind {
        BodyKind::Form => check_form(&bytes),
        BodyKind::Json => check_json(&bytes),
    };
    match checked {
        Ok(()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => e.into_response(),
    }
}

/// Forms and JSON are the bodies Ladder reads; any other is refused by the
/// handler's extractor without being read.
fn body_kind(req: &Request) -> Option<BodyKind> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .split(';')
        .next()?
        .trim()
        .to_ascii_lowercase();
    if content_type == "application/x-www-form-urlencoded" {
        Some(BodyKind::Form)
    } else if content_type == "application/json"
        || (content_type.starts_with("application/") && content_type.ends_with("+json"))
    {
        Some(BodyKind::Json)
    } else {
        None
    }
}

/// Path segments and query parameters are single-line text.
fn check_uri(uri: &Uri) -> Result<()> {
    for segment in uri.path().split('/') {
        let decoded = percent_decode(segment);
        if let Some(c) = text::forbidden_char(&String::from_utf8_lossy(&decoded), Lines::One) {
            return Err(Error::invalid("path", text::refusal(c)));
        }
    }
    if let Some(query) = uri.query() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        for (key, value) in &pairs {
            check_field("query", key, value, Lines::One)?;
        }
    }
    Ok(())
}

fn check_form(bytes: &[u8]) -> Result<()> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).unwrap_or_default();
    for (key, value) in &pairs {
        check_field("form", key, value, Lines::Many)?;
    }
    Ok(())
}

/// Every string in the document, and every key; a body that is not JSON is
/// left for the handler to refuse.
fn check_json(bytes: &[u8]) -> Result<()> {
    fn walk(key: &str, value: &Value) -> Result<()> {
        match value {
            Value::String(s) => check_field("body", key, s, Lines::Many),
            Value::Array(items) => items.iter().try_for_each(|v| walk(key, v)),
            Value::Object(map) => map.iter().try_for_each(|(k, v)| {
                check_field("body", k, "", Lines::One)?;
                walk(k, v)
            }),
            _ => Ok(()),
        }
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(document) => walk("", &document),
        Err(_) => Ok(()),
    }
}

/// Refuses a control character in a field's name or value; the message
/// names the field when its name is printable.
fn check_field(location: &'static str, key: &str, value: &str, lines: Lines) -> Result<()> {
    if let Some(c) = text::forbidden_char(key, Lines::One) {
        return Err(Error::invalid(
            location,
            format!("a field name {}", text::refusal(c)),
        ));
    }
    if let Some(c) = text::forbidden_char(value, lines) {
        let name = if key.is_empty() || key.chars().count() > 64 {
            "a value".to_string()
        } else {
            format!("{key:?}")
        };
        return Err(Error::invalid(
            location,
            format!("{name} {}", text::refusal(c)),
        ));
    }
    Ok(())
}

/// `%XX` escapes as bytes; anything else as it is (a malformed escape too).
fn percent_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_decoded_before_the_check() {
        assert_eq!(percent_decode("a%00b%zz%4"), b"a\0b%zz%4");
        assert!(check_uri(&"/admin/users/al%00ice".parse().unwrap()).is_err());
        assert!(check_uri(&"/admin/users?q=%0A".parse().unwrap()).is_err());
        assert!(check_uri(&"/admin/users?q=al+ice%20%C3%A9".parse().unwrap()).is_ok());
    }

    #[test]
    fn bodies_allow_line_breaks_and_tabs_but_no_other_control_character() {
        assert!(check_form(b"body=one%0D%0Atwo%09three").is_ok());
        assert!(check_form(b"title=a%00b").is_err());
        assert!(check_form(b"a%01b=c").is_err());
        assert!(check_json(br#"{"justification": "one\ntwo\tthree"}"#).is_ok());
        assert!(check_json(br#"{"justification": "a\u0000b"}"#).is_err());
        assert!(check_json(br#"{"a\u0007": 1}"#).is_err());
        assert!(check_json(br#"[{"deep": ["x\u001b"]}]"#).is_err());
        assert!(check_json(b"not json").is_ok());
    }
}
