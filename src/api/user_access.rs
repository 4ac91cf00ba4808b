//! What a user may do: their groups and direct permissions (changed under
//! the delegation rules, as in the console), and what they hold in effect
//! with where each permission comes from.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    ApiResult, as_field,
    check::SourceJson,
    group_id,
    openapi::ErrorBody,
    revised::{self, Revised},
    users::GroupRefJson,
};
use crate::{
    accounts::{
        group_changes::{ChangeMembership, MembershipChanged},
        groups::GroupRef,
        users,
    },
    permissions::{
        PermissionName, catalog, effective,
        grants::{ChangePermissions, Holder, HolderRef},
        revision,
    },
    web::{
        state::AppState,
        viewer::{CurrentUser, SignedIn},
    },
};

/// A membership after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipJson {
    user: String,
    group: GroupRefJson,
    /// Whether the user is now a member.
    member: bool,
    /// False when the user already was (or was not) a member.
    changed: bool,
}

impl From<MembershipChanged> for MembershipJson {
    fn from(m: MembershipChanged) -> MembershipJson {
        MembershipJson {
            user: m.user.username,
            group: GroupRefJson::from(&m.group),
            member: m.add,
            changed: m.changed,
        }
    }
}

async fn membership(
    state: &AppState,
    current: &CurrentUser,
    (username, group): (String, String),
    add: bool,
) -> ApiResult<Json<Revised<MembershipJson>>> {
    let change = ChangeMembership {
        actor: current.api_actor(),
        group: GroupRef::Id(group_id(&group)?),
        username,
        add,
        now: state.ladder.clock.now(),
    };
    let done = revised::run(state, change).await?;
    Ok(Json(done.map(MembershipJson::from)))
}

/// Adds the user to the group. This grants every permission of the group,
/// so the caller must hold them all (and `auth.change_user`).
#[utoipa::path(
    put, path = "/api/v1/users/{username}/groups/{group_id}", tag = "users",
    operation_id = "add_user_to_group",
    params(
        ("username" = String, Path, description = "The username (any case)"),
        ("group_id" = i64, Path, description = "The group's id"),
    ),
    responses(
        (status = 200, description = "A member now", body = Revised<MembershipJson>),
        (status = 404, description = "No such user or group", body = ErrorBody),
    )
)]
pub async fn add_user_to_group(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Revised<MembershipJson>>> {
    membership(&state, &current, path, true).await
}

/// Removes the user from the group: a revocation of every permission of
/// the group, so the caller must hold them all (and `auth.change_user`).
#[utoipa::path(
    delete, path = "/api/v1/users/{username}/groups/{group_id}", tag = "users",
    operation_id = "remove_user_from_group",
    params(
        ("username" = String, Path, description = "The username (any case)"),
        ("group_id" = i64, Path, description = "The group's id"),
    ),
    responses(
        (status = 200, description = "Not a member now", body = Revised<MembershipJson>),
        (status = 404, description = "No such user or group", body = ErrorBody),
    )
)]
pub async fn remove_user_from_group(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Revised<MembershipJson>>> {
    membership(&state, &current, path, false).await
}

/// A direct grant after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserGrantJson {
    user: String,
    permission: String,
    /// Whether the user now holds it directly (they may also hold it through a group).
    granted: bool,
    /// False when it already was (or was not) granted directly.
    changed: bool,
}

async fn user_grant(
    state: &AppState,
    current: &CurrentUser,
    (username, perm): (String, String),
    grant: bool,
) -> ApiResult<Json<Revised<UserGrantJson>>> {
    let perm = PermissionName::parse(&perm).map_err(as_field("perm"))?;
    let change = ChangePermissions {
        actor: current.api_actor(),
        holder: HolderRef::User(username),
        perms: vec![perm.clone()],
        grant,
        now: state.ladder.clock.now(),
    };
    let done = revised::run(state, change).await?;
    Ok(Json(done.map(|(holder, changed)| {
        let user = match holder {
            Holder::User(u) => u.username,
            Holder::Group(_) => unreachable!("a user's grant is held by the user"),
        };
        UserGrantJson {
            user,
            permission: perm.to_string(),
            granted: grant,
            changed: !changed.is_empty(),
        }
    })))
}

/// Grants a permission to the user directly. The caller must hold it;
/// only the superuser may grant `auth.change_user`.
#[utoipa::path(
    put, path = "/api/v1/users/{username}/permissions/{perm}", tag = "users",
    operation_id = "grant_user_permission",
    params(
        ("username" = String, Path, description = "The username (any case)"),
        ("perm" = String, Path, description = "`app_label.codename`",
         pattern = r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$"),
    ),
    responses(
        (status = 200, description = "Granted", body = Revised<UserGrantJson>),
        (status = 404, description = "No such user or permission", body = ErrorBody),
    )
)]
pub async fn grant_user_permission(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Revised<UserGrantJson>>> {
    user_grant(&state, &current, path, true).await
}

/// Revokes a direct permission. The caller must hold it, as for a grant.
#[utoipa::path(
    delete, path = "/api/v1/users/{username}/permissions/{perm}", tag = "users",
    operation_id = "revoke_user_permission",
    params(
        ("username" = String, Path, description = "The username (any case)"),
        ("perm" = String, Path, description = "`app_label.codename`",
         pattern = r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$"),
    ),
    responses(
        (status = 200, description = "Revoked", body = Revised<UserGrantJson>),
        (status = 404, description = "No such user or permission", body = ErrorBody),
    )
)]
pub async fn revoke_user_permission(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Revised<UserGrantJson>>> {
    user_grant(&state, &current, path, false).await
}

/// What a user holds in effect.
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectiveJson {
    user: String,
    is_active: bool,
    is_superuser: bool,
    /// Every permission held, by name, with where it comes from. An
    /// inactive user holds none; the superuser holds every permission in
    /// the catalog (and, in a check, even ones that do not exist).
    permissions: Vec<HeldJson>,
    /// The answer reflects at least this revision.
    revision: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldJson {
    permission: String,
    /// `superuser`, `direct`, and `group` with the group's name.
    sources: Vec<SourceJson>,
}

/// What the user holds in effect, and where each permission comes from.
#[utoipa::path(
    get, path = "/api/v1/users/{username}/permissions", tag = "users",
    operation_id = "user_permissions",
    params(("username" = String, Path, description = "The username (any case)")),
    responses(
        (status = 200, description = "The effective permissions", body = EffectiveJson),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn user_permissions(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> ApiResult<Json<EffectiveJson>> {
    let mut conn = state.ladder.db.acquire().await?;
    // Read first: what is loaded after it reflects at least this revision.
    let revision = revision::current(&mut conn).await?;
    let user = users::get_by_username(&mut conn, &username).await?;
    let held = effective::load(&mut conn, user.user_id).await?;
    let mut names: Vec<String> = if held.is_active && held.is_superuser {
        let all = catalog::all(&mut conn).await?;
        all.iter().map(|p| p.name().to_string()).collect()
    } else {
        held.granted().keys().map(|k| k.to_string()).collect()
    };
    names.sort();
    let permissions = names
        .into_iter()
        .map(|name| {
            let sources = held
                .explain(&name)
                .sources
                .iter()
                .cloned()
                .map(SourceJson::held)
                .collect();
            HeldJson {
                permission: name,
                sources,
            }
        })
        .collect();
    Ok(Json(EffectiveJson {
        user: user.username,
        is_active: held.is_active,
        is_superuser: held.is_superuser,
        permissions,
        revision,
    }))
}
