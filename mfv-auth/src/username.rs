//! Account names, validated so they are safe as LDAP and SQL identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest user name: the Linux `useradd` limit, so a name fits any backend's column.
const MAX_LEN: usize = 32;

/// Names of the host's own system accounts. A user with such a name would be confused with
/// them in logs and in the audit trail, so they are refused. (`admin` is not reserved: it is
/// the first account the setup creates.)
pub const RESERVED_USERNAMES: [&str; 8] = [
    "root",
    "daemon",
    "bin",
    "sys",
    "nobody",
    "mfv",
    "libvirt-qemu",
    "libvirt-dnsmasq",
];

/// Why a text is not a user name. Every variant names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// The name is empty.
    #[error("user name must not be empty")]
    Empty,
    /// The name is longer than 32 characters.
    #[error("user name {input:?} has {len} characters, at most {MAX_LEN} allowed")]
    TooLong {
        /// The name as given.
        input: String,
        /// Its length in characters.
        len: usize,
    },
    /// A character outside lowercase ASCII letters, digits, `.`, `_` and `-`.
    #[error(
        "user name {input:?}: {character:?} is not allowed (lowercase letters a-z, digits, '.', '_' and '-')"
    )]
    InvalidCharacter {
        /// The name as given.
        input: String,
        /// The first character that is not allowed.
        character: char,
    },
    /// The name starts with a digit, `.`, `_` or `-`.
    #[error("user name {input:?} must start with a lowercase letter")]
    MustStartWithLetter {
        /// The name as given.
        input: String,
    },
    /// The name is one of [`RESERVED_USERNAMES`].
    #[error("user name {input:?} is reserved for a system account")]
    Reserved {
        /// The name as given.
        input: String,
    },
}

/// A validated user name: 1 to 32 characters, lowercase ASCII letters, digits, `.`, `_`
/// and `-`, starting with a letter, not a [reserved](RESERVED_USERNAMES) name.
///
/// Lowercase only, so that `Alice` and `alice` cannot be two users in one backend and one in
/// another (LDAP and MySQL compare case-insensitively, SQLite does not). None of the
/// characters is special in an LDAP filter (RFC 4515), a DN (RFC 4514) or SQL. Display names
/// hold any Unicode; user names do not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// Validates `input` as a user name.
    pub fn new(input: impl Into<String>) -> Result<Self, UsernameError> {
        let input = input.into();
        let len = input.chars().count();
        if len == 0 {
            return Err(UsernameError::Empty);
        }
        if len > MAX_LEN {
            return Err(UsernameError::TooLong { input, len });
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        if let Some(character) = input.chars().find(|c| !allowed(*c)) {
            return Err(UsernameError::InvalidCharacter { input, character });
        }
        if !input.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(UsernameError::MustStartWithLetter { input });
        }
        if RESERVED_USERNAMES.contains(&input.as_str()) {
            return Err(UsernameError::Reserved { input });
        }
        Ok(Username(input))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Username {
    type Err = UsernameError;

    fn from_str(input: &str) -> Result<Self, UsernameError> {
        Username::new(input)
    }
}

impl TryFrom<String> for Username {
    type Error = UsernameError;

    fn try_from(input: String) -> Result<Self, UsernameError> {
        Username::new(input)
    }
}

impl From<Username> for String {
    fn from(name: Username) -> String {
        name.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(input: &str, expected: &str) {
        let error = input.parse::<Username>().unwrap_err();
        assert_eq!(error.to_string(), expected, "input {input:?}");
    }

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "alice",
            "admin",
            "j.doe",
            "ops_team-2",
            "a",
            &"a".repeat(32),
        ] {
            let username: Username = name.parse().unwrap();
            assert_eq!(username.as_str(), name);
            assert_eq!(username.to_string(), name);
        }
    }

    #[test]
    fn empty_and_too_long() {
        check_error("", "user name must not be empty");
        let long = "a".repeat(33);
        check_error(
            &long,
            &format!("user name {long:?} has 33 characters, at most 32 allowed"),
        );
        // Length counts characters, not bytes.
        let long_unicode = "é".repeat(33);
        assert!(matches!(
            Username::new(long_unicode),
            Err(UsernameError::TooLong { len: 33, .. })
        ));
    }

    #[test]
    fn injection_and_unicode_are_refused() {
        for (input, character) in [
            ("*)(uid=*", '*'),
            ("admin)(|(a=*", ')'),
            ("' OR 1=1 --", '\''),
            ("a,ou=people", ','),
            ("a\\2a", '\\'),
            ("a\0b", '\0'),
            ("Alice", 'A'),
            ("jörg", 'ö'),
            ("a b", ' '),
            ("ａdmin", 'ａ'),
        ] {
            check_error(
                input,
                &format!(
                    "user name {input:?}: {character:?} is not allowed (lowercase letters a-z, digits, '.', '_' and '-')"
                ),
            );
        }
    }

    #[test]
    fn must_start_with_a_letter() {
        for input in ["1alice", ".alice", "_alice", "-alice", ".."] {
            check_error(
                input,
                &format!("user name {input:?} must start with a lowercase letter"),
            );
        }
    }

    #[test]
    fn reserved_names_are_refused() {
        for input in RESERVED_USERNAMES {
            check_error(
                input,
                &format!("user name {input:?} is reserved for a system account"),
            );
        }
    }

    #[test]
    fn serde_validates() {
        let name: Username = serde_json::from_str("\"alice\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"alice\"");
        assert_eq!(String::from(name), "alice");
        let error = serde_json::from_str::<Username>("\"root\"").unwrap_err();
        assert!(error.to_string().contains("reserved"), "{error}");
    }
}
