//! The permissions page: every permission by app and resource, with the
//! groups that hold it and the users who hold it directly.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{
    Result,
    permissions::catalog,
    web::{page::Page, state::AppState, templates::render},
};

/// Direct holders listed per permission; beyond this the page says how many more.
const DIRECT_SHOWN: i64 = 20;

#[derive(Serialize)]
struct Row {
    name: String,
    human: String,
    model: String,
    groups: Vec<String>,
    users: Vec<String>,
    more_users: i64,
}

pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let all = catalog::with_holders(&mut conn, DIRECT_SHOWN).await?;
    drop(conn);
    let mut apps: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (p, holders) in all {
        apps.entry(p.app_label.clone()).or_default().push(Row {
            name: p.name().to_string(),
            human: p.name,
            model: p.model,
            groups: holders.groups,
            users: holders.users,
            more_users: holders.more_users,
        });
    }
    Ok(render("admin/permissions.html", crate::ctx! { page, apps })?.into_response())
}
