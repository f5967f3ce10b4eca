//! An SNTP client (RFC 4330; the client side of NTPv4, RFC 5905) that keeps the host's
//! clock, as an async task.
//!
//! A host that lives in RAM and may have no battery-backed clock must learn the time from
//! the network before TLS certificates can be checked or logs compared. The client asks
//! every configured server at once (a *round*), keeps the answer with the lowest round-trip
//! delay and corrects the clock with it:
//!
//! - the first correction, and any of more than [`SntpConfig::step_threshold`] (128 ms,
//!   ntpd's and chrony's step threshold), *steps* the clock: it jumps, possibly backward;
//! - a smaller one *slews* it: the kernel runs the clock slightly fast or slow until the
//!   offset is made up, so time never jumps or runs backward.
//!
//! Rounds come every [`Timing::min_poll`] (64 s) at first; each slewed (so: stable) sync
//! doubles the interval up to [`Timing::max_poll`] (1024 s), and a step brings it back to
//! the minimum. A round that yields no usable answer is retried after
//! [`Timing::first_retry`] (16 s: RFC 4330 forbids polling a server more often than every
//! 15 s), doubled after each further failure up to [`Timing::max_retry`] (256 s).
//!
//! A reply counts only when it comes from the address the request went to and its origin
//! timestamp echoes the request's transmit timestamp, which the client fills with a random
//! 64-bit value ([`NtpPacket::client_request`]); anything else is ignored and counted
//! ([`SntpEvent::PacketIgnored`]). An authentic reply still gives no sample when the server
//! is not synchronised (leap indicator 3, stratum 0 or above 15), too far from its reference
//! clock, or sends a kiss-o'-death: `RATE` holds the server off for [`Timing::max_poll`],
//! `DENY` and `RSTR` drop it for good ([`SntpEvent::ServerDropped`]); when every server has
//! dropped the client, it ends with [`SntpError::AllServersRefused`]. Server timestamps are
//! read in the NTP era nearest to the local clock ([`NtpTimestamp::to_system_time`]), so
//! the 2036 wrap needs nothing special, as long as the local clock is within 68 years of
//! the truth. Leap second warnings are not acted on.
//!
//! The pieces, each replaceable for tests, as in the DHCP client:
//! - [`SntpMachine`] is the protocol without I/O: it takes the time, received packets and
//!   send failures, and answers with [`SntpAction`]s;
//! - [`SntpTransport`] sends and receives the packets; [`UdpTransport`] is the real one (one
//!   UDP socket on an ephemeral port, IPv4 and IPv6);
//! - [`ClockSetter`] reads and corrects the clock; [`SystemClock`] is the real one
//!   (`clock_settime`, `adjtimex`) and [`RecordingClock`] a simulated clock that records
//!   what would be done;
//! - [`SntpClient::run`] is the task; it reports through [`SntpEvent`]s on a channel and
//!   ends with an [`SntpExit`] when its stop future completes, or with an [`SntpError`].
//!
//! Server names are the caller's to resolve: the client takes socket addresses
//! ([`SntpConfig::new`]; port 123 is [`NTP_PORT`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mfv_net::sntp::{NTP_PORT, SntpClient, SntpConfig, SntpEvent, SystemClock, UdpTransport};
//!
//! // The caller resolves the names, e.g. the config's `[host] ntp_servers`.
//! let servers = tokio::net::lookup_host(("ntp.example.org", NTP_PORT)).await?.collect();
//! let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let config = SntpConfig::new(servers);
//! let client = SntpClient::new(config, UdpTransport::bind()?, SystemClock::new())
//!     .with_events(events);
//! let task = tokio::spawn(client.run(async move {
//!     let _ = stopped.await;
//! }));
//! while let Some(event) = received.recv().await {
//!     if let SntpEvent::Synced { server, offset, delay, stepped } = event {
//!         let how = if stepped { "stepped" } else { "slewed" };
//!         println!("clock {how} by {offset} from {server} (delay {delay:?})");
//! #       break;
//!     }
//! }
//! let _ = stop.send(());
//! task.await??;
//! # Ok(())
//! # }
//! ```

mod client;
mod clock;
mod machine;
mod packet;
#[cfg(test)]
mod tests;
mod transport;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use client::{SntpClient, SntpExit};
pub use clock::{ClockChange, ClockOffset, ClockSetter, RecordingClock, SystemClock};
pub use machine::{SntpAction, SntpMachine};
pub use packet::{
    IgnoreReason, KissCode, LeapIndicator, MAX_ROOT_DISTANCE, MODE_CLIENT, MODE_SERVER,
    NTP_PACKET_LEN, NTP_VERSION, NtpPacket, NtpTimestamp, Sample, ServerFailure,
};
pub use transport::{SntpTransport, UdpTransport};

/// The NTP server port.
pub const NTP_PORT: u16 = 123;

/// Why the SNTP client stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum SntpError {
    /// The configuration cannot be used.
    #[error("invalid SNTP client settings: {problem}")]
    InvalidConfig {
        /// What is wrong.
        problem: String,
    },
    /// Opening the client socket failed.
    #[error("cannot open the NTP client socket on {local}")]
    Socket {
        /// The address it was to be bound to.
        local: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Receiving on the client socket failed.
    #[error("cannot receive NTP replies on {local}")]
    Receive {
        /// The socket's address.
        local: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Stepping or slewing the clock failed.
    #[error("cannot {change} the clock by {offset} (measured against {server})")]
    SetClock {
        /// `step` or `slew`.
        change: &'static str,
        /// The correction asked for.
        offset: ClockOffset,
        /// The server the offset was measured against.
        server: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Every server sent a `DENY` or `RSTR` kiss-o'-death.
    #[error("every NTP server refused this client (kiss-o'-death DENY or RSTR): {}", list(.servers))]
    AllServersRefused {
        /// The servers.
        servers: Vec<SocketAddr>,
    },
}

/// `servers` separated by commas.
fn list(servers: &[SocketAddr]) -> String {
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the client reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SntpEvent {
    /// The clock was corrected with the best answer of a round.
    Synced {
        /// The server whose answer was used (the lowest delay).
        server: SocketAddr,
        /// The correction: positive moved the clock forward.
        offset: ClockOffset,
        /// The round-trip delay of that answer.
        delay: Duration,
        /// Stepped (`true`) or slewed (`false`).
        stepped: bool,
    },
    /// A server gave no usable answer in this round.
    ServerFailed {
        /// The server.
        server: SocketAddr,
        /// Why.
        reason: ServerFailure,
    },
    /// A server sent kiss-o'-death `RATE`: it is not asked again for this long.
    ServerHeldOff {
        /// The server.
        server: SocketAddr,
        /// How long it is left alone.
        waiting: Duration,
    },
    /// A server sent kiss-o'-death `DENY` or `RSTR`: it is never asked again.
    ServerDropped {
        /// The server.
        server: SocketAddr,
        /// The kiss code.
        code: KissCode,
    },
    /// No server gave a usable answer in this round; the next round comes after
    /// `retry_in`.
    RoundFailed {
        /// The wait before the next round.
        retry_in: Duration,
    },
    /// A packet was dropped; `total` counts every dropped packet so far.
    PacketIgnored {
        /// Where it came from.
        from: SocketAddr,
        /// Why it was dropped.
        reason: IgnoreReason,
        /// Packets dropped since the client started, for every reason.
        total: u64,
    },
}

/// Timers of the client. [`Timing::default`] has the values described in the module
/// documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// The interval between rounds after a start or a step (64 s).
    pub min_poll: Duration,
    /// The longest interval between rounds, reached while the clock is stable (1024 s).
    /// Also how long a server that sent kiss-o'-death `RATE` is left alone.
    pub max_poll: Duration,
    /// How long a round waits for the servers' answers (2 s).
    pub response_timeout: Duration,
    /// The wait after the first round in a row without a usable answer (16 s).
    pub first_retry: Duration,
    /// The longest wait between rounds without a usable answer (256 s).
    pub max_retry: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            min_poll: Duration::from_secs(64),
            max_poll: Duration::from_secs(1024),
            response_timeout: Duration::from_secs(2),
            first_retry: Duration::from_secs(16),
            max_retry: Duration::from_secs(256),
        }
    }
}

/// Settings of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SntpConfig {
    /// The servers, with their ports (usually [`NTP_PORT`]); repeated addresses are asked
    /// once.
    pub servers: Vec<SocketAddr>,
    /// Offsets larger than this step the clock; smaller ones slew it (128 ms). The first
    /// correction always steps.
    pub step_threshold: Duration,
    /// Timers.
    pub timing: Timing,
}

impl SntpConfig {
    /// Settings with the defaults for `servers`.
    pub fn new(servers: Vec<SocketAddr>) -> SntpConfig {
        SntpConfig {
            servers,
            step_threshold: Duration::from_millis(128),
            timing: Timing::default(),
        }
    }

    /// Checks the settings; the first problem found is returned.
    pub fn validate(&self) -> Result<(), SntpError> {
        let invalid = |problem: &str| {
            Err(SntpError::InvalidConfig {
                problem: problem.into(),
            })
        };
        let timing = &self.timing;
        if self.servers.is_empty() {
            return invalid("no NTP server");
        }
        if timing.min_poll.is_zero() || timing.min_poll > timing.max_poll {
            return invalid("min_poll must be above zero and at most max_poll");
        }
        if timing.first_retry.is_zero() || timing.first_retry > timing.max_retry {
            return invalid("first_retry must be above zero and at most max_retry");
        }
        if timing.response_timeout.is_zero() {
            return invalid("response_timeout must be above zero");
        }
        Ok(())
    }
}
