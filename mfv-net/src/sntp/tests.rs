//! Tests of the packet code, of the machine with a manual clock, and of the client task
//! with a fake transport, scripted servers and tokio's paused clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::packet::{decode_reply, measure};
use super::*;

const SERVER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
    123,
);
const OTHER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)),
    123,
);
const STRANGER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 9)),
    123,
);
/// 2036-02-07 06:28:16 UTC, where the NTP seconds wrap to 0, in Unix seconds.
const WRAP_2036: u64 = 2_085_978_496;

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds)
}

/// `seconds` after the Unix epoch.
fn at(seconds: f64) -> SystemTime {
    UNIX_EPOCH + secs(seconds)
}

fn offset_ms(milliseconds: i64) -> ClockOffset {
    ClockOffset::from_nanos(milliseconds * 1_000_000)
}

/// A synchronised stratum 2 server's reply to `request`, received at `t2` and sent at `t3`
/// by the server's clock.
fn reply_to(request: &[u8], t2: SystemTime, t3: SystemTime) -> NtpPacket {
    let request = NtpPacket::decode(request).unwrap();
    NtpPacket {
        leap: LeapIndicator::NoWarning,
        version: NTP_VERSION,
        mode: MODE_SERVER,
        stratum: 2,
        poll: 6,
        precision: -20,
        // 1/64 s and 1/32 s: exact in the 16.16 short format.
        root_delay: Duration::from_micros(15_625),
        root_dispersion: Duration::from_micros(31_250),
        reference_id: [192, 0, 2, 200],
        reference: NtpTimestamp::from_system_time(t2 - secs(30.0)),
        origin: request.transmit,
        receive: NtpTimestamp::from_system_time(t2),
        transmit: NtpTimestamp::from_system_time(t3),
    }
}

// ---- Packets ----

#[test]
fn a_request_is_version_4_mode_3_and_carries_only_the_nonce() {
    let nonce = NtpTimestamp::from_bits(0x0123_4567_89ab_cdef);
    let bytes = NtpPacket::client_request(nonce).encode();
    assert_eq!(bytes.len(), 48);
    assert_eq!(bytes[0], 0b00_100_011);
    assert!(bytes[1..40].iter().all(|byte| *byte == 0));
    assert_eq!(bytes[40..], 0x0123_4567_89ab_cdef_u64.to_be_bytes());
}

#[test]
fn packets_decode_what_they_encode_and_ignore_what_follows_the_header() {
    let request = NtpPacket::client_request(NtpTimestamp::from_bits(7)).encode();
    let packet = reply_to(&request, at(1e9), at(1e9 + 0.001));
    let mut bytes = packet.encode().to_vec();
    bytes.extend_from_slice(&[0xee; 20]);
    assert_eq!(NtpPacket::decode(&bytes), Some(packet.clone()));
    assert_eq!(NtpPacket::decode(&bytes[..47]), None);
    assert_eq!(packet.encode()[0], 0b00_100_100);
    assert_eq!(packet.encode()[4..8], 1024u32.to_be_bytes());
    // Short-format values are rounded down to 2^-16 s.
    let mut rounded = packet.clone();
    rounded.root_delay = Duration::from_millis(10);
    assert_eq!(
        NtpPacket::decode(&rounded.encode()).unwrap().root_delay,
        Duration::from_nanos(9_994_506)
    );
}

#[test]
fn only_server_replies_of_version_3_or_4_are_looked_at() {
    let request = NtpPacket::client_request(NtpTimestamp::from_bits(7)).encode();
    let good = reply_to(&request, at(1e9), at(1e9));
    let check = |edit: fn(&mut NtpPacket), expected: Result<(), IgnoreReason>| {
        let mut packet = good.clone();
        edit(&mut packet);
        assert_eq!(
            decode_reply(&packet.encode()).map(|_| ()),
            expected,
            "{packet:?}"
        );
    };
    check(|_| {}, Ok(()));
    check(|packet| packet.version = 3, Ok(()));
    check(
        |packet| packet.version = 2,
        Err(IgnoreReason::UnsupportedVersion),
    );
    check(
        |packet| packet.version = 5,
        Err(IgnoreReason::UnsupportedVersion),
    );
    check(
        |packet| packet.mode = MODE_CLIENT,
        Err(IgnoreReason::NotServerMode),
    );
    check(|packet| packet.mode = 5, Err(IgnoreReason::NotServerMode));
    assert_eq!(
        decode_reply(&[0x24; 47]).map(|_| ()),
        Err(IgnoreReason::Malformed)
    );
}

#[test]
fn timestamps_convert_in_the_era_nearest_the_local_clock() {
    let check = |time: SystemTime, bits: u64| {
        let timestamp = NtpTimestamp::from_system_time(time);
        assert_eq!(timestamp.to_bits(), bits, "{time:?}");
        // Read back near times 60 years either way, it is the same instant.
        for near in [
            time - secs(60.0 * 365.0 * 86400.0),
            time,
            time + secs(60.0 * 365.0 * 86400.0),
        ] {
            assert_eq!(
                timestamp.to_system_time(near),
                time,
                "{time:?} near {near:?}"
            );
        }
    };
    check(UNIX_EPOCH, 2_208_988_800 << 32);
    check(at(0.5), (2_208_988_800 << 32) | (1 << 31));
    check(at(1e9), 3_208_988_800 << 32);
    // The last second of era 0 and the start of era 1.
    check(at(WRAP_2036 as f64 - 1.0), 0xffff_ffff_0000_0000);
    check(at(WRAP_2036 as f64), 0);
    check(at(WRAP_2036 as f64 + 5.25), (5 << 32) | (1 << 30));
    // The same bits mean 1900 near 1950 and 2036 near 2030.
    let five = NtpTimestamp::from_bits(5 << 32);
    assert_eq!(
        five.to_system_time(at(WRAP_2036 as f64 - 6.0 * 365.0 * 86400.0)),
        at(WRAP_2036 as f64 + 5.0)
    );
    assert_eq!(
        five.to_system_time(UNIX_EPOCH - secs(20.0 * 365.0 * 86400.0)),
        UNIX_EPOCH - secs(2_208_988_795.0)
    );
}

#[test]
fn offset_and_delay_come_from_the_four_timestamps() {
    // T1 to T4 in milliseconds after `base`; the expected offset and delay in milliseconds.
    let check = |base: SystemTime, [t1, t2, t3, t4]: [i64; 4], offset: i64, delay: u64| {
        let time = |ms: i64| offset_ms(ms).apply_to(base);
        let request = NtpPacket::client_request(NtpTimestamp::from_bits(7)).encode();
        let reply = reply_to(&request, time(t2), time(t3));
        let sample = measure(SERVER, &reply, time(t1), time(t4)).unwrap();
        assert_eq!(sample.offset, offset_ms(offset), "{sample:?}");
        assert_eq!(sample.delay, Duration::from_millis(delay), "{sample:?}");
        assert_eq!((sample.server, sample.stratum), (SERVER, 2));
    };
    let base = at(1e9);
    // The local clock 5 s behind, 30 ms on the way, 2 ms in the server.
    check(base, [0, 5010, 5012, 30], 4996, 28);
    // The local clock 250 ms ahead, a symmetric 20 ms round trip.
    check(base, [0, -240, -240, 20], -250, 20);
    // Across the 2036 wrap: sent before it by the local clock, answered after it by a server
    // 1 s ahead.
    check(at(WRAP_2036 as f64), [-500, 505, 505, -490], 1000, 10);
    // A local clock still in 1970 (no battery) and a server in 2026.
    check(
        at(1.0),
        [0, 1_780_000_000_000, 1_780_000_000_000, 0],
        1_780_000_000_000,
        0,
    );
}

#[test]
fn unusable_replies_fail_with_the_reason() {
    let request = NtpPacket::client_request(NtpTimestamp::from_bits(7)).encode();
    let good = reply_to(&request, at(1e9 + 0.01), at(1e9 + 0.01));
    let check = |edit: &dyn Fn(&mut NtpPacket), expected: ServerFailure| {
        let mut packet = good.clone();
        edit(&mut packet);
        assert_eq!(
            measure(SERVER, &packet, at(1e9), at(1e9 + 0.02)),
            Err(expected)
        );
    };
    let kiss = |code: &'static [u8; 4]| {
        move |packet: &mut NtpPacket| {
            packet.stratum = 0;
            packet.leap = LeapIndicator::Unsynchronised;
            packet.reference_id = *code;
        }
    };
    check(
        &kiss(b"RATE"),
        ServerFailure::KissOfDeath {
            code: KissCode::Rate,
        },
    );
    check(
        &kiss(b"DENY"),
        ServerFailure::KissOfDeath {
            code: KissCode::Deny,
        },
    );
    check(
        &kiss(b"RSTR"),
        ServerFailure::KissOfDeath {
            code: KissCode::Restricted,
        },
    );
    check(
        &kiss(b"INIT"),
        ServerFailure::KissOfDeath {
            code: KissCode::Other(*b"INIT"),
        },
    );
    // chrony while unsynchronised: leap 3, stratum 0, a zero reference id.
    check(&kiss(&[0; 4]), ServerFailure::Unsynchronised);
    check(
        &|packet| packet.leap = LeapIndicator::Unsynchronised,
        ServerFailure::Unsynchronised,
    );
    check(
        &|packet| packet.stratum = 16,
        ServerFailure::BadStratum { stratum: 16 },
    );
    check(
        &|packet| packet.transmit = NtpTimestamp::ZERO,
        ServerFailure::BadTimestamps {
            problem: "a zero receive or transmit timestamp",
        },
    );
    check(
        &|packet| packet.transmit = NtpTimestamp::from_system_time(at(1e9)),
        ServerFailure::BadTimestamps {
            problem: "the server sent its reply before it received the request",
        },
    );
    check(
        &|packet| {
            packet.root_delay = secs(2.0);
            packet.root_dispersion = secs(2.5);
        },
        ServerFailure::TooFar {
            root_distance: secs(3.5),
        },
    );
    assert_eq!(
        measure(SERVER, &good, at(1e9), at(1e9 - 1.0)),
        Err(ServerFailure::BadTimestamps {
            problem: "the local clock went backwards during the exchange"
        })
    );
    assert_eq!(
        ServerFailure::KissOfDeath {
            code: KissCode::Rate
        }
        .to_string(),
        "kiss-o'-death RATE"
    );
    assert_eq!(
        ServerFailure::Timeout { waited: secs(2.0) }.to_string(),
        "no answer within 2.0 s"
    );
}

#[test]
fn clock_offsets_print_with_a_sign_and_microseconds() {
    assert_eq!(offset_ms(1234).to_string(), "+1.234000 s");
    assert_eq!(
        ClockOffset::from_nanos(-5_000_001_999).to_string(),
        "-5.000001 s"
    );
    assert_eq!(ClockOffset::ZERO.to_string(), "+0.000000 s");
    assert_eq!(ClockOffset::backward(secs(0.5)), offset_ms(-500));
    assert_eq!(offset_ms(-500).magnitude(), secs(0.5));
    assert_eq!(offset_ms(-500).apply_to(at(10.0)), at(9.5));
    assert_eq!(offset_ms(200) + offset_ms(-50), offset_ms(150));
}

// ---- The machine, with a manual clock ----

fn config(servers: &[SocketAddr]) -> SntpConfig {
    SntpConfig::new(servers.to_vec())
}

/// The requests among `actions`, by server.
fn requests(actions: &[SntpAction]) -> Vec<(SocketAddr, [u8; NTP_PACKET_LEN])> {
    actions
        .iter()
        .filter_map(|action| match action {
            SntpAction::Send { to, packet } => Some((*to, *packet)),
            _ => None,
        })
        .collect()
}

fn events(actions: &[SntpAction]) -> Vec<SntpEvent> {
    actions
        .iter()
        .filter_map(|action| match action {
            SntpAction::Event(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

/// The clock changes among `actions`: (stepped, offset).
fn changes(actions: &[SntpAction]) -> Vec<(bool, ClockOffset)> {
    actions
        .iter()
        .filter_map(|action| match action {
            SntpAction::Step(sample) => Some((true, sample.offset)),
            SntpAction::Slew(sample) => Some((false, sample.offset)),
            _ => None,
        })
        .collect()
}

/// A test of the machine: a monotonic clock and a local wall clock that agree with the
/// truth but for `local_error`.
struct Bench {
    machine: SntpMachine,
    t0: Instant,
    now: Instant,
    local_error: ClockOffset,
}

impl Bench {
    fn new(config: &SntpConfig, local_error: ClockOffset) -> Bench {
        let t0 = Instant::now();
        Bench {
            machine: SntpMachine::new(config, t0).unwrap(),
            t0,
            now: t0,
            local_error,
        }
    }

    /// The true time: 2026 plus the time since the start.
    fn truth(&self) -> SystemTime {
        at(1.78e9) + (self.now - self.t0)
    }

    fn local(&self) -> SystemTime {
        self.local_error.apply_to(self.truth())
    }

    /// Moves to the next deadline and fires the timer.
    fn timer(&mut self) -> Vec<SntpAction> {
        self.now = self.now.max(self.machine.next_deadline());
        let clock = self.local();
        self.machine.on_timer(self.now, clock).unwrap()
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// The reply of `server` to `request` after `delay` (half each way), with the server's
    /// clock `server_error` off the truth.
    fn answer(
        &mut self,
        server: SocketAddr,
        request: &[u8],
        delay: Duration,
        server_error: ClockOffset,
    ) -> Vec<SntpAction> {
        self.now += delay / 2;
        let t2 = server_error.apply_to(self.truth());
        let reply = reply_to(request, t2, t2).encode();
        self.now += delay / 2;
        let clock = self.local();
        self.machine.on_packet(self.now, clock, server, &reply)
    }

    /// Runs one round against `server` answering at once and correctly; returns the
    /// actions of the answer.
    fn good_round(&mut self, server: SocketAddr) -> Vec<SntpAction> {
        let sent = requests(&self.timer());
        assert_eq!(sent.len(), 1, "{sent:?}");
        self.answer(server, &sent[0].1, Duration::ZERO, ClockOffset::ZERO)
    }
}

#[test]
fn a_round_asks_every_server_and_steps_with_the_lowest_delay_answer() {
    let mut bench = Bench::new(&config(&[SERVER, OTHER, SERVER]), offset_ms(-3000));
    let actions = bench.timer();
    let sent = requests(&actions);
    assert_eq!(
        sent.iter().map(|(to, _)| *to).collect::<Vec<_>>(),
        [SERVER, OTHER],
        "each address once"
    );
    assert_ne!(
        sent[0].1[40..],
        sent[1].1[40..],
        "each request its own nonce"
    );
    assert!(events(&actions).is_empty());
    // SERVER is right and answers within 10 ms; OTHER is 40 ms off and answers after 80 ms.
    let actions = bench.answer(SERVER, &sent[0].1, secs(0.010), ClockOffset::ZERO);
    assert!(actions.is_empty(), "{actions:?}");
    let actions = bench.answer(OTHER, &sent[1].1, secs(0.070), offset_ms(40));
    assert_eq!(changes(&actions), [(true, offset_ms(3000))]);
    assert_eq!(
        events(&actions),
        [SntpEvent::Synced {
            server: SERVER,
            offset: offset_ms(3000),
            delay: secs(0.010),
            stepped: true
        }]
    );
    // The step comes before the event: a failed step must not be reported as a sync.
    assert!(matches!(actions[0], SntpAction::Step(_)));
    assert_eq!(bench.machine.next_deadline(), bench.now + secs(64.0));
    assert_eq!(bench.machine.syncs(), 1);
}

#[test]
fn small_offsets_slew_and_double_the_poll_up_to_1024_s_and_a_large_one_steps() {
    let mut bench = Bench::new(&config(&[SERVER]), offset_ms(5));
    // The first sync steps even a small offset.
    assert_eq!(changes(&bench.good_round(SERVER)), [(true, offset_ms(-5))]);
    bench.local_error = offset_ms(-20);
    let mut polls = vec![bench.elapsed()];
    for _ in 0..6 {
        assert_eq!(changes(&bench.good_round(SERVER)), [(false, offset_ms(20))]);
        polls.push(bench.elapsed());
    }
    let intervals: Vec<_> = polls
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).as_secs())
        .collect();
    assert_eq!(intervals, [64, 128, 256, 512, 1024, 1024]);
    // 128 ms is still slewed; beyond it the clock steps and the poll starts over.
    bench.local_error = offset_ms(-128);
    assert_eq!(
        changes(&bench.good_round(SERVER)),
        [(false, offset_ms(128))]
    );
    bench.local_error = offset_ms(129);
    assert_eq!(
        changes(&bench.good_round(SERVER)),
        [(true, offset_ms(-129))]
    );
    assert_eq!(bench.machine.poll_interval(), secs(64.0));
    assert_eq!(bench.machine.next_deadline(), bench.now + secs(64.0));
}

#[test]
fn without_answers_rounds_fail_and_are_retried_with_a_bounded_backoff() {
    let mut bench = Bench::new(&config(&[SERVER]), ClockOffset::ZERO);
    let mut retries = Vec::new();
    for _ in 0..7 {
        assert_eq!(requests(&bench.timer()).len(), 1);
        let started = bench.now;
        let actions = bench.timer();
        assert_eq!(bench.now - started, secs(2.0), "the response timeout");
        let events = events(&actions);
        assert_eq!(
            events[0],
            SntpEvent::ServerFailed {
                server: SERVER,
                reason: ServerFailure::Timeout { waited: secs(2.0) }
            }
        );
        let SntpEvent::RoundFailed { retry_in } = events[1] else {
            panic!("{events:?}")
        };
        retries.push(retry_in.as_secs());
    }
    assert_eq!(retries, [16, 32, 64, 128, 256, 256, 256]);
    // A success starts the retries over.
    bench.good_round(SERVER);
    bench.timer();
    let events = events(&bench.timer());
    assert_eq!(
        events.last(),
        Some(&SntpEvent::RoundFailed {
            retry_in: secs(16.0)
        })
    );
}

#[test]
fn forged_stray_and_repeated_packets_are_ignored_and_counted() {
    let mut bench = Bench::new(&config(&[SERVER]), ClockOffset::ZERO);
    let sent = requests(&bench.timer());
    let request = sent[0].1;
    let now = bench.now;
    let clock = bench.local();
    let genuine = reply_to(&request, clock, clock);
    let mut forged = genuine.clone();
    forged.origin = NtpTimestamp::from_bits(forged.origin.to_bits() ^ 1);
    let mut client_mode = genuine.clone();
    client_mode.mode = MODE_CLIENT;
    let cases: [(SocketAddr, Vec<u8>, IgnoreReason); 5] = [
        (SERVER, forged.encode().to_vec(), IgnoreReason::WrongOrigin),
        (
            STRANGER,
            genuine.encode().to_vec(),
            IgnoreReason::Unsolicited,
        ),
        (SERVER, b"garbage".to_vec(), IgnoreReason::Malformed),
        (
            SERVER,
            client_mode.encode().to_vec(),
            IgnoreReason::NotServerMode,
        ),
        (
            SocketAddr::new(SERVER.ip(), 124),
            genuine.encode().to_vec(),
            IgnoreReason::Unsolicited,
        ),
    ];
    for (total, (from, packet, reason)) in cases.into_iter().enumerate() {
        let actions = bench.machine.on_packet(now, clock, from, &packet);
        assert_eq!(
            events(&actions),
            [SntpEvent::PacketIgnored {
                from,
                reason,
                total: total as u64 + 1
            }]
        );
    }
    // The round still waits for the genuine reply, which counts once.
    let actions = bench
        .machine
        .on_packet(now, clock, SERVER, &genuine.encode());
    assert_eq!(changes(&actions).len(), 1);
    let actions = bench
        .machine
        .on_packet(now, clock, SERVER, &genuine.encode());
    assert!(matches!(
        events(&actions)[..],
        [SntpEvent::PacketIgnored {
            reason: IgnoreReason::Unsolicited,
            total: 6,
            ..
        }]
    ));
    assert_eq!(bench.machine.ignored(IgnoreReason::Unsolicited), 3);
    assert_eq!(bench.machine.ignored_total(), 6);
}

/// A kiss-o'-death reply to `request`.
fn kiss(request: &[u8], code: &[u8; 4]) -> Vec<u8> {
    let mut packet = reply_to(request, at(1.78e9), at(1.78e9));
    packet.stratum = 0;
    packet.leap = LeapIndicator::Unsynchronised;
    packet.reference_id = *code;
    packet.encode().to_vec()
}

#[test]
fn kiss_of_death_rate_holds_a_server_off_and_deny_drops_it_for_good() {
    let mut bench = Bench::new(&config(&[SERVER, OTHER]), ClockOffset::ZERO);
    let sent = requests(&bench.timer());
    let (now, clock) = (bench.now, bench.local());
    let actions = bench
        .machine
        .on_packet(now, clock, SERVER, &kiss(&sent[0].1, b"RATE"));
    assert_eq!(
        events(&actions),
        [
            SntpEvent::ServerFailed {
                server: SERVER,
                reason: ServerFailure::KissOfDeath {
                    code: KissCode::Rate
                }
            },
            SntpEvent::ServerHeldOff {
                server: SERVER,
                waiting: secs(1024.0)
            }
        ]
    );
    let actions = bench
        .machine
        .on_packet(now, clock, OTHER, &kiss(&sent[1].1, b"DENY"));
    assert_eq!(
        events(&actions),
        [
            SntpEvent::ServerFailed {
                server: OTHER,
                reason: ServerFailure::KissOfDeath {
                    code: KissCode::Deny
                }
            },
            SntpEvent::ServerDropped {
                server: OTHER,
                code: KissCode::Deny
            },
            // Not 16 s: the only server left is held off for 1024 s.
            SntpEvent::RoundFailed {
                retry_in: secs(1024.0)
            }
        ]
    );
    // The next round asks SERVER only; its RSTR leaves no server.
    let sent = requests(&bench.timer());
    assert_eq!(bench.elapsed(), secs(1024.0));
    assert_eq!(sent.iter().map(|(to, _)| *to).collect::<Vec<_>>(), [SERVER]);
    let (now, clock) = (bench.now, bench.local());
    let actions = bench
        .machine
        .on_packet(now, clock, SERVER, &kiss(&sent[0].1, b"RSTR"));
    assert!(
        !events(&actions)
            .iter()
            .any(|event| matches!(event, SntpEvent::RoundFailed { .. }))
    );
    assert_eq!(bench.machine.next_deadline(), now);
    let error = bench.machine.on_timer(now, clock).unwrap_err();
    assert_eq!(
        error.to_string(),
        "every NTP server refused this client (kiss-o'-death DENY or RSTR): \
         192.0.2.1:123, 192.0.2.2:123"
    );
}

#[test]
fn an_unsynchronised_server_or_a_failed_send_fails_that_server_only() {
    let mut bench = Bench::new(&config(&[SERVER, OTHER]), offset_ms(-700));
    let sent = requests(&bench.timer());
    let (now, clock) = (bench.now, bench.local());
    let mut unsynchronised = reply_to(&sent[0].1, clock, clock);
    unsynchronised.leap = LeapIndicator::Unsynchronised;
    let actions = bench
        .machine
        .on_packet(now, clock, SERVER, &unsynchronised.encode());
    assert_eq!(
        events(&actions),
        [SntpEvent::ServerFailed {
            server: SERVER,
            reason: ServerFailure::Unsynchronised
        }]
    );
    let actions = bench.answer(OTHER, &sent[1].1, secs(0.002), ClockOffset::ZERO);
    assert_eq!(changes(&actions), [(true, offset_ms(700))]);

    bench.local_error = ClockOffset::ZERO;
    let sent = requests(&bench.timer());
    let actions = bench.machine.on_send_failed(
        bench.now,
        OTHER,
        "Network is unreachable (os error 101)".into(),
    );
    assert_eq!(
        events(&actions),
        [SntpEvent::ServerFailed {
            server: OTHER,
            reason: ServerFailure::Send {
                problem: "Network is unreachable (os error 101)".into()
            }
        }]
    );
    let actions = bench.answer(SERVER, &sent[0].1, secs(0.002), ClockOffset::ZERO);
    assert_eq!(changes(&actions), [(false, ClockOffset::ZERO)]);
}

#[test]
fn the_clock_is_stepped_right_across_the_2036_wrap() {
    let mut bench = Bench::new(&config(&[SERVER]), ClockOffset::ZERO);
    // The local clock 1.5 s before the wrap, the server 2 s ahead of it.
    bench.local_error = ClockOffset::forward(
        at(WRAP_2036 as f64 - 1.5)
            .duration_since(bench.truth())
            .unwrap(),
    );
    let sent = requests(&bench.timer());
    let local = bench.local();
    let server = offset_ms(2000).apply_to(local);
    assert!(
        NtpTimestamp::from_system_time(server).to_bits() < 1 << 32,
        "era 1"
    );
    let actions = bench.machine.on_packet(
        bench.now,
        local,
        SERVER,
        &reply_to(&sent[0].1, server, server).encode(),
    );
    assert_eq!(changes(&actions), [(true, offset_ms(2000))]);
}

#[test]
fn invalid_settings_are_refused() {
    let check = |edit: fn(&mut SntpConfig), message: &str| {
        let mut config = config(&[SERVER]);
        edit(&mut config);
        let error = SntpMachine::new(&config, Instant::now()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("invalid SNTP client settings: {message}")
        );
    };
    check(|config| config.servers.clear(), "no NTP server");
    check(
        |config| config.timing.min_poll = secs(2000.0),
        "min_poll must be above zero and at most max_poll",
    );
    check(
        |config| config.timing.first_retry = Duration::ZERO,
        "first_retry must be above zero and at most max_retry",
    );
    check(
        |config| config.timing.response_timeout = Duration::ZERO,
        "response_timeout must be above zero",
    );
}

#[test]
fn the_system_clock_reports_its_pending_slew_without_changing_it() {
    // Read-only (ADJ_OFFSET_SS_READ): no privilege needed, nothing changed.
    let pending = SystemClock::new().pending_slew().unwrap();
    assert!(pending.magnitude() < secs(2200.0), "{pending}");
}

// ---- The client task, with a fake transport and tokio's paused clock ----

/// The true time in the task tests: 2026 plus tokio's time since `start`.
fn true_time(start: tokio::time::Instant) -> SystemTime {
    at(1.78e9) + start.elapsed()
}

struct FakeTransport {
    sent: mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>,
    incoming: mpsc::UnboundedReceiver<std::io::Result<(Vec<u8>, SocketAddr)>>,
    unreachable: Vec<SocketAddr>,
}

/// ENETUNREACH on Linux.
const ENETUNREACH: i32 = 101;

impl SntpTransport for FakeTransport {
    async fn send(&mut self, to: SocketAddr, packet: &[u8]) -> std::io::Result<()> {
        if self.unreachable.contains(&to) {
            return Err(std::io::Error::from_raw_os_error(ENETUNREACH));
        }
        let _ = self.sent.send((to, packet.to_vec()));
        Ok(())
    }

    async fn recv(&mut self, buffer: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        match self.incoming.recv().await {
            Some(Ok((packet, from))) => {
                buffer[..packet.len()].copy_from_slice(&packet);
                Ok((packet.len(), from))
            }
            Some(Err(error)) => Err(error),
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> SocketAddr {
        "192.0.2.100:40000".parse().unwrap()
    }
}

type Incoming = mpsc::UnboundedSender<std::io::Result<(Vec<u8>, SocketAddr)>>;

/// A fake transport and the test's ends of it.
fn fake_transport() -> (
    FakeTransport,
    mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>,
    Incoming,
) {
    let (sent_tx, sent_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    (
        FakeTransport {
            sent: sent_tx,
            incoming: in_rx,
            unreachable: Vec::new(),
        },
        sent_rx,
        in_tx,
    )
}

/// Servers that keep the true time and answer every request after 5 ms each way; returns
/// when each request arrived (seconds since `start`).
fn spawn_servers(
    mut sent: mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>,
    incoming: Incoming,
    start: tokio::time::Instant,
) -> tokio::task::JoinHandle<Vec<(SocketAddr, u64)>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((to, request)) = sent.recv().await {
            seen.push((to, start.elapsed().as_secs()));
            let incoming = incoming.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let now = true_time(start);
                let reply = reply_to(&request, now, now).encode().to_vec();
                tokio::time::sleep(Duration::from_millis(5)).await;
                let _ = incoming.send(Ok((reply, to)));
            });
        }
        seen
    })
}

fn received(events: &mut mpsc::UnboundedReceiver<SntpEvent>) -> Vec<SntpEvent> {
    let mut all = Vec::new();
    while let Ok(event) = events.try_recv() {
        all.push(event);
    }
    all
}

#[tokio::test(start_paused = true)]
async fn the_client_task_steps_then_slews_and_polls_less_often() {
    let start = tokio::time::Instant::now();
    let (mut transport, sent, incoming) = fake_transport();
    transport.unreachable.push(OTHER);
    let servers = spawn_servers(sent, incoming, start);
    // The local clock is 3 s behind the servers.
    let clock = RecordingClock::starting_at(true_time(start) - secs(3.0));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let client =
        SntpClient::new(config(&[SERVER, OTHER]), transport, clock.clone()).with_events(events_tx);
    let exit = client.run(tokio::time::sleep(secs(3000.0))).await.unwrap();
    let changes = clock.changes();
    assert_eq!(changes[0], ClockChange::Step(offset_ms(3000)));
    assert_eq!(changes.len(), 6, "{changes:?}");
    assert!(
        changes[1..].iter().all(
            |change| matches!(change, ClockChange::Slew(offset) if offset.magnitude() < secs(1e-6))
        ),
        "{changes:?}"
    );
    let times: Vec<_> = servers
        .await
        .unwrap()
        .into_iter()
        .map(|(_, at)| at)
        .collect();
    // 64 s after the step, then 128, 256, 512 and 1024 s after each slew (plus the 10 ms
    // round trips).
    assert_eq!(times, [0, 64, 192, 448, 960, 1984]);
    assert_eq!(exit.syncs, 6);
    assert_eq!(exit.last_sync.map(|sample| sample.server), Some(SERVER));
    let events = received(&mut events);
    assert_eq!(
        events[..2],
        [
            SntpEvent::ServerFailed {
                server: OTHER,
                reason: ServerFailure::Send {
                    problem: "Network is unreachable (os error 101)".into()
                }
            },
            SntpEvent::Synced {
                server: SERVER,
                offset: offset_ms(3000),
                delay: Duration::from_millis(10),
                stepped: true
            }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_clock_that_cannot_be_set_ends_the_client_with_the_cause() {
    let start = tokio::time::Instant::now();
    let (transport, sent, incoming) = fake_transport();
    let _servers = spawn_servers(sent, incoming, start);
    let clock = RecordingClock::starting_at(true_time(start) + secs(0.25)).failing();
    let error = SntpClient::new(config(&[SERVER]), transport, clock)
        .run(std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot step the clock by -0.250000 s (measured against 192.0.2.1:123)"
    );
    let SntpError::SetClock { source, .. } = error else {
        unreachable!()
    };
    assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
}

#[tokio::test(start_paused = true)]
async fn a_receive_error_ends_the_client_naming_the_socket() {
    let (transport, _sent, incoming) = fake_transport();
    incoming
        .send(Err(std::io::Error::from_raw_os_error(ENETUNREACH)))
        .unwrap();
    let error = SntpClient::new(config(&[SERVER]), transport, RecordingClock::new())
        .run(std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot receive NTP replies on 192.0.2.100:40000"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_retried_and_never_ends_the_client() {
    let (transport, mut sent, _incoming) = fake_transport();
    let clock = RecordingClock::new();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let exit = SntpClient::new(config(&[SERVER]), transport, clock.clone())
        .with_events(events_tx)
        .run(tokio::time::sleep(secs(100.0)))
        .await
        .unwrap();
    assert_eq!(
        exit,
        SntpExit {
            syncs: 0,
            last_sync: None
        }
    );
    assert!(clock.changes().is_empty());
    // Rounds at 0, 18 (2 + 16), 52 (18 + 2 + 32) s.
    let mut requests = 0;
    while sent.try_recv().is_ok() {
        requests += 1;
    }
    assert_eq!(requests, 3);
    let retries: Vec<_> = received(&mut events)
        .into_iter()
        .filter_map(|event| match event {
            SntpEvent::RoundFailed { retry_in } => Some(retry_in.as_secs()),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [16, 32, 64]);
}
