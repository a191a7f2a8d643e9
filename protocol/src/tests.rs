//! Tests of the decide → apply cycle as the server runs it, and property tests
//! of the reducer: replay determinism, the privacy of redaction, and the role
//! table under arbitrary command sequences.

use crate::*;
use proptest::prelude::*;
use uuid::Uuid;

const T0: Timestamp = Timestamp(1_790_000_000_000);

pub(crate) fn staff(n: u128, role: StaffRole) -> Actor {
    Actor::Staff {
        staff: StaffId::from_uuid(Uuid::from_u128(0x5000 + n)),
        role,
    }
}

pub(crate) fn admin() -> Actor {
    staff(0, StaffRole::Admin)
}
pub(crate) fn facilitator() -> Actor {
    staff(1, StaffRole::Facilitator)
}
pub(crate) fn medical() -> Actor {
    staff(2, StaffRole::Medical)
}

/// Runs commands exactly as the server's session task does: decide, stamp with
/// the next seqs, apply.
pub(crate) struct Harness {
    pub(crate) state: SessionState,
    pub(crate) log: Vec<Event>,
    pub(crate) now: Timestamp,
    ids: u128,
    /// Each seat's next deadline as the session task keeps them: refreshed
    /// for the seats a command touched, or all at a full evaluation.
    deadlines: std::collections::HashMap<SeatId, Timestamp>,
}

impl Harness {
    pub(crate) fn new() -> Harness {
        let session = SessionId::from_uuid(Uuid::from_u128(1));
        let mut h = Harness {
            state: SessionState::empty(session),
            log: Vec::new(),
            now: T0,
            ids: 0x1000,
            deadlines: Default::default(),
        };
        h.record(
            admin(),
            None,
            vec![EventBody::SessionCreated {
                clinic: ClinicId::from_uuid(Uuid::from_u128(2)),
                title: "Tuesday group".into(),
                policy: ClinicPolicy::default(),
            }],
        );
        h
    }

    pub(crate) fn with_seats(n: usize) -> (Harness, Vec<SeatId>) {
        let mut h = Harness::new();
        let seats = (0..n)
            .map(|i| {
                h.run(
                    facilitator(),
                    Command::AddSeat {
                        display_name: format!("P{i}"),
                        weight_kg: Some(70.0),
                        location: None,
                    },
                )
                .unwrap();
                h.state.seats[i].id
            })
            .collect();
        (h, seats)
    }

    pub(crate) fn record(
        &mut self,
        actor: Actor,
        command: Option<CommandId>,
        bodies: Vec<EventBody>,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        for body in bodies {
            let event = Event {
                session: self.state.id,
                seq: self.state.last_seq.next(),
                at: self.now,
                actor,
                command,
                body,
            };
            assert!(self.state.apply(&event));
            self.log.push(event.clone());
            out.push(event);
        }
        out
    }

    /// Runs a command, then the alarm evaluation, as the session task does.
    pub(crate) fn run(&mut self, actor: Actor, command: Command) -> Result<Vec<Event>, Rejection> {
        self.run_made(actor, command, None)
    }

    /// Runs a command its sender made `age_ms` before sending it.
    pub(crate) fn run_made(
        &mut self,
        actor: Actor,
        command: Command,
        age_ms: Option<u64>,
    ) -> Result<Vec<Event>, Rejection> {
        self.ids += 1;
        let ctx = Context {
            actor,
            now: self.now,
            fresh_id: Uuid::from_u128(self.ids),
            made_at: Context::made_at(self.now, age_ms),
        };
        let bodies = decide(&self.state, &ctx, &command)?;
        let key = CommandId::from_uuid(Uuid::from_u128(self.ids));
        let events = self.record(actor, Some(key), bodies);
        // As the session task decides: only the touched seats, unless a
        // deadline has passed or the events concern the whole session. The
        // full evaluation must say the same.
        let due = self
            .deadlines
            .values()
            .min()
            .is_some_and(|d| self.now >= *d);
        match monitor::touched_seats(&events).filter(|_| !due) {
            Some(seats) => {
                let bodies =
                    monitor::evaluate_in(&self.state, self.now, monitor::Scope::Seats(&seats));
                assert_eq!(
                    bodies,
                    monitor::evaluate(&self.state, self.now),
                    "evaluating only {seats:?}"
                );
                self.record(Actor::System, None, bodies);
                self.refresh_deadlines(monitor::Scope::Seats(&seats));
            }
            None => {
                self.evaluate();
            }
        }
        Ok(events)
    }

    /// Keeps the per-seat deadlines as the session task does and checks
    /// that they add up to the session's next deadline.
    fn refresh_deadlines(&mut self, scope: monitor::Scope<'_>) {
        for seat in &self.state.seats {
            if scope.covers(seat.id) {
                match monitor::seat_deadline(&self.state, seat, self.now) {
                    Some(at) => self.deadlines.insert(seat.id, at),
                    None => self.deadlines.remove(&seat.id),
                };
            }
        }
        assert_eq!(
            self.deadlines.values().min().copied(),
            monitor::next_deadline(&self.state, self.now),
            "the per-seat deadlines miss one"
        );
    }

    /// Lets time pass, evaluating alarms at every deadline on the way.
    pub(crate) fn advance(&mut self, ms: i64) {
        let end = self.now.plus_ms(ms);
        while let Some(at) = monitor::next_deadline(&self.state, self.now).filter(|at| *at <= end) {
            self.now = at;
            self.evaluate();
        }
        self.now = end;
        self.evaluate();
    }

    pub(crate) fn evaluate(&mut self) -> Vec<Event> {
        let bodies = monitor::evaluate(&self.state, self.now);
        let events = self.record(Actor::System, None, bodies);
        self.refresh_deadlines(monitor::Scope::All);
        events
    }

    pub(crate) fn phase(&mut self, to: SessionPhase) {
        self.run(facilitator(), Command::ChangePhase { to })
            .unwrap();
    }
}

pub(crate) fn arrival() -> ArrivalForm {
    ArrivalForm {
        mood: Score::try_from(6).unwrap(),
        anxiety: Score::try_from(3).unwrap(),
        intention: "to rest".into(),
        fasting_confirmed: true,
        ride_home_arranged: true,
        consent_to_touch: false,
    }
}

/// "I need support", no reasons given.
pub(crate) fn support_press(seat: SeatId) -> Command {
    Command::SelfReport {
        seat,
        report: SelfReport::NeedSupport {
            reasons: vec![],
            note: None,
        },
    }
}

pub(crate) fn participant(seat: SeatId) -> Actor {
    Actor::Participant { seat }
}

pub(crate) fn bp(seat: SeatId, systolic: f64, diastolic: f64) -> Command {
    Command::RecordVital {
        seat,
        measurement: Measurement::BloodPressure {
            systolic,
            diastolic,
        },
        measured_at: None,
        device: None,
    }
}

pub(crate) fn spo2(seat: SeatId, value: f64) -> Command {
    Command::RecordVital {
        seat,
        measurement: Measurement::Spo2 { value },
        measured_at: None,
        device: None,
    }
}

pub(crate) fn discharge(seat: SeatId) -> Command {
    Command::Discharge {
        seat,
        override_reason: None,
    }
}

#[test]
fn a_participant_walks_the_whole_path() {
    let (mut h, seats) = Harness::with_seats(1);
    let s = seats[0];
    let me = participant(s);
    h.run(
        me,
        Command::SubmitArrival {
            seat: s,
            form: arrival(),
        },
    )
    .unwrap();
    assert_eq!(h.state.seat(s).unwrap().state, ParticipantState::Arrived);
    h.run(
        facilitator(),
        Command::SetParticipantState {
            seat: s,
            to: ParticipantState::Ready,
        },
    )
    .unwrap();
    h.phase(SessionPhase::Intentions);
    h.phase(SessionPhase::Dosing);
    h.run(medical(), bp(s, 126.0, 80.0)).unwrap();
    let dose = Command::RecordDose {
        seat: s,
        route: Route::Im,
        mg: 35.0,
        lot: "L-22".into(),
        administered_at: None,
        override_reason: None,
    };
    let events = h.run(medical(), dose).unwrap();
    assert_eq!(events.len(), 2, "dose and the state change to dosed");
    let seat = h.state.seat(s).unwrap();
    assert_eq!(seat.state, ParticipantState::Dosed);
    assert_eq!(seat.doses[0].mg_per_kg, Some(0.5));
    h.phase(SessionPhase::Experience);
    for to in [
        ParticipantState::InExperience,
        ParticipantState::Emerging,
        ParticipantState::Integrating,
    ] {
        h.run(facilitator(), Command::SetParticipantState { seat: s, to })
            .unwrap();
    }
    h.phase(SessionPhase::Integration);
    h.run(
        me,
        Command::SubmitPostSession {
            seat: s,
            form: PostSessionForm {
                mood: Score::try_from(8).unwrap(),
                journal: "lighter".into(),
            },
        },
    )
    .unwrap();
    let early = h.run(medical(), discharge(s)).unwrap_err();
    assert_eq!(early.code, RejectCode::DischargeNotReady);
    assert!(
        early
            .message
            .contains("since the first dose (at least 120 min)"),
        "{}",
        early.message
    );
    assert!(
        early.message.contains("no MOAA/S rating is recorded"),
        "{}",
        early.message
    );
    h.advance(120 * MINUTE_MS);
    h.run(medical(), bp(s, 122.0, 78.0)).unwrap();
    h.run(medical(), spo2(s, 98.0)).unwrap();
    h.run(
        medical(),
        Command::RecordRating {
            seat: s,
            rating: Rating::Sedation { moaas: 5 },
        },
    )
    .unwrap();
    let alarms: Vec<_> = h.state.alarms.iter().map(|a| a.rule.clone()).collect();
    assert!(
        alarms.iter().all(|r| r == "check-overdue" || r == "bp-due"),
        "{alarms:?}"
    );
    h.run(medical(), discharge(s)).unwrap();
    let seat = h.state.seat(s).unwrap();
    assert_eq!(seat.state, ParticipantState::Discharged);
    let signed = seat.discharge.as_ref().unwrap();
    assert!(signed.checklist.all_met() && signed.override_reason.is_none());
    assert!(
        h.state.alarms.is_empty(),
        "a discharged participant's alarms are cleared"
    );
    h.phase(SessionPhase::Closed);
    let late = h.run(
        me,
        Command::SelfReport {
            seat: s,
            report: SelfReport::Ok {},
        },
    );
    assert_eq!(late.unwrap_err().code, RejectCode::SessionClosed);
}

#[test]
fn support_request_is_open_until_acknowledged_and_presses_merge() {
    let (mut h, seats) = Harness::with_seats(1);
    let s = seats[0];
    let press = |reasons: Vec<SupportReason>| Command::SelfReport {
        seat: s,
        report: SelfReport::NeedSupport {
            reasons,
            note: None,
        },
    };
    h.run(participant(s), press(vec![SupportReason::Nausea]))
        .unwrap();
    h.run(
        participant(s),
        press(vec![SupportReason::Cold, SupportReason::Nausea]),
    )
    .unwrap();
    let support = h.state.seat(s).unwrap().support.clone().unwrap();
    assert!(support.is_open());
    assert_eq!(support.presses, 2);
    assert_eq!(
        support.reasons,
        [SupportReason::Nausea, SupportReason::Cold]
    );
    h.run(facilitator(), Command::AcknowledgeSupport { seat: s })
        .unwrap();
    assert!(!h.state.seat(s).unwrap().needs_support());
    let again = h.run(facilitator(), Command::AcknowledgeSupport { seat: s });
    assert_eq!(again.unwrap_err().code, RejectCode::NothingToDo);
}

#[test]
fn a_report_the_phone_could_not_send_at_once_is_dated_by_the_tap() {
    let (mut h, seats) = Harness::with_seats(2);
    let (a, b) = (seats[0], seats[1]);
    let help = support_press;
    h.advance(5 * 60_000);
    // Tapped 35 s before the phone was back online.
    let events = h.run_made(participant(a), help(a), Some(35_000)).unwrap();
    let tapped = h.now.plus_ms(-35_000);
    assert!(matches!(
        events[0].body,
        EventBody::SelfReported { made_at: Some(at), .. } if at == tapped
    ));
    assert_eq!(events[0].at, h.now, "recorded when it arrived");
    let seat = h.state.seat(a).unwrap();
    assert_eq!(seat.support.as_ref().unwrap().requested_at, tapped);
    assert_eq!(seat.last_report.as_ref().unwrap().at, tapped);
    let alarm = h.state.alarms.iter().find(|x| x.seat == a).unwrap();
    assert_eq!(
        alarm.raised_at, h.now,
        "the alarm sounds now, not in the past"
    );

    // A send that only took a moment is dated by its arrival.
    let events = h.run_made(participant(b), help(b), Some(1_999)).unwrap();
    assert!(matches!(
        events[0].body,
        EventBody::SelfReported { made_at: None, .. }
    ));
    assert_eq!(
        h.state
            .seat(b)
            .unwrap()
            .support
            .as_ref()
            .unwrap()
            .requested_at,
        h.now
    );

    // A phone whose clock jumped is believed back to the session's start,
    // and for an hour at most.
    let ok = Command::SelfReport {
        seat: b,
        report: SelfReport::Ok {},
    };
    let reported = |h: &Harness| h.state.seat(b).unwrap().last_report.as_ref().unwrap().at;
    h.advance(60_000);
    h.run_made(participant(b), ok.clone(), Some(86_400_000))
        .unwrap();
    assert_eq!(reported(&h), h.state.created_at);
    h.advance(2 * 3_600_000);
    h.run_made(participant(b), ok, Some(86_400_000)).unwrap();
    assert_eq!(reported(&h), h.now.plus_ms(-3_600_000));
}

#[test]
fn a_new_press_in_the_batch_that_answered_the_last_one_sounds_again() {
    let (mut h, seats) = Harness::with_seats(1);
    let s = seats[0];
    let press = support_press(s);
    h.run(participant(s), press.clone()).unwrap();
    let first = h.state.alarms.iter().find(|a| a.seat == s).unwrap().id;
    // As the session task decides a batch: staff acknowledge, and the same
    // millisecond a new press arrives; alarms are evaluated after both.
    let ctx = Context {
        actor: facilitator(),
        now: h.now,
        fresh_id: Uuid::nil(),
        made_at: None,
    };
    let ack = decide(&h.state, &ctx, &Command::AcknowledgeAlarm { alarm: first }).unwrap();
    h.record(facilitator(), None, ack);
    h.run(participant(s), press).unwrap();
    let cleared = h.log.iter().find_map(|e| match e.body {
        EventBody::AlarmCleared { alarm, reason } if alarm == first => Some(reason),
        _ => None,
    });
    assert_eq!(cleared, Some(crate::alarm::ClearReason::Recurred));
    let now_listed: Vec<_> = h.state.alarms.iter().filter(|a| a.seat == s).collect();
    assert_eq!(now_listed.len(), 1);
    assert!(now_listed[0].id != first && now_listed[0].sounding(h.now));
    assert!(h.state.seat(s).unwrap().needs_support());
}

#[test]
fn refusals_are_specific() {
    let (mut h, seats) = Harness::with_seats(2);
    let (a, b) = (seats[0], seats[1]);
    let err = |h: &mut Harness, actor, cmd| h.run(actor, cmd).unwrap_err();

    let e = err(
        &mut h,
        participant(a),
        Command::SelfReport {
            seat: b,
            report: SelfReport::Ok {},
        },
    );
    assert_eq!(e.code, RejectCode::Forbidden);
    assert_eq!(e.message, "a participant may act only for their own seat");

    let e = err(
        &mut h,
        facilitator(),
        Command::RecordDose {
            seat: a,
            route: Route::Iv,
            mg: 30.0,
            lot: "x".into(),
            administered_at: None,
            override_reason: None,
        },
    );
    assert_eq!(e.message, "the facilitator role may not record dose");

    let e = err(
        &mut h,
        facilitator(),
        Command::AddSeat {
            display_name: " p1 ".into(),
            weight_kg: None,
            location: None,
        },
    );
    assert_eq!(e.code, RejectCode::InvalidInput);
    assert_eq!(
        e.message,
        "P1 is already the name of a participant in this session; add an initial or use a pseudonym so the two cannot be mixed up"
    );
    assert_eq!(h.state.seats.len(), 2, "nothing added");

    let e = err(
        &mut h,
        medical(),
        Command::RecordVital {
            seat: a,
            measurement: Measurement::Spo2 { value: 101.0 },
            measured_at: None,
            device: None,
        },
    );
    assert_eq!(e.code, RejectCode::ImplausibleVital);
    assert_eq!(
        e.message,
        "SpO2 of 101 % is outside the plausible range 50 to 100 %"
    );

    let future = h.now.plus_ms(10 * MINUTE_MS);
    let e = err(
        &mut h,
        medical(),
        Command::RecordVital {
            seat: a,
            measurement: Measurement::Spo2 { value: 97.0 },
            measured_at: Some(future),
            device: None,
        },
    );
    assert!(e.message.contains("in the future"), "{}", e.message);

    let e = err(
        &mut h,
        medical(),
        Command::RecordDose {
            seat: a,
            route: Route::Iv,
            mg: 30.0,
            lot: "x".into(),
            administered_at: None,
            override_reason: None,
        },
    );
    assert_eq!(e.code, RejectCode::WrongPhase);

    let e = err(
        &mut h,
        facilitator(),
        Command::ChangePhase {
            to: SessionPhase::Dosing,
        },
    );
    assert_eq!(
        e.message,
        "the session cannot move from preparation to dosing (next is intentions, or closed)"
    );

    let e = err(
        &mut h,
        facilitator(),
        Command::SetParticipantState {
            seat: a,
            to: ParticipantState::Emerging,
        },
    );
    assert_eq!(e.code, RejectCode::InvalidTransition);
    assert_eq!(
        e.message,
        "P0 cannot go from invited to emerging (possible: arrived, withdrawn)"
    );

    let e = err(
        &mut h,
        facilitator(),
        Command::AddNote {
            seat: a,
            text: "x".repeat(2001),
        },
    );
    assert_eq!(e.message, "note is 2001 characters long; the limit is 2000");

    let unknown = SeatId::from_uuid(Uuid::from_u128(0xdead));
    let e = err(
        &mut h,
        facilitator(),
        Command::AddNote {
            seat: unknown,
            text: "hi".into(),
        },
    );
    assert_eq!(e.code, RejectCode::UnknownSeat);
}

#[test]
fn late_entered_reading_joins_the_log_but_not_latest() {
    let (mut h, seats) = Harness::with_seats(1);
    let s = seats[0];
    let bp = |sys: f64, at| Command::RecordVital {
        seat: s,
        measurement: Measurement::BloodPressure {
            systolic: sys,
            diastolic: 80.0,
        },
        measured_at: Some(at),
        device: None,
    };
    let now = h.now;
    h.run(medical(), bp(130.0, now)).unwrap();
    h.run(medical(), bp(120.0, now.plus_ms(-5 * MINUTE_MS)))
        .unwrap();
    let latest = h
        .state
        .seat(s)
        .unwrap()
        .latest(VitalKind::BloodPressure)
        .unwrap();
    assert_eq!(
        latest.measurement,
        Measurement::BloodPressure {
            systolic: 130.0,
            diastolic: 80.0
        }
    );
}

#[test]
fn replayed_or_foreign_events_are_ignored() {
    let (h, _) = Harness::with_seats(2);
    let mut copy = SessionState::from_events(h.state.id, &h.log);
    assert_eq!(copy, h.state);
    for e in &h.log {
        assert!(!copy.apply(e), "seq {} applied twice", e.seq);
    }
    let mut foreign = h.log[1].clone();
    foreign.session = SessionId::from_uuid(Uuid::from_u128(99));
    foreign.seq = Seq(1000);
    assert!(!copy.apply(&foreign));
    assert_eq!(copy, h.state);
}

#[test]
fn client_messages_are_parsed_strictly() {
    let ok = r#"{"type":"command","id":"00000000-0000-0000-0000-000000000001","command":{"type":"post_group_message","text":"breathe"}}"#;
    assert!(serde_json::from_str::<ClientMessage>(ok).is_ok());
    let unknown_field = r#"{"type":"command","id":"00000000-0000-0000-0000-000000000001","command":{"type":"post_group_message","text":"x","loud":true}}"#;
    let e = serde_json::from_str::<ClientMessage>(unknown_field)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `loud`"), "{e}");
    let outer_unknown = r#"{"type":"refresh_token","please":1}"#;
    assert!(serde_json::from_str::<ClientMessage>(outer_unknown).is_err());
    let unknown_type = r#"{"type":"launch"}"#;
    let e = serde_json::from_str::<ClientMessage>(unknown_type)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown variant `launch`"), "{e}");
    let hello = r#"{"type":"hello","protocol":1,"token":"t","session":"00000000-0000-0000-0000-000000000001","after":7,"x":0}"#;
    assert!(serde_json::from_str::<ClientMessage>(hello).is_err());
}

// ---- property tests ----------------------------------------------------------

/// Seats 0..4 exist in the harness; index 4 is a seat that does not.
fn seat_at(seats: &[SeatId], i: usize) -> SeatId {
    seats
        .get(i)
        .copied()
        .unwrap_or(SeatId::from_uuid(Uuid::from_u128(0xbad)))
}

fn any_actor() -> impl Strategy<Value = (u8, usize)> {
    (0u8..4, 0usize..5)
}

fn actor_for(kind: u8, seat: usize, seats: &[SeatId]) -> Actor {
    match kind {
        0 => admin(),
        1 => facilitator(),
        2 => medical(),
        _ => participant(seat_at(seats, seat)),
    }
}

fn any_command() -> impl Strategy<Value = (u8, usize, f64, u8)> {
    (0u8..19, 0usize..5, 10.0f64..320.0, 0u8..9)
}

fn command_for(
    kind: u8,
    seat_ix: usize,
    x: f64,
    pick: u8,
    seats: &[SeatId],
    now: Timestamp,
) -> Command {
    let seat = seat_at(seats, seat_ix);
    let state = ParticipantState::ALL[pick as usize % ParticipantState::ALL.len()];
    let phase = SessionPhase::ALL[pick as usize % SessionPhase::ALL.len()];
    match kind {
        0 => Command::AddSeat {
            display_name: format!("N{pick}"),
            weight_kg: Some(x),
            location: None,
        },
        1 => Command::ChangePhase { to: phase },
        2 => Command::SetParticipantState { seat, to: state },
        3 => Command::SubmitArrival {
            seat,
            form: arrival(),
        },
        4 => Command::SelfReport {
            seat,
            report: if pick.is_multiple_of(2) {
                SelfReport::Ok {}
            } else {
                SelfReport::NeedSupport {
                    reasons: vec![SupportReason::Anxious],
                    note: None,
                }
            },
        },
        5 => Command::AcknowledgeSupport { seat },
        6 => Command::ObserveCheckIn {
            seat,
            status: ObservedStatus::Calm,
            note: Some("ok".into()),
        },
        7 => Command::RecordVital {
            seat,
            measurement: match pick % 4 {
                0 => Measurement::Spo2 { value: x / 3.0 },
                1 => Measurement::BloodPressure {
                    systolic: x,
                    diastolic: x / 2.0,
                },
                2 => Measurement::HeartRate { value: x / 2.0 },
                _ => Measurement::RespiratoryRate { value: x / 16.0 },
            },
            measured_at: Some(now.plus_ms(-(pick as i64) * MINUTE_MS)),
            device: pick.is_multiple_of(3).then(|| "oximeter-1".to_string()),
        },
        8 => Command::RecordDose {
            override_reason: pick
                .is_multiple_of(2)
                .then(|| "benefit outweighs".to_string()),
            seat,
            route: Route::SublingualOral,
            mg: x,
            lot: "L1".into(),
            // Now and then given minutes ago and recorded late: the pre-dose
            // baseline moves under readings already taken.
            administered_at: pick
                .is_multiple_of(3)
                .then(|| now.plus_ms(-(i64::from(pick) + 1) * MINUTE_MS)),
        },
        9 => Command::Discharge {
            seat,
            override_reason: pick
                .is_multiple_of(2)
                .then(|| "reviewed by the prescriber".to_string()),
        },
        13 => Command::RecordRating {
            seat,
            rating: Rating::Sedation { moaas: pick % 6 },
        },
        14 => Command::AcknowledgeAlarm {
            alarm: Seq(x as u64),
        },
        15 => Command::PauseAlarmAudio {
            alarm: Seq(x as u64),
            seconds: 60,
        },
        16 => Command::ConfirmRideHome { seat },
        17 => Command::AssignFacilitator { seat, staff: None },
        18 => Command::SetAlarmRule {
            seat: (pick % 2 == 1).then_some(seat),
            rule: {
                let mut rule = alarm::default_rules()[pick as usize % 8].clone();
                rule.confirm_s = u32::from(pick) * 5;
                rule
            },
        },
        10 => Command::AddNote {
            seat,
            text: "private".into(),
        },
        11 => Command::PostGroupMessage {
            text: "breathe".into(),
        },
        _ => Command::SubmitPostSession {
            seat,
            form: PostSessionForm {
                mood: Score::try_from(pick % 11).unwrap(),
                journal: "j".into(),
            },
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever anyone sends: seqs stay gap-free, replaying the log rebuilds the
    /// same state, every event survives a JSON round trip, no participant's
    /// command touches another seat, each participant's view from their
    /// filtered stream equals the redaction of the full state, and the alarm
    /// onsets the reducer keeps (looking only at the rules a reading feeds)
    /// are what looking at every rule would give, and so is each seat's
    /// deadline taken from them; only a command that says so depends on the
    /// server's fresh id.
    #[test]
    fn arbitrary_command_sequences_keep_the_invariants(
        steps in prop::collection::vec((any_actor(), any_command(), 0i64..20 * MINUTE_MS), 1..120)
    ) {
        let (mut h, seats) = Harness::with_seats(4);
        for ((actor_kind, actor_seat), (kind, seat_ix, x, pick), pause) in steps {
            h.advance(pause);
            let actor = actor_for(actor_kind, actor_seat, &seats);
            let cmd = command_for(kind, seat_ix, x, pick, &seats, h.now);
            // The server makes a fresh id only for a command that says it
            // uses one; no other decision may depend on it.
            if !cmd.creates_id() {
                let with = |id| Context { actor, now: h.now, fresh_id: Uuid::from_u128(id), made_at: None };
                prop_assert_eq!(
                    decide(&h.state, &with(1), &cmd),
                    decide(&h.state, &with(2), &cmd),
                    "{:?} depends on the fresh id", cmd.kind()
                );
            }
            let before = h.state.clone();
            // Now and then a command the client made a while before sending.
            let age = (pick % 3 == 0).then_some(pause.unsigned_abs() % 90_000);
            match h.run_made(actor, cmd.clone(), age) {
                Ok(events) => {
                    prop_assert!(cmd.kind().permits(actor.role().unwrap()));
                    if let Actor::Participant { seat } = actor {
                        for e in &events {
                            // Its own seat's record, or an alarm of its seat
                            // that a new request of theirs replaces.
                            let about = e.body.seat().or_else(|| match e.body {
                                EventBody::AlarmCleared { alarm, .. } => {
                                    before.alarms.iter().find(|a| a.id == alarm).map(|a| a.seat)
                                }
                                _ => None,
                            });
                            prop_assert_eq!(about, Some(seat));
                        }
                    }
                }
                Err(_) => prop_assert_eq!(&h.state, &before, "a refusal changed the state"),
            }
            let SessionState { policy, rule_overrides, seats: now_seats, .. } = &h.state;
            for seat in now_seats {
                let mut every_rule = seat.clone();
                crate::monitor::update_onsets(
                    &policy.alarm_rules,
                    rule_overrides,
                    &mut every_rule,
                    h.now,
                    crate::monitor::Changed::Rules,
                );
                prop_assert_eq!(&every_rule.onsets, &seat.onsets, "onsets of seat {}", seat.id);
                prop_assert_eq!(
                    crate::monitor::seat_deadline(&h.state, seat, h.now),
                    crate::monitor::deadline_of(&h.state, seat, h.now, false),
                    "deadline of seat {}", seat.id
                );
            }
        }
        for (i, e) in h.log.iter().enumerate() {
            prop_assert_eq!(e.seq, Seq(i as u64 + 1));
            let json = serde_json::to_string(e).unwrap();
            let back: Event = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, e);
        }
        prop_assert_eq!(&SessionState::from_events(h.state.id, &h.log), &h.state);
        for seat in h.state.seats.iter().map(|s| s.id) {
            let viewer = Viewer::Participant(seat);
            let visible: Vec<&Event> = h.log.iter().filter(|e| e.visible_to(viewer)).collect();
            let mut from_stream = SessionState::from_events(h.state.id, visible.iter().copied());
            from_stream.last_seq = h.state.last_seq;
            prop_assert_eq!(from_stream.redacted_for(viewer), h.state.redacted_for(viewer));
            for e in visible {
                if let Some(s) = e.body.seat() { prop_assert_eq!(s, seat); }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever text arrives, parsing a client frame never panics.
    #[test]
    fn any_text_parses_or_is_refused_without_panic(text in ".{0,400}") {
        let _ = serde_json::from_str::<ClientMessage>(&text);
    }

    /// Frames made of the protocol's own pieces, shuffled: refused or parsed,
    /// never a panic; whatever parses round-trips.
    #[test]
    fn jumbled_frames_parse_or_are_refused(parts in prop::collection::vec(prop::sample::select(vec![
        "{", "}", "[", "]", ",", ":", "\"type\"", "\"command\"", "\"hello\"", "\"id\"", "\"seat\"",
        "\"00000000-0000-0000-0000-000000000001\"", "\"self_report\"", "\"report\"", "\"status\"",
        "\"ok\"", "\"need_support\"", "\"reasons\"", "\"nausea\"", "1", "-1", "1e400", "null", "true",
        "\"refresh_token\"", "\"protocol\"", "\"token\"", "\"session\"", "\"after\"",
    ]), 0..40)) {
        let text: String = parts.concat();
        if let Ok(msg) = serde_json::from_str::<ClientMessage>(&text) {
            let back: ClientMessage = serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap();
            prop_assert_eq!(back, msg);
        }
    }

    /// Every command the generator makes survives the wire.
    #[test]
    fn commands_round_trip_through_json((kind, seat_ix, x, pick) in any_command()) {
        let (_, seats) = Harness::with_seats(4);
        let cmd = command_for(kind, seat_ix, x, pick, &seats, T0);
        let msg = ClientMessage::Command { id: CommandId::from_uuid(Uuid::from_u128(9)), command: cmd, age_ms: Some(x as u64) };
        let back: ClientMessage = serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap();
        prop_assert_eq!(back, msg);
    }
}
