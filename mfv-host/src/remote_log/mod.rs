//! Remote logging: a copy of the host's log lines for a syslog server named by the
//! configuration's `[log] remote`, because a host that runs from RAM loses its own logs at
//! every reboot, and the lines that explain a crash are the ones it would lose.
//!
//! [`mod@format`] writes a line as an RFC 5424 message and frames it for TCP (RFC 6587 octet
//! counting); [`RemoteLog`] queues messages without ever making the caller wait and sends them
//! from a thread of its own over UDP (RFC 5426, one datagram each) or TCP, resolving the name
//! and reconnecting with a doubling wait, dropping the oldest lines when too many wait and
//! saying how many once the server takes lines again. [`HostLogForwarding`] is what PID 1
//! feeds: its console lines as `mfv-init`, every service's output as the service; what arrives
//! is only ever a copy of the local logs.

pub mod format;
mod forwarder;
mod host;

pub use format::LogRecord;
pub use forwarder::{ForwarderSettings, RemoteLog, RemoteLogError, Resolver};
pub use host::{HostLogForwarding, INIT_APP_NAME};

#[cfg(test)]
mod tests;
