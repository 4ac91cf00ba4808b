//! The web server: state, start-up and shutdown. Routes are in `router.rs`.

pub mod account;
pub mod account_tokens;
pub mod api_auth;
pub mod auth;
pub mod check_lane;
pub mod csrf;
pub mod error;
pub mod form;
pub mod guards;
pub mod inputs;
pub mod login;
pub mod outcome;
pub mod page;
pub mod request_id;
pub mod router;
pub mod session_store;
pub mod state;
pub mod templates;
pub mod viewer;

pub use state::AppState;

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use tokio::net::TcpListener;

use crate::{Ladder, Result};

/// A bound, ready server. `port()` tells which port (bind to port 0 in tests).
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
}

impl Application {
    /// Binds `server.address` and builds the router.
    pub async fn build(ladder: Ladder) -> Result<Application> {
        let address = ladder.settings.server.address.clone();
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))?;
        Application::with_listener(ladder, listener).await
    }

    pub async fn with_listener(ladder: Ladder, listener: TcpListener) -> Result<Application> {
        let state = AppState::new(ladder).await?;
        Ok(Application {
            listener,
            router: router::router(state),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        use axum::serve::ListenerExt;
        // Answers go out at once: with Nagle's algorithm the tail of a large
        // answer (a batch of checks) could wait for the client's delayed ACK.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| anyhow::anyhow!("server failed: {e}"))?;
        Ok(())
    }
}

/// Runs the web server, the email worker and the scheduler side by side
/// until Ctrl-C or SIGTERM. If the worker dies, the process stops too.
pub async fn serve(ladder: Ladder) -> Result<()> {
    let transport = crate::mail::transport::Transport::from_settings(&ladder.settings.mail)?;
    println!("Email goes to {}.", transport.describe());
    let app = Application::build(ladder.clone()).await?;
    let address = ladder.settings.server.address.clone();
    println!("Ladder is serving on http://{address}/ (Ctrl-C to stop)");
    tracing::info!(%address, "serving");
    run(ladder, app, transport, shutdown_signal()).await
}

/// What `serve` runs once the listener is bound: `app`, the email and
/// webhook workers and (with `jobs.enabled`) the scheduler, side by side,
/// until `shutdown` resolves; requests in flight then finish, the workers
/// finish their passes and the database is closed. If the worker dies, the server stops too.
pub async fn run(
    ladder: Ladder,
    app: Application,
    transport: crate::mail::transport::Transport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut worker = tokio::spawn(crate::mail::worker::run(
        ladder.clone(),
        transport,
        ladder.mail_wake.clone(),
        stop.clone(),
    ));
    let hooks_stop = Arc::new(tokio::sync::Notify::new());
    let hooks = tokio::spawn(crate::webhooks::worker::run(
        ladder.clone(),
        ladder.webhook_wake.clone(),
        hooks_stop.clone(),
    ));
    let mut scheduler = if ladder.settings.jobs.enabled {
        Some(crate::jobs::start(ladder.clone()).await?)
    } else {
        None
    };
    let mut server = tokio::spawn(app.run_until(shutdown));
    let outcome = tokio::select! {
        served = &mut server => {
            stop.notify_one();
            hooks_stop.notify_one();
            let _ = worker.await;
            let _ = hooks.await;
            served.map_err(|e| anyhow::anyhow!("server task: {e}"))?
        }
        worked = &mut worker => {
            tracing::error!("the email worker stopped unexpectedly; shutting down");
            server.abort();
            worked.map_err(|e| anyhow::anyhow!("email worker: {e}"))?;
            Err(anyhow::anyhow!("the email worker stopped").into())
        }
    };
    if let Some(s) = scheduler.as_mut() {
        let _ = s.shutdown().await;
    }
    ladder.db.close().await;
    outcome
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down; letting requests in flight finish");
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match sqlx::query_scalar::<_, i64>("select 1")
        .fetch_one(state.ladder.db.pool())
        .await
    {
        Ok(_) => (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        ),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable", "reason": "database" })),
            )
        }
    }
}

/// `GET /static/app.css`, compiled into the binary: nothing comes from a CDN.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.css"),
    )
}
