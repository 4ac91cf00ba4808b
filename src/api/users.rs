//! `/api/v1/users`: list (the admin console's search), get, create, update,
//! set a password. Each change is the console's own domain transaction, so
//! the delegation rules and the audit log apply exactly as there; the
//! actor is the token (or session) with source `api`.

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
    paging::{Page, PageQuery, cursor_of},
    revised::{self, Revised},
};
use crate::{
    Result,
    accounts::{
        Email, Group, NewPassword, User, Username, groups, parse_display_name,
        user_changes::{CreateUser, SetPassword, UpdateUser, UserUpdate},
        users::{self, NewUser, Profile, UserFilter, UserSort},
    },
    clock::rfc3339,
    permissions::catalog,
    web::{error::ApiJson, state::AppState, viewer::SignedIn},
};

/// A user as every answer shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserJson {
    pub username: String,
    pub email: String,
    pub display_name: String,
    /// An inactive user holds no permissions and cannot sign in.
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// A service account: holds API tokens for other apps, never a password.
    pub is_service: bool,
    /// When the account was made (RFC 3339).
    pub date_joined: String,
    /// The last sign-in with a password (RFC 3339), if any.
    pub last_login: Option<String>,
}

impl From<&User> for UserJson {
    fn from(u: &User) -> UserJson {
        UserJson {
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            is_active: u.is_active,
            is_staff: u.is_staff,
            is_superuser: u.is_superuser,
            is_service: u.is_service,
            date_joined: rfc3339(u.created_at),
            last_login: u.last_login.map(rfc3339),
        }
    }
}

/// A group as other answers name it: its id (which paths take) and name.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRefJson {
    pub id: i64,
    pub name: String,
}

impl From<&Group> for GroupRefJson {
    fn from(g: &Group) -> GroupRefJson {
        GroupRefJson {
            id: g.group_id,
            name: g.name.clone(),
        }
    }
}

/// One user with their groups and direct permissions.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserJson,
    /// The groups they belong to, by name.
    pub groups: Vec<GroupRefJson>,
    /// The permissions granted to them directly (not through a group), sorted.
    pub permissions: Vec<String>,
}

/// The API's path of a user.
pub fn user_location(username: &str) -> String {
    let encoded: String = serde_urlencoded::to_string([("", username)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .to_string();
    format!("/api/v1/users/{encoded}")
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Case-insensitive: a substring of the username, email or display
    /// name; one or two characters match a username prefix.
    q: Option<String>,
    /// Only members of the group of this name.
    group: Option<String>,
    /// Only active (`true`) or inactive (`false`) users.
    active: Option<bool>,
    /// Only staff (`true`) or non-staff (`false`) users.
    staff: Option<bool>,
}

/// Users by username, searched and filtered as in the admin console.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users", operation_id = "list_users",
    params(UserListQuery, PageQuery),
    responses((status = 200, description = "One page of users, by username", body = Page<UserJson>))
)]
pub async fn list_users(
    State(state): State<AppState>,
    Query(q): Query<UserListQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<UserJson>>> {
    let filter = UserFilter {
        search: q.q.filter(|q| !q.trim().is_empty()),
        group: q.group.filter(|g| !g.is_empty()),
        is_active: q.active,
        is_staff: q.staff,
        sort: UserSort::Username,
        after: page.after::<String>()?,
        limit: page.limit()?,
    };
    let mut conn = state.ladder.db.acquire().await?;
    let found = users::list(&mut conn, state.ladder.db.backend(), &filter).await?;
    Ok(Json(Page {
        items: found.users.iter().map(UserJson::from).collect(),
        next: found.next.map(|key| cursor_of(&key)),
    }))
}

/// One user, with their groups and direct permissions.
#[utoipa::path(
    get, path = "/api/v1/users/{username}", tag = "users", operation_id = "get_user",
    params(("username" = String, Path, description = "The username (any case)")),
    responses(
        (status = 200, description = "The user", body = UserDetail),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> ApiResult<Json<UserDetail>> {
    let mut conn = state.ladder.db.acquire().await?;
    let user = users::get_by_username(&mut conn, &username).await?;
    let groups = groups::of_user(&mut conn, user.user_id).await?;
    let permissions = catalog::of_user(&mut conn, user.user_id).await?;
    let mut permissions: Vec<String> = permissions.iter().map(|p| p.name().to_string()).collect();
    permissions.sort();
    Ok(Json(UserDetail {
        user: UserJson::from(&user),
        groups: groups.iter().map(GroupRefJson::from).collect(),
        permissions,
    }))
}

fn yes() -> bool {
    true
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// 1–150 letters, digits and `@.+-_`; unique regardless of case.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 150)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    /// At least 10 characters, not all digits, not the username. Without
    /// one the user cannot sign in until one is set.
    #[schema(min_length = 10)]
    password: Option<String>,
    /// Only the superuser may make staff.
    #[serde(default)]
    is_staff: bool,
    /// Default true; false makes the account deactivated from the start.
    #[serde(default = "yes")]
    is_active: bool,
}

impl NewUserBody {
    /// The new user, its password hashed (before any transaction opens).
    async fn parse(self) -> Result<NewUser> {
        let username = Username::parse(self.username.trim())?;
        let email = Email::parse(&self.email)?;
        let display_name = parse_display_name(&self.display_name)?;
        let password = match self.password {
            Some(given) => Some(
                NewPassword::parse(&given, username.as_str())?
                    .hash()
                    .await?,
            ),
            None => None,
        };
        Ok(NewUser {
            username,
            email,
            display_name,
            password,
            is_staff: self.is_staff,
            is_service: false,
        })
    }
}

/// Creates a user: `auth.add_user` (and `auth.change_user`, as in the
/// console); only the superuser may make staff.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users", operation_id = "create_user",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created; Location is the user's path", body = Revised<UserJson>,
         headers(("Location" = String, description = "/api/v1/users/{username}"))),
        (status = 409, description = "The username is taken", body = ErrorBody),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    ApiJson(body): ApiJson<NewUserBody>,
) -> ApiResult<Response> {
    let active = body.is_active;
    let new = body.parse().await?;
    let change = CreateUser {
        actor: current.api_actor(),
        new,
        active,
        now: state.ladder.clock.now(),
    };
    let created = revised::run(&state, change).await?;
    let location = user_location(&created.value.username);
    let answer = created.map(|user| UserJson::from(&user));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(answer),
    )
        .into_response())
}

/// The fields to change; each one given is set, all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    display_name: Option<String>,
    email: Option<String>,
    /// Deactivating or reactivating acts on the account: `auth.change_user`
    /// and every permission the user holds.
    is_active: Option<bool>,
    /// Only the superuser may set or clear it.
    is_staff: Option<bool>,
}

impl UserPatch {
    fn parse(self) -> Result<UserUpdate> {
        Ok(UserUpdate {
            profile: Profile {
                display_name: self
                    .display_name
                    .as_deref()
                    .map(parse_display_name)
                    .transpose()?,
                email: self.email.as_deref().map(Email::parse).transpose()?,
            },
            active: self.is_active,
            staff: self.is_staff,
        })
    }
}

/// Changes a user's display name, email, active or staff flag. The display
/// name and email act on the account (its mail goes there), under the same
/// rule as a password.
#[utoipa::path(
    patch, path = "/api/v1/users/{username}", tag = "users", operation_id = "update_user",
    params(("username" = String, Path, description = "The username (any case)")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user as changed", body = Revised<UserJson>),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The superuser cannot be deactivated", body = ErrorBody),
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> ApiResult<Json<Revised<UserJson>>> {
    let change = UpdateUser {
        actor: current.api_actor(),
        username,
        update: body.parse()?,
        now: state.ladder.clock.now(),
    };
    let updated = revised::run(&state, change).await?;
    Ok(Json(updated.map(|user| UserJson::from(&user))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// At least 10 characters, not all digits, not the username.
    #[serde(default)]
    #[schema(min_length = 10)]
    password: String,
}

/// Sets a user's password; their sessions end. Acting on the account:
/// `auth.change_user` and every permission they hold. A service account
/// cannot have one (409).
#[utoipa::path(
    put, path = "/api/v1/users/{username}/password", tag = "users", operation_id = "set_user_password",
    params(("username" = String, Path, description = "The username (any case)")),
    request_body = PasswordBody,
    responses(
        (status = 200, description = "Set", body = Revised<UserJson>),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "A service account never has a password", body = ErrorBody),
    )
)]
pub async fn set_user_password(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<Json<Revised<UserJson>>> {
    let password = NewPassword::parse(&body.password, &username)?
        .hash()
        .await?;
    let change = SetPassword {
        actor: current.api_actor(),
        username,
        password,
        now: state.ladder.clock.now(),
    };
    let user = revised::run(&state, change).await?;
    Ok(Json(user.map(|user| UserJson::from(&user))))
}
