//! The one superuser: made once, and moved, never copied.

use serde_json::json;

use super::{
    Email, PasswordHash, Username,
    users::{COLUMNS, User, find_by_id, superuser, taken},
};
use crate::{
    Error, Result,
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    db::Sql,
    permissions,
};

/// Creates the one superuser; refused if one exists (the database also refuses a second).
pub async fn create_superuser(
    sql: &mut dyn Sql,
    actor: &Actor,
    username: Username,
    email: Email,
    password: PasswordHash,
    now: i64,
) -> Result<User> {
    if let Some(existing) = superuser(sql).await? {
        return Err(Error::Conflict(format!(
            "a superuser already exists ({}); Ladder has exactly one — use transfer-superuser to move it",
            existing.username
        )));
    }
    let hash = password.into_string();
    let query = format!(
        "insert into users (username, username_key, email, display_name, password_hash, \
         is_active, is_staff, is_superuser, created_at) \
         values ($1, $2, $3, '', $4, $5, $6, $7, $8) returning {COLUMNS}"
    );
    let user: User = sql
        .fetch_one(
            &query,
            binds![
                username.as_str(),
                username.key(),
                email.as_str(),
                hash,
                true,
                true,
                true,
                now,
            ],
        )
        .await
        .map_err(|e| taken(e, &username))?;
    permissions::bump_epoch(sql).await?;
    audit::record(
        sql,
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
    sql: &mut dyn Sql,
    actor: &Actor,
    to: &User,
    now: i64,
) -> Result<User> {
    let current = superuser(sql)
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
    sql.execute(
        "update users set is_superuser = $1 where user_id = $2",
        binds![false, current.user_id],
    )
    .await?;
    sql.execute(
        "update users set is_superuser = $1, is_staff = $2 where user_id = $3",
        binds![true, true, to.user_id],
    )
    .await?;
    permissions::bump_epoch(sql).await?;
    let updated = find_by_id(sql, to.user_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {:?}", to.username)))?;
    audit::record(
        sql,
        actor,
        AuditEntry::user("user.transfer_superuser", &updated)
            .before(json!({ "superuser": current.username }))
            .after(json!({ "superuser": updated.username })),
        now,
    )
    .await?;
    Ok(updated)
}
