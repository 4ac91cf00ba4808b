//! The JSON API under `/api/v1`: every route with the rule that guards it,
//! and the OpenAPI document made from the same table. Handlers are thin:
//! they parse, call the domain, and shape the answer (docs/api.md).

pub mod audit;
pub mod check;
pub mod idempotency;
pub mod openapi;
pub mod paging;
pub mod permissions;
pub mod promotions;
pub mod tracks;

use axum::{
    Router,
    middleware::from_fn,
    response::{IntoResponse, Response},
};
use utoipa::OpenApi;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouter},
    routes,
};

use self::idempotency::idempotent;
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
    let r = api(r, SignedIn, routes!(check::check_one, check::check_many));
    // The permission catalog is no secret; who holds what is about users.
    let r = api(r, SignedIn, routes!(permissions::list_permissions));
    let r = api(
        r,
        Perm("auth.view_user"),
        routes!(permissions::permission_holders),
    );
    // Promotions: who may ask, see and decide is the workflow's, per track
    // and per request (src/promotions/policy.rs), as in the console.
    let r = api(r, SignedIn, routes!(tracks::list_tracks));
    let r = api(r, SignedIn, routes!(promotions::list_promotions));
    let r = api(
        r,
        SignedIn,
        idempotent(routes!(promotions::submit_promotion)),
    );
    let r = api(r, SignedIn, routes!(promotions::show_promotion));
    let r = api(r, SignedIn, routes!(promotions::approve_promotion));
    let r = api(r, SignedIn, routes!(promotions::reject_promotion));
    let r = api(r, SignedIn, routes!(promotions::withdraw_promotion));
    // The audit log, as the console's page guards it.
    api(
        r,
        StaffPerm("admin.view_logentry"),
        routes!(audit::list_audit_events),
    )
}

/// The API's routes, and its OpenAPI document.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = table().split_for_parts();
    openapi::finish(&mut document);
    (router, document)
}

/// Every other path under `/api/`, with any method: 404, not 405.
pub async fn not_found() -> Response {
    ApiError(crate::Error::NotFound("That API endpoint".into())).into_response()
}

/// The document as served at `/api/v1/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    router().1
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    /// utoipa names an operation after its handler unless told otherwise,
    /// and two handlers of one name in different modules would clash; a
    /// client generator needs each id once.
    #[test]
    fn every_operation_id_is_unique_across_the_document() {
        let document = serde_json::to_value(super::document()).unwrap();
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                seen.entry(id.to_string())
                    .or_default()
                    .push(format!("{method} {path}"));
            }
        }
        assert!(seen.len() >= 12, "read only {} operations", seen.len());
        let twice: Vec<_> = seen.iter().filter(|(_, at)| at.len() > 1).collect();
        assert!(
            twice.is_empty(),
            "operation ids used more than once: {twice:?}"
        );
    }
}
