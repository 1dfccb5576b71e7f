//! A PromQL subset for Palisade's Prometheus-compatible query API, so Grafana can use
//! Palisade as a Prometheus data source.
//!
//! * [`parser`] — a hand-written lexer and recursive-descent parser to an [`ast::Expr`],
//!   with Prometheus' precedence and type checks, and typed [`parser::ParseError`]s that
//!   carry the byte offset.
//! * [`eval`] — instant and range evaluation over any
//!   [`TimeSeriesStore`](palisade_tsdb::TimeSeriesStore), with Prometheus semantics.
//! * [`api`] — the Prometheus HTTP API (`query`, `query_range`, `series`, `labels`,
//!   `label/<name>/values`) as functions from decoded parameters to
//!   `(status, serde_json::Value)`; `query_text` / `query_range_text` give the same body
//!   as a ready JSON string (much cheaper for large matrices).
//!
//! ```no_run
//! # async fn demo(store: &dyn palisade_tsdb::TimeSeriesStore) {
//! use palisade_promql::{api, eval::EvalOptions};
//! let params = vec![
//!     ("query".to_string(), "sum by (device) (rate(http_requests_total[5m]))".to_string()),
//!     ("start".into(), "1700000000".into()),
//!     ("end".into(), "1700003600".into()),
//!     ("step".into(), "60".into()),
//! ];
//! let (status, body) = api::query_range(store, &params, &EvalOptions::default()).await;
//! # }
//! ```
//!
//! # Supported
//!
//! * Literals: numbers (`1`, `1.5`, `.5`, `1e3`, `0x1f`, `Inf`, `NaN`), strings (`"..."`,
//!   `'...'` with Go escapes, raw `` `...` ``), durations `ms s m h d w y`, combined
//!   largest first (`1h30m`).
//! * Selectors: `metric{l="v", l!="v", l=~"re", l!~"re"}`, `{__name__=~"..."}` (at least one
//!   matcher must not match the empty string; regular expressions are fully anchored),
//!   range selectors `x[5m]`, `offset 5m` (also negative) on both.
//! * Functions: `rate irate increase delta idelta`, `avg_ sum_ min_ max_ count_ last_
//!   present_ stddev_ stdvar_over_time`, `changes resets`, `abs ceil floor round sqrt exp ln
//!   log2 log10 sgn`, `clamp clamp_min clamp_max`, `time() vector(s) scalar(v)`,
//!   `sort sort_desc`.
//! * Aggregations: `sum avg min max count group stddev stdvar topk bottomk quantile`, with
//!   `by (...)` or `without (...)` before or after the operand.
//! * Binary operators `+ - * / % ^`, `== != > < >= <=` (with `bool`), `and or unless`,
//!   between scalars and instant vectors; vector/vector one-to-one matching on all labels
//!   but the metric name, or `on (...)` / `ignoring (...)`; unary minus; parentheses.
//!
//! Semantics follow Prometheus 3: lookback of 5 minutes for instant selectors
//! (`(t - 5m, t]`), left-open range windows `(t - range, t]`, `rate`/`increase`/`delta`
//! with Prometheus' extrapolation and counter-reset handling, `irate`/`idelta` from the
//! last two samples, staleness markers honoured, metric names dropped where Prometheus
//! drops them, Kahan summation for sums and means.
//!
//! # Not supported
//!
//! Subqueries (`x[1h:5m]`), the `@` modifier, `group_left` / `group_right` (many-to-one
//! matching), `atan2`, `count_values`, `limitk`, `limit_ratio`, native histograms and
//! the histogram functions (`histogram_quantile`, ...), `label_replace` / `label_join`,
//! `absent*`, `predict_linear`, `deriv`, `holt_winters`, `quantile_over_time`, time
//! functions (`hour()`, `day_of_week()`, ...), `timestamp()`, experimental duration
//! expressions and UTF-8 quoted metric / label names.
//!
//! # Limits
//!
//! * Query text: [`parser::MAX_QUERY_LEN`] (64 KiB); tree depth: [`parser::MAX_DEPTH`]
//!   (64 levels; the parser counts depth before recursing, so deep input is an error, never
//!   a stack overflow). Parsing and evaluating the deepest accepted expression fits in a
//!   1 MiB stack even in debug builds (tested), half of a Tokio worker's.
//! * Range queries: at most [`eval::EvalOptions::max_steps`] (11,000) steps per series.
//! * Samples: at most [`eval::EvalOptions::max_samples`] (50 M) raw samples fetched per query,
//!   and as many points (series × steps) per selector or range function; checked after each
//!   selector's fetch.
//! * Optional timeout ([`eval::EvalOptions::timeout`]) checked between fetches and during
//!   evaluation (a running store call is not interrupted).
//! * Evaluation runs on the calling task once the samples are fetched (CPU-bound work of
//!   up to a few seconds for very large queries).
#![deny(missing_docs)]

pub mod api;
pub mod ast;
pub mod eval;
pub mod parser;
pub mod value;

pub use ast::Expr;
pub use eval::{instant, range, EvalError, EvalOptions};
pub use parser::{parse, ParseError};
pub use value::Value;
