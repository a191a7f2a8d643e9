//! Talking to the server: JSON over HTTP for the REST API, and the live
//! WebSocket with hello, resume and automatic reconnection.

use super::browser;
use protocol::rest::ApiError;
use protocol::{ClientMessage, PROTOCOL_VERSION, Seq, ServerMessage, SessionId, wire::close_code};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// A REST call: the answer's body, or the server's error message in words.
pub async fn call<R: DeserializeOwned>(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&impl Serialize>,
) -> Result<R, String> {
    let response = fetch(method, path, token, body).await?;
    let text = JsFuture::from(response.text().map_err(|_| "no body".to_string())?)
        .await
        .ok()
        .and_then(|t| t.as_string())
        .unwrap_or_default();
    if response.ok() {
        serde_json::from_str(&text).map_err(|e| format!("unexpected answer: {e}"))
    } else {
        Err(refusal(&text, &response))
    }
}

/// Saves what `path` answers as the file `name`, as a browser download (a
/// plain link could not carry the staff token).
#[cfg(feature = "staff")]
pub async fn download(path: &str, token: &str, name: &str) -> Result<(), String> {
    let response = fetch("GET", path, Some(token), None::<&()>).await?;
    if !response.ok() {
        let text = JsFuture::from(response.text().map_err(|_| "no body".to_string())?)
            .await
            .ok()
            .and_then(|t| t.as_string())
            .unwrap_or_default();
        return Err(refusal(&text, &response));
    }
    let blob: web_sys::Blob = JsFuture::from(response.blob().map_err(|_| "no body".to_string())?)
        .await
        .map_err(|_| "the download was cut off; try again".to_string())?
        .unchecked_into();
    let url = web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|_| "the browser refused the download".to_string())?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let link: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|_| "no link")?
        .unchecked_into();
    link.set_href(&url);
    link.set_download(name);
    link.click();
    // Kept a while: a browser may start reading the file after the click.
    super::browser::after(60_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}

/// The server's refusal in words, or its status.
fn refusal(text: &str, response: &web_sys::Response) -> String {
    serde_json::from_str::<ApiError>(text)
        .map(|e| e.message)
        .unwrap_or_else(|_| format!("error {}", response.status()))
}

async fn fetch(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&impl Serialize>,
) -> Result<web_sys::Response, String> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(|_| "no headers".to_string())?;
    if let Some(token) = token {
        let _ = headers.set("authorization", &format!("Bearer {token}"));
    }
    if let Some(body) = body {
        let _ = headers.set("content-type", "application/json");
        init.set_body(
            &serde_json::to_string(body)
                .expect("request bodies serialize")
                .into(),
        );
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(path, &init)
        .map_err(|_| "bad request".to_string())?;
    let window = web_sys::window().expect("window");
    Ok(JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| "the server cannot be reached; check the connection".to_string())?
        .unchecked_into())
}

/// The live connection's state, always shown on screen.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum LinkStatus {
    /// Opening or replaying.
    Connecting,
    /// Caught up; events are live.
    Live,
    /// Lost; retrying.
    Offline,
    /// Refused for good (token expired, wrong session): sign in again.
    Refused(String),
}

struct Inner {
    session: SessionId,
    token: RefCell<String>,
    ws: RefCell<Option<WebSocket>>,
    keep: RefCell<Vec<Handler>>,
    on_message: Box<dyn Fn(ServerMessage)>,
    on_status: Box<dyn Fn(LinkStatus)>,
    resume_after: Box<dyn Fn() -> Option<Seq>>,
    failures: Cell<u32>,
    stopped: Cell<bool>,
}

/// The live connection to one session. Reconnects by itself, each time
/// resuming after the last event the app applied.
#[derive(Clone)]
pub struct Link(Rc<Inner>);

impl Link {
    /// Connects now. `resume_after` is asked at every (re)connection.
    pub fn start(
        token: String,
        session: SessionId,
        resume_after: impl Fn() -> Option<Seq> + 'static,
        on_message: impl Fn(ServerMessage) + 'static,
        on_status: impl Fn(LinkStatus) + 'static,
    ) -> Link {
        let link = Link(Rc::new(Inner {
            session,
            token: RefCell::new(token),
            ws: RefCell::new(None),
            keep: RefCell::new(Vec::new()),
            on_message: Box::new(on_message),
            on_status: Box::new(on_status),
            resume_after: Box::new(resume_after),
            failures: Cell::new(0),
            stopped: Cell::new(false),
        }));
        link.connect();
        link
    }

    fn connect(&self) {
        let inner = &self.0;
        if inner.stopped.get() {
            return;
        }
        (inner.on_status)(LinkStatus::Connecting);
        let Ok(ws) = WebSocket::new(&browser::ws_url()) else {
            self.retry();
            return;
        };
        let weak = Rc::downgrade(&self.0);
        let on_open = handler(weak.clone(), |link, _| {
            let hello = ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                token: link.0.token.borrow().clone(),
                session: link.0.session,
                after: (link.0.resume_after)(),
            };
            link.send(&hello);
        });
        let on_message = handler(weak.clone(), |link, event| {
            let Some(text) = event
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string())
            else {
                return;
            };
            if let Ok(msg) = serde_json::from_str::<ServerMessage>(&text) {
                if matches!(msg, ServerMessage::CaughtUp { .. }) {
                    link.0.failures.set(0);
                    (link.0.on_status)(LinkStatus::Live);
                }
                (link.0.on_message)(msg);
            }
        });
        let on_close = handler(weak, |link, event| {
            let (code, reason) = event
                .dyn_ref::<CloseEvent>()
                .map(|c| (c.code(), c.reason()))
                .unwrap_or((1006, String::new()));
            link.0.ws.borrow_mut().take();
            match code {
                close_code::UNAUTHORIZED
                | close_code::FORBIDDEN
                | close_code::NOT_FOUND
                | close_code::PROTOCOL => {
                    link.0.stopped.set(true);
                    (link.0.on_status)(LinkStatus::Refused(if reason.is_empty() {
                        format!("closed ({code})")
                    } else {
                        reason
                    }));
                }
                _ => link.retry(),
            }
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        *inner.keep.borrow_mut() = vec![on_open, on_message, on_close];
        *inner.ws.borrow_mut() = Some(ws);
    }

    /// Tries again after a pause growing with each failure (1, 2, 4, 8 s, at most 10 s).
    fn retry(&self) {
        if self.0.stopped.get() {
            return;
        }
        (self.0.on_status)(LinkStatus::Offline);
        let failures = self.0.failures.get();
        self.0.failures.set(failures + 1);
        let delay = (1000i32 << failures.min(4)).min(10_000);
        let weak = Rc::downgrade(&self.0);
        browser::after(delay, move || {
            if let Some(inner) = weak.upgrade() {
                Link(inner).connect();
            }
        });
    }

    /// Sends if the socket is open; false otherwise (the caller keeps the
    /// message and sends it after the next `caught_up`).
    pub fn send(&self, msg: &ClientMessage) -> bool {
        let ws = self.0.ws.borrow();
        match ws.as_ref() {
            Some(ws) if ws.ready_state() == WebSocket::OPEN => ws
                .send_with_str(&serde_json::to_string(msg).expect("client messages serialize"))
                .is_ok(),
            _ => false,
        }
    }

    /// Uses a refreshed token from the next connection on.
    pub fn set_token(&self, token: String) {
        *self.0.token.borrow_mut() = token;
    }

    /// Drops the connection on purpose (the board's "reconnect now") — it
    /// reconnects and resumes.
    #[cfg(feature = "staff")]
    pub fn drop_connection(&self) {
        if let Some(ws) = self.0.ws.borrow().as_ref() {
            let _ = ws.close();
        }
    }

    /// Closes for good (leaving the page).
    pub fn stop(&self) {
        self.0.stopped.set(true);
        if let Some(ws) = self.0.ws.borrow_mut().take() {
            // The handlers go with this link; detached first, the close that
            // completes later calls none of them (a call into a dropped
            // handler throws in the page).
            ws.set_onopen(None);
            ws.set_onmessage(None);
            ws.set_onclose(None);
            let _ = ws.close();
        }
    }
}

/// A socket event handler, kept alive as long as its socket.
type Handler = Closure<dyn FnMut(web_sys::Event)>;

fn handler(weak: Weak<Inner>, f: impl Fn(&Link, web_sys::Event) + 'static) -> Handler {
    Closure::new(move |event: web_sys::Event| {
        if let Some(inner) = weak.upgrade() {
            f(&Link(inner), event);
        }
    })
}
