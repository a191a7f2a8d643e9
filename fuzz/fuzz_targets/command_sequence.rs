//! Arbitrary sequences of commands from arbitrary senders, with time passing,
//! run as the server's session task runs them (decide, record, apply,
//! evaluate alarms): nothing panics, sequence numbers stay gap-free, replaying
//! the log rebuilds the same state, and each participant's view from their own
//! stream equals what the server would show them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::*;
use uuid::Uuid;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }
}

fn staff(n: u128, role: StaffRole) -> Actor {
    Actor::Staff { staff: StaffId::from_uuid(Uuid::from_u128(0x5000 + n)), role }
}

struct Session {
    state: SessionState,
    log: Vec<Event>,
    now: Timestamp,
    ids: u128,
}

impl Session {
    fn record(&mut self, actor: Actor, command: Option<CommandId>, bodies: Vec<EventBody>) {
        for body in bodies {
            let event = Event { session: self.state.id, seq: self.state.last_seq.next(), at: self.now, actor, command, body };
            assert!(self.state.apply(&event));
            self.log.push(event);
        }
    }

    fn run(&mut self, actor: Actor, command: &Command) {
        self.ids += 1;
        // Some commands come late, as from a phone that was offline.
        let age = Some((self.ids % 7) as u64 * 1000);
        let ctx = Context { actor, now: self.now, fresh_id: Uuid::from_u128(self.ids), made_at: Context::made_at(self.now, age) };
        if let Ok(bodies) = decide(&self.state, &ctx, command) {
            self.record(actor, Some(CommandId::from_uuid(Uuid::from_u128(self.ids))), bodies);
        }
        let alarms = monitor::evaluate(&self.state, self.now);
        self.record(Actor::System, None, alarms);
    }
}

/// An override reason: none, one that says why, or one too short to.
fn reason(pick: u8) -> Option<String> {
    match pick % 3 {
        0 => None,
        1 => Some("reviewed with the prescriber".into()),
        _ => Some("ok".into()),
    }
}

fn command(b: &mut Bytes, seats: &[SeatId]) -> Command {
    let seat = seats.get(b.byte() as usize % (seats.len() + 1)).copied().unwrap_or(SeatId::from_uuid(Uuid::from_u128(0xbad)));
    let x = f64::from(b.byte()) * 1.3;
    let pick = b.byte();
    let score = |n: u8| Score::try_from(n % 11).unwrap();
    match b.byte() % 20 {
        0 => Command::AddSeat { display_name: format!("S{pick}"), weight_kg: Some(x), location: None },
        1 => Command::ChangePhase { to: SessionPhase::ALL[pick as usize % 6] },
        2 => Command::SetParticipantState { seat, to: ParticipantState::ALL[pick as usize % 9] },
        3 => Command::SubmitArrival {
            seat,
            form: ArrivalForm { mood: score(pick), anxiety: score(pick / 2), intention: String::new(), fasting_confirmed: true, ride_home_arranged: pick % 2 == 0, consent_to_touch: false },
        },
        4 => Command::SelfReport { seat, report: SelfReport::Ok {} },
        5 => Command::SelfReport { seat, report: SelfReport::NeedSupport { reasons: vec![SupportReason::Nausea], note: None } },
        6 => Command::AcknowledgeSupport { seat },
        7 => Command::ObserveCheckIn { seat, status: ObservedStatus::Calm, note: None },
        8 => Command::RecordVital { seat, measurement: Measurement::Spo2 { value: 60.0 + x / 6.0 }, measured_at: None, device: (pick % 2 == 0).then(|| "ox".into()) },
        9 => Command::RecordVital { seat, measurement: Measurement::BloodPressure { systolic: 80.0 + x / 2.0, diastolic: 50.0 + x / 4.0 }, measured_at: None, device: None },
        10 => Command::RecordVital { seat, measurement: Measurement::HeartRate { value: 30.0 + x / 2.0 }, measured_at: None, device: None },
        11 => Command::RecordDose { seat, route: Route::Im, mg: x, lot: "L".into(), administered_at: None, override_reason: reason(pick) },
        12 => Command::Discharge { seat, override_reason: reason(pick) },
        13 => Command::RecordRating { seat, rating: Rating::Sedation { moaas: pick % 7 } },
        14 => Command::AcknowledgeAlarm { alarm: Seq(u64::from(pick)) },
        15 => Command::PauseAlarmAudio { alarm: Seq(u64::from(pick)), seconds: u32::from(pick) },
        16 => Command::ConfirmRideHome { seat },
        17 => Command::EndDeviceFeed { seat, device: "ox".into() },
        18 => Command::PostGroupMessage { text: "breathe".into() },
        _ => Command::SubmitPostSession { seat, form: PostSessionForm { mood: score(pick), journal: String::new() } },
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut s = Session { state: SessionState::empty(SessionId::from_uuid(Uuid::from_u128(1))), log: Vec::new(), now: Timestamp(1_790_000_000_000), ids: 0x1000 };
    let created = EventBody::SessionCreated { clinic: ClinicId::from_uuid(Uuid::from_u128(2)), title: "fuzz".into(), policy: ClinicPolicy::default() };
    s.record(staff(1, StaffRole::Facilitator), None, vec![created]);
    for i in 0..3 {
        s.run(staff(1, StaffRole::Facilitator), &Command::AddSeat { display_name: format!("P{i}"), weight_kg: Some(70.0), location: None });
    }
    while !b.0.is_empty() {
        let seats: Vec<SeatId> = s.state.seats.iter().map(|x| x.id).collect();
        let actor = match b.byte() % 4 {
            0 => staff(0, StaffRole::Admin),
            1 => staff(1, StaffRole::Facilitator),
            2 => staff(2, StaffRole::Medical),
            _ => Actor::Participant { seat: seats[b.byte() as usize % seats.len()] },
        };
        let cmd = command(&mut b, &seats);
        s.now = s.now.plus_ms(i64::from(b.byte()) * 7_000);
        s.run(actor, &cmd);
    }
    for (i, e) in s.log.iter().enumerate() {
        assert_eq!(e.seq, Seq(i as u64 + 1));
    }
    assert_eq!(SessionState::from_events(s.state.id, &s.log), s.state);
    for seat in s.state.seats.iter().map(|x| x.id) {
        let viewer = Viewer::Participant(seat);
        let mut own = SessionState::from_events(s.state.id, s.log.iter().filter(|e| e.visible_to(viewer)));
        own.last_seq = s.state.last_seq;
        assert_eq!(own.redacted_for(viewer), s.state.redacted_for(viewer));
    }
});
