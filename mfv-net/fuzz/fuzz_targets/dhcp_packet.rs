//! Fuzz target: the DHCP client's packet handling must never panic, in any state, and a
//! packet it ignores must change nothing but the ignored-packet count.
//!
//! The first byte chooses the state the client is brought into with well-formed replies
//! (SELECTING, REQUESTING, REBOOTING, BOUND, RENEWING, REBINDING) and whether the fuzzed
//! packet gets the client's transaction id, hardware address and the DHCP magic cookie
//! patched in, so the fuzzer reaches the checks behind them; the rest is the packet.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use dhcproto::{Decodable, Encodable};
use libfuzzer_sys::fuzz_target;
use mfv_net::dhcp::{DhcpAction, DhcpConfig, DhcpEvent, DhcpMachine, DhcpState, Lease, Timing};

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);

/// The last packet among `actions`, decoded.
fn last_sent(actions: &[DhcpAction]) -> Option<Message> {
    actions.iter().rev().find_map(|action| match action {
        DhcpAction::Send { packet, .. } => Message::from_bytes(packet).ok(),
        _ => None,
    })
}

/// A well-formed reply of `kind` to `request`.
fn reply(request: &Message, kind: MessageType) -> Vec<u8> {
    let mut message = Message::new_with_id(
        request.xid(),
        Ipv4Addr::UNSPECIFIED,
        ADDRESS,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &MAC,
    );
    message.set_opcode(Opcode::BootReply);
    let options = message.opts_mut();
    options.insert(DhcpOption::MessageType(kind));
    options.insert(DhcpOption::ServerIdentifier(SERVER));
    options.insert(DhcpOption::AddressLeaseTime(100));
    options.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
    message.to_vec().unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let t0 = Instant::now();
    let mut config = DhcpConfig::new("fuzz0", MAC);
    config.timing = Timing {
        acquire_timeout: None,
        ..Timing::default()
    };
    let Ok(mut machine) = DhcpMachine::new(&config, t0) else {
        return;
    };
    let remembered = Lease {
        address: "192.0.2.50/24".parse().unwrap_or_else(|_| unreachable!()),
        server: SERVER,
        routers: vec![],
        dns_servers: vec![],
        domain: None,
        mtu: None,
        lease_seconds: 100,
        renew_seconds: 50,
        rebind_seconds: 87,
    };
    let stage = selector % 6;
    let mut now = t0;
    let mut last = if stage == 2 {
        last_sent(&machine.start(now, Some(&remembered)))
    } else {
        last_sent(&machine.start(now, None))
    };
    let feed = |machine: &mut DhcpMachine, last: &mut Option<Message>, kind, now| {
        if let Some(request) = last.as_ref() {
            let actions = machine.on_packet(now, &reply(request, kind));
            if let Some(sent) = last_sent(&actions) {
                *last = Some(sent);
            }
        }
    };
    if stage >= 1 && stage != 2 {
        feed(&mut machine, &mut last, MessageType::Offer, now);
    }
    if stage >= 3 {
        feed(&mut machine, &mut last, MessageType::Ack, now);
        assert_eq!(machine.state(), DhcpState::Bound);
    }
    for _ in 3..stage {
        now += Duration::from_secs(60);
        if let Ok(actions) = machine.on_timer(now)
            && let Some(sent) = last_sent(&actions)
        {
            last = Some(sent);
        }
    }

    let mut packet = payload.to_vec();
    if selector & 0x40 != 0
        && let Some(request) = &last
        && packet.len() >= 34
    {
        packet[2] = 6;
        packet[4..8].copy_from_slice(&request.xid().to_be_bytes());
        packet[28..34].copy_from_slice(&MAC);
        if selector & 0x20 != 0 && packet.len() >= 240 {
            packet[236..240].copy_from_slice(&dhcproto::v4::MAGIC);
        }
    }

    let state = machine.state();
    let deadline = machine.next_deadline();
    let ignored = machine.ignored_total();
    let actions = machine.on_packet(now, &packet);
    if let [DhcpAction::Event(DhcpEvent::PacketIgnored { total, .. })] = actions.as_slice() {
        assert_eq!(*total, ignored + 1);
        assert_eq!(machine.state(), state);
        assert_eq!(machine.next_deadline(), deadline);
    } else {
        assert_eq!(machine.ignored_total(), ignored);
    }
    if let Some(next) = machine.next_deadline() {
        let _ = machine.on_timer(next);
    }
    let _ = machine.release(now);
});
