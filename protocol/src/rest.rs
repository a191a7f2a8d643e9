//! Request and response bodies of the REST API (login, sessions, seats, join
//! codes). Shared by the server, the browser app and the tests.

use crate::ids::{ClinicId, SeatId, Seq, SessionId, StaffId, Timestamp};
use crate::phase::SessionPhase;
use crate::role::StaffRole;
use serde::{Deserialize, Serialize};

/// `POST /api/login`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Staff username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A staff member as the API shows them.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StaffProfile {
    /// Account id.
    pub id: StaffId,
    /// Clinic.
    pub clinic: ClinicId,
    /// Login name.
    pub username: String,
    /// Name shown to colleagues.
    pub display_name: String,
    /// Role.
    pub role: StaffRole,
}

/// `GET /api/staff`: a colleague as the board names them (in an alarm's
/// "acknowledged by", on the check rota).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StaffMember {
    /// Account id.
    pub id: StaffId,
    /// Name shown to colleagues.
    pub display_name: String,
    /// Role.
    pub role: StaffRole,
}

/// A token and when it expires.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Bearer token (JWT).
    pub token: String,
    /// Expiry.
    pub expires_at: Timestamp,
}

/// Answer to a login.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The token.
    #[serde(flatten)]
    pub token: TokenResponse,
    /// Who logged in.
    pub staff: StaffProfile,
}

/// `POST /api/sessions`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// Title ("Tuesday evening group").
    pub title: String,
}

/// A session in a list.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Id.
    pub id: SessionId,
    /// Title.
    pub title: String,
    /// Current phase.
    pub phase: SessionPhase,
    /// Created.
    pub created_at: Timestamp,
}

/// `POST /api/sessions/{id}/seats`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSeat {
    /// First name or pseudonym.
    pub display_name: String,
    /// Weight, kg.
    #[serde(default)]
    pub weight_kg: Option<f64>,
    /// Where in the room.
    #[serde(default)]
    pub location: Option<String>,
}

/// Answer to adding a seat.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SeatCreated {
    /// The new seat.
    pub seat: SeatId,
    /// The event that recorded it.
    pub seq: Seq,
}

/// Answer to `POST /api/sessions/{id}/seats/{seat}/join-code`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct JoinCodeIssued {
    /// The one-time code ("K7PQ-4XMD"); earlier codes for the seat stop working.
    pub code: String,
    /// Session.
    pub session: SessionId,
    /// Seat.
    pub seat: SeatId,
    /// The code's expiry.
    pub expires_at: Timestamp,
}

/// `POST /api/join`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The code as typed (case, spaces and dashes do not matter).
    pub code: String,
}

/// Answer to a join: a participant token for exactly one seat.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Joined {
    /// The token.
    #[serde(flatten)]
    pub token: TokenResponse,
    /// Session.
    pub session: SessionId,
    /// Seat.
    pub seat: SeatId,
    /// The name on the seat.
    pub display_name: String,
}

/// Body of every error response.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable code.
    pub error: String,
    /// In words.
    pub message: String,
}
