//! Reconnecting without loss: resume after a dropped connection, repeated
//! idempotency keys, a client too slow to keep up, token expiry and refresh.

use crate::support::*;
use holdspace::client::Live;
use protocol::wire::close_code;
use protocol::{
    ClientMessage, Command, CommandId, ErrorCode, EventBody, SelfReport, Seq, ServerMessage, Viewer,
};
use std::time::Duration;

fn message(n: usize) -> Command {
    Command::PostGroupMessage {
        text: format!("message {n}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_with_exactly_the_missed_events() {
    let server = TestServer::start().await;
    let group = server.group("resume", 2).await;
    let s = group.session;
    let staff = server.staff_token(FACILITATOR).await;
    let mut writer = TestClient::connect(server.addr, &staff, s, None).await;
    let mut board =
        TestClient::connect(server.addr, &server.staff_token(MEDICAL).await, s, None).await;
    let mut phone = TestClient::connect(server.addr, &group.tokens[0], s, None).await;

    for n in 0..5 {
        writer.ok(message(n)).await;
    }
    let (_, last) = writer.ok(message(5)).await;
    board
        .until(|m| matches!(m, ServerMessage::Event { event } if event.seq == last))
        .await;
    phone
        .until(|m| matches!(m, ServerMessage::Event { event } if event.seq == last))
        .await;
    let board_seen = board.last_seq();
    let phone_seen = phone.last_seq();
    let board_before = board.drop_connection();
    let _ = phone.drop_connection();

    // While they are away: group messages, the phone's own arrival, another seat's.
    for n in 6..20 {
        writer.ok(message(n)).await;
    }
    writer
        .ok(Command::SubmitArrival {
            seat: group.seats[0],
            form: arrival(),
        })
        .await;
    writer
        .ok(Command::SubmitArrival {
            seat: group.seats[1],
            form: arrival(),
        })
        .await;
    let (_, end) = writer.ok(message(20)).await;

    let log = full_log(server.addr, &staff, s).await;
    let board = TestClient::connect(
        server.addr,
        &server.staff_token(MEDICAL).await,
        s,
        Some(board_seen),
    )
    .await;
    let replayed: Vec<Seq> = board.events().iter().map(|e| e.seq).collect();
    let expected: Vec<Seq> = (board_seen.0 + 1..=end.0).map(Seq).collect();
    assert_eq!(replayed, expected, "the board got exactly what it missed");
    assert!(matches!(board.received.last(), Some(ServerMessage::CaughtUp { seq }) if *seq == end));
    let all_seen: Vec<Seq> = board_before
        .iter()
        .chain(&board.received)
        .filter_map(|m| match m {
            ServerMessage::Event { event } => Some(event.seq),
            _ => None,
        })
        .collect();
    assert!(
        all_seen.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "no gap and nothing twice across the reconnect"
    );

    let phone = TestClient::connect(server.addr, &group.tokens[0], s, Some(phone_seen)).await;
    let want: Vec<_> = log
        .iter()
        .filter(|e| e.seq > phone_seen && e.visible_to(Viewer::Participant(group.seats[0])))
        .collect();
    assert_eq!(phone.events(), want);
    assert!(
        phone
            .events()
            .iter()
            .all(|e| e.body.seat().is_none_or(|seat| seat == group.seats[0]))
    );

    // Live events keep flowing after the replay.
    let mut board = board;
    let (next, _) = writer.ok(message(21)).await;
    board
        .until(|m| matches!(m, ServerMessage::Event { event } if event.seq == next))
        .await;

    // A resume point beyond the end is refused clearly.
    let mut ahead = TestClient::from_live(
        Live::connect(server.addr, &staff, s, Some(Seq(next.0 + 100)))
            .await
            .unwrap(),
    );
    ahead.next().await; // welcome
    let err = ahead.next().await.unwrap();
    assert!(
        matches!(
            err,
            ServerMessage::Error {
                code: ErrorCode::ResumePointAhead,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        ahead.until_closed().await.map(|c| c.0),
        Some(close_code::PROTOCOL)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_changes_nothing_and_returns_the_first_answer() {
    let server = TestServer::start().await;
    let group = server.group("idempotency", 1).await;
    let s = group.session;
    let seat = group.seats[0];
    let mut phone = TestClient::connect(server.addr, &group.tokens[0], s, None).await;
    let key = CommandId::from_uuid(uuid::Uuid::new_v4());
    let press = Command::SelfReport {
        seat,
        report: SelfReport::NeedSupport {
            reasons: vec![],
            note: None,
        },
    };

    let first = phone.command_with_id(key, press.clone()).await;
    let ServerMessage::Accepted {
        first: a,
        last: b,
        repeated: false,
        ..
    } = first
    else {
        panic!("{first:?}")
    };
    // Same connection, again.
    let again = phone.command_with_id(key, press.clone()).await;
    assert_eq!(
        again,
        ServerMessage::Accepted {
            id: key,
            first: a,
            last: b,
            repeated: true
        }
    );
    // The phone lost signal and resends on a new connection.
    let _ = phone.drop_connection();
    let mut phone = TestClient::connect(server.addr, &group.tokens[0], s, Some(b)).await;
    let third = phone.command_with_id(key, press.clone()).await;
    assert_eq!(
        third,
        ServerMessage::Accepted {
            id: key,
            first: a,
            last: b,
            repeated: true
        }
    );

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
    assert_eq!(
        state.seat(seat).unwrap().support.as_ref().unwrap().presses,
        1
    );
    let log = full_log(server.addr, &server.staff_token(FACILITATOR).await, s).await;
    assert_eq!(log.iter().filter(|e| e.command == Some(key)).count(), 1);
    // Since the first answer, the phone's resends recorded nothing: what
    // follows is the server's own (the alarm the request raised, the phone's
    // reconnection).
    for e in log.iter().filter(|e| e.seq > b) {
        assert_eq!(e.actor, protocol::Actor::System, "{e:?}");
    }

    // A refusal keeps its first answer too, even once the state would allow
    // the command: a resend is the same command, not a new one.
    let mut fac =
        TestClient::connect(server.addr, &server.staff_token(FACILITATOR).await, s, None).await;
    let ack = Command::AcknowledgeSupport { seat };
    fac.ok(ack.clone()).await;
    let late_key = CommandId::from_uuid(uuid::Uuid::new_v4());
    let first = fac.command_with_id(late_key, ack.clone()).await;
    let ServerMessage::Rejected { rejection, .. } = &first else {
        panic!("{first:?}")
    };
    assert_eq!(rejection.code, protocol::RejectCode::NothingToDo);
    phone.ok(press).await;
    let resent = fac.command_with_id(late_key, ack.clone()).await;
    assert_eq!(resent, first, "the first answer, not a new decision");
    assert!(
        matches!(fac.command(ack).await, ServerMessage::Accepted { .. }),
        "a new key is a new command"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_closed_and_resumes_while_others_keep_up() {
    let server = TestServer::start_with(|c| {
        c.outbound_queue = holdspace::hub::MAX_BATCH_BURST + 1;
        c.rate_per_second = 100_000.0;
        c.rate_burst = 100_000.0;
        // The stalled board reads again only after the whole burst.
        c.close_grace = Duration::from_secs(120);
    })
    .await;
    let group = server.group("slow", 1).await;
    let s = group.session;
    let staff = server.staff_token(FACILITATOR).await;

    // A board that stops reading, like a frozen tab: its socket as the
    // system makes it. The server's bounded send buffer keeps the kernel
    // from taking megabytes of backlog before the queue sees any (without
    // it, this test's 1.4 MB would all fit and the board never be closed).
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut slow = Live::open_on(server.addr, stream).await.unwrap();
    slow.send(&ClientMessage::Hello {
        protocol: protocol::PROTOCOL_VERSION,
        token: staff.clone(),
        session: s,
        after: None,
    })
    .await
    .unwrap();
    // A board that keeps reading, in its own task, until the last message.
    let mut fast =
        TestClient::connect(server.addr, &server.staff_token(MEDICAL).await, s, None).await;
    let fast_from = fast.last_seq();
    let fast = tokio::spawn(async move {
        fast.until(|m| matches!(m, ServerMessage::Event { event } if matches!(&event.body, EventBody::GroupMessagePosted { text } if text == "END")))
            .await;
        fast
    });

    // A burst of long group messages, sent in windows of 32 in flight.
    let long = "x".repeat(900);
    let mut writer = TestClient::connect(server.addr, &staff, s, None).await;
    let total = 1536;
    let mut last = Seq::ZERO;
    for window in 0..total / 32 {
        let mut ids = Vec::new();
        for n in 0..32 {
            ids.push(writer.post(format!("{window}/{n} {long}")).await);
        }
        for id in ids {
            match writer.answer(id).await {
                ServerMessage::Accepted { last: l, .. } => last = last.max(l),
                other => panic!("{other:?}"),
            }
        }
    }
    let (end, _) = writer
        .ok(Command::PostGroupMessage { text: "END".into() })
        .await;
    let last = last.max(end);
    // The reading board received everything while the slow one stalled.
    let fast = fast.await.unwrap();
    assert!(fast.closed.is_none(), "a board that reads was never closed");
    let fast_seqs: Vec<Seq> = fast.events().iter().map(|e| e.seq).collect();
    assert_eq!(
        fast_seqs,
        (fast_from.0 + 1..=last.0).map(Seq).collect::<Vec<_>>()
    );

    // Now the slow board reads: it was closed as too slow, with a reason.
    let mut slow = TestClient::from_live(slow);
    let close = slow.until_closed().await;
    let (code, reason) = close.expect("a close frame with a reason");
    assert_eq!(code, close_code::TOO_SLOW);
    assert!(reason.contains("resume"), "{reason}");
    let seen = slow.last_seq();
    assert!(seen < last, "it really fell behind");
    let seqs: Vec<Seq> = slow.events().iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "what it got before the close has no gaps"
    );

    // It resumes from its last seq and gets exactly the rest.
    let resumed = TestClient::connect(server.addr, &staff, s, Some(seen)).await;
    let rest: Vec<Seq> = resumed.events().iter().map(|e| e.seq).collect();
    assert_eq!(rest, (seen.0 + 1..=last.0).map(Seq).collect::<Vec<_>>());
    let texts = resumed
        .events()
        .iter()
        .filter(|e| matches!(e.body, EventBody::GroupMessagePosted { .. }))
        .count();
    assert_eq!(texts, rest.len());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_is_closed_at_token_expiry_unless_refreshed() {
    let server = TestServer::start_with(|c| c.participant_token_ttl = Duration::from_secs(4)).await;
    let group = server.group("expiry", 2).await;
    let s = group.session;
    let mut idle = TestClient::connect(server.addr, &group.tokens[1], s, None).await;
    let mut refreshed = TestClient::connect(server.addr, &group.tokens[0], s, None).await;

    // Halfway through its life one phone refreshes its token over the socket.
    tokio::time::sleep(Duration::from_secs(2)).await;
    refreshed.send(&ClientMessage::RefreshToken {}).await;
    let ServerMessage::TokenRefreshed { token, expires_at } = refreshed
        .until(|m| matches!(m, ServerMessage::TokenRefreshed { .. }))
        .await
    else {
        unreachable!()
    };
    assert!(!token.is_empty());

    // The other does not, and is closed at expiry with a clear reason.
    let err = idle
        .until(|m| matches!(m, ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            err,
            ServerMessage::Error {
                code: ErrorCode::TokenExpired,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        idle.until_closed().await.map(|c| c.0),
        Some(close_code::UNAUTHORIZED)
    );

    // The refreshed one is still up.
    assert!(expires_at > server.app.clock.now());
    let ok = refreshed
        .command(Command::SelfReport {
            seat: group.seats[0],
            report: SelfReport::Ok {},
        })
        .await;
    assert!(matches!(ok, ServerMessage::Accepted { .. }), "{ok:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_closed_as_too_slow_is_recorded_as_disconnected() {
    let server = TestServer::start_with(|c| {
        c.outbound_queue = holdspace::hub::MAX_BATCH_BURST + 1;
        c.rate_per_second = 100_000.0;
        c.rate_burst = 100_000.0;
        c.close_grace = Duration::from_secs(120);
    })
    .await;
    let group = server.group("slow phone", 1).await;
    let (s, seat) = (group.session, group.seats[0]);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let mut phone = Live::open_on(server.addr, stream).await.unwrap();
    let hello = ClientMessage::Hello {
        protocol: protocol::PROTOCOL_VERSION,
        token: group.tokens[0].clone(),
        session: s,
        after: None,
    };
    phone.send(&hello).await.unwrap();

    let connected = |state: &protocol::SessionState| {
        state
            .seat(seat)
            .unwrap()
            .presence
            .is_some_and(|p| p.connected)
    };
    let handle = server.app.hub.session(s).await.unwrap().unwrap();
    let mut writer =
        TestClient::connect(server.addr, &server.staff_token(FACILITATOR).await, s, None).await;
    let long = "z".repeat(900);
    let mut windows = 0;
    // Group messages reach the phone too; it does not read them.
    while windows == 0 || connected(&handle.snapshot(Viewer::Staff).await.unwrap()) {
        assert!(
            windows < 400,
            "the phone was never recorded as disconnected"
        );
        let ids: Vec<CommandId> = (0..32)
            .map(|_| CommandId::from_uuid(uuid::Uuid::new_v4()))
            .collect();
        for id in &ids {
            writer
                .send(&ClientMessage::Command {
                    id: *id,
                    command: Command::PostGroupMessage { text: long.clone() },
                    age_ms: None,
                })
                .await;
        }
        for id in ids {
            writer.answer(id).await;
        }
        windows += 1;
    }
    let log = full_log(server.addr, &server.staff_token(MEDICAL).await, s).await;
    assert!(
        log.iter()
            .any(|e| matches!(e.body, EventBody::ParticipantDisconnected { seat: x } if x == seat))
    );
    let mut phone = TestClient::from_live(phone);
    assert_eq!(
        phone.until_closed().await.map(|c| c.0),
        Some(close_code::TOO_SLOW)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_long_after_the_first_send_is_answered_from_the_log() {
    // The session remembers answers for five minutes only (its memory stays
    // bounded); a client that says it is retrying is answered from the log.
    let clock = holdspace::clock::Clock::manual(protocol::Timestamp(1_795_000_000_000));
    let server = TestServer::start_on(clock.clone(), |_| {}).await;
    let group = server.group("late retry", 1).await;
    let s = group.session;
    let token = server.staff_token(FACILITATOR).await;
    let mut fac = TestClient::connect(server.addr, &token, s, None).await;
    let key = CommandId::from_uuid(uuid::Uuid::new_v4());
    let message = Command::PostGroupMessage {
        text: "tea is ready".into(),
    };
    let ServerMessage::Accepted {
        first: a,
        last: b,
        repeated: false,
        ..
    } = fac.command_with_id(key, message.clone()).await
    else {
        panic!("the first send is recorded")
    };

    clock.advance(11 * 60 * 1000);
    let _ = fac.drop_connection();
    let mut fac = TestClient::connect(server.addr, &token, s, Some(b)).await;
    // It says what it had seen when it first sent the command (the log up
    // to just before it), so only the log since is read.
    let retry = fac
        .retry_with_id(key, message.clone(), Some(protocol::Seq(a.0 - 1)))
        .await;
    assert_eq!(
        retry,
        ServerMessage::Accepted {
            id: key,
            first: a,
            last: b,
            repeated: true
        }
    );
    // A retry of something never recorded is simply recorded, once.
    let fresh = CommandId::from_uuid(uuid::Uuid::new_v4());
    let answer = fac.retry_with_id(fresh, message.clone(), None).await;
    assert!(
        matches!(
            answer,
            ServerMessage::Accepted {
                repeated: false,
                ..
            }
        ),
        "{answer:?}"
    );
    let again = fac.retry_with_id(fresh, message, Some(b)).await;
    assert!(
        matches!(again, ServerMessage::Accepted { repeated: true, .. }),
        "{again:?}"
    );

    let log = full_log(server.addr, &token, s).await;
    assert_eq!(log.iter().filter(|e| e.command == Some(key)).count(), 1);
    assert_eq!(log.iter().filter(|e| e.command == Some(fresh)).count(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_session_no_one_follows_is_unloaded_and_rebuilt_on_the_next_visit() {
    let clock = holdspace::clock::Clock::manual(protocol::Timestamp(1_795_000_000_000));
    let server = TestServer::start_on(clock.clone(), |_| {}).await;
    let _open = server.group("still open", 1).await;
    let group = server.group("closing", 1).await;
    let s = group.session;
    let token = server.staff_token(FACILITATOR).await;
    let mut fac = TestClient::connect(server.addr, &token, s, None).await;
    let (closed, _) = fac
        .ok(Command::ChangePhase {
            to: protocol::SessionPhase::Closed,
        })
        .await;
    let hub = &server.app.hub;
    assert_eq!(hub.live_sessions(), 2);

    // Followed, a closed session stays loaded however long.
    clock.advance(30 * 60 * 1000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hub.live_sessions(), 2);

    // Once no one follows it, it goes after ten idle minutes, not before; the
    // open session stays.
    fac.close().await;
    let mut minutes = 0;
    while hub.live_sessions() == 2 {
        assert!(minutes < 30, "still loaded after {minutes} idle minutes");
        clock.advance(60 * 1000);
        minutes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(minutes >= 10, "unloaded after {minutes} minutes");
    assert_eq!(hub.live_sessions(), 1);

    // The next visit rebuilds it from the log, as it was.
    let mut fac = TestClient::connect(server.addr, &token, s, None).await;
    let state = fac
        .received
        .iter()
        .find_map(|m| match m {
            ServerMessage::Snapshot { state } => Some(state.clone()),
            _ => None,
        })
        .expect("a snapshot");
    assert_eq!(
        (state.phase, state.last_seq),
        (protocol::SessionPhase::Closed, closed)
    );
    assert_eq!(hub.live_sessions(), 2);
    let refused = fac.command(message(1)).await;
    assert!(
        matches!(&refused, ServerMessage::Rejected { rejection, .. } if rejection.code == protocol::RejectCode::SessionClosed),
        "{refused:?}"
    );
    assert_eq!(
        full_log(server.addr, &token, s).await.last().unwrap().seq,
        closed
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_resumes_leave_no_task_behind() {
    let server = TestServer::start().await;
    let group = server.group("refused resumes", 1).await;
    let staff = server.staff_token(FACILITATOR).await;
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = tasks();
    for _ in 0..40 {
        let mut ahead = TestClient::from_live(
            Live::connect(server.addr, &staff, group.session, Some(Seq(1_000_000)))
                .await
                .unwrap(),
        );
        assert_eq!(
            ahead.until_closed().await.map(|c| c.0),
            Some(close_code::PROTOCOL)
        );
    }
    // Each connection's tasks end with it: the count comes back down.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tasks() > before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} tasks alive after 40 refused resumes, {before} before",
            tasks()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}
