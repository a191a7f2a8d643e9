//! The session's record for the clinic's files, exported over REST from a
//! real session: the CSV of clinical records and the log, line by line.

use crate::support::*;
use holdspace::client::{Method, StatusCode};
use protocol::{
    ClientMessage, Command, CommandId, Event, Measurement, ObservedStatus, SelfReport,
    ServerMessage, SupportReason,
};

fn vital(seat: protocol::SeatId, measurement: Measurement) -> Command {
    Command::RecordVital {
        seat,
        measurement,
        measured_at: None,
        device: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_exports_its_records_as_csv_and_its_log_line_by_line() {
    let server = TestServer::start_with(|c| c.export_chunk = 40).await;
    let group = server.group("export", 1).await;
    let (s, seat) = (group.session, group.seats[0]);
    let mut fac =
        TestClient::connect(server.addr, &server.staff_token(FACILITATOR).await, s, None).await;
    let mut med =
        TestClient::connect(server.addr, &server.staff_token(MEDICAL).await, s, None).await;
    let mut phone = TestClient::connect(server.addr, &group.tokens[0], s, None).await;
    phone
        .ok(Command::SubmitArrival {
            seat,
            form: arrival(),
        })
        .await;
    med.ok(vital(
        seat,
        Measurement::BloodPressure {
            systolic: 124.0,
            diastolic: 78.0,
        },
    ))
    .await;
    // Words typed by staff that a spreadsheet would otherwise run.
    let note = "=cmd|' /C calc'!A0, said \"cold\"";
    fac.ok(Command::ObserveCheckIn {
        seat,
        status: ObservedStatus::Tearful,
        note: Some(note.into()),
    })
    .await;
    phone
        .ok(Command::SelfReport {
            seat,
            report: SelfReport::NeedSupport {
                reasons: vec![SupportReason::Cold],
                note: None,
            },
        })
        .await;
    fac.ok(Command::AcknowledgeSupport { seat }).await;
    // Several times the readings the export reads from the log at once.
    let readings = 90;
    let mut ids = Vec::new();
    for i in 0..readings {
        let id = CommandId::from_uuid(uuid::Uuid::new_v4());
        let command = vital(
            seat,
            Measurement::HeartRate {
                value: f64::from(60 + i % 40),
            },
        );
        med.send(&ClientMessage::Command {
            id,
            command,
            age_ms: None,
        })
        .await;
        ids.push(id);
    }
    for id in ids {
        assert!(matches!(
            med.answer(id).await,
            ServerMessage::Accepted { .. }
        ));
    }
    let last = med.last_seq();

    let staff = server.staff(FACILITATOR).await;
    let path = |name: &str| format!("/api/sessions/{s}/{name}");
    let (status, csv) = staff
        .raw(Method::GET, &path("records.csv"), None, &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    assert!(csv.starts_with("time_utc,seq,participant,record,code,value,unit,detail,by\r\n"));
    assert_eq!(
        csv.matches(",Participant 0,heart rate,8867-4,").count(),
        readings as usize,
        "every reading, across chunks of the log"
    );
    for expected in [
        ",Participant 0,systolic BP,8480-6,124,mm[Hg],manual,mo\r\n",
        ",Participant 0,diastolic BP,8462-4,78,mm[Hg],manual,mo\r\n",
        ",Participant 0,observed check-in,,tearful,,\"'=cmd|' /C calc'!A0, said \"\"cold\"\"\",fern\r\n",
        ",Participant 0,self report,,need support,,cold,participant\r\n",
        ",Participant 0,support acknowledged,,,,,fern\r\n",
        ",Participant 0,alarm raised,,high,,Participant asked for support: asked for support: cold,holdspace\r\n",
        ",Participant 0,alarm cleared,,condition_ended,,Participant asked for support,holdspace\r\n",
    ] {
        assert!(
            csv.contains(expected),
            "{expected:?} missing from:\n{}",
            &csv[..2000.min(csv.len())]
        );
    }

    let (status, log) = staff
        .raw(Method::GET, &path("log.ndjson"), None, &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let events: Vec<Event> = String::from_utf8(log.to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one event per line"))
        .collect();
    assert_eq!(
        events.iter().map(|e| e.seq.0).collect::<Vec<_>>(),
        (1..=last.0).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert_eq!(
        events,
        full_log(server.addr, &server.staff_token(MEDICAL).await, s).await
    );

    // Only the clinic's staff may take the record home.
    let phone_api = holdspace::client::Api::new(server.addr).with_token(group.tokens[0].clone());
    let (status, _) = phone_api
        .raw(Method::GET, &path("records.csv"), None, &[])
        .await
        .unwrap();
    assert!(status.is_client_error(), "a participant got {status}");
    server.stop().await;
}
