//! The Minifed-Virt web server: HTTPS only, run as its own unprivileged user.
//!
//! - [`server`]: the connections: TLS, plain HTTP answered with a redirect, and the limits
//!   on handshakes, request heads, answers and open connections; graceful shutdown.
//! - [`api`]: normal mode's REST API under `/api/v1`, every route a line of one table that
//!   drives dispatch, the role check and the OpenAPI document.
//! - [`daemon`]: the host daemon's socket, as config mode and the API ask it.
//! - [`dev`]: `mfv-web --dev`, the API on an ordinary machine with a SQLite auth database.
//! - [`config_mode`]: what a host without a configuration answers: only the browser that
//!   presents the console's one-time setup token gets a session.
//! - [`set_up`]: what a host that is set up answers: a page that says where it is managed
//!   from, and `503` on the API.
//! - [`assets`]: the pages' bundled scripts and stylesheets (noVNC, xterm.js), embedded
//!   and served at addresses that change with their content.
//! - [`ui`]: normal mode's web pages: one server-rendered layout, the body filled by a
//!   script from the REST API.
//! - [`reply`]: the API's error shape and the security headers on every answer.
//! - [`tls`]: the host's key and certificate, as PID 1's host daemon publishes them, made
//!   into rustls' server configuration.
//!
//! Privileged work (the configuration, the network, formatting a volume) goes to the host
//! daemon over its socket ([`mfv_api`]); this server holds no privilege of its own, not even
//! its listening sockets, which PID 1 binds and hands over.

#![warn(missing_docs)]

pub mod api;
pub mod assets;
pub mod config_mode;
pub mod daemon;
pub mod dev;
mod pages;
mod rejection;
pub mod reply;
mod request;
pub mod server;
pub mod set_up;
pub mod tls;
pub mod ui;
