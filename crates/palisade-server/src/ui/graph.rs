//! Line graphs as inline SVG, rendered on the server from time-series samples: no script,
//! no external library, and allowed by the page's CSP (no `style` attributes: lines take
//! their colour from CSS classes and their dash pattern from an attribute).
//!
//! Each series has its own colour *and* dash pattern, so lines stay distinguishable without
//! colour; the figure has a title and a text description, and a table under it gives each
//! series' last, minimum, average and maximum.

use super::components::num;
use maud::{html, Markup};
use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// Dash patterns, one per series (cycled with the colours).
const DASHES: [&str; 6] = ["", "8 4", "2 3", "10 3 2 3", "4 4", "1 3"];

/// One line.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Its name in the legend.
    pub label: String,
    /// (epoch ms, value), in time order.
    pub points: Vec<(i64, f64)>,
}

/// A graph over a time range.
#[derive(Debug, Clone)]
pub struct Graph<'a> {
    /// Element id prefix (unique in the page).
    pub id: &'a str,
    /// Caption.
    pub title: &'a str,
    /// Range start, epoch ms.
    pub start_ms: i64,
    /// Range end, epoch ms.
    pub end_ms: i64,
    /// Step between points (a gap larger than 2.5 steps breaks the line).
    pub step_ms: i64,
    /// The lines.
    pub series: &'a [Series],
}

/// A "nice" step (1, 2 or 5 × 10ⁿ) for about `count` intervals over `span`.
fn nice_step(span: f64, count: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / count;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let n = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * mag
}

/// The y range and its ticks.
fn y_axis(series: &[Series]) -> (f64, f64, Vec<f64>) {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0, vec![0.0, 0.5, 1.0]);
    }
    lo = lo.min(0.0);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let step = nice_step(hi - lo, 5.0);
    let lo = (lo / step).floor() * step;
    let hi = (hi / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut t = lo;
    while t <= hi + step * 1e-9 && ticks.len() < 12 {
        ticks.push(t);
        t += step;
    }
    (lo, hi, ticks)
}

/// Time ticks: a round step giving 4 to 8 labels.
fn x_ticks(start: i64, end: i64) -> (Vec<i64>, bool) {
    const MIN: i64 = 60_000;
    const STEPS: [i64; 14] = [
        MIN,
        5 * MIN,
        10 * MIN,
        15 * MIN,
        30 * MIN,
        60 * MIN,
        120 * MIN,
        180 * MIN,
        360 * MIN,
        720 * MIN,
        1440 * MIN,
        2 * 1440 * MIN,
        7 * 1440 * MIN,
        14 * 1440 * MIN,
    ];
    let span = (end - start).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 7)
        .unwrap_or(30 * 1440 * MIN);
    let first = (start + step - 1).div_euclid(step) * step;
    let ticks = (0..16)
        .map(|i| first + i * step)
        .take_while(|t| *t <= end)
        .collect();
    (ticks, span > 2 * 1440 * MIN)
}

fn tick_label(ms: i64, days: bool) -> String {
    let text = crate::wire::utc_text(ms);
    if days {
        text.get(5..10).unwrap_or_default().to_string()
    } else {
        text.get(11..16).unwrap_or_default().to_string()
    }
}

struct Stats {
    last: f64,
    min: f64,
    max: f64,
    avg: f64,
}

fn stats(s: &Series) -> Option<Stats> {
    let vals: Vec<f64> = s
        .points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .collect();
    let last = *vals.last()?;
    let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let avg = vals.iter().sum::<f64>() / vals.len() as f64;
    Some(Stats {
        last,
        min,
        max,
        avg,
    })
}

/// The path of one series (`M x y L x y …`, a new `M` after a gap).
fn path(s: &Series, g: &Graph<'_>, lo: f64, hi: f64) -> String {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let span = (g.end_ms - g.start_ms).max(1) as f64;
    let gap = (g.step_ms.max(1) as f64 * 2.5) as i64;
    let mut d = String::with_capacity(s.points.len() * 14);
    let mut prev: Option<i64> = None;
    for (t, v) in &s.points {
        if !v.is_finite() || *t < g.start_ms || *t > g.end_ms {
            prev = None;
            continue;
        }
        let x = LEFT + (*t - g.start_ms) as f64 / span * pw;
        let y = TOP + ph - (v - lo) / (hi - lo) * ph;
        let cmd = match prev {
            Some(p) if t - p <= gap => 'L',
            _ => 'M',
        };
        let _ = write!(d, "{cmd}{x:.1} {y:.1}");
        prev = Some(*t);
    }
    d
}

/// The graph: a figure with the SVG and its legend table.
pub fn render(g: &Graph<'_>) -> Markup {
    let (lo, hi, yt) = y_axis(g.series);
    let (xt, days) = x_ticks(g.start_ms, g.end_ms);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let span = (g.end_ms - g.start_ms).max(1) as f64;
    let has_data = g
        .series
        .iter()
        .any(|s| s.points.iter().any(|p| p.1.is_finite()));
    let desc = if has_data {
        g.series
            .iter()
            .filter_map(|s| {
                stats(s).map(|st| {
                    format!(
                        "{}: last {}, minimum {}, maximum {}",
                        s.label,
                        num(st.last),
                        num(st.min),
                        num(st.max)
                    )
                })
            })
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        "No data in this range.".to_string()
    };
    let title_id = format!("{}-t", g.id);
    let desc_id = format!("{}-d", g.id);
    let ylab = |v: f64| num(v);
    html! {
        figure.graph id=(g.id) {
            figcaption { (g.title) }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (W) " " (H)} role="img"
                aria-labelledby={(title_id) " " (desc_id)} {
                title id=(title_id) { (g.title) }
                desc id=(desc_id) { (desc) }
                @for t in &yt {
                    @let y = TOP + ph - (t - lo) / (hi - lo) * ph;
                    line.grid x1=(LEFT) x2=(W - RIGHT) y1=(format!("{y:.1}")) y2=(format!("{y:.1}")) {}
                    text x=(LEFT - 6.0) y=(format!("{:.1}", y + 4.0)) text-anchor="end" { (ylab(*t)) }
                }
                @for t in &xt {
                    @let x = LEFT + (*t - g.start_ms) as f64 / span * pw;
                    line.grid x1=(format!("{x:.1}")) x2=(format!("{x:.1}")) y1=(TOP) y2=(TOP + ph) {}
                    text x=(format!("{x:.1}")) y=(H - 8.0) text-anchor="middle" { (tick_label(*t, days)) }
                }
                line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(TOP + ph) {}
                line.axis x1=(LEFT) x2=(W - RIGHT) y1=(TOP + ph) y2=(TOP + ph) {}
                @if has_data {
                    @for (i, s) in g.series.iter().enumerate() {
                        @let dash = DASHES[i % DASHES.len()];
                        path class={"line s" (i % 6)} d=(path(s, g, lo, hi))
                            stroke-dasharray=[(!dash.is_empty()).then_some(dash)] {}
                    }
                } @else {
                    text.empty x=(LEFT + pw / 2.0) y=(TOP + ph / 2.0) text-anchor="middle" { "No data in this range" }
                }
            }
            @if has_data {
                table.legend {
                    thead { tr {
                        th scope="col" { "Series" }
                        th.num scope="col" { "Last" }
                        th.num scope="col" { "Min" }
                        th.num scope="col" { "Avg" }
                        th.num scope="col" { "Max" }
                    } }
                    tbody {
                        @for (i, s) in g.series.iter().enumerate() {
                            @let dash = DASHES[i % DASHES.len()];
                            tr {
                                th scope="row" {
                                    svg viewBox="0 0 30 10" aria-hidden="true" focusable="false" {
                                        line class={"line s" (i % 6)} x1="1" x2="29" y1="5" y2="5"
                                            stroke-dasharray=[(!dash.is_empty()).then_some(dash)] {}
                                    }
                                    " " (s.label)
                                }
                                @match stats(s) {
                                    Some(st) => {
                                        td.num { (num(st.last)) }
                                        td.num { (num(st.min)) }
                                        td.num { (num(st.avg)) }
                                        td.num { (num(st.max)) }
                                    }
                                    None => { td.num colspan="4" { "no data" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_of(series: &[Series]) -> String {
        render(&Graph {
            id: "g1",
            title: "CPU <busy>",
            start_ms: 0,
            end_ms: 3_600_000,
            step_ms: 60_000,
            series,
        })
        .into_string()
    }

    #[test]
    fn lines_break_at_gaps_and_escape_labels() {
        let s = Series {
            label: "usage<script>".into(),
            points: vec![
                (0, 1.0),
                (60_000, 2.0),
                (120_000, 3.0),
                (1_200_000, 4.0),
                (1_260_000, 5.0),
            ],
        };
        let svg = graph_of(std::slice::from_ref(&s));
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("usage&lt;script&gt;"));
        assert!(svg.contains("CPU &lt;busy&gt;"));
        let d = path(
            &s,
            &Graph {
                id: "x",
                title: "",
                start_ms: 0,
                end_ms: 3_600_000,
                step_ms: 60_000,
                series: &[],
            },
            0.0,
            5.0,
        );
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 3, "{d}");
        assert!(!svg.contains("style="), "no style attributes under the CSP");
    }

    #[test]
    fn empty_graph_says_so() {
        let svg = graph_of(&[Series {
            label: "x".into(),
            points: vec![],
        }]);
        assert!(svg.contains("No data in this range"));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(100.0, 4.0), 50.0);
        assert_eq!(nice_step(7.0, 4.0), 2.0);
        let (ticks, days) = x_ticks(0, 3_600_000);
        assert!(!days);
        assert_eq!(ticks.len(), 7);
        let (_, days) = x_ticks(0, 7 * 86_400_000);
        assert!(days);
        let (lo, hi, t) = y_axis(&[Series {
            label: String::new(),
            points: vec![(0, 12.0), (1, 95.0)],
        }]);
        assert_eq!((lo, hi), (0.0, 100.0));
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
    }
}
