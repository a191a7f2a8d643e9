//! The WebSocket messages, named by direction: [`ClientMessage`] from a browser,
//! phone or bridge to the server; [`ServerMessage`] back. JSON text frames,
//! tagged by `"type"`. Client messages are parsed strictly: an unknown type or
//! field is an error, never silently ignored.

use crate::command::{Command, Rejection};
use crate::event::Event;
use crate::ids::{CommandId, SeatId, Seq, SessionId, Timestamp};
use crate::role::Role;
use crate::state::SessionState;
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. A client says which version it
/// speaks in its `hello`; the server refuses versions it does not know.
pub const PROTOCOL_VERSION: u32 = 1;

/// From client to server.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first message on every connection: who I am, which session, and
    /// where I left off. Nothing else is accepted before it.
    Hello {
        /// Protocol version the client speaks.
        protocol: u32,
        /// A staff or participant token.
        token: String,
        /// The session to follow.
        session: SessionId,
        /// Resume: replay every event after this one. Absent: send a snapshot.
        #[serde(default)]
        after: Option<Seq>,
    },
    /// Ask the session to do something.
    Command {
        /// Idempotency key made by the client; resending it is safe.
        id: CommandId,
        /// What to do.
        command: Command,
        /// How long before this send the client made the command, by its own
        /// clock (so the devices' clocks need not agree): a tap queued while
        /// the phone was offline. A participant's self report is dated by it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        age_ms: Option<u64>,
    },
    /// Send again a command whose answer never came (the connection dropped,
    /// the page was reloaded): the same `id` and `command` as the first send.
    /// If the first send was recorded the answer is the first one, marked
    /// `repeated`, however long ago it was; nothing is recorded twice. A plain
    /// `command` with an old key is recognised only for a recent window.
    Retry {
        /// The idempotency key of the first send.
        id: CommandId,
        /// What the first send asked.
        command: Command,
        /// The last seq the client had when it first sent the command: if it
        /// was recorded, its events come after this one, and the server reads
        /// only the log after it. Absent: the whole session's log is read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<Seq>,
        /// How long before this send the client made the command, by its own
        /// clock (so the devices' clocks need not agree): a tap queued while
        /// the phone was offline. A participant's self report is dated by it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        age_ms: Option<u64>,
    },
    /// Ask for a fresh token before the current one expires. (An empty struct
    /// variant, not a unit one, so that unknown fields are refused here too.)
    RefreshToken {},
}

/// From server to client.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The hello was accepted.
    Welcome {
        /// Protocol version in use.
        protocol: u32,
        /// The session followed.
        session: SessionId,
        /// The client's role.
        role: Role,
        /// The participant's seat (participants only).
        seat: Option<SeatId>,
        /// The server's clock, for showing times consistently.
        server_time: Timestamp,
        /// When the token expires; refresh before.
        token_expires_at: Timestamp,
    },
    /// The session as this client may see it (when the hello had no `after`).
    Snapshot {
        /// The state, redacted for this client.
        state: Box<SessionState>,
    },
    /// One event of the session's log (redacted streams skip events this
    /// client may not see; `seq`s then have gaps, which is expected).
    Event {
        /// The event.
        event: Box<Event>,
    },
    /// Replay or snapshot is complete: from here on, events are live.
    CaughtUp {
        /// The session's last event at that moment.
        seq: Seq,
    },
    /// A command was recorded (or had been: `repeated`), as events `first..=last`.
    Accepted {
        /// The command's idempotency key.
        id: CommandId,
        /// First event recorded.
        first: Seq,
        /// Last event recorded.
        last: Seq,
        /// This key had been accepted before; nothing new was recorded.
        repeated: bool,
    },
    /// A command was refused; nothing was recorded.
    Rejected {
        /// The command's idempotency key.
        id: CommandId,
        /// Why.
        #[serde(flatten)]
        rejection: Rejection,
    },
    /// A fresh token.
    TokenRefreshed {
        /// The token.
        token: String,
        /// Its expiry.
        expires_at: Timestamp,
    },
    /// A problem with the connection or a message (not with a command).
    Error {
        /// Machine-readable.
        code: ErrorCode,
        /// In words.
        message: String,
    },
}

/// Connection-level errors. Some end the connection (see [`ErrorCode::closes`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON.
    MalformedJson,
    /// JSON, but not a valid message (unknown type or field, wrong value).
    InvalidMessage,
    /// A frame larger than the server accepts.
    FrameTooLarge,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// Too many messages; this one was dropped.
    RateLimited,
    /// The first message must be a hello.
    HelloRequired,
    /// A second hello on one connection.
    AlreadySubscribed,
    /// Protocol version not supported.
    UnsupportedProtocol,
    /// Token missing, malformed, badly signed, or not valid.
    InvalidToken,
    /// Token expired.
    TokenExpired,
    /// The token does not give access to this session.
    Forbidden,
    /// No such session.
    SessionNotFound,
    /// `after` is beyond the session's last event (a different server's data?).
    ResumePointAhead,
    /// The server could not serve the request; try again.
    Unavailable,
}

impl ErrorCode {
    /// The WebSocket close code sent with errors that end the connection, or
    /// `None` when the connection stays up.
    pub const fn closes(self) -> Option<u16> {
        match self {
            ErrorCode::MalformedJson
            | ErrorCode::InvalidMessage
            | ErrorCode::FrameTooLarge
            | ErrorCode::BinaryNotSupported
            | ErrorCode::RateLimited
            | ErrorCode::AlreadySubscribed => None,
            ErrorCode::HelloRequired => Some(close_code::PROTOCOL),
            ErrorCode::UnsupportedProtocol => Some(close_code::PROTOCOL),
            ErrorCode::InvalidToken | ErrorCode::TokenExpired => Some(close_code::UNAUTHORIZED),
            ErrorCode::Forbidden => Some(close_code::FORBIDDEN),
            ErrorCode::SessionNotFound => Some(close_code::NOT_FOUND),
            ErrorCode::ResumePointAhead => Some(close_code::PROTOCOL),
            ErrorCode::Unavailable => Some(close_code::TRY_AGAIN),
        }
    }
}

/// WebSocket close codes the server uses (4000–4999 are the application's).
pub mod close_code {
    /// Server shutting down: reconnect later and resume.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame over the hard size limit.
    pub const TOO_BIG: u16 = 1009;
    /// Protocol misuse (no hello, bad version, bad resume point).
    pub const PROTOCOL: u16 = 4400;
    /// Token invalid or expired: log in again.
    pub const UNAUTHORIZED: u16 = 4401;
    /// The token does not cover this session.
    pub const FORBIDDEN: u16 = 4403;
    /// No such session.
    pub const NOT_FOUND: u16 = 4404;
    /// The client fell behind: reconnect and resume from the last seq it applied.
    pub const TOO_SLOW: u16 = 4408;
    /// Too many messages for too long.
    pub const RATE_LIMITED: u16 = 4429;
    /// Temporarily unable to serve: reconnect and resume.
    pub const TRY_AGAIN: u16 = 4503;
}
