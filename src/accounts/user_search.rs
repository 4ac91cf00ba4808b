//! The admin console's user search: keyset pages over a million users, with
//! a planner that picks a scan in sort order or the trigram index per term.

use super::users::{COLUMNS, User};
use crate::{
    Error, Result,
    db::{Backend, Bind, Binds, Sql},
};

/// How a user listing is ordered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum UserSort {
    #[default]
    Username,
    UsernameDesc,
    Joined,
    JoinedDesc,
}

impl UserSort {
    pub fn parse(raw: &str) -> Option<UserSort> {
        Some(match raw {
            "username" | "" => UserSort::Username,
            "-username" => UserSort::UsernameDesc,
            "joined" => UserSort::Joined,
            "-joined" => UserSort::JoinedDesc,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserSort::Username => "username",
            UserSort::UsernameDesc => "-username",
            UserSort::Joined => "joined",
            UserSort::JoinedDesc => "-joined",
        }
    }
}

/// Filters for `list`.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// Case-insensitive: a substring of username, email or display name, or
    /// for one or two characters a username prefix.
    pub search: Option<String>,
    pub group: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub sort: UserSort,
    /// Keyset cursor from the previous page's `next`.
    pub after: Option<String>,
    pub limit: i64,
}

/// One page of users and the cursor for the next page, if there is one.
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<String>,
}

/// A page of users, by keyset pagination: no COUNT(*) and no OFFSET, so the
/// cost does not grow with the page number or the table.
///
/// A search of three or more characters has two plans, and neither is cheap
/// for every term. Walking the sort order and testing each row is fast when
/// matches are dense (`smith`, `gmail.com`) but reads the whole table for a
/// rare term; the trigram index is fast for a rare term but fetches and sorts
/// every match of a common one (`gmail.com` matches 30% of users). So a search
/// first tests the next [`SEARCH_SCAN_ROWS`] rows in sort order; if they hold a
/// full page, that page is exactly what the index would give, because every
/// later match sorts after them. Otherwise the index answers, and then it has
/// at most a few thousand matches per million users to sort (more only when
/// the matches cluster in the sort order). docs/benchmarks.md has the numbers.
pub async fn list(sql: &mut dyn Sql, backend: Backend, filter: &UserFilter) -> Result<UserPage> {
    let term = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase);
    let mut users = match term.as_deref() {
        None => fetch(sql, backend, filter, Search::All).await?,
        // Too short for a trigram index: a username prefix, by index range.
        Some(term) if term.chars().count() < 3 => {
            fetch(sql, backend, filter, Search::Prefix(term)).await?
        }
        Some(term)
            if filter.limit < SEARCH_SCAN_ROWS / 4
                && (backend == Backend::Postgres || term.is_ascii()) =>
        {
            let bound = scan_bound(sql, filter).await?;
            let scanned = fetch(sql, backend, filter, Search::Scan(term, bound.as_ref())).await?;
            // No bound: the scan reached the end, so it found every match.
            if bound.is_none() || scanned.len() as i64 > filter.limit {
                scanned
            } else {
                fetch(sql, backend, filter, Search::Index(term)).await?
            }
        }
        Some(term) => fetch(sql, backend, filter, Search::Index(term)).await?,
    };
    let next = if users.len() as i64 > filter.limit {
        users.truncate(filter.limit as usize);
        users.last().map(|u| match filter.sort {
            UserSort::Username | UserSort::UsernameDesc => u.username.to_lowercase(),
            UserSort::Joined | UserSort::JoinedDesc => format!("{}:{}", u.created_at, u.user_id),
        })
    } else {
        None
    };
    Ok(UserPage { users, next })
}

/// Rows a search tests in sort order before it turns to the trigram index.
const SEARCH_SCAN_ROWS: i64 = 5_000;

/// Where a scan stops: the sort key of the SEARCH_SCAN_ROWS-th user after the cursor.
enum Bound {
    Username(String),
    Joined(i64, i64),
}

/// How `fetch` applies the search term (already lower-cased).
#[derive(Clone, Copy)]
enum Search<'a> {
    All,
    /// A username prefix.
    Prefix(&'a str),
    /// Substring, through the trigram index.
    Index(&'a str),
    /// Substring, tested row by row in sort order up to the bound (to the end
    /// when there is none). Same matches as `Index` (on SQLite for ASCII
    /// terms: its `lower` folds ASCII only).
    Scan(&'a str, Option<&'a Bound>),
}

/// The bound of a scan; None when fewer than SEARCH_SCAN_ROWS users follow the
/// cursor. Reads the sort index only.
async fn scan_bound(sql: &mut dyn Sql, filter: &UserFilter) -> Result<Option<Bound>> {
    let mut binds = Binds::default();
    let mut query = String::from("select ");
    query += match filter.sort {
        UserSort::Username | UserSort::UsernameDesc => "u.username_key",
        UserSort::Joined | UserSort::JoinedDesc => "u.created_at, u.user_id",
    };
    query += " from users u where 1 = 1";
    query += &cursor_condition(filter, &mut binds)?;
    query += order_by(filter.sort);
    let offset = binds.push(Bind::Int(SEARCH_SCAN_ROWS - 1));
    query += &format!(" limit 1 offset {offset}");
    Ok(match filter.sort {
        UserSort::Username | UserSort::UsernameDesc => sql
            .fetch_optional::<(String,)>(&query, binds.into_vec())
            .await?
            .map(|(key,)| Bound::Username(key)),
        UserSort::Joined | UserSort::JoinedDesc => sql
            .fetch_optional::<(i64, i64)>(&query, binds.into_vec())
            .await?
            .map(|(at, id)| Bound::Joined(at, id)),
    })
}

/// ` and <after the cursor>`, or nothing on the first page.
fn cursor_condition(filter: &UserFilter, binds: &mut Binds) -> Result<String> {
    let Some(after) = &filter.after else {
        return Ok(String::new());
    };
    Ok(match filter.sort {
        UserSort::Username | UserSort::UsernameDesc => {
            let op = if filter.sort == UserSort::Username {
                ">"
            } else {
                "<"
            };
            let p = binds.push(Bind::Text(after.clone()));
            format!(" and u.username_key {op} {p}")
        }
        UserSort::Joined | UserSort::JoinedDesc => {
            let (at, id) = parse_joined_cursor(after)?;
            let op = if filter.sort == UserSort::Joined {
                ">"
            } else {
                "<"
            };
            let a = binds.push(Bind::Int(at));
            let i = binds.push(Bind::Int(id));
            // A row value, so both backends seek users_created_at_idx to the cursor.
            format!(" and (u.created_at, u.user_id) {op} ({a}, {i})")
        }
    })
}

/// ` and <not after the bound>`: the scan's end, inclusive.
fn bound_condition(sort: UserSort, bound: &Bound, binds: &mut Binds) -> String {
    let op = match sort {
        UserSort::Username | UserSort::Joined => "<",
        UserSort::UsernameDesc | UserSort::JoinedDesc => ">",
    };
    match bound {
        Bound::Username(key) => {
            let p = binds.push(Bind::Text(key.clone()));
            format!(" and u.username_key {op}= {p}")
        }
        Bound::Joined(at, id) => {
            let a = binds.push(Bind::Int(*at));
            let i = binds.push(Bind::Int(*id));
            format!(" and (u.created_at, u.user_id) {op}= ({a}, {i})")
        }
    }
}

/// ` order by ...` on the alias `u`.
fn order_by(sort: UserSort) -> &'static str {
    match sort {
        UserSort::Username => " order by u.username_key",
        UserSort::UsernameDesc => " order by u.username_key desc",
        UserSort::Joined => " order by u.created_at, u.user_id",
        UserSort::JoinedDesc => " order by u.created_at desc, u.user_id desc",
    }
}

/// Up to `filter.limit + 1` users for one plan of `list`.
async fn fetch(
    sql: &mut dyn Sql,
    backend: Backend,
    filter: &UserFilter,
    search: Search<'_>,
) -> Result<Vec<User>> {
    let mut query = match (search, backend) {
        // Only ids: on SQLite users_list_search_idx covers the scan.
        (Search::Scan(..), _) => "select u.user_id from users u where 1 = 1".to_string(),
        // Materialized below; the sort key comes along.
        (Search::Index(_), Backend::Postgres) => {
            format!("select {COLUMNS}, u.username_key from users u where 1 = 1")
        }
        _ => format!("select {COLUMNS} from users u where 1 = 1"),
    };
    let mut binds = Binds::default();
    match search {
        Search::All => {}
        Search::Prefix(term) => {
            let lo = binds.push(Bind::Text(term.to_string()));
            let hi = binds.push(Bind::Text(format!("{term}\u{10ffff}")));
            query += &format!(" and u.username_key >= {lo} and u.username_key < {hi}");
        }
        Search::Index(term) => match backend {
            Backend::Sqlite => {
                let phrase = format!("\"{}\"", term.replace('"', "\"\""));
                let p = binds.push(Bind::Text(phrase));
                query += &format!(
                    " and u.user_id in (select rowid from users_search where users_search match {p})"
                );
            }
            Backend::Postgres => {
                let p = binds.push(Bind::Text(like_pattern(term)));
                query += &format!(" and {PG_SEARCH_TEXT} like {p} escape '\\'");
            }
        },
        Search::Scan(term, bound) => {
            if let Some(bound) = bound {
                query += &bound_condition(filter.sort, bound, &mut binds);
            }
            query += &match backend {
                Backend::Sqlite => {
                    let t = binds.push(Bind::Text(term.to_string()));
                    format!(
                        " and (instr(u.username_key, {t}) > 0 or instr(lower(u.email), {t}) > 0 \
                         or instr(lower(u.display_name), {t}) > 0)"
                    )
                }
                // strpos, not LIKE: the same matches, but no trigram index
                // to tempt the planner away from walking the sort order.
                Backend::Postgres => {
                    let t = binds.push(Bind::Text(term.to_string()));
                    format!(" and strpos({PG_SEARCH_TEXT}, {t}) > 0")
                }
            };
        }
    }
    if let Some(group) = &filter.group {
        let p = binds.push(Bind::Text(group.clone()));
        query += &format!(
            " and exists (select 1 from user_groups ug join groups g on g.group_id = ug.group_id \
             where ug.user_id = u.user_id and g.name = {p})"
        );
    }
    if let Some(active) = filter.is_active {
        query += &format!(" and u.is_active = {}", binds.push(Bind::Bool(active)));
    }
    if let Some(staff) = filter.is_staff {
        query += &format!(" and u.is_staff = {}", binds.push(Bind::Bool(staff)));
    }
    query += &cursor_condition(filter, &mut binds)?;
    match (search, backend) {
        (Search::Scan(..), _) => {
            let limit = binds.push(Bind::Int(filter.limit + 1));
            query = format!(
                "select {COLUMNS} from users u where u.user_id in ({query}{} limit {limit})",
                order_by(filter.sort)
            );
        }
        // Every match first, through the trigram index, then the sort: without
        // the fence the planner may walk the sort order instead and, for
        // matches that cluster (a first name, in usernames), read most of the table.
        (Search::Index(_), Backend::Postgres) => {
            query = format!("with found as materialized ({query}) select {COLUMNS} from found u");
        }
        _ => {}
    }
    query += order_by(filter.sort);
    let limit = binds.push(Bind::Int(filter.limit + 1));
    query += &format!(" limit {limit}");

    sql.fetch_all::<User>(&query, binds.into_vec()).await
}

/// What a PostgreSQL search matches: the stored column
/// `username_key || ' ' || lower(email) || ' ' || lower(display_name)`, which
/// the trigram index (users_search_trgm_idx) covers.
const PG_SEARCH_TEXT: &str = "u.search_text";

fn parse_joined_cursor(raw: &str) -> Result<(i64, i64)> {
    raw.split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| Error::invalid("after", "is not a valid page cursor"))
}

/// `%text%` with LIKE's own wildcards escaped, so a search for `_` finds underscores.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}
