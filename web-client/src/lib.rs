//! # holdspace-web: the browser app
//!
//! Two screens on one page: the **staff board** (facilitators and the medical
//! provider: the whole group, alarms, records) and the **participant page**
//! (one phone, one seat: arrival, "I'm OK" / "I need support", journal).
//!
//! ```text
//!   WebSocket ──ServerMessage──▶ FollowedSession::receive ──▶ protocol::SessionState::apply
//!                                      │                          (the server's own reducer)
//!                                      ▼
//!                               signals ──▶ views (ui::staff, ui::participant)
//!   forms ──protocol::decide (same rules as the server)──▶ Outbox ──▶ WebSocket
//! ```
//!
//! The modules at this level are plain Rust, tested natively: [`follow`]
//! (state from messages, resume point), [`outbox`] (commands kept until the
//! server answered), [`history`] (vital series for charts), [`i18n`]
//! (English and Spanish), [`present`] (how values read on screen). [`ui`]
//! exists only on `wasm32` and stays thin.

pub mod follow;
pub mod history;
pub mod i18n;
pub mod outbox;
pub mod present;
#[cfg(target_arch = "wasm32")]
pub mod ui;

pub use follow::FollowedSession;
