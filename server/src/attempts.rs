//! Failed logins and join codes, counted per client address: guessing a
//! password or a 40-bit join code online must be slow. Only failures count,
//! so a room of phones behind one address joins as fast as it likes; only
//! someone who keeps getting codes wrong is made to wait.

use dashmap::DashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures an address may make in one [`WINDOW`] (a room of phones behind
/// one address mistyping a code now and then stays well below it).
pub const LIMIT: u32 = 20;
/// How long failures are remembered, counted from an address's first.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered before the expired ones are swept out.
const SWEEP_ABOVE: usize = 10_000;

/// Failures per client address in the current window.
#[derive(Default)]
pub struct FailedAttempts {
    by_address: DashMap<IpAddr, (u32, Instant)>,
}

impl FailedAttempts {
    /// `Err(wait)` while `address` has used up its failures: how long until
    /// its window ends.
    pub fn check(&self, address: IpAddr) -> Result<(), Duration> {
        match self.by_address.get(&address) {
            Some(entry) => {
                let (count, since) = *entry;
                let left = WINDOW.saturating_sub(since.elapsed());
                if count >= LIMIT && !left.is_zero() {
                    Err(left)
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// Counts a failed attempt from `address`.
    pub fn failed(&self, address: IpAddr) {
        if self.by_address.len() > SWEEP_ABOVE {
            self.by_address
                .retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let now = Instant::now();
        let mut entry = self.by_address.entry(address).or_insert((0, now));
        let (count, since) = &mut *entry;
        if since.elapsed() >= WINDOW {
            *count = 0;
            *since = now;
        }
        *count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_its_failures_and_others_do_not() {
        let attempts = FailedAttempts::default();
        let (guesser, other) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        for _ in 0..LIMIT {
            assert!(attempts.check(guesser).is_ok());
            attempts.failed(guesser);
        }
        let wait = attempts.check(guesser).unwrap_err();
        assert!(wait > WINDOW - Duration::from_secs(60) && wait <= WINDOW);
        assert!(attempts.check(other).is_ok(), "per address");
    }
}
