//! # holdspace-protocol: the language every part of Holdspace speaks
//!
//! Pure Rust: no I/O, no clock, no randomness, so it builds for the server and
//! for `wasm32-unknown-unknown` alike, and the browser reaches exactly the
//! server's conclusions.
//!
//! ```text
//!  client ──ClientMessage::Command──▶ server session task
//!                                        │ decide(state, ctx, command)   [decide]
//!                                        │   authorize: role table        [command]
//!                                        │   checks: phase, state, vitals [phase, vitals, policy]
//!                                        ▼
//!                                  Vec<EventBody> ──▶ store (durable) ──▶ Event{seq}
//!                                        │
//!                   SessionState::apply(&Event)   [state]  (server and browser)
//!                                        │
//!  client ◀──ServerMessage::Event── fan-out, filtered by Event::visible_to  [event, wire]
//! ```
//!
//! - [`ids`]: newtype ids, [`Seq`], [`Timestamp`].
//! - [`role`]: roles, the [`Actor`] on every event, the [`Viewer`] deciding what is seen.
//! - [`phase`]: session phases and participant states with their legal transitions.
//! - [`vitals`]: measurements (LOINC, UCUM), readings with provenance, plausibility.
//! - [`records`]: check-ins, doses, post-session form.
//! - [`policy`]: every configurable number, recorded in the session's first event.
//! - [`alarm`]: alarm priorities, kinds and rules as data (the default table).
//! - [`monitor`]: rule evaluation, schedules, the dose hold, discharge checklist, monitoring form.
//! - [`event`]: the durable record and who may see each event.
//! - [`command`]: what clients may ask, and the one role table.
//! - [`decide`](mod@decide): command + state → events or a typed rejection.
//! - [`state`]: [`SessionState`] and its one reducer, [`SessionState::apply`].
//! - [`wire`]: the WebSocket messages in both directions.
//! - [`rest`]: the REST API bodies.

pub mod alarm;
pub mod command;
pub mod decide;
pub mod event;
pub mod ids;
pub mod monitor;
pub mod phase;
pub mod policy;
pub mod records;
pub mod rest;
pub mod role;
pub mod state;
pub mod vitals;
pub mod wire;

pub use alarm::{Alarm, AlarmKind, AlarmPriority, AlarmRule};
pub use command::{Command, CommandKind, RejectCode, Rejection};
pub use decide::{Context, authorize, decide};
pub use event::{Audience, Event, EventBody};
pub use ids::{ClinicId, CommandId, MINUTE_MS, SeatId, Seq, SessionId, StaffId, Timestamp};
pub use phase::{ParticipantState, SessionPhase};
pub use policy::ClinicPolicy;
pub use records::{
    ArrivalForm, Dose, ObservedStatus, PostSessionForm, Rating, Route, Score, SelfReport,
    SupportReason,
};
pub use role::{Actor, Role, StaffRole, Viewer};
pub use state::{Seat, SessionState};
pub use vitals::{Measurement, ReadingSource, VitalKind, VitalReading};
pub use wire::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage};

#[cfg(test)]
mod doc_examples;
#[cfg(test)]
mod monitor_tests;
#[cfg(test)]
mod tests;
