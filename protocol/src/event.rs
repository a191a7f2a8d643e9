//! Events: the durable record of everything that happened in a session, in
//! order. The log of events is the truth; every other view is a fold of it.

use crate::ids::{ClinicId, CommandId, SeatId, Seq, SessionId, Timestamp};
use crate::phase::{ParticipantState, SessionPhase};
use crate::policy::ClinicPolicy;
use crate::records::{ArrivalForm, Dose, ObservedStatus, PostSessionForm, SelfReport};
use crate::role::{Actor, Viewer};
use crate::vitals::VitalReading;
use serde::{Deserialize, Serialize};

/// One thing that happened, as stored and as sent to clients.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Event {
    /// The session it belongs to.
    pub session: SessionId,
    /// Its place in the session's log (gap-free from 1).
    pub seq: Seq,
    /// When the server recorded it.
    pub at: Timestamp,
    /// Who caused it.
    pub actor: Actor,
    /// The idempotency key of the command that caused it, if any.
    pub command: Option<CommandId>,
    /// What happened.
    pub body: EventBody,
}

/// What happened. Seat-specific events carry the seat; that decides who may see them.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// The session was opened, with the policy in force for all of it.
    SessionCreated {
        /// Owning clinic.
        clinic: ClinicId,
        /// Title ("Tuesday evening group").
        title: String,
        /// The policy every later decision uses.
        policy: ClinicPolicy,
    },
    /// A seat was added for a participant.
    SeatAdded {
        /// The new seat.
        seat: SeatId,
        /// First name or pseudonym (never a full identity).
        display_name: String,
        /// Weight in kg, for mg/kg.
        weight_kg: Option<f64>,
        /// Where in the room (or "remote").
        location: Option<String>,
    },
    /// The group moved to another phase.
    PhaseChanged {
        /// Phase before.
        from: SessionPhase,
        /// Phase after.
        to: SessionPhase,
    },
    /// A participant's state changed.
    ParticipantStateChanged {
        /// Whose.
        seat: SeatId,
        /// State before.
        from: ParticipantState,
        /// State after.
        to: ParticipantState,
    },
    /// The arrival check-in form was submitted.
    ArrivalRecorded {
        /// Whose.
        seat: SeatId,
        /// The answers.
        form: ArrivalForm,
    },
    /// "I'm OK" or "I need support".
    SelfReported {
        /// Whose.
        seat: SeatId,
        /// The report.
        report: SelfReport,
    },
    /// A staff member has seen the participant's support request.
    SupportAcknowledged {
        /// Whose request.
        seat: SeatId,
    },
    /// A facilitator's observed check-in.
    ObservedCheckIn {
        /// Whom they checked.
        seat: SeatId,
        /// What they saw.
        status: ObservedStatus,
        /// Optional note.
        note: Option<String>,
    },
    /// A vital sign reading.
    VitalRecorded {
        /// Whose.
        seat: SeatId,
        /// The reading with its provenance.
        reading: VitalReading,
    },
    /// A dose was given.
    DoseRecorded {
        /// To whom.
        seat: SeatId,
        /// The dose.
        dose: Dose,
    },
    /// A clinical note about a participant (staff only).
    NoteAdded {
        /// About whom.
        seat: SeatId,
        /// The note.
        text: String,
    },
    /// A message to the whole group, shown on every phone.
    GroupMessagePosted {
        /// The message.
        text: String,
    },
    /// The post-session check-in.
    PostSessionRecorded {
        /// Whose.
        seat: SeatId,
        /// Mood and journal.
        form: PostSessionForm,
    },
}

/// Who may see an event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Audience {
    /// Everyone in the session, participants included.
    Everyone,
    /// Staff, and the participant in this seat.
    SeatAndStaff(SeatId),
    /// Staff only (clinical observations and notes about a participant).
    StaffOnly,
}

impl EventBody {
    /// The seat this event is about, if any.
    pub fn seat(&self) -> Option<SeatId> {
        use EventBody::*;
        match self {
            SessionCreated { .. } | PhaseChanged { .. } | GroupMessagePosted { .. } => None,
            SeatAdded { seat, .. }
            | ParticipantStateChanged { seat, .. }
            | ArrivalRecorded { seat, .. }
            | SelfReported { seat, .. }
            | SupportAcknowledged { seat }
            | ObservedCheckIn { seat, .. }
            | VitalRecorded { seat, .. }
            | DoseRecorded { seat, .. }
            | NoteAdded { seat, .. }
            | PostSessionRecorded { seat, .. } => Some(*seat),
        }
    }

    /// The privacy rule, in one place: participants see their own seat's record
    /// and what is said to the group; staff observations and notes stay with staff.
    pub fn audience(&self) -> Audience {
        use EventBody::*;
        match self {
            SessionCreated { .. } | PhaseChanged { .. } | GroupMessagePosted { .. } => {
                Audience::Everyone
            }
            ObservedCheckIn { .. } | NoteAdded { .. } => Audience::StaffOnly,
            SeatAdded { seat, .. }
            | ParticipantStateChanged { seat, .. }
            | ArrivalRecorded { seat, .. }
            | SelfReported { seat, .. }
            | SupportAcknowledged { seat }
            | VitalRecorded { seat, .. }
            | DoseRecorded { seat, .. }
            | PostSessionRecorded { seat, .. } => Audience::SeatAndStaff(*seat),
        }
    }

    /// The wire name of this event's type (`"vital_recorded"`), for logs.
    pub fn type_name(&self) -> &'static str {
        use EventBody::*;
        match self {
            SessionCreated { .. } => "session_created",
            SeatAdded { .. } => "seat_added",
            PhaseChanged { .. } => "phase_changed",
            ParticipantStateChanged { .. } => "participant_state_changed",
            ArrivalRecorded { .. } => "arrival_recorded",
            SelfReported { .. } => "self_reported",
            SupportAcknowledged { .. } => "support_acknowledged",
            ObservedCheckIn { .. } => "observed_check_in",
            VitalRecorded { .. } => "vital_recorded",
            DoseRecorded { .. } => "dose_recorded",
            NoteAdded { .. } => "note_added",
            GroupMessagePosted { .. } => "group_message_posted",
            PostSessionRecorded { .. } => "post_session_recorded",
        }
    }
}

impl Event {
    /// Whether `viewer` may see this event.
    pub fn visible_to(&self, viewer: Viewer) -> bool {
        match (viewer, self.body.audience()) {
            (Viewer::Staff, _) | (_, Audience::Everyone) => true,
            (Viewer::Participant(own), Audience::SeatAndStaff(seat)) => own == seat,
            (Viewer::Participant(_), Audience::StaffOnly) => false,
        }
    }
}
