//! Failed attempts (logins, join codes) counted per client address: guessing
//! a password or a 40-bit join code online must be slow. Only failures
//! count, so a room of phones behind one address joins as fast as it likes;
//! only an address that keeps getting it wrong is made to wait.

use dashmap::DashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Failures an address may make in one [`WINDOW`] (a room of phones behind
/// one address mistyping a code now and then stays well below it).
pub const LIMIT: u32 = 20;
/// How long failures are remembered, counted from an address's first.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered before the expired ones are swept out.
const SWEEP_ABOVE: usize = 10_000;

/// One address's failures in its current window.
struct Window {
    /// Failures, and attempts still running (each counts until it succeeds).
    count: u32,
    since: Instant,
    /// The limit was reported in the log for this window.
    reported: bool,
}

/// Failures per client address, for one kind of attempt.
pub struct FailedAttempts {
    what: &'static str,
    by_address: DashMap<IpAddr, Window>,
    sweep_above: AtomicUsize,
}

/// An attempt under way. It counts as a failure from the start, so a burst of
/// parallel guesses cannot pass the limit; dropped without [`Attempt::failed`]
/// (it succeeded, or the server could not tell) it is taken back.
pub struct Attempt<'a> {
    attempts: &'a FailedAttempts,
    key: IpAddr,
    failed: bool,
}

impl Attempt<'_> {
    /// It failed: it stays counted.
    pub fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.failed
            && let Some(mut window) = self.attempts.by_address.get_mut(&self.key)
        {
            window.count = window.count.saturating_sub(1);
        }
    }
}

/// The key for `address`: IPv6 by its /64 (one household or phone network
/// has a whole /64 to rotate through), IPv4 (also when mapped into IPv6) as is.
fn key_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

impl FailedAttempts {
    /// Counts failures of one kind (`what`, for the log: "logins").
    pub fn new(what: &'static str) -> FailedAttempts {
        FailedAttempts {
            what,
            by_address: DashMap::new(),
            sweep_above: AtomicUsize::new(SWEEP_ABOVE),
        }
    }

    /// Starts an attempt from `address`, or `Err(wait)` while the address has
    /// used up its failures: how long until its window ends.
    pub fn begin(&self, address: IpAddr) -> Result<Attempt<'_>, Duration> {
        let remembered = self.by_address.len();
        if remembered > self.sweep_above.load(Ordering::Relaxed) {
            // Sweeps grow apart as the map does, so a flood of addresses
            // costs a sweep now and then, not one per attempt.
            self.by_address.retain(|_, w| w.since.elapsed() < WINDOW);
            let left = self.by_address.len();
            self.sweep_above
                .store(SWEEP_ABOVE.max(2 * left), Ordering::Relaxed);
        }
        let key = key_of(address);
        let mut window = self.by_address.entry(key).or_insert_with(|| Window {
            count: 0,
            since: Instant::now(),
            reported: false,
        });
        if window.since.elapsed() >= WINDOW {
            *window = Window {
                count: 0,
                since: Instant::now(),
                reported: false,
            };
        }
        if window.count >= LIMIT {
            if !window.reported {
                window.reported = true;
                tracing::warn!(
                    attempts = self.what,
                    "an address reached the limit of failed attempts; it waits"
                );
            }
            return Err(WINDOW.saturating_sub(window.since.elapsed()));
        }
        window.count += 1;
        Ok(Attempt {
            attempts: self,
            key,
            failed: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_its_failures_and_others_do_not() {
        let attempts = FailedAttempts::new("tests");
        let (guesser, other) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        for _ in 0..3 * LIMIT {
            drop(attempts.begin(guesser).unwrap());
        }
        for _ in 0..LIMIT {
            attempts.begin(guesser).unwrap().failed();
        }
        let wait = attempts.begin(guesser).err().expect("waits");
        assert!(wait > WINDOW - Duration::from_secs(60) && wait <= WINDOW);
        assert!(attempts.begin(other).is_ok(), "per address");
    }

    #[test]
    fn attempts_under_way_count_so_a_burst_cannot_pass_the_limit() {
        let attempts = FailedAttempts::new("tests");
        let address = [10, 0, 0, 1].into();
        let running: Vec<_> = (0..LIMIT)
            .map(|_| attempts.begin(address).unwrap())
            .collect();
        assert!(attempts.begin(address).is_err());
        drop(running);
        assert!(
            attempts.begin(address).is_ok(),
            "taken back once they succeed"
        );
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_by_its_own_address() {
        let attempts = FailedAttempts::new("tests");
        for n in 0..LIMIT {
            let rotating: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
            attempts.begin(rotating).unwrap().failed();
        }
        assert!(
            attempts
                .begin("2001:db8:1:2:ffff::1".parse().unwrap())
                .is_err()
        );
        assert!(attempts.begin("2001:db8:1:3::1".parse().unwrap()).is_ok());
        for _ in 0..LIMIT {
            attempts
                .begin("::ffff:10.0.0.1".parse().unwrap())
                .unwrap()
                .failed();
        }
        assert!(
            attempts.begin([10, 0, 0, 1].into()).is_err(),
            "mapped is the IPv4 address"
        );
        assert!(attempts.begin("::ffff:10.0.0.2".parse().unwrap()).is_ok());
    }
}
