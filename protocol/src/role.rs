//! Who takes part: roles, the actor recorded on every event, and the viewer whose
//! role decides what they may see.

use crate::ids::{SeatId, StaffId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A staff member's role. Participants are not staff: see [`Role`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// The clinic: accounts, sessions and seats; not a clinician in the room.
    Admin,
    /// A therapist leading the group.
    Facilitator,
    /// The prescriber or nurse: vitals, doses, discharge.
    Medical,
}

/// Every role, participants included. The permission table is keyed by this.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// See [`StaffRole::Admin`].
    Admin,
    /// See [`StaffRole::Facilitator`].
    Facilitator,
    /// See [`StaffRole::Medical`].
    Medical,
    /// A patient in the group, on their own phone, bound to exactly one seat.
    Participant,
}

impl Role {
    /// All roles, in the order the permission table lists them.
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::Facilitator,
        Role::Medical,
        Role::Participant,
    ];

    /// The name used on the wire and in tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Facilitator => "facilitator",
            Role::Medical => "medical",
            Role::Participant => "participant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<StaffRole> for Role {
    fn from(role: StaffRole) -> Role {
        match role {
            StaffRole::Admin => Role::Admin,
            StaffRole::Facilitator => Role::Facilitator,
            StaffRole::Medical => Role::Medical,
        }
    }
}

impl StaffRole {
    /// The name used on the wire, in tokens and in the accounts table.
    pub const fn as_str(self) -> &'static str {
        match self {
            StaffRole::Admin => "admin",
            StaffRole::Facilitator => "facilitator",
            StaffRole::Medical => "medical",
        }
    }

    /// Parses the wire name of a staff role.
    pub fn parse(s: &str) -> Option<StaffRole> {
        match s {
            "admin" => Some(StaffRole::Admin),
            "facilitator" => Some(StaffRole::Facilitator),
            "medical" => Some(StaffRole::Medical),
            _ => None,
        }
    }
}

/// Who did something: recorded on every event, and the subject of every
/// permission check.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Actor {
    /// A staff member acting in their role.
    Staff {
        /// The staff account.
        staff: StaffId,
        /// The role they acted in.
        role: StaffRole,
    },
    /// A participant, acting for their own seat only.
    Participant {
        /// Their seat.
        seat: SeatId,
    },
    /// The server itself (timers, start-up).
    System,
}

impl Actor {
    /// The role whose permissions apply, if any ([`Actor::System`] has none: it
    /// never sends commands).
    pub fn role(&self) -> Option<Role> {
        match self {
            Actor::Staff { role, .. } => Some((*role).into()),
            Actor::Participant { .. } => Some(Role::Participant),
            Actor::System => None,
        }
    }

    /// What this actor may see of the session.
    pub fn viewer(&self) -> Viewer {
        match self {
            Actor::Participant { seat } => Viewer::Participant(*seat),
            Actor::Staff { .. } | Actor::System => Viewer::Staff,
        }
    }
}

/// Whose eyes a message is for. Staff see the whole session; a participant sees
/// their own seat and what is said to the whole group, nothing else.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Viewer {
    /// Any staff role.
    Staff,
    /// The participant in this seat.
    Participant(SeatId),
}
