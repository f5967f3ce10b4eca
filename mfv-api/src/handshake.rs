//! The first exchange on a connection: the client says which protocol version it speaks and
//! the server accepts it or refuses it, so that an old client and a new daemon (or the other
//! way round) fail with a clear error instead of misreading each other's messages.

use serde::{Deserialize, Serialize};

use crate::{ApiError, ErrorKind};

/// The protocol version this crate speaks. It changes when a message changes incompatibly;
/// new optional fields, requests or error kinds do not change it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The client's first frame: `{"protocol": 1, "client": "mfv 0.1.0"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hello {
    /// The protocol version the client speaks.
    pub protocol: u32,
    /// Who the client is, for the server's log (e.g. `mfv-web 0.1.0`).
    pub client: String,
}

impl Hello {
    /// A hello for [`PROTOCOL_VERSION`] from `client`.
    pub fn new(client: impl Into<String>) -> Self {
        Self {
            protocol: PROTOCOL_VERSION,
            client: client.into(),
        }
    }
}

/// The server's answer to an accepted [`Hello`]: `{"protocol": 1, "server": "mfv-init 0.1.0"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Welcome {
    /// The protocol version the connection speaks from now on.
    pub protocol: u32,
    /// Who the server is.
    pub server: String,
}

/// The server's decision on a [`Hello`]: a [`Welcome`] naming `server` when the client speaks
/// [`PROTOCOL_VERSION`], otherwise an [`ErrorKind::UnsupportedProtocol`] error naming both
/// versions.
pub fn accept_hello(hello: &Hello, server: &str) -> Result<Welcome, ApiError> {
    if hello.protocol != PROTOCOL_VERSION {
        return Err(ApiError::new(
            ErrorKind::UnsupportedProtocol,
            format!(
                "the client speaks protocol {}, this server speaks protocol {PROTOCOL_VERSION}",
                hello.protocol
            ),
        )
        .with_field("protocol"));
    }
    Ok(Welcome {
        protocol: PROTOCOL_VERSION,
        server: server.to_owned(),
    })
}
