//! Checking a password, and limiting how often anyone may try.

use std::sync::LazyLock;

use super::{User, password, users};
use crate::{Result, db::Conn};

/// A hash to verify against when the username is unknown, so that an unknown
/// user takes as long to refuse as a wrong password (no user enumeration).
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    super::NewPassword::parse("dummy-password-for-timing", "nobody")
        .and_then(|p| p.hash())
        .unwrap_or_default()
});

/// The user, if the password is right and the account active. Wrong password,
/// unknown user and inactive user all give `None`: one message for all three.
pub async fn authenticate(
    conn: &mut Conn,
    username: &str,
    pw: &str,
    now: i64,
) -> Result<Option<User>> {
    let user = users::find_by_username(conn, username).await?;
    let stored = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let pw = pw.to_string();
    // argon2 is deliberately slow: keep it off the async workers.
    let matches = tokio::task::spawn_blocking(move || password::verify(&pw, Some(&stored)))
        .await
        .map_err(|e| anyhow::anyhow!("password check: {e}"))?;
    let Some(user) = user.filter(|u| matches && u.is_active && u.password_hash.is_some()) else {
        return Ok(None);
    };
    sqlx::query("update users set last_login = $1 where user_id = $2")
        .bind(now)
        .bind(user.user_id)
        .execute(&mut *conn)
        .await?;
    Ok(Some(User {
        last_login: Some(now),
        ..user
    }))
}

/// Records one attempt under each key (e.g. the client address and the
/// username) and says how long to wait if any key is over `per_minute`.
/// Counted in the database, so the limit holds across instances.
pub async fn rate_limit(
    conn: &mut Conn,
    keys: &[String],
    per_minute: u32,
    now: i64,
) -> Result<Option<u64>> {
    let window_start = now - 60;
    let mut wait = None;
    for key in keys {
        let recent: Vec<i64> = sqlx::query_scalar(
            "select created_at from login_attempts where attempt_key = $1 and created_at > $2 \
             order by created_at",
        )
        .bind(key)
        .bind(window_start)
        .fetch_all(&mut *conn)
        .await?;
        if recent.len() as u32 >= per_minute {
            // The window frees up when the oldest counted attempt is a minute old.
            let oldest = recent[recent.len() - per_minute as usize];
            let secs = (oldest + 60 - now).max(1) as u64;
            wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
        }
    }
    if wait.is_some() {
        return Ok(wait);
    }
    for key in keys {
        sqlx::query("insert into login_attempts (attempt_key, created_at) values ($1, $2)")
            .bind(key)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("delete from login_attempts where created_at < $1")
        .bind(now - 3600)
        .execute(&mut *conn)
        .await?;
    Ok(None)
}
