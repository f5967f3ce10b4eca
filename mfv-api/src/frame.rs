//! Framing: each message is a 4-byte big-endian length followed by that many bytes of JSON.
//!
//! A length prefix lets a reader know where a message ends without scanning JSON, and tell a
//! peer that closed the connection between two messages (a clean end, [`FrameError::Closed`])
//! from one that vanished inside a message ([`FrameError::Truncated`]). A length above
//! [`MAX_FRAME_LEN`] is refused as soon as the prefix is read, before anything is allocated
//! for it, so a broken or hostile peer cannot make the reader reserve gigabytes; the body is
//! then read as it arrives rather than into a buffer of the announced size.
//!
//! The encoding and the checks live here once ([`encode_frame`], [`decode_message`] and the
//! private header and body checks); the blocking functions below and the async ones
//! (feature `async`) only move bytes.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame body, in bytes (4 MiB): far more than any request or reply needs (a
/// configuration is at most 1 MiB), small enough to hold in memory.
pub const MAX_FRAME_LEN: u32 = 4 * 1024 * 1024;

/// The length prefix's size in bytes.
const HEADER_LEN: usize = 4;

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix, or a message to send, exceeds [`MAX_FRAME_LEN`].
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME_LEN} bytes")]
    TooLong {
        /// The length announced or encoded.
        len: u64,
    },
    /// The peer closed the connection inside a frame.
    #[error("connection closed inside a frame: got {got} of {expected} bytes")]
    Truncated {
        /// Bytes the prefix (or the prefix itself) promised.
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// The peer closed the connection between two frames: a clean end.
    #[error("connection closed")]
    Closed,
    /// The frame's body is not the JSON of the expected message.
    #[error("invalid message")]
    InvalidJson(#[source] serde_json::Error),
    /// A message could not be serialized.
    #[error("cannot encode message")]
    Encode(#[source] serde_json::Error),
    /// Reading or writing failed.
    #[error("frame I/O failed")]
    Io(#[source] io::Error),
}

/// Serializes `message` into a whole frame: the length prefix, then the JSON.
pub fn encode_frame<T: Serialize + ?Sized>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut frame = vec![0; HEADER_LEN];
    serde_json::to_writer(&mut frame, message).map_err(FrameError::Encode)?;
    let len = frame.len() - HEADER_LEN;
    let prefix = u32::try_from(len)
        .ok()
        .filter(|len| *len <= MAX_FRAME_LEN)
        .ok_or(FrameError::TooLong { len: len as u64 })?;
    frame[..HEADER_LEN].copy_from_slice(&prefix.to_be_bytes());
    Ok(frame)
}

/// Parses a frame's body as a `T`.
pub fn decode_message<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(FrameError::InvalidJson)
}

/// A length prefix being read, possibly in pieces.
#[derive(Debug, Default)]
struct Header {
    bytes: [u8; HEADER_LEN],
    filled: usize,
}

impl Header {
    /// Where the next read goes.
    fn unfilled(&mut self) -> &mut [u8] {
        &mut self.bytes[self.filled..]
    }

    /// Takes the result of a read of `count` bytes into [`Header::unfilled`]: the body length
    /// once the prefix is complete, `None` while it is not, an error at end of file or for a
    /// length above the limit.
    fn advance(&mut self, count: usize) -> Result<Option<usize>, FrameError> {
        if count == 0 {
            return Err(match self.filled {
                0 => FrameError::Closed,
                got => FrameError::Truncated {
                    expected: HEADER_LEN,
                    got,
                },
            });
        }
        self.filled += count;
        if self.filled < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes(self.bytes);
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len: len.into() });
        }
        Ok(Some(len as usize))
    }
}

/// Checks that a body read up to end of file or `expected` bytes is whole.
fn whole_body(body: Vec<u8>, expected: usize) -> Result<Vec<u8>, FrameError> {
    if body.len() < expected {
        return Err(FrameError::Truncated {
            expected,
            got: body.len(),
        });
    }
    Ok(body)
}

/// Reads one frame's body. At end of file before the frame starts this is
/// [`FrameError::Closed`].
pub fn read_frame(reader: &mut (impl Read + ?Sized)) -> Result<Vec<u8>, FrameError> {
    let mut header = Header::default();
    let len = loop {
        let count = match reader.read(header.unfilled()) {
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(FrameError::Io(error)),
        };
        if let Some(len) = header.advance(count)? {
            break len;
        }
    };
    let mut body = Vec::new();
    reader
        .take(len as u64)
        .read_to_end(&mut body)
        .map_err(FrameError::Io)?;
    whole_body(body, len)
}

/// Reads one frame and parses it as a `T`.
pub fn read_message<T: DeserializeOwned>(
    reader: &mut (impl Read + ?Sized),
) -> Result<T, FrameError> {
    decode_message(&read_frame(reader)?)
}

/// Writes `message` as one frame and flushes.
pub fn write_message<T: Serialize + ?Sized>(
    writer: &mut (impl Write + ?Sized),
    message: &T,
) -> Result<(), FrameError> {
    let frame = encode_frame(message)?;
    writer.write_all(&frame).map_err(FrameError::Io)?;
    writer.flush().map_err(FrameError::Io)
}

/// The same over tokio's `AsyncRead` and `AsyncWrite`.
#[cfg(feature = "async")]
mod nonblocking {
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    use super::{FrameError, Header, decode_message, encode_frame, whole_body};

    /// Reads one frame's body; see [`read_frame`](super::read_frame).
    pub async fn read_frame_async(
        reader: &mut (impl AsyncRead + Unpin + ?Sized),
    ) -> Result<Vec<u8>, FrameError> {
        let mut header = Header::default();
        let len = loop {
            let count = reader
                .read(header.unfilled())
                .await
                .map_err(FrameError::Io)?;
            if let Some(len) = header.advance(count)? {
                break len;
            }
        };
        let mut body = Vec::new();
        reader
            .take(len as u64)
            .read_to_end(&mut body)
            .await
            .map_err(FrameError::Io)?;
        whole_body(body, len)
    }

    /// Reads one frame and parses it as a `T`.
    pub async fn read_message_async<T: DeserializeOwned>(
        reader: &mut (impl AsyncRead + Unpin + ?Sized),
    ) -> Result<T, FrameError> {
        decode_message(&read_frame_async(reader).await?)
    }

    /// Writes `message` as one frame and flushes.
    pub async fn write_message_async<T: Serialize + ?Sized>(
        writer: &mut (impl AsyncWrite + Unpin + ?Sized),
        message: &T,
    ) -> Result<(), FrameError> {
        let frame = encode_frame(message)?;
        writer.write_all(&frame).await.map_err(FrameError::Io)?;
        writer.flush().await.map_err(FrameError::Io)
    }
}

#[cfg(feature = "async")]
pub use nonblocking::{read_frame_async, read_message_async, write_message_async};
