//! Changing the host network safely: a change is applied provisionally and rolled back by the
//! host unless it is confirmed within a deadline, so a change that cuts the client off undoes
//! itself.

use serde::{Deserialize, Serialize};

/// The longest confirm deadline a network change may ask for, in seconds (10 minutes).
pub const MAX_CONFIRM_SECS: u32 = 600;

/// What became of a network change. Serializes as an object whose `outcome` is `applied`,
/// `confirmed` or `rolled_back`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NetworkOutcome {
    /// Applied and verified, provisionally: it is rolled back unless confirmed with
    /// `apply_id` within `confirm_within_secs`.
    Applied {
        /// What the confirmation names.
        apply_id: u64,
        /// Seconds left to confirm.
        confirm_within_secs: u32,
        /// What was changed, one line each (`add 192.0.2.10/24 to eth0`, `eth0: DHCP client
        /// started`); absent from the JSON when nothing was.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<String>,
    },
    /// Confirmed: the change stays.
    Confirmed,
    /// The previous network is back: applying or verifying failed, or the deadline passed
    /// before the confirmation.
    RolledBack {
        /// Why, for people.
        reason: String,
    },
}
