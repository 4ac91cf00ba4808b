//! Every route, with the rule that guards it. If it is not here, Ladder does not serve it
//! (a token's `/api/v1/check` takes a shorter stack to the same handlers: `check_lane`).

use std::time::Duration;

use axum::{
    Router,
    http::{HeaderName, HeaderValue, header},
    middleware::{from_fn, from_fn_with_state},
    response::Redirect,
    routing::{MethodRouter, get, post},
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

use super::{
    AppState, account, account_tokens, auth, check_lane, csrf,
    error::{api_json_errors, not_found},
    guards::{self, Rule},
    healthz, inputs, login, readyz, request_id,
    session_store::DbSessionStore,
    stylesheet,
};
use crate::{admin, blog, promotions};

/// One route and its rule, so `router()` reads as a table.
fn route(
    router: Router<AppState>,
    path: &str,
    rule: Rule,
    handler: MethodRouter<AppState>,
) -> Router<AppState> {
    router.route(
        path,
        handler.route_layer(from_fn(move |req, next| guards::enforce(rule, req, next))),
    )
}

/// The rule table, also used by the route-matrix test to prove it.
pub fn routes() -> Router<AppState> {
    use Rule::*;
    let r = Router::new();
    // Service
    let r = route(r, "/healthz", Public, get(healthz));
    let r = route(r, "/readyz", Public, get(readyz));
    let r = route(r, "/static/app.css", Public, get(stylesheet));
    // Sign-in
    let r = route(r, "/login", Public, get(login::form).post(login::submit));
    let r = route(r, "/logout", SignedIn, post(login::logout));
    let r = route(
        r,
        "/account/password",
        SignedIn,
        get(account::own_password_form).post(account::own_password),
    );
    // One's own API tokens; another user's token id is not found here.
    let r = route(
        r,
        "/account/tokens",
        SignedIn,
        get(account_tokens::list).post(account_tokens::create),
    );
    let r = route(
        r,
        "/account/tokens/{token_id}/revoke",
        SignedIn,
        post(account_tokens::revoke),
    );
    // The blog
    let r = route(r, "/", Public, get(|| async { Redirect::to("/posts") }));
    let r = route(r, "/posts", Public, get(blog::handlers::published));
    let r = route(r, "/posts/mine", SignedIn, get(blog::handlers::mine));
    let r = route(
        r,
        "/posts/new",
        Perm("blog.add_post"),
        get(blog::handlers::new_form).post(blog::handlers::create),
    );
    let r = route(r, "/posts/{post_id}", Public, get(blog::handlers::show));
    let r = route(
        r,
        "/posts/{post_id}/edit",
        Perm("blog.change_post"),
        get(blog::handlers::edit_form).post(blog::handlers::edit),
    );
    let r = route(
        r,
        "/posts/{post_id}/publish",
        Perm("blog.publish_post"),
        post(blog::handlers::publish),
    );
    let r = route(
        r,
        "/posts/{post_id}/feature",
        Perm("blog.feature_post"),
        post(blog::handlers::feature),
    );
    let r = route(
        r,
        "/posts/{post_id}/delete",
        Perm("blog.delete_post"),
        get(blog::handlers::delete_form).post(blog::handlers::delete),
    );
    // Promotions: eligibility and approver rights are per track, checked by the workflow.
    let r = route(
        r,
        "/promotions/new",
        SignedIn,
        get(promotions::handlers::new_form).post(promotions::handlers::submit),
    );
    let r = route(
        r,
        "/promotions/mine",
        SignedIn,
        get(promotions::handlers::mine),
    );
    let r = route(
        r,
        "/promotions/review",
        SignedIn,
        get(promotions::handlers::review),
    );
    let r = route(
        r,
        "/promotions/{request_id}",
        SignedIn,
        get(promotions::handlers::show),
    );
    let r = route(
        r,
        "/promotions/{request_id}/approve",
        SignedIn,
        post(promotions::handlers::approve),
    );
    let r = route(
        r,
        "/promotions/{request_id}/reject",
        SignedIn,
        post(promotions::handlers::reject),
    );
    let r = route(
        r,
        "/promotions/{request_id}/withdraw",
        SignedIn,
        get(promotions::handlers::withdraw_form).post(promotions::handlers::withdraw),
    );
    let r = route(
        r,
        "/promotions/{request_id}/end",
        SignedIn,
        post(promotions::handlers::end),
    );
    // The JSON API: its own table (src/api), with the OpenAPI document made
    // from it and a docs page whose assets Ladder serves itself.
    let (api, document) = crate::api::router();
    let r = r.merge(api).merge(
        utoipa_swagger_ui::SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", document),
    );
    let r = route(
        r,
        "/api/{*rest}",
        Public,
        // Every method: an unknown endpoint is a 404, not a 405.
        get(crate::api::not_found)
            .post(crate::api::not_found)
            .fallback(crate::api::not_found),
    );
    // The admin console
    let r = route(r, "/admin", Staff, get(admin::index));
    let r = route(
        r,
        "/admin/mail",
        StaffPerm("mail.view_email"),
        get(admin::mail::list),
    );
    let r = route(
        r,
        "/admin/mail/{outbox_id}/retry",
        StaffPerm("mail.change_email"),
        post(admin::mail::retry),
    );
    let r = route(
        r,
        "/admin/users",
        StaffPerm("auth.view_user"),
        get(admin::users::list),
    );
    let r = route(
        r,
        "/admin/users/new",
        StaffPerms("auth.add_user", "auth.change_user"),
        get(admin::users::new_form).post(admin::users::create),
    );
    let r = route(
        r,
        "/admin/users/{username}",
        StaffPerm("auth.view_user"),
        get(admin::users::show),
    );
    let r = route(
        r,
        "/admin/users/{username}/groups",
        StaffPerm("auth.change_user"),
        post(admin::users::change_group),
    );
    let r = route(
        r,
        "/admin/users/{username}/permissions",
        StaffPerm("auth.change_user"),
        post(admin::users::change_permission),
    );
    let r = route(
        r,
        "/admin/users/{username}/active",
        StaffPerm("auth.change_user"),
        get(admin::users::active_form).post(admin::users::set_active),
    );
    let r = route(
        r,
        "/admin/users/{username}/staff",
        StaffPerm("auth.change_user"),
        post(admin::users::set_staff),
    );
    let r = route(
        r,
        "/admin/users/{username}/password",
        StaffPerm("auth.change_user"),
        post(admin::users::set_password),
    );
    // Acting on the owner's account: `accounts::tokens` asks the delegation rule.
    let r = route(
        r,
        "/admin/tokens/{token_id}/revoke",
        StaffPerm("auth.change_user"),
        post(admin::tokens::revoke),
    );
    let r = route(
        r,
        "/admin/groups",
        StaffPerm("auth.view_group"),
        get(admin::groups::list),
    );
    let r = route(
        r,
        "/admin/groups/new",
        StaffPerm("auth.add_group"),
        post(admin::groups::create),
    );
    let r = route(
        r,
        "/admin/groups/{group_id}",
        StaffPerm("auth.view_group"),
        get(admin::groups::show),
    );
    let r = route(
        r,
        "/admin/groups/{group_id}/rename",
        StaffPerm("auth.change_group"),
        post(admin::groups::rename),
    );
    let r = route(
        r,
        "/admin/groups/{group_id}/permissions",
        StaffPerm("auth.change_group"),
        post(admin::groups::set_permissions),
    );
    let r = route(
        r,
        "/admin/groups/{group_id}/members",
        StaffPerm("auth.change_user"),
        post(admin::groups::change_member),
    );
    let r = route(
        r,
        "/admin/groups/{group_id}/delete",
        StaffPerm("auth.delete_group"),
        get(admin::groups::delete_form).post(admin::groups::delete),
    );
    let r = route(
        r,
        "/admin/permissions",
        StaffPerm("auth.view_permission"),
        get(admin::permissions::list),
    );
    let r = route(
        r,
        "/admin/audit",
        StaffPerm("admin.view_logentry"),
        get(admin::audit::list),
    );
    // Webhooks. Registering takes auth.view_user too: events carry users'
    // names and addresses.
    let r = route(
        r,
        "/admin/webhooks",
        StaffPerm("webhooks.view_webhook"),
        get(admin::webhooks::list),
    );
    let r = route(
        r,
        "/admin/webhooks/new",
        StaffPerms("webhooks.add_webhook", "auth.view_user"),
        post(admin::webhooks::create),
    );
    let r = route(
        r,
        "/admin/webhooks/{webhook_id}",
        StaffPerm("webhooks.view_webhook"),
        get(admin::webhooks::show),
    );
    let r = route(
        r,
        "/admin/webhooks/{webhook_id}/edit",
        StaffPerm("webhooks.change_webhook"),
        post(admin::webhooks::update),
    );
    let r = route(
        r,
        "/admin/webhooks/{webhook_id}/rotate",
        StaffPerm("webhooks.change_webhook"),
        post(admin::webhooks::rotate),
    );
    let r = route(
        r,
        "/admin/webhooks/{webhook_id}/delete",
        StaffPerm("webhooks.delete_webhook"),
        post(admin::webhooks::delete),
    );
    route(
        r,
        "/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
        StaffPerm("webhooks.change_webhook"),
        post(admin::webhooks::retry),
    )
}

/// The whole application: routes, then the layers every request goes through.
pub fn router(state: AppState) -> Router {
    let database = &state.ladder.settings.database.url;
    let postgres = database.starts_with("postgres").then(|| database.clone());
    state.ladder.live.start(&state.ladder.db, postgres);
    let settings = &state.ladder.settings.server;
    let sessions = SessionManagerLayer::new(DbSessionStore::new(
        state.ladder.db.clone(),
        state.ladder.clock.clone(),
    ))
    .with_name("ladder_session")
    .with_http_only(true)
    .with_same_site(SameSite::Lax)
    .with_secure(settings.secure_cookies)
    .with_expiry(Expiry::OnInactivity(time::Duration::days(
        settings.session_days.into(),
    )));
    let request_id = HeaderName::from_static(request_id::HEADER);
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &axum::http::Request<_>| {
            // Ours, made by SetRequestIdLayer; the client's, if kept, beside it.
            let id = req
                .headers()
                .get(request_id::HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(),
                request_id = %id, client_request_id = tracing::field::Empty);
            if let Some(client) = req.extensions().get::<request_id::ClientRequestId>() {
                span.record("client_request_id", client.0.as_str());
            }
            span
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(tower_http::LatencyUnit::Micros));
    let timeout = Duration::from_secs(settings.request_timeout_secs);

    let app = routes()
        .fallback(not_found)
        // For middleware that a route adds without the state (the API's
        // Idempotency-Key, `api::idempotency`).
        .layer(axum::Extension(state.clone()))
        .layer(from_fn_with_state(state.clone(), csrf::verify))
        .layer(from_fn_with_state(state.clone(), auth::load_viewer))
        .layer(sessions)
        .layer(from_fn(inputs::refuse_control_characters))
        .with_state(state.clone());
    Router::new()
        .fallback_service(check_lane::Lanes::new(app, state))
        .layer(
            // The security headers are outermost, so that the answers the layers
            // below make themselves (413, 503, a caught panic's 500) carry them too.
            ServiceBuilder::new()
                .layer(security_header(header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"))
                .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
                .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .layer(security_header(header::REFERRER_POLICY, "same-origin"))
                .layer(from_fn(api_json_errors))
                .map_request(request_id::take_client_id)
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, timeout))
                .layer(RequestBodyLimitLayer::new(4 * 1024 * 1024)),
        )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    crate::Error::Unexpected(anyhow::anyhow!("a handler panicked")).into_response()
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}
