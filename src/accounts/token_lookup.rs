//! Finding the token a request presents: by the SHA-256 of its secret, with
//! its user and the counters a permission check needs, in one query.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{
    tokens::{COLUMNS, PREFIX, Token},
    users,
};
use crate::{
    Result, binds,
    db::{FromRow, Row, Sql},
};

/// The SHA-256 of a presented token, as stored (hex).
pub fn hash(secret: &str) -> String {
    hex::encode(digest(secret))
}

/// The SHA-256 of a presented token, as this process's memory keys it: the
/// raw bytes, so the hot path does not spell them out in hex.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// True if `secret` looks like a Ladder token at all (checked before any lookup).
pub fn looks_like_token(secret: &str) -> bool {
    secret.len() == PREFIX.len() + 64
        && secret.starts_with(PREFIX)
        && secret[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

/// A presented token with its user and the counters a check needs, read in one query.
pub struct Presented {
    pub token: Token,
    pub user: users::UserWithVersions,
    pub revision: i64,
}

impl FromRow for Presented {
    fn from_row(row: &Row) -> Result<Presented> {
        Ok(Presented {
            token: Token::from_row(row)?,
            user: users::UserWithVersions::from_row(row)?,
            revision: row.get("revision")?,
        })
    }
}

/// The token whose secret is `secret`, live or not; `None` if there is none.
pub async fn presented(sql: &mut dyn Sql, secret: &str) -> Result<Option<Presented>> {
    if !looks_like_token(secret) {
        return Ok(None);
    }
    let user_columns = users::COLUMNS
        .split(',')
        .map(|c| format!("u.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let token_columns = COLUMNS
        .split(',')
        .map(|c| format!("t.{}", c.trim()))
        .filter(|c| c != "t.user_id")
        .collect::<Vec<_>>()
        .join(", ");
    sql.fetch_optional(
        &format!(
            "select {token_columns}, {user_columns}, u.perm_version, e.version as epoch, \
             r.revision from api_tokens t join users u on u.user_id = t.user_id \
             cross join permission_epoch e cross join revisions r \
             where t.token_hash = $1 and e.permission_epoch_id = 1 and r.revision_id = 1"
        ),
        binds![hash(secret)],
    )
    .await
}

/// The scope as the actor and the check path hold it.
pub fn shared_scope(token: &Token) -> Option<Arc<Vec<String>>> {
    token.scope().map(Arc::new)
}
