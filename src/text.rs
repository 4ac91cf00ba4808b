//! Control characters in text input. No field may hold one, except that
//! multi-line text (a post's body, a justification) may hold newlines, tabs
//! and carriage returns. PostgreSQL cannot store a NUL at all, and the others
//! have no business in names, titles or searches, so Ladder refuses them at
//! its edges (the web layer, the CLI) and again in the types that hold text.

use crate::{Error, Result};

/// Single-line text (a name, a title, a search) or multi-line text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// The first character that this kind of text may not hold.
pub fn forbidden_char(raw: &str, lines: Lines) -> Option<char> {
    raw.chars()
        .find(|&c| c.is_control() && !(lines == Lines::Many && matches!(c, '\n' | '\t' | '\r')))
}

/// An error for `field` if `raw` holds a character this kind of text may not.
pub fn check(field: &'static str, raw: &str, lines: Lines) -> Result<()> {
    match forbidden_char(raw, lines) {
        Some(c) => Err(Error::invalid(field, refusal(c))),
        None => Ok(()),
    }
}

/// The message for a refused character, naming it safely (`U+0000`).
pub fn refusal(c: char) -> String {
    format!(
        "must not contain control characters (found U+{:04X})",
        u32::from(c)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_lines_refuse_every_control_character() {
        for bad in [
            "a\0b",
            "a\nb",
            "tab\there",
            "cr\r",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert!(forbidden_char(bad, Lines::One).is_some(), "{bad:?}");
        }
        assert_eq!(forbidden_char("Zoë <b> & ☃", Lines::One), None);
    }

    #[test]
    fn multiple_lines_allow_newline_tab_and_carriage_return_only() {
        assert_eq!(forbidden_char("one\r\ntwo\tthree\n", Lines::Many), None);
        for bad in ["a\0b", "bell\u{7}", "esc\u{1b}", "del\u{7f}"] {
            assert!(forbidden_char(bad, Lines::Many).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn the_refusal_names_the_character_without_printing_it() {
        let err = check("title", "a\0b", Lines::One).unwrap_err();
        assert_eq!(
            err.to_string(),
            "title: must not contain control characters (found U+0000)"
        );
    }
}
