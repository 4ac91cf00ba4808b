//! The user list: search, filters, sort and keyset pages.

use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::user_row;
use crate::{
    Result,
    accounts::{
        groups,
        users::{self, UserFilter, UserSort},
    },
    web::{page::Page, state::AppState, templates::render},
};

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Serialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    group: String,
    /// "", "yes" or "no"
    #[serde(default)]
    active: String,
    #[serde(default)]
    staff: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    after: String,
}

fn yes_no(raw: &str) -> Option<bool> {
    match raw {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

pub async fn list(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<ListQuery>,
) -> Result<Response> {
    let sort = UserSort::parse(&query.sort).unwrap_or_default();
    let filter = UserFilter {
        search: Some(query.q.clone()).filter(|q| !q.trim().is_empty()),
        group: Some(query.group.clone()).filter(|g| !g.is_empty()),
        is_active: yes_no(&query.active),
        is_staff: yes_no(&query.staff),
        sort,
        after: Some(query.after.clone()).filter(|a| !a.is_empty()),
        limit: PAGE_SIZE,
    };
    let mut conn = state.ladder.db.acquire().await?;
    let found = users::list(&mut conn, state.ladder.db.backend(), &filter).await?;
    let group_names = groups::names(&mut conn).await?;
    drop(conn);
    let next_query = found.next.as_ref().map(|next| {
        serde_urlencoded::to_string([
            ("q", query.q.as_str()),
            ("group", &query.group),
            ("active", &query.active),
            ("staff", &query.staff),
            ("sort", sort.as_str()),
            ("after", next),
        ])
        .unwrap_or_default()
    });
    let users: Vec<_> = found.users.iter().map(user_row).collect();
    Ok(render(
        "admin/users.html",
        crate::ctx! { page, users, query, sort => sort.as_str(), group_names, next_query },
    )?
    .into_response())
}
