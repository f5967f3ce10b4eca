//! The host console's shell in the audit log: who opened one, who was refused one, and how it
//! ended. The login itself is an ordinary [`Authenticator::login`].

use crate::audit::{AuditEvent, AuditOutcome};
use crate::authenticator::Authenticator;
use crate::sqlite::StoreError;
use crate::username::Username;

impl Authenticator {
    /// Writes one [`AuditEvent::ConsoleShell`] entry for `user`: `Ok` with `opened` or
    /// `closed (...)`, `Refused` with the reason.
    pub async fn audit_console_shell(
        &self,
        user: &Username,
        outcome: AuditOutcome,
        detail: String,
    ) -> Result<(), StoreError> {
        self.audit(
            AuditEvent::ConsoleShell,
            outcome,
            Some(user.as_str()),
            None,
            None,
            detail,
        )
        .await
    }
}
