//! Sending and receiving NTP packets: the [`SntpTransport`] trait and the UDP socket that
//! implements it.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use super::SntpError;

/// Sends the client's requests and receives the servers' replies.
pub trait SntpTransport: Send {
    /// Sends one request to `to`.
    fn send(
        &mut self,
        to: SocketAddr,
        packet: &[u8],
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// Waits for the next packet, copies it into `buffer` and returns its length and
    /// sender. Must be cancel-safe: the client drops this future when a timer fires first,
    /// and no packet may be lost by that.
    fn recv(
        &mut self,
        buffer: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;

    /// The address the requests leave from, for error messages.
    fn local_addr(&self) -> SocketAddr;
}

/// A UDP socket on an ephemeral port (chosen at random by the kernel) that reaches IPv4
/// and IPv6 servers: a dual-stack IPv6 socket, or an IPv4 one where the kernel has no IPv6.
/// Senders of received packets are given as IPv4 addresses where they are IPv4.
#[derive(Debug)]
pub struct UdpTransport {
    socket: tokio::net::UdpSocket,
    local: SocketAddr,
    dual_stack: bool,
}

impl UdpTransport {
    /// Opens the socket on every address, port 0. Must be called inside a tokio runtime.
    pub fn bind() -> Result<UdpTransport, SntpError> {
        match UdpTransport::bind_to(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)) {
            Ok(transport) => Ok(transport),
            Err(SntpError::Socket { source, .. })
                if source.raw_os_error() == Some(nix::libc::EAFNOSUPPORT) =>
            {
                UdpTransport::bind_to(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
            }
            Err(error) => Err(error),
        }
    }

    /// Opens the socket on `local` (an address of this host, or unspecified; port 0 for an
    /// ephemeral one). An unspecified IPv6 address also reaches IPv4 servers. Must be called
    /// inside a tokio runtime.
    pub fn bind_to(local: SocketAddr) -> Result<UdpTransport, SntpError> {
        let failed = |source| SntpError::Socket { local, source };
        let domain = Domain::for_address(local);
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(failed)?;
        let dual_stack = local.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        if dual_stack {
            socket.set_only_v6(false).map_err(failed)?;
        }
        socket.set_nonblocking(true).map_err(failed)?;
        socket.bind(&local.into()).map_err(failed)?;
        let socket = tokio::net::UdpSocket::from_std(socket.into()).map_err(failed)?;
        let local = socket.local_addr().map_err(failed)?;
        Ok(UdpTransport {
            socket,
            local,
            dual_stack,
        })
    }
}

impl SntpTransport for UdpTransport {
    async fn send(&mut self, to: SocketAddr, packet: &[u8]) -> io::Result<()> {
        let to = match to {
            // A dual-stack socket reaches IPv4 servers through IPv4-mapped addresses.
            SocketAddr::V4(v4) if self.dual_stack => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            other => other,
        };
        self.socket.send_to(packet, to).await.map(|_| ())
    }

    async fn recv(&mut self, buffer: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        // `UdpSocket::recv_from` is cancel-safe.
        let (length, from) = self.socket.recv_from(buffer).await?;
        Ok((
            length,
            SocketAddr::new(from.ip().to_canonical(), from.port()),
        ))
    }

    /// The socket's address, with the port the kernel chose.
    fn local_addr(&self) -> SocketAddr {
        self.local
    }
}
