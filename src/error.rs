//! One error type for the whole crate. The CLI turns it into an exit code and
//! one line; the web layer will turn it into a status and a page or JSON body.

/// What went wrong, typed so each caller can answer it properly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that does not parse; `field` names what was wrong.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A named thing does not exist, e.g. `user "bob"`.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The change clashes with the current state (a duplicate, a second superuser).
    #[error("{0}")]
    Conflict(String),
    /// The actor may not do this; the message names the missing permission.
    #[error("{0}")]
    Forbidden(String),
    /// Sign-in is needed (the API answers 401; pages redirect to /login).
    #[error("sign-in required")]
    Unauthorized,
    /// Too many attempts; try again after this many seconds.
    #[error("too many attempts; try again in {0} seconds")]
    RateLimited(u64),
    /// A unique constraint refused the write (on either backend); domain
    /// code turns it into a `Conflict` that names the thing, see
    /// [`Error::on_duplicate`]. The text is the database's.
    #[error("already exists ({0})")]
    Duplicate(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }

    /// True for mistakes of the caller, as opposed to failures of Ladder or its database.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Error::Database(_) | Error::Unexpected(_))
    }
}

/// A unique violation becomes [`Error::Duplicate`], as through `db::Sql`.
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Duplicate(db.message().to_string())
            }
            _ => Error::Database(e),
        }
    }
}

impl Error {
    /// Replaces a unique violation with the conflict the caller names. Lets
    /// the database enforce uniqueness instead of a racy check-then-insert.
    pub fn on_duplicate(self, conflict: impl FnOnce() -> Error) -> Error {
        match self {
            Error::Duplicate(_) => conflict(),
            other => other,
        }
    }
}
