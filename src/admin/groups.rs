//! Admin pages for groups: list, create, rename, delete, permissions, members.

use crate::web::error::Id;
use std::collections::BTreeSet;

use axum::{
    Form,
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::membership;
use crate::web::outcome::Changer;
use crate::{
    Result,
    accounts::{
        GroupName,
        group_changes::CreateGroup,
        groups::{self, GroupRef},
    },
    permissions::{
        catalog::{self, Permission},
        checklist::{Checklist, SetGroupPermissions},
        delegation::{self, Change},
    },
    promotions::group_changes::{DeleteGroup, RenameGroup},
    web::{
        outcome::flash_and_redirect,
        page::Page,
        state::AppState,
        templates::render,
        viewer::{CurrentUser, SignedIn},
    },
};

fn group_url(group_id: i64) -> String {
    format!("/admin/groups/{group_id}")
}

pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response> {
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

pub async fn create(c: Changer, Form(form): Form<NameForm>) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let created = async {
        let name = GroupName::parse(&form.name)?;
        let (actor, now) = (current.web_actor(), state.ladder.clock.now());
        state.ladder.db.run(CreateGroup { actor, name, now }).await
    }
    .await;
    let to = match &created {
        Ok(group) => group_url(group.group_id),
        Err(_) => "/admin/groups".to_string(),
    };
    let outcome = created.map(|group| format!("Group {} created.", group.name));
    flash_and_redirect(&session, outcome, &to).await
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
    page: Page,
    SignedIn(current): SignedIn,
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
    let sections = sections(all, &held, &query.perm_q, &current, &group.name);
    let ctx = crate::ctx! {
        page, group_id => group.group_id, name => group.name, sections, members, member_count, query,
    };
    Ok(render("admin/group.html", ctx)?.into_response())
}

/// The checklist by app, filtered by `filter`; each permission offered for
/// change exactly when the delegation rule, as a dry run, would accept it.
fn sections(
    all: Vec<Permission>,
    held: &BTreeSet<String>,
    filter: &str,
    current: &CurrentUser,
    group: &str,
) -> Vec<AppSection> {
    let filter = filter.trim().to_lowercase();
    let mut sections: Vec<AppSection> = Vec::new();
    for p in all {
        let name = p.name().to_string();
        if !filter.is_empty()
            && !name.to_lowercase().contains(&filter)
            && !p.name.to_lowercase().contains(&filter)
        {
            continue;
        }
        let perms = [p.name()];
        let option = PermissionOption {
            checked: held.contains(&name),
            changeable: delegation::allows(
                &current.perms,
                &Change::GroupPerms {
                    group,
                    perms: &perms,
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
    sections
}

pub async fn rename(c: Changer, Id(group_id): Id, Form(form): Form<NameForm>) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let outcome = async {
        let name = GroupName::parse(&form.name)?;
        let (actor, now) = (current.web_actor(), state.ladder.clock.now());
        let change = RenameGroup {
            actor,
            group_id,
            name,
            now,
        };
        let (group, renamed) = state.ladder.db.run(change).await?;
        Ok(format!("Renamed {} to {}.", group.name, renamed.name))
    }
    .await;
    flash_and_redirect(&session, outcome, &group_url(group_id)).await
}

/// The checklist posts every shown permission as `shown` and every ticked one
/// as `perm`; only shown permissions change, so a filtered list revokes nothing hidden.
pub async fn set_permissions(
    c: Changer,
    Id(group_id): Id,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let change = SetGroupPermissions {
        actor: current.web_actor(),
        group_id,
        checklist: Checklist::from_fields(&fields),
        now: state.ladder.clock.now(),
    };
    let outcome = state.ladder.db.run(change).await.map(|saved| {
        match (saved.granted.len(), saved.revoked.len()) {
            (0, 0) => "Nothing changed.".to_string(),
            (g, r) => format!("Saved {}: {g} granted, {r} revoked.", saved.group.name),
        }
    });
    flash_and_redirect(&session, outcome, &group_url(group_id)).await
}

#[derive(Deserialize)]
pub struct MemberForm {
    username: String,
    action: String,
}

pub async fn change_member(
    c: Changer,
    Id(group_id): Id,
    Form(form): Form<MemberForm>,
) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    let username = form.username.trim();
    let change = membership(
        &state,
        &current,
        GroupRef::Id(group_id),
        username,
        &form.action,
    );
    let outcome = change.await.map(|done| done.say("is"));
    flash_and_redirect(&session, outcome, &group_url(group_id)).await
}

pub async fn delete_form(
    State(state): State<AppState>,
    page: Page,
    Id(group_id): Id,
) -> Result<Response> {
    let mut conn = state.ladder.db.acquire().await?;
    let group = groups::get_by_id(&mut conn, group_id).await?;
    let member_count = groups::member_count(&mut conn, group_id).await?;
    drop(conn);
    Ok(render(
        "admin/group_delete.html",
        crate::ctx! { page, group_id, name => group.name, member_count },
    )?
    .into_response())
}

pub async fn delete(c: Changer, Id(group_id): Id) -> Result<Response> {
    let (state, current, session) = (c.state, c.current, c.session);
    // A group that is not there is a 404, not a refusal.
    groups::get_by_id(&mut *state.ladder.db.acquire().await?, group_id).await?;
    let (actor, now) = (current.web_actor(), state.ladder.clock.now());
    let outcome = state
        .ladder
        .db
        .run(DeleteGroup {
            actor,
            group_id,
            now,
        })
        .await;
    let back = match &outcome {
        Ok(_) => "/admin/groups".to_string(),
        Err(_) => group_url(group_id),
    };
    let outcome = outcome.map(|group| format!("Group {} deleted.", group.name));
    flash_and_redirect(&session, outcome, &back).await
}
