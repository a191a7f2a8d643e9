//! The floor: a bare tokio-tungstenite broadcast server doing the same
//! fan-out as Holdspace (every message about a participant goes to its
//! session's staff connections and to that participant's phone) with no
//! authentication, no state, no persistence. Clearly not a product: the cheapest possible version of the
//! same job, to see what Holdspace's guarantees cost. Runs as its own process
//! (`holdspace-bench floor-server`) so its memory and CPU are measured alone.

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Outbox = mpsc::Sender<Message>;

#[derive(Default)]
struct Room {
    staff: Vec<(u64, Outbox)>,
    phones: HashMap<u32, Vec<(u64, Outbox)>>,
}

/// The query parameters of the floor's URL: `/?role=…&session=…&seat=…`.
#[derive(Default, Clone)]
struct Who {
    role: String,
    session: u32,
    seat: u32,
}

fn parse(query: &str) -> Who {
    let mut who = Who::default();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("role", v)) => who.role = v.to_string(),
            Some(("session", v)) => who.session = v.parse().unwrap_or(0),
            Some(("seat", v)) => who.seat = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    who
}

/// The seat a reading is for: `"seat":N` in the text.
pub fn seat_of(text: &str) -> Option<u32> {
    let at = text.find("\"seat\":")? + 7;
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Serves until killed.
pub async fn serve() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?.port());
    let rooms: Arc<Mutex<HashMap<u32, Room>>> = Arc::default();
    let mut next = 0u64;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        next += 1;
        let (rooms, id) = (rooms.clone(), next);
        tokio::spawn(async move {
            let mut who = Who::default();
            #[allow(
                clippy::result_large_err,
                reason = "the signature tungstenite asks for"
            )]
            let callback = |req: &Request, res: Response| {
                who = parse(req.uri().query().unwrap_or_default());
                Ok(res)
            };
            let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
            let Ok(ws) =
                tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config))
                    .await
            else {
                return;
            };
            let (mut sink, mut source) = ws.split();
            let (tx, mut rx) = mpsc::channel::<Message>(1024);
            {
                let mut rooms = rooms.lock().expect("rooms");
                let room = rooms.entry(who.session).or_default();
                match who.role.as_str() {
                    "participant" => room
                        .phones
                        .entry(who.seat)
                        .or_default()
                        .push((id, tx.clone())),
                    _ => room.staff.push((id, tx.clone())),
                }
            }
            let writer = tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    if sink.send(msg).await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(msg)) = source.next().await {
                let Message::Text(text) = msg else { continue };
                let seat = seat_of(&text).unwrap_or(0);
                let out = Message::Text(text);
                let rooms = rooms.lock().expect("rooms");
                if let Some(room) = rooms.get(&who.session) {
                    for (_, staff) in &room.staff {
                        let _ = staff.try_send(out.clone());
                    }
                    for (_, phone) in room.phones.get(&seat).into_iter().flatten() {
                        let _ = phone.try_send(out.clone());
                    }
                }
            }
            drop(tx);
            writer.abort();
            let mut rooms = rooms.lock().expect("rooms");
            if let Some(room) = rooms.get_mut(&who.session) {
                room.staff.retain(|(i, _)| *i != id);
                for phones in room.phones.values_mut() {
                    phones.retain(|(i, _)| *i != id);
                }
            }
        });
    }
}
