//! Session checks kept for [`SESSION_RECHECK`], and shared while they are made.
//!
//! Why: every request made with the session cookie needs its caller, and asking the
//! authority (a SQLite read on a thread of the blocking pool) for each one would make the
//! database the limit of every page. A check is therefore trusted for a few seconds. When it
//! runs out, the requests in flight on that session wait for one new check instead of each
//! asking: under `cargo xtask bench web`'s 256 connections on one session, each expiry made
//! 256 checks at once, each on a thread of its own, and the server's memory grew with every
//! thread. Forgetting a session or a user (logout, a changed user) wins over a check that
//! was under way when it happened: that check's answer is not kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{ApiError, Caller};

/// How long a session's check is trusted before the authority is asked again.
pub const SESSION_RECHECK: Duration = Duration::from_secs(5);

/// The most sessions whose checks are kept; past it the oldest go first.
const MAX_CACHED_SESSIONS: usize = 10_000;

/// A session token's key: its digest, so the token itself is not kept.
type SessionKey = [u8; 32];

/// The recent checks, and the checks being made.
#[derive(Debug, Default)]
pub struct SessionChecks {
    checked: Mutex<HashMap<SessionKey, (Caller, Instant)>>,
    /// One gate per session whose check is being made; the requests behind it take the
    /// check's answer.
    in_flight: Mutex<HashMap<SessionKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Moved by every forgetting, so a check begun before it is not kept.
    forgotten: AtomicU64,
}

impl SessionChecks {
    /// Who holds the session `token`: a check younger than [`SESSION_RECHECK`], or the
    /// answer of `check` (the authority), made once for the requests that need it at the
    /// same time.
    pub async fn caller<F, Fut>(&self, token: &str, check: F) -> Result<Caller, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Caller, ApiError>>,
    {
        let key = key(token);
        if let Some(caller) = self.recent(&key) {
            return Ok(caller);
        }
        let gate = Arc::clone(lock(&self.in_flight).entry(key).or_default());
        let _turn = gate.lock().await;
        // The request that held the gate before this one may have made the check.
        if let Some(caller) = self.recent(&key) {
            return Ok(caller);
        }
        let forgotten = self.forgotten.load(Ordering::SeqCst);
        let answer = check().await;
        {
            let mut checked = lock(&self.checked);
            match &answer {
                Ok(caller) if self.forgotten.load(Ordering::SeqCst) == forgotten => {
                    let now = Instant::now();
                    if checked.len() >= MAX_CACHED_SESSIONS {
                        checked.retain(|_, (_, at)| now.duration_since(*at) < SESSION_RECHECK);
                    }
                    if checked.len() >= MAX_CACHED_SESSIONS {
                        checked.clear();
                    }
                    checked.insert(key, (caller.clone(), now));
                }
                _ => {
                    checked.remove(&key);
                }
            }
        }
        lock(&self.in_flight).remove(&key);
        answer
    }

    /// Forgets the check of the session `token` (it was ended).
    pub fn forget_session(&self, token: &str) {
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        lock(&self.checked).remove(&key(token));
    }

    /// Forgets the checks of every session of `username` (the user was changed, disabled or
    /// deleted, or one of their sessions was revoked by its id).
    pub fn forget_user(&self, username: &str) {
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        lock(&self.checked).retain(|_, (caller, _)| caller.username != username);
    }

    fn recent(&self, key: &SessionKey) -> Option<Caller> {
        let checked = lock(&self.checked);
        let (caller, at) = checked.get(key)?;
        (at.elapsed() < SESSION_RECHECK).then(|| caller.clone())
    }
}

fn key(token: &str) -> SessionKey {
    Sha256::digest(token.as_bytes()).into()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use mfv_auth::Role;

    use super::super::Credential;
    use super::*;

    fn caller(username: &str) -> Caller {
        Caller {
            username: username.to_owned(),
            role: Role::Viewer,
            credential: Credential::Session,
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_check_and_later_ones_take_it() {
        let checks = Arc::new(SessionChecks::default());
        let asked = Arc::new(AtomicUsize::new(0));
        let requests = (0..64).map(|_| {
            let (checks, asked) = (Arc::clone(&checks), Arc::clone(&asked));
            tokio::spawn(async move {
                checks
                    .caller("token", || async {
                        asked.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(caller("ada"))
                    })
                    .await
            })
        });
        for request in futures_util::future::join_all(requests).await {
            assert_eq!(request.unwrap().unwrap().username, "ada");
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        let again = checks
            .caller("token", || async { panic!("the kept check is used") })
            .await;
        assert_eq!(again.unwrap().username, "ada");
        assert!(lock(&checks.in_flight).is_empty());
    }

    #[tokio::test]
    async fn a_refused_check_is_not_kept_and_the_next_request_asks_again() {
        let checks = SessionChecks::default();
        let refused = checks
            .caller("token", || async {
                Err(ApiError::unauthenticated("the session ended"))
            })
            .await;
        assert_eq!(refused.unwrap_err().body.kind, "unauthenticated");
        let asked = AtomicUsize::new(0);
        let caller = checks
            .caller("token", || async {
                asked.fetch_add(1, Ordering::SeqCst);
                Ok(caller("ada"))
            })
            .await;
        assert_eq!(caller.unwrap().username, "ada");
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn forgetting_during_a_check_wins_over_its_answer() {
        let checks = SessionChecks::default();
        let answer = checks
            .caller("token", || async {
                checks.forget_user("ada");
                Ok(caller("ada"))
            })
            .await;
        assert_eq!(answer.unwrap().username, "ada");
        assert!(checks.recent(&key("token")).is_none());
        checks
            .caller("token", || async { Ok(caller("ada")) })
            .await
            .unwrap();
        assert!(checks.recent(&key("token")).is_some());
        checks.forget_session("token");
        assert!(checks.recent(&key("token")).is_none());
    }
}
