//! The live picture of one session, and the one reducer that builds it from
//! events. The server and the browser both fold events with
//! [`SessionState::apply`]; nothing else changes a `SessionState`.

use crate::alarm::{Alarm, AlarmRule};
use crate::event::{Event, EventBody};
use crate::ids::{ClinicId, SeatId, Seq, SessionId, StaffId, Timestamp};
use crate::monitor::{self, DischargeChecklist};
use crate::phase::{ParticipantState, SessionPhase};
use crate::policy::ClinicPolicy;
use crate::records::{
    ArrivalForm, Dose, ObservedStatus, PostSessionForm, Rating, SelfReport, SupportReason,
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
    /// When the phase began.
    pub phase_since: Timestamp,
    /// Seats in the order they were added.
    pub seats: Vec<Seat>,
    /// Messages to the whole group, oldest first.
    pub group_messages: Vec<GroupMessage>,
    /// Alarm rules changed for this session (over the policy's).
    pub rule_overrides: Vec<AlarmRule>,
    /// Alarms raised and not yet cleared, oldest first.
    pub alarms: Vec<Alarm>,
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
    /// When they entered that state.
    pub state_since: Timestamp,
    /// When they first entered emergence (the pre-discharge BP is due then).
    pub emerged_at: Option<Timestamp>,
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
    /// Every BP reading, in the order recorded (few: the schedule, the hold
    /// and the monitoring form need them all).
    pub bp_history: Vec<VitalReading>,
    /// Observer ratings, in order.
    pub ratings: Vec<Stamped<Rating>>,
    /// When SpO2 and respiratory rate were last at respiratory-depression
    /// levels (the monitoring form counts those after the first dose, whenever
    /// the dose was entered).
    pub respiratory_lows: RespiratoryLows,
    /// The facilitator on this participant's check rota.
    pub assigned_facilitator: Option<StaffId>,
    /// Ride home confirmed (on arrival or later by staff).
    pub ride_home_confirmed: bool,
    /// Devices streaming readings for this participant.
    pub feeds: Vec<DeviceFeed>,
    /// Whether their phone is connected, since when; `None` until it first is.
    pub presence: Option<Presence>,
    /// For reading-driven alarm rules: since when the condition has held.
    pub onsets: Vec<Onset>,
    /// Alarm rules changed for this participant.
    pub rule_overrides: Vec<AlarmRule>,
    /// The signed discharge.
    pub discharge: Option<DischargeRecord>,
}

/// The latest measuring times of respiratory-depression readings (SpO2
/// below 88 %, respiratory rate below 8 /min).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct RespiratoryLows {
    /// Latest SpO2 below 88 %.
    pub spo2: Option<Timestamp>,
    /// Latest respiratory rate below 8 /min.
    pub respiratory_rate: Option<Timestamp>,
}

/// A device streaming for a participant.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DeviceFeed {
    /// Device id.
    pub device: String,
    /// When its last reading was received.
    pub last_received_at: Timestamp,
    /// Ended on purpose (its silence is not an alarm).
    pub ended: bool,
}

/// A participant's phone connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Presence {
    /// Connected now.
    pub connected: bool,
    /// Since when.
    pub since: Timestamp,
}

/// When a reading-driven rule's condition began to hold.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Onset {
    /// Rule id.
    pub rule: String,
    /// Since when.
    pub since: Timestamp,
}

/// A signed discharge.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct DischargeRecord {
    /// The checklist at signing.
    pub checklist: DischargeChecklist,
    /// The reason, if discharged although an item did not hold.
    pub override_reason: Option<String>,
    /// The medical provider who signed.
    pub by: StaffId,
    /// When.
    pub at: Timestamp,
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
        at: Timestamp,
    ) -> Seat {
        Seat {
            id,
            display_name,
            weight_kg,
            location,
            state: ParticipantState::Invited,
            state_since: at,
            emerged_at: None,
            arrival: None,
            last_report: None,
            support: None,
            last_observed: None,
            latest_vitals: Vec::new(),
            doses: Vec::new(),
            notes: Vec::new(),
            post_session: None,
            bp_history: Vec::new(),
            ratings: Vec::new(),
            respiratory_lows: RespiratoryLows::default(),
            assigned_facilitator: None,
            ride_home_confirmed: false,
            feeds: Vec::new(),
            presence: None,
            onsets: Vec::new(),
            rule_overrides: Vec::new(),
            discharge: None,
        }
    }

    /// The latest sedation (MOAA/S) rating.
    pub fn latest_sedation(&self) -> Option<(u8, Timestamp)> {
        self.ratings.iter().rev().find_map(|r| match r.value {
            Rating::Sedation { moaas } => Some((moaas, r.at)),
            Rating::Dissociation { .. } => None,
        })
    }

    /// The latest dissociation score.
    pub fn latest_dissociation(&self) -> Option<(u8, Timestamp)> {
        self.ratings.iter().rev().find_map(|r| match r.value {
            Rating::Dissociation { score } => Some((score, r.at)),
            Rating::Sedation { .. } => None,
        })
    }

    /// Since when a reading-driven rule's condition has held.
    pub fn onset(&self, rule: &str) -> Option<Timestamp> {
        self.onsets.iter().find(|o| o.rule == rule).map(|o| o.since)
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
            phase_since: Timestamp::default(),
            seats: Vec::new(),
            group_messages: Vec::new(),
            rule_overrides: Vec::new(),
            alarms: Vec::new(),
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

    /// An active alarm by id.
    pub fn alarm(&self, id: Seq) -> Option<&Alarm> {
        self.alarms.iter().find(|a| a.id == id)
    }

    fn alarm_mut(&mut self, id: Seq) -> Option<&mut Alarm> {
        self.alarms.iter_mut().find(|a| a.id == id)
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
                self.phase_since = at;
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
                        at,
                    ));
                }
            }
            EventBody::PhaseChanged { to, .. } => {
                self.phase = *to;
                self.phase_since = at;
            }
            EventBody::AlarmRuleSet { seat, rule } => {
                let overrides = match seat {
                    None => &mut self.rule_overrides,
                    Some(id) => match self.seats.iter_mut().find(|s| s.id == *id) {
                        Some(s) => &mut s.rule_overrides,
                        None => return true,
                    },
                };
                match overrides.iter_mut().find(|r| r.id == rule.id) {
                    Some(existing) => *existing = rule.clone(),
                    None => overrides.push(rule.clone()),
                }
                // A changed rule starts its confirmation afresh from the
                // latest readings.
                let SessionState {
                    policy,
                    rule_overrides,
                    seats,
                    ..
                } = self;
                for s in seats
                    .iter_mut()
                    .filter(|s| seat.is_none_or(|id| id == s.id))
                {
                    s.onsets.retain(|o| o.rule != rule.id);
                    monitor::update_onsets(
                        &policy.alarm_rules,
                        rule_overrides,
                        s,
                        at,
                        monitor::Changed::Rules,
                    );
                }
            }
            EventBody::AlarmRaised {
                seat,
                rule,
                label,
                priority,
                kind,
                detail,
                notify,
                assigned_to,
                latching,
            } => self.alarms.push(Alarm {
                id: seq,
                seat: *seat,
                rule: rule.clone(),
                label: label.clone(),
                priority: *priority,
                kind: *kind,
                detail: detail.clone(),
                raised_at: at,
                notify: notify.clone(),
                assigned_to: *assigned_to,
                condition_active: true,
                latching: *latching,
                acknowledged: None,
                escalations: 0,
                last_notified_at: at,
                audio_paused_until: None,
            }),
            EventBody::AlarmConditionChanged { alarm, active } => {
                if let Some(a) = self.alarm_mut(*alarm) {
                    a.condition_active = *active;
                }
            }
            EventBody::AlarmAcknowledged { alarm } => {
                if let (Some(a), Some(by)) = (self.alarm_mut(*alarm), by) {
                    a.acknowledged.get_or_insert(Acknowledgement { by, at });
                }
            }
            EventBody::AlarmAudioPaused { alarm, until } => {
                if let Some(a) = self.alarm_mut(*alarm) {
                    a.audio_paused_until = Some(*until);
                }
            }
            EventBody::AlarmEscalated {
                alarm,
                priority,
                notify,
            } => {
                if let Some(a) = self.alarm_mut(*alarm) {
                    a.priority = *priority;
                    a.notify = notify.clone();
                    a.escalations += 1;
                    a.last_notified_at = at;
                    // A re-notification sounds again, whatever pause there was.
                    a.audio_paused_until = None;
                }
            }
            EventBody::AlarmCleared { alarm, .. } => self.alarms.retain(|a| a.id != *alarm),
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
                let SessionState {
                    policy,
                    rule_overrides,
                    seats,
                    ..
                } = self;
                let Some(seat) = body
                    .seat()
                    .and_then(|id| seats.iter_mut().find(|s| s.id == id))
                else {
                    return true;
                };
                apply_to_seat(seat, body, at, seq, by);
                let changed = match body {
                    EventBody::VitalRecorded { reading, .. } => {
                        Some(monitor::Changed::Reading(reading.measurement.kind()))
                    }
                    EventBody::RatingRecorded { .. } => Some(monitor::Changed::Rating),
                    EventBody::DoseRecorded { .. } => Some(monitor::Changed::Dose),
                    _ => None,
                };
                if let Some(changed) = changed {
                    // A condition holds from when the server learned of it: a
                    // device clock running ahead cannot delay an alarm, and a
                    // buffered reading cannot skip the confirmation delay.
                    monitor::update_onsets(&policy.alarm_rules, rule_overrides, seat, at, changed);
                }
            }
        }
        true
    }

    /// What `viewer` may see of this state. For a participant: only their own
    /// seat, without staff observations, notes, ratings, alarms and the
    /// monitoring machinery. Redacting the fold of only the events visible to
    /// them gives the same (but for `last_seq`); a property test holds it so.
    pub fn redacted_for(&self, viewer: Viewer) -> SessionState {
        match viewer {
            Viewer::Staff => self.clone(),
            Viewer::Participant(own) => {
                let mut view = self.clone();
                view.seats.retain(|s| s.id == own);
                view.alarms.clear();
                view.rule_overrides.clear();
                for seat in &mut view.seats {
                    seat.last_observed = None;
                    seat.notes.clear();
                    seat.ratings.clear();
                    seat.assigned_facilitator = None;
                    seat.feeds.clear();
                    seat.presence = None;
                    seat.onsets.clear();
                    seat.rule_overrides.clear();
                    seat.discharge = None;
                    seat.doses.clear();
                }
                view
            }
        }
    }
}

fn apply_to_seat(seat: &mut Seat, body: &EventBody, at: Timestamp, seq: Seq, by: Option<StaffId>) {
    match body {
        EventBody::ParticipantStateChanged { to, .. } => {
            seat.state = *to;
            seat.state_since = at;
            if *to == ParticipantState::Emerging {
                seat.emerged_at.get_or_insert(at);
            }
        }
        EventBody::ArrivalRecorded { form, .. } => {
            seat.ride_home_confirmed |= form.ride_home_arranged;
            seat.arrival = Some(Stamped {
                value: form.clone(),
                at,
                seq,
            });
        }
        EventBody::SelfReported {
            report, made_at, ..
        } => {
            // A report the phone could not send at once is dated by the tap,
            // so the board shows how long the participant has been waiting.
            let at = made_at.unwrap_or(at);
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
            match reading.measurement {
                Measurement::BodyWeight { value } => seat.weight_kg = Some(value),
                Measurement::BloodPressure { .. } => seat.bp_history.push(reading.clone()),
                Measurement::Spo2 { value } if value < monitor::RESP_DEPRESSION_SPO2 => {
                    let last = &mut seat.respiratory_lows.spo2;
                    *last = Some(last.map_or(reading.measured_at, |t| t.max(reading.measured_at)));
                }
                Measurement::RespiratoryRate { value } if value < monitor::RESP_DEPRESSION_RR => {
                    let last = &mut seat.respiratory_lows.respiratory_rate;
                    *last = Some(last.map_or(reading.measured_at, |t| t.max(reading.measured_at)));
                }
                _ => {}
            }
            if let crate::vitals::ReadingSource::Device { device, .. } = &reading.source {
                match seat.feeds.iter_mut().find(|f| &f.device == device) {
                    Some(feed) => {
                        feed.last_received_at = reading.received_at;
                        feed.ended = false;
                    }
                    None => seat.feeds.push(DeviceFeed {
                        device: device.clone(),
                        last_received_at: reading.received_at,
                        ended: false,
                    }),
                }
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
        EventBody::RatingRecorded { rating, .. } => seat.ratings.push(Stamped {
            value: *rating,
            at,
            seq,
        }),
        EventBody::FacilitatorAssigned { staff, .. } => seat.assigned_facilitator = *staff,
        EventBody::RideHomeConfirmed { .. } => seat.ride_home_confirmed = true,
        EventBody::DeviceFeedEnded { device, .. } => {
            if let Some(feed) = seat.feeds.iter_mut().find(|f| &f.device == device) {
                feed.ended = true;
            }
        }
        EventBody::ParticipantConnected { .. } => {
            seat.presence = Some(Presence {
                connected: true,
                since: at,
            })
        }
        EventBody::ParticipantDisconnected { .. } => {
            seat.presence = Some(Presence {
                connected: false,
                since: at,
            })
        }
        EventBody::DischargeSigned {
            checklist,
            override_reason,
            ..
        } => {
            if let Some(by) = by {
                seat.discharge = Some(DischargeRecord {
                    checklist: checklist.clone(),
                    override_reason: override_reason.clone(),
                    by,
                    at,
                });
            }
        }
        EventBody::SessionCreated { .. }
        | EventBody::SeatAdded { .. }
        | EventBody::PhaseChanged { .. }
        | EventBody::GroupMessagePosted { .. }
        | EventBody::AlarmRuleSet { .. }
        | EventBody::AlarmRaised { .. }
        | EventBody::AlarmConditionChanged { .. }
        | EventBody::AlarmAcknowledged { .. }
        | EventBody::AlarmAudioPaused { .. }
        | EventBody::AlarmEscalated { .. }
        | EventBody::AlarmCleared { .. } => {}
    }
}
