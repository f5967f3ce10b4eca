//! The browser consoles' websockets from a test's side: the TLS stream they run over, and
//! reading a console until the guest has said something.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

/// A console's websocket runs over the test client's TLS stream.
pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// What the console sends until its bytes contain `token`, within `timeout`.
pub fn read_until(socket: &mut WebSocket<Tls>, token: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains(token) {
        assert!(
            Instant::now() < deadline,
            "no {token:?} within {timeout:?}: {:?}",
            String::from_utf8_lossy(&received)
        );
        match socket.read() {
            Ok(Message::Binary(bytes)) => received.extend_from_slice(&bytes),
            Ok(Message::Close(frame)) => panic!("closed before {token:?}: {frame:?}"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(error))
                if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => panic!("waiting for {token:?}: {error}"),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}
