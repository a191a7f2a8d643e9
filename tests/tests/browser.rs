//! The browser app in real headless Chromium (driven by chromedriver), served
//! by the real server: a staff member logs in and opens a session, two
//! participants join on their own "phones", one asks for support, the board
//! shows it, staff acknowledge, the participant sees it and the other
//! participant sees none of it; and a staff board that loses its connection
//! recovers with nothing missing.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/test`
//! installs them) and the built app (`cargo run -p xtask -- build-web`).

use crate::support::*;
use fantoccini::Locator;
use holdspace_tests::chromium::{Browser, Driver};
use protocol::{Command, Measurement, Viewer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    for b in [staff, ana, ben] {
        b.quit().await;
    }
    server.stop().await;
}

/// A TCP relay the test can cut, to take a browser offline.
struct Relay {
    addr: SocketAddr,
    blocked: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            blocked: Default::default(),
            links: Default::default(),
        };
        let (blocked, links) = (relay.blocked.clone(), relay.links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if blocked.load(Ordering::SeqCst) {
                    continue; // dropped: the connection fails
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links.lock().unwrap().push(link.abort_handle());
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
    }

    fn restore(&self) {
        self.blocked.store(false, Ordering::SeqCst);
    }
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
