//! The protocol between the host daemon and its clients: typed requests and replies, their
//! framing on the socket, a versioned handshake, errors, and a blocking and an async client.
//!
//! The host daemon runs as root, a process of its own that PID 1 (mfv-init) starts and
//! restarts, and listens on
//! [`DEFAULT_SOCKET_PATH`]; it does the privileged work (network changes, saving the
//! configuration, formatting a config volume, restarting services, rebooting) for the
//! unprivileged web server and for the `mfv` command. This crate is only the language they
//! speak, so that both sides are checked by the compiler against one definition.
//!
//! # What this crate never does
//!
//! It never does anything privileged and never depends on the system crates (mfv-probe,
//! mfv-config, mfv-net, nix, libblkid, libvirt): the web server links it and must not pull
//! them in. Its own small types say what the daemon reports (see [`HostStatus`]); the
//! hardware inventory travels as JSON (see [`Response::Inventory`]). tokio comes in only with
//! the `async` feature.
//!
//! # On the wire
//!
//! Each message is a frame: a 4-byte big-endian length, then that much JSON
//! ([`MAX_FRAME_LEN`] at most; [`read_message`], [`write_message`]). The client opens with a [`Hello`]
//! naming [`PROTOCOL_VERSION`]; the server answers `{"ok": WELCOME}` or `{"error": ...}` of
//! kind `unsupported_protocol` ([`accept_hello`]). Then each [`Request`] frame gets one
//! [`Reply`] frame: `{"ok": RESPONSE}` or `{"error": API_ERROR}` ([`ApiError`]).
//!
//! ```
//! use mfv_api::{ErrorKind, Hello, PROTOCOL_VERSION, Request, VolumeFs, accept_hello};
//!
//! let request = Request::ServiceRestart { name: "mfv-web".into() };
//! assert_eq!(
//!     serde_json::to_string(&request)?,
//!     r#"{"type":"service_restart","name":"mfv-web"}"#
//! );
//!
//! // A format request must name its device twice; it is refused before it is sent.
//! let format = Request::FormatConfigVolume {
//!     device: "/dev/sdb1".into(),
//!     fs: VolumeFs::Ext4,
//!     confirm: "/dev/sda1".into(),
//! };
//! assert_eq!(format.validate().unwrap_err().field.as_deref(), Some("confirm"));
//!
//! let mut hello = Hello::new("mfv 0.1.0");
//! assert_eq!(accept_hello(&hello, "mfv-init")?.protocol, PROTOCOL_VERSION);
//! hello.protocol = PROTOCOL_VERSION + 1;
//! assert_eq!(
//!     accept_hello(&hello, "mfv-init").unwrap_err().kind,
//!     ErrorKind::UnsupportedProtocol
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Clients
//!
//! [`Client`] (blocking, with read and write timeouts) and `AsyncClient` (feature `async`)
//! connect, shake hands and have one method per request, e.g. [`Client::host_status`] or
//! [`Client::config_save`], each returning the typed value of the expected response or a
//! [`ClientError`]. The server side reuses [`accept_hello`] and [`Request::validate`], or the
//! whole loop in [`server_handshake`] and [`serve_requests`]. `examples/host_status.rs` runs a
//! tiny server and queries it.
#![warn(missing_docs)]

#[cfg(feature = "async")]
mod async_client;
mod call;
mod client;
mod config;
mod error;
mod fingerprint;
mod frame;
mod handshake;
mod host;
mod logs;
mod message;
mod network;
mod pool;
mod server;

#[cfg(test)]
mod tests;

#[cfg(feature = "async")]
pub use async_client::AsyncClient;
pub use call::{ClientError, DEFAULT_CLIENT_NAME};
pub use client::{Client, DEFAULT_TIMEOUT, ProvisionalChange, apply_network};
pub use config::{
    ConfigDocument, ConfigIssue, FormattedVolume, Secret, SetupInUse, SetupVolume, VolumeChoice,
    VolumeContents, VolumeFs, check_format_confirmation,
};
pub use error::{ApiError, ErrorKind};
pub use fingerprint::{Fingerprint, InvalidFingerprint};
pub use frame::{
    FrameError, MAX_FRAME_LEN, decode_message, encode_frame, read_frame, read_message,
    write_message,
};
#[cfg(feature = "async")]
pub use frame::{read_frame_async, read_message_async, write_message_async};
pub use handshake::{Hello, PROTOCOL_VERSION, Welcome, accept_hello};
pub use host::{
    BootPhase, BootReport, ConfigOrigin, ConfigProvenance, ExitStatus, HostStatus, ServiceState,
    ServiceStatus, StoreKind, Virtualization,
};
pub use logs::{LogLine, LogSource, MAX_LOG_LINES};
pub use message::{
    MAX_SETUP_FILE_LEN, MAX_SETUP_TOKEN_LEN, Reply, Request, Response, SETUP_FILE_KEYS,
    check_setup_files, check_setup_token,
};
pub use network::{MAX_CONFIRM_SECS, NetworkOutcome};
pub use pool::{PoolKind, PoolSpec};
pub use server::{Handler, ServeError, serve_requests, server_handshake};

/// Where the host daemon listens.
pub const DEFAULT_SOCKET_PATH: &str = "/run/mfv/host.sock";
