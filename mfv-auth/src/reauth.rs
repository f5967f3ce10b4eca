//! Asking a signed-in user for their password again before a change to their own account
//! (a new password, enrolling or removing a second factor).
//!
//! A session can outlive the person who opened it (a browser left open), so these changes
//! ask again for what only the user knows. The question is a login's in all that matters to
//! a guesser: the same throttle counters (per name and per address, shared with logins, so
//! guesses here and at the login form add up), the same lockout checked before the password
//! is looked at, the same reservation of attempts under way. A wrong password is a failed
//! attempt, audited under the event of the change it guarded with the client's address; a
//! lockout it starts is audited as [`AuditEvent::Lockout`].

use std::net::IpAddr;

use crate::Username;
use crate::audit::{AuditEvent, AuditOutcome};
use crate::authenticator::{Actor, AuthError, Authenticator, Failure, SecondFactor};
use crate::password::Password;
use crate::throttle::{AttemptId, Reservation};

/// What a check asks for besides the password.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AlsoAsked<'a> {
    /// The password only.
    Nothing,
    /// A current TOTP code or an unused recovery code (`None`: none was given), when the
    /// user's second factor is confirmed; nothing more otherwise.
    SecondFactor(Option<&'a str>),
}

impl Authenticator {
    /// Checks that `password` is the current password of the signed-in `user`, asking from
    /// `source`, before the change audited as `guarding`.
    ///
    /// Refused as a login would be: [`AuthError::LockedOut`] while the name or the address is
    /// locked (the password is not looked at), [`AuthError::AttemptsInProgress`] when as many
    /// checks as the lockout allows are under way, [`AuthError::WrongPassword`] (a failure,
    /// counted and audited) when it is wrong or the user is disabled or gone, and
    /// [`AuthError::Backend`] when the backend cannot answer (nothing is counted). A right
    /// password clears the name's failures, as a login does.
    pub async fn check_current_password(
        &self,
        user: &Username,
        password: &Password,
        source: IpAddr,
        guarding: AuditEvent,
    ) -> Result<(), AuthError> {
        self.reauthenticate(user, password, AlsoAsked::Nothing, source, guarding)
            .await
    }

    /// [`Authenticator::check_current_password`], and with `also` a second factor: a missing
    /// one is [`AuthError::TotpRequired`] (not counted), a wrong one [`AuthError::TotpInvalid`]
    /// (counted as a failure). A recovery code given is used up.
    pub(crate) async fn reauthenticate(
        &self,
        user: &Username,
        password: &Password,
        also: AlsoAsked<'_>,
        source: IpAddr,
        guarding: AuditEvent,
    ) -> Result<(), AuthError> {
        let refuse = async |detail: String| {
            self.audit(
                guarding,
                AuditOutcome::Refused,
                Some(user.as_str()),
                Some(&Actor::User(user.clone())),
                Some(source),
                detail,
            )
            .await
        };
        let attempt = match self.reserve_attempt(user, source).await? {
            Reservation::Granted(attempt) => attempt,
            Reservation::Locked(until) => {
                refuse(format!("password not checked: locked until {until}")).await?;
                return Err(AuthError::LockedOut { until });
            }
            Reservation::Busy => {
                refuse("password not checked: too many checks in progress".to_owned()).await?;
                return Err(AuthError::AttemptsInProgress);
            }
        };
        let failed = |reason| Failure {
            event: guarding,
            by_the_user: true,
            reason,
        };
        match self.backend.verify_password(user, password).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let failure = failed("the current password given is wrong");
                self.count_failed_attempt(Some(user), Some(attempt), source, failure)
                    .await?;
                return Err(AuthError::WrongPassword);
            }
            Err(error) => {
                self.end_attempt(attempt).await?;
                self.audit(
                    guarding,
                    AuditOutcome::Error,
                    Some(user.as_str()),
                    Some(&Actor::User(user.clone())),
                    Some(source),
                    format!("password not checked: {error}"),
                )
                .await?;
                return Err(AuthError::Backend(error));
            }
        }
        if let AlsoAsked::SecondFactor(code) = also {
            self.check_code(user, code, attempt, source, guarding)
                .await?;
        }
        if let Some(until) = self
            .finish_successful_attempt(user, source, attempt)
            .await?
        {
            refuse(format!("password correct, but locked until {until}")).await?;
            return Err(AuthError::LockedOut { until });
        }
        Ok(())
    }

    /// The second factor of a check whose password was right, when the user's is confirmed.
    async fn check_code(
        &self,
        user: &Username,
        code: Option<&str>,
        attempt: AttemptId,
        source: IpAddr,
        guarding: AuditEvent,
    ) -> Result<(), AuthError> {
        if !self.totp_enabled(user).await? {
            return Ok(());
        }
        let actor = Actor::User(user.clone());
        let Some(code) = code.filter(|code| !code.trim().is_empty()) else {
            self.end_attempt(attempt).await?;
            self.audit(
                guarding,
                AuditOutcome::Refused,
                Some(user.as_str()),
                Some(&actor),
                Some(source),
                "password correct, TOTP code required".to_owned(),
            )
            .await?;
            return Err(AuthError::TotpRequired);
        };
        match self.check_second_factor(user, code).await? {
            Some(SecondFactor::Totp) => Ok(()),
            Some(SecondFactor::RecoveryCode) => {
                self.audit(
                    AuditEvent::RecoveryCodeUsed,
                    AuditOutcome::Ok,
                    Some(user.as_str()),
                    Some(&actor),
                    Some(source),
                    format!("for {guarding}"),
                )
                .await?;
                Ok(())
            }
            None => {
                let failure = Failure {
                    event: guarding,
                    by_the_user: true,
                    reason: "invalid TOTP or recovery code",
                };
                self.count_failed_attempt(Some(user), Some(attempt), source, failure)
                    .await?;
                Err(AuthError::TotpInvalid)
            }
        }
    }
}
