//! Commands: what clients ask the session to do, the one table of which role may
//! ask for what, and the typed answer when the session refuses.

use crate::alarm::AlarmRule;
use crate::ids::{SeatId, Seq, StaffId, Timestamp};
use crate::phase::{ParticipantState, SessionPhase};
use crate::records::{ArrivalForm, ObservedStatus, PostSessionForm, Rating, Route, SelfReport};
use crate::role::Role;
use crate::vitals::Measurement;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A request to change the session. Every field is checked by [`crate::decide`];
/// unknown fields are refused when parsing.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Add a seat for a participant.
    AddSeat {
        /// First name or pseudonym.
        display_name: String,
        /// Weight in kg, if known.
        #[serde(default)]
        weight_kg: Option<f64>,
        /// Where in the room.
        #[serde(default)]
        location: Option<String>,
    },
    /// Move the group to the next phase, or close the session.
    ChangePhase {
        /// Target phase.
        to: SessionPhase,
    },
    /// Move a participant along their path (ready, in experience, emerging,
    /// integrating, withdrawn). Arrival, dosing and discharge have their own commands.
    SetParticipantState {
        /// Whose.
        seat: SeatId,
        /// Target state.
        to: ParticipantState,
    },
    /// The arrival check-in (by the participant, or by staff on their behalf).
    SubmitArrival {
        /// Whose.
        seat: SeatId,
        /// The answers.
        form: ArrivalForm,
    },
    /// "I'm OK" / "I need support", from the participant's own phone.
    SelfReport {
        /// Own seat.
        seat: SeatId,
        /// The report.
        report: SelfReport,
    },
    /// Tell a participant their support request has been seen.
    AcknowledgeSupport {
        /// Whose request.
        seat: SeatId,
    },
    /// A facilitator's observed check-in.
    ObserveCheckIn {
        /// Whom.
        seat: SeatId,
        /// What they saw.
        status: ObservedStatus,
        /// Optional note.
        #[serde(default)]
        note: Option<String>,
    },
    /// Record a vital sign reading (manual, or relayed from a device).
    RecordVital {
        /// Whose.
        seat: SeatId,
        /// The values.
        measurement: Measurement,
        /// When measured; the server's time if absent.
        #[serde(default)]
        measured_at: Option<Timestamp>,
        /// The device's id when a bridge relays a device reading.
        #[serde(default)]
        device: Option<String>,
    },
    /// Record a dose given.
    RecordDose {
        /// To whom.
        seat: SeatId,
        /// Route.
        route: Route,
        /// Amount, mg.
        mg: f64,
        /// Medication lot.
        lot: String,
        /// When given; the server's time if absent.
        #[serde(default)]
        administered_at: Option<Timestamp>,
        /// Dose despite the pre-dose BP hold, for this reason (medical sign-off).
        #[serde(default)]
        override_reason: Option<String>,
    },
    /// Medical discharge of a participant, refused until the checklist holds
    /// unless overridden with a reason.
    Discharge {
        /// Whom.
        seat: SeatId,
        /// Discharge although a checklist item does not hold, for this reason.
        #[serde(default)]
        override_reason: Option<String>,
    },
    /// An observer rating (sedation MOAA/S, dissociation score).
    RecordRating {
        /// Whom.
        seat: SeatId,
        /// The rating.
        rating: Rating,
    },
    /// Put a facilitator on a participant's check rota (or nobody: `None`).
    AssignFacilitator {
        /// Whose checks.
        seat: SeatId,
        /// The facilitator's staff id.
        #[serde(default)]
        staff: Option<StaffId>,
    },
    /// Confirm the participant's ride home.
    ConfirmRideHome {
        /// Whose.
        seat: SeatId,
    },
    /// A device feed ends on purpose (so its silence is not an alarm).
    EndDeviceFeed {
        /// Whose.
        seat: SeatId,
        /// Which device.
        device: String,
    },
    /// Acknowledge an alarm: "I am on it". Audio stops; a latched alarm whose
    /// condition has ended is cleared.
    AcknowledgeAlarm {
        /// The alarm (its `alarm_raised` seq).
        alarm: Seq,
    },
    /// Silence an alarm's audio for this occurrence, at most 120 s.
    PauseAlarmAudio {
        /// The alarm.
        alarm: Seq,
        /// Seconds, 1–120.
        seconds: u32,
    },
    /// Set an alarm rule for the whole session (`seat` absent) or one
    /// participant (a known high baseline, say).
    SetAlarmRule {
        /// The participant, or absent for the session.
        #[serde(default)]
        seat: Option<SeatId>,
        /// The rule; replaces the rule with the same id.
        rule: AlarmRule,
    },
    /// A clinical note about a participant (never shown to participants).
    AddNote {
        /// About whom.
        seat: SeatId,
        /// The note.
        text: String,
    },
    /// A message to the whole group.
    PostGroupMessage {
        /// The message.
        text: String,
    },
    /// The participant's post-session mood and journal.
    SubmitPostSession {
        /// Own seat.
        seat: SeatId,
        /// The form.
        form: PostSessionForm,
    },
}

/// The kind of a [`Command`], without its data: the rows of the permission table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum CommandKind {
    AddSeat,
    ChangePhase,
    SetParticipantState,
    SubmitArrival,
    SelfReport,
    AcknowledgeSupport,
    ObserveCheckIn,
    RecordVital,
    RecordDose,
    Discharge,
    AddNote,
    PostGroupMessage,
    SubmitPostSession,
    RecordRating,
    AssignFacilitator,
    ConfirmRideHome,
    EndDeviceFeed,
    AcknowledgeAlarm,
    PauseAlarmAudio,
    SetAlarmRule,
}

impl CommandKind {
    /// Every kind, in table order.
    pub const ALL: [CommandKind; 20] = [
        CommandKind::AddSeat,
        CommandKind::ChangePhase,
        CommandKind::SetParticipantState,
        CommandKind::SubmitArrival,
        CommandKind::SelfReport,
        CommandKind::AcknowledgeSupport,
        CommandKind::ObserveCheckIn,
        CommandKind::RecordVital,
        CommandKind::RecordDose,
        CommandKind::Discharge,
        CommandKind::AddNote,
        CommandKind::PostGroupMessage,
        CommandKind::SubmitPostSession,
        CommandKind::RecordRating,
        CommandKind::AssignFacilitator,
        CommandKind::ConfirmRideHome,
        CommandKind::EndDeviceFeed,
        CommandKind::AcknowledgeAlarm,
        CommandKind::PauseAlarmAudio,
        CommandKind::SetAlarmRule,
    ];

    /// THE permission table: which roles may send this command. A participant
    /// may in addition act only on their own seat (see [`crate::authorize`]).
    ///
    /// Admins manage the session but are not clinicians in the room; vitals,
    /// doses, ratings, discharge and alarm rules are the medical provider's;
    /// either clinician may acknowledge an alarm; "I'm OK" and the journal
    /// are the participant's own words, so nobody else may send them.
    pub const fn allowed_roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            CommandKind::AddSeat => &[Admin, Facilitator, Medical],
            CommandKind::ChangePhase => &[Facilitator, Medical],
            CommandKind::SetParticipantState => &[Facilitator, Medical],
            CommandKind::SubmitArrival => &[Facilitator, Medical, Participant],
            CommandKind::SelfReport => &[Participant],
            CommandKind::AcknowledgeSupport => &[Facilitator, Medical],
            CommandKind::ObserveCheckIn => &[Facilitator, Medical],
            CommandKind::RecordVital => &[Medical],
            CommandKind::RecordDose => &[Medical],
            CommandKind::Discharge => &[Medical],
            CommandKind::AddNote => &[Facilitator, Medical],
            CommandKind::PostGroupMessage => &[Facilitator, Medical],
            CommandKind::SubmitPostSession => &[Participant],
            CommandKind::RecordRating => &[Medical],
            CommandKind::AssignFacilitator => &[Facilitator, Medical],
            CommandKind::ConfirmRideHome => &[Facilitator, Medical],
            CommandKind::EndDeviceFeed => &[Medical],
            CommandKind::AcknowledgeAlarm => &[Facilitator, Medical],
            CommandKind::PauseAlarmAudio => &[Facilitator, Medical],
            CommandKind::SetAlarmRule => &[Medical],
        }
    }

    /// Whether `role` may send this kind of command.
    pub fn permits(self, role: Role) -> bool {
        self.allowed_roles().contains(&role)
    }

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            CommandKind::AddSeat => "add_seat",
            CommandKind::ChangePhase => "change_phase",
            CommandKind::SetParticipantState => "set_participant_state",
            CommandKind::SubmitArrival => "submit_arrival",
            CommandKind::SelfReport => "self_report",
            CommandKind::AcknowledgeSupport => "acknowledge_support",
            CommandKind::ObserveCheckIn => "observe_check_in",
            CommandKind::RecordVital => "record_vital",
            CommandKind::RecordDose => "record_dose",
            CommandKind::Discharge => "discharge",
            CommandKind::AddNote => "add_note",
            CommandKind::PostGroupMessage => "post_group_message",
            CommandKind::SubmitPostSession => "submit_post_session",
            CommandKind::RecordRating => "record_rating",
            CommandKind::AssignFacilitator => "assign_facilitator",
            CommandKind::ConfirmRideHome => "confirm_ride_home",
            CommandKind::EndDeviceFeed => "end_device_feed",
            CommandKind::AcknowledgeAlarm => "acknowledge_alarm",
            CommandKind::PauseAlarmAudio => "pause_alarm_audio",
            CommandKind::SetAlarmRule => "set_alarm_rule",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Command {
    /// Whether deciding it uses [`crate::decide::Context::fresh_id`] (it
    /// creates a seat). The server makes a random id only then: one costs a
    /// system call, and most commands are readings.
    pub fn creates_id(&self) -> bool {
        matches!(self, Command::AddSeat { .. })
    }

    /// This command's row in the permission table.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::AddSeat { .. } => CommandKind::AddSeat,
            Command::ChangePhase { .. } => CommandKind::ChangePhase,
            Command::SetParticipantState { .. } => CommandKind::SetParticipantState,
            Command::SubmitArrival { .. } => CommandKind::SubmitArrival,
            Command::SelfReport { .. } => CommandKind::SelfReport,
            Command::AcknowledgeSupport { .. } => CommandKind::AcknowledgeSupport,
            Command::ObserveCheckIn { .. } => CommandKind::ObserveCheckIn,
            Command::RecordVital { .. } => CommandKind::RecordVital,
            Command::RecordDose { .. } => CommandKind::RecordDose,
            Command::Discharge { .. } => CommandKind::Discharge,
            Command::AddNote { .. } => CommandKind::AddNote,
            Command::PostGroupMessage { .. } => CommandKind::PostGroupMessage,
            Command::SubmitPostSession { .. } => CommandKind::SubmitPostSession,
            Command::RecordRating { .. } => CommandKind::RecordRating,
            Command::AssignFacilitator { .. } => CommandKind::AssignFacilitator,
            Command::ConfirmRideHome { .. } => CommandKind::ConfirmRideHome,
            Command::EndDeviceFeed { .. } => CommandKind::EndDeviceFeed,
            Command::AcknowledgeAlarm { .. } => CommandKind::AcknowledgeAlarm,
            Command::PauseAlarmAudio { .. } => CommandKind::PauseAlarmAudio,
            Command::SetAlarmRule { .. } => CommandKind::SetAlarmRule,
        }
    }

    /// The seat the command acts on, if any.
    pub fn seat(&self) -> Option<SeatId> {
        match self {
            Command::AddSeat { .. }
            | Command::ChangePhase { .. }
            | Command::PostGroupMessage { .. }
            | Command::AcknowledgeAlarm { .. }
            | Command::PauseAlarmAudio { .. } => None,
            Command::SetAlarmRule { seat, .. } => *seat,
            Command::SetParticipantState { seat, .. }
            | Command::SubmitArrival { seat, .. }
            | Command::SelfReport { seat, .. }
            | Command::AcknowledgeSupport { seat }
            | Command::ObserveCheckIn { seat, .. }
            | Command::RecordVital { seat, .. }
            | Command::RecordDose { seat, .. }
            | Command::Discharge { seat, .. }
            | Command::RecordRating { seat, .. }
            | Command::AssignFacilitator { seat, .. }
            | Command::ConfirmRideHome { seat }
            | Command::EndDeviceFeed { seat, .. }
            | Command::AddNote { seat, .. }
            | Command::SubmitPostSession { seat, .. } => Some(*seat),
        }
    }
}

/// Why a command was refused: a code for programs and a sentence for people.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    /// Machine-readable reason.
    pub code: RejectCode,
    /// What was wrong, in words a clinician can act on.
    pub message: String,
}

impl Rejection {
    /// A rejection with this code and message.
    pub fn new(code: RejectCode, message: impl Into<String>) -> Rejection {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

/// Machine-readable reasons for refusing a command.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The sender's role may not send this command, or not for this seat.
    Forbidden,
    /// No such seat in this session.
    UnknownSeat,
    /// The session is closed.
    SessionClosed,
    /// Not possible in the session's current phase.
    WrongPhase,
    /// Not a legal step from the participant's current state.
    InvalidTransition,
    /// A vital sign outside its plausible range.
    ImplausibleVital,
    /// A field is missing, too long or out of range.
    InvalidInput,
    /// Already recorded and may not be recorded twice.
    AlreadyRecorded,
    /// Nothing to act on (e.g. no open support request).
    NothingToDo,
    /// The store could not record it; nothing was recorded. Try again.
    StorageUnavailable,
    /// The session is overloaded; nothing was recorded. Try again.
    Busy,
    /// The pre-dose BP hold: no recent BP, or one above the threshold. A
    /// medical override with a reason doses anyway.
    DoseHold,
    /// A discharge checklist item does not hold. A medical override with a
    /// reason discharges anyway.
    DischargeNotReady,
    /// No such alarm (or no longer active).
    UnknownAlarm,
}
