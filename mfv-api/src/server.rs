//! The server's side of a connection, for the host daemon: the handshake, then a loop that
//! reads requests, validates them and writes each handler's answer.
//!
//! The daemon checks the peer's credentials before it calls these and gives each connection
//! a [`Handler`] that knows who the peer is. Keeping the loop here means the daemon, the tests
//! and the example all answer a request the same way: a frame that is not a valid request gets
//! an [`ErrorKind::InvalidRequest`] reply and the connection goes on, since the frame
//! boundaries are intact; a request that fails [`Request::validate`] never reaches the
//! handler.

use std::io::{Read, Write};

use crate::{
    ApiError, ErrorKind, FrameError, Hello, Reply, Request, Response, accept_hello, decode_message,
    read_frame, write_message,
};

/// Carries out requests that passed [`Request::validate`].
pub trait Handler {
    /// The response to `request`, or the error to send instead.
    fn handle(&mut self, request: Request) -> Result<Response, ApiError>;
}

impl<F: FnMut(Request) -> Result<Response, ApiError>> Handler for F {
    fn handle(&mut self, request: Request) -> Result<Response, ApiError> {
        self(request)
    }
}

/// A connection ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The client's hello was refused (it was told why).
    #[error("handshake refused")]
    Refused(#[source] ApiError),
    /// A frame could not be read or written.
    #[error("connection failed")]
    Frame(#[from] FrameError),
}

/// Reads the client's [`Hello`] and answers it as [`accept_hello`] decides, naming the server
/// `server`. Returns the hello when it was accepted.
pub fn server_handshake<S: Read + Write + ?Sized>(
    stream: &mut S,
    server: &str,
) -> Result<Hello, ServeError> {
    let hello: Hello = match decode_message(&read_frame(stream)?) {
        Ok(hello) => hello,
        Err(error) => {
            write_message(stream, &Reply::<()>::Error(unreadable("hello", &error)))?;
            return Err(error.into());
        }
    };
    match accept_hello(&hello, server) {
        Ok(welcome) => {
            write_message(stream, &Reply::Ok(welcome))?;
            Ok(hello)
        }
        Err(error) => {
            write_message(stream, &Reply::<()>::Error(error.clone()))?;
            Err(ServeError::Refused(error))
        }
    }
}

/// Answers requests with `handler` until the client closes the connection between two
/// frames, which ends it with `Ok`.
pub fn serve_requests<S: Read + Write + ?Sized, H: Handler + ?Sized>(
    stream: &mut S,
    handler: &mut H,
) -> Result<(), ServeError> {
    loop {
        let body = match read_frame(stream) {
            Ok(body) => body,
            Err(FrameError::Closed) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        let reply = decode_message::<Request>(&body)
            .map_err(|error| unreadable("request", &error))
            .and_then(|request| {
                request.validate()?;
                handler.handle(request)
            });
        write_message(stream, &Reply::from(reply))?;
    }
}

/// The error sent for a frame that is not a valid `what`, with serde's message.
fn unreadable(what: &str, error: &FrameError) -> ApiError {
    let detail = match error {
        FrameError::InvalidJson(source) => source.to_string(),
        other => other.to_string(),
    };
    ApiError::new(
        ErrorKind::InvalidRequest,
        format!("not a valid {what}: {detail}"),
    )
}
