//! The stored shapes of dashboards and widgets, how LogicMonitor-shaped request bodies become
//! them, and how they are answered.
//!
//! Indexed columns (see [`palisade_store::objects`]):
//!
//! | document | `lookup` | `ref_id` | `flag` |
//! |---|---|---|---|
//! | [`DashboardDoc`] | `<groupId>/<lower-case name>` (names are unique within a group) | – | 0 |
//! | [`WidgetDoc`] | – | the dashboard id | 0 |

use crate::error::ApiError;
use crate::monitor::estate::Estate;
use palisade_store::objects::{Document, ObjectKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Longest name.
pub const MAX_NAME: usize = 255;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 4096;
/// Longest PromQL expression.
pub const MAX_QUERY: usize = 4096;
/// Most datapoints a graph widget names.
pub const MAX_DATAPOINTS: usize = 32;
/// The dashboard group of a dashboard that names none.
pub const DEFAULT_GROUP: i64 = 1;

/// A dashboard (`/dashboard/dashboards`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DashboardDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// Name (unique within its group, case-insensitive).
    pub name: String,
    /// Description.
    pub description: String,
    /// LogicMonitor's dashboard group id (Palisade keeps it; it has no dashboard groups).
    pub group_id: i64,
    /// Shared with every user who holds a privilege on it; `false`: its owner only (and
    /// holders of `dashboard:*:manage`).
    pub sharable: bool,
    /// The user name of its creator.
    pub owner: String,
    /// LogicMonitor's layout: widget id → `{col, row, sizex, sizey}`.
    pub widgets_config: Map<String, Value>,
    /// Who changed it last.
    pub last_updated_by: String,
    /// Created, epoch ms.
    #[serde(skip)]
    pub created_on: i64,
    /// Changed, epoch ms.
    #[serde(skip)]
    pub updated_on: i64,
}

impl Default for DashboardDoc {
    fn default() -> Self {
        DashboardDoc {
            id: 0,
            name: String::new(),
            description: String::new(),
            group_id: DEFAULT_GROUP,
            sharable: true,
            owner: String::new(),
            widgets_config: Map::new(),
            last_updated_by: String::new(),
            created_on: 0,
            updated_on: 0,
        }
    }
}

impl Document for DashboardDoc {
    const KIND: ObjectKind = ObjectKind::Dashboard;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        Some(format!(
            "{}/{}",
            self.group_id,
            self.name.trim().to_lowercase()
        ))
    }
    fn set_times(&mut self, created_on: i64, updated_on: i64) {
        self.created_on = created_on;
        self.updated_on = updated_on;
    }
}

/// What a widget shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum WidgetSpec {
    /// Datapoints of one device datasource instance over the widget's time range
    /// (LogicMonitor's `ngraph`).
    Graph {
        /// The device.
        device_id: i64,
        /// The datasource name.
        datasource: String,
        /// The instance name.
        instance: String,
        /// Datapoints to draw (empty: all).
        datapoints: Vec<String>,
    },
    /// A PromQL expression over the widget's time range (`promql`, Palisade's own type).
    Promql {
        /// The expression.
        query: String,
    },
    /// Active alerts (`alert`).
    Alerts {
        /// Only devices in this group or below (`None`: all).
        group_id: Option<i64>,
        /// Severities shown (2 warn, 3 error, 4 critical).
        severities: Vec<u8>,
        /// Leave out acknowledged alerts.
        hide_acked: bool,
    },
    /// Devices of a group with their status (`noc`).
    DeviceHealth {
        /// The group (its devices and those below it).
        group_id: i64,
    },
}

impl WidgetSpec {
    /// LogicMonitor's widget `type`.
    pub fn lm_type(&self) -> &'static str {
        match self {
            WidgetSpec::Graph { .. } => "ngraph",
            WidgetSpec::Promql { .. } => "promql",
            WidgetSpec::Alerts { .. } => "alert",
            WidgetSpec::DeviceHealth { .. } => "noc",
        }
    }
}

/// A widget (`/dashboard/widgets`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WidgetDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// Its dashboard.
    pub dashboard_id: i64,
    /// Title.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Time range of graphs: `1hour`, `6hour`, `1day`, `7day`, ...
    #[serde(default)]
    pub timescale: String,
    /// What it shows.
    pub spec: WidgetSpec,
    /// Who changed it last.
    #[serde(default)]
    pub last_updated_by: String,
    /// Changed, epoch ms.
    #[serde(skip)]
    pub updated_on: i64,
}

impl Document for WidgetDoc {
    const KIND: ObjectKind = ObjectKind::DashboardWidget;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn ref_id(&self) -> Option<i64> {
        Some(self.dashboard_id)
    }
    fn set_times(&mut self, _created_on: i64, updated_on: i64) {
        self.updated_on = updated_on;
    }
}

// ------------------------------------------------------------------ request bodies

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

fn text(body: &Value, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.chars().count() > max {
                return Err(bad(format!("`{key}` must be at most {max} characters")));
            }
            if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(bad(format!("`{key}` must not contain control characters")));
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(bad(format!("`{key}` must be a string"))),
    }
}

fn int(body: &Value, key: &str) -> Result<Option<i64>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("`{key}` must be an integer"))),
        // Forms and some clients send numbers as strings.
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(format!("`{key}` must be an integer"))),
        Some(_) => Err(bad(format!("`{key}` must be an integer"))),
    }
}

fn boolean(body: &Value, key: &str) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(bad(format!("`{key}` must be true or false"))),
    }
}

fn name_of(body: &Value, required: bool, what: &str) -> Result<Option<String>, ApiError> {
    match text(body, "name", MAX_NAME)? {
        Some(n) if n.trim().is_empty() => Err(bad(format!("a {what} needs a non-empty `name`"))),
        Some(n) => Ok(Some(n.trim().to_string())),
        None if required => Err(bad(format!("a {what} needs a `name`"))),
        None => Ok(None),
    }
}

/// Applies a dashboard body to `doc`: every field present replaces the stored one.
pub fn apply_dashboard(
    doc: &mut DashboardDoc,
    body: &Value,
    creating: bool,
) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(bad("the body must be a JSON object"));
    }
    if let Some(n) = name_of(body, creating, "dashboard")? {
        doc.name = n;
    }
    if let Some(d) = text(body, "description", MAX_DESCRIPTION)? {
        doc.description = d;
    }
    if let Some(g) = int(body, "groupId")? {
        if g < 1 {
            return Err(bad("`groupId` must be a positive dashboard group id"));
        }
        doc.group_id = g;
    }
    if let Some(s) = boolean(body, "sharable")? {
        doc.sharable = s;
    }
    match body.get("widgetsConfig") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            if m.len() > 500 {
                return Err(bad("`widgetsConfig` has too many entries"));
            }
            let mut clean = Map::new();
            for (k, v) in m {
                if k.parse::<i64>().is_err() {
                    return Err(bad(format!(
                        "`widgetsConfig` keys are widget ids; `{k}` is not one"
                    )));
                }
                let mut pos = Map::new();
                for f in ["col", "row", "sizex", "sizey"] {
                    if let Some(n) = int(v, f)? {
                        if !(0..=1000).contains(&n) {
                            return Err(bad(format!("`widgetsConfig.{k}.{f}` is out of range")));
                        }
                        pos.insert(f.into(), json!(n));
                    }
                }
                clean.insert(k.clone(), Value::Object(pos));
            }
            doc.widgets_config = clean;
        }
        Some(_) => return Err(bad("`widgetsConfig` must be an object")),
    }
    Ok(())
}

/// A parsed time range, in milliseconds.
pub fn timescale_ms(s: &str) -> Result<i64, ApiError> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Ok(3_600_000);
    }
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    let unit = s.get(digits.len()..).unwrap_or_default().trim();
    let n: i64 = if digits.is_empty() {
        1
    } else {
        digits
            .parse()
            .map_err(|_| bad(format!("`timescale` `{s}` is not understood")))?
    };
    let per = match unit {
        "min" | "mins" | "minute" | "minutes" | "m" => 60_000,
        "hour" | "hours" | "h" => 3_600_000,
        "day" | "days" | "d" => 86_400_000,
        "week" | "weeks" | "w" => 7 * 86_400_000,
        _ => {
            return Err(bad(format!(
                "`timescale` `{s}` is not understood (use e.g. 30min, 1hour, 6hour, 1day, 7day)"
            )))
        }
    };
    let ms = n.saturating_mul(per);
    if !(5 * 60_000..=31 * 86_400_000).contains(&ms) {
        return Err(bad("`timescale` must be between 5 minutes and 31 days"));
    }
    Ok(ms)
}

fn group_by_path_or_id(
    estate: &Estate,
    v: Option<&Value>,
    key: &str,
) -> Result<Option<i64>, ApiError> {
    let group = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() || s == "*" {
                return Ok(None);
            }
            match s.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => estate
                    .groups
                    .iter()
                    .find(|(_, g)| g.full_path.eq_ignore_ascii_case(s.trim_matches('/')))
                    .map(|(id, _)| *id)
                    .or(Some(-1)),
            }
        }
        Some(_) => {
            return Err(bad(format!(
                "`{key}` must be a device group id or full path"
            )))
        }
    };
    match group {
        Some(g) if estate.groups.contains_key(&g) => Ok(Some(g)),
        _ => Err(bad(format!("`{key}`: no such device group"))),
    }
}

fn severities(v: Option<&Value>) -> Result<Vec<u8>, ApiError> {
    let text = match v {
        None | Some(Value::Null) => return Ok(vec![2, 3, 4]),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    };
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let s = match part.to_ascii_lowercase().as_str() {
            "all" | "*" => return Ok(vec![2, 3, 4]),
            "warn" | "warning" | "2" => 2,
            "error" | "3" => 3,
            "critical" | "4" => 4,
            other => {
                return Err(bad(format!(
                    "`filters.severity` `{other}` is not one of all, warn, error, critical"
                )))
            }
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        out = vec![2, 3, 4];
    }
    out.sort_unstable();
    Ok(out)
}

fn datapoints(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let list: Vec<String> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(|s| s.trim().to_string())
                    .ok_or_else(|| bad("`dataPoints` must be a list of datapoint names"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("`dataPoints` must be a list of datapoint names")),
    };
    let list: Vec<String> = list.into_iter().filter(|s| !s.is_empty()).collect();
    if list.len() > MAX_DATAPOINTS || list.iter().any(|s| s.len() > MAX_NAME) {
        return Err(bad(format!(
            "`dataPoints` names at most {MAX_DATAPOINTS} datapoints of at most {MAX_NAME} characters"
        )));
    }
    Ok(list)
}

/// Builds a widget from a LogicMonitor-shaped body. `resolved_instance` is the (device id,
/// datasource, instance) of a graph widget whose body names its instance by `dsiId`.
pub fn parse_widget(
    body: &Value,
    estate: &Estate,
    resolved_instance: Option<(i64, String, String)>,
) -> Result<WidgetDoc, ApiError> {
    if !body.is_object() {
        return Err(bad("the body must be a JSON object"));
    }
    let dashboard_id =
        int(body, "dashboardId")?.ok_or_else(|| bad("a widget needs a `dashboardId`"))?;
    let name = name_of(body, true, "widget")?.unwrap_or_default();
    let description = text(body, "description", MAX_DESCRIPTION)?.unwrap_or_default();
    let timescale = text(body, "timescale", 32)?.unwrap_or_else(|| "1hour".into());
    timescale_ms(&timescale)?;
    let kind = text(body, "type", 64)?.ok_or_else(|| {
        bad("a widget needs a `type`: ngraph (device graph), promql, alert or noc (device health)")
    })?;
    let spec = match kind.to_ascii_lowercase().as_str() {
        "ngraph" | "graph" => {
            let (device_id, datasource, instance) = match resolved_instance {
                Some(r) => r,
                None => {
                    let device = int(body, "hId")?
                        .or(int(body, "deviceId")?)
                        .ok_or_else(|| bad("a graph widget needs `hId` (the device id)"))?;
                    let ds = text(body, "dsName", MAX_NAME)?
                        .or(text(body, "dataSourceName", MAX_NAME)?)
                        .filter(|s| !s.trim().is_empty())
                        .ok_or_else(|| bad("a graph widget needs `dsName` (the datasource)"))?;
                    let inst = text(body, "dsiName", MAX_NAME)?
                        .or(text(body, "instanceName", MAX_NAME)?)
                        .filter(|s| !s.trim().is_empty())
                        .ok_or_else(|| {
                            bad("a graph widget needs `dsiName` (the instance) or `dsiId`")
                        })?;
                    (device, ds.trim().to_string(), inst.trim().to_string())
                }
            };
            if !estate.devices.contains_key(&device_id) {
                return Err(bad(format!("`hId`: no device {device_id}")));
            }
            WidgetSpec::Graph {
                device_id,
                datasource,
                instance,
                datapoints: datapoints(body.get("dataPoints"))?,
            }
        }
        "promql" => {
            let query = text(body, "query", MAX_QUERY)?
                .filter(|q| !q.trim().is_empty())
                .ok_or_else(|| bad("a promql widget needs a `query`"))?;
            palisade_promql::parser::parse(&query)
                .map_err(|e| bad(format!("`query` is not valid PromQL: {e}")))?;
            WidgetSpec::Promql { query }
        }
        "alert" => {
            let filters = body.get("filters").cloned().unwrap_or(Value::Null);
            if !(filters.is_null() || filters.is_object()) {
                return Err(bad("`filters` must be an object"));
            }
            let hide_acked = match filters.get("acked") {
                Some(Value::Bool(b)) => !*b,
                Some(Value::String(s)) => s.eq_ignore_ascii_case("false"),
                _ => false,
            };
            WidgetSpec::Alerts {
                group_id: group_by_path_or_id(estate, filters.get("group"), "filters.group")?,
                severities: severities(filters.get("severity"))?,
                hide_acked,
            }
        }
        "noc" | "devicehealth" => {
            let from_items = body
                .get("items")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|i| i.get("deviceGroupFullPath"));
            let group = match body.get("deviceGroupId").filter(|v| !v.is_null()) {
                Some(v) => group_by_path_or_id(estate, Some(v), "deviceGroupId")?,
                None => group_by_path_or_id(estate, from_items, "items[0].deviceGroupFullPath")?,
            };
            WidgetSpec::DeviceHealth {
                group_id: group.ok_or_else(|| {
                    bad("a noc (device health) widget needs `deviceGroupId` (or items[0].deviceGroupFullPath)")
                })?,
            }
        }
        other => {
            return Err(bad(format!(
                "widget type `{other}` is not supported (ngraph, promql, alert, noc)"
            )))
        }
    };
    Ok(WidgetDoc {
        id: 0,
        dashboard_id,
        name,
        description,
        timescale,
        spec,
        last_updated_by: String::new(),
        updated_on: 0,
    })
}

// ------------------------------------------------------------------ answers

fn secs(ms: i64) -> i64 {
    ms / 1000
}

/// A dashboard in LogicMonitor's shape; `permission` is what the caller may do with it.
pub fn render_dashboard(d: &DashboardDoc, permission: &str) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "fullName": d.name,
        "description": d.description,
        "groupId": d.group_id,
        "groupName": "",
        "groupFullPath": "",
        "sharable": d.sharable,
        "owner": d.owner,
        "widgetsConfig": d.widgets_config,
        // LogicMonitor's dashboard tokens are variables (##defaultDeviceGroup##), not secrets;
        // Palisade has none. Widget tokens (credentials) are under .../widgettokens.
        "widgetTokens": [],
        "template": Value::Null,
        "userPermission": permission,
        "lastUpdatedBy": d.last_updated_by,
        "createdOn": secs(d.created_on),
        "lastUpdatedOn": secs(d.updated_on),
    })
}

/// A widget in LogicMonitor's shape.
pub fn render_widget(w: &WidgetDoc, estate: &Estate, permission: &str) -> Value {
    let mut v = json!({
        "id": w.id,
        "dashboardId": w.dashboard_id,
        "name": w.name,
        "description": w.description,
        "type": w.spec.lm_type(),
        "timescale": w.timescale,
        "interval": 1,
        "theme": "",
        "lastUpdatedBy": w.last_updated_by,
        "lastUpdatedOn": secs(w.updated_on),
        "userPermission": permission,
    });
    let group_path = |g: i64| {
        estate
            .groups
            .get(&g)
            .map(|n| n.full_path.clone())
            .unwrap_or_default()
    };
    let extra = match &w.spec {
        WidgetSpec::Graph {
            device_id,
            datasource,
            instance,
            datapoints,
        } => json!({
            "hId": device_id,
            "hostName": estate.devices.get(device_id).map(|d| d.doc.display_name.clone()).unwrap_or_default(),
            "dsName": datasource,
            "dsiName": instance,
            // Palisade has no graph definitions: the graph is the datapoints listed.
            "dsiId": 0,
            "graphId": 0,
            "graphName": datapoints.join(", "),
            "dataPoints": datapoints,
        }),
        WidgetSpec::Promql { query } => json!({ "query": query }),
        WidgetSpec::Alerts {
            group_id,
            severities,
            hide_acked,
        } => json!({
            "filters": {
                "group": group_id.map(group_path).unwrap_or_else(|| "*".into()),
                "groupId": group_id,
                "severity": severities.iter().map(|s| match s { 2 => "warn", 3 => "error", _ => "critical" }).collect::<Vec<_>>().join(","),
                "acked": if *hide_acked { "false" } else { "all" },
            }
        }),
        WidgetSpec::DeviceHealth { group_id } => json!({
            "deviceGroupId": group_id,
            "items": [{
                "type": "device",
                "deviceGroupFullPath": group_path(*group_id),
                "deviceDisplayName": "*",
                "dataSourceDisplayName": "*",
                "instanceName": "*",
                "dataPointName": "*",
                "groupBy": "device",
                "name": "##RESOURCENAME##",
            }],
        }),
    };
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timescales() {
        assert_eq!(timescale_ms("1hour").unwrap(), 3_600_000);
        assert_eq!(timescale_ms("").unwrap(), 3_600_000);
        assert_eq!(timescale_ms("7day").unwrap(), 7 * 86_400_000);
        assert_eq!(timescale_ms("30min").unwrap(), 1_800_000);
        assert!(timescale_ms("1min").is_err());
        assert!(timescale_ms("90day").is_err());
        assert!(timescale_ms("1fortnight").is_err());
    }

    #[test]
    fn severities_parse() {
        assert_eq!(severities(None).unwrap(), vec![2, 3, 4]);
        assert_eq!(
            severities(Some(&json!("critical,error"))).unwrap(),
            vec![3, 4]
        );
        assert_eq!(severities(Some(&json!(["warn"]))).unwrap(), vec![2]);
        assert!(severities(Some(&json!("fatal"))).is_err());
    }

    #[test]
    fn dashboard_bodies() {
        let mut d = DashboardDoc::default();
        assert!(apply_dashboard(&mut d, &json!({}), true).is_err());
        apply_dashboard(
            &mut d,
            &json!({"name": " NOC ", "sharable": false, "widgetsConfig": {"3": {"col": 1, "row": 2, "sizex": 6, "sizey": 2}}}),
            true,
        )
        .unwrap();
        assert_eq!(d.name, "NOC");
        assert!(!d.sharable);
        assert_eq!(d.lookup().unwrap(), "1/noc");
        assert!(apply_dashboard(&mut d, &json!({"widgetsConfig": {"x": {}}}), false).is_err());
        assert!(apply_dashboard(&mut d, &json!({"name": "a\u{7}b"}), false).is_err());
    }

    #[test]
    fn widget_bodies() {
        let estate = Estate::default();
        let e = parse_widget(
            &json!({"dashboardId": 1, "name": "x", "type": "pie"}),
            &estate,
            None,
        );
        assert!(matches!(e, Err(ApiError::BadRequest(_))));
        let w = parse_widget(
            &json!({"dashboardId": 1, "name": "load", "type": "promql", "query": "sum(rate(x[5m]))"}),
            &estate,
            None,
        )
        .unwrap();
        assert_eq!(w.spec.lm_type(), "promql");
        assert!(parse_widget(
            &json!({"dashboardId": 1, "name": "bad", "type": "promql", "query": "sum("}),
            &estate,
            None
        )
        .is_err());
        let a = parse_widget(
            &json!({"dashboardId": 1, "name": "alerts", "type": "alert", "filters": {"severity": "critical", "acked": "false"}}),
            &estate,
            None,
        )
        .unwrap();
        assert_eq!(
            a.spec,
            WidgetSpec::Alerts {
                group_id: None,
                severities: vec![4],
                hide_acked: true
            }
        );
    }
}
