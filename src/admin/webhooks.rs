//! Webhooks in the admin console: register an endpoint, change it, rotate
//! its secret, delete it, and read its delivery log with a retry button for
//! failed deliveries. A secret is shown once, on the page after the change
//! that made it (kept in the server-side session until then).

use axum::{
    Form,
    extract::{Query, State},
    response::Response,
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::{
    Error, Result,
    web::{
        error::{Id, path_id},
        form::{FieldErrors, form_page},
        outcome::{Changer, flash_and_redirect},
        page::Page,
        state::AppState,
    },
    webhooks::{
        self, DeleteEndpoint, DeliveryFilter, Endpoint, EndpointInput, RetryDelivery, RotateSecret,
        events::EVENT_TYPES,
    },
};

/// The session key of a secret waiting to be shown once.
const FRESH_SECRET: &str = "webhook_secret";

fn webhook_url(endpoint_id: i64) -> String {
    format!("/admin/webhooks/{endpoint_id}")
}

/// The register and edit forms: `event` is every ticked event type.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct EndpointForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    event: Vec<String>,
    #[serde(default)]
    active: Option<String>,
}

impl EndpointForm {
    fn of(endpoint: &Endpoint) -> EndpointForm {
        EndpointForm {
            url: endpoint.url.clone(),
            description: endpoint.description.clone(),
            event: endpoint.event_types.clone(),
            active: endpoint.is_active.then(|| "on".into()),
        }
    }

    fn input(&self) -> EndpointInput {
        EndpointInput {
            url: Some(self.url.clone()),
            description: Some(self.description.clone()),
            event_types: Some(self.event.clone()),
            is_active: Some(self.active.is_some()),
        }
    }

    /// The form's fields from the posted pairs (`event` repeats).
    fn from_fields(fields: &[(String, String)]) -> EndpointForm {
        let mut form = EndpointForm::default();
        for (key, value) in fields {
            match key.as_str() {
                "url" => form.url = value.clone(),
                "description" => form.description = value.clone(),
                "event" => form.event.push(value.clone()),
                "active" => form.active = Some(value.clone()),
                _ => {}
            }
        }
        form
    }
}

/// A list row: the endpoint and how its deliveries stand.
#[derive(Serialize)]
struct EndpointRow {
    endpoint_id: i64,
    url: String,
    description: String,
    event_types: Vec<String>,
    is_active: bool,
}

fn row(e: &Endpoint) -> EndpointRow {
    EndpointRow {
        endpoint_id: e.endpoint_id,
        url: e.url.clone(),
        description: e.description.clone(),
        event_types: e.event_types.clone(),
        is_active: e.is_active,
    }
}

async fn list_page(
    state: &AppState,
    page: Page,
    form: &EndpointForm,
    errors: &FieldErrors,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let endpoints: Vec<EndpointRow> = webhooks::list(&mut conn).await?.iter().map(row).collect();
    drop(conn);
    let ctx = crate::ctx! { page, endpoints, form, event_types => EVENT_TYPES };
    form_page("admin/webhooks.html", ctx, errors)
}

pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response> {
    let form = EndpointForm {
        active: Some("on".into()),
        ..EndpointForm::default()
    };
    list_page(&state, page, &form, &FieldErrors::default()).await
}

pub async fn create(
    c: Changer,
    page: Page,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let form = EndpointForm::from_fields(&fields);
    let actor = current.web_actor();
    match webhooks::register(&state.ladder, &actor, form.input()).await {
        Ok((endpoint, secret)) => {
            keep_secret(&session, endpoint.endpoint_id, secret).await?;
            let done = Ok(format!("Endpoint {} registered.", endpoint.url));
            flash_and_redirect(&session, done, &webhook_url(endpoint.endpoint_id)).await
        }
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.refusal("url", e)?;
            list_page(&state, page, &form, &errors).await
        }
    }
}

#[derive(Deserialize, Serialize, Default)]
pub struct ShowQuery {
    /// The delivery log's filter: pending, delivered, failed or all.
    #[serde(default)]
    state: String,
}

#[derive(Serialize)]
struct DeliveryRow {
    delivery_id: i64,
    /// Whom it is about, by name.
    about: String,
    event_type: String,
    subject: String,
    message_id: String,
    state: String,
    attempts: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    next_attempt_at: Option<i64>,
    last_attempt_at: Option<i64>,
    created_at: i64,
}

impl From<webhooks::Delivery> for DeliveryRow {
    fn from(d: webhooks::Delivery) -> DeliveryRow {
        // Named as a person reads it: the user's or the group's name.
        let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap_or_default();
        let data = &payload["data"];
        let named = data["user"]["username"]
            .as_str()
            .or_else(|| data["group"]["name"].as_str());
        DeliveryRow {
            about: named.unwrap_or(&d.subject).to_string(),
            next_attempt_at: (d.state == "pending").then_some(d.next_attempt_at),
            delivery_id: d.delivery_id,
            event_type: d.event_type,
            subject: d.subject,
            message_id: d.message_id,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            last_attempt_at: d.last_attempt_at,
            created_at: d.created_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct FreshSecret {
    endpoint_id: i64,
    secret: String,
}

async fn keep_secret(session: &Session, endpoint_id: i64, secret: String) -> Result<()> {
    let fresh = FreshSecret {
        endpoint_id,
        secret,
    };
    session
        .insert(FRESH_SECRET, fresh)
        .await
        .map_err(|e| anyhow::anyhow!("session: {e}"))?;
    Ok(())
}

/// The secret waiting to be shown for this endpoint, taken out of the session.
async fn take_secret(session: &Session, endpoint_id: i64) -> Result<Option<String>> {
    let fresh: Option<FreshSecret> = session
        .remove(FRESH_SECRET)
        .await
        .map_err(|e| anyhow::anyhow!("session: {e}"))?;
    Ok(fresh
        .filter(|f| f.endpoint_id == endpoint_id)
        .map(|f| f.secret))
}

async fn show_page(
    state: &AppState,
    page: Page,
    session: &Session,
    endpoint_id: i64,
    query: ShowQuery,
    form: Option<&EndpointForm>,
    errors: &FieldErrors,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let endpoint = webhooks::get(&mut conn, endpoint_id).await?;
    let shown = match query.state.as_str() {
        s @ ("pending" | "delivered" | "failed") => Some(s.to_string()),
        _ => None,
    };
    let filter = DeliveryFilter {
        endpoint_id: Some(endpoint_id),
        state: shown.clone(),
        before_id: None,
        limit: 200,
    };
    let deliveries: Vec<DeliveryRow> = webhooks::deliveries(&mut conn, &filter)
        .await?
        .into_iter()
        .map(DeliveryRow::from)
        .collect();
    drop(conn);
    let secret = take_secret(session, endpoint_id).await?;
    let form = form.cloned().unwrap_or_else(|| EndpointForm::of(&endpoint));
    let ctx = crate::ctx! {
        page, endpoint => row(&endpoint), form, deliveries, secret,
        shown => shown.unwrap_or_default(), event_types => EVENT_TYPES,
        created_by => endpoint.created_by,
    };
    form_page("admin/webhook.html", ctx, errors)
}

pub async fn show(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    Id(endpoint_id): Id,
    Query(query): Query<ShowQuery>,
) -> Result<Response> {
    show_page(
        &state,
        page,
        &session,
        endpoint_id,
        query,
        None,
        &FieldErrors::default(),
    )
    .await
}

pub async fn update(
    c: Changer,
    page: Page,
    Id(endpoint_id): Id,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let form = EndpointForm::from_fields(&fields);
    let actor = current.web_actor();
    match webhooks::update(&state.ladder, &actor, endpoint_id, form.input()).await {
        Ok(endpoint) => {
            let done = Ok(format!("Endpoint {} saved.", endpoint.url));
            flash_and_redirect(&session, done, &webhook_url(endpoint_id)).await
        }
        Err(e @ Error::NotFound(_)) => Err(e),
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.refusal("url", e)?;
            let query = ShowQuery::default();
            show_page(
                &state,
                page,
                &session,
                endpoint_id,
                query,
                Some(&form),
                &errors,
            )
            .await
        }
    }
}

pub async fn rotate(c: Changer, Id(endpoint_id): Id) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let change = RotateSecret {
        actor: current.web_actor(),
        endpoint_id,
        now: state.ladder.clock.now(),
    };
    let secret = state.ladder.db.run(change).await?;
    keep_secret(&session, endpoint_id, secret).await?;
    let done = Ok("New secret made; the old one no longer signs anything.".to_string());
    flash_and_redirect(&session, done, &webhook_url(endpoint_id)).await
}

pub async fn delete(c: Changer, Id(endpoint_id): Id) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let change = DeleteEndpoint {
        actor: current.web_actor(),
        endpoint_id,
        now: state.ladder.clock.now(),
    };
    let deleted = state.ladder.db.run(change).await?;
    let done = Ok(format!("Endpoint {} deleted.", deleted.url));
    flash_and_redirect(&session, done, "/admin/webhooks").await
}

/// The path's second id: the delivery.
#[derive(Deserialize)]
pub struct DeliveryPath {
    webhook_id: String,
    delivery_id: String,
}

pub async fn retry(
    c: Changer,
    axum::extract::Path(path): axum::extract::Path<DeliveryPath>,
) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let endpoint_id = path_id(&path.webhook_id, "That delivery")?;
    let delivery_id = path_id(&path.delivery_id, "That delivery")?;
    let change = RetryDelivery {
        actor: current.web_actor(),
        endpoint_id,
        delivery_id,
        now: state.ladder.clock.now(),
    };
    let queued = state.ladder.db.run(change).await?;
    state.ladder.webhook_wake.notify_one();
    let done = if queued {
        Ok("Queued again; it goes out on the worker's next pass.".to_string())
    } else {
        Err(Error::Conflict(
            "that delivery is not failed any more".into(),
        ))
    };
    flash_and_redirect(&session, done, &webhook_url(endpoint_id)).await
}
