//! The users table.

use serde_json::json;
use sqlx::FromRow;

pub use super::user_search::{UserFilter, UserPage, UserSort, list};
use super::{Email, PasswordHash, Username, username_key};
use crate::{
    Error, Result,
    actor::Actor,
    audit::{self, AuditEntry},
    db::{Conn, Flag},
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

pub(super) const COLUMNS: &str = "user_id, username, email, display_name, password_hash, is_active, \
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
    Error::from(err).on_duplicate(|| {
        Error::Conflict(format!("username {:?} is already taken", username.as_str()))
    })
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
