//! `GET` and `POST /api/v1/check`: permission checks for other apps.

use axum::{
    Extension, Json,
    extract::{Query, State},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiResult;
use crate::{
    Error,
    permissions::{
        Via,
        check::{self, Asker, Consistency, Source, Verdict},
    },
    web::{
        api_auth::FreshAsOf,
        error::ApiJson,
        state::AppState,
        viewer::{CurrentUser, SignedIn},
    },
};

/// The most checks one batch may hold.
const MAX_BATCH: usize = 1_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// The username to check.
    user: String,
    /// `app_label.codename`.
    #[param(pattern = r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")]
    perm: String,
    /// `full` (default), `cached`, or `at_least=REV`.
    #[param(pattern = r"^(full|cached|at_least=[0-9]+)$")]
    consistency: Option<String>,
    /// Same as `consistency=at_least=REV`.
    #[param(minimum = 0)]
    at_least: Option<i64>,
}

/// One answer.
#[derive(Serialize, ToSchema)]
pub struct CheckAnswer {
    allowed: bool,
    user: String,
    perm: String,
    /// Where the permission comes from, or why it is missing.
    sources: Vec<SourceJson>,
    /// The answer reflects at least this revision.
    revision: i64,
}

/// `{"kind": "superuser" | "direct" | "group" | "inactive" | "not_held", "group": name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceJson {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
}

impl SourceJson {
    /// How a holder holds a permission, in a check's words.
    pub fn held(via: Via) -> SourceJson {
        let (kind, group) = match via {
            Via::Superuser => ("superuser", None),
            Via::Direct => ("direct", None),
            Via::Group(g) => ("group", Some(g)),
        };
        SourceJson { kind, group }
    }
}

impl From<Verdict> for CheckAnswer {
    fn from(v: Verdict) -> CheckAnswer {
        let sources = v
            .sources
            .into_iter()
            .map(|s| {
                let (kind, group) = match s {
                    Source::Superuser => ("superuser", None),
                    Source::Direct => ("direct", None),
                    Source::Group(g) => ("group", Some(g)),
                    Source::Inactive => ("inactive", None),
                    Source::NotHeld => ("not_held", None),
                };
                SourceJson { kind, group }
            })
            .collect();
        CheckAnswer {
            allowed: v.allowed,
            user: v.user,
            perm: v.perm,
            sources,
            revision: v.revision,
        }
    }
}

/// A full check reuses the revision the token lookup read (the request's
/// start), rather than reading the counter again.
fn level(consistency: Consistency, fresh: Option<Extension<FreshAsOf>>) -> Consistency {
    match (consistency, fresh) {
        (Consistency::Full, Some(Extension(FreshAsOf(rev)))) => Consistency::AtLeast(rev),
        (level, _) => level,
    }
}

fn asker(current: &CurrentUser) -> Asker {
    Asker {
        username: current.user.username.clone(),
        may_view_users: current.has_perm("auth.view_user"),
    }
}

/// May this user do this?
#[utoipa::path(
    get, path = "/api/v1/check", tag = "checks",
    params(CheckQuery),
    responses(
        (status = 200, description = "The answer", body = CheckAnswer),
        (status = 404, description = "No such user", body = super::openapi::ErrorBody),
    )
)]
pub async fn check_one(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    fresh: Option<Extension<FreshAsOf>>,
    Query(q): Query<CheckQuery>,
) -> ApiResult<Json<CheckAnswer>> {
    let consistency = level(
        Consistency::parse(q.consistency.as_deref(), q.at_least)?,
        fresh,
    );
    let checks = [(q.user, q.perm)];
    let mut answers =
        check::check_all(&state.ladder, &asker(&current), &checks, consistency).await?;
    let answer = answers.pop().expect("one check, one answer")?;
    Ok(Json(answer.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// Up to 1,000 checks, answered in the same order.
    #[schema(max_items = 1000)]
    checks: Vec<OneCheck>,
    /// `full` (default), `cached`, or `at_least=REV`.
    #[schema(pattern = r"^(full|cached|at_least=[0-9]+)$")]
    consistency: Option<String>,
    /// Same as `"consistency": "at_least=REV"`.
    #[schema(minimum = 0)]
    at_least: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OneCheck {
    user: String,
    #[schema(pattern = r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")]
    perm: String,
}

#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    results: Vec<BatchResult>,
}

/// An answer, or the error for that one check (`user` and `perm` are echoed).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchResult {
    Answer(CheckAnswer),
    Error {
        user: String,
        perm: String,
        error: super::openapi::ErrorDetail,
    },
}

/// Many checks at once.
#[utoipa::path(
    post, path = "/api/v1/check", tag = "checks",
    request_body = BatchBody,
    responses((status = 200, description = "One result per check, in order", body = BatchAnswer))
)]
pub async fn check_many(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    fresh: Option<Extension<FreshAsOf>>,
    ApiJson(body): ApiJson<BatchBody>,
) -> ApiResult<Json<BatchAnswer>> {
    if body.checks.len() > MAX_BATCH {
        return Err(Error::invalid("checks", "at most 1,000 checks at once").into());
    }
    let consistency = level(
        Consistency::parse(body.consistency.as_deref(), body.at_least)?,
        fresh,
    );
    let checks: Vec<(String, String)> = body.checks.into_iter().map(|c| (c.user, c.perm)).collect();
    let answers = check::check_all(&state.ladder, &asker(&current), &checks, consistency).await?;
    let results = answers
        .into_iter()
        .zip(checks)
        .map(|(answer, (user, perm))| match answer {
            Ok(v) => BatchResult::Answer(v.into()),
            Err(e) => BatchResult::Error {
                user,
                perm,
                error: super::openapi::ErrorDetail::of(&e),
            },
        })
        .collect();
    Ok(Json(BatchAnswer { results }))
}
