//! `/api/v1/webhooks`: register, list, change, delete endpoints, rotate a
//! secret, and read and retry deliveries (docs/webhooks.md).

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiResult,
    openapi::ErrorBody,
    paging::{Page, PageQuery},
};
use crate::{
    Error,
    clock::rfc3339,
    web::{
        error::{ApiJson, path_id},
        state::AppState,
        viewer::SignedIn,
    },
    webhooks::{
        self, DeleteEndpoint, Delivery, DeliveryFilter, Endpoint, EndpointInput, RetryDelivery,
        RotateSecret,
    },
};

/// An endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookJson {
    id: i64,
    url: String,
    description: String,
    /// The event types it receives.
    event_types: Vec<String>,
    /// An inactive endpoint is sent nothing; its deliveries wait.
    is_active: bool,
    created_by: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
}

impl From<&Endpoint> for WebhookJson {
    fn from(e: &Endpoint) -> WebhookJson {
        WebhookJson {
            id: e.endpoint_id,
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            is_active: e.is_active,
            created_by: e.created_by.clone(),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// A new endpoint, with its secret: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewWebhookJson {
    #[serde(flatten)]
    webhook: WebhookJson,
    /// `whsec_` and base64: give it to the receiver's Standard Webhooks library.
    secret: String,
}

/// A secret, after rotation: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretJson {
    secret: String,
}

/// What to register, or (every field optional) what to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// http:// or https://; a private or loopback address only with
    /// `webhooks.allow_private_targets`. Required to register.
    url: Option<String>,
    /// At most 200 characters.
    description: Option<String>,
    /// Any of promotion.submitted, promotion.approved, promotion.rejected,
    /// promotion.withdrawn, promotion.expired, promotion.ended,
    /// permission.granted, permission.revoked, membership.added,
    /// membership.removed, user.created, user.deactivated; or `*` for all.
    /// Required to register.
    event_types: Option<Vec<String>>,
    /// Default true.
    is_active: Option<bool>,
}

impl From<WebhookBody> for EndpointInput {
    fn from(b: WebhookBody) -> EndpointInput {
        EndpointInput {
            url: b.url,
            description: b.description,
            event_types: b.event_types,
            is_active: b.is_active,
        }
    }
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryJson {
    id: i64,
    webhook_id: i64,
    /// The `webhook-id` header: the same at every endpoint and across retries.
    message_id: String,
    event_type: String,
    /// What the event is about (`user:7`, `group:3`); one endpoint gets one
    /// subject's events in order.
    subject: String,
    /// pending, delivered or failed.
    state: String,
    attempts: i64,
    /// When the next attempt is due (RFC 3339), while pending.
    next_attempt_at: Option<String>,
    /// The receiver's last HTTP status, if it answered.
    last_status: Option<i64>,
    last_error: Option<String>,
    last_attempt_at: Option<String>,
    delivered_at: Option<String>,
    created_at: String,
    /// The body sent: `{id, type, timestamp, data}`.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
}

impl From<Delivery> for DeliveryJson {
    fn from(d: Delivery) -> DeliveryJson {
        DeliveryJson {
            id: d.delivery_id,
            webhook_id: d.endpoint_id,
            message_id: d.message_id,
            event_type: d.event_type,
            subject: d.subject,
            next_attempt_at: (d.state == "pending").then(|| rfc3339(d.next_attempt_at)),
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            last_attempt_at: d.last_attempt_at.map(rfc3339),
            delivered_at: d.delivered_at.map(rfc3339),
            created_at: rfc3339(d.created_at),
            payload: serde_json::from_str(&d.payload).unwrap_or_default(),
        }
    }
}

/// A webhook's id from a path: anything but a number names none (404).
fn webhook_id(raw: &str) -> crate::Result<i64> {
    path_id(raw, "That webhook")
}

/// Every registered endpoint.
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    responses((status = 200, description = "Every endpoint, oldest first (one page)", body = Page<WebhookJson>))
)]
pub async fn list_webhooks(State(state): State<AppState>) -> ApiResult<Json<Page<WebhookJson>>> {
    let mut conn = state.ladder.db.acquire().await?;
    let endpoints = webhooks::list(&mut conn).await?;
    Ok(Json(Page {
        items: endpoints.iter().map(WebhookJson::from).collect(),
        next: None,
    }))
}

/// Registers an endpoint: `webhooks.add_webhook` and `auth.view_user` (the
/// events carry users' names and addresses). The secret is in this answer only.
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "create_webhook",
    request_body = WebhookBody,
    responses(
        (status = 201, description = "Registered; Location is its path", body = NewWebhookJson,
         headers(("Location" = String, description = "/api/v1/webhooks/{webhook_id}"))),
    )
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<Response> {
    let actor = current.api_actor();
    let (endpoint, secret) = webhooks::register(&state.ladder, &actor, body.into()).await?;
    let location = format!("/api/v1/webhooks/{}", endpoint.endpoint_id);
    let answer = NewWebhookJson {
        webhook: WebhookJson::from(&endpoint),
        secret,
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(answer),
    )
        .into_response())
}

/// One endpoint.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{webhook_id}", tag = "webhooks", operation_id = "get_webhook",
    params(("webhook_id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookJson),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    )
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookJson>> {
    let mut conn = state.ladder.db.acquire().await?;
    let endpoint = webhooks::get(&mut conn, webhook_id(&id)?).await?;
    Ok(Json(WebhookJson::from(&endpoint)))
}

/// Changes the fields given: `webhooks.change_webhook`.
#[utoipa::path(
    patch, path = "/api/v1/webhooks/{webhook_id}", tag = "webhooks", operation_id = "update_webhook",
    params(("webhook_id" = i64, Path, description = "The endpoint's id")),
    request_body = WebhookBody,
    responses(
        (status = 200, description = "Changed", body = WebhookJson),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    )
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<Json<WebhookJson>> {
    let actor = current.api_actor();
    let endpoint = webhooks::update(&state.ladder, &actor, webhook_id(&id)?, body.into()).await?;
    Ok(Json(WebhookJson::from(&endpoint)))
}

/// Deletes an endpoint and its deliveries: `webhooks.delete_webhook`.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{webhook_id}", tag = "webhooks", operation_id = "delete_webhook",
    params(("webhook_id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "Deleted: the endpoint as it was", body = WebhookJson),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    )
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookJson>> {
    let change = DeleteEndpoint {
        actor: current.api_actor(),
        endpoint_id: webhook_id(&id)?,
        now: state.ladder.clock.now(),
    };
    let deleted = state.ladder.db.run(change).await?;
    Ok(Json(WebhookJson::from(&deleted)))
}

/// Replaces the secret at once (every later attempt is signed with the new
/// one): `webhooks.change_webhook`. The secret is in this answer only.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{webhook_id}/rotate-secret", tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    params(("webhook_id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The new secret", body = SecretJson),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    )
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<SecretJson>> {
    let change = RotateSecret {
        actor: current.api_actor(),
        endpoint_id: webhook_id(&id)?,
        now: state.ladder.clock.now(),
    };
    let secret = state.ladder.db.run(change).await?;
    Ok(Json(SecretJson { secret }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// pending, delivered or failed; all when absent.
    state: Option<String>,
}

/// The endpoint's deliveries, newest first.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    params(("webhook_id" = i64, Path, description = "The endpoint's id"), DeliveryQuery, PageQuery),
    responses(
        (status = 200, description = "One page of deliveries", body = Page<DeliveryJson>),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    )
)]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DeliveryQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<DeliveryJson>>> {
    let (before_id, limit) = (page.after::<i64>()?, page.limit()?);
    if let Some(s) = &query.state
        && !webhooks::DELIVERY_STATES.contains(&s.as_str())
    {
        return Err(Error::invalid("state", "must be pending, delivered or failed").into());
    }
    let mut conn = state.ladder.db.acquire().await?;
    let endpoint = webhooks::get(&mut conn, webhook_id(&id)?).await?;
    let filter = DeliveryFilter {
        endpoint_id: Some(endpoint.endpoint_id),
        state: query.state,
        before_id,
        limit: limit + 1,
    };
    let rows = webhooks::deliveries(&mut conn, &filter).await?;
    let page = Page::of(rows, limit, |d| d.delivery_id);
    Ok(Json(page.map(DeliveryJson::from)))
}

/// Queues a failed delivery again, due now, with a fresh attempt budget:
/// `webhooks.change_webhook`. 409 if it is not failed.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    operation_id = "retry_webhook_delivery",
    params(
        ("webhook_id" = i64, Path, description = "The endpoint's id"),
        ("delivery_id" = i64, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 200, description = "Queued again", body = DeliveryJson),
        (status = 404, description = "No such endpoint or delivery", body = ErrorBody),
        (status = 409, description = "The delivery is not failed", body = ErrorBody),
    )
)]
pub async fn retry_webhook_delivery(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path((id, delivery)): Path<(String, String)>,
) -> ApiResult<Json<DeliveryJson>> {
    let endpoint_id = webhook_id(&id)?;
    let delivery_id = path_id(&delivery, "That delivery")?;
    let change = RetryDelivery {
        actor: current.api_actor(),
        endpoint_id,
        delivery_id,
        now: state.ladder.clock.now(),
    };
    if !state.ladder.db.run(change).await? {
        return Err(Error::Conflict(format!(
            "delivery {delivery_id} is not failed; only a failed delivery is retried"
        ))
        .into());
    }
    state.ladder.webhook_wake.notify_one();
    let mut conn = state.ladder.db.acquire().await?;
    let queued = webhooks::delivery(&mut conn, endpoint_id, delivery_id).await?;
    Ok(Json(DeliveryJson::from(queued)))
}
