//! The JSON API under `/api/v1`: every route with the rule that guards it,
//! and the OpenAPI document made from the same table. Handlers are thin:
//! they parse, call the domain, and shape the answer (docs/api.md).

pub mod audit;
pub mod check;
pub mod groups;
pub mod idempotency;
pub mod openapi;
pub mod paging;
pub mod permissions;
pub mod promotions;
pub mod revised;
pub mod tracks;
pub mod user_access;
pub mod users;
pub mod webhooks;

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
    let (view_user, change_user) = (Perm("auth.view_user"), Perm("auth.change_user"));
    let (view_group, change_group) = (Perm("auth.view_group"), Perm("auth.change_group"));
    let r = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi());
    // Anyone about themselves; about others, auth.view_user (checked per check).
    let r = api(r, SignedIn, routes!(check::check_one, check::check_many));
    // Users and groups: each rule is the console's for the same change
    // (src/web/router.rs) without its staff requirement, so a service account
    // holding the permission is enough; the domain then applies the
    // delegation rules exactly as for the console.
    let r = api(r, view_user, routes!(users::list_users));
    let r = api(
        r,
        Perms("auth.add_user", "auth.change_user"),
        idempotent(routes!(users::create_user)),
    );
    let r = api(r, view_user, routes!(users::get_user));
    let r = api(r, change_user, routes!(users::update_user));
    let r = api(r, change_user, routes!(users::set_user_password));
    let r = api(
        r,
        change_user,
        routes!(
            user_access::add_user_to_group,
            user_access::remove_user_from_group
        ),
    );
    let r = api(r, view_user, routes!(user_access::user_permissions));
    let r = api(
        r,
        change_user,
        routes!(
            user_access::grant_user_permission,
            user_access::revoke_user_permission
        ),
    );
    // Groups
    let r = api(r, view_group, routes!(groups::list_groups));
    let r = api(
        r,
        Perm("auth.add_group"),
        idempotent(routes!(groups::create_group)),
    );
    let r = api(r, view_group, routes!(groups::get_group));
    let r = api(r, change_group, routes!(groups::rename_group));
    let r = api(r, Perm("auth.delete_group"), routes!(groups::delete_group));
    let r = api(r, view_group, routes!(groups::group_members));
    let r = api(r, change_group, routes!(groups::set_group_permissions));
    let r = api(
        r,
        change_group,
        routes!(
            groups::grant_group_permission,
            groups::revoke_group_permission
        ),
    );
    // The permission catalog is no secret; who holds what is about users.
    let r = api(r, SignedIn, routes!(permissions::list_permissions));
    let r = api(r, view_user, routes!(permissions::permission_holders));
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
    let r = api(
        r,
        StaffPerm("admin.view_logentry"),
        routes!(audit::list_audit_events),
    );
    // Webhooks: the console's rules without staff. Registering also takes
    // auth.view_user, since events carry users' names and addresses.
    let r = api(
        r,
        Perm("webhooks.view_webhook"),
        routes!(webhooks::list_webhooks),
    );
    let r = api(
        r,
        Perms("webhooks.add_webhook", "auth.view_user"),
        idempotent(routes!(webhooks::create_webhook)),
    );
    let r = api(
        r,
        Perm("webhooks.view_webhook"),
        routes!(webhooks::get_webhook),
    );
    let r = api(
        r,
        Perm("webhooks.change_webhook"),
        routes!(webhooks::update_webhook),
    );
    let r = api(
        r,
        Perm("webhooks.delete_webhook"),
        routes!(webhooks::delete_webhook),
    );
    let r = api(
        r,
        Perm("webhooks.change_webhook"),
        routes!(webhooks::rotate_webhook_secret),
    );
    let r = api(
        r,
        Perm("webhooks.view_webhook"),
        routes!(webhooks::list_webhook_deliveries),
    );
    api(
        r,
        Perm("webhooks.change_webhook"),
        routes!(webhooks::retry_webhook_delivery),
    )
}

/// Relabels a domain type's invalid input (`group`, `permission`) with the
/// field the caller sent it in (`name`, `perm`, `permissions`).
pub(crate) fn as_field(field: &'static str) -> impl FnOnce(crate::Error) -> crate::Error {
    move |e| match e {
        crate::Error::Invalid { message, .. } => crate::Error::Invalid { field, message },
        other => other,
    }
}

/// A group's id from a path: anything but a number names no group (404).
pub(crate) fn group_id(raw: &str) -> crate::Result<i64> {
    crate::web::error::path_id(raw, "That group")
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
