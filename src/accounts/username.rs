use std::fmt;

use crate::{Error, Result};

/// 1–150 characters of letters, digits and `@.+-_`, as in Django, but not
/// `.` or `..`.
/// Unique without regard to case: `key()` is what the database compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MAX_CHARS: usize = 150;

    pub fn parse(raw: &str) -> Result<Username> {
        let count = raw.chars().count();
        if count == 0 {
            return Err(Error::invalid("username", "must not be empty"));
        }
        if count > Self::MAX_CHARS {
            return Err(Error::invalid(
                "username",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_alphanumeric() || "@.+-_".contains(*c)))
        {
            return Err(Error::invalid(
                "username",
                format!("may contain only letters, digits and @.+-_ (found {bad:?})"),
            ));
        }
        // A path segment of `.` or `..` means "here" or "up": /admin/users/..
        // would name no user, or another page.
        if raw == "." || raw == ".." {
            return Err(Error::invalid("username", format!("must not be {raw:?}")));
        }
        Ok(Username(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that uniqueness and look-ups use.
    pub fn key(&self) -> String {
        key_of(&self.0)
    }
}

/// Case-folds any username-like text the same way `Username::key` does.
pub fn key_of(raw: &str) -> String {
    raw.to_lowercase()
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_and_django_punctuation() {
        for ok in [
            "alice",
            "a.b-c_d+e@f",
            "Zoë",
            "x",
            "...",
            ".x",
            &"a".repeat(150),
        ] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_empty_long_spaces_and_markup() {
        for bad in [
            "",
            "has space",
            "<script>",
            "a/b",
            ".",
            "..",
            "a\0b",
            "a\nb",
            &"a".repeat(151),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_ignores_case() {
        assert_eq!(
            Username::parse("Alice").unwrap().key(),
            Username::parse("aLICE").unwrap().key()
        );
    }
}
