//! Admin pages for users: search, the user page, creating and changing users,
//! and everyone's own password page.

use std::collections::BTreeMap;

use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::{existing_permission, flash_outcome, group_permission_map, may_grant, web_actor};
use crate::{
    Error, Result,
    accounts::{
        Email, NewPassword, Username, groups, parse_display_name, password,
        users::{self, NewUser, UserFilter, UserSort},
    },
    audit::{self, AuditFilter},
    permissions::{
        catalog, effective,
        grants::{self, Grantee},
    },
    web::{
        AppState,
        auth::{self, SignedIn, Viewer, flash},
        page::Page,
        templates::render,
    },
};

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Serialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    group: String,
    /// "", "yes" or "no"
    #[serde(default)]
    active: String,
    #[serde(default)]
    staff: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    after: String,
}

fn yes_no(raw: &str) -> Option<bool> {
    match raw {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Response> {
    let sort = UserSort::parse(&query.sort).unwrap_or_default();
    let filter = UserFilter {
        search: Some(query.q.clone()).filter(|q| !q.trim().is_empty()),
        group: Some(query.group.clone()).filter(|g| !g.is_empty()),
        is_active: yes_no(&query.active),
        is_staff: yes_no(&query.staff),
        sort,
        after: Some(query.after.clone()).filter(|a| !a.is_empty()),
        limit: PAGE_SIZE,
    };
    let mut conn = state.ladder.db.acquire().await?;
    let found = users::list(&mut conn, state.ladder.db.backend(), &filter).await?;
    let group_names = groups::names(&mut conn).await?;
    drop(conn);
    let next_query = found.next.as_ref().map(|next| {
        serde_urlencoded::to_string([
            ("q", query.q.as_str()),
            ("group", &query.group),
            ("active", &query.active),
            ("staff", &query.staff),
            ("sort", sort.as_str()),
            ("after", next),
        ])
        .unwrap_or_default()
    });
    let page = Page::new(&state, &viewer, &session).await?;
    let users: Vec<_> = found.users.iter().map(user_row).collect();
    Ok(render(
        "admin/users.html",
        crate::ctx! { page, users, query, sort => sort.as_str(), group_names, next_query },
    )?
    .into_response())
}

#[derive(Serialize)]
struct UserRow {
    username: String,
    email: String,
    display_name: String,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    date_joined: i64,
    last_login: Option<i64>,
}

fn user_row(u: &users::User) -> UserRow {
    UserRow {
        username: u.username.clone(),
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        is_active: u.is_active,
        is_staff: u.is_staff,
        is_superuser: u.is_superuser,
        date_joined: u.created_at,
        last_login: u.last_login,
    }
}

#[derive(Serialize)]
struct EffectiveRow {
    permission: String,
    sources: Vec<String>,
}

#[derive(Serialize)]
struct GroupOption {
    group_id: i64,
    name: String,
    member: bool,
    grantable: bool,
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let user = users::get_by_username(&mut conn, &username).await?;
    let member_of = users::group_names(&mut conn, user.user_id).await?;
    let direct = catalog::of_user(&mut conn, user.user_id).await?;
    let eff = effective::load(&mut conn, user.user_id).await?;
    let all = catalog::all(&mut conn).await?;
    let group_perms = group_permission_map(&mut conn).await?;
    let all_groups = groups::list(&mut conn).await?;
    let events = audit::list(
        &mut conn,
        &AuditFilter {
            user_id: Some(user.user_id),
            limit: 20,
            ..Default::default()
        },
    )
    .await?;
    drop(conn);

    let effective_rows: Vec<EffectiveRow> = if eff.is_active && eff.is_superuser {
        all.iter()
            .map(|p| EffectiveRow {
                permission: p.name().to_string(),
                sources: eff
                    .explain(p.name().as_str())
                    .sources
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect()
    } else {
        eff.granted()
            .iter()
            .map(|(name, vias)| EffectiveRow {
                permission: name.to_string(),
                sources: vias.iter().map(ToString::to_string).collect(),
            })
            .collect()
    };
    let direct_names: Vec<String> = direct.iter().map(|p| p.name().to_string()).collect();
    // Offer only what this viewer could actually grant.
    let grantable: Vec<String> = all
        .iter()
        .map(|p| p.name().to_string())
        .filter(|p| !direct_names.contains(p) && may_grant(&current, p))
        .collect();
    let group_options: Vec<GroupOption> = all_groups
        .iter()
        .map(|g| GroupOption {
            group_id: g.group_id,
            name: g.name.clone(),
            member: member_of.contains(&g.name),
            grantable: group_perms
                .get(&g.group_id)
                .is_none_or(|perms| perms.iter().all(|p| may_grant(&current, p))),
        })
        .collect();
    let is_self = current.user.user_id == user.user_id;
    let can_change = current.has_perm("auth.change_user")
        && (current.user.is_superuser || (!is_self && !user.is_superuser));
    let events: Vec<_> = events.iter().map(super::audit::event_row).collect();
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render(
        "admin/user.html",
        crate::ctx! {
            page,
            user => user_row(&user),
            has_password => user.password_hash.is_some(),
            member_of,
            direct => direct_names,
            effective => effective_rows,
            grantable,
            group_options,
            can_change,
            can_set_staff => current.user.is_superuser,
            events,
        },
    )?
    .into_response())
}

#[derive(Deserialize, Serialize, Default)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    staff: Option<String>,
}

async fn new_user_page(
    state: &AppState,
    viewer: &Viewer,
    session: &Session,
    form: &NewUserForm,
    errors: BTreeMap<&'static str, String>,
) -> Result<Response> {
    let page = Page::new(state, viewer, session).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = render(
        "admin/user_new.html",
        crate::ctx! {
            page,
            username => form.username, email => form.email, display_name => form.display_name,
            staff => form.staff.is_some(), errors,
        },
    )?;
    Ok((status, body).into_response())
}

pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    new_user_page(
        &state,
        &viewer,
        &session,
        &NewUserForm::default(),
        BTreeMap::new(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Form(form): Form<NewUserForm>,
) -> Result<Response> {
    // Collect every field's problem at once, so the form shows them all.
    let mut errors = BTreeMap::new();
    let username = Username::parse(form.username.trim())
        .map_err(|e| note(&mut errors, e))
        .ok();
    let email = Email::parse(&form.email)
        .map_err(|e| note(&mut errors, e))
        .ok();
    let display_name = parse_display_name(&form.display_name)
        .map_err(|e| note(&mut errors, e))
        .ok();
    let pw = if form.password.is_empty() {
        None
    } else {
        NewPassword::parse(&form.password, form.username.trim())
            .map_err(|e| note(&mut errors, e))
            .ok()
    };
    let (Some(username), Some(email), Some(display_name), true) =
        (username, email, display_name, errors.is_empty())
    else {
        return new_user_page(&state, &viewer, &session, &form, errors).await;
    };
    let password = match pw {
        Some(pw) => Some(pw.hash().await?),
        None => None,
    };
    let new = NewUser {
        username,
        email,
        display_name,
        password,
        is_staff: form.staff.is_some(),
    };
    let mut tx = state.ladder.db.begin().await?;
    let created = users::create(&mut tx, &web_actor(&current), new, state.ladder.clock.now()).await;
    let user = match created {
        Ok(user) => user,
        Err(Error::Conflict(message)) => {
            errors.insert("username", message);
            return new_user_page(&state, &viewer, &session, &form, errors).await;
        }
        Err(e @ Error::Forbidden(_)) => {
            errors.insert("staff", e.to_string());
            return new_user_page(&state, &viewer, &session, &form, errors).await;
        }
        Err(e) => return Err(e),
    };
    tx.commit().await?;
    flash(
        &session,
        "success",
        format!("User {} created.", user.username),
    )
    .await?;
    Ok(Redirect::to(&user_url(&user.username)).into_response())
}

fn note(errors: &mut BTreeMap<&'static str, String>, e: Error) {
    if let Error::Invalid { field, message } = e {
        errors.insert(field, message);
    }
}

fn user_url(username: &str) -> String {
    let encoded: String = serde_urlencoded::to_string([("", username)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .to_string();
    format!("/admin/users/{encoded}")
}

#[derive(Deserialize)]
pub struct GroupChange {
    group_id: i64,
    action: String,
}

pub async fn change_group(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<GroupChange>,
) -> Result<Response> {
    change_user(&state, &session, &username, async |conn, user| {
        let group = groups::get_by_id(conn, form.group_id).await?;
        let actor = web_actor(&current);
        let now = state.ladder.clock.now();
        Ok(match form.action.as_str() {
            "add" => {
                if groups::add_member(conn, &actor, &group, user, now).await? {
                    format!("Added {} to {}.", user.username, group.name)
                } else {
                    format!("{} was already in {}.", user.username, group.name)
                }
            }
            "remove" => {
                groups::remove_member(conn, &actor, &group, user, now).await?;
                format!("Removed {} from {}.", user.username, group.name)
            }
            _ => return Err(Error::invalid("action", "must be add or remove")),
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct PermissionChange {
    permission: String,
    action: String,
}

pub async fn change_permission(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<PermissionChange>,
) -> Result<Response> {
    change_user(&state, &session, &username, async |conn, user| {
        let perm = existing_permission(conn, &form.permission).await?;
        let actor = web_actor(&current);
        let now = state.ladder.clock.now();
        let perms = [perm.clone()];
        Ok(match form.action.as_str() {
            "grant" => {
                grants::grant(conn, &actor, Grantee::User(user), &perms, now).await?;
                format!("Granted {perm} to {}.", user.username)
            }
            "revoke" => {
                grants::revoke(conn, &actor, Grantee::User(user), &perms, now).await?;
                format!("Revoked {perm} from {}.", user.username)
            }
            _ => return Err(Error::invalid("action", "must be grant or revoke")),
        })
    })
    .await
}

/// The confirmation page before deactivating (or reactivating).
pub async fn active_form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
    Path(username): Path<String>,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let user = users::get_by_username(&mut conn, &username).await?;
    drop(conn);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render(
        "admin/user_active.html",
        crate::ctx! { page, user => user_row(&user) },
    )?
    .into_response())
}

#[derive(Deserialize)]
pub struct FlagForm {
    value: String,
}

pub async fn set_active(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<FlagForm>,
) -> Result<Response> {
    let active = form.value == "true";
    change_user(&state, &session, &username, async |conn, user| {
        users::set_active(
            conn,
            &web_actor(&current),
            user,
            active,
            state.ladder.clock.now(),
        )
        .await?;
        Ok(if active {
            format!("{} can sign in again.", user.username)
        } else {
            format!(
                "{} is deactivated: they hold no permissions and are signed out.",
                user.username
            )
        })
    })
    .await
}

pub async fn set_staff(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<FlagForm>,
) -> Result<Response> {
    let staff = form.value == "true";
    change_user(&state, &session, &username, async |conn, user| {
        users::set_staff(
            conn,
            &web_actor(&current),
            user,
            staff,
            state.ladder.clock.now(),
        )
        .await?;
        Ok(format!(
            "{} is {}staff.",
            user.username,
            if staff { "now " } else { "no longer " }
        ))
    })
    .await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

pub async fn set_password(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Path(username): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response> {
    let user = {
        let mut conn = state.ladder.db.acquire().await?;
        users::get_by_username(&mut conn, &username).await?
    };
    let hashed = match NewPassword::parse(&form.password, &user.username) {
        Ok(pw) => Ok(pw.hash().await?),
        Err(e) => Err(e),
    };
    let mut tx = state.ladder.db.begin().await?;
    let outcome = async {
        // Judged on the account as it is inside the transaction.
        let user = users::get_by_username(&mut tx, &username).await?;
        users::set_password(
            &mut tx,
            &web_actor(&current),
            &user,
            hashed?,
            state.ladder.clock.now(),
        )
        .await?;
        Ok(format!(
            "Password set for {}; their other sessions have ended.",
            user.username
        ))
    }
    .await;
    if outcome.is_ok() {
        tx.commit().await?;
        if user.user_id == current.user.user_id {
            // The superuser set their own password here: keep this session.
            let mut conn = state.ladder.db.acquire().await?;
            if let Some(updated) = users::find_by_id(&mut conn, user.user_id).await? {
                auth::sign_in(&state, &session, &updated).await?;
            }
        }
    }
    flash_outcome(&session, outcome).await?;
    Ok(Redirect::to(&user_url(&user.username)).into_response())
}

#[derive(Deserialize, Default)]
pub struct OwnPasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn own_password_page(
    state: &AppState,
    viewer: &Viewer,
    session: &Session,
    errors: BTreeMap<&'static str, String>,
) -> Result<Response> {
    let page = Page::new(state, viewer, session).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        render("account_password.html", crate::ctx! { page, errors })?,
    )
        .into_response())
}

pub async fn own_password_form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    own_password_page(&state, &viewer, &session, BTreeMap::new()).await
}

/// Anyone may change their own password, knowing the current one. Their
/// other sessions end; this one continues.
pub async fn own_password(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Form(form): Form<OwnPasswordForm>,
) -> Result<Response> {
    // Guessing the current password from a borrowed session is limited as
    // sign-in is: every attempt counts, per user, across instances.
    let limit = state.ladder.settings.server.login_attempts_per_minute;
    let keys = [format!("password:{}", current.user.user_id)];
    let mut tx = state.ladder.db.begin().await?;
    let wait =
        crate::accounts::sign_in::rate_limit(&mut tx, &keys, limit, state.ladder.clock.now())
            .await?;
    tx.commit().await?;
    if let Some(wait) = wait {
        return Err(Error::RateLimited(wait));
    }
    let mut errors = BTreeMap::new();
    let stored = current.user.password_hash.clone();
    let given = form.current.clone();
    let ok = tokio::task::spawn_blocking(move || password::verify(&given, stored.as_deref()))
        .await
        .map_err(|e| anyhow::anyhow!("password check: {e}"))?;
    if !ok {
        errors.insert("current", "That is not your current password.".to_string());
    }
    let new = NewPassword::parse(&form.new, &current.user.username)
        .map_err(|e| note(&mut errors, e))
        .ok();
    if form.new != form.confirm {
        errors.insert("confirm", "The two new passwords differ.".to_string());
    }
    let (Some(new), true) = (new, errors.is_empty()) else {
        return own_password_page(&state, &viewer, &session, errors).await;
    };
    let hash = new.hash().await?;
    let mut tx = state.ladder.db.begin().await?;
    let updated = users::change_own_password(
        &mut tx,
        &web_actor(&current),
        &current.user,
        hash,
        state.ladder.clock.now(),
    )
    .await?;
    tx.commit().await?;
    auth::sign_in(&state, &session, &updated).await?;
    flash(
        &session,
        "success",
        "Password changed. Your other sessions have ended.",
    )
    .await?;
    Ok(Redirect::to("/").into_response())
}

/// One change to the user named `username`, in one write transaction: it is
/// committed if `change` succeeds; either way the outcome is shown on the
/// user's page, where this redirects.
async fn change_user(
    state: &AppState,
    session: &Session,
    username: &str,
    change: impl AsyncFnOnce(&mut crate::db::Conn, &users::User) -> Result<String>,
) -> Result<Response> {
    let mut tx = state.ladder.db.begin().await?;
    let user = users::get_by_username(&mut tx, username).await?;
    let outcome = change(&mut tx, &user).await;
    if outcome.is_ok() {
        tx.commit().await?;
    }
    flash_outcome(session, outcome).await?;
    Ok(Redirect::to(&user_url(&user.username)).into_response())
}
