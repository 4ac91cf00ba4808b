//! A user's page: profile, groups, direct and effective permissions, and
//! the forms the viewer may use.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::user_row;
use crate::{
    Result,
    accounts::{
        User,
        groups::{self, GroupSummary},
        tokens, users,
    },
    permissions::{
        EffectivePermissions, PermissionName,
        catalog::{self, Permission},
        delegation::{self, Change},
        effective,
    },
    web::{
        account_tokens::token_rows,
        page::Page,
        state::AppState,
        templates::render,
        viewer::{CurrentUser, SignedIn},
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
    page: Page,
    SignedIn(current): SignedIn,
    Path(username): Path<String>,
) -> Result<Response> {
    let facts = Facts::read(&state, &username).await?;
    let offers = offers(&current, &facts);
    let user = &facts.user;
    let ctx = crate::ctx! {
        page,
        user => user_row(user),
        has_password => user.password_hash.is_some(),
        member_of => &facts.member_of,
        direct => &facts.direct,
        effective => effective_rows(&facts.effective, &facts.all),
        grantable => offers.grantable,
        group_options => offers.groups,
        can_change => offers.can_change,
        can_set_staff => current.user.is_superuser,
        events => &facts.events,
        tokens => token_rows(&facts.tokens, state.ladder.clock.now()),
        can_revoke_tokens => tokens::viewer_may_manage(&current.perms, user, &facts.effective),
    };
    Ok(render("admin/user.html", ctx)?.into_response())
}

/// What the page shows about one user, read on one connection.
struct Facts {
    user: User,
    member_of: Vec<String>,
    /// Names of the permissions granted to the user directly.
    direct: Vec<String>,
    effective: EffectivePermissions,
    all: Vec<Permission>,
    group_perms: BTreeMap<i64, Vec<String>>,
    all_groups: Vec<GroupSummary>,
    events: Vec<crate::admin::audit::EventRow>,
    tokens: Vec<tokens::Token>,
}

impl Facts {
    async fn read(state: &AppState, username: &str) -> Result<Facts> {
        let mut conn = state.ladder.db.acquire().await?;
        let user = users::get_by_username(&mut conn, username).await?;
        let direct = catalog::of_user(&mut conn, user.user_id).await?;
        Ok(Facts {
            member_of: users::group_names(&mut conn, user.user_id).await?,
            direct: direct.iter().map(|p| p.name().to_string()).collect(),
            effective: effective::load(&mut conn, user.user_id).await?,
            all: catalog::all(&mut conn).await?,
            group_perms: catalog::by_group(&mut conn).await?,
            all_groups: groups::list(&mut conn).await?,
            events: crate::admin::audit::recent(&mut conn, user.user_id).await?,
            tokens: tokens::of_user(&mut conn, user.user_id).await?,
            user,
        })
    }
}

/// Each permission the user holds with where it comes from; an active
/// superuser holds every one.
fn effective_rows(eff: &EffectivePermissions, all: &[Permission]) -> Vec<EffectiveRow> {
    if eff.is_active && eff.is_superuser {
        return all
            .iter()
            .map(|p| EffectiveRow {
                permission: p.name().to_string(),
                sources: (eff.explain(p.name().as_str()).sources.iter())
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect();
    }
    eff.granted()
        .iter()
        .map(|(name, vias)| EffectiveRow {
            permission: name.to_string(),
            sources: vias.iter().map(ToString::to_string).collect(),
        })
        .collect()
}

/// What the viewer may do to `user`, asked of the delegation rule as a dry
/// run, so the page offers exactly what the change would accept.
struct Offers {
    grantable: Vec<String>,
    groups: Vec<GroupOption>,
    can_change: bool,
}

fn offers(current: &CurrentUser, facts: &Facts) -> Offers {
    let Facts {
        user,
        all,
        direct,
        all_groups,
        group_perms,
        member_of,
        ..
    } = facts;
    let allows = |change: Change<'_>| delegation::allows(&current.perms, &change);
    let names = |perms: &[String]| -> Vec<PermissionName> {
        perms
            .iter()
            .filter_map(|p| PermissionName::parse(p).ok())
            .collect()
    };
    let grantable = all
        .iter()
        .map(|p| p.name())
        .filter(|p| !direct.iter().any(|d| d == p.as_str()))
        .filter(|p| {
            allows(Change::UserPerms {
                target: user,
                perms: std::slice::from_ref(p),
            })
        })
        .map(|p| p.to_string())
        .collect();
    let groups = all_groups
        .iter()
        .map(|g| {
            let group_perms = names(group_perms.get(&g.group_id).map_or(&[][..], Vec::as_slice));
            GroupOption {
                group_id: g.group_id,
                name: g.name.clone(),
                member: member_of.contains(&g.name),
                grantable: allows(Change::Membership {
                    target: user,
                    group: &g.name,
                    group_perms: &group_perms,
                }),
            }
        })
        .collect();
    Offers {
        grantable,
        groups,
        can_change: allows(Change::UserPerms {
            target: user,
            perms: &[],
        }),
    }
}
