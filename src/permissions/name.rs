use std::fmt;

use crate::{Error, Result};

/// `app_label.codename`, case-sensitive, exactly one dot; each part is
/// letters, digits and underscores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermissionName {
    full: String,
    dot: usize,
}

impl PermissionName {
    /// Parses every name; the first bad one is the error.
    pub fn parse_all<S: AsRef<str>>(raw: &[S]) -> Result<Vec<PermissionName>> {
        raw.iter()
            .map(|p| PermissionName::parse(p.as_ref()))
            .collect()
    }

    pub fn parse(raw: &str) -> Result<PermissionName> {
        let invalid = |why: &str| {
            Error::invalid(
                "permission",
                format!("{raw:?} is not a permission name: {why} (expected app_label.codename)"),
            )
        };
        if raw.matches('.').count() != 1 {
            return Err(invalid("it needs exactly one dot"));
        }
        let (app, codename) = raw.split_once('.').expect("one dot");
        for part in [app, codename] {
            if part.is_empty() {
                return Err(invalid("a part is empty"));
            }
            if part.len() > 100 {
                return Err(invalid("a part is longer than 100 characters"));
            }
            if !part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid("only letters, digits and _ are allowed"));
            }
        }
        Ok(PermissionName {
            full: raw.to_string(),
            dot: app.len(),
        })
    }

    /// From trusted parts (catalog rows).
    pub fn from_parts(app_label: &str, codename: &str) -> PermissionName {
        PermissionName {
            full: format!("{app_label}.{codename}"),
            dot: app_label.len(),
        }
    }

    pub fn app_label(&self) -> &str {
        &self.full[..self.dot]
    }

    pub fn codename(&self) -> &str {
        &self.full[self.dot + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for PermissionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_app_label_and_codename() {
        let p = PermissionName::parse("blog.publish_post").unwrap();
        assert_eq!(p.app_label(), "blog");
        assert_eq!(p.codename(), "publish_post");
        assert_eq!(p.to_string(), "blog.publish_post");
    }

    #[test]
    fn needs_exactly_one_dot_and_two_parts() {
        for bad in [
            "publish_post",
            "blog.post.publish",
            ".publish",
            "blog.",
            "",
            "blog.pub lish",
        ] {
            assert!(PermissionName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn is_case_sensitive() {
        assert_ne!(
            PermissionName::parse("blog.Publish_post").unwrap(),
            PermissionName::parse("blog.publish_post").unwrap()
        );
    }
}
