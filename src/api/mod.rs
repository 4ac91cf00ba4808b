//! The JSON API under `/api/v1`: every route with the rule that guards it,
//! and the OpenAPI document made from the same table. Handlers are thin:
//! they parse, call the domain, and shape the answer (docs/api.md).

pub mod check;
pub mod openapi;
pub mod paging;

use axum::{Router, middleware::from_fn};
use utoipa::OpenApi;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouter},
    routes,
};

use crate::web::{
    error::ApiError,
    guards::{self, Rule},
    state::AppState,
};

pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// One route (all its methods) and its rule, so `table()` reads as a table.
/// The rule is also written into the document, as `x-ladder-rule` on each
/// operation, for readers and for the route-matrix test.
fn api(
    router: OpenApiRouter<AppState>,
    rule: Rule,
    (schemas, mut paths, handler): UtoipaMethodRouter<AppState>,
) -> OpenApiRouter<AppState> {
    for item in paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let rule: serde_json::Value = format!("{rule:?}").into();
            let extensions = operation.extensions.get_or_insert_with(Default::default);
            extensions.insert("x-ladder-rule".to_string(), rule);
        }
    }
    let guarded = handler.route_layer(from_fn(move |req, next| guards::enforce(rule, req, next)));
    router.routes((schemas, paths, guarded))
}

/// The rule table.
fn table() -> OpenApiRouter<AppState> {
    use Rule::*;
    let r = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi());
    // Anyone about themselves; about others, auth.view_user (checked per check).
    api(r, SignedIn, routes!(check::check_one, check::check_many))
}

/// The API's routes, and its OpenAPI document.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = table().split_for_parts();
    openapi::finish(&mut document);
    (router, document)
}

/// The document as served at `/api/v1/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    router().1
}
