//! The users table.

use serde_json::json;

pub use super::superuser::{create_superuser, transfer_superuser};
pub use super::user_search::{UserFilter, UserPage, UserSort, list};
use super::{Email, PasswordHash, Username, username_key};
use crate::{
    Error, Result,
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    db::{FromRow, Row, Sql},
    permissions::{self, delegation::Change},
};

#[derive(Debug, Clone)]
pub struct User {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// A service account: holds API tokens for other apps, never signs in.
    pub is_service: bool,
    pub last_login: Option<i64>,
    /// Django's `date_joined`.
    pub created_at: i64,
}

crate::from_row!(User {
    user_id,
    username,
    email,
    display_name,
    password_hash,
    is_active,
    is_staff,
    is_superuser,
    is_service,
    last_login,
    created_at,
});

pub(super) const COLUMNS: &str = "user_id, username, email, display_name, password_hash, is_active, \
                       is_staff, is_superuser, is_service, last_login, created_at";

/// What it takes to create a user.
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub display_name: String,
    /// Hashed before the transaction (`NewPassword::hash`); None: cannot sign in.
    pub password: Option<PasswordHash>,
    pub is_staff: bool,
    /// A service account (`ladder user add NAME --service`): no password, ever.
    pub is_service: bool,
}

impl User {
    /// A snapshot for audit events.
    pub fn audit_state(&self) -> serde_json::Value {
        let mut state = json!({
            "username": self.username,
            "email": self.email,
            "display_name": self.display_name,
            "is_active": self.is_active,
            "is_staff": self.is_staff,
            "is_superuser": self.is_superuser,
        });
        if self.is_service {
            state["is_service"] = true.into();
        }
        state
    }
}

pub async fn find_by_username(sql: &mut dyn Sql, username: &str) -> Result<Option<User>> {
    let query = format!("select {COLUMNS} from users where username_key = $1");
    sql.fetch_optional(&query, binds![username_key(username)])
        .await
}

pub async fn get_by_username(sql: &mut dyn Sql, username: &str) -> Result<User> {
    find_by_username(sql, username)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {username:?}")))
}

pub async fn find_by_id(sql: &mut dyn Sql, user_id: i64) -> Result<Option<User>> {
    let query = format!("select {COLUMNS} from users where user_id = $1");
    sql.fetch_optional(&query, binds![user_id]).await
}

/// A user with the permission versions the cache is checked against: what
/// every signed-in request needs first, in one read.
#[derive(Debug)]
pub struct UserWithVersions {
    pub user: User,
    pub perm_version: i64,
    pub epoch: i64,
}

impl UserWithVersions {
    /// This user's effective permissions from `cache`, kept if the versions
    /// read with the user still match (one read for both on every request).
    pub async fn permissions(
        &self,
        cache: &permissions::PermissionCache,
        sql: &mut dyn Sql,
    ) -> Result<std::sync::Arc<permissions::EffectivePermissions>> {
        cache
            .snapshot_at(sql, self.user.user_id, self.epoch, Some(self.perm_version))
            .await
    }
}

/// The user's own columns, then the two versions, from one row.
impl FromRow for UserWithVersions {
    fn from_row(row: &Row) -> Result<UserWithVersions> {
        Ok(UserWithVersions {
            user: User::from_row(row)?,
            perm_version: row.get("perm_version")?,
            epoch: row.get("epoch")?,
        })
    }
}

pub async fn find_with_versions(
    sql: &mut dyn Sql,
    user_id: i64,
) -> Result<Option<UserWithVersions>> {
    let query = format!(
        "select {COLUMNS}, perm_version, \
           (select version from permission_epoch where permission_epoch_id = 1) as epoch \
         from users where user_id = $1"
    );
    sql.fetch_optional(&query, binds![user_id]).await
}

/// The one superuser, if there is one yet.
pub async fn superuser(sql: &mut dyn Sql) -> Result<Option<User>> {
    let query = format!("select {COLUMNS} from users where is_superuser");
    sql.fetch_optional(&query, binds![]).await
}

/// Names of the groups a user belongs to, sorted.
pub async fn group_names(sql: &mut dyn Sql, user_id: i64) -> Result<Vec<String>> {
    sql.fetch_all(
        "select g.name from user_groups ug join groups g on g.group_id = ug.group_id \
         where ug.user_id = $1 order by g.name",
        binds![user_id],
    )
    .await
}

/// Creates a user. The actor needs `auth.add_user`; only the superuser may make staff.
pub async fn create(sql: &mut dyn Sql, actor: &Actor, new: NewUser, now: i64) -> Result<User> {
    let actor_perms = actor.permissions(sql).await?;
    permissions::delegation::authorize(
        &actor_perms,
        &Change::CreateUser {
            staff: new.is_staff,
        },
    )?;
    if new.is_service && new.password.is_some() {
        return Err(Error::invalid(
            "password",
            "a service account cannot have a password",
        ));
    }
    let hash = new.password.map(PasswordHash::into_string);
    let query = format!(
        "insert into users (username, username_key, email, display_name, password_hash, \
         is_active, is_staff, is_superuser, is_service, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning {COLUMNS}"
    );
    let user: User = sql
        .fetch_one(
            &query,
            binds![
                new.username.as_str(),
                new.username.key(),
                new.email.as_str(),
                &new.display_name,
                hash,
                true,
                new.is_staff,
                false,
                new.is_service,
                now,
            ],
        )
        .await
        .map_err(|e| taken(e, &new.username))?;
    audit::record(
        sql,
        actor,
        AuditEntry::user("user.create", &user).after(user.audit_state()),
        now,
    )
    .await?;
    Ok(user)
}

pub(super) fn taken(err: Error, username: &Username) -> Error {
    err.on_duplicate(|| {
        Error::Conflict(format!("username {:?} is already taken", username.as_str()))
    })
}

/// Deactivates or reactivates a user. The superuser cannot be deactivated.
pub async fn set_active(
    sql: &mut dyn Sql,
    actor: &Actor,
    target: &User,
    active: bool,
    now: i64,
) -> Result<User> {
    authorize_account(sql, actor, target).await?;
    if target.is_superuser && !active {
        return Err(Error::Conflict(
            "the superuser cannot be deactivated; transfer the role first".into(),
        ));
    }
    if target.is_active == active {
        return Ok(target.clone());
    }
    sql.execute(
        "update users set is_active = $1 where user_id = $2",
        binds![active, target.user_id],
    )
    .await?;
    permissions::bump_epoch(sql).await?;
    let action = if active {
        "user.activate"
    } else {
        "user.deactivate"
    };
    audit::record(
        sql,
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
    sql: &mut dyn Sql,
    actor: &Actor,
    target: &User,
    staff: bool,
    now: i64,
) -> Result<User> {
    let actor_perms = actor.permissions(sql).await?;
    permissions::delegation::authorize(&actor_perms, &Change::Staff { target })?;
    if target.is_staff == staff {
        return Ok(target.clone());
    }
    sql.execute(
        "update users set is_staff = $1 where user_id = $2",
        binds![staff, target.user_id],
    )
    .await?;
    // Staff rules are read from the user that memory keeps with a token.
    permissions::bump_user(sql, target.user_id).await?;
    audit::record(
        sql,
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

/// A service account never gets a password: it signs in with nothing but
/// its API tokens. Every path that sets a password asks this first.
pub fn may_have_password(user: &User) -> Result<()> {
    if user.is_service {
        return Err(Error::Conflict(format!(
            "{} is a service account: it holds API tokens and never signs in with a password",
            user.username
        )));
    }
    Ok(())
}

/// Sets a user's password; the hash itself never reaches the audit log.
pub async fn set_password(
    sql: &mut dyn Sql,
    actor: &Actor,
    target: &User,
    password: PasswordHash,
    now: i64,
) -> Result<()> {
    authorize_account(sql, actor, target).await?;
    may_have_password(target)?;
    sql.execute(
        "update users set password_hash = $1 where user_id = $2",
        binds![password.into_string(), target.user_id],
    )
    .await?;
    audit::record(
        sql,
        actor,
        AuditEntry::user("user.set_password", target),
        now,
    )
    .await?;
    Ok(())
}

/// Changes to another user's profile: each field given is set.
#[derive(Debug, Default)]
pub struct Profile {
    pub display_name: Option<String>,
    pub email: Option<Email>,
}

/// Sets another user's display name and email. The email is where the
/// account's mail goes, so this is acting on the account
/// (`delegation::Change::Account`), like a password; the rule applies
/// whenever a field is given, even one that would not change.
pub async fn set_profile(
    sql: &mut dyn Sql,
    actor: &Actor,
    target: &User,
    profile: Profile,
    now: i64,
) -> Result<User> {
    if profile.display_name.is_none() && profile.email.is_none() {
        return Ok(target.clone());
    }
    authorize_account(sql, actor, target).await?;
    let updated = User {
        display_name: profile
            .display_name
            .unwrap_or_else(|| target.display_name.clone()),
        email: profile
            .email
            .map_or_else(|| target.email.clone(), |e| e.as_str().to_string()),
        ..target.clone()
    };
    let (mut before, mut after) = (json!({}), json!({}));
    if updated.display_name != target.display_name {
        before["display_name"] = json!(target.display_name);
        after["display_name"] = json!(updated.display_name);
    }
    if updated.email != target.email {
        before["email"] = json!(target.email);
        after["email"] = json!(updated.email);
    }
    if after == json!({}) {
        return Ok(updated);
    }
    sql.execute(
        "update users set display_name = $1, email = $2 where user_id = $3",
        binds![&updated.display_name, &updated.email, target.user_id],
    )
    .await?;
    audit::record(
        sql,
        actor,
        AuditEntry::user("user.update", target)
            .before(before)
            .after(after),
        now,
    )
    .await?;
    Ok(updated)
}

/// A user changes their own password (having proved the current one); no
/// delegation rule applies, and the audit log says it was their own doing.
pub async fn change_own_password(
    sql: &mut dyn Sql,
    actor: &Actor,
    user: &User,
    password: PasswordHash,
    now: i64,
) -> Result<User> {
    may_have_password(user)?;
    let hash = password.into_string();
    sql.execute(
        "update users set password_hash = $1 where user_id = $2",
        binds![&hash, user.user_id],
    )
    .await?;
    audit::record(
        sql,
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
pub async fn authorize_account(sql: &mut dyn Sql, actor: &Actor, target: &User) -> Result<()> {
    let actor_perms = actor.permissions(sql).await?;
    let target_perms = permissions::effective::load(sql, target.user_id).await?;
    permissions::delegation::authorize(
        &actor_perms,
        &Change::Account {
            target,
            target_perms: &target_perms,
        },
    )
}
