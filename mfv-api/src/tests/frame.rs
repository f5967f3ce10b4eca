//! Framing: whole frames, frames in pieces, the limits and each way a connection can end,
//! through the blocking reader and (feature `async`) the async one.

use std::io::{self, Cursor, Read};

use serde_json::{Value, json};

use crate::*;

/// A frame with the body `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// What reading messages from `bytes` until the first error gives: the JSON of each
/// message, then the error's text with its source.
fn read_all(mut read: impl FnMut() -> Result<Value, FrameError>) -> Vec<String> {
    let mut outcomes = Vec::new();
    loop {
        match read() {
            Ok(value) => outcomes.push(value.to_string()),
            Err(error) => {
                let source = std::error::Error::source(&error)
                    .map(|source| format!(": {source}"))
                    .unwrap_or_default();
                outcomes.push(format!("{error}{source}"));
                return outcomes;
            }
        }
    }
}

/// Reading `bytes` as messages gives `expected`, through every reader: the blocking one on the
/// whole input and one byte at a time, and the async one.
fn check_read(bytes: &[u8], expected: &[&str]) {
    let mut whole = Cursor::new(bytes);
    assert_eq!(read_all(|| read_message(&mut whole)), expected, "whole");
    let mut trickle = Trickle(Cursor::new(bytes), false);
    assert_eq!(read_all(|| read_message(&mut trickle)), expected, "trickle");
    #[cfg(feature = "async")]
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut reader = bytes;
        let outcomes = read_all(|| runtime.block_on(read_message_async(&mut reader)));
        assert_eq!(outcomes, expected, "async");
    }
}

/// A reader that gives one byte per read and is interrupted before every other one.
struct Trickle<'a>(Cursor<&'a [u8]>, bool);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = !self.1;
        if self.1 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let len = buf.len().min(1);
        self.0.read(&mut buf[..len])
    }
}

#[test]
fn messages_are_read_until_a_clean_close() {
    let mut bytes = frame(br#"{"a":1}"#);
    bytes.extend(frame(b"[]"));
    check_read(&bytes, &[r#"{"a":1}"#, "[]", "connection closed"]);
    check_read(&[], &["connection closed"]);
}

#[test]
fn a_close_inside_a_frame_is_truncation() {
    check_read(
        &[0, 0],
        &["connection closed inside a frame: got 2 of 4 bytes"],
    );
    let mut bytes = frame(b"[1,2,3]");
    bytes.truncate(7);
    check_read(
        &bytes,
        &["connection closed inside a frame: got 3 of 7 bytes"],
    );
}

#[test]
fn a_frame_above_the_limit_is_refused_from_its_prefix() {
    // Nothing follows the prefix: the length is refused before a body is read or
    // allocated (reserving 4 GiB would fail the test long before).
    check_read(
        &u32::MAX.to_be_bytes(),
        &["frame of 4294967295 bytes exceeds the limit of 4194304 bytes"],
    );
    check_read(
        &(MAX_FRAME_LEN + 1).to_be_bytes(),
        &["frame of 4194305 bytes exceeds the limit of 4194304 bytes"],
    );
}

#[test]
fn a_frame_at_the_limit_is_read() {
    let text = "x".repeat(MAX_FRAME_LEN as usize - 2);
    let bytes = encode_frame(&text).unwrap();
    assert_eq!(bytes.len(), MAX_FRAME_LEN as usize + 4);
    let read: String = read_message(&mut bytes.as_slice()).unwrap();
    assert_eq!(read, text);
}

#[test]
fn a_message_above_the_limit_is_not_written() {
    let text = "x".repeat(MAX_FRAME_LEN as usize - 1);
    let mut written = Vec::new();
    let error = write_message(&mut written, &text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "frame of 4194305 bytes exceeds the limit of 4194304 bytes"
    );
    assert!(written.is_empty());
}

#[test]
fn invalid_json_carries_serdes_message() {
    check_read(
        &frame(b"{nope"),
        &["invalid message: key must be a string at line 1 column 2"],
    );
    let error = decode_message::<Request>(br#"{"type":"format_everything"}"#).unwrap_err();
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(
        source.starts_with("unknown variant `format_everything`"),
        "{source}"
    );
}

#[test]
fn written_messages_read_back() {
    let mut bytes = Vec::new();
    write_message(&mut bytes, &json!({"x": [1, 2]})).unwrap();
    write_message(&mut bytes, &Request::Reboot).unwrap();
    assert_eq!(&bytes[..4], &[0, 0, 0, 11]);
    let mut reader = bytes.as_slice();
    assert_eq!(
        read_message::<Value>(&mut reader).unwrap(),
        json!({"x": [1, 2]})
    );
    assert_eq!(
        read_message::<Request>(&mut reader).unwrap(),
        Request::Reboot
    );
}

#[cfg(feature = "async")]
#[tokio::test]
async fn async_written_messages_read_back() {
    let mut bytes = Vec::new();
    write_message_async(&mut bytes, &Request::PowerOff)
        .await
        .unwrap();
    assert_eq!(bytes, encode_frame(&Request::PowerOff).unwrap());
    let mut reader = bytes.as_slice();
    let request: Request = read_message_async(&mut reader).await.unwrap();
    assert_eq!(request, Request::PowerOff);
}
