//! The one-time setup token: what proves, on a host that is not set up yet, that the browser
//! at the other end belongs to someone who can read the console.
//!
//! Until a configuration exists the host has no account to log in with, yet its web server
//! already answers on the network, where anyone may reach it first. The console shows a
//! token; the web server's config mode answers only a client that presents it, and the first
//! such client wins: the token is exchanged once for a session and is then spent.
//!
//! The token lives in PID 1's runtime directory, readable by root alone: the console screen
//! (root) shows it, and the host daemon (root) checks it for the unprivileged web server,
//! which never sees it. Spending is a `rename(2)` of the token's file, so of two clients that
//! present it at once exactly one wins, even across a restart of the daemon. The token is
//! 20 characters (about 99 bits) from an alphabet without look-alikes (no 0/o, 1/l/i), in
//! groups of five, so it can be typed from a screen; case, spaces and dashes do not matter.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use mfv_linux::atomic_file::write_new_synced;
use mfv_linux::regular_file::{ReadError, read_limited};

/// The token's file in the runtime directory while it can be claimed.
pub const TOKEN_FILE: &str = "setup-token";
/// The token's file once it was claimed: the same content, spent.
pub const CLAIMED_FILE: &str = "setup-token.claimed";
/// The characters a token is made of.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Characters in a token, dashes not counted.
const TOKEN_CHARS: usize = 20;
/// Characters between two dashes.
const GROUP: usize = 5;

/// Why a token could not be made, read or claimed.
#[derive(Debug, thiserror::Error)]
pub enum SetupTokenError {
    /// The system's random source failed.
    #[error("cannot draw a setup token from the system's random source: {0}")]
    Random(String),
    /// The token's file could not be written, read or renamed.
    #[error("cannot {action} the setup token at {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The token's file is not what this module writes.
    #[error("the setup token at {} is not usable", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ReadError,
    },
}

/// Why a claim was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClaimRefusal {
    /// The presented token is not the host's.
    #[error("the setup token is wrong: type the one the host's console shows")]
    Wrong,
    /// The token was exchanged before, by this or another client.
    #[error(
        "the setup token was used already: ask at the console for a new one, or go on in \
         the browser that used it"
    )]
    Spent,
    /// There is no token to claim (none was issued: the host is set up, or not waiting).
    #[error("this host issued no setup token: it is not waiting to be set up")]
    NoneIssued,
    /// The host is set up, with the configuration on `device`: there is nothing to claim.
    #[error("this host is set up (its configuration is on {device}): sign in instead")]
    SetUp {
        /// The config volume.
        device: String,
    },
    /// The token could not be checked.
    #[error(transparent)]
    Failed(#[from] SetupTokenError),
}

/// A setup token, as the console shows it: `abcde-fghjk-mnpqr-stuvw`.
#[derive(Clone, PartialEq, Eq)]
pub struct SetupToken(String);

impl std::fmt::Debug for SetupToken {
    /// The token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupToken(..)")
    }
}

impl SetupToken {
    /// The token as it is shown and stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn random() -> Result<SetupToken, SetupTokenError> {
        let mut token = String::with_capacity(TOKEN_CHARS + TOKEN_CHARS / GROUP);
        let mut drawn = 0;
        while drawn < TOKEN_CHARS {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|error| SetupTokenError::Random(error.to_string()))?;
            // Only bytes below the largest multiple of the alphabet's size are used, so every
            // character is equally likely.
            let limit = 256 - 256 % ALPHABET.len();
            for byte in bytes.into_iter().filter(|&byte| usize::from(byte) < limit) {
                if drawn == TOKEN_CHARS {
                    break;
                }
                if drawn > 0 && drawn % GROUP == 0 {
                    token.push('-');
                }
                token.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
                drawn += 1;
            }
        }
        Ok(SetupToken(token))
    }
}

/// The token waiting in `run_dir`, or a new one written there (mode 0600) when there is
/// none and none was spent. `None` once the token was claimed: a spent token is not
/// replaced behind the back of the session that claimed it.
pub fn issue(run_dir: &Path) -> Result<Option<SetupToken>, SetupTokenError> {
    if let Some(token) = read(run_dir, TOKEN_FILE)? {
        return Ok(Some(token));
    }
    if read(run_dir, CLAIMED_FILE)?.is_some() {
        return Ok(None);
    }
    let token = SetupToken::random()?;
    let path = run_dir.join(TOKEN_FILE);
    match write_new_synced(&path, token.as_str().as_bytes(), 0o600) {
        Ok(()) => Ok(Some(token)),
        // Another process issued one at the same moment: that one is the token.
        Err(failure) if failure.source.kind() == io::ErrorKind::AlreadyExists => {
            read(run_dir, TOKEN_FILE)
        }
        Err(failure) => {
            let _ = fs::remove_file(&path);
            Err(SetupTokenError::Io {
                action: "write",
                path,
                source: failure.source,
            })
        }
    }
}

/// The token that can still be claimed in `run_dir`, if any.
pub fn current(run_dir: &Path) -> Result<Option<SetupToken>, SetupTokenError> {
    read(run_dir, TOKEN_FILE)
}

/// Spends the token in `run_dir` if `presented` is it (compared in constant time, ignoring
/// case, spaces and dashes). Of two claims of the right token at once, one wins and the
/// other is told the token is spent.
pub fn claim(run_dir: &Path, presented: &str) -> Result<(), ClaimRefusal> {
    let Some(token) = read(run_dir, TOKEN_FILE)? else {
        return Err(if read(run_dir, CLAIMED_FILE)?.is_some() {
            ClaimRefusal::Spent
        } else {
            ClaimRefusal::NoneIssued
        });
    };
    if !mfv_auth::constant_time_eq(&normalized(token.as_str()), &normalized(presented)) {
        return Err(ClaimRefusal::Wrong);
    }
    let from = run_dir.join(TOKEN_FILE);
    match fs::rename(&from, run_dir.join(CLAIMED_FILE)) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(ClaimRefusal::Spent),
        Err(source) => Err(SetupTokenError::Io {
            action: "spend",
            path: from,
            source,
        }
        .into()),
    }
}

/// Removes the token and its spent copy from `run_dir`, once the host is set up: the console
/// shows no token any more and every claim is told that none was issued.
pub fn retire(run_dir: &Path) -> Result<(), SetupTokenError> {
    for name in [TOKEN_FILE, CLAIMED_FILE] {
        let path = run_dir.join(name);
        match fs::remove_file(&path) {
            Err(source) if source.kind() != io::ErrorKind::NotFound => {
                return Err(SetupTokenError::Io {
                    action: "retire",
                    path,
                    source,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// The token file `name` in `run_dir`, if it exists.
fn read(run_dir: &Path, name: &str) -> Result<Option<SetupToken>, SetupTokenError> {
    match read_limited(run_dir, name, 256) {
        Ok(bytes) => Ok(Some(SetupToken(
            String::from_utf8_lossy(&bytes).trim().to_owned(),
        ))),
        Err(ReadError::Missing { .. }) => Ok(None),
        Err(source) => Err(SetupTokenError::Unreadable {
            path: run_dir.join(name),
            source,
        }),
    }
}

/// Lower case, without spaces and dashes.
fn normalized(token: &str) -> Vec<u8> {
    token
        .bytes()
        .filter(|byte| !matches!(byte, b'-' | b' ' | b'\t'))
        .map(|byte| byte.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_token_is_five_groups_of_unambiguous_characters_kept_for_root() {
        let dir = tempfile::tempdir().unwrap();
        let token = issue(dir.path()).unwrap().unwrap();
        let groups: Vec<&str> = token.as_str().split('-').collect();
        assert_eq!(groups.len(), TOKEN_CHARS / GROUP, "{}", token.as_str());
        assert!(
            groups
                .iter()
                .all(|group| group.len() == GROUP
                    && group.bytes().all(|byte| ALPHABET.contains(&byte))),
            "{}",
            token.as_str()
        );
        let mode = fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(issue(dir.path()).unwrap(), Some(token.clone()));
        assert_eq!(current(dir.path()).unwrap(), Some(token.clone()));
        assert_ne!(SetupToken::random().unwrap(), token);
        assert_eq!(format!("{token:?}"), "SetupToken(..)");
    }

    #[test]
    fn the_right_token_is_claimed_once_typed_loosely_and_then_spent() {
        let dir = tempfile::tempdir().unwrap();
        let token = issue(dir.path()).unwrap().unwrap();
        let typed = format!(" {} ", token.as_str().replace('-', " ").to_uppercase());
        assert!(matches!(
            claim(dir.path(), "abcde-fghjk-mnpqr-stuvw"),
            Err(ClaimRefusal::Wrong)
        ));
        assert!(matches!(claim(dir.path(), ""), Err(ClaimRefusal::Wrong)));
        claim(dir.path(), &typed).unwrap();
        assert!(matches!(
            claim(dir.path(), token.as_str()),
            Err(ClaimRefusal::Spent)
        ));
        assert_eq!(current(dir.path()).unwrap(), None);
        // A spent token is not replaced by a new one.
        assert_eq!(issue(dir.path()).unwrap(), None);
    }

    #[test]
    fn of_many_claims_at_once_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let token = issue(dir.path()).unwrap().unwrap();
        let won = std::thread::scope(|scope| {
            let claims: Vec<_> = (0..16)
                .map(|_| scope.spawn(|| claim(dir.path(), token.as_str())))
                .collect();
            claims
                .into_iter()
                .map(|claim| claim.join().unwrap())
                .filter(|result| match result {
                    Ok(()) => true,
                    Err(ClaimRefusal::Spent) => false,
                    Err(other) => panic!("{other:?}"),
                })
                .count()
        });
        assert_eq!(won, 1);
    }

    #[test]
    fn without_a_token_a_claim_says_that_none_was_issued() {
        let dir = tempfile::tempdir().unwrap();
        let refusal = claim(dir.path(), "abcde").unwrap_err();
        assert!(matches!(refusal, ClaimRefusal::NoneIssued), "{refusal:?}");
    }

    #[test]
    fn a_link_in_place_of_the_token_is_an_error_not_a_token() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(TOKEN_FILE)).unwrap();
        assert!(matches!(
            issue(dir.path()),
            Err(SetupTokenError::Unreadable { .. })
        ));
        assert!(matches!(
            claim(dir.path(), "x"),
            Err(ClaimRefusal::Failed(SetupTokenError::Unreadable { .. }))
        ));
    }

    #[test]
    fn a_run_dir_that_cannot_be_written_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let error = issue(&missing).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(&missing.join(TOKEN_FILE).display().to_string()),
            "{error}"
        );
    }
}
