//! "May this user do this?" asked by another app, with a consistency level.
//!
//! - `Full` reads the revision counter (one row): when this process's memory
//!   has seen that revision it answers from memory, and otherwise reads the
//!   user's permissions from the database. Either way it sees every change
//!   committed before the check began.
//! - `AtLeast(rev)` is answered from this process's memory when it has seen
//!   `rev`, and as `Full` otherwise: a caller that just made a change and got
//!   its revision never gets an answer from before it.
//! - `Cached` is answered from memory (`revision::Live`), which follows the
//!   change log: at most one poll (`revision::POLL`) behind a change made by
//!   another process, at once for one made by this process.
//!
//! Who may ask: anyone about themselves; about others, holders of `auth.view_user`.

use std::sync::Arc;

use foldhash::HashMap;

use super::{Denial, EffectivePermissions, PermissionName, Via, revision};
use crate::{
    Error, Ladder, Result,
    accounts::username_key,
    binds,
    db::Sql,
    text::{self, Lines},
};

/// How fresh an answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Full,
    AtLeast(i64),
    Cached,
}

impl Consistency {
    /// `full` (the default), `cached`, or `at_least=REV`; a separate
    /// `at_least` number means the same as `at_least=REV`.
    pub fn parse(level: Option<&str>, at_least: Option<i64>) -> Result<Consistency> {
        let bad = || {
            Error::invalid(
                "consistency",
                "must be full, cached or at_least=REVISION (a revision a write answered with)",
            )
        };
        let level = match (level, at_least) {
            (None | Some("at_least"), Some(rev)) => return Self::at_least(rev),
            (Some(_), Some(_)) => return Err(bad()),
            (level, None) => level.unwrap_or("full"),
        };
        match level {
            "full" => Ok(Consistency::Full),
            "cached" => Ok(Consistency::Cached),
            other => match other.strip_prefix("at_least=") {
                Some(rev) => Self::at_least(rev.parse().map_err(|_| bad())?),
                None => Err(bad()),
            },
        }
    }

    fn at_least(rev: i64) -> Result<Consistency> {
        if rev < 0 {
            return Err(Error::invalid("at_least", "must be a revision, 0 or more"));
        }
        Ok(Consistency::AtLeast(rev))
    }
}

/// Who is asking.
pub struct Asker {
    pub username: String,
    /// Holds `auth.view_user` (through the token they use, if any).
    pub may_view_users: bool,
}

/// Where a permission comes from, or why it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Superuser,
    Direct,
    Group(String),
    Inactive,
    NotHeld,
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub allowed: bool,
    pub user: String,
    pub perm: String,
    pub sources: Vec<Source>,
    /// The revision the answer reflects at least.
    pub revision: i64,
}

/// Answers each `(user, perm)` in order; each answer is its own result
/// (404 unknown user, 422 malformed permission, 403 someone else without
/// `auth.view_user`). The outer error is Ladder failing.
pub async fn check_all(
    ladder: &Ladder,
    asker: &Asker,
    checks: &[(String, String)],
    consistency: Consistency,
) -> Result<Vec<Result<Verdict>>> {
    let mut asking = Asking {
        ladder,
        memory: None,
        conn: None,
        users: HashMap::default(),
    };
    // Full is "at least the revision committed now": memory that has seen
    // it answers, so a full check costs one read of the counter.
    let at_least = match consistency {
        Consistency::Full => Some(revision::latest(&ladder.db).await?),
        Consistency::AtLeast(rev) => Some(rev),
        Consistency::Cached => None,
    };
    asking.memory = match at_least {
        Some(rev) => ladder
            .live
            .has_seen(rev)
            .then(|| ladder.live.seen())
            .flatten(),
        None => ladder.live.seen(),
    };
    let asker_key = username_key(&asker.username);
    let mut answers = Vec::with_capacity(checks.len());
    for (user, perm) in checks {
        let answer = async {
            let name = PermissionName::parse(perm).map_err(|e| match e {
                Error::Invalid { message, .. } => Error::invalid("perm", message),
                other => other,
            })?;
            // Checked here, not only by the web layer's screen: a token's
            // check takes a shorter stack (`web::check_lane`), and a NUL
            // must not reach PostgreSQL.
            text::check("user", user, Lines::One)?;
            let key = username_key(user);
            if key != asker_key && !asker.may_view_users {
                return Err(Error::Forbidden(
                    "checking another user's permissions needs auth.view_user".into(),
                ));
            }
            let (perms, revision) = asking.permissions(&key, user).await?;
            Ok(verdict(&perms, user, name.as_str(), revision))
        }
        .await;
        match answer {
            Err(e) if !e.is_user_error() => return Err(e),
            other => answers.push(other),
        }
    }
    Ok(answers)
}

/// One request's lookups: each user is read once, the connection taken once.
struct Asking<'a> {
    ladder: &'a Ladder,
    /// The revision memory has seen, when the answers may come from it.
    memory: Option<i64>,
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
    users: HashMap<String, (Arc<EffectivePermissions>, i64)>,
}

impl Asking<'_> {
    async fn sql(&mut self) -> Result<&mut dyn Sql> {
        if self.conn.is_none() {
            self.conn = Some(self.ladder.db.acquire().await?);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    async fn permissions(
        &mut self,
        key: &str,
        user: &str,
    ) -> Result<(Arc<EffectivePermissions>, i64)> {
        if let Some(found) = self.users.get(key) {
            return Ok(found.clone());
        }
        let found = match self.memory {
            Some(revision) => (self.in_memory(key, user).await?, revision),
            None => self.in_database(key, user).await?,
        };
        self.users.insert(key.to_string(), found.clone());
        Ok(found)
    }

    async fn in_memory(&mut self, key: &str, user: &str) -> Result<Arc<EffectivePermissions>> {
        let live = self.ladder.live.clone();
        let user_id = match live.user_id(key) {
            Some(id) => id,
            None => {
                let id: i64 = self
                    .sql()
                    .await?
                    .fetch_optional(
                        "select user_id from users where username_key = $1",
                        binds![key],
                    )
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("user {user:?}")))?;
                live.remember_name(key.to_string(), id);
                id
            }
        };
        match live.permissions(user_id) {
            Some(hit) => Ok(hit),
            None => live.load_permissions(self.sql().await?, user_id).await,
        }
    }

    async fn in_database(
        &mut self,
        key: &str,
        user: &str,
    ) -> Result<(Arc<EffectivePermissions>, i64)> {
        let row: Option<(i64, i64, i64, i64)> = self
            .sql()
            .await?
            .fetch_optional(
                "select u.user_id, u.perm_version, e.version, r.revision from users u \
                 cross join permission_epoch e cross join revisions r \
                 where u.username_key = $1 and e.permission_epoch_id = 1 and r.revision_id = 1",
                binds![key],
            )
            .await?;
        let (user_id, version, epoch, revision) =
            row.ok_or_else(|| Error::NotFound(format!("user {user:?}")))?;
        let cache = self.ladder.permissions.clone();
        let perms = cache
            .snapshot_at(self.sql().await?, user_id, epoch, Some(version))
            .await?;
        Ok((perms, revision))
    }
}

fn verdict(perms: &EffectivePermissions, user: &str, perm: &str, revision: i64) -> Verdict {
    let explained = perms.explain(perm);
    let sources = if explained.allowed {
        explained
            .sources
            .into_iter()
            .map(|via| match via {
                Via::Superuser => Source::Superuser,
                Via::Direct => Source::Direct,
                Via::Group(g) => Source::Group(g),
            })
            .collect()
    } else {
        vec![match explained.denial {
            Some(Denial::Inactive) => Source::Inactive,
            _ => Source::NotHeld,
        }]
    };
    Verdict {
        allowed: explained.allowed,
        user: user.to_string(),
        perm: perm.to_string(),
        sources,
        revision,
    }
}

#[cfg(test)]
mod tests {
    use super::Consistency::{self, *};

    #[test]
    fn consistency_levels_parse_and_nonsense_is_refused() {
        assert_eq!(Consistency::parse(None, None).unwrap(), Full);
        assert_eq!(Consistency::parse(Some("cached"), None).unwrap(), Cached);
        assert_eq!(
            Consistency::parse(Some("at_least=7"), None).unwrap(),
            AtLeast(7)
        );
        assert_eq!(Consistency::parse(None, Some(7)).unwrap(), AtLeast(7));
        assert_eq!(
            Consistency::parse(Some("at_least"), Some(3)).unwrap(),
            AtLeast(3)
        );
        for bad in ["fresh", "at_least=x", "at_least=-1", ""] {
            assert!(Consistency::parse(Some(bad), None).is_err(), "{bad}");
        }
        assert!(Consistency::parse(Some("cached"), Some(3)).is_err());
    }
}
