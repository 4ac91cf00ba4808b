//! `/account/tokens`: a signed-in user's own API tokens. A new token's
//! secret is shown once, in the answer to the POST that made it: never in a
//! URL or a flash (both outlive the page), and sent with `Cache-Control:
//! no-store` so no cache keeps it. Ladder itself keeps only its hash.

use axum::{
    Form,
    extract::State,
    http::{HeaderValue, header},
    response::Response,
};
use serde::Serialize;

use crate::{
    Error, Result,
    accounts::tokens::{self, CreateToken, RevokeToken, Token},
    permissions::{PermissionName, catalog},
    web::{
        error::Id,
        form::{FieldErrors, form_page},
        outcome::{Changer, flash_and_redirect},
        page::Page,
        state::AppState,
        viewer::{CurrentUser, SignedIn},
    },
};

/// The lifetimes the form offers, as `--expires` takes them, and their labels.
const LIFETIMES: &[(&str, &str)] = &[
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("90d", "90 days"),
    ("365d", "1 year"),
    ("never", "No expiry"),
];
const DEFAULT_LIFETIME: &str = "90d";

/// A token as a page lists it: never the secret.
#[derive(Serialize)]
pub struct TokenRow {
    token_id: i64,
    name: String,
    hint: String,
    /// The permissions it is narrowed to; None: all its user holds.
    scope: Option<Vec<String>>,
    created_by: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    status: &'static str,
    /// Not yet revoked (an expired token may still be revoked).
    revocable: bool,
}

pub fn token_rows(all: &[Token], now: i64) -> Vec<TokenRow> {
    all.iter()
        .map(|t| TokenRow {
            token_id: t.token_id,
            name: t.name.clone(),
            hint: t.hint.clone(),
            scope: t.scope(),
            created_by: t.created_by.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            status: t.status(now),
            revocable: t.revoked_at.is_none(),
        })
        .collect()
}

/// What the form holds: as entered, to show again beside its problems.
#[derive(Serialize)]
struct Entered {
    name: String,
    lifetime: String,
    perms: Vec<String>,
}

impl Default for Entered {
    fn default() -> Entered {
        Entered {
            name: String::new(),
            lifetime: DEFAULT_LIFETIME.into(),
            perms: vec![],
        }
    }
}

/// The token just made, with its secret: in this one answer only.
#[derive(Serialize)]
struct Created {
    token_id: i64,
    name: String,
    secret: String,
    expires_at: Option<i64>,
    scope: Option<Vec<String>>,
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    page: Page,
) -> Result<Response> {
    let errors = FieldErrors::default();
    show(&state, &current, page, Entered::default(), &errors, None).await
}

/// Makes a token for the signed-in user and shows its secret, once.
pub async fn create(
    c: Changer,
    page: Page,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let (state, current) = (&c.state, &c.current);
    let entered = Entered::from_fields(&fields);
    let mut errors = FieldErrors::default();
    let now = state.ladder.clock.now();
    let Some(change) = entered.parse(current, now, &mut errors)? else {
        return show(state, current, page, entered, &errors, None).await;
    };
    match state.ladder.db.run(change).await {
        Ok(made) => {
            let created = Some(Created::from(made));
            show(state, current, page, Entered::default(), &errors, created).await
        }
        Err(e) => {
            // An unknown permission belongs to the checklist; a taken name to the name.
            let field = if matches!(e, Error::NotFound(_)) {
                "perm"
            } else {
                "name"
            };
            errors.refusal(field, e)?;
            show(state, current, page, entered, &errors, None).await
        }
    }
}

impl Entered {
    /// The form's fields from the posted pairs (`perm` repeats).
    fn from_fields(fields: &[(String, String)]) -> Entered {
        let field = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map_or("", |(_, v)| v.as_str())
        };
        Entered {
            name: field("name").to_string(),
            lifetime: field("lifetime").to_string(),
            perms: (fields.iter())
                .filter(|(k, _)| k == "perm")
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// The token `current` asked for; None with every field's problem filed
    /// in `errors` at once, so the form shows them all.
    fn parse(
        &self,
        current: &CurrentUser,
        now: i64,
        errors: &mut FieldErrors,
    ) -> Result<Option<CreateToken>> {
        let name = errors.check(tokens::parse_name(&self.name));
        let lifetime = match self.lifetime.as_str() {
            "never" => Some(None),
            offered if LIFETIMES.iter().any(|(value, _)| *value == offered) => {
                errors.check(tokens::parse_lifetime(offered)).map(Some)
            }
            _ => {
                errors.insert("lifetime", "Choose one of the lifetimes offered.");
                None
            }
        };
        let scope = match self.perms.as_slice() {
            [] => Some(None),
            perms => match PermissionName::parse_all(perms) {
                Ok(names) => Some(Some(names)),
                // Filed under the checklist's own field name.
                Err(Error::Invalid { message, .. }) => {
                    errors.insert("perm", message);
                    None
                }
                Err(e) => return Err(e),
            },
        };
        Ok(match (name, lifetime, scope) {
            (Some(name), Some(lifetime), Some(scope)) => Some(CreateToken {
                actor: current.web_actor(),
                owner: current.user.username.clone(),
                name,
                expires_at: lifetime.map(|secs| now + secs),
                scope,
                now,
            }),
            _ => None,
        })
    }
}

impl From<tokens::NewToken> for Created {
    fn from(made: tokens::NewToken) -> Created {
        Created {
            token_id: made.token.token_id,
            name: made.token.name.clone(),
            expires_at: made.token.expires_at,
            scope: made.token.scope(),
            secret: made.secret,
        }
    }
}

/// Revokes one of the signed-in user's own tokens; anyone else's is not found.
pub async fn revoke(c: Changer, Id(token_id): Id) -> Result<Response> {
    let change = RevokeToken {
        actor: c.current.web_actor(),
        token_id,
        owned_by: Some(c.current.user.user_id),
        now: c.state.ladder.clock.now(),
    };
    let done = c.state.ladder.db.run(change).await?;
    let name = &done.token.name;
    let message = match done.changed {
        true => format!("Revoked the token {name:?}: it fails from its next use."),
        false => format!("The token {name:?} was already revoked."),
    };
    flash_and_redirect(&c.session, Ok(message), "/account/tokens").await
}

/// The page: the user's tokens, the form (with its problems, if any) and,
/// right after a create, the new secret. Never stored by any cache.
async fn show(
    state: &AppState,
    current: &CurrentUser,
    page: Page,
    entered: Entered,
    errors: &FieldErrors,
    created: Option<Created>,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let own = tokens::of_user(&mut conn, current.user.user_id).await?;
    // A token can be narrowed to what its user holds: the superuser, to anything.
    let held: Vec<String> = if current.perms.is_active && current.perms.is_superuser {
        let all = catalog::all(&mut conn).await?;
        all.iter().map(|p| p.name().to_string()).collect()
    } else {
        current
            .perms
            .granted()
            .keys()
            .map(|p| p.to_string())
            .collect()
    };
    drop(conn);
    let lifetimes: Vec<_> = LIFETIMES
        .iter()
        .map(|(value, label)| serde_json::json!({ "value": value, "label": label }))
        .collect();
    let ctx = crate::ctx! {
        page,
        tokens => token_rows(&own, state.ladder.clock.now()),
        held, lifetimes, entered, created,
    };
    let mut response = form_page("account_tokens.html", ctx, errors)?;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
