//! Checking a password, and limiting how often anyone may try.

use std::sync::LazyLock;

use super::{User, password, users};
use crate::{
    Error, Result, binds,
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
/// The hash is checked on a blocking thread while no connection or write
/// turn is held; only then is the sign-in recorded (`RecordSignIn`).
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
    // A service account has no password; refused here too, whatever its row says.
    let signs_in = |u: &User| matches && u.is_active && !u.is_service && u.password_hash.is_some();
    let Some(user) = user.filter(signs_in) else {
        return Ok(None);
    };
    let user_id = user.user_id;
    db.run(RecordSignIn { user_id, now }).await?;
    Ok(Some(User {
        last_login: Some(now),
        ..user
    }))
}

/// A successful sign-in: the user's `last_login`.
pub struct RecordSignIn {
    pub user_id: i64,
    pub now: i64,
}

impl Transaction for RecordSignIn {
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

/// Signs in through the sign-in form: counts the attempt (`CountSignIn`),
/// then checks the password. `Ok(None)`: no such active account with that
/// password. A blocked address, or a wrong password for a username tried
/// too often, is `Error::RateLimited`.
pub async fn sign_in(
    db: &Db,
    address: &str,
    username: &str,
    pw: &str,
    per_minute: u32,
    now: i64,
) -> Result<Option<User>> {
    // No account has a longer name; refused before the name becomes a rate-limit key.
    let max = super::Username::MAX_CHARS;
    if username.chars().count() > max {
        let why = format!("must be at most {max} characters");
        return Err(Error::invalid("username", why));
    }
    let count = CountSignIn {
        address: address.to_string(),
        username_key: super::username_key(username),
        per_minute,
        now,
    };
    let limit = db.run(count).await?;
    if let LoginLimit::Blocked(wait) = limit {
        return Err(Error::RateLimited(wait));
    }
    let user = authenticate(db, username, pw, now).await?;
    match (user, limit) {
        (None, LoginLimit::UsernameOnly(wait)) => Err(Error::RateLimited(wait)),
        (user, _) => Ok(user),
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
/// username together, per address, and per username; answers the
/// `LoginLimit`. The count commits whatever the password turns out to be.
pub struct CountSignIn {
    pub address: String,
    pub username_key: String,
    pub per_minute: u32,
    pub now: i64,
}

impl Transaction for CountSignIn {
    type Output = LoginLimit;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<LoginLimit>> {
        let limit = login_limit(
            sql,
            &self.address,
            &self.username_key,
            self.per_minute,
            self.now,
        )
        .await?;
        Ok(Finish::Commit(limit))
    }
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

/// Counts one attempt under each of `keys` (e.g. `password:<user_id>`);
/// answers how long to wait if any key is over `per_minute` (see `rate_limit`).
pub struct CountAttempt {
    pub keys: Vec<String>,
    pub per_minute: u32,
    pub now: i64,
}

impl Transaction for CountAttempt {
    type Output = Option<u64>;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Option<u64>>> {
        let wait = rate_limit(sql, &self.keys, self.per_minute, self.now).await?;
        Ok(Finish::Commit(wait))
    }
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

/// Whether `given` is `user`'s current password, before they change it.
/// Guessing it from a borrowed session is limited as sign-in is: every
/// attempt counts, per user, across instances; over the limit is an error.
pub async fn check_own_password(ladder: &crate::Ladder, user: &User, given: &str) -> Result<bool> {
    let count = CountAttempt {
        keys: vec![format!("password:{}", user.user_id)],
        per_minute: ladder.settings.server.login_attempts_per_minute,
        now: ladder.clock.now(),
    };
    if let Some(wait) = ladder.db.run(count).await? {
        return Err(Error::RateLimited(wait));
    }
    password::verify_blocking(given, user.password_hash.clone()).await
}
