//! Random secrets (session tokens, API tokens, recovery codes) and the SHA-256 digests that
//! are stored in their place.
//!
//! Secrets are 256 bits from the operating system's random source, so a plain SHA-256 of
//! them is enough to store: there is nothing to brute force (unlike passwords, which are
//! argon2id-hashed). Lookups are by digest, so comparing the secret never happens at all.

use std::fmt;

use sha2::{Digest, Sha256};

/// The system random source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read random bytes from the system: {reason}")]
pub struct RandomError {
    /// The error.
    pub reason: String,
}

/// Fills `buffer` with random bytes from the operating system.
pub(crate) fn random_bytes(buffer: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buffer).map_err(|error| RandomError {
        reason: error.to_string(),
    })
}

/// 32 random bytes as 64 lowercase hex digits.
pub(crate) fn random_hex_256() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes)?;
    Ok(hex(&bytes))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The SHA-256 digest stored in place of a secret.
pub(crate) fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A secret handed to the user once (a session token or an API token). `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(secret: String) -> Self {
        Secret(secret)
    }

    /// The secret text, to give to the user (a cookie, the CLI's one-time output).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_hex_and_differ() {
        let a = random_hex_256().unwrap();
        let b = random_hex_256().unwrap();
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn digest_is_sha256() {
        assert_eq!(
            hex(&digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(format!("{:?}", Secret::new("x".into())), "Secret(<hidden>)");
    }
}
