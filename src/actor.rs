//! Who is making a change, and through which door (CLI, web, API).

use crate::{
    Result,
    accounts::User,
    db::Sql,
    permissions::{EffectivePermissions, effective},
};

/// Where a change came from; recorded on every audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cli,
    Web,
    Api,
    /// Ladder itself: migrations, the scheduler.
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cli => "cli",
            Source::Web => "web",
            Source::Api => "api",
            Source::System => "system",
        }
    }
}

/// The one making a change. `user: None` is Ladder itself or an operator on
/// the CLI before any superuser exists; it may do anything, and says so in the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: Option<User>,
    pub source: Source,
    /// The API token the change came through, if any.
    pub token: Option<ActorToken>,
}

/// An API token acting for its user: named in the audit log, and narrowed
/// to `scope` when it was made with `--perm`.
#[derive(Debug, Clone)]
pub struct ActorToken {
    pub name: String,
    pub scope: Option<std::sync::Arc<Vec<String>>>,
}

/// The actor's rights as the delegation rules see them.
pub enum ActorPermissions {
    System,
    User(EffectivePermissions),
}

impl Actor {
    pub fn user(user: User, source: Source) -> Actor {
        Actor {
            user: Some(user),
            source,
            token: None,
        }
    }

    pub fn system(source: Source) -> Actor {
        Actor {
            user: None,
            source,
            token: None,
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        self.user.as_ref().map(|u| u.user_id)
    }

    pub fn name(&self) -> &str {
        self.user.as_ref().map_or("system", |u| u.username.as_str())
    }

    /// Reads the actor's effective permissions inside the caller's transaction,
    /// never from a cache: a delegation decision must see the latest grants.
    pub async fn permissions(&self, sql: &mut dyn Sql) -> Result<ActorPermissions> {
        match &self.user {
            None => Ok(ActorPermissions::System),
            Some(user) => {
                let held = effective::load(sql, user.user_id).await?;
                // A narrowed token may do only what it names, of what its user holds.
                let held = match self.token.as_ref().and_then(|t| t.scope.as_ref()) {
                    Some(scope) => held.narrowed(scope),
                    None => held,
                };
                Ok(ActorPermissions::User(held))
            }
        }
    }
}
