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
    Router, extract::Request, handler::Handler, http::Method, response::Response,
    routing::future::RouteFuture,
};
use futures_util::future::{BoxFuture, Either};
use tower::Service;

use super::{AppState, api_auth};
use crate::api::check;

const PATH: &str = "/api/v1/check";

/// Sends a token's check down the short lane and everything else down the
/// application's full stack.
#[derive(Clone)]
pub struct Lanes {
    app: Router,
    state: AppState,
}

impl Lanes {
    pub fn new(app: Router, state: AppState) -> Lanes {
        Lanes { app, state }
    }
}

fn takes_short_lane(req: &Request) -> bool {
    req.uri().path() == PATH
        && matches!(*req.method(), Method::GET | Method::POST)
        && api_auth::bearer(req.headers()).is_some()
}

/// The token first, then the check's handler for the method, called
/// directly: the lane has only these two, so it needs no route table.
async fn short_lane(state: AppState, req: Request) -> Response {
    let req = match api_auth::admit(&state, req).await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    if req.method() == Method::GET {
        check::check_one.call(req, state).await
    } else {
        check::check_many.call(req, state).await
    }
}

impl Service<Request> for Lanes {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<BoxFuture<'static, Result<Response, Infallible>>, RouteFuture<Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if takes_short_lane(&req) {
            let state = self.state.clone();
            Either::Left(Box::pin(async move { Ok(short_lane(state, req).await) }))
        } else {
            Either::Right(self.app.call(req))
        }
    }
}
