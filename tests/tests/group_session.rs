//! A whole group session, 12 participants and 3 staff, over real sockets:
//! every message reaches exactly the people it is for.

use crate::support::*;
use futures_util::future::join_all;
use protocol::{
    Command, Event, EventBody, Measurement, ObservedStatus, ParticipantState, PostSessionForm,
    RejectCode, Route, SelfReport, Seq, ServerMessage, SessionPhase, SupportReason, Viewer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_reaches_exactly_the_right_people() {
    let server = TestServer::start().await;
    let group = server.group("Thursday group", 12).await;
    let s = group.session;
    let addr = server.addr;
    let mut fac = TestClient::connect(addr, &server.staff_token(FACILITATOR).await, s, None).await;
    let mut fac2 =
        TestClient::connect(addr, &server.staff_token(FACILITATOR_2).await, s, None).await;
    let mut med = TestClient::connect(addr, &server.staff_token(MEDICAL).await, s, None).await;
    let mut ps = Vec::new();
    for token in &group.tokens {
        ps.push(TestClient::connect(addr, token, s, None).await);
    }
    let seats = group.seats.clone();

    // Arrival: everyone at once (the session task batches them).
    join_all(ps.iter_mut().zip(&seats).map(|(p, seat)| {
        p.ok(Command::SubmitArrival {
            seat: *seat,
            form: arrival(),
        })
    }))
    .await;
    for (i, seat) in seats.iter().enumerate() {
        let bp = Measurement::BloodPressure {
            systolic: 118.0 + i as f64,
            diastolic: 76.0,
        };
        med.ok(Command::RecordVital {
            seat: *seat,
            measurement: bp,
            measured_at: None,
            device: None,
        })
        .await;
        fac.ok(Command::SetParticipantState {
            seat: *seat,
            to: ParticipantState::Ready,
        })
        .await;
    }
    fac.ok(Command::PostGroupMessage {
        text: "Welcome. Phones face down, eye shades ready.".into(),
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
    for seat in &seats {
        med.ok(Command::RecordDose {
            seat: *seat,
            route: Route::Im,
            mg: 35.0,
            lot: "KET-24-118".into(),
            administered_at: None,
            override_reason: None,
        })
        .await;
    }
    fac.ok(Command::ChangePhase {
        to: SessionPhase::Experience,
    })
    .await;
    for seat in &seats {
        fac2.ok(Command::SetParticipantState {
            seat: *seat,
            to: ParticipantState::InExperience,
        })
        .await;
    }

    // A support request, seen and acknowledged.
    let needy = 3;
    ps[needy]
        .ok(Command::SelfReport {
            seat: seats[needy],
            report: SelfReport::NeedSupport {
                reasons: vec![SupportReason::Nausea],
                note: Some("sick".into()),
            },
        })
        .await;
    fac2.until(|m| matches!(m, ServerMessage::Event { event } if matches!(event.body, EventBody::SelfReported { seat, .. } if seat == seats[needy])))
        .await;
    fac2.ok(Command::AcknowledgeSupport { seat: seats[needy] })
        .await;
    ps[needy]
        .until(|m| matches!(m, ServerMessage::Event { event } if matches!(event.body, EventBody::SupportAcknowledged { .. })))
        .await;

    // A participant may not speak for a neighbour; nothing is written.
    let refused = ps[0]
        .command(Command::SelfReport {
            seat: seats[1],
            report: SelfReport::Ok {},
        })
        .await;
    assert!(
        matches!(&refused, ServerMessage::Rejected { rejection, .. } if rejection.code == RejectCode::Forbidden),
        "{refused:?}"
    );

    // Rounds, private notes, pulse oximetry, "I'm OK" from everyone at once.
    for (i, seat) in seats.iter().enumerate() {
        fac.ok(Command::ObserveCheckIn {
            seat: *seat,
            status: ObservedStatus::Resting,
            note: Some(format!("round 1, nest {i}")),
        })
        .await;
        med.ok(Command::RecordVital {
            seat: *seat,
            measurement: Measurement::Spo2 { value: 97.0 },
            measured_at: None,
            device: Some(format!("oximeter-{i}")),
        })
        .await;
    }
    fac2.ok(Command::AddNote {
        seat: seats[5],
        text: "mentioned a hard week at work".into(),
    })
    .await;
    join_all(ps.iter_mut().zip(&seats).map(|(p, seat)| {
        p.ok(Command::SelfReport {
            seat: *seat,
            report: SelfReport::Ok {},
        })
    }))
    .await;

    // Return, integration, discharge, close.
    for seat in &seats {
        fac.ok(Command::SetParticipantState {
            seat: *seat,
            to: ParticipantState::Emerging,
        })
        .await;
        fac.ok(Command::SetParticipantState {
            seat: *seat,
            to: ParticipantState::Integrating,
        })
        .await;
    }
    fac.ok(Command::ChangePhase {
        to: SessionPhase::Integration,
    })
    .await;
    join_all(ps.iter_mut().zip(&seats).enumerate().map(|(i, (p, seat))| {
        p.ok(Command::SubmitPostSession {
            seat: *seat,
            form: PostSessionForm {
                mood: 7.try_into().unwrap(),
                journal: format!("private journal of participant {i}"),
            },
        })
    }))
    .await;
    for seat in &seats {
        // The 2-hour checklist is the safety tests' subject; here the clock is real.
        med.ok(Command::Discharge {
            seat: *seat,
            override_reason: Some("timeline compressed for the test".into()),
        })
        .await;
    }
    let (closed_at, _) = fac
        .ok(Command::ChangePhase {
            to: SessionPhase::Closed,
        })
        .await;

    // Everyone reads up to the close, which everyone may see.
    for c in [&mut fac, &mut fac2, &mut med]
        .into_iter()
        .chain(ps.iter_mut())
    {
        c.reach(closed_at).await;
    }

    let log = full_log(addr, &server.staff_token(MEDICAL).await, s).await;
    assert_eq!(log.last().unwrap().seq, closed_at);
    let snapshot_seq = |c: &TestClient| match &c.received[1] {
        ServerMessage::Snapshot { state } => state.last_seq,
        other => panic!("second message should be the snapshot, was {other:?}"),
    };

    // Staff: everything after their snapshot, each exactly once, in order.
    for staff in [&fac, &fac2, &med] {
        let from = snapshot_seq(staff);
        let got: Vec<Seq> = staff.events().iter().map(|e| e.seq).collect();
        let want: Vec<Seq> = log.iter().map(|e| e.seq).filter(|q| *q > from).collect();
        assert_eq!(got, want, "a staff board missed or repeated events");
    }

    // Participants: exactly the events about their own seat or the group.
    for (i, p) in ps.iter().enumerate() {
        let viewer = Viewer::Participant(seats[i]);
        let from = snapshot_seq(p);
        let got: Vec<&Event> = p.events();
        let want: Vec<&Event> = log
            .iter()
            .filter(|e| e.seq > from && e.visible_to(viewer))
            .collect();
        assert_eq!(got, want, "participant {i} got the wrong events");
        for e in &got {
            if let Some(seat) = e.body.seat() {
                assert_eq!(
                    seat, seats[i],
                    "participant {i} received another seat's event"
                );
            }
            assert!(!matches!(
                e.body,
                EventBody::NoteAdded { .. } | EventBody::ObservedCheckIn { .. }
            ));
        }
        let ServerMessage::Snapshot { state } = &p.received[1] else {
            unreachable!()
        };
        assert!(
            state.seats.iter().all(|seat| seat.id == seats[i]),
            "snapshot shows other seats"
        );
        // Nobody else's words reach this phone, in any message.
        let everything = serde_json::to_string(&p.received).unwrap();
        for j in (0..seats.len()).filter(|j| *j != i) {
            assert!(!everything.contains(&format!("private journal of participant {j}\"")));
            assert!(!everything.contains(&seats[j].to_string()));
        }
        assert!(
            !everything.contains("hard week"),
            "a staff note reached a participant"
        );
    }
    // The participants' support request and its acknowledgement are in the log once each.
    let acks = log
        .iter()
        .filter(|e| matches!(e.body, EventBody::SupportAcknowledged { .. }))
        .count();
    assert_eq!(acks, 1);

    // The server's state equals a fold of the log it serves.
    let state = server
        .app
        .hub
        .session(s)
        .await
        .unwrap()
        .unwrap()
        .snapshot(Viewer::Staff)
        .await
        .unwrap();
    assert_eq!(protocol::SessionState::from_events(s, &log), state);
    assert!(
        state
            .seats
            .iter()
            .all(|seat| seat.state == ParticipantState::Discharged)
    );
    server.stop().await;
}
