//! Events: the durable record of everything that happened in a session, in
//! order. The log of events is the truth; every other view is a fold of it.

use crate::alarm::{AlarmKind, AlarmPriority, AlarmRule, ClearReason};
use crate::ids::{ClinicId, CommandId, SeatId, Seq, SessionId, StaffId, Timestamp};
use crate::monitor::DischargeChecklist;
use crate::phase::{ParticipantState, SessionPhase};
use crate::policy::ClinicPolicy;
use crate::records::{ArrivalForm, Dose, ObservedStatus, PostSessionForm, Rating, SelfReport};
use crate::role::{Actor, Role, Viewer};
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
        /// When the participant made it, if it reached the server later (the
        /// phone was offline): the report's time. Absent: the event's time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        made_at: Option<Timestamp>,
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
    /// An observer rating (sedation, dissociation).
    RatingRecorded {
        /// Whom.
        seat: SeatId,
        /// The rating.
        rating: Rating,
    },
    /// A facilitator is (or no one is) on the check rota for a participant.
    FacilitatorAssigned {
        /// Whose checks.
        seat: SeatId,
        /// The facilitator, or `None` for anyone.
        staff: Option<StaffId>,
    },
    /// Staff confirmed the participant's ride home.
    RideHomeConfirmed {
        /// Whose.
        seat: SeatId,
    },
    /// A device stopped streaming on purpose (probe removed).
    DeviceFeedEnded {
        /// Whose.
        seat: SeatId,
        /// Which device.
        device: String,
    },
    /// The participant's phone connected (from none).
    ParticipantConnected {
        /// Whose.
        seat: SeatId,
    },
    /// The participant's last connection closed.
    ParticipantDisconnected {
        /// Whose.
        seat: SeatId,
    },
    /// The medical provider signed the discharge, with the checklist as it
    /// stood and, if not every item held, the reason for discharging anyway.
    DischargeSigned {
        /// Whom.
        seat: SeatId,
        /// The checklist at signing.
        checklist: DischargeChecklist,
        /// Why discharged although an item did not hold.
        override_reason: Option<String>,
    },
    /// An alarm rule changed for the session (`seat: None`) or one participant.
    AlarmRuleSet {
        /// The participant, or `None` for the whole session.
        seat: Option<SeatId>,
        /// The rule, replacing any with the same id.
        rule: AlarmRule,
    },
    /// An alarm was raised; its id is this event's seq.
    AlarmRaised {
        /// Whose.
        seat: SeatId,
        /// The rule's id.
        rule: String,
        /// The rule's label.
        label: String,
        /// Priority.
        priority: AlarmPriority,
        /// Kind.
        kind: AlarmKind,
        /// Why, in words.
        detail: String,
        /// Roles notified first.
        notify: Vec<Role>,
        /// The rota facilitator, if any.
        assigned_to: Option<StaffId>,
        /// Stays after the condition ends until acknowledged.
        latching: bool,
    },
    /// An alarm's condition ended (it stays: latching, unacknowledged) or returned.
    AlarmConditionChanged {
        /// The alarm.
        alarm: Seq,
        /// Whether the condition now holds.
        active: bool,
    },
    /// Someone took responsibility for an alarm; its audio stops.
    AlarmAcknowledged {
        /// The alarm.
        alarm: Seq,
    },
    /// Audio silenced for this occurrence until `until` (at most 2 minutes).
    AlarmAudioPaused {
        /// The alarm.
        alarm: Seq,
        /// Until when.
        until: Timestamp,
    },
    /// Nobody acknowledged in time: notify again, more widely (and maybe at a
    /// higher priority).
    AlarmEscalated {
        /// The alarm.
        alarm: Seq,
        /// Priority from now on.
        priority: AlarmPriority,
        /// Roles notified from now on.
        notify: Vec<Role>,
    },
    /// An alarm left the list.
    AlarmCleared {
        /// The alarm.
        alarm: Seq,
        /// Why.
        reason: ClearReason,
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

impl Audience {
    /// Whether `viewer` is in this audience.
    pub fn includes(self, viewer: Viewer) -> bool {
        match (viewer, self) {
            (Viewer::Staff, _) | (_, Audience::Everyone) => true,
            (Viewer::Participant(own), Audience::SeatAndStaff(seat)) => own == seat,
            (Viewer::Participant(_), Audience::StaffOnly) => false,
        }
    }
}

impl EventBody {
    /// The seat this event is about, if any.
    pub fn seat(&self) -> Option<SeatId> {
        use EventBody::*;
        match self {
            SessionCreated { .. }
            | PhaseChanged { .. }
            | GroupMessagePosted { .. }
            | AlarmConditionChanged { .. }
            | AlarmAcknowledged { .. }
            | AlarmAudioPaused { .. }
            | AlarmEscalated { .. }
            | AlarmCleared { .. } => None,
            AlarmRuleSet { seat, .. } => *seat,
            RatingRecorded { seat, .. }
            | FacilitatorAssigned { seat, .. }
            | RideHomeConfirmed { seat }
            | DeviceFeedEnded { seat, .. }
            | ParticipantConnected { seat }
            | ParticipantDisconnected { seat }
            | DischargeSigned { seat, .. }
            | AlarmRaised { seat, .. }
            | SeatAdded { seat, .. }
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
            // Clinical observations, alarms and the monitoring machinery stay
            // with staff: a phone in a dim room shows its owner's own record,
            // not an SpO2 alarm about them.
            ObservedCheckIn { .. }
            | NoteAdded { .. }
            // A dose record carries the provider's override reasoning.
            | DoseRecorded { .. }
            | RatingRecorded { .. }
            | FacilitatorAssigned { .. }
            | DeviceFeedEnded { .. }
            | ParticipantConnected { .. }
            | ParticipantDisconnected { .. }
            | DischargeSigned { .. }
            | AlarmRuleSet { .. }
            | AlarmRaised { .. }
            | AlarmConditionChanged { .. }
            | AlarmAcknowledged { .. }
            | AlarmAudioPaused { .. }
            | AlarmEscalated { .. }
            | AlarmCleared { .. } => Audience::StaffOnly,
            RideHomeConfirmed { seat }
            | SeatAdded { seat, .. }
            | ParticipantStateChanged { seat, .. }
            | ArrivalRecorded { seat, .. }
            | SelfReported { seat, .. }
            | SupportAcknowledged { seat }
            | VitalRecorded { seat, .. }
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
            RatingRecorded { .. } => "rating_recorded",
            FacilitatorAssigned { .. } => "facilitator_assigned",
            RideHomeConfirmed { .. } => "ride_home_confirmed",
            DeviceFeedEnded { .. } => "device_feed_ended",
            ParticipantConnected { .. } => "participant_connected",
            ParticipantDisconnected { .. } => "participant_disconnected",
            DischargeSigned { .. } => "discharge_signed",
            AlarmRuleSet { .. } => "alarm_rule_set",
            AlarmRaised { .. } => "alarm_raised",
            AlarmConditionChanged { .. } => "alarm_condition_changed",
            AlarmAcknowledged { .. } => "alarm_acknowledged",
            AlarmAudioPaused { .. } => "alarm_audio_paused",
            AlarmEscalated { .. } => "alarm_escalated",
            AlarmCleared { .. } => "alarm_cleared",
        }
    }
}

impl Event {
    /// Whether `viewer` may see this event.
    pub fn visible_to(&self, viewer: Viewer) -> bool {
        self.body.audience().includes(viewer)
    }
}
