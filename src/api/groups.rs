//! `/api/v1/groups`: list, get, create, rename, delete, members, and the
//! group's permissions (the whole list, or one at a time). Each change is
//! the console's own domain transaction: renaming and deleting a group a
//! promotion track is bound to stays the superuser's.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiResult, as_field, group_id,
    openapi::ErrorBody,
    paging::{Page, PageQuery},
    revised::{self, Revised},
    users::GroupRefJson,
};
use crate::{
    accounts::{
        Group, GroupName,
        group_changes::CreateGroup,
        groups::{self, GroupRef, Member},
    },
    clock::rfc3339,
    permissions::{
        PermissionName, catalog,
        checklist::{Checklist, SetGroupPermissions},
        grants::{ChangePermissions, Holder, HolderRef},
    },
    promotions::group_changes::{DeleteGroup, RenameGroup},
    web::{
        error::ApiJson,
        state::AppState,
        viewer::{CurrentUser, SignedIn},
    },
};

/// A group as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupJson {
    /// What paths take: a group keeps its id when renamed.
    id: i64,
    name: String,
    /// When it was made (RFC 3339).
    created_at: String,
}

impl From<&Group> for GroupJson {
    fn from(g: &Group) -> GroupJson {
        GroupJson {
            id: g.group_id,
            name: g.name.clone(),
            created_at: rfc3339(g.created_at),
        }
    }
}

/// One group with its permissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetail {
    #[serde(flatten)]
    group: GroupJson,
    /// The group's permissions, sorted.
    permissions: Vec<String>,
}

fn group_location(group_id: i64) -> String {
    format!("/api/v1/groups/{group_id}")
}

/// Groups by name.
#[utoipa::path(
    get, path = "/api/v1/groups", tag = "groups", operation_id = "list_groups",
    params(PageQuery),
    responses((status = 200, description = "One page of groups, by name", body = Page<GroupJson>))
)]
pub async fn list_groups(
    State(state): State<AppState>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<GroupJson>>> {
    let (after, limit) = (page.after::<String>()?, page.limit()?);
    let mut conn = state.ladder.db.acquire().await?;
    let rows = groups::page(&mut conn, after.as_deref(), limit + 1).await?;
    let page = Page::of(rows, limit, |g| g.name.clone());
    Ok(Json(page.map(|g| GroupJson::from(&g))))
}

/// One group, with its permissions.
#[utoipa::path(
    get, path = "/api/v1/groups/{group_id}", tag = "groups", operation_id = "get_group",
    params(("group_id" = i64, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = GroupDetail),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn get_group(
    State(state): State<AppState>,
    Path(group): Path<String>,
) -> ApiResult<Json<GroupDetail>> {
    let mut conn = state.ladder.db.acquire().await?;
    let group = groups::get_by_id(&mut conn, group_id(&group)?).await?;
    let permissions = catalog::of_group(&mut conn, group.group_id).await?;
    let mut permissions: Vec<String> = permissions.iter().map(|p| p.name().to_string()).collect();
    permissions.sort();
    Ok(Json(GroupDetail {
        group: GroupJson::from(&group),
        permissions,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupNameBody {
    /// 1–150 characters (trimmed), unique.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 150)]
    name: String,
}

/// Creates a group, without permissions: `auth.add_group`.
#[utoipa::path(
    post, path = "/api/v1/groups", tag = "groups", operation_id = "create_group",
    request_body = GroupNameBody,
    responses(
        (status = 201, description = "Created; Location is the group's path", body = Revised<GroupJson>,
         headers(("Location" = String, description = "/api/v1/groups/{group_id}"))),
        (status = 409, description = "A group of that name exists", body = ErrorBody),
    )
)]
pub async fn create_group(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    ApiJson(body): ApiJson<GroupNameBody>,
) -> ApiResult<Response> {
    let change = CreateGroup {
        actor: current.api_actor(),
        name: GroupName::parse(&body.name).map_err(as_field("name"))?,
        now: state.ladder.clock.now(),
    };
    let created = revised::run(&state, change).await?;
    let location = group_location(created.value.group_id);
    let answer = created.map(|g| GroupJson::from(&g));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(answer),
    )
        .into_response())
}

/// Renames a group: `auth.change_group`; a group a promotion track is bound
/// to only by the superuser.
#[utoipa::path(
    patch, path = "/api/v1/groups/{group_id}", tag = "groups", operation_id = "rename_group",
    params(("group_id" = i64, Path, description = "The group's id")),
    request_body = GroupNameBody,
    responses(
        (status = 200, description = "Renamed", body = Revised<GroupJson>),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 409, description = "A group of that name exists", body = ErrorBody),
    )
)]
pub async fn rename_group(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(group): Path<String>,
    ApiJson(body): ApiJson<GroupNameBody>,
) -> ApiResult<Json<Revised<GroupJson>>> {
    let change = RenameGroup {
        actor: current.api_actor(),
        group_id: group_id(&group)?,
        name: GroupName::parse(&body.name).map_err(as_field("name"))?,
        now: state.ladder.clock.now(),
    };
    let renamed = revised::run(&state, change).await?;
    Ok(Json(renamed.map(|(_, after)| GroupJson::from(&after))))
}

/// Deletes a group and every membership in it: `auth.delete_group` and,
/// as for any revocation, every permission the group holds; a group a
/// promotion track is bound to only by the superuser.
#[utoipa::path(
    delete, path = "/api/v1/groups/{group_id}", tag = "groups", operation_id = "delete_group",
    params(("group_id" = i64, Path, description = "The group's id")),
    responses(
        (status = 200, description = "Deleted: the group as it was", body = Revised<GroupJson>),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn delete_group(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(group): Path<String>,
) -> ApiResult<Json<Revised<GroupJson>>> {
    let change = DeleteGroup {
        actor: current.api_actor(),
        group_id: group_id(&group)?,
        now: state.ladder.clock.now(),
    };
    let deleted = revised::run(&state, change).await?;
    Ok(Json(deleted.map(|g| GroupJson::from(&g))))
}

/// A member of a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberJson {
    username: String,
    is_active: bool,
    /// When they joined the group (RFC 3339).
    joined_at: String,
}

impl From<Member> for MemberJson {
    fn from(m: Member) -> MemberJson {
        MemberJson {
            username: m.username,
            is_active: m.is_active,
            joined_at: rfc3339(m.joined_at),
        }
    }
}

/// The group's members, by username.
#[utoipa::path(
    get, path = "/api/v1/groups/{group_id}/members", tag = "groups", operation_id = "group_members",
    params(("group_id" = i64, Path, description = "The group's id"), PageQuery),
    responses(
        (status = 200, description = "One page of members", body = Page<MemberJson>),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn group_members(
    State(state): State<AppState>,
    Path(group): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<MemberJson>>> {
    let (after, limit) = (page.after::<String>()?, page.limit()?);
    let mut conn = state.ladder.db.acquire().await?;
    let group = groups::get_by_id(&mut conn, group_id(&group)?).await?;
    let rows = groups::member_page(&mut conn, group.group_id, after.as_deref(), limit + 1).await?;
    let page = Page::of(rows, limit, |m| crate::accounts::username_key(&m.username));
    Ok(Json(page.map(MemberJson::from)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionListBody {
    /// Every permission the group is to hold, as `app_label.codename`.
    permissions: Vec<String>,
}

/// A group's permissions after they were set.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupPermissionsJson {
    group: GroupRefJson,
    /// What the group holds now, sorted.
    permissions: Vec<String>,
    /// What this change granted, and what it revoked.
    granted: Vec<String>,
    revoked: Vec<String>,
}

/// Sets the group's permissions to exactly this list, granting and revoking
/// the difference in one change: `auth.change_group`, and the caller must
/// hold every permission granted or revoked.
#[utoipa::path(
    put, path = "/api/v1/groups/{group_id}/permissions", tag = "groups",
    operation_id = "set_group_permissions",
    params(("group_id" = i64, Path, description = "The group's id")),
    request_body = PermissionListBody,
    responses(
        (status = 200, description = "Set", body = Revised<GroupPermissionsJson>),
        (status = 404, description = "No such group or permission", body = ErrorBody),
        (status = 409, description = "A promotion track's rule would break", body = ErrorBody),
    )
)]
pub async fn set_group_permissions(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(group): Path<String>,
    ApiJson(body): ApiJson<PermissionListBody>,
) -> ApiResult<Json<Revised<GroupPermissionsJson>>> {
    let wanted = PermissionName::parse_all(&body.permissions).map_err(as_field("permissions"))?;
    let change = SetGroupPermissions {
        actor: current.api_actor(),
        group_id: group_id(&group)?,
        checklist: Checklist::exactly(&wanted),
        now: state.ladder.clock.now(),
    };
    let saved = revised::run(&state, change).await?;
    let names = |v: &[PermissionName]| v.iter().map(ToString::to_string).collect();
    Ok(Json(saved.map(|s| GroupPermissionsJson {
        group: GroupRefJson::from(&s.group),
        permissions: names(&s.held),
        granted: names(&s.granted),
        revoked: names(&s.revoked),
    })))
}

/// A group's permission after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupGrantJson {
    group: GroupRefJson,
    permission: String,
    /// Whether the group now holds it.
    granted: bool,
    /// False when it already did (or did not).
    changed: bool,
}

async fn group_grant(
    state: &AppState,
    current: &CurrentUser,
    (group, perm): (String, String),
    grant: bool,
) -> ApiResult<Json<Revised<GroupGrantJson>>> {
    let group = GroupRef::Id(group_id(&group)?);
    let perm = PermissionName::parse(&perm).map_err(as_field("perm"))?;
    let change = ChangePermissions {
        actor: current.api_actor(),
        holder: HolderRef::Group(group),
        perms: vec![perm.clone()],
        grant,
        now: state.ladder.clock.now(),
    };
    let done = revised::run(state, change).await?;
    Ok(Json(done.map(|(holder, changed)| {
        let group = match holder {
            Holder::Group(g) => GroupRefJson::from(&g),
            Holder::User(_) => unreachable!("a group's grant is held by the group"),
        };
        GroupGrantJson {
            group,
            permission: perm.to_string(),
            granted: grant,
            changed: !changed.is_empty(),
        }
    })))
}

/// Grants the group a permission: `auth.change_group`, and the caller must
/// hold it; every member gains it.
#[utoipa::path(
    put, path = "/api/v1/groups/{group_id}/permissions/{perm}", tag = "groups",
    operation_id = "grant_group_permission",
    params(
        ("group_id" = i64, Path, description = "The group's id"),
        ("perm" = String, Path, description = "`app_label.codename`",
         pattern = r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$"),
    ),
    responses(
        (status = 200, description = "Granted", body = Revised<GroupGrantJson>),
        (status = 404, description = "No such group or permission", body = ErrorBody),
        (status = 409, description = "A promotion track's rule would break", body = ErrorBody),
    )
)]
pub async fn grant_group_permission(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Revised<GroupGrantJson>>> {
    group_grant(&state, &current, path, true).await
}

/// Revokes a permission from the group: as for a grant, the caller must hold it.
#[utoipa::path(
    delete, path = "/api/v1/groups/{group_id}/permissions/{perm}", tag = "groups",
    operation_id = "revoke_group_permission",
    params(
        ("group_id" = i64, Path, description = "The group's id"),
        ("perm" = String, Path, description = "`app_label.codename`",
         pattern = r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$"),
    ),
    responses(
        (status = 200, description = "Revoked", body = Revised<GroupGrantJson>),
        (status = 404, description = "No such group or permission", body = ErrorBody),
        (status = 409, description = "A promotion track's rule would break", body = ErrorBody),
    )
)]
pub async fn revoke_group_permission(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Revised<GroupGrantJson>>> {
    group_grant(&state, &current, path, false).await
}
