//! A sweep run several times over, summarized point by point. This machine's
//! speed drifts: the same build's p99 at 700–1000 sessions differs by 2x
//! between runs minutes apart, and its CPU per delivery by a fifth. So one
//! run per point decides nothing near a goal line. With `--rounds K` the whole
//! sweep runs K times, round after round, and each point is reported by its
//! median.

use crate::Outcome;
use crate::servers::Target;

/// One target at one session count, over every round.
#[derive(serde::Serialize, Debug)]
pub struct Point {
    pub target: Target,
    pub sessions: usize,
    /// Rounds planned.
    pub rounds: usize,
    /// Rounds whose run finished (one that failed or was not set up in time
    /// leaves no outcome, and counts as not held).
    pub ran: usize,
    /// Rounds whose run held p99 ≤ 25 ms with nothing lost.
    pub held: usize,
    pub p99_ms_median: f64,
    pub p99_ms_min: f64,
    pub p99_ms_max: f64,
    pub cpu_us_per_delivery_median: f64,
    /// The median, over rounds, of this target's CPU per delivery divided by
    /// the floor's at the same session count in the same round. A pair of runs
    /// a minute apart shares the machine's speed; runs a round apart may not.
    /// None for the floor itself, or when the floor was not run.
    pub cpu_vs_floor_median: Option<f64>,
    pub peak_rss_mib_median: f64,
    /// The run with the median p99 (for an even number of rounds, the lower
    /// of the two middle ones): a real run, which the chart draws.
    #[serde(skip)]
    pub representative: usize,
}

impl Point {
    /// Held in most rounds planned: with three, in at least two.
    pub fn holds(&self) -> bool {
        2 * self.held > self.rounds
    }
}

/// The median of some values (the mean of the middle two for an even count),
/// leaving out any that is not a number (a /proc read that failed).
fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Each (target, session count) of `points`, in that order, over `rounds`
/// rounds; a point no round finished is left out.
pub fn summarize(outcomes: &[Outcome], points: &[(Target, usize)], rounds: usize) -> Vec<Point> {
    points
        .iter()
        .filter_map(|&(target, sessions)| {
            let runs: Vec<usize> = (0..outcomes.len())
                .filter(|&i| outcomes[i].target == target && outcomes[i].sessions == sessions)
                .collect();
            if runs.is_empty() {
                return None;
            }
            let values = |f: fn(&Outcome) -> f64| -> Vec<f64> {
                runs.iter().map(|&i| f(&outcomes[i])).collect()
            };
            let mut by_p99 = runs.clone();
            by_p99.sort_by(|&a, &b| outcomes[a].p99_ms.total_cmp(&outcomes[b].p99_ms));
            let p99 = values(|o| o.p99_ms);
            let ratios: Vec<f64> = runs
                .iter()
                .filter(|_| target != Target::Floor)
                .filter_map(|&i| {
                    let o = &outcomes[i];
                    let floor = outcomes.iter().find(|f| {
                        f.target == Target::Floor
                            && f.sessions == sessions
                            && f.round == o.round
                            && f.timed_deliveries > 0
                    })?;
                    Some(o.server_cpu_us_per_delivery / floor.server_cpu_us_per_delivery)
                })
                // A /proc read that failed gives NaN; it must not be a median.
                .filter(|r| r.is_finite() && *r > 0.0)
                .collect();
            Some(Point {
                target,
                sessions,
                rounds,
                ran: runs.len(),
                held: runs.iter().filter(|&&i| outcomes[i].holds()).count(),
                p99_ms_median: median(p99.clone()),
                p99_ms_min: p99.iter().copied().fold(f64::INFINITY, f64::min),
                p99_ms_max: p99.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                cpu_us_per_delivery_median: median(values(|o| o.server_cpu_us_per_delivery)),
                cpu_vs_floor_median: (!ratios.is_empty()).then(|| median(ratios)),
                peak_rss_mib_median: median(values(|o| o.server_peak_rss_mib)),
                representative: by_p99[(by_p99.len() - 1) / 2],
            })
        })
        .collect()
}

/// The table printed after a sweep of several rounds.
pub fn print(points: &[Point]) {
    println!(
        "| target | sessions | held (rounds) | p99 ms, median (min–max) | CPU µs per delivery, median | ÷ floor, median of same-round pairs | peak RSS MiB, median |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|");
    for p in points {
        println!(
            "| {} | {} | {} of {}{} | {:.1} ({:.1}–{:.1}) | {:.1} | {} | {:.0} |",
            p.target.label(),
            p.sessions,
            p.held,
            p.rounds,
            if p.ran < p.rounds {
                format!(" ({} ran)", p.ran)
            } else {
                String::new()
            },
            p.p99_ms_median,
            p.p99_ms_min,
            p.p99_ms_max,
            p.cpu_us_per_delivery_median,
            p.cpu_vs_floor_median
                .map_or("–".to_string(), |r| format!("{r:.2}")),
            p.peak_rss_mib_median,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: Target, sessions: usize, round: usize, p99_ms: f64, cpu_us: f64) -> Outcome {
        Outcome {
            round,
            p99_ms,
            timed_deliveries: 1000,
            server_cpu_us_per_delivery: cpu_us,
            server_peak_rss_mib: 100.0 * round as f64,
            ..Outcome::empty(target, sessions)
        }
    }

    #[test]
    fn each_point_is_its_median_and_ratios_pair_runs_of_one_round() {
        use Target::{Floor, Holdspace};
        // The machine is fast in round 2 and slow in round 3: Holdspace's
        // CPU moves with the floor's.
        let outcomes = vec![
            run(Holdspace, 700, 1, 12.0, 20.0),
            run(Floor, 700, 1, 5.0, 10.0),
            run(Holdspace, 700, 2, 30.0, 18.0),
            run(Floor, 700, 2, 4.0, 6.0),
            run(Holdspace, 700, 3, 20.0, 30.0),
            run(Floor, 700, 3, 6.0, 12.0),
        ];
        let points = summarize(&outcomes, &[(Holdspace, 700), (Floor, 700)], 3);
        assert_eq!(points.len(), 2);
        let h = &points[0];
        assert_eq!(
            (h.target, h.sessions, h.rounds, h.ran),
            (Holdspace, 700, 3, 3)
        );
        assert_eq!(h.held, 2, "30 ms is over the line");
        assert!(h.holds());
        assert_eq!(h.p99_ms_median, 20.0);
        assert_eq!((h.p99_ms_min, h.p99_ms_max), (12.0, 30.0));
        assert_eq!(h.cpu_us_per_delivery_median, 20.0);
        // Same-round pairs 2.0, 3.0, 2.5: median 2.5. The ratio of the two
        // medians would be 20 / 10 = 2.0.
        assert_eq!(h.cpu_vs_floor_median, Some(2.5));
        assert_eq!(h.representative, 4, "round 3 has the median p99");
        assert_eq!(h.peak_rss_mib_median, 200.0);
        let f = &points[1];
        assert_eq!(f.cpu_vs_floor_median, None);
        assert_eq!(f.representative, 1);
    }

    #[test]
    fn a_ratio_is_taken_only_against_a_measured_floor_of_its_own_round() {
        use Target::{Floor, Socketio};
        let mut unmeasured = run(Floor, 500, 3, 5.0, f64::NAN);
        unmeasured.timed_deliveries = 0;
        let outcomes = vec![
            run(Socketio, 500, 1, 9.0, 30.0),
            run(Floor, 500, 1, 5.0, 10.0),
            // Round 2's Socket.IO run failed: no row, so no pair.
            run(Floor, 500, 2, 5.0, 20.0),
            run(Socketio, 500, 3, 9.0, 30.0),
            unmeasured,
            // 700 was asked for and never ran.
        ];
        let asked = [(Socketio, 500), (Floor, 500), (Socketio, 700)];
        let points = summarize(&outcomes, &asked, 3);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].cpu_vs_floor_median, Some(3.0));
        assert_eq!((points[0].ran, points[0].held), (2, 2));
        assert!(points[0].holds());
        assert_eq!(
            points[1].cpu_us_per_delivery_median, 15.0,
            "the mean of the middle two; NaN is no value"
        );
    }

    #[test]
    fn a_round_that_failed_counts_as_not_held() {
        let outcomes = vec![run(Target::Holdspace, 1000, 2, 20.0, 15.0)];
        let p = &summarize(&outcomes, &[(Target::Holdspace, 1000)], 3)[0];
        assert_eq!((p.ran, p.held), (1, 1));
        assert!(!p.holds(), "held in one round of three");
    }

    #[test]
    fn one_round_in_two_is_not_most() {
        let outcomes = vec![
            run(Target::Holdspace, 1000, 1, 20.0, 15.0),
            run(Target::Holdspace, 1000, 2, 80.0, 15.0),
        ];
        let p = &summarize(&outcomes, &[(Target::Holdspace, 1000)], 2)[0];
        assert_eq!(p.held, 1);
        assert!(!p.holds());
        assert_eq!(p.p99_ms_median, 50.0);
        assert_eq!(p.representative, 0, "the lower of the middle two");
    }
}
