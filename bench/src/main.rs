//! `holdspace-bench load`: many group sessions at once over real WebSockets
//! on 127.0.0.1, against the real `holdspace` binary and two references (a
//! bare broadcast floor and Socket.IO 4 on Node), one after another in the
//! same run. See docs/benchmarks.md for the workload, commands and results.
#![allow(clippy::print_stdout, reason = "a command-line tool that reports")]

mod chart;
mod clients;
mod floor;
mod metrics;
mod rounds;
mod servers;

use clap::{Args, Parser, Subcommand};
use metrics::{cpu_seconds, memory_mib, percentile_ms};
use servers::Target;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "holdspace-bench",
    about = "Load benchmark of the Holdspace hub against two references"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the workload at each session count against each target.
    Load(Load),
    /// The floor reference server (started by `load`).
    #[command(hide = true)]
    FloorServer,
}

#[derive(Args)]
struct Load {
    /// Session counts to sweep (each session: 12 phones, 3 boards, 1 bridge).
    #[arg(long, value_delimiter = ',', default_value = "10,100,500,1000")]
    sessions: Vec<usize>,
    /// Servers to run against, in this order at each session count.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "holdspace,floor,socketio"
    )]
    targets: Vec<Target>,
    /// Seconds of load before measuring (connections settle, JIT warms).
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Holdspace only: one extra board in the first session stops reading
    /// this many seconds, 5 s into the measured window, then resumes (only
    /// stalls that end inside the window are made).
    #[arg(long)]
    stall: Option<u64>,
    /// With `--stall`: stall again every this many seconds, and compare the
    /// other boards' latency during the stalls (and 2 s after each) with the
    /// rest of the same window.
    #[arg(long, requires = "stall")]
    stall_every: Option<u64>,
    /// With `--stall-every`: a control run. The board keeps reading, and the
    /// same windows are compared, which shows how latency drifts without a stall.
    #[arg(long, requires = "stall_every")]
    stall_control: bool,
    /// Record the server's memory every this many seconds of the window.
    #[arg(long)]
    sample_every: Option<u64>,
    /// The holdspace binary [default: next to this one].
    #[arg(long)]
    server: Option<PathBuf>,
    /// Write results (JSON) and, for a sweep, the chart (SVG) here, named
    /// after `--name`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Name of the result files.
    #[arg(long, default_value = "sweep")]
    name: String,
    /// Run the whole sweep this many times, one round after another, and
    /// report each point by its median (see `rounds.rs`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
}

/// One run: one target at one session count.
#[derive(serde::Serialize)]
pub struct Outcome {
    target: Target,
    sessions: usize,
    /// Which round of the sweep (from 1).
    round: usize,
    sockets: u64,
    seconds: f64,
    events_in_per_s: f64,
    deliveries_out_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    timed_deliveries: usize,
    lost: u64,
    duplicated: u64,
    refused: u64,
    seq_gaps: u64,
    disconnects: u64,
    server_peak_rss_mib: f64,
    server_rss_mib: f64,
    server_cpu_s: f64,
    server_cpu_us_per_delivery: f64,
    loadgen_cpu_s: f64,
    memory_samples: Vec<(u64, f64)>,
    stall: Option<clients::StallReport>,
    stall_phases: Option<StallPhases>,
}

/// With `--stall-every`: the other boards' latency for messages sent during a
/// stall (or the catch-up after it) against the rest of the same window.
#[derive(serde::Serialize, Debug)]
struct StallPhases {
    /// A control run: the board did not stall (`--stall-control`).
    control: bool,
    during: Percentiles,
    outside: Percentiles,
    /// p99 in ms per stall cycle: (during, outside).
    cycles: Vec<(f64, f64)>,
}

#[derive(serde::Serialize, Debug)]
struct Percentiles {
    timed: usize,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
}

impl Percentiles {
    fn of(mut us: Vec<u32>) -> Percentiles {
        us.sort_unstable();
        Percentiles {
            timed: us.len(),
            p50_ms: percentile_ms(&us, 0.5),
            p99_ms: percentile_ms(&us, 0.99),
            p999_ms: percentile_ms(&us, 0.999),
        }
    }
}

impl StallPhases {
    fn of(stall: &clients::Stall, timed: Vec<(Duration, u32)>) -> StallPhases {
        let mut by_phase: std::collections::BTreeMap<(u32, bool), Vec<u32>> = Default::default();
        for (at, us) in timed {
            by_phase.entry(stall.phase(at)).or_default().push(us);
        }
        let cycles = by_phase.keys().map(|&(c, _)| c).max().unwrap_or(0);
        let p99 = |key| {
            by_phase
                .get(&key)
                .map_or(f64::NAN, |v: &Vec<u32>| Percentiles::of(v.clone()).p99_ms)
        };
        let cycles = (0..=cycles)
            .map(|c| (p99((c, true)), p99((c, false))))
            .collect();
        let all = |during: bool| {
            by_phase
                .iter()
                .filter(|((_, d), _)| *d == during)
                .flat_map(|(_, v)| v.iter().copied())
                .collect::<Vec<u32>>()
        };
        StallPhases {
            control: stall.control,
            during: Percentiles::of(all(true)),
            outside: Percentiles::of(all(false)),
            cycles,
        }
    }
}

impl Outcome {
    /// A run with nothing measured (tests fill in what they need).
    #[cfg(test)]
    fn empty(target: Target, sessions: usize) -> Outcome {
        Outcome {
            target,
            sessions,
            round: 1,
            sockets: 0,
            seconds: 0.0,
            events_in_per_s: 0.0,
            deliveries_out_per_s: 0.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            p999_ms: 0.0,
            max_ms: 0.0,
            timed_deliveries: 0,
            lost: 0,
            duplicated: 0,
            refused: 0,
            seq_gaps: 0,
            disconnects: 0,
            server_peak_rss_mib: 0.0,
            server_rss_mib: 0.0,
            server_cpu_s: 0.0,
            server_cpu_us_per_delivery: 0.0,
            loadgen_cpu_s: 0.0,
            memory_samples: Vec::new(),
            stall: None,
            stall_phases: None,
        }
    }

    /// The goal line: p99 within 25 ms, nothing lost or duplicated.
    fn holds(&self) -> bool {
        self.p99_ms <= 25.0
            && self.lost == 0
            && self.duplicated == 0
            && self.seq_gaps == 0
            && self.refused == 0
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Cmd::FloorServer => runtime.block_on(floor::serve()),
        Cmd::Load(load) => runtime.block_on(sweep(load)),
    }
}

async fn sweep(load: Load) -> anyhow::Result<()> {
    let server = match &load.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("holdspace"),
    };
    anyhow::ensure!(
        server.exists(),
        "{} not found: build it with cargo build --release -p holdspace",
        server.display()
    );
    println!(
        "machine: {} cores, {}; {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        first_line("/proc/cpuinfo", "model name").unwrap_or_default(),
        first_line("/proc/meminfo", "MemTotal").unwrap_or_default()
    );
    // Each point once, however often it is named (a second run of a point
    // in one round would pair with the same floor run).
    let (sessions_asked, targets_asked) =
        (first_of_each(&load.sessions), first_of_each(&load.targets));
    let points: Vec<(Target, usize)> = sessions_asked
        .iter()
        .flat_map(|&n| targets_asked.iter().map(move |&t| (t, n)))
        .collect();
    let mut outcomes = Vec::new();
    for round in 1..=usize::from(load.rounds) {
        if load.rounds > 1 {
            println!("round {round} of {}", load.rounds);
        }
        // Each round starts with another target, so that none always runs
        // first (or right after a given other) at each session count.
        let mut targets = targets_asked.clone();
        let turn = (round - 1) % targets.len().max(1);
        targets.rotate_left(turn);
        for &sessions in &sessions_asked {
            for &target in &targets {
                // A run that cannot be set up within 15 minutes (on top of its
                // warm-up, window, stragglers and stall), or fails, is reported
                // and the sweep goes on.
                let planned = load.warmup + load.seconds + 5 + 60 + load.stall.unwrap_or(0);
                let limit = Duration::from_secs(15 * 60 + planned);
                match tokio::time::timeout(limit, one(&load, target, sessions, &server)).await {
                    Ok(Ok(mut outcome)) => {
                        outcome.round = round;
                        print_row(&outcome);
                        outcomes.push(outcome);
                    }
                    Ok(Err(e)) => println!("| {} | {sessions} | failed: {e:#} |", target.label()),
                    Err(_) => println!(
                        "| {} | {sessions} | not set up within 15 min |",
                        target.label()
                    ),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    println!();
    let points = rounds::summarize(&outcomes, &points, usize::from(load.rounds));
    if load.rounds > 1 {
        rounds::print(&points);
        println!();
    }
    for &target in &targets_asked {
        let best = points
            .iter()
            .filter(|p| p.target == target && p.holds())
            .map(|p| p.sessions)
            .max();
        println!(
            "{}: largest session count holding p99 <= 25 ms with no loss{}: {best:?}",
            target.label(),
            if load.rounds > 1 {
                " in most rounds"
            } else {
                ""
            }
        );
    }
    if let Some(dir) = &load.out {
        std::fs::create_dir_all(dir)?;
        let json = dir.join(format!("{}.json", load.name));
        std::fs::write(&json, serde_json::to_string_pretty(&outcomes)?)?;
        println!("wrote {}", json.display());
        if load.rounds > 1 {
            let json = dir.join(format!("{}-medians.json", load.name));
            std::fs::write(&json, serde_json::to_string_pretty(&points)?)?;
            println!("wrote {}", json.display());
        }
        if load.sessions.len() > 1 {
            // Each point's median run.
            let shown: Vec<&Outcome> = points.iter().map(|p| &outcomes[p.representative]).collect();
            let svg = dir.join(format!("{}.svg", load.name));
            std::fs::write(&svg, chart::draw(&shown))?;
            println!("wrote {}", svg.display());
        }
    }
    Ok(())
}

/// The values in their order, each once.
fn first_of_each<T: PartialEq + Copy>(values: &[T]) -> Vec<T> {
    let mut once = Vec::new();
    for &v in values {
        if !once.contains(&v) {
            once.push(v);
        }
    }
    once
}

fn first_line(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

async fn one(
    load: &Load,
    target: Target,
    sessions: usize,
    holdspace: &std::path::Path,
) -> anyhow::Result<Outcome> {
    eprintln!("-- {} with {sessions} sessions: setting up", target.label());
    let (server, plan) = servers::start(target, holdspace, sessions).await?;
    let run = Arc::new(clients::Run::new(target, server.addr));
    let stall = load
        .stall
        .filter(|_| target == Target::Holdspace)
        .map(|s| clients::Stall {
            from: Duration::from_secs(load.warmup + 5),
            length: Duration::from_secs(s),
            every: load.stall_every.map(Duration::from_secs),
            until: Duration::from_secs(load.warmup + load.seconds),
            control: load.stall_control,
        });
    let tasks = clients::start(&run, &plan, stall).await?;
    if stall.is_some_and(|s| s.every.is_some()) {
        let _ = run.rec.timeline.set(std::time::Instant::now());
    }
    run.go.cancel();
    let sockets = run.sockets.load(Ordering::Relaxed);
    eprintln!("   {sockets} sockets open; warming up {} s", load.warmup);
    tokio::time::sleep(Duration::from_secs(load.warmup)).await;

    let (server_cpu0, own_cpu0) = (cpu_seconds(&server.pid), cpu_seconds("self"));
    run.rec.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut memory_samples = Vec::new();
    let every = load.sample_every.unwrap_or(load.seconds).max(1);
    while started.elapsed() < Duration::from_secs(load.seconds) {
        let left = Duration::from_secs(load.seconds).saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(every))).await;
        let (_, rss) = memory_mib(&server.pid);
        memory_samples.push((started.elapsed().as_secs(), rss));
        if load.sample_every.is_some() {
            eprintln!(
                "   {:>5} s  server RSS {rss:.1} MiB",
                started.elapsed().as_secs()
            );
        }
    }
    run.rec.measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let (server_cpu, own_cpu) = (
        cpu_seconds(&server.pid) - server_cpu0,
        cpu_seconds("self") - own_cpu0,
    );
    let (peak, rss) = memory_mib(&server.pid);
    // In flight at the end: a message not on every board within 5 s is lost.
    tokio::time::sleep(Duration::from_secs(5)).await;
    if stall.is_some() {
        wait_for_stalled_board().await;
    }
    let (latencies, lost) = run.rec.finish();
    run.stop.cancel();
    // Clients first, while the server still answers: a board that saw its
    // socket die would count it as a fault and might not file its report.
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    server.stop().await;
    let deliveries = run.rec.frames.load(Ordering::Relaxed) as f64;
    Ok(Outcome {
        target,
        sessions,
        round: 1,
        sockets,
        seconds,
        events_in_per_s: run.rec.sent.load(Ordering::Relaxed) as f64 / seconds,
        deliveries_out_per_s: deliveries / seconds,
        p50_ms: percentile_ms(&latencies, 0.5),
        p99_ms: percentile_ms(&latencies, 0.99),
        p999_ms: percentile_ms(&latencies, 0.999),
        max_ms: percentile_ms(&latencies, 1.0),
        timed_deliveries: latencies.len(),
        lost,
        duplicated: run.rec.duplicates.load(Ordering::Relaxed),
        refused: run.rec.refused.load(Ordering::Relaxed),
        seq_gaps: run.seq_gaps.load(Ordering::Relaxed),
        disconnects: run.disconnects.load(Ordering::Relaxed),
        server_peak_rss_mib: peak,
        server_rss_mib: rss,
        server_cpu_s: server_cpu,
        server_cpu_us_per_delivery: server_cpu * 1e6 / deliveries.max(1.0),
        loadgen_cpu_s: own_cpu,
        memory_samples,
        stall: clients::STALL.lock().expect("stall").take(),
        stall_phases: stall
            .filter(|s| s.every.is_some())
            .map(|s| StallPhases::of(&s, run.rec.timed())),
    })
}

/// The stalled board has resumed once it holds what the first board holds.
async fn wait_for_stalled_board() {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let want = clients::SESSION0_SEQ.load(Ordering::Relaxed);
        if clients::STALLED_SEQ.load(Ordering::Relaxed) >= want {
            return;
        }
    }
    eprintln!("   the stalled board did not catch up within 60 s");
}

fn print_row(o: &Outcome) {
    println!(
        "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
        o.target.label(),
        o.sessions,
        o.sockets,
        o.events_in_per_s,
        o.deliveries_out_per_s,
        o.p50_ms,
        o.p99_ms,
        o.p999_ms,
        o.max_ms,
        o.lost,
        o.duplicated,
        o.server_peak_rss_mib,
        o.server_cpu_s,
        o.server_cpu_us_per_delivery,
        o.loadgen_cpu_s,
    );
    if o.refused + o.seq_gaps + o.disconnects > 0 {
        println!(
            "  refused {}, seq gaps {}, disconnects {}",
            o.refused, o.seq_gaps, o.disconnects
        );
    }
    if let Some(stall) = &o.stall {
        println!("  stalled board: {stall:?}");
    }
    if let Some(phases) = &o.stall_phases {
        println!(
            "  others, sent during a stall or its catch-up: {:?}",
            phases.during
        );
        println!("  others, sent outside them: {:?}", phases.outside);
        println!("  p99 ms per cycle (during, outside): {:?}", phases.cycles);
    }
}
