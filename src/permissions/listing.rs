//! Lists for the API: the permission catalog a page at a time, and who
//! holds one permission (Django's `users_with_perm`), a page at a time with
//! how each holds it. Keyset pages: each reads `limit + 1` rows after the
//! last key, so there is no OFFSET and no COUNT.

use std::collections::BTreeMap;

use super::{Via, catalog::Permission};
use crate::{Result, db::Binds, from_row};

/// Which permissions to list, and where the page starts.
#[derive(Debug, Default, Clone)]
pub struct CatalogFilter {
    /// Only this app (`app_label`), e.g. `blog`.
    pub app: Option<String>,
    /// Only this resource (Django's model), e.g. `post`.
    pub model: Option<String>,
    /// The (app_label, codename) of the previous page's last permission.
    pub after: Option<(String, String)>,
    pub limit: i64,
}

/// Up to `limit + 1` permissions by app and codename: the extra one only
/// says that there is a next page.
pub async fn catalog_page(
    sql: &mut dyn crate::db::Sql,
    filter: &CatalogFilter,
) -> Result<Vec<Permission>> {
    let mut binds = Binds::default();
    let mut query = "select permission_id, app_label, model, codename, name from permissions \
                     where 1 = 1"
        .to_string();
    if let Some(app) = &filter.app {
        query += &format!(" and app_label = {}", binds.text(app.clone()));
    }
    if let Some(model) = &filter.model {
        query += &format!(" and model = {}", binds.text(model.clone()));
    }
    if let Some((app, codename)) = &filter.after {
        let (a, c) = (binds.text(app.clone()), binds.text(codename.clone()));
        query += &format!(" and (app_label > {a} or (app_label = {a} and codename > {c}))");
    }
    let limit = binds.int(filter.limit + 1);
    query += &format!(" order by app_label, codename limit {limit}");
    sql.fetch_all(&query, binds.into_vec()).await
}

/// An active user who holds a permission, and every way they hold it
/// (superuser, direct, each group), in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub user_id: i64,
    pub username: String,
    /// The key the list is ordered and paged by (the folded username).
    pub username_key: String,
    pub display_name: String,
    pub via: Vec<Via>,
}

struct HolderRow {
    user_id: i64,
    username: String,
    username_key: String,
    display_name: String,
    is_superuser: bool,
    direct: bool,
}

from_row!(HolderRow {
    user_id,
    username,
    username_key,
    display_name,
    is_superuser,
    direct,
});

/// How a page of holders is found; both give the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Start from the holders' ids (direct, by group, the superuser): best
    /// when few hold the permission.
    FromHolders,
    /// Walk the users by name, keeping those who hold it: best when many
    /// do, as a page then fills after a few rows.
    ByName,
}

/// Up to this many holders, a page starts from their ids; beyond, it walks
/// the users by name.
const FEW_HOLDERS: usize = 5_000;

/// Up to `limit + 1` active holders of `permission` after `after` (a
/// `username_key`), by username: the superuser, direct holders and members
/// of a group that holds it, each once. Inactive users hold nothing
/// (Django's `users_with_perm` with `is_active=True`). Which way the page
/// is found depends on how many hold it, read up to a cap.
pub async fn holders_page(
    sql: &mut dyn crate::db::Sql,
    permission: &Permission,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Holder>> {
    let ids = holder_ids(sql, permission, Some(FEW_HOLDERS + 1)).await?;
    if ids.len() > FEW_HOLDERS {
        holders_page_by(sql, permission, after, limit, Walk::ByName).await
    } else {
        page_of(sql, permission, Some(&ids), after, limit).await
    }
}

/// `holders_page`, found the given way.
pub async fn holders_page_by(
    sql: &mut dyn crate::db::Sql,
    permission: &Permission,
    after: Option<&str>,
    limit: i64,
    walk: Walk,
) -> Result<Vec<Holder>> {
    match walk {
        Walk::FromHolders => {
            let ids = holder_ids(sql, permission, None).await?;
            page_of(sql, permission, Some(&ids), after, limit).await
        }
        Walk::ByName => page_of(sql, permission, None, after, limit).await,
    }
}

/// The ids of everyone granted `permission` (directly, through a group) and
/// the superuser's, active or not, at most `cap` (read as they come, so a
/// capped read stops early; one held twice may appear twice).
async fn holder_ids(
    sql: &mut dyn crate::db::Sql,
    permission: &Permission,
    cap: Option<usize>,
) -> Result<Vec<i64>> {
    let mut binds = Binds::default();
    let id = binds.int(permission.permission_id);
    let yes = binds.bool(true);
    let mut query = format!(
        "select user_id from ( \
           select up.user_id from user_permissions up where up.permission_id = {id} \
           union all select ug.user_id from user_groups ug \
                   join group_permissions gp on gp.group_id = ug.group_id \
                  where gp.permission_id = {id} \
           union all select s.user_id from users s where s.is_superuser = {yes}) holders"
    );
    if let Some(cap) = cap {
        query += &format!(" limit {}", binds.int(cap as i64));
    }
    sql.fetch_i64s(&query, binds.into_vec()).await
}

/// A page of the holders among `ids` (read by primary key), or, with no
/// ids, of every user by name, each kept if they hold the permission.
async fn page_of(
    sql: &mut dyn crate::db::Sql,
    permission: &Permission,
    ids: Option<&[i64]>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Holder>> {
    if ids.is_some_and(<[i64]>::is_empty) {
        return Ok(vec![]);
    }
    let mut binds = Binds::default();
    let id = binds.int(permission.permission_id);
    let yes = binds.bool(true);
    let direct = format!(
        "exists (select 1 from user_permissions up \
                  where up.user_id = u.user_id and up.permission_id = {id})"
    );
    let holds = match ids {
        Some(ids) => {
            let ids: Vec<String> = ids.iter().map(|i| binds.int(*i)).collect();
            format!("u.user_id in ({})", ids.join(", "))
        }
        None => format!(
            "(u.is_superuser = {yes} or {direct} \
              or exists (select 1 from user_groups ug \
                           join group_permissions gp on gp.group_id = ug.group_id \
                          where ug.user_id = u.user_id and gp.permission_id = {id}))"
        ),
    };
    let mut query = format!(
        "select u.user_id, u.username, u.username_key, u.display_name, u.is_superuser, \
                {direct} as direct \
           from users u where u.is_active = {yes} and {holds}"
    );
    if let Some(after) = after {
        query += &format!(" and u.username_key > {}", binds.text(after.to_string()));
    }
    let limit = binds.int(limit + 1);
    query += &format!(" order by u.username_key limit {limit}");
    let rows: Vec<HolderRow> = sql.fetch_all(&query, binds.into_vec()).await?;
    let groups = groups_granting(sql, permission.permission_id, &rows).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut via = Vec::new();
            if row.is_superuser {
                via.push(Via::Superuser);
            }
            if row.direct {
                via.push(Via::Direct);
            }
            via.extend(
                groups
                    .get(&row.user_id)
                    .into_iter()
                    .flatten()
                    .map(|g| Via::Group(g.clone())),
            );
            Holder {
                user_id: row.user_id,
                username: row.username,
                username_key: row.username_key,
                display_name: row.display_name,
                via,
            }
        })
        .collect())
}

/// For each of `rows`' users, the groups they are in that hold the
/// permission, by name: one query for the page.
async fn groups_granting(
    sql: &mut dyn crate::db::Sql,
    permission_id: i64,
    rows: &[HolderRow],
) -> Result<BTreeMap<i64, Vec<String>>> {
    let mut by_user: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    if rows.is_empty() {
        return Ok(by_user);
    }
    let mut binds = Binds::default();
    let id = binds.int(permission_id);
    let users: Vec<String> = rows.iter().map(|r| binds.int(r.user_id)).collect();
    let query = format!(
        "select ug.user_id, g.name from user_groups ug \
           join group_permissions gp on gp.group_id = ug.group_id \
           join groups g on g.group_id = ug.group_id \
          where gp.permission_id = {id} and ug.user_id in ({}) \
          order by ug.user_id, g.name",
        users.join(", ")
    );
    let found: Vec<(i64, String)> = sql.fetch_all(&query, binds.into_vec()).await?;
    for (user_id, group) in found {
        by_user.entry(user_id).or_default().push(group);
    }
    Ok(by_user)
}
