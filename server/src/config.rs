//! Server configuration, parsed once (by the command line in `cli`) and passed down.

use std::path::PathBuf;
use std::time::Duration;

/// Everything the server needs to run, with the defaults a clinic gets.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the SQLite file lives.
    pub data_dir: PathBuf,
    /// The built browser app (`web-client/dist`), served at `/`; `None`:
    /// a page saying how to build it.
    pub web_dir: Option<PathBuf>,
    /// Token signing secret; `None`: a random secret kept in the database, so
    /// tokens survive a restart.
    pub jwt_secret: Option<String>,
    /// How long a staff login lasts (a long clinic day).
    pub staff_token_ttl: Duration,
    /// How long a participant token lasts (longer than any session).
    pub participant_token_ttl: Duration,
    /// How long a join code can be exchanged.
    pub join_code_ttl: Duration,
    /// Messages queued for one connection before it counts as fallen behind and
    /// is closed (it then resumes from its last seq). Must exceed what one
    /// session batch can queue at once (`hub::MAX_BATCH_BURST`), or a healthy
    /// client would be closed by a single burst; 1024 is also about a minute
    /// of a 12-participant session at 1 Hz for a staff board.
    pub outbound_queue: usize,
    /// Open WebSocket connections at most; more are refused with 503.
    pub max_connections: usize,
    /// Largest client frame answered with a `frame_too_large` error; the
    /// connection stays up. No valid message comes near it.
    pub frame_limit: usize,
    /// Largest frame read at all; beyond it the connection is closed (1009).
    pub hard_frame_limit: usize,
    /// Sustained messages per second per connection (a device bridge relaying
    /// pulse-oximetry for a group stays well below).
    pub rate_per_second: f64,
    /// Burst allowance on top of the sustained rate.
    pub rate_burst: f64,
    /// Time a new connection has to send its hello.
    pub hello_timeout: Duration,
    /// How long the close frame (with its reason) may take to reach a client
    /// that stopped reading; after that the socket is simply dropped.
    pub close_grace: Duration,
    /// Interval of WebSocket pings (keeps idle connections through proxies).
    pub ping_interval: Duration,
    /// Events an export reads from the log at a time (a four-hour session
    /// of 1 Hz oximetry is streamed, never held whole).
    pub export_chunk: usize,
}

impl Config {
    /// The defaults, storing data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            web_dir: None,
            jwt_secret: None,
            staff_token_ttl: Duration::from_secs(12 * 3600),
            participant_token_ttl: Duration::from_secs(8 * 3600),
            join_code_ttl: Duration::from_secs(12 * 3600),
            outbound_queue: 1024,
            max_connections: 20_000,
            frame_limit: 64 * 1024,
            hard_frame_limit: 1024 * 1024,
            rate_per_second: 50.0,
            rate_burst: 100.0,
            hello_timeout: Duration::from_secs(10),
            close_grace: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            export_chunk: 2_000,
        }
    }
}
