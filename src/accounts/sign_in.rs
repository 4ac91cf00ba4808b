//! Checking a password, and limiting how often anyone may try.

use std::sync::LazyLock;

use super::{User, password, users};
use crate::{
    Error, Ladder, Result, binds,
    db::{Db, Finish, Sql, Transaction},
};

/// A hash to verify against when the username is unknown, so that an unknown
/// user takes as long to refuse as a wrong password (no user enumeration).
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    super::NewPassword::parse("dummy-password-for-timing", "nobody")
        .and_then(|p| p.hash_now())
        .map(super::PasswordHash::into_string)
        .unwrap_or_default()
});

/// The user, if the password is right and the account active. Wrong password,
/// unknown user and inactive user all give `None`: one message for all three.
/// Takes no transaction: the hash is checked on a blocking thread while no
/// connection or write turn is held.
pub async fn authenticate(db: &Db, username: &str, pw: &str, now: i64) -> Result<Option<User>> {
    let user = {
        let mut conn = db.acquire().await?;
        users::find_by_username(&mut conn, username).await?
    };
    let stored = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let matches = password::verify_blocking(pw, Some(stored)).await?;
    let Some(user) = user.filter(|u| matches && u.is_active && u.password_hash.is_some()) else {
        return Ok(None);
    };
    db.run(RecordLogin {
        user_id: user.user_id,
        now,
    })
    .await?;
    Ok(Some(User {
        last_login: Some(now),
        ..user
    }))
}

/// Notes a successful sign-in on the user's row.
struct RecordLogin {
    user_id: i64,
    now: i64,
}

impl Transaction for RecordLogin {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        sql.execute(
            "update users set last_login = $1 where user_id = $2",
            binds![self.now, self.user_id],
        )
        .await?;
        Ok(Finish::Commit(()))
    }
}

/// Whether `given` is `user`'s current password, before they change it.
/// Guessing it from a borrowed session is limited as sign-in is: every
/// attempt counts, per user, across instances; over the limit is an error.
pub async fn check_own_password(ladder: &Ladder, user: &User, given: &str) -> Result<bool> {
    let limit = RateLimit {
        keys: vec![format!("password:{}", user.user_id)],
        per_minute: ladder.settings.server.login_attempts_per_minute,
        now: ladder.clock.now(),
    };
    if let Some(wait) = ladder.db.run(limit).await? {
        return Err(Error::RateLimited(wait));
    }
    password::verify_blocking(given, user.password_hash.clone()).await
}

/// Counts one attempt under each key: [`rate_limit`] as a transaction.
pub struct RateLimit {
    pub keys: Vec<String>,
    pub per_minute: u32,
    pub now: i64,
}

impl Transaction for RateLimit {
    /// Seconds to wait, when over the limit.
    type Output = Option<u64>;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Option<u64>>> {
        let wait = rate_limit(sql, &self.keys, self.per_minute, self.now).await?;
        Ok(Finish::Commit(wait))
    }
}

/// One address may try this many times more often than one address and
/// username together: enough for an office behind one NAT, too few to spray.
const ADDRESS_FACTOR: u32 = 10;

/// What the sign-in limit says about one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginLimit {
    /// Go ahead.
    Open,
    /// This address (alone, or with this username) has tried too often: no
    /// password is checked. Wait this many seconds.
    Blocked(u64),
    /// Only the username has been tried too often, from elsewhere: the right
    /// password still gets in (so nobody can lock a user out by failing on
    /// purpose), a wrong one is told to wait this many seconds.
    UsernameOnly(u64),
}

/// Counts a sign-in attempt by `address` for `username_key`, per address and
/// username together, per address, and per username; see `LoginLimit`.
pub async fn login_limit(
    sql: &mut dyn Sql,
    address: &str,
    username_key: &str,
    per_minute: u32,
    now: i64,
) -> Result<LoginLimit> {
    let pair = format!("pair:{address}:{username_key}");
    let address_key = format!("ip:{address}");
    let user = format!("user:{username_key}");
    let hard = [
        (pair.as_str(), per_minute),
        (
            address_key.as_str(),
            per_minute.saturating_mul(ADDRESS_FACTOR),
        ),
    ];
    if let Some(wait) = over_limit(sql, &hard, now).await? {
        return Ok(LoginLimit::Blocked(wait));
    }
    let soft = over_limit(sql, &[(user.as_str(), per_minute)], now).await?;
    record(sql, &[&pair, &address_key, &user], now).await?;
    Ok(soft.map_or(LoginLimit::Open, LoginLimit::UsernameOnly))
}

/// Records one attempt under each key (e.g. the client address and the
/// username) and says how long to wait if any key is over `per_minute`.
/// Counted in the database, so the limit holds across instances.
pub async fn rate_limit(
    sql: &mut dyn Sql,
    keys: &[String],
    per_minute: u32,
    now: i64,
) -> Result<Option<u64>> {
    let limits: Vec<(&str, u32)> = keys.iter().map(|k| (k.as_str(), per_minute)).collect();
    if let Some(wait) = over_limit(sql, &limits, now).await? {
        return Ok(Some(wait));
    }
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    record(sql, &keys, now).await?;
    Ok(None)
}

/// The longest wait among the keys that reached their limit in the last minute.
async fn over_limit(sql: &mut dyn Sql, limits: &[(&str, u32)], now: i64) -> Result<Option<u64>> {
    let window_start = now - 60;
    let mut wait = None;
    for (key, per_minute) in limits {
        let per_minute = (*per_minute).max(1) as usize;
        let recent = sql
            .fetch_i64s(
                "select created_at from login_attempts where attempt_key = $1 and created_at > $2 \
                 order by created_at",
                binds![*key, window_start],
            )
            .await?;
        if recent.len() >= per_minute {
            // The window frees up when the oldest counted attempt is a minute old.
            let oldest = recent[recent.len() - per_minute];
            let secs = (oldest + 60 - now).max(1) as u64;
            wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
        }
    }
    Ok(wait)
}

async fn record(sql: &mut dyn Sql, keys: &[&str], now: i64) -> Result<()> {
    for key in keys {
        sql.execute(
            "insert into login_attempts (attempt_key, created_at) values ($1, $2)",
            binds![*key, now],
        )
        .await?;
    }
    sql.execute(
        "delete from login_attempts where created_at < $1",
        binds![now - 3600],
    )
    .await?;
    Ok(())
}
