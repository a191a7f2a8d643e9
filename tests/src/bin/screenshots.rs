//! Takes the screenshots in `docs/` from a running demo:
//!
//! ```sh
//! cargo run --release --bin holdspace -- demo --web web-client/dist &   # then, ~170 s in:
//! cargo run -p holdspace-tests --bin screenshots -- http://127.0.0.1:7070 docs
//! ```
//!
//! The staff board of the newest open session at 1366×768, logged in as the
//! demo facilitator, and the participant page at 360 px wide, joined with a
//! fresh code for the first seat.

use anyhow::Context;
use holdspace::client::Api;
use holdspace::demo::DEMO_PASSWORD;
use holdspace_tests::chromium::Driver;
use protocol::SessionPhase;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:7070".into());
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| "docs".into()));
    let addr = base
        .trim_start_matches("http://")
        .parse()
        .context("the base URL is http://HOST:PORT")?;
    let staff = Api::new(addr).with_token(
        Api::new(addr)
            .login("facilitator", DEMO_PASSWORD)
            .await?
            .token
            .token,
    );
    let session = staff
        .sessions()
        .await?
        .into_iter()
        .find(|s| s.phase != SessionPhase::Closed)
        .context("no open session: is the demo running?")?;
    let state = staff.session(session.id).await?;
    let seat = state
        .seats
        .first()
        .context("the session has no seats yet")?
        .id;

    let driver = Driver::start().await;
    let board = driver.browser(1366, 768).await;
    board.log_in(&base, "facilitator", DEMO_PASSWORD).await;
    board
        .goto(&format!("{base}/#/board/{}", session.id))
        .await?;
    board.wait_for("[data-testid=connection].status-live").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    std::fs::write(out.join("board.png"), board.screenshot().await?)?;

    let code = staff.join_code(session.id, seat).await?.code;
    let phone = driver.browser(360, 760).await;
    phone.goto(&format!("{base}/#/join/{code}")).await?;
    phone.wait_for(".big.help").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(out.join("participant.png"), phone.screenshot().await?)?;
    board.quit().await;
    phone.quit().await;
    eprintln!(
        "wrote {}/board.png and {}/participant.png",
        out.display(),
        out.display()
    );
    Ok(())
}
