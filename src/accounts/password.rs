//! Password policy and argon2id hashing.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash as Phc},
};

use crate::{Error, Result};

/// A new password that passed the policy. Never printed or logged.
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 10;
    /// Bounds the cost of hashing attacker-supplied input.
    pub const MAX_BYTES: usize = 1024;

    /// At least 10 characters, not all digits, not the username.
    pub fn parse(raw: &str, username: &str) -> Result<NewPassword> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(Error::invalid(
                "password",
                format!("must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(Error::invalid(
                "password",
                format!("must be at most {} bytes", Self::MAX_BYTES),
            ));
        }
        if raw.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::invalid("password", "must not be entirely numeric"));
        }
        if raw.to_lowercase() == username.to_lowercase() {
            return Err(Error::invalid("password", "must not be the username"));
        }
        Ok(NewPassword(raw.to_string()))
    }

    /// Hashes the password with argon2id on a blocking thread: the hash is
    /// deliberately slow, so it must never hold an async worker, and callers
    /// do it before their transaction opens, never while holding a write turn.
    pub async fn hash(self) -> Result<PasswordHash> {
        tokio::task::spawn_blocking(move || self.hash_now())
            .await
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?
    }

    /// The same, on this thread; for synchronous callers only.
    pub fn hash_now(&self) -> Result<PasswordHash> {
        hash(&self.0).map(PasswordHash)
    }
}

/// An argon2id PHC string, ready to store. Only `NewPassword::hash` makes one.
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Checks `password` against a stored hash on a blocking thread; see `verify`.
pub async fn verify_blocking(password: &str, stored: Option<String>) -> Result<bool> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || verify(&password, stored.as_deref()))
        .await
        .map_err(|e| anyhow::anyhow!("password check: {e}").into())
}

fn hash(password: &str) -> Result<String> {
    let hashed = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))?;
    Ok(hashed.to_string())
}

/// Checks `password` against a stored hash. A missing or malformed hash never matches.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let Some(stored) = stored else { return false };
    let Ok(parsed) = Phc::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A random password for generated accounts (the demo), 20 letters and digits.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let salt = argon2::password_hash::generate_salt();
    let extra = argon2::password_hash::generate_salt();
    salt.iter()
        .chain(extra.iter())
        .take(20)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_short_numeric_and_username_passwords() {
        assert!(NewPassword::parse("short", "alice").is_err());
        assert!(NewPassword::parse("1234567890123", "alice").is_err());
        assert!(NewPassword::parse("AliceAlice1", "alicealice1").is_err());
        assert!(NewPassword::parse("correct horse battery", "alice").is_ok());
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hash = NewPassword::parse("correct horse battery", "alice")
            .unwrap()
            .hash_now()
            .unwrap()
            .into_string();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&hash)));
        assert!(!verify("wrong horse battery", Some(&hash)));
        assert!(!verify("anything", None));
    }

    #[test]
    fn generated_passwords_pass_the_policy() {
        let p = generate();
        assert_eq!(p.len(), 20);
        assert!(NewPassword::parse(&p, "admin").is_ok());
    }
}
