//! Admin pages for users: the list, a user's page, creating users and
//! changing them.

mod change;
mod create;
mod list;
mod show;

pub use change::{
    active_form, change_group, change_permission, set_active, set_password, set_staff,
};
pub use create::{create, new_form};
pub use list::list;
pub use show::show;

use serde::Serialize;

use crate::accounts::users;

pub(crate) fn user_url(username: &str) -> String {
    let encoded: String = serde_urlencoded::to_string([("", username)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .to_string();
    format!("/admin/users/{encoded}")
}

#[derive(Serialize)]
pub(super) struct UserRow {
    pub username: String,
    email: String,
    display_name: String,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    is_service: bool,
    date_joined: i64,
    last_login: Option<i64>,
}

pub(super) fn user_row(u: &users::User) -> UserRow {
    UserRow {
        username: u.username.clone(),
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        is_active: u.is_active,
        is_staff: u.is_staff,
        is_superuser: u.is_superuser,
        is_service: u.is_service,
        date_joined: u.created_at,
        last_login: u.last_login,
    }
}
