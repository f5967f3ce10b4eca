//! The [`Authenticator`]: composes a user backend (SQLite, LDAP or MySQL) with the SQLite
//! state store, and decides logins.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::audit::{self, AuditEntry, AuditEvent, AuditFilter, AuditOutcome, AuditRecord};
use crate::backend::{AdminError, BackendError, CheckReport, UserAdmin, UserBackend, UserRecord};
use crate::clock::{Clock, Timestamp};
use crate::password::{Password, PasswordError};
use crate::secret::RandomError;
use crate::sqlite::{SqliteState, StoreError};
use crate::throttle::{self, AttemptId, AttemptKeys, Reservation, Scope, ThrottleRule};
use crate::{Role, Username, totp};

/// How long things last and how many failures are tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPolicy {
    /// A session unused this long ends. Default 30 minutes. Use is recorded at most every
    /// 15 seconds, so the effective idle time can be up to 15 s shorter.
    pub session_idle: Duration,
    /// A session ends this long after login however much it is used. Default 12 hours.
    pub session_absolute: Duration,
    /// How often a session's or token's user is looked up again in the backend. Default 60 s.
    pub user_recheck: Duration,
    /// The longest lifetime an API token may be given. Default 365 days.
    pub api_token_max_lifetime: Duration,
    /// Failures per user name. Default 5 in 15 minutes lock for 15 minutes.
    pub user_throttle: ThrottleRule,
    /// Failures per source address (IPv6: per /64). Default 20 in 15 minutes lock for 15
    /// minutes.
    pub address_throttle: ThrottleRule,
    /// TOTP steps accepted either side of the current one. Default 1 (±30 s).
    pub totp_window: u8,
    /// The issuer shown in authenticator apps. Default `Minifed-Virt`.
    pub totp_issuer: String,
    /// The fewest characters a password set through the authenticator (a new user, a
    /// changed password) may have. Default [`DEFAULT_MIN_PASSWORD_CHARS`]. Logins are not
    /// held to it: the backend's stored password decides.
    pub min_password_chars: usize,
}

/// The default [`AuthPolicy::min_password_chars`].
pub const DEFAULT_MIN_PASSWORD_CHARS: usize = 8;

impl Default for AuthPolicy {
    fn default() -> Self {
        const MINUTE: u64 = 60;
        AuthPolicy {
            session_idle: Duration::from_secs(30 * MINUTE),
            session_absolute: Duration::from_secs(12 * 60 * MINUTE),
            user_recheck: Duration::from_secs(MINUTE),
            api_token_max_lifetime: Duration::from_secs(365 * 24 * 60 * MINUTE),
            user_throttle: ThrottleRule {
                max_failures: 5,
                window: Duration::from_secs(15 * MINUTE),
                lockout: Duration::from_secs(15 * MINUTE),
            },
            address_throttle: ThrottleRule {
                max_failures: 20,
                window: Duration::from_secs(15 * MINUTE),
                lockout: Duration::from_secs(15 * MINUTE),
            },
            totp_window: 1,
            totp_issuer: "Minifed-Virt".to_owned(),
            min_password_chars: DEFAULT_MIN_PASSWORD_CHARS,
        }
    }
}

impl AuthPolicy {
    /// What a login attempt for `name` from `address` (an [`throttle::address_key`]) counts
    /// against.
    fn attempt_keys<'a>(&self, name: &'a str, address: &'a str) -> AttemptKeys<'a> {
        AttemptKeys {
            name,
            address,
            name_rule: self.user_throttle,
            address_rule: self.address_throttle,
        }
    }
}

/// Who asked for a change: a logged-in user, or the host itself (the `mfv` CLI as root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A user acting through the web UI or API.
    User(Username),
    /// A user acting through the web UI or API from `address`: the audit entries of the
    /// change record the address as their source.
    Remote {
        /// The user.
        user: Username,
        /// The client's address.
        address: IpAddr,
    },
    /// The host's own administrator, on the console or the CLI.
    Local,
}

impl Actor {
    /// The text stored in the audit log: the user name, or `(local)` (not a valid user name,
    /// so never confused with one).
    pub fn audit_name(&self) -> &str {
        match self {
            Actor::User(user) | Actor::Remote { user, .. } => user.as_str(),
            Actor::Local => "(local)",
        }
    }

    /// Where the actor acts from, when known.
    pub fn address(&self) -> Option<IpAddr> {
        match self {
            Actor::Remote { address, .. } => Some(*address),
            Actor::User(_) | Actor::Local => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.audit_name())
    }
}

/// Why a login failed. Callers show the message as is: it never says whether a user exists.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, wrong password or disabled user: deliberately one answer.
    #[error("invalid user name or password")]
    InvalidCredentials,
    /// The password is empty or longer than 4096 bytes.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Too many failures for this user name or from this address.
    #[error("too many failed logins: try again after {until}")]
    LockedOut {
        /// When the lockout ends.
        until: Timestamp,
    },
    /// As many attempts for this user name or from this address as the lockout allows are
    /// being checked right now (or were abandoned during their check, which counts until
    /// the throttle window passes): this one is refused without looking at the password.
    #[error("too many login attempts in progress: try again later")]
    AttemptsInProgress,
    /// The password was right; the user has TOTP enabled and gave no code.
    #[error("a TOTP code (or a recovery code) is required")]
    TotpRequired,
    /// The TOTP or recovery code was wrong, used already, or replayed.
    #[error("invalid TOTP or recovery code")]
    TotpInvalid,
    /// The user backend could not answer: no login (fail closed).
    #[error("cannot check credentials")]
    BackendUnavailable(#[source] BackendError),
    /// The auth database failed: no login.
    #[error("auth state is unavailable")]
    State(#[source] StoreError),
    /// No random bytes for the session token.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Why a session token or API token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Unknown, expired or revoked session, or its user was removed, disabled or replaced by
    /// another account of the same name.
    #[error("session expired or invalid: log in again")]
    SessionInvalid,
    /// Unknown, expired or revoked API token, or its owner was removed, disabled or replaced
    /// by another account of the same name.
    #[error("API token invalid, expired or revoked")]
    TokenInvalid,
    /// The user could not be re-checked: refused (fail closed).
    #[error("cannot check the user")]
    BackendUnavailable(#[source] BackendError),
    /// The auth database failed.
    #[error("auth state is unavailable")]
    State(#[source] StoreError),
}

/// Why a token, session, TOTP or user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The user backend refused or failed the change.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The user backend could not answer.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The auth database failed.
    #[error("auth state is unavailable")]
    State(#[source] StoreError),
    /// No random bytes.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// No such user (or the user is disabled, for operations that need an active user).
    #[error("no active user {user}")]
    NoSuchUser {
        /// The name.
        user: Username,
    },
    /// An API token may not have a role above its owner's.
    #[error("an API token of {owner} cannot have role {requested}: {owner} is only {owner_role}")]
    RoleAboveOwner {
        /// The owner.
        owner: Username,
        /// The role asked for.
        requested: Role,
        /// The owner's role.
        owner_role: Role,
    },
    /// Token names are 1 to 64 characters without control characters.
    #[error("API token name {name:?} is invalid: 1 to 64 characters, no control characters")]
    TokenName {
        /// The name as given.
        name: String,
    },
    /// The owner has a token with this name already.
    #[error("{owner} already has an API token named {name:?}")]
    TokenNameTaken {
        /// The owner.
        owner: Username,
        /// The name.
        name: String,
    },
    /// The lifetime asked for is zero or above [`AuthPolicy::api_token_max_lifetime`].
    #[error("API token lifetime must be between 1 second and {max_days} days")]
    TokenLifetime {
        /// The maximum, in days.
        max_days: u64,
    },
    /// No API token with this id.
    #[error("no API token {id}")]
    NoSuchToken {
        /// The id.
        id: i64,
    },
    /// No session with this id.
    #[error("no session {id}")]
    NoSuchSession {
        /// The id.
        id: i64,
    },
    /// TOTP is enabled already; disable it first to enrol again.
    #[error("TOTP is already enabled for {user}; disable it first to enrol a new device")]
    TotpAlreadyEnabled {
        /// The user.
        user: Username,
    },
    /// No TOTP enrolment is pending for the user.
    #[error("no TOTP enrolment is pending for {user}: enrol first")]
    TotpNotEnrolled {
        /// The user.
        user: Username,
    },
    /// The TOTP code given to confirm enrolment is wrong, or the TOTP or recovery code given
    /// with a password check (removing one's own second factor) is wrong, used or replayed.
    #[error("invalid TOTP or recovery code")]
    TotpInvalid,
    /// The current password asked for before a change of one's own account (password,
    /// second factor) is wrong, or the user is disabled or gone. Counted like a failed login.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Too many failed logins or password checks for this user name or from this address:
    /// the current password was not looked at.
    #[error("too many failed password checks: try again after {until}")]
    LockedOut {
        /// When the lockout ends.
        until: Timestamp,
    },
    /// As many password checks for this user name or from this address as the lockout
    /// allows are under way: this one is refused without looking at the password.
    #[error("too many password checks in progress: try again later")]
    AttemptsInProgress,
    /// The change needs a current TOTP code or an unused recovery code besides the password,
    /// and none was given.
    #[error("a current TOTP code or a recovery code is required")]
    TotpRequired,
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        AuthError::State(error)
    }
}

/// Logins, sessions, API tokens, TOTP and user administration over one user backend and the
/// SQLite state store.
///
/// # Login
///
/// 1. The password must be 1 to 4096 bytes ([`LoginError::Password`] otherwise; nothing is
///    counted, nothing is asked of the backend).
/// 2. A name that is not a valid [`Username`] is refused as [`LoginError::InvalidCredentials`]
///    without asking the backend (the rules are public, so this reveals nothing) and counts
///    against the source address.
/// 3. If the name or the source address is locked, the answer is [`LoginError::LockedOut`]
///    with the lockout's end, **before** the password is looked at. Lockouts are counted per
///    name whether or not the user exists, so "locked" says nothing about existence; and
///    since the password is not checked while locked, guessing goes on being useless until
///    the lockout ends. In the same SQLite transaction (`BEGIN IMMEDIATE`, so it holds across
///    processes sharing the file) the attempt is reserved: when the failures in the window
///    plus the attempts under way reach the limit, the answer is
///    [`LoginError::AttemptsInProgress`], so logins sent at once never get more password
///    checks than the limit.
/// 4. The backend checks the password. Unknown user, wrong password and disabled user are
///    one answer, [`LoginError::InvalidCredentials`], in about the same time (the backend
///    verifies a dummy hash for unknown users), and count as one failure for the name and
///    one for the address. A backend that cannot answer gives
///    [`LoginError::BackendUnavailable`]: no login, ever, without the backend's yes.
/// 5. A user with TOTP enabled must also give a current code or an unused recovery code:
///    without one the answer is [`LoginError::TotpRequired`] (not a failure: that is the
///    normal second step), with a wrong one [`LoginError::TotpInvalid`] (a failure). A TOTP
///    code is accepted once (a replayed code is refused).
/// 6. Success clears the name's failure count (not the address's, so one valid account does
///    not reset an address that guesses at others) and opens a session, unless the name or
///    the address became locked while the password was checked: then the answer is
///    [`LoginError::LockedOut`] and the lockout stays. A success never lifts a lockout.
///
/// Every step that ends the attempt writes an audit entry.
///
/// # Roles after login
///
/// Sessions and API tokens remember the user's role; every
/// [`AuthPolicy::user_recheck`] the user is looked up again, so a user removed, disabled or
/// demoted in LDAP loses access within that time (and immediately when changed through this
/// authenticator). They also remember the account's identity
/// ([`UserRecord::account_id`]): when the name stands for another account at the re-check (the
/// user was deleted and created again, in the directory, the MySQL table or by another
/// program on the SQLite file), they are deleted, every one of the earlier account, and
/// audited. Sessions and tokens made before identities were kept (auth schema version 3)
/// hold none; they are taken as the current account's and bound to it at their next
/// re-check. If the backend cannot answer the re-check, the request is refused.
#[derive(Clone)]
pub struct Authenticator {
    pub(crate) backend: Arc<dyn UserBackend>,
    pub(crate) state: SqliteState,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: Arc<AuthPolicy>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("backend", &self.backend.name())
            .field("state", &self.state.path())
            .field("clock", &self.clock)
            .field("policy", &self.policy)
            .finish()
    }
}

/// A failed attempt as the audit log records it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure {
    /// The event of the attempt: a login, or the change a password check guarded.
    pub(crate) event: AuditEvent,
    /// Whether the user made the attempt signed in (the entry names them as the actor too).
    pub(crate) by_the_user: bool,
    /// Why it failed.
    pub(crate) reason: &'static str,
}

/// What the second factor given at login turned out to be.
pub(crate) enum SecondFactor {
    Totp,
    RecoveryCode,
}

impl Authenticator {
    /// Users come from `user_backend`; sessions, tokens, TOTP, throttling and audit live in
    /// `state`; time comes from `clock`.
    pub fn new(
        user_backend: Arc<dyn UserBackend>,
        state: SqliteState,
        clock: Arc<dyn Clock>,
        policy: AuthPolicy,
    ) -> Self {
        Authenticator {
            backend: user_backend,
            state,
            clock,
            policy: Arc::new(policy),
        }
    }

    /// The user backend.
    pub fn backend(&self) -> &Arc<dyn UserBackend> {
        &self.backend
    }

    /// The policy in force.
    pub fn policy(&self) -> &AuthPolicy {
        &self.policy
    }

    /// Writes one audit entry at the current time.
    pub(crate) async fn audit(
        &self,
        event: AuditEvent,
        outcome: AuditOutcome,
        username: Option<&str>,
        actor: Option<&Actor>,
        source: Option<IpAddr>,
        detail: String,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let username = username.map(str::to_owned);
        let source = source.or_else(|| actor.and_then(Actor::address));
        let actor = actor.map(|actor| actor.audit_name().to_owned());
        self.state
            .run(move |connection| {
                audit::record(
                    connection,
                    now,
                    &AuditRecord {
                        event,
                        outcome,
                        username: username.as_deref(),
                        actor: actor.as_deref(),
                        source: source.map(|source| source.to_string()),
                        detail,
                    },
                )
            })
            .await
    }

    /// Writes one [`AuditEvent::HostChange`] entry: `user` asked from `source` for the
    /// change `detail` describes, which ended as `outcome`.
    pub async fn audit_host_change(
        &self,
        user: &Username,
        source: std::net::IpAddr,
        outcome: AuditOutcome,
        detail: String,
    ) -> Result<(), StoreError> {
        self.audit(
            AuditEvent::HostChange,
            outcome,
            None,
            Some(&Actor::User(user.clone())),
            Some(source),
            detail,
        )
        .await
    }

    /// Audits the end of a login attempt.
    async fn audit_login(
        &self,
        source: IpAddr,
        outcome: AuditOutcome,
        user: Option<&str>,
        detail: String,
    ) -> Result<(), LoginError> {
        self.audit(AuditEvent::Login, outcome, user, None, Some(source), detail)
            .await
            .map_err(LoginError::State)
    }

    /// Logs a user in; see [`Authenticator`] for the rules.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        totp: Option<&str>,
        source: IpAddr,
    ) -> Result<crate::Session, LoginError> {
        let valid_name = Username::new(username).ok();
        let password = match Password::new(password) {
            Ok(password) => password,
            Err(error) => {
                self.audit_login(
                    source,
                    AuditOutcome::Refused,
                    valid_name.as_ref().map(Username::as_str),
                    error.to_string(),
                )
                .await?;
                return Err(LoginError::Password(error));
            }
        };
        let Some(user) = valid_name else {
            self.count_failure(None, None, source, "not a valid user name")
                .await?;
            return Err(LoginError::InvalidCredentials);
        };

        let reservation = self
            .reserve_attempt(&user, source)
            .await
            .map_err(LoginError::State)?;
        let attempt = match reservation {
            Reservation::Granted(attempt) => attempt,
            Reservation::Locked(until) => {
                return Err(self.locked_out(source, &user, "", until).await?);
            }
            Reservation::Busy => {
                self.audit_login(
                    source,
                    AuditOutcome::Refused,
                    Some(user.as_str()),
                    "too many attempts in progress".into(),
                )
                .await?;
                return Err(LoginError::AttemptsInProgress);
            }
        };

        let record = match self.backend.verify_password(&user, &password).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                self.count_failure(Some(&user), Some(attempt), source, "invalid credentials")
                    .await?;
                return Err(LoginError::InvalidCredentials);
            }
            Err(error) => {
                self.release_attempt(
                    attempt,
                    source,
                    &user,
                    AuditOutcome::Error,
                    error.to_string(),
                )
                .await?;
                return Err(LoginError::BackendUnavailable(error));
            }
        };

        if self.totp_enabled(&user).await.map_err(LoginError::State)? {
            let Some(code) = totp else {
                self.release_attempt(
                    attempt,
                    source,
                    &user,
                    AuditOutcome::Refused,
                    "password correct, TOTP code required".into(),
                )
                .await?;
                return Err(LoginError::TotpRequired);
            };
            match self.check_second_factor(&user, code).await {
                Ok(Some(SecondFactor::Totp)) => {}
                Ok(Some(SecondFactor::RecoveryCode)) => {
                    self.audit(
                        AuditEvent::RecoveryCodeUsed,
                        AuditOutcome::Ok,
                        Some(user.as_str()),
                        None,
                        Some(source),
                        String::new(),
                    )
                    .await
                    .map_err(LoginError::State)?;
                }
                Ok(None) => {
                    self.count_failure(
                        Some(&user),
                        Some(attempt),
                        source,
                        "invalid TOTP or recovery code",
                    )
                    .await?;
                    return Err(LoginError::TotpInvalid);
                }
                Err(error) => return Err(LoginError::State(error)),
            }
        }

        if let Some(until) = self
            .finish_successful_attempt(&user, source, attempt)
            .await
            .map_err(LoginError::State)?
        {
            let refusal = self
                .locked_out(source, &user, "password correct, but ", until)
                .await?;
            return Err(refusal);
        }
        let session = self
            .open_session(&record, source)
            .await
            .map_err(|error| match error {
                crate::session::OpenError::Random(error) => LoginError::Random(error),
                crate::session::OpenError::State(error) => LoginError::State(error),
            })?;
        self.audit_login(
            source,
            AuditOutcome::Ok,
            Some(user.as_str()),
            format!("session {}", session.info.id),
        )
        .await?;
        Ok(session)
    }

    /// Audits a login refused because of a lockout until `until` and returns the refusal.
    async fn locked_out(
        &self,
        source: IpAddr,
        user: &Username,
        detail_prefix: &str,
        until: Timestamp,
    ) -> Result<LoginError, LoginError> {
        self.audit_login(
            source,
            AuditOutcome::Refused,
            Some(user.as_str()),
            format!("{detail_prefix}locked until {until}"),
        )
        .await?;
        Ok(LoginError::LockedOut { until })
    }

    /// Checks the lockouts of the name and the address and reserves an attempt for them.
    pub(crate) async fn reserve_attempt(
        &self,
        user: &Username,
        source: IpAddr,
    ) -> Result<Reservation, StoreError> {
        let now = self.clock.now();
        let name = user.as_str().to_owned();
        let address = throttle::address_key(source);
        let policy = Arc::clone(&self.policy);
        self.state
            .run(move |connection| {
                throttle::reserve(connection, policy.attempt_keys(&name, &address), now)
            })
            .await
    }

    /// Ends an attempt that counts neither as a failure nor as a success, and audits why.
    async fn release_attempt(
        &self,
        attempt: AttemptId,
        source: IpAddr,
        user: &Username,
        outcome: AuditOutcome,
        detail: String,
    ) -> Result<(), LoginError> {
        self.end_attempt(attempt).await.map_err(LoginError::State)?;
        self.audit_login(source, outcome, Some(user.as_str()), detail)
            .await
    }

    /// Ends an attempt without counting it.
    pub(crate) async fn end_attempt(&self, attempt: AttemptId) -> Result<(), StoreError> {
        self.state
            .run(move |connection| throttle::release(connection, attempt))
            .await
    }

    /// Ends a successful attempt; the lockout's end if one began while it was checked.
    pub(crate) async fn finish_successful_attempt(
        &self,
        user: &Username,
        source: IpAddr,
        attempt: AttemptId,
    ) -> Result<Option<Timestamp>, StoreError> {
        let now = self.clock.now();
        let name = user.as_str().to_owned();
        let address = throttle::address_key(source);
        let policy = Arc::clone(&self.policy);
        self.state
            .run(move |connection| {
                let keys = policy.attempt_keys(&name, &address);
                throttle::finish_success(connection, attempt, keys, now)
            })
            .await
    }

    /// Counts a failed login against the name (if valid) and the address, and audits it and
    /// any lockout it starts.
    async fn count_failure(
        &self,
        user: Option<&Username>,
        attempt: Option<AttemptId>,
        source: IpAddr,
        reason: &'static str,
    ) -> Result<(), LoginError> {
        let failure = Failure {
            event: AuditEvent::Login,
            by_the_user: false,
            reason,
        };
        self.count_failed_attempt(user, attempt, source, failure)
            .await
            .map_err(LoginError::State)
    }

    /// Counts a failed login or password check against the name (if valid) and the address,
    /// and audits it and any lockout it starts.
    pub(crate) async fn count_failed_attempt(
        &self,
        user: Option<&Username>,
        attempt: Option<AttemptId>,
        source: IpAddr,
        failure: Failure,
    ) -> Result<(), StoreError> {
        let Failure {
            event,
            by_the_user,
            reason,
        } = failure;
        let now = self.clock.now();
        let name = user.map(|user| user.as_str().to_owned());
        let address = throttle::address_key(source);
        let policy = Arc::clone(&self.policy);
        let source_text = source.to_string();
        self.state
            .run(move |connection| {
                let transaction =
                    connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if let Some(attempt) = attempt {
                    throttle::release(&transaction, attempt)?;
                }
                let actor = if by_the_user { name.as_deref() } else { None };
                let entry = |event, outcome, detail: String| AuditRecord {
                    event,
                    outcome,
                    username: name.as_deref(),
                    actor,
                    source: Some(source_text.clone()),
                    detail,
                };
                audit::record(
                    &transaction,
                    now,
                    &entry(event, AuditOutcome::Refused, reason.to_owned()),
                )?;
                if let Some(name) = &name {
                    if let Some(until) = throttle::record_failure(
                        &transaction,
                        Scope::User,
                        name,
                        policy.user_throttle,
                        now,
                    )? {
                        audit::record(
                            &transaction,
                            now,
                            &entry(
                                AuditEvent::Lockout,
                                AuditOutcome::Refused,
                                format!("user name locked until {until}"),
                            ),
                        )?;
                    }
                }
                if let Some(until) = throttle::record_failure(
                    &transaction,
                    Scope::Address,
                    &address,
                    policy.address_throttle,
                    now,
                )? {
                    audit::record(
                        &transaction,
                        now,
                        &entry(
                            AuditEvent::Lockout,
                            AuditOutcome::Refused,
                            format!("address {address} locked until {until}"),
                        ),
                    )?;
                }
                transaction.commit()
            })
            .await
    }

    /// Checks a TOTP code or a recovery code; consumes it when it matches.
    pub(crate) async fn check_second_factor(
        &self,
        user: &Username,
        code: &str,
    ) -> Result<Option<SecondFactor>, StoreError> {
        let now = self.clock.now();
        let name = user.as_str().to_owned();
        let window = self.policy.totp_window;
        let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() == totp::TOTP_DIGITS as usize
            && compact.bytes().all(|byte| byte.is_ascii_digit())
        {
            let accepted = self
                .state
                .run(move |connection| {
                    let transaction = connection.transaction()?;
                    let row: Option<(Vec<u8>, Option<i64>)> = transaction
                        .query_row(
                            "SELECT secret, last_step FROM totp WHERE username = ?1 AND confirmed = 1",
                            [&name],
                            |row| Ok((row.get(0)?, row.get(1)?)),
                        )
                        .optional()?;
                    let Some((secret, last_step)) = row else {
                        return Ok(false);
                    };
                    let Some(step) = totp::matching_step(&secret, &compact, now, window) else {
                        return Ok(false);
                    };
                    if last_step.is_some_and(|last| step <= last) {
                        return Ok(false);
                    }
                    transaction.execute(
                        "UPDATE totp SET last_step = ?2 WHERE username = ?1",
                        params![name, step],
                    )?;
                    transaction.commit()?;
                    Ok(true)
                })
                .await?;
            return Ok(accepted.then_some(SecondFactor::Totp));
        }
        let digest = crate::secret::digest(&totp::normalize_recovery_code(code));
        let used = self
            .state
            .run(move |connection| {
                connection.execute(
                    "UPDATE recovery_codes SET used_at = ?3
                     WHERE username = ?1 AND code_hash = ?2 AND used_at IS NULL",
                    params![name, digest, now.0],
                )
            })
            .await?;
        Ok((used == 1).then_some(SecondFactor::RecoveryCode))
    }

    /// Looks a user up in the backend.
    pub async fn find_user(&self, user: &Username) -> Result<Option<UserRecord>, BackendError> {
        self.backend.find_user(user).await
    }

    /// Every user of the backend.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, BackendError> {
        self.backend.list_users().await
    }

    /// Checks the backend end to end for `user` (`mfv auth test USER`).
    pub async fn check_backend(&self, user: &Username) -> CheckReport {
        self.backend.check(user).await
    }

    /// The newest `limit` audit entries with an id below `before` (all if `None`), newest
    /// first.
    pub async fn audit_log(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.search_audit_log(limit, before, AuditFilter::default())
            .await
    }

    /// The newest `limit` audit entries with an id below `before` (all if `None`) that
    /// `filter` lets through, newest first.
    pub async fn search_audit_log(
        &self,
        limit: u32,
        before: Option<i64>,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.state
            .run(move |connection| audit::list(connection, limit, before, &filter))
            .await
    }

    fn admin(&self) -> Result<&dyn UserAdmin, AdminError> {
        self.backend.admin().ok_or(AdminError::ReadOnly {
            backend: self.backend.name(),
        })
    }

    /// The admin interface, when `password` is long enough to be set.
    fn admin_for_password(&self, password: &Password) -> Result<&dyn UserAdmin, AdminError> {
        let admin = self.admin()?;
        let chars = password.expose().chars().count();
        let min = self.policy.min_password_chars;
        if chars < min {
            return Err(AdminError::PasswordTooShort { chars, min });
        }
        Ok(admin)
    }

    /// Runs an admin change and audits it (refused or ok), naming the actor.
    async fn audited_change<T>(
        &self,
        actor: &Actor,
        event: AuditEvent,
        user: &Username,
        detail: String,
        result: Result<T, AdminError>,
    ) -> Result<T, AuthError> {
        let outcome = match &result {
            Ok(_) => AuditOutcome::Ok,
            Err(AdminError::Backend(_)) => AuditOutcome::Error,
            Err(_) => AuditOutcome::Refused,
        };
        let detail = match &result {
            Ok(_) => detail,
            Err(error) => format!("{detail}: {error}"),
        };
        self.audit(
            event,
            outcome,
            Some(user.as_str()),
            Some(actor),
            None,
            detail,
        )
        .await?;
        Ok(result?)
    }

    /// Adds a user (SQLite and MySQL backends).
    /// The password needs at least [`AuthPolicy::min_password_chars`] characters.
    pub async fn add_user(
        &self,
        actor: &Actor,
        user: &UserRecord,
        password: &Password,
    ) -> Result<(), AuthError> {
        let result = match self.admin_for_password(password) {
            Ok(admin) => admin.add_user(user, password).await,
            Err(error) => Err(error),
        };
        self.audited_change(
            actor,
            AuditEvent::UserAdded,
            &user.username,
            format!("role {}", user.role),
            result,
        )
        .await
    }

    /// Deletes a user and everything the state store holds for them: sessions, API tokens,
    /// TOTP, throttle counters, the last login.
    pub async fn delete_user(&self, actor: &Actor, user: &Username) -> Result<(), AuthError> {
        let result = match self.admin() {
            Ok(admin) => admin.delete_user(user).await,
            Err(error) => Err(error),
        };
        self.audited_change(actor, AuditEvent::UserDeleted, user, String::new(), result)
            .await?;
        let name = user.as_str().to_owned();
        self.state
            .run(move |connection| {
                let transaction = connection.transaction()?;
                for sql in [
                    "DELETE FROM sessions WHERE username = ?1",
                    "DELETE FROM api_tokens WHERE username = ?1",
                    "DELETE FROM totp WHERE username = ?1",
                    "DELETE FROM throttle WHERE scope = 'user' AND key = ?1",
                    "DELETE FROM last_logins WHERE username = ?1",
                ] {
                    transaction.execute(sql, [&name])?;
                }
                transaction.commit()
            })
            .await?;
        Ok(())
    }

    /// Sets a user's password and ends all their sessions.
    /// The password needs at least [`AuthPolicy::min_password_chars`] characters.
    pub async fn set_password(
        &self,
        actor: &Actor,
        user: &Username,
        password: &Password,
    ) -> Result<(), AuthError> {
        let result = match self.admin_for_password(password) {
            Ok(admin) => admin.set_password(user, password).await,
            Err(error) => Err(error),
        };
        self.audited_change(
            actor,
            AuditEvent::PasswordChanged,
            user,
            String::new(),
            result,
        )
        .await?;
        self.end_user_sessions(actor, user, "password changed")
            .await
    }

    /// A user's own change of password, asked from `source`: `current` must be their
    /// password now, checked as [`Authenticator::check_current_password`] does (throttled; a
    /// wrong one is a failure, audited as a refused `password_changed`); then as
    /// [`Authenticator::set_password`], which ends all their sessions.
    pub async fn change_password(
        &self,
        user: &Username,
        current: &Password,
        new: &Password,
        source: IpAddr,
    ) -> Result<(), AuthError> {
        self.check_current_password(user, current, source, AuditEvent::PasswordChanged)
            .await?;
        let actor = Actor::Remote {
            user: user.clone(),
            address: source,
        };
        self.set_password(&actor, user, new).await
    }

    /// Sets a user's role; their sessions and tokens pick it up at their next check.
    pub async fn set_role(
        &self,
        actor: &Actor,
        user: &Username,
        role: Role,
    ) -> Result<(), AuthError> {
        let result = match self.admin() {
            Ok(admin) => admin.set_role(user, role).await,
            Err(error) => Err(error),
        };
        self.audited_change(
            actor,
            AuditEvent::RoleChanged,
            user,
            format!("role {role}"),
            result,
        )
        .await?;
        self.force_recheck(user).await
    }

    /// Disables (and ends all sessions of) or enables a user.
    pub async fn set_disabled(
        &self,
        actor: &Actor,
        user: &Username,
        disabled: bool,
    ) -> Result<(), AuthError> {
        let result = match self.admin() {
            Ok(admin) => admin.set_disabled(user, disabled).await,
            Err(error) => Err(error),
        };
        let event = if disabled {
            AuditEvent::UserDisabled
        } else {
            AuditEvent::UserEnabled
        };
        self.audited_change(actor, event, user, String::new(), result)
            .await?;
        self.force_recheck(user).await?;
        if disabled {
            self.end_user_sessions(actor, user, "user disabled").await?;
        }
        Ok(())
    }

    /// Changes a user's display name.
    pub async fn set_display_name(
        &self,
        actor: &Actor,
        user: &Username,
        display_name: &str,
    ) -> Result<(), AuthError> {
        let result = match self.admin() {
            Ok(admin) => admin.set_display_name(user, display_name).await,
            Err(error) => Err(error),
        };
        self.audited_change(
            actor,
            AuditEvent::DisplayNameChanged,
            user,
            format!("display name {display_name:?}"),
            result,
        )
        .await
    }

    /// Makes the user's sessions and tokens re-check the user at their next use.
    async fn force_recheck(&self, user: &Username) -> Result<(), AuthError> {
        let name = user.as_str().to_owned();
        self.state
            .run(move |connection| {
                connection.execute(
                    "UPDATE sessions SET user_checked_at = ?2 WHERE username = ?1",
                    params![name, i64::MIN],
                )?;
                connection.execute(
                    "UPDATE api_tokens SET user_checked_at = ?2 WHERE username = ?1",
                    params![name, i64::MIN],
                )
            })
            .await?;
        Ok(())
    }

    /// Ends every session of `user` and audits how many, saying `reason`.
    pub(crate) async fn end_user_sessions(
        &self,
        actor: &Actor,
        user: &Username,
        reason: &str,
    ) -> Result<(), AuthError> {
        let ended = self.delete_sessions_of(user).await?;
        if ended > 0 {
            self.audit(
                AuditEvent::SessionRevoked,
                AuditOutcome::Ok,
                Some(user.as_str()),
                Some(actor),
                None,
                format!("{ended} session(s) ended: {reason}"),
            )
            .await?;
        }
        Ok(())
    }
}
