//! API tokens: made for a user, shown once, stored only as a hash.
//!
//! A token is `ldr_` and 64 hex digits (256 random bits): the prefix lets
//! secret scanners find a leaked one. Ladder keeps its SHA-256 (a fast hash
//! is enough for a random secret of that size, and a check must not cost an
//! argon2 run) and the first characters, to tell tokens apart in a list. A
//! token acts as its user with the user's current permissions; one made
//! with a scope holds only the scope's permissions that the user holds.

use serde_json::json;

use super::{User, users};
use crate::{
    Error, Result,
    actor::Actor,
    audit::{self, AuditEntry},
    binds,
    db::{Finish, Sql, Transaction},
    permissions::{
        EffectivePermissions, PermissionName, catalog,
        delegation::{self, Change},
        effective, revision,
    },
    secret::random_hex,
};

pub use super::token_lookup::{Presented, digest, hash, looks_like_token, presented, shared_scope};

/// Every token starts with this, so secret scanners can recognise one.
pub const PREFIX: &str = "ldr_";

/// How many characters of a token its list entry shows.
const HINT_LEN: usize = 10;

/// A token as listed (never the secret).
#[derive(Debug, Clone)]
pub struct Token {
    pub token_id: i64,
    pub user_id: i64,
    pub name: String,
    pub hint: String,
    pub scope: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

crate::from_row!(Token {
    token_id,
    user_id,
    name,
    hint,
    scope,
    created_by,
    created_at,
    expires_at,
    last_used_at,
    revoked_at,
});

pub(super) const COLUMNS: &str = "token_id, user_id, name, hint, scope, created_by, created_at, \
                       expires_at, last_used_at, revoked_at";

impl Token {
    /// The permissions the token is narrowed to, if it is.
    pub fn scope(&self) -> Option<Vec<String>> {
        self.scope
            .as_deref()
            .map(|s| s.split_whitespace().map(str::to_string).collect())
    }

    /// Whether it can still be used at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }

    pub fn status(&self, now: i64) -> &'static str {
        match (self.revoked_at, self.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at <= now => "expired",
            _ => "active",
        }
    }
}

/// A token's name: 1 to 100 characters, no control characters.
pub fn parse_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_string())
}

/// A lifetime such as `90d`, `12h` or `30m`, in seconds: 1 minute to 10 years.
pub fn parse_lifetime(raw: &str) -> Result<i64> {
    let bad = || Error::invalid("expires", "must be a number and a unit: 90d, 12h or 30m");
    let raw = raw.trim();
    let (digits, unit) = raw.split_at(raw.len().saturating_sub(1));
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        _ => None,
    }
    .ok_or_else(bad)?;
    if !(60..=10 * 365 * 86_400).contains(&secs) {
        return Err(Error::invalid(
            "expires",
            "must be between 1 minute and 10 years",
        ));
    }
    Ok(secs)
}

/// What `CreateToken` answers: the listed token and its secret, shown once.
pub struct NewToken {
    pub token: Token,
    pub secret: String,
    /// The user it was made for, as read in the transaction.
    pub owner: User,
}

/// Makes a token for `owner`. For oneself anyone may; for another account
/// it is acting on that account (`delegation::Change::Account`).
pub struct CreateToken {
    pub actor: Actor,
    pub owner: String,
    pub name: String,
    pub expires_at: Option<i64>,
    pub scope: Option<Vec<PermissionName>>,
    pub now: i64,
}

impl Transaction for CreateToken {
    type Output = NewToken;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<NewToken>> {
        let name = parse_name(&self.name)?;
        let owner = users::get_by_username(sql, &self.owner).await?;
        authorize(sql, &self.actor, &owner).await?;
        if !owner.is_active {
            return Err(Error::Conflict(format!(
                "{} is inactive; an inactive user's tokens do not work",
                owner.username
            )));
        }
        let scope = match &self.scope {
            Some(perms) if perms.is_empty() => {
                return Err(Error::invalid("perm", "name at least one permission"));
            }
            Some(perms) => {
                catalog::resolve(sql, perms).await?;
                // A scope narrows; it never names what the user could not use anyway.
                let held = effective::load(sql, owner.user_id).await?;
                if let Some(p) = perms.iter().find(|p| !held.has_perm(p.as_str())) {
                    return Err(Error::invalid(
                        "perm",
                        format!(
                            "{} does not hold {p}; a token can only narrow what its user holds",
                            owner.username
                        ),
                    ));
                }
                let mut names: Vec<&str> = perms.iter().map(PermissionName::as_str).collect();
                names.sort_unstable();
                names.dedup();
                Some(names.join(" "))
            }
            None => None,
        };
        let secret = format!("{PREFIX}{}", random_hex(32));
        let token: Token = sql
            .fetch_one(
                &format!(
                    "insert into api_tokens (user_id, name, hint, token_hash, scope, created_by, \
                     created_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8) \
                     returning {COLUMNS}"
                ),
                binds![
                    owner.user_id,
                    &name,
                    &secret[..HINT_LEN],
                    hash(&secret),
                    scope,
                    self.actor.name(),
                    self.now,
                    self.expires_at,
                ],
            )
            .await
            // The unique index on live names decides, so two at once cannot both win.
            .map_err(|e| {
                e.on_duplicate(|| {
                    Error::Conflict(format!(
                        "{} already has a token named {name:?}; revoke it or choose another name",
                        owner.username
                    ))
                })
            })?;
        audit::record(
            sql,
            &self.actor,
            AuditEntry::user("token.create", &owner).after(audit_state(&token)),
            self.now,
        )
        .await?;
        Ok(Finish::Commit(NewToken {
            token,
            secret,
            owner,
        }))
    }
}

/// Revokes a token at once, in every process (it advances the owner's revision).
pub struct RevokeToken {
    pub actor: Actor,
    pub token_id: i64,
    /// When set, only this user's token: anyone else's is `NotFound`, as if
    /// it did not exist (the account page manages one's own tokens only).
    pub owned_by: Option<i64>,
    pub now: i64,
}

/// What `RevokeToken` did: `changed` is false when the token was already revoked.
pub struct Revoked {
    pub token: Token,
    pub owner: User,
    pub changed: bool,
}

impl Transaction for RevokeToken {
    type Output = Revoked;

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<Revoked>> {
        let not_found = || Error::NotFound(format!("token {}", self.token_id));
        let token = find(sql, self.token_id)
            .await?
            .filter(|t| self.owned_by.is_none_or(|owner| owner == t.user_id))
            .ok_or_else(not_found)?;
        let owner = users::find_by_id(sql, token.user_id)
            .await?
            .ok_or_else(not_found)?;
        authorize(sql, &self.actor, &owner).await?;
        // One statement checks and revokes: of two revocations at once, one changes it.
        let revoked: Option<Token> = sql
            .fetch_optional(
                &format!(
                    "update api_tokens set revoked_at = $1 \
                     where token_id = $2 and revoked_at is null returning {COLUMNS}"
                ),
                binds![self.now, token.token_id],
            )
            .await?;
        let Some(revoked) = revoked else {
            let token = find(sql, token.token_id).await?.ok_or_else(not_found)?;
            return Ok(Finish::Commit(Revoked {
                token,
                owner,
                changed: false,
            }));
        };
        revision::advance(sql, Some(owner.user_id)).await?;
        audit::record(
            sql,
            &self.actor,
            AuditEntry::user("token.revoke", &owner)
                .before(audit_state(&token))
                .after(audit_state(&revoked)),
            self.now,
        )
        .await?;
        Ok(Finish::Commit(Revoked {
            token: revoked,
            owner,
            changed: true,
        }))
    }
}

/// Records when a token was last used (see `web::api_auth`, which calls it
/// at most once a minute per token).
pub struct TouchToken {
    pub token_id: i64,
    pub now: i64,
}

impl Transaction for TouchToken {
    type Output = ();

    async fn run(self, sql: &mut dyn Sql) -> Result<Finish<()>> {
        sql.execute(
            "update api_tokens set last_used_at = $1 where token_id = $2",
            binds![self.now, self.token_id],
        )
        .await?;
        Ok(Finish::Commit(()))
    }
}

/// Who may make or revoke `owner`'s tokens: the owner, signed in (not with
/// a token); anyone else only as acting on the account (`Change::Account`).
async fn authorize(sql: &mut dyn Sql, actor: &Actor, owner: &User) -> Result<()> {
    if actor.user_id() == Some(owner.user_id) && actor.token.is_none() {
        return Ok(());
    }
    if actor.user_id() == Some(owner.user_id) {
        // A token may not mint or revoke tokens: a narrowed token must not widen itself.
        return Err(Error::Forbidden(
            "tokens are managed by a signed-in user or on the command line, not with a token"
                .into(),
        ));
    }
    users::authorize_account(sql, actor, owner).await
}

/// `authorize` as a dry run, for a page that shows a revoke button to a
/// signed-in `viewer`: the same rule, given both sides' permissions.
pub fn viewer_may_manage(
    viewer: &EffectivePermissions,
    owner: &User,
    owner_perms: &EffectivePermissions,
) -> bool {
    viewer.user_id == owner.user_id
        || delegation::allows(
            viewer,
            &Change::Account {
                target: owner,
                target_perms: owner_perms,
            },
        )
}

fn audit_state(token: &Token) -> serde_json::Value {
    json!({
        "token_id": token.token_id,
        "name": token.name,
        "hint": token.hint,
        "scope": token.scope,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    })
}

pub async fn find(sql: &mut dyn Sql, token_id: i64) -> Result<Option<Token>> {
    sql.fetch_optional(
        &format!("select {COLUMNS} from api_tokens where token_id = $1"),
        binds![token_id],
    )
    .await
}

/// A user's tokens, newest first, revoked ones included.
pub async fn of_user(sql: &mut dyn Sql, user_id: i64) -> Result<Vec<Token>> {
    sql.fetch_all(
        &format!("select {COLUMNS} from api_tokens where user_id = $1 order by token_id desc"),
        binds![user_id],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed_and_one_to_a_hundred_characters_without_controls() {
        assert_eq!(parse_name("  deploy script ").unwrap(), "deploy script");
        assert_eq!(parse_name(&"é".repeat(100)).unwrap().chars().count(), 100);
        for bad in ["", "   ", "a\nb", "tab\there", &"é".repeat(101)] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_lifetime_is_a_number_and_a_unit_from_a_minute_to_ten_years() {
        assert_eq!(parse_lifetime("90d").unwrap(), 90 * 86_400);
        assert_eq!(parse_lifetime("12h").unwrap(), 12 * 3_600);
        assert_eq!(parse_lifetime("1m").unwrap(), 60);
        assert_eq!(parse_lifetime("3650d").unwrap(), 3650 * 86_400);
        for bad in [
            "",
            "90",
            "d",
            "0m",
            "59s",
            "3651d",
            "-5d",
            "5y",
            "1.5d",
            "99999999999999999d",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_ldr_and_sixty_four_hex_digits_look_like_a_token() {
        let good = format!("{PREFIX}{}", "0a".repeat(32));
        assert!(looks_like_token(&good));
        assert!(!looks_like_token(&good[1..]));
        assert!(!looks_like_token(&format!("{good}0")));
        assert!(!looks_like_token(&good.replace("ldr_", "ldx_")));
        assert!(!looks_like_token(&format!("{PREFIX}{}", "zz".repeat(32))));
        assert_eq!(hash(&good).len(), 64);
    }

    #[test]
    fn a_tokens_status_is_revoked_over_expired_over_active() {
        let token = |expires_at, revoked_at| Token {
            token_id: 1,
            user_id: 1,
            name: "t".into(),
            hint: "ldr_0000".into(),
            scope: Some("blog.add_post  blog.view_post".into()),
            created_by: "system".into(),
            created_at: 0,
            expires_at,
            last_used_at: None,
            revoked_at,
        };
        assert_eq!(token(None, None).status(100), "active");
        assert_eq!(token(Some(101), None).status(100), "active");
        assert_eq!(token(Some(100), None).status(100), "expired");
        assert_eq!(token(Some(50), Some(10)).status(100), "revoked");
        assert!(!token(Some(100), None).is_live(100));
        assert_eq!(
            token(None, None).scope(),
            Some(vec![
                "blog.add_post".to_string(),
                "blog.view_post".to_string()
            ])
        );
    }
}
