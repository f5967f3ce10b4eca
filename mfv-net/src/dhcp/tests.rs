//! Tests of the state machine with a manual clock, and of the client task with a fake
//! transport, a scripted server and tokio's paused clock.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use tokio::sync::mpsc;

use super::*;
use crate::cidr::Ipv4Cidr;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OTHER_SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

fn config() -> DhcpConfig {
    let mut config = DhcpConfig::new("eth0", MAC);
    config.hostname = Some("host1".into());
    config
}

fn machine_with(config: &DhcpConfig, now: Instant) -> DhcpMachine {
    DhcpMachine::new(config, now).unwrap()
}

/// The packets among `actions`, decoded.
fn sent(actions: &[DhcpAction]) -> Vec<(Destination, Message)> {
    actions
        .iter()
        .filter_map(|action| match action {
            DhcpAction::Send { to, packet } => Some((*to, Message::from_bytes(packet).unwrap())),
            _ => None,
        })
        .collect()
}

/// The one packet among `actions`.
fn only_sent(actions: &[DhcpAction]) -> (Destination, Message) {
    let mut packets = sent(actions);
    assert_eq!(packets.len(), 1, "{actions:?}");
    packets.remove(0)
}

fn events(actions: &[DhcpAction]) -> Vec<DhcpEvent> {
    actions
        .iter()
        .filter_map(|action| match action {
            DhcpAction::Event(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

/// A server's reply of `kind` to `request`, offering `address` with a 100 s lease (T1 50 s,
/// T2 87 s), a router, DNS server and domain.
fn reply(request: &Message, kind: MessageType, server: Ipv4Addr, address: Ipv4Addr) -> Vec<u8> {
    let mut message = Message::new_with_id(
        request.xid(),
        Ipv4Addr::UNSPECIFIED,
        if kind == MessageType::Nak {
            Ipv4Addr::UNSPECIFIED
        } else {
            address
        },
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        request.chaddr(),
    );
    message.set_opcode(Opcode::BootReply);
    let options = message.opts_mut();
    options.insert(DhcpOption::MessageType(kind));
    options.insert(DhcpOption::ServerIdentifier(server));
    if kind != MessageType::Nak {
        options.insert(DhcpOption::AddressLeaseTime(100));
        options.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        options.insert(DhcpOption::Router(vec![SERVER]));
        options.insert(DhcpOption::DomainNameServer(vec![SERVER]));
        options.insert(DhcpOption::DomainName("example.org".into()));
    } else {
        options.insert(DhcpOption::Message("address not on this network".into()));
    }
    message.to_vec().unwrap()
}

fn expected_lease(address: Ipv4Addr, server: Ipv4Addr) -> Lease {
    Lease {
        address: Ipv4Cidr::new(address, 24).unwrap(),
        server,
        routers: vec![SERVER],
        dns_servers: vec![SERVER],
        domain: Some("example.org".into()),
        mtu: None,
        lease_seconds: 100,
        renew_seconds: 50,
        rebind_seconds: 87,
    }
}

/// A machine brought to BOUND at `t0`, and the REQUEST it sent.
fn bound_machine(config: &DhcpConfig, t0: Instant) -> DhcpMachine {
    let mut machine = machine_with(config, t0);
    let (_, discover) = only_sent(&machine.start(t0, None));
    let actions = machine.on_packet(t0, &reply(&discover, MessageType::Offer, SERVER, ADDRESS));
    let (_, request) = only_sent(&actions);
    machine.on_packet(t0, &reply(&request, MessageType::Ack, SERVER, ADDRESS));
    assert_eq!(machine.state(), DhcpState::Bound);
    machine
}

#[test]
fn discover_offer_request_ack_binds() {
    let t0 = Instant::now();
    let mut machine = machine_with(&config(), t0);
    let actions = machine.start(t0, None);
    assert_eq!(events(&actions), [DhcpEvent::State(DhcpState::Selecting)]);
    let (to, discover) = only_sent(&actions);
    assert_eq!(to, Destination::Broadcast);
    assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));

    let actions = machine.on_packet(t0, &reply(&discover, MessageType::Offer, SERVER, ADDRESS));
    assert_eq!(
        events(&actions),
        [
            DhcpEvent::Offered {
                server: SERVER,
                address: ADDRESS
            },
            DhcpEvent::State(DhcpState::Requesting)
        ]
    );
    let (to, request) = only_sent(&actions);
    assert_eq!(to, Destination::Broadcast);
    assert_eq!(request.xid(), discover.xid());
    assert_eq!(
        request.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(ADDRESS))
    );

    let actions = machine.on_packet(t0, &reply(&request, MessageType::Ack, SERVER, ADDRESS));
    let lease = expected_lease(ADDRESS, SERVER);
    assert_eq!(
        actions,
        [
            DhcpAction::Apply {
                previous: None,
                lease: lease.clone()
            },
            DhcpAction::Event(DhcpEvent::State(DhcpState::Bound)),
            DhcpAction::Event(DhcpEvent::Bound(lease.clone())),
        ]
    );
    assert_eq!(machine.lease(), Some(&lease));
    assert_eq!(machine.next_deadline(), Some(t0 + Duration::from_secs(50)));
}

#[test]
fn discover_is_retransmitted_with_randomized_exponential_backoff() {
    let t0 = Instant::now();
    let mut config = config();
    config.timing.acquire_timeout = None;
    let mut machine = machine_with(&config, t0);
    let (_, first) = only_sent(&machine.start(t0, None));
    let mut now = t0;
    for base in [4u64, 8, 16, 32, 64, 64] {
        let deadline = machine.next_deadline().unwrap();
        let wait = deadline - now;
        assert!(
            wait >= Duration::from_secs(base - 1) && wait <= Duration::from_secs(base + 1),
            "wait {wait:?} for base {base}"
        );
        // Nothing happens before the deadline.
        assert!(
            machine
                .on_timer(deadline - Duration::from_millis(1))
                .unwrap()
                .is_empty()
        );
        now = deadline;
        let (to, again) = only_sent(&machine.on_timer(now).unwrap());
        assert_eq!(to, Destination::Broadcast);
        assert_eq!(again.xid(), first.xid());
        assert_eq!(u64::from(again.secs()), (now - t0).as_secs());
    }
}

#[test]
fn a_silent_server_ends_with_a_timeout_naming_the_interface_and_changes_nothing() {
    let t0 = Instant::now();
    let mut config = config();
    config.timing.acquire_timeout = Some(Duration::from_secs(10));
    config.timing.jitter = Duration::ZERO;
    let mut machine = machine_with(&config, t0);
    let mut actions = machine.start(t0, None);
    let error = loop {
        let deadline = machine.next_deadline().unwrap();
        match machine.on_timer(deadline) {
            Ok(more) => actions.extend(more),
            Err(error) => break error,
        }
    };
    assert_eq!(
        error.to_string(),
        "no DHCP lease on eth0: no server answered within 10.0 s (the interface was left as it was)"
    );
    assert!(
        actions
            .iter()
            .all(|action| matches!(action, DhcpAction::Send { .. } | DhcpAction::Event(_)))
    );
    // At 0 s and 4 s; the next would be at 12 s.
    assert_eq!(sent(&actions).len(), 2);
}

#[test]
fn renews_at_t1_by_unicast_and_a_renewal_ack_extends_the_lease() {
    let t0 = Instant::now();
    let mut machine = bound_machine(&config(), t0);
    let t1 = t0 + Duration::from_secs(50);
    let actions = machine.on_timer(t1).unwrap();
    assert_eq!(events(&actions), [DhcpEvent::State(DhcpState::Renewing)]);
    let (to, renew) = only_sent(&actions);
    assert_eq!(to, Destination::Server(SERVER));
    assert_eq!(renew.ciaddr(), ADDRESS);
    assert!(!renew.flags().broadcast());
    // Half the time left until T2 (18.5 s), but at least the 60 s minimum: capped by T2.
    assert_eq!(machine.next_deadline(), Some(t0 + Duration::from_secs(87)));

    let later = t1 + Duration::from_secs(1);
    let actions = machine.on_packet(later, &reply(&renew, MessageType::Ack, SERVER, ADDRESS));
    let lease = expected_lease(ADDRESS, SERVER);
    assert_eq!(
        actions,
        [
            DhcpAction::Apply {
                previous: Some(lease.clone()),
                lease: lease.clone()
            },
            DhcpAction::Event(DhcpEvent::State(DhcpState::Bound)),
            DhcpAction::Event(DhcpEvent::Renewed(lease)),
        ]
    );
    assert_eq!(
        machine.next_deadline(),
        Some(later + Duration::from_secs(50))
    );
}

#[test]
fn renewal_retransmits_at_half_the_time_left_but_not_more_often_than_the_minimum() {
    let t0 = Instant::now();
    let mut config = config();
    config.timing.min_renew_retransmit = Duration::from_secs(5);
    let mut machine = bound_machine(&config, t0);
    machine.on_timer(t0 + Duration::from_secs(50)).unwrap();
    // 37 s left until T2: wait 18.5 s.
    let first = machine.next_deadline().unwrap();
    assert_eq!(first, t0 + Duration::from_millis(68_500));
    let (to, _) = only_sent(&machine.on_timer(first).unwrap());
    assert_eq!(to, Destination::Server(SERVER));
    assert_eq!(
        machine.next_deadline(),
        Some(first + Duration::from_millis(9_250))
    );
}

#[test]
fn without_answers_it_rebinds_at_t2_and_removes_the_address_at_expiry() {
    let t0 = Instant::now();
    let mut machine = bound_machine(&config(), t0);
    machine.on_timer(t0 + Duration::from_secs(50)).unwrap();
    let actions = machine.on_timer(t0 + Duration::from_secs(87)).unwrap();
    assert_eq!(events(&actions), [DhcpEvent::State(DhcpState::Rebinding)]);
    let (to, rebind) = only_sent(&actions);
    assert_eq!(to, Destination::Broadcast);
    assert_eq!(rebind.ciaddr(), ADDRESS);
    assert_eq!(machine.next_deadline(), Some(t0 + Duration::from_secs(100)));

    let expiry = t0 + Duration::from_secs(100);
    let actions = machine.on_timer(expiry).unwrap();
    let lease = expected_lease(ADDRESS, SERVER);
    assert_eq!(actions[0], DhcpAction::Remove(lease.clone()));
    assert_eq!(
        events(&actions),
        [
            DhcpEvent::Expired(lease),
            DhcpEvent::State(DhcpState::Selecting)
        ]
    );
    assert!(sent(&actions).is_empty());
    assert_eq!(machine.lease(), None);
    assert_eq!(
        machine.next_deadline(),
        Some(expiry + Duration::from_secs(4))
    );
    let (_, discover) = only_sent(&machine.on_timer(expiry + Duration::from_secs(4)).unwrap());
    assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));
}

#[test]
fn another_server_can_answer_a_rebind_with_a_new_address() {
    let t0 = Instant::now();
    let mut machine = bound_machine(&config(), t0);
    machine.on_timer(t0 + Duration::from_secs(50)).unwrap();
    let (_, rebind) = only_sent(&machine.on_timer(t0 + Duration::from_secs(87)).unwrap());
    let new_address = Ipv4Addr::new(192, 0, 2, 77);
    let actions = machine.on_packet(
        t0 + Duration::from_secs(88),
        &reply(&rebind, MessageType::Ack, OTHER_SERVER, new_address),
    );
    assert_eq!(
        actions[..2],
        [
            DhcpAction::Remove(expected_lease(ADDRESS, SERVER)),
            DhcpAction::Apply {
                previous: None,
                lease: expected_lease(new_address, OTHER_SERVER)
            }
        ]
    );
    assert!(
        events(&actions).contains(&DhcpEvent::Bound(expected_lease(new_address, OTHER_SERVER)))
    );
}

#[test]
fn a_nak_while_renewing_removes_the_lease_and_starts_over_after_the_first_wait() {
    let t0 = Instant::now();
    let mut machine = bound_machine(&config(), t0);
    let (_, renew) = only_sent(&machine.on_timer(t0 + Duration::from_secs(50)).unwrap());
    let now = t0 + Duration::from_secs(51);
    let actions = machine.on_packet(now, &reply(&renew, MessageType::Nak, SERVER, ADDRESS));
    assert_eq!(
        actions[0],
        DhcpAction::Remove(expected_lease(ADDRESS, SERVER))
    );
    assert_eq!(
        events(&actions),
        [
            DhcpEvent::Nak {
                server: SERVER,
                message: Some("address not on this network".into())
            },
            DhcpEvent::State(DhcpState::Selecting)
        ]
    );
    assert!(sent(&actions).is_empty());
    assert_eq!(machine.next_deadline(), Some(now + Duration::from_secs(4)));
    let (_, discover) = only_sent(&machine.on_timer(now + Duration::from_secs(4)).unwrap());
    assert_ne!(discover.xid(), renew.xid());
}

#[test]
fn a_nak_to_a_fresh_offer_waits_before_the_next_discover() {
    let t0 = Instant::now();
    let mut machine = machine_with(&config(), t0);
    let (_, discover) = only_sent(&machine.start(t0, None));
    let (_, request) =
        only_sent(&machine.on_packet(t0, &reply(&discover, MessageType::Offer, SERVER, ADDRESS)));
    let actions = machine.on_packet(t0, &reply(&request, MessageType::Nak, SERVER, ADDRESS));
    assert!(sent(&actions).is_empty());
    assert_eq!(machine.state(), DhcpState::Selecting);
    let deadline = machine.next_deadline().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(4));
    let (_, again) = only_sent(&machine.on_timer(deadline).unwrap());
    assert_eq!(again.opts().msg_type(), Some(MessageType::Discover));
}

#[test]
fn an_unanswered_request_falls_back_to_discover() {
    let t0 = Instant::now();
    let mut config = config();
    config.timing.request_attempts = 2;
    let mut machine = machine_with(&config, t0);
    let (_, discover) = only_sent(&machine.start(t0, None));
    machine.on_packet(t0, &reply(&discover, MessageType::Offer, SERVER, ADDRESS));
    let (_, second) = only_sent(&machine.on_timer(machine.next_deadline().unwrap()).unwrap());
    assert_eq!(second.opts().msg_type(), Some(MessageType::Request));
    let actions = machine.on_timer(machine.next_deadline().unwrap()).unwrap();
    let (_, restart) = only_sent(&actions);
    assert_eq!(restart.opts().msg_type(), Some(MessageType::Discover));
    assert_eq!(machine.state(), DhcpState::Selecting);
}

#[test]
fn init_reboot_asks_for_the_remembered_address() {
    let t0 = Instant::now();
    let remembered = expected_lease(ADDRESS, SERVER);
    let mut machine = machine_with(&config(), t0);
    let actions = machine.start(t0, Some(&remembered));
    assert_eq!(events(&actions), [DhcpEvent::State(DhcpState::Rebooting)]);
    let (to, request) = only_sent(&actions);
    assert_eq!(to, Destination::Broadcast);
    assert_eq!(request.opts().msg_type(), Some(MessageType::Request));
    assert_eq!(
        request.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(ADDRESS))
    );
    assert!(request.opts().get(OptionCode::ServerIdentifier).is_none());
    let actions = machine.on_packet(t0, &reply(&request, MessageType::Ack, SERVER, ADDRESS));
    assert!(events(&actions).contains(&DhcpEvent::Bound(remembered)));
}

#[test]
fn init_reboot_without_answer_or_with_a_nak_goes_to_init() {
    let t0 = Instant::now();
    let remembered = expected_lease(ADDRESS, SERVER);
    let mut config = config();
    config.timing.request_attempts = 1;
    let mut machine = machine_with(&config, t0);
    machine.start(t0, Some(&remembered));
    let (_, discover) = only_sent(&machine.on_timer(machine.next_deadline().unwrap()).unwrap());
    assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));

    let mut machine = machine_with(&config, t0);
    let (_, request) = only_sent(&machine.start(t0, Some(&remembered)));
    let actions = machine.on_packet(t0, &reply(&request, MessageType::Nak, SERVER, ADDRESS));
    assert!(!actions.iter().any(|a| matches!(a, DhcpAction::Remove(_))));
    assert!(sent(&actions).is_empty());
    let (_, discover) = only_sent(&machine.on_timer(machine.next_deadline().unwrap()).unwrap());
    assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));
}

/// `reply` with the lease time and T1/T2 options set to `lease`, `t1` and `t2`.
fn reply_with_times(request: &Message, lease: u32, t1: u32, t2: u32) -> Vec<u8> {
    let mut message =
        Message::from_bytes(&reply(request, MessageType::Ack, SERVER, ADDRESS)).unwrap();
    let options = message.opts_mut();
    options.insert(DhcpOption::AddressLeaseTime(lease));
    options.insert(DhcpOption::Renewal(t1));
    options.insert(DhcpOption::Rebinding(t2));
    message.to_vec().unwrap()
}

/// A machine with `config` that sent its REQUEST for an offer at `t0`, and that REQUEST.
fn requesting_machine(config: &DhcpConfig, t0: Instant) -> (DhcpMachine, Message) {
    let mut machine = machine_with(config, t0);
    let (_, discover) = only_sent(&machine.start(t0, None));
    let actions = machine.on_packet(t0, &reply(&discover, MessageType::Offer, SERVER, ADDRESS));
    let (_, request) = only_sent(&actions);
    (machine, request)
}

#[test]
fn a_lease_time_of_zero_is_kept_for_the_minimum_lease_time() {
    let t0 = Instant::now();
    let (mut machine, request) = requesting_machine(&config(), t0);
    let actions = machine.on_packet(t0, &reply_with_times(&request, 0, 0, 0));
    assert!(
        events(&actions)
            .iter()
            .any(|e| matches!(e, DhcpEvent::Bound(_)))
    );
    assert!(machine.on_timer(t0).unwrap().is_empty());
    assert_eq!(machine.state(), DhcpState::Bound);
    assert_eq!(machine.next_deadline(), Some(t0 + Duration::from_secs(30)));
    machine.on_timer(t0 + Duration::from_secs(30)).unwrap();
    assert_eq!(machine.state(), DhcpState::Renewing);
    machine
        .on_timer(t0 + Duration::from_millis(52_500))
        .unwrap();
    assert_eq!(machine.state(), DhcpState::Rebinding);
    assert_eq!(machine.next_deadline(), Some(t0 + Duration::from_secs(60)));
    let actions = machine.on_timer(t0 + Duration::from_secs(60)).unwrap();
    assert!(
        events(&actions)
            .iter()
            .any(|e| matches!(e, DhcpEvent::Expired(_)))
    );
}

#[test]
fn tiny_renewal_times_of_a_long_lease_are_raised_to_the_floor() {
    let t0 = Instant::now();
    let (mut machine, request) = requesting_machine(&config(), t0);
    machine.on_packet(t0, &reply_with_times(&request, 3600, 0, 1));
    assert_eq!(machine.next_deadline(), Some(t0 + Duration::from_secs(30)));
    let (_, renew) = only_sent(&machine.on_timer(t0 + Duration::from_secs(30)).unwrap());
    // An ACK to the renewal with the same tiny times: the next renewal is 30 s later again.
    let now = t0 + Duration::from_secs(31);
    machine.on_packet(now, &reply_with_times(&renew, 3600, 0, 1));
    assert_eq!(machine.state(), DhcpState::Bound);
    assert!(machine.on_timer(now).unwrap().is_empty());
    assert_eq!(machine.next_deadline(), Some(now + Duration::from_secs(30)));
}

#[test]
fn repeated_naks_back_off_exponentially_until_a_lease_is_bound() {
    let t0 = Instant::now();
    let mut config = config();
    config.timing.acquire_timeout = None;
    let (mut machine, mut request) = requesting_machine(&config, t0);
    let mut now = t0;
    for wait in [4, 8, 16, 32, 64, 64] {
        let actions = machine.on_packet(now, &reply(&request, MessageType::Nak, SERVER, ADDRESS));
        assert!(sent(&actions).is_empty());
        let deadline = machine.next_deadline().unwrap();
        assert_eq!(deadline, now + Duration::from_secs(wait));
        now = deadline;
        let (_, discover) = only_sent(&machine.on_timer(now).unwrap());
        let actions =
            machine.on_packet(now, &reply(&discover, MessageType::Offer, SERVER, ADDRESS));
        request = only_sent(&actions).1;
    }
    machine.on_packet(now, &reply(&request, MessageType::Ack, SERVER, ADDRESS));
    assert_eq!(machine.state(), DhcpState::Bound);
    let renew_at = now + Duration::from_secs(50);
    let (_, renew) = only_sent(&machine.on_timer(renew_at).unwrap());
    machine.on_packet(renew_at, &reply(&renew, MessageType::Nak, SERVER, ADDRESS));
    assert_eq!(
        machine.next_deadline(),
        Some(renew_at + Duration::from_secs(4))
    );
}

#[test]
fn release_sends_a_release_to_the_server_and_removes_the_address() {
    let t0 = Instant::now();
    let mut machine = bound_machine(&config(), t0);
    let actions = machine.release(t0 + Duration::from_secs(5));
    let lease = expected_lease(ADDRESS, SERVER);
    let (to, release) = only_sent(&actions);
    assert_eq!(to, Destination::Server(SERVER));
    assert_eq!(release.opts().msg_type(), Some(MessageType::Release));
    assert_eq!(release.ciaddr(), ADDRESS);
    assert_eq!(actions[1], DhcpAction::Remove(lease.clone()));
    assert_eq!(events(&actions), [DhcpEvent::Released(lease)]);
    assert_eq!(machine.next_deadline(), None);
    assert!(machine_with(&config(), t0).release(t0).is_empty());
}

#[test]
fn foreign_and_malformed_packets_are_counted_and_change_nothing() {
    let t0 = Instant::now();
    let mut machine = machine_with(&config(), t0);
    let (_, discover) = only_sent(&machine.start(t0, None));
    let deadline = machine.next_deadline();
    let mut wrong_xid = reply(&discover, MessageType::Offer, SERVER, ADDRESS);
    wrong_xid[4] ^= 0xff;
    let ack_too_early = reply(&discover, MessageType::Ack, SERVER, ADDRESS);
    let mut no_server =
        Message::from_bytes(&reply(&discover, MessageType::Offer, SERVER, ADDRESS)).unwrap();
    no_server.opts_mut().remove(OptionCode::ServerIdentifier);
    let bad_address = reply(&discover, MessageType::Offer, SERVER, Ipv4Addr::BROADCAST);
    let garbage: Vec<u8> = (0..400u32).map(|i| (i * 7) as u8).collect();
    let cases = [
        (garbage, IgnoreReason::Malformed),
        (wrong_xid, IgnoreReason::WrongTransaction),
        (ack_too_early, IgnoreReason::Unexpected),
        (
            no_server.to_vec().unwrap(),
            IgnoreReason::NoServerIdentifier,
        ),
        (bad_address, IgnoreReason::InvalidAddress),
        (discover.to_vec().unwrap(), IgnoreReason::NotReply),
    ];
    for (count, (bytes, reason)) in cases.into_iter().enumerate() {
        let actions = machine.on_packet(t0, &bytes);
        assert_eq!(
            actions,
            [DhcpAction::Event(DhcpEvent::PacketIgnored {
                reason,
                total: count as u64 + 1
            })]
        );
        assert_eq!(machine.ignored(reason), 1);
    }
    assert_eq!(machine.state(), DhcpState::Selecting);
    assert_eq!(machine.next_deadline(), deadline);

    // In REQUESTING, an ACK from a server that was not chosen is dropped.
    let (_, request) =
        only_sent(&machine.on_packet(t0, &reply(&discover, MessageType::Offer, SERVER, ADDRESS)));
    let actions = machine.on_packet(
        t0,
        &reply(&request, MessageType::Ack, OTHER_SERVER, ADDRESS),
    );
    assert_eq!(machine.ignored(IgnoreReason::WrongServer), 1);
    assert_eq!(actions.len(), 1);
    assert_eq!(machine.state(), DhcpState::Requesting);
    // Once bound, nothing is expected.
    machine.on_packet(t0, &reply(&request, MessageType::Ack, SERVER, ADDRESS));
    machine.on_packet(t0, &reply(&request, MessageType::Ack, SERVER, ADDRESS));
    assert_eq!(machine.ignored(IgnoreReason::Unexpected), 2);
    assert_eq!(machine.ignored_total(), 8);
}

#[test]
fn lease_times_are_scaled_for_tests() {
    let t0 = Instant::now();
    let mut config = config();
    config.timing.lease_time_percent = 10;
    config.timing.min_lease = Duration::from_secs(2);
    let machine = bound_machine(&config, t0);
    assert_eq!(machine.next_deadline(), Some(t0 + Duration::from_secs(5)));
}

#[test]
fn the_floors_apply_to_the_scaled_times() {
    let t0 = Instant::now();
    let mut config = config();
    config.timing.lease_time_percent = 10;
    let machine = bound_machine(&config, t0);
    assert_eq!(machine.next_deadline(), Some(t0 + Duration::from_secs(30)));
}

#[test]
fn invalid_settings_are_refused() {
    let t0 = Instant::now();
    let check = |edit: &dyn Fn(&mut DhcpConfig), problem: &str| {
        let mut config = config();
        edit(&mut config);
        let error = DhcpMachine::new(&config, t0).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("invalid DHCP client settings for eth0: {problem}")
        );
    };
    check(
        &|c| c.hostname = Some("bad name".into()),
        "hostname \"bad name\" must be 1 to 63 letters, digits and inner '-'",
    );
    check(
        &|c| c.hostname = Some("a".repeat(64)),
        &format!(
            "hostname {:?} must be 1 to 63 letters, digits and inner '-'",
            "a".repeat(64)
        ),
    );
    check(
        &|c| c.client_id = Some(vec![1]),
        "the client identifier has 1 bytes, it must have 2 to 255",
    );
    check(
        &|c| c.timing.first_retransmit = Duration::ZERO,
        "first_retransmit, request_attempts and min_lease must not be zero",
    );
    check(
        &|c| c.timing.min_lease = Duration::ZERO,
        "first_retransmit, request_attempts and min_lease must not be zero",
    );
}

#[test]
fn mac_addresses_parse() {
    assert_eq!(parse_mac("02:00:00:00:00:0a").unwrap(), [2, 0, 0, 0, 0, 10]);
    for bad in [
        "",
        "02:00:00:00:00",
        "02:00:00:00:00:00:00",
        "02:00:00:00:00:zz",
        "2:0:0:0:0:0",
    ] {
        assert_eq!(
            parse_mac(bad).unwrap_err().to_string(),
            format!("{bad:?} is not a hardware address (as in 02:00:00:00:00:01)")
        );
    }
}

/// A transport whose packets go to and come from the test through channels.
#[derive(Debug)]
struct FakeTransport {
    sent: mpsc::UnboundedSender<(Destination, Vec<u8>)>,
    incoming: mpsc::UnboundedReceiver<Vec<u8>>,
    fail_sends: bool,
}

impl DhcpTransport for FakeTransport {
    async fn send(&mut self, to: Destination, packet: &[u8]) -> std::io::Result<()> {
        if self.fail_sends {
            return Err(std::io::Error::from_raw_os_error(ENETDOWN));
        }
        let _ = self.sent.send((to, packet.to_vec()));
        Ok(())
    }

    async fn recv(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self.incoming.recv().await {
            Some(packet) => {
                buffer[..packet.len()].copy_from_slice(&packet);
                Ok(packet.len())
            }
            None => std::future::pending().await,
        }
    }
}

/// ENETDOWN on Linux.
const ENETDOWN: i32 = 100;

/// The test's end of the packets a [`FakeTransport`] sent.
type SentPackets = mpsc::UnboundedReceiver<(Destination, Vec<u8>)>;

/// A fake transport and the test's ends of it.
fn fake_transport() -> (FakeTransport, SentPackets, mpsc::UnboundedSender<Vec<u8>>) {
    let (sent_tx, sent_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    (
        FakeTransport {
            sent: sent_tx,
            incoming: in_rx,
            fail_sends: false,
        },
        sent_rx,
        in_tx,
    )
}

/// Answers DISCOVERs with an OFFER and REQUESTs with an ACK, like a working server, after
/// first sending some garbage.
fn spawn_server(
    mut sent: SentPackets,
    incoming: mpsc::UnboundedSender<Vec<u8>>,
) -> tokio::task::JoinHandle<Vec<(Destination, Message)>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((to, packet)) = sent.recv().await {
            let request = Message::from_bytes(&packet).unwrap();
            let _ = incoming.send(b"garbage".to_vec());
            match request.opts().msg_type() {
                Some(MessageType::Discover) => {
                    let _ = incoming.send(reply(&request, MessageType::Offer, SERVER, ADDRESS));
                }
                Some(MessageType::Request) => {
                    let _ = incoming.send(reply(&request, MessageType::Ack, SERVER, ADDRESS));
                }
                _ => {}
            }
            seen.push((to, request));
        }
        seen
    })
}

fn received_events(events: &mut mpsc::UnboundedReceiver<DhcpEvent>) -> Vec<DhcpEvent> {
    let mut all = Vec::new();
    while let Ok(event) = events.try_recv() {
        all.push(event);
    }
    all
}

#[tokio::test(start_paused = true)]
async fn the_client_task_binds_renews_and_releases_on_shutdown() {
    let (transport, sent, incoming) = fake_transport();
    let server = spawn_server(sent, incoming);
    let applier = RecordingApplier::new();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.lease_file = Some(dir.path().join("eth0.lease"));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let client = DhcpClient::new(config, transport, applier.clone()).with_events(events_tx);
    let task = tokio::spawn(client.run(async move {
        let _ = stopped.await;
    }));
    // Past T1 (50 s): one renewal.
    tokio::time::sleep(Duration::from_secs(60)).await;
    stop.send(()).unwrap();
    let exit = task.await.unwrap().unwrap();
    let lease = expected_lease(ADDRESS, SERVER);
    assert_eq!(exit, DhcpExit::Released(lease.clone()));
    assert_eq!(
        load_lease(&dir.path().join("eth0.lease"), "eth0").unwrap(),
        Some(lease.clone())
    );
    let events = received_events(&mut events);
    assert!(
        events.contains(&DhcpEvent::Bound(lease.clone())),
        "{events:?}"
    );
    assert!(
        events.contains(&DhcpEvent::Renewed(lease.clone())),
        "{events:?}"
    );
    assert!(
        events.contains(&DhcpEvent::Released(lease.clone())),
        "{events:?}"
    );
    assert!(events.iter().any(|event| matches!(
        event,
        DhcpEvent::PacketIgnored {
            reason: IgnoreReason::Malformed,
            ..
        }
    )));
    assert_eq!(
        applier.changes(),
        [
            AppliedChange::Apply {
                interface: "eth0".into(),
                previous: None,
                lease: lease.clone()
            },
            AppliedChange::Apply {
                interface: "eth0".into(),
                previous: Some(lease.clone()),
                lease: lease.clone()
            },
            AppliedChange::Remove {
                interface: "eth0".into(),
                lease
            },
        ]
    );
    let seen = server.await.unwrap();
    let kinds: Vec<_> = seen
        .iter()
        .map(|(to, message)| (*to, message.opts().msg_type().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (Destination::Broadcast, MessageType::Discover),
            (Destination::Broadcast, MessageType::Request),
            (Destination::Server(SERVER), MessageType::Request),
            (Destination::Server(SERVER), MessageType::Release),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_client_task_uses_the_lease_file_for_init_reboot() {
    let (transport, sent, incoming) = fake_transport();
    let server = spawn_server(sent, incoming);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eth0.lease");
    save_lease(&path, "eth0", &expected_lease(ADDRESS, SERVER)).unwrap();
    let mut config = config();
    config.lease_file = Some(path);
    config.release_on_shutdown = false;
    let applier = RecordingApplier::new();
    let exit = DhcpClient::new(config, transport, applier.clone())
        .run(tokio::time::sleep(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(
        exit,
        DhcpExit::LeftConfigured(expected_lease(ADDRESS, SERVER))
    );
    assert_eq!(applier.changes().len(), 1);
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].1.opts().get(OptionCode::RequestedIpAddress),
        Some(&DhcpOption::RequestedIpAddress(ADDRESS))
    );
}

#[tokio::test(start_paused = true)]
async fn a_broken_lease_file_is_reported_and_the_client_starts_with_discover() {
    let (transport, sent, incoming) = fake_transport();
    let server = spawn_server(sent, incoming);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lease"), "{").unwrap();
    let mut config = config();
    // A directory cannot be replaced by the lease file either.
    config.lease_file = Some(dir.path().join("lease"));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let exit = DhcpClient::new(config.clone(), transport, RecordingApplier::new())
        .with_events(events_tx)
        .run(tokio::time::sleep(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(matches!(exit, DhcpExit::Released(_)));
    let problems: Vec<_> = received_events(&mut events)
        .into_iter()
        .filter(|event| matches!(event, DhcpEvent::LeaseFileProblem { .. }))
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let seen = server.await.unwrap();
    assert_eq!(seen[0].1.opts().msg_type(), Some(MessageType::Discover));

    let (transport, sent, incoming) = fake_transport();
    let _server = spawn_server(sent, incoming);
    config.lease_file = Some(dir.path().to_owned());
    let (events_tx, mut events) = mpsc::unbounded_channel();
    DhcpClient::new(config, transport, RecordingApplier::new())
        .with_events(events_tx)
        .run(tokio::time::sleep(Duration::from_secs(1)))
        .await
        .unwrap();
    let problems: Vec<_> = received_events(&mut events)
        .into_iter()
        .filter_map(|event| match event {
            DhcpEvent::LeaseFileProblem { problem } => Some(problem),
            _ => None,
        })
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[1].starts_with("cannot save the lease to"),
        "{problems:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_client_task_times_out_on_a_silent_server_without_touching_the_interface() {
    let (transport, _sent, _incoming) = fake_transport();
    let applier = RecordingApplier::new();
    let mut config = config();
    config.timing.acquire_timeout = Some(Duration::from_secs(3));
    config.timing.first_retransmit = Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    let error = DhcpClient::new(config, transport, applier.clone())
        .run(std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(error, DhcpError::NoAnswer { .. }), "{error:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(error.to_string().contains("within 3.0 s"));
    assert!(applier.changes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn failures_to_apply_or_send_end_the_client_with_the_cause() {
    let (transport, sent, incoming) = fake_transport();
    let _server = spawn_server(sent, incoming);
    let error = DhcpClient::new(config(), transport, RecordingApplier::failing())
        .run(std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "cannot apply the lease on eth0");

    let (mut transport, _sent, _incoming) = fake_transport();
    transport.fail_sends = true;
    let error = DhcpClient::new(config(), transport, RecordingApplier::new())
        .run(std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "cannot send a DHCP packet on eth0");
    let DhcpError::Transport { source, .. } = error else {
        unreachable!()
    };
    assert_eq!(source.raw_os_error(), Some(ENETDOWN));

    let error = DhcpClient::new(
        DhcpConfig {
            hostname: Some(String::new()),
            ..config()
        },
        fake_transport().0,
        RecordingApplier::new(),
    )
    .run(std::future::pending())
    .await
    .unwrap_err();
    assert!(matches!(error, DhcpError::InvalidConfig { .. }));
}
