//! Passwords: the validated secret type and argon2id hashing.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so each carries its
//! own parameters and old hashes keep verifying after the defaults change. The defaults are
//! OWASP's first argon2id recommendation: 19 MiB of memory, 2 passes, 1 lane
//! ([`Argon2Params::OWASP`]). Verification compares in constant time (the `argon2` crate's
//! `verify_password`). An unknown user is verified against a dummy hash with the same
//! parameters, so "no such user" costs as long as "wrong password".
//!
//! Passwords are compared as the exact UTF-8 bytes typed: no Unicode normalisation, so a
//! precomposed `é` (U+00E9) and `e` + U+0301 are different passwords. Clients send what the
//! keyboard produced; normalising would silently merge passwords in one backend and not in
//! another (LDAP servers do not normalise either).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};

/// Longest password accepted, in bytes of UTF-8.
pub const MAX_PASSWORD_BYTES: usize = 4096;

/// A password as typed: non-empty, at most [`MAX_PASSWORD_BYTES`] bytes, any Unicode.
/// Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// Why a text is not accepted as a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The password is empty.
    #[error("password must not be empty")]
    Empty,
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("password has {len} bytes, at most {MAX_PASSWORD_BYTES} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl Password {
    /// Validates `input` as a password.
    pub fn new(input: impl Into<String>) -> Result<Self, PasswordError> {
        let input = input.into();
        if input.is_empty() {
            return Err(PasswordError::Empty);
        }
        if input.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong { len: input.len() });
        }
        Ok(Password(input))
    }

    /// The secret, for a backend that must send it (an LDAP bind) or hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Argon2Params {
    /// OWASP's argon2id recommendation: m=19456 KiB (19 MiB), t=2, p=1.
    pub const OWASP: Argon2Params = Argon2Params {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params::OWASP
    }
}

/// Hashing or verification could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The parameters are out of argon2's range.
    #[error("invalid argon2 parameters {params:?}: {reason}")]
    Params {
        /// The parameters.
        params: Argon2Params,
        /// argon2's complaint.
        reason: String,
    },
    /// A stored hash is not an argon2 PHC string.
    #[error("stored password hash is not an argon2 PHC string: {reason}")]
    InvalidHash {
        /// The parser's complaint.
        reason: String,
    },
    /// The system random source failed.
    #[error("cannot read random bytes: {reason}")]
    Random {
        /// The error.
        reason: String,
    },
    /// The blocking hash task panicked or was cancelled.
    #[error("password hashing task failed: {reason}")]
    Task {
        /// The join error.
        reason: String,
    },
    /// argon2 itself failed.
    #[error("argon2 failed: {reason}")]
    Argon2 {
        /// argon2's complaint.
        reason: String,
    },
}

/// Hashes and verifies passwords with argon2id. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<HasherInner>,
}

struct HasherInner {
    params: Argon2Params,
    argon2: Argon2<'static>,
    /// A hash of a random password, made on first use: what unknown users are verified against.
    dummy: OnceLock<String>,
    /// Verifications run, dummy ones included.
    verifications: AtomicU64,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.inner.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher producing argon2id hashes with `params`.
    pub fn new(params: Argon2Params) -> Result<Self, HashError> {
        let argon2_params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|error| HashError::Params {
            params,
            reason: error.to_string(),
        })?;
        Ok(PasswordHasher {
            inner: Arc::new(HasherInner {
                params,
                argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params),
                dummy: OnceLock::new(),
                verifications: AtomicU64::new(0),
            }),
        })
    }

    /// How many argon2 verifications this hasher has run, those against the dummy hash
    /// included (for metrics, and to show that unknown users cost a verification too).
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::Relaxed)
    }

    /// The parameters new hashes use.
    pub fn params(&self) -> Argon2Params {
        self.inner.params
    }

    /// Hashes `password` with a fresh 128-bit salt into a PHC string. CPU-bound (tens of
    /// milliseconds): async callers use [`PasswordHasher::hash_blocking`].
    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|error| HashError::Random {
            reason: error.to_string(),
        })?;
        let salt = SaltString::encode_b64(&salt).map_err(|error| HashError::Argon2 {
            reason: error.to_string(),
        })?;
        let hash = self
            .inner
            .argon2
            .hash_password(password.expose().as_bytes(), &salt)
            .map_err(|error| HashError::Argon2 {
                reason: error.to_string(),
            })?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches `stored`. With `stored` = `None` (no such user) the
    /// password is verified against a dummy hash, taking the same time, and the answer is
    /// `false`. A stored hash that does not parse is still answered after a dummy
    /// verification, with [`HashError::InvalidHash`].
    pub fn verify(&self, password: &Password, stored: Option<&str>) -> Result<bool, HashError> {
        let Some(stored) = stored else {
            self.verify_dummy(password)?;
            return Ok(false);
        };
        let parsed = match PasswordHash::new(stored) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.verify_dummy(password)?;
                return Err(HashError::InvalidHash {
                    reason: error.to_string(),
                });
            }
        };
        self.inner.verifications.fetch_add(1, Ordering::Relaxed);
        match self
            .inner
            .argon2
            .verify_password(password.expose().as_bytes(), &parsed)
        {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(error) => Err(HashError::InvalidHash {
                reason: error.to_string(),
            }),
        }
    }

    /// Verifies against the dummy hash and throws the answer away.
    fn verify_dummy(&self, password: &Password) -> Result<(), HashError> {
        let dummy = match self.inner.dummy.get() {
            Some(dummy) => dummy,
            None => {
                let mut random = [0u8; 24];
                getrandom::fill(&mut random).map_err(|error| HashError::Random {
                    reason: error.to_string(),
                })?;
                let secret: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
                let secret = Password::new(secret).map_err(|error| HashError::Argon2 {
                    reason: error.to_string(),
                })?;
                let hash = self.hash(&secret)?;
                self.inner.dummy.get_or_init(|| hash)
            }
        };
        self.verify(password, Some(dummy)).map(drop)
    }

    /// [`PasswordHasher::hash`] on tokio's blocking pool.
    pub async fn hash_blocking(&self, password: &Password) -> Result<String, HashError> {
        let hasher = self.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(|error| HashError::Task {
                reason: error.to_string(),
            })?
    }

    /// [`PasswordHasher::verify`] on tokio's blocking pool.
    pub async fn verify_blocking(
        &self,
        password: &Password,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let hasher = self.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || hasher.verify(&password, stored.as_deref()))
            .await
            .map_err(|error| HashError::Task {
                reason: error.to_string(),
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small parameters: these tests check behaviour, not cost.
    fn hasher() -> PasswordHasher {
        PasswordHasher::new(Argon2Params {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn length_limits() {
        assert_eq!(Password::new("").unwrap_err(), PasswordError::Empty);
        let max = "a".repeat(MAX_PASSWORD_BYTES);
        assert_eq!(Password::new(max.clone()).unwrap().expose(), max);
        let over = "a".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(
            Password::new(over).unwrap_err().to_string(),
            "password has 4097 bytes, at most 4096 allowed"
        );
        // Bytes, not characters: 2049 two-byte characters are 4098 bytes.
        assert!(matches!(
            Password::new("é".repeat(2049)),
            Err(PasswordError::TooLong { len: 4098 })
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let password = Password::new("hunter2").unwrap();
        assert_eq!(format!("{password:?}"), "Password(<hidden>)");
    }

    #[test]
    fn the_default_is_owasp_argon2id() {
        let hasher = PasswordHasher::new(Argon2Params::default()).unwrap();
        let hash = hasher.hash(&Password::new("pw").unwrap()).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[test]
    fn hash_and_verify() {
        let hasher = hasher();
        let password = Password::new("correct horse").unwrap();
        let hash = hasher.hash(&password).unwrap();
        assert_ne!(hash, hasher.hash(&password).unwrap(), "salts differ");
        assert!(hasher.verify(&password, Some(&hash)).unwrap());
        let wrong = Password::new("correct horse ").unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).unwrap());
    }

    #[test]
    fn unknown_user_is_verified_against_the_dummy() {
        let hasher = hasher();
        assert!(hasher.inner.dummy.get().is_none());
        let password = Password::new("anything").unwrap();
        assert!(!hasher.verify(&password, None).unwrap());
        assert!(
            hasher.inner.dummy.get().is_some(),
            "the dummy hash was used"
        );
        assert_eq!(hasher.verifications(), 1);
        let hash = hasher.hash(&password).unwrap();
        assert!(hasher.verify(&password, Some(&hash)).unwrap());
        assert_eq!(hasher.verifications(), 2, "one verification either way");
    }

    #[test]
    fn unicode_is_compared_byte_for_byte() {
        let hasher = hasher();
        let precomposed = Password::new("caf\u{e9} \u{1F512} пароль").unwrap();
        let decomposed = Password::new("cafe\u{301} \u{1F512} пароль").unwrap();
        let hash = hasher.hash(&precomposed).unwrap();
        assert!(hasher.verify(&precomposed, Some(&hash)).unwrap());
        assert!(!hasher.verify(&decomposed, Some(&hash)).unwrap());
    }

    #[test]
    fn hashes_from_other_parameters_still_verify() {
        let password = Password::new("pw").unwrap();
        let old = hasher().hash(&password).unwrap();
        let current = PasswordHasher::new(Argon2Params {
            memory_kib: 512,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        assert!(current.verify(&password, Some(&old)).unwrap());
    }

    #[test]
    fn bad_stored_hash_and_bad_params_are_errors() {
        let hasher = hasher();
        let password = Password::new("pw").unwrap();
        assert!(matches!(
            hasher.verify(&password, Some("plaintext")),
            Err(HashError::InvalidHash { .. })
        ));
        assert!(matches!(
            PasswordHasher::new(Argon2Params {
                memory_kib: 1,
                iterations: 1,
                parallelism: 1
            }),
            Err(HashError::Params { .. })
        ));
    }

    #[tokio::test]
    async fn blocking_variants() {
        let hasher = hasher();
        let password = Password::new("pw").unwrap();
        let hash = hasher.hash_blocking(&password).await.unwrap();
        assert!(hasher.verify_blocking(&password, Some(hash)).await.unwrap());
        assert!(!hasher.verify_blocking(&password, None).await.unwrap());
    }
}
