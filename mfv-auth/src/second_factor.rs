//! TOTP enrolment: a new secret and recovery codes, confirmed with a first code before the
//! second factor is required at login.
//!
//! A signed-in user manages their own second factor: enrolling asks for their password,
//! removing it for their password and a current code (or a recovery code), both checked as
//! [`Authenticator::check_current_password`] does, so a session left open is not enough.
//! An administrator resets another user's second factor (a lost phone); that ends the user's
//! sessions, so whoever holds one signs in again under the new rules.
//!
//! TOTP secrets are stored as they are (the server must compute codes from them), in the
//! auth database, which is created mode 0600. Recovery codes are stored as SHA-256 digests
//! (80 random bits each) and work once.

use std::net::IpAddr;

use rusqlite::{OptionalExtension, params};

use crate::audit::{AuditEvent, AuditOutcome};
use crate::authenticator::{Actor, AuthError, Authenticator};
use crate::reauth::AlsoAsked;
use crate::secret::{self, Secret};
use crate::sqlite::StoreError;
use crate::{Password, Username, totp};

/// What the user needs to set up an authenticator app. Shown once.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// The secret in base32, for typing into an app.
    pub secret_base32: Secret,
    /// `otpauth://totp/...`, for a QR code.
    pub otpauth_uri: Secret,
    /// Single-use codes (`abcd-efgh-ijkl-mnop`) that stand in for a TOTP code.
    pub recovery_codes: Vec<Secret>,
}

/// Where a user's second factor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpStatus {
    /// A secret was issued: enrolment is pending or confirmed.
    pub enrolled: bool,
    /// Enrolment was confirmed: logins need a second factor.
    pub confirmed: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

impl Authenticator {
    /// Starts TOTP enrolment for `user`: a new secret and recovery codes, replacing any
    /// unconfirmed enrolment. TOTP is required at login only after
    /// [`Authenticator::confirm_totp`].
    pub async fn enrol_totp(
        &self,
        actor: &Actor,
        user: &Username,
    ) -> Result<TotpEnrolment, AuthError> {
        match self.backend.find_user(user).await? {
            Some(record) if !record.disabled => {}
            _ => return Err(AuthError::NoSuchUser { user: user.clone() }),
        }
        let secret_bytes = totp::new_secret()?;
        let codes = (0..totp::RECOVERY_CODE_COUNT)
            .map(|_| totp::new_recovery_code())
            .collect::<Result<Vec<_>, _>>()?;
        let digests: Vec<Vec<u8>> = codes
            .iter()
            .map(|code| secret::digest(&totp::normalize_recovery_code(code)))
            .collect();
        let now = self.clock.now();
        let name = user.as_str().to_owned();
        let stored_secret = secret_bytes.clone();
        let enrolled = self
            .state
            .run(move |connection| {
                let transaction = connection.transaction()?;
                let confirmed: Option<bool> = transaction
                    .query_row(
                        "SELECT confirmed FROM totp WHERE username = ?1",
                        [&name],
                        |row| row.get(0),
                    )
                    .optional()?;
                if confirmed == Some(true) {
                    return Ok(false);
                }
                transaction.execute("DELETE FROM totp WHERE username = ?1", [&name])?;
                transaction.execute(
                    "INSERT INTO totp (username, secret, confirmed, created_at) VALUES (?1, ?2, 0, ?3)",
                    params![name, stored_secret, now.0],
                )?;
                for digest in &digests {
                    transaction.execute(
                        "INSERT INTO recovery_codes (username, code_hash) VALUES (?1, ?2)",
                        params![name, digest],
                    )?;
                }
                transaction.commit()?;
                Ok(true)
            })
            .await?;
        if !enrolled {
            self.audit(
                AuditEvent::TotpEnrolled,
                AuditOutcome::Refused,
                Some(user.as_str()),
                Some(actor),
                None,
                "already enabled: remove it first".into(),
            )
            .await?;
            return Err(AuthError::TotpAlreadyEnabled { user: user.clone() });
        }
        self.audit(
            AuditEvent::TotpEnrolled,
            AuditOutcome::Ok,
            Some(user.as_str()),
            Some(actor),
            None,
            "awaiting confirmation".into(),
        )
        .await?;
        Ok(TotpEnrolment {
            secret_base32: Secret::new(totp::base32_encode(&secret_bytes)),
            otpauth_uri: Secret::new(totp::otpauth_uri(
                &self.policy.totp_issuer,
                user.as_str(),
                &secret_bytes,
            )),
            recovery_codes: codes.into_iter().map(Secret::new).collect(),
        })
    }

    /// Confirms a pending enrolment with a current code from the app: from now on logins
    /// need a second factor.
    pub async fn confirm_totp(
        &self,
        actor: &Actor,
        user: &Username,
        code: &str,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        let window = self.policy.totp_window;
        let name = user.as_str().to_owned();
        let code = code.trim().to_owned();
        let outcome = self
            .state
            .run(move |connection| {
                let pending: Option<Vec<u8>> = connection
                    .query_row(
                        "SELECT secret FROM totp WHERE username = ?1 AND confirmed = 0",
                        [&name],
                        |row| row.get(0),
                    )
                    .optional()?;
                let Some(secret) = pending else {
                    return Ok(None);
                };
                let Some(step) = totp::matching_step(&secret, &code, now, window) else {
                    return Ok(Some(false));
                };
                connection.execute(
                    "UPDATE totp SET confirmed = 1, last_step = ?2 WHERE username = ?1",
                    params![name, step],
                )?;
                Ok(Some(true))
            })
            .await?;
        let (result, audit_outcome, detail) = match outcome {
            None => (
                Err(AuthError::TotpNotEnrolled { user: user.clone() }),
                AuditOutcome::Refused,
                "no pending enrolment",
            ),
            Some(false) => (
                Err(AuthError::TotpInvalid),
                AuditOutcome::Refused,
                "invalid code",
            ),
            Some(true) => (Ok(()), AuditOutcome::Ok, "second factor now required"),
        };
        self.audit(
            AuditEvent::TotpConfirmed,
            audit_outcome,
            Some(user.as_str()),
            Some(actor),
            None,
            detail.into(),
        )
        .await?;
        result
    }

    /// Removes TOTP (confirmed or pending) and the recovery codes. Returns whether there was
    /// any.
    pub async fn disable_totp(&self, actor: &Actor, user: &Username) -> Result<bool, AuthError> {
        let removed = self.remove_totp(user).await?;
        if removed {
            self.audit(
                AuditEvent::TotpDisabled,
                AuditOutcome::Ok,
                Some(user.as_str()),
                Some(actor),
                None,
                String::new(),
            )
            .await?;
        }
        Ok(removed)
    }

    /// A signed-in user's own enrolment, asked from `source`: `password` is checked as
    /// [`Authenticator::check_current_password`] does (a wrong one is audited as a refused
    /// `totp_enrolled`), then as [`Authenticator::enrol_totp`].
    pub async fn enrol_own_totp(
        &self,
        user: &Username,
        password: &Password,
        source: IpAddr,
    ) -> Result<TotpEnrolment, AuthError> {
        self.check_current_password(user, password, source, AuditEvent::TotpEnrolled)
            .await?;
        let actor = Actor::Remote {
            user: user.clone(),
            address: source,
        };
        self.enrol_totp(&actor, user).await
    }

    /// A signed-in user's removal of their own second factor, asked from `source`: `password`
    /// is checked as [`Authenticator::check_current_password`] does and, when the second
    /// factor is confirmed, `code` must be a current TOTP code or an unused recovery code
    /// ([`AuthError::TotpRequired`] without one, [`AuthError::TotpInvalid`], a counted
    /// failure, when wrong). A pending enrolment goes with the password alone. Returns
    /// whether there was any.
    pub async fn disable_own_totp(
        &self,
        user: &Username,
        password: &Password,
        code: Option<&str>,
        source: IpAddr,
    ) -> Result<bool, AuthError> {
        self.reauthenticate(
            user,
            password,
            AlsoAsked::SecondFactor(code),
            source,
            AuditEvent::TotpDisabled,
        )
        .await?;
        let actor = Actor::Remote {
            user: user.clone(),
            address: source,
        };
        self.disable_totp(&actor, user).await
    }

    /// An administrator's reset of `user`'s second factor (confirmed or pending) and recovery
    /// codes, audited as `totp_disabled` whether or not there was any; ends all of `user`'s
    /// sessions when there was. Returns whether there was any.
    pub async fn reset_totp(&self, actor: &Actor, user: &Username) -> Result<bool, AuthError> {
        let removed = self.remove_totp(user).await?;
        let detail = if removed {
            "reset by an administrator"
        } else {
            "reset by an administrator: there was none"
        };
        self.audit(
            AuditEvent::TotpDisabled,
            AuditOutcome::Ok,
            Some(user.as_str()),
            Some(actor),
            None,
            detail.to_owned(),
        )
        .await?;
        if removed {
            self.end_user_sessions(actor, user, "second factor reset")
                .await?;
        }
        Ok(removed)
    }

    /// Deletes `user`'s TOTP row and with it the recovery codes; whether there was one.
    async fn remove_totp(&self, user: &Username) -> Result<bool, StoreError> {
        let name = user.as_str().to_owned();
        let removed = self
            .state
            .run(move |connection| {
                connection.execute("DELETE FROM totp WHERE username = ?1", [name])
            })
            .await?;
        Ok(removed > 0)
    }

    /// Where `user`'s second factor stands.
    pub async fn totp_status(&self, user: &Username) -> Result<TotpStatus, StoreError> {
        let name = user.as_str().to_owned();
        let confirmed: Option<bool> = self
            .state
            .run(move |connection| {
                connection
                    .query_row(
                        "SELECT confirmed FROM totp WHERE username = ?1",
                        [name],
                        |row| row.get(0),
                    )
                    .optional()
            })
            .await?;
        Ok(TotpStatus {
            enrolled: confirmed.is_some(),
            confirmed: confirmed == Some(true),
            recovery_codes_left: self.recovery_codes_left(user).await?,
        })
    }

    /// Whether `user` must give a TOTP code at login.
    pub async fn totp_enabled(&self, user: &Username) -> Result<bool, StoreError> {
        let name = user.as_str().to_owned();
        self.state
            .run(move |connection| {
                connection
                    .prepare_cached("SELECT 1 FROM totp WHERE username = ?1 AND confirmed = 1")?
                    .exists([name])
            })
            .await
    }

    /// How many unused recovery codes `user` has.
    pub async fn recovery_codes_left(&self, user: &Username) -> Result<u32, StoreError> {
        let name = user.as_str().to_owned();
        self.state
            .run(move |connection| {
                connection.query_row(
                    "SELECT count(*) FROM recovery_codes WHERE username = ?1 AND used_at IS NULL",
                    [name],
                    |row| row.get(0),
                )
            })
            .await
    }
}
