//! The session's record for the clinic's files, exported over REST from a
//! real session: the CSV of clinical records and the log, line by line.

use crate::support::*;
use holdspace::client::{Method, StatusCode};
use protocol::{
    ClientMessage, Command, CommandId, Event, Measurement, ObservedStatus, ParticipantState,
    Rating, Route, SelfReport, ServerMessage, SessionPhase, SupportReason,
};
use serde_json::Value;

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
    // A dose and a rating, as the medical provider records them.
    fac.ok(Command::SetParticipantState {
        seat,
        to: ParticipantState::Ready,
    })
    .await;
    for to in [SessionPhase::Intentions, SessionPhase::Dosing] {
        fac.ok(Command::ChangePhase { to }).await;
    }
    med.ok(Command::RecordDose {
        seat,
        route: Route::Im,
        mg: 30.0,
        lot: "KET-7".into(),
        administered_at: None,
        override_reason: None,
    })
    .await;
    med.ok(Command::RecordRating {
        seat,
        rating: Rating::Sedation { moaas: 4 },
    })
    .await;
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
    assert!(
        csv.starts_with(
            "\u{feff}time_utc,seq,seat,participant,record,code,value,unit,detail,by\r\n"
        )
    );
    assert!(csv.contains(&format!(",{seat},Participant 0,dose (ketamine),")));
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
        ",Participant 0,dose (ketamine),,30,mg,\"IM; lot KET-7; 0.5 mg/kg\",mo\r\n",
        ",Participant 0,MOAA/S,,4,,,mo\r\n",
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

    // The same records as a FHIR R4 Bundle.
    let fhir = || async {
        let (status, body) = staff
            .raw(Method::GET, &path("records.fhir.json"), None, &[])
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice::<Value>(&body).expect("one JSON document")
    };
    let bundle = fhir().await;
    assert_eq!(
        (&bundle["resourceType"], &bundle["type"]),
        (&Value::from("Bundle"), &Value::from("collection"))
    );
    let entries = bundle["entry"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&Value> {
        entries
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == kind)
            .collect()
    };
    assert_eq!(of("Patient").len(), 1);
    assert_eq!(of("Patient")[0]["name"][0]["text"], "Participant 0");
    // Arrival and the support request.
    assert_eq!(of("QuestionnaireResponse").len(), 2);
    // The BP, every heart rate, the MOAA/S.
    let observations = of("Observation");
    assert_eq!(observations.len(), 1 + readings as usize + 1);
    let bp = observations
        .iter()
        .find(|o| o["code"]["coding"][0]["code"] == "85354-9")
        .expect("the BP panel");
    let parts: Vec<(&Value, &Value, &Value)> = bp["component"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                &c["code"]["coding"][0]["code"],
                &c["valueQuantity"]["value"],
                &c["valueQuantity"]["code"],
            )
        })
        .collect();
    assert_eq!(
        parts,
        [
            (
                &Value::from("8480-6"),
                &Value::from(124.0),
                &Value::from("mm[Hg]")
            ),
            (
                &Value::from("8462-4"),
                &Value::from(78.0),
                &Value::from("mm[Hg]")
            ),
        ]
    );
    let hr = observations
        .iter()
        .find(|o| o["code"]["coding"][0]["code"] == "8867-4")
        .unwrap();
    assert_eq!(hr["valueQuantity"]["system"], "http://unitsofmeasure.org");
    assert_eq!(hr["valueQuantity"]["code"], "/min");
    let dose = of("MedicationAdministration");
    assert_eq!(dose.len(), 1);
    assert_eq!(
        dose[0]["medicationCodeableConcept"]["coding"][0]["code"],
        "6130"
    );
    assert_eq!(dose[0]["dosage"]["dose"]["value"], 30.0);
    assert_eq!(dose[0]["dosage"]["route"]["text"], "IM");
    // Every entry has its own address, and every subject is in the bundle.
    let urls: std::collections::HashSet<&str> = entries
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), entries.len());
    for e in entries {
        if let Some(subject) = e["resource"]["subject"]["reference"].as_str() {
            assert!(urls.contains(subject), "{subject} is not in the bundle");
        }
    }
    // A participant's answers: every support reason in one item.
    let asked = of("QuestionnaireResponse")
        .into_iter()
        .find(|q| q["item"][0]["answer"][0]["valueString"] == "I need support")
        .expect("the support request");
    assert_eq!(asked["item"][1]["linkId"], "reason");
    assert_eq!(asked["item"][1]["answer"][0]["valueString"], "cold");
    assert!(
        asked["item"].as_array().unwrap().len() == 2,
        "no empty note: {asked}"
    );
    // Derived ids are well-formed (version 4) UUIDs.
    for o in &observations {
        let id = o["id"].as_str().unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(id).unwrap().get_version_num(),
            4,
            "{id}"
        );
    }
    // Exported again: the same resources with the same ids.
    assert_eq!(fhir().await["entry"], bundle["entry"]);

    // A session without seats has no entries, and no empty `entry` array.
    let empty = staff.create_session("nobody yet").await.unwrap().id;
    let (status, body) = staff
        .raw(
            Method::GET,
            &format!("/api/sessions/{empty}/records.fhir.json"),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let bundle: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert!(bundle.get("entry").is_none(), "{bundle}");

    // Only the clinic's staff may take the record home.
    let phone_api = holdspace::client::Api::new(server.addr).with_token(group.tokens[0].clone());
    let (status, _) = phone_api
        .raw(Method::GET, &path("records.csv"), None, &[])
        .await
        .unwrap();
    assert!(status.is_client_error(), "a participant got {status}");
    server.stop().await;
}
