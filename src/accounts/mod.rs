//! Users and groups: their types, their rows, and the audited changes to them.

mod email;
pub mod group_changes;
mod group_name;
pub mod groups;
pub mod password;
pub mod promotion_grant;
pub mod sign_in;
mod superuser;
mod token_lookup;
pub mod tokens;
pub mod user_changes;
pub mod user_search;
mod username;
pub mod users;

pub use email::Email;
pub use group_name::GroupName;
pub use groups::Group;
pub use password::{NewPassword, PasswordHash};
pub use username::{Username, key_of as username_key};
pub use users::User;

use crate::{Error, Result};

/// A free-text display name: trimmed, at most 150 characters, no control characters.
pub fn parse_display_name(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > 150 {
        return Err(Error::invalid(
            "display_name",
            "must be at most 150 characters",
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid(
            "display_name",
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}
