//! Alert evaluation: one [`AlertState`] per series (device, datasource, instance,
//! datapoint), fed every stored sample by [`AlertEngine::observe`] and checked for missing
//! data by [`AlertEngine::tick`]; the transitions open, change and clear [`AlertDoc`]s; and
//! the operations behind `/alert/alerts` and the threshold overrides (`alertsettings`).
//!
//! # Configuration of a series
//!
//! `palisade_core::threshold::effective(default, groups root→leaf, device)`:
//! - the default is the datapoint of the stored datasource definition (`dataPoints[].name`,
//!   `alertExpr`, `alertTransitionInterval`, `alertClearTransitionInterval`,
//!   `alertForNoData`, and the datasource's `collectInterval` in seconds as the poll
//!   interval, 60 s when absent); no stored datasource means no default;
//! - group overrides come from every group the device is in (static, dynamic and their
//!   ancestors), ordered by depth; among groups of equal depth the larger id is nearer;
//! - `disableAlerting` on the device or on any of those groups means no alerts at all (as
//!   in LogicMonitor): an open alert clears with the next sample.
//!
//! # Persistence
//!
//! States are loaded once ([`ObjectStore::load_alert_states`](palisade_store::ObjectStore))
//! and saved for the series a transition touched, right after the transition's alert is
//! written. Other changes are saved every minute by the tick, but only for series where a
//! restart would lose something (an open alert or a pending level, see `matters`): a
//! series that is simply clean restarts from scratch, so the periodic save stays small. A
//! series with no threshold and no no-data alerting keeps no state at all.
//!
//! # Order
//!
//! Transitions are computed under one lock and queued; whoever holds the apply lock drains
//! the queue in order, so alerts are written in the order their samples were evaluated.
//! A transition whose write fails stays queued (at the front) for the next call or tick.

use super::estate::{DeviceView, Estate};
use super::notify::Notifier;
use super::pipeline::Point;
use super::sdt::{in_sdt, SdtCache};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::monitor::devices::{may, require, Owner};
use crate::AppState;
use palisade_core::alert_state::{AlertConfig, AlertState, Transition, MAX_TRANSITION_INTERVAL};
use palisade_core::privilege::Level;
use palisade_core::threshold::{self, Severity, Threshold};
use palisade_store::alerting::{parse_series_key, series_key, AlertDoc, AlertNote, ALERT_ACTIVE};
use palisade_store::inventory::{DatasourceDoc, DeviceDoc, DeviceGroupDoc, ThresholdOverride};
use palisade_store::objects::{self, ObjectQuery};
use palisade_store::StoreError;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the background task checks for missing data, SDT changes and repeats.
pub const TICK: Duration = Duration::from_secs(10);
/// How often counters are saved without a transition.
const SAVE_EVERY: Duration = Duration::from_secs(60);
/// How long the cached datasource definitions are trusted.
const DS_MAX_AGE: Duration = Duration::from_secs(5);
/// Poll interval when the datasource does not say.
const DEFAULT_POLL_MS: i64 = 60_000;
/// Longest ack comment or note.
const MAX_COMMENT: usize = 4096;
/// Most notes on one alert.
const MAX_NOTES: usize = 200;
/// Most threshold overrides on one device or group.
const MAX_OVERRIDES: usize = 1000;

/// One alerting series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId {
    /// Device id.
    pub device_id: i64,
    /// Datasource name.
    pub datasource: String,
    /// Instance name.
    pub instance: String,
    /// Datapoint name.
    pub datapoint: String,
}

impl SeriesId {
    fn of(p: &Point) -> SeriesId {
        SeriesId {
            device_id: p.device_id,
            datasource: p.datasource.clone(),
            instance: p.instance.clone(),
            datapoint: p.datapoint.clone(),
        }
    }

    /// The stored key ([`series_key`]).
    pub fn key(&self) -> String {
        series_key(
            self.device_id,
            &self.datasource,
            &self.instance,
            &self.datapoint,
        )
    }

    fn from_key(key: &str) -> Option<SeriesId> {
        parse_series_key(key).map(|(device_id, datasource, instance, datapoint)| SeriesId {
            device_id,
            datasource,
            instance,
            datapoint,
        })
    }
}

// ---------------------------------------------------------------- datasource defaults

#[derive(Debug, Clone, Default)]
struct DpDefaults {
    alert_expr: String,
    trigger: u32,
    clear: u32,
    no_data: Option<Severity>,
}

#[derive(Debug, Clone, Default)]
struct DsDefaults {
    poll_ms: i64,
    points: HashMap<String, DpDefaults>,
}

/// Datasource defaults by lower-case name.
type Datasources = HashMap<String, DsDefaults>;

fn int_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads what alerting needs from a datasource definition (LogicMonitor field names),
/// tolerating anything malformed.
fn read_definition(def: &Value) -> DsDefaults {
    let poll_ms = int_of(def.get("collectInterval"))
        .filter(|s| *s > 0)
        .map_or(DEFAULT_POLL_MS, |s| s.saturating_mul(1000));
    let interval = |v: Option<&Value>| {
        int_of(v)
            .and_then(|i| u32::try_from(i).ok())
            .map_or(0, |i| i.min(MAX_TRANSITION_INTERVAL))
    };
    let mut points = HashMap::new();
    for dp in def
        .get("dataPoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = dp.get("name").and_then(Value::as_str) else {
            continue;
        };
        let no_data = int_of(dp.get("alertForNoData"))
            .and_then(|c| u8::try_from(c).ok())
            .and_then(Severity::from_lm_code);
        points.insert(
            name.to_string(),
            DpDefaults {
                alert_expr: dp
                    .get("alertExpr")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                trigger: interval(dp.get("alertTransitionInterval")),
                clear: interval(dp.get("alertClearTransitionInterval")),
                no_data,
            },
        );
    }
    DsDefaults { poll_ms, points }
}

fn override_for<'a>(list: &'a [ThresholdOverride], id: &SeriesId) -> Option<&'a str> {
    list.iter()
        .find(|o| {
            o.datasource.eq_ignore_ascii_case(&id.datasource)
                && o.datapoint.eq_ignore_ascii_case(&id.datapoint)
        })
        .map(|o| o.alert_expr.as_str())
}

/// The configuration of a series; `None` when it cannot alert at all.
fn series_config(estate: &Estate, ds: &Datasources, id: &SeriesId) -> Option<AlertConfig> {
    let view = estate.devices.get(&id.device_id)?;
    let mut groups: Vec<&DeviceGroupDoc> = view
        .all_groups
        .iter()
        .filter_map(|g| estate.groups.get(g))
        .map(|n| &n.doc)
        .collect();
    if view.doc.disable_alerting || groups.iter().any(|g| g.disable_alerting) {
        return None;
    }
    groups.sort_by_key(|g| {
        (
            estate.groups.get(&g.id).map_or(0, |n| n.ancestors.len()),
            g.id,
        )
    });
    let source = ds.get(&id.datasource.to_lowercase());
    let dp = source.and_then(|s| {
        s.points.get(&id.datapoint).or_else(|| {
            s.points
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&id.datapoint))
                .map(|(_, v)| v)
        })
    });
    let group_overrides: Vec<&str> = groups
        .iter()
        .filter_map(|g| override_for(&g.thresholds, id))
        .collect();
    let device_override = override_for(&view.doc.thresholds, id);
    let threshold = match threshold::effective(
        dp.map(|d| d.alert_expr.as_str()),
        &group_overrides,
        device_override,
    ) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(device = id.device_id, datasource = %id.datasource, datapoint = %id.datapoint, error = %e, "ignoring an invalid threshold");
            None
        }
    };
    let no_data = dp.and_then(|d| d.no_data);
    if threshold.is_none() && no_data.is_none() {
        return None;
    }
    let mut cfg = AlertConfig::new(threshold, source.map_or(DEFAULT_POLL_MS, |s| s.poll_ms));
    if let Some(d) = dp {
        cfg.trigger_after = d.trigger;
        cfg.clear_after = d.clear;
        cfg.no_data = d.no_data;
    }
    Some(cfg)
}

// ---------------------------------------------------------------- the engine

#[derive(Debug)]
enum Action {
    Transition(Transition),
    /// The device was deleted: close its alerts, forget the series.
    DeviceGone,
}

#[derive(Debug)]
struct Queued {
    series: SeriesId,
    action: Action,
    at_ms: i64,
}

#[derive(Default)]
struct Inner {
    states: HashMap<SeriesId, AlertState>,
    dirty: HashSet<SeriesId>,
    removed: HashSet<SeriesId>,
    queue: VecDeque<Queued>,
    configs: HashMap<SeriesId, Option<Arc<AlertConfig>>>,
    configs_for: Option<(Arc<Estate>, Arc<Datasources>)>,
}

impl Inner {
    fn config(
        &mut self,
        estate: &Arc<Estate>,
        ds: &Arc<Datasources>,
        id: &SeriesId,
    ) -> Option<Arc<AlertConfig>> {
        let fresh = self
            .configs_for
            .as_ref()
            .is_some_and(|(e, d)| Arc::ptr_eq(e, estate) && Arc::ptr_eq(d, ds));
        if !fresh {
            self.configs.clear();
            self.configs_for = Some((estate.clone(), ds.clone()));
        }
        if let Some(c) = self.configs.get(id) {
            return c.clone();
        }
        let c = series_config(estate, ds, id).map(Arc::new);
        self.configs.insert(id.clone(), c.clone());
        c
    }
}

/// The alert evaluator, its SDT cache and its notification task.
#[derive(Default)]
pub struct AlertEngine {
    inner: parking_lot::Mutex<Inner>,
    /// Open alert per series; its lock is the apply lock.
    open: tokio::sync::Mutex<HashMap<SeriesId, i64>>,
    loaded: tokio::sync::OnceCell<()>,
    datasources: parking_lot::Mutex<Option<(Instant, u64, Arc<Datasources>)>>,
    ds_generation: AtomicU64,
    tick_lock: tokio::sync::Mutex<Option<Instant>>,
    /// Scheduled downtime.
    pub sdts: SdtCache,
    /// Delivery of notifications.
    pub notifier: Notifier,
}

impl std::fmt::Debug for AlertEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertEngine")
            .field("series", &self.inner.lock().states.len())
            .finish_non_exhaustive()
    }
}

/// Starts the background tasks: the tick (every [`TICK`]) and notification delivery. Both
/// end when the state is dropped.
pub fn start(state: &Arc<AppState>) {
    state.alerts.notifier.start(Arc::downgrade(state));
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(state) = weak.upgrade() else { break };
            state.alerts.tick(&state).await;
        }
    });
}

/// Whether losing this state in a restart would change an outcome: an alert is open or a
/// level is pending. Only such states (and the save that makes one stop mattering) are
/// saved periodically; a clean series restarts from scratch at no cost.
fn matters(s: &AlertState) -> bool {
    s.severity.is_some() || s.no_data.is_some() || s.breaching != [0; 3]
}

fn fmt_value(v: f64) -> String {
    format!("{v}")
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

impl AlertEngine {
    /// Marks the cached datasource definitions stale (after a datasource changed).
    pub fn invalidate_datasources(&self) {
        self.ds_generation.fetch_add(1, Ordering::SeqCst);
    }

    async fn datasources(&self, state: &AppState) -> Result<Arc<Datasources>, ApiError> {
        let generation = self.ds_generation.load(Ordering::SeqCst);
        if let Some((at, g, d)) = self.datasources.lock().as_ref() {
            if *g == generation && at.elapsed() < DS_MAX_AGE {
                return Ok(d.clone());
            }
        }
        let docs: Vec<DatasourceDoc> =
            objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
        let map: Datasources = docs
            .iter()
            .map(|d| (d.name.to_lowercase(), read_definition(&d.definition)))
            .collect();
        let map = Arc::new(map);
        *self.datasources.lock() = Some((Instant::now(), generation, map.clone()));
        Ok(map)
    }

    async fn ensure_loaded(&self, state: &AppState) -> Result<(), ApiError> {
        self.loaded
            .get_or_try_init(|| async {
                let store = state.portal.store.as_ref();
                let rows = store.load_alert_states().await?;
                let active: Vec<AlertDoc> = objects::list(
                    store,
                    ObjectQuery { ref_id: None, flag: Some(ALERT_ACTIVE) },
                )
                .await?;
                let mut states = HashMap::new();
                for (key, data) in rows {
                    match (SeriesId::from_key(&key), serde_json::from_str::<AlertState>(&data)) {
                        (Some(id), Ok(s)) => {
                            states.insert(id, s);
                        }
                        _ => tracing::warn!(series = %key, "ignoring an unreadable saved alert state"),
                    }
                }
                let mut open = self.open.lock().await;
                let mut inner = self.inner.lock();
                for a in active {
                    let Some(id) = SeriesId::from_key(&a.series) else { continue };
                    let alive = states
                        .get(&id)
                        .is_some_and(|s| s.severity.is_some() || s.no_data.is_some());
                    if alive {
                        open.insert(id, a.id);
                    } else {
                        // Written but its state was not: close it with the next apply.
                        open.insert(id.clone(), a.id);
                        inner.queue.push_back(Queued {
                            series: id,
                            action: Action::Transition(Transition::Clear { value: f64::NAN }),
                            at_ms: state.portal.now(),
                        });
                    }
                }
                inner.states.extend(states);
                Ok::<(), ApiError>(())
            })
            .await
            .map(|_| ())
    }

    /// Evaluates stored points (called by the pipeline after they are durable). Problems are
    /// logged; they never fail the ingest.
    pub async fn observe(&self, state: &AppState, points: &[Point]) {
        if points.is_empty() {
            return;
        }
        if let Err(e) = self.ensure_loaded(state).await {
            tracing::error!(error = %e, "alert states could not be loaded; samples not evaluated");
            return;
        }
        let (estate, ds) = match (
            state.estate.get(&state.portal).await,
            self.datasources(state).await,
        ) {
            (Ok(e), Ok(d)) => (e, d),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "alert configuration unavailable; samples not evaluated");
                return;
            }
        };
        let mut order: Vec<&Point> = points.iter().collect();
        order.sort_by_key(|p| p.ts_ms);
        let queued = {
            let mut inner = self.inner.lock();
            let mut queued = false;
            for p in order {
                let id = SeriesId::of(p);
                let cfg = inner.config(&estate, &ds, &id);
                let inert = cfg.is_none();
                if inert && !inner.states.contains_key(&id) {
                    continue;
                }
                let cfg = cfg.unwrap_or_else(|| Arc::new(AlertConfig::new(None, DEFAULT_POLL_MS)));
                let st = inner.states.entry(id.clone()).or_default();
                let mattered = matters(st);
                let t = st.observe(&cfg, p.ts_ms, p.value);
                let idle = st.severity.is_none() && st.no_data.is_none();
                let save = mattered || matters(st);
                if inert && idle {
                    inner.states.remove(&id);
                    inner.dirty.remove(&id);
                    inner.removed.insert(id.clone());
                } else if save {
                    inner.dirty.insert(id.clone());
                }
                if t != Transition::None {
                    inner.queue.push_back(Queued {
                        series: id,
                        action: Action::Transition(t),
                        at_ms: p.ts_ms,
                    });
                    queued = true;
                }
            }
            queued
        };
        if queued {
            self.apply_pending(state).await;
        }
    }

    /// Drains the queue in order: writes alerts and saves the states they belong to.
    async fn apply_pending(&self, state: &AppState) {
        let mut open = self.open.lock().await;
        loop {
            let batch: Vec<Queued> = self.inner.lock().queue.drain(..).collect();
            if batch.is_empty() {
                return;
            }
            let context = match (
                state.estate.get(&state.portal).await,
                self.sdts.get(&state.portal).await,
            ) {
                (Ok(e), Ok(s)) => (e, s),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "alerts not written yet; retrying on the next tick");
                    let mut inner = self.inner.lock();
                    for q in batch.into_iter().rev() {
                        inner.queue.push_front(q);
                    }
                    return;
                }
            };
            let mut touched: Vec<SeriesId> = Vec::new();
            let mut rest = batch.into_iter();
            while let Some(q) = rest.next() {
                match self
                    .apply_one(state, &mut open, &context.0, &context.1, &q)
                    .await
                {
                    Ok(()) => touched.push(q.series),
                    Err(e) => {
                        tracing::warn!(error = %e, "an alert could not be written; retrying on the next tick");
                        let remaining: Vec<Queued> = std::iter::once(q).chain(rest).collect();
                        {
                            let mut inner = self.inner.lock();
                            for q in remaining.into_iter().rev() {
                                inner.queue.push_front(q);
                            }
                        }
                        self.save(state, touched).await;
                        return;
                    }
                }
            }
            self.save(state, touched).await;
        }
    }

    /// Saves the current states of these series (a removed one is deleted).
    async fn save(&self, state: &AppState, series: Vec<SeriesId>) {
        if series.is_empty() {
            return;
        }
        let rows: Vec<(String, Option<String>)> = {
            let mut inner = self.inner.lock();
            series
                .into_iter()
                .map(|id| {
                    inner.dirty.remove(&id);
                    let data = inner
                        .states
                        .get(&id)
                        .and_then(|s| serde_json::to_string(s).ok());
                    if data.is_some() {
                        inner.removed.remove(&id);
                    }
                    (id.key(), data)
                })
                .collect()
        };
        if let Err(e) = state
            .portal
            .store
            .save_alert_states(rows, state.portal.now())
            .await
        {
            tracing::warn!(error = %e, "alert states not saved; retrying later");
        }
    }

    async fn apply_one(
        &self,
        state: &AppState,
        open: &mut HashMap<SeriesId, i64>,
        estate: &Estate,
        sdts: &[super::sdt::LoadedSdt],
        q: &Queued,
    ) -> Result<(), ApiError> {
        let now = state.portal.now();
        let view = estate.devices.get(&q.series.device_id);
        let sdted = view.is_some_and(|v| in_sdt(sdts, v, &q.series.datasource, now));
        let new = |kind: &str, severity: Severity, value: String, threshold: String| AlertDoc {
            alert_type: kind.into(),
            severity: severity.as_lm_code(),
            sdted,
            start_epoch: secs(q.at_ms),
            monitor_object_id: q.series.device_id,
            monitor_object_name: view.map_or_else(
                || format!("device {}", q.series.device_id),
                |v| v.doc.display_name.clone(),
            ),
            resource_template_name: q.series.datasource.clone(),
            instance_name: q.series.instance.clone(),
            data_point_name: q.series.datapoint.clone(),
            alert_value: value,
            threshold,
            series: q.series.key(),
            ..AlertDoc::default()
        };
        match &q.action {
            Action::DeviceGone => {
                self.close(state, open, &q.series, "device deleted".into(), q.at_ms)
                    .await?;
            }
            Action::Transition(t) => match t {
                Transition::None => {}
                Transition::Open {
                    severity,
                    value,
                    threshold,
                } => {
                    self.close(state, open, &q.series, fmt_value(*value), q.at_ms)
                        .await?;
                    let doc = new(
                        "dataSourceAlert",
                        *severity,
                        fmt_value(*value),
                        threshold.clone(),
                    );
                    self.create(state, open, &q.series, doc).await?;
                }
                Transition::Change {
                    from,
                    to,
                    value,
                    threshold,
                } => match open.get(&q.series).copied() {
                    Some(id) => {
                        let (to, value, thr, up) =
                            (*to, fmt_value(*value), threshold.clone(), to > from);
                        objects::update::<AlertDoc, _>(
                            state.portal.store.as_ref(),
                            id,
                            move |d| {
                                d.severity = to.as_lm_code();
                                d.alert_value = value;
                                d.threshold = thr;
                                if up {
                                    d.acked = false;
                                }
                                Ok(())
                            },
                            None,
                        )
                        .await?;
                        self.notifier.wake(id);
                    }
                    None => {
                        let doc = new("dataSourceAlert", *to, fmt_value(*value), threshold.clone());
                        self.create(state, open, &q.series, doc).await?;
                    }
                },
                Transition::Clear { value } => {
                    let text = if value.is_nan() {
                        String::new()
                    } else {
                        fmt_value(*value)
                    };
                    self.close(state, open, &q.series, text, q.at_ms).await?;
                }
                Transition::NoDataOpen { severity, .. } => {
                    self.close(state, open, &q.series, "No Data".into(), q.at_ms)
                        .await?;
                    let doc = new("noData", *severity, "No Data".into(), "No Data".into());
                    self.create(state, open, &q.series, doc).await?;
                }
                Transition::NoDataClear {
                    value,
                    open: reopen,
                } => {
                    let text =
                        value.map_or_else(|| "no-data alerting turned off".into(), fmt_value);
                    self.close(state, open, &q.series, text.clone(), q.at_ms)
                        .await?;
                    if let Some((severity, threshold)) = reopen {
                        let doc = new("dataSourceAlert", *severity, text, threshold.clone());
                        self.create(state, open, &q.series, doc).await?;
                    }
                }
            },
        }
        Ok(())
    }

    async fn create(
        &self,
        state: &AppState,
        open: &mut HashMap<SeriesId, i64>,
        series: &SeriesId,
        doc: AlertDoc,
    ) -> Result<(), ApiError> {
        let store = state.portal.store.as_ref();
        let created = match objects::create(store, &doc, None).await {
            Err(StoreError::Conflict(_)) => {
                // An active alert of this series that this process lost track of.
                if let Some(stale) = objects::find::<AlertDoc>(store, &series.key()).await? {
                    open.insert(series.clone(), stale.id);
                    self.close(
                        state,
                        open,
                        series,
                        String::new(),
                        doc.start_epoch.saturating_mul(1000),
                    )
                    .await?;
                }
                objects::create(store, &doc, None).await?
            }
            other => other?,
        };
        open.insert(series.clone(), created.id);
        self.notifier.wake(created.id);
        Ok(())
    }

    async fn close(
        &self,
        state: &AppState,
        open: &mut HashMap<SeriesId, i64>,
        series: &SeriesId,
        clear_value: String,
        at_ms: i64,
    ) -> Result<(), ApiError> {
        let Some(id) = open.get(series).copied() else {
            return Ok(());
        };
        let result = objects::update::<AlertDoc, _>(
            state.portal.store.as_ref(),
            id,
            move |d| {
                if !d.cleared {
                    d.cleared = true;
                    d.end_epoch = secs(at_ms).max(d.start_epoch);
                    d.clear_value = clear_value;
                }
                Ok(())
            },
            None,
        )
        .await;
        match result {
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        open.remove(series);
        self.notifier.wake(id);
        Ok(())
    }

    /// The periodic work: no-data checks, deleted devices, SDTs starting and ending, saving
    /// counters, then a notification sweep (repeats and retries). The background task calls
    /// it every [`TICK`]; calling it directly is safe.
    pub async fn tick(&self, state: &AppState) {
        let mut last_save = self.tick_lock.lock().await;
        if let Err(e) = self.ensure_loaded(state).await {
            tracing::error!(error = %e, "alert states could not be loaded");
            return;
        }
        let now = state.portal.now();
        let idle = self.inner.lock().states.is_empty();
        let context = if idle {
            None
        } else {
            Some((
                state.estate.get(&state.portal).await,
                self.datasources(state).await,
            ))
        };
        match context {
            None => {}
            Some((Ok(estate), Ok(ds))) => {
                let missing: BTreeSet<i64> = {
                    let mut inner = self.inner.lock();
                    let mut missing = BTreeSet::new();
                    let ids: Vec<SeriesId> = inner.states.keys().cloned().collect();
                    for id in ids {
                        if !estate.devices.contains_key(&id.device_id) {
                            missing.insert(id.device_id);
                            continue;
                        }
                        let cfg = inner
                            .config(&estate, &ds, &id)
                            .unwrap_or_else(|| Arc::new(AlertConfig::new(None, DEFAULT_POLL_MS)));
                        let Some(st) = inner.states.get_mut(&id) else {
                            continue;
                        };
                        let t = st.check_no_data(&cfg, now);
                        if t != Transition::None {
                            inner.dirty.insert(id.clone());
                            inner.queue.push_back(Queued {
                                series: id,
                                action: Action::Transition(t),
                                at_ms: now,
                            });
                        }
                    }
                    missing
                };
                for device in missing {
                    // The snapshot may predate a new device: ask the store.
                    if let Ok(None) =
                        objects::get::<DeviceDoc>(state.portal.store.as_ref(), device).await
                    {
                        let mut inner = self.inner.lock();
                        let gone: Vec<SeriesId> = inner
                            .states
                            .keys()
                            .filter(|s| s.device_id == device)
                            .cloned()
                            .collect();
                        for id in gone {
                            inner.states.remove(&id);
                            inner.dirty.remove(&id);
                            inner.removed.insert(id.clone());
                            inner.queue.push_back(Queued {
                                series: id,
                                action: Action::DeviceGone,
                                at_ms: now,
                            });
                        }
                    }
                }
            }
            Some((Err(e), _)) | Some((_, Err(e))) => {
                tracing::warn!(error = %e, "no-data checks skipped")
            }
        }
        self.apply_pending(state).await;
        if let Err(e) = self.sync_sdt(state, now).await {
            tracing::warn!(error = %e, "SDT state of alerts not updated");
        }
        if last_save.is_none_or(|at| at.elapsed() >= SAVE_EVERY) {
            let ids: Vec<SeriesId> = {
                let inner = self.inner.lock();
                inner
                    .dirty
                    .iter()
                    .chain(inner.removed.iter())
                    .cloned()
                    .collect()
            };
            self.save(state, ids).await;
            *last_save = Some(Instant::now());
        }
        self.notifier.sweep();
    }

    /// Sets `sdted` on active alerts whose device an SDT now covers, and clears it (and
    /// notifies) when the SDT is over.
    async fn sync_sdt(&self, state: &AppState, now: i64) -> Result<(), ApiError> {
        let store = state.portal.store.as_ref();
        let active: Vec<AlertDoc> = objects::list(
            store,
            ObjectQuery {
                ref_id: None,
                flag: Some(ALERT_ACTIVE),
            },
        )
        .await?;
        if active.is_empty() {
            return Ok(());
        }
        let estate = state.estate.get(&state.portal).await?;
        let sdts = self.sdts.get(&state.portal).await?;
        for a in active {
            let covered = estate
                .devices
                .get(&a.monitor_object_id)
                .is_some_and(|v| in_sdt(&sdts, v, &a.resource_template_name, now));
            if covered == a.sdted {
                continue;
            }
            objects::update::<AlertDoc, _>(
                store,
                a.id,
                move |d| {
                    if !d.cleared {
                        d.sdted = covered;
                    }
                    Ok(())
                },
                None,
            )
            .await?;
            if !covered {
                self.notifier.wake(a.id);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- the API

/// An alert in LogicMonitor's shape.
pub fn render_alert(estate: &Estate, a: &AlertDoc) -> Value {
    let groups: Vec<String> = estate
        .devices
        .get(&a.monitor_object_id)
        .map(|v| {
            v.direct_groups()
                .iter()
                .filter_map(|g| estate.groups.get(g).map(|n| n.full_path.clone()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": format!("DS{}", a.id),
        "internalId": format!("LMD{}", a.id),
        "type": a.alert_type,
        "severity": a.severity,
        "cleared": a.cleared,
        "acked": a.acked,
        "ackedBy": a.acked_by,
        "ackedEpoch": a.acked_epoch,
        "ackComment": a.ack_comment,
        "sdted": a.sdted,
        "startEpoch": a.start_epoch,
        "endEpoch": a.end_epoch,
        "monitorObjectId": a.monitor_object_id,
        "monitorObjectName": a.monitor_object_name,
        "monitorObjectType": "device",
        "monitorObjectGroups": groups.join(","),
        "resourceTemplateName": a.resource_template_name,
        "resourceTemplateType": "DS",
        "instanceName": a.instance_name,
        "dataPointName": a.data_point_name,
        "alertValue": a.alert_value,
        "clearValue": a.clear_value,
        "threshold": a.threshold,
        "rule": a.rule,
        "ruleId": a.rule_id,
        "chain": a.chain,
        "chainId": a.chain_id,
        "notes": a.notes,
        "lastNotifiedEpoch": secs(a.last_notified_ms),
    })
}

fn scope_of(estate: &Estate, device: i64) -> Vec<i64> {
    estate
        .devices
        .get(&device)
        .map(|v| v.all_groups.iter().copied().collect())
        .unwrap_or_default()
}

/// The alerts the caller may see: only active ones unless `filter` mentions `cleared`
/// (`cleared:*` shows all, `cleared:true` the cleared ones).
pub async fn list_alerts(
    state: &AppState,
    caller: &Caller,
    filter: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let mentions_cleared = match filter.filter(|f| !f.trim().is_empty()) {
        Some(f) => palisade_core::filter::parse(f)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
            .fields()
            .iter()
            .any(|f| f == "cleared"),
        None => false,
    };
    let query = ObjectQuery {
        ref_id: None,
        flag: (!mentions_cleared).then_some(ALERT_ACTIVE),
    };
    let docs: Vec<AlertDoc> = objects::list(state.portal.store.as_ref(), query).await?;
    let estate = state.estate.get(&state.portal).await?;
    Ok(docs
        .iter()
        .rev()
        .filter(|a| may(caller, scope_of(&estate, a.monitor_object_id), Level::Read))
        .map(|a| render_alert(&estate, a))
        .collect())
}

/// Parses `DS12` (or `12`).
pub(crate) fn alert_id(raw: &str) -> Result<i64, ApiError> {
    let digits = raw
        .strip_prefix("DS")
        .or_else(|| raw.strip_prefix("ds"))
        .unwrap_or(raw);
    digits
        .parse()
        .map_err(|_| ApiError::NotFound(format!("alert `{raw}` not found")))
}

async fn visible(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<(AlertDoc, Arc<Estate>), ApiError> {
    let id = alert_id(raw)?;
    let doc: Option<AlertDoc> = objects::get(state.portal.store.as_ref(), id).await?;
    let estate = state.estate.get(&state.portal).await?;
    let doc = doc
        .filter(|a| may(caller, scope_of(&estate, a.monitor_object_id), Level::Read))
        .ok_or_else(|| ApiError::NotFound(format!("alert `{raw}` not found")))?;
    Ok((doc, estate))
}

/// One alert.
pub async fn get_alert(state: &AppState, caller: &Caller, raw: &str) -> Result<Value, ApiError> {
    let (doc, estate) = visible(state, caller, raw).await?;
    Ok(render_alert(&estate, &doc))
}

fn comment(body: &Value) -> Result<String, ApiError> {
    let text = super::fields::str_field(body, "ackComment")?.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest("`ackComment` is required".into()));
    }
    super::fields::check_text("ackComment", &text, MAX_COMMENT)?;
    Ok(text)
}

/// Acknowledges an active alert (`ack` on its device's groups): repeats stop.
pub async fn ack(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let text = comment(body)?;
    let (doc, estate) = visible(state, caller, raw).await?;
    require(caller, scope_of(&estate, doc.monitor_object_id), Level::Ack)?;
    if doc.cleared {
        return Err(ApiError::BadRequest(format!(
            "alert DS{} has cleared; only active alerts can be acknowledged",
            doc.id
        )));
    }
    let (who, now) = (caller.user.username.clone(), state.portal.now());
    let audit = caller.actor.event(
        now,
        "alert.ack",
        format!(
            "acknowledged alert DS{}: {}",
            doc.id,
            text.chars().take(200).collect::<String>()
        ),
    );
    let updated = objects::update::<AlertDoc, _>(
        state.portal.store.as_ref(),
        doc.id,
        move |d| {
            if d.cleared {
                return Err(StoreError::Invalid("the alert has cleared".into()));
            }
            d.acked = true;
            d.acked_by = who;
            d.acked_epoch = secs(now);
            d.ack_comment = text;
            Ok(())
        },
        Some(audit),
    )
    .await?;
    Ok(render_alert(&estate, &updated))
}

/// Adds a note to an alert (`ack` on its device's groups).
pub async fn note(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let text = comment(body)?;
    let (doc, estate) = visible(state, caller, raw).await?;
    require(caller, scope_of(&estate, doc.monitor_object_id), Level::Ack)?;
    let (who, now) = (caller.user.username.clone(), state.portal.now());
    let audit = caller.actor.event(
        now,
        "alert.note",
        format!("added a note to alert DS{}", doc.id),
    );
    let updated = objects::update::<AlertDoc, _>(
        state.portal.store.as_ref(),
        doc.id,
        move |d| {
            if d.notes.len() >= MAX_NOTES {
                return Err(StoreError::Invalid(format!(
                    "an alert holds at most {MAX_NOTES} notes"
                )));
            }
            d.notes.push(AlertNote {
                by: who,
                epoch: secs(now),
                comment: text,
            });
            Ok(())
        },
        Some(audit),
    )
    .await?;
    Ok(render_alert(&estate, &updated))
}

// ---------------------------------------------------------------- threshold overrides

fn render_overrides(list: &[ThresholdOverride]) -> Value {
    json!({
        "thresholds": list
            .iter()
            .map(|o| json!({"datasource": o.datasource, "datapoint": o.datapoint, "alertExpr": o.alert_expr}))
            .collect::<Vec<_>>()
    })
}

fn not_found(owner: Owner) -> ApiError {
    match owner {
        Owner::Device(id) => ApiError::NotFound(format!("device {id} not found")),
        Owner::Group(id) => ApiError::NotFound(format!("device group {id} not found")),
    }
}

fn owner_scope(
    estate: &Estate,
    owner: Owner,
) -> Result<(Vec<i64>, &[ThresholdOverride]), ApiError> {
    match owner {
        Owner::Device(id) => estate
            .devices
            .get(&id)
            .map(|v: &DeviceView| {
                (
                    v.all_groups.iter().copied().collect(),
                    v.doc.thresholds.as_slice(),
                )
            })
            .ok_or_else(|| not_found(owner)),
        Owner::Group(id) => estate
            .groups
            .get(&id)
            .map(|n| {
                let mut c = n.ancestors.clone();
                c.push(id);
                (c, n.doc.thresholds.as_slice())
            })
            .ok_or_else(|| not_found(owner)),
    }
}

/// A device's or group's threshold overrides.
pub async fn get_settings(
    state: &AppState,
    caller: &Caller,
    owner: Owner,
) -> Result<Value, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let (scope, list) = owner_scope(&estate, owner)?;
    if !may(caller, scope, Level::Read) {
        return Err(not_found(owner));
    }
    Ok(render_overrides(list))
}

/// Parses `{"thresholds": [{"datasource", "datapoint", "alertExpr"}]}`: every expression
/// checked with `Threshold::parse` and stored in its canonical form; `""` disables alerting
/// on that datapoint below this level.
fn parse_overrides(body: &Value) -> Result<Vec<ThresholdOverride>, ApiError> {
    let Some(Value::Array(items)) = body.get("thresholds") else {
        return Err(ApiError::BadRequest(
            "the body is {\"thresholds\": [{\"datasource\", \"datapoint\", \"alertExpr\"}]}".into(),
        ));
    };
    if items.len() > MAX_OVERRIDES {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_OVERRIDES} thresholds"
        )));
    }
    let mut out: Vec<ThresholdOverride> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| -> Result<String, ApiError> {
            let v = super::fields::str_field(item, name)?.unwrap_or_default();
            super::fields::check_text(name, &v, 255)?;
            Ok(v.trim().to_string())
        };
        let (datasource, datapoint) = (field("datasource")?, field("datapoint")?);
        if datasource.is_empty() || datapoint.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "threshold {i}: `datasource` and `datapoint` are required"
            )));
        }
        let expr = match item.get("alertExpr") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(ApiError::BadRequest(format!(
                    "threshold {i}: `alertExpr` must be a string"
                )))
            }
        };
        let alert_expr = Threshold::parse(&expr)
            .map_err(|e| {
                ApiError::BadRequest(format!("threshold {i} ({datasource}/{datapoint}): {e}"))
            })?
            .map(|t| t.to_string())
            .unwrap_or_default();
        if out.iter().any(|o| {
            o.datasource.eq_ignore_ascii_case(&datasource)
                && o.datapoint.eq_ignore_ascii_case(&datapoint)
        }) {
            return Err(ApiError::BadRequest(format!(
                "threshold {i}: {datasource}/{datapoint} is listed twice"
            )));
        }
        out.push(ThresholdOverride {
            datasource,
            datapoint,
            alert_expr,
        });
    }
    Ok(out)
}

/// Replaces a device's or group's threshold overrides (`write` on it).
pub async fn put_settings(
    state: &AppState,
    caller: &Caller,
    owner: Owner,
    body: &Value,
) -> Result<Value, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let (scope, _) = owner_scope(&estate, owner)?;
    if !may(caller, scope.clone(), Level::Read) {
        return Err(not_found(owner));
    }
    require(caller, scope, Level::Write)?;
    let list = parse_overrides(body)?;
    let now = state.portal.now();
    let store = state.portal.store.as_ref();
    let answer = render_overrides(&list);
    match owner {
        Owner::Device(id) => {
            let audit = caller.actor.event(
                now,
                "alertsettings.update",
                format!("set {} threshold overrides on device {id}", list.len()),
            );
            objects::update::<DeviceDoc, _>(
                store,
                id,
                move |d| {
                    d.thresholds = list;
                    Ok(())
                },
                Some(audit),
            )
            .await?;
        }
        Owner::Group(id) => {
            let audit = caller.actor.event(
                now,
                "alertsettings.update",
                format!(
                    "set {} threshold overrides on device group {id}",
                    list.len()
                ),
            );
            objects::update::<DeviceGroupDoc, _>(
                store,
                id,
                move |g| {
                    g.thresholds = list;
                    Ok(())
                },
                Some(audit),
            )
            .await?;
        }
    }
    state.estate.invalidate();
    Ok(answer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_read_defensively() {
        let d = read_definition(&json!({
            "collectInterval": "120",
            "dataPoints": [
                {"name": "usage", "alertExpr": "> 90", "alertTransitionInterval": 3,
                 "alertClearTransitionInterval": 99, "alertForNoData": 3},
                {"name": 5},
                {"name": "idle", "alertForNoData": 1},
            ]
        }));
        assert_eq!(d.poll_ms, 120_000);
        let u = &d.points["usage"];
        assert_eq!((u.alert_expr.as_str(), u.trigger, u.clear), ("> 90", 3, 60));
        assert_eq!(u.no_data, Some(Severity::Error));
        assert_eq!(d.points["idle"].no_data, None);
        let empty = read_definition(&json!("nonsense"));
        assert_eq!(empty.poll_ms, DEFAULT_POLL_MS);
        assert!(empty.points.is_empty());
    }

    #[test]
    fn overrides_are_validated_and_canonical() {
        let ok = parse_overrides(&json!({"thresholds": [
            {"datasource": "HostCPU", "datapoint": "usage", "alertExpr": ">  60 80"},
            {"datasource": "HostCPU", "datapoint": "idle", "alertExpr": ""},
        ]}))
        .unwrap();
        assert_eq!(ok[0].alert_expr, "> 60 80");
        assert_eq!(ok[1].alert_expr, "");
        for bad in [
            json!({}),
            json!({"thresholds": [{"datasource": "a", "datapoint": "b", "alertExpr": "> x"}]}),
            json!({"thresholds": [{"datasource": "", "datapoint": "b", "alertExpr": "> 1"}]}),
            json!({"thresholds": [{"datasource": "a", "datapoint": "b"}, {"datasource": "A", "datapoint": "B"}]}),
        ] {
            assert!(
                matches!(parse_overrides(&bad), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn alert_ids() {
        assert_eq!(alert_id("DS12").unwrap(), 12);
        assert_eq!(alert_id("12").unwrap(), 12);
        assert!(alert_id("LMD12").is_err());
    }
}
