//! Real headless Chromium through chromedriver (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`; `scripts/test` installs both).

use fantoccini::{Client, ClientBuilder, Locator};
use std::ops::Deref;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// How long a page element may take to appear.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A chromedriver on a free loopback port; stopped when dropped.
pub struct Driver {
    port: u16,
    _child: Child,
}

/// A browser profile directory, removed when dropped.
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One browser (its own profile: separate storage, like a separate device).
pub struct Browser {
    client: Client,
    _profile: Profile,
}

impl Deref for Browser {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Driver {
    /// Starts chromedriver (without `--allowed-ips`, it listens on loopback only).
    pub async fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("/usr/bin/chromedriver (scripts/test installs it)");
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver {
            port,
            _child: child,
        }
    }

    /// A fresh headless browser with a window of `width`×`height`.
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        let profile = Profile(
            std::env::temp_dir().join(format!("holdspace-chrome-{}", uuid::Uuid::new_v4())),
        );
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            "--lang=en-US".into(),
            format!("--user-data-dir={}", profile.0.display()),
            format!("--window-size={width},{height}"),
        ];
        let mut options = serde_json::json!({ "binary": "/usr/bin/chromium", "args": args });
        if width < 500 {
            // A desktop window cannot be narrower than 500 px: emulate a phone's viewport.
            options["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true }
            });
        }
        let caps = serde_json::json!({ "browserName": "chrome", "goog:chromeOptions": options });
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.as_object().expect("an object").clone())
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session");
        Browser {
            client,
            _profile: profile,
        }
    }
}

impl Browser {
    /// Waits for an element to appear.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.wait()
            .at_most(PATIENCE)
            .every(Duration::from_millis(25))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
    }

    /// Clicks an element once it appears.
    pub async fn click_on(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Types into an element once it appears.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.wait_for(css).await.send_keys(text).await.unwrap();
    }

    /// Everything the page shows, as text.
    pub async fn page_text(&self) -> String {
        self.find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Logs in as staff on the app at `base` and waits for the session list.
    pub async fn log_in(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/#/sessions")).await.unwrap();
        self.type_into("#username", user).await;
        self.type_into("#password", password).await;
        self.click_on(".login button[type=submit]").await;
        self.wait_for(".sessions #title").await;
    }

    /// Closes the browser.
    pub async fn quit(self) {
        let _ = self.client.close().await;
    }
}
