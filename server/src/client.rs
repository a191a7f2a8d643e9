//! A Rust client of Holdspace's public API: REST over HTTP/1.1 and the live
//! WebSocket protocol. The demo's simulator and the test suite use it, so they
//! exercise exactly what any other client sees.

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
pub use hyper::{Method, StatusCode};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use protocol::rest::{
    AddSeat, ApiError, CreateSession, JoinCodeIssued, JoinRequest, Joined, LoginRequest,
    LoginResponse, SeatCreated, SessionSummary, StaffMember,
};
use protocol::{
    ClientMessage, Command, CommandId, PROTOCOL_VERSION, SeatId, Seq, ServerMessage, SessionId,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What went wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{status}: {} ({})", .body.message, .body.error)]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The error body.
        body: ApiError,
    },
    /// Connecting, sending or receiving failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The answer was not what the API promises.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

/// The REST API of one server, optionally with a bearer token.
#[derive(Clone, Debug)]
pub struct Api {
    addr: SocketAddr,
    token: Option<String>,
}

impl Api {
    /// The API at `addr` (no token).
    pub fn new(addr: SocketAddr) -> Api {
        Api { addr, token: None }
    }

    /// The same API, sending `token`.
    pub fn with_token(&self, token: impl Into<String>) -> Api {
        Api {
            addr: self.addr,
            token: Some(token.into()),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// One request; the raw status and body, whatever they are.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        extra_headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let stream = TcpStream::connect(self.addr).await.map_err(transport)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(transport)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string());
        if let Some(token) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in extra_headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(transport)?;
        let res = sender.send_request(req).await.map_err(transport)?;
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        Ok((status, bytes))
    }

    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError> {
        let body = body.map(|b| serde_json::to_string(b).expect("request bodies serialize"));
        let (status, bytes) = self.raw(method, path, body, &[]).await?;
        if !status.is_success() {
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| ApiError {
                error: "unknown".into(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
            return Err(ClientError::Api { status, body });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected(format!("{path}: {e}")))
    }

    /// `POST /api/login`.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<LoginResponse, ClientError> {
        let req = LoginRequest {
            username: username.into(),
            password: password.into(),
        };
        self.call(Method::POST, "/api/login", Some(&req)).await
    }

    /// `GET /api/sessions`.
    pub async fn sessions(&self) -> Result<Vec<SessionSummary>, ClientError> {
        self.call::<(), _>(Method::GET, "/api/sessions", None).await
    }

    /// `GET /api/staff`: the clinic's staff.
    pub async fn staff(&self) -> Result<Vec<StaffMember>, ClientError> {
        self.call::<(), _>(Method::GET, "/api/staff", None).await
    }

    /// `POST /api/sessions`.
    pub async fn create_session(&self, title: &str) -> Result<SessionSummary, ClientError> {
        self.call(
            Method::POST,
            "/api/sessions",
            Some(&CreateSession {
                title: title.into(),
            }),
        )
        .await
    }

    /// `GET /api/sessions/{id}`.
    pub async fn session(&self, id: SessionId) -> Result<protocol::SessionState, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/api/sessions/{id}"), None)
            .await
    }

    /// `POST /api/sessions/{id}/seats`.
    pub async fn add_seat(
        &self,
        session: SessionId,
        seat: &AddSeat,
    ) -> Result<SeatCreated, ClientError> {
        self.call(
            Method::POST,
            &format!("/api/sessions/{session}/seats"),
            Some(seat),
        )
        .await
    }

    /// `POST /api/sessions/{id}/seats/{seat}/join-code`.
    pub async fn join_code(
        &self,
        session: SessionId,
        seat: SeatId,
    ) -> Result<JoinCodeIssued, ClientError> {
        self.call::<(), _>(
            Method::POST,
            &format!("/api/sessions/{session}/seats/{seat}/join-code"),
            None,
        )
        .await
    }

    /// `POST /api/join`.
    pub async fn join(&self, code: &str) -> Result<Joined, ClientError> {
        self.call(
            Method::POST,
            "/api/join",
            Some(&JoinRequest { code: code.into() }),
        )
        .await
    }
}

/// What a live connection received.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// A server message.
    Message(ServerMessage),
    /// The server closed the connection with this code and reason.
    Closed(Option<(u16, String)>),
    /// A text frame that is not a server message of this protocol version.
    Unparseable(String),
}

/// A live WebSocket connection to one session.
pub struct Live {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Live {
    /// Opens `/ws` at `addr` without saying hello (to test what the server
    /// does with other first messages).
    pub async fn open(addr: SocketAddr) -> Result<Live, ClientError> {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .map_err(transport)?;
        Ok(Live { ws })
    }

    /// Opens `/ws` over an already-connected TCP stream (e.g. one with a tiny
    /// receive buffer, to play a slow client).
    pub async fn open_on(addr: SocketAddr, stream: TcpStream) -> Result<Live, ClientError> {
        let (ws, _) = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            MaybeTlsStream::Plain(stream),
        )
        .await
        .map_err(transport)?;
        Ok(Live { ws })
    }

    /// Opens `/ws` and says hello.
    pub async fn connect(
        addr: SocketAddr,
        token: &str,
        session: SessionId,
        after: Option<Seq>,
    ) -> Result<Live, ClientError> {
        let mut live = Live::open(addr).await?;
        live.send(&ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            token: token.into(),
            session,
            after,
        })
        .await?;
        Ok(live)
    }

    /// Sends a message.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        self.send_raw(serde_json::to_string(msg).expect("client messages serialize"))
            .await
    }

    /// Sends a command with a fresh idempotency key, returning the key.
    pub async fn command(&mut self, command: Command) -> Result<CommandId, ClientError> {
        let id = CommandId::from_uuid(uuid::Uuid::new_v4());
        self.send(&ClientMessage::Command {
            id,
            command,
            age_ms: None,
        })
        .await?;
        Ok(id)
    }

    /// Sends any text frame.
    pub async fn send_raw(&mut self, text: String) -> Result<(), ClientError> {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(transport)
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(transport)
    }

    /// The next server message or the close; `None` when the stream ended
    /// without a close frame.
    pub async fn recv(&mut self) -> Option<Received> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(t)) => {
                    let msg = serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("server sent an unparseable message {t}: {e}"));
                    return Some(Received::Message(msg));
                }
                Ok(Message::Close(frame)) => {
                    return Some(Received::Closed(frame.map(
                        |CloseFrame { code, reason }| (u16::from(code), reason.to_string()),
                    )));
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Splits into a sending half and a receiving half, so one task can read
    /// while another sends.
    pub fn split(self) -> (LiveSender, LiveReceiver) {
        let (sink, stream) = self.ws.split();
        (LiveSender { sink }, LiveReceiver { live: stream })
    }
}

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sending half of a [`Live`] connection.
pub struct LiveSender {
    sink: futures_util::stream::SplitSink<WsStream, Message>,
}

impl LiveSender {
    /// Sends a message.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let text = serde_json::to_string(msg).expect("client messages serialize");
        self.sink
            .send(Message::Text(text.into()))
            .await
            .map_err(transport)
    }

    /// Sends a command with a fresh idempotency key, returning the key.
    pub async fn command(&mut self, command: Command) -> Result<CommandId, ClientError> {
        let id = CommandId::from_uuid(uuid::Uuid::new_v4());
        self.send(&ClientMessage::Command {
            id,
            command,
            age_ms: None,
        })
        .await?;
        Ok(id)
    }
}

/// The receiving half of a [`Live`] connection.
pub struct LiveReceiver {
    live: futures_util::stream::SplitStream<WsStream>,
}

impl LiveReceiver {
    /// The next server message or the close (see [`Live::recv`]).
    pub async fn recv(&mut self) -> Option<Received> {
        next_received(&mut self.live).await
    }
}

async fn next_received<S>(stream: &mut S) -> Option<Received>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await? {
            Ok(Message::Text(t)) => {
                return Some(match serde_json::from_str(&t) {
                    Ok(msg) => Received::Message(msg),
                    Err(e) => Received::Unparseable(format!("{e}: {t}")),
                });
            }
            Ok(Message::Close(frame)) => {
                return Some(Received::Closed(frame.map(
                    |CloseFrame { code, reason }| (u16::from(code), reason.to_string()),
                )));
            }
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}
