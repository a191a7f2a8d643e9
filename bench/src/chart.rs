//! The sweep as an SVG chart: p99 latency and server peak memory against the
//! number of sessions, one line per target. With several rounds, each point
//! is the run with the median p99 (the lower middle one for an even count),
//! and its memory is that run's. Plain SVG text, no dependency.

use crate::Outcome;
use crate::servers::Target;
use std::fmt::Write as _;

const W: f64 = 420.0;
const H: f64 = 260.0;
const PAD: f64 = 48.0;

fn colour(target: Target) -> &'static str {
    match target {
        Target::Holdspace => "#1b7f5b",
        Target::Floor => "#777777",
        Target::Socketio => "#c0502a",
    }
}

/// Two panels side by side; both axes logarithmic.
pub fn draw(outcomes: &[&Outcome]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        2.0 * W,
        H + 30.0
    );
    svg.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    panel(&mut svg, outcomes, 0.0, "p99 delivery latency (ms)", |o| {
        o.p99_ms
    });
    panel(&mut svg, outcomes, W, "server peak RSS (MiB)", |o| {
        o.server_peak_rss_mib
    });
    let mut x = PAD;
    for target in [Target::Holdspace, Target::Floor, Target::Socketio] {
        if outcomes.iter().any(|o| o.target == target) {
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{}" width="12" height="4" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                H + 14.0,
                colour(target),
                x + 16.0,
                H + 19.0,
                target.label()
            );
            x += 200.0;
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn panel(
    svg: &mut String,
    outcomes: &[&Outcome],
    left: f64,
    title: &str,
    value: impl Fn(&Outcome) -> f64,
) {
    let points: Vec<(f64, f64)> = outcomes
        .iter()
        .map(|o| (o.sessions as f64, value(o)))
        .filter(|(_, v)| v.is_finite() && *v > 0.0)
        .collect();
    if points.is_empty() {
        return;
    }
    let span = |f: fn(&(f64, f64)) -> f64| {
        let lo = points.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(f).fold(0.0, f64::max);
        (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        )
    };
    let ((x0, x1), (y0, y1)) = (span(|p| p.0), span(|p| p.1));
    let sx = |v: f64| left + PAD + (v.log10() - x0) / (x1 - x0) * (W - 1.5 * PAD);
    let sy = |v: f64| H - PAD + 10.0 - (v.log10() - y0) / (y1 - y0) * (H - 1.5 * PAD);
    let _ = write!(
        svg,
        r#"<text x="{}" y="16" font-weight="bold">{title}</text>"#,
        left + PAD
    );
    for d in (x0 as i32)..=(x1 as i32) {
        let x = sx(10f64.powi(d));
        let _ = write!(
            svg,
            r##"<line x1="{x}" x2="{x}" y1="{}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
            sy(10f64.powf(y0)),
            sy(10f64.powf(y1)),
            sy(10f64.powf(y0)) + 14.0,
            10f64.powi(d)
        );
    }
    for d in (y0 as i32)..=(y1 as i32) {
        let y = sy(10f64.powi(d));
        let _ = write!(
            svg,
            r##"<line x1="{}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            sx(10f64.powf(x0)),
            sx(10f64.powf(x1)),
            sx(10f64.powf(x0)) - 4.0,
            y + 4.0,
            10f64.powi(d)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">sessions (16 sockets each)</text>"#,
        left + W / 2.0,
        H - 4.0
    );
    for target in [Target::Holdspace, Target::Floor, Target::Socketio] {
        let line: Vec<String> = outcomes
            .iter()
            .filter(|o| o.target == target && value(o).is_finite() && value(o) > 0.0)
            .map(|o| format!("{:.1},{:.1}", sx(o.sessions as f64), sy(value(o))))
            .collect();
        if line.is_empty() {
            continue;
        }
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            colour(target),
            line.join(" ")
        );
        for point in &line {
            let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                svg,
                r#"<circle cx="{x}" cy="{y}" r="3" fill="{}"/>"#,
                colour(target)
            );
        }
    }
}
