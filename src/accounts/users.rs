//! The users table.

use serde_json::json;
use sqlx::FromRow;

use super::{Email, PasswordHash, Username, username_key};
use crate::{
    Error, Result,
    actor::Actor,
    audit::{self, AuditEntry},
    db::{Backend, Bind, Binds, Conn, Flag},
    permissions::{self, delegation::Change},
};

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    #[sqlx(try_from = "Flag")]
    pub is_active: bool,
    #[sqlx(try_from = "Flag")]
    pub is_staff: bool,
    #[sqlx(try_from = "Flag")]
    pub is_superuser: bool,
    pub last_login: Option<i64>,
    /// Django's `date_joined`.
    pub created_at: i64,
}

const COLUMNS: &str = "user_id, username, email, display_name, password_hash, is_active, \
                       is_staff, is_superuser, last_login, created_at";

/// What it takes to create a user.
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub display_name: String,
    /// Hashed before the transaction (`NewPassword::hash`); None: cannot sign in.
    pub password: Option<PasswordHash>,
    pub is_staff: bool,
}

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

impl User {
    /// A snapshot for audit events.
    pub fn audit_state(&self) -> serde_json::Value {
        json!({
            "username": self.username,
            "email": self.email,
            "display_name": self.display_name,
            "is_active": self.is_active,
            "is_staff": self.is_staff,
            "is_superuser": self.is_superuser,
        })
    }
}

pub async fn find_by_username(conn: &mut Conn, username: &str) -> Result<Option<User>> {
    let sql = format!("select {COLUMNS} from users where username_key = $1");
    Ok(sqlx::query_as(&sql)
        .bind(username_key(username))
        .fetch_optional(conn)
        .await?)
}

pub async fn get_by_username(conn: &mut Conn, username: &str) -> Result<User> {
    find_by_username(conn, username)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {username:?}")))
}

pub async fn find_by_id(conn: &mut Conn, user_id: i64) -> Result<Option<User>> {
    let sql = format!("select {COLUMNS} from users where user_id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(user_id)
        .fetch_optional(conn)
        .await?)
}

/// A user with the permission versions the cache is checked against: what
/// every signed-in request needs first, in one read.
#[derive(Debug, FromRow)]
pub struct UserWithVersions {
    #[sqlx(flatten)]
    pub user: User,
    pub perm_version: i64,
    pub epoch: i64,
}

pub async fn find_with_versions(conn: &mut Conn, user_id: i64) -> Result<Option<UserWithVersions>> {
    let sql = format!(
        "select {COLUMNS}, perm_version, \
           (select version from permission_epoch where permission_epoch_id = 1) as epoch \
         from users where user_id = $1"
    );
    Ok(sqlx::query_as(&sql)
        .bind(user_id)
        .fetch_optional(conn)
        .await?)
}

/// The one superuser, if there is one yet.
pub async fn superuser(conn: &mut Conn) -> Result<Option<User>> {
    let sql = format!("select {COLUMNS} from users where is_superuser");
    Ok(sqlx::query_as(&sql).fetch_optional(conn).await?)
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
pub async fn list(conn: &mut Conn, backend: Backend, filter: &UserFilter) -> Result<UserPage> {
    let term = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase);
    let mut users = match term.as_deref() {
        None => fetch(conn, backend, filter, Search::All).await?,
        // Too short for a trigram index: a username prefix, by index range.
        Some(term) if term.chars().count() < 3 => {
            fetch(conn, backend, filter, Search::Prefix(term)).await?
        }
        Some(term)
            if filter.limit < SEARCH_SCAN_ROWS / 4
                && (backend == Backend::Postgres || term.is_ascii()) =>
        {
            let bound = scan_bound(conn, filter).await?;
            let scanned = fetch(conn, backend, filter, Search::Scan(term, bound.as_ref())).await?;
            // No bound: the scan reached the end, so it found every match.
            if bound.is_none() || scanned.len() as i64 > filter.limit {
                scanned
            } else {
                fetch(conn, backend, filter, Search::Index(term)).await?
            }
        }
        Some(term) => fetch(conn, backend, filter, Search::Index(term)).await?,
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
async fn scan_bound(conn: &mut Conn, filter: &UserFilter) -> Result<Option<Bound>> {
    let mut binds = Binds::default();
    let mut sql = String::from("select ");
    sql += match filter.sort {
        UserSort::Username | UserSort::UsernameDesc => "u.username_key",
        UserSort::Joined | UserSort::JoinedDesc => "u.created_at, u.user_id",
    };
    sql += " from users u where 1 = 1";
    sql += &cursor_condition(filter, &mut binds)?;
    sql += order_by(filter.sort);
    let offset = binds.push(Bind::Int(SEARCH_SCAN_ROWS - 1));
    sql += &format!(" limit 1 offset {offset}");
    Ok(match filter.sort {
        UserSort::Username | UserSort::UsernameDesc => {
            sqlx::query_as_with::<_, (String,), _>(&sql, binds.into_arguments()?)
                .fetch_optional(conn)
                .await?
                .map(|(key,)| Bound::Username(key))
        }
        UserSort::Joined | UserSort::JoinedDesc => {
            sqlx::query_as_with::<_, (i64, i64), _>(&sql, binds.into_arguments()?)
                .fetch_optional(conn)
                .await?
                .map(|(at, id)| Bound::Joined(at, id))
        }
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
    conn: &mut Conn,
    backend: Backend,
    filter: &UserFilter,
    search: Search<'_>,
) -> Result<Vec<User>> {
    let mut sql = match (search, backend) {
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
            sql += &format!(" and u.username_key >= {lo} and u.username_key < {hi}");
        }
        Search::Index(term) => match backend {
            Backend::Sqlite => {
                let phrase = format!("\"{}\"", term.replace('"', "\"\""));
                let p = binds.push(Bind::Text(phrase));
                sql += &format!(
                    " and u.user_id in (select rowid from users_search where users_search match {p})"
                );
            }
            Backend::Postgres => {
                let p = binds.push(Bind::Text(like_pattern(term)));
                sql += &format!(" and {PG_SEARCH_TEXT} like {p} escape '\\'");
            }
        },
        Search::Scan(term, bound) => {
            if let Some(bound) = bound {
                sql += &bound_condition(filter.sort, bound, &mut binds);
            }
            sql += &match backend {
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
        sql += &format!(
            " and exists (select 1 from user_groups ug join groups g on g.group_id = ug.group_id \
             where ug.user_id = u.user_id and g.name = {p})"
        );
    }
    if let Some(active) = filter.is_active {
        sql += &format!(" and u.is_active = {}", binds.push(Bind::Bool(active)));
    }
    if let Some(staff) = filter.is_staff {
        sql += &format!(" and u.is_staff = {}", binds.push(Bind::Bool(staff)));
    }
    sql += &cursor_condition(filter, &mut binds)?;
    match (search, backend) {
        (Search::Scan(..), _) => {
            let limit = binds.push(Bind::Int(filter.limit + 1));
            sql = format!(
                "select {COLUMNS} from users u where u.user_id in ({sql}{} limit {limit})",
                order_by(filter.sort)
            );
        }
        // Every match first, through the trigram index, then the sort: without
        // the fence the planner may walk the sort order instead and, for
        // matches that cluster (a first name, in usernames), read most of the table.
        (Search::Index(_), Backend::Postgres) => {
            sql = format!("with found as materialized ({sql}) select {COLUMNS} from found u");
        }
        _ => {}
    }
    sql += order_by(filter.sort);
    let limit = binds.push(Bind::Int(filter.limit + 1));
    sql += &format!(" limit {limit}");

    Ok(
        sqlx::query_as_with::<_, User, _>(&sql, binds.into_arguments()?)
            .fetch_all(conn)
            .await?,
    )
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

/// Names of the groups a user belongs to, sorted.
pub async fn group_names(conn: &mut Conn, user_id: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select g.name from user_groups ug join groups g on g.group_id = ug.group_id \
         where ug.user_id = $1 order by g.name",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// Creates a user. The actor needs `auth.add_user`; only the superuser may make staff.
pub async fn create(conn: &mut Conn, actor: &Actor, new: NewUser, now: i64) -> Result<User> {
    let actor_perms = actor.permissions(conn).await?;
    permissions::delegation::authorize(
        &actor_perms,
        &Change::CreateUser {
            staff: new.is_staff,
        },
    )?;
    let hash = new.password.map(PasswordHash::into_string);
    let sql = format!(
        "insert into users (username, username_key, email, display_name, password_hash, \
         is_active, is_staff, is_superuser, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning {COLUMNS}"
    );
    let user: User = sqlx::query_as(&sql)
        .bind(new.username.as_str())
        .bind(new.username.key())
        .bind(new.email.as_str())
        .bind(&new.display_name)
        .bind(hash)
        .bind(true)
        .bind(new.is_staff)
        .bind(false)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| taken(e, &new.username))?;
    audit::record(
        conn,
        actor,
        AuditEntry::user("user.create", &user).after(user.audit_state()),
        now,
    )
    .await?;
    Ok(user)
}

fn taken(err: sqlx::Error, username: &Username) -> Error {
    if crate::error::is_unique_violation(&err) {
        Error::Conflict(format!("username {:?} is already taken", username.as_str()))
    } else {
        err.into()
    }
}

/// Creates the one superuser; refused if one exists (the database also refuses a second).
pub async fn create_superuser(
    conn: &mut Conn,
    actor: &Actor,
    username: Username,
    email: Email,
    password: PasswordHash,
    now: i64,
) -> Result<User> {
    if let Some(existing) = superuser(conn).await? {
        return Err(Error::Conflict(format!(
            "a superuser already exists ({}); Ladder has exactly one — use transfer-superuser to move it",
            existing.username
        )));
    }
    let hash = password.into_string();
    let sql = format!(
        "insert into users (username, username_key, email, display_name, password_hash, \
         is_active, is_staff, is_superuser, created_at) \
         values ($1, $2, $3, '', $4, $5, $6, $7, $8) returning {COLUMNS}"
    );
    let user: User = sqlx::query_as(&sql)
        .bind(username.as_str())
        .bind(username.key())
        .bind(email.as_str())
        .bind(hash)
        .bind(true)
        .bind(true)
        .bind(true)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| taken(e, &username))?;
    permissions::bump_epoch(conn).await?;
    audit::record(
        conn,
        actor,
        AuditEntry::user("user.create_superuser", &user).after(user.audit_state()),
        now,
    )
    .await?;
    Ok(user)
}

/// Moves the superuser flag to `to`, in the caller's transaction. The new
/// superuser must be active; they also become staff.
pub async fn transfer_superuser(
    conn: &mut Conn,
    actor: &Actor,
    to: &User,
    now: i64,
) -> Result<User> {
    let current = superuser(conn)
        .await?
        .ok_or_else(|| Error::NotFound("superuser".into()))?;
    if current.user_id == to.user_id {
        return Err(Error::Conflict(format!(
            "{} is already the superuser",
            to.username
        )));
    }
    if !to.is_active {
        return Err(Error::Conflict(format!(
            "{} is inactive; activate them before making them superuser",
            to.username
        )));
    }
    if let Some(acting) = actor.user_id()
        && acting != current.user_id
    {
        return Err(Error::Forbidden(
            "only the superuser may hand the superuser role on".into(),
        ));
    }
    sqlx::query("update users set is_superuser = $1 where user_id = $2")
        .bind(false)
        .bind(current.user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("update users set is_superuser = $1, is_staff = $2 where user_id = $3")
        .bind(true)
        .bind(true)
        .bind(to.user_id)
        .execute(&mut *conn)
        .await?;
    permissions::bump_epoch(conn).await?;
    let updated = find_by_id(conn, to.user_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {:?}", to.username)))?;
    audit::record(
        conn,
        actor,
        AuditEntry::user("user.transfer_superuser", &updated)
            .before(json!({ "superuser": current.username }))
            .after(json!({ "superuser": updated.username })),
        now,
    )
    .await?;
    Ok(updated)
}

/// Deactivates or reactivates a user. The superuser cannot be deactivated.
pub async fn set_active(
    conn: &mut Conn,
    actor: &Actor,
    target: &User,
    active: bool,
    now: i64,
) -> Result<User> {
    authorize_account(conn, actor, target).await?;
    if target.is_superuser && !active {
        return Err(Error::Conflict(
            "the superuser cannot be deactivated; transfer the role first".into(),
        ));
    }
    if target.is_active == active {
        return Ok(target.clone());
    }
    sqlx::query("update users set is_active = $1 where user_id = $2")
        .bind(active)
        .bind(target.user_id)
        .execute(&mut *conn)
        .await?;
    permissions::bump_epoch(conn).await?;
    let action = if active {
        "user.activate"
    } else {
        "user.deactivate"
    };
    audit::record(
        conn,
        actor,
        AuditEntry::user(action, target)
            .before(json!({ "is_active": target.is_active }))
            .after(json!({ "is_active": active })),
        now,
    )
    .await?;
    Ok(User {
        is_active: active,
        ..target.clone()
    })
}

/// Sets is_staff. Only the superuser may.
pub async fn set_staff(
    conn: &mut Conn,
    actor: &Actor,
    target: &User,
    staff: bool,
    now: i64,
) -> Result<User> {
    let actor_perms = actor.permissions(conn).await?;
    permissions::delegation::authorize(&actor_perms, &Change::Staff { target })?;
    sqlx::query("update users set is_staff = $1 where user_id = $2")
        .bind(staff)
        .bind(target.user_id)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        actor,
        AuditEntry::user("user.set_staff", target)
            .before(json!({ "is_staff": target.is_staff }))
            .after(json!({ "is_staff": staff })),
        now,
    )
    .await?;
    Ok(User {
        is_staff: staff,
        ..target.clone()
    })
}

/// Sets a user's password; the hash itself never reaches the audit log.
pub async fn set_password(
    conn: &mut Conn,
    actor: &Actor,
    target: &User,
    password: PasswordHash,
    now: i64,
) -> Result<()> {
    authorize_account(conn, actor, target).await?;
    sqlx::query("update users set password_hash = $1 where user_id = $2")
        .bind(password.into_string())
        .bind(target.user_id)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        actor,
        AuditEntry::user("user.set_password", target),
        now,
    )
    .await?;
    Ok(())
}

/// A user changes their own password (having proved the current one); no
/// delegation rule applies, and the audit log says it was their own doing.
pub async fn change_own_password(
    conn: &mut Conn,
    actor: &Actor,
    user: &User,
    password: PasswordHash,
    now: i64,
) -> Result<User> {
    let hash = password.into_string();
    sqlx::query("update users set password_hash = $1 where user_id = $2")
        .bind(&hash)
        .bind(user.user_id)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        actor,
        AuditEntry::user("user.change_own_password", user),
        now,
    )
    .await?;
    Ok(User {
        password_hash: Some(hash),
        ..user.clone()
    })
}

/// Checks that `actor` may act on `target`'s account (password, active flag,
/// sessions, anything that lets one act as or lock out the other): see
/// `delegation::Change::Account`. Reads both sides inside the caller's
/// transaction, so a grant or revocation committed just before is seen.
pub async fn authorize_account(conn: &mut Conn, actor: &Actor, target: &User) -> Result<()> {
    let actor_perms = actor.permissions(conn).await?;
    let target_perms = permissions::effective::load(conn, target.user_id).await?;
    permissions::delegation::authorize(
        &actor_perms,
        &Change::Account {
            target,
            target_perms: &target_perms,
        },
    )
}
