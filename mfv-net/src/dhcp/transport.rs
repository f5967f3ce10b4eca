//! Sending and receiving DHCP packets: the [`DhcpTransport`] trait and the UDP socket that
//! implements it for a real interface.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

use super::{Destination, DhcpError};

/// The DHCP client port.
const CLIENT_PORT: u16 = 68;
/// The DHCP server port.
const SERVER_PORT: u16 = 67;

/// Sends and receives the client's packets on one interface.
pub trait DhcpTransport: Send {
    /// Sends one DHCP message to `to`, port 67.
    fn send(
        &mut self,
        to: Destination,
        packet: &[u8],
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// Waits for the next packet for the client and copies it into `buffer`, returning its
    /// length. Must be cancel-safe: the client drops this future when a timer fires first,
    /// and no packet may be lost by that.
    fn recv(&mut self, buffer: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send;
}

/// A UDP socket on port 68 bound to one interface (`SO_BINDTODEVICE`) with `SO_BROADCAST`.
///
/// It works before the interface has an address: requests go out from 0.0.0.0 to the
/// limited broadcast address, and the client asks servers to broadcast their replies until
/// it has its address (the BROADCAST flag of RFC 2131 section 4.1), which this socket
/// receives. Once bound, renewals are unicast both ways.
#[derive(Debug)]
pub struct UdpTransport {
    socket: tokio::net::UdpSocket,
}

impl UdpTransport {
    /// Opens the socket on `interface`. Must be called inside a tokio runtime, in the network
    /// namespace of the interface, with `CAP_NET_RAW` (for `SO_BINDTODEVICE`) and
    /// `CAP_NET_BIND_SERVICE`.
    pub fn bind(interface: &str) -> Result<UdpTransport, DhcpError> {
        let failed = |source| DhcpError::Transport {
            interface: interface.into(),
            action: "open the DHCP client socket (UDP port 68)",
            source,
        };
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(failed)?;
        socket.set_reuse_address(true).map_err(failed)?;
        socket.set_broadcast(true).map_err(failed)?;
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(failed)?;
        socket.set_nonblocking(true).map_err(failed)?;
        socket
            .bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT).into())
            .map_err(failed)?;
        let socket = tokio::net::UdpSocket::from_std(socket.into()).map_err(failed)?;
        Ok(UdpTransport { socket })
    }
}

impl DhcpTransport for UdpTransport {
    async fn send(&mut self, to: Destination, packet: &[u8]) -> io::Result<()> {
        let address = match to {
            Destination::Broadcast => Ipv4Addr::BROADCAST,
            Destination::Server(server) => server,
        };
        self.socket
            .send_to(packet, SocketAddrV4::new(address, SERVER_PORT))
            .await
            .map(|_| ())
    }

    async fn recv(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        // `UdpSocket::recv_from` is cancel-safe.
        self.socket
            .recv_from(buffer)
            .await
            .map(|(length, _)| length)
    }
}
