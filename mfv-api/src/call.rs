//! What both clients share: the handshake's checks, the client errors, and the table of
//! typed calls, each a request with the response variant that answers it.
//!
//! The table is written once, in [`for_each_call!`]; the blocking and the async client each
//! expand it with their own method shape, so a request and the reply it expects are never
//! paired in two places.

use std::io;
use std::path::{Path, PathBuf};

use crate::{ApiError, FrameError, PROTOCOL_VERSION, Reply, Request, Response, Welcome};

/// The name a client gives in its [`Hello`](crate::Hello) unless told another.
pub const DEFAULT_CLIENT_NAME: &str = concat!("mfv-api ", env!("CARGO_PKG_VERSION"));

/// A request to the host daemon failed.
///
/// After [`ClientError::Io`] or [`ClientError::Protocol`] the connection is out of step and
/// must be dropped; after [`ClientError::Api`] or [`ClientError::InvalidRequest`] it can be
/// used for the next request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket could not be connected to.
    #[error("cannot connect to {}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading, writing or setting up the socket failed; a timeout is one of these.
    #[error("I/O on {} failed", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The server sent something that is not a frame of the expected message, or closed the
    /// connection.
    #[error("protocol error on {}", path.display())]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: FrameError,
    },
    /// The server answered with a response that does not answer the request.
    #[error("{} answered {request} with {got}", path.display())]
    UnexpectedReply {
        /// The socket.
        path: PathBuf,
        /// The request's name.
        request: &'static str,
        /// The response's name.
        got: &'static str,
    },
    /// The server welcomed the client with a protocol version other than its own.
    #[error("{} speaks protocol {server}, this client {PROTOCOL_VERSION}", path.display())]
    ProtocolMismatch {
        /// The socket.
        path: PathBuf,
        /// The server's version.
        server: u32,
    },
    /// The request failed [`Request::validate`] and was not sent.
    #[error("request not sent")]
    InvalidRequest(#[source] ApiError),
    /// The server refused the request or failed to carry it out.
    #[error(transparent)]
    Api(ApiError),
}

impl ClientError {
    /// The error the server sent, or the validation error of a request that was not sent.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(error) | ClientError::InvalidRequest(error) => Some(error),
            _ => None,
        }
    }

    /// A framing error on `path`: I/O errors become [`ClientError::Io`], the rest
    /// [`ClientError::Protocol`].
    pub(crate) fn frame(path: &Path, error: FrameError) -> Self {
        match error {
            FrameError::Io(source) => ClientError::Io {
                path: path.to_owned(),
                source,
            },
            source => ClientError::Protocol {
                path: path.to_owned(),
                source,
            },
        }
    }
}

/// Whether a failed write means the server had already closed the connection. A server that
/// refuses a peer by its credentials answers and closes before reading anything, so the
/// client's write fails while the refusal waits to be read: the client reads it and reports
/// it instead of a broken pipe.
pub(crate) fn closed_by_server(error: &FrameError) -> bool {
    matches!(
        error,
        FrameError::Io(source)
            if matches!(source.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
    )
}

/// Checks the server's answer to the hello.
pub(crate) fn welcomed(reply: Reply<Welcome>, path: &Path) -> Result<Welcome, ClientError> {
    let welcome = Result::from(reply).map_err(ClientError::Api)?;
    if welcome.protocol != PROTOCOL_VERSION {
        return Err(ClientError::ProtocolMismatch {
            path: path.to_owned(),
            server: welcome.protocol,
        });
    }
    Ok(welcome)
}

/// Checks a request before it is sent.
pub(crate) fn checked(request: &Request) -> Result<&Request, ClientError> {
    request.validate().map_err(ClientError::InvalidRequest)?;
    Ok(request)
}

/// Unpacks the server's answer to a request.
pub(crate) fn answered(reply: Reply<Response>) -> Result<Response, ClientError> {
    Result::from(reply).map_err(ClientError::Api)
}

/// A typed call: the request and how to find the expected value in its response.
#[derive(Debug)]
pub(crate) struct Call<T> {
    /// What is sent.
    pub(crate) request: Request,
    /// The value in the response that answers the request; `None` for any other response.
    extract: fn(Response) -> Option<T>,
}

impl<T> Call<T> {
    /// A call sending `request` and taking its answer out with `extract`.
    pub(crate) fn new(request: Request, extract: fn(Response) -> Option<T>) -> Self {
        Self { request, extract }
    }

    /// The value `response` carries, or [`ClientError::UnexpectedReply`].
    pub(crate) fn value(&self, response: Response, path: &Path) -> Result<T, ClientError> {
        let got = response.name();
        (self.extract)(response).ok_or_else(|| ClientError::UnexpectedReply {
            path: path.to_owned(),
            request: self.request.name(),
            got,
        })
    }
}

/// The one item of `items`; `None` when there are none or several (a reply to a request for
/// one service by name holds exactly one).
pub(crate) fn only<T>(mut items: Vec<T>) -> Option<T> {
    let item = items.pop();
    items.is_empty().then_some(item).flatten()
}

/// Every typed call, as `NAME(ARGS) -> OUTPUT = REQUEST, RESPONSE_PATTERN => Option<OUTPUT>;`
/// with its doc comment, handed to the macro `$methods`, which writes one client method per
/// entry.
macro_rules! for_each_call {
    ($methods:ident) => {
        $methods! {
            /// Uptime, boot report, services, KVM or TCG.
            host_status() -> $crate::HostStatus = $crate::Request::HostStatus,
                $crate::Response::HostStatus(status) => Some(status);
            /// The hardware inventory: mfv-probe's `Inventory` as JSON.
            inventory() -> serde_json::Value = $crate::Request::Inventory,
                $crate::Response::Inventory { inventory } => Some(inventory);
            /// Applies `network_toml` (a configuration's `[network]` section) provisionally:
            /// the host rolls it back unless [`network_confirm`](Self::network_confirm) is
            /// called within `confirm_within_secs` (1 to
            /// [`MAX_CONFIRM_SECS`](crate::MAX_CONFIRM_SECS)).
            network_apply(network_toml: &str, confirm_within_secs: u32) -> $crate::NetworkOutcome =
                $crate::Request::NetworkApply {
                    network_toml: network_toml.to_owned(),
                    confirm_within_secs,
                },
                $crate::Response::Network(outcome) => Some(outcome);
            /// Keeps the network change `apply_id`; the outcome is
            /// [`RolledBack`](crate::NetworkOutcome::RolledBack) if its deadline passed.
            network_confirm(apply_id: u64) -> $crate::NetworkOutcome =
                $crate::Request::NetworkConfirm { apply_id },
                $crate::Response::Network(outcome) => Some(outcome);
            /// The configuration in use, with its generation and origin.
            config_get() -> $crate::ConfigDocument = $crate::Request::ConfigGet,
                $crate::Response::Config(document) => Some(document);
            /// Every problem in the configuration `text`; empty when it is valid.
            config_validate(text: &str) -> Vec<$crate::ConfigIssue> =
                $crate::Request::ConfigValidate { text: text.to_owned() },
                $crate::Response::ConfigValidation { errors } => Some(errors);
            /// Checks that the user backend of the configuration `config_text` can be reached
            /// and used, saving nothing; the backend's name and what was checked.
            auth_test(config_text: &str) -> (String, String) =
                $crate::Request::AuthTest {
                    config_text: config_text.to_owned(),
                    files: std::collections::BTreeMap::new(),
                },
                $crate::Response::AuthTested { backend, message } => Some((backend, message));
            /// Saves `text` as the new current generation and returns its number.
            /// `base_generation` is the generation the text was based on; if another save
            /// came in between the error kind is
            /// [`StaleGeneration`](crate::ErrorKind::StaleGeneration).
            config_save(text: &str, base_generation: Option<u64>) -> u64 =
                $crate::Request::ConfigSave {
                    text: text.to_owned(),
                    base_generation,
                },
                $crate::Response::ConfigSaved { generation } => Some(generation);
            /// Erases `device` and makes it a config volume of `fs`. `confirm` must repeat
            /// the device path exactly; the request is not sent otherwise.
            format_config_volume(device: &str, fs: $crate::VolumeFs, confirm: &str)
                -> $crate::FormattedVolume =
                $crate::Request::FormatConfigVolume {
                    device: device.to_owned(),
                    fs,
                    confirm: confirm.to_owned(),
                },
                $crate::Response::VolumeFormatted(volume) => Some(volume);
            /// Every service's state.
            services() -> Vec<$crate::ServiceStatus> =
                $crate::Request::ServiceStatus { name: None },
                $crate::Response::Services { services } => Some(services);
            /// One service's state.
            service(name: &str) -> $crate::ServiceStatus =
                $crate::Request::ServiceStatus { name: Some(name.to_owned()) },
                $crate::Response::Services { services } => $crate::call::only(services);
            /// Restarts a service and returns its state right after.
            service_restart(name: &str) -> $crate::ServiceStatus =
                $crate::Request::ServiceRestart { name: name.to_owned() },
                $crate::Response::ServiceRestarted { service } => Some(service);
            /// The last `limit` (1 to [`MAX_LOG_LINES`](crate::MAX_LOG_LINES)) log lines of
            /// `source`, oldest first.
            logs(source: $crate::LogSource, limit: u32) -> Vec<$crate::LogLine> =
                $crate::Request::Logs { source, limit },
                $crate::Response::Logs { lines } => Some(lines);
            /// Reboots the host; returns once the host accepted.
            reboot() -> () = $crate::Request::Reboot, $crate::Response::Accepted => Some(());
            /// Powers the host off; returns once the host accepted.
            power_off() -> () = $crate::Request::PowerOff, $crate::Response::Accepted => Some(());
            /// Exchanges the console's one-time setup `token` for the right to set the host
            /// up; only the first claim of the token succeeds.
            setup_claim(token: &str) -> () =
                $crate::Request::SetupClaim { token: token.to_owned() },
                $crate::Response::Accepted => Some(());
            /// The disks and partitions first-boot setup can put the configuration on.
            setup_volumes() -> Vec<$crate::VolumeChoice> = $crate::Request::SetupVolumes,
                $crate::Response::SetupVolumes { volumes } => Some(volumes);
            /// First-boot setup's save: `config_text` with `admin` and `password` as the first
            /// administrator, on `volume`; the device, the generation, whether the volume
            /// was made and when the host runs with it.
            setup_save(
                config_text: &str,
                volume: $crate::SetupVolume,
                admin: &str,
                password: &str
            ) -> (String, u64, bool, $crate::SetupInUse) =
                $crate::Request::SetupSave {
                    config_text: config_text.to_owned(),
                    volume,
                    admin: admin.to_owned(),
                    password: $crate::Secret::new(password),
                    files: std::collections::BTreeMap::new(),
                },
                $crate::Response::SetupSaved {
                    device,
                    generation,
                    formatted,
                    in_use,
                } => Some((device, generation, formatted, in_use));
        }
    };
}

pub(crate) use for_each_call;
