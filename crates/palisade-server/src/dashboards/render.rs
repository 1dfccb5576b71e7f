//! Server-side rendering of widgets for the wall screen and the dashboard page: graphs as
//! inline SVG (no script, no external resource), alert lists and device health as HTML.
//! Everything interpolated is escaped by maud. Colours come from CSS classes, never from
//! `style` attributes, so the pages keep a strict Content Security Policy.

use super::data::{stats, Health, HealthRow, Line, WidgetData};
use super::model::{DashboardDoc, WidgetDoc};
use maud::{html, Markup};
use serde_json::Value;

/// Names of the line colours (CSS classes `c0`…`c7`).
pub const COLOR_NAMES: &[&str] = &[
    "cyan", "amber", "green", "orange", "violet", "pink", "lime", "blue",
];

const W: f64 = 800.0;
const H: f64 = 300.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 790.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 262.0;

/// A number for people: at most three significant digits and an SI suffix.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    let (x, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    let s = if s == "-0" { "0".to_string() } else { s };
    format!("{s}{suffix}")
}

/// Round axis bounds and the tick step for values in `[lo, hi]`.
pub fn nice_axis(lo: f64, hi: f64) -> (f64, f64, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else if lo == 0.0 {
        (0.0, 1.0)
    } else {
        (lo - lo.abs() * 0.1, hi + hi.abs() * 0.1)
    };
    let raw = (hi - lo) / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 2.5 {
            2.5
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

fn time_label(ms: i64, long: bool) -> String {
    let t = crate::wire::utc_text(ms);
    let s = if long { t.get(5..16) } else { t.get(11..16) };
    format!("{} UTC", s.unwrap_or_default())
}

/// A graph as SVG with its legend.
pub fn graph(start_ms: i64, end_ms: i64, lines: &[Line]) -> Markup {
    let span = (end_ms - start_ms).max(1) as f64;
    let all: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .collect();
    let (min, max, _) = stats(&all);
    let min = min.unwrap_or(0.0);
    let max = max.unwrap_or(1.0);
    let (lo, hi, step) = nice_axis(if min >= 0.0 { 0.0 } else { min }, max);
    let x = |t: i64| LEFT + (t - start_ms) as f64 / span * (RIGHT - LEFT);
    let y = |v: f64| BOTTOM - (v - lo) / (hi - lo) * (BOTTOM - TOP);
    let mut ticks = Vec::new();
    let mut v = lo;
    while v <= hi + step / 2.0 && ticks.len() < 12 {
        ticks.push(v);
        v += step;
    }
    let long = end_ms - start_ms > 86_400_000;
    let times: Vec<i64> = (0..=4)
        .map(|i| start_ms + (end_ms - start_ms) * i / 4)
        .collect();
    html! {
        svg.graph viewBox=(format!("0 0 {W} {H}")) role="img" aria-label="graph" {
            @for t in &ticks {
                line.gridline x1=(LEFT) x2=(RIGHT) y1=(format!("{:.1}", y(*t))) y2=(format!("{:.1}", y(*t))) {}
                text.ylab x=(LEFT - 8.0) y=(format!("{:.1}", y(*t) + 6.0)) text-anchor="end" { (fmt_num(*t)) }
            }
            line.axis x1=(LEFT) x2=(RIGHT) y1=(BOTTOM) y2=(BOTTOM) {}
            @for (i, t) in times.iter().enumerate() {
                text.xlab x=(format!("{:.1}", x(*t))) y=(H - 10.0)
                    text-anchor=(if i == 0 { "start" } else if i == 4 { "end" } else { "middle" })
                    data-ts=(t) data-fmt=(if long { "dhm" } else { "hm" }) { (time_label(*t, long)) }
            }
            @for (i, l) in lines.iter().enumerate() {
                @for run in runs(&l.points) {
                    @if run.len() == 1 {
                        @if let Some(p) = run.first() {
                            circle class=(format!("dot c{}", i % COLOR_NAMES.len())) cx=(format!("{:.1}", x(p.0))) cy=(format!("{:.1}", y(p.1))) r="3" {}
                        }
                    } @else {
                        polyline class=(format!("line c{}", i % COLOR_NAMES.len()))
                            points=(run.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1))).collect::<Vec<_>>().join(" ")) {}
                    }
                }
            }
        }
        ul.legend {
            @for (i, l) in lines.iter().enumerate() {
                li {
                    span class=(format!("swatch c{}", i % COLOR_NAMES.len())) {}
                    span.label { (l.label) }
                    @if let Some(last) = l.points.last() {
                        span.last { (fmt_num(last.1)) }
                    }
                }
            }
        }
    }
}

/// Splits a line where samples are missing (a gap of more than three usual intervals).
fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    if points.len() < 2 {
        return if points.is_empty() {
            vec![]
        } else {
            vec![points]
        };
    }
    let mut deltas: Vec<i64> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    deltas.sort_unstable();
    let usual = deltas
        .get(deltas.len() / 2)
        .copied()
        .unwrap_or(60_000)
        .max(1);
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..points.len() {
        if points[i].0 - points[i - 1].0 > usual * 3 {
            out.push(&points[start..i]);
            start = i;
        }
    }
    out.push(&points[start..]);
    out
}

fn severity_word(s: i64) -> &'static str {
    match s {
        4 => "critical",
        3 => "error",
        _ => "warning",
    }
}

fn since(now_ms: i64, start_epoch: i64) -> String {
    let mins = ((now_ms / 1000 - start_epoch).max(0)) / 60;
    if mins < 60 {
        format!("{mins} min")
    } else if mins < 48 * 60 {
        format!("{} h {} min", mins / 60, mins % 60)
    } else {
        format!("{} days", mins / (24 * 60))
    }
}

/// The alert list.
pub fn alerts(items: &[Value], total: usize, now_ms: i64) -> Markup {
    let s = |a: &Value, k: &str| {
        a.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    html! {
        table.alerts {
            thead { tr { th { "Severity" } th { "Device" } th { "Alert" } th { "Value" } th { "Since" } } }
            tbody {
                @for a in items {
                    @let sev = a.get("severity").and_then(Value::as_i64).unwrap_or(2);
                    tr class=(format!("sev{sev}")) {
                        td { span class=(format!("badge sev{sev}")) { (severity_word(sev)) } @if a.get("acked").and_then(Value::as_bool).unwrap_or(false) { " " span.acked { "acked" } } }
                        td.device { (s(a, "monitorObjectName")) }
                        td { (s(a, "resourceTemplateName")) " · " (s(a, "instanceName")) " · " (s(a, "dataPointName")) }
                        td.value { (s(a, "alertValue")) " " span.muted { (s(a, "threshold")) } }
                        td { (since(now_ms, a.get("startEpoch").and_then(Value::as_i64).unwrap_or(0))) }
                    }
                }
            }
        }
        @if total > items.len() {
            p.muted { (total - items.len()) " more not shown" }
        }
    }
}

/// The device health tiles.
pub fn health(items: &[HealthRow]) -> Markup {
    html! {
        ul.health {
            @for r in items {
                @let class = match r.health {
                    Health::Alerting(s) => format!("tile alerting sev{s}"),
                    Health::NoData => "tile nodata".to_string(),
                    Health::Ok => "tile ok".to_string(),
                };
                li class=(class) data-status=(r.health.as_str()) {
                    span.name { (r.name) }
                    span.state {
                        @match r.health {
                            Health::Alerting(_) => {
                                @if r.counts[2] > 0 { (r.counts[2]) " critical " }
                                @if r.counts[1] > 0 { (r.counts[1]) " error " }
                                @if r.counts[0] > 0 { (r.counts[0]) " warning" }
                            }
                            Health::NoData => { "no data" }
                            Health::Ok => { "ok" }
                        }
                    }
                }
            }
        }
    }
}

/// One widget's box.
pub fn widget(w: &WidgetDoc, span: i64, data: &WidgetData, now_ms: i64) -> Markup {
    let kind = match data {
        WidgetData::Graph { .. } => "graph",
        WidgetData::Alerts { .. } => "alerts",
        WidgetData::Health { .. } => "health",
    };
    html! {
        section class=(format!("widget span{span} w-{kind}")) id=(format!("widget-{}", w.id)) data-widget-id=(w.id) data-widget-type=(w.spec.lm_type()) {
            h2 { (w.name) }
            @match data {
                WidgetData::Graph { start_ms, end_ms, lines, message } => {
                    @if !lines.is_empty() { (graph(*start_ms, *end_ms, lines)) }
                    @if let Some(m) = message { p.note { (m) } }
                }
                WidgetData::Alerts { items, total, message } => {
                    @if !items.is_empty() { (alerts(items, *total, now_ms)) }
                    @if let Some(m) = message { p.note.good { (m) } }
                }
                WidgetData::Health { items, message } => {
                    @if !items.is_empty() { (health(items)) }
                    @if let Some(m) = message { p.note { (m) } }
                }
            }
        }
    }
}

/// The grid of a dashboard's widgets.
pub fn grid(d: &DashboardDoc, widgets: &[(WidgetDoc, i64, WidgetData)], now_ms: i64) -> Markup {
    html! {
        div.grid data-dashboard=(d.id) {
            @if widgets.is_empty() {
                p.note { "This dashboard has no widgets yet." }
            }
            @for (w, span, data) in widgets {
                (widget(w, *span, data, now_ms))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_axes() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(123_456.0), "123k");
        assert_eq!(fmt_num(2_500_000_000.0), "2.5G");
        assert_eq!(fmt_num(f64::NAN), "–");
        assert_eq!(nice_axis(0.0, 87.0), (0.0, 100.0, 25.0));
        let (lo, hi, step) = nice_axis(5.0, 5.0);
        assert!(lo <= 5.0 && hi >= 5.0 && step > 0.0);
    }

    #[test]
    fn gaps_split_lines() {
        let p = vec![
            (0, 1.0),
            (60_000, 2.0),
            (120_000, 3.0),
            (900_000, 4.0),
            (960_000, 5.0),
        ];
        let r = runs(&p);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].len(), 3);
        assert_eq!(r[1].len(), 2);
    }

    #[test]
    fn graph_escapes_labels() {
        let lines = vec![Line {
            label: "<script>x</script>".into(),
            points: vec![(0, 1.0), (60_000, 2.0)],
        }];
        let s = graph(0, 120_000, &lines).into_string();
        assert!(!s.contains("<script>"));
        assert!(s.contains("&lt;script&gt;"));
        assert!(s.contains("<polyline"));
    }
}
