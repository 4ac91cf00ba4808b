//! The permissions page: every permission by app and resource, with the
//! groups that hold it and the users who hold it directly.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tower_sessions::Session;

use crate::{
    Result,
    permissions::catalog,
    web::{auth::Viewer, page::Page, state::AppState, templates::render},
};

/// Direct holders listed per permission; beyond this the page says how many more.
const DIRECT_SHOWN: usize = 20;

#[derive(Serialize)]
struct Row {
    name: String,
    human: String,
    model: String,
    groups: Vec<String>,
    users: Vec<String>,
    more_users: i64,
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let all = catalog::all(&mut conn).await?;
    let group_rows: Vec<(i64, String)> = sqlx::query_as(
        "select gp.permission_id, g.name from group_permissions gp \
         join groups g on g.group_id = gp.group_id order by g.name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut by_group: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (pid, name) in group_rows {
        by_group.entry(pid).or_default().push(name);
    }
    let mut apps: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for p in all {
        // A few direct holders and a count: the table may hold millions of users.
        let users: Vec<String> = sqlx::query_scalar(
            "select u.username from user_permissions up join users u on u.user_id = up.user_id \
             where up.permission_id = $1 order by u.username_key limit $2",
        )
        .bind(p.permission_id)
        .bind(DIRECT_SHOWN as i64)
        .fetch_all(&mut *conn)
        .await?;
        let total: i64 =
            sqlx::query_scalar("select count(*) from user_permissions where permission_id = $1")
                .bind(p.permission_id)
                .fetch_one(&mut *conn)
                .await?;
        apps.entry(p.app_label.clone()).or_default().push(Row {
            name: p.name().to_string(),
            human: p.name.clone(),
            model: p.model.clone(),
            groups: by_group.remove(&p.permission_id).unwrap_or_default(),
            more_users: total - users.len() as i64,
            users,
        });
    }
    drop(conn);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("admin/permissions.html", crate::ctx! { page, apps })?.into_response())
}
