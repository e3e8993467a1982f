//! Line charts of metric values by step, drawn as SVG: one line (a training
//! job's metric) or several overlaid (the same metric of versions being
//! compared), with labelled axes and a readout per point on hover; and an
//! endpoint's traffic split as a stacked bar ([`SplitBar`]).

use leptos::prelude::*;

/// One line of a chart: its label and its values in step order.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartLine {
    pub label: String,
    pub values: Vec<f64>,
}

/// A chart's value axis: rates (every value in 0..1) run from 0 to 1, so a
/// move from 0.863 to 0.877 looks as small as it is; other metrics get a
/// range rounded out to whole ticks. Returns (low, high, tick step).
pub fn value_axis(values: &[f64]) -> (f64, f64, f64) {
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    if !min.is_finite() {
        return (0.0, 1.0, 0.25);
    }
    if min >= 0.0 && max <= 1.0 {
        return (0.0, 1.0, 0.25);
    }
    let span = if max > min { max - min } else { max.abs().max(1.0) };
    let raw = span / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let low = (min / step).floor() * step;
    let mut high = (max / step).ceil() * step;
    if high <= low {
        high = low + step;
    }
    (low, high, step)
}

/// A tick label with as many decimals as the step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = (0..6).find(|d| ((step * 10f64.powi(*d)).fract()).abs() < 1e-9).unwrap_or(6) as usize;
    format!("{v:.decimals$}")
}

/// Metric `name` as an SVG line chart: each line's values against the step
/// (the order of the log lines they were read from). One line gets its last,
/// lowest and highest value in the caption; several get a legend, each line
/// in its own colour.
#[component]
pub fn LineChart(#[prop(into)] name: String, lines: Vec<ChartLine>) -> impl IntoView {
    let (w, h) = (360.0_f64, 190.0_f64);
    let (left, right, top, bottom) = (46.0_f64, 12.0_f64, 10.0_f64, 30.0_f64);
    let all: Vec<f64> = lines.iter().flat_map(|l| l.values.iter().copied()).collect();
    let (lo, hi, step) = value_axis(&all);
    let n = lines.iter().map(|l| l.values.len()).max().unwrap_or_default();
    let x = move |i: usize| left + (w - left - right) * i as f64 / (n.max(2) - 1) as f64;
    let y = move |v: f64| top + (h - top - bottom) * (1.0 - (v - lo) / (hi - lo));
    let ticks: Vec<f64> = (0..).map(|k| lo + step * f64::from(k)).take_while(|t| *t <= hi + step / 1000.0).collect();
    let mut steps: Vec<usize> = vec![0, n / 2, n.saturating_sub(1)];
    steps.dedup();
    // a dot per point to hover (thinned out on long runs; the line keeps every point)
    let every = n.div_ceil(120).max(1);
    let caption = match lines.as_slice() {
        [one] => {
            let last = one.values.last().copied().unwrap_or_default();
            let (min, max) =
                one.values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            let points = crate::kernel::format::count(one.values.len() as u64, "point", "points");
            view! { <span class="muted">{format!("last {last:.4} · min {min:.4} · max {max:.4} · {points}")}</span> }
                .into_any()
        }
        many => view! {
            <span class="legend">{many.iter().enumerate().map(|(k, l)| view! {
                <span class=format!("legend-item series-{}", k % 5)>
                    {l.label.clone()}{l.values.last().map(|v| format!(" {v:.4}"))}
                </span>
            }).collect_view()}</span>
        }
        .into_any(),
    };
    let label = name.clone();
    let count = lines.len();
    view! {
        <figure class="chart" data-metric=name.clone() data-lines=count>
            <figcaption><strong>{name.clone()}</strong>" "{caption}</figcaption>
            <svg viewBox=format!("0 0 {w} {h}") role="img" aria-label=format!("{name} by step")>
                <rect x=left y=top width=w - left - right height=h - top - bottom class="chart-bg"/>
                {ticks.iter().map(|t| {
                    let ty = y(*t);
                    view! {
                        <line x1=left x2=w - right y1=ty y2=ty class="chart-grid"/>
                        <text x=left - 6.0 y=ty + 4.0 class="chart-tick" text-anchor="end">{tick_label(*t, step)}</text>
                    }
                }).collect_view()}
                {steps.into_iter().map(|i| view! {
                    <text x=x(i) y=h - bottom + 14.0 class="chart-tick" text-anchor="middle">{(i + 1).to_string()}</text>
                }).collect_view()}
                <text x=left + (w - left - right) / 2.0 y=h - 2.0 class="chart-axis" text-anchor="middle">"step"</text>
                {lines.into_iter().enumerate().map(|(k, line)| {
                    let points: String = line.values.iter().enumerate()
                        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
                        .collect::<Vec<_>>()
                        .join(" ");
                    let m = line.values.len();
                    let who = if line.label == label { label.clone() } else { format!("{label} of {}", line.label) };
                    view! {
                        <g class=format!("series-{}", k % 5) data-line=line.label.clone()>
                            <polyline points=points class="chart-line"/>
                            {line.values.iter().enumerate().filter(|(i, _)| i % every == 0 || *i + 1 == m).map(|(i, v)| view! {
                                <circle cx=x(i) cy=y(*v) r="3" class="chart-dot"><title>{format!("{who} at step {}: {v}", i + 1)}</title></circle>
                            }).collect_view()}
                        </g>
                    }
                }).collect_view()}
            </svg>
        </figure>
    }
    .into_any()
}

/// Colours of the variants in the split chart, in order.
const COLOURS: [&str; 10] =
    ["#2f6fb3", "#e07b39", "#3a9d5d", "#b03a48", "#7a5cb8", "#c9a227", "#2a9d9d", "#8c6d46", "#d45d9e", "#5f6b7a"];

/// A traffic split as one stacked bar with its legend: each production
/// variant's share (0 to 1), coloured by its place in `names` (so two bars
/// of the same names match).
#[component]
pub fn SplitBar(names: Vec<String>, shares: Vec<f64>) -> impl IntoView {
    let mut x = 0.0;
    let parts: Vec<_> = names
        .into_iter()
        .zip(shares)
        .enumerate()
        .map(|(i, (name, share))| {
            let start = x;
            x += share * 100.0;
            (i, name, share, start)
        })
        .collect();
    view! {
        <svg class="split" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label="Traffic split">
            {parts.iter().map(|(i, name, share, start)| view! {
                <rect x=format!("{start:.3}") y="0" width=format!("{:.3}", share * 100.0) height="8" fill=COLOURS[i % COLOURS.len()]>
                    <title>{format!("{name}: {:.1} %", share * 100.0)}</title>
                </rect>
            }).collect_view()}
        </svg>
        <p class="split-legend">
            {parts.into_iter().map(|(i, name, share, _)| view! {
                <span class="legend-item" data-variant=name.clone()>
                    <svg viewBox="0 0 10 10" class="swatch"><rect width="10" height="10" fill=COLOURS[i % COLOURS.len()]/></svg>
                    {format!("{name} {:.1} %", share * 100.0)}
                </span>
            }).collect_view()}
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::{tick_label, value_axis};

    #[test]
    fn rates_are_drawn_from_zero_to_one() {
        assert_eq!(value_axis(&[0.863, 0.877]), (0.0, 1.0, 0.25));
    }

    #[test]
    fn other_metrics_get_a_range_of_whole_ticks() {
        let (lo, hi, step) = value_axis(&[0.69, 1.7, 3.2]);
        assert!(lo <= 0.69 && hi >= 3.2, "{lo}..{hi}");
        assert_eq!(step, 1.0);
        assert_eq!(tick_label(2.0, step), "2");
        assert_eq!(tick_label(0.25, 0.25), "0.25");
        assert_eq!(tick_label(0.5, 0.25), "0.50");
        assert_eq!(tick_label(-2.5, 2.5), "-2.5");
        let (lo, hi, _) = value_axis(&[120.0, 120.0]);
        assert!(lo < hi, "a flat series still has a range");
    }
}
