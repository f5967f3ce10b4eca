//! Tests of the password check before a change to one's own account: it is throttled and
//! locked out as logins are, sharing their counters, audited with the client's address, and
//! removing a second factor needs a current code as well.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::authenticator_tests::{
    Fixture, MINUTE, START, SwitchableBackend, fixture, ip, name, pw,
};
use crate::clock::Clock;
use crate::{
    Actor, AuditEntry, AuditEvent, AuthError, AuthPolicy, Authenticator, LoginError,
    TOTP_STEP_SECONDS, Timestamp, totp_code,
};

const GUARDED: AuditEvent = AuditEvent::TotpEnrolled;

impl Fixture {
    async fn newest(&self) -> AuditEntry {
        self.auth.audit_log(1, None).await.unwrap().remove(0)
    }

    async fn check(&self, user: &str, password: &str, source: &str) -> Result<(), AuthError> {
        self.auth
            .check_current_password(&name(user), &pw(password), ip(source), GUARDED)
            .await
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_failure_audited_with_the_address_and_five_lock_the_name() {
    let f = fixture().await;
    f.check("vic", "vic-password", "192.0.2.7").await.unwrap();
    assert!(matches!(
        f.check("vic", "guess", "192.0.2.7").await,
        Err(AuthError::WrongPassword)
    ));
    let refused = f.newest().await;
    assert_eq!(
        (
            refused.event.as_str(),
            refused.outcome.as_str(),
            refused.username.as_deref(),
            refused.actor.as_deref(),
            refused.source.as_deref(),
            refused.detail.as_str(),
        ),
        (
            "totp_enrolled",
            "refused",
            Some("vic"),
            Some("vic"),
            Some("192.0.2.7"),
            "the current password given is wrong"
        )
    );
    // Four more from other addresses: the fifth failure of the name locks it.
    for last in 8..12 {
        let source = format!("192.0.2.{last}");
        assert!(matches!(
            f.check("vic", "guess", &source).await,
            Err(AuthError::WrongPassword)
        ));
    }
    let lockout = f.newest().await;
    assert_eq!(
        (lockout.event.as_str(), lockout.actor.as_deref()),
        ("lockout", Some("vic"))
    );
    // The right password is not looked at now, here or at the login form.
    let before = f.hasher.verifications();
    let until = START.plus(15 * MINUTE);
    assert!(matches!(
        f.check("vic", "vic-password", "192.0.2.7").await,
        Err(AuthError::LockedOut { until: u }) if u == until
    ));
    assert!(matches!(
        f.login("vic").await,
        Err(LoginError::LockedOut { .. })
    ));
    assert_eq!(f.hasher.verifications(), before);
    let locked = f.newest().await;
    assert!(locked.detail.contains("locked until"), "{}", locked.detail);
    // Other users are not affected; the lockout ends.
    f.check("olivia", "olivia-password", "192.0.2.7")
        .await
        .unwrap();
    f.advance(15 * MINUTE);
    f.check("vic", "vic-password", "192.0.2.7").await.unwrap();
}

#[tokio::test]
async fn failed_logins_and_failed_checks_add_up_and_a_right_password_clears_the_name() {
    let f = fixture().await;
    for _ in 0..4 {
        let _ = f.auth.login("vic", "guess", None, ip("192.0.2.1")).await;
    }
    f.check("vic", "vic-password", "192.0.2.1").await.unwrap();
    // Cleared: four more failures do not lock.
    for _ in 0..4 {
        assert!(matches!(
            f.check("vic", "guess", "192.0.2.1").await,
            Err(AuthError::WrongPassword)
        ));
    }
    f.login("vic").await.unwrap();
    for _ in 0..3 {
        let _ = f.auth.login("vic", "guess", None, ip("192.0.2.1")).await;
    }
    // Three failures at the login form, one here, and a fifth at the form locks.
    assert!(matches!(
        f.check("vic", "guess", "192.0.2.1").await,
        Err(AuthError::WrongPassword)
    ));
    let _ = f.auth.login("vic", "guess", None, ip("192.0.2.1")).await;
    assert!(matches!(
        f.check("vic", "vic-password", "192.0.2.1").await,
        Err(AuthError::LockedOut { .. })
    ));
}

#[tokio::test]
async fn twenty_failures_from_one_address_lock_the_address_for_every_name() {
    let f = fixture().await;
    let attacker = "2001:db8:1:2::10";
    // Different names, so no name is locked; names without a user count the same.
    for attempt in 0..20 {
        let result = f.check(&format!("guess{attempt}"), "guess", attacker).await;
        assert!(
            matches!(result, Err(AuthError::WrongPassword)),
            "{attempt}: {result:?}"
        );
    }
    assert!(matches!(
        f.check("alice", "alice-password", "2001:db8:1:2::99").await,
        Err(AuthError::LockedOut { .. })
    ));
    f.check("alice", "alice-password", "2001:db8:1:3::10")
        .await
        .unwrap();
    f.advance(15 * MINUTE);
    f.check("alice", "alice-password", attacker).await.unwrap();
}

#[tokio::test]
async fn a_backend_that_cannot_answer_is_an_error_and_counts_nothing() {
    let f = fixture().await;
    let backend = Arc::new(SwitchableBackend {
        inner: f.users.clone(),
        down: AtomicBool::new(true),
    });
    let auth = Authenticator::new(
        backend.clone(),
        f.state.clone(),
        f.clock.clone(),
        AuthPolicy::default(),
    );
    for _ in 0..10 {
        assert!(matches!(
            auth.check_current_password(&name("vic"), &pw("guess"), ip("192.0.2.1"), GUARDED)
                .await,
            Err(AuthError::Backend(_))
        ));
    }
    let entry = f.newest().await;
    assert_eq!(
        (entry.event.as_str(), entry.outcome.as_str()),
        ("totp_enrolled", "error")
    );
    backend.down.store(false, Ordering::SeqCst);
    auth.check_current_password(&name("vic"), &pw("vic-password"), ip("192.0.2.1"), GUARDED)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_disabled_user_is_a_wrong_password() {
    let f = fixture().await;
    assert!(matches!(
        f.check("dave", "dave-password", "192.0.2.1").await,
        Err(AuthError::WrongPassword)
    ));
}

#[tokio::test]
async fn changing_ones_own_password_is_throttled() {
    let f = fixture().await;
    let vic = name("vic");
    for _ in 0..5 {
        assert!(matches!(
            f.auth
                .change_password(&vic, &pw("guess"), &pw("new-password-1"), ip("192.0.2.1"))
                .await,
            Err(AuthError::WrongPassword)
        ));
    }
    assert!(matches!(
        f.auth
            .change_password(
                &vic,
                &pw("vic-password"),
                &pw("new-password-1"),
                ip("192.0.2.1")
            )
            .await,
        Err(AuthError::LockedOut { .. })
    ));
    let events = f.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|event| *event == "password_changed refused vic")
            .count(),
        6,
        "{events:?}"
    );
    f.login("olivia").await.unwrap();
}

/// The code of `secret_base32` at `offset` steps from the fixture's clock.
fn code(f: &Fixture, secret_base32: &str, offset: i64) -> String {
    let at = Timestamp(f.clock.now().0 + offset * TOTP_STEP_SECONDS);
    totp_code(secret_base32, at).unwrap()
}

#[tokio::test]
async fn ones_own_second_factor_is_enrolled_with_the_password_and_removed_with_a_code_too() {
    let f = fixture().await;
    let vic = name("vic");
    let source = ip("192.0.2.5");
    assert!(matches!(
        f.auth.enrol_own_totp(&vic, &pw("guess"), source).await,
        Err(AuthError::WrongPassword)
    ));
    assert!(!f.auth.totp_status(&vic).await.unwrap().enrolled);
    let enrolment = f
        .auth
        .enrol_own_totp(&vic, &pw("vic-password"), source)
        .await
        .unwrap();
    let status = f.auth.totp_status(&vic).await.unwrap();
    assert_eq!(
        (
            status.enrolled,
            status.confirmed,
            status.recovery_codes_left
        ),
        (true, false, 10)
    );
    let enrolled = f.newest().await;
    assert_eq!(
        (
            enrolled.event.as_str(),
            enrolled.outcome.as_str(),
            enrolled.source.as_deref()
        ),
        ("totp_enrolled", "ok", Some("192.0.2.5"))
    );
    let secret = enrolment.secret_base32.expose().to_owned();
    f.auth
        .confirm_totp(&Actor::User(vic.clone()), &vic, &code(&f, &secret, 0))
        .await
        .unwrap();
    assert!(f.auth.totp_status(&vic).await.unwrap().confirmed);

    // Removal: the password alone is not enough; a missing code is not a failure.
    let failures_before = f.events().await.len();
    assert!(matches!(
        f.auth
            .disable_own_totp(&vic, &pw("vic-password"), None, source)
            .await,
        Err(AuthError::TotpRequired)
    ));
    assert!(matches!(
        f.auth
            .disable_own_totp(&vic, &pw("vic-password"), Some("  "), source)
            .await,
        Err(AuthError::TotpRequired)
    ));
    assert_eq!(f.events().await.len(), failures_before + 2, "audited");
    // A wrong code, a replayed one and a wrong password with a right code are failures.
    assert!(matches!(
        f.auth
            .disable_own_totp(&vic, &pw("vic-password"), Some("000000"), source)
            .await,
        Err(AuthError::TotpInvalid)
    ));
    assert!(matches!(
        f.auth
            .disable_own_totp(
                &vic,
                &pw("vic-password"),
                Some(&code(&f, &secret, 0)),
                source
            )
            .await,
        Err(AuthError::TotpInvalid)
    ));
    assert!(matches!(
        f.auth
            .disable_own_totp(&vic, &pw("guess"), Some(&code(&f, &secret, 1)), source)
            .await,
        Err(AuthError::WrongPassword)
    ));
    assert!(f.auth.totp_status(&vic).await.unwrap().confirmed);
    // Three failures; a right password and code clear them.
    assert!(
        f.auth
            .disable_own_totp(
                &vic,
                &pw("vic-password"),
                Some(&code(&f, &secret, 1)),
                source
            )
            .await
            .unwrap()
    );
    assert_eq!(
        f.auth.totp_status(&vic).await.unwrap(),
        crate::TotpStatus {
            enrolled: false,
            confirmed: false,
            recovery_codes_left: 0
        }
    );
    f.login("vic").await.unwrap();
    let events = f.events().await;
    for expected in ["totp_disabled refused vic", "totp_disabled ok vic"] {
        assert!(events.contains(&expected.to_owned()), "{events:?}");
    }
}

#[tokio::test]
async fn a_recovery_code_removes_the_second_factor_and_a_pending_one_needs_the_password_only() {
    let f = fixture().await;
    let vic = name("vic");
    let source = ip("192.0.2.5");
    let enrolment = f
        .auth
        .enrol_own_totp(&vic, &pw("vic-password"), source)
        .await
        .unwrap();
    f.auth
        .confirm_totp(
            &Actor::User(vic.clone()),
            &vic,
            &code(&f, enrolment.secret_base32.expose(), 0),
        )
        .await
        .unwrap();
    let recovery = enrolment.recovery_codes[0].expose().to_owned();
    assert!(
        f.auth
            .disable_own_totp(&vic, &pw("vic-password"), Some(&recovery), source)
            .await
            .unwrap()
    );
    assert!(
        f.events()
            .await
            .contains(&"recovery_code_used ok vic".to_owned())
    );

    f.auth
        .enrol_own_totp(&vic, &pw("vic-password"), source)
        .await
        .unwrap();
    assert!(
        f.auth
            .disable_own_totp(&vic, &pw("vic-password"), None, source)
            .await
            .unwrap()
    );
    // Nothing left to remove: still a password check, and the answer says so.
    assert!(
        !f.auth
            .disable_own_totp(&vic, &pw("vic-password"), None, source)
            .await
            .unwrap()
    );
    assert!(matches!(
        f.auth
            .disable_own_totp(&vic, &pw("guess"), None, source)
            .await,
        Err(AuthError::WrongPassword)
    ));
}

#[tokio::test]
async fn an_administrators_reset_removes_the_second_factor_ends_the_sessions_and_is_audited() {
    let f = fixture().await;
    let vic = name("vic");
    let alice = Actor::Remote {
        user: name("alice"),
        address: ip("192.0.2.20"),
    };
    let session = f.login("vic").await.unwrap();
    assert!(!f.auth.reset_totp(&alice, &vic).await.unwrap());
    f.auth.check_session(session.token.expose()).await.unwrap();
    let none = f.newest().await;
    assert_eq!(
        (
            none.event.as_str(),
            none.actor.as_deref(),
            none.source.as_deref(),
            none.detail.as_str()
        ),
        (
            "totp_disabled",
            Some("alice"),
            Some("192.0.2.20"),
            "reset by an administrator: there was none"
        )
    );
    f.auth.enrol_totp(&Actor::Local, &vic).await.unwrap();
    assert!(f.auth.reset_totp(&alice, &vic).await.unwrap());
    assert!(f.auth.check_session(session.token.expose()).await.is_err());
    assert!(!f.auth.totp_status(&vic).await.unwrap().enrolled);
    let events = f.events().await;
    let tail: Vec<&str> = events.iter().rev().take(2).map(String::as_str).collect();
    assert_eq!(tail, ["session_revoked ok vic", "totp_disabled ok vic"]);
    f.login("vic").await.unwrap();
}
