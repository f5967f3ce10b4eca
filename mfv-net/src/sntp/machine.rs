//! The SNTP client without I/O: rounds of requests to every server, the checks on their
//! replies, the choice of the best sample, step or slew, and the poll and retry intervals.
//! The async driver in `client.rs` does the I/O; tests drive it directly with a manual
//! clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::packet::{
    IgnoreReason, NtpPacket, NtpTimestamp, Sample, ServerFailure, decode_reply, measure,
};
use super::{SntpConfig, SntpError, SntpEvent, Timing};

/// What the owner of an [`SntpMachine`] must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SntpAction {
    /// Send `packet` to `to`; report a failure with [`SntpMachine::on_send_failed`].
    Send {
        /// The server.
        to: SocketAddr,
        /// The encoded request.
        packet: [u8; super::NTP_PACKET_LEN],
    },
    /// Step the clock by this offset, measured by `sample`.
    Step(Sample),
    /// Slew the clock by this offset, measured by `sample`.
    Slew(Sample),
    /// Report this to the owner of the client.
    Event(SntpEvent),
}

/// Whether a server is asked in the next round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Usable,
    /// Sent kiss-o'-death `RATE`: left alone until then.
    HeldOff(Instant),
    /// Sent kiss-o'-death `DENY` or `RSTR`: never asked again.
    Dropped,
}

#[derive(Debug, Clone)]
struct Server {
    address: SocketAddr,
    standing: Standing,
}

/// A request waiting for its reply.
#[derive(Debug, Clone)]
struct Pending {
    server: SocketAddr,
    nonce: NtpTimestamp,
    /// The local clock when it was sent (T1).
    sent: SystemTime,
}

/// The requests of one round and the samples they gave so far.
#[derive(Debug, Clone)]
struct Round {
    deadline: Instant,
    pending: Vec<Pending>,
    samples: Vec<Sample>,
}

/// The SNTP client of one host, without I/O: for [`super::SntpClient`], for embedding in
/// another event loop, and for tests.
///
/// Time is passed in twice: `now` on a monotonic clock for the timers, `clock` as the time
/// the clock being corrected shows, for the NTP timestamps. Call [`SntpMachine::on_timer`]
/// at [`SntpMachine::next_deadline`], [`SntpMachine::on_packet`] for every received packet
/// and [`SntpMachine::on_send_failed`] when a send fails.
#[derive(Debug)]
pub struct SntpMachine {
    servers: Vec<Server>,
    timing: Timing,
    step_threshold: Duration,
    rng: fastrand::Rng,
    round: Option<Round>,
    /// When the next round starts (while no round runs).
    next_round: Instant,
    poll: Duration,
    retry: Duration,
    syncs: u64,
    last_sync: Option<Sample>,
    ignored: [u64; IgnoreReason::ALL.len()],
}

impl SntpMachine {
    /// A machine for `config` (checked with [`SntpConfig::validate`]); its first round is due
    /// at `now`.
    pub fn new(config: &SntpConfig, now: Instant) -> Result<SntpMachine, SntpError> {
        config.validate()?;
        let mut servers: Vec<Server> = Vec::new();
        for address in &config.servers {
            // Replies from an IPv4 server reach a dual-stack socket as IPv4 addresses.
            let address = SocketAddr::new(address.ip().to_canonical(), address.port());
            if servers.iter().all(|server| server.address != address) {
                servers.push(Server {
                    address,
                    standing: Standing::Usable,
                });
            }
        }
        Ok(SntpMachine {
            servers,
            timing: config.timing.clone(),
            step_threshold: config.step_threshold,
            rng: fastrand::Rng::new(),
            round: None,
            next_round: now,
            poll: config.timing.min_poll,
            retry: config.timing.first_retry,
            syncs: 0,
            last_sync: None,
            ignored: [0; IgnoreReason::ALL.len()],
        })
    }

    /// When [`SntpMachine::on_timer`] must be called next: the end of the running round, or
    /// the start of the next one.
    pub fn next_deadline(&self) -> Instant {
        self.round
            .as_ref()
            .map_or(self.next_round, |round| round.deadline)
    }

    /// The interval from the last correction to the next round: [`Timing::min_poll`] after
    /// a step, doubled by each slew up to [`Timing::max_poll`].
    pub fn poll_interval(&self) -> Duration {
        self.poll
    }

    /// How many rounds corrected the clock.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// The sample of the last correction, if any.
    pub fn last_sync(&self) -> Option<Sample> {
        self.last_sync
    }

    /// How many packets were ignored for `reason`.
    pub fn ignored(&self, reason: IgnoreReason) -> u64 {
        self.ignored[reason.index()]
    }

    /// How many packets were ignored in all.
    pub fn ignored_total(&self) -> u64 {
        self.ignored.iter().sum()
    }

    /// Starts a round when one is due, or ends the running one when its time is up. Fails
    /// when every server has refused the client.
    pub fn on_timer(
        &mut self,
        now: Instant,
        clock: SystemTime,
    ) -> Result<Vec<SntpAction>, SntpError> {
        let mut actions = Vec::new();
        match &self.round {
            Some(round) if now >= round.deadline => self.finish_round(now, &mut actions),
            Some(_) => {}
            None if now >= self.next_round => self.start_round(now, clock, &mut actions)?,
            None => {}
        }
        Ok(actions)
    }

    /// Handles a packet from `from`, received when the clock showed `clock`.
    pub fn on_packet(
        &mut self,
        now: Instant,
        clock: SystemTime,
        from: SocketAddr,
        packet: &[u8],
    ) -> Vec<SntpAction> {
        let mut actions = Vec::new();
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        let reply = match decode_reply(packet) {
            Ok(reply) => reply,
            Err(reason) => return self.ignore(from, reason),
        };
        let Some(round) = self.round.as_mut() else {
            return self.ignore(from, IgnoreReason::Unsolicited);
        };
        let Some(index) = round
            .pending
            .iter()
            .position(|pending| pending.server == from)
        else {
            return self.ignore(from, IgnoreReason::Unsolicited);
        };
        if reply.origin != round.pending[index].nonce {
            return self.ignore(from, IgnoreReason::WrongOrigin);
        }
        let pending = round.pending.remove(index);
        match measure(from, &reply, pending.sent, clock) {
            Ok(sample) => round.samples.push(sample),
            Err(reason) => self.server_failed(now, from, reason, &mut actions),
        }
        self.finish_round_if_answered(now, &mut actions);
        actions
    }

    /// Records that the request to `server` could not be sent (`problem`: the error).
    pub fn on_send_failed(
        &mut self,
        now: Instant,
        server: SocketAddr,
        problem: String,
    ) -> Vec<SntpAction> {
        let mut actions = Vec::new();
        let server = SocketAddr::new(server.ip().to_canonical(), server.port());
        if let Some(round) = self.round.as_mut() {
            let before = round.pending.len();
            round.pending.retain(|pending| pending.server != server);
            if round.pending.len() < before {
                self.server_failed(now, server, ServerFailure::Send { problem }, &mut actions);
                self.finish_round_if_answered(now, &mut actions);
            }
        }
        actions
    }

    fn ignore(&mut self, from: SocketAddr, reason: IgnoreReason) -> Vec<SntpAction> {
        self.ignored[reason.index()] += 1;
        vec![SntpAction::Event(SntpEvent::PacketIgnored {
            from,
            reason,
            total: self.ignored_total(),
        })]
    }

    /// Sends a request to every usable server, or waits for the first held-off one.
    fn start_round(
        &mut self,
        now: Instant,
        clock: SystemTime,
        actions: &mut Vec<SntpAction>,
    ) -> Result<(), SntpError> {
        for server in &mut self.servers {
            if matches!(server.standing, Standing::HeldOff(until) if until <= now) {
                server.standing = Standing::Usable;
            }
        }
        let mut pending = Vec::new();
        for server in &self.servers {
            if server.standing == Standing::Usable {
                // Zero means "no timestamp" in NTP: never use it as a nonce.
                let nonce = NtpTimestamp::from_bits(self.rng.u64(1..));
                let packet = NtpPacket::client_request(nonce).encode();
                actions.push(SntpAction::Send {
                    to: server.address,
                    packet,
                });
                pending.push(Pending {
                    server: server.address,
                    nonce,
                    sent: clock,
                });
            }
        }
        if pending.is_empty() {
            self.next_round = self.first_usable(now)?;
            return Ok(());
        }
        self.round = Some(Round {
            deadline: now + self.timing.response_timeout,
            pending,
            samples: Vec::new(),
        });
        Ok(())
    }

    /// When a server can be asked next, at `at` or later: `at` itself when one is usable.
    /// Fails when every server has refused the client.
    fn first_usable(&self, at: Instant) -> Result<Instant, SntpError> {
        self.servers
            .iter()
            .filter_map(|server| match server.standing {
                Standing::Usable => Some(at),
                Standing::HeldOff(until) => Some(until.max(at)),
                Standing::Dropped => None,
            })
            .min()
            .ok_or_else(|| SntpError::AllServersRefused {
                servers: self.servers.iter().map(|server| server.address).collect(),
            })
    }

    fn server_failed(
        &mut self,
        now: Instant,
        address: SocketAddr,
        reason: ServerFailure,
        actions: &mut Vec<SntpAction>,
    ) {
        let kiss = match &reason {
            ServerFailure::KissOfDeath { code } => Some(*code),
            _ => None,
        };
        actions.push(SntpAction::Event(SntpEvent::ServerFailed {
            server: address,
            reason,
        }));
        let Some(code) = kiss else { return };
        let Some(server) = self
            .servers
            .iter_mut()
            .find(|server| server.address == address)
        else {
            return;
        };
        if code.refuses() {
            server.standing = Standing::Dropped;
            actions.push(SntpAction::Event(SntpEvent::ServerDropped {
                server: address,
                code,
            }));
        } else if code == super::KissCode::Rate {
            let waiting = self.timing.max_poll;
            server.standing = Standing::HeldOff(now + waiting);
            actions.push(SntpAction::Event(SntpEvent::ServerHeldOff {
                server: address,
                waiting,
            }));
        }
    }

    fn finish_round_if_answered(&mut self, now: Instant, actions: &mut Vec<SntpAction>) {
        if self
            .round
            .as_ref()
            .is_some_and(|round| round.pending.is_empty())
        {
            self.finish_round(now, actions);
        }
    }

    /// Ends the round: the servers still silent failed; the best sample corrects the clock,
    /// or the round failed.
    fn finish_round(&mut self, now: Instant, actions: &mut Vec<SntpAction>) {
        let Some(round) = self.round.take() else {
            return;
        };
        for pending in round.pending {
            let waited = self.timing.response_timeout;
            self.server_failed(
                now,
                pending.server,
                ServerFailure::Timeout { waited },
                actions,
            );
        }
        let best = round.samples.into_iter().min_by_key(|sample| sample.delay);
        let wait = match best {
            Some(sample) => {
                let stepped = self.syncs == 0 || sample.offset.magnitude() > self.step_threshold;
                self.poll = if stepped {
                    self.timing.min_poll
                } else {
                    (self.poll * 2).min(self.timing.max_poll)
                };
                self.retry = self.timing.first_retry;
                self.syncs += 1;
                self.last_sync = Some(sample);
                actions.push(if stepped {
                    SntpAction::Step(sample)
                } else {
                    SntpAction::Slew(sample)
                });
                actions.push(SntpAction::Event(SntpEvent::Synced {
                    server: sample.server,
                    offset: sample.offset,
                    delay: sample.delay,
                    stepped,
                }));
                self.poll
            }
            None => {
                let retry = self.retry;
                self.retry = (self.retry * 2).min(self.timing.max_retry);
                retry
            }
        };
        // The error for servers that all refused comes from the next `on_timer`, at once.
        let next = self.first_usable(now + wait).unwrap_or(now);
        self.next_round = next;
        if best.is_none() && next > now {
            actions.push(SntpAction::Event(SntpEvent::RoundFailed {
                retry_in: next - now,
            }));
        }
    }
}
