//! One WebSocket connection. The first message must be a `hello` (token,
//! session, resume point); then a writer task sends the snapshot or the
//! replay, `caught_up`, and the live events, while this task reads commands.
//! Only this module touches the socket.

use crate::app::App;
use crate::auth::{Principal, TokenError};
use crate::hub::{
    ConnectionReply, HubError, MAX_IN_FLIGHT, Outbound, Outbox, READ_CHUNK, Reply, SessionHandle,
};
use crate::signal::{Signal, Waiter};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use protocol::wire::close_code;
use protocol::{
    ClientMessage, Command, CommandId, ErrorCode, PROTOCOL_VERSION, RejectCode, Rejection, Seq,
    ServerMessage, StaffRole, Viewer,
};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, timeout};

/// Most queued messages written out together.
const WRITE_BATCH: usize = 64;
/// Initial read buffer per connection, bytes (see `upgrade`).
const READ_BUFFER: usize = 8 * 1024;
/// A client sending only refused-for-rate messages this many times in a row
/// is closed.
const RATE_STRIKES: u32 = 200;

/// `GET /ws`: upgrades, then [`connection`] runs until either side ends it.
pub async fn upgrade(State(app): State<Arc<App>>, ws: WebSocketUpgrade) -> Response {
    let Ok(permit) = app.connections.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    // tungstenite zero-fills its whole read buffer (128 KiB by default) on
    // each connection: 15 000 idle boards and phones would hold 2 GiB. Client
    // messages are small; the buffer grows for the rare large one.
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(app.config.hard_frame_limit)
        .max_frame_size(app.config.hard_frame_limit)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            let _tracked = app.tracker.token();
            connection(app, socket).await;
        })
}

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

fn text(msg: &ServerMessage) -> Message {
    Message::Text(
        serde_json::to_string(msg)
            .expect("server messages serialize")
            .into(),
    )
}

fn error_msg(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        code,
        message: message.into(),
    }
}

/// Sends an error and, if the code ends the connection, a close frame.
async fn refuse(sink: &mut Sink, code: ErrorCode, message: impl Into<String>) {
    let message = message.into();
    let _ = sink.send(text(&error_msg(code, message.clone()))).await;
    if let Some(close) = code.closes() {
        let _ = sink.send(close_frame(close, &message)).await;
    }
}

fn close_frame(code: u16, reason: &str) -> Message {
    // A close reason may be at most 123 bytes.
    let mut reason = reason.to_string();
    while reason.len() > 120 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

struct Hello {
    principal: Principal,
    expires_at: protocol::Timestamp,
    handle: SessionHandle,
    after: Option<Seq>,
}

async fn read_hello(app: &App, sink: &mut Sink, stream: &mut Stream) -> Option<Hello> {
    let first = match timeout(app.config.hello_timeout, stream.next()).await {
        Err(_) => {
            refuse(
                sink,
                ErrorCode::HelloRequired,
                "no hello within the time allowed",
            )
            .await;
            return None;
        }
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
        Ok(Some(Ok(_))) => {
            refuse(
                sink,
                ErrorCode::HelloRequired,
                "the first message must be a hello text frame",
            )
            .await;
            return None;
        }
    };
    let (protocol, token, session, after) = match parse(&first) {
        Ok(ClientMessage::Hello {
            protocol,
            token,
            session,
            after,
        }) => (protocol, token, session, after),
        Ok(_) => {
            refuse(
                sink,
                ErrorCode::HelloRequired,
                "the first message must be a hello",
            )
            .await;
            return None;
        }
        Err((code, message)) => {
            refuse(sink, code, message).await;
            let _ = sink
                .send(close_frame(
                    close_code::PROTOCOL,
                    "the first message must be a valid hello",
                ))
                .await;
            return None;
        }
    };
    if protocol != PROTOCOL_VERSION {
        refuse(
            sink,
            ErrorCode::UnsupportedProtocol,
            format!("this server speaks protocol {PROTOCOL_VERSION}, not {protocol}"),
        )
        .await;
        return None;
    }
    let verified = match app.keys.verify(&token, app.clock.now()) {
        Ok(v) => v,
        Err(TokenError::Expired) => {
            refuse(
                sink,
                ErrorCode::TokenExpired,
                TokenError::Expired.to_string(),
            )
            .await;
            return None;
        }
        Err(e @ TokenError::Invalid(_)) => {
            refuse(sink, ErrorCode::InvalidToken, e.to_string()).await;
            return None;
        }
    };
    let principal = verified.principal;
    if let Principal::Participant { session: own, .. } = principal
        && own != session
    {
        refuse(
            sink,
            ErrorCode::Forbidden,
            "this participant token is for another session",
        )
        .await;
        return None;
    }
    let handle = match app.hub.session(session).await {
        Ok(Some(h)) => h,
        Ok(None) => {
            refuse(
                sink,
                ErrorCode::SessionNotFound,
                format!("there is no session {session}"),
            )
            .await;
            return None;
        }
        Err(e) => {
            tracing::error!(%session, error = %e, "could not load session");
            refuse(
                sink,
                ErrorCode::Unavailable,
                "the session could not be loaded; try again",
            )
            .await;
            return None;
        }
    };
    if !principal.may_open(session, handle.clinic) {
        // Same answer as an unknown session: do not reveal other clinics' ids.
        refuse(
            sink,
            ErrorCode::SessionNotFound,
            format!("there is no session {session}"),
        )
        .await;
        return None;
    }
    Some(Hello {
        principal,
        expires_at: verified.expires_at,
        handle,
        after,
    })
}

/// Parses a client frame, classifying failures for the error message.
fn parse(text: &str) -> Result<ClientMessage, (ErrorCode, String)> {
    serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => {
            (ErrorCode::MalformedJson, format!("not valid JSON: {e}"))
        }
        serde_json::error::Category::Data => (
            ErrorCode::InvalidMessage,
            format!("not a valid message: {e}"),
        ),
    })
}

async fn connection(app: Arc<App>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let Some(hello) = read_hello(&app, &mut sink, &mut stream).await else {
        return;
    };
    let Hello {
        principal,
        mut expires_at,
        handle,
        after,
    } = hello;
    let viewer = principal.viewer();
    let welcome = ServerMessage::Welcome {
        protocol: PROTOCOL_VERSION,
        session: handle.id,
        role: principal.role(),
        seat: match principal {
            Principal::Participant { seat, .. } => Some(seat),
            Principal::Staff { .. } => None,
        },
        server_time: app.clock.now(),
        token_expires_at: expires_at,
    };
    if sink.send(text(&welcome)).await.is_err() {
        return;
    }
    let (tx, rx) = mpsc::channel(app.config.outbound_queue);
    let outbox = Outbox::new(tx.clone(), Signal::default());
    let subscribed = match handle
        .subscribe(viewer, outbox.clone(), after.is_none())
        .await
    {
        Ok(s) => s,
        Err(HubError::Stopped | HubError::Store(_)) => {
            refuse(
                &mut sink,
                ErrorCode::Unavailable,
                "the session is not available; reconnect and resume",
            )
            .await;
            return;
        }
    };
    let subscriber = subscribed.subscriber;
    if let Some(after) = after
        && after > subscribed.upto
    {
        refuse(
            &mut sink,
            ErrorCode::ResumePointAhead,
            format!(
                "resume point {after} is after this session's last event {}",
                subscribed.upto
            ),
        )
        .await;
        handle.unsubscribe(subscriber).await;
        return;
    }
    tracing::info!(session = %handle.id, role = %principal.role(), after = after.map(|s| s.0), "connection subscribed");

    // The shutdown token is watched here, once, not polled by the reader and
    // writer on every wake-up; this task ends with the connection (the writer
    // raises the halt when it ends; a token already cancelled is seen at once).
    tokio::spawn({
        let (shutdown, halt) = (app.shutdown.clone(), outbox.halt.clone());
        async move {
            tokio::select! {
                () = shutdown.cancelled() => halt.raise(),
                () = halt.raised(Waiter::Shutdown) => {}
            }
        }
    });
    let done = Signal::default();
    let writer = tokio::spawn(write_loop(WriterStart {
        app: app.clone(),
        sink,
        rx,
        outbox: outbox.clone(),
        done: done.clone(),
        viewer,
        session: handle.id,
        snapshot: subscribed.snapshot,
        replay_after: after,
        upto: subscribed.upto,
    }));

    // Commands sent and not yet answered; the session frees a slot with each
    // answer. A frame is read only with a free slot in hand, so that a
    // command can always be sent, and waiting for one wakes when an answer
    // frees it.
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut slot: Option<OwnedSemaphorePermit> = None;
    let mut bucket = TokenBucket::new(app.config.rate_per_second, app.config.rate_burst);
    let mut strikes = 0u32;
    let expire_at = |at| {
        let clock = app.clock.clone();
        Box::pin(async move { clock.sleep_until(at).await })
    };
    let mut expiry = expire_at(expires_at);
    let actor = principal.actor();
    // The writer ended, the connection fell behind, or the server is stopping.
    let halted = outbox.halt.raised(Waiter::Reader);
    tokio::pin!(halted);

    loop {
        let reply: Option<ServerMessage> = tokio::select! {
            () = &mut halted => break,
            () = &mut expiry => {
                let message = TokenError::Expired.to_string();
                let _ = tx.send(Outbound::message(&error_msg(ErrorCode::TokenExpired, message.clone()))).await;
                let _ = tx.send(Outbound::Close(close_code::UNAUTHORIZED, message)).await;
                break;
            }
            free = slots.clone().acquire_owned(), if slot.is_none() => {
                slot = free.ok();
                None
            }
            frame = stream.next(), if slot.is_some() => {
                let text = match frame {
                    None | Some(Ok(Message::Close(_))) => break,
                    Some(Err(e)) => {
                        // axum reports an over-limit frame as a read error.
                        tracing::debug!(session = %handle.id, error = %e, "socket read failed");
                        let _ = tx.send(Outbound::Close(close_code::TOO_BIG, "frame too large or not valid WebSocket".into())).await;
                        break;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = tx.send(Outbound::message(&error_msg(ErrorCode::BinaryNotSupported, "send JSON text frames"))).await;
                        continue;
                    }
                    Some(Ok(Message::Text(t))) => t,
                };
                if !bucket.take(Instant::now()) {
                    strikes += 1;
                    if strikes >= RATE_STRIKES {
                        let _ = tx.send(Outbound::Close(close_code::RATE_LIMITED, "too many messages".into())).await;
                        break;
                    }
                    Some(error_msg(ErrorCode::RateLimited, "too many messages; this one was dropped and nothing was recorded"))
                } else if text.len() > app.config.frame_limit {
                    strikes = 0;
                    Some(error_msg(ErrorCode::FrameTooLarge, format!(
                        "a message may be at most {} bytes; this one had {} and was dropped",
                        app.config.frame_limit, text.len()
                    )))
                } else {
                    strikes = 0;
                    match parse(&text) {
                        Err((code, message)) => Some(error_msg(code, message)),
                        Ok(ClientMessage::Hello { .. }) => Some(error_msg(
                            ErrorCode::AlreadySubscribed,
                            "this connection already follows a session; open another connection for another",
                        )),
                        Ok(ClientMessage::RefreshToken {}) => match still_entitled(&principal, &handle).await {
                            Err(message) => Some(error_msg(ErrorCode::Forbidden, message)),
                            Ok(()) => {
                                let (token, exp) = app.issue_token(&principal);
                                expires_at = exp;
                                expiry = expire_at(expires_at);
                                Some(ServerMessage::TokenRefreshed { token, expires_at })
                            }
                        },
                        Ok(ClientMessage::Command { id, command, .. } | ClientMessage::Retry { id, command, .. })
                            if let Err(rejection) = rota_names_a_facilitator(&app, &principal, &command).await =>
                        {
                            Some(ServerMessage::Rejected { id, rejection })
                        }
                        Ok(ClientMessage::Command { id, command, age_ms }) => {
                            let reply = reply_to(&outbox, id, &mut slot);
                            // A full session queue holds this reader back, never past a halt.
                            tokio::select! {
                                () = handle.send_command(actor, id, command, None, age_ms, reply) => None,
                                () = &mut halted => break,
                            }
                        }
                        Ok(ClientMessage::Retry { id, command, after, age_ms }) => {
                            let reply = reply_to(&outbox, id, &mut slot);
                            let sent_after = after.unwrap_or(Seq(0));
                            tokio::select! {
                                () = handle.send_command(actor, id, command, Some(sent_after), age_ms, reply) => None,
                                () = &mut halted => break,
                            }
                        }
                    }
                }
            }
        };
        if let Some(msg) = reply
            && tx.send(Outbound::message(&msg)).await.is_err()
        {
            break;
        }
    }
    drop(tx);
    done.raise();
    let _ = writer.await;
    handle.unsubscribe(subscriber).await;
    tracing::debug!(session = %handle.id, "connection ended");
}

/// The pure model does not know the clinic's staff, so the one command that
/// names a colleague is checked here, before its session sees it: only a
/// facilitator of this clinic can be put on a participant's check rota.
/// (A sender whose role may not assign is left to the session's role check,
/// which refuses it as such, without a read of the store.)
async fn rota_names_a_facilitator(
    app: &App,
    principal: &Principal,
    command: &Command,
) -> Result<(), Rejection> {
    let Command::AssignFacilitator {
        staff: Some(staff), ..
    } = command
    else {
        return Ok(());
    };
    if !command.kind().permits(principal.role()) {
        return Ok(());
    }
    match app.store.staff_by_id(*staff).await {
        Ok(Some(found))
            if found.profile.clinic == principal.clinic()
                && found.profile.role == StaffRole::Facilitator =>
        {
            Ok(())
        }
        Ok(_) => Err(Rejection::new(
            RejectCode::InvalidInput,
            "only a facilitator of this clinic can be put on the check rota",
        )),
        Err(_) => Err(Rejection::new(
            RejectCode::StorageUnavailable,
            "the staff list cannot be read now; nothing was recorded, try again",
        )),
    }
}

/// A participant's token is renewed only while their seat is in an open
/// session: a phone lost after discharge does not keep access forever.
async fn still_entitled(principal: &Principal, handle: &SessionHandle) -> Result<(), &'static str> {
    let Principal::Participant { seat, .. } = principal else {
        return Ok(());
    };
    let state = handle
        .snapshot(Viewer::Staff)
        .await
        .map_err(|_| "the session is not available; try again")?;
    if state.phase == protocol::SessionPhase::Closed {
        return Err("the session is closed; the token is not renewed");
    }
    match state.seat(*seat) {
        Some(s) if !s.state.has_left() => Ok(()),
        _ => Err("this seat has left the session; the token is not renewed"),
    }
}

struct WriterStart {
    app: Arc<App>,
    sink: Sink,
    rx: mpsc::Receiver<Outbound>,
    /// Its `halt` stops the writer at once; the writer cancels it when it ends.
    outbox: Outbox,
    /// The reader has ended: send what is queued, then stop.
    done: Signal,
    viewer: Viewer,
    session: protocol::SessionId,
    snapshot: Option<protocol::SessionState>,
    replay_after: Option<Seq>,
    upto: Seq,
}

enum WriteEnd {
    Finished,
    Close(u16, String),
}

/// Sends, in order: the snapshot or the replay from the log, `caught_up`,
/// then every queued message. Watches for shutdown and for falling behind.
async fn write_loop(w: WriterStart) {
    let WriterStart {
        app,
        mut sink,
        mut rx,
        outbox,
        done,
        viewer,
        session,
        snapshot,
        replay_after,
        upto,
    } = w;
    let end = async {
        if let Some(state) = snapshot {
            send(
                &mut sink,
                text(&ServerMessage::Snapshot {
                    state: Box::new(state),
                }),
            )
            .await?;
        }
        if let Some(mut after) = replay_after {
            while after < upto {
                let chunk = app
                    .hub
                    .log()
                    .read(session, after, READ_CHUNK)
                    .await
                    .map_err(|e| {
                        tracing::error!(%session, error = %e, "replay failed");
                        WriteEnd::Close(
                            close_code::TRY_AGAIN,
                            "the log could not be read; reconnect and resume".into(),
                        )
                    })?;
                let Some(last) = chunk.last() else { break };
                after = last.seq;
                for event in chunk
                    .into_iter()
                    .filter(|e| e.seq <= upto && e.visible_to(viewer))
                {
                    send(
                        &mut sink,
                        text(&ServerMessage::Event {
                            event: Box::new(event),
                        }),
                    )
                    .await?;
                }
            }
        }
        send(&mut sink, text(&ServerMessage::CaughtUp { seq: upto })).await?;
        let mut ping = tokio::time::interval(app.config.ping_interval);
        ping.reset();
        // Made once, not once per turn (each is a waiter registered and dropped).
        let finished = done.raised(Waiter::Writer);
        tokio::pin!(finished);
        loop {
            tokio::select! {
                // Queued messages first: the reader queues a closing message
                // and then says it is done.
                biased;
                msg = rx.recv() => match msg {
                    Some(Outbound::Text(t)) => {
                        // Whatever else is already queued (a batch's events,
                        // an answer) goes out in the same write: one system
                        // call instead of one per message.
                        feed(&mut sink, Message::Text(t)).await?;
                        let mut closing = None;
                        for _ in 1..WRITE_BATCH {
                            match rx.try_recv() {
                                Ok(Outbound::Text(t)) => feed(&mut sink, Message::Text(t)).await?,
                                Ok(Outbound::Close(code, reason)) => {
                                    closing = Some((code, reason));
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        sink.flush().await.map_err(|_| WriteEnd::Finished)?;
                        if let Some((code, reason)) = closing {
                            return Err(WriteEnd::Close(code, reason));
                        }
                    }
                    Some(Outbound::Close(code, reason)) => return Err(WriteEnd::Close(code, reason)),
                    None => return Ok::<(), WriteEnd>(()),
                },
                () = &mut finished => return Ok(()),
                _ = ping.tick() => send(&mut sink, Message::Ping(Default::default())).await?,
            }
        }
    };
    // A halt wins over whatever is queued, and a send blocked on a client
    // that does not read must not outlive a shutdown or a fall-behind.
    let result = tokio::select! {
        biased;
        () = outbox.halt.raised(Waiter::Writer) => Err(if app.shutdown.is_cancelled() {
            WriteEnd::Close(close_code::GOING_AWAY, "the server is shutting down; reconnect and resume".into())
        } else if outbox.has_fallen_behind() {
            WriteEnd::Close(close_code::TOO_SLOW, "too slow: reconnect and resume from your last seq".into())
        } else {
            WriteEnd::Finished
        }),
        r = end => r,
    };
    if let Err(WriteEnd::Close(code, reason)) = result {
        let _ = timeout(
            app.config.close_grace,
            sink.send(close_frame(code, &reason)),
        )
        .await;
    }
    outbox.halt.raise();
}

async fn send(sink: &mut Sink, msg: Message) -> Result<(), WriteEnd> {
    sink.send(msg).await.map_err(|_| WriteEnd::Finished)
}

/// Queues a message without writing it out yet (see `flush`).
async fn feed(sink: &mut Sink, msg: Message) -> Result<(), WriteEnd> {
    sink.feed(msg).await.map_err(|_| WriteEnd::Finished)
}

/// Per-connection rate limit: `rate` messages a second sustained, `burst` at once.
struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            rate,
            burst,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Where the session answers a command from this connection: its queue,
/// holding the reader's free slot until then.
fn reply_to(outbox: &Outbox, id: CommandId, slot: &mut Option<OwnedSemaphorePermit>) -> Reply {
    let slot = slot
        .take()
        .expect("a frame is read only with a free slot in hand");
    Reply::Connection(ConnectionReply::new(id, outbox.clone(), slot))
}
