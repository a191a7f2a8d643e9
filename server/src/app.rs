//! The shared state of one running server, and `run`, which serves it on an
//! already-bound listener until `shutdown` is cancelled.

use crate::api;
use crate::attempts::FailedAttempts;
use crate::auth::{Keys, Principal};
use crate::clock::Clock;
use crate::config::Config;
use crate::hub::Hub;
use crate::store::{SqliteStore, StoreError};
use axum::serve::ListenerExt as _;
use protocol::Timestamp;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Password checks at once (see [`App::password_checks`]).
const PASSWORD_CHECKS: usize = 4;

/// Everything a request handler or connection may need.
pub struct App {
    /// Configuration.
    pub config: Config,
    /// The store (accounts, join codes, and the log behind the hub).
    pub store: Arc<SqliteStore>,
    /// Live sessions.
    pub hub: Hub,
    /// Token keys.
    pub keys: Keys,
    /// Now.
    pub clock: Clock,
    /// Bounds open WebSocket connections ([`Config::max_connections`]).
    pub connections: Arc<Semaphore>,
    /// Bounds password checks running at once: each takes ~19 MiB and a
    /// core for a moment, so an unauthenticated flood of logins must queue
    /// rather than exhaust memory and the blocking threads.
    pub password_checks: Semaphore,
    /// Failed logins per client address.
    pub login_attempts: FailedAttempts,
    /// Failed join codes per client address, apart from logins: guesses at
    /// codes from a shared address must not lock staff out.
    pub join_attempts: FailedAttempts,
    /// Cancelled to shut down.
    pub shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for their close frames.
    pub tracker: TaskTracker,
    ready: AtomicBool,
}

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Rebuilding sessions failed.
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    /// Serving failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

impl App {
    /// Opens the store, sets up keys, and rebuilds every open session.
    pub async fn start(
        config: Config,
        clock: Clock,
        shutdown: CancellationToken,
    ) -> Result<Arc<App>, ServerError> {
        let store = Arc::new(SqliteStore::open(&config.data_dir)?);
        let secret = match &config.jwt_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                let mut fresh = uuid::Uuid::new_v4().as_bytes().to_vec();
                fresh.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
                store.setting_or_init("jwt_secret", fresh).await?
            }
        };
        let hub = Hub::new(store.clone(), clock.clone(), shutdown.clone());
        let app = Arc::new(App {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            password_checks: Semaphore::new(PASSWORD_CHECKS),
            login_attempts: FailedAttempts::new("logins"),
            join_attempts: FailedAttempts::new("join codes"),
            keys: Keys::new(&secret),
            config,
            store,
            hub,
            clock,
            shutdown,
            tracker: TaskTracker::new(),
            ready: AtomicBool::new(false),
        });
        let recovered = app.hub.recover().await?;
        tracing::info!(recovered, "open sessions rebuilt from the log");
        app.ready.store(true, Ordering::SeqCst);
        Ok(app)
    }

    /// Whether start-up recovery finished and shutdown has not begun.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.shutdown.is_cancelled()
    }

    /// A token for `principal` with its role's lifetime.
    pub fn issue_token(&self, principal: &Principal) -> (String, Timestamp) {
        let ttl = match principal {
            Principal::Staff { .. } => self.config.staff_token_ttl,
            Principal::Participant { .. } => self.config.participant_token_ttl,
        };
        self.keys
            .issue(principal, self.clock.now(), ttl.as_millis() as i64)
    }

    /// Stops in order: (HTTP already stopped accepting) connections close with
    /// a reason, session tasks finish their batch, the store flushes.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
        }
        self.hub.stopped().await;
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        tracing::info!("stopped; the log is flushed");
    }
}

/// Serves the API, the WebSocket hub and the web app on `listener` (from
/// [`listen`]) until `shutdown` is cancelled, then shuts down gracefully.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let app = App::start(config, Clock::system(), shutdown.clone()).await?;
    serve(app, listener).await
}

/// Send buffer asked for on every connection (Linux doubles it). The
/// kernel's own default grows to 4 MiB for a client that stops reading:
/// ten thousand events, minutes of a session, that the server would not see
/// as a backlog. Bounded, the backlog lands in the connection's queue, and a
/// client too far behind is told to resume from the log
/// ([`Config::outbound_queue`]). Still ample: 256 KiB a round trip.
pub const SEND_BUFFER: u32 = 128 * 1024;

/// The listening socket for [`serve`]: connections inherit its bounded send
/// buffer ([`SEND_BUFFER`]).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restart may bind while old connections
    // linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(SEND_BUFFER)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves a started [`App`] (see [`run`]) on a listener from [`listen`].
pub async fn serve(app: Arc<App>, listener: TcpListener) -> Result<(), ServerError> {
    let router = api::router(app.clone());
    let stop = app.shutdown.clone();
    // Without TCP_NODELAY an event written right after another waits for the
    // client's delayed ACK (up to 40 ms): the board would see it late.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    // The client's address: failed logins and join codes are counted per address.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    app.stop().await;
    Ok(())
}
