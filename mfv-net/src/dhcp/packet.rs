//! DHCPv4 messages on the wire: the requests the client sends and the checks every reply
//! passes before the client state machine looks at it.

use std::fmt;
use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, MAGIC, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};

/// Options the client asks every server for (option 55).
const REQUESTED_PARAMETERS: [OptionCode; 8] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::DomainName,
    OptionCode::InterfaceMtu,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
];

/// Largest DHCP message the client accepts (option 57), the minimum every client must take.
const MAX_MESSAGE_SIZE: u16 = 576;

/// Why a received packet was dropped without changing the client's state. Every dropped
/// packet is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// Not decodable as a DHCP message.
    Malformed,
    /// A BOOTREQUEST (another client's message), not a BOOTREPLY.
    NotReply,
    /// The hardware address is not this interface's.
    WrongHardwareAddress,
    /// The transaction id is not the one of the client's outstanding request.
    WrongTransaction,
    /// The client identifier option names another client.
    WrongClientIdentifier,
    /// No DHCP message type option (a plain BOOTP reply).
    NoMessageType,
    /// A message type the client does not expect in its current state.
    Unexpected,
    /// An OFFER, ACK or NAK without a server identifier.
    NoServerIdentifier,
    /// An ACK or NAK from a server other than the one the client is talking to.
    WrongServer,
    /// The offered address is not a usable unicast address.
    InvalidAddress,
    /// The subnet mask is not a contiguous mask.
    InvalidSubnetMask,
    /// An ACK without the lease time.
    NoLeaseTime,
}

impl IgnoreReason {
    /// Every reason, in a fixed order (the order of the counters).
    pub const ALL: [IgnoreReason; 12] = [
        IgnoreReason::Malformed,
        IgnoreReason::NotReply,
        IgnoreReason::WrongHardwareAddress,
        IgnoreReason::WrongTransaction,
        IgnoreReason::WrongClientIdentifier,
        IgnoreReason::NoMessageType,
        IgnoreReason::Unexpected,
        IgnoreReason::NoServerIdentifier,
        IgnoreReason::WrongServer,
        IgnoreReason::InvalidAddress,
        IgnoreReason::InvalidSubnetMask,
        IgnoreReason::NoLeaseTime,
    ];

    /// Position of this reason in [`IgnoreReason::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IgnoreReason::Malformed => "malformed packet",
            IgnoreReason::NotReply => "not a BOOTREPLY",
            IgnoreReason::WrongHardwareAddress => "another hardware address",
            IgnoreReason::WrongTransaction => "another transaction id",
            IgnoreReason::WrongClientIdentifier => "another client identifier",
            IgnoreReason::NoMessageType => "no DHCP message type",
            IgnoreReason::Unexpected => "message type not expected now",
            IgnoreReason::NoServerIdentifier => "no server identifier",
            IgnoreReason::WrongServer => "from another server",
            IgnoreReason::InvalidAddress => "offered address is not unicast",
            IgnoreReason::InvalidSubnetMask => "subnet mask is not contiguous",
            IgnoreReason::NoLeaseTime => "ACK without lease time",
        })
    }
}

/// The kind of request and the fields that differ between them (RFC 2131 table 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// DHCPDISCOVER, broadcast.
    Discover,
    /// DHCPREQUEST in SELECTING: server identifier and requested address.
    Select { server: Ipv4Addr, address: Ipv4Addr },
    /// DHCPREQUEST in INIT-REBOOT: requested address only.
    Reboot { address: Ipv4Addr },
    /// DHCPREQUEST in RENEWING or REBINDING: ciaddr only.
    Extend { address: Ipv4Addr },
    /// DHCPRELEASE: ciaddr and server identifier.
    Release { server: Ipv4Addr, address: Ipv4Addr },
}

/// Who the client is on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientIdentity {
    pub mac: [u8; 6],
    pub client_id: Vec<u8>,
    pub hostname: Option<String>,
}

/// Encodes one client message. Replies to DISCOVER and to REQUESTs sent before the client
/// has an address are asked to be broadcast (flags bit), so an ordinary UDP socket receives
/// them.
pub(crate) fn encode_request(
    identity: &ClientIdentity,
    xid: u32,
    secs: u16,
    kind: RequestKind,
) -> Vec<u8> {
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let ciaddr = match kind {
        RequestKind::Extend { address } | RequestKind::Release { address, .. } => address,
        _ => unspecified,
    };
    let mut message = Message::new_with_id(
        xid,
        ciaddr,
        unspecified,
        unspecified,
        unspecified,
        &identity.mac,
    );
    message.set_secs(secs);
    if matches!(
        kind,
        RequestKind::Discover | RequestKind::Select { .. } | RequestKind::Reboot { .. }
    ) {
        message.set_flags(Flags::default().set_broadcast());
    }
    let message_type = match kind {
        RequestKind::Discover => MessageType::Discover,
        RequestKind::Release { .. } => MessageType::Release,
        _ => MessageType::Request,
    };
    let options = message.opts_mut();
    options.insert(DhcpOption::MessageType(message_type));
    options.insert(DhcpOption::ClientIdentifier(identity.client_id.clone()));
    match kind {
        RequestKind::Select { server, address } => {
            options.insert(DhcpOption::ServerIdentifier(server));
            options.insert(DhcpOption::RequestedIpAddress(address));
        }
        RequestKind::Reboot { address } => {
            options.insert(DhcpOption::RequestedIpAddress(address));
        }
        RequestKind::Release { server, .. } => {
            options.insert(DhcpOption::ServerIdentifier(server));
        }
        RequestKind::Discover | RequestKind::Extend { .. } => {}
    }
    if message_type != MessageType::Release {
        if let Some(hostname) = &identity.hostname {
            options.insert(DhcpOption::Hostname(hostname.clone()));
        }
        options.insert(DhcpOption::ParameterRequestList(
            REQUESTED_PARAMETERS.to_vec(),
        ));
        options.insert(DhcpOption::MaxMessageSize(MAX_MESSAGE_SIZE));
    }
    // Encoding writes into a growing Vec: it fails only for options longer than 255 bytes
    // that dhcproto cannot split, and the client's options are all short (a hostname is
    // checked against 63 bytes in the configuration). An empty packet would only be dropped
    // by the server, so a failure cannot corrupt anything.
    message.to_vec().unwrap_or_default()
}

/// A reply that passed the checks that do not depend on the client's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub kind: ReplyKind,
    /// The server identifier option, when present.
    pub server: Option<Ipv4Addr>,
    pub message: Message,
}

/// The reply message types the client acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    Offer,
    Ack,
    Nak,
}

/// Decodes `bytes` and checks the fields every reply to this client must have.
pub(crate) fn decode_reply(
    bytes: &[u8],
    identity: &ClientIdentity,
    xid: u32,
) -> Result<Reply, IgnoreReason> {
    // The fixed BOOTP header is 236 bytes; the DHCP magic cookie follows it.
    if bytes.get(236..240) != Some(&MAGIC[..]) {
        return Err(IgnoreReason::Malformed);
    }
    let message = Message::from_bytes(bytes).map_err(|_| IgnoreReason::Malformed)?;
    if message.opcode() != Opcode::BootReply {
        return Err(IgnoreReason::NotReply);
    }
    // `Message::chaddr` slices by the hlen field, which panics past 16: check it first.
    if usize::from(message.hlen()) != identity.mac.len() || message.chaddr() != identity.mac {
        return Err(IgnoreReason::WrongHardwareAddress);
    }
    if message.xid() != xid {
        return Err(IgnoreReason::WrongTransaction);
    }
    if let Some(DhcpOption::ClientIdentifier(id)) = message.opts().get(OptionCode::ClientIdentifier)
        && *id != identity.client_id
    {
        return Err(IgnoreReason::WrongClientIdentifier);
    }
    let kind = match message.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(MessageType::Offer)) => ReplyKind::Offer,
        Some(DhcpOption::MessageType(MessageType::Ack)) => ReplyKind::Ack,
        Some(DhcpOption::MessageType(MessageType::Nak)) => ReplyKind::Nak,
        Some(_) => return Err(IgnoreReason::Unexpected),
        None => return Err(IgnoreReason::NoMessageType),
    };
    let server = match message.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(server)) => Some(*server),
        _ => None,
    };
    Ok(Reply {
        kind,
        server,
        message,
    })
}

/// Whether `address` can be an interface's own unicast address.
pub(crate) fn is_usable_unicast(address: Ipv4Addr) -> bool {
    !(address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_loopback()
        || address.octets()[0] == 0
        || address.octets()[0] >= 240)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn identity() -> ClientIdentity {
        ClientIdentity {
            mac: [0x02, 0, 0, 0, 0, 0x01],
            client_id: vec![1, 0x02, 0, 0, 0, 0, 0x01],
            hostname: Some("host1".into()),
        }
    }

    #[test]
    fn discover_asks_for_a_broadcast_reply_and_the_parameters() {
        let bytes = encode_request(&identity(), 7, 3, RequestKind::Discover);
        let message = Message::from_bytes(&bytes).unwrap();
        assert_eq!(message.opcode(), Opcode::BootRequest);
        assert_eq!(message.xid(), 7);
        assert_eq!(message.secs(), 3);
        assert!(message.flags().broadcast());
        assert_eq!(message.chaddr(), identity().mac);
        assert_eq!(message.opts().msg_type(), Some(MessageType::Discover));
        assert_eq!(
            message.opts().get(OptionCode::Hostname),
            Some(&DhcpOption::Hostname("host1".into()))
        );
        assert_eq!(
            message.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(identity().client_id))
        );
        assert!(
            message
                .opts()
                .get(OptionCode::ParameterRequestList)
                .is_some()
        );
    }

    #[test]
    fn each_request_kind_carries_its_fields() {
        let server: Ipv4Addr = "192.0.2.1".parse().unwrap();
        let address: Ipv4Addr = "192.0.2.50".parse().unwrap();
        let decode = |kind| Message::from_bytes(&encode_request(&identity(), 1, 0, kind)).unwrap();

        let select = decode(RequestKind::Select { server, address });
        assert_eq!(select.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            select.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(server))
        );
        assert_eq!(
            select.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(address))
        );

        let reboot = decode(RequestKind::Reboot { address });
        assert!(reboot.flags().broadcast());
        assert!(reboot.opts().get(OptionCode::ServerIdentifier).is_none());
        assert_eq!(reboot.opts().msg_type(), Some(MessageType::Request));

        let extend = decode(RequestKind::Extend { address });
        assert_eq!(extend.ciaddr(), address);
        assert!(!extend.flags().broadcast());
        assert!(extend.opts().get(OptionCode::RequestedIpAddress).is_none());
        assert!(extend.opts().get(OptionCode::ServerIdentifier).is_none());

        let release = decode(RequestKind::Release { server, address });
        assert_eq!(release.opts().msg_type(), Some(MessageType::Release));
        assert_eq!(release.ciaddr(), address);
        assert!(release.opts().get(OptionCode::Hostname).is_none());
    }

    /// A reply to `identity()` with transaction 9; `edit` changes it before encoding.
    pub(crate) fn reply_bytes(kind: MessageType, edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut message = Message::new_with_id(
            9,
            Ipv4Addr::UNSPECIFIED,
            "192.0.2.50".parse().unwrap(),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &identity().mac,
        );
        message.set_opcode(Opcode::BootReply);
        message.opts_mut().insert(DhcpOption::MessageType(kind));
        message
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier("192.0.2.1".parse().unwrap()));
        edit(&mut message);
        message.to_vec().unwrap()
    }

    #[test]
    fn replies_failing_the_common_checks_are_ignored_with_their_reason() {
        let check = |bytes: Vec<u8>, reason| {
            assert_eq!(decode_reply(&bytes, &identity(), 9).unwrap_err(), reason);
        };
        check(vec![], IgnoreReason::Malformed);
        check(vec![2; 100], IgnoreReason::Malformed);
        let mut no_cookie = reply_bytes(MessageType::Offer, |_| {});
        no_cookie[236] = 0;
        check(no_cookie, IgnoreReason::Malformed);
        let truncated = reply_bytes(MessageType::Offer, |_| {});
        check(truncated[..239].to_vec(), IgnoreReason::Malformed);
        check(
            reply_bytes(MessageType::Offer, |m| {
                m.set_opcode(Opcode::BootRequest);
            }),
            IgnoreReason::NotReply,
        );
        check(
            reply_bytes(MessageType::Offer, |m| {
                m.set_chaddr(&[2, 0, 0, 0, 0, 2]);
            }),
            IgnoreReason::WrongHardwareAddress,
        );
        let mut long_hlen = reply_bytes(MessageType::Offer, |_| {});
        long_hlen[2] = 200;
        check(long_hlen, IgnoreReason::WrongHardwareAddress);
        check(
            reply_bytes(MessageType::Offer, |m| {
                m.set_xid(10);
            }),
            IgnoreReason::WrongTransaction,
        );
        check(
            reply_bytes(MessageType::Offer, |m| {
                m.opts_mut()
                    .insert(DhcpOption::ClientIdentifier(vec![1, 2, 3]));
            }),
            IgnoreReason::WrongClientIdentifier,
        );
        check(
            reply_bytes(MessageType::Offer, |m| {
                m.opts_mut().remove(OptionCode::MessageType);
            }),
            IgnoreReason::NoMessageType,
        );
        check(
            reply_bytes(MessageType::Discover, |_| {}),
            IgnoreReason::Unexpected,
        );
    }

    #[test]
    fn a_good_reply_is_decoded() {
        let reply = decode_reply(&reply_bytes(MessageType::Ack, |_| {}), &identity(), 9).unwrap();
        assert_eq!(reply.kind, ReplyKind::Ack);
        assert_eq!(reply.server, Some("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn usable_unicast_addresses() {
        for bad in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "127.0.0.1",
            "0.1.2.3",
            "240.0.0.1",
        ] {
            assert!(!is_usable_unicast(bad.parse().unwrap()), "{bad}");
        }
        assert!(is_usable_unicast("192.0.2.50".parse().unwrap()));
    }

    #[test]
    fn reasons_read_as_words_and_index_in_order() {
        for (index, reason) in IgnoreReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), index);
            assert!(!reason.to_string().is_empty());
        }
        assert_eq!(
            IgnoreReason::WrongTransaction.to_string(),
            "another transaction id"
        );
    }
}
