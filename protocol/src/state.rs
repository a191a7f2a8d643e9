//! The live picture of one session, and the one reducer that builds it from
//! events. The server and the browser both fold events with
//! [`SessionState::apply`]; nothing else changes a `SessionState`.

use crate::event::{Event, EventBody};
use crate::ids::{ClinicId, SeatId, Seq, SessionId, StaffId, Timestamp};
use crate::phase::{ParticipantState, SessionPhase};
use crate::policy::ClinicPolicy;
use crate::records::{
    ArrivalForm, Dose, ObservedStatus, PostSessionForm, SelfReport, SupportReason,
};
use crate::role::{Actor, Viewer};
use crate::vitals::{Measurement, VitalKind, VitalReading};
use serde::{Deserialize, Serialize};

/// Everything known about one session at one point of its log.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct SessionState {
    /// The session.
    pub id: SessionId,
    /// Owning clinic (nil until `session_created` is applied).
    pub clinic: ClinicId,
    /// Title.
    pub title: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// The policy in force.
    pub policy: ClinicPolicy,
    /// The group's phase.
    pub phase: SessionPhase,
    /// Seats in the order they were added.
    pub seats: Vec<Seat>,
    /// Messages to the whole group, oldest first.
    pub group_messages: Vec<GroupMessage>,
    /// The last event applied.
    pub last_seq: Seq,
}

/// One participant's seat and everything recorded about them.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Seat {
    /// The seat.
    pub id: SeatId,
    /// First name or pseudonym.
    pub display_name: String,
    /// Latest known weight, kg.
    pub weight_kg: Option<f64>,
    /// Where in the room.
    pub location: Option<String>,
    /// Where they are on their path.
    pub state: ParticipantState,
    /// Arrival check-in, once done.
    pub arrival: Option<Stamped<ArrivalForm>>,
    /// Their latest "I'm OK" / "I need support".
    pub last_report: Option<Stamped<SelfReport>>,
    /// Their latest support request, open or acknowledged.
    pub support: Option<SupportRequest>,
    /// The latest facilitator observation (staff only).
    pub last_observed: Option<ObservedCheckIn>,
    /// The latest reading of each vital kind (by measured-at).
    pub latest_vitals: Vec<VitalReading>,
    /// Doses given, in order.
    pub doses: Vec<Dose>,
    /// Clinical notes (staff only).
    pub notes: Vec<Note>,
    /// Post-session check-in, once done.
    pub post_session: Option<Stamped<PostSessionForm>>,
}

/// A record with the time the server recorded it and its event.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Stamped<T> {
    /// The record.
    pub value: T,
    /// When recorded.
    pub at: Timestamp,
    /// The event that recorded it.
    pub seq: Seq,
}

/// A participant's request for support.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SupportRequest {
    /// Reasons given (merged over repeated presses).
    pub reasons: Vec<SupportReason>,
    /// Latest optional words.
    pub note: Option<String>,
    /// First press.
    pub requested_at: Timestamp,
    /// How many times they pressed while it was open.
    pub presses: u32,
    /// Who saw it and when; `None` while open.
    pub acknowledged: Option<Acknowledgement>,
}

impl SupportRequest {
    /// Still waiting for a staff member.
    pub fn is_open(&self) -> bool {
        self.acknowledged.is_none()
    }
}

/// Who acknowledged something, and when.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Staff member.
    pub by: StaffId,
    /// When.
    pub at: Timestamp,
}

/// A facilitator's observed check-in.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ObservedCheckIn {
    /// What they saw.
    pub status: ObservedStatus,
    /// Optional note.
    pub note: Option<String>,
    /// Who.
    pub by: StaffId,
    /// When.
    pub at: Timestamp,
}

/// A clinical note.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Note {
    /// The note.
    pub text: String,
    /// Who wrote it.
    pub by: StaffId,
    /// When.
    pub at: Timestamp,
}

/// A message to the whole group.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GroupMessage {
    /// The message.
    pub text: String,
    /// Who posted it.
    pub by: StaffId,
    /// When.
    pub at: Timestamp,
}

impl Seat {
    fn new(
        id: SeatId,
        display_name: String,
        weight_kg: Option<f64>,
        location: Option<String>,
    ) -> Seat {
        Seat {
            id,
            display_name,
            weight_kg,
            location,
            state: ParticipantState::Invited,
            arrival: None,
            last_report: None,
            support: None,
            last_observed: None,
            latest_vitals: Vec::new(),
            doses: Vec::new(),
            notes: Vec::new(),
            post_session: None,
        }
    }

    /// The latest reading of one kind.
    pub fn latest(&self, kind: VitalKind) -> Option<&VitalReading> {
        self.latest_vitals
            .iter()
            .find(|r| r.measurement.kind() == kind)
    }

    /// When the first dose was given.
    pub fn first_dose_at(&self) -> Option<Timestamp> {
        self.doses.iter().map(|d| d.administered_at).min()
    }

    /// Has an unacknowledged support request.
    pub fn needs_support(&self) -> bool {
        self.support.as_ref().is_some_and(SupportRequest::is_open)
    }
}

fn staff_of(actor: &Actor) -> Option<StaffId> {
    match actor {
        Actor::Staff { staff, .. } => Some(*staff),
        Actor::Participant { .. } | Actor::System => None,
    }
}

impl SessionState {
    /// A session before its first event.
    pub fn empty(id: SessionId) -> SessionState {
        SessionState {
            id,
            clinic: ClinicId::from_uuid(uuid::Uuid::nil()),
            title: String::new(),
            created_at: Timestamp::default(),
            policy: ClinicPolicy::default(),
            phase: SessionPhase::Preparation,
            seats: Vec::new(),
            group_messages: Vec::new(),
            last_seq: Seq::ZERO,
        }
    }

    /// Folds a whole log.
    pub fn from_events<'a>(
        id: SessionId,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> SessionState {
        let mut state = SessionState::empty(id);
        for event in events {
            state.apply(event);
        }
        state
    }

    /// A seat by id.
    pub fn seat(&self, id: SeatId) -> Option<&Seat> {
        self.seats.iter().find(|s| s.id == id)
    }

    fn seat_mut(&mut self, id: SeatId) -> Option<&mut Seat> {
        self.seats.iter_mut().find(|s| s.id == id)
    }

    /// THE reducer. Applies one event and returns whether it was applied.
    ///
    /// Events of another session, or at or before `last_seq`, are ignored: a
    /// client that is sent an event twice around a reconnect shows it once.
    /// Events are checked before they are recorded (see [`crate::decide`]),
    /// so applying never fails; a reference to an unknown seat changes nothing.
    pub fn apply(&mut self, event: &Event) -> bool {
        if event.session != self.id || event.seq <= self.last_seq {
            return false;
        }
        self.last_seq = event.seq;
        let at = event.at;
        let seq = event.seq;
        let by = staff_of(&event.actor);
        match &event.body {
            EventBody::SessionCreated {
                clinic,
                title,
                policy,
            } => {
                self.clinic = *clinic;
                self.title = title.clone();
                self.policy = policy.clone();
                self.created_at = at;
            }
            EventBody::SeatAdded {
                seat,
                display_name,
                weight_kg,
                location,
            } => {
                if self.seat(*seat).is_none() {
                    self.seats.push(Seat::new(
                        *seat,
                        display_name.clone(),
                        *weight_kg,
                        location.clone(),
                    ));
                }
            }
            EventBody::PhaseChanged { to, .. } => self.phase = *to,
            EventBody::GroupMessagePosted { text } => {
                if let Some(by) = by {
                    self.group_messages.push(GroupMessage {
                        text: text.clone(),
                        by,
                        at,
                    });
                }
            }
            body => {
                let Some(seat) = body.seat().and_then(|id| self.seat_mut(id)) else {
                    return true;
                };
                apply_to_seat(seat, body, at, seq, by);
            }
        }
        true
    }

    /// What `viewer` may see of this state. For a participant: only their own
    /// seat, without staff observations and notes. Equal (but for `last_seq`)
    /// to folding only the events visible to them; a property test holds it so.
    pub fn redacted_for(&self, viewer: Viewer) -> SessionState {
        match viewer {
            Viewer::Staff => self.clone(),
            Viewer::Participant(own) => {
                let mut view = self.clone();
                view.seats.retain(|s| s.id == own);
                for seat in &mut view.seats {
                    seat.last_observed = None;
                    seat.notes.clear();
                }
                view
            }
        }
    }
}

fn apply_to_seat(seat: &mut Seat, body: &EventBody, at: Timestamp, seq: Seq, by: Option<StaffId>) {
    match body {
        EventBody::ParticipantStateChanged { to, .. } => seat.state = *to,
        EventBody::ArrivalRecorded { form, .. } => {
            seat.arrival = Some(Stamped {
                value: form.clone(),
                at,
                seq,
            });
        }
        EventBody::SelfReported { report, .. } => {
            if let SelfReport::NeedSupport { reasons, note } = report {
                match seat.support.as_mut().filter(|s| s.is_open()) {
                    Some(open) => {
                        open.presses += 1;
                        for r in reasons {
                            if !open.reasons.contains(r) {
                                open.reasons.push(*r);
                            }
                        }
                        if note.is_some() {
                            open.note = note.clone();
                        }
                    }
                    None => {
                        seat.support = Some(SupportRequest {
                            reasons: reasons.clone(),
                            note: note.clone(),
                            requested_at: at,
                            presses: 1,
                            acknowledged: None,
                        });
                    }
                }
            }
            seat.last_report = Some(Stamped {
                value: report.clone(),
                at,
                seq,
            });
        }
        EventBody::SupportAcknowledged { .. } => {
            if let (Some(request), Some(by)) = (seat.support.as_mut(), by) {
                request
                    .acknowledged
                    .get_or_insert(Acknowledgement { by, at });
            }
        }
        EventBody::ObservedCheckIn { status, note, .. } => {
            if let Some(by) = by {
                seat.last_observed = Some(ObservedCheckIn {
                    status: *status,
                    note: note.clone(),
                    by,
                    at,
                });
            }
        }
        EventBody::VitalRecorded { reading, .. } => {
            if let Measurement::BodyWeight { value } = reading.measurement {
                seat.weight_kg = Some(value);
            }
            let kind = reading.measurement.kind();
            match seat
                .latest_vitals
                .iter_mut()
                .find(|r| r.measurement.kind() == kind)
            {
                // A late-entered older reading joins the record but is not "latest".
                Some(latest) if latest.measured_at > reading.measured_at => {}
                Some(latest) => *latest = reading.clone(),
                None => seat.latest_vitals.push(reading.clone()),
            }
        }
        EventBody::DoseRecorded { dose, .. } => seat.doses.push(dose.clone()),
        EventBody::NoteAdded { text, .. } => {
            if let Some(by) = by {
                seat.notes.push(Note {
                    text: text.clone(),
                    by,
                    at,
                });
            }
        }
        EventBody::PostSessionRecorded { form, .. } => {
            seat.post_session = Some(Stamped {
                value: form.clone(),
                at,
                seq,
            });
        }
        EventBody::SessionCreated { .. }
        | EventBody::SeatAdded { .. }
        | EventBody::PhaseChanged { .. }
        | EventBody::GroupMessagePosted { .. } => {}
    }
}
