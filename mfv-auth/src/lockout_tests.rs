//! Tests of the lockout under concurrency: a backend that holds password checks open shows
//! how many passwords are really checked while logins run at once, from one connection or
//! from two sharing the database file as mfv-web and the `mfv` command do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, mpsc};

use crate::authenticator_tests::{MINUTE, START, fixture, ip};
use crate::backend::{BackendError, BoxFuture, CheckReport, UserBackend, UserRecord};
use crate::{
    AuthPolicy, Authenticator, LoginError, Password, SqliteState, SqliteUserBackend, Username,
};

/// What the held password checks and the login tasks tell the test.
#[derive(Debug)]
enum Event {
    /// A check of the held password started and waits for the gate.
    Held,
    /// A login task ended.
    Finished(Result<(), LoginError>),
}

/// A user backend over SQLite that counts every password check and holds the checks of one
/// password until the test opens the gate.
struct GatedBackend {
    inner: SqliteUserBackend,
    held_password: &'static str,
    /// Closed to open the gate: acquiring a closed semaphore returns at once.
    gate: Semaphore,
    checks: AtomicUsize,
    events: mpsc::UnboundedSender<Event>,
}

impl GatedBackend {
    fn new(
        inner: SqliteUserBackend,
        held_password: &'static str,
        events: mpsc::UnboundedSender<Event>,
    ) -> Arc<Self> {
        Arc::new(GatedBackend {
            inner,
            held_password,
            gate: Semaphore::new(0),
            checks: AtomicUsize::new(0),
            events,
        })
    }

    fn open_gate(&self) {
        self.gate.close();
    }

    fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
}

impl UserBackend for GatedBackend {
    fn name(&self) -> &'static str {
        "gated"
    }

    fn verify_password<'a>(
        &'a self,
        user: &'a Username,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        Box::pin(async move {
            self.checks.fetch_add(1, Ordering::SeqCst);
            if password.expose() == self.held_password {
                self.events.send(Event::Held).unwrap();
                assert!(self.gate.acquire().await.is_err(), "the gate only closes");
            }
            self.inner.verify_password(user, password).await
        })
    }

    fn find_user<'a>(
        &'a self,
        user: &'a Username,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        self.inner.find_user(user)
    }

    fn list_users<'a>(&'a self) -> BoxFuture<'a, Result<Vec<UserRecord>, BackendError>> {
        self.inner.list_users()
    }

    fn check<'a>(&'a self, user: &'a Username) -> BoxFuture<'a, CheckReport> {
        self.inner.check(user)
    }
}

/// Starts a login as `user` with `password` from 192.0.2.1 that reports its end as an event.
fn spawn_login(
    auth: &Authenticator,
    user: &'static str,
    password: &'static str,
    events: &mpsc::UnboundedSender<Event>,
) {
    let (auth, events) = (auth.clone(), events.clone());
    tokio::spawn(async move {
        let result = auth
            .login(user, password, None, ip("192.0.2.1"))
            .await
            .map(drop);
        events.send(Event::Finished(result)).unwrap();
    });
}

#[tokio::test]
async fn concurrent_logins_check_at_most_the_limit_and_none_gets_in_while_locked() {
    let f = fixture().await;
    let (events_sender, mut events) = mpsc::unbounded_channel();
    let backend = GatedBackend::new(f.users.clone(), "guess-password", events_sender.clone());
    // Two connections to one database file, like two processes.
    let second_connection = SqliteState::open(f.dir.path().join("auth.db"))
        .await
        .unwrap();
    let auths = [f.state.clone(), second_connection].map(|state| {
        Authenticator::new(
            backend.clone(),
            state,
            f.clock.clone(),
            AuthPolicy::default(),
        )
    });
    let limit = AuthPolicy::default().user_throttle.max_failures as usize;

    const WRONG: usize = 39;
    for attempt in 0..WRONG {
        spawn_login(
            &auths[attempt % 2],
            "alice",
            "guess-password",
            &events_sender,
        );
    }
    // Wait until every attempt has either ended or is held in its password check.
    let (mut held, mut finished) = (0, Vec::new());
    while held + finished.len() < WRONG {
        match events.recv().await.unwrap() {
            Event::Held => held += 1,
            Event::Finished(result) => finished.push(result),
        }
    }
    assert_eq!(backend.checks(), limit, "passwords checked at once");
    assert_eq!(held, limit);
    for result in &finished {
        assert!(
            matches!(result, Err(LoginError::AttemptsInProgress)),
            "{result:?}"
        );
    }
    // The right password is not checked while the limit's worth of attempts is in flight.
    for auth in &auths {
        let error = auth
            .login("alice", "alice-password", None, ip("192.0.2.1"))
            .await
            .unwrap_err();
        assert!(matches!(error, LoginError::AttemptsInProgress), "{error:?}");
    }

    backend.open_gate();
    for _ in 0..limit {
        let event = events.recv().await.unwrap();
        assert!(
            matches!(event, Event::Finished(Err(LoginError::InvalidCredentials))),
            "{event:?}"
        );
    }
    // Those failures locked the name: the right password is refused, unchecked, on both.
    for auth in &auths {
        let error = auth
            .login("alice", "alice-password", None, ip("192.0.2.1"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, LoginError::LockedOut { until } if until == START.plus(15 * MINUTE)),
            "{error:?}"
        );
    }
    assert_eq!(backend.checks(), limit, "no password checked while locked");
    let events = f.events().await;
    let refused_in_flight = events
        .iter()
        .filter(|event| *event == "login refused alice")
        .count();
    assert!(refused_in_flight >= WRONG, "{events:?}");
}

#[tokio::test]
async fn a_success_never_lifts_a_lockout() {
    let f = fixture().await;
    let (events_sender, mut events) = mpsc::unbounded_channel();
    let backend = GatedBackend::new(f.users.clone(), "alice-password", events_sender.clone());
    let auth = Authenticator::new(
        backend.clone(),
        f.state.clone(),
        f.clock.clone(),
        AuthPolicy::default(),
    );
    spawn_login(&auth, "alice", "alice-password", &events_sender);
    assert!(matches!(events.recv().await, Some(Event::Held)));

    // The held attempt outlives its window, so it no longer counts, and the name locks.
    f.advance(15 * MINUTE);
    for _ in 0..5 {
        let error = auth
            .login("alice", "guess-password", None, ip("192.0.2.7"))
            .await
            .unwrap_err();
        assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
    }
    let locked_until = START.plus(30 * MINUTE);

    // The right password, checked before the lockout and answered during it, gets no
    // session and leaves the lockout in place.
    backend.open_gate();
    let event = events.recv().await.unwrap();
    assert!(
        matches!(&event, Event::Finished(Err(LoginError::LockedOut { until })) if *until == locked_until),
        "{event:?}"
    );
    assert!(auth.list_sessions(None).await.unwrap().is_empty());
    let error = auth
        .login("alice", "alice-password", None, ip("192.0.2.8"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, LoginError::LockedOut { until } if until == locked_until),
        "{error:?}"
    );
    f.advance(15 * MINUTE);
    auth.login("alice", "alice-password", None, ip("192.0.2.8"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_attempt_whose_answer_never_came_counts_until_its_window_passes() {
    let f = fixture().await;
    let (events_sender, mut events) = mpsc::unbounded_channel();
    let backend = GatedBackend::new(f.users.clone(), "guess-password", events_sender.clone());
    let auth = Authenticator::new(
        backend.clone(),
        f.state.clone(),
        f.clock.clone(),
        AuthPolicy::default(),
    );
    // Five logins abandoned during their password check (a client that went away).
    let mut abandoned = Vec::new();
    for _ in 0..5 {
        let auth = auth.clone();
        abandoned.push(tokio::spawn(async move {
            auth.login("alice", "guess-password", None, ip("192.0.2.1"))
                .await
                .map(drop)
        }));
        assert!(matches!(events.recv().await, Some(Event::Held)));
    }
    for task in &abandoned {
        task.abort();
    }
    for task in abandoned {
        assert!(task.await.unwrap_err().is_cancelled());
    }
    let error = f.login("alice").await.unwrap_err();
    assert!(matches!(error, LoginError::AttemptsInProgress), "{error:?}");
    assert_eq!(
        error.to_string(),
        "too many login attempts in progress: try again later"
    );
    f.advance(15 * MINUTE);
    f.login("alice").await.unwrap();
}
