//! The free text of a request: the requester's justification, an approver's
//! comment and a rejection's reason. Each is parsed once, where it comes in
//! (a form, the API), and the workflow takes only these types.
//!
//! The rule for all three: trimmed, at most 2,000 characters, no control
//! characters but line breaks and tabs. A reason is required; whether a
//! justification is depends on the track (`Track::reason_required`).

use crate::{
    Error, Result,
    text::{self, Lines},
};

const MAX_CHARS: usize = 2_000;

fn parse(field: &'static str, raw: &str, required: bool) -> Result<String> {
    let text = raw.trim();
    if required && text.is_empty() {
        return Err(missing(field));
    }
    if text.chars().count() > MAX_CHARS {
        return Err(Error::invalid(field, "Keep it under 2,000 characters."));
    }
    text::check(field, text, Lines::Many)?;
    Ok(text.to_string())
}

fn missing(field: &'static str) -> Error {
    Error::invalid(field, "Please give a reason.")
}

/// Why the requester asks; may be empty where the track does not require one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Justification(String);

impl Justification {
    pub fn parse(raw: &str) -> Result<Justification> {
        parse("justification", raw, false).map(Justification)
    }

    /// Refuses an empty justification where the track requires one.
    pub fn required(self, required: bool) -> Result<Justification> {
        if required && self.0.is_empty() {
            return Err(missing("justification"));
        }
        Ok(self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An approver's optional comment on an approval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comment(String);

impl Comment {
    pub fn parse(raw: &str) -> Result<Comment> {
        parse("comment", raw, false).map(Comment)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an approver rejects; never empty, as the requester is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Reason> {
        parse("reason", raw, true).map(Reason)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: Error) -> &'static str {
        match err {
            Error::Invalid { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn text_is_trimmed_and_keeps_its_inner_lines() {
        let j = Justification::parse("  one\r\ntwo\tthree \n").unwrap();
        assert_eq!(j.as_str(), "one\r\ntwo\tthree");
        assert_eq!(Comment::parse(" fine ").unwrap().as_str(), "fine");
        assert_eq!(Reason::parse("\tNot yet.\n").unwrap().as_str(), "Not yet.");
    }

    #[test]
    fn a_reason_is_required_and_a_comment_is_not() {
        let err = Reason::parse(" \n ").unwrap_err();
        assert_eq!(err.to_string(), "reason: Please give a reason.");
        assert_eq!(Comment::parse("   ").unwrap(), Comment::default());
    }

    #[test]
    fn a_justification_is_required_only_where_the_track_says_so() {
        let empty = Justification::parse("  ").unwrap();
        assert_eq!(empty.clone().required(false).unwrap().as_str(), "");
        let err = empty.required(true).unwrap_err();
        assert_eq!(err.to_string(), "justification: Please give a reason.");
        assert!(Justification::parse("x").unwrap().required(true).is_ok());
    }

    #[test]
    fn two_thousand_characters_pass_and_one_more_does_not() {
        let most = "é".repeat(MAX_CHARS);
        assert!(Justification::parse(&most).is_ok());
        let err = Comment::parse(&format!("{most}x")).unwrap_err();
        assert_eq!(err.to_string(), "comment: Keep it under 2,000 characters.");
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        assert_eq!(
            field_of(Justification::parse("a\0b").unwrap_err()),
            "justification"
        );
        assert_eq!(
            field_of(Comment::parse("bell\u{7}").unwrap_err()),
            "comment"
        );
        assert_eq!(
            field_of(Reason::parse("esc\u{1b}[31m").unwrap_err()),
            "reason"
        );
    }
}
