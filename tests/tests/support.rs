//! Shared test fixtures: a real server on 127.0.0.1:0 with a real SQLite file
//! in a fresh directory, staff accounts, a group of joined participants, and a
//! WebSocket client that keeps everything it received.

use holdspace::auth::{self, Principal};
use holdspace::client::{Api, Live, Received};
use holdspace::clock::Clock;
use holdspace::{App, Config};
use protocol::rest::AddSeat;
use protocol::{
    ArrivalForm, ClientMessage, Command, CommandId, Event, SeatId, Seq, ServerMessage, SessionId,
    StaffRole,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long any single expected message may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);
/// The signing secret of test servers, so tests can forge and expire tokens.
pub const SECRET: &str = "test-secret-test-secret-test-secret-0001";
/// Password of every seeded staff account.
pub const PASSWORD: &str = "a long enough password";

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("holdspace-test-{label}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Staff usernames seeded on every test server.
pub const ADMIN: &str = "ada";
pub const FACILITATOR: &str = "fern";
pub const FACILITATOR_2: &str = "river";
pub const MEDICAL: &str = "mo";

/// A running in-process server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub api: Api,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: TempDir,
}

pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::new(dir);
    config.jwt_secret = Some(SECRET.into());
    config
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_on(Clock::system(), adjust).await
    }

    /// A server whose clock the test moves ([`Clock::manual`]).
    pub async fn start_on(clock: Clock, adjust: impl FnOnce(&mut Config)) -> TestServer {
        // The server's logs, when asked for with RUST_LOG.
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
        let dir = TempDir::new("server");
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let listener = holdspace::listen(([127, 0, 0, 1], 0).into()).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let app = App::start(config, clock, shutdown.clone()).await.unwrap();
        seed_staff(&app).await;
        let task = tokio::spawn({
            let app = app.clone();
            async move { holdspace::serve(app, listener).await.unwrap() }
        });
        TestServer {
            addr,
            api: Api::new(addr),
            app,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// A logged-in staff API.
    pub async fn staff(&self, username: &str) -> Api {
        let login = self
            .api
            .login(username, PASSWORD)
            .await
            .expect("staff login");
        self.api.with_token(login.token.token)
    }

    /// A staff token.
    pub async fn staff_token(&self, username: &str) -> String {
        self.api
            .login(username, PASSWORD)
            .await
            .expect("staff login")
            .token
            .token
    }

    /// A new session with `n` seats, each joined with a one-time code.
    pub async fn group(&self, title: &str, n: usize) -> Group {
        group(&self.api, &self.staff(FACILITATOR).await, title, n).await
    }

    /// Mints a token with the test secret (to forge expired ones).
    pub fn mint(&self, principal: &Principal, now: protocol::Timestamp, ttl_ms: i64) -> String {
        auth::Keys::new(SECRET.as_bytes())
            .issue(principal, now, ttl_ms)
            .0
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

async fn seed_staff(app: &App) {
    let now = app.clock.now();
    let clinic = app
        .store
        .ensure_clinic("Test clinic".into(), now)
        .await
        .unwrap();
    let hash = auth::hash_password(PASSWORD);
    for (name, role) in [
        (ADMIN, StaffRole::Admin),
        (FACILITATOR, StaffRole::Facilitator),
        (FACILITATOR_2, StaffRole::Facilitator),
        (MEDICAL, StaffRole::Medical),
    ] {
        app.store
            .add_staff(clinic, name.into(), name.into(), role, hash.clone(), now)
            .await
            .unwrap();
    }
}

/// Creates a session with `n` seats through the REST API (as `staff`) and
/// joins each seat with its one-time code.
pub async fn group(api: &Api, staff: &Api, title: &str, n: usize) -> Group {
    let session = staff
        .create_session(title)
        .await
        .expect("create session")
        .id;
    let mut seats = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..n {
        let seat = staff
            .add_seat(
                session,
                &AddSeat {
                    display_name: format!("Participant {i}"),
                    weight_kg: Some(60.0 + i as f64),
                    location: Some(format!("nest {i}")),
                },
            )
            .await
            .expect("add seat")
            .seat;
        let code = staff
            .join_code(session, seat)
            .await
            .expect("join code")
            .code;
        let joined = api.join(&code).await.expect("join");
        assert_eq!(joined.seat, seat);
        seats.push(seat);
        tokens.push(joined.token.token);
    }
    Group {
        session,
        seats,
        tokens,
    }
}

/// A session with joined participants.
pub struct Group {
    pub session: SessionId,
    pub seats: Vec<SeatId>,
    pub tokens: Vec<String>,
}

pub fn arrival() -> ArrivalForm {
    ArrivalForm {
        mood: 6.try_into().unwrap(),
        anxiety: 4.try_into().unwrap(),
        intention: "to meet what comes".into(),
        fasting_confirmed: true,
        ride_home_arranged: true,
        consent_to_touch: true,
    }
}

/// A live connection that keeps every message it received, in order.
pub struct TestClient {
    live: Live,
    pub received: Vec<ServerMessage>,
    pub closed: Option<Option<(u16, String)>>,
}

impl TestClient {
    /// Connects, says hello, and reads until `caught_up`.
    pub async fn connect(
        addr: SocketAddr,
        token: &str,
        session: SessionId,
        after: Option<Seq>,
    ) -> TestClient {
        let live = Live::connect(addr, token, session, after)
            .await
            .expect("connect");
        let mut client = TestClient::from_live(live);
        client
            .until(|m| matches!(m, ServerMessage::CaughtUp { .. }))
            .await;
        client
    }

    pub fn from_live(live: Live) -> TestClient {
        TestClient {
            live,
            received: Vec::new(),
            closed: None,
        }
    }

    /// The next message; `None` once closed. Panics if nothing comes in time.
    pub async fn next(&mut self) -> Option<ServerMessage> {
        if self.closed.is_some() {
            return None;
        }
        match tokio::time::timeout(PATIENCE, self.live.recv())
            .await
            .expect("a message in time")
        {
            Some(Received::Message(m)) => {
                self.received.push(m.clone());
                Some(m)
            }
            Some(Received::Unparseable(text)) => {
                panic!("the server sent something unparseable: {text}")
            }
            Some(Received::Closed(frame)) => {
                self.closed = Some(frame);
                None
            }
            None => {
                self.closed = Some(None);
                None
            }
        }
    }

    /// Reads until a message matches; panics if the connection closes first.
    pub async fn until(&mut self, mut pred: impl FnMut(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            match self.next().await {
                Some(m) if pred(&m) => return m,
                Some(_) => continue,
                None => panic!(
                    "closed ({:?}) while waiting; got {:#?}",
                    self.closed,
                    self.received.last()
                ),
            }
        }
    }

    /// Reads until this client has seen event `seq` (already, or now).
    pub async fn reach(&mut self, seq: Seq) {
        if self.last_seq() < seq {
            self.until(|m| matches!(m, ServerMessage::Event { event } if event.seq >= seq))
                .await;
        }
    }

    /// Reads until the connection closes; returns the close frame.
    pub async fn until_closed(&mut self) -> Option<(u16, String)> {
        while self.next().await.is_some() {}
        self.closed.clone().expect("closed")
    }

    /// Sends a command with a fresh key and waits for its answer.
    pub async fn command(&mut self, command: Command) -> ServerMessage {
        self.command_with_id(CommandId::from_uuid(uuid::Uuid::new_v4()), command)
            .await
    }

    /// Sends a command with this key and waits for its answer.
    pub async fn command_with_id(&mut self, id: CommandId, command: Command) -> ServerMessage {
        self.live
            .send(&ClientMessage::Command {
                id,
                command,
                age_ms: None,
            })
            .await
            .expect("send");
        self.answer(id).await
    }

    /// Sends command `id` again as a retry and waits for its answer.
    pub async fn retry_with_id(
        &mut self,
        id: CommandId,
        command: Command,
        after: Option<Seq>,
    ) -> ServerMessage {
        self.live
            .send(&ClientMessage::Retry {
                id,
                command,
                after,
                age_ms: None,
            })
            .await
            .expect("send");
        self.answer(id).await
    }

    /// Waits for the answer to command `id`; `None` if the connection ends first.
    pub async fn try_answer(&mut self, id: CommandId) -> Option<ServerMessage> {
        loop {
            match self.next().await? {
                m @ (ServerMessage::Accepted { id: a, .. }
                | ServerMessage::Rejected { id: a, .. })
                    if a == id =>
                {
                    return Some(m);
                }
                _ => continue,
            }
        }
    }

    /// Waits for the answer to command `id`.
    pub async fn answer(&mut self, id: CommandId) -> ServerMessage {
        self.until(|m| {
            matches!(m, ServerMessage::Accepted { id: a, .. } | ServerMessage::Rejected { id: a, .. } if *a == id)
        })
        .await
    }

    /// Sends a command that must be accepted; returns its events' range.
    pub async fn ok(&mut self, command: Command) -> (Seq, Seq) {
        let what = format!("{command:?}");
        match self.command(command).await {
            ServerMessage::Accepted { first, last, .. } => (first, last),
            other => panic!("{what} was not accepted: {other:?}"),
        }
    }

    /// Sends a group message without waiting for the answer; returns its id.
    pub async fn post(&mut self, text: String) -> CommandId {
        let id = CommandId::from_uuid(uuid::Uuid::new_v4());
        self.send(&ClientMessage::Command {
            id,
            command: Command::PostGroupMessage { text },
            age_ms: None,
        })
        .await;
        id
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        self.live.send(msg).await.expect("send");
    }

    pub async fn send_raw(&mut self, text: String) {
        self.live.send_raw(text).await.expect("send");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.live.send_binary(bytes).await.expect("send");
    }

    /// Every event received, in order.
    pub fn events(&self) -> Vec<&Event> {
        self.received
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Event { event } => Some(&**event),
                _ => None,
            })
            .collect()
    }

    /// The last seq this client knows it has: the highest `caught_up` or event.
    pub fn last_seq(&self) -> Seq {
        self.received
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Event { event } => Some(event.seq),
                ServerMessage::CaughtUp { seq } => Some(*seq),
                _ => None,
            })
            .max()
            .unwrap_or(Seq::ZERO)
    }

    /// Drops the connection without a close handshake (a phone losing signal).
    pub fn drop_connection(self) -> Vec<ServerMessage> {
        self.received
    }

    pub async fn close(self) {
        self.live.close().await;
    }
}

/// Reads the whole log of a session through a staff replay from the start.
pub async fn full_log(addr: SocketAddr, token: &str, session: SessionId) -> Vec<Event> {
    let client = TestClient::connect(addr, token, session, Some(Seq::ZERO)).await;
    let events: Vec<Event> = client.events().into_iter().cloned().collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, Seq(i as u64 + 1), "the log has gaps or duplicates");
    }
    client.close().await;
    events
}
