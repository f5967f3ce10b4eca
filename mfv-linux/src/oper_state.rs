//! An interface's operational state (RFC 2863). The kernel reports it in sysfs (`operstate`,
//! which the hardware inventory reads) and over netlink (`IFLA_OPERSTATE`, which the network
//! library reads); both name the same seven states, and this one type spells them the way
//! sysfs does, in text and in JSON, wherever they are shown.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The operational state of an interface, as in `/sys/class/net/*/operstate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperState {
    /// The driver does not report a state (loopback, many virtual interfaces).
    Unknown,
    /// A component is missing.
    NotPresent,
    /// Down.
    Down,
    /// Down because a lower interface (a bond's or bridge's port, a VLAN's parent) is down.
    LowerLayerDown,
    /// In a test mode.
    Testing,
    /// Waiting for an external event (e.g. 802.1X).
    Dormant,
    /// Up: packets can pass.
    Up,
}

impl OperState {
    /// Every state, in the kernel's order (`IF_OPER_UNKNOWN` to `IF_OPER_UP`).
    pub const ALL: [OperState; 7] = [
        OperState::Unknown,
        OperState::NotPresent,
        OperState::Down,
        OperState::LowerLayerDown,
        OperState::Testing,
        OperState::Dormant,
        OperState::Up,
    ];

    /// The kernel's spelling, as in `operstate`.
    pub fn as_str(self) -> &'static str {
        match self {
            OperState::Unknown => "unknown",
            OperState::NotPresent => "notpresent",
            OperState::Down => "down",
            OperState::LowerLayerDown => "lowerlayerdown",
            OperState::Testing => "testing",
            OperState::Dormant => "dormant",
            OperState::Up => "up",
        }
    }

    /// The state the kernel spells `text` in `operstate` (surrounding white space ignored);
    /// `None` for anything else.
    pub fn from_sysfs(text: &str) -> Option<OperState> {
        let text = text.trim();
        OperState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

impl fmt::Display for OperState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_json_and_sysfs_agree_on_every_spelling() {
        for state in OperState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<OperState>(&json).unwrap(), state);
            assert_eq!(OperState::from_sysfs(&format!("{state}\n")), Some(state));
        }
        assert_eq!(OperState::NotPresent.to_string(), "notpresent");
        assert_eq!(OperState::LowerLayerDown.to_string(), "lowerlayerdown");
    }

    #[test]
    fn other_text_is_no_state() {
        for text in ["", "UP", "not-present", "lower-layer-down", "upx"] {
            assert_eq!(OperState::from_sysfs(text), None, "{text:?}");
        }
    }

    #[test]
    fn display_pads_for_tables() {
        assert_eq!(format!("{:<6}|", OperState::Up), "up    |");
    }
}
