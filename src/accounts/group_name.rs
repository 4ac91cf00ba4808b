//! A group's name, checked once where it enters.

use std::fmt;

use crate::{Error, Result};

/// 1–150 characters, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(raw: &str) -> Result<GroupName> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid("group", "name must not be empty"));
        }
        if trimmed.chars().count() > 150 {
            return Err(Error::invalid(
                "group",
                "name must be at most 150 characters",
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Error::invalid(
                "group",
                "name must not contain control characters",
            ));
        }
        Ok(GroupName(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
