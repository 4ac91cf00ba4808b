//! Password policy and argon2id hashing.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
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

    /// The argon2id PHC string to store.
    pub fn hash(&self) -> Result<String> {
        hash(&self.0)
    }
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
    let Ok(parsed) = PasswordHash::new(stored) else {
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
            .hash()
            .unwrap();
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
