//! The crate's tests: the JSON shape of every message, framing, and both clients against a
//! real server on a Unix socket.

mod clients;
mod frame;
mod json;
mod samples;
