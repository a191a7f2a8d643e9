//! # holdspace: the server
//!
//! ```text
//!             ┌──────────── api (REST: login, sessions, seats, join codes, health)
//!  HTTP ──────┤
//!             └──────────── ws (one task per connection: hello → subscribe →
//!                           │   reader: commands in; writer: snapshot/replay, live events out)
//!                           ▼
//!                          hub (registry DashMap<SessionId, SessionHandle>;
//!                           │   one task per live session owns its SessionState:
//!                           │   decide → append → commit → apply → fan-out)
//!                           ▼
//!                          store (EventLog trait; SqliteStore: WAL, group-commit writer thread)
//! ```
//!
//! - [`app`]: the shared [`App`] and [`run`], which serves on a bound listener.
//! - [`api`]: REST routes and the one error type.
//! - [`ws`]: the WebSocket connection; the only code that touches a socket.
//! - [`hub`]: live sessions, sequence numbers, idempotency, fan-out, slow clients.
//! - [`store`]: the durable log, accounts and join codes.
//! - [`auth`]: tokens, password hashes, join codes.
//! - [`clock`]: the one source of "now".
//! - [`config`]: limits and lifetimes, with their reasons.
//! - [`client`]: a Rust client of the public API (the demo and the tests use it).
//! - [`demo`]: a seeded clinic and a simulated group session.
//! - [`cli`]: the `holdspace` command line.
//!
//! The clinical rules themselves live in the `protocol` crate, shared with the browser.

pub mod api;
pub mod app;
pub mod attempts;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod export;
pub mod hub;
pub mod signal;
pub mod store;
pub mod ws;

pub use app::{App, ServerError, listen, run, serve};
pub use config::Config;
