//! The permission catalog, `GET /api/v1/permissions`, and who holds one
//! permission, `GET /api/v1/permissions/{perm}/holders` (Django's
//! `users_with_perm`). The queries are `permissions::listing`'s.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiResult,
    check::SourceJson,
    openapi::ErrorBody,
    paging::{Page, PageQuery},
};
use crate::{
    Error, Result,
    permissions::{
        PermissionName,
        catalog::{self, Permission},
        listing::{self, CatalogFilter, Holder},
    },
    web::state::AppState,
};

/// The catalog's filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// Only this app (the part before the dot), e.g. `blog`.
    #[param(pattern = r"^[A-Za-z0-9_]{1,100}$")]
    app: Option<String>,
    /// Only this resource (Django's model), e.g. `post`.
    #[param(pattern = r"^[A-Za-z0-9_]{1,100}$")]
    resource: Option<String>,
}

/// A label as the catalog writes them: letters, digits and `_`.
fn label(field: &'static str, raw: Option<&String>) -> Result<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let valid = !raw.is_empty()
        && raw.len() <= 100
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(Error::invalid(
            field,
            "must be 1 to 100 letters, digits and _",
        ));
    }
    Ok(Some(raw.clone()))
}

/// A permission that exists.
#[derive(Serialize, ToSchema)]
pub struct PermissionJson {
    /// `app_label.codename`, as checks name it.
    perm: String,
    app: String,
    /// The resource (Django's model) it belongs to.
    resource: String,
    codename: String,
    /// Its human name, e.g. "Can publish post".
    name: String,
}

impl From<Permission> for PermissionJson {
    fn from(p: Permission) -> PermissionJson {
        PermissionJson {
            perm: p.name().to_string(),
            app: p.app_label,
            resource: p.model,
            codename: p.codename,
            name: p.name,
        }
    }
}

/// Every permission that exists, by app and codename, a page at a time.
#[utoipa::path(
    get, path = "/api/v1/permissions", tag = "permissions",
    params(CatalogQuery, PageQuery),
    responses(
        (status = 200, description = "A page of permissions", body = Page<PermissionJson>),
        (status = 422, description = "A malformed `app` or `resource`, or a bad cursor", body = ErrorBody),
    )
)]
pub async fn list_permissions(
    State(state): State<AppState>,
    Query(q): Query<CatalogQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<PermissionJson>>> {
    let filter = CatalogFilter {
        app: label("app", q.app.as_ref())?,
        model: label("resource", q.resource.as_ref())?,
        after: page.after::<(String, String)>()?,
        limit: page.limit()?,
    };
    let mut conn = state.ladder.db.acquire().await?;
    let found = listing::catalog_page(&mut conn, &filter).await?;
    let page = Page::of(found, filter.limit, |p| {
        (p.app_label.clone(), p.codename.clone())
    });
    Ok(Json(page.map(PermissionJson::from)))
}

/// Someone who holds the permission, and how.
#[derive(Serialize, ToSchema)]
pub struct HolderJson {
    username: String,
    display_name: String,
    /// Every way they hold it: `superuser`, `direct`, or `group` with its name.
    sources: Vec<SourceJson>,
}

impl From<Holder> for HolderJson {
    fn from(h: Holder) -> HolderJson {
        HolderJson {
            username: h.username,
            display_name: h.display_name,
            sources: h.via.into_iter().map(SourceJson::held).collect(),
        }
    }
}

/// The active users who hold a permission (directly, through a group, or as
/// the superuser), by username, a page at a time.
#[utoipa::path(
    get, path = "/api/v1/permissions/{perm}/holders", tag = "permissions",
    params(
        ("perm" = String, Path, description = "`app_label.codename`", pattern = r"^[A-Za-z0-9_]{1,100}\.[A-Za-z0-9_]{1,100}$"),
        PageQuery,
    ),
    responses(
        (status = 200, description = "A page of holders", body = Page<HolderJson>),
        (status = 404, description = "No such permission", body = ErrorBody),
        (status = 422, description = "Not a permission name (`field`: `perm`), or a bad cursor", body = ErrorBody),
    )
)]
pub async fn permission_holders(
    State(state): State<AppState>,
    Path(perm): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<HolderJson>>> {
    let name = PermissionName::parse(&perm).map_err(|e| match e {
        Error::Invalid { message, .. } => Error::Invalid {
            field: "perm",
            message,
        },
        other => other,
    })?;
    let limit = page.limit()?;
    let after = page.after::<String>()?;
    let mut conn = state.ladder.db.acquire().await?;
    let permission = catalog::resolve(&mut conn, &[name])
        .await?
        .pop()
        .expect("one name, one permission");
    let found = listing::holders_page(&mut conn, &permission, after.as_deref(), limit).await?;
    let page = Page::of(found, limit, |h| h.username_key.clone());
    Ok(Json(page.map(HolderJson::from)))
}
