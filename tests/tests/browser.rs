//! The browser app in real headless Chromium (driven by chromedriver), served
//! by the real server: a staff member logs in and opens a session, two
//! participants join on their own "phones", one asks for support, the board
//! shows it, staff acknowledge, the participant sees it and the other
//! participant sees none of it; a staff board that loses its connection
//! recovers with nothing missing; and a phone whose answer to a tap is lost
//! retries it minutes later, from the point it first sent it, and the tap is
//! recorded once.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/test`
//! installs them) and the built app (`cargo run -p xtask -- build-web`).

use crate::support::*;
use fantoccini::Locator;
use holdspace_tests::chromium::{Browser, Driver};
use protocol::{ClientMessage, Command, EventBody, Measurement, SelfReport, ServerMessage, Viewer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn dist() -> PathBuf {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web-client/dist");
    assert!(
        dist.join("index.html").exists(),
        "the browser app is not built: run `cargo run -p xtask -- build-web` (scripts/test does)"
    );
    dist
}

/// Joins with a code on a phone and completes the arrival check-in.
async fn join(phone: &Browser, base: &str, code: &str) {
    phone.goto(&format!("{base}/#/join/{code}")).await.unwrap();
    phone.click_on("#fasting").await;
    phone.click_on("#ride").await;
    phone.click_on("form.arrival button[type=submit]").await;
    phone.wait_for(".big.help").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_request_travels_from_one_phone_to_the_board_and_back() {
    let server = TestServer::start_with(|c| c.web_dir = Some(dist())).await;
    let base = format!("http://{}", server.addr);
    let driver = Driver::start().await;
    let staff = driver.browser(1366, 768).await;

    // Staff log in and open a session, with two seats and their join codes.
    staff.log_in(&base, FACILITATOR, PASSWORD).await;
    staff.type_into("#title", "Browser group").await;
    staff.click_on(".new-session button[type=submit]").await;
    staff.wait_for("[data-testid=connection].status-live").await;
    staff
        .find(Locator::XPath("//button[contains(., 'Session')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut codes = Vec::new();
    for name in ["Ana", "Ben"] {
        staff
            .type_into(
                ".add-seat input[aria-label='First name or pseudonym']",
                name,
            )
            .await;
        staff.click_on(".add-seat button[type=submit]").await;
        staff
            .wait_for(&format!(".tile[aria-label^='{name}']"))
            .await;
        staff
            .find(Locator::XPath(&format!(
                "//div[@class='codes']//li[contains(., '{name}')]/button"
            )))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let code = staff
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(&format!(
                "//div[@data-testid='join-code'][contains(., 'For {name}')]//strong"
            )))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(code.len(), 9, "a code like K7PQ-4XMD: {code}");
        codes.push(code);
    }
    assert!(
        staff.find(Locator::Css(".join-code .qr svg")).await.is_ok(),
        "the code is also a QR code"
    );

    // Two participants join on their own phones.
    let ana = driver.browser(360, 800).await;
    let ben = driver.browser(360, 800).await;
    join(&ana, &base, &codes[0]).await;
    join(&ben, &base, &codes[1]).await;

    // Ana asks for support: the board shows it within a second.
    let pressed = Instant::now();
    ana.click_on(".big.help").await;
    let banner = staff
        .wait()
        .at_most(Duration::from_secs(1))
        .every(Duration::from_millis(20))
        .for_element(Locator::Css(".tile.support .support-banner"))
        .await;
    let took = pressed.elapsed();
    assert!(
        banner.is_ok(),
        "the support request reached the board in {took:?} (more than one second)"
    );
    eprintln!("support request on the board after {took:?}");
    ana.wait_for(".fb.sent").await;
    assert!(
        staff.find(Locator::Css(".alarms li.high")).await.is_ok(),
        "and it is a high alarm"
    );

    // Staff acknowledge; Ana sees that someone has seen it.
    staff.click_on(".support-banner .ack").await;
    let seen = ana.wait_for(".fb.seen").await.text().await.unwrap();
    assert!(seen.contains("has seen your request"), "{seen}");

    // Ben saw none of it.
    let ben_page = ben.page_text().await;
    assert!(ben_page.contains("Ben"));
    for word in ["Ana", "Request sent", "seen your request", "NEEDS"] {
        assert!(
            !ben_page.contains(word),
            "Ben's phone shows {word:?}: {ben_page}"
        );
    }
    let storage: serde_json::Value = ben
        .execute("return JSON.stringify(localStorage)", vec![])
        .await
        .unwrap();
    assert!(!storage.as_str().unwrap_or_default().contains("Ana"));

    // Ana's checks go to River, picked by name from the clinic's staff list.
    let session_menu = || Locator::XPath("//button[contains(., 'Session')]");
    staff
        .find(session_menu())
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    staff.click_on(".tile[aria-label^='Ana']").await;
    staff
        .wait_for(
            ".detail select[aria-label='Facilitator on the check rota'] option:nth-of-type(3)",
        )
        .await;
    // With a participant's detail open, the alarm list stays in sight.
    let alarms_visible = staff
        .execute(
            "const h = document.querySelector('.alarms h2').getBoundingClientRect();
             const top = document.elementFromPoint(h.x + h.width / 2, h.y + h.height / 2);
             return document.querySelector('.alarms').contains(top);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        alarms_visible,
        serde_json::Value::Bool(true),
        "the detail covers the alarm list"
    );
    staff
        .find(Locator::Css(
            ".detail select[aria-label='Facilitator on the check rota']",
        ))
        .await
        .unwrap()
        .select_by_label(FACILITATOR_2)
        .await
        .unwrap();
    let rota = staff
        .wait_for(".tile[aria-label^='Ana'] .rota")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(rota.trim(), format!("checks: {FACILITATOR_2}"));
    staff.click_on(".detail .x").await;

    // The records go home from the board as a CSV file.
    staff
        .find(session_menu())
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    staff
        .execute(
            "window.saved = [];
             HTMLAnchorElement.prototype.click = function () {
               const file = { name: this.download };
               window.saved.push(file);
               fetch(this.href).then(r => r.text()).then(t => { file.text = t; });
             };",
            vec![],
        )
        .await
        .unwrap();
    staff.click_on(".records button").await;
    let deadline = Instant::now() + PATIENCE;
    let saved = loop {
        let saved = staff
            .execute(
                "return window.saved[0] && window.saved[0].text ? window.saved[0] : null",
                vec![],
            )
            .await
            .unwrap();
        if !saved.is_null() || Instant::now() > deadline {
            break saved;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        saved["name"]
            .as_str()
            .unwrap_or_default()
            .ends_with("-records.csv"),
        "{saved}"
    );
    let csv = saved["text"].as_str().unwrap_or_default();
    // (The page reads the file as text, which drops its byte-order mark.)
    assert!(
        csv.starts_with("time_utc,seq,seat,participant,record,"),
        "{csv}"
    );
    assert!(
        csv.contains(",Ana,self report,,need support,,,participant\r\n"),
        "{csv}"
    );

    std::fs::create_dir_all("../target/screenshots").ok();
    std::fs::write(
        "../target/screenshots/board.png",
        staff.screenshot().await.unwrap(),
    )
    .ok();
    std::fs::write(
        "../target/screenshots/phone.png",
        ana.screenshot().await.unwrap(),
    )
    .ok();

    // Leaving the board closes its connection without an error in the page.
    staff
        .execute(
            "window.errors = []; window.addEventListener('error', e => window.errors.push(String(e.message)));",
            vec![],
        )
        .await
        .unwrap();
    staff.click_on("a.back").await;
    staff.wait_for(".sessions #title").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let errors = staff.execute("return window.errors", vec![]).await.unwrap();
    assert_eq!(errors, serde_json::json!([]), "errors in the page");
    for b in [staff, ana, ben] {
        b.quit().await;
    }
    server.stop().await;
}

/// A TCP relay the test can cut, to take a browser offline, or hold, so that
/// what the browser sends arrives and the server's answers do not. It keeps
/// what went through each connection, both ways, to read the WebSocket frames
/// afterwards.
struct Relay {
    addr: SocketAddr,
    blocked: Arc<AtomicBool>,
    held: tokio::sync::watch::Sender<bool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    traffic: Arc<Mutex<Vec<Traffic>>>,
}

/// The bytes that crossed one relayed connection.
#[derive(Default)]
struct Traffic {
    up: Vec<u8>,
    down: Vec<u8>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            blocked: Default::default(),
            held: tokio::sync::watch::Sender::new(false),
            links: Default::default(),
            traffic: Default::default(),
        };
        let (blocked, links, traffic) = (
            relay.blocked.clone(),
            relay.links.clone(),
            relay.traffic.clone(),
        );
        let held = relay.held.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if blocked.load(Ordering::SeqCst) {
                    continue; // dropped: the connection fails
                }
                let link = {
                    let mut all = traffic.lock().unwrap();
                    all.push(Traffic::default());
                    all.len() - 1
                };
                let (traffic, mut held) = (traffic.clone(), held.subscribe());
                let task = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut in_r, mut in_w) = inbound.into_split();
                    let (mut out_r, mut out_w) = outbound.into_split();
                    let up = async {
                        let mut buf = vec![0; 16 * 1024];
                        while let Ok(n @ 1..) = in_r.read(&mut buf).await {
                            traffic.lock().unwrap()[link]
                                .up
                                .extend_from_slice(&buf[..n]);
                            if out_w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = out_w.shutdown().await;
                    };
                    let down = async {
                        let mut buf = vec![0; 16 * 1024];
                        while let Ok(n @ 1..) = out_r.read(&mut buf).await {
                            // Held: the server's bytes wait here, and are
                            // lost if the relay is cut meanwhile.
                            let _ = held.wait_for(|held| !held).await;
                            traffic.lock().unwrap()[link]
                                .down
                                .extend_from_slice(&buf[..n]);
                            if in_w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = in_w.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
                links.lock().unwrap().push(task.abort_handle());
            }
        });
        relay
    }

    /// Every connection through the relay dies, and new ones fail.
    fn cut(&self) {
        self.blocked.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
        self.held.send_replace(false);
    }

    fn restore(&self) {
        self.blocked.store(false, Ordering::SeqCst);
    }

    /// What the server sends stops short of the browser (until `cut`).
    fn hold_answers(&self) {
        self.held.send_replace(true);
    }

    /// Every WebSocket message that went through, in order per connection:
    /// (what the browser sent, what it received).
    fn messages(&self) -> (Vec<ClientMessage>, Vec<ServerMessage>) {
        let (mut sent, mut received) = (Vec::new(), Vec::new());
        for link in self.traffic.lock().unwrap().iter() {
            let Some(up) = link.up.strip_prefix(b"GET /ws") else {
                continue; // the page and its files, not the live connection
            };
            for text in websocket_texts(after_http_head(up)) {
                sent.push(serde_json::from_str(&text).expect("the browser sends messages"));
            }
            for text in websocket_texts(after_http_head(&link.down)) {
                received.push(serde_json::from_str(&text).expect("the server sends messages"));
            }
        }
        (sent, received)
    }
}

fn after_http_head(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    &bytes[end + 4..]
}

/// The text messages in a stream of WebSocket frames (RFC 6455 section 5.2),
/// unmasking what a browser sent. A frame cut short by the relay ends it.
fn websocket_texts(mut bytes: &[u8]) -> Vec<String> {
    let mut texts = Vec::new();
    while bytes.len() >= 2 {
        let (opcode, masked) = (bytes[0] & 0x0f, bytes[1] & 0x80 != 0);
        assert_eq!(bytes[0] & 0x80, 0x80, "unfragmented messages");
        let (len, mut at) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => break,
            n => (n as usize, 2),
        };
        let mask = if masked {
            let Some(mask) = bytes.get(at..at + 4) else {
                break;
            };
            at += 4;
            mask.to_vec()
        } else {
            vec![0; 4]
        };
        let Some(payload) = bytes.get(at..at + len) else {
            break;
        };
        if opcode == 1 {
            let unmasked = payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m);
            texts.push(String::from_utf8(unmasked.collect()).expect("a text frame is UTF-8"));
        }
        bytes = &bytes[at + len..];
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_board_that_loses_its_connection_recovers_with_nothing_missing() {
    let server = TestServer::start_with(|c| c.web_dir = Some(dist())).await;
    let group = server.group("flaky wifi", 2).await;
    let (s, seat) = (group.session, group.seats[0]);
    let relay = Relay::start(server.addr).await;
    let base = format!("http://{}", relay.addr);
    let driver = Driver::start().await;
    let staff = driver.browser(1366, 768).await;
    staff.log_in(&base, FACILITATOR, PASSWORD).await;
    staff.goto(&format!("{base}/#/board/{s}")).await.unwrap();
    staff.wait_for("[data-testid=connection].status-live").await;

    relay.cut();
    staff
        .wait_for("[data-testid=connection].status-offline")
        .await;
    // While the board is away: readings and a message, recorded directly.
    let mut med =
        TestClient::connect(server.addr, &server.staff_token(MEDICAL).await, s, None).await;
    for measurement in [
        Measurement::Spo2 { value: 91.0 },
        Measurement::HeartRate { value: 101.0 },
    ] {
        med.ok(Command::RecordVital {
            seat,
            measurement,
            measured_at: None,
            device: None,
        })
        .await;
    }
    med.ok(Command::AddNote {
        seat,
        text: "written while the board was offline".into(),
    })
    .await;
    let last = server
        .app
        .hub
        .session(s)
        .await
        .unwrap()
        .unwrap()
        .snapshot(Viewer::Staff)
        .await
        .unwrap()
        .last_seq;

    relay.restore();
    staff.wait_for("[data-testid=connection].status-live").await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seq: String = staff
            .find(Locator::Css(".board"))
            .await
            .unwrap()
            .attr("data-seq")
            .await
            .unwrap()
            .unwrap_or_default();

        if seq.parse::<u64>().unwrap_or(0) >= last.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the board did not catch up: at {seq}, the session at {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tile = staff.wait_for(&format!(".tile[data-seat='{seat}']")).await;
    let text = tile.text().await.unwrap();
    assert!(
        text.contains("SpO2 91 %") && text.contains("HR 101 /min"),
        "{text}"
    );
    tile.click().await.unwrap();
    let timeline = staff.wait_for(".timeline").await.text().await.unwrap();
    assert_eq!(
        timeline
            .matches("written while the board was offline")
            .count(),
        1,
        "shown once: {timeline}"
    );
    assert_eq!(timeline.matches("SpO2 91 %").count(), 1, "{timeline}");
    staff.quit().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tap_whose_answer_is_lost_is_recorded_once_when_the_phone_retries_minutes_later() {
    // The server's clock stands still until moved, starting at the browser's now.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let clock = holdspace::clock::Clock::manual(protocol::Timestamp(wall.as_millis() as i64));
    let server = TestServer::start_on(clock.clone(), |c| c.web_dir = Some(dist())).await;
    let staff = server.staff(FACILITATOR).await;
    let s = staff.create_session("lost answer").await.unwrap().id;
    let seat = staff
        .add_seat(
            s,
            &protocol::rest::AddSeat {
                display_name: "Ana".into(),
                weight_kg: Some(61.0),
                location: None,
            },
        )
        .await
        .unwrap()
        .seat;
    let code = staff.join_code(s, seat).await.unwrap().code;
    let relay = Relay::start(server.addr).await;
    let base = format!("http://{}", relay.addr);
    let driver = Driver::start().await;
    let phone = driver.browser(360, 800).await;
    join(&phone, &base, &code).await;
    let token = server.staff_token(FACILITATOR).await;
    let arrival = full_log(server.addr, &token, s)
        .await
        .into_iter()
        .find(|e| matches!(e.body, EventBody::ArrivalRecorded { .. }))
        .expect("the arrival is recorded")
        .seq;

    // The tap reaches the server; its answer does not reach the phone.
    relay.hold_answers();
    phone.click_on(".big.help").await;
    let deadline = Instant::now() + PATIENCE;
    let support = loop {
        assert!(
            Instant::now() < deadline,
            "the tap never reached the server"
        );
        let log = full_log(server.addr, &token, s).await;
        if let Some(e) = log.into_iter().find(|e| {
            matches!(
                e.body,
                EventBody::SelfReported {
                    report: SelfReport::NeedSupport { .. },
                    ..
                }
            )
        }) {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = support.command.expect("from a command");
    relay.cut();
    phone.wait_for(".fb.saved").await;

    // Past the five minutes the session remembers answers for: the retry is
    // answered from the log.
    clock.advance(11 * 60 * 1000);
    relay.restore();
    phone.wait_for(".fb.sent").await;
    let deadline = Instant::now() + PATIENCE;
    let outbox = loop {
        let stored: serde_json::Value = phone
            .execute(
                "return Object.keys(localStorage).filter(k => k.startsWith('holdspace.outbox.')).map(k => localStorage.getItem(k)).join()",
                vec![],
            )
            .await
            .unwrap();
        let stored = stored.as_str().unwrap_or_default().to_owned();
        if stored == r#"{"pending":[]}"# || Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(outbox, r#"{"pending":[]}"#, "the answer settles the tap");

    let log = full_log(server.addr, &token, s).await;
    let recorded: Vec<_> = log.iter().filter(|e| e.command == Some(id)).collect();
    assert!(
        recorded
            .iter()
            .filter(|e| matches!(e.body, EventBody::SelfReported { .. }))
            .count()
            == 1,
        "the tap is recorded once: {recorded:?}"
    );

    // On the wire: the command once, then a retry saying what the phone had
    // seen when it first sent it, answered as already recorded.
    let (sent, received) = relay.messages();
    let mine: Vec<_> = sent
        .iter()
        .filter(|m| match m {
            ClientMessage::Command { id: i, .. } | ClientMessage::Retry { id: i, .. } => *i == id,
            _ => false,
        })
        .collect();
    let [
        ClientMessage::Command { .. },
        ClientMessage::Retry { after, .. },
    ] = mine[..]
    else {
        panic!("sent once, then retried: {mine:?}");
    };
    let after = after.expect("the retry says what the phone had seen");
    assert!(
        arrival <= after && after < support.seq,
        "seen {after}: after its arrival ({arrival}), before the tap ({})",
        support.seq
    );
    let answers: Vec<_> = received
        .iter()
        .filter(|m| matches!(m, ServerMessage::Accepted { id: i, .. } if *i == id))
        .collect();
    assert!(
        matches!(answers[..], [ServerMessage::Accepted { repeated: true, first, .. }] if *first == support.seq),
        "one answer reached the phone, from the log: {answers:?}"
    );

    // "I'm OK" tapped while the phone is offline is dated by the tap: the
    // phone says how long it waited, by its own clock.
    relay.cut();
    phone.click_on(".big.ok").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    relay.restore();
    let deadline = Instant::now() + PATIENCE;
    let ok = loop {
        assert!(Instant::now() < deadline, "the offline tap never arrived");
        let log = full_log(server.addr, &token, s).await;
        if let Some(e) = log.into_iter().find(|e| {
            matches!(
                e.body,
                EventBody::SelfReported {
                    report: SelfReport::Ok {},
                    ..
                }
            )
        }) {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let EventBody::SelfReported {
        made_at: Some(made_at),
        ..
    } = ok.body
    else {
        panic!("not dated by the tap: {ok:?}");
    };
    let waited = ok.at.ms_since(made_at);
    assert!(
        (3_000..PATIENCE.as_millis() as i64).contains(&waited),
        "waited {waited} ms offline"
    );
    phone.quit().await;
    server.stop().await;
}
