//! What a run measures: send→receive latency per message and board,
//! deliveries, losses, duplicates; the server's peak memory and CPU time from
//! /proc; the load generator's own CPU time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const SHARDS: usize = 64;

struct Flight {
    sent: Instant,
    boards: u8,
    measured: bool,
}

#[derive(Default)]
struct Shard {
    flights: HashMap<u64, Flight>,
    latencies_us: Vec<u32>,
    /// With `Recorder::timeline`: (ms after the start when sent, latency µs).
    timed: Vec<(u32, u32)>,
}

/// Shared by every client task of a run.
pub struct Recorder {
    shards: Vec<Mutex<Shard>>,
    boards: u8,
    /// Messages sent inside the measured window count.
    pub measuring: AtomicBool,
    /// Messages sent in the window.
    pub sent: AtomicU64,
    /// Event frames received by any client in the window (all fan-out).
    pub frames: AtomicU64,
    /// Board deliveries seen twice.
    pub duplicates: AtomicU64,
    /// Commands the server refused.
    pub refused: AtomicU64,
    /// Set at the start of the load to also keep when each timed message
    /// was sent (to compare parts of one window).
    pub timeline: OnceLock<Instant>,
}

impl Recorder {
    /// Each message is expected on `boards` boards.
    pub fn new(boards: u8) -> Recorder {
        Recorder {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            boards,
            measuring: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            timeline: OnceLock::new(),
        }
    }

    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(id as usize) % SHARDS].lock().expect("shard")
    }

    /// A message leaves its sender.
    pub fn sent(&self, id: u64) {
        let measured = self.measuring.load(Ordering::Relaxed);
        if measured {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        self.shard(id).flights.insert(
            id,
            Flight {
                sent: Instant::now(),
                boards: 0,
                measured,
            },
        );
    }

    /// Board `board` received message `id`. `once`: the message makes one
    /// frame per board, so a second is a duplicate (Holdspace events are
    /// checked by seq instead: one command may record several events).
    pub fn delivered(&self, id: u64, board: u8, once: bool) {
        let now = Instant::now();
        let mut shard = self.shard(id);
        let Some(flight) = shard.flights.get_mut(&id) else {
            return;
        };
        let bit = 1u8 << board;
        if flight.boards & bit != 0 {
            if once {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        flight.boards |= bit;
        let (measured, sent, done) = (
            flight.measured,
            flight.sent,
            flight.boards.count_ones() == u32::from(self.boards),
        );
        if done {
            shard.flights.remove(&id);
        }
        if measured {
            let us = now
                .duration_since(sent)
                .as_micros()
                .min(u128::from(u32::MAX)) as u32;
            shard.latencies_us.push(us);
            if let Some(start) = self.timeline.get() {
                let at = sent.saturating_duration_since(*start).as_millis() as u32;
                shard.timed.push((at, us));
            }
        }
    }

    /// The server refused message `id` (it is not expected anywhere).
    pub fn refused(&self, id: u64) {
        if self.shard(id).flights.remove(&id).is_some() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A frame with an event reached some client.
    pub fn frame(&self) {
        if self.measuring.load(Ordering::Relaxed) {
            self.frames.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Latencies (µs, sorted) and board deliveries still missing for
    /// measured messages.
    pub fn finish(&self) -> (Vec<u32>, u64) {
        let mut all = Vec::new();
        let mut lost = 0u64;
        for shard in &self.shards {
            let shard = shard.lock().expect("shard");
            all.extend_from_slice(&shard.latencies_us);
            for f in shard.flights.values().filter(|f| f.measured) {
                lost += u64::from(self.boards) - u64::from(f.boards.count_ones() as u8);
            }
        }
        all.sort_unstable();
        (all, lost)
    }

    /// With a timeline: every timed latency (µs) with when it was sent.
    pub fn timed(&self) -> Vec<(Duration, u32)> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().expect("shard");
            all.extend(
                shard
                    .timed
                    .iter()
                    .map(|&(at, us)| (Duration::from_millis(at.into()), us)),
            );
        }
        all
    }
}

/// A percentile of sorted values, in ms.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[i]) / 1000.0
}

/// CPU seconds (user + system) of a process so far.
pub fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may contain spaces).
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// (peak resident memory, current resident memory) of a process, MiB.
pub fn memory_mib(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}
