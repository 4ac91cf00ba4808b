//! The server secret: keys HMACs that must not be forgeable from what a
//! client or a database reader sees (session fingerprints, anonymous CSRF
//! tokens), as Django's `SECRET_KEY` does.
//!
//! `server.secret_key` sets it. Left empty, Ladder generates one on first
//! start and keeps it in the database, so every instance on one database
//! shares it and a newcomer configures nothing.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, Result, binds, db::Sql};

/// At least this many characters for a configured key.
pub const MIN_KEY_CHARS: usize = 32;

#[derive(Clone)]
pub struct ServerSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(…)")
    }
}

impl ServerSecret {
    /// The configured key, or the one stored in the database (made now if none is).
    pub async fn load(sql: &mut dyn Sql, configured: &str, now: i64) -> Result<ServerSecret> {
        if !configured.is_empty() {
            if configured.chars().count() < MIN_KEY_CHARS {
                return Err(Error::invalid(
                    "server.secret_key",
                    format!("must be at least {MIN_KEY_CHARS} characters"),
                ));
            }
            return Ok(ServerSecret::from_key(configured));
        }
        let fresh = random_hex(32);
        // Two instances starting at once: the first insert wins, both read it.
        sql.execute(
            "insert into instance_secrets (name, value, created_at) values ($1, $2, $3) \
             on conflict (name) do nothing",
            binds!["server", &fresh, now],
        )
        .await?;
        let stored: String = sql
            .fetch_one(
                "select value from instance_secrets where name = $1",
                binds!["server"],
            )
            .await?;
        Ok(ServerSecret::from_key(&stored))
    }

    pub fn from_key(key: &str) -> ServerSecret {
        ServerSecret {
            key: key.as_bytes().to_vec(),
        }
    }

    /// HMAC-SHA256 of `value` under a key derived for `purpose`, in hex; a
    /// value signed for one purpose is worthless for another.
    pub fn sign(&self, purpose: &str, value: &[u8]) -> String {
        let mut derive = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        derive.update(b"ladder:");
        derive.update(purpose.as_bytes());
        let purpose_key = derive.finalize().into_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(&purpose_key).expect("HMAC takes any key");
        mac.update(value);
        hex::encode(mac.finalize().into_bytes())
    }
}

/// `bytes` random bytes from the OS, in hex.
pub fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    while out.len() < bytes * 2 {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(bytes * 2);
    out
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_depend_on_key_purpose_and_value() {
        let a = ServerSecret::from_key("a-key-that-is-long-enough-for-ladder");
        let b = ServerSecret::from_key("another-key-that-is-long-enough-too");
        assert_eq!(a.sign("session", b"x"), a.sign("session", b"x"));
        assert_ne!(a.sign("session", b"x"), b.sign("session", b"x"));
        assert_ne!(a.sign("session", b"x"), a.sign("csrf", b"x"));
        assert_ne!(a.sign("session", b"x"), a.sign("session", b"y"));
        assert_eq!(a.sign("session", b"x").len(), 64);
    }

    #[test]
    fn random_hex_has_the_asked_length_and_differs() {
        assert_eq!(random_hex(32).len(), 64);
        assert_ne!(random_hex(16), random_hex(16));
    }
}
