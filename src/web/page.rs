//! What every page's template gets: who is viewing, what they may do (for the
//! navigation and buttons), the CSRF token for forms, and flash messages.

use axum::{extract::FromRequestParts, http::request::Parts};
use serde::Serialize;
use tower_sessions::Session;

use super::{
    AppState,
    auth::{Flash, csrf_token, expected_csrf, take_flash},
    viewer::{CurrentUser, Viewer},
};
use crate::{
    Error, Result,
    promotions::{self, policy},
};

#[derive(Serialize)]
pub struct PageViewer {
    pub username: String,
    pub display_name: String,
    pub is_staff: bool,
    pub is_superuser: bool,
}

#[derive(Serialize)]
pub struct Page {
    pub viewer: Option<PageViewer>,
    /// Permissions held, for `{% if "blog.add_post" in page.perms %}`.
    pub perms: Vec<String>,
    pub csrf_token: String,
    pub flash: Vec<Flash>,
    /// Pending requests the viewer may decide (capped at 100); None for non-approvers.
    pub review_count: Option<i64>,
}

impl Page {
    pub async fn new(state: &AppState, viewer: &Viewer, session: &Session) -> Result<Page> {
        Ok(Page {
            viewer: viewer.0.as_deref().map(|c| PageViewer {
                username: c.user.username.clone(),
                display_name: c.user.display_name.clone(),
                is_staff: c.is_staff(),
                is_superuser: c.user.is_superuser,
            }),
            perms: viewer
                .0
                .as_deref()
                .map(|c| held(state, c))
                .unwrap_or_default(),
            // Anonymous visitors get no session row unless a form needs one (sign-in).
            csrf_token: if viewer.0.is_some() {
                csrf_token(session).await?
            } else {
                expected_csrf(session).await?.unwrap_or_default()
            },
            flash: take_flash(session).await?,
            review_count: match viewer.0.as_deref() {
                Some(current) => review_count(state, current).await?,
                None => None,
            },
        })
    }
}

/// A handler that shows a page takes `page: Page`.
impl FromRequestParts<AppState> for Page {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Page> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, why)| anyhow::anyhow!("session: {why}"))?;
        Page::new(state, &viewer, &session).await
    }
}

fn held(state: &AppState, current: &CurrentUser) -> Vec<String> {
    if current.perms.is_superuser && current.perms.is_active {
        return state.catalog.clone().to_vec();
    }
    current
        .perms
        .granted()
        .keys()
        .map(|k| k.to_string())
        .collect()
}

async fn review_count(state: &AppState, current: &CurrentUser) -> Result<Option<i64>> {
    let mut conn = state.ladder.db.acquire().await?;
    let tracks = policy::approved_tracks(&state.ladder, &mut conn, &current.user).await?;
    if tracks.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        promotions::pending_count(&mut conn, &tracks, 100).await?,
    ))
}
