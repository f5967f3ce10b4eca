//! Tests of the authenticator over the SQLite user backend and state store in a temp dir,
//! with a manual clock.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::backend::{
    AdminError, BackendError, BoxFuture, CheckReport, StepOutcome, UserBackend, UserRecord,
};
use crate::clock::Clock;
use crate::totp::{TOTP_STEP_SECONDS, hotp, time_step};
use crate::{
    Actor, Argon2Params, AuthError, AuthPolicy, Authenticator, CheckError, LoginError, ManualClock,
    Password, PasswordError, PasswordHasher, Role, SqliteState, SqliteUserBackend, Timestamp,
    Username,
};

pub(crate) const START: Timestamp = Timestamp(1_795_668_780);
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

pub(crate) fn name(text: &str) -> Username {
    text.parse().unwrap()
}

pub(crate) fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub(crate) fn pw(text: &str) -> Password {
    Password::new(text).unwrap()
}

/// A user backend that forwards to SQLite until it is switched off, then answers
/// `Unavailable` to everything. It offers no admin interface (like LDAP).
pub(crate) struct SwitchableBackend {
    pub(crate) inner: SqliteUserBackend,
    pub(crate) down: AtomicBool,
}

impl SwitchableBackend {
    fn unavailable() -> BackendError {
        BackendError::Unavailable {
            backend: "switchable",
            reason: "connection refused".into(),
        }
    }
}

impl UserBackend for SwitchableBackend {
    fn name(&self) -> &'static str {
        "switchable"
    }

    fn verify_password<'a>(
        &'a self,
        user: &'a Username,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Self::unavailable()) });
        }
        self.inner.verify_password(user, password)
    }

    fn find_user<'a>(
        &'a self,
        user: &'a Username,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Self::unavailable()) });
        }
        self.inner.find_user(user)
    }

    fn list_users<'a>(&'a self) -> BoxFuture<'a, Result<Vec<UserRecord>, BackendError>> {
        self.inner.list_users()
    }

    fn check<'a>(&'a self, user: &'a Username) -> BoxFuture<'a, CheckReport> {
        self.inner.check(user)
    }
}

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) users: SqliteUserBackend,
    pub(crate) state: SqliteState,
    pub(crate) auth: Authenticator,
}

/// Small argon2 parameters: these tests are about behaviour; the cost is benchmarked.
fn test_hasher() -> PasswordHasher {
    PasswordHasher::new(Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap()
}

pub(crate) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let state = SqliteState::open(dir.path().join("auth.db")).await.unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let hasher = test_hasher();
    let users = SqliteUserBackend::with_clock(state.clone(), hasher.clone(), clock.clone());
    let auth = Authenticator::new(
        Arc::new(users.clone()),
        state.clone(),
        clock.clone(),
        AuthPolicy::default(),
    );
    for (user, role, disabled) in [
        ("alice", Role::Admin, false),
        ("olivia", Role::Operator, false),
        ("vic", Role::Viewer, false),
        ("dave", Role::Operator, true),
    ] {
        let record = UserRecord {
            username: name(user),
            display_name: format!("{user} display"),
            role,
            disabled,
            account_id: None,
        };
        auth.add_user(&Actor::Local, &record, &pw(&format!("{user}-password")))
            .await
            .unwrap();
    }
    Fixture {
        dir,
        clock,
        hasher,
        users,
        state,
        auth,
    }
}

impl Fixture {
    pub(crate) async fn login(&self, user: &str) -> Result<crate::Session, LoginError> {
        self.auth
            .login(user, &format!("{user}-password"), None, ip("192.0.2.1"))
            .await
    }

    pub(crate) async fn events(&self) -> Vec<String> {
        let mut entries = self.auth.audit_log(1000, None).await.unwrap();
        entries.reverse();
        entries
            .iter()
            .map(|entry| {
                format!(
                    "{} {} {}",
                    entry.event,
                    entry.outcome,
                    entry.username.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    pub(crate) fn advance(&self, duration: Duration) {
        self.clock.advance(duration);
    }
}

#[tokio::test]
async fn login_opens_a_session_that_checks() {
    let f = fixture().await;
    let session = f.login("alice").await.unwrap();
    assert_eq!(session.token.expose().len(), 64);
    assert_eq!(session.info.username, name("alice"));
    assert_eq!(session.info.role, Role::Admin);
    assert_eq!(session.info.source, "192.0.2.1");
    assert_eq!(session.info.expires_at, START.plus(12 * 60 * MINUTE));
    assert_eq!(session.info.idle_expires_at, START.plus(30 * MINUTE));

    let info = f.auth.check_session(session.token.expose()).await.unwrap();
    assert_eq!(info, session.info);
    assert!(matches!(
        f.auth.check_session("0".repeat(64).as_str()).await,
        Err(CheckError::SessionInvalid)
    ));
    // Only the digest is stored.
    let token = session.token.expose().to_owned();
    let stored = f
        .state
        .run(move |connection| {
            connection.query_row(
                "SELECT count(*) FROM sessions WHERE token_hash = ?1 OR CAST(token_hash AS TEXT) = ?1",
                [token],
                |row| row.get::<_, i64>(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(stored, 0);
    assert!(f.events().await.contains(&"login ok alice".to_owned()));
}

#[tokio::test]
async fn unknown_user_wrong_password_and_disabled_user_are_one_answer() {
    let f = fixture().await;
    let before = f.hasher.verifications();
    let unknown = f
        .auth
        .login("mallory", "mallory-password", None, ip("192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(
        f.hasher.verifications(),
        before + 1,
        "unknown user costs a verification"
    );
    let wrong = f
        .auth
        .login("alice", "bob-password", None, ip("192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(
        f.hasher.verifications(),
        before + 2,
        "wrong password costs a verification"
    );
    let disabled = f.login("dave").await.unwrap_err();
    assert_eq!(
        f.hasher.verifications(),
        before + 3,
        "disabled user costs a verification"
    );
    for error in [&unknown, &wrong, &disabled] {
        assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
        assert_eq!(error.to_string(), "invalid user name or password");
    }
    let events = f.events().await;
    for user in ["mallory", "alice", "dave"] {
        assert!(
            events.contains(&format!("login refused {user}")),
            "{events:?}"
        );
    }
}

#[tokio::test]
async fn password_form_is_checked_before_anything_else() {
    let f = fixture().await;
    let source = ip("192.0.2.1");
    assert!(matches!(
        f.auth.login("alice", "", None, source).await,
        Err(LoginError::Password(PasswordError::Empty))
    ));
    let over = "x".repeat(4097);
    let error = f
        .auth
        .login("alice", &over, None, source)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "password has 4097 bytes, at most 4096 allowed"
    );

    let max = "é".repeat(2048);
    assert_eq!(max.len(), 4096);
    f.auth
        .set_password(&Actor::Local, &name("alice"), &pw(&max))
        .await
        .unwrap();
    f.auth.login("alice", &max, None, source).await.unwrap();
}

#[tokio::test]
async fn passwords_shorter_than_the_minimum_are_refused_with_the_reason() {
    let f = fixture().await;
    assert_eq!(f.auth.policy().min_password_chars, 8);
    let record = UserRecord {
        username: name("zoe"),
        display_name: String::new(),
        role: Role::Viewer,
        disabled: false,
        account_id: None,
    };
    let error = f
        .auth
        .add_user(&Actor::Local, &record, &pw("x"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "password has 1 character, at least 8 required"
    );
    assert_eq!(f.auth.find_user(&name("zoe")).await.unwrap(), None);
    // Characters are counted, not bytes: seven two-byte characters are still too short.
    let error = f
        .auth
        .set_password(&Actor::Local, &name("vic"), &pw("ééééééé"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            AuthError::Admin(AdminError::PasswordTooShort { chars: 7, min: 8 })
        ),
        "{error:?}"
    );
    f.login("vic").await.unwrap();
    let events = f.events().await;
    assert!(
        events.contains(&"user_added refused zoe".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"password_changed refused vic".to_owned()),
        "{events:?}"
    );
    f.auth
        .set_password(&Actor::Local, &name("vic"), &pw("éééééééé"))
        .await
        .unwrap();

    // The minimum is the policy's; logins are not held to it (the backend decides).
    let auth = Authenticator::new(
        Arc::new(f.users.clone()),
        f.state.clone(),
        f.clock.clone(),
        AuthPolicy {
            min_password_chars: 12,
            ..AuthPolicy::default()
        },
    );
    let error = auth
        .set_password(&Actor::Local, &name("vic"), &pw("eleven-char"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "password has 11 characters, at least 12 required"
    );
    auth.login("vic", "éééééééé", None, ip("192.0.2.1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn injection_strings_do_nothing() {
    let f = fixture().await;
    let source = ip("198.51.100.9");
    let attacks = [
        "*)(uid=*",
        "admin)(|(a=*",
        "' OR 1=1 --",
        "alice' --",
        "alice\0",
    ];
    for attack in attacks {
        assert!(matches!(
            f.auth.login(attack, "alice-password", None, source).await,
            Err(LoginError::InvalidCredentials)
        ));
        assert!(matches!(
            f.auth.login("alice", attack, None, source).await,
            Err(LoginError::InvalidCredentials)
        ));
        assert!(matches!(
            f.auth.check_session(attack).await,
            Err(CheckError::SessionInvalid)
        ));
        assert!(matches!(
            f.auth.check_api_token(&format!("mfv_{attack}")).await,
            Err(CheckError::TokenInvalid)
        ));
        assert!(attack.parse::<Username>().is_err());
    }
    // The users are intact, and a password made of SQL is just a password.
    assert_eq!(f.auth.list_users().await.unwrap().len(), 4);
    f.auth
        .set_password(&Actor::Local, &name("vic"), &pw("' OR 1=1 --"))
        .await
        .unwrap();
    f.auth
        .login("vic", "' OR 1=1 --", None, ip("192.0.2.2"))
        .await
        .unwrap();
    assert!(
        f.auth
            .login("vic", "' OR 1=2 --", None, ip("192.0.2.2"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn unicode_names_are_refused_and_display_names_accepted() {
    let f = fixture().await;
    assert!("jörg".parse::<Username>().is_err());
    assert!(matches!(
        f.auth.login("jörg", "pw", None, ip("192.0.2.1")).await,
        Err(LoginError::InvalidCredentials)
    ));
    let record = UserRecord {
        username: name("joerg"),
        display_name: "Jörg Müller 山田".into(),
        role: Role::Viewer,
        disabled: false,
        account_id: None,
    };
    let password = "пароль🔑 café";
    f.auth
        .add_user(&Actor::Local, &record, &pw(password))
        .await
        .unwrap();
    let found = f.auth.find_user(&name("joerg")).await.unwrap().unwrap();
    assert_eq!(found.display_name, "Jörg Müller 山田");
    f.auth
        .login("joerg", password, None, ip("192.0.2.1"))
        .await
        .unwrap();
    // Decomposed é: a different password (no normalisation).
    assert!(
        f.auth
            .login("joerg", "пароль🔑 cafe\u{301}", None, ip("192.0.2.1"))
            .await
            .is_err()
    );
    let error = f
        .auth
        .set_display_name(&Actor::Local, &name("joerg"), "two\nlines")
        .await
        .unwrap_err();
    assert!(
        matches!(error, AuthError::Admin(AdminError::DisplayName(_))),
        "{error}"
    );
}

#[tokio::test]
async fn sessions_expire_when_idle_and_absolutely() {
    let f = fixture().await;
    let session = f.login("olivia").await.unwrap();
    let token = session.token.expose();
    // Used every 29 minutes it lives on.
    for _ in 0..3 {
        f.advance(29 * MINUTE);
        f.auth.check_session(token).await.unwrap();
    }
    // 30 idle minutes end it.
    f.advance(30 * MINUTE);
    assert!(matches!(
        f.auth.check_session(token).await,
        Err(CheckError::SessionInvalid)
    ));
    assert!(f.auth.list_sessions(None).await.unwrap().is_empty());

    // However often it is used, 12 hours end it.
    let session = f.login("olivia").await.unwrap();
    let token = session.token.expose();
    for _ in 0..(12 * 60 / 20 - 1) {
        f.advance(20 * MINUTE);
        f.auth.check_session(token).await.unwrap();
    }
    f.advance(20 * MINUTE);
    assert!(matches!(
        f.auth.check_session(token).await,
        Err(CheckError::SessionInvalid)
    ));
}

#[tokio::test]
async fn sessions_are_listed_and_revoked() {
    let f = fixture().await;
    let first = f.login("olivia").await.unwrap();
    let second = f.login("olivia").await.unwrap();
    let third = f.login("olivia").await.unwrap();
    let other = f.login("vic").await.unwrap();
    let ids = |sessions: Vec<crate::SessionInfo>| sessions.iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(f.auth.list_sessions(Some(&name("olivia"))).await.unwrap()),
        [first.info.id, second.info.id, third.info.id]
    );
    let admin = Actor::User(name("alice"));
    f.auth.revoke_session(&admin, first.info.id).await.unwrap();
    assert!(f.auth.check_session(first.token.expose()).await.is_err());
    f.auth.check_session(second.token.expose()).await.unwrap();
    assert!(matches!(
        f.auth.revoke_session(&admin, first.info.id).await,
        Err(AuthError::NoSuchSession { .. })
    ));
    f.auth
        .logout(second.token.expose(), ip("192.0.2.1"))
        .await
        .unwrap();
    assert!(f.auth.check_session(second.token.expose()).await.is_err());
    assert_eq!(
        f.auth
            .revoke_all_sessions(&admin, &name("olivia"))
            .await
            .unwrap(),
        1
    );
    assert!(f.auth.check_session(third.token.expose()).await.is_err());
    f.auth.check_session(other.token.expose()).await.unwrap();
    let events = f.events().await;
    assert!(events.contains(&"session_revoked ok olivia".to_owned()));
    assert!(events.contains(&"logout ok olivia".to_owned()));
}

#[tokio::test]
async fn user_changes_reach_sessions() {
    let f = fixture().await;
    let session = f.login("olivia").await.unwrap();
    let token = session.token.expose();
    f.auth
        .set_role(&Actor::Local, &name("olivia"), Role::Viewer)
        .await
        .unwrap();
    assert_eq!(
        f.auth.check_session(token).await.unwrap().role,
        Role::Viewer
    );
    f.auth
        .set_disabled(&Actor::Local, &name("olivia"), true)
        .await
        .unwrap();
    assert!(f.auth.check_session(token).await.is_err());
    assert!(f.login("olivia").await.is_err());
    f.auth
        .set_disabled(&Actor::Local, &name("olivia"), false)
        .await
        .unwrap();
    let session = f.login("olivia").await.unwrap();
    f.auth
        .set_password(&Actor::Local, &name("olivia"), &pw("new password"))
        .await
        .unwrap();
    assert!(f.auth.check_session(session.token.expose()).await.is_err());

    // A change made behind the authenticator's back (LDAP, another tool) is seen at the
    // next re-check.
    let session = f
        .auth
        .login("olivia", "new password", None, ip("192.0.2.1"))
        .await
        .unwrap();
    crate::UserAdmin::set_role(&f.users, &name("olivia"), Role::Admin)
        .await
        .unwrap();
    assert_eq!(
        f.auth
            .check_session(session.token.expose())
            .await
            .unwrap()
            .role,
        Role::Viewer,
        "not yet re-checked"
    );
    f.advance(MINUTE);
    assert_eq!(
        f.auth
            .check_session(session.token.expose())
            .await
            .unwrap()
            .role,
        Role::Admin
    );
    crate::UserAdmin::delete_user(&f.users, &name("olivia"))
        .await
        .unwrap();
    f.advance(MINUTE);
    assert!(f.auth.check_session(session.token.expose()).await.is_err());
}

#[tokio::test]
async fn api_tokens_are_scoped_expire_and_revoke() {
    let f = fixture().await;
    let owner = name("olivia");
    let actor = Actor::User(owner.clone());
    let year = 365 * 24 * 60 * MINUTE;
    let error = f
        .auth
        .create_api_token(&actor, &owner, "ci", Role::Admin, year)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "an API token of olivia cannot have role admin: olivia is only operator"
    );
    let token = f
        .auth
        .create_api_token(&actor, &owner, "ci", Role::Operator, 7 * 24 * 60 * MINUTE)
        .await
        .unwrap();
    let secret = token.secret.expose();
    assert!(secret.starts_with("mfv_") && secret.len() == 68, "{secret}");
    let info = f.auth.check_api_token(secret).await.unwrap();
    assert_eq!(
        (info.role, info.effective_role),
        (Role::Operator, Role::Operator)
    );
    assert_eq!(info.name, "ci");
    assert!(matches!(
        f.auth
            .create_api_token(&actor, &owner, "ci", Role::Viewer, MINUTE)
            .await,
        Err(AuthError::TokenNameTaken { .. })
    ));
    for bad_name in ["", "a\nb", &"x".repeat(65)] {
        assert!(matches!(
            f.auth
                .create_api_token(&actor, &owner, bad_name, Role::Viewer, MINUTE)
                .await,
            Err(AuthError::TokenName { .. })
        ));
    }
    assert!(matches!(
        f.auth
            .create_api_token(&actor, &owner, "long", Role::Viewer, year + MINUTE)
            .await,
        Err(AuthError::TokenLifetime { max_days: 365 })
    ));
    for missing in ["dave", "mallory"] {
        assert!(matches!(
            f.auth
                .create_api_token(&actor, &name(missing), "x", Role::Viewer, MINUTE)
                .await,
            Err(AuthError::NoSuchUser { .. })
        ));
    }

    // Demoting the owner lowers what the token grants.
    f.auth
        .set_role(&Actor::Local, &owner, Role::Viewer)
        .await
        .unwrap();
    let info = f.auth.check_api_token(secret).await.unwrap();
    assert_eq!(
        (info.role, info.effective_role),
        (Role::Operator, Role::Viewer)
    );
    // Disabling the owner stops it; enabling brings it back.
    f.auth
        .set_disabled(&Actor::Local, &owner, true)
        .await
        .unwrap();
    assert!(matches!(
        f.auth.check_api_token(secret).await,
        Err(CheckError::TokenInvalid)
    ));
    f.auth
        .set_disabled(&Actor::Local, &owner, false)
        .await
        .unwrap();
    f.auth.check_api_token(secret).await.unwrap();

    // Expiry.
    f.advance(7 * 24 * 60 * MINUTE);
    assert!(matches!(
        f.auth.check_api_token(secret).await,
        Err(CheckError::TokenInvalid)
    ));

    // Listing and revoking.
    let short = f
        .auth
        .create_api_token(&actor, &owner, "short", Role::Viewer, MINUTE)
        .await
        .unwrap();
    let listed = f.auth.list_api_tokens(Some(&owner)).await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["ci", "short"]
    );
    f.auth
        .revoke_api_token(&actor, short.info.id)
        .await
        .unwrap();
    assert!(f.auth.check_api_token(short.secret.expose()).await.is_err());
    assert!(matches!(
        f.auth.revoke_api_token(&actor, short.info.id).await,
        Err(AuthError::NoSuchToken { .. })
    ));
    assert_eq!(
        f.auth.purge_expired().await.unwrap(),
        1,
        "the expired ci token"
    );
    assert!(f.auth.list_api_tokens(None).await.unwrap().is_empty());
    let events = f.events().await;
    for expected in [
        "token_created refused olivia",
        "token_created ok olivia",
        "token_revoked ok olivia",
    ] {
        assert!(
            events.contains(&expected.to_owned()),
            "{expected}: {events:?}"
        );
    }
    // A session token is not an API token.
    let session = f.login("vic").await.unwrap();
    assert!(
        f.auth
            .check_api_token(session.token.expose())
            .await
            .is_err()
    );
}

fn base32_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut buffer = 0u32;
    let mut out = Vec::new();
    for c in text.bytes() {
        let value = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .iter()
            .position(|&a| a == c)
            .unwrap() as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

#[tokio::test]
async fn totp_enrolment_login_window_replay_and_recovery_codes() {
    let f = fixture().await;
    let user = name("vic");
    let actor = Actor::User(user.clone());
    let source = ip("192.0.2.1");
    let enrolment = f.auth.enrol_totp(&actor, &user).await.unwrap();
    let secret = base32_decode(enrolment.secret_base32.expose());
    assert_eq!(secret.len(), 20);
    assert!(
        enrolment
            .otpauth_uri
            .expose()
            .starts_with("otpauth://totp/Minifed-Virt:vic?secret=")
    );
    assert_eq!(enrolment.recovery_codes.len(), 10);
    let code_at = |offset: i64| {
        let step = time_step(f.clock.now()) + offset;
        hotp(&secret, step as u64, 6)
    };

    // Not confirmed yet: the password alone still logs in.
    f.login("vic").await.unwrap();
    assert!(!f.auth.totp_enabled(&user).await.unwrap());
    assert!(matches!(
        f.auth.confirm_totp(&actor, &user, "000000x").await,
        Err(AuthError::TotpInvalid)
    ));
    f.auth
        .confirm_totp(&actor, &user, &code_at(0))
        .await
        .unwrap();
    assert!(f.auth.totp_enabled(&user).await.unwrap());
    assert!(matches!(
        f.auth.enrol_totp(&actor, &user).await,
        Err(AuthError::TotpAlreadyEnabled { .. })
    ));
    assert!(matches!(
        f.auth.confirm_totp(&actor, &user, &code_at(0)).await,
        Err(AuthError::TotpNotEnrolled { .. })
    ));

    // The password alone is not enough any more.
    assert!(matches!(
        f.login("vic").await,
        Err(LoginError::TotpRequired)
    ));
    // The confirming code was used: the same step is not accepted again.
    let password = "vic-password";
    assert!(matches!(
        f.auth
            .login("vic", password, Some(&code_at(0)), source)
            .await,
        Err(LoginError::TotpInvalid)
    ));
    // Next step (within the window) works, once.
    f.advance(Duration::from_secs(TOTP_STEP_SECONDS as u64));
    let code = code_at(0);
    f.auth
        .login("vic", password, Some(&code), source)
        .await
        .unwrap();
    assert!(matches!(
        f.auth.login("vic", password, Some(&code), source).await,
        Err(LoginError::TotpInvalid)
    ));
    // One step ahead is in the window; two are not.
    f.advance(Duration::from_secs(TOTP_STEP_SECONDS as u64));
    assert!(
        f.auth
            .login("vic", password, Some(&code_at(2)), source)
            .await
            .is_err()
    );
    f.auth
        .login("vic", password, Some(&code_at(1)), source)
        .await
        .unwrap();
    // A wrong password with a right code is still refused as credentials.
    f.advance(Duration::from_secs(3 * TOTP_STEP_SECONDS as u64));
    assert!(matches!(
        f.auth.login("vic", "nope", Some(&code_at(0)), source).await,
        Err(LoginError::InvalidCredentials)
    ));

    // Recovery codes work once each, in any case and with spaces for dashes.
    let recovery = enrolment.recovery_codes[3]
        .expose()
        .to_uppercase()
        .replace('-', " ");
    f.auth
        .login("vic", password, Some(&recovery), source)
        .await
        .unwrap();
    assert!(matches!(
        f.auth.login("vic", password, Some(&recovery), source).await,
        Err(LoginError::TotpInvalid)
    ));
    assert_eq!(f.auth.recovery_codes_left(&user).await.unwrap(), 9);
    let events = f.events().await;
    for expected in [
        "totp_enrolled ok vic",
        "totp_confirmed refused vic",
        "totp_confirmed ok vic",
        "recovery_code_used ok vic",
    ] {
        assert!(
            events.contains(&expected.to_owned()),
            "{expected}: {events:?}"
        );
    }

    assert!(f.auth.disable_totp(&actor, &user).await.unwrap());
    assert_eq!(f.auth.recovery_codes_left(&user).await.unwrap(), 0);
    f.login("vic").await.unwrap();
    assert!(!f.auth.disable_totp(&actor, &user).await.unwrap());
}

#[tokio::test]
async fn lockout_per_user_name_and_its_expiry() {
    let f = fixture().await;
    for attempt in 0..5 {
        let source = ip(&format!("192.0.2.{}", 10 + attempt));
        assert!(matches!(
            f.auth.login("alice", "guess", None, source).await,
            Err(LoginError::InvalidCredentials)
        ));
    }
    // Now even the right password, from anywhere, is refused without being checked.
    let before = f.hasher.verifications();
    let error = f.login("alice").await.unwrap_err();
    let until = START.plus(15 * MINUTE);
    assert!(
        matches!(error, LoginError::LockedOut { until: u } if u == until),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "too many failed logins: try again after 2026-11-26T05:08:00Z"
    );
    assert_eq!(
        f.hasher.verifications(),
        before,
        "no password check while locked"
    );
    // Other users are not affected.
    f.login("olivia").await.unwrap();
    // Unknown names lock the same way: a lockout does not reveal that a user exists.
    for _ in 0..5 {
        let _ = f
            .auth
            .login("mallory", "guess", None, ip("203.0.113.1"))
            .await;
    }
    assert!(matches!(
        f.auth
            .login("mallory", "guess", None, ip("203.0.113.2"))
            .await,
        Err(LoginError::LockedOut { .. })
    ));
    f.advance(15 * MINUTE);
    f.login("alice").await.unwrap();
    let events = f.events().await;
    assert!(
        events.contains(&"lockout refused alice".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"lockout refused mallory".to_owned()),
        "{events:?}"
    );
}

#[tokio::test]
async fn lockout_per_source_address_and_its_expiry() {
    let f = fixture().await;
    let attacker = ip("2001:db8:1:2::10");
    for attempt in 0..20 {
        // Different names, so no user-name lockout; invalid names count too.
        let user = if attempt % 2 == 0 {
            format!("guess{attempt}")
        } else {
            "*)(uid=*".into()
        };
        let _ = f.auth.login(&user, "guess", None, attacker).await;
    }
    let same_block = ip("2001:db8:1:2::99");
    assert!(matches!(
        f.auth
            .login("alice", "alice-password", None, same_block)
            .await,
        Err(LoginError::LockedOut { .. })
    ));
    f.auth
        .login("alice", "alice-password", None, ip("2001:db8:1:3::10"))
        .await
        .unwrap();
    f.advance(15 * MINUTE);
    f.auth
        .login("alice", "alice-password", None, attacker)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_backend_that_goes_down_fails_closed() {
    let f = fixture().await;
    let backend = Arc::new(SwitchableBackend {
        inner: f.users.clone(),
        down: AtomicBool::new(false),
    });
    let auth = Authenticator::new(
        backend.clone(),
        f.state.clone(),
        f.clock.clone(),
        AuthPolicy::default(),
    );
    let session = auth
        .login("alice", "alice-password", None, ip("192.0.2.1"))
        .await
        .unwrap();
    let token = auth
        .create_api_token(
            &Actor::Local,
            &name("alice"),
            "t",
            Role::Viewer,
            MINUTE * 60,
        )
        .await
        .unwrap();
    backend.down.store(true, Ordering::SeqCst);
    for _ in 0..10 {
        let error = auth
            .login("alice", "alice-password", None, ip("192.0.2.1"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, LoginError::BackendUnavailable(_)),
            "{error:?}"
        );
    }
    // Within the re-check interval the session still works; after it, it is refused.
    auth.check_session(session.token.expose()).await.unwrap();
    f.advance(MINUTE);
    assert!(matches!(
        auth.check_session(session.token.expose()).await,
        Err(CheckError::BackendUnavailable(_))
    ));
    assert!(matches!(
        auth.check_api_token(token.secret.expose()).await,
        Err(CheckError::BackendUnavailable(_))
    ));
    // An outage is not counted as failures: back up, the user logs in at once.
    backend.down.store(false, Ordering::SeqCst);
    auth.login("alice", "alice-password", None, ip("192.0.2.1"))
        .await
        .unwrap();
    auth.check_session(session.token.expose()).await.unwrap();
    let entries = auth.audit_log(100, None).await.unwrap();
    assert!(
        entries
            .iter()
            .any(|entry| entry.outcome == "error" && entry.detail.contains("connection refused"))
    );
}

#[tokio::test]
async fn a_read_only_backend_refuses_admin_changes() {
    let f = fixture().await;
    let auth = Authenticator::new(
        Arc::new(SwitchableBackend {
            inner: f.users.clone(),
            down: AtomicBool::new(false),
        }),
        f.state.clone(),
        f.clock.clone(),
        AuthPolicy::default(),
    );
    let error = auth
        .set_role(&Actor::Local, &name("vic"), Role::Admin)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the switchable user backend is read-only here: manage its users in the switchable server"
    );
    let events = f.events().await;
    assert_eq!(events.last().unwrap(), "role_changed refused vic");
}

#[tokio::test]
async fn admin_operations_and_their_audit() {
    let f = fixture().await;
    let admin = Actor::User(name("alice"));
    let users = f.auth.list_users().await.unwrap();
    assert_eq!(
        users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["alice", "dave", "olivia", "vic"]
    );
    let record = users[3].clone();
    assert!(matches!(
        f.auth.add_user(&admin, &record, &pw("x-password")).await,
        Err(AuthError::Admin(AdminError::UserExists { .. }))
    ));
    for missing in [
        f.auth.delete_user(&admin, &name("nobody1")).await,
        f.auth.set_role(&admin, &name("nobody1"), Role::Admin).await,
        f.auth.set_disabled(&admin, &name("nobody1"), true).await,
        f.auth
            .set_password(&admin, &name("nobody1"), &pw("x-password"))
            .await,
        f.auth.set_display_name(&admin, &name("nobody1"), "x").await,
    ] {
        assert!(
            matches!(
                missing,
                Err(AuthError::Admin(AdminError::NoSuchUser { .. }))
            ),
            "{missing:?}"
        );
    }
    // Deleting a user removes what the state store held for them.
    let session = f.login("vic").await.unwrap();
    f.auth
        .create_api_token(&admin, &name("vic"), "t", Role::Viewer, MINUTE)
        .await
        .unwrap();
    f.auth.enrol_totp(&admin, &name("vic")).await.unwrap();
    f.auth.delete_user(&admin, &name("vic")).await.unwrap();
    assert!(f.auth.check_session(session.token.expose()).await.is_err());
    assert!(
        f.auth
            .list_api_tokens(Some(&name("vic")))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.auth.recovery_codes_left(&name("vic")).await.unwrap(), 0);
    assert!(f.auth.find_user(&name("vic")).await.unwrap().is_none());

    let entries = f.auth.audit_log(1000, None).await.unwrap();
    let deleted = entries.iter().find(|e| e.event == "user_deleted").unwrap();
    assert_eq!(deleted.actor.as_deref(), Some("alice"));
    let added = entries.iter().rfind(|e| e.event == "user_added").unwrap();
    assert_eq!(added.actor.as_deref(), Some("(local)"));
    // Paging: entries below an id.
    let page = f.auth.audit_log(2, Some(entries[0].id)).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        [entries[1].id, entries[2].id]
    );
}

#[tokio::test]
async fn a_remote_actor_is_audited_with_its_address_and_the_log_is_searched() {
    let f = fixture().await;
    let admin = Actor::Remote {
        user: name("alice"),
        address: ip("192.0.2.7"),
    };
    f.auth
        .set_role(&admin, &name("vic"), Role::Operator)
        .await
        .unwrap();
    f.auth
        .set_display_name(&admin, &name("olivia"), "Olivia")
        .await
        .unwrap();
    let by_alice = f
        .auth
        .search_audit_log(
            10,
            None,
            crate::AuditFilter {
                user: Some("alice".into()),
                ..crate::AuditFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        by_alice
            .iter()
            .map(|e| (e.event.as_str(), e.source.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("display_name_changed", Some("192.0.2.7")),
            ("role_changed", Some("192.0.2.7")),
            ("user_added", None),
        ]
    );
    let about_vic = f
        .auth
        .search_audit_log(
            10,
            None,
            crate::AuditFilter {
                user: Some("vic".into()),
                event: Some(crate::AuditEvent::RoleChanged),
                ..crate::AuditFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(about_vic.len(), 1);
    assert_eq!(about_vic[0].actor.as_deref(), Some("alice"));
}

#[tokio::test]
async fn changing_ones_own_password_needs_the_current_one() {
    let f = fixture().await;
    let session = f.login("vic").await.unwrap();
    let source = ip("192.0.2.8");
    assert!(matches!(
        f.auth
            .change_password(
                &name("vic"),
                &pw("wrong-password"),
                &pw("new-password-1"),
                source
            )
            .await,
        Err(AuthError::WrongPassword)
    ));
    assert_eq!(
        f.events().await.last().unwrap(),
        "password_changed refused vic"
    );
    f.auth.check_session(session.token.expose()).await.unwrap();
    f.auth
        .change_password(
            &name("vic"),
            &pw("vic-password"),
            &pw("new-password-1"),
            source,
        )
        .await
        .unwrap();
    assert!(f.auth.check_session(session.token.expose()).await.is_err());
    f.auth
        .login("vic", "new-password-1", None, ip("192.0.2.8"))
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_backend_check_report() {
    let f = fixture().await;
    let report = f.auth.check_backend(&name("alice")).await;
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.steps[1].outcome,
        StepOutcome::Passed("alice exists with role admin".into())
    );
    let report = f.auth.check_backend(&name("dave")).await;
    assert!(!report.passed());
    let report = f.auth.check_backend(&name("mallory")).await;
    assert_eq!(
        report.steps[1].outcome,
        StepOutcome::Failed("no user mallory (mfv user add mallory)".into())
    );
}

#[tokio::test]
async fn corrupt_user_rows_are_invalid_data_and_refuse_login() {
    let f = fixture().await;
    f.state
        .run(|connection| {
            connection.execute(
                "UPDATE users SET password_hash = 'plain' WHERE username = 'vic'",
                [],
            )?;
            connection.execute(
                "INSERT INTO users
                     (username, display_name, role, disabled, password_hash, created_at, updated_at)
                 VALUES ('Bad Name', '', 'viewer', 0, 'x', 0, 0)",
                [],
            )
        })
        .await
        .unwrap();
    assert!(matches!(
        f.login("vic").await,
        Err(LoginError::BackendUnavailable(
            BackendError::InvalidData { .. }
        ))
    ));
    let error = f.auth.list_users().await.unwrap_err();
    assert!(error.to_string().contains("\"Bad Name\""), "{error}");
}

#[tokio::test]
async fn state_survives_reopening() {
    let f = fixture().await;
    let session = f.login("alice").await.unwrap();
    let path = f.state.path().to_owned();
    let state = SqliteState::open(&path).await.unwrap();
    let users = SqliteUserBackend::new(state.clone(), test_hasher());
    let auth = Authenticator::new(
        Arc::new(users),
        state,
        f.clock.clone(),
        AuthPolicy::default(),
    );
    auth.check_session(session.token.expose()).await.unwrap();
    auth.login("olivia", "olivia-password", None, ip("192.0.2.1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_broken_state_store_fails_closed() {
    let f = fixture().await;
    let session = f.login("alice").await.unwrap();
    f.state
        .run(|connection| connection.execute_batch("DROP TABLE sessions"))
        .await
        .unwrap();
    assert!(matches!(f.login("alice").await, Err(LoginError::State(_))));
    assert!(matches!(
        f.auth.check_session(session.token.expose()).await,
        Err(CheckError::State(_))
    ));
    f.state
        .run(|connection| connection.execute_batch("DROP TABLE throttle"))
        .await
        .unwrap();
    let error = f
        .auth
        .login("olivia", "wrong", None, ip("192.0.2.1"))
        .await
        .unwrap_err();
    assert!(matches!(error, LoginError::State(_)), "{error:?}");
    assert_eq!(error.to_string(), "auth state is unavailable");
}

#[tokio::test]
async fn enrolling_again_before_confirming_replaces_the_secret() {
    let f = fixture().await;
    let user = name("vic");
    let first = f.auth.enrol_totp(&Actor::Local, &user).await.unwrap();
    let second = f.auth.enrol_totp(&Actor::Local, &user).await.unwrap();
    assert_ne!(first.secret_base32, second.secret_base32);
    assert_eq!(f.auth.recovery_codes_left(&user).await.unwrap(), 10);
    let old = hotp(
        &base32_decode(first.secret_base32.expose()),
        time_step(f.clock.now()) as u64,
        6,
    );
    let new = hotp(
        &base32_decode(second.secret_base32.expose()),
        time_step(f.clock.now()) as u64,
        6,
    );
    if old != new {
        assert!(matches!(
            f.auth.confirm_totp(&Actor::Local, &user, &old).await,
            Err(AuthError::TotpInvalid)
        ));
    }
    f.auth
        .confirm_totp(&Actor::Local, &user, &new)
        .await
        .unwrap();
    assert!(matches!(
        f.auth.enrol_totp(&Actor::Local, &name("mallory")).await,
        Err(AuthError::NoSuchUser { .. })
    ));
}

#[tokio::test]
async fn tokens_of_a_user_deleted_elsewhere_are_deleted_and_not_inherited() {
    use crate::backend::UserAdmin;
    let f = fixture().await;
    let token = |owner: &'static str| {
        let auth = f.auth.clone();
        async move {
            auth.create_api_token(&Actor::Local, &name(owner), "ci", Role::Viewer, 60 * MINUTE)
                .await
                .unwrap()
                .secret
        }
    };
    let (vic_token, olivia_token) = (token("vic").await, token("olivia").await);
    token("alice").await;
    // Deleted by another program on the same user table: the tokens stay behind.
    for user in ["vic", "olivia"] {
        f.users.delete_user(&name(user)).await.unwrap();
    }
    f.advance(MINUTE);
    assert!(matches!(
        f.auth.check_api_token(vic_token.expose()).await,
        Err(CheckError::TokenInvalid)
    ));
    assert_eq!(f.auth.remove_orphaned_tokens().await.unwrap(), 1);
    let owners: Vec<String> = f
        .auth
        .list_api_tokens(None)
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.owner.to_string())
        .collect();
    assert_eq!(owners, ["alice"]);
    assert_eq!(f.auth.remove_orphaned_tokens().await.unwrap(), 0);
    let events = f.events().await;
    assert!(
        events.contains(&"token_revoked ok vic".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"token_revoked ok olivia".to_owned()),
        "{events:?}"
    );

    // The names are given to new people: the old tokens stay dead.
    for user in ["vic", "olivia"] {
        let record = UserRecord {
            username: name(user),
            display_name: String::new(),
            role: Role::Admin,
            disabled: false,
            account_id: None,
        };
        f.auth
            .add_user(&Actor::Local, &record, &pw("new-person-password"))
            .await
            .unwrap();
    }
    for secret in [&vic_token, &olivia_token] {
        assert!(matches!(
            f.auth.check_api_token(secret.expose()).await,
            Err(CheckError::TokenInvalid)
        ));
    }

    // A backend that cannot answer removes nothing.
    let backend = Arc::new(SwitchableBackend {
        inner: f.users.clone(),
        down: AtomicBool::new(true),
    });
    let auth = Authenticator::new(
        backend,
        f.state.clone(),
        f.clock.clone(),
        AuthPolicy::default(),
    );
    assert!(matches!(
        auth.remove_orphaned_tokens().await,
        Err(AuthError::Backend(BackendError::Unavailable { .. }))
    ));
    assert_eq!(f.auth.list_api_tokens(None).await.unwrap().len(), 1);
}

impl Fixture {
    /// A viewer API token of vic (an hour) and a session of vic.
    async fn vic_token_and_session(&self) -> (crate::Secret, crate::Secret) {
        let token = self
            .auth
            .create_api_token(&Actor::Local, &name("vic"), "ci", Role::Viewer, 60 * MINUTE)
            .await
            .unwrap()
            .secret;
        (token, self.login("vic").await.unwrap().token)
    }

    /// The API token `token` and the session `session` are refused.
    async fn assert_refused(&self, token: &crate::Secret, session: &crate::Secret) {
        assert!(matches!(
            self.auth.check_api_token(token.expose()).await,
            Err(CheckError::TokenInvalid)
        ));
        assert!(matches!(
            self.auth.check_session(session.expose()).await,
            Err(CheckError::SessionInvalid)
        ));
    }
}

/// Deletes `user` from the users table and inserts a row of the same name, as another
/// program sharing the file would: no cleanup of the state store runs.
async fn recreate_user_row(state: &SqliteState, user: &str) {
    let user = user.to_owned();
    state
        .run(move |connection| {
            let transaction = connection.transaction()?;
            transaction.execute(
                "CREATE TEMP TABLE old_user AS SELECT * FROM users WHERE username = ?1",
                [&user],
            )?;
            transaction.execute("DELETE FROM users WHERE username = ?1", [&user])?;
            transaction.execute(
                "INSERT INTO users (username, display_name, role, disabled, password_hash,
                                    created_at, updated_at)
                 SELECT username, 'someone else', role, disabled, password_hash,
                        created_at, updated_at
                 FROM old_user",
                [],
            )?;
            transaction.execute("DROP TABLE old_user", [])?;
            transaction.commit()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_user_re_created_under_the_same_name_inherits_no_token_or_session() {
    let f = fixture().await;
    let (token, session) = f.vic_token_and_session().await;

    recreate_user_row(&f.state, "vic").await;
    f.advance(MINUTE);
    f.assert_refused(&token, &session).await;
    assert!(
        f.auth
            .list_api_tokens(Some(&name("vic")))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        f.auth
            .list_sessions(Some(&name("vic")))
            .await
            .unwrap()
            .is_empty()
    );
    let events = f.events().await;
    for event in ["token_revoked ok vic", "session_revoked ok vic"] {
        assert!(events.contains(&event.to_owned()), "{events:?}");
    }

    // The new vic's own token and session work.
    let (token, session) = f.vic_token_and_session().await;
    f.advance(MINUTE);
    f.auth.check_api_token(token.expose()).await.unwrap();
    f.auth.check_session(session.expose()).await.unwrap();
}

#[tokio::test]
async fn a_user_deleted_and_added_again_by_the_authenticator_inherits_nothing() {
    let f = fixture().await;
    let (token, session) = f.vic_token_and_session().await;
    f.auth
        .delete_user(&Actor::Local, &name("vic"))
        .await
        .unwrap();
    let record = UserRecord {
        username: name("vic"),
        display_name: "someone else".into(),
        role: Role::Admin,
        disabled: false,
        account_id: None,
    };
    f.auth
        .add_user(&Actor::Local, &record, &pw("vic-password"))
        .await
        .unwrap();
    f.assert_refused(&token, &session).await;
}

#[tokio::test]
async fn a_token_or_session_from_before_account_ids_is_bound_at_its_next_recheck() {
    let f = fixture().await;
    let (token, session) = f.vic_token_and_session().await;
    // As schema version 2 left them: no owner identity.
    f.state
        .run(|connection| {
            connection.execute("UPDATE api_tokens SET owner_account_id = NULL", [])?;
            connection.execute("UPDATE sessions SET owner_account_id = NULL", [])
        })
        .await
        .unwrap();
    f.advance(MINUTE);
    f.auth.check_api_token(token.expose()).await.unwrap();
    f.auth.check_session(session.expose()).await.unwrap();

    recreate_user_row(&f.state, "vic").await;
    f.advance(MINUTE);
    f.assert_refused(&token, &session).await;
}

#[tokio::test]
async fn the_sweep_deletes_tokens_of_an_earlier_account_of_the_name() {
    let f = fixture().await;
    for owner in ["vic", "olivia"] {
        f.auth
            .create_api_token(&Actor::Local, &name(owner), "ci", Role::Viewer, 60 * MINUTE)
            .await
            .unwrap();
    }
    recreate_user_row(&f.state, "vic").await;
    let new_token = f
        .auth
        .create_api_token(
            &Actor::Local,
            &name("vic"),
            "new",
            Role::Viewer,
            60 * MINUTE,
        )
        .await
        .unwrap()
        .secret;
    assert_eq!(f.auth.remove_orphaned_tokens().await.unwrap(), 1);
    let left: Vec<(String, String)> = f
        .auth
        .list_api_tokens(None)
        .await
        .unwrap()
        .into_iter()
        .map(|info| (info.owner.to_string(), info.name))
        .collect();
    assert_eq!(
        left,
        [
            ("olivia".to_owned(), "ci".to_owned()),
            ("vic".to_owned(), "new".to_owned())
        ]
    );
    f.advance(MINUTE);
    f.auth.check_api_token(new_token.expose()).await.unwrap();
}

#[tokio::test]
async fn activity_shows_the_last_successful_login_and_a_confirmed_second_factor() {
    let f = fixture().await;
    let vic = name("vic");
    assert_eq!(f.auth.user_activity().await.unwrap().len(), 0);
    assert_eq!(
        f.auth.activity_of(&vic).await.unwrap(),
        crate::UserActivity::default()
    );

    f.login("vic").await.unwrap();
    f.advance(MINUTE);
    f.login("vic").await.unwrap();
    let second_login = f.clock.now();
    f.advance(MINUTE);
    // A refused login is not a login.
    assert!(
        f.auth
            .login("vic", "wrong-password", None, ip("192.0.2.1"))
            .await
            .is_err()
    );
    // Nor is an enrolment that was not confirmed a second factor.
    let actor = Actor::User(vic.clone());
    f.auth.enrol_totp(&actor, &name("olivia")).await.unwrap();
    let alice_enrolment = f.auth.enrol_totp(&actor, &name("alice")).await.unwrap();
    let secret = base32_decode(alice_enrolment.secret_base32.expose());
    let code = hotp(&secret, time_step(f.clock.now()) as u64, 6);
    f.auth
        .confirm_totp(&actor, &name("alice"), &code)
        .await
        .unwrap();

    let activity = f.auth.user_activity().await.unwrap();
    assert_eq!(
        activity.get("vic"),
        Some(&crate::UserActivity {
            totp_enabled: false,
            last_login: Some(second_login),
        })
    );
    assert_eq!(
        activity.get("alice"),
        Some(&crate::UserActivity {
            totp_enabled: true,
            last_login: None,
        })
    );
    assert_eq!(activity.get("olivia"), None);
    assert_eq!(
        f.auth.activity_of(&vic).await.unwrap().last_login,
        Some(second_login)
    );

    // Deleting the user forgets the login: a user made again under the name never logged in.
    f.auth.delete_user(&Actor::Local, &vic).await.unwrap();
    assert_eq!(
        f.auth.activity_of(&vic).await.unwrap(),
        crate::UserActivity::default()
    );
}

#[tokio::test]
async fn the_audit_log_is_searched_within_a_time_range() {
    let f = fixture().await;
    // The fixture's users were added at START; one login a minute after.
    f.advance(MINUTE);
    f.login("vic").await.unwrap();
    f.advance(MINUTE);
    f.login("olivia").await.unwrap();
    let search = |since: Option<Timestamp>, until: Option<Timestamp>| {
        let auth = &f.auth;
        async move {
            let filter = crate::AuditFilter {
                event: Some(crate::AuditEvent::Login),
                since,
                until,
                ..crate::AuditFilter::default()
            };
            let entries = auth.search_audit_log(100, None, filter).await.unwrap();
            entries
                .into_iter()
                .map(|entry| entry.username.unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    let first = START.plus(MINUTE);
    let second = first.plus(MINUTE);
    assert_eq!(search(None, None).await, ["olivia", "vic"]);
    assert_eq!(search(Some(second), None).await, ["olivia"]);
    assert_eq!(
        search(None, Some(first)).await,
        ["vic"],
        "until is inclusive"
    );
    assert_eq!(search(Some(first), Some(first)).await, ["vic"]);
    assert!(search(Some(second.plus(MINUTE)), None).await.is_empty());
    assert!(search(Some(second), Some(first)).await.is_empty());
}
