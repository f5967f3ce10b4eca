//! The DHCPv4 client state machine of RFC 2131 section 4.4, without I/O: it takes received
//! packets and the time, and answers with actions (send, apply, remove, report). The async
//! driver in `client.rs` does the I/O; tests and the fuzz target drive it directly with a
//! manual clock.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::lease::Lease;
use super::packet::{
    ClientIdentity, IgnoreReason, ReplyKind, RequestKind, decode_reply, encode_request,
    is_usable_unicast,
};
use super::{Destination, DhcpConfig, DhcpError, DhcpEvent, DhcpState, Timing};

/// What the owner of a [`DhcpMachine`] must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpAction {
    /// Send `packet` to `to`.
    Send {
        /// Where to.
        to: Destination,
        /// The encoded DHCP message.
        packet: Vec<u8>,
    },
    /// Configure `lease` on the interface, replacing `previous` (a renewal has the same
    /// address), and remember it in the lease file.
    Apply {
        /// The lease this one extends (same address), if any.
        previous: Option<Lease>,
        /// The lease to configure.
        lease: Lease,
    },
    /// Remove `lease`'s address and routes from the interface.
    Remove(Lease),
    /// Report this to the owner of the client.
    Event(DhcpEvent),
}

/// A request that is repeated until a reply comes or the state changes.
#[derive(Debug, Clone)]
struct Transmission {
    kind: RequestKind,
    to: Destination,
    /// How often it was sent so far.
    sent: u32,
    next_at: Instant,
    /// The wait after the next send, before jitter (acquisition states only).
    interval: Duration,
}

/// The lease in use and when its timers fire.
#[derive(Debug, Clone)]
struct Held {
    lease: Lease,
    renew_at: Instant,
    rebind_at: Instant,
    expires_at: Instant,
}

/// The client state machine of one interface, without I/O: for [`super::DhcpClient`], for
/// embedding in another event loop, and for fuzzing the packet handling.
///
/// Time is passed in, so a test can use a manual clock: call [`DhcpMachine::on_timer`] at
/// [`DhcpMachine::next_deadline`] and [`DhcpMachine::on_packet`] for every received packet.
#[derive(Debug)]
pub struct DhcpMachine {
    interface: String,
    identity: ClientIdentity,
    timing: Timing,
    rng: fastrand::Rng,
    state: DhcpState,
    xid: u32,
    /// When the current exchange began (the `secs` field counts from here).
    exchange_started: Instant,
    /// When the client started (the acquisition timeout counts from here).
    client_started: Instant,
    held: Option<Held>,
    /// Server and address of the offer being requested.
    offer: Option<(Ipv4Addr, Ipv4Addr)>,
    transmission: Option<Transmission>,
    ever_bound: bool,
    /// NAKs and expiries since the last lease was bound: each one doubles the wait before
    /// the next DISCOVER.
    rediscoveries: u32,
    ignored: [u64; IgnoreReason::ALL.len()],
}

impl DhcpMachine {
    /// A machine for `config` (checked with [`DhcpConfig::validate`]); nothing is sent until
    /// [`DhcpMachine::start`].
    pub fn new(config: &DhcpConfig, now: Instant) -> Result<DhcpMachine, DhcpError> {
        config.validate()?;
        Ok(DhcpMachine {
            interface: config.interface.clone(),
            identity: ClientIdentity {
                mac: config.mac,
                client_id: config.client_id_bytes(),
                hostname: config.hostname.clone(),
            },
            timing: config.timing.clone(),
            rng: fastrand::Rng::new(),
            state: DhcpState::Selecting,
            xid: 0,
            exchange_started: now,
            client_started: now,
            held: None,
            offer: None,
            transmission: None,
            ever_bound: false,
            rediscoveries: 0,
            ignored: [0; IgnoreReason::ALL.len()],
        })
    }

    /// The state the client is in.
    pub fn state(&self) -> DhcpState {
        self.state
    }

    /// The lease held, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.held.as_ref().map(|held| &held.lease)
    }

    /// How many packets were ignored for `reason`.
    pub fn ignored(&self, reason: IgnoreReason) -> u64 {
        self.ignored[reason.index()]
    }

    /// How many packets were ignored in all.
    pub fn ignored_total(&self) -> u64 {
        self.ignored.iter().sum()
    }

    /// Starts with INIT-REBOOT when a lease is remembered, else with INIT.
    pub fn start(&mut self, now: Instant, remembered: Option<&Lease>) -> Vec<DhcpAction> {
        let mut actions = Vec::new();
        self.client_started = now;
        match remembered {
            Some(lease) => {
                self.begin_exchange(now);
                self.enter(DhcpState::Rebooting, &mut actions);
                self.transmit(
                    RequestKind::Reboot {
                        address: lease.address.address(),
                    },
                    Destination::Broadcast,
                    now,
                    &mut actions,
                );
            }
            None => self.enter_init(now, None, &mut actions),
        }
        actions
    }

    /// When [`DhcpMachine::on_timer`] must run next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.held.as_ref().and_then(|held| match self.state {
            DhcpState::Bound => Some(held.renew_at),
            DhcpState::Renewing => Some(held.rebind_at),
            DhcpState::Rebinding => Some(held.expires_at),
            _ => None,
        });
        let acquire = self.acquire_deadline();
        [
            self.transmission.as_ref().map(|t| t.next_at),
            timer,
            acquire,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles the passing of time: lease timers, retransmissions, the acquisition timeout.
    pub fn on_timer(&mut self, now: Instant) -> Result<Vec<DhcpAction>, DhcpError> {
        if let Some(deadline) = self.acquire_deadline()
            && now >= deadline
        {
            return Err(DhcpError::NoAnswer {
                interface: self.interface.clone(),
                waited: now.saturating_duration_since(self.client_started),
            });
        }
        let mut actions = Vec::new();
        if let Some(held) = self.held.clone() {
            let bound_states = matches!(
                self.state,
                DhcpState::Bound | DhcpState::Renewing | DhcpState::Rebinding
            );
            if bound_states && now >= held.expires_at {
                self.drop_lease(&mut actions);
                actions.push(DhcpAction::Event(DhcpEvent::Expired(held.lease)));
                let delay = self.rediscovery_delay();
                self.enter_init(now, Some(delay), &mut actions);
                return Ok(actions);
            }
            if self.state == DhcpState::Bound && now >= held.renew_at {
                self.begin_exchange(now);
                self.enter(DhcpState::Renewing, &mut actions);
                self.transmit(
                    RequestKind::Extend {
                        address: held.lease.address.address(),
                    },
                    Destination::Server(held.lease.server),
                    now,
                    &mut actions,
                );
                return Ok(actions);
            }
            if self.state == DhcpState::Renewing && now >= held.rebind_at {
                self.enter(DhcpState::Rebinding, &mut actions);
                self.transmit(
                    RequestKind::Extend {
                        address: held.lease.address.address(),
                    },
                    Destination::Broadcast,
                    now,
                    &mut actions,
                );
                return Ok(actions);
            }
        }
        if let Some(transmission) = self.transmission.clone()
            && now >= transmission.next_at
        {
            let gives_up = matches!(self.state, DhcpState::Requesting | DhcpState::Rebooting)
                && transmission.sent >= self.timing.request_attempts;
            if gives_up {
                self.enter_init(now, None, &mut actions);
            } else {
                self.send(transmission, now, &mut actions);
            }
        }
        Ok(actions)
    }

    /// Handles one received packet. A packet that is not a fitting reply is counted and
    /// reported, and changes nothing else.
    pub fn on_packet(&mut self, now: Instant, bytes: &[u8]) -> Vec<DhcpAction> {
        let mut actions = Vec::new();
        if let Err(reason) = self.handle_packet(now, bytes, &mut actions) {
            self.ignored[reason.index()] += 1;
            actions.push(DhcpAction::Event(DhcpEvent::PacketIgnored {
                reason,
                total: self.ignored_total(),
            }));
        }
        actions
    }

    /// Gives the lease back: a RELEASE to its server and the address removed. Nothing when
    /// no lease is held.
    pub fn release(&mut self, now: Instant) -> Vec<DhcpAction> {
        let mut actions = Vec::new();
        if let Some(held) = self.held.clone() {
            self.begin_exchange(now);
            let packet = encode_request(
                &self.identity,
                self.xid,
                0,
                RequestKind::Release {
                    server: held.lease.server,
                    address: held.lease.address.address(),
                },
            );
            actions.push(DhcpAction::Send {
                to: Destination::Server(held.lease.server),
                packet,
            });
            self.drop_lease(&mut actions);
            actions.push(DhcpAction::Event(DhcpEvent::Released(held.lease)));
        }
        self.transmission = None;
        actions
    }

    fn handle_packet(
        &mut self,
        now: Instant,
        bytes: &[u8],
        actions: &mut Vec<DhcpAction>,
    ) -> Result<(), IgnoreReason> {
        let reply = decode_reply(bytes, &self.identity, self.xid)?;
        match (self.state, reply.kind) {
            (DhcpState::Selecting, ReplyKind::Offer) => {
                let server = reply.server.ok_or(IgnoreReason::NoServerIdentifier)?;
                let address = reply.message.yiaddr();
                if !is_usable_unicast(address) {
                    return Err(IgnoreReason::InvalidAddress);
                }
                self.offer = Some((server, address));
                actions.push(DhcpAction::Event(DhcpEvent::Offered { server, address }));
                self.enter(DhcpState::Requesting, actions);
                self.transmit(
                    RequestKind::Select { server, address },
                    Destination::Broadcast,
                    now,
                    actions,
                );
                Ok(())
            }
            (
                DhcpState::Requesting
                | DhcpState::Rebooting
                | DhcpState::Renewing
                | DhcpState::Rebinding,
                ReplyKind::Ack | ReplyKind::Nak,
            ) => {
                let server = self.answering_server(reply.server, reply.kind)?;
                if reply.kind == ReplyKind::Nak {
                    self.drop_lease(actions);
                    actions.push(DhcpAction::Event(DhcpEvent::Nak {
                        server,
                        message: nak_message(&reply.message),
                    }));
                    let delay = self.rediscovery_delay();
                    self.enter_init(now, Some(delay), actions);
                    return Ok(());
                }
                let lease = Lease::from_ack(&reply, server)?;
                self.bind(now, lease, actions);
                Ok(())
            }
            _ => Err(IgnoreReason::Unexpected),
        }
    }

    /// The server an ACK or NAK counts as coming from, or why it is not acceptable now.
    fn answering_server(
        &self,
        identifier: Option<Ipv4Addr>,
        kind: ReplyKind,
    ) -> Result<Ipv4Addr, IgnoreReason> {
        match self.state {
            DhcpState::Requesting => {
                let (selected, _) = self.offer.ok_or(IgnoreReason::Unexpected)?;
                match identifier {
                    Some(server) if server == selected => Ok(server),
                    Some(_) => Err(IgnoreReason::WrongServer),
                    None => Err(IgnoreReason::NoServerIdentifier),
                }
            }
            DhcpState::Renewing => {
                let current = self.held.as_ref().map(|held| held.lease.server);
                match (identifier, current) {
                    (Some(server), Some(current)) if server != current => {
                        Err(IgnoreReason::WrongServer)
                    }
                    (Some(server), _) | (None, Some(server)) => Ok(server),
                    (None, None) => Err(IgnoreReason::NoServerIdentifier),
                }
            }
            _ => match (identifier, kind) {
                (Some(server), _) => Ok(server),
                (None, ReplyKind::Nak) => Ok(Ipv4Addr::UNSPECIFIED),
                (None, _) => Err(IgnoreReason::NoServerIdentifier),
            },
        }
    }

    fn bind(&mut self, now: Instant, lease: Lease, actions: &mut Vec<DhcpAction>) {
        let previous = self.held.take().map(|held| held.lease);
        let renewed = previous
            .as_ref()
            .is_some_and(|previous| previous.address == lease.address);
        let times = LeaseTimes::floored(&lease, &self.timing);
        self.held = Some(Held {
            renew_at: later(now, times.renew),
            rebind_at: later(now, times.rebind),
            expires_at: later(now, times.lease),
            lease: lease.clone(),
        });
        self.transmission = None;
        self.offer = None;
        self.ever_bound = true;
        self.rediscoveries = 0;
        if let Some(previous) = &previous
            && !renewed
        {
            actions.push(DhcpAction::Remove(previous.clone()));
        }
        actions.push(DhcpAction::Apply {
            previous: previous.filter(|_| renewed),
            lease: lease.clone(),
        });
        self.enter(DhcpState::Bound, actions);
        actions.push(DhcpAction::Event(if renewed {
            DhcpEvent::Renewed(lease)
        } else {
            DhcpEvent::Bound(lease)
        }));
    }

    /// Forgets the held lease, removing it from the interface.
    fn drop_lease(&mut self, actions: &mut Vec<DhcpAction>) {
        if let Some(held) = self.held.take() {
            actions.push(DhcpAction::Remove(held.lease));
        }
    }

    /// INIT: a new transaction and a DISCOVER, now or after `delay`.
    fn enter_init(&mut self, now: Instant, delay: Option<Duration>, actions: &mut Vec<DhcpAction>) {
        self.offer = None;
        self.begin_exchange(now);
        self.enter(DhcpState::Selecting, actions);
        match delay {
            None => self.transmit(RequestKind::Discover, Destination::Broadcast, now, actions),
            Some(delay) => {
                self.transmission = Some(Transmission {
                    kind: RequestKind::Discover,
                    to: Destination::Broadcast,
                    sent: 0,
                    next_at: later(now, delay),
                    interval: self.timing.first_retransmit,
                });
            }
        }
    }

    /// The wait before the DISCOVER that follows a NAK or an expiry: the first
    /// retransmission wait, doubled for each such restart since the last lease was bound, up
    /// to the longest retransmission wait. Two servers that disagree, or one that refuses
    /// every request, cannot drive the client in a tight loop.
    fn rediscovery_delay(&mut self) -> Duration {
        self.rediscoveries = self.rediscoveries.saturating_add(1);
        let factor = 1u32.checked_shl(self.rediscoveries - 1).unwrap_or(u32::MAX);
        self.timing
            .first_retransmit
            .saturating_mul(factor)
            .min(self.timing.max_retransmit)
    }

    fn begin_exchange(&mut self, now: Instant) {
        self.xid = self.rng.u32(..);
        self.exchange_started = now;
    }

    fn enter(&mut self, state: DhcpState, actions: &mut Vec<DhcpAction>) {
        self.state = state;
        actions.push(DhcpAction::Event(DhcpEvent::State(state)));
    }

    /// Sends a new request now and keeps it for retransmission.
    fn transmit(
        &mut self,
        kind: RequestKind,
        to: Destination,
        now: Instant,
        actions: &mut Vec<DhcpAction>,
    ) {
        let transmission = Transmission {
            kind,
            to,
            sent: 0,
            next_at: now,
            interval: self.timing.first_retransmit,
        };
        self.send(transmission, now, actions);
    }

    /// Sends `transmission` once and schedules its next send.
    fn send(
        &mut self,
        mut transmission: Transmission,
        now: Instant,
        actions: &mut Vec<DhcpAction>,
    ) {
        let secs = now
            .saturating_duration_since(self.exchange_started)
            .as_secs();
        let packet = encode_request(
            &self.identity,
            self.xid,
            u16::try_from(secs).unwrap_or(u16::MAX),
            transmission.kind,
        );
        actions.push(DhcpAction::Send {
            to: transmission.to,
            packet,
        });
        transmission.sent += 1;
        let wait = match (self.state, &self.held) {
            (DhcpState::Renewing, Some(held)) => self.extend_wait(now, held.rebind_at),
            (DhcpState::Rebinding, Some(held)) => self.extend_wait(now, held.expires_at),
            _ => {
                let wait = self.jittered(transmission.interval);
                transmission.interval = transmission
                    .interval
                    .saturating_mul(2)
                    .min(self.timing.max_retransmit);
                wait
            }
        };
        transmission.next_at = later(now, wait);
        self.transmission = Some(transmission);
    }

    /// RFC 2131 4.4.5: in RENEWING and REBINDING wait half the time left until `limit`, but
    /// at least the minimum retransmission interval.
    fn extend_wait(&self, now: Instant, limit: Instant) -> Duration {
        (limit.saturating_duration_since(now) / 2).max(self.timing.min_renew_retransmit)
    }

    /// `interval` moved by a uniform random amount within the jitter, never below 1 ms.
    fn jittered(&mut self, interval: Duration) -> Duration {
        let jitter_ms = u64::try_from(self.timing.jitter.as_millis()).unwrap_or(u64::MAX / 4);
        let offset = self.rng.u64(0..=jitter_ms.saturating_mul(2));
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX / 4);
        let ms = (interval_ms + offset).saturating_sub(jitter_ms).max(1);
        Duration::from_millis(ms)
    }

    fn acquire_deadline(&self) -> Option<Instant> {
        if self.ever_bound {
            return None;
        }
        self.timing
            .acquire_timeout
            .map(|timeout| later(self.client_started, timeout))
    }
}

/// When a lease's timers fire after binding: the server's times scaled by
/// [`Timing::lease_time_percent`], then raised to the floors of [`Timing::min_lease`] (the
/// lease at least that long, T1 at least half of it, T2 at least 7/8 of it), still in the
/// order T1 <= T2 <= lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LeaseTimes {
    renew: Duration,
    rebind: Duration,
    lease: Duration,
}

impl LeaseTimes {
    fn floored(lease: &Lease, timing: &Timing) -> LeaseTimes {
        let floor = timing.min_lease;
        let lease_time = timing.scale(lease.lease_seconds).max(floor);
        let rebind = timing
            .scale(lease.rebind_seconds)
            .max(floor * 7 / 8)
            .min(lease_time);
        let renew = timing.scale(lease.renew_seconds).max(floor / 2).min(rebind);
        LeaseTimes {
            renew,
            rebind,
            lease: lease_time,
        }
    }
}

/// The text of a NAK's message option, if any.
fn nak_message(message: &dhcproto::v4::Message) -> Option<String> {
    match message.opts().get(dhcproto::v4::OptionCode::Message) {
        Some(dhcproto::v4::DhcpOption::Message(text)) => Some(text.clone()),
        _ => None,
    }
}

/// `now + duration`, or a time far enough ahead that it never comes when that overflows.
fn later(now: Instant, duration: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(duration.min(CENTURY)).unwrap_or(now)
}
