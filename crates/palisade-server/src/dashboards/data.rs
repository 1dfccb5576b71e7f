//! What a widget shows, computed for one viewer: graph lines (a device datasource instance's
//! datapoints, or a PromQL expression), active alerts, or the health of a group's devices.
//!
//! Data is limited by the viewer's `host_group` privileges (for a widget token, its owner's):
//! devices and alerts the viewer may not read are left out, and a PromQL widget needs
//! `host_group:*:read` like `/api/v1/query`. A widget that cannot be computed carries a
//! message instead of failing the whole dashboard.

use super::model::{timescale_ms, WidgetDoc, WidgetSpec};
use super::ops::Viewer;
use crate::error::ApiError;
use crate::monitor::alerts::render_alert;
use crate::monitor::estate::{DeviceView, Estate};
use crate::AppState;
use palisade_core::privilege::{allows, Level, Need};
use palisade_store::alerting::{AlertDoc, ALERT_ACTIVE};
use palisade_store::objects::{self, ObjectQuery};
use palisade_tsdb::{Aggregation, Selector};
use serde_json::{json, Value};
use std::time::Duration;

/// Points per graph line.
const POINTS: i64 = 120;
/// Lines per graph.
const MAX_LINES: usize = 12;
/// Rows of an alert list.
const MAX_ALERTS: usize = 50;
/// Devices of a health widget.
const MAX_DEVICES: usize = 200;
/// A device without a sample for this long has no data.
const NO_DATA_AFTER_MS: i64 = 10 * 60_000;

/// One line of a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Its legend.
    pub label: String,
    /// (epoch ms, value), ascending.
    pub points: Vec<(i64, f64)>,
}

/// A device's state in a health widget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// An active threshold alert; the highest severity (2 warn, 3 error, 4 critical).
    Alerting(u8),
    /// A no-data alert, or no sample for ten minutes.
    NoData,
    /// Neither.
    Ok,
}

impl Health {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Alerting(_) => "alerting",
            Health::NoData => "nodata",
            Health::Ok => "ok",
        }
    }
    fn rank(self) -> u8 {
        match self {
            Health::Alerting(s) => 10 - s,
            Health::NoData => 10,
            Health::Ok => 11,
        }
    }
}

/// One device of a health widget.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthRow {
    /// Device id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Status.
    pub health: Health,
    /// Active alerts by severity: warn, error, critical.
    pub counts: [u32; 3],
}

/// What a widget shows.
#[derive(Debug, Clone)]
pub enum WidgetData {
    /// A graph.
    Graph {
        /// Range start, epoch ms.
        start_ms: i64,
        /// Range end, epoch ms.
        end_ms: i64,
        /// Lines.
        lines: Vec<Line>,
        /// Why there are no (or not all) lines.
        message: Option<String>,
    },
    /// Active alerts, most severe first.
    Alerts {
        /// Alerts the viewer may read that match the filters (LogicMonitor's shape).
        items: Vec<Value>,
        /// How many matched (before the row limit).
        total: usize,
        /// Why there are none.
        message: Option<String>,
    },
    /// Devices with their status.
    Health {
        /// Devices, worst first.
        items: Vec<HealthRow>,
        /// Why there are none.
        message: Option<String>,
    },
}

fn may_read_device(viewer: &Viewer, d: &DeviceView) -> bool {
    allows(&viewer.data_privileges, &Need::HostGroup(None, Level::Read))
        || d.all_groups.iter().any(|g| {
            allows(
                &viewer.data_privileges,
                &Need::HostGroup(Some(*g), Level::Read),
            )
        })
}

/// Computes a widget's data at `now_ms`.
pub async fn compute(
    state: &AppState,
    viewer: &Viewer,
    estate: &Estate,
    w: &WidgetDoc,
    now_ms: i64,
    alerts: &[AlertDoc],
) -> WidgetData {
    let range = timescale_ms(&w.timescale).unwrap_or(3_600_000);
    let (start_ms, end_ms) = (now_ms - range, now_ms);
    let step = (range / POINTS).max(15_000);
    match &w.spec {
        WidgetSpec::Graph {
            device_id,
            datasource,
            instance,
            datapoints,
        } => {
            let graph = |lines, message| WidgetData::Graph {
                start_ms,
                end_ms,
                lines,
                message,
            };
            let Some(device) = estate
                .devices
                .get(device_id)
                .filter(|d| may_read_device(viewer, d))
            else {
                return graph(vec![], Some("the device is not available".into()));
            };
            let tsdb = match state.tsdb() {
                Ok(t) => t,
                Err(e) => return graph(vec![], Some(e.to_string())),
            };
            let selector = Selector::all()
                .eq("device", device.doc.display_name.clone())
                .eq("datasource", datasource.clone())
                .eq("instance", instance.clone());
            match tsdb
                .query_range(&selector, start_ms, end_ms, step, Aggregation::Avg)
                .await
            {
                Ok(series) => {
                    let mut lines: Vec<Line> = series
                        .into_iter()
                        .filter_map(|(k, s)| {
                            let dp = k.label("datapoint")?.to_string();
                            (datapoints.is_empty() || datapoints.contains(&dp)).then(|| Line {
                                label: dp,
                                points: s
                                    .iter()
                                    .filter(|x| x.value.is_finite())
                                    .map(|x| (x.ts_ms, x.value))
                                    .collect(),
                            })
                        })
                        .collect();
                    lines.sort_by(|a, b| a.label.cmp(&b.label));
                    let message = lines
                        .is_empty()
                        .then(|| "no data in this time range".into());
                    graph(limit(lines), message)
                }
                Err(e) => graph(vec![], Some(format!("query failed: {e}"))),
            }
        }
        WidgetSpec::Promql { query } => {
            let graph = |lines, message| WidgetData::Graph {
                start_ms,
                end_ms,
                lines,
                message,
            };
            if !allows(&viewer.data_privileges, &Need::HostGroup(None, Level::Read)) {
                return graph(
                    vec![],
                    Some("a PromQL widget needs host_group:*:read (series of every device are visible)".into()),
                );
            }
            let tsdb = match state.tsdb() {
                Ok(t) => t,
                Err(e) => return graph(vec![], Some(e.to_string())),
            };
            let expr = match palisade_promql::parser::parse(query) {
                Ok(e) => e,
                Err(e) => return graph(vec![], Some(format!("invalid PromQL: {e}"))),
            };
            let opts = palisade_promql::eval::EvalOptions {
                max_samples: 5_000_000,
                max_steps: 2_000,
                timeout: Some(Duration::from_secs(5)),
                ..Default::default()
            };
            match palisade_promql::eval::range_with(
                tsdb.as_ref(),
                &expr,
                start_ms,
                end_ms,
                step,
                &opts,
            )
            .await
            {
                Ok(palisade_promql::value::Value::Matrix(series)) => {
                    let mut lines: Vec<Line> = series
                        .into_iter()
                        .map(|s| Line {
                            label: series_label(&s.labels),
                            points: s
                                .samples
                                .iter()
                                .filter(|x| x.value.is_finite())
                                .map(|x| (x.ts_ms, x.value))
                                .collect(),
                        })
                        .collect();
                    lines.sort_by(|a, b| a.label.cmp(&b.label));
                    let message = if lines.is_empty() {
                        Some("no data in this time range".into())
                    } else if lines.len() > MAX_LINES {
                        Some(format!(
                            "{} series; the first {MAX_LINES} are drawn",
                            lines.len()
                        ))
                    } else {
                        None
                    };
                    graph(limit(lines), message)
                }
                Ok(_) => graph(vec![], Some("the query gives no series".into())),
                Err(e) => graph(vec![], Some(format!("query failed: {e}"))),
            }
        }
        WidgetSpec::Alerts {
            group_id,
            severities,
            hide_acked,
        } => {
            let mut rows: Vec<&AlertDoc> = alerts
                .iter()
                .filter(|a| !a.cleared && severities.contains(&a.severity))
                .filter(|a| !(*hide_acked && a.acked))
                .filter(|a| {
                    estate.devices.get(&a.monitor_object_id).is_some_and(|d| {
                        may_read_device(viewer, d)
                            && group_id.is_none_or(|g| d.all_groups.contains(&g))
                    })
                })
                .collect();
            rows.sort_by(|a, b| {
                b.severity
                    .cmp(&a.severity)
                    .then(b.start_epoch.cmp(&a.start_epoch))
                    .then(b.id.cmp(&a.id))
            });
            let total = rows.len();
            let items: Vec<Value> = rows
                .into_iter()
                .take(MAX_ALERTS)
                .map(|a| render_alert(estate, a))
                .collect();
            WidgetData::Alerts {
                message: (total == 0).then(|| "no active alerts".into()),
                items,
                total,
            }
        }
        WidgetSpec::DeviceHealth { group_id } => {
            let mut rows = Vec::new();
            let devices: Vec<&DeviceView> = estate
                .members_below(*group_id)
                .into_iter()
                .filter(|d| may_read_device(viewer, d))
                .take(MAX_DEVICES)
                .collect();
            let tsdb = state.tsdb().ok();
            for d in devices {
                let mut counts = [0u32; 3];
                let mut no_data_alert = false;
                for a in alerts
                    .iter()
                    .filter(|a| !a.cleared && a.monitor_object_id == d.doc.id)
                {
                    if a.alert_type == "noData" {
                        no_data_alert = true;
                    } else if let Some(c) = counts.get_mut(usize::from(a.severity.clamp(2, 4) - 2))
                    {
                        *c += 1;
                    }
                }
                let health = if let Some(top) = (2..=4u8)
                    .rev()
                    .find(|s| counts.get(usize::from(*s - 2)).is_some_and(|c| *c > 0))
                {
                    Health::Alerting(top)
                } else if no_data_alert {
                    Health::NoData
                } else if let Some(t) = tsdb {
                    let sel = Selector::all().eq("device", d.doc.display_name.clone());
                    match t
                        .query_range(
                            &sel,
                            now_ms - NO_DATA_AFTER_MS,
                            now_ms,
                            NO_DATA_AFTER_MS,
                            Aggregation::Count,
                        )
                        .await
                    {
                        Ok(s) if s.iter().any(|(_, x)| !x.is_empty()) => Health::Ok,
                        _ => Health::NoData,
                    }
                } else {
                    Health::Ok
                };
                rows.push(HealthRow {
                    id: d.doc.id,
                    name: d.doc.display_name.clone(),
                    health,
                    counts,
                });
            }
            rows.sort_by(|a, b| {
                a.health
                    .rank()
                    .cmp(&b.health.rank())
                    .then(a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            });
            WidgetData::Health {
                message: rows
                    .is_empty()
                    .then(|| "no devices in this group that you may see".into()),
                items: rows,
            }
        }
    }
}

fn limit(mut lines: Vec<Line>) -> Vec<Line> {
    lines.truncate(MAX_LINES);
    lines
}

fn series_label(labels: &palisade_tsdb::Labels) -> String {
    if labels.is_empty() {
        return "value".into();
    }
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    if rest.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// The active alerts (one read for all widgets of a dashboard).
pub async fn active_alerts(state: &AppState) -> Result<Vec<AlertDoc>, ApiError> {
    Ok(objects::list(
        state.portal.store.as_ref(),
        ObjectQuery {
            ref_id: None,
            flag: Some(ALERT_ACTIVE),
        },
    )
    .await?)
}

/// A widget's data in LogicMonitor's `WidgetData` shape (`type` `graph`, `alert` or `noc`).
pub fn render(w: &WidgetDoc, data: &WidgetData) -> Value {
    match data {
        WidgetData::Graph {
            start_ms,
            end_ms,
            lines,
            message,
        } => {
            let mut times: Vec<i64> = lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.0))
                .collect();
            times.sort_unstable();
            times.dedup();
            let lines: Vec<Value> = lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let data: Vec<Value> = times
                        .iter()
                        .map(|t| {
                            l.points
                                .binary_search_by(|p| p.0.cmp(t))
                                .ok()
                                .and_then(|i| l.points.get(i))
                                .map(|p| json!(p.1))
                                .unwrap_or(Value::Null)
                        })
                        .collect();
                    let vals: Vec<f64> = l.points.iter().map(|p| p.1).collect();
                    let (min, max, avg) = stats(&vals);
                    json!({
                        "label": l.label,
                        "legend": l.label,
                        "colorName": super::render::COLOR_NAMES.get(i % super::render::COLOR_NAMES.len()).copied().unwrap_or("cyan"),
                        "type": "line",
                        "visible": true,
                        "data": data,
                        "min": min,
                        "max": max,
                        "avg": avg,
                    })
                })
                .collect();
            json!({
                "type": "graph",
                "title": w.name,
                "name": w.name,
                "timeScale": w.timescale,
                "startTime": start_ms,
                "endTime": end_ms,
                "timestamps": times,
                "lines": lines,
                "message": message,
            })
        }
        WidgetData::Alerts {
            items,
            total,
            message,
        } => json!({
            "type": "alert",
            "title": w.name,
            "total": total,
            "items": items,
            "message": message,
        }),
        WidgetData::Health { items, message } => json!({
            "type": "noc",
            "title": w.name,
            "items": items.iter().map(|r| json!({
                "type": "device",
                "entityId": r.id,
                "name": r.name,
                "status": r.health.as_str(),
                "warnAlert": r.counts[0],
                "errorAlert": r.counts[1],
                "criticalAlert": r.counts[2],
            })).collect::<Vec<_>>(),
            "message": message,
        }),
    }
}

/// (min, max, mean) of values; `None`s when there are none.
pub fn stats(values: &[f64]) -> (Option<f64>, Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None, None);
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let avg = values.iter().sum::<f64>() / values.len() as f64;
    (Some(min), Some(max), Some(avg))
}
