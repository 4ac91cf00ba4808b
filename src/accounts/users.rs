//! The users table.

use serde_json::json;
use sqlx::FromRow;

use super::{Email, NewPassword, Username, username_key};
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
    pub password: Option<NewPassword>,
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

/// The one superuser, if there is one yet.
pub async fn superuser(conn: &mut Conn) -> Result<Option<User>> {
    let sql = format!("select {COLUMNS} from users where is_superuser");
    Ok(sqlx::query_as(&sql).fetch_optional(conn).await?)
}

/// A page of users, by keyset pagination: no COUNT(*) and no OFFSET, so the
/// cost does not grow with the page number or the table.
pub async fn list(conn: &mut Conn, backend: Backend, filter: &UserFilter) -> Result<UserPage> {
    let mut sql = format!("select {COLUMNS} from users u where 1 = 1");
    let mut binds = Binds::default();
    if let Some(term) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let term = term.to_lowercase();
        if term.chars().count() < 3 {
            // Too short for a trigram index: a username prefix, by index range.
            let lo = binds.push(Bind::Text(term.clone()));
            let hi = binds.push(Bind::Text(format!("{term}\u{10ffff}")));
            sql += &format!(" and u.username_key >= {lo} and u.username_key < {hi}");
        } else {
            match backend {
                Backend::Sqlite => {
                    let phrase = format!("\"{}\"", term.replace('"', "\"\""));
                    let p = binds.push(Bind::Text(phrase));
                    sql += &format!(
                        " and u.user_id in (select rowid from users_search where users_search match {p})"
                    );
                }
                Backend::Postgres => {
                    let p = binds.push(Bind::Text(like_pattern(&term)));
                    sql += &format!(
                        " and (u.username_key || ' ' || lower(u.email) || ' ' || lower(u.display_name)) \
                         like {p} escape '\\'"
                    );
                }
            }
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
    if let Some(after) = &filter.after {
        match filter.sort {
            UserSort::Username | UserSort::UsernameDesc => {
                let op = if filter.sort == UserSort::Username {
                    ">"
                } else {
                    "<"
                };
                let p = binds.push(Bind::Text(after.clone()));
                sql += &format!(" and u.username_key {op} {p}");
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
                sql += &format!(
                    " and (u.created_at {op} {a} or (u.created_at = {a} and u.user_id {op} {i}))"
                );
            }
        }
    }
    sql += match filter.sort {
        UserSort::Username => " order by u.username_key",
        UserSort::UsernameDesc => " order by u.username_key desc",
        UserSort::Joined => " order by u.created_at, u.user_id",
        UserSort::JoinedDesc => " order by u.created_at desc, u.user_id desc",
    };
    let limit = binds.push(Bind::Int(filter.limit + 1));
    sql += &format!(" limit {limit}");

    let mut users = binds
        .apply(sqlx::query_as::<_, User>(&sql))
        .fetch_all(conn)
        .await?;
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
    let hash = new.password.as_ref().map(NewPassword::hash).transpose()?;
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
    password: NewPassword,
    now: i64,
) -> Result<User> {
    if let Some(existing) = superuser(conn).await? {
        return Err(Error::Conflict(format!(
            "a superuser already exists ({}); Ladder has exactly one — use transfer-superuser to move it",
            existing.username
        )));
    }
    let hash = password.hash()?;
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
    let actor_perms = actor.permissions(conn).await?;
    permissions::delegation::authorize(&actor_perms, &Change::Active { target })?;
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
    password: NewPassword,
    now: i64,
) -> Result<()> {
    let actor_perms = actor.permissions(conn).await?;
    permissions::delegation::authorize(&actor_perms, &Change::Password { target })?;
    sqlx::query("update users set password_hash = $1 where user_id = $2")
        .bind(password.hash()?)
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
