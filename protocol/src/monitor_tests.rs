//! The safety engine at its boundaries, with the clock in the test's hands:
//! every default rule just under, at and just over its limit, for less and
//! more than its confirmation delay; the alarm lifecycle (latching,
//! acknowledgement, escalation, audio pause); schedules; the dose hold; the
//! discharge checklist.

use crate::alarm::{ClearReason, Comparison, Limit};
use crate::monitor::{self, DischargeCheck};
use crate::tests::*;
use crate::vitals::VitalComponent;
use crate::*;

const S: i64 = 1000;
const MIN: i64 = MINUTE_MS;

/// A session in the dosing phase with `seats` seats, the first arrived and
/// ready (70 kg, no BP yet).
fn ready_to_dose(seats: usize) -> (Harness, SeatId) {
    ready_after(seats, arrival())
}

/// [`ready_to_dose`], the first participant having arrived with `form`.
fn ready_after(seats: usize, form: ArrivalForm) -> (Harness, SeatId) {
    let (mut h, seats) = Harness::with_seats(seats);
    let s = seats[0];
    h.run(facilitator(), Command::SubmitArrival { seat: s, form })
        .unwrap();
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
    (h, s)
}

/// A session in the experience phase with one participant dosed at the
/// harness's `now` (pre-dose BP 126/80) and in the experience.
fn dosed() -> (Harness, SeatId) {
    let (mut h, s) = ready_to_dose(2);
    h.run(medical(), bp(s, 126.0, 80.0)).unwrap();
    h.run(medical(), dose(s, None)).unwrap();
    h.phase(SessionPhase::Experience);
    h.run(
        facilitator(),
        Command::SetParticipantState {
            seat: s,
            to: ParticipantState::InExperience,
        },
    )
    .unwrap();
    (h, s)
}

fn dose(seat: SeatId, override_reason: Option<&str>) -> Command {
    Command::RecordDose {
        seat,
        route: Route::Im,
        mg: 35.0,
        lot: "L1".into(),
        administered_at: None,
        override_reason: override_reason.map(str::to_string),
    }
}

fn vital(seat: SeatId, measurement: Measurement) -> Command {
    Command::RecordVital {
        seat,
        measurement,
        measured_at: None,
        device: None,
    }
}

/// Readings of `m` every second for `for_ms`; the clock ends at start + for_ms.
fn feed(h: &mut Harness, seat: SeatId, m: Measurement, for_ms: i64) {
    let end = h.now.plus_ms(for_ms);
    loop {
        h.run(medical(), vital(seat, m)).unwrap();
        if h.now.plus_ms(S) > end {
            h.advance(end.ms_since(h.now));
            return;
        }
        h.advance(S);
    }
}

fn active(h: &Harness, seat: SeatId, rule: &str) -> Option<Alarm> {
    h.state
        .alarms
        .iter()
        .find(|a| a.seat == seat && a.rule == rule)
        .cloned()
}

fn rated(h: &mut Harness, seat: SeatId, rating: Rating) {
    h.run(medical(), Command::RecordRating { seat, rating })
        .unwrap();
}

/// (value, how long held, raised?) for one single-component rule.
fn boundaries(rule: &str, make: fn(f64) -> Measurement, cases: &[(f64, i64, bool)]) {
    for &(value, ms, expected) in cases {
        let (mut h, s) = dosed();
        h.advance(MIN);
        feed(&mut h, s, make(value), ms);
        assert_eq!(
            active(&h, s, rule).is_some(),
            expected,
            "{rule}: {value} held for {ms} ms"
        );
    }
}

#[test]
fn spo2_critical_below_88_for_15_s() {
    let m = |value| Measurement::Spo2 { value };
    boundaries(
        "spo2-critical",
        m,
        &[
            (87.9, 15 * S - 1, false),
            (87.9, 15 * S, true),
            (88.0, 60 * S, false),
            (88.1, 60 * S, false),
        ],
    );
    let (mut h, s) = dosed();
    feed(&mut h, s, m(85.0), 15 * S);
    let a = active(&h, s, "spo2-critical").unwrap();
    assert_eq!(a.priority, AlarmPriority::High);
    assert_eq!(a.kind, AlarmKind::Physiological);
    assert_eq!(a.detail, "SpO2 85 % (alarm when < 88)");
}

#[test]
fn spo2_low_below_92_for_15_s() {
    let m = |value| Measurement::Spo2 { value };
    boundaries(
        "spo2-low",
        m,
        &[
            (91.9, 15 * S - 1, false),
            (91.9, 15 * S, true),
            (92.0, 60 * S, false),
            (92.1, 60 * S, false),
        ],
    );
}

#[test]
fn bp_critical_at_180_or_110() {
    let sys = |v| Measurement::BloodPressure {
        systolic: v,
        diastolic: 80.0,
    };
    boundaries(
        "bp-critical",
        sys,
        &[(179.0, 0, false), (180.0, 0, true), (181.0, 0, true)],
    );
    let dia = |v| Measurement::BloodPressure {
        systolic: 150.0,
        diastolic: v,
    };
    boundaries(
        "bp-critical",
        dia,
        &[(109.0, 0, false), (110.0, 0, true), (111.0, 0, true)],
    );
}

#[test]
fn bp_high_at_160_or_100() {
    let sys = |v| Measurement::BloodPressure {
        systolic: v,
        diastolic: 80.0,
    };
    boundaries(
        "bp-high",
        sys,
        &[(159.0, 0, false), (160.0, 0, true), (161.0, 0, true)],
    );
    let dia = |v| Measurement::BloodPressure {
        systolic: 130.0,
        diastolic: v,
    };
    boundaries(
        "bp-high",
        dia,
        &[(99.0, 0, false), (100.0, 0, true), (101.0, 0, true)],
    );
}

#[test]
fn bp_rise_of_40_systolic_or_25_diastolic_from_the_pre_dose_baseline() {
    // Baseline 126/80 (see `dosed`).
    let sys = |v| Measurement::BloodPressure {
        systolic: v,
        diastolic: 80.0,
    };
    boundaries(
        "bp-rise",
        sys,
        &[(165.0, 0, false), (166.0, 0, true), (167.0, 0, true)],
    );
    let dia = |v| Measurement::BloodPressure {
        systolic: 126.0,
        diastolic: v,
    };
    boundaries(
        "bp-rise",
        dia,
        &[(104.0, 0, false), (105.0, 0, true), (106.0, 0, true)],
    );
    let (mut h, s) = dosed();
    h.advance(MIN);
    feed(&mut h, s, sys(170.0), 0);
    assert_eq!(
        active(&h, s, "bp-rise").unwrap().detail,
        "BP 170/80 is up 44/0 from the pre-dose 126/80"
    );
}

#[test]
fn a_dose_recorded_late_puts_readings_already_taken_after_it() {
    let (mut h, _) = dosed();
    // A second participant: BP 126/80, then 170/80 ten minutes later, both
    // before any dose is recorded for them, so neither is a rise.
    let p = h.state.seats[1].id;
    h.run(
        facilitator(),
        Command::SubmitArrival {
            seat: p,
            form: arrival(),
        },
    )
    .unwrap();
    h.run(
        facilitator(),
        Command::SetParticipantState {
            seat: p,
            to: ParticipantState::Ready,
        },
    )
    .unwrap();
    h.run(medical(), bp(p, 126.0, 80.0)).unwrap();
    let baseline_at = h.now;
    h.advance(10 * MIN);
    h.run(medical(), bp(p, 170.0, 80.0)).unwrap();
    assert_eq!(h.state.seat(p).unwrap().onset("bp-rise"), None);
    // The dose was given between the two and is recorded now: the second
    // reading is after it, 44 up from the pre-dose 126/80.
    h.advance(MIN);
    h.run(
        medical(),
        Command::RecordDose {
            seat: p,
            route: Route::Im,
            mg: 35.0,
            lot: "L1".into(),
            administered_at: Some(baseline_at.plus_ms(5 * MIN)),
            override_reason: Some("given before the high reading".into()),
        },
    )
    .unwrap();
    assert_eq!(h.state.seat(p).unwrap().onset("bp-rise"), Some(h.now));
    assert!(active(&h, p, "bp-rise").is_some());
}

#[test]
fn heart_rate_above_130_or_below_45_for_30_s() {
    let hr = |value| Measurement::HeartRate { value };
    boundaries(
        "hr-out-of-range",
        hr,
        &[
            (130.0, 60 * S, false),
            (131.0, 30 * S - 1, false),
            (131.0, 30 * S, true),
            (45.0, 60 * S, false),
            (44.0, 30 * S - 1, false),
            (44.0, 30 * S, true),
        ],
    );
}

#[test]
fn respiratory_rate_below_8_or_above_30() {
    let rr = |value| Measurement::RespiratoryRate { value };
    boundaries(
        "rr-out-of-range",
        rr,
        &[
            (7.0, 0, true),
            (8.0, 0, false),
            (9.0, 0, false),
            (29.0, 0, false),
            (30.0, 0, false),
            (31.0, 0, true),
        ],
    );
}

#[test]
fn sedation_at_most_moaas_1() {
    for (moaas, expected) in [(0, true), (1, true), (2, false), (5, false)] {
        let (mut h, s) = dosed();
        rated(&mut h, s, Rating::Sedation { moaas });
        assert_eq!(
            active(&h, s, "sedation-deep").is_some(),
            expected,
            "MOAA/S {moaas}"
        );
    }
}

#[test]
fn a_support_request_is_a_high_request_alarm_for_facilitators_until_answered() {
    let (mut h, s) = dosed();
    let press = Command::SelfReport {
        seat: s,
        report: SelfReport::NeedSupport {
            reasons: vec![SupportReason::Anxious],
            note: None,
        },
    };
    h.run(participant(s), press.clone()).unwrap();
    let a = active(&h, s, "support-request").expect("raised at once");
    assert_eq!(
        (a.priority, a.kind),
        (AlarmPriority::High, AlarmKind::Request)
    );
    assert_eq!(a.notify, vec![Role::Facilitator]);
    assert_eq!(a.detail, "asked for support: anxious");
    h.run(facilitator(), Command::AcknowledgeSupport { seat: s })
        .unwrap();
    assert!(
        active(&h, s, "support-request").is_none(),
        "answering the request clears its alarm"
    );
    let acked = h.log.iter().rev().find_map(|e| match e.body {
        EventBody::AlarmAcknowledged { alarm } => Some((alarm, e.actor)),
        _ => None,
    });
    assert_eq!(
        acked,
        Some((a.id, facilitator())),
        "and records who acknowledged it"
    );

    // Acknowledging the alarm answers the request too.
    h.run(participant(s), press).unwrap();
    let a = active(&h, s, "support-request").unwrap();
    h.run(medical(), Command::AcknowledgeAlarm { alarm: a.id })
        .unwrap();
    assert!(!h.state.seat(s).unwrap().needs_support());
    assert!(active(&h, s, "support-request").is_none());
}

fn observe(h: &mut Harness, seat: SeatId, status: ObservedStatus) {
    h.run(
        facilitator(),
        Command::ObserveCheckIn {
            seat,
            status,
            note: None,
        },
    )
    .unwrap();
}

#[test]
fn a_facilitator_seeing_a_need_for_medical_care_raises_a_high_alarm_for_medical_until_acknowledged()
{
    let (mut h, s) = dosed();
    observe(&mut h, s, ObservedStatus::Tearful);
    assert!(active(&h, s, "needs-medical").is_none());
    observe(&mut h, s, ObservedStatus::NeedsMedical);
    let a = active(&h, s, "needs-medical").expect("raised at once");
    assert_eq!(
        (a.priority, a.kind, a.latching),
        (AlarmPriority::High, AlarmKind::Request, true)
    );
    assert_eq!(a.notify, vec![Role::Medical]);
    // A calmer check-in before medical has seen it does not make it vanish.
    observe(&mut h, s, ObservedStatus::Calm);
    let latched = active(&h, s, "needs-medical").expect("latched until acknowledged");
    assert!(!latched.condition_active);
    h.run(medical(), Command::AcknowledgeAlarm { alarm: a.id })
        .unwrap();
    assert!(active(&h, s, "needs-medical").is_none());

    // Acknowledged while still so: listed until a check-in says otherwise.
    observe(&mut h, s, ObservedStatus::NeedsMedical);
    let again = active(&h, s, "needs-medical").expect("raised again");
    h.run(medical(), Command::AcknowledgeAlarm { alarm: again.id })
        .unwrap();
    assert!(active(&h, s, "needs-medical").is_some());
    // Reported once more after that, in the very millisecond of the
    // acknowledgement: medical is alerted afresh.
    observe(&mut h, s, ObservedStatus::NeedsMedical);
    let third = active(&h, s, "needs-medical").expect("raised once more");
    assert!(third.id != again.id && third.acknowledged.is_none());
    assert!(third.sounding(h.now));
    assert_eq!(
        h.state.alarms.iter().filter(|a| a.seat == s).count(),
        1,
        "the earlier, acknowledged one made way for it"
    );
    h.run(medical(), Command::AcknowledgeAlarm { alarm: third.id })
        .unwrap();
    h.advance(1000);
    assert_eq!(active(&h, s, "needs-medical").unwrap().id, third.id);
    observe(&mut h, s, ObservedStatus::Resting);
    assert!(active(&h, s, "needs-medical").is_none());

    // Beside a participant's own request: answering one leaves the other.
    observe(&mut h, s, ObservedStatus::NeedsMedical);
    let press = support_press(s);
    h.run(participant(s), press.clone()).unwrap();
    h.run(facilitator(), Command::AcknowledgeSupport { seat: s })
        .unwrap();
    assert!(active(&h, s, "support-request").is_none());
    let waiting = active(&h, s, "needs-medical").expect("still waiting for medical");
    assert!(
        waiting.acknowledged.is_none(),
        "answering the participant does not silence medical's alarm"
    );
    h.run(participant(s), press).unwrap();
    h.run(medical(), Command::AcknowledgeAlarm { alarm: waiting.id })
        .unwrap();
    assert!(
        h.state.seat(s).unwrap().needs_support(),
        "medical seeing the facilitator's call does not answer the participant"
    );
}

#[test]
fn medicals_alarm_carries_the_facilitators_words() {
    let (mut h, s) = dosed();
    let seen = |note: &str| Command::ObserveCheckIn {
        seat: s,
        status: ObservedStatus::NeedsMedical,
        note: Some(note.into()),
    };
    h.run(facilitator(), seen(" chest pain ")).unwrap();
    let a = active(&h, s, "needs-medical").unwrap();
    assert_eq!(
        a.detail,
        "a facilitator saw them needing medical attention: “chest pain”"
    );
    h.run(medical(), Command::AcknowledgeAlarm { alarm: a.id })
        .unwrap();
    let long = "está pálida, respira rápido, ".repeat(10);
    h.run(facilitator(), seen(&long)).unwrap();
    let detail = active(&h, s, "needs-medical").unwrap().detail;
    // The first 140 characters (five times the phrase), cut where it ends.
    assert_eq!(
        detail,
        format!(
            "a facilitator saw them needing medical attention: “{}…”",
            long.chars().take(140).collect::<String>().trim_end()
        )
    );
}

#[test]
fn check_overdue_after_15_min_plus_2_min_grace_without_an_observed_check() {
    let (mut h, s) = dosed();
    h.advance(17 * MIN - 1);
    assert!(active(&h, s, "check-overdue").is_none());
    h.advance(1);
    let a = active(&h, s, "check-overdue").expect("due at 15 min, overdue after 2 min grace");
    assert_eq!(a.detail, "no observed check since the dose, over 17 min");
    assert_eq!(a.priority, AlarmPriority::Medium);
    assert_eq!(a.notify, vec![Role::Facilitator]);
    h.run(
        facilitator(),
        Command::ObserveCheckIn {
            seat: s,
            status: ObservedStatus::Resting,
            note: None,
        },
    )
    .unwrap();
    assert!(
        active(&h, s, "check-overdue").is_none(),
        "a check-in clears it"
    );
    h.advance(17 * MIN - 1);
    assert!(
        active(&h, s, "check-overdue").is_none(),
        "the rota restarts from the check"
    );
    h.advance(1);
    assert!(active(&h, s, "check-overdue").is_some());
}

#[test]
fn the_check_rota_names_the_assigned_facilitator() {
    let (mut h, s) = dosed();
    let Actor::Staff { staff: fern, .. } = facilitator() else {
        unreachable!()
    };
    h.run(
        medical(),
        Command::AssignFacilitator {
            seat: s,
            staff: Some(fern),
        },
    )
    .unwrap();
    h.advance(17 * MIN);
    assert_eq!(
        active(&h, s, "check-overdue").unwrap().assigned_to,
        Some(fern)
    );
}

#[test]
fn bp_due_40_min_after_the_dose_low_then_medium_until_taken() {
    let (mut h, s) = dosed();
    h.advance(45 * MIN - 1);
    assert!(
        active(&h, s, "bp-due").is_none(),
        "due at 40 min, 5 min grace"
    );
    h.advance(1);
    let a = active(&h, s, "bp-due").unwrap();
    assert_eq!(a.priority, AlarmPriority::Low);
    assert_eq!(a.detail, "BP after the dose overdue by over 5 min");
    h.advance(10 * MIN - 1);
    assert_eq!(
        active(&h, s, "bp-due").unwrap().priority,
        AlarmPriority::Low
    );
    h.advance(1);
    let a = active(&h, s, "bp-due").unwrap();
    assert_eq!(
        a.priority,
        AlarmPriority::Medium,
        "raised to medium after 10 min"
    );
    assert_eq!(a.notify, monitor::ALL_STAFF.to_vec());
    h.run(medical(), bp(s, 130.0, 82.0)).unwrap();
    assert!(active(&h, s, "bp-due").is_none(), "taking the BP clears it");
}

#[test]
fn a_bp_taken_a_little_early_satisfies_the_schedule() {
    let (mut h, s) = dosed();
    h.advance(35 * MIN);
    h.run(medical(), bp(s, 130.0, 82.0)).unwrap();
    h.advance(30 * MIN);
    assert!(active(&h, s, "bp-due").is_none());
    let schedule = monitor::bp_schedule(h.state.seat(s).unwrap(), &h.state);
    assert!(
        schedule.iter().all(|d| d.taken_at.is_some()),
        "{schedule:?}"
    );
}

#[test]
fn an_elevated_baseline_brings_a_bp_due_25_min_after_the_dose() {
    let (mut h, seats) = Harness::with_seats(1);
    let s = seats[0];
    h.run(
        facilitator(),
        Command::SubmitArrival {
            seat: s,
            form: arrival(),
        },
    )
    .unwrap();
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
    h.run(medical(), bp(s, 146.0, 88.0)).unwrap();
    h.run(medical(), dose(s, Some("rechecked, anxious on arrival")))
        .unwrap();
    h.advance(30 * MIN - 1);
    assert!(active(&h, s, "bp-due").is_none());
    h.advance(1);
    assert_eq!(
        active(&h, s, "bp-due").unwrap().detail,
        "BP after the dose (elevated baseline) overdue by over 5 min"
    );
}

#[test]
fn a_further_dose_brings_its_own_bp_due() {
    let (mut h, s) = dosed();
    h.advance(35 * MIN);
    h.run(medical(), bp(s, 128.0, 80.0)).unwrap();
    h.run(medical(), dose(s, None)).unwrap();
    h.advance(45 * MIN - 1);
    assert!(active(&h, s, "bp-due").is_none());
    h.advance(1);
    assert_eq!(
        active(&h, s, "bp-due").unwrap().detail,
        "BP after the further dose overdue by over 5 min"
    );
}

#[test]
fn a_rating_is_due_on_emergence_and_every_15_min() {
    let (mut h, s) = dosed();
    h.advance(30 * MIN);
    h.run(
        facilitator(),
        Command::SetParticipantState {
            seat: s,
            to: ParticipantState::Emerging,
        },
    )
    .unwrap();
    h.advance(5 * MIN - 1);
    assert!(active(&h, s, "rating-due").is_none());
    h.advance(1);
    assert!(
        active(&h, s, "rating-due").is_some(),
        "due on emergence, 5 min grace"
    );
    rated(&mut h, s, Rating::Sedation { moaas: 4 });
    assert!(active(&h, s, "rating-due").is_none());
    h.advance(20 * MIN - 1);
    assert!(active(&h, s, "rating-due").is_none());
    h.advance(1);
    assert!(active(&h, s, "rating-due").is_some());
}

#[test]
fn a_device_feed_silent_for_30_s_is_a_technical_alarm() {
    let (mut h, s) = dosed();
    let reading = |h: &mut Harness| {
        h.run(
            medical(),
            Command::RecordVital {
                seat: s,
                measurement: Measurement::Spo2 { value: 97.0 },
                measured_at: None,
                device: Some("ox-1".into()),
            },
        )
        .unwrap();
    };
    reading(&mut h);
    h.advance(30 * S - 1);
    assert!(active(&h, s, "feed-stale").is_none());
    h.advance(1);
    let a = active(&h, s, "feed-stale").unwrap();
    assert_eq!(
        (a.kind, a.priority),
        (AlarmKind::Technical, AlarmPriority::Medium)
    );
    assert_eq!(a.detail, "no reading from ox-1 for over 30 s");
    reading(&mut h);
    assert!(active(&h, s, "feed-stale").is_none(), "a reading clears it");
    h.run(
        medical(),
        Command::EndDeviceFeed {
            seat: s,
            device: "ox-1".into(),
        },
    )
    .unwrap();
    h.advance(10 * MIN);
    assert!(
        active(&h, s, "feed-stale").is_none(),
        "an ended feed is silent on purpose"
    );
}

#[test]
fn a_phone_offline_for_20_s_is_a_low_technical_alarm() {
    let (mut h, s) = dosed();
    h.record(
        Actor::System,
        None,
        vec![EventBody::ParticipantConnected { seat: s }],
    );
    h.record(
        Actor::System,
        None,
        vec![EventBody::ParticipantDisconnected { seat: s }],
    );
    h.advance(20 * S - 1);
    assert!(active(&h, s, "device-offline").is_none());
    h.advance(1);
    let a = active(&h, s, "device-offline").unwrap();
    assert_eq!(
        (a.kind, a.priority),
        (AlarmKind::Technical, AlarmPriority::Low)
    );
    assert_eq!(a.detail, "phone disconnected for over 20 s");
    h.record(
        Actor::System,
        None,
        vec![EventBody::ParticipantConnected { seat: s }],
    );
    h.evaluate();
    assert!(active(&h, s, "device-offline").is_none());
}

#[test]
fn an_acknowledged_reading_alarm_stays_acknowledged_while_the_value_moves_in_its_band() {
    let (mut h, s) = dosed();
    feed(&mut h, s, Measurement::Spo2 { value: 85.0 }, 15 * S);
    let a = active(&h, s, "spo2-critical").unwrap();
    h.run(medical(), Command::AcknowledgeAlarm { alarm: a.id })
        .unwrap();
    feed(&mut h, s, Measurement::Spo2 { value: 88.5 }, 20 * S);
    feed(&mut h, s, Measurement::Spo2 { value: 85.0 }, 20 * S);
    let still = active(&h, s, "spo2-critical").expect("still listed");
    assert_eq!(still.id, a.id, "not a new occurrence: no fresh alarm");
    assert!(still.acknowledged.is_some());
}

#[test]
fn a_latched_alarm_stays_after_recovery_until_acknowledged() {
    let (mut h, s) = dosed();
    feed(&mut h, s, Measurement::Spo2 { value: 85.0 }, 15 * S);
    let a = active(&h, s, "spo2-critical").unwrap();
    assert!(a.latching && a.condition_active);
    feed(&mut h, s, Measurement::Spo2 { value: 88.5 }, 5 * S);
    assert!(
        active(&h, s, "spo2-critical").unwrap().condition_active,
        "inside the hysteresis band: no change"
    );
    feed(&mut h, s, Measurement::Spo2 { value: 96.0 }, 5 * S);
    let latched = active(&h, s, "spo2-critical").expect("latched");
    assert!(!latched.condition_active);
    let when = h.now;
    h.run(medical(), Command::AcknowledgeAlarm { alarm: a.id })
        .unwrap();
    assert!(active(&h, s, "spo2-critical").is_none());
    let cleared = h.log.iter().rev().find_map(|e| match e.body {
        EventBody::AlarmCleared { alarm, reason } if alarm == a.id => Some(reason),
        _ => None,
    });
    assert_eq!(cleared, Some(ClearReason::Acknowledged));
    let ack = h
        .log
        .iter()
        .find(|e| matches!(e.body, EventBody::AlarmAcknowledged { alarm } if alarm == a.id))
        .unwrap();
    assert_eq!((ack.actor, ack.at), (medical(), when), "who and when");
}

#[test]
fn an_acknowledged_alarm_stays_visible_while_its_condition_lasts() {
    let (mut h, s) = dosed();
    feed(&mut h, s, Measurement::Spo2 { value: 85.0 }, 15 * S);
    let a = active(&h, s, "spo2-critical").unwrap();
    h.run(medical(), Command::AcknowledgeAlarm { alarm: a.id })
        .unwrap();
    let acked = active(&h, s, "spo2-critical").unwrap();
    assert!(acked.acknowledged.is_some() && !acked.sounding(h.now));
    h.advance(10 * MIN);
    assert_eq!(
        active(&h, s, "spo2-critical").unwrap().escalations,
        0,
        "acknowledged alarms do not escalate"
    );
    feed(&mut h, s, Measurement::Spo2 { value: 95.0 }, 0);
    assert!(
        active(&h, s, "spo2-critical").is_none(),
        "cleared when the condition ends"
    );
}

#[test]
fn unacknowledged_alarms_escalate_to_every_staff_role() {
    let (mut h, s) = dosed();
    feed(&mut h, s, Measurement::Spo2 { value: 85.0 }, 15 * S);
    let a = active(&h, s, "spo2-critical").unwrap();
    assert_eq!(a.notify, vec![Role::Medical]);
    h.advance(60 * S - 1);
    assert_eq!(active(&h, s, "spo2-critical").unwrap().escalations, 0);
    h.advance(1);
    let e = active(&h, s, "spo2-critical").unwrap();
    assert_eq!(e.escalations, 1, "high: after 60 s");
    assert_eq!(e.notify, monitor::ALL_STAFF.to_vec());
    h.advance(60 * S);
    assert_eq!(
        active(&h, s, "spo2-critical").unwrap().escalations,
        2,
        "and again every 60 s"
    );

    // Medium: after 3 minutes.
    let (mut h, s) = dosed();
    feed(
        &mut h,
        s,
        Measurement::BloodPressure {
            systolic: 162.0,
            diastolic: 90.0,
        },
        0,
    );
    h.advance(180 * S - 1);
    assert_eq!(active(&h, s, "bp-high").unwrap().escalations, 0);
    h.advance(1);
    assert_eq!(active(&h, s, "bp-high").unwrap().escalations, 1);
}

#[test]
fn audio_pause_is_at_most_2_minutes_and_ends_at_escalation() {
    let (mut h, s) = dosed();
    feed(&mut h, s, Measurement::Spo2 { value: 85.0 }, 15 * S);
    let a = active(&h, s, "spo2-critical").unwrap();
    let err = h
        .run(
            facilitator(),
            Command::PauseAlarmAudio {
                alarm: a.id,
                seconds: 121,
            },
        )
        .unwrap_err();
    assert_eq!(err.message, "an audio pause lasts 1 to 120 seconds");
    h.run(
        facilitator(),
        Command::PauseAlarmAudio {
            alarm: a.id,
            seconds: 30,
        },
    )
    .unwrap();
    assert!(!active(&h, s, "spo2-critical").unwrap().sounding(h.now));
    h.advance(30 * S);
    assert!(
        active(&h, s, "spo2-critical").unwrap().sounding(h.now),
        "the pause ran out"
    );
    h.run(
        facilitator(),
        Command::PauseAlarmAudio {
            alarm: a.id,
            seconds: 120,
        },
    )
    .unwrap();
    h.advance(60 * S - 30 * S);
    let escalated = active(&h, s, "spo2-critical").unwrap();
    assert_eq!(escalated.escalations, 1);
    assert!(escalated.sounding(h.now), "an escalation sounds again");
}

#[test]
fn rules_can_be_changed_for_one_participant_or_the_whole_session() {
    let (mut h, seats) = Harness::with_seats(2);
    let (a, b) = (seats[0], seats[1]);
    let mut high_baseline = alarm::default_rules()
        .into_iter()
        .find(|r| r.id == "bp-high")
        .unwrap();
    high_baseline.trigger = alarm::Trigger::Vital {
        any: vec![Limit {
            component: VitalComponent::Systolic,
            comparison: Comparison::AtLeast,
            value: 170.0,
            hysteresis: 5.0,
        }],
    };
    h.run(
        medical(),
        Command::SetAlarmRule {
            seat: Some(a),
            rule: high_baseline,
        },
    )
    .unwrap();
    h.run(medical(), bp(a, 165.0, 85.0)).unwrap();
    h.run(medical(), bp(b, 165.0, 85.0)).unwrap();
    assert!(active(&h, a, "bp-high").is_none(), "a's own limit is 170");
    assert!(
        active(&h, b, "bp-high").is_some(),
        "b keeps the default 160"
    );

    let mut off = alarm::default_rules()
        .into_iter()
        .find(|r| r.id == "bp-high")
        .unwrap();
    off.enabled = false;
    h.run(
        medical(),
        Command::SetAlarmRule {
            seat: None,
            rule: off,
        },
    )
    .unwrap();
    assert!(
        active(&h, b, "bp-high").is_none(),
        "switched off for the session: cleared"
    );
    let bad = alarm::AlarmRule {
        id: "Bad Id".into(),
        ..alarm::default_rules()[0].clone()
    };
    let err = h
        .run(
            medical(),
            Command::SetAlarmRule {
                seat: None,
                rule: bad,
            },
        )
        .unwrap_err();
    assert_eq!(err.code, RejectCode::InvalidInput);
}

#[test]
fn a_dose_above_the_routes_mg_per_kg_is_held_for_a_reason() {
    // P0 weighs 70 kg; a BP within the last 30 min, so only the size holds.
    let give = |seat, route, mg, reason: Option<&str>| Command::RecordDose {
        seat,
        route,
        mg,
        lot: "L1".into(),
        administered_at: None,
        override_reason: reason.map(str::to_string),
    };
    for (route, mg, held) in [
        (Route::Im, 140.0, false),
        (Route::Im, 141.0, true),
        (Route::Iv, 70.0, false),
        (Route::Iv, 71.0, true),
        (Route::Intranasal, 141.0, true),
        (Route::SublingualOral, 500.0, false),
    ] {
        let (mut h, s) = ready_to_dose(1);
        h.run(medical(), bp(s, 120.0, 80.0)).unwrap();
        let result = h.run(medical(), give(s, route, mg, None));
        assert_eq!(result.is_err(), held, "{mg} mg {route}");
    }

    let (mut h, s) = ready_to_dose(1);
    h.run(medical(), bp(s, 120.0, 80.0)).unwrap();
    let e = h
        .run(medical(), give(s, Route::Im, 400.0, None))
        .unwrap_err();
    assert_eq!(e.code, RejectCode::DoseHold);
    assert_eq!(
        e.message,
        "dose held: 400 mg IM is 5.71 mg/kg at 70 kg, above the hold threshold of 2 mg/kg. Check the dose, or override with a reason."
    );
    assert!(
        h.state.seat(s).unwrap().doses.is_empty(),
        "nothing recorded"
    );
    h.run(
        medical(),
        give(
            s,
            Route::Im,
            400.0,
            Some("protocol dose confirmed with the prescriber"),
        ),
    )
    .unwrap();
    let given = &h.state.seat(s).unwrap().doses[0];
    assert_eq!(
        given.hold_override.as_ref().unwrap().held_because,
        "400 mg IM is 5.71 mg/kg at 70 kg, above the hold threshold of 2 mg/kg"
    );

    // Without a BP as well: both reasons, both remedies.
    let (mut h, s) = ready_to_dose(1);
    let e = h
        .run(medical(), give(s, Route::Im, 400.0, None))
        .unwrap_err();
    assert_eq!(
        e.message,
        "dose held: no pre-dose BP is recorded; 400 mg IM is 5.71 mg/kg at 70 kg, above the hold threshold of 2 mg/kg. Take a BP and check the dose, or override with a reason."
    );

    // A further dose adds to the first: 100 mg IM at 70 kg, then 50 mg more.
    let (mut h, s) = ready_to_dose(1);
    h.run(medical(), bp(s, 120.0, 80.0)).unwrap();
    h.run(medical(), give(s, Route::Im, 100.0, None)).unwrap();
    let e = h
        .run(medical(), give(s, Route::Im, 50.0, None))
        .unwrap_err();
    assert_eq!(
        e.message,
        "dose held: 50 mg IM brings the session's IM total to 150 mg, 2.14 mg/kg at 70 kg, above the hold threshold of 2 mg/kg. Check the dose, or override with a reason."
    );
    h.run(medical(), give(s, Route::Im, 40.0, None)).unwrap();

    // No weight on record: held until one is recorded, or overridden.
    let (mut h, s) = ready_to_dose(1);
    h.run(medical(), bp(s, 120.0, 80.0)).unwrap();
    h.state.seats[0].weight_kg = None;
    let e = h
        .run(medical(), give(s, Route::Im, 50.0, None))
        .unwrap_err();
    assert_eq!(
        e.message,
        "dose held: no weight is recorded to check the dose per kg. Record a weight, or override with a reason."
    );
    let e = h
        .run(medical(), give(s, Route::Im, 50.0, Some("x")))
        .unwrap_err();
    assert_eq!(e.code, RejectCode::InvalidInput, "{}", e.message);
    h.run(medical(), vital(s, Measurement::BodyWeight { value: 70.0 }))
        .unwrap();
    h.run(medical(), give(s, Route::Im, 50.0, None)).unwrap();

    // Not fasted: only an override clears it.
    let (mut h, s) = ready_after(
        1,
        ArrivalForm {
            fasting_confirmed: false,
            ..arrival()
        },
    );
    h.run(medical(), bp(s, 120.0, 80.0)).unwrap();
    let e = h
        .run(medical(), give(s, Route::Im, 40.0, None))
        .unwrap_err();
    assert_eq!(
        e.message,
        "dose held: fasting is not confirmed on the arrival check-in. Override with a reason."
    );
    let e = h
        .run(medical(), give(s, Route::Im, 400.0, None))
        .unwrap_err();
    assert_eq!(
        e.message,
        "dose held: 400 mg IM is 5.71 mg/kg at 70 kg, above the hold threshold of 2 mg/kg; fasting is not confirmed on the arrival check-in. Check the dose, or override with a reason."
    );
    h.run(
        medical(),
        give(s, Route::Im, 40.0, Some("light breakfast 6 h ago")),
    )
    .unwrap();
    assert_eq!(
        h.state.seat(s).unwrap().doses[0]
            .hold_override
            .as_ref()
            .unwrap()
            .held_because,
        "fasting is not confirmed on the arrival check-in"
    );

    // A clinic that allows a light meal turns the fasting hold off.
    let mut relaxed = ClinicPolicy::default();
    relaxed.dose_hold.hold_unless_fasted = false;
    let mut seat = h.state.seat(s).unwrap().clone();
    assert!(monitor::fasting_hold(&seat, &ClinicPolicy::default()).is_some());
    assert!(monitor::fasting_hold(&seat, &relaxed).is_none());
    // A further dose counts with the ones before by the same route: 40 mg
    // IM was given above, so 100 mg more is 2 mg/kg, and 101 mg is held.
    let size = |seat: &crate::state::Seat, route, mg| {
        monitor::dose_size_hold(seat, &relaxed, route, mg).map(|(why, remedy)| {
            assert_eq!(
                remedy,
                if seat.weight_kg.is_some() {
                    "check the dose"
                } else {
                    "record a weight"
                }
            );
            why
        })
    };
    assert_eq!(size(&seat, Route::Im, 100.0), None);
    assert_eq!(
        size(&seat, Route::Im, 101.0).unwrap(),
        "101 mg IM brings the session's IM total to 141 mg, 2.01 mg/kg at 70 kg, above the hold threshold of 2 mg/kg"
    );
    assert_eq!(
        size(&seat, Route::Intranasal, 140.0),
        None,
        "another route counts apart"
    );
    // Just over the limit never reads as the limit itself.
    seat.doses.clear();
    assert_eq!(
        size(&seat, Route::Im, 140.2).unwrap(),
        "140.2 mg IM is 2.002 mg/kg at 70 kg, above the hold threshold of 2 mg/kg"
    );
    // Doses adding up to the limit exactly are not held by a rounding error
    // (2.2 + 83.4 + 14.4 is 100.00000000000001 in floating point).
    let mut earlier = h.state.seat(s).unwrap().doses[0].clone();
    seat.weight_kg = Some(50.0);
    for mg in [2.2, 83.4] {
        earlier.mg = mg;
        seat.doses.push(earlier.clone());
    }
    assert_eq!(size(&seat, Route::Im, 14.4), None);
    assert!(size(&seat, Route::Im, 14.401).is_some());
    seat.doses.clear();
    // No weight: nothing to check the dose against, so it is held too,
    // unless the clinic gives fixed doses without weighing.
    seat.weight_kg = None;
    assert_eq!(
        size(&seat, Route::Im, 40.0).unwrap(),
        "no weight is recorded to check the dose per kg"
    );
    let mut unweighed = relaxed.clone();
    unweighed.dose_hold.hold_without_weight = false;
    assert_eq!(
        monitor::dose_size_hold(&seat, &unweighed, Route::Im, 40.0),
        None
    );

    let mut policy = ClinicPolicy::default();
    policy.vital_limits.body_weight.min = 0.0;
    assert!(
        policy
            .validate()
            .unwrap_err()
            .contains("body_weight: min must be above 0")
    );
    let mut policy = ClinicPolicy::default();
    policy.dose_hold.mg_per_kg_above.im = 0.0;
    assert_eq!(
        policy.validate().unwrap_err(),
        "dose_hold.mg_per_kg_above.im must be more than 0"
    );
}

#[test]
fn the_pre_dose_hold_needs_a_recent_bp_at_or_below_140_90_or_an_override() {
    let (mut h, s) = ready_to_dose(1);
    let e = h.run(medical(), dose(s, None)).unwrap_err();
    assert_eq!(e.code, RejectCode::DoseHold);
    assert_eq!(
        e.message,
        "dose held: no pre-dose BP is recorded. Take a BP, or override with a reason."
    );

    for (sys, dia, held) in [
        (140.0, 90.0, false),
        (141.0, 85.0, true),
        (135.0, 91.0, true),
    ] {
        let (mut h, s) = ready_to_dose(1);
        h.run(medical(), bp(s, sys, dia)).unwrap();
        assert_eq!(
            h.run(medical(), dose(s, None)).is_err(),
            held,
            "{sys}/{dia}"
        );
    }

    let (mut h, s) = ready_to_dose(1);
    h.run(medical(), bp(s, 130.0, 80.0)).unwrap();
    h.advance(31 * MIN);
    let e = h.run(medical(), dose(s, None)).unwrap_err();
    assert_eq!(
        e.message,
        "dose held: the last BP was measured 31 min before the dose; it must be within 30 min. Take a BP, or override with a reason."
    );

    let (mut h, s) = ready_to_dose(1);
    h.run(medical(), bp(s, 152.0, 94.0)).unwrap();
    h.run(
        medical(),
        dose(s, Some("rechecked after rest; benefit outweighs")),
    )
    .unwrap();
    let given = &h.state.seat(s).unwrap().doses[0];
    let held = given.hold_override.as_ref().unwrap();
    assert_eq!(
        held.held_because,
        "pre-dose BP 152/94 is above the hold threshold 140/90"
    );
    assert_eq!(held.reason, "rechecked after rest; benefit outweighs");
    assert_eq!(given.pre_dose_bp.unwrap().systolic, 152.0);
}

#[test]
fn discharge_waits_for_every_checklist_item_or_a_medical_override() {
    let (mut h, s) = dosed();
    for to in [ParticipantState::Emerging, ParticipantState::Integrating] {
        h.run(facilitator(), Command::SetParticipantState { seat: s, to })
            .unwrap();
    }
    let unmet = |h: &Harness| -> Vec<DischargeCheck> {
        let seat = h.state.seat(s).unwrap();
        monitor::discharge_checklist(seat, &h.state, h.now)
            .items
            .into_iter()
            .filter(|i| !i.met)
            .map(|i| i.check)
            .collect()
    };
    assert_eq!(
        unmet(&h),
        [
            DischargeCheck::TimeSinceDose,
            DischargeCheck::SedationResolved,
            DischargeCheck::VitalsAcceptable
        ]
    );
    h.advance(120 * MIN - 1);
    assert!(
        unmet(&h).contains(&DischargeCheck::TimeSinceDose),
        "1 ms short of 2 h"
    );
    h.advance(1);
    rated(&mut h, s, Rating::Sedation { moaas: 4 });
    rated(&mut h, s, Rating::Dissociation { score: 3 });
    h.run(medical(), bp(s, 164.0, 84.0)).unwrap();
    h.run(medical(), vital(s, Measurement::Spo2 { value: 97.0 }))
        .unwrap();
    assert_eq!(
        unmet(&h),
        [
            DischargeCheck::SedationResolved,
            DischargeCheck::DissociationResolved,
            DischargeCheck::VitalsAcceptable,
            DischargeCheck::NoActiveAlarms
        ]
    );
    let e = h.run(medical(), discharge(s)).unwrap_err();
    assert_eq!(e.code, RejectCode::DischargeNotReady);
    assert!(
        e.message.contains("latest MOAA/S is 4 (needs 5)"),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("systolic BP 164 mmHg (alarm when ≥ 160)"),
        "{}",
        e.message
    );

    rated(&mut h, s, Rating::Sedation { moaas: 5 });
    rated(&mut h, s, Rating::Dissociation { score: 0 });
    h.run(medical(), bp(s, 150.0, 84.0)).unwrap();
    let a = active(&h, s, "bp-high").unwrap();
    h.run(medical(), Command::AcknowledgeAlarm { alarm: a.id })
        .unwrap();
    assert!(unmet(&h).is_empty(), "{:?}", unmet(&h));
    let e = h.run(facilitator(), discharge(s)).unwrap_err();
    assert_eq!(e.code, RejectCode::Forbidden, "the medical provider signs");
    h.run(medical(), discharge(s)).unwrap();
    let seat = h.state.seat(s).unwrap();
    assert_eq!(seat.state, ParticipantState::Discharged);
    assert!(seat.discharge.as_ref().unwrap().override_reason.is_none());

    let form = monitor::monitoring_summary(seat, &h.state, h.now);
    assert_eq!(form.bp_before_dose.map(|b| b.systolic), Some(126.0));
    assert_eq!(form.bp_before_discharge.map(|b| b.systolic), Some(150.0));
    assert!(
        form.sedation
            && form.dissociation
            && !form.respiratory_depression
            && form.vitals_acceptable
    );
    assert_eq!(form.minutes_monitored, 120);
    assert!(form.ready_to_leave_at.is_some());
}

#[test]
fn a_discharge_override_is_recorded_with_its_reason() {
    let (mut h, s) = dosed();
    h.run(
        facilitator(),
        Command::SetParticipantState {
            seat: s,
            to: ParticipantState::Emerging,
        },
    )
    .unwrap();
    // "x" is not a reason: the override is the record of why.
    let discharge = |reason: &str| Command::Discharge {
        seat: s,
        override_reason: Some(reason.into()),
    };
    let e = h.run(medical(), discharge(" x ")).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            RejectCode::InvalidInput,
            "an override reason is the record of why the discharge checklist was set aside: say why in at least 10 characters"
        )
    );
    let signed = h
        .run(medical(), discharge("transfer to ED with escort"))
        .unwrap();
    let EventBody::DischargeSigned {
        checklist,
        override_reason,
        ..
    } = &signed[0].body
    else {
        panic!("{signed:?}")
    };
    assert!(!checklist.all_met());
    assert_eq!(
        override_reason.as_deref(),
        Some("transfer to ED with escort")
    );
    assert!(h.state.alarms.iter().all(|a| a.seat != s));
}

#[test]
fn the_session_closes_only_when_every_dosed_participant_is_discharged() {
    let (mut h, s) = dosed();
    h.phase(SessionPhase::Integration);
    let e = h
        .run(
            facilitator(),
            Command::ChangePhase {
                to: SessionPhase::Closed,
            },
        )
        .unwrap_err();
    assert!(e.message.ends_with("not discharged: P0"), "{}", e.message);
    h.run(
        facilitator(),
        Command::SetParticipantState {
            seat: s,
            to: ParticipantState::Emerging,
        },
    )
    .unwrap();
    h.run(
        medical(),
        Command::Discharge {
            seat: s,
            override_reason: Some("left against advice, escorted".into()),
        },
    )
    .unwrap();
    h.phase(SessionPhase::Closed);
    assert!(h.state.alarms.is_empty());
}

#[test]
fn a_rule_that_raises_its_priority_still_re_notifies_meanwhile() {
    let (mut h, s) = dosed();
    let mut rule = alarm::default_rules()
        .into_iter()
        .find(|r| r.id == "check-overdue")
        .unwrap();
    rule.raise_to = Some(alarm::RaisePriority {
        to: AlarmPriority::High,
        after_min: 10,
    });
    h.run(medical(), Command::SetAlarmRule { seat: None, rule })
        .unwrap();
    h.advance(17 * MIN);
    let a = active(&h, s, "check-overdue").unwrap();
    assert_eq!(a.priority, AlarmPriority::Medium);
    h.advance(3 * MIN);
    assert_eq!(
        active(&h, s, "check-overdue").unwrap().escalations,
        1,
        "medium re-notifies at 3 min"
    );
    h.advance(7 * MIN - 1);
    assert_eq!(
        active(&h, s, "check-overdue").unwrap().priority,
        AlarmPriority::Medium
    );
    h.advance(1);
    let raised = active(&h, s, "check-overdue").unwrap();
    assert_eq!(
        raised.priority,
        AlarmPriority::High,
        "and is raised at 10 min"
    );
    assert_eq!(raised.escalations, 4, "3, 6 and 9 minutes, then the raise");
}

#[test]
fn a_late_evaluation_raises_at_once_when_the_raise_is_already_due() {
    // The task was not running (a restart, a stretch of storage failures)
    // while both a re-notification and the raise fell due: the raise must
    // happen now, not wait for another re-notification.
    let (mut h, s) = dosed();
    let mut rule = alarm::default_rules()
        .into_iter()
        .find(|r| r.id == "check-overdue")
        .unwrap();
    rule.raise_to = Some(alarm::RaisePriority {
        to: AlarmPriority::High,
        after_min: 10,
    });
    h.run(medical(), Command::SetAlarmRule { seat: None, rule })
        .unwrap();
    h.advance(17 * MIN);
    assert_eq!(
        active(&h, s, "check-overdue").unwrap().priority,
        AlarmPriority::Medium
    );
    h.now = h.now.plus_ms(11 * MIN);
    h.evaluate();
    assert_eq!(
        active(&h, s, "check-overdue").unwrap().priority,
        AlarmPriority::High,
        "raised in the first evaluation after the gap"
    );
    assert!(
        monitor::next_deadline(&h.state, h.now).is_some(),
        "and it goes on re-notifying"
    );
}

#[test]
fn a_device_clock_running_ahead_does_not_delay_an_alarm() {
    let (mut h, s) = dosed();
    h.advance(MIN);
    let start = h.now;
    let end = start.plus_ms(15 * S);
    while h.now < end {
        let ahead = h.now.plus_ms(50 * S);
        let reading = Command::RecordVital {
            seat: s,
            measurement: Measurement::Spo2 { value: 85.0 },
            measured_at: Some(ahead),
            device: Some("ox-fast".into()),
        };
        h.run(medical(), reading).unwrap();
        h.advance(S);
    }
    assert!(
        active(&h, s, "spo2-critical").is_some(),
        "raised 15 s after the first low reading arrived"
    );
}
