//! The OpenAPI 3.1 document, made from the handlers' `#[utoipa::path]`
//! annotations by `api::router`, and the error shapes every operation shares.

use serde::Serialize;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        self, RefOr,
        content::ContentBuilder,
        response::ResponseBuilder,
        schema::Ref,
        security::{
            ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
        },
    },
};

/// Every error under /api/ (docs/api.md).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub status: u16,
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `too_large`, `invalid`,
    /// `rate_limited`, `unavailable` or `internal`.
    pub code: String,
    pub message: String,
    /// The field (or `body`, `query`, `path`) that was wrong, for 422.
    pub field: Option<String>,
}

impl ErrorDetail {
    /// The envelope's detail for one error (a batch check's failed item).
    pub fn of(e: &crate::Error) -> ErrorDetail {
        let status = e.status();
        ErrorDetail {
            status: status.as_u16(),
            code: crate::web::error::code_of(status).to_string(),
            message: e.public_message(),
            field: match e {
                crate::Error::Invalid { field, .. } => Some(field.to_string()),
                _ => None,
            },
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ladder API",
        version = "1",
        description = "Permission checks, users, groups, permissions, promotions and the audit log. \
                       Authenticate with `Authorization: Bearer ldr_…` (make a token with \
                       `ladder token create` or at /account/tokens), or from a signed-in \
                       browser with the session cookie."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "checks", description = "May this user do this?"),
        (name = "users", description = "Accounts, their groups and direct permissions"),
        (name = "groups", description = "Groups, their members and permissions"),
        (name = "permissions", description = "The permission catalog and who holds what"),
        (name = "promotions", description = "The promotion workflow and its tracks"),
        (name = "audit", description = "The append-only audit log"),
        (name = "webhooks", description = "Signed webhooks: endpoints, secrets and deliveries"),
    )
)]
pub struct ApiDoc;

pub struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("ladder_session"))),
        );
        doc.security = Some(vec![
            SecurityRequirement::new("token", Vec::<String>::new()),
            SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
    }
}

/// The security schemes and shared errors, applied to the finished
/// document: a derive's modifiers run before the routes are added.
pub fn finish(doc: &mut openapi::OpenApi) {
    Security.modify(doc);
    SharedErrors.modify(doc);
}

/// The errors any operation can answer, whatever its handler says: the
/// error layer makes them for every route (docs/api.md).
pub struct SharedErrors;

const SHARED: [(&str, &str); 7] = [
    ("400", "The query string or body does not parse."),
    ("401", "No valid token or session."),
    (
        "403",
        "Not allowed; the message names the missing permission.",
    ),
    ("413", "The body is too large."),
    ("422", "A field is invalid; `field` names it."),
    ("429", "Too many requests for this token; see Retry-After."),
    ("500", "Ladder failed; the cause is logged."),
];

impl Modify for SharedErrors {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in SHARED {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}
