//! The server's one source of "now" and of waiting for a moment. The system
//! clock in production; a manual clock that tests move forward, so alarm
//! confirmation delays, escalations and token expiry can be tested at their
//! exact boundaries without waiting.

use protocol::Timestamp;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// A clock: cheap to clone, shared by every part of one server.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Source>);

#[derive(Debug)]
enum Source {
    /// Wall time read once, then advanced by the monotonic clock, so a jump of
    /// the system clock does not reorder events.
    System {
        wall_at_anchor: Timestamp,
        anchor: std::time::Instant,
    },
    /// Moves only when told to.
    Manual(watch::Sender<Timestamp>),
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock(Arc::new(Source::System {
            wall_at_anchor: Timestamp(ms),
            anchor: std::time::Instant::now(),
        }))
    }

    /// A clock standing at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: Timestamp) -> Clock {
        Clock(Arc::new(Source::Manual(watch::Sender::new(start))))
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        match &*self.0 {
            Source::System {
                wall_at_anchor,
                anchor,
            } => wall_at_anchor.plus_ms(anchor.elapsed().as_millis() as i64),
            Source::Manual(now) => *now.borrow(),
        }
    }

    /// Moves a manual clock forward by `ms`, waking whoever waits for a moment
    /// now reached. Does nothing to the system clock.
    pub fn advance(&self, ms: i64) {
        if let Source::Manual(now) = &*self.0 {
            now.send_modify(|t| *t = t.plus_ms(ms));
        }
    }

    /// Resolves once `at` is reached.
    pub async fn sleep_until(&self, at: Timestamp) {
        match &*self.0 {
            Source::System { .. } => loop {
                let left = at.ms_since(self.now());
                if left <= 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(left as u64)).await;
            },
            Source::Manual(now) => {
                let mut rx = now.subscribe();
                while *rx.borrow_and_update() < at {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
