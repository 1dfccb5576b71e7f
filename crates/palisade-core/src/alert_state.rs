//! The alert state machine of one datapoint: one (device, datasource, instance, datapoint).
//!
//! The portal keeps one [`AlertState`] per datapoint (a few integers, persisted as JSON), feeds
//! every sample to [`AlertState::observe`], calls [`AlertState::check_no_data`] from a timer,
//! and acts on the [`Transition`] each call returns. The configuration ([`AlertConfig`]) is
//! LogicMonitor's: the effective `alertExpr` (see [`crate::threshold::effective`]),
//! `alertTransitionInterval`, `alertClearTransitionInterval` and `alertForNoData`.
//!
//! # Rules
//!
//! Let `n = max(trigger_after, 1)` and `m = max(clear_after, 1)`: LogicMonitor's
//! `alertTransitionInterval` and `alertClearTransitionInterval` of 0 and of 1 both mean "on
//! the first poll".
//!
//! Each severity `S` (warning, error, critical) is a latch over the polls:
//! - **held** once `n` consecutive polls reached at least `S` (the threshold's highest
//!   breached level was `S` or higher);
//! - **released** once `m` consecutive polls stayed below `S`.
//!
//! The alert's severity is the highest held level. Because a poll at critical is also "at
//! least error" and "at least warning", the held levels are always warning up to some level,
//! and this gives:
//! - **Open** when the first level is held, at the highest level already held. With `n = 3`,
//!   polls warning, error, critical open a *warning* alert; polls critical ×3 open *critical*.
//! - **Escalation is immediate** once a higher level has its `n` consecutive polls (counting
//!   polls from before the alert opened): warning, error, critical, critical, critical with
//!   `n = 3` open warning on the 3rd poll, change to error on the 4th, critical on the 5th.
//! - **De-escalation** needs `m` consecutive polls below the current level; the alert then
//!   drops to the highest lower level that has *not* itself seen `m` consecutive polls below
//!   it. With `m = 2` a critical alert followed by error, warning changes to error (error has
//!   seen only one poll below it); followed by warning, warning it changes to warning.
//! - **Clear** after `m` consecutive polls that breach nothing.
//! - A poll in between that does not reach a level resets that level's trigger count, and one
//!   that does reach it resets its clear count.
//!
//! Samples:
//! - **Ordering and replay.** A sample whose timestamp is not newer than the newest one seen
//!   is ignored (`Transition::None`, state unchanged), so replaying a retried batch counts
//!   nothing twice.
//! - **NaN is "no data"** (as in LogicMonitor): it neither breaches nor counts as clean, and
//!   does not reset the no-data timer. It does advance the replay watermark.
//! - **Gaps.** A sample arriving at least `no_data_polls` poll intervals after the previous
//!   numeric sample restarts the pending trigger and clear counts (those polls were not
//!   consecutive); an open alert stays open.
//! - **No threshold** (`cfg.threshold == None`, alerting disabled): the next sample clears an
//!   open threshold alert at once, whatever `clear_after` says.
//!
//! No data (`alertForNoData`, [`AlertConfig::no_data`]):
//! - [`AlertState::check_no_data`] opens a no-data alert once `now_ms` is at least
//!   `no_data_polls × poll_interval_ms` after the last numeric sample (or, before any sample,
//!   after the first `check_no_data` call). Its severity is fixed when it opens.
//! - **A no-data alert replaces an open threshold alert** ([`Transition::NoDataOpen`]'s
//!   `replaces`: the portal closes that alert) and restarts all counts: a datapoint has at most
//!   one open alert, so one call never needs to report two alerts opening or closing.
//! - The next numeric sample clears it ([`Transition::NoDataClear`]) and is evaluated as the
//!   first poll afresh; if that alone opens a threshold alert (`n = 1`), `NoDataClear::open`
//!   says so and the portal opens it as it would for [`Transition::Open`].
//! - When no-data alerting is switched off while a no-data alert is open, the next
//!   `check_no_data` clears it with `value: None`.
//!
//! ```
//! use palisade_core::alert_state::{AlertConfig, AlertState, Transition};
//! use palisade_core::threshold::{Severity, Threshold};
//! let mut cfg = AlertConfig::new(Threshold::parse("> 80 90").unwrap(), 60_000);
//! cfg.trigger_after = 2;
//! let mut s = AlertState::default();
//! assert_eq!(s.observe(&cfg, 0, 95.0), Transition::None);
//! assert_eq!(
//!     s.observe(&cfg, 60_000, 95.0),
//!     Transition::Open { severity: Severity::Error, value: 95.0, threshold: "> 90".into() }
//! );
//! assert_eq!(s.observe(&cfg, 60_000, 1.0), Transition::None); // replay: ignored
//! assert_eq!(s.observe(&cfg, 120_000, 1.0), Transition::Clear { value: 1.0 });
//! ```

use crate::threshold::{Severity, Threshold, ThresholdError};

/// Default number of poll intervals without a sample before data counts as missing.
pub const DEFAULT_NO_DATA_POLLS: u32 = 3;
/// Largest `alertTransitionInterval` / `alertClearTransitionInterval` LogicMonitor accepts.
pub const MAX_TRANSITION_INTERVAL: u32 = 60;
/// Largest `no_data_polls` accepted by [`AlertConfig::validate`].
pub const MAX_NO_DATA_POLLS: u32 = 1_000;

/// How one datapoint alerts. Build with [`AlertConfig::new`] or [`AlertConfig::from_lm`].
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// The effective threshold; `None` disables alerting on the value.
    pub threshold: Option<Threshold>,
    /// `alertTransitionInterval`: consecutive polls a level must hold before it alerts
    /// (0 and 1 both mean the first poll).
    pub trigger_after: u32,
    /// `alertClearTransitionInterval`: consecutive polls below a level before it is released
    /// (0 and 1 both mean the first poll).
    pub clear_after: u32,
    /// `alertForNoData`: the severity of the no-data alert, `None` for no such alert.
    pub no_data: Option<Severity>,
    /// The datapoint's poll (collection) interval in milliseconds.
    pub poll_interval_ms: i64,
    /// Poll intervals without a numeric sample after which data counts as missing.
    pub no_data_polls: u32,
}

/// Why an alert configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertConfigError {
    /// The `alertExpr` is invalid.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// `alertTransitionInterval` outside 0–60.
    #[error("alertTransitionInterval must be 0 to 60, not {0}")]
    TransitionInterval(i64),
    /// `alertClearTransitionInterval` outside 0–60.
    #[error("alertClearTransitionInterval must be 0 to 60, not {0}")]
    ClearTransitionInterval(i64),
    /// `alertForNoData` outside 1–4.
    #[error("alertForNoData must be 1 (none), 2 (warning), 3 (error) or 4 (critical), not {0}")]
    NoDataCode(i64),
    /// A poll interval that is not positive.
    #[error("the poll interval must be positive, not {0} ms")]
    PollInterval(i64),
    /// `no_data_polls` outside 1–[`MAX_NO_DATA_POLLS`].
    #[error("no-data poll count must be 1 to 1000, not {0}")]
    NoDataPolls(u32),
}

/// The severity for LogicMonitor's `alertForNoData` code: 1 none, 2 warning, 3 error,
/// 4 critical.
pub fn no_data_from_lm_code(code: i64) -> Result<Option<Severity>, AlertConfigError> {
    match code {
        1 => Ok(None),
        _ => u8::try_from(code)
            .ok()
            .and_then(Severity::from_lm_code)
            .map(Some)
            .ok_or(AlertConfigError::NoDataCode(code)),
    }
}

/// LogicMonitor's `alertForNoData` code for a no-data severity (1 for none).
pub fn no_data_lm_code(no_data: Option<Severity>) -> u8 {
    no_data.map_or(1, Severity::as_lm_code)
}

impl AlertConfig {
    /// LogicMonitor's defaults: alert on the first poll, clear on the first clean poll, no
    /// no-data alert, no data after [`DEFAULT_NO_DATA_POLLS`] intervals.
    pub fn new(threshold: Option<Threshold>, poll_interval_ms: i64) -> AlertConfig {
        AlertConfig {
            threshold,
            trigger_after: 0,
            clear_after: 0,
            no_data: None,
            poll_interval_ms,
            no_data_polls: DEFAULT_NO_DATA_POLLS,
        }
    }

    /// A configuration from LogicMonitor's datapoint fields, validated.
    pub fn from_lm(
        alert_expr: &str,
        alert_transition_interval: i64,
        alert_clear_transition_interval: i64,
        alert_for_no_data: i64,
        poll_interval_ms: i64,
    ) -> Result<AlertConfig, AlertConfigError> {
        let interval = |v: i64| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v <= MAX_TRANSITION_INTERVAL)
        };
        let cfg = AlertConfig {
            threshold: Threshold::parse(alert_expr)?,
            trigger_after: interval(alert_transition_interval).ok_or(
                AlertConfigError::TransitionInterval(alert_transition_interval),
            )?,
            clear_after: interval(alert_clear_transition_interval).ok_or(
                AlertConfigError::ClearTransitionInterval(alert_clear_transition_interval),
            )?,
            no_data: no_data_from_lm_code(alert_for_no_data)?,
            poll_interval_ms,
            no_data_polls: DEFAULT_NO_DATA_POLLS,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the ranges [`AlertConfig::from_lm`] enforces. The state machine never fails on
    /// an unvalidated configuration: it reads 0 as 1 and saturates.
    pub fn validate(&self) -> Result<(), AlertConfigError> {
        if self.trigger_after > MAX_TRANSITION_INTERVAL {
            return Err(AlertConfigError::TransitionInterval(i64::from(
                self.trigger_after,
            )));
        }
        if self.clear_after > MAX_TRANSITION_INTERVAL {
            return Err(AlertConfigError::ClearTransitionInterval(i64::from(
                self.clear_after,
            )));
        }
        if self.poll_interval_ms <= 0 {
            return Err(AlertConfigError::PollInterval(self.poll_interval_ms));
        }
        if self.no_data_polls == 0 || self.no_data_polls > MAX_NO_DATA_POLLS {
            return Err(AlertConfigError::NoDataPolls(self.no_data_polls));
        }
        Ok(())
    }

    /// How long without a numeric sample counts as no data:
    /// `max(no_data_polls, 1) × max(poll_interval_ms, 1)`, saturating.
    pub fn no_data_after_ms(&self) -> i64 {
        self.poll_interval_ms
            .max(1)
            .saturating_mul(i64::from(self.no_data_polls.max(1)))
    }

    fn trigger_polls(&self) -> u32 {
        self.trigger_after.max(1)
    }

    fn clear_polls(&self) -> u32 {
        self.clear_after.max(1)
    }
}

/// What a call changed, for the portal to act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Nothing to do.
    None,
    /// A threshold alert opens.
    Open {
        /// Its severity.
        severity: Severity,
        /// The sample that opened it.
        value: f64,
        /// The breached condition as LogicMonitor shows it (`"> 80"`).
        threshold: String,
    },
    /// The open threshold alert changes severity.
    Change {
        /// The severity before.
        from: Severity,
        /// The severity now.
        to: Severity,
        /// The sample that changed it.
        value: f64,
        /// The condition of the new severity (`"> 90"`).
        threshold: String,
    },
    /// The open threshold alert clears.
    Clear {
        /// The sample that cleared it.
        value: f64,
    },
    /// A no-data alert opens.
    NoDataOpen {
        /// Its severity (`alertForNoData`).
        severity: Severity,
        /// The threshold alert it replaces, which the portal closes; `None` if there was none.
        replaces: Option<Severity>,
    },
    /// The no-data alert clears.
    NoDataClear {
        /// The sample that cleared it; `None` when no-data alerting was switched off.
        value: Option<f64>,
        /// The threshold alert that this same sample opens (severity and condition text), as
        /// for [`Transition::Open`]; `None` for none.
        open: Option<(Severity, String)>,
    },
}

/// The persisted state of one datapoint. `AlertState::default()` is a datapoint never seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AlertState {
    /// Newest sample timestamp observed, NaN samples included (the replay watermark).
    pub last_ts_ms: Option<i64>,
    /// Newest numeric (non-NaN) sample timestamp: the reference for no-data.
    pub last_data_ms: Option<i64>,
    /// When no-data watching began for a datapoint that has never reported (the first
    /// `check_no_data` before any numeric sample).
    pub watch_since_ms: Option<i64>,
    /// Severity of the open threshold alert.
    pub severity: Option<Severity>,
    /// Severity of the open no-data alert.
    pub no_data: Option<Severity>,
    /// Per level (warning, error, critical): consecutive polls at or above it.
    pub breaching: [u32; 3],
    /// Per level (warning, error, critical): consecutive polls below it.
    pub clean: [u32; 3],
}

impl AlertState {
    /// Feeds one sample taken at `ts_ms` (see the module doc for the rules).
    pub fn observe(&mut self, cfg: &AlertConfig, ts_ms: i64, value: f64) -> Transition {
        if self.last_ts_ms.is_some_and(|last| ts_ms <= last) {
            return Transition::None;
        }
        self.last_ts_ms = Some(ts_ms);
        if value.is_nan() {
            return Transition::None;
        }
        let gap = self
            .last_data_ms
            .is_some_and(|last| ts_ms.saturating_sub(last) >= cfg.no_data_after_ms());
        if gap {
            self.reset_counts();
        }
        self.last_data_ms = Some(ts_ms);
        self.watch_since_ms = None;
        let no_data_cleared = self.no_data.take().is_some();

        let Some(threshold) = &cfg.threshold else {
            self.reset_counts();
            let was = self.severity.take();
            return if no_data_cleared {
                Transition::NoDataClear {
                    value: Some(value),
                    open: None,
                }
            } else if was.is_some() {
                Transition::Clear { value }
            } else {
                Transition::None
            };
        };

        let level = threshold.evaluate(value);
        for s in Severity::ALL {
            let i = s.index();
            if level.is_some_and(|l| l >= s) {
                self.breaching[i] = self.breaching[i].saturating_add(1);
                self.clean[i] = 0;
            } else {
                self.clean[i] = self.clean[i].saturating_add(1);
                self.breaching[i] = 0;
            }
        }
        let (n, m) = (cfg.trigger_polls(), cfg.clear_polls());
        let before = self.severity;
        let held = |s: Severity| {
            if before.is_some_and(|b| s <= b) {
                self.clean[s.index()] < m
            } else {
                self.breaching[s.index()] >= n
            }
        };
        let after = Severity::ALL.iter().rev().copied().find(|s| held(*s));
        self.severity = after;

        let text = |s: Severity| {
            threshold
                .level_expr(s)
                .unwrap_or_else(|| threshold.to_string())
        };
        if no_data_cleared {
            return Transition::NoDataClear {
                value: Some(value),
                open: after.map(|s| (s, text(s))),
            };
        }
        match (before, after) {
            (None, Some(severity)) => Transition::Open {
                severity,
                value,
                threshold: text(severity),
            },
            (Some(from), Some(to)) if from != to => Transition::Change {
                from,
                to,
                value,
                threshold: text(to),
            },
            (Some(_), None) => Transition::Clear { value },
            _ => Transition::None,
        }
    }

    /// Opens a no-data alert when data has been missing long enough at `now_ms` (see the
    /// module doc); call it from a timer, at least once per poll interval.
    pub fn check_no_data(&mut self, cfg: &AlertConfig, now_ms: i64) -> Transition {
        let Some(severity) = cfg.no_data else {
            return if self.no_data.take().is_some() {
                Transition::NoDataClear {
                    value: None,
                    open: None,
                }
            } else {
                Transition::None
            };
        };
        if self.no_data.is_some() {
            return Transition::None;
        }
        let Some(since) = self.last_data_ms.or(self.watch_since_ms) else {
            self.watch_since_ms = Some(now_ms);
            return Transition::None;
        };
        if now_ms.saturating_sub(since) < cfg.no_data_after_ms() {
            return Transition::None;
        }
        self.reset_counts();
        self.no_data = Some(severity);
        Transition::NoDataOpen {
            severity,
            replaces: self.severity.take(),
        }
    }

    fn reset_counts(&mut self) {
        self.breaching = [0; 3];
        self.clean = [0; 3];
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use Severity::{Critical as C, Error as E, Warning as W};

    const P: i64 = 60_000;

    fn cfg(expr: &str, trigger_after: u32, clear_after: u32) -> AlertConfig {
        let mut c = AlertConfig::new(Threshold::parse(expr).unwrap(), P);
        c.trigger_after = trigger_after;
        c.clear_after = clear_after;
        c
    }

    /// Feeds `values` one poll apart after the state's last timestamp; returns the transitions.
    fn feed(s: &mut AlertState, c: &AlertConfig, values: &[f64]) -> Vec<Transition> {
        values
            .iter()
            .map(|v| {
                let ts = s.last_ts_ms.map_or(0, |t| t + P);
                s.observe(c, ts, *v)
            })
            .collect()
    }

    fn open(severity: Severity, value: f64, threshold: &str) -> Transition {
        Transition::Open {
            severity,
            value,
            threshold: threshold.into(),
        }
    }

    fn change(from: Severity, to: Severity, value: f64, threshold: &str) -> Transition {
        Transition::Change {
            from,
            to,
            value,
            threshold: threshold.into(),
        }
    }

    const N: Transition = Transition::None;

    // values in the ranges of "> 60 80 90"
    const OK: f64 = 10.0;
    const WV: f64 = 70.0;
    const EV: f64 = 85.0;
    const CV: f64 = 95.0;
    const EXPR: &str = "> 60 80 90";

    #[test]
    fn zero_and_one_open_on_the_first_breach() {
        for n in [0, 1] {
            let c = cfg(EXPR, n, n);
            let mut s = AlertState::default();
            assert_eq!(
                feed(&mut s, &c, &[OK, WV, OK]),
                vec![N, open(W, WV, "> 60"), Transition::Clear { value: OK }]
            );
        }
    }

    #[test]
    fn opens_after_n_consecutive_breaches() {
        let c = cfg(EXPR, 3, 0);
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[WV, WV, WV, WV]),
            vec![N, N, open(W, WV, "> 60"), N]
        );
        assert_eq!(s.severity, Some(W));
    }

    #[test]
    fn a_clean_poll_resets_the_trigger_count() {
        let c = cfg(EXPR, 3, 0);
        let mut s = AlertState::default();
        assert_eq!(feed(&mut s, &c, &[WV, WV, OK, WV, WV]), vec![N, N, N, N, N]);
        assert_eq!(s.breaching, [2, 0, 0]);
        assert_eq!(feed(&mut s, &c, &[CV]), vec![open(W, CV, "> 60")]);
    }

    #[test]
    fn opens_at_the_highest_level_already_held() {
        let c = cfg(EXPR, 3, 0);
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[CV, CV, CV]),
            vec![N, N, open(C, CV, "> 90")]
        );
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[WV, EV, CV]),
            vec![N, N, open(W, CV, "> 60")]
        );
    }

    #[test]
    fn escalation_is_immediate_once_the_level_has_its_count() {
        let c = cfg(EXPR, 3, 5);
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[WV, EV, CV, CV, CV]),
            vec![
                N,
                N,
                open(W, CV, "> 60"),
                change(W, E, CV, "> 80"),
                change(E, C, CV, "> 90")
            ]
        );
        // with n = 1 every escalation happens on the poll itself
        let c = cfg(EXPR, 1, 5);
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[WV, EV, CV]),
            vec![
                open(W, WV, "> 60"),
                change(W, E, EV, "> 80"),
                change(E, C, CV, "> 90")
            ]
        );
    }

    #[test]
    fn escalation_count_is_reset_by_a_lower_poll() {
        let c = cfg(EXPR, 2, 0);
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[WV, WV, CV, WV, CV, CV]),
            vec![N, open(W, WV, "> 60"), N, N, N, change(W, C, CV, "> 90")]
        );
    }

    #[test]
    fn clears_after_m_clean_polls() {
        let c = cfg(EXPR, 1, 3);
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[EV, OK, OK, OK]),
            vec![open(E, EV, "> 80"), N, N, Transition::Clear { value: OK }]
        );
        assert_eq!(s.severity, None);
        assert_eq!(s.clean, [3, 3, 4]);
    }

    #[test]
    fn a_breach_resets_the_clear_count() {
        let c = cfg(EXPR, 1, 3);
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[WV, OK, OK, WV, OK, OK]),
            vec![open(W, WV, "> 60"), N, N, N, N, N]
        );
        assert_eq!(
            feed(&mut s, &c, &[OK]),
            vec![Transition::Clear { value: OK }]
        );
    }

    #[test]
    fn de_escalation_needs_m_polls_below() {
        let c = cfg(EXPR, 1, 2);
        let mut s = AlertState::default();
        assert_eq!(feed(&mut s, &c, &[CV]), vec![open(C, CV, "> 90")]);
        assert_eq!(
            feed(&mut s, &c, &[EV, EV]),
            vec![N, change(C, E, EV, "> 80")]
        );
        assert_eq!(
            feed(&mut s, &c, &[WV, WV]),
            vec![N, change(E, W, WV, "> 60")]
        );
        assert_eq!(
            feed(&mut s, &c, &[OK, OK]),
            vec![N, Transition::Clear { value: OK }]
        );
    }

    #[test]
    fn de_escalation_stops_at_a_level_not_yet_released() {
        let c = cfg(EXPR, 1, 2);
        let mut s = AlertState::default();
        feed(&mut s, &c, &[CV]);
        // error has seen one poll below it, critical two: down to error only
        assert_eq!(
            feed(&mut s, &c, &[EV, WV]),
            vec![N, change(C, E, WV, "> 80")]
        );
        assert_eq!(feed(&mut s, &c, &[WV]), vec![change(E, W, WV, "> 60")]);
        // straight from critical to clear when every level saw m clean polls at once
        let mut s = AlertState::default();
        feed(&mut s, &c, &[CV]);
        assert_eq!(
            feed(&mut s, &c, &[OK, OK]),
            vec![N, Transition::Clear { value: OK }]
        );
        // critical, clean, warning: error and critical are released, warning is held again
        let mut s = AlertState::default();
        feed(&mut s, &c, &[CV]);
        assert_eq!(
            feed(&mut s, &c, &[OK, WV]),
            vec![N, change(C, W, WV, "> 60")]
        );
    }

    #[test]
    fn escalation_during_de_escalation() {
        let c = cfg(EXPR, 1, 3);
        let mut s = AlertState::default();
        feed(&mut s, &c, &[EV]);
        assert_eq!(
            feed(&mut s, &c, &[WV, WV, CV, WV]),
            vec![N, N, change(E, C, CV, "> 90"), N]
        );
    }

    #[test]
    fn replayed_and_old_samples_are_ignored() {
        let c = cfg(EXPR, 2, 2);
        let mut s = AlertState::default();
        assert_eq!(s.observe(&c, 1_000, WV), N);
        let snapshot = s.clone();
        // equal timestamp: no-op, even with another value
        assert_eq!(s.observe(&c, 1_000, WV), N);
        assert_eq!(s.observe(&c, 1_000, CV), N);
        assert_eq!(s.observe(&c, 999, CV), N);
        assert_eq!(s, snapshot);
        assert_eq!(s.observe(&c, 2_000, WV), open(W, WV, "> 60"));
        // replaying the whole batch changes nothing
        let snapshot = s.clone();
        for (ts, v) in [(1_000, WV), (2_000, WV)] {
            assert_eq!(s.observe(&c, ts, v), N);
        }
        assert_eq!(s, snapshot);
    }

    #[test]
    fn nan_is_neither_breach_nor_clean() {
        let c = cfg(EXPR, 2, 2);
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[WV, f64::NAN, WV]),
            vec![N, N, open(W, WV, "> 60")]
        );
        assert_eq!(
            feed(&mut s, &c, &[OK, f64::NAN, OK]),
            vec![N, N, Transition::Clear { value: OK }]
        );
        // NaN advances the replay watermark but not the data clock
        assert_eq!(s.observe(&c, 100 * P, f64::NAN), N);
        assert_eq!(s.last_ts_ms, Some(100 * P));
        assert_eq!(s.last_data_ms, Some(5 * P));
        assert_eq!(s.observe(&c, 100 * P, WV), N);
    }

    #[test]
    fn disabled_threshold_clears_at_once() {
        let c = cfg(EXPR, 1, 10);
        let mut s = AlertState::default();
        feed(&mut s, &c, &[CV]);
        let off = cfg("", 1, 10);
        assert_eq!(
            feed(&mut s, &off, &[CV, CV]),
            vec![Transition::Clear { value: CV }, N]
        );
        assert_eq!(s.breaching, [0; 3]);
    }

    #[test]
    fn partial_thresholds_only_reach_their_levels() {
        let c = cfg("< 10 5", 1, 1);
        let mut s = AlertState::default();
        assert_eq!(
            feed(&mut s, &c, &[20.0, 7.0, -1e9, 7.0, 20.0]),
            vec![
                N,
                open(W, 7.0, "< 10"),
                change(W, E, -1e9, "< 5"),
                change(E, W, 7.0, "< 10"),
                Transition::Clear { value: 20.0 }
            ]
        );
    }

    #[test]
    fn a_gap_restarts_pending_counts_but_keeps_the_alert() {
        let c = cfg(EXPR, 3, 3);
        let mut s = AlertState::default();
        assert_eq!(s.observe(&c, 0, WV), N);
        assert_eq!(s.observe(&c, P, WV), N);
        // three intervals of silence: the next breach is poll 1 again
        assert_eq!(s.observe(&c, 4 * P, WV), N);
        assert_eq!(s.breaching, [1, 0, 0]);
        assert_eq!(s.observe(&c, 5 * P, WV), N);
        assert_eq!(s.observe(&c, 6 * P, WV), open(W, WV, "> 60"));
        // a gap with an open alert: the alert stays, clean counting restarts
        assert_eq!(s.observe(&c, 7 * P, OK), N);
        assert_eq!(s.observe(&c, 8 * P, OK), N);
        assert_eq!(s.observe(&c, 20 * P, OK), N);
        assert_eq!(s.severity, Some(W));
        assert_eq!(s.observe(&c, 21 * P, OK), N);
        assert_eq!(s.observe(&c, 22 * P, OK), Transition::Clear { value: OK });
        // just under the gap length is still consecutive
        let mut s = AlertState::default();
        assert_eq!(s.observe(&c, 0, WV), N);
        assert_eq!(s.observe(&c, 3 * P - 1, WV), N);
        assert_eq!(s.observe(&c, 6 * P - 2, WV), open(W, WV, "> 60"));
    }

    fn no_data_cfg(expr: &str, trigger_after: u32, sev: Severity) -> AlertConfig {
        let mut c = cfg(expr, trigger_after, 0);
        c.no_data = Some(sev);
        c
    }

    #[test]
    fn no_data_opens_after_three_intervals_and_clears_on_the_next_sample() {
        let c = no_data_cfg(EXPR, 2, E);
        let mut s = AlertState::default();
        assert_eq!(s.observe(&c, 0, OK), N);
        assert_eq!(s.check_no_data(&c, P), N);
        assert_eq!(s.check_no_data(&c, 3 * P - 1), N);
        assert_eq!(
            s.check_no_data(&c, 3 * P),
            Transition::NoDataOpen {
                severity: E,
                replaces: None
            }
        );
        assert_eq!(s.check_no_data(&c, 4 * P), N);
        assert_eq!(s.check_no_data(&c, 100 * P), N);
        // NaN is no data: it does not clear
        assert_eq!(s.observe(&c, 4 * P, f64::NAN), N);
        assert_eq!(s.no_data, Some(E));
        // a sample older than the watermark does not clear either
        assert_eq!(s.observe(&c, 4 * P, OK), N);
        assert_eq!(
            s.observe(&c, 5 * P, OK),
            Transition::NoDataClear {
                value: Some(OK),
                open: None
            }
        );
        assert_eq!(s.no_data, None);
        assert_eq!(s.check_no_data(&c, 7 * P), N);
    }

    #[test]
    fn no_data_replaces_an_open_threshold_alert() {
        let c = no_data_cfg(EXPR, 2, C);
        let mut s = AlertState::default();
        assert_eq!(feed(&mut s, &c, &[EV, EV]), vec![N, open(E, EV, "> 80")]);
        assert_eq!(
            s.check_no_data(&c, 4 * P),
            Transition::NoDataOpen {
                severity: C,
                replaces: Some(E)
            }
        );
        assert_eq!(s.severity, None);
        assert_eq!(s.breaching, [0; 3]);
        // back with a breach: trigger counting starts afresh (n = 2)
        assert_eq!(
            s.observe(&c, 5 * P, EV),
            Transition::NoDataClear {
                value: Some(EV),
                open: None
            }
        );
        assert_eq!(s.observe(&c, 6 * P, EV), open(E, EV, "> 80"));
    }

    #[test]
    fn no_data_clear_reports_an_alert_the_same_sample_opens() {
        let c = no_data_cfg(EXPR, 0, W);
        let mut s = AlertState::default();
        s.observe(&c, 0, OK);
        assert_eq!(
            s.check_no_data(&c, 10 * P),
            Transition::NoDataOpen {
                severity: W,
                replaces: None
            }
        );
        assert_eq!(
            s.observe(&c, 11 * P, CV),
            Transition::NoDataClear {
                value: Some(CV),
                open: Some((C, "> 90".into()))
            }
        );
        assert_eq!(s.severity, Some(C));
        assert_eq!(s.no_data, None);
    }

    #[test]
    fn no_data_for_a_datapoint_that_never_reported() {
        let c = no_data_cfg(EXPR, 1, W);
        let mut s = AlertState::default();
        assert_eq!(s.check_no_data(&c, 1_000), N);
        assert_eq!(s.watch_since_ms, Some(1_000));
        assert_eq!(s.check_no_data(&c, 1_000 + 3 * P - 1), N);
        assert_eq!(
            s.check_no_data(&c, 1_000 + 3 * P),
            Transition::NoDataOpen {
                severity: W,
                replaces: None
            }
        );
    }

    #[test]
    fn no_data_off_never_opens_and_clears_a_stale_one() {
        let c = cfg(EXPR, 1, 1);
        let mut s = AlertState::default();
        s.observe(&c, 0, OK);
        assert_eq!(s.check_no_data(&c, 1_000 * P), N);
        let on = no_data_cfg(EXPR, 1, W);
        assert!(matches!(
            s.check_no_data(&on, 1_000 * P),
            Transition::NoDataOpen { .. }
        ));
        assert_eq!(
            s.check_no_data(&c, 1_001 * P),
            Transition::NoDataClear {
                value: None,
                open: None
            }
        );
        assert_eq!(s.check_no_data(&c, 1_002 * P), N);
    }

    #[test]
    fn no_data_with_disabled_threshold() {
        let mut c = no_data_cfg("", 1, E);
        c.no_data_polls = 1;
        let mut s = AlertState::default();
        s.observe(&c, 0, 1.0);
        assert!(matches!(
            s.check_no_data(&c, P),
            Transition::NoDataOpen { severity: E, .. }
        ));
        assert_eq!(
            s.observe(&c, 2 * P, 1.0),
            Transition::NoDataClear {
                value: Some(1.0),
                open: None
            }
        );
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut c = no_data_cfg(EXPR, 0, W);
        c.poll_interval_ms = i64::MAX;
        c.no_data_polls = u32::MAX;
        assert_eq!(c.no_data_after_ms(), i64::MAX);
        let mut s = AlertState::default();
        assert_eq!(s.observe(&c, -5, OK), N);
        assert_eq!(s.check_no_data(&c, i64::MAX - 10), N);
        assert!(matches!(
            s.clone().check_no_data(&c, i64::MAX),
            Transition::NoDataOpen { .. }
        ));
        c.no_data = None;
        assert_eq!(s.observe(&c, i64::MAX, CV), open(C, CV, "> 90"));
        assert_eq!(s.observe(&c, i64::MAX, OK), N);
        // degenerate configuration: zero interval reads as 1 ms, zero polls as 1
        c.poll_interval_ms = 0;
        c.no_data_polls = 0;
        assert_eq!(c.no_data_after_ms(), 1);
        let mut s = AlertState {
            breaching: [u32::MAX; 3],
            ..AlertState::default()
        };
        c.trigger_after = u32::MAX;
        assert_eq!(s.observe(&c, 0, CV), open(C, CV, "> 90"));
        assert_eq!(s.breaching, [u32::MAX; 3]);
    }

    #[test]
    fn state_round_trips_through_json() {
        let c = cfg(EXPR, 3, 2);
        let mut s = AlertState::default();
        feed(&mut s, &c, &[CV, CV, CV, EV]);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "last_ts_ms": 180_000, "last_data_ms": 180_000, "watch_since_ms": null,
                "severity": 4, "no_data": null,
                "breaching": [4, 4, 0], "clean": [0, 0, 1]
            })
        );
        let back: AlertState = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        // missing fields default (forward compatibility), bad severities are refused
        let empty: AlertState = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, AlertState::default());
        assert!(serde_json::from_str::<AlertState>(r#"{"severity": 7}"#).is_err());
    }

    #[test]
    fn config_from_lm() {
        let c = AlertConfig::from_lm("> 60 80 90", 3, 2, 4, P).unwrap();
        assert_eq!(c.threshold, Threshold::parse("> 60 80 90").unwrap());
        assert_eq!((c.trigger_after, c.clear_after), (3, 2));
        assert_eq!(c.no_data, Some(C));
        assert_eq!(c.no_data_polls, DEFAULT_NO_DATA_POLLS);
        assert_eq!(c.no_data_after_ms(), 3 * P);
        let none = AlertConfig::from_lm("", 0, 0, 1, P).unwrap();
        assert_eq!(none.threshold, None);
        assert_eq!(none.no_data, None);
        assert_eq!(
            AlertConfig::from_lm("> x", 0, 0, 1, P).map(|_| ()),
            Err(AlertConfigError::Threshold(ThresholdError::InvalidNumber {
                position: 1,
                token: "x".into()
            }))
        );
        assert_eq!(
            AlertConfig::from_lm("", 61, 0, 1, P),
            Err(AlertConfigError::TransitionInterval(61))
        );
        assert_eq!(
            AlertConfig::from_lm("", -1, 0, 1, P),
            Err(AlertConfigError::TransitionInterval(-1))
        );
        assert_eq!(
            AlertConfig::from_lm("", 0, 99, 1, P),
            Err(AlertConfigError::ClearTransitionInterval(99))
        );
        for code in [0, 5, -1, 258] {
            assert_eq!(
                AlertConfig::from_lm("", 0, 0, code, P),
                Err(AlertConfigError::NoDataCode(code))
            );
        }
        assert_eq!(
            AlertConfig::from_lm("", 0, 0, 1, 0),
            Err(AlertConfigError::PollInterval(0))
        );
        let mut bad = AlertConfig::new(None, P);
        bad.no_data_polls = 0;
        assert_eq!(bad.validate(), Err(AlertConfigError::NoDataPolls(0)));
    }

    #[test]
    fn no_data_codes() {
        assert_eq!(no_data_from_lm_code(1), Ok(None));
        assert_eq!(no_data_from_lm_code(2), Ok(Some(W)));
        assert_eq!(no_data_from_lm_code(3), Ok(Some(E)));
        assert_eq!(no_data_from_lm_code(4), Ok(Some(C)));
        for code in [1, 2, 3, 4] {
            assert_eq!(
                i64::from(no_data_lm_code(no_data_from_lm_code(code).unwrap())),
                code
            );
        }
    }
}
