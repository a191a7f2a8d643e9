//! The simulated clinic: per session one device bridge relaying 12 pulse
//! oximeters at 1 Hz (SpO2 and pulse in turn) and a BP cuff, 12 participant
//! phones ("I'm OK" every minute, now and then "I need support"), and three
//! staff boards (two facilitators each observing one participant every 5 s,
//! so each is checked every 30 s; the medical provider). Every message is
//! timed from the moment it is sent to the moment each board receives it.
//!
//! The same messages go to all three targets; only the framing differs:
//! Holdspace commands, plain JSON for the floor, Socket.IO event packets.

use crate::metrics::Recorder;
use crate::servers::{Plan, SEATS, Target};
use anyhow::{Context as _, bail};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

type Ws = WebSocketStream<TcpStream>;

/// Marks the message ids this benchmark makes (the high half of the UUID).
const TAG: u64 = 0x0b0b_0b0b_0b0b_0b0b;

/// What every client of a run shares.
pub struct Run {
    /// The server's kind.
    pub target: Target,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Latencies and deliveries.
    pub rec: Recorder,
    /// Message ids.
    next_id: AtomicU64,
    /// Connections that ended before the run did.
    pub disconnects: AtomicU64,
    /// Holdspace boards: events skipped in the seq order (should stay 0).
    pub seq_gaps: AtomicU64,
    /// Set once every client is connected: the load starts together.
    pub go: CancellationToken,
    /// Set when the run ends.
    pub stop: CancellationToken,
    /// Connections open.
    pub sockets: AtomicU64,
    /// Connections being opened at once (a burst of thousands would overflow
    /// the listen backlog and time the setup, not the server).
    opening: tokio::sync::Semaphore,
}

impl Run {
    /// A new run against `target` at `addr`.
    pub fn new(target: Target, addr: SocketAddr) -> Run {
        Run {
            target,
            addr,
            rec: Recorder::new(3),
            next_id: AtomicU64::new(1),
            disconnects: AtomicU64::new(0),
            seq_gaps: AtomicU64::new(0),
            go: CancellationToken::new(),
            stop: CancellationToken::new(),
            sockets: AtomicU64::new(0),
            opening: tokio::sync::Semaphore::new(128),
        }
    }

    /// Waits for the start; false if the run ended first.
    async fn started(&self) -> bool {
        tokio::select! {
            () = self.go.cancelled() => true,
            () = self.stop.cancelled() => false,
        }
    }

    /// Frames `command` (Holdspace command JSON) for the target, with a fresh
    /// id that is recorded as sent.
    fn message(&self, seat: usize, command: &str) -> Message {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = Uuid::from_u64_pair(TAG, n);
        self.rec.sent(n);
        Message::text(match self.target {
            Target::Holdspace => format!(r#"{{"type":"command","id":"{id}","command":{command}}}"#),
            Target::Floor => {
                format!(r#"{{"type":"command","id":"{id}","seat":{seat},"command":{command}}}"#)
            }
            Target::Socketio => format!(
                r#"42["v",{{"type":"command","id":"{id}","seat":{seat},"command":{command}}}]"#
            ),
        })
    }
}

/// Who a connection is.
#[derive(Clone)]
pub struct Who {
    role: &'static str,
    session_index: usize,
    session: String,
    seat: usize,
    token: String,
}

/// Opens a connection and says hello (Holdspace: hello → welcome;
/// Socket.IO: open → connect to the default namespace).
async fn open(run: &Run, who: &Who, after: Option<u64>) -> anyhow::Result<Ws> {
    let _turn = run.opening.acquire().await?;
    let socket = TcpSocket::new_v4()?;
    let stream = socket.connect(run.addr).await?;
    stream.set_nodelay(true)?;
    let addr = run.addr;
    let query = format!(
        "role={}&session={}&seat={}",
        who.role, who.session_index, who.seat
    );
    let url = match run.target {
        Target::Holdspace => format!("ws://{addr}/ws"),
        Target::Floor => format!("ws://{addr}/?{query}"),
        Target::Socketio => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&{query}"),
    };
    // A small read buffer, as the server uses: tungstenite zero-fills the
    // whole buffer (128 KiB by default) per connection.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    match run.target {
        Target::Holdspace => {
            let after = after
                .map(|n| format!(r#","after":{n}"#))
                .unwrap_or_default();
            let hello = format!(
                r#"{{"type":"hello","protocol":1,"token":"{}","session":"{}"{after}}}"#,
                who.token, who.session
            );
            ws.send(Message::text(hello)).await?;
            expect(&mut ws, r#"{"type":"welcome""#).await?;
        }
        Target::Socketio => {
            expect(&mut ws, "0{").await?;
            ws.send(Message::text("40")).await?;
            expect(&mut ws, "40").await?;
        }
        Target::Floor => {}
    }
    run.sockets.fetch_add(1, Ordering::Relaxed);
    Ok(ws)
}

/// Reads the next frame, which must be text starting with `prefix`.
async fn expect(ws: &mut Ws, prefix: &str) -> anyhow::Result<()> {
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.starts_with(prefix) => Ok(()),
        other => bail!("expected {prefix:?}, got {other:?}"),
    }
}

/// The text after the first `key`, if any.
fn after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.find(key).map(|i| &text[i + key.len()..])
}

fn number(text: &str) -> Option<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// One received frame, read without parsing the whole of it.
#[derive(Debug, PartialEq)]
enum Frame<'a> {
    /// A message of this benchmark (`id`), in the session's order (`seq`,
    /// Holdspace only); `support` names the seat asking for support.
    Delivery {
        id: Option<u64>,
        seq: Option<u64>,
        support: Option<&'a str>,
    },
    /// The server refused message `id`.
    Refused(u64),
    /// Holdspace: the log position a snapshot or a resume reached.
    Position(u64),
    /// Socket.IO heartbeat: answer "3".
    Ping,
    Other,
}

fn bench_id(uuid: &str) -> Option<u64> {
    let (tag, n) = Uuid::try_parse(uuid.get(..36)?).ok()?.as_u64_pair();
    (tag == TAG).then_some(n)
}

fn read(target: Target, text: &str) -> Frame<'_> {
    let support = || {
        text.contains(r#""status":"need_support""#)
            .then(|| after(text, r#""seat":""#).and_then(|s| s.get(..36)))
            .flatten()
    };
    match target {
        Target::Holdspace => {
            if text.starts_with(r#"{"type":"event""#) {
                Frame::Delivery {
                    id: after(text, r#""command":""#).and_then(bench_id),
                    seq: after(text, r#""seq":"#).and_then(number),
                    support: support(),
                }
            } else if text.starts_with(r#"{"type":"rejected""#) {
                after(text, r#""id":""#)
                    .and_then(bench_id)
                    .map_or(Frame::Other, Frame::Refused)
            } else if text.starts_with(r#"{"type":"snapshot""#) {
                let at = text.rfind(r#""last_seq":"#).map(|i| &text[i + 11..]);
                at.and_then(number).map_or(Frame::Other, Frame::Position)
            } else if text.starts_with(r#"{"type":"caught_up""#) {
                after(text, r#""seq":"#)
                    .and_then(number)
                    .map_or(Frame::Other, Frame::Position)
            } else {
                Frame::Other
            }
        }
        Target::Floor | Target::Socketio => {
            if text == "2" {
                Frame::Ping
            } else if text.starts_with('{') || text.starts_with("42[") {
                Frame::Delivery {
                    id: after(text, r#""id":""#).and_then(bench_id),
                    seq: None,
                    support: support(),
                }
            } else {
                Frame::Other
            }
        }
    }
}

/// When the extra board of session 0 stops reading, counted from the start
/// of the load: for `length`, `from` on, and again every `every` if set;
/// only stalls that end by `until` (the end of the measured window), so that
/// the board has caught up when the run is checked.
#[derive(Clone, Copy, Debug)]
pub struct Stall {
    pub from: Duration,
    pub length: Duration,
    pub every: Option<Duration>,
    pub until: Duration,
    /// A control run: the board keeps reading, so the same windows measure
    /// what the load alone does to latency over the run.
    pub control: bool,
}

/// How long after a stall ends a message still counts as sent "during" it:
/// meanwhile the board reads what queued up while it stalled.
pub const CATCH_UP: Duration = Duration::from_secs(2);

impl Stall {
    /// For a message sent `at` after the start: the stall cycle it falls in,
    /// and whether it was sent during the stall or the catch-up after it.
    pub fn phase(&self, at: Duration) -> (u32, bool) {
        let Some(since) = at.checked_sub(self.from) else {
            return (0, false);
        };
        let every = self.every.unwrap_or(Duration::MAX);
        let cycle = (since.as_millis() / every.as_millis().max(1)) as u32;
        let into = since.saturating_sub(every.saturating_mul(cycle));
        (cycle, into < self.length + CATCH_UP)
    }

    /// When the `n`th stall begins, after the start.
    fn begins(&self, n: u32) -> Option<Duration> {
        let at = match self.every {
            None if n > 0 => None,
            None => Some(self.from),
            Some(every) => Some(self.from + every * n),
        }?;
        (at + self.length <= self.until).then_some(at)
    }
}

/// Starts every client of every session; returns when all are connected.
pub async fn start(
    run: &Arc<Run>,
    plan: &Plan,
    stall: Option<Stall>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    let mut opening = Vec::new();
    for (n, session) in plan.sessions.iter().enumerate() {
        let seats = Arc::new(session.seats.clone());
        let who = |role: &'static str, seat: usize, token: &str| Who {
            role,
            session_index: n,
            session: session.id.clone(),
            seat,
            token: token.to_string(),
        };
        // Spread each session's timers over the first second.
        let phase = Duration::from_millis((n as u64 * 7919) % 1000);
        let mut boards = vec![
            Board::new(
                who("facilitator", 0, &plan.facilitators[0]),
                0,
                true,
                seats.clone(),
            ),
            Board::new(
                who("facilitator", 0, &plan.facilitators[1]),
                1,
                true,
                seats.clone(),
            ),
            Board::new(who("medical", 0, &plan.medical), 2, false, seats.clone()),
        ];
        if n == 0
            && let Some(stall) = stall
        {
            let mut stalled = Board::new(
                who("facilitator", 0, &plan.facilitators[0]),
                3,
                false,
                seats.clone(),
            );
            stalled.stall = Some(stall);
            boards.push(stalled);
        }
        for board in boards {
            opening.push(tokio::spawn(board.run(run.clone(), phase)));
        }
        for seat in 0..SEATS {
            let token = session.phone_tokens.get(seat).map_or("", String::as_str);
            let phone = who("participant", seat, token);
            let support = seat == n % SEATS;
            opening.push(tokio::spawn(phone_run(
                run.clone(),
                phone,
                seats.clone(),
                support,
                phase,
            )));
        }
        opening.push(tokio::spawn(bridge_run(
            run.clone(),
            who("bridge", 0, &plan.medical),
            seats,
            phase,
        )));
    }
    for task in opening {
        tasks.push(task.await.context("client task")??);
    }
    Ok(tasks)
}

/// Every client connects first (the returned future resolves once it is
/// connected), then runs in its own task.
type Started = anyhow::Result<tokio::task::JoinHandle<()>>;

/// A staff board.
struct Board {
    who: Who,
    /// Which of the three boards (a bit in the recorder); 3 = the stalled
    /// extra board, which is checked for loss but not timed.
    index: u8,
    checks: bool,
    seats: Arc<Vec<String>>,
    stall: Option<Stall>,
}

/// What the stalled board saw, checked at the end of the run.
#[derive(Default, Debug, serde::Serialize)]
pub struct StallReport {
    /// Close codes the server sent it.
    pub closes: Vec<u16>,
    /// Resumes it made.
    pub resumes: u32,
    /// Events missing from its sequence.
    pub gaps: u64,
    /// Events it saw twice.
    pub duplicates: u64,
    /// The last seq it holds.
    pub last_seq: u64,
}

/// Session 0's stall report and its first board's last seq.
pub static STALL: std::sync::Mutex<Option<StallReport>> = std::sync::Mutex::new(None);
/// The last seq of session 0 seen by its first (never stalled) board.
pub static SESSION0_SEQ: AtomicU64 = AtomicU64::new(0);
/// The last seq the stalled board holds.
pub static STALLED_SEQ: AtomicU64 = AtomicU64::new(0);

impl Board {
    fn new(who: Who, index: u8, checks: bool, seats: Arc<Vec<String>>) -> Board {
        Board {
            who,
            index,
            checks,
            seats,
            stall: None,
        }
    }

    async fn run(self, run: Arc<Run>, phase: Duration) -> Started {
        let ws = open(&run, &self.who, None).await?;
        Ok(tokio::spawn(async move {
            if let Err(e) = self.live(&run, ws, phase).await
                && !run.stop.is_cancelled()
            {
                eprintln!("board: {e:#}");
            }
        }))
    }

    async fn live(self, run: &Run, mut ws: Ws, phase: Duration) -> anyhow::Result<()> {
        if !run.started().await {
            return Ok(());
        }
        let mut tick = tokio::time::interval_at(
            Instant::now() + phase + Duration::from_millis(2500 * u64::from(self.index)),
            Duration::from_secs(5),
        );
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut last_seq, mut checked) = (0u64, 0usize);
        let mut report = StallReport::default();
        let started = Instant::now();
        let (mut stalls, mut resuming) = (0, false);
        loop {
            if let Some(stall) = self.stall
                && let Some(begins) = stall.begins(stalls)
                && started.elapsed() >= begins
            {
                // A frozen tab: read nothing for a while.
                stalls += 1;
                if !stall.control {
                    tokio::select! {
                        () = tokio::time::sleep(stall.length) => {}
                        () = run.stop.cancelled() => break,
                    }
                }
            }
            let frame = tokio::select! {
                frame = ws.next() => frame,
                _ = tick.tick(), if self.checks => {
                    let seat = (checked * 2 + usize::from(self.index)) % SEATS;
                    checked += 1;
                    let command = format!(r#"{{"type":"observe_check_in","seat":"{}","status":"resting"}}"#, self.seats[seat]);
                    ws.send(run.message(seat, &command)).await?;
                    continue;
                }
                () = run.stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(200)), if self.stall.is_some() => continue,
            };
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(close))) => {
                    if let Some(close) = close {
                        report.closes.push(close.code.into());
                    }
                    ws = self.reconnect(run, last_seq, &mut report).await?;
                    resuming = true;
                    continue;
                }
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => {
                    ws = self.reconnect(run, last_seq, &mut report).await?;
                    resuming = true;
                    continue;
                }
            };
            match read(run.target, &text) {
                Frame::Delivery { id, seq, support } => {
                    if let Some(seq) = seq {
                        if last_seq > 0 && seq <= last_seq {
                            report.duplicates += 1;
                        } else if last_seq > 0 && seq > last_seq + 1 {
                            report.gaps += seq - last_seq - 1;
                        }
                        last_seq = last_seq.max(seq);
                        if self.who.session_index == 0 && self.index == 0 {
                            SESSION0_SEQ.store(last_seq, Ordering::Relaxed);
                        }
                    }
                    if self.index < 3 {
                        run.rec.frame();
                        if let Some(id) = id {
                            run.rec.delivered(id, self.index, seq.is_none());
                        }
                        // The first facilitator answers a support request.
                        if let Some(seat) = support.filter(|_| self.index == 0) {
                            let i = self.seats.iter().position(|s| s == seat).unwrap_or(0);
                            let command =
                                format!(r#"{{"type":"acknowledge_support","seat":"{seat}"}}"#);
                            ws.send(run.message(i, &command)).await?;
                        }
                    }
                }
                Frame::Position(seq) => {
                    // A snapshot sets the start; a resume's end is checked
                    // against what was replayed.
                    if resuming {
                        resuming = false;
                        report.gaps += seq.saturating_sub(last_seq);
                        last_seq = last_seq.max(seq);
                    } else if last_seq == 0 {
                        last_seq = seq;
                    }
                }
                Frame::Refused(id) => run.rec.refused(id),
                Frame::Ping => ws.send(Message::text("3")).await?,
                Frame::Other => {}
            }
            if self.index == 3 {
                STALLED_SEQ.store(last_seq, Ordering::Relaxed);
            }
        }
        if self.index == 3 {
            report.last_seq = last_seq;
            *STALL.lock().expect("stall") = Some(report);
        } else {
            run.seq_gaps.fetch_add(report.gaps, Ordering::Relaxed);
            run.rec
                .duplicates
                .fetch_add(report.duplicates, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Holdspace boards resume after their last seq; the references have no
    /// resume, so a dropped board there stays dropped (and its messages lost).
    async fn reconnect(
        &self,
        run: &Run,
        last_seq: u64,
        report: &mut StallReport,
    ) -> anyhow::Result<Ws> {
        run.sockets.fetch_sub(1, Ordering::Relaxed);
        if run.stop.is_cancelled() {
            bail!("stopped");
        }
        run.disconnects.fetch_add(1, Ordering::Relaxed);
        if run.target != Target::Holdspace {
            bail!("connection lost");
        }
        report.resumes += 1;
        open(run, &self.who, Some(last_seq)).await
    }
}

/// Drains frames; answers Socket.IO pings; counts refusals. Returns when the
/// connection ends.
fn absorb(
    run: &Run,
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Option<Message>, ()> {
    match frame {
        Some(Ok(Message::Text(text))) => match read(run.target, &text) {
            Frame::Delivery { .. } => {
                run.rec.frame();
                Ok(None)
            }
            Frame::Refused(id) => {
                run.rec.refused(id);
                Ok(None)
            }
            Frame::Ping => Ok(Some(Message::text("3"))),
            Frame::Position(_) | Frame::Other => Ok(None),
        },
        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Err(()),
        Some(Ok(_)) => Ok(None),
    }
}

/// A participant's phone.
async fn phone_run(
    run: Arc<Run>,
    who: Who,
    seats: Arc<Vec<String>>,
    support: bool,
    phase: Duration,
) -> Started {
    let mut ws = open(&run, &who, None).await?;
    Ok(tokio::spawn(async move {
        if !run.started().await {
            return;
        }
        let seat = &seats[who.seat];
        let start = Instant::now() + phase + Duration::from_secs(who.seat as u64 * 5);
        let mut ok = tokio::time::interval_at(start, Duration::from_secs(60));
        let mut help =
            tokio::time::interval_at(start + Duration::from_secs(30), Duration::from_secs(300));
        loop {
            let send = tokio::select! {
                frame = ws.next() => match absorb(&run, frame) {
                    Ok(reply) => reply,
                    Err(()) => break,
                },
                _ = ok.tick() => Some(run.message(who.seat, &format!(r#"{{"type":"self_report","seat":"{seat}","report":{{"status":"ok"}}}}"#))),
                _ = help.tick(), if support => Some(run.message(who.seat, &format!(
                    r#"{{"type":"self_report","seat":"{seat}","report":{{"status":"need_support","reasons":["cold"]}}}}"#
                ))),
                () = run.stop.cancelled() => return,
            };
            if let Some(message) = send
                && ws.send(message).await.is_err()
            {
                break;
            }
        }
        if !run.stop.is_cancelled() {
            run.disconnects.fetch_add(1, Ordering::Relaxed);
        }
    }))
}

/// The device bridge: 12 oximeters at 1 Hz (SpO2 and pulse in turn), and a
/// BP for one participant every 25 s (each every 5 min).
async fn bridge_run(run: Arc<Run>, who: Who, seats: Arc<Vec<String>>, phase: Duration) -> Started {
    let mut ws = open(&run, &who, None).await?;
    Ok(tokio::spawn(async move {
        if !run.started().await {
            return;
        }
        let mut tick = tokio::time::interval_at(
            Instant::now() + phase,
            Duration::from_secs(1) / SEATS as u32,
        );
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut k = 0usize;
        loop {
            let send = tokio::select! {
                frame = ws.next() => match absorb(&run, frame) {
                    Ok(reply) => reply,
                    Err(()) => break,
                },
                _ = tick.tick() => {
                    let seat = k % SEATS;
                    let measurement = if (k / SEATS).is_multiple_of(2) {
                        format!(r#"{{"kind":"spo2","value":{}}}"#, 95 + k % 5)
                    } else {
                        format!(r#"{{"kind":"heart_rate","value":{}}}"#, 62 + k % 20)
                    };
                    let mut out = vec![run.message(seat, &format!(
                        r#"{{"type":"record_vital","seat":"{}","measurement":{measurement},"device":"oximeter-{seat}"}}"#, seats[seat]
                    ))];
                    if k.is_multiple_of(300) {
                        let seat = (k / 300) % SEATS;
                        out.push(run.message(seat, &format!(
                            r#"{{"type":"record_vital","seat":"{}","measurement":{{"kind":"blood_pressure","systolic":{},"diastolic":76}},"device":"cuff-1"}}"#,
                            seats[seat], 112 + k % 15
                        )));
                    }
                    k += 1;
                    let mut failed = false;
                    for message in out {
                        failed |= ws.feed(message).await.is_err();
                    }
                    if failed || ws.flush().await.is_err() {
                        break;
                    }
                    continue;
                }
                () = run.stop.cancelled() => return,
            };
            if let Some(message) = send
                && ws.send(message).await.is_err()
            {
                break;
            }
        }
        if !run.stop.is_cancelled() {
            run.disconnects.fetch_add(1, Ordering::Relaxed);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_placed_in_its_stall_cycle() {
        let s = |secs| Duration::from_secs(secs);
        let stall = Stall {
            from: s(15),
            length: s(10),
            every: Some(s(30)),
            until: s(100),
            control: false,
        };
        // Before the first stall; in it; in the catch-up; after it; the
        // next cycle's stall and its quiet part.
        assert_eq!(stall.phase(s(3)), (0, false));
        assert_eq!(stall.phase(s(15)), (0, true));
        assert_eq!(stall.phase(s(26)), (0, true));
        assert_eq!(stall.phase(s(27)), (0, false));
        assert_eq!(stall.phase(s(45)), (1, true));
        assert_eq!(stall.phase(s(60)), (1, false));
        assert_eq!(stall.begins(2), Some(s(75)));
        assert_eq!(stall.begins(3), None, "it would end after the window");
        let once = Stall {
            every: None,
            ..stall
        };
        assert_eq!(once.phase(s(500)), (0, false));
        assert_eq!(once.phase(s(20)), (0, true));
        assert_eq!(once.begins(1), None);
    }

    #[test]
    fn frames_are_read_for_every_target() {
        let id = Uuid::from_u64_pair(TAG, 77);
        let event = format!(
            r#"{{"type":"event","event":{{"session":"x","seq":413,"at":1,"actor":{{"kind":"participant","seat":"5ea70000-0000-4000-8000-000000000007"}},"command":"{id}","body":{{"type":"self_reported","seat":"5ea70000-0000-4000-8000-000000000007","report":{{"status":"need_support"}}}}}}}}"#
        );
        assert_eq!(
            read(Target::Holdspace, &event),
            Frame::Delivery {
                id: Some(77),
                seq: Some(413),
                support: Some("5ea70000-0000-4000-8000-000000000007")
            }
        );
        let other = r#"{"type":"event","event":{"seq":9,"command":null,"body":{}}}"#;
        assert_eq!(
            read(Target::Holdspace, other),
            Frame::Delivery {
                id: None,
                seq: Some(9),
                support: None
            }
        );
        let rejected = format!(r#"{{"type":"rejected","id":"{id}","code":"x","message":"y"}}"#);
        assert_eq!(read(Target::Holdspace, &rejected), Frame::Refused(77));
        assert_eq!(
            read(
                Target::Holdspace,
                r#"{"type":"snapshot","state":{"seats":[],"last_seq":12}}"#
            ),
            Frame::Position(12)
        );
        assert_eq!(
            read(Target::Holdspace, r#"{"type":"caught_up","seq":40}"#),
            Frame::Position(40)
        );
        let v = format!(r#"42["v",{{"type":"command","id":"{id}","seat":3,"command":{{}}}}]"#);
        assert_eq!(
            read(Target::Socketio, &v),
            Frame::Delivery {
                id: Some(77),
                seq: None,
                support: None
            }
        );
        assert_eq!(read(Target::Socketio, "2"), Frame::Ping);
        let foreign = Uuid::from_u64_pair(1, 77);
        assert_eq!(
            read(Target::Floor, &format!(r#"{{"id":"{foreign}"}}"#)),
            Frame::Delivery {
                id: None,
                seq: None,
                support: None
            }
        );
    }
}
