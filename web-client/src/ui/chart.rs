//! Small SVG charts: a tile's sparkline and the whole-session vitals chart.

use crate::history::Series;
use leptos::prelude::*;
use protocol::Timestamp;

/// Points of `series` between `from` and `to` scaled into a `w`×`h` box for
/// values `lo..hi`, as an SVG `points` attribute.
fn points(
    series: &Series,
    from: Timestamp,
    to: Timestamp,
    lo: f64,
    hi: f64,
    w: f64,
    h: f64,
) -> String {
    let mut out = String::new();
    for (x, y) in scaled(series, from, to, lo, hi, w, h) {
        out.push_str(&format!("{x:.1},{y:.1} "));
    }
    out
}

/// The readings of `series` from `from`, as (x, y) in a `w`×`h` box.
fn scaled(
    series: &Series,
    from: Timestamp,
    to: Timestamp,
    lo: f64,
    hi: f64,
    w: f64,
    h: f64,
) -> impl Iterator<Item = (f64, f64)> + '_ {
    let span = (to.ms_since(from)).max(1) as f64;
    series.since(from).map(move |(t, v)| {
        (
            t.ms_since(from) as f64 / span * w,
            h - ((v.clamp(lo, hi) - lo) / (hi - lo)) * h,
        )
    })
}

/// The last minutes of a vital, in a box 100×24.
#[component]
pub fn Sparkline(
    series: Signal<Series>,
    now: Signal<Timestamp>,
    lo: f64,
    hi: f64,
    label: &'static str,
) -> impl IntoView {
    let line = move || {
        let to = now.get();
        series.with(|s| points(s, to.plus_ms(-10 * 60_000), to, lo, hi, 100.0, 24.0))
    };
    view! {
        <svg class="spark" viewBox="0 0 100 24" preserveAspectRatio="none" role="img" aria-label=label>
            <polyline points=line fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>
        </svg>
    }
}

/// A vital over the whole session with its value range labelled.
#[component]
pub fn SessionChart(
    series: Signal<Series>,
    from: Signal<Timestamp>,
    now: Signal<Timestamp>,
    lo: f64,
    hi: f64,
    title: &'static str,
    class: &'static str,
) -> impl IntoView {
    let line = move || series.with(|s| points(s, from.get(), now.get(), lo, hi, 600.0, 120.0));
    // The latest reading as a dot: a single one (the first BP) is no line.
    let last =
        move || series.with(|s| scaled(s, from.get(), now.get(), lo, hi, 600.0, 120.0).last());
    view! {
        <figure class=format!("chart {class}")>
            <figcaption>{title} <small>{format!(" ({lo}–{hi})")}</small></figcaption>
            <svg viewBox="0 0 600 120" preserveAspectRatio="none" role="img" aria-label=title>
                <line x1="0" y1="60" x2="600" y2="60" class="grid"/>
                <polyline points=line fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>
                {move || last().map(|(x, y)| view! { <circle cx=format!("{x:.1}") cy=format!("{y:.1}") r="4" fill="currentColor"/> })}
            </svg>
        </figure>
    }
}
