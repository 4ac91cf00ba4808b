//! Admin pages for groups: list, create, rename, delete, permissions, members.

use crate::web::error::Id;
use std::collections::BTreeSet;

use axum::{
    Form,
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::web_actor;
use crate::web::outcome::flash_outcome;
use crate::{
    Error, Result,
    accounts::{GroupName, groups, users},
    permissions::{
        catalog,
        checklist::{Checklist, ChecklistChange},
        delegation::{self, Change},
        grants::{self, Grantee},
    },
    promotions::group_changes,
    web::{
        auth::{SignedIn, Viewer, flash},
        page::Page,
        state::AppState,
        templates::render,
    },
};

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let all: Vec<GroupRow> = groups::list(&mut conn)
        .await?
        .into_iter()
        .map(|g| GroupRow {
            group_id: g.group_id,
            name: g.name,
            members: g.members,
            permissions: g.permissions,
        })
        .collect();
    drop(conn);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render("admin/groups.html", crate::ctx! { page, groups => all })?.into_response())
}

#[derive(Serialize)]
struct GroupRow {
    group_id: i64,
    name: String,
    members: i64,
    permissions: i64,
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Form(form): Form<NameForm>,
) -> Result<Response> {
    let mut tx = state.ladder.db.begin().await?;
    let created = async {
        let name = GroupName::parse(&form.name)?;
        groups::create(
            &mut tx,
            &web_actor(&current),
            &name,
            state.ladder.clock.now(),
        )
        .await
    }
    .await;
    match created {
        Ok(group) => {
            tx.commit().await?;
            flash(
                &session,
                "success",
                format!("Group {} created.", group.name),
            )
            .await?;
            Ok(Redirect::to(&format!("/admin/groups/{}", group.group_id)).into_response())
        }
        Err(e) => {
            flash_outcome(&session, Err(e)).await?;
            Ok(Redirect::to("/admin/groups").into_response())
        }
    }
}

#[derive(Deserialize, Serialize, Default)]
pub struct ShowQuery {
    /// Filters the permission checklist.
    #[serde(default)]
    perm_q: String,
    /// Filters the member list.
    #[serde(default)]
    member_q: String,
}

#[derive(Serialize)]
struct PermissionOption {
    name: String,
    human: String,
    checked: bool,
    /// The viewer could change it (grant it, or revoke it) under delegation.
    changeable: bool,
}

#[derive(Serialize)]
struct AppSection {
    app: String,
    permissions: Vec<PermissionOption>,
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    SignedIn(current): SignedIn,
    session: Session,
    Id(group_id): Id,
    Query(query): Query<ShowQuery>,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let group = groups::get_by_id(&mut conn, group_id).await?;
    let held: BTreeSet<String> = catalog::of_group(&mut conn, group_id)
        .await?
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    let all = catalog::all(&mut conn).await?;
    let member_count = groups::member_count(&mut conn, group_id).await?;
    let members: Vec<String> = groups::members(&mut conn, group_id, query.member_q.trim(), 200)
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    drop(conn);

    let filter = query.perm_q.trim().to_lowercase();
    let mut sections: Vec<AppSection> = Vec::new();
    for p in all {
        let name = p.name().to_string();
        if !filter.is_empty()
            && !name.to_lowercase().contains(&filter)
            && !p.name.to_lowercase().contains(&filter)
        {
            continue;
        }
        let option = PermissionOption {
            checked: held.contains(&name),
            // The delegation rule as a dry run: offered exactly when accepted.
            changeable: delegation::allows(
                &current.perms,
                &Change::GroupPerms {
                    group: &group.name,
                    perms: &[p.name()],
                },
            ),
            human: p.name.clone(),
            name,
        };
        match sections.last_mut() {
            Some(s) if s.app == p.app_label => s.permissions.push(option),
            _ => sections.push(AppSection {
                app: p.app_label.clone(),
                permissions: vec![option],
            }),
        }
    }
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render(
        "admin/group.html",
        crate::ctx! {
            page,
            group_id => group.group_id,
            name => group.name,
            sections,
            members,
            member_count,
            query,
        },
    )?
    .into_response())
}

pub async fn rename(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(group_id): Id,
    Form(form): Form<NameForm>,
) -> Result<Response> {
    let mut tx = state.ladder.db.begin().await?;
    let outcome = async {
        let group = groups::get_by_id(&mut tx, group_id).await?;
        let name = GroupName::parse(&form.name)?;
        let renamed = group_changes::rename_group(
            &mut tx,
            &web_actor(&current),
            &group,
            &name,
            state.ladder.clock.now(),
        )
        .await?;
        Ok(format!("Renamed {} to {}.", group.name, renamed.name))
    }
    .await;
    if outcome.is_ok() {
        tx.commit().await?;
    }
    flash_outcome(&session, outcome).await?;
    Ok(Redirect::to(&format!("/admin/groups/{group_id}")).into_response())
}

/// The checklist posts every shown permission as `shown` and every ticked one
/// as `perm`; only shown permissions change, so a filtered list revokes nothing hidden.
pub async fn set_permissions(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(group_id): Id,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let checklist = Checklist::from_fields(&fields);
    let mut tx = state.ladder.db.begin().await?;
    let outcome = async {
        let group = groups::get_by_id(&mut tx, group_id).await?;
        let held: BTreeSet<String> = catalog::of_group(&mut tx, group_id)
            .await?
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        let ChecklistChange {
            grant: to_grant,
            revoke: to_revoke,
        } = checklist.against(&held)?;
        let actor = web_actor(&current);
        let now = state.ladder.clock.now();
        if !to_grant.is_empty() {
            grants::grant(&mut tx, &actor, Grantee::Group(&group), &to_grant, now).await?;
        }
        if !to_revoke.is_empty() {
            grants::revoke(&mut tx, &actor, Grantee::Group(&group), &to_revoke, now).await?;
        }
        Ok(match (to_grant.len(), to_revoke.len()) {
            (0, 0) => "Nothing changed.".to_string(),
            (g, r) => format!("Saved {}: {g} granted, {r} revoked.", group.name),
        })
    }
    .await;
    if outcome.is_ok() {
        tx.commit().await?;
    }
    flash_outcome(&session, outcome).await?;
    Ok(Redirect::to(&format!("/admin/groups/{group_id}")).into_response())
}

#[derive(Deserialize)]
pub struct MemberForm {
    username: String,
    action: String,
}

pub async fn change_member(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(group_id): Id,
    Form(form): Form<MemberForm>,
) -> Result<Response> {
    let mut tx = state.ladder.db.begin().await?;
    let outcome = async {
        let group = groups::get_by_id(&mut tx, group_id).await?;
        let user = users::get_by_username(&mut tx, form.username.trim()).await?;
        let actor = web_actor(&current);
        let now = state.ladder.clock.now();
        Ok(match form.action.as_str() {
            "add" => {
                if groups::add_member(&mut tx, &actor, &group, &user, now).await? {
                    format!("Added {} to {}.", user.username, group.name)
                } else {
                    format!("{} is already in {}.", user.username, group.name)
                }
            }
            "remove" => {
                groups::remove_member(&mut tx, &actor, &group, &user, now).await?;
                format!("Removed {} from {}.", user.username, group.name)
            }
            _ => return Err(Error::invalid("action", "must be add or remove")),
        })
    }
    .await;
    if outcome.is_ok() {
        tx.commit().await?;
    }
    flash_outcome(&session, outcome).await?;
    Ok(Redirect::to(&format!("/admin/groups/{group_id}")).into_response())
}

pub async fn delete_form(
    State(state): State<AppState>,
    viewer: Viewer,
    session: Session,
    Id(group_id): Id,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let group = groups::get_by_id(&mut conn, group_id).await?;
    let member_count = groups::member_count(&mut conn, group_id).await?;
    drop(conn);
    let page = Page::new(&state, &viewer, &session).await?;
    Ok(render(
        "admin/group_delete.html",
        crate::ctx! { page, group_id, name => group.name, member_count },
    )?
    .into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    session: Session,
    Id(group_id): Id,
) -> Result<Response> {
    let mut tx = state.ladder.db.begin().await?;
    let group = groups::get_by_id(&mut tx, group_id).await?;
    let outcome = group_changes::delete_group(
        &mut tx,
        &web_actor(&current),
        &group,
        state.ladder.clock.now(),
    )
    .await
    .map(|_| format!("Group {} deleted.", group.name));
    let ok = outcome.is_ok();
    if ok {
        tx.commit().await?;
    }
    flash_outcome(&session, outcome).await?;
    let back = if ok {
        "/admin/groups".to_string()
    } else {
        format!("/admin/groups/{group_id}")
    };
    Ok(Redirect::to(&back).into_response())
}
