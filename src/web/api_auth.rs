//! `Authorization: Bearer ldr_…` on the JSON API: the token's user, as of
//! this request, narrowed to the token's scope; its rate limit; its last use.
//!
//! By default a token is read from the database on every request, with its
//! user and the permission counters in one query, so a revoked token, a
//! deactivated user or a revoked permission fails on the very next call from
//! any process. A `consistency=cached` check reads the token from
//! `permissions::revision::Live` instead, kept current by change notifications.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::Request,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};

use super::{
    AppState,
    error::ApiError,
    viewer::{Bearer, CurrentUser, TokenInUse, Viewer},
};
use crate::{
    Error, Result,
    accounts::{
        User,
        tokens::{self, TouchToken},
    },
    permissions::{
        EffectivePermissions,
        revision::{self, CachedToken},
    },
};

/// The bearer secret, if the request has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
}

/// A request with a bearer token, admitted as the token's user (with the
/// extensions the handlers read), or the JSON refusal: 401 for a token that
/// does not work, 429 over its rate limit.
pub async fn admit(state: &AppState, mut req: Request) -> std::result::Result<Request, Response> {
    let refuse = |e: Error| ApiError(e).into_response();
    let secret = bearer(req.headers()).ok_or_else(|| refuse(Error::Unauthorized))?;
    let cached = req.uri().path() == "/api/v1/check"
        && req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "consistency=cached"));
    let (current, fresh) = resolve(state, secret, cached).await.map_err(refuse)?;
    count_use(state, &current).map_err(refuse)?;
    let extensions = req.extensions_mut();
    extensions.insert(Bearer);
    if let Some(fresh) = fresh {
        extensions.insert(fresh);
    }
    extensions.insert(Viewer(Some(Arc::new(current))));
    Ok(req)
}

fn refused() -> Error {
    Error::Unauthorized
}

/// The token's user as of now, or 401 for an unknown, revoked or expired
/// token or an inactive user; with the revision read before resolving, for
/// a request that wants every committed change (see [`FreshAsOf`]).
///
/// A full-consistency request reads only the revision counter when this
/// process's memory has already seen it: everything committed before the
/// request is then in memory, so the token and its user's permissions come
/// from there. Otherwise the token is read from the database.
pub async fn resolve(
    state: &AppState,
    secret: &str,
    cached: bool,
) -> Result<(CurrentUser, Option<FreshAsOf>)> {
    let now = state.ladder.clock.now();
    let live = &state.ladder.live;
    let digest = tokens::digest(secret);
    let fresh = if cached {
        None
    } else {
        Some(FreshAsOf(revision::latest(&state.ladder.db).await?))
    };
    let from_memory = match fresh {
        Some(FreshAsOf(revision)) => live.has_seen(revision),
        None => live.seen().is_some(),
    };
    let current = match from_memory.then(|| live.token(&digest)).flatten() {
        Some(token) => remembered(state, token, now).await?,
        None => read(state, secret, digest, now).await?,
    };
    Ok((current, fresh))
}

/// The token as this process's memory has it.
async fn remembered(state: &AppState, token: CachedToken, now: i64) -> Result<CurrentUser> {
    if token.expires_at.is_some_and(|at| at <= now) {
        return Err(refused());
    }
    let live = &state.ladder.live;
    let perms = match live.permissions(token.user.user_id) {
        Some(p) => p,
        None => {
            let mut conn = state.ladder.db.acquire().await?;
            live.load_permissions(&mut conn, token.user.user_id).await?
        }
    };
    if !perms.is_active {
        return Err(refused());
    }
    let in_use = TokenInUse {
        token_id: token.token_id,
        name: token.name,
        scope: token.scope,
    };
    Ok(acting(token.user, perms, in_use))
}

/// The token as the database has it, remembered for the next request.
async fn read(state: &AppState, secret: &str, digest: [u8; 32], now: i64) -> Result<CurrentUser> {
    let live = &state.ladder.live;
    let generation = live.generation();
    let mut conn = state.ladder.db.acquire().await?;
    let found = tokens::presented(&mut conn, secret)
        .await?
        .filter(|p| p.token.is_live(now) && p.user.user.is_active)
        .ok_or_else(refused)?;
    let perms = found
        .user
        .permissions(&state.ladder.permissions, &mut conn)
        .await?;
    let user = Arc::new(found.user.user);
    let name: Arc<str> = found.token.name.as_str().into();
    let scope = tokens::shared_scope(&found.token);
    // Kept only if nothing changed while it was read (the generation).
    live.remember_token(
        generation,
        digest,
        CachedToken {
            token_id: found.token.token_id,
            user: user.clone(),
            name: name.clone(),
            scope: scope.clone(),
            expires_at: found.token.expires_at,
        },
    );
    let in_use = TokenInUse {
        token_id: found.token.token_id,
        name,
        scope,
    };
    Ok(acting(user, perms, in_use))
}

/// The token's user, holding only what the token's scope allows.
fn acting(user: Arc<User>, perms: Arc<EffectivePermissions>, token: TokenInUse) -> CurrentUser {
    let perms = match &token.scope {
        Some(scope) => Arc::new(perms.narrowed(scope)),
        None => perms,
    };
    CurrentUser {
        user,
        perms,
        token: Some(token),
    }
}

/// The revision committed when a token request began: a full-consistency
/// answer may come from any state at or after it (the check reuses it
/// instead of reading the counter again).
#[derive(Debug, Clone, Copy)]
pub struct FreshAsOf(pub i64);

/// Per-token rate limits (a token bucket each) and last-use bookkeeping,
/// for this process.
#[derive(Default)]
pub struct TokenUse {
    tokens: Mutex<HashMap<i64, Usage>>,
}

struct Usage {
    allowance: f64,
    at: Instant,
    /// When `last_used_at` was last written (application clock, seconds).
    touched: i64,
}

/// How often a token's `last_used_at` is written at most: a check must not
/// cost a write, and "last used" to the minute is what people read.
const TOUCH_EVERY_SECS: i64 = 60;

impl TokenUse {
    /// Admits one request of `token_id`, or says how many seconds to wait.
    /// Also says whether its last use should be written now.
    fn admit(&self, token_id: i64, now: i64, per_second: u32, burst: u32) -> (Result<()>, bool) {
        let mut all = self.tokens.lock().expect("token use");
        let instant = Instant::now();
        let usage = all.entry(token_id).or_insert(Usage {
            allowance: f64::from(burst.max(1)),
            at: instant,
            touched: i64::MIN,
        });
        let touch = now.saturating_sub(usage.touched) >= TOUCH_EVERY_SECS;
        if touch {
            usage.touched = now;
        }
        if per_second == 0 {
            return (Ok(()), touch);
        }
        let rate = f64::from(per_second);
        let elapsed = instant.duration_since(usage.at).as_secs_f64();
        usage.at = instant;
        usage.allowance = (usage.allowance + elapsed * rate).min(f64::from(burst.max(1)));
        if usage.allowance < 1.0 {
            let wait = ((1.0 - usage.allowance) / rate).ceil().max(1.0) as u64;
            return (Err(Error::RateLimited(wait)), touch);
        }
        usage.allowance -= 1.0;
        (Ok(()), touch)
    }
}

/// Counts a request against its token's limit and records its use.
pub fn count_use(state: &AppState, current: &CurrentUser) -> Result<()> {
    let Some(token) = &current.token else {
        return Ok(());
    };
    let settings = &state.ladder.settings.api;
    let now = state.ladder.clock.now();
    let (admitted, touch) = state.token_use.admit(
        token.token_id,
        now,
        settings.requests_per_second,
        settings.burst,
    );
    if touch {
        let db = state.ladder.db.clone();
        let token_id = token.token_id;
        // Off the request's path: a check never waits for this write.
        tokio::spawn(async move {
            if let Err(e) = db.run(TouchToken { token_id, now }).await {
                tracing::warn!(error = %e, token_id, "could not record the token's last use");
            }
        });
    }
    admitted
}
