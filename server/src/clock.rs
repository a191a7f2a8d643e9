//! The server's one source of "now". Wall-clock time is anchored once and then
//! advanced by tokio's monotonic clock, so that tests which pause and advance
//! tokio time move every timestamp the server records with it.

use protocol::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Wall time = the anchor + monotonic time elapsed since the anchor.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall_at_anchor: Timestamp,
    anchor: Instant,
}

impl Clock {
    /// Anchors to the system's wall clock now.
    pub fn system() -> Clock {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock::starting_at(Timestamp(ms))
    }

    /// Anchors to a chosen wall time (tests).
    pub fn starting_at(wall: Timestamp) -> Clock {
        Clock {
            wall_at_anchor: wall,
            anchor: Instant::now(),
        }
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        let elapsed = Instant::now().saturating_duration_since(self.anchor);
        self.wall_at_anchor.plus_ms(elapsed.as_millis() as i64)
    }

    /// The monotonic instant at which wall time `at` is reached (for timers
    /// such as token expiry).
    pub fn instant_at(&self, at: Timestamp) -> Instant {
        let ms = at.ms_since(self.now());
        Instant::now() + std::time::Duration::from_millis(ms.max(0) as u64)
    }
}
