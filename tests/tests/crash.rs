//! Kill the real server process abruptly (SIGKILL) in the middle of a busy
//! session, restart it on the same SQLite file, resume every client: no
//! acknowledged event is lost or duplicated and sequences stay continuous.

use crate::support::*;
use holdspace::client::Api;
use protocol::{
    ClientMessage, Command, CommandId, Event, Measurement, SeatId, SelfReport, Seq, ServerMessage,
    SessionId, Viewer,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command as Process};
use tokio_util::sync::CancellationToken;

const SERVER: &str = env!("CARGO_BIN_EXE_holdspace-under-test");

async fn add_user(dir: &Path, username: &str, role: &str) {
    let status = Process::new(SERVER)
        .args([
            "user",
            "add",
            "--username",
            username,
            "--role",
            role,
            "--clinic",
            "Crash clinic",
        ])
        .arg("--data")
        .arg(dir)
        .env("HOLDSPACE_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

/// Starts the server process and reads the address it prints.
async fn start(dir: &Path) -> (Child, SocketAddr) {
    let mut child = Process::new(SERVER)
        .args(["--bind", "127.0.0.1:0", "--rate", "1000"])
        .arg("--data")
        .arg(dir)
        .env("HOLDSPACE_JWT_SECRET", SECRET)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line
        .strip_prefix("Holdspace listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

/// One client across any number of connections.
struct Actor {
    token: String,
    /// The command this client keeps sending (fresh key each time).
    make: Box<dyn Fn(usize) -> Command + Send>,
    /// Events received on every connection, in order.
    events: Vec<Event>,
    last_seq: Seq,
    acked: Vec<(CommandId, Seq, Seq)>,
    /// Sent, connection lost before the answer: outcome unknown.
    unanswered: Option<(CommandId, Command)>,
    sent: usize,
}

impl Actor {
    fn new(token: String, make: impl Fn(usize) -> Command + Send + 'static) -> Actor {
        Actor {
            token,
            make: Box::new(make),
            events: Vec::new(),
            last_seq: Seq::ZERO,
            acked: Vec::new(),
            unanswered: None,
            sent: 0,
        }
    }

    /// Connects (resuming after its last seq if it had one), resends an
    /// unanswered command with the same key, then sends until `stop` or the
    /// connection drops.
    async fn run(mut self, addr: SocketAddr, session: SessionId, stop: CancellationToken) -> Actor {
        let after = (self.last_seq > Seq::ZERO).then_some(self.last_seq);
        let mut c = TestClient::connect(addr, &self.token, session, after).await;
        if let Some((id, command)) = self.unanswered.take() {
            match c.try_answer_after_send(id, command.clone()).await {
                Some(ServerMessage::Accepted { first, last, .. }) => {
                    self.acked.push((id, first, last))
                }
                Some(other) => panic!("resent command refused: {other:?}"),
                None => self.unanswered = Some((id, command)),
            }
        }
        while self.unanswered.is_none() && !stop.is_cancelled() {
            let id = CommandId::from_uuid(uuid::Uuid::new_v4());
            let command = (self.make)(self.sent);
            self.sent += 1;
            match c.try_answer_after_send(id, command.clone()).await {
                Some(ServerMessage::Accepted { first, last, .. }) => {
                    self.acked.push((id, first, last))
                }
                Some(other) => panic!("command refused: {other:?}"),
                None => self.unanswered = Some((id, command)),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.absorb(&c);
        self
    }

    fn absorb(&mut self, c: &TestClient) {
        self.events.extend(c.events().into_iter().cloned());
        self.last_seq = self.last_seq.max(c.last_seq());
    }
}

impl TestClient {
    async fn try_answer_after_send(
        &mut self,
        id: CommandId,
        command: Command,
    ) -> Option<ServerMessage> {
        if self.closed.is_some() {
            return None;
        }
        self.send(&ClientMessage::Command {
            id,
            command,
            age_ms: None,
        })
        .await;
        self.try_answer(id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_session_loses_nothing_that_was_acknowledged() {
    let dir = TempDir::new("crash");
    add_user(dir.path(), FACILITATOR, "facilitator").await;
    add_user(dir.path(), MEDICAL, "medical").await;
    let (mut child, mut addr) = start(dir.path()).await;

    let api = Api::new(addr);
    let fac_token = api.login(FACILITATOR, PASSWORD).await.unwrap().token.token;
    let med_token = api.login(MEDICAL, PASSWORD).await.unwrap().token.token;
    let g = group(&api, &api.with_token(fac_token.clone()), "crash", 12).await;
    let s = g.session;

    let mut actors: Vec<Actor> = Vec::new();
    for (token, seat) in g.tokens.iter().zip(&g.seats) {
        let seat: SeatId = *seat;
        actors.push(Actor::new(token.clone(), move |_| Command::SelfReport {
            seat,
            report: SelfReport::Ok {},
        }));
    }
    let seats = g.seats.clone();
    actors.push(Actor::new(med_token.clone(), move |n| {
        Command::RecordVital {
            seat: seats[n % seats.len()],
            measurement: Measurement::Spo2 {
                value: 90.0 + (n % 10) as f64,
            },
            measured_at: None,
            device: Some(format!("oximeter-{}", n % 12)),
        }
    }));
    actors.push(Actor::new(fac_token.clone(), |n| {
        Command::PostGroupMessage {
            text: format!("breathe {n}"),
        }
    }));

    // The short loop runs in the test suite; the long one is
    // `HOLDSPACE_KILLS=25 cargo test -p holdspace-tests --test tests sigkill`.
    let kills: usize = std::env::var("HOLDSPACE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    for round in 0..=kills {
        let stop = CancellationToken::new();
        let tasks: Vec<_> = actors
            .drain(..)
            .map(|a| tokio::spawn(a.run(addr, s, stop.clone())))
            .collect();
        // A random moment: mid-batch, mid-commit, mid-fan-out, mid-resume.
        let moment = 300 + uuid::Uuid::new_v4().as_u64_pair().0 % 1200;
        tokio::time::sleep(Duration::from_millis(moment)).await;
        if round < kills {
            child.kill().await.unwrap(); // SIGKILL: no flush, no goodbye
        } else {
            stop.cancel();
        }
        for t in tasks {
            actors.push(t.await.unwrap());
        }
        if round < kills {
            let (c, a) = start(dir.path()).await;
            child = c;
            addr = a;
        }
    }
    let unknown = actors.iter().filter(|a| a.unanswered.is_some()).count();
    assert_eq!(
        unknown, 0,
        "every command sent before a kill was answered after the restart"
    );

    // Everyone reads up to a final group message, which everyone may see.
    let mut closing = TestClient::connect(addr, &fac_token, s, None).await;
    let (end, _) = closing
        .ok(Command::PostGroupMessage {
            text: "end of session".into(),
        })
        .await;
    for a in &mut actors {
        let mut c = TestClient::connect(addr, &a.token, s, Some(a.last_seq)).await;
        c.reach(end).await;
        a.absorb(&c);
    }

    let log = full_log(addr, &fac_token, s).await; // asserts 1..=N with no gap or repeat
    assert!(log.last().unwrap().seq >= end);
    let by_seq: HashMap<Seq, &Event> = log.iter().map(|e| (e.seq, e)).collect();
    let mut acked_total = 0;
    for a in &actors {
        // Every acknowledged command is in the log exactly once, where the ack said.
        for (id, first, last) in &a.acked {
            let seqs: Vec<Seq> = log
                .iter()
                .filter(|e| e.command == Some(*id))
                .map(|e| e.seq)
                .collect();
            assert_eq!(
                seqs,
                (first.0..=last.0).map(Seq).collect::<Vec<_>>(),
                "command {id} in the log"
            );
            acked_total += 1;
        }
        // What each client was shown is in the log, once, in order.
        let seqs: Vec<Seq> = a.events.iter().map(|e| e.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a client was shown an event twice or out of order"
        );
        for e in &a.events {
            assert_eq!(
                by_seq.get(&e.seq),
                Some(&e),
                "a client was shown something the log does not hold"
            );
        }
    }
    // The staff clients saw a continuous sequence across every reconnect.
    let staff_seen: Vec<Seq> = actors[12].events.iter().map(|e| e.seq).collect();
    let (start_at, seen_to) = (staff_seen[0].0, staff_seen[staff_seen.len() - 1].0);
    assert!(seen_to >= end.0);
    assert_eq!(
        staff_seen,
        (start_at..=seen_to).map(Seq).collect::<Vec<_>>()
    );
    // Each participant saw exactly their visible slice from where they started.
    for (i, a) in actors[..12].iter().enumerate() {
        let viewer = Viewer::Participant(g.seats[i]);
        let (from, to) = (a.events[0].seq, a.last_seq);
        let want: Vec<&Event> = log
            .iter()
            .filter(|e| e.seq >= from && e.seq <= to && e.visible_to(viewer))
            .collect();
        assert_eq!(a.events.iter().collect::<Vec<_>>(), want, "participant {i}");
    }
    assert!(
        acked_total > 100,
        "the session was busy when killed ({acked_total} commands)"
    );
    eprintln!(
        "{kills} kills, {acked_total} commands acknowledged, {} events in the log",
        log.len()
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_a_reason_and_keeps_the_log() {
    let dir = TempDir::new("sigterm");
    add_user(dir.path(), FACILITATOR, "facilitator").await;
    let (mut child, addr) = start(dir.path()).await;
    let api = Api::new(addr);
    let token = api.login(FACILITATOR, PASSWORD).await.unwrap().token.token;
    let g = group(&api, &api.with_token(token.clone()), "sigterm", 2).await;
    let mut board = TestClient::connect(addr, &token, g.session, None).await;
    let (_, last) = board
        .ok(Command::PostGroupMessage {
            text: "last words".into(),
        })
        .await;

    let pid = child.id().expect("running").to_string();
    let killed = Process::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let (code, reason) = board.until_closed().await.expect("a close frame");
    assert_eq!(code, protocol::wire::close_code::GOING_AWAY);
    assert!(reason.contains("shutting down"), "{reason}");
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "graceful exit: {status:?}");

    let (mut child, addr) = start(dir.path()).await;
    let log = full_log(addr, &token, g.session).await;
    assert_eq!(log.last().map(|e| e.seq), Some(last));
    child.kill().await.unwrap();
}
