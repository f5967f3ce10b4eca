//! Recent log lines of the boot or of one service, as the host keeps them in memory.

use serde::{Deserialize, Serialize};

/// The most lines one `logs` request may ask for. With lines of a few hundred bytes the
/// reply stays well below [`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN).
pub const MAX_LOG_LINES: u32 = 1000;

/// Whose log. Serializes as `{"kind": "boot"}` or `{"kind": "service", "name": "mfv-web"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LogSource {
    /// mfv-init's boot log: the phases as the console showed them.
    Boot,
    /// The output of one supervised service.
    Service {
        /// The service's name.
        name: String,
    },
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct LogLine {
    /// When it was logged: microseconds since the kernel started, the console's clock (a host
    /// in RAM may have no trustworthy wall clock).
    pub timestamp_us: u64,
    /// Who logged it.
    pub source: LogSource,
    /// The line, without its newline.
    pub text: String,
}

impl LogLine {
    /// A line `text` logged by `source` at `timestamp_us`.
    pub fn new(timestamp_us: u64, source: LogSource, text: impl Into<String>) -> Self {
        Self {
            timestamp_us,
            source,
            text: text.into(),
        }
    }
}
