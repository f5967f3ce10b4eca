//! The blocking client, for the `mfv` command and anything else without an async runtime.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::call::{
    Call, ClientError, DEFAULT_CLIENT_NAME, answered, checked, closed_by_server, for_each_call,
    welcomed,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    Hello, NetworkOutcome, Reply, Request, Response, Welcome, read_message, write_message,
};

/// How long a blocking client waits for a read or a write unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to the host daemon, after the handshake. One request at a time: each method
/// sends its request and waits for the reply.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    path: PathBuf,
    welcome: Welcome,
}

impl Client {
    /// Connects to the socket at `path` (usually [`DEFAULT_SOCKET_PATH`](crate::DEFAULT_SOCKET_PATH))
    /// and shakes hands as [`DEFAULT_CLIENT_NAME`], with [`DEFAULT_TIMEOUT`] for reads and
    /// writes.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        Self::connect_as(path, DEFAULT_CLIENT_NAME)
    }

    /// The same, naming the client `client` in the hello (e.g. `mfv 0.1.0`).
    pub fn connect_as(path: impl AsRef<Path>, client: &str) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_owned(),
            source,
        })?;
        Self::handshake(stream, path, client)
    }

    /// Shakes hands on a stream that is already connected, e.g. one end of
    /// [`UnixStream::pair`]; `path` names it in errors. Sets [`DEFAULT_TIMEOUT`].
    pub fn handshake(
        mut stream: UnixStream,
        path: &Path,
        client: &str,
    ) -> Result<Self, ClientError> {
        set_timeouts(&stream, path, Some(DEFAULT_TIMEOUT))?;
        let welcome = welcomed(exchange(&mut stream, path, &Hello::new(client))?, path)?;
        Ok(Self {
            stream,
            path: path.to_owned(),
            welcome,
        })
    }

    /// The server's welcome: its name and the protocol version.
    pub fn server(&self) -> &Welcome {
        &self.welcome
    }

    /// Sets how long a read or a write may wait; `None` waits forever. A timeout is a
    /// [`ClientError::Io`] and leaves the connection unusable.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        set_timeouts(&self.stream, &self.path, timeout)
    }

    /// Sends `request` after [`Request::validate`] and returns the server's response,
    /// whatever its type. The typed methods are usually handier.
    pub fn request(&mut self, request: &Request) -> Result<Response, ClientError> {
        answered(exchange(&mut self.stream, &self.path, checked(request)?)?)
    }

    fn call<T>(&mut self, call: Call<T>) -> Result<T, ClientError> {
        let response = self.request(&call.request)?;
        call.value(response, &self.path)
    }
}

/// A network change applied provisionally, as [`apply_network`] shows it to whoever decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionalChange {
    /// What the confirmation names.
    pub apply_id: u64,
    /// Seconds the host waits for the confirmation.
    pub confirm_within_secs: u32,
    /// What was changed, one line each.
    pub changes: Vec<String>,
}

/// Applies `network_toml` (a `[network]` section) provisionally through the host daemon at
/// `path`, shows the change to `keep`, and confirms it when `keep` says so, over a **new**
/// connection: the confirmation is sent only once the host could be reached again after the
/// change, so a change that cuts this client off is never confirmed and rolls back by itself.
///
/// Returns the apply's outcome when it was not applied (rolled back at once) or `keep` said
/// no (the host rolls it back at the deadline), else the confirmation's: `Confirmed`, or
/// `RolledBack` when the deadline passed first. A failed new connection is an error: the
/// change then rolls back at the deadline.
pub fn apply_network(
    path: &Path,
    client: &str,
    network_toml: &str,
    confirm_within_secs: u32,
    keep: impl FnOnce(&ProvisionalChange) -> bool,
) -> Result<NetworkOutcome, ClientError> {
    let applied =
        Client::connect_as(path, client)?.network_apply(network_toml, confirm_within_secs)?;
    let NetworkOutcome::Applied {
        apply_id,
        confirm_within_secs,
        changes,
    } = applied
    else {
        return Ok(applied);
    };
    let change = ProvisionalChange {
        apply_id,
        confirm_within_secs,
        changes,
    };
    if !keep(&change) {
        return Ok(NetworkOutcome::Applied {
            apply_id: change.apply_id,
            confirm_within_secs: change.confirm_within_secs,
            changes: change.changes,
        });
    }
    Client::connect_as(path, client)?.network_confirm(apply_id)
}

/// Sends `message` on `stream`, the socket at `path`, and reads the reply.
fn exchange<T: DeserializeOwned>(
    stream: &mut UnixStream,
    path: &Path,
    message: &impl Serialize,
) -> Result<Reply<T>, ClientError> {
    let frame_error = |error| ClientError::frame(path, error);
    if let Err(error) = write_message(stream, message) {
        if closed_by_server(&error) {
            if let Ok(reply) = read_message(stream) {
                return Ok(reply);
            }
        }
        return Err(frame_error(error));
    }
    read_message(stream).map_err(frame_error)
}

/// Sets the read and the write timeout of `stream`, the socket at `path`.
fn set_timeouts(
    stream: &UnixStream,
    path: &Path,
    timeout: Option<Duration>,
) -> Result<(), ClientError> {
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(|source| ClientError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Writes the blocking client's typed methods from [`for_each_call!`].
macro_rules! blocking_methods {
    ($(
        $(#[$doc:meta])*
        $name:ident($($arg:ident: $ty:ty),*) -> $out:ty = $request:expr, $reply:pat => $value:expr;
    )*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, $($arg: $ty),*) -> Result<$out, ClientError> {
                    self.call(Call::new($request, |response| match response {
                        $reply => $value,
                        _ => None,
                    }))
                }
            )*
        }
    };
}

for_each_call!(blocking_methods);
