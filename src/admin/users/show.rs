//! A user's page: profile, groups, direct and effective permissions, and
//! the forms the viewer may use.

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tower_sessions::Session;

use super::user_row;
use crate::admin::{group_permission_map, may_grant};
use crate::{
    Result,
    accounts::{groups, users},
    audit::{self, AuditFilter},
    permissions::{catalog, effective},
    web::{
        AppState,
        auth::{SignedIn, Viewer},
        page::Page,
        templates::render,
    },
};

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
    let events: Vec<_> = events.iter().map(crate::admin::audit::event_row).collect();
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
