//! The async client (feature `async`), for the web server, which runs on tokio. It has the
//! blocking [`Client`](crate::Client)'s methods, written from the same table.
//!
//! It sets no timeouts of its own: wrap a call in `tokio::time::timeout` where one is
//! wanted, and drop the client if it fires, since the connection is then out of step.

use std::path::{Path, PathBuf};

use tokio::net::UnixStream;

use crate::call::{
    Call, ClientError, DEFAULT_CLIENT_NAME, answered, checked, closed_by_server, for_each_call,
    welcomed,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Hello, Reply, Request, Response, Welcome, read_message_async, write_message_async};

/// A connection to the host daemon over tokio, after the handshake. One request at a time.
#[derive(Debug)]
pub struct AsyncClient {
    stream: UnixStream,
    path: PathBuf,
    welcome: Welcome,
}

impl AsyncClient {
    /// Connects to the socket at `path` and shakes hands as [`DEFAULT_CLIENT_NAME`].
    pub async fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        Self::connect_as(path, DEFAULT_CLIENT_NAME).await
    }

    /// The same, naming the client `client` in the hello (e.g. `mfv-web 0.1.0`).
    pub async fn connect_as(path: impl AsRef<Path>, client: &str) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_owned(),
                source,
            })?;
        Self::handshake(stream, path, client).await
    }

    /// Shakes hands on a stream that is already connected; `path` names it in errors.
    pub async fn handshake(
        mut stream: UnixStream,
        path: &Path,
        client: &str,
    ) -> Result<Self, ClientError> {
        let reply = exchange(&mut stream, path, &Hello::new(client)).await?;
        let welcome = welcomed(reply, path)?;
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

    /// Sends `request` after [`Request::validate`] and returns the server's response,
    /// whatever its type.
    pub async fn request(&mut self, request: &Request) -> Result<Response, ClientError> {
        answered(exchange(&mut self.stream, &self.path, checked(request)?).await?)
    }

    async fn call<T>(&mut self, call: Call<T>) -> Result<T, ClientError> {
        let response = self.request(&call.request).await?;
        call.value(response, &self.path)
    }
}

/// Sends `message` on `stream`, the socket at `path`, and reads the reply.
async fn exchange<T: DeserializeOwned>(
    stream: &mut UnixStream,
    path: &Path,
    message: &(impl Serialize + Sync),
) -> Result<Reply<T>, ClientError> {
    let frame_error = |error| ClientError::frame(path, error);
    if let Err(error) = write_message_async(stream, message).await {
        if closed_by_server(&error) {
            if let Ok(reply) = read_message_async(stream).await {
                return Ok(reply);
            }
        }
        return Err(frame_error(error));
    }
    read_message_async(stream).await.map_err(frame_error)
}

/// Writes the async client's typed methods from [`for_each_call!`].
macro_rules! async_methods {
    ($(
        $(#[$doc:meta])*
        $name:ident($($arg:ident: $ty:ty),*) -> $out:ty = $request:expr, $reply:pat => $value:expr;
    )*) => {
        impl AsyncClient {
            $(
                $(#[$doc])*
                pub async fn $name(&mut self, $($arg: $ty),*) -> Result<$out, ClientError> {
                    self.call(Call::new($request, |response| match response {
                        $reply => $value,
                        _ => None,
                    }))
                    .await
                }
            )*
        }
    };
}

for_each_call!(async_methods);
