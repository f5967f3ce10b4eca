//! NTP packets on the wire (RFC 5905 section 7.3): the 48-byte header, the client request,
//! the checks every server reply passes, and the offset and delay computed from the four
//! timestamps.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::clock::ClockOffset;

/// Length of the NTP header; extension fields and MACs after it are ignored.
pub const NTP_PACKET_LEN: usize = 48;
/// The version the client speaks.
pub const NTP_VERSION: u8 = 4;
/// Mode of a client request.
pub const MODE_CLIENT: u8 = 3;
/// Mode of a server reply.
pub const MODE_SERVER: u8 = 4;

/// Seconds from the NTP epoch (1900-01-01 00:00 UTC) to the Unix epoch.
const NTP_TO_UNIX_SECONDS: i128 = 2_208_988_800;
const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// The highest stratum of a synchronised server (16 means unsynchronised).
const MAX_STRATUM: u8 = 15;
/// A server whose root distance (half its root delay plus its root dispersion) is larger is
/// too far from a reference clock to be trusted; chrony's `maxdistance` default.
pub const MAX_ROOT_DISTANCE: Duration = Duration::from_secs(3);

/// An NTP timestamp: seconds since 1900 in the high 32 bits, the fraction of a second in
/// the low 32 bits. The era (which 136-year period, the first ending in February 2036) is
/// not on the wire; [`NtpTimestamp::to_system_time`] picks it relative to a clock reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NtpTimestamp(u64);

impl NtpTimestamp {
    /// The zero timestamp, which the protocol uses for "unknown".
    pub const ZERO: NtpTimestamp = NtpTimestamp(0);

    /// The timestamp with these 64 bits.
    pub const fn from_bits(bits: u64) -> NtpTimestamp {
        NtpTimestamp(bits)
    }

    /// The 64 bits on the wire.
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// `time` as an NTP timestamp (the era is dropped), rounded down to 2^-32 s.
    pub fn from_system_time(time: SystemTime) -> NtpTimestamp {
        let fixed = nanos_to_fixed(unix_nanos(time) + NTP_TO_UNIX_SECONDS * NANOS_PER_SECOND);
        // Only the low 64 bits go on the wire: the era is dropped here, as RFC 5905 says.
        NtpTimestamp(fixed as u64)
    }

    /// The time this timestamp stands for in the era that puts it closest to `near` (within
    /// 68 years of it), as RFC 5905 section 6 recommends: a server's timestamps are read
    /// relative to the client's own clock, so the 2036 wrap needs no special case.
    pub fn to_system_time(self, near: SystemTime) -> SystemTime {
        let near_fixed = nanos_to_fixed(unix_nanos(near) + NTP_TO_UNIX_SECONDS * NANOS_PER_SECOND);
        // The difference modulo 2^64, read as a signed 32.32 number of seconds.
        let difference = self.0.wrapping_sub(near_fixed as u64) as i64;
        let fixed = near_fixed + i128::from(difference);
        system_time_from_unix_nanos(fixed_to_nanos(fixed) - NTP_TO_UNIX_SECONDS * NANOS_PER_SECOND)
    }
}

/// Nanoseconds since the Unix epoch, negative before it.
fn unix_nanos(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

/// The time `nanos` after (or before, when negative) the Unix epoch.
fn system_time_from_unix_nanos(nanos: i128) -> SystemTime {
    let magnitude = nanos.unsigned_abs();
    let duration = Duration::new(
        u64::try_from(magnitude / 1_000_000_000).unwrap_or(u64::MAX),
        (magnitude % 1_000_000_000) as u32,
    );
    // Out of range only for times hundreds of billions of years away, which no 64-bit NTP
    // timestamp read near a clock reading can give; the epoch is a harmless answer there.
    if nanos >= 0 {
        UNIX_EPOCH.checked_add(duration).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH.checked_sub(duration).unwrap_or(UNIX_EPOCH)
    }
}

/// Nanoseconds as 32.32 fixed-point seconds, rounded down.
fn nanos_to_fixed(nanos: i128) -> i128 {
    (nanos << 32).div_euclid(NANOS_PER_SECOND)
}

/// 32.32 fixed-point seconds as nanoseconds, rounded to the nearest.
fn fixed_to_nanos(fixed: i128) -> i128 {
    (fixed * NANOS_PER_SECOND + (1 << 31)) >> 32
}

/// An NTP short-format value (16.16 seconds) as a duration.
fn short_to_duration(short: u32) -> Duration {
    Duration::from_nanos((u64::from(short) * 1_000_000_000) >> 16)
}

/// A duration as an NTP short-format value (16.16 seconds), saturating.
fn duration_to_short(duration: Duration) -> u32 {
    let short = (duration.as_nanos() << 16) / 1_000_000_000;
    u32::try_from(short).unwrap_or(u32::MAX)
}

/// The leap indicator: a warning of a leap second at the end of the day, or "not
/// synchronised".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeapIndicator {
    /// No leap second announced.
    NoWarning,
    /// The last minute of the day has 61 seconds.
    InsertSecond,
    /// The last minute of the day has 59 seconds.
    DeleteSecond,
    /// The server's clock is not synchronised (value 3).
    Unsynchronised,
}

impl LeapIndicator {
    fn from_bits(bits: u8) -> LeapIndicator {
        match bits & 0b11 {
            0 => LeapIndicator::NoWarning,
            1 => LeapIndicator::InsertSecond,
            2 => LeapIndicator::DeleteSecond,
            _ => LeapIndicator::Unsynchronised,
        }
    }

    fn to_bits(self) -> u8 {
        match self {
            LeapIndicator::NoWarning => 0,
            LeapIndicator::InsertSecond => 1,
            LeapIndicator::DeleteSecond => 2,
            LeapIndicator::Unsynchronised => 3,
        }
    }
}

/// The 48-byte NTP header, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtpPacket {
    /// Leap indicator.
    pub leap: LeapIndicator,
    /// Protocol version (0 to 7).
    pub version: u8,
    /// Association mode (0 to 7): [`MODE_CLIENT`] or [`MODE_SERVER`] here.
    pub mode: u8,
    /// Distance from a reference clock: 1 primary, 2 to 15 secondary, 16 unsynchronised; 0
    /// marks a kiss-o'-death packet, whose code is in [`NtpPacket::reference_id`].
    pub stratum: u8,
    /// Poll exponent (log2 seconds).
    pub poll: i8,
    /// Precision of the server's clock (log2 seconds).
    pub precision: i8,
    /// Round-trip delay from the server to its reference clock.
    pub root_delay: Duration,
    /// Dispersion from the server to its reference clock.
    pub root_dispersion: Duration,
    /// The reference clock's id, or the kiss code when the stratum is 0.
    pub reference_id: [u8; 4],
    /// When the server's clock was last set.
    pub reference: NtpTimestamp,
    /// In a reply: the request's transmit timestamp, echoed.
    pub origin: NtpTimestamp,
    /// In a reply: when the server received the request (T2).
    pub receive: NtpTimestamp,
    /// When the packet left (T3 in a reply).
    pub transmit: NtpTimestamp,
}

impl NtpPacket {
    /// A version 4 client request (mode 3) whose only non-zero field is the transmit
    /// timestamp, here `nonce`.
    ///
    /// The client puts a random value rather than its clock reading there, as chrony does
    /// and the NTP data minimisation draft recommends: the server echoes it in the origin
    /// timestamp, which is all the client needs (it remembers its own send time), and a
    /// random value makes a forged reply a 64-bit guess and tells nobody the client's time.
    pub fn client_request(nonce: NtpTimestamp) -> NtpPacket {
        NtpPacket {
            leap: LeapIndicator::NoWarning,
            version: NTP_VERSION,
            mode: MODE_CLIENT,
            stratum: 0,
            poll: 0,
            precision: 0,
            root_delay: Duration::ZERO,
            root_dispersion: Duration::ZERO,
            reference_id: [0; 4],
            reference: NtpTimestamp::ZERO,
            origin: NtpTimestamp::ZERO,
            receive: NtpTimestamp::ZERO,
            transmit: nonce,
        }
    }

    /// Decodes the header; `None` when `bytes` is shorter than 48 bytes. Anything after the
    /// header (extension fields, a MAC) is ignored.
    pub fn decode(bytes: &[u8]) -> Option<NtpPacket> {
        let header: &[u8; NTP_PACKET_LEN] = bytes.get(..NTP_PACKET_LEN)?.try_into().ok()?;
        let word = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let timestamp =
            |at: usize| NtpTimestamp((u64::from(word(at)) << 32) | u64::from(word(at + 4)));
        Some(NtpPacket {
            leap: LeapIndicator::from_bits(header[0] >> 6),
            version: (header[0] >> 3) & 0b111,
            mode: header[0] & 0b111,
            stratum: header[1],
            poll: header[2] as i8,
            precision: header[3] as i8,
            root_delay: short_to_duration(word(4)),
            root_dispersion: short_to_duration(word(8)),
            reference_id: [header[12], header[13], header[14], header[15]],
            reference: timestamp(16),
            origin: timestamp(24),
            receive: timestamp(32),
            transmit: timestamp(40),
        })
    }

    /// The 48 bytes on the wire. Root delay and dispersion are rounded down to 2^-16 s.
    pub fn encode(&self) -> [u8; NTP_PACKET_LEN] {
        let mut bytes = [0u8; NTP_PACKET_LEN];
        bytes[0] = (self.leap.to_bits() << 6) | ((self.version & 0b111) << 3) | (self.mode & 0b111);
        bytes[1] = self.stratum;
        bytes[2] = self.poll as u8;
        bytes[3] = self.precision as u8;
        bytes[4..8].copy_from_slice(&duration_to_short(self.root_delay).to_be_bytes());
        bytes[8..12].copy_from_slice(&duration_to_short(self.root_dispersion).to_be_bytes());
        bytes[12..16].copy_from_slice(&self.reference_id);
        bytes[16..24].copy_from_slice(&self.reference.0.to_be_bytes());
        bytes[24..32].copy_from_slice(&self.origin.0.to_be_bytes());
        bytes[32..40].copy_from_slice(&self.receive.0.to_be_bytes());
        bytes[40..48].copy_from_slice(&self.transmit.0.to_be_bytes());
        bytes
    }

    /// The kiss code of a kiss-o'-death packet: stratum 0 and four printable ASCII
    /// characters as the reference id. A stratum 0 packet without one (chrony's answer while
    /// unsynchronised) is not a kiss.
    pub fn kiss_code(&self) -> Option<KissCode> {
        let printable = self
            .reference_id
            .iter()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
        (self.stratum == 0 && printable).then(|| KissCode::from_bytes(self.reference_id))
    }
}

/// The code of a kiss-o'-death packet (RFC 5905 section 7.4), a server's way of saying no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KissCode {
    /// `RATE`: the client polls too often; it must slow down.
    Rate,
    /// `DENY`: access denied by the server's policy; the client must stop asking it.
    Deny,
    /// `RSTR`: access restricted by the server's policy; the client must stop asking it.
    Restricted,
    /// Any other code (four ASCII characters): this reply is unusable.
    Other([u8; 4]),
}

impl KissCode {
    /// The code in a reference id field.
    pub fn from_bytes(bytes: [u8; 4]) -> KissCode {
        match &bytes {
            b"RATE" => KissCode::Rate,
            b"DENY" => KissCode::Deny,
            b"RSTR" => KissCode::Restricted,
            _ => KissCode::Other(bytes),
        }
    }

    /// The four characters on the wire.
    pub fn to_bytes(self) -> [u8; 4] {
        match self {
            KissCode::Rate => *b"RATE",
            KissCode::Deny => *b"DENY",
            KissCode::Restricted => *b"RSTR",
            KissCode::Other(bytes) => bytes,
        }
    }

    /// Whether the server must never be asked again (`DENY`, `RSTR`).
    pub fn refuses(self) -> bool {
        matches!(self, KissCode::Deny | KissCode::Restricted)
    }
}

impl fmt::Display for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// Why a received packet was dropped without changing anything: it is not (or cannot be
/// shown to be) the answer to a request of this client. Every dropped packet is counted
/// under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// Shorter than the 48-byte header.
    Malformed,
    /// A version other than 3 or 4.
    UnsupportedVersion,
    /// Not a server reply (mode 4).
    NotServerMode,
    /// From an address the client has no outstanding request to (a late or repeated reply,
    /// or a stranger).
    Unsolicited,
    /// The origin timestamp does not echo the request's transmit timestamp: a forged or
    /// stale reply.
    WrongOrigin,
}

impl IgnoreReason {
    /// Every reason, in a fixed order (the order of the counters).
    pub const ALL: [IgnoreReason; 5] = [
        IgnoreReason::Malformed,
        IgnoreReason::UnsupportedVersion,
        IgnoreReason::NotServerMode,
        IgnoreReason::Unsolicited,
        IgnoreReason::WrongOrigin,
    ];

    /// Position of this reason in [`IgnoreReason::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IgnoreReason::Malformed => "shorter than an NTP header",
            IgnoreReason::UnsupportedVersion => "not NTP version 3 or 4",
            IgnoreReason::NotServerMode => "not a server reply",
            IgnoreReason::Unsolicited => "no request outstanding to that address",
            IgnoreReason::WrongOrigin => "origin timestamp does not echo the request",
        })
    }
}

/// Why a server's authentic reply (its origin timestamp echoes the request) gave no usable
/// sample, or why the server gave no reply at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerFailure {
    /// No reply came within the response timeout.
    #[error("no answer within {:.1} s", .waited.as_secs_f64())]
    Timeout {
        /// How long the client waited.
        waited: Duration,
    },
    /// The request could not be sent.
    #[error("cannot send the request: {problem}")]
    Send {
        /// The error, with its causes.
        problem: String,
    },
    /// A kiss-o'-death packet.
    #[error("kiss-o'-death {code}")]
    KissOfDeath {
        /// Its code.
        code: KissCode,
    },
    /// The server says its clock is not synchronised (leap indicator 3, or stratum 0
    /// without a kiss code).
    #[error("the server's clock is not synchronised")]
    Unsynchronised,
    /// A stratum above 15.
    #[error("stratum {stratum} (a synchronised server has 1 to 15)")]
    BadStratum {
        /// The stratum.
        stratum: u8,
    },
    /// The server's timestamps cannot be right.
    #[error("invalid timestamps: {problem}")]
    BadTimestamps {
        /// Which check failed.
        problem: &'static str,
    },
    /// The server is too far from its reference clock.
    #[error(
        "root distance {:.3} s is above {} s",
        .root_distance.as_secs_f64(),
        MAX_ROOT_DISTANCE.as_secs()
    )]
    TooFar {
        /// Half its root delay plus its root dispersion.
        root_distance: Duration,
    },
}

/// One measurement of the local clock against a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The server.
    pub server: SocketAddr,
    /// How far the local clock must move to show the server's time (positive: the local
    /// clock is behind).
    pub offset: ClockOffset,
    /// The round-trip delay, without the time the server held the request.
    pub delay: Duration,
    /// The server's stratum.
    pub stratum: u8,
}

/// What became of a decoded reply whose origin timestamp matched.
pub(crate) type Measurement = Result<Sample, ServerFailure>;

/// Checks the fields of a reply that do not depend on the request: length, version, mode.
pub(crate) fn decode_reply(bytes: &[u8]) -> Result<NtpPacket, IgnoreReason> {
    let packet = NtpPacket::decode(bytes).ok_or(IgnoreReason::Malformed)?;
    if !(3..=4).contains(&packet.version) {
        return Err(IgnoreReason::UnsupportedVersion);
    }
    if packet.mode != MODE_SERVER {
        return Err(IgnoreReason::NotServerMode);
    }
    Ok(packet)
}

/// The sample from `reply` (whose origin timestamp was checked) to the request sent at
/// `sent` and received at `received` by the local clock, with RFC 5905's
///
/// ```text
/// offset = ((T2 - T1) + (T3 - T4)) / 2        delay = (T4 - T1) - (T3 - T2)
/// ```
///
/// The server's T2 and T3 are read in the era nearest to the local send time.
pub(crate) fn measure(
    server: SocketAddr,
    reply: &NtpPacket,
    sent: SystemTime,
    received: SystemTime,
) -> Measurement {
    if let Some(code) = reply.kiss_code() {
        return Err(ServerFailure::KissOfDeath { code });
    }
    if reply.leap == LeapIndicator::Unsynchronised || reply.stratum == 0 {
        return Err(ServerFailure::Unsynchronised);
    }
    if reply.stratum > MAX_STRATUM {
        return Err(ServerFailure::BadStratum {
            stratum: reply.stratum,
        });
    }
    if reply.transmit == NtpTimestamp::ZERO || reply.receive == NtpTimestamp::ZERO {
        return Err(ServerFailure::BadTimestamps {
            problem: "a zero receive or transmit timestamp",
        });
    }
    let root_distance = reply.root_delay / 2 + reply.root_dispersion;
    if root_distance > MAX_ROOT_DISTANCE {
        return Err(ServerFailure::TooFar { root_distance });
    }
    let t1 = unix_nanos(sent);
    let t2 = unix_nanos(reply.receive.to_system_time(sent));
    let t3 = unix_nanos(reply.transmit.to_system_time(sent));
    let t4 = unix_nanos(received);
    if t3 < t2 {
        return Err(ServerFailure::BadTimestamps {
            problem: "the server sent its reply before it received the request",
        });
    }
    // A local clock stepped between send and receive can make T4 < T1; such a sample says
    // nothing.
    if t4 < t1 {
        return Err(ServerFailure::BadTimestamps {
            problem: "the local clock went backwards during the exchange",
        });
    }
    let offset = ((t2 - t1) + (t3 - t4)) / 2;
    // Clock granularity can make the delay slightly negative: it is at least zero.
    let delay = ((t4 - t1) - (t3 - t2)).max(0);
    let offset = i64::try_from(offset).map_err(|_| ServerFailure::BadTimestamps {
        problem: "the offset is beyond 292 years",
    })?;
    Ok(Sample {
        server,
        offset: ClockOffset::from_nanos(offset),
        delay: Duration::from_nanos(u64::try_from(delay).unwrap_or(u64::MAX)),
        stratum: reply.stratum,
    })
}
