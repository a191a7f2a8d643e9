//! Bad input gets a clear, specific error and writes nothing: malformed JSON,
//! unknown types and fields, oversized and binary frames, implausible vitals,
//! expired, tampered and misused tokens, and the REST equivalents.

use crate::support::*;
use holdspace::auth::Principal;
use holdspace::client::{Live, Method, StatusCode};
use protocol::wire::close_code;
use protocol::{
    ClientMessage, Command, ErrorCode, Measurement, RejectCode, SelfReport, Seq, ServerMessage,
    SessionId, Viewer,
};

async fn last_seq(server: &TestServer, s: SessionId) -> Seq {
    server
        .app
        .hub
        .session(s)
        .await
        .unwrap()
        .unwrap()
        .snapshot(Viewer::Staff)
        .await
        .unwrap()
        .last_seq
}

fn error_code(m: &ServerMessage) -> ErrorCode {
    match m {
        ServerMessage::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn error_text(m: &ServerMessage) -> &str {
    match m {
        ServerMessage::Error { message, .. } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_specific_errors_and_the_connection_stays_up() {
    let server = TestServer::start().await;
    let group = server.group("bad frames", 1).await;
    let s = group.session;
    let seat = group.seats[0];
    let mut med =
        TestClient::connect(server.addr, &server.staff_token(MEDICAL).await, s, None).await;
    let before = last_seq(&server, s).await;

    med.send_raw("{\"type\": \"command\", ".into()).await;
    let e = med.next().await.unwrap();
    assert_eq!(error_code(&e), ErrorCode::MalformedJson);

    med.send_raw(r#"{"type":"teleport","to":"home"}"#.into())
        .await;
    let e = med.next().await.unwrap();
    assert_eq!(error_code(&e), ErrorCode::InvalidMessage);
    assert!(
        error_text(&e).contains("unknown variant `teleport`"),
        "{e:?}"
    );

    let id = uuid::Uuid::new_v4();
    med.send_raw(format!(
        r#"{{"type":"command","id":"{id}","command":{{"type":"post_group_message","text":"hi","urgent":true}}}}"#
    ))
    .await;
    let e = med.next().await.unwrap();
    assert!(error_text(&e).contains("unknown field `urgent`"), "{e:?}");

    med.send_raw(format!(
        r#"{{"type":"command","id":"{id}","command":{{"type":"launch_rocket"}}}}"#
    ))
    .await;
    let e = med.next().await.unwrap();
    assert!(
        error_text(&e).contains("unknown variant `launch_rocket`"),
        "{e:?}"
    );

    med.send_raw(format!(
        r#"{{"type":"post_group_message","text":"{}"}}"#,
        "y".repeat(100_000)
    ))
    .await;
    let e = med.next().await.unwrap();
    assert_eq!(error_code(&e), ErrorCode::FrameTooLarge);
    assert!(error_text(&e).contains("at most 65536 bytes"), "{e:?}");

    med.send_binary(vec![1, 2, 3]).await;
    assert_eq!(
        error_code(&med.next().await.unwrap()),
        ErrorCode::BinaryNotSupported
    );

    let hello_again = ClientMessage::Hello {
        protocol: 1,
        token: "x".into(),
        session: s,
        after: None,
    };
    med.send(&hello_again).await;
    assert_eq!(
        error_code(&med.next().await.unwrap()),
        ErrorCode::AlreadySubscribed
    );

    // Implausible vitals are refused as commands, each with the exact reason.
    for (measurement, words) in [
        (
            Measurement::Spo2 { value: 130.0 },
            "SpO2 of 130 % is outside the plausible range 50 to 100 %",
        ),
        (
            Measurement::BloodPressure {
                systolic: 80.0,
                diastolic: 95.0,
            },
            "diastolic BP (95 mmHg) must be lower than systolic BP (80 mmHg)",
        ),
        (
            Measurement::HeartRate { value: 0.0 },
            "heart rate of 0 /min is outside the plausible range 20 to 300 /min",
        ),
    ] {
        let answer = med
            .command(Command::RecordVital {
                seat,
                measurement,
                measured_at: None,
                device: None,
            })
            .await;
        match answer {
            ServerMessage::Rejected { rejection, .. } => {
                assert_eq!(rejection.code, RejectCode::ImplausibleVital);
                assert_eq!(rejection.message, words);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(last_seq(&server, s).await, before, "nothing was written");

    // And after all that, the connection still works.
    let ok = med
        .command(Command::RecordVital {
            seat,
            measurement: Measurement::Spo2 { value: 96.0 },
            measured_at: None,
            device: None,
        })
        .await;
    assert!(matches!(ok, ServerMessage::Accepted { .. }), "{ok:?}");

    // A frame over the hard limit ends the connection with 1009.
    med.send_raw("z".repeat(2 * 1024 * 1024)).await;
    assert_eq!(
        med.until_closed().await.map(|c| c.0),
        Some(close_code::TOO_BIG)
    );
    server.stop().await;
}

/// Opens a raw connection, sends `first`, and returns (error, close code).
async fn refused_hello(server: &TestServer, first: String) -> (ServerMessage, Option<u16>) {
    let mut live = Live::open(server.addr).await.unwrap();
    live.send_raw(first).await.unwrap();
    let mut c = TestClient::from_live(live);
    let err = c.next().await.expect("an error before the close");
    let close = c.until_closed().await.map(|c| c.0);
    (err, close)
}

fn hello(token: &str, session: SessionId) -> String {
    serde_json::to_string(&ClientMessage::Hello {
        protocol: 1,
        token: token.into(),
        session,
        after: None,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_hellos_are_refused_before_anything_is_seen() {
    let server = TestServer::start().await;
    let group = server.group("tokens", 1).await;
    let other = server.group("another session", 1).await;
    let s = group.session;
    let before = last_seq(&server, s).await;

    // Expired.
    let principal = Principal::Participant {
        clinic: server.app.hub.session(s).await.unwrap().unwrap().clinic,
        session: s,
        seat: group.seats[0],
    };
    let past = server.app.clock.now().plus_ms(-3_600_000);
    let expired = server.mint(&principal, past, 60_000);
    let (err, close) = refused_hello(&server, hello(&expired, s)).await;
    assert_eq!(error_code(&err), ErrorCode::TokenExpired);
    assert_eq!(close, Some(close_code::UNAUTHORIZED));

    // Tampered: one character of the signature changed.
    let mut tampered = group.tokens[0].clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (err, close) = refused_hello(&server, hello(&tampered, s)).await;
    assert_eq!(error_code(&err), ErrorCode::InvalidToken);
    assert_eq!(close, Some(close_code::UNAUTHORIZED));

    // Not a token at all.
    let (err, _) = refused_hello(&server, hello("not.a.token", s)).await;
    assert_eq!(error_code(&err), ErrorCode::InvalidToken);

    // A participant token used on another session.
    let (err, close) = refused_hello(&server, hello(&group.tokens[0], other.session)).await;
    assert_eq!(error_code(&err), ErrorCode::Forbidden);
    assert!(error_text(&err).contains("another session"));
    assert_eq!(close, Some(close_code::FORBIDDEN));

    // A session that does not exist.
    let staff = server.staff_token(FACILITATOR).await;
    let (err, close) = refused_hello(
        &server,
        hello(&staff, SessionId::from_uuid(uuid::Uuid::new_v4())),
    )
    .await;
    assert_eq!(error_code(&err), ErrorCode::SessionNotFound);
    assert_eq!(close, Some(close_code::NOT_FOUND));

    // Anything but a hello first.
    let cmd = ClientMessage::Command {
        id: protocol::CommandId::from_uuid(uuid::Uuid::new_v4()),
        command: Command::SelfReport {
            seat: group.seats[0],
            report: SelfReport::Ok {},
        },
        age_ms: None,
    };
    let (err, close) = refused_hello(&server, serde_json::to_string(&cmd).unwrap()).await;
    assert_eq!(error_code(&err), ErrorCode::HelloRequired);
    assert_eq!(close, Some(close_code::PROTOCOL));

    // A protocol version this server does not speak.
    let v9 = serde_json::to_string(&ClientMessage::Hello {
        protocol: 9,
        token: staff.clone(),
        session: s,
        after: None,
    })
    .unwrap();
    let (err, close) = refused_hello(&server, v9).await;
    assert_eq!(error_code(&err), ErrorCode::UnsupportedProtocol);
    assert_eq!(close, Some(close_code::PROTOCOL));

    // Not JSON at all.
    let (err, _) = refused_hello(&server, "hello?".into()).await;
    assert_eq!(error_code(&err), ErrorCode::MalformedJson);

    assert_eq!(last_seq(&server, s).await, before, "nothing was written");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_answers_bad_requests_precisely() {
    let server = TestServer::start().await;
    let api = &server.api;
    let group = server.group("rest", 1).await;
    let staff = server.staff(FACILITATOR).await;

    let wrong = api
        .login(FACILITATOR, "not the password")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains("401") && wrong.contains("unknown username or wrong password"),
        "{wrong}"
    );
    let nobody = api
        .login("nobody", "whatever")
        .await
        .unwrap_err()
        .to_string();
    assert!(nobody.contains("unknown username or wrong password"));

    let (status, body) = staff
        .raw(
            Method::POST,
            "/api/sessions",
            Some("{\"title\": ".into()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("invalid_json"));

    let (status, body) = staff
        .raw(
            Method::POST,
            "/api/sessions",
            Some(r#"{"title":"x","color":"red"}"#.into()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("unknown field `color`"));

    let (status, _) = api
        .raw(Method::GET, "/api/sessions", None, &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A participant token is not a staff token.
    let (status, _) = api
        .with_token(group.tokens[0].clone())
        .raw(Method::GET, "/api/sessions", None, &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);

    let seat = protocol::rest::AddSeat {
        display_name: "Kai".into(),
        weight_kg: Some(900.0),
        location: None,
    };
    let err = staff
        .add_seat(group.session, &seat)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("body weight of 900 kg is outside the plausible range 20 to 350 kg"),
        "{err}"
    );

    let (status, body) = staff
        .raw(Method::GET, "/api/sessions/not-a-uuid", None, &[])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("not a valid session id"));

    // Join codes work once, and a new code replaces the old one.
    let s = group.session;
    let seat = group.seats[0];
    let old = staff.join_code(s, seat).await.unwrap().code;
    let new = staff.join_code(s, seat).await.unwrap().code;
    let replaced = api.join(&old).await.unwrap_err().to_string();
    assert!(replaced.contains("not known"), "{replaced}");
    let joined = api
        .join(&new.to_lowercase().replace('-', " "))
        .await
        .unwrap();
    assert_eq!(joined.seat, seat);
    let reused = api.join(&new).await.unwrap_err().to_string();
    assert!(reused.contains("already been used"), "{reused}");

    // Health.
    assert_eq!(
        api.raw(Method::GET, "/healthz", None, &[]).await.unwrap().0,
        StatusCode::OK
    );
    assert_eq!(
        api.raw(Method::GET, "/readyz", None, &[]).await.unwrap().0,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_and_dropped_messages_record_nothing() {
    let server = TestServer::start_with(|c| {
        c.rate_per_second = 1.0;
        c.rate_burst = 3.0;
    })
    .await;
    let group = server.group("flood", 1).await;
    let s = group.session;
    let mut fac =
        TestClient::connect(server.addr, &server.staff_token(FACILITATOR).await, s, None).await;
    let before = last_seq(&server, s).await;
    for n in 0..10 {
        fac.post(format!("flood {n}")).await;
    }
    let (mut accepted, mut limited) = (0, 0);
    while accepted + limited < 10 {
        match fac.next().await.expect("connection stays up") {
            ServerMessage::Accepted { .. } => accepted += 1,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            ServerMessage::Event { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(
        (3..=4).contains(&accepted),
        "the burst allowance, plus at most one refill: {accepted}"
    );
    let after = last_seq(&server, s).await;
    assert_eq!(
        after.0 - before.0,
        accepted,
        "dropped messages recorded nothing"
    );
    server.stop().await;
}

/// More commands at once than a connection may have in flight: the server
/// stops reading until answers free slots, then reads on; every one is
/// answered and recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_in_flight_limit_is_read_on_as_answers_free_slots() {
    let server = TestServer::start().await;
    let group = server.group("burst", 1).await;
    let s = group.session;
    let mut fac =
        TestClient::connect(server.addr, &server.staff_token(FACILITATOR).await, s, None).await;
    let before = last_seq(&server, s).await;
    let burst = 3 * holdspace::hub::MAX_IN_FLIGHT;
    let mut ids = Vec::new();
    for n in 0..burst {
        ids.push(fac.post(format!("burst {n}")).await);
    }
    for id in ids {
        assert!(
            matches!(fac.answer(id).await, ServerMessage::Accepted { .. }),
            "every command of the burst is accepted"
        );
    }
    let after = last_seq(&server, s).await;
    assert_eq!(after.0 - before.0, burst as u64, "each recorded once");
    server.stop().await;
}

/// A staff account of another clinic on the same server.
async fn elsewhere(
    server: &TestServer,
    username: &str,
    role: protocol::StaffRole,
) -> protocol::rest::StaffProfile {
    let now = server.app.clock.now();
    let store = &server.app.store;
    let other = store
        .ensure_clinic("Another clinic".into(), now)
        .await
        .unwrap();
    let hash = holdspace::auth::hash_password(PASSWORD);
    store
        .add_staff(other, username.into(), username.into(), role, hash, now)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clinics_staff_cannot_see_or_reach_a_session() {
    let server = TestServer::start().await;
    let group = server.group("ours", 1).await;
    elsewhere(&server, "outsider", protocol::StaffRole::Medical).await;
    let outsider = server.staff("outsider").await;
    assert!(
        outsider.sessions().await.unwrap().is_empty(),
        "their list shows none of ours"
    );
    let err = outsider
        .session(group.session)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("404") && err.contains("there is no session"),
        "{err}"
    );
    let err = outsider
        .join_code(group.session, group.seats[0])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("404"), "{err}");
    let token = server.staff_token("outsider").await;
    let (err, close) = refused_hello(&server, hello(&token, group.session)).await;
    assert_eq!(
        error_code(&err),
        ErrorCode::SessionNotFound,
        "the same answer as for a session that does not exist"
    );
    assert_eq!(close, Some(close_code::NOT_FOUND));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_rota_takes_only_a_facilitator_of_the_clinic() {
    let server = TestServer::start().await;
    let group = server.group("rota", 1).await;
    let seat = group.seats[0];
    let outsider = elsewhere(&server, "elsewhere", protocol::StaffRole::Facilitator).await;

    // The board's directory: this clinic's staff only, by role then name.
    let staff = server.staff(MEDICAL).await.staff().await.unwrap();
    let listed: Vec<(&str, protocol::StaffRole)> = staff
        .iter()
        .map(|m| (m.display_name.as_str(), m.role))
        .collect();
    use protocol::StaffRole::*;
    assert_eq!(
        listed,
        [
            (ADMIN, Admin),
            (FACILITATOR, Facilitator),
            (FACILITATOR_2, Facilitator),
            (MEDICAL, Medical)
        ]
    );
    let theirs = server.staff("elsewhere").await.staff().await.unwrap();
    assert_eq!(theirs.len(), 1, "another clinic sees only its own");
    let id_of = |name: &str| staff.iter().find(|m| m.display_name == name).unwrap().id;

    let token = server.staff_token(FACILITATOR).await;
    let mut fac = TestClient::connect(server.addr, &token, group.session, None).await;
    let mut phone = TestClient::connect(server.addr, &group.tokens[0], group.session, None).await;
    let assign = |staff| Command::AssignFacilitator { seat, staff };
    fac.ok(assign(Some(id_of(FACILITATOR_2)))).await;
    let before = last_seq(&server, group.session).await;
    let stranger = protocol::StaffId::from_uuid(uuid::Uuid::new_v4());
    for wrong in [id_of(MEDICAL), id_of(ADMIN), outsider.id, stranger] {
        match fac.command(assign(Some(wrong))).await {
            ServerMessage::Rejected { rejection, .. } => {
                assert_eq!(rejection.code, RejectCode::InvalidInput);
                assert!(
                    rejection.message.contains("facilitator of this clinic"),
                    "{}",
                    rejection.message
                );
            }
            other => panic!("{wrong} was put on the rota: {other:?}"),
        }
    }
    // A participant may not assign at all: refused as such, whatever the id.
    match phone.command(assign(Some(stranger))).await {
        ServerMessage::Rejected { rejection, .. } => {
            assert_eq!(
                rejection.code,
                RejectCode::Forbidden,
                "{}",
                rejection.message
            )
        }
        other => panic!("a participant assigned: {other:?}"),
    }
    assert_eq!(
        last_seq(&server, group.session).await,
        before,
        "nothing recorded"
    );
    let state = server
        .staff(FACILITATOR)
        .await
        .session(group.session)
        .await
        .unwrap();
    assert_eq!(
        state.seat(seat).unwrap().assigned_facilitator,
        Some(id_of(FACILITATOR_2)),
        "the rota kept its facilitator"
    );
    fac.ok(assign(None)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_keeps_guessing_join_codes_is_made_to_wait_and_staff_are_not() {
    let server = TestServer::start().await;
    let api = &server.api;
    let group = server.group("guess", 1).await;
    let staff = server.staff(FACILITATOR).await;
    let code = staff
        .join_code(group.session, group.seats[0])
        .await
        .unwrap()
        .code;
    for n in 0..holdspace::attempts::LIMIT {
        let wrong = api
            .join(&format!("ZZZZ-{n:04}"))
            .await
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("not known"), "guess {n}: {wrong}");
    }
    // Now even the right code waits; staff logins are counted apart.
    let waits = api.join(&code).await.unwrap_err().to_string();
    assert!(
        waits.contains("429")
            && waits.contains("too many failed attempts from this network; try again in 15 min"),
        "{waits}"
    );
    assert!(
        api.login(FACILITATOR, PASSWORD).await.is_ok(),
        "staff can still sign in"
    );
    server.stop().await;
}
