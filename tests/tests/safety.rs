//! The safety engine end to end, on a real server whose clock the test moves:
//! an SpO2 fall raises an alarm that reaches both staff roles in one event,
//! escalates when nobody acknowledges, latches after recovery, is acknowledged
//! by the medical provider (who, when) and cleared; a dose is refused by the
//! pre-dose hold, then given with an override; the policy and the monitoring
//! form over REST.

use crate::support::*;
use holdspace::client::{Method, StatusCode};
use holdspace::clock::Clock;
use protocol::alarm::ClearReason;
use protocol::monitor::MonitoringSummary;
use protocol::{
    Actor, AlarmPriority, ClinicPolicy, Command, EventBody, Measurement, ParticipantState,
    RejectCode, Role, Route, SeatId, Seq, ServerMessage, SessionPhase, Timestamp,
};
use std::time::Duration;

fn spo2(seat: SeatId, value: f64) -> Command {
    Command::RecordVital {
        seat,
        measurement: Measurement::Spo2 { value },
        measured_at: None,
        device: Some("ox-1".into()),
    }
}

fn dose(seat: SeatId, override_reason: Option<&str>) -> Command {
    Command::RecordDose {
        seat,
        route: Route::Im,
        mg: 40.0,
        lot: "KET-2611-04".into(),
        administered_at: None,
        override_reason: override_reason.map(str::to_string),
    }
}

fn rejection(m: ServerMessage) -> protocol::Rejection {
    match m {
        ServerMessage::Rejected { rejection, .. } => rejection,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Waits for the first event matching `pred` and returns it with its seq.
async fn event(c: &mut TestClient, pred: impl Fn(&EventBody) -> bool) -> (Seq, protocol::Event) {
    if let Some(e) = c.events().into_iter().find(|e| pred(&e.body)) {
        return (e.seq, e.clone());
    }
    match c
        .until(|m| matches!(m, ServerMessage::Event { event } if pred(&event.body)))
        .await
    {
        ServerMessage::Event { event } => (event.seq, *event),
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_spo2_fall_is_alarmed_escalated_acknowledged_latched_and_cleared() {
    let clock = Clock::manual(Timestamp(1_795_000_000_000));
    let server = TestServer::start_on(clock.clone(), |_| {}).await;
    let group = server.group("safety", 1).await;
    let (s, seat) = (group.session, group.seats[0]);
    let addr = server.addr;
    let mut fac = TestClient::connect(addr, &server.staff_token(FACILITATOR).await, s, None).await;
    let mut med = TestClient::connect(addr, &server.staff_token(MEDICAL).await, s, None).await;
    let mut phone = TestClient::connect(addr, &group.tokens[0], s, None).await;

    fac.ok(Command::SubmitArrival {
        seat,
        form: arrival(),
    })
    .await;
    fac.ok(Command::SetParticipantState {
        seat,
        to: ParticipantState::Ready,
    })
    .await;
    fac.ok(Command::ChangePhase {
        to: SessionPhase::Intentions,
    })
    .await;
    fac.ok(Command::ChangePhase {
        to: SessionPhase::Dosing,
    })
    .await;

    // The pre-dose hold: no BP, then a high BP, then a signed override.
    let held = rejection(med.command(dose(seat, None)).await);
    assert_eq!(held.code, RejectCode::DoseHold);
    assert!(
        held.message.contains("no pre-dose BP is recorded"),
        "{}",
        held.message
    );
    let bp = Measurement::BloodPressure {
        systolic: 152.0,
        diastolic: 94.0,
    };
    med.ok(Command::RecordVital {
        seat,
        measurement: bp,
        measured_at: None,
        device: None,
    })
    .await;
    let held = rejection(med.command(dose(seat, None)).await);
    assert_eq!(
        held.message,
        "dose held: pre-dose BP 152/94 is above the hold threshold 140/90. Take a BP, or override with a reason."
    );
    let refused = rejection(fac.command(dose(seat, Some("I think it is fine"))).await);
    assert_eq!(
        refused.code,
        RejectCode::Forbidden,
        "only the medical role signs an override"
    );
    med.ok(dose(
        seat,
        Some("rechecked after 10 min rest; anxious, benefit outweighs"),
    ))
    .await;
    let (_, given) = event(&mut fac, |b| matches!(b, EventBody::DoseRecorded { .. })).await;
    let EventBody::DoseRecorded { dose: given, .. } = given.body else {
        unreachable!()
    };
    let override_ = given.hold_override.expect("the override is on the record");
    assert_eq!(
        override_.held_because,
        "pre-dose BP 152/94 is above the hold threshold 140/90"
    );

    fac.ok(Command::ChangePhase {
        to: SessionPhase::Experience,
    })
    .await;
    fac.ok(Command::SetParticipantState {
        seat,
        to: ParticipantState::InExperience,
    })
    .await;
    clock.advance(60_000);

    // SpO2 falls below 88 % and stays there, one reading a second.
    let is_raise =
        |b: &EventBody| matches!(b, EventBody::AlarmRaised { rule, .. } if rule == "spo2-critical");
    for _ in 0..15 {
        med.ok(spo2(seat, 85.0)).await;
        let state = server
            .app
            .hub
            .session(s)
            .await
            .unwrap()
            .unwrap()
            .snapshot(protocol::Viewer::Staff)
            .await
            .unwrap();
        assert!(
            state.alarms.iter().all(|a| a.rule != "spo2-critical"),
            "raised before 15 s"
        );
        clock.advance(1_000);
    }
    let (alarm, raised_fac) = event(&mut fac, is_raise).await;
    let (alarm_med, raised_med) = event(&mut med, is_raise).await;
    assert_eq!(
        (alarm, &raised_fac),
        (alarm_med, &raised_med),
        "one event reached both roles"
    );
    let EventBody::AlarmRaised {
        priority,
        notify,
        detail,
        latching,
        ..
    } = &raised_fac.body
    else {
        unreachable!()
    };
    assert_eq!(*priority, AlarmPriority::High);
    assert_eq!(notify, &vec![Role::Medical]);
    assert_eq!(detail, "SpO2 85 % (alarm when < 88)");
    assert!(latching);
    assert_eq!(
        raised_fac.at,
        Timestamp(1_795_000_000_000 + 60_000 + 15_000),
        "raised exactly at 15 s"
    );

    // Nobody acknowledges: at 60 s it re-notifies every staff role.
    for _ in 0..59 {
        med.ok(spo2(seat, 85.0)).await;
        clock.advance(1_000);
    }
    let is_escalation =
        |b: &EventBody| matches!(b, EventBody::AlarmEscalated { alarm: a, .. } if *a == alarm);
    let state = server
        .app
        .hub
        .session(s)
        .await
        .unwrap()
        .unwrap()
        .snapshot(protocol::Viewer::Staff)
        .await
        .unwrap();
    assert_eq!(
        state.alarm(alarm).unwrap().escalations,
        0,
        "not before 60 s"
    );
    med.ok(spo2(seat, 85.0)).await;
    clock.advance(1_000);
    let (_, escalated) = event(&mut fac, is_escalation).await;
    let EventBody::AlarmEscalated { notify, .. } = &escalated.body else {
        unreachable!()
    };
    assert_eq!(notify, &vec![Role::Facilitator, Role::Medical, Role::Admin]);
    event(&mut med, is_escalation).await;

    // SpO2 recovers: the alarm latches (condition over, still listed).
    for _ in 0..3 {
        med.ok(spo2(seat, 97.0)).await;
        clock.advance(1_000);
    }
    event(&mut med, |b| matches!(b, EventBody::AlarmConditionChanged { alarm: a, active: false } if *a == alarm)).await;
    let state = server
        .app
        .hub
        .session(s)
        .await
        .unwrap()
        .unwrap()
        .snapshot(protocol::Viewer::Staff)
        .await
        .unwrap();
    assert!(
        state
            .alarm(alarm)
            .is_some_and(|a| !a.condition_active && a.acknowledged.is_none()),
        "latched"
    );

    // The medical provider acknowledges: recorded with who and when, then cleared.
    let when = clock.now();
    med.ok(Command::AcknowledgeAlarm { alarm }).await;
    let (_, ack) = event(
        &mut fac,
        |b| matches!(b, EventBody::AlarmAcknowledged { alarm: a } if *a == alarm),
    )
    .await;
    let Actor::Staff { role, .. } = ack.actor else {
        panic!("{:?}", ack.actor)
    };
    assert_eq!((role, ack.at), (protocol::StaffRole::Medical, when));
    let (_, cleared) = event(
        &mut fac,
        |b| matches!(b, EventBody::AlarmCleared { alarm: a, .. } if *a == alarm),
    )
    .await;
    assert!(matches!(
        cleared.body,
        EventBody::AlarmCleared {
            reason: ClearReason::Acknowledged,
            ..
        }
    ));
    let again = rejection(fac.command(Command::AcknowledgeAlarm { alarm }).await);
    assert_eq!(again.code, RejectCode::UnknownAlarm);

    // The phone saw none of it.
    phone.reach(Seq(0)).await;
    med.ok(Command::PostGroupMessage {
        text: "All is well".into(),
    })
    .await;
    phone.until(|m| matches!(m, ServerMessage::Event { event } if matches!(event.body, EventBody::GroupMessagePosted { .. }))).await;
    assert!(
        phone
            .events()
            .iter()
            .all(|e| !e.body.type_name().starts_with("alarm")),
        "alarms stay with staff"
    );

    // The monitoring form records the desaturation.
    let staff = server.staff(MEDICAL).await;
    let (status, body) = staff
        .raw(
            Method::GET,
            &format!("/api/sessions/{s}/seats/{seat}/monitoring"),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let form: MonitoringSummary = serde_json::from_slice(&body).unwrap();
    assert!(form.respiratory_depression);
    assert_eq!(
        form.bp_before_dose.map(|b| (b.systolic, b.diastolic)),
        Some((152.0, 94.0))
    );
    assert_eq!(form.minutes_monitored, 2);
    assert!(!form.checklist.items.is_empty() && form.ready_to_leave_at.is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_sets_its_policy_and_new_sessions_use_it() {
    let server = TestServer::start().await;
    let admin = server.staff(ADMIN).await;
    let fac = server.staff(FACILITATOR).await;
    let (status, body) = fac
        .raw(Method::GET, "/api/policy", None, &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let mut policy: ClinicPolicy = serde_json::from_slice(&body).unwrap();
    assert_eq!(policy, ClinicPolicy::default());

    policy.discharge.min_after_first_dose_min = 150;
    let rule = policy
        .alarm_rules
        .iter_mut()
        .find(|r| r.id == "spo2-low")
        .unwrap();
    rule.confirm_s = 20;
    let json = serde_json::to_string(&policy).unwrap();
    let (status, _) = fac
        .raw(Method::PUT, "/api/policy", Some(json.clone()), &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins change policy");
    let mut broken = policy.clone();
    broken.alarm_rules[0].confirm_s = 9999;
    let (status, body) = admin
        .raw(
            Method::PUT,
            "/api/policy",
            Some(serde_json::to_string(&broken).unwrap()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(String::from_utf8_lossy(&body).contains("a confirmation delay is at most 600 s"));
    let (status, _) = admin
        .raw(Method::PUT, "/api/policy", Some(json), &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);

    let s = fac
        .create_session("with the clinic's policy")
        .await
        .unwrap()
        .id;
    let state = fac.session(s).await.unwrap();
    assert_eq!(state.policy, policy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_drops_while_events_flow_is_recorded_offline_and_alarmed() {
    let clock = Clock::manual(Timestamp(1_795_000_000_000));
    let server = TestServer::start_on(clock.clone(), |_| {}).await;
    let group = server.group("offline", 1).await;
    let (s, seat) = (group.session, group.seats[0]);
    let mut med =
        TestClient::connect(server.addr, &server.staff_token(MEDICAL).await, s, None).await;
    let phone = TestClient::connect(server.addr, &group.tokens[0], s, None).await;
    event(&mut med, |b| {
        matches!(b, EventBody::ParticipantConnected { .. })
    })
    .await;

    // The phone loses signal while readings keep flowing to everyone. The
    // server notices when the socket closes; the clock stands still until then.
    let _ = phone.drop_connection();
    let gone = loop {
        med.ok(spo2(seat, 97.0)).await;
        let seen = med
            .events()
            .into_iter()
            .find(|e| matches!(e.body, EventBody::ParticipantDisconnected { .. }))
            .map(|e| e.at);
        if let Some(at) = seen {
            break at;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(gone, clock.now());
    for _ in 0..19 {
        med.ok(spo2(seat, 97.0)).await;
        clock.advance(1_000);
    }
    let state = server
        .app
        .hub
        .session(s)
        .await
        .unwrap()
        .unwrap()
        .snapshot(protocol::Viewer::Staff)
        .await
        .unwrap();
    assert!(
        state.alarms.iter().all(|a| a.rule != "device-offline"),
        "not before 20 s"
    );
    clock.advance(1_000);
    let (_, raised) = event(
        &mut med,
        |b| matches!(b, EventBody::AlarmRaised { rule, .. } if rule == "device-offline"),
    )
    .await;
    let EventBody::AlarmRaised { kind, priority, .. } = raised.body else {
        unreachable!()
    };
    assert_eq!(
        (kind, priority),
        (protocol::AlarmKind::Technical, AlarmPriority::Low)
    );

    // Back online: the alarm clears.
    let _phone = TestClient::connect(server.addr, &group.tokens[0], s, None).await;
    event(&mut med, |b| {
        matches!(
            b,
            EventBody::AlarmCleared {
                reason: ClearReason::ConditionEnded,
                ..
            }
        )
    })
    .await;
    server.stop().await;
}
