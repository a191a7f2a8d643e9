//! The live sessions. A registry routes to sessions; each live session is one
//! tokio task that owns its [`SessionState`]. For every batch of commands the
//! task decides (role, scope, state), appends the events and waits for the
//! commit, then applies them and fans them out. Nothing is visible before it is
//! durable, and sequence numbers are gap-free because only this task assigns them.

use crate::clock::Clock;
use crate::signal::Signal;
use crate::store::{EventLog, StoreError};
use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use protocol::{
    Actor, ClinicId, ClinicPolicy, Command, CommandId, Context, Event, EventBody, RejectCode,
    Rejection, SeatId, Seq, ServerMessage, SessionId, SessionState, Timestamp, Viewer, decide,
    monitor,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Mutex, OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Commands waiting for one session. Bounded so a flood from many clients
/// pushes back on their connections instead of growing memory.
const SESSION_QUEUE: usize = 1024;
/// Most commands decided and committed together (one append, one fsync).
const MAX_BATCH: usize = 64;
/// Most events one batch usually fans out to a subscriber at once: a command
/// records at most three events, and a batch adds a few alarm and connection
/// events.
pub const MAX_BATCH_EVENTS: usize = 3 * MAX_BATCH + 64;
/// Commands one connection may have in flight before it stops reading more:
/// bounds the work a single client can queue.
pub const MAX_IN_FLIGHT: usize = 32;
/// The most one batch can put in one connection's queue at once: its events
/// and the answers to that connection's commands in flight. Outbound queues
/// must be larger, or a single burst could close a healthy client (which
/// would then resume, losing nothing).
pub const MAX_BATCH_BURST: usize = MAX_BATCH_EVENTS + MAX_IN_FLIGHT;
/// How long a session remembers the answer to an accepted command in memory.
/// A plain resend within it is answered from memory; a `retry` after it is
/// answered from the log. Bounds the memory a long session spends on keys.
const REMEMBER_ACCEPTED_MS: i64 = 5 * 60 * 1000;
/// Refusals remembered per session for idempotent answers. Refusals record
/// nothing, so forgetting old ones only means a resend is decided afresh.
const REMEMBERED_REFUSALS: usize = 4096;
/// Events read from the log per query when rebuilding or replaying.
pub const READ_CHUNK: usize = 1000;

/// A message for a connection's writer.
#[derive(Debug)]
pub enum Outbound {
    /// A serialized [`ServerMessage`].
    Text(Utf8Bytes),
    /// Close the connection with this code and reason.
    Close(u16, String),
}

impl Outbound {
    /// Serializes a server message.
    pub fn message(msg: &ServerMessage) -> Outbound {
        Outbound::Text(
            serde_json::to_string(msg)
                .expect("server messages serialize")
                .into(),
        )
    }
}

/// Where a session task delivers a subscriber's events.
#[derive(Clone, Debug)]
pub struct Outbox {
    /// The connection's bounded queue.
    pub tx: mpsc::Sender<Outbound>,
    /// Stops the connection at once: raised when it falls behind, when its
    /// writer ends, or when the server shuts down.
    pub halt: Signal,
    fell_behind: Arc<AtomicBool>,
}

impl Outbox {
    /// An outbox for `tx`, stopped by `halt`.
    pub fn new(tx: mpsc::Sender<Outbound>, halt: Signal) -> Outbox {
        Outbox {
            tx,
            halt,
            fell_behind: Arc::default(),
        }
    }

    /// The queue is full (or the session must be replayed): the connection
    /// closes with "too slow" and the client resumes from its last seq.
    pub fn fall_behind(&self) {
        self.fell_behind.store(true, Ordering::Release);
        self.halt.raise();
    }

    /// Whether [`Outbox::fall_behind`] was called.
    pub fn has_fallen_behind(&self) -> bool {
        self.fell_behind.load(Ordering::Acquire)
    }
}

/// Where the answer to a command goes.
pub enum Reply {
    /// A caller waiting for it (REST).
    Caller(oneshot::Sender<CommandOutcome>),
    /// The sending connection's queue, behind the batch's events: the answer
    /// leaves in the same write as the events, with no task in between.
    Connection(ConnectionReply),
}

impl Reply {
    /// Answers; true if the answer did not fit in the connection's queue (the
    /// connection then counts as fallen behind and must be dropped).
    #[must_use]
    fn send(self, outcome: CommandOutcome) -> bool {
        match self {
            Reply::Caller(tx) => {
                let _ = tx.send(outcome);
                false
            }
            Reply::Connection(mut to) => to.deliver(Ok(outcome)),
        }
    }
}

/// An answer owed to a connection. Dropped unanswered (the session stopped
/// before deciding), it answers "busy": the client never waits for nothing.
pub struct ConnectionReply {
    id: CommandId,
    outbox: Outbox,
    answered: bool,
    /// The connection's in-flight slot, freed with the answer.
    _slot: OwnedSemaphorePermit,
}

impl ConnectionReply {
    /// The answer to command `id` goes to `outbox`; `slot` is held until then.
    pub fn new(id: CommandId, outbox: Outbox, slot: OwnedSemaphorePermit) -> ConnectionReply {
        ConnectionReply {
            id,
            outbox,
            answered: false,
            _slot: slot,
        }
    }

    /// True if the answer did not fit (see [`Reply::send`]).
    fn deliver(&mut self, outcome: Result<CommandOutcome, HubError>) -> bool {
        self.answered = true;
        let msg = Outbound::message(&answer_message(self.id, outcome));
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outbox.tx.try_send(msg) {
            // Like an event that does not fit: the client resumes and resends.
            self.outbox.fall_behind();
            return true;
        }
        false
    }
}

impl Drop for ConnectionReply {
    fn drop(&mut self) {
        if !self.answered {
            // The session is gone or going: nobody is left to drop the subscriber.
            let _ = self.deliver(Err(HubError::Stopped));
        }
    }
}

/// The `event` message for an event stored as `json`: the same text as
/// serializing [`ServerMessage::Event`], from the text the log already made.
fn event_message_json(json: &str) -> String {
    format!(r#"{{"type":"event","event":{json}}}"#)
}

/// The wire message answering command `id`.
pub fn answer_message(id: CommandId, outcome: Result<CommandOutcome, HubError>) -> ServerMessage {
    match outcome {
        Ok(CommandOutcome::Accepted {
            first,
            last,
            repeated,
        }) => ServerMessage::Accepted {
            id,
            first,
            last,
            repeated,
        },
        Ok(CommandOutcome::Rejected(rejection)) => ServerMessage::Rejected { id, rejection },
        Err(_) => ServerMessage::Rejected {
            id,
            rejection: Rejection::new(
                RejectCode::Busy,
                "the session is restarting; nothing was recorded, send it again",
            ),
        },
    }
}

/// The session's answer to a command.
#[derive(Clone, PartialEq, Debug)]
pub enum CommandOutcome {
    /// Recorded as events `first..=last`; `repeated` if the key was seen before.
    Accepted {
        /// First event.
        first: Seq,
        /// Last event.
        last: Seq,
        /// An earlier send of the same key was accepted; nothing new recorded.
        repeated: bool,
    },
    /// Refused; nothing recorded.
    Rejected(Rejection),
}

impl CommandOutcome {
    fn as_repeat(&self) -> CommandOutcome {
        match self {
            CommandOutcome::Accepted { first, last, .. } => CommandOutcome::Accepted {
                first: *first,
                last: *last,
                repeated: true,
            },
            other => other.clone(),
        }
    }
}

/// What a new subscriber receives from the session.
pub struct Subscribed {
    /// This subscription's id, for [`SessionHandle::unsubscribe`].
    pub subscriber: u64,
    /// The session's last seq at the moment of subscribing: everything up to
    /// here is in the log; everything after arrives in the outbox.
    pub upto: Seq,
    /// The redacted state at `upto`, if asked for.
    pub snapshot: Option<SessionState>,
}

/// Why the hub could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session's task has stopped (shutting down).
    #[error("the session is not running")]
    Stopped,
}

enum SessionMsg {
    Command {
        actor: Actor,
        id: CommandId,
        command: Command,
        /// The client says it sent this before (`ClientMessage::Retry`), when
        /// it had seen the log up to this seq (0: it does not say).
        retry: Option<Seq>,
        /// How long before sending the client made it (`ClientMessage`).
        age_ms: Option<u64>,
        reply: Reply,
    },
    Subscribe {
        viewer: Viewer,
        outbox: Outbox,
        snapshot: bool,
        reply: oneshot::Sender<Subscribed>,
    },
    Snapshot {
        viewer: Viewer,
        reply: oneshot::Sender<SessionState>,
    },
    Unsubscribe {
        id: u64,
    },
}

/// A cheap handle to one live session.
#[derive(Clone)]
pub struct SessionHandle {
    /// The session.
    pub id: SessionId,
    /// Its clinic (for access checks without asking the task).
    pub clinic: ClinicId,
    tx: mpsc::Sender<SessionMsg>,
}

impl SessionHandle {
    /// Sends a command and waits for the session's answer (after the commit).
    /// `retry`: the client sent this key before and never heard the answer,
    /// having seen the log up to this seq when it did (`Seq(0)`: unknown).
    pub async fn command(
        &self,
        actor: Actor,
        id: CommandId,
        command: Command,
        retry: Option<Seq>,
    ) -> Result<CommandOutcome, HubError> {
        let (reply, rx) = oneshot::channel();
        self.send_command(actor, id, command, retry, None, Reply::Caller(reply))
            .await;
        rx.await.map_err(|_| HubError::Stopped)
    }

    /// Queues a command whose answer goes to `reply`; returns once the
    /// session has it in its queue (a stopped session's reply is dropped,
    /// which answers it as "busy"). `age_ms`: the client made it this long
    /// before sending it.
    pub async fn send_command(
        &self,
        actor: Actor,
        id: CommandId,
        command: Command,
        retry: Option<Seq>,
        age_ms: Option<u64>,
        reply: Reply,
    ) {
        let _ = self
            .tx
            .send(SessionMsg::Command {
                actor,
                id,
                command,
                retry,
                age_ms,
                reply,
            })
            .await;
    }

    /// Registers a subscriber; events after [`Subscribed::upto`] go to `outbox`.
    pub async fn subscribe(
        &self,
        viewer: Viewer,
        outbox: Outbox,
        snapshot: bool,
    ) -> Result<Subscribed, HubError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(SessionMsg::Subscribe {
                viewer,
                outbox,
                snapshot,
                reply,
            })
            .await
            .map_err(|_| HubError::Stopped)?;
        rx.await.map_err(|_| HubError::Stopped)
    }

    /// Ends a subscription (the connection closed).
    pub async fn unsubscribe(&self, id: u64) {
        let _ = self.tx.send(SessionMsg::Unsubscribe { id }).await;
    }

    /// The current state as `viewer` may see it.
    pub async fn snapshot(&self, viewer: Viewer) -> Result<SessionState, HubError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(SessionMsg::Snapshot { viewer, reply })
            .await
            .map_err(|_| HubError::Stopped)?;
        rx.await.map_err(|_| HubError::Stopped)
    }
}

/// The live sessions by id, and the lock held while one is loaded or unloaded.
#[derive(Clone, Default)]
struct Registry {
    sessions: Arc<DashMap<SessionId, SessionHandle>>,
    loading: Arc<Mutex<()>>,
}

/// How long a closed session with no one following it stays loaded. It
/// records nothing more; a later visit rebuilds it from the log. Without
/// this, every session ever viewed would stay in memory until a restart.
const UNLOAD_CLOSED_AFTER_MS: i64 = 10 * 60 * 1000;

/// The registry of live sessions.
pub struct Hub {
    registry: Registry,
    log: Arc<dyn EventLog>,
    clock: Clock,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Hub {
    /// An empty hub over `log`. Session tasks stop when `shutdown` is cancelled.
    pub fn new(log: Arc<dyn EventLog>, clock: Clock, shutdown: CancellationToken) -> Hub {
        Hub {
            registry: Registry::default(),
            log,
            clock,
            tasks: TaskTracker::new(),
            shutdown,
        }
    }

    /// The log behind the hub (for replays, which connections read directly).
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Rebuilds every open session from its log (start-up). Returns how many.
    pub async fn recover(&self) -> Result<usize, HubError> {
        let ids = self.log.open_sessions().await?;
        for id in &ids {
            self.session(*id).await?;
        }
        Ok(ids.len())
    }

    /// Opens a new session: its first event is durable before it exists.
    pub async fn create_session(
        &self,
        clinic: ClinicId,
        title: String,
        actor: Actor,
        policy: ClinicPolicy,
    ) -> Result<SessionHandle, HubError> {
        let id = SessionId::from_uuid(uuid::Uuid::new_v4());
        let event = Event {
            session: id,
            seq: Seq(1),
            at: self.clock.now(),
            actor,
            command: None,
            body: EventBody::SessionCreated {
                clinic,
                title,
                policy,
            },
        };
        let recorded = self.log.append(vec![event]).await?;
        let events: Vec<Event> = recorded.into_iter().map(|r| r.event).collect();
        Ok(self.start(
            SessionState::from_events(id, &events),
            IdempotencyIndex::new(self.clock.now()),
        ))
    }

    /// The live session `id`, rebuilt from the log if it is not running
    /// (closed sessions are loaded on demand for viewing). `None` if unknown.
    pub async fn session(&self, id: SessionId) -> Result<Option<SessionHandle>, HubError> {
        let sessions = &self.registry.sessions;
        if let Some(handle) = sessions.get(&id).map(|h| h.clone()) {
            return Ok(Some(handle));
        }
        let _one_loader = self.registry.loading.lock().await;
        if let Some(handle) = sessions.get(&id).map(|h| h.clone()) {
            return Ok(Some(handle));
        }
        let mut state = SessionState::empty(id);
        let mut keys = IdempotencyIndex::new(self.clock.now());
        loop {
            let chunk = self.log.read(id, state.last_seq, READ_CHUNK).await?;
            if chunk.is_empty() {
                break;
            }
            for event in &chunk {
                state.apply(event);
                keys.note(event);
            }
        }
        if state.last_seq == Seq::ZERO {
            return Ok(None);
        }
        tracing::info!(session = %id, last_seq = state.last_seq.0, "session rebuilt from its log");
        Ok(Some(self.start(state, keys)))
    }

    fn start(&self, state: SessionState, keys: IdempotencyIndex) -> SessionHandle {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let handle = SessionHandle {
            id: state.id,
            clinic: state.clinic,
            tx,
        };
        let task = SessionTask {
            committed: state.clone(),
            state,
            log: self.log.clone(),
            clock: self.clock.clone(),
            subscribers: Vec::new(),
            next_subscriber: 0,
            connections: Connections::default(),
            accepted: keys.done(),
            refused: HashMap::new(),
            refused_order: VecDeque::new(),
            retry_at: None,
            deadlines: HashMap::new(),
            evaluate_all: true,
            overflowed: false,
            shutdown: self.shutdown.clone(),
            registry: self.registry.clone(),
            idle_since: self.clock.now(),
        };
        self.registry.sessions.insert(handle.id, handle.clone());
        self.tasks.spawn(task.run(rx));
        handle
    }

    /// How many sessions are loaded (each is one task and its state).
    pub fn live_sessions(&self) -> usize {
        self.registry.sessions.len()
    }

    /// Waits for every session task to finish its current batch and stop
    /// (after `shutdown` was cancelled).
    pub async fn stopped(&self) {
        self.registry.sessions.clear();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Accepted commands rebuilt from the log: (actor, key) → seq range, and when.
/// Only the window's: a long log's older keys are never held at once.
struct IdempotencyIndex {
    since: Timestamp,
    keys: HashMap<(Actor, CommandId), (Seq, Seq, Timestamp)>,
}

impl IdempotencyIndex {
    /// Notes the commands accepted after [`REMEMBER_ACCEPTED_MS`] before `now`.
    fn new(now: Timestamp) -> IdempotencyIndex {
        IdempotencyIndex {
            since: now.plus_ms(-REMEMBER_ACCEPTED_MS),
            keys: HashMap::new(),
        }
    }

    fn note(&mut self, event: &Event) {
        if let Some(id) = event.command
            && event.at > self.since
        {
            self.keys
                .entry((event.actor, id))
                .and_modify(|range| range.1 = event.seq)
                .or_insert((event.seq, event.seq, event.at));
        }
    }

    fn done(self) -> Accepted {
        let mut accepted = Accepted::new(self.since);
        for (key, (first, last, at)) in self.keys {
            accepted.insert(key, first, last, at);
        }
        accepted
    }
}

/// The answers to recently accepted commands. A busy session accepts a dozen
/// commands a second (one per pulse-oximeter reading), so each answer is kept
/// in 32 bytes: senders are numbered, seqs and times are offsets.
struct Accepted {
    /// Every sender seen, numbered by position (a session has a few dozen).
    senders: Vec<Actor>,
    answers: HashMap<(CommandId, u16), Answer>,
    /// What does not fit the compact form (a seq past 2³², a 65 536th
    /// sender), kept whole: empty in any real session, but never dropped.
    wide: HashMap<(Actor, CommandId), (Seq, Seq, Timestamp)>,
    /// Answer times are whole seconds after this (rounded up).
    epoch: Timestamp,
    /// Old answers are swept out at most this often, not on every batch.
    next_sweep: Timestamp,
}

/// One accepted command's answer: seqs `first..=first + span`.
#[derive(Clone, Copy)]
struct Answer {
    first: u32,
    span: u32,
    at_s: u32,
}

impl Answer {
    fn compact(first: Seq, last: Seq, ms_after_epoch: i64) -> Option<Answer> {
        Some(Answer {
            first: u32::try_from(first.0).ok()?,
            span: u32::try_from(last.0.checked_sub(first.0)?).ok()?,
            at_s: u32::try_from(u64::try_from(ms_after_epoch.max(0)).ok()?.div_ceil(1000)).ok()?,
        })
    }
}

/// How often [`Accepted::forget_before`] looks for answers past the window.
const SWEEP_ACCEPTED_MS: i64 = 30 * 1000;

impl Accepted {
    fn new(epoch: Timestamp) -> Accepted {
        Accepted {
            senders: Vec::new(),
            answers: HashMap::new(),
            wide: HashMap::new(),
            epoch,
            next_sweep: epoch,
        }
    }

    fn slot(&self, key: &(Actor, CommandId)) -> Option<(CommandId, u16)> {
        let sender = self.senders.iter().position(|s| *s == key.0)?;
        Some((key.1, u16::try_from(sender).ok()?))
    }

    /// The first answer.
    fn get(&self, key: &(Actor, CommandId)) -> Option<CommandOutcome> {
        let (first, last) = match self.slot(key).and_then(|slot| self.answers.get(&slot)) {
            Some(answer) => {
                let first = Seq(u64::from(answer.first));
                (first, Seq(first.0 + u64::from(answer.span)))
            }
            None => self.wide.get(key).map(|&(first, last, _)| (first, last))?,
        };
        Some(CommandOutcome::Accepted {
            first,
            last,
            repeated: false,
        })
    }

    /// Remembers a key's first answer (a later one never replaces it).
    fn insert(&mut self, key: (Actor, CommandId), first: Seq, last: Seq, at: Timestamp) {
        if self.get(&key).is_some() {
            return;
        }
        if !self.senders.contains(&key.0) && self.senders.len() <= usize::from(u16::MAX) {
            self.senders.push(key.0);
        }
        let compact = Answer::compact(first, last, at.ms_since(self.epoch));
        match (self.slot(&key), compact) {
            (Some(slot), Some(answer)) => {
                self.answers.insert(slot, answer);
            }
            _ => {
                self.wide.insert(key, (first, last, at));
            }
        }
    }

    /// Forgets answers older than the window (the log still has them); an
    /// answer may outlive it by up to [`SWEEP_ACCEPTED_MS`], never fall short.
    fn forget_before(&mut self, now: Timestamp) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now.plus_ms(SWEEP_ACCEPTED_MS);
        let horizon = now.plus_ms(-REMEMBER_ACCEPTED_MS).ms_since(self.epoch);
        // Copied into a fresh table rather than erased in place: erasing leaves
        // tombstones, and a table erased and refilled for ~40 minutes doubled
        // its buckets (a 1-hour soak grew 33 MiB at 100 sessions from then on).
        let mut kept = HashMap::with_capacity(self.answers.len());
        kept.extend(
            self.answers
                .drain()
                .filter(|(_, answer)| i64::from(answer.at_s) * 1000 > horizon),
        );
        self.answers = kept;
        let horizon = now.plus_ms(-REMEMBER_ACCEPTED_MS);
        self.wide.retain(|_, (_, _, at)| *at > horizon);
        if self.answers.capacity() > 4 * self.answers.len().max(1024) {
            self.answers.shrink_to_fit();
        }
    }
}

struct Subscriber {
    id: u64,
    viewer: Viewer,
    outbox: Outbox,
}

/// What became of a batch's append.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Committed.
    Saved,
    /// Not committed; nothing of it is in the log.
    NotSaved,
    /// The store reported a failure but the log holds more than the task
    /// knew: the session was rebuilt from the log, which decides.
    AsTheLogSays,
}

/// What one batch has decided, waiting for its commit.
#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    pending: Vec<Pending>,
    refusals: Vec<((Actor, CommandId), Rejection, Reply)>,
}

struct Pending {
    key: (Actor, CommandId),
    first: Seq,
    last: Seq,
    replies: Vec<Reply>,
}

/// After a failed append, how soon the task tries again to record what time
/// alone decides (alarms, presence), so it recovers when storage does.
const RETRY_AFTER_FAILURE_MS: i64 = 1000;

struct SessionTask {
    /// The state with this batch's events applied as they are decided.
    state: SessionState,
    /// The state as the log holds it: what snapshots show and what a failed
    /// batch falls back to. Kept by applying each committed event again,
    /// which costs far less than copying the whole state for every batch.
    committed: SessionState,
    log: Arc<dyn EventLog>,
    clock: Clock,
    subscribers: Vec<Subscriber>,
    next_subscriber: u64,
    /// Open participant connections per seat; the log records the 0 ↔ 1 edges
    /// (`participant_connected` / `participant_disconnected`).
    connections: Connections,
    /// Accepted commands by sender and key: the first answer, for repeats.
    accepted: Accepted,
    refused: HashMap<(Actor, CommandId), Rejection>,
    refused_order: VecDeque<(Actor, CommandId)>,
    retry_at: Option<Timestamp>,
    /// Each seat's next alarm deadline (`monitor::seat_deadline`); the task
    /// sleeps until the earliest. Kept per seat so that a batch about one
    /// participant costs one seat's evaluation, not the whole group's.
    deadlines: HashMap<SeatId, Timestamp>,
    /// The next batch evaluates every seat (at start, after a failed batch).
    evaluate_all: bool,
    /// An answer of this batch did not fit in its connection's queue.
    overflowed: bool,
    shutdown: CancellationToken,
    registry: Registry,
    /// When the last message came: a closed session idle long enough unloads.
    idle_since: Timestamp,
}

impl SessionTask {
    async fn run(mut self, mut rx: mpsc::Receiver<SessionMsg>) {
        // First: what came due while the session was not running (alarms,
        // phones recorded as connected that are not).
        self.handle_batch(Vec::new()).await;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // Made once: a fresh `cancelled()` each turn registers and
        // unregisters a waiter on every batch.
        let stopping = self.shutdown.clone().cancelled_owned();
        tokio::pin!(stopping);
        loop {
            let wake = self
                .due()
                .into_iter()
                .chain(self.retry_at)
                .chain(self.unload_at())
                .min();
            let clock = self.clock.clone();
            let timer = async move {
                match wake {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut stopping => break,
                n = rx.recv_many(&mut batch, MAX_BATCH) => {
                    if n == 0 { break; }
                    self.handle_batch(std::mem::take(&mut batch)).await;
                }
                () = timer => match self.unload_at() {
                    Some(at) if self.clock.now() >= at => {
                        if self.unload(&rx).await {
                            break;
                        }
                        // Someone holds its handle: look again after another idle spell.
                        self.idle_since = self.clock.now();
                    }
                    _ => self.handle_batch(Vec::new()).await,
                },
            }
        }
        tracing::debug!(session = %self.state.id, "session task stopped");
    }

    fn stamp(
        &mut self,
        actor: Actor,
        command: Option<CommandId>,
        at: Timestamp,
        bodies: Vec<EventBody>,
        events: &mut Vec<Event>,
    ) {
        for body in bodies {
            let event = Event {
                session: self.state.id,
                seq: self.state.last_seq.next(),
                at,
                actor,
                command,
                body,
            };
            // Applied now so later work in this batch sees it; nothing leaves
            // this task before the commit.
            self.state.apply(&event);
            events.push(event);
        }
    }

    /// When this session should unload: closed, followed by no one, nothing
    /// to retry, and idle for [`UNLOAD_CLOSED_AFTER_MS`].
    fn unload_at(&self) -> Option<Timestamp> {
        (self.state.phase == protocol::SessionPhase::Closed
            && self.subscribers.is_empty()
            && self.retry_at.is_none())
        .then(|| self.idle_since.plus_ms(UNLOAD_CLOSED_AFTER_MS))
    }

    /// Takes this session out of the registry so the task can end, if no one
    /// holds its handle and nothing waits in its queue. Under the loading lock,
    /// so no second task for it starts until it is out; a later visit rebuilds
    /// it from the log, which holds all it had (a closed session records nothing).
    async fn unload(&mut self, rx: &mpsc::Receiver<SessionMsg>) -> bool {
        let _no_loading = self.registry.loading.lock().await;
        let id = self.state.id;
        // The registry's own handle is then the only sender: nothing more can
        // be queued once it is out.
        let Some((_, handle)) = self
            .registry
            .sessions
            .remove_if(&id, |_, h| h.tx.strong_count() == 1)
        else {
            return false;
        };
        if !rx.is_empty() {
            self.registry.sessions.insert(id, handle);
            return false;
        }
        tracing::info!(session = %id, "closed session unloaded after being idle");
        true
    }

    /// One batch: decide every command against the state as it evolves, record
    /// connection changes and whatever the alarm rules say now, append it all
    /// in one commit, and only then answer and fan out.
    async fn handle_batch(&mut self, batch: Vec<SessionMsg>) {
        if !batch.is_empty() {
            self.idle_since = self.clock.now();
        }
        // Any batch retries what a failed one left; a new failure sets it again.
        self.retry_at = None;
        self.accepted.forget_before(self.clock.now());
        let unknown = self.recall_retries(&batch).await;
        let mut work = Batch::default();
        let mut after_commit = Vec::new();
        for msg in batch {
            match msg {
                SessionMsg::Command {
                    actor,
                    id,
                    retry: Some(_),
                    reply,
                    ..
                } if unknown.contains(&(actor, id)) => {
                    self.overflowed |= reply.send(CommandOutcome::Rejected(Rejection::new(
                        RejectCode::StorageUnavailable,
                        "whether this was recorded before cannot be read now, so nothing was recorded; try again",
                    )));
                }
                SessionMsg::Command {
                    actor,
                    id,
                    command,
                    age_ms,
                    reply,
                    ..
                } => self.decide_one(actor, id, command, age_ms, reply, &mut work),
                SessionMsg::Subscribe {
                    viewer,
                    outbox,
                    snapshot,
                    reply,
                } => {
                    if let Viewer::Participant(seat) = viewer {
                        self.connections.opened(seat);
                    }
                    after_commit.push((viewer, outbox, snapshot, reply));
                }
                SessionMsg::Unsubscribe { id } => {
                    // Already gone if fan-out found its queue closed first.
                    if let Some(i) = self.subscribers.iter().position(|s| s.id == id) {
                        let gone = self.subscribers.swap_remove(i);
                        self.connections.closed(&gone);
                    }
                }
                SessionMsg::Snapshot { viewer, reply } => {
                    // A snapshot never shows anything not yet durable.
                    let _ = reply.send(self.committed.redacted_for(viewer));
                }
            }
        }
        let now = self.clock.now();
        let presence = self.presence_changes();
        self.stamp(Actor::System, None, now, presence, &mut work.events);
        // Only the seats this batch is about, unless a deadline has come or
        // the batch concerns the whole session.
        let passed = self.due().is_some_and(|due| now >= due);
        let touched =
            monitor::touched_seats(&work.events).filter(|_| !passed && !self.evaluate_all);
        let scope = touched
            .as_deref()
            .map_or(monitor::Scope::All, monitor::Scope::Seats);
        let alarms = monitor::evaluate_in(&self.state, now, scope);
        self.stamp(Actor::System, None, now, alarms, &mut work.events);

        let fate = if work.events.is_empty() {
            Fate::Saved
        } else {
            match self.log.append(std::mem::take(&mut work.events)).await {
                Ok(recorded) => {
                    for r in &recorded {
                        self.committed.apply(&r.event);
                        self.fan_out(&r.event, &r.json);
                    }
                    Fate::Saved
                }
                Err(error) => {
                    tracing::error!(session = %self.state.id, %error, "append failed; commands refused, nothing recorded");
                    self.state = self.committed.clone();
                    self.evaluate_all = true;
                    // Any presence edge of this batch went unrecorded.
                    self.connections.unsettled = true;
                    // A deadline that has passed must not wake the task again
                    // at once: the retry below evaluates every seat anyway.
                    self.deadlines.retain(|_, at| *at > now);
                    self.retry_at = Some(now.plus_ms(RETRY_AFTER_FAILURE_MS));
                    if self.resync_if_log_is_ahead().await {
                        Fate::AsTheLogSays
                    } else {
                        Fate::NotSaved
                    }
                }
            }
        };
        if matches!(fate, Fate::Saved) {
            self.refresh_deadlines(scope, now);
            if matches!(scope, monitor::Scope::All) {
                self.evaluate_all = false;
            }
        }
        self.answer(work, fate, now);
        if std::mem::take(&mut self.overflowed) {
            // Dropped now, like one whose events did not fit: not kept as
            // connected while its socket is being closed.
            let connections = &mut self.connections;
            self.subscribers.retain(|sub| {
                let keep = !sub.outbox.has_fallen_behind();
                if !keep {
                    connections.closed(sub);
                }
                keep
            });
        }
        for (viewer, outbox, snapshot, reply) in after_commit {
            let snapshot = snapshot.then(|| self.state.redacted_for(viewer));
            let id = self.next_subscriber;
            self.next_subscriber += 1;
            self.subscribers.push(Subscriber { id, viewer, outbox });
            let _ = reply.send(Subscribed {
                subscriber: id,
                upto: self.state.last_seq,
                snapshot,
            });
        }
    }

    /// The earliest seat deadline: when the task next evaluates everything.
    fn due(&self) -> Option<Timestamp> {
        self.deadlines.values().min().copied()
    }

    /// Recomputes the deadlines of the seats a saved batch evaluated.
    fn refresh_deadlines(&mut self, scope: monitor::Scope<'_>, now: Timestamp) {
        if matches!(scope, monitor::Scope::All) {
            self.deadlines.clear();
        }
        for seat in self.state.seats.iter().filter(|s| scope.covers(s.id)) {
            match monitor::seat_deadline(&self.state, seat, now) {
                Some(at) => self.deadlines.insert(seat.id, at),
                None => self.deadlines.remove(&seat.id),
            };
        }
    }

    /// Answers a batch's commands once its fate is known. Refusals wait too:
    /// a refusal may rest on an earlier command of the same batch ("already
    /// recorded"), which only counts if it was saved.
    fn answer(&mut self, work: Batch, fate: Fate, now: Timestamp) {
        let unsaved = Rejection::new(
            RejectCode::StorageUnavailable,
            "the record could not be saved, so nothing was recorded; try again",
        );
        let committed = fate == Fate::Saved;
        for p in work.pending {
            let outcome = match fate {
                Fate::Saved => CommandOutcome::Accepted {
                    first: p.first,
                    last: p.last,
                    repeated: false,
                },
                Fate::NotSaved => CommandOutcome::Rejected(unsaved.clone()),
                // Saved or not, the log knows: the rebuilt index says which.
                Fate::AsTheLogSays => self
                    .accepted
                    .get(&p.key)
                    .unwrap_or(CommandOutcome::Rejected(unsaved.clone())),
            };
            for (i, reply) in p.replies.into_iter().enumerate() {
                self.overflowed |= reply.send(if i == 0 {
                    outcome.clone()
                } else {
                    outcome.as_repeat()
                });
            }
            if let CommandOutcome::Accepted { first, last, .. } = outcome
                && committed
            {
                self.accepted.insert(p.key, first, last, now);
            }
        }
        for (key, rejection, reply) in work.refusals {
            if committed {
                self.remember_refusal(key, rejection.clone());
                self.overflowed |= reply.send(CommandOutcome::Rejected(rejection));
            } else {
                self.overflowed |= reply.send(CommandOutcome::Rejected(unsaved.clone()));
            }
        }
    }

    /// Looks up in the log every retry this task no longer remembers (one
    /// query for the batch), so that one accepted long ago is answered as a
    /// repeat. Returns the retries the log could not be asked about: they are
    /// refused, never recorded blind.
    async fn recall_retries(&mut self, batch: &[SessionMsg]) -> Vec<(Actor, CommandId)> {
        let mut asked: Vec<(Actor, CommandId)> = Vec::new();
        // One query for the batch, from the earliest point any of them names.
        let mut after = self.state.last_seq;
        for msg in batch {
            if let SessionMsg::Command {
                actor,
                id,
                retry: Some(sent_after),
                ..
            } = msg
            {
                let key = (*actor, *id);
                if self.accepted.get(&key).is_none()
                    && !self.refused.contains_key(&key)
                    && !asked.contains(&key)
                {
                    asked.push(key);
                    after = after.min(*sent_after);
                }
            }
        }
        if asked.is_empty() {
            return asked;
        }
        let ids = asked.iter().map(|(_, id)| *id).collect();
        match self.log.command_events(self.state.id, after, ids).await {
            Ok(events) => {
                let now = self.clock.now();
                for key in asked {
                    let mut mine = events
                        .iter()
                        .filter(|e| e.actor == key.0 && e.command == Some(key.1));
                    if let Some(first) = mine.next() {
                        let last = mine.next_back().unwrap_or(first);
                        // Remembered afresh: a client retrying now may again.
                        self.accepted.insert(key, first.seq, last.seq, now);
                    }
                }
                Vec::new()
            }
            Err(error) => {
                tracing::warn!(session = %self.state.id, %error, "retries could not be checked against the log");
                asked
            }
        }
    }

    /// After a failed append the log should hold exactly what this task had
    /// before the batch. If it holds more (a store that failed after writing),
    /// the log is the truth: rebuild from it so sequence numbers stay unique.
    async fn resync_if_log_is_ahead(&mut self) -> bool {
        let id = self.state.id;
        match self.log.read(id, self.state.last_seq, 1).await {
            Ok(ahead) if ahead.is_empty() => false,
            Ok(_) => {
                tracing::error!(session = %id, "the log is ahead of the session after a failed append; rebuilding from the log");
                let mut state = SessionState::empty(id);
                let mut keys = IdempotencyIndex::new(self.clock.now());
                loop {
                    let Ok(chunk) = self.log.read(id, state.last_seq, READ_CHUNK).await else {
                        return false;
                    };
                    if chunk.is_empty() {
                        break;
                    }
                    for event in &chunk {
                        state.apply(event);
                        keys.note(event);
                    }
                }
                self.committed = state.clone();
                self.state = state;
                self.accepted = keys.done();
                // Nobody was sent those events: every subscriber reconnects
                // and resumes from what it has, so it replays them.
                for sub in self.subscribers.drain(..) {
                    sub.outbox.fall_behind();
                    self.connections.closed(&sub);
                }
                true
            }
            // The store cannot even be read: the retry timer will try again.
            Err(_) => false,
        }
    }

    fn decide_one(
        &mut self,
        actor: Actor,
        id: CommandId,
        command: Command,
        age_ms: Option<u64>,
        reply: Reply,
        work: &mut Batch,
    ) {
        let key = (actor, id);
        if let Some(first) = self.accepted.get(&key) {
            self.overflowed |= reply.send(first.as_repeat());
            return;
        }
        if let Some(rejection) = self.refused.get(&key) {
            self.overflowed |= reply.send(CommandOutcome::Rejected(rejection.clone()));
            return;
        }
        if let Some(p) = work.pending.iter_mut().find(|p| p.key == key) {
            p.replies.push(reply);
            return;
        }
        let now = self.clock.now();
        let ctx = Context {
            actor,
            now,
            fresh_id: if command.creates_id() {
                uuid::Uuid::new_v4()
            } else {
                uuid::Uuid::nil()
            },
            made_at: Context::made_at(now, age_ms),
        };
        match decide(&self.state, &ctx, &command) {
            Err(rejection) => {
                tracing::debug!(session = %self.state.id, command = %command.kind(), code = ?rejection.code, "command refused");
                work.refusals.push((key, rejection, reply));
            }
            Ok(bodies) => {
                let first = self.state.last_seq.next();
                self.stamp(actor, Some(id), ctx.now, bodies, &mut work.events);
                work.pending.push(Pending {
                    key,
                    first,
                    last: self.state.last_seq,
                    replies: vec![reply],
                });
            }
        }
    }

    /// Connection edges the log does not know yet (after a restart the log may
    /// say "connected" for a phone that is not). A closed session records none.
    /// Looked for only when an edge may be missing: most batches are readings,
    /// and a look at every seat for each of them cost ~1.4 % of the server.
    fn presence_changes(&mut self) -> Vec<EventBody> {
        if !std::mem::take(&mut self.connections.unsettled)
            || self.state.phase == protocol::SessionPhase::Closed
        {
            return Vec::new();
        }
        let connections = &self.connections;
        self.state
            .seats
            .iter()
            .filter(|seat| !seat.state.has_left())
            .filter_map(|seat| {
                let open = connections.is_open(seat.id);
                let recorded = seat.presence.is_some_and(|p| p.connected);
                match (open, recorded) {
                    (true, false) => Some(EventBody::ParticipantConnected { seat: seat.id }),
                    (false, true) => Some(EventBody::ParticipantDisconnected { seat: seat.id }),
                    _ => None,
                }
            })
            .collect()
    }

    /// Sends one committed event to every subscriber allowed to see it. A
    /// subscriber whose queue is full is told it fell behind and dropped; it
    /// resumes from the log, so nothing is lost and nobody else waits.
    fn fan_out(&mut self, event: &Event, json: &str) {
        let mut text: Option<Utf8Bytes> = None;
        let session = self.state.id;
        let audience = event.body.audience();
        let connections = &mut self.connections;
        self.subscribers.retain(|sub| {
            // Decided here, from the subscriber list alone: most phones are
            // not in an event's audience, and their queues are not touched.
            if !audience.includes(sub.viewer) {
                return true;
            }
            let keep = deliver(sub, event, json, &mut text, session);
            if !keep {
                connections.closed(sub);
            }
            keep
        });
    }

    fn remember_refusal(&mut self, key: (Actor, CommandId), rejection: Rejection) {
        if self.refused_order.len() >= REMEMBERED_REFUSALS
            && let Some(old) = self.refused_order.pop_front()
        {
            self.refused.remove(&old);
        }
        self.refused_order.push_back(key);
        self.refused.insert(key, rejection);
    }
}

/// Participants' open connections, per seat.
struct Connections {
    per_seat: HashMap<SeatId, usize>,
    /// A seat may have gone from no connection to one or back since the log
    /// last recorded its presence (and at start, when the log may say
    /// "connected" for a phone that is not).
    unsettled: bool,
}

impl Default for Connections {
    fn default() -> Connections {
        Connections {
            per_seat: HashMap::new(),
            unsettled: true,
        }
    }
}

impl Connections {
    /// A participant's connection subscribed.
    fn opened(&mut self, seat: SeatId) {
        let n = self.per_seat.entry(seat).or_default();
        *n += 1;
        self.unsettled |= *n == 1;
    }

    /// A subscriber left (unsubscribed, closed, or fell behind): one
    /// connection fewer for its seat. Called exactly once per subscriber, by
    /// whichever removal comes first.
    fn closed(&mut self, sub: &Subscriber) {
        if let Viewer::Participant(seat) = sub.viewer
            && let Some(n) = self.per_seat.get_mut(&seat)
            && *n > 0
        {
            *n -= 1;
            self.unsettled |= *n == 0;
        }
    }

    fn is_open(&self, seat: SeatId) -> bool {
        self.per_seat.get(&seat).is_some_and(|n| *n > 0)
    }
}

/// Offers one event to one subscriber in its audience; false when the
/// subscriber is gone or has fallen behind (and must be removed).
fn deliver(
    sub: &Subscriber,
    event: &Event,
    json: &str,
    text: &mut Option<Utf8Bytes>,
    session: SessionId,
) -> bool {
    // (A subscriber told it fell behind is removed at once, so none is here.)
    let text = text
        .get_or_insert_with(|| event_message_json(json).into())
        .clone();
    match sub.outbox.tx.try_send(Outbound::Text(text)) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(session = %session, seq = event.seq.0, "subscriber fell behind; closing it so it resumes");
            sub.outbox.fall_behind();
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    fn answers(rx: &mut mpsc::Receiver<Outbound>) -> Vec<ServerMessage> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|o| match o {
                Outbound::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
                Outbound::Close(..) => panic!("an answer, not a close"),
            })
            .collect()
    }

    #[test]
    fn an_event_message_reads_as_the_protocol_says() {
        let event = Event {
            session: SessionId::from_uuid(uuid::Uuid::from_u128(7)),
            seq: Seq(12),
            at: Timestamp(1_795_000_000_000),
            actor: Actor::System,
            command: Some(CommandId::from_uuid(uuid::Uuid::from_u128(9))),
            body: EventBody::GroupMessagePosted {
                text: "Water is on the side table \"here\"".into(),
            },
        };
        let text = event_message_json(&serde_json::to_string(&event).unwrap());
        assert_eq!(
            text,
            serde_json::to_string(&ServerMessage::Event {
                event: Box::new(event.clone())
            })
            .unwrap()
        );
        assert_eq!(
            serde_json::from_str::<ServerMessage>(&text).unwrap(),
            ServerMessage::Event {
                event: Box::new(event)
            }
        );
    }

    /// An answer goes to the connection's queue and frees its slot; one the
    /// session never gave (it stopped) still arrives, as "busy"; one that
    /// does not fit marks the connection as fallen behind.
    #[test]
    fn a_connection_always_hears_an_answer_and_gets_its_slot_back() {
        let slots = Arc::new(Semaphore::new(2));
        let (tx, mut rx) = mpsc::channel(1);
        let outbox = Outbox::new(tx, Signal::default());
        let id = |n| CommandId::from_uuid(uuid::Uuid::from_u128(n));
        let reply = |n| {
            let slot = slots.clone().try_acquire_owned().unwrap();
            Reply::Connection(ConnectionReply::new(id(n), outbox.clone(), slot))
        };
        let accepted = CommandOutcome::Accepted {
            first: Seq(3),
            last: Seq(4),
            repeated: false,
        };
        assert!(!reply(1).send(accepted), "it fits");
        assert_eq!(slots.available_permits(), 2);
        assert_eq!(
            answers(&mut rx),
            vec![ServerMessage::Accepted {
                id: id(1),
                first: Seq(3),
                last: Seq(4),
                repeated: false
            }]
        );
        drop(reply(2));
        let busy = answers(&mut rx);
        assert!(
            matches!(&busy[..], [ServerMessage::Rejected { id: i, rejection }] if *i == id(2) && rejection.code == RejectCode::Busy),
            "{busy:?}"
        );
        assert!(!outbox.has_fallen_behind());
        drop(reply(3));
        drop(reply(4));
        assert!(outbox.has_fallen_behind() && outbox.halt.is_raised());
        assert_eq!(slots.available_permits(), 2);
    }

    #[test]
    fn hours_of_answers_keep_the_table_at_its_size() {
        // A busy session: a dozen answers a second, swept every 30 s. Erasing
        // in place leaves tombstones, and after ~40 minutes the table doubled.
        let t0 = Timestamp(1_795_000_000_000);
        let mut accepted = Accepted::new(t0);
        let sender = Actor::Participant {
            seat: SeatId::from_uuid(uuid::Uuid::from_u128(7)),
        };
        let mut most = 0;
        for n in 0..(2 * 3600 * 12u64) {
            let at = t0.plus_ms(i64::try_from(n).unwrap() * 1000 / 12);
            accepted.forget_before(at);
            let key = (
                sender,
                CommandId::from_uuid(uuid::Uuid::from_u128(u128::from(n) * 7919)),
            );
            accepted.insert(key, Seq(n + 1), Seq(n + 1), at);
            most = most.max(accepted.answers.capacity());
        }
        // 5.5 minutes of answers at most: 3,960, in a table of 8,192 buckets.
        assert!(accepted.answers.len() <= 3_960);
        assert!(most <= 7_168, "the table grew to {most} answers' room");
    }

    #[test]
    fn accepted_answers_are_forgotten_after_the_window_and_memory_shrinks() {
        let t0 = Timestamp(1_795_000_000_000);
        let key = |n: u128| {
            let sender = Actor::Participant {
                seat: SeatId::from_uuid(uuid::Uuid::from_u128(n % 12)),
            };
            (sender, CommandId::from_uuid(uuid::Uuid::from_u128(n)))
        };
        let mut accepted = Accepted::new(t0);
        // One answer every 100 ms for 1,000 s.
        let at = |n: u128| t0.plus_ms(i64::try_from(n).unwrap() * 100);
        for n in 0..10_000u128 {
            accepted.insert(key(n), Seq(5 + 2 * n as u64), Seq(6 + 2 * n as u64), at(n));
        }
        accepted.insert(key(1), Seq(90_000), Seq(90_000), at(10_000));
        let answer = |first, last| {
            Some(CommandOutcome::Accepted {
                first: Seq(first),
                last: Seq(last),
                repeated: false,
            })
        };
        assert_eq!(
            accepted.get(&key(1)),
            answer(7, 8),
            "the first answer stays"
        );
        assert_eq!(accepted.get(&key(9_999)), answer(20_003, 20_004));
        let other_sender = (Actor::System, key(1).1);
        assert_eq!(accepted.get(&other_sender), None, "keys are per sender");
        // What does not fit 32 bits is kept whole, never dropped.
        let big = (
            Actor::System,
            CommandId::from_uuid(uuid::Uuid::from_u128(1 << 100)),
        );
        accepted.insert(big, Seq(5_000_000_000), Seq(5_000_000_001), at(9_000));
        accepted.insert(big, Seq(1), Seq(1), at(9_001));
        assert_eq!(accepted.get(&big), answer(5_000_000_000, 5_000_000_001));

        // 500 s past the window: the answers of the first 500 s are gone,
        // none later (times are kept in whole seconds, rounded up).
        accepted.forget_before(at(5_000).plus_ms(REMEMBER_ACCEPTED_MS));
        assert_eq!(accepted.get(&key(4_990)), None);
        assert!(accepted.get(&key(5_001)).is_some());
        assert_eq!(accepted.answers.len(), 5_000 - 1);
        // Within the sweep interval nothing is looked at; after it, all go.
        accepted.forget_before(at(5_200).plus_ms(REMEMBER_ACCEPTED_MS));
        assert!(accepted.get(&key(5_100)).is_some());
        accepted.forget_before(at(10_001).plus_ms(REMEMBER_ACCEPTED_MS));
        assert!(accepted.answers.is_empty() && accepted.wide.is_empty());
        assert!(
            accepted.answers.capacity() < 4 * 1024,
            "the table gives its memory back"
        );
        // What a busy session holds per answer, before the table's slack.
        assert_eq!(std::mem::size_of::<((CommandId, u16), Answer)>(), 32);
    }
}
