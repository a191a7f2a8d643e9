//! The role × command table, every cell tried over a real connection: each
//! allowed command is accepted, each forbidden one refused with nothing written.

use crate::support::*;
use protocol::{
    Command, CommandKind, Measurement, ObservedStatus, ParticipantState, PostSessionForm, Rating,
    RejectCode, Role, Route, SeatId, SelfReport, ServerMessage, SessionId, SessionPhase, Viewer,
};

/// The table as the clinic specified it, written out independently of the
/// code: (command, [admin, facilitator, medical, participant]).
const EXPECTED: [(CommandKind, [bool; 4]); 20] = [
    (CommandKind::AddSeat, [true, true, true, false]),
    (CommandKind::ChangePhase, [false, true, true, false]),
    (CommandKind::SetParticipantState, [false, true, true, false]),
    (CommandKind::SubmitArrival, [false, true, true, true]),
    (CommandKind::SelfReport, [false, false, false, true]),
    (CommandKind::AcknowledgeSupport, [false, true, true, false]),
    (CommandKind::ObserveCheckIn, [false, true, true, false]),
    (CommandKind::RecordVital, [false, false, true, false]),
    (CommandKind::RecordDose, [false, false, true, false]),
    (CommandKind::Discharge, [false, false, true, false]),
    (CommandKind::AddNote, [false, true, true, false]),
    (CommandKind::PostGroupMessage, [false, true, true, false]),
    (CommandKind::SubmitPostSession, [false, false, false, true]),
    (CommandKind::RecordRating, [false, false, true, false]),
    (CommandKind::AssignFacilitator, [false, true, true, false]),
    (CommandKind::ConfirmRideHome, [false, true, true, false]),
    (CommandKind::EndDeviceFeed, [false, false, true, false]),
    (CommandKind::AcknowledgeAlarm, [false, true, true, false]),
    (CommandKind::PauseAlarmAudio, [false, true, true, false]),
    (CommandKind::SetAlarmRule, [false, false, true, false]),
];

/// Brings a fresh session to a state where `kind` is valid, and returns it.
async fn prepare(
    server: &TestServer,
    session: SessionId,
    fac: &mut TestClient,
    med: &mut TestClient,
    me: &mut TestClient,
    seat: SeatId,
    kind: CommandKind,
) -> Command {
    let phase = |to| Command::ChangePhase { to };
    let state = |to| Command::SetParticipantState { seat, to };
    let support = || Command::SelfReport {
        seat,
        report: SelfReport::NeedSupport {
            reasons: vec![],
            note: None,
        },
    };
    match kind {
        CommandKind::AddSeat => Command::AddSeat {
            display_name: "Noor".into(),
            weight_kg: None,
            location: None,
        },
        CommandKind::ChangePhase => phase(SessionPhase::Intentions),
        CommandKind::SetParticipantState => {
            fac.ok(Command::SubmitArrival {
                seat,
                form: arrival(),
            })
            .await;
            state(ParticipantState::Ready)
        }
        CommandKind::SubmitArrival => Command::SubmitArrival {
            seat,
            form: arrival(),
        },
        CommandKind::SelfReport => Command::SelfReport {
            seat,
            report: SelfReport::Ok {},
        },
        CommandKind::AcknowledgeSupport => {
            me.ok(support()).await;
            Command::AcknowledgeSupport { seat }
        }
        CommandKind::ObserveCheckIn => Command::ObserveCheckIn {
            seat,
            status: ObservedStatus::Calm,
            note: None,
        },
        CommandKind::RecordVital => Command::RecordVital {
            seat,
            measurement: Measurement::HeartRate { value: 72.0 },
            measured_at: None,
            device: None,
        },
        CommandKind::RecordDose | CommandKind::Discharge | CommandKind::RecordRating => {
            fac.ok(Command::SubmitArrival {
                seat,
                form: arrival(),
            })
            .await;
            fac.ok(state(ParticipantState::Ready)).await;
            fac.ok(phase(SessionPhase::Intentions)).await;
            fac.ok(phase(SessionPhase::Dosing)).await;
            let bp = Measurement::BloodPressure {
                systolic: 124.0,
                diastolic: 78.0,
            };
            med.ok(Command::RecordVital {
                seat,
                measurement: bp,
                measured_at: None,
                device: None,
            })
            .await;
            let dose = Command::RecordDose {
                seat,
                route: Route::SublingualOral,
                mg: 200.0,
                lot: "L7".into(),
                administered_at: None,
                override_reason: None,
            };
            if kind == CommandKind::RecordDose {
                return dose;
            }
            med.ok(dose).await;
            if kind == CommandKind::RecordRating {
                return Command::RecordRating {
                    seat,
                    rating: Rating::Sedation { moaas: 3 },
                };
            }
            fac.ok(state(ParticipantState::InExperience)).await;
            fac.ok(state(ParticipantState::Emerging)).await;
            Command::Discharge {
                seat,
                override_reason: Some("role table test".into()),
            }
        }
        CommandKind::AddNote => Command::AddNote {
            seat,
            text: "slept through".into(),
        },
        CommandKind::PostGroupMessage => Command::PostGroupMessage {
            text: "Ten minutes to the circle".into(),
        },
        CommandKind::SubmitPostSession => {
            for to in [
                SessionPhase::Intentions,
                SessionPhase::Dosing,
                SessionPhase::Experience,
                SessionPhase::Integration,
            ] {
                fac.ok(phase(to)).await;
            }
            Command::SubmitPostSession {
                seat,
                form: PostSessionForm {
                    mood: 8.try_into().unwrap(),
                    journal: "".into(),
                },
            }
        }
        CommandKind::AssignFacilitator => Command::AssignFacilitator { seat, staff: None },
        CommandKind::ConfirmRideHome => Command::ConfirmRideHome { seat },
        CommandKind::EndDeviceFeed => {
            let m = Measurement::Spo2 { value: 97.0 };
            med.ok(Command::RecordVital {
                seat,
                measurement: m,
                measured_at: None,
                device: Some("ox-9".into()),
            })
            .await;
            Command::EndDeviceFeed {
                seat,
                device: "ox-9".into(),
            }
        }
        CommandKind::AcknowledgeAlarm | CommandKind::PauseAlarmAudio => {
            me.ok(support()).await;
            let state = server
                .app
                .hub
                .session(session)
                .await
                .unwrap()
                .unwrap()
                .snapshot(Viewer::Staff)
                .await
                .unwrap();
            let alarm = state
                .alarms
                .iter()
                .find(|a| a.seat == seat)
                .expect("the support request raised an alarm")
                .id;
            if kind == CommandKind::AcknowledgeAlarm {
                Command::AcknowledgeAlarm { alarm }
            } else {
                Command::PauseAlarmAudio { alarm, seconds: 60 }
            }
        }
        CommandKind::SetAlarmRule => {
            let mut rule = protocol::alarm::default_rules().remove(0);
            rule.confirm_s = 30;
            Command::SetAlarmRule {
                seat: Some(seat),
                rule,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_of_the_role_table_is_enforced() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let admin = server.staff_token(ADMIN).await;
    let facilitator = server.staff_token(FACILITATOR).await;
    let medical = server.staff_token(MEDICAL).await;
    assert_eq!(
        EXPECTED.len(),
        CommandKind::ALL.len(),
        "the table covers every command"
    );

    let mut cells = 0;
    for (kind, allowed) in EXPECTED {
        for (col, role) in Role::ALL.into_iter().enumerate() {
            let group = server.group(&format!("{kind} as {role}"), 1).await;
            let (s, seat) = (group.session, group.seats[0]);
            let mut fac = TestClient::connect(addr, &facilitator, s, None).await;
            let mut med = TestClient::connect(addr, &medical, s, None).await;
            let mut me = TestClient::connect(addr, &group.tokens[0], s, None).await;
            let command = prepare(&server, s, &mut fac, &mut med, &mut me, seat, kind).await;
            let handle = server.app.hub.session(s).await.unwrap().unwrap();
            let before = handle.snapshot(Viewer::Staff).await.unwrap().last_seq;

            let answer = match role {
                Role::Admin => {
                    TestClient::connect(addr, &admin, s, None)
                        .await
                        .command(command)
                        .await
                }
                Role::Facilitator => fac.command(command).await,
                Role::Medical => med.command(command).await,
                Role::Participant => me.command(command).await,
            };
            let after = handle.snapshot(Viewer::Staff).await.unwrap().last_seq;
            if allowed[col] {
                assert!(
                    matches!(answer, ServerMessage::Accepted { .. }),
                    "{role} should be able to {kind}: {answer:?}"
                );
                assert!(after > before);
            } else {
                match &answer {
                    ServerMessage::Rejected { rejection, .. } => {
                        assert_eq!(
                            rejection.code,
                            RejectCode::Forbidden,
                            "{role} {kind}: {rejection:?}"
                        )
                    }
                    other => panic!("{role} must not be able to {kind}: {other:?}"),
                }
                assert_eq!(after, before, "a refused {kind} by {role} wrote something");
            }
            cells += 1;
        }
    }
    assert_eq!(cells, 80);
    server.stop().await;
}
