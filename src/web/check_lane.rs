//! The short way through for the hottest route: `/api/v1/check` with an API
//! token. Other apps call it tens of thousands of times a second, and a
//! token request needs none of what a browser's does (the session, its CSRF
//! rule, the route guard's sign-in redirect), so it skips those layers.
//!
//! The rule is the route table's (`SignedIn`, then `auth.view_user` per
//! check, in the domain): a request whose token does not work is refused
//! with 401 before the handler. The handlers, the outer layers (security
//! headers, JSON errors, request id, log, panic, timeout, body limit) and the
//! token's rate limit are the same as on the full stack. The control-character
//! screen of `inputs` is left to the check itself, which refuses such a
//! username (`permissions::check`); a permission or consistency level that
//! is not exactly well-formed is refused by its parser. A check without a
//! token (a signed-in browser) takes the full stack.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use axum::{
    Router,
    extract::{Request, State},
    http::Method,
    middleware::{Next, from_fn_with_state},
    response::Response,
    routing::{future::RouteFuture, get},
};
use tower::Service;

use super::{AppState, api_auth};
use crate::api::check;

const PATH: &str = "/api/v1/check";

/// The check's own router: its two methods, behind the token.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(PATH, get(check::check_one).post(check::check_many))
        .layer(from_fn_with_state(state.clone(), token_only))
        .with_state(state)
}

async fn token_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match api_auth::admit(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    }
}

/// Sends a token's check down the short lane and everything else down the
/// application's full stack.
#[derive(Clone)]
pub struct Lanes {
    pub app: Router,
    pub check: Router,
}

fn takes_short_lane(req: &Request) -> bool {
    req.uri().path() == PATH
        && matches!(*req.method(), Method::GET | Method::POST)
        && api_auth::bearer(req.headers()).is_some()
}

impl Service<Request> for Lanes {
    type Response = Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if takes_short_lane(&req) {
            self.check.call(req)
        } else {
            self.app.call(req)
        }
    }
}
