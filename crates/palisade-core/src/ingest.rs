//! The body of LogicMonitor's push-metrics ingest, `POST /rest/v2/metric/ingest`: parsing
//! and validation only (storage is elsewhere).
//!
//! The body is a JSON array of [`MetricPayload`]s (a single payload object is accepted too),
//! in the shape the official `logicmonitor-data-sdk` (Python, Go, Java, .NET) sends:
//!
//! ```json
//! [{"resourceIds": {"system.displayname": "web-01"}, "resourceName": "web-01",
//!   "dataSource": "CPU", "instances": [{"instanceName": "cpu-0", "dataPoints": [
//!     {"dataPointName": "cpu_utilization", "dataPointType": "gauge",
//!      "dataPointAggregationType": "none", "values": {"1700000000": "12.5"}}]}]}]
//! ```
//!
//! [`parse`] checks the whole body against the documented limits and LogicMonitor's field
//! rules and keeps what is valid. Like LogicMonitor, a partly valid body is accepted: the
//! answer is 202 and lists what was refused ([`Parsed::response_body`]). A body that cannot
//! be read at all, or in which nothing is valid, is an [`IngestError`] (400, or 413 when too
//! large), with the same list of reasons.
//!
//! # Limits
//!
//! * The uncompressed body is at most [`Limits::max_body_bytes`] (1 MiB; the caller gunzips
//!   first, under the same bound, and checks LMv1 over the uncompressed bytes).
//! * A payload has at most [`Limits::max_instances`] instances (100); a payload with more is
//!   refused whole, as LogicMonitor does.
//! * A sample's timestamp is from `now - backfill` (LogicMonitor: 10 minutes,
//!   [`DEFAULT_BACKFILL_MS`]; an administrator may widen it for imports) to
//!   `now + `[`Limits::max_future_ms`] (1 minute), both ends included. Outside, that sample
//!   alone is refused.
//!
//! # Field rules
//!
//! These follow LogicMonitor's field validation conventions as the data SDK applies them
//! (its `object_name_validator`), applied to every character (the SDK checks some only at
//! the start). Lengths count characters. "No edge space" means no leading or trailing
//! whitespace.
//!
//! | Field | Rule |
//! |---|---|
//! | `resourceIds` | required, at least one entry; keys as property names below; values non-empty, no edge space, at most 24,000 characters (strings, or numbers and booleans, taken as text) |
//! | `resourceName` | optional (`""` = absent); at most 255 of `A-Z a-z 0-9 : . _ -` |
//! | `resourceDescription` | at most 65,535 characters |
//! | `resourceProperties`, `instanceProperties` | keys: non-empty, no edge space, at most 255, none of `` * < ? , ; ` \ `` or control characters, no `##`, not starting with `system.` or `auto.` (any case); values as `resourceIds` values |
//! | `dataSource` | at most 64 of `A-Z a-z 0-9 space # @ _ : & . +`, plus `-` as last character only; no edge space |
//! | `dataSourceId` | an integer (or a string of one); `0` = absent (the Go SDK always sends it); not negative |
//! | | one of `dataSource` or `dataSourceId` is required |
//! | `dataSourceDisplayName` | at most 64 of `A-Z a-z 0-9 : / space _ ( ) . # + @ < >`, plus `-` as last character only |
//! | `dataSourceGroup` | 2 to 128 of `A-Z a-z 0-9 _ - space` |
//! | `singleInstanceDS` | boolean (or `"true"`/`"false"`); when true, at most one instance, whose name defaults to the datasource's |
//! | `instances` | required, 1 to [`Limits::max_instances`] |
//! | `instanceName` | required; at most 255 of `A-Z a-z 0-9 : . _ - space tab`; no edge space |
//! | `instanceDisplayName` | at most 255; none of `` * < ? , ; ` `` or control characters; no edge space |
//! | `instanceGroup` | at most 128; no control characters (Palisade's rule) |
//! | `instanceDescription` | at most 65,535 characters (Palisade's rule) |
//! | `dataPoints` | required, at least one |
//! | `dataPointName` | required; at most 128 of `A-Z a-z 0-9 _`; not a reserved word (`SIN`, `MAX`, `NOW`, ...: [`RESERVED_DATAPOINT_NAMES`]) |
//! | `dataPointType` | `counter`, `derive` or `gauge`, any case (also the SDK's `guage`); absent or `""` = gauge |
//! | `dataPointAggregationType` | `none`, `avg`, `sum`, `min`, `max` or `percentile`, any case; absent or `""` = none |
//! | `percentileValue` | integer 0 to 100 (or a string of one); required with `percentile` |
//! | `dataPointDescription` | at most 1,024 characters |
//! | `values` | required, at least one entry: epoch **seconds** (digits, a fraction is dropped) mapped to a finite number, as a string (`"12.5"`, `"1e3"`) or a JSON number |
//!
//! `null` is the same as an absent field, and unknown fields (such as the Go SDK's
//! `instanceId`) are ignored. A refused instance or datapoint does not refuse its siblings;
//! a refused sample does not refuse the other samples; a datapoint, instance or payload
//! left with nothing valid is dropped. Whether `resourceName` is required (`create=true`)
//! is for the caller to decide: the query parameter is not part of the body.
//!
//! # Example
//!
//! ```
//! use palisade_core::ingest::{self, Limits, DEFAULT_BACKFILL_MS};
//!
//! # fn main() -> Result<(), ingest::IngestError> {
//! let body = br#"[{"resourceIds": {"system.displayname": "web-01"}, "dataSource": "CPU",
//!   "instances": [{"instanceName": "cpu-0", "dataPoints": [{"dataPointName": "idle",
//!     "values": {"1700000000": "87.5", "1699990000": "90"}}]}]}]"#;
//! let now_ms = 1_700_000_030_000;
//! let parsed = ingest::parse(body, &Limits::default(), now_ms, DEFAULT_BACKFILL_MS)?;
//! assert_eq!(parsed.sample_count(), 1);
//! assert_eq!(
//!     parsed.errors[0].to_string(),
//!     r#"payload 0, instance "cpu-0", datapoint "idle", timestamp "1699990000": the sample is older than 10 minutes, the accepted age"#
//! );
//! assert_eq!(parsed.status(), 202);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Value};

/// LogicMonitor's limit on the uncompressed body: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// LogicMonitor's limit on instances per payload.
pub const MAX_INSTANCES: usize = 100;

/// How old a sample may be by default: 10 minutes, as LogicMonitor.
pub const DEFAULT_BACKFILL_MS: i64 = 10 * 60 * 1000;

/// How far in the future a sample may be: 1 minute, as LogicMonitor.
pub const MAX_FUTURE_MS: i64 = 60 * 1000;

/// At most this many per-item errors are kept and reported; the rest are only counted.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// The `message` of a 202 answer, LogicMonitor's words.
pub const ACCEPTED_MESSAGE: &str =
    "The request has been accepted for processing, but the processing has not been completed.";

/// Datapoint names LogicMonitor reserves (words of its datapoint expression language),
/// compared case-insensitively.
pub const RESERVED_DATAPOINT_NAMES: &[&str] = &[
    "SIN",
    "COS",
    "LOG",
    "EXP",
    "FLOOR",
    "CEIL",
    "ROUND",
    "POW",
    "ABS",
    "SQRT",
    "RANDOM",
    "LT",
    "LE",
    "GT",
    "GE",
    "EQ",
    "NE",
    "IF",
    "MIN",
    "MAX",
    "LIMIT",
    "DUP",
    "EXC",
    "POP",
    "UN",
    "UNKN",
    "NOW",
    "TIME",
    "PI",
    "E",
    "AND",
    "OR",
    "XOR",
    "INF",
    "NEGINF",
    "STEP",
    "YEAR",
    "MONTH",
    "DATE",
    "HOUR",
    "MINUTE",
    "SECOND",
    "WEEK",
    "SIGN",
    "RND",
    "SUM2",
    "AVG2",
    "PERCENT",
    "RAWPERCENTILE",
    "IN",
    "NANTOZERO",
    "MIN2",
    "MAX2",
];

/// Timestamps at or above this many "seconds" (year 5138) are taken for milliseconds in
/// error messages.
const MILLISECONDS_HINT: i64 = 100_000_000_000;

/// The longest user-supplied text quoted back in an error message, in characters.
const QUOTE_MAX: usize = 64;

/// The limits [`parse`] enforces. [`Limits::default`] is LogicMonitor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest uncompressed body, in bytes.
    pub max_body_bytes: usize,
    /// Most instances in one payload.
    pub max_instances: usize,
    /// How far in the future a sample's timestamp may be, in milliseconds.
    pub max_future_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: MAX_BODY_BYTES,
            max_instances: MAX_INSTANCES,
            max_future_ms: MAX_FUTURE_MS,
        }
    }
}

/// One resource's samples for one datasource: an item of the body.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPayload {
    /// `resourceIds`: properties that identify the resource (never empty).
    pub resource_ids: BTreeMap<String, String>,
    /// `resourceName`: the name of a resource created by `create=true`.
    pub resource_name: Option<String>,
    /// `resourceDescription`.
    pub resource_description: Option<String>,
    /// `resourceProperties`: properties to set on the resource.
    pub resource_properties: BTreeMap<String, String>,
    /// `dataSource`: the datasource name. This or `data_source_id` is present.
    pub data_source: Option<String>,
    /// `dataSourceId` (positive).
    pub data_source_id: Option<i64>,
    /// `dataSourceDisplayName`.
    pub data_source_display_name: Option<String>,
    /// `dataSourceGroup`.
    pub data_source_group: Option<String>,
    /// `singleInstanceDS`: the datasource has one instance.
    pub single_instance_ds: bool,
    /// The valid instances (never empty).
    pub instances: Vec<Instance>,
}

/// One instance of the datasource and its datapoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `instanceName` (for a single-instance datasource sent without one, the datasource's
    /// name, or its id as text).
    pub instance_name: String,
    /// `instanceDisplayName`.
    pub instance_display_name: Option<String>,
    /// `instanceGroup`.
    pub instance_group: Option<String>,
    /// `instanceDescription`.
    pub instance_description: Option<String>,
    /// `instanceProperties`.
    pub instance_properties: BTreeMap<String, String>,
    /// The valid datapoints (never empty).
    pub data_points: Vec<DataPoint>,
}

/// One datapoint and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// `dataPointName`.
    pub data_point_name: String,
    /// `dataPointType`.
    pub data_point_type: DataPointType,
    /// `dataPointAggregationType`: how sub-minute samples are combined into one per minute.
    pub data_point_aggregation_type: Aggregation,
    /// `dataPointDescription`.
    pub data_point_description: Option<String>,
    /// `percentileValue`, 0 to 100; always present with [`Aggregation::Percentile`].
    pub percentile_value: Option<u8>,
    /// The valid samples: epoch seconds to a finite value (never empty).
    pub values: BTreeMap<i64, f64>,
}

/// `dataPointType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DataPointType {
    /// A value as is (the default).
    #[default]
    Gauge,
    /// An ever-increasing count, read as a rate; wraps are expected.
    Counter,
    /// Like a counter, read as a rate, but may decrease.
    Derive,
}

impl DataPointType {
    /// The wire name: `gauge`, `counter` or `derive`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataPointType::Gauge => "gauge",
            DataPointType::Counter => "counter",
            DataPointType::Derive => "derive",
        }
    }
}

/// `dataPointAggregationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Aggregation {
    /// The last sample of the minute (the default).
    #[default]
    None,
    /// The average.
    Avg,
    /// The sum.
    Sum,
    /// The smallest.
    Min,
    /// The largest.
    Max,
    /// A percentile ([`DataPoint::percentile_value`]).
    Percentile,
}

impl Aggregation {
    /// The wire name: `none`, `avg`, `sum`, `min`, `max` or `percentile`.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::None => "none",
            Aggregation::Avg => "avg",
            Aggregation::Sum => "sum",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Percentile => "percentile",
        }
    }
}

/// What [`parse`] accepted, and what it refused along the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The valid payloads, each with only its valid instances, datapoints and samples.
    pub payloads: Vec<MetricPayload>,
    /// The first [`MAX_REPORTED_ERRORS`] things refused, in body order.
    pub errors: Vec<ItemError>,
    /// How many things were refused in all (at least `errors.len()`).
    pub error_count: usize,
}

impl Parsed {
    /// The number of accepted samples.
    pub fn sample_count(&self) -> usize {
        self.payloads
            .iter()
            .flat_map(|p| &p.instances)
            .flat_map(|i| &i.data_points)
            .map(|d| d.values.len())
            .sum()
    }

    /// The HTTP status to answer: always 202 (refused items are listed in the body).
    pub fn status(&self) -> u16 {
        202
    }

    /// The answer's body, LogicMonitor's shape:
    /// `{"code":202,"message":"The request has been accepted ...","errors":["..."]}`, with one
    /// message per refused item (see [`ItemError`]).
    pub fn response_body(&self) -> Value {
        json!({
            "code": 202,
            "message": ACCEPTED_MESSAGE,
            "errors": error_strings(&self.errors, self.error_count),
        })
    }
}

fn error_strings(errors: &[ItemError], count: usize) -> Vec<String> {
    let mut out: Vec<String> = errors.iter().map(ToString::to_string).collect();
    if count > errors.len() {
        out.push(format!("... and {} more errors", count - errors.len()));
    }
    out
}

/// Where in the body a refused item is. Displays as
/// `payload 0, instance "cpu-0", datapoint "idle", timestamp "1700000000"`, each part present
/// only as deep as the problem lies. Names are quoted as sent (clipped to 64 characters),
/// or by index (`#2`) when there is no usable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Index of the payload in the body (0 for a body that is a single object).
    pub payload: usize,
    /// The instance.
    pub instance: Option<String>,
    /// The datapoint.
    pub data_point: Option<String>,
    /// The sample's timestamp key, as sent.
    pub timestamp: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payload {}", self.payload)?;
        if let Some(i) = &self.instance {
            write!(f, ", instance {i}")?;
        }
        if let Some(d) = &self.data_point {
            write!(f, ", datapoint {d}")?;
        }
        if let Some(t) = &self.timestamp {
            write!(f, ", timestamp {t}")?;
        }
        Ok(())
    }
}

/// One refused item: where it is and what is wrong with it. Its message reads
/// `payload 0, instance "cpu-0": `instanceName` must not contain '/'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {problem}")]
pub struct ItemError {
    /// Where.
    pub location: Location,
    /// What.
    pub problem: Problem,
}

/// What is wrong with a refused item. Field names are the JSON ones; user-supplied text is
/// clipped to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A payload, instance or datapoint is not a JSON object.
    #[error("{what} must be a JSON object")]
    NotAnObject {
        /// `a payload`, `an instance` or `a datapoint`.
        what: &'static str,
    },
    /// A required field is absent, `null` or empty.
    #[error("`{field}` is required")]
    Missing {
        /// The field.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("`{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: String,
        /// The type it must have, in words.
        expected: &'static str,
    },
    /// A text is empty where it may not be.
    #[error("`{field}` must not be empty")]
    Empty {
        /// The field.
        field: String,
    },
    /// A text starts or ends with whitespace.
    #[error("`{field}` must not start or end with a space")]
    EdgeSpace {
        /// The field.
        field: String,
    },
    /// A text is too long.
    #[error("`{field}` is longer than {max} characters")]
    TooLong {
        /// The field.
        field: String,
        /// The limit.
        max: usize,
    },
    /// A text is too short.
    #[error("`{field}` is shorter than {min} characters")]
    TooShort {
        /// The field.
        field: String,
        /// The limit.
        min: usize,
    },
    /// A text holds a character its field does not allow.
    #[error("`{field}` must not contain {found:?}")]
    BadChar {
        /// The field.
        field: String,
        /// The first offending character.
        found: char,
    },
    /// A datasource name with `-` elsewhere than at its end.
    #[error("`{field}` may contain `-` only as its last character")]
    HyphenNotLast {
        /// The field.
        field: String,
    },
    /// A property name with `##`.
    #[error("`{field}` must not contain `##`")]
    DoubleHash {
        /// The field.
        field: String,
    },
    /// A pushed property named `system.*` or `auto.*`.
    #[error("`{field}`: properties starting with `system.` or `auto.` are set by Palisade and cannot be pushed")]
    ReservedProperty {
        /// The field (with the property name).
        field: String,
    },
    /// A datapoint name that is a reserved word.
    #[error("`dataPointName` {name:?} is a reserved word")]
    ReservedDataPointName {
        /// The name as sent.
        name: String,
    },
    /// Neither `dataSource` nor `dataSourceId`.
    #[error("`dataSource` or `dataSourceId` is required")]
    NoDataSource,
    /// A negative or unusable id.
    #[error("`{field}` must be a positive integer")]
    BadId {
        /// The field.
        field: String,
    },
    /// An unknown `dataPointType`.
    #[error("`dataPointType` must be counter, derive or gauge, not {found:?}")]
    UnknownType {
        /// The value as sent.
        found: String,
    },
    /// An unknown `dataPointAggregationType`.
    #[error(
        "`dataPointAggregationType` must be none, avg, sum, min, max or percentile, not {found:?}"
    )]
    UnknownAggregation {
        /// The value as sent.
        found: String,
    },
    /// `percentile` aggregation without a `percentileValue`.
    #[error("`percentileValue` (0 to 100) is required with the percentile aggregation")]
    PercentileMissing,
    /// A `percentileValue` that is not an integer from 0 to 100.
    #[error("`percentileValue` must be an integer from 0 to 100")]
    PercentileOutOfRange,
    /// No instances.
    #[error("`instances` must hold at least one instance")]
    NoInstances,
    /// More instances than [`Limits::max_instances`].
    #[error("{count} instances, at most {max} are accepted in one payload")]
    TooManyInstances {
        /// How many were sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A single-instance datasource with several instances.
    #[error("`singleInstanceDS` is true but {count} instances were sent")]
    SingleInstanceMany {
        /// How many were sent.
        count: usize,
    },
    /// No datapoints.
    #[error("`dataPoints` must hold at least one datapoint")]
    NoDataPoints,
    /// No samples.
    #[error("`values` must hold at least one sample")]
    NoValues,
    /// A `values` key that is not epoch seconds.
    #[error("the timestamp must be epoch seconds (digits)")]
    BadTimestamp,
    /// A `values` key that looks like epoch milliseconds.
    #[error("the timestamp looks like epoch milliseconds; `values` keys are epoch seconds")]
    Milliseconds,
    /// A sample older than the backfill window.
    #[error("the sample is older than {window}, the accepted age")]
    TooOld {
        /// The window, in words (`10 minutes`).
        window: String,
    },
    /// A sample too far in the future.
    #[error("the sample is more than {limit} in the future")]
    TooNew {
        /// The limit, in words (`1 minute`).
        limit: String,
    },
    /// A value that is not a number.
    #[error("the value must be a number (a string such as \"12.5\" or a JSON number)")]
    BadValue,
    /// A value that is infinite or not a number.
    #[error("the value must be a finite number")]
    NonFinite,
}

/// Why a body was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The uncompressed body exceeds [`Limits::max_body_bytes`]: 413.
    #[error("the request body is {len} bytes, at most {max} bytes (uncompressed) are accepted")]
    TooLarge {
        /// The body's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not JSON (or not UTF-8): 400.
    #[error("the request body is not valid JSON: {detail}")]
    InvalidJson {
        /// The parser's message, with line and column.
        detail: String,
    },
    /// The body is JSON but neither an array nor an object: 400.
    #[error("the request body must be a JSON array of metric payloads")]
    NotAnArray,
    /// The body is an empty array: 400.
    #[error("the request body holds no metric payload")]
    Empty,
    /// Nothing in the body is valid: 400, with every reason.
    #[error("no sample was accepted: {}", first_error(.errors))]
    NothingValid {
        /// The first [`MAX_REPORTED_ERRORS`] reasons.
        errors: Vec<ItemError>,
        /// How many reasons in all.
        error_count: usize,
    },
}

fn first_error(errors: &[ItemError]) -> String {
    match errors {
        [] => "the body is empty".to_string(),
        [only] => only.to_string(),
        [first, ..] => format!("{first} (and more, see `errors`)"),
    }
}

impl IngestError {
    /// The HTTP status to answer: 413 for [`IngestError::TooLarge`], 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            IngestError::TooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// The per-item reasons ([`IngestError::NothingValid`]), or none.
    pub fn errors(&self) -> &[ItemError] {
        match self {
            IngestError::NothingValid { errors, .. } => errors,
            _ => &[],
        }
    }

    /// The answer's body, in the shape of the 202 one:
    /// `{"code":400,"message":"...","errors":["..."]}`.
    pub fn response_body(&self) -> Value {
        let errors = match self {
            IngestError::NothingValid {
                errors,
                error_count,
            } => error_strings(errors, *error_count),
            _ => Vec::new(),
        };
        json!({
            "code": self.status(),
            "message": self.to_string(),
            "errors": errors,
        })
    }
}

/// Parses and validates an ingest body (already gunzipped). `now_ms` is the current time in
/// epoch milliseconds; `backfill_ms` how old a sample may be ([`DEFAULT_BACKFILL_MS`] unless
/// an administrator set otherwise; a negative value counts as 0).
///
/// Returns what is valid with the list of what is not, or an [`IngestError`] when the body
/// cannot be read or nothing in it is valid.
pub fn parse(
    body: &[u8],
    limits: &Limits,
    now_ms: i64,
    backfill_ms: i64,
) -> Result<Parsed, IngestError> {
    if body.len() > limits.max_body_bytes {
        return Err(IngestError::TooLarge {
            len: body.len(),
            max: limits.max_body_bytes,
        });
    }
    let root: Value = serde_json::from_slice(body).map_err(|e| IngestError::InvalidJson {
        detail: e.to_string(),
    })?;
    let items: Vec<&Value> = match &root {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![&root],
        _ => return Err(IngestError::NotAnArray),
    };
    if items.is_empty() {
        return Err(IngestError::Empty);
    }
    let backfill_ms = backfill_ms.max(0);
    let mut v = Validator {
        limits,
        oldest_ms: now_ms.saturating_sub(backfill_ms),
        newest_ms: now_ms.saturating_add(limits.max_future_ms.max(0)),
        window: duration_words(backfill_ms),
        future: duration_words(limits.max_future_ms.max(0)),
        errors: Vec::new(),
        error_count: 0,
    };
    let payloads: Vec<MetricPayload> = items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| v.payload(i, item))
        .collect();
    if payloads.is_empty() {
        return Err(IngestError::NothingValid {
            errors: v.errors,
            error_count: v.error_count,
        });
    }
    Ok(Parsed {
        payloads,
        errors: v.errors,
        error_count: v.error_count,
    })
}

/// `600000` → `10 minutes`; whole hours, minutes or seconds.
fn duration_words(ms: i64) -> String {
    let (n, unit) = if ms >= 3_600_000 && ms % 3_600_000 == 0 {
        (ms / 3_600_000, "hour")
    } else if ms >= 60_000 && ms % 60_000 == 0 {
        (ms / 60_000, "minute")
    } else if ms % 1000 == 0 {
        (ms / 1000, "second")
    } else {
        (ms, "millisecond")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// User text for a message: clipped, then quoted and escaped.
fn quote(text: &str) -> String {
    if text.chars().count() > QUOTE_MAX {
        let clipped: String = text.chars().take(QUOTE_MAX).collect();
        format!("{clipped:?}...")
    } else {
        format!("{text:?}")
    }
}

// ---------------------------------------------------------------------------------------
// Field rules

/// The rule for a name-like text field.
struct Rule {
    min: usize,
    max: usize,
    /// Allowed characters; `-` is handled by `hyphen_last` when set.
    allowed: fn(char) -> bool,
    /// `-` only as the last character (datasource names).
    hyphen_last: bool,
}

const fn rule(min: usize, max: usize, allowed: fn(char) -> bool) -> Rule {
    Rule {
        min,
        max,
        allowed,
        hyphen_last: false,
    }
}

/// Characters the data SDK refuses in resource ids and property names.
fn property_key_char(c: char) -> bool {
    !c.is_control() && !matches!(c, '*' | '<' | '?' | ',' | ';' | '`' | '\\')
}

const RESOURCE_NAME: Rule = rule(1, 255, |c| {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-')
});
const PROPERTY_KEY: Rule = rule(1, 255, property_key_char);
/// Property values and `resourceIds` values.
const PROPERTY_VALUE: Rule = rule(1, 24_000, |_| true);
const DATA_SOURCE: Rule = Rule {
    hyphen_last: true,
    ..rule(1, 64, |c| {
        c.is_ascii_alphanumeric() || matches!(c, ' ' | '#' | '@' | '_' | ':' | '&' | '.' | '+')
    })
};
const DATA_SOURCE_DISPLAY: Rule = Rule {
    hyphen_last: true,
    ..rule(1, 64, |c| {
        c.is_ascii_alphanumeric() || "(:/ _).#+@<>".contains(c)
    })
};
const DATA_SOURCE_GROUP: Rule = rule(2, 128, |c| {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' ')
});
const INSTANCE_NAME: Rule = rule(1, 255, |c| {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-' | ' ' | '\t')
});
const INSTANCE_DISPLAY: Rule = rule(1, 255, |c| {
    !c.is_control() && !matches!(c, '*' | '<' | '?' | ',' | ';' | '`')
});
const INSTANCE_GROUP: Rule = rule(1, 128, |c| !c.is_control());
const DATAPOINT_NAME: Rule = rule(1, 128, |c| c.is_ascii_alphanumeric() || c == '_');

fn check_name(field: &str, value: &str, rule: &Rule) -> Result<(), Problem> {
    let field = || field.to_string();
    if value.is_empty() {
        return Err(Problem::Empty { field: field() });
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(Problem::EdgeSpace { field: field() });
    }
    let len = value.chars().count();
    if len > rule.max {
        return Err(Problem::TooLong {
            field: field(),
            max: rule.max,
        });
    }
    if len < rule.min {
        return Err(Problem::TooShort {
            field: field(),
            min: rule.min,
        });
    }
    let body = if rule.hyphen_last {
        let body = value.strip_suffix('-').unwrap_or(value);
        if body.contains('-') {
            return Err(Problem::HyphenNotLast { field: field() });
        }
        body
    } else {
        value
    };
    match body.chars().find(|c| !(rule.allowed)(*c)) {
        Some(found) => Err(Problem::BadChar {
            field: field(),
            found,
        }),
        None => Ok(()),
    }
}

/// An optional string field: absent, `null` or `""` is `None`.
fn opt_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Problem> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Problem::WrongType {
            field: field.to_string(),
            expected: "a string",
        }),
    }
}

/// An optional name field checked against `rule`.
fn opt_name(obj: &Map<String, Value>, field: &str, rule: &Rule) -> Result<Option<String>, Problem> {
    let name = opt_str(obj, field)?;
    if let Some(s) = name {
        check_name(field, s, rule)?;
    }
    Ok(name.map(str::to_string))
}

/// A required name field checked against `rule`; `default` stands in for a missing one.
fn name(
    obj: &Map<String, Value>,
    field: &str,
    rule: &Rule,
    default: Option<&str>,
) -> Result<String, Problem> {
    opt_name(obj, field, rule)?
        .or_else(|| default.map(str::to_string))
        .ok_or_else(|| Problem::Missing {
            field: field.to_string(),
        })
}

/// An optional free-text field of at most `max` characters.
fn opt_text(obj: &Map<String, Value>, field: &str, max: usize) -> Result<Option<String>, Problem> {
    let text = opt_str(obj, field)?;
    if text.is_some_and(|s| s.chars().count() > max) {
        return Err(Problem::TooLong {
            field: field.to_string(),
            max,
        });
    }
    Ok(text.map(str::to_string))
}

/// An optional integer, as a JSON integer or a string of one; `Err(())` for anything else.
fn opt_int(value: Option<&Value>) -> Result<Option<i64>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// `dataSourceId`: positive, or absent (`0` included).
fn data_source_id(obj: &Map<String, Value>) -> Result<Option<i64>, Problem> {
    match opt_int(obj.get("dataSourceId")) {
        Ok(Some(0) | None) => Ok(None),
        Ok(Some(id)) if id > 0 => Ok(Some(id)),
        _ => Err(Problem::BadId {
            field: "dataSourceId".to_string(),
        }),
    }
}

/// `percentileValue`: 0 to 100, required with the percentile aggregation.
fn percentile(obj: &Map<String, Value>, aggregation: Aggregation) -> Result<Option<u8>, Problem> {
    match opt_int(obj.get("percentileValue")) {
        Ok(None) if aggregation == Aggregation::Percentile => Err(Problem::PercentileMissing),
        Ok(None) => Ok(None),
        Ok(Some(p)) => match u8::try_from(p) {
            Ok(p) if p <= 100 => Ok(Some(p)),
            _ => Err(Problem::PercentileOutOfRange),
        },
        Err(()) => Err(Problem::PercentileOutOfRange),
    }
}

/// A boolean, or the string `"true"`/`"false"`; absent is false.
fn flag(obj: &Map<String, Value>, field: &str) -> Result<bool, Problem> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(false),
        Some(_) => Err(Problem::WrongType {
            field: field.to_string(),
            expected: "a boolean",
        }),
    }
}

/// A required, non-empty array (`empty` is the problem of an empty one).
fn array<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    empty: Problem,
) -> Result<&'a [Value], Problem> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(Problem::Missing {
            field: field.to_string(),
        }),
        Some(Value::Array(list)) if list.is_empty() => Err(empty),
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(Problem::WrongType {
            field: field.to_string(),
            expected: "an array",
        }),
    }
}

/// A property value as text: strings as is, numbers and booleans written out.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A map of properties (`resourceIds`, `resourceProperties`, `instanceProperties`).
/// `pushed` applies the rules of pushed properties (no `system.`/`auto.`, no `##`).
fn properties(
    obj: &Map<String, Value>,
    field: &str,
    required: bool,
    pushed: bool,
) -> Result<BTreeMap<String, String>, Problem> {
    let missing = || Problem::Missing {
        field: field.to_string(),
    };
    let map = match obj.get(field) {
        None | Some(Value::Null) if required => return Err(missing()),
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) if required && map.is_empty() => return Err(missing()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(Problem::WrongType {
                field: field.to_string(),
                expected: "an object of names to values",
            })
        }
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let key_field = format!("{field}[{}]", quote(key));
        check_name(&key_field, key, &PROPERTY_KEY)?;
        if pushed {
            if key.contains("##") {
                return Err(Problem::DoubleHash { field: key_field });
            }
            let lower = key.to_ascii_lowercase();
            if lower.starts_with("system.") || lower.starts_with("auto.") {
                return Err(Problem::ReservedProperty { field: key_field });
            }
        }
        let text = scalar_text(value).ok_or_else(|| Problem::WrongType {
            field: key_field.clone(),
            expected: "a string",
        })?;
        check_name(&key_field, &text, &PROPERTY_VALUE)?;
        out.insert(key.clone(), text);
    }
    Ok(out)
}

fn data_point_type(obj: &Map<String, Value>) -> Result<DataPointType, Problem> {
    let Some(s) = opt_str(obj, "dataPointType")? else {
        return Ok(DataPointType::Gauge);
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "gauge" | "guage" => Ok(DataPointType::Gauge),
        "counter" => Ok(DataPointType::Counter),
        "derive" => Ok(DataPointType::Derive),
        _ => Err(Problem::UnknownType { found: clip(s) }),
    }
}

fn aggregation(obj: &Map<String, Value>) -> Result<Aggregation, Problem> {
    let Some(s) = opt_str(obj, "dataPointAggregationType")? else {
        return Ok(Aggregation::None);
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(Aggregation::None),
        "avg" => Ok(Aggregation::Avg),
        "sum" => Ok(Aggregation::Sum),
        "min" => Ok(Aggregation::Min),
        "max" => Ok(Aggregation::Max),
        "percentile" => Ok(Aggregation::Percentile),
        _ => Err(Problem::UnknownAggregation { found: clip(s) }),
    }
}

fn data_point_name(obj: &Map<String, Value>) -> Result<String, Problem> {
    let name = name(obj, "dataPointName", &DATAPOINT_NAME, None)?;
    if RESERVED_DATAPOINT_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&name))
    {
        return Err(Problem::ReservedDataPointName { name });
    }
    Ok(name)
}

fn clip(text: &str) -> String {
    text.chars().take(QUOTE_MAX).collect()
}

/// A `values` key: digits, optionally a fraction (dropped).
fn timestamp_secs(key: &str) -> Result<i64, Problem> {
    let int = match key.split_once('.') {
        Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) => int,
        Some(_) => return Err(Problem::BadTimestamp),
        None => key,
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::BadTimestamp);
    }
    // Too many digits for an i64: certainly not seconds.
    int.parse::<i64>().map_err(|_| Problem::Milliseconds)
}

fn sample_value(value: &Value) -> Result<f64, Problem> {
    let v = match value {
        Value::Number(n) => n.as_f64().ok_or(Problem::BadValue)?,
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| Problem::BadValue)?,
        _ => return Err(Problem::BadValue),
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Problem::NonFinite)
    }
}

// ---------------------------------------------------------------------------------------
// The walk over the body

/// The problems of one item's own fields: each check's error is recorded and a default
/// stands in, so that every problem of the item is reported at once.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn take<T: Default>(&mut self, checked: Result<T, Problem>) -> T {
        checked.unwrap_or_else(|p| {
            self.0.push(p);
            T::default()
        })
    }
}

struct Validator<'a> {
    limits: &'a Limits,
    oldest_ms: i64,
    newest_ms: i64,
    window: String,
    future: String,
    errors: Vec<ItemError>,
    error_count: usize,
}

impl Validator<'_> {
    fn refuse(&mut self, location: &Location, problem: Problem) {
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(ItemError {
                location: location.clone(),
                problem,
            });
        }
    }

    /// Records the item's problems; true when there were any.
    fn refused(&mut self, location: &Location, problems: Problems) -> bool {
        let any = !problems.0.is_empty();
        for p in problems.0 {
            self.refuse(location, p);
        }
        any
    }

    fn payload(&mut self, index: usize, item: &Value) -> Option<MetricPayload> {
        let here = Location {
            payload: index,
            instance: None,
            data_point: None,
            timestamp: None,
        };
        let Value::Object(obj) = item else {
            self.refuse(&here, Problem::NotAnObject { what: "a payload" });
            return None;
        };
        let mut p = Problems::default();
        let resource_ids = p.take(properties(obj, "resourceIds", true, false));
        let resource_name = p.take(opt_name(obj, "resourceName", &RESOURCE_NAME));
        let resource_description = p.take(opt_text(obj, "resourceDescription", 65_535));
        let resource_properties = p.take(properties(obj, "resourceProperties", false, true));
        let before = p.0.len();
        let data_source = p.take(opt_name(obj, "dataSource", &DATA_SOURCE));
        let data_source_id = p.take(data_source_id(obj));
        if p.0.len() == before && data_source.is_none() && data_source_id.is_none() {
            p.0.push(Problem::NoDataSource);
        }
        let data_source_display_name =
            p.take(opt_name(obj, "dataSourceDisplayName", &DATA_SOURCE_DISPLAY));
        let data_source_group = p.take(opt_name(obj, "dataSourceGroup", &DATA_SOURCE_GROUP));
        let single_instance_ds = p.take(flag(obj, "singleInstanceDS"));
        let list = p.take(array(obj, "instances", Problem::NoInstances));
        if list.len() > self.limits.max_instances {
            p.0.push(Problem::TooManyInstances {
                count: list.len(),
                max: self.limits.max_instances,
            });
        } else if single_instance_ds && list.len() > 1 {
            p.0.push(Problem::SingleInstanceMany { count: list.len() });
        }
        if self.refused(&here, p) {
            return None;
        }
        let default_instance = match (single_instance_ds, &data_source) {
            (false, _) => None,
            (true, Some(name)) => Some(name.clone()),
            (true, None) => data_source_id.map(|id| id.to_string()),
        };
        let instances: Vec<Instance> = list
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.instance(&here, i, v, default_instance.as_deref()))
            .collect();
        (!instances.is_empty()).then_some(MetricPayload {
            resource_ids,
            resource_name,
            resource_description,
            resource_properties,
            data_source,
            data_source_id,
            data_source_display_name,
            data_source_group,
            single_instance_ds,
            instances,
        })
    }

    fn instance(
        &mut self,
        parent: &Location,
        index: usize,
        item: &Value,
        default_name: Option<&str>,
    ) -> Option<Instance> {
        let mut here = parent.clone();
        let given = item.get("instanceName").and_then(Value::as_str);
        here.instance = Some(match (given, default_name) {
            (Some(s), _) if !s.is_empty() => quote(s),
            (_, Some(d)) => quote(d),
            _ => format!("#{index}"),
        });
        let Value::Object(obj) = item else {
            self.refuse(
                &here,
                Problem::NotAnObject {
                    what: "an instance",
                },
            );
            return None;
        };
        let mut p = Problems::default();
        let instance_name = p.take(name(obj, "instanceName", &INSTANCE_NAME, default_name));
        let instance_display_name = p.take(opt_name(obj, "instanceDisplayName", &INSTANCE_DISPLAY));
        let instance_group = p.take(opt_name(obj, "instanceGroup", &INSTANCE_GROUP));
        let instance_description = p.take(opt_text(obj, "instanceDescription", 65_535));
        let instance_properties = p.take(properties(obj, "instanceProperties", false, true));
        let points = p.take(array(obj, "dataPoints", Problem::NoDataPoints));
        if self.refused(&here, p) {
            return None;
        }
        let data_points: Vec<DataPoint> = points
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.data_point(&here, i, v))
            .collect();
        (!data_points.is_empty()).then_some(Instance {
            instance_name,
            instance_display_name,
            instance_group,
            instance_description,
            instance_properties,
            data_points,
        })
    }

    fn data_point(&mut self, parent: &Location, index: usize, item: &Value) -> Option<DataPoint> {
        let mut here = parent.clone();
        here.data_point = Some(match item.get("dataPointName").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => quote(s),
            _ => format!("#{index}"),
        });
        let Value::Object(obj) = item else {
            self.refuse(
                &here,
                Problem::NotAnObject {
                    what: "a datapoint",
                },
            );
            return None;
        };
        let mut p = Problems::default();
        let data_point_name = p.take(data_point_name(obj));
        let data_point_type = p.take(data_point_type(obj));
        let data_point_aggregation_type = p.take(aggregation(obj));
        let percentile_value = p.take(percentile(obj, data_point_aggregation_type));
        let data_point_description = p.take(opt_text(obj, "dataPointDescription", 1024));
        let samples = match obj.get("values") {
            None | Some(Value::Null) => Err(Problem::Missing {
                field: "values".to_string(),
            }),
            Some(Value::Object(map)) if map.is_empty() => Err(Problem::NoValues),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(Problem::WrongType {
                field: "values".to_string(),
                expected: "an object of epoch seconds to values",
            }),
        };
        let samples = p.take(samples);
        if self.refused(&here, p) {
            return None;
        }
        let mut values = BTreeMap::new();
        for (key, value) in samples.into_iter().flatten() {
            match self.sample(key, value) {
                Ok((ts, v)) => {
                    values.insert(ts, v);
                }
                Err(problem) => {
                    let mut at = here.clone();
                    at.timestamp = Some(quote(key));
                    self.refuse(&at, problem);
                }
            }
        }
        (!values.is_empty()).then_some(DataPoint {
            data_point_name,
            data_point_type,
            data_point_aggregation_type,
            data_point_description,
            percentile_value,
            values,
        })
    }

    fn sample(&self, key: &str, value: &Value) -> Result<(i64, f64), Problem> {
        let secs = timestamp_secs(key)?;
        let ms = secs.checked_mul(1000).ok_or(Problem::Milliseconds)?;
        if ms > self.newest_ms {
            return Err(if secs >= MILLISECONDS_HINT {
                Problem::Milliseconds
            } else {
                Problem::TooNew {
                    limit: self.future.clone(),
                }
            });
        }
        if ms < self.oldest_ms {
            return Err(Problem::TooOld {
                window: self.window.clone(),
            });
        }
        Ok((secs, sample_value(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_700_000_000_000;
    const NOW: i64 = 1_700_000_000;

    fn run(body: &Value) -> Result<Parsed, IngestError> {
        let bytes = serde_json::to_vec(body).unwrap();
        parse(&bytes, &Limits::default(), NOW_MS, DEFAULT_BACKFILL_MS)
    }

    fn ok(body: &Value) -> Parsed {
        match run(body) {
            Ok(p) => p,
            Err(e) => panic!("refused: {e}\n{:#?}", e.errors()),
        }
    }

    /// A body as the Python `logicmonitor_data_sdk` batches it: `None` fields omitted,
    /// values as strings keyed by `str(int(time.time()))`.
    fn python_sdk_body() -> Value {
        json!([{
            "resourceIds": {"system.displayname": "web-01", "system.hostname": "10.0.0.5"},
            "resourceName": "web-01",
            "resourceDescription": "front web server",
            "resourceProperties": {"using.sdk": "true", "env": "prod"},
            "dataSource": "CPU",
            "dataSourceDisplayName": "CPU (push)",
            "dataSourceGroup": "Push Metrics",
            "singleInstanceDS": false,
            "instances": [
                {
                    "instanceName": "cpu-0",
                    "instanceDisplayName": "CPU 0",
                    "instanceProperties": {"core.type": "performance"},
                    "dataPoints": [
                        {
                            "dataPointName": "cpu_utilization",
                            "dataPointAggregationType": "avg",
                            "dataPointDescription": "busy percent",
                            "dataPointType": "gauge",
                            "values": {(NOW - 30).to_string(): "12.5", (NOW - 20).to_string(): "13"}
                        },
                        {
                            "dataPointName": "cpu_time",
                            "dataPointAggregationType": "sum",
                            "dataPointType": "counter",
                            "values": {NOW.to_string(): "123456789"}
                        }
                    ]
                },
                {
                    "instanceName": "cpu-1",
                    "dataPoints": [{"dataPointName": "cpu_utilization", "values": {NOW.to_string(): "7.25"}}]
                }
            ]
        }])
    }

    #[test]
    fn python_sdk_body_is_accepted_whole() {
        let parsed = ok(&python_sdk_body());
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.error_count, 0);
        assert_eq!(parsed.sample_count(), 4);
        let p = &parsed.payloads[0];
        assert_eq!(
            p.resource_ids.get("system.hostname").map(String::as_str),
            Some("10.0.0.5")
        );
        assert_eq!(p.resource_name.as_deref(), Some("web-01"));
        assert_eq!(p.resource_description.as_deref(), Some("front web server"));
        assert_eq!(p.resource_properties.len(), 2);
        assert_eq!(p.data_source.as_deref(), Some("CPU"));
        assert_eq!(p.data_source_id, None);
        assert_eq!(p.data_source_display_name.as_deref(), Some("CPU (push)"));
        assert_eq!(p.data_source_group.as_deref(), Some("Push Metrics"));
        assert!(!p.single_instance_ds);
        assert_eq!(p.instances.len(), 2);
        let i = &p.instances[0];
        assert_eq!(i.instance_name, "cpu-0");
        assert_eq!(i.instance_display_name.as_deref(), Some("CPU 0"));
        assert_eq!(
            i.instance_properties.get("core.type").map(String::as_str),
            Some("performance")
        );
        let d = &i.data_points[0];
        assert_eq!(d.data_point_name, "cpu_utilization");
        assert_eq!(d.data_point_type, DataPointType::Gauge);
        assert_eq!(d.data_point_aggregation_type, Aggregation::Avg);
        assert_eq!(d.data_point_description.as_deref(), Some("busy percent"));
        assert_eq!(
            d.values,
            BTreeMap::from([(NOW - 30, 12.5), (NOW - 20, 13.0)])
        );
        let d = &i.data_points[1];
        assert_eq!(d.data_point_type, DataPointType::Counter);
        assert_eq!(d.data_point_aggregation_type, Aggregation::Sum);
        assert_eq!(d.values, BTreeMap::from([(NOW, 123_456_789.0)]));
        let d = &p.instances[1].data_points[0];
        assert_eq!(d.data_point_type, DataPointType::Gauge);
        assert_eq!(d.data_point_aggregation_type, Aggregation::None);
        assert_eq!(parsed.status(), 202);
        assert_eq!(
            parsed.response_body(),
            json!({"code": 202, "message": ACCEPTED_MESSAGE, "errors": []})
        );
    }

    #[test]
    fn go_sdk_zero_values_mean_absent() {
        // The Go SDK has no omitempty on these: "", 0 and "" are sent.
        let body = json!([{
            "resourceName": "",
            "resourceIds": {"system.deviceId": "42"},
            "dataSource": "GoApp",
            "dataSourceId": 0,
            "instances": [{
                "instanceName": "app",
                "instanceId": 0,
                "dataPoints": [{
                    "dataPointName": "requests",
                    "dataPointType": "",
                    "dataPointAggregationType": "",
                    "values": {NOW.to_string(): "5"}
                }]
            }]
        }]);
        let parsed = ok(&body);
        let p = &parsed.payloads[0];
        assert_eq!(p.resource_name, None);
        assert_eq!(p.data_source_id, None);
        let d = &p.instances[0].data_points[0];
        assert_eq!(d.data_point_type, DataPointType::Gauge);
        assert_eq!(d.data_point_aggregation_type, Aggregation::None);
    }

    #[test]
    fn lenient_forms() {
        let body = json!({
            "resourceIds": {"system.deviceId": 42, "flag": true},
            "dataSourceId": "17",
            "singleInstanceDS": "true",
            "resourceDescription": null,
            "instances": [{
                "dataPoints": [{
                    "dataPointName": "Temp_1",
                    "dataPointType": "GUAGE",
                    "dataPointAggregationType": "PERCENTILE",
                    "percentileValue": "95",
                    "values": {
                        (NOW - 1).to_string(): 21.5,
                        format!("{}.75", NOW - 2): " 1e3 ",
                        (NOW - 3).to_string(): -4
                    }
                }]
            }]
        });
        let parsed = ok(&body);
        let p = &parsed.payloads[0];
        assert_eq!(p.resource_ids.get("system.deviceid"), None);
        assert_eq!(
            p.resource_ids.get("system.deviceId").map(String::as_str),
            Some("42")
        );
        assert_eq!(p.resource_ids.get("flag").map(String::as_str), Some("true"));
        assert_eq!(p.data_source_id, Some(17));
        assert!(p.single_instance_ds);
        assert_eq!(p.instances[0].instance_name, "17");
        let d = &p.instances[0].data_points[0];
        assert_eq!(d.data_point_aggregation_type, Aggregation::Percentile);
        assert_eq!(d.percentile_value, Some(95));
        assert_eq!(
            d.values,
            BTreeMap::from([(NOW - 3, -4.0), (NOW - 2, 1000.0), (NOW - 1, 21.5)])
        );
    }

    #[test]
    fn single_instance_datasource_defaults_instance_name() {
        let mut body = python_sdk_body();
        body[0]["singleInstanceDS"] = json!(true);
        body[0]["instances"].as_array_mut().unwrap().truncate(1);
        body[0]["instances"][0]
            .as_object_mut()
            .unwrap()
            .remove("instanceName");
        let parsed = ok(&body);
        assert_eq!(parsed.payloads[0].instances[0].instance_name, "CPU");

        let mut body = python_sdk_body();
        body[0]["singleInstanceDS"] = json!(true);
        let e = run(&body).unwrap_err();
        assert_eq!(
            e.errors()[0].problem,
            Problem::SingleInstanceMany { count: 2 }
        );
    }

    fn with_sample(key: &str, value: Value) -> Value {
        json!([{
            "resourceIds": {"system.hostname": "h"},
            "dataSource": "DS",
            "instances": [{"instanceName": "i", "dataPoints": [
                {"dataPointName": "d", "values": {key: value, NOW.to_string(): "1"}}
            ]}]
        }])
    }

    /// The problem with the sample `key`, or `None` when it was accepted.
    fn sample_problem(key: &str, value: Value, backfill_ms: i64) -> Option<Problem> {
        let bytes = serde_json::to_vec(&with_sample(key, value)).unwrap();
        let parsed = parse(&bytes, &Limits::default(), NOW_MS, backfill_ms).unwrap();
        assert_eq!(parsed.payloads.len(), 1);
        match parsed.errors.as_slice() {
            [] => None,
            [one] => {
                assert_eq!(one.location.timestamp, Some(format!("{key:?}")));
                Some(one.problem.clone())
            }
            more => panic!("{more:?}"),
        }
    }

    #[test]
    fn timestamp_window() {
        let v = || json!("1");
        let key = |s: i64| s.to_string();
        let old = Some(Problem::TooOld {
            window: "10 minutes".into(),
        });
        let new = Some(Problem::TooNew {
            limit: "1 minute".into(),
        });
        assert_eq!(
            sample_problem(&key(NOW - 600), v(), DEFAULT_BACKFILL_MS),
            None
        );
        assert_eq!(
            sample_problem(&key(NOW - 601), v(), DEFAULT_BACKFILL_MS),
            old
        );
        assert_eq!(
            sample_problem(&key(NOW + 60), v(), DEFAULT_BACKFILL_MS),
            None
        );
        assert_eq!(
            sample_problem(&key(NOW + 61), v(), DEFAULT_BACKFILL_MS),
            new
        );
        assert_eq!(sample_problem("0", v(), DEFAULT_BACKFILL_MS), old);
        // An administrator's wider backfill.
        let two_days = 48 * 3_600_000;
        assert_eq!(sample_problem(&key(NOW - 47 * 3600), v(), two_days), None);
        assert_eq!(
            sample_problem(&key(NOW - 49 * 3600), v(), two_days),
            Some(Problem::TooOld {
                window: "48 hours".into()
            })
        );
        assert_eq!(
            sample_problem(&key(NOW - 1), v(), -5),
            Some(Problem::TooOld {
                window: "0 seconds".into()
            })
        );
        assert_eq!(sample_problem(&key(NOW), v(), -5), None);
        // Milliseconds instead of seconds.
        assert_eq!(
            sample_problem(&(NOW_MS).to_string(), v(), DEFAULT_BACKFILL_MS),
            Some(Problem::Milliseconds)
        );
        assert_eq!(
            sample_problem(&"9".repeat(30), v(), DEFAULT_BACKFILL_MS),
            Some(Problem::Milliseconds)
        );
        assert_eq!(
            sample_problem(&i64::MAX.to_string(), v(), DEFAULT_BACKFILL_MS),
            Some(Problem::Milliseconds)
        );
        for bad in [
            "",
            "-1",
            "+5",
            "abc",
            "1.",
            ".5",
            "1.2.3",
            "17e8",
            " 1700000000",
            "1_700",
        ] {
            assert_eq!(
                sample_problem(bad, v(), DEFAULT_BACKFILL_MS),
                Some(Problem::BadTimestamp),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn values_must_be_finite_numbers() {
        let key = (NOW - 5).to_string();
        for good in [
            json!("0"),
            json!("-1.5"),
            json!("1e3"),
            json!(3),
            json!(2.5),
            json!(u64::MAX),
        ] {
            assert_eq!(
                sample_problem(&key, good.clone(), DEFAULT_BACKFILL_MS),
                None,
                "{good}"
            );
        }
        for non_finite in ["NaN", "nan", "inf", "-Infinity", "1e999"] {
            assert_eq!(
                sample_problem(&key, json!(non_finite), DEFAULT_BACKFILL_MS),
                Some(Problem::NonFinite),
                "{non_finite}"
            );
        }
        for bad in [
            json!(""),
            json!("12%"),
            json!("0x10"),
            json!(null),
            json!(true),
            json!([1]),
            json!({"v": 1}),
        ] {
            assert_eq!(
                sample_problem(&key, bad.clone(), DEFAULT_BACKFILL_MS),
                Some(Problem::BadValue),
                "{bad}"
            );
        }
    }

    #[test]
    fn body_size_limit() {
        let mut bytes = serde_json::to_vec(&python_sdk_body()).unwrap();
        let limits = Limits {
            max_body_bytes: bytes.len(),
            ..Limits::default()
        };
        assert!(parse(&bytes, &limits, NOW_MS, DEFAULT_BACKFILL_MS).is_ok());
        bytes.push(b' ');
        let e = parse(&bytes, &limits, NOW_MS, DEFAULT_BACKFILL_MS).unwrap_err();
        assert_eq!(
            e,
            IngestError::TooLarge {
                len: bytes.len(),
                max: bytes.len() - 1
            }
        );
        assert_eq!(e.status(), 413);

        // The default: 1 MiB, whitespace included.
        let mut bytes = serde_json::to_vec(&python_sdk_body()).unwrap();
        bytes.resize(MAX_BODY_BYTES, b' ');
        assert!(parse(&bytes, &Limits::default(), NOW_MS, DEFAULT_BACKFILL_MS).is_ok());
        bytes.push(b'\n');
        assert!(matches!(
            parse(&bytes, &Limits::default(), NOW_MS, DEFAULT_BACKFILL_MS),
            Err(IngestError::TooLarge {
                max: MAX_BODY_BYTES,
                ..
            })
        ));
    }

    fn with_instances(n: usize) -> Value {
        let instances: Vec<Value> = (0..n)
            .map(|i| {
                json!({"instanceName": format!("disk-{i}"), "dataPoints": [
                {"dataPointName": "used", "values": {NOW.to_string(): "1"}}]})
            })
            .collect();
        json!({"resourceIds": {"system.hostname": "h"}, "dataSource": "Disks", "instances": instances})
    }

    #[test]
    fn instance_limit_refuses_the_payload_only() {
        let parsed = ok(&json!([with_instances(MAX_INSTANCES)]));
        assert_eq!(parsed.payloads[0].instances.len(), MAX_INSTANCES);
        assert!(parsed.errors.is_empty());

        let parsed = ok(&json!([
            with_instances(MAX_INSTANCES + 1),
            with_instances(1)
        ]));
        assert_eq!(parsed.payloads.len(), 1);
        assert_eq!(parsed.payloads[0].instances.len(), 1);
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(
            parsed.errors[0].to_string(),
            "payload 0: 101 instances, at most 100 are accepted in one payload"
        );
        let limits = Limits {
            max_instances: 2,
            ..Limits::default()
        };
        let bytes = serde_json::to_vec(&with_instances(3)).unwrap();
        assert!(matches!(
            parse(&bytes, &limits, NOW_MS, DEFAULT_BACKFILL_MS),
            Err(IngestError::NothingValid { .. })
        ));
    }

    /// Applies `edit` to the Python SDK body and returns the single problem it causes.
    fn problem_of(edit: impl FnOnce(&mut Value)) -> Problem {
        let mut body = python_sdk_body();
        edit(&mut body);
        let (errors, count) = match run(&body) {
            Ok(p) => (p.errors, p.error_count),
            Err(IngestError::NothingValid {
                errors,
                error_count,
            }) => (errors, error_count),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(count, 1, "{errors:?}");
        errors.into_iter().next().unwrap().problem
    }

    fn field(name: &str) -> String {
        name.to_string()
    }

    #[test]
    fn payload_field_rules() {
        let p = |edit: fn(&mut Value)| problem_of(edit);
        assert_eq!(
            p(|b| {
                b[0].as_object_mut().unwrap().remove("resourceIds");
            }),
            Problem::Missing {
                field: field("resourceIds")
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceIds"] = json!({})),
            Problem::Missing {
                field: field("resourceIds")
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceIds"] = json!("h")),
            Problem::WrongType {
                field: field("resourceIds"),
                expected: "an object of names to values"
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceIds"] = json!({"a*b": "x"})),
            Problem::BadChar {
                field: field("resourceIds[\"a*b\"]"),
                found: '*'
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceIds"] = json!({" a": "x"})),
            Problem::EdgeSpace {
                field: field("resourceIds[\" a\"]")
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceIds"] = json!({"a": ""})),
            Problem::Empty {
                field: field("resourceIds[\"a\"]")
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceIds"] = json!({"a": "x "})),
            Problem::EdgeSpace {
                field: field("resourceIds[\"a\"]")
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceIds"] = json!({"a": null})),
            Problem::WrongType {
                field: field("resourceIds[\"a\"]"),
                expected: "a string"
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceIds"] = json!({"a": "x".repeat(24_001)})),
            Problem::TooLong {
                field: field("resourceIds[\"a\"]"),
                max: 24_000
            }
        );
        assert!(p(|b| b[0]["resourceIds"] = json!({"k".repeat(256): "x"}))
            .to_string()
            .contains("longer than 255"));
        // System properties identify a resource, but cannot be pushed.
        assert_eq!(
            p(|b| b[0]["resourceProperties"] = json!({"System.Foo": "x"})),
            Problem::ReservedProperty {
                field: field("resourceProperties[\"System.Foo\"]")
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceProperties"] = json!({"auto.x": "x"})),
            Problem::ReservedProperty {
                field: field("resourceProperties[\"auto.x\"]")
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceProperties"] = json!({"a##b": "x"})),
            Problem::DoubleHash {
                field: field("resourceProperties[\"a##b\"]")
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceName"] = json!("web 01")),
            Problem::BadChar {
                field: field("resourceName"),
                found: ' '
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceName"] = json!("w".repeat(256))),
            Problem::TooLong {
                field: field("resourceName"),
                max: 255
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceName"] = json!(5)),
            Problem::WrongType {
                field: field("resourceName"),
                expected: "a string"
            }
        );
        assert_eq!(
            p(|b| b[0]["resourceDescription"] = json!("d".repeat(65_536))),
            Problem::TooLong {
                field: field("resourceDescription"),
                max: 65_535
            }
        );
        assert_eq!(
            p(|b| {
                b[0].as_object_mut().unwrap().remove("dataSource");
            }),
            Problem::NoDataSource
        );
        assert_eq!(p(|b| b[0]["dataSource"] = json!("")), Problem::NoDataSource);
        assert_eq!(
            p(|b| b[0]["dataSource"] = json!("CPU-Busy")),
            Problem::HyphenNotLast {
                field: field("dataSource")
            }
        );
        assert_eq!(
            p(|b| b[0]["dataSource"] = json!("CPU/x")),
            Problem::BadChar {
                field: field("dataSource"),
                found: '/'
            }
        );
        assert_eq!(
            p(|b| b[0]["dataSource"] = json!(" CPU")),
            Problem::EdgeSpace {
                field: field("dataSource")
            }
        );
        assert_eq!(
            p(|b| b[0]["dataSource"] = json!("C".repeat(65))),
            Problem::TooLong {
                field: field("dataSource"),
                max: 64
            }
        );
        assert_eq!(
            p(|b| b[0]["dataSourceId"] = json!(-3)),
            Problem::BadId {
                field: field("dataSourceId")
            }
        );
        assert_eq!(
            p(|b| b[0]["dataSourceId"] = json!(1.5)),
            Problem::BadId {
                field: field("dataSourceId")
            }
        );
        assert_eq!(
            p(|b| b[0]["dataSourceDisplayName"] = json!("CPU;x")),
            Problem::BadChar {
                field: field("dataSourceDisplayName"),
                found: ';'
            }
        );
        assert_eq!(
            p(|b| b[0]["dataSourceDisplayName"] = json!("a-b")),
            Problem::HyphenNotLast {
                field: field("dataSourceDisplayName")
            }
        );
        assert_eq!(
            p(|b| b[0]["dataSourceGroup"] = json!("x")),
            Problem::TooShort {
                field: field("dataSourceGroup"),
                min: 2
            }
        );
        assert_eq!(
            p(|b| b[0]["dataSourceGroup"] = json!("a.b")),
            Problem::BadChar {
                field: field("dataSourceGroup"),
                found: '.'
            }
        );
        assert_eq!(
            p(|b| b[0]["singleInstanceDS"] = json!(1)),
            Problem::WrongType {
                field: field("singleInstanceDS"),
                expected: "a boolean"
            }
        );
        assert_eq!(
            p(|b| {
                b[0].as_object_mut().unwrap().remove("instances");
            }),
            Problem::Missing {
                field: field("instances")
            }
        );
        assert_eq!(p(|b| b[0]["instances"] = json!([])), Problem::NoInstances);
        assert_eq!(
            p(|b| b[0]["instances"] = json!({})),
            Problem::WrongType {
                field: field("instances"),
                expected: "an array"
            }
        );
        assert_eq!(
            p(|b| b[0] = json!("payload")),
            Problem::NotAnObject { what: "a payload" }
        );
    }

    #[test]
    fn accepted_names() {
        let mut body = python_sdk_body();
        body[0]["dataSource"] = json!("My DS #1 @x_y:z&w.v+-");
        body[0]["dataSourceDisplayName"] = json!("Disk (C:/) #1 <a>-");
        body[0]["dataSourceGroup"] = json!("Push - metrics_1");
        body[0]["resourceName"] = json!("host-1.example.com:8080");
        body[0]["instances"][0]["instanceName"] = json!("C:\tdisk 1_a.b-c");
        body[0]["instances"][0]["instanceDisplayName"] = json!("Disk C: (système) / [x] é");
        body[0]["resourceProperties"] = json!({"kubernetes.label/app": "web, api; v2 ✓"});
        let parsed = ok(&body);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    }

    #[test]
    fn instance_field_rules_refuse_only_that_instance() {
        let i = |edit: fn(&mut Value)| problem_of(|b| edit(&mut b[0]["instances"][1]));
        assert_eq!(
            i(|x| {
                x.as_object_mut().unwrap().remove("instanceName");
            }),
            Problem::Missing {
                field: field("instanceName")
            }
        );
        assert_eq!(
            i(|x| x["instanceName"] = json!("/dev/sda1")),
            Problem::BadChar {
                field: field("instanceName"),
                found: '/'
            }
        );
        assert_eq!(
            i(|x| x["instanceName"] = json!("cpu-1 ")),
            Problem::EdgeSpace {
                field: field("instanceName")
            }
        );
        assert_eq!(
            i(|x| x["instanceName"] = json!("c".repeat(256))),
            Problem::TooLong {
                field: field("instanceName"),
                max: 255
            }
        );
        assert_eq!(
            i(|x| x["instanceDisplayName"] = json!("a,b")),
            Problem::BadChar {
                field: field("instanceDisplayName"),
                found: ','
            }
        );
        assert_eq!(
            i(|x| x["instanceDisplayName"] = json!("a\nb")),
            Problem::BadChar {
                field: field("instanceDisplayName"),
                found: '\n'
            }
        );
        assert_eq!(
            i(|x| x["instanceGroup"] = json!("g".repeat(129))),
            Problem::TooLong {
                field: field("instanceGroup"),
                max: 128
            }
        );
        assert_eq!(
            i(|x| x["instanceDescription"] = json!("d".repeat(65_536))),
            Problem::TooLong {
                field: field("instanceDescription"),
                max: 65_535
            }
        );
        assert_eq!(
            i(|x| x["instanceProperties"] = json!({"system.x": "1"})),
            Problem::ReservedProperty {
                field: field("instanceProperties[\"system.x\"]")
            }
        );
        assert_eq!(
            i(|x| x["instanceProperties"] = json!([])),
            Problem::WrongType {
                field: field("instanceProperties"),
                expected: "an object of names to values"
            }
        );
        assert_eq!(
            i(|x| {
                x.as_object_mut().unwrap().remove("dataPoints");
            }),
            Problem::Missing {
                field: field("dataPoints")
            }
        );
        assert_eq!(i(|x| x["dataPoints"] = json!([])), Problem::NoDataPoints);
        assert_eq!(
            i(|x| x["dataPoints"] = json!("x")),
            Problem::WrongType {
                field: field("dataPoints"),
                expected: "an array"
            }
        );
        assert_eq!(
            i(|x| *x = json!(7)),
            Problem::NotAnObject {
                what: "an instance"
            }
        );

        let mut body = python_sdk_body();
        body[0]["instances"][1]["instanceName"] = json!("/dev/sda1");
        let parsed = ok(&body);
        assert_eq!(parsed.payloads[0].instances.len(), 1);
        assert_eq!(parsed.payloads[0].instances[0].instance_name, "cpu-0");
        assert_eq!(
            parsed.errors[0].to_string(),
            "payload 0, instance \"/dev/sda1\": `instanceName` must not contain '/'"
        );
    }

    #[test]
    fn datapoint_field_rules_refuse_only_that_datapoint() {
        let d =
            |edit: fn(&mut Value)| problem_of(|b| edit(&mut b[0]["instances"][0]["dataPoints"][1]));
        assert_eq!(
            d(|x| {
                x.as_object_mut().unwrap().remove("dataPointName");
            }),
            Problem::Missing {
                field: field("dataPointName")
            }
        );
        assert_eq!(
            d(|x| x["dataPointName"] = json!("cpu-time")),
            Problem::BadChar {
                field: field("dataPointName"),
                found: '-'
            }
        );
        assert_eq!(
            d(|x| x["dataPointName"] = json!("t".repeat(129))),
            Problem::TooLong {
                field: field("dataPointName"),
                max: 128
            }
        );
        assert_eq!(
            d(|x| x["dataPointName"] = json!("Max")),
            Problem::ReservedDataPointName { name: "Max".into() }
        );
        assert_eq!(
            d(|x| x["dataPointName"] = json!("nantozero")),
            Problem::ReservedDataPointName {
                name: "nantozero".into()
            }
        );
        assert_eq!(
            d(|x| x["dataPointType"] = json!("rate")),
            Problem::UnknownType {
                found: "rate".into()
            }
        );
        assert_eq!(
            d(|x| x["dataPointAggregationType"] = json!("median")),
            Problem::UnknownAggregation {
                found: "median".into()
            }
        );
        assert_eq!(
            d(|x| x["dataPointAggregationType"] = json!("percentile")),
            Problem::PercentileMissing
        );
        assert_eq!(
            d(|x| {
                x["dataPointAggregationType"] = json!("percentile");
                x["percentileValue"] = json!(101);
            }),
            Problem::PercentileOutOfRange
        );
        assert_eq!(
            d(|x| {
                x["dataPointAggregationType"] = json!("percentile");
                x["percentileValue"] = json!(-1);
            }),
            Problem::PercentileOutOfRange
        );
        assert_eq!(
            d(|x| x["percentileValue"] = json!(99.5)),
            Problem::PercentileOutOfRange
        );
        assert_eq!(
            d(|x| x["dataPointDescription"] = json!("d".repeat(1025))),
            Problem::TooLong {
                field: field("dataPointDescription"),
                max: 1024
            }
        );
        assert_eq!(
            d(|x| {
                x.as_object_mut().unwrap().remove("values");
            }),
            Problem::Missing {
                field: field("values")
            }
        );
        assert_eq!(d(|x| x["values"] = json!({})), Problem::NoValues);
        assert_eq!(
            d(|x| x["values"] = json!([1, 2])),
            Problem::WrongType {
                field: field("values"),
                expected: "an object of epoch seconds to values"
            }
        );
        assert_eq!(
            d(|x| *x = json!(null)),
            Problem::NotAnObject {
                what: "a datapoint"
            }
        );

        for (agg, want) in [
            ("none", Aggregation::None),
            ("AVG", Aggregation::Avg),
            ("Sum", Aggregation::Sum),
            ("min", Aggregation::Min),
            ("max", Aggregation::Max),
        ] {
            let mut body = python_sdk_body();
            body[0]["instances"][0]["dataPoints"][0]["dataPointAggregationType"] = json!(agg);
            let got = ok(&body).payloads[0].instances[0].data_points[0].data_point_aggregation_type;
            assert_eq!(got, want);
            assert_eq!(got.as_str(), agg.to_ascii_lowercase());
        }
        for (kind, want) in [
            ("Counter", DataPointType::Counter),
            ("DERIVE", DataPointType::Derive),
            ("gauge", DataPointType::Gauge),
        ] {
            let mut body = python_sdk_body();
            body[0]["instances"][0]["dataPoints"][0]["dataPointType"] = json!(kind);
            let got = ok(&body).payloads[0].instances[0].data_points[0].data_point_type;
            assert_eq!(got, want);
            assert_eq!(got.as_str(), kind.to_ascii_lowercase());
        }
    }

    #[test]
    fn several_problems_of_one_item_are_all_reported() {
        let body = json!([{"resourceIds": {}, "dataSource": "a-b", "instances": []}]);
        let e = run(&body).unwrap_err();
        assert_eq!(e.errors().len(), 3);
        assert_eq!(
            e.errors()
                .iter()
                .map(|e| e.problem.clone())
                .collect::<Vec<_>>(),
            vec![
                Problem::Missing {
                    field: field("resourceIds")
                },
                Problem::HyphenNotLast {
                    field: field("dataSource")
                },
                Problem::NoInstances,
            ]
        );
    }

    #[test]
    fn partial_failure_answers_202_with_errors() {
        let mut body = python_sdk_body();
        let mut bad = body[0].clone();
        bad["resourceIds"] = json!({});
        body.as_array_mut().unwrap().push(bad);
        body[0]["instances"][0]["dataPoints"][0]["values"][(NOW - 3600).to_string()] = json!("1");
        let parsed = ok(&body);
        assert_eq!(parsed.payloads.len(), 1);
        assert_eq!(parsed.sample_count(), 4);
        assert_eq!(parsed.error_count, 2);
        assert_eq!(
            parsed.response_body(),
            json!({
                "code": 202,
                "message": ACCEPTED_MESSAGE,
                "errors": [
                    "payload 0, instance \"cpu-0\", datapoint \"cpu_utilization\", timestamp \"1699996400\": the sample is older than 10 minutes, the accepted age",
                    "payload 1: `resourceIds` is required",
                ]
            })
        );
    }

    #[test]
    fn nothing_valid_answers_400_with_errors() {
        let e = run(&with_sample(&(NOW + 3600).to_string(), json!("1"))).map(|p| p.error_count);
        assert_eq!(e, Ok(1), "one sample in the window survives");
        let body = json!([{
            "resourceIds": {"system.hostname": "h"},
            "dataSource": "DS",
            "instances": [{"instanceName": "i", "dataPoints": [
                {"dataPointName": "d", "values": {"1700000000000": "1"}}
            ]}]
        }]);
        let e = run(&body).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.response_body(),
            json!({
                "code": 400,
                "message": "no sample was accepted: payload 0, instance \"i\", datapoint \"d\", timestamp \"1700000000000\": the timestamp looks like epoch milliseconds; `values` keys are epoch seconds",
                "errors": ["payload 0, instance \"i\", datapoint \"d\", timestamp \"1700000000000\": the timestamp looks like epoch milliseconds; `values` keys are epoch seconds"]
            })
        );
    }

    #[test]
    fn malformed_bodies() {
        let p = |b: &[u8]| parse(b, &Limits::default(), NOW_MS, DEFAULT_BACKFILL_MS);
        for bad in [
            &b""[..],
            b"[",
            b"{\"resourceIds\":",
            b"[1,]",
            b"nul",
            b"\xff\xfe[]",
            b"[] []",
            b"{'a': 1}",
        ] {
            let e = p(bad).unwrap_err();
            assert!(
                matches!(e, IngestError::InvalidJson { .. }),
                "{bad:?}: {e:?}"
            );
            assert_eq!(e.status(), 400);
            assert!(
                e.to_string()
                    .starts_with("the request body is not valid JSON: "),
                "{e}"
            );
        }
        let e = p(b"[1,").unwrap_err();
        assert!(e.to_string().contains("line 1 column 3"), "{e}");
        for scalar in [&b"1"[..], b"\"x\"", b"null", b"true"] {
            assert_eq!(p(scalar), Err(IngestError::NotAnArray));
        }
        assert_eq!(p(b"[]"), Err(IngestError::Empty));
        assert_eq!(p(b" [ ] "), Err(IngestError::Empty));
        let e = p(b"[1, \"x\", null]").unwrap_err();
        assert_eq!(e.errors().len(), 3);
        assert_eq!(
            e.errors()[1].to_string(),
            "payload 1: a payload must be a JSON object"
        );
        assert_eq!(p(b"{}").unwrap_err().errors().len(), 3);
        // Deep nesting is refused by the JSON parser, not by the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            p(deep.as_bytes()),
            Err(IngestError::InvalidJson { .. })
        ));
        let e = p(b"[]").unwrap_err();
        assert_eq!(
            e.response_body(),
            json!({"code": 400, "message": "the request body holds no metric payload", "errors": []})
        );
    }

    #[test]
    fn error_list_is_capped() {
        let values: Map<String, Value> = (0..500)
            .map(|i| ((NOW - 10_000 - i).to_string(), json!("1")))
            .collect();
        let body = json!([{
            "resourceIds": {"system.hostname": "h"},
            "dataSource": "DS",
            "instances": [{"instanceName": "i", "dataPoints": [
                {"dataPointName": "d", "values": values},
                {"dataPointName": "ok", "values": {NOW.to_string(): "1"}}
            ]}]
        }]);
        let parsed = ok(&body);
        assert_eq!(parsed.errors.len(), MAX_REPORTED_ERRORS);
        assert_eq!(parsed.error_count, 500);
        let errors = parsed.response_body()["errors"].as_array().unwrap().clone();
        assert_eq!(errors.len(), MAX_REPORTED_ERRORS + 1);
        assert_eq!(
            errors[MAX_REPORTED_ERRORS],
            json!("... and 400 more errors")
        );
    }

    #[test]
    fn messages_quote_and_clip_user_text() {
        let long = format!("{}\"y", "x".repeat(100));
        let mut body = python_sdk_body();
        body[0]["instances"][1]["instanceName"] = json!(long);
        let parsed = ok(&body);
        let msg = parsed.errors[0].to_string();
        assert_eq!(
            msg,
            format!(
                "payload 0, instance \"{}\"...: `instanceName` must not contain '\"'",
                "x".repeat(64)
            )
        );
        let loc = Location {
            payload: 3,
            instance: Some("#1".into()),
            data_point: None,
            timestamp: None,
        };
        assert_eq!(loc.to_string(), "payload 3, instance #1");
        assert_eq!(duration_words(1), "1 millisecond");
        assert_eq!(duration_words(1500), "1500 milliseconds");
        assert_eq!(duration_words(90_000), "90 seconds");
        assert_eq!(duration_words(7_200_000), "2 hours");
        assert_eq!(duration_words(60_000), "1 minute");
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// A random JSON value in roughly the shape of a body, with wrong types sprinkled in.
    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        const KEYS: &[&str] = &[
            "resourceIds",
            "resourceName",
            "resourceProperties",
            "dataSource",
            "dataSourceId",
            "dataSourceDisplayName",
            "dataSourceGroup",
            "singleInstanceDS",
            "instances",
            "instanceName",
            "instanceDisplayName",
            "instanceProperties",
            "dataPoints",
            "dataPointName",
            "dataPointType",
            "dataPointAggregationType",
            "percentileValue",
            "values",
            "system.hostname",
            "1700000000",
            "1699999990",
            "x",
        ];
        const STRINGS: &[&str] = &[
            "",
            " ",
            "CPU",
            "a-b",
            "gauge",
            "percentile",
            "12.5",
            "NaN",
            "1700000000",
            "1e999",
            "é",
            "\u{0}",
            "system.x",
            "MAX",
            "cpu_time",
            "true",
        ];
        match rng.below(if depth > 5 { 6 } else { 9 }) {
            0 => Value::Null,
            1 => json!(rng.below(2) == 0),
            2 => json!(rng.next() as i64 >> rng.below(64)),
            3 => json!((rng.next() as f64) / 1e6 - 9e12),
            4 | 5 => json!(STRINGS[rng.below(STRINGS.len())]),
            6 => Value::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.below(6))
                    .map(|_| {
                        (
                            KEYS[rng.below(KEYS.len())].to_string(),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    fn check_invariants(parsed: &Parsed, backfill_ms: i64) {
        assert!(!parsed.payloads.is_empty());
        assert!(parsed.errors.len() <= MAX_REPORTED_ERRORS);
        assert!(parsed.error_count >= parsed.errors.len());
        for p in &parsed.payloads {
            assert!(!p.resource_ids.is_empty());
            assert!(p.data_source.is_some() || p.data_source_id.is_some());
            assert!(!p.instances.is_empty() && p.instances.len() <= MAX_INSTANCES);
            for i in &p.instances {
                assert!(!i.instance_name.is_empty());
                assert!(!i.data_points.is_empty());
                for d in &i.data_points {
                    assert!(!d.values.is_empty());
                    for (ts, v) in &d.values {
                        assert!(v.is_finite());
                        assert!(*ts * 1000 >= NOW_MS - backfill_ms.max(0));
                        assert!(*ts * 1000 <= NOW_MS + MAX_FUTURE_MS);
                    }
                }
            }
        }
        let _ = parsed.response_body();
    }

    #[test]
    fn random_bodies_never_panic() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let seed = serde_json::to_vec(&python_sdk_body()).unwrap();
        let mut accepted = 0;
        for round in 0..20_000 {
            let bytes: Vec<u8> = match round % 4 {
                // Mutated realistic body: flips, deletions, insertions.
                0 | 1 => {
                    let mut b = seed.clone();
                    for _ in 0..=rng.below(4) {
                        let at = rng.below(b.len());
                        match rng.below(3) {
                            0 => b[at] = rng.next() as u8,
                            1 => {
                                b.remove(at);
                            }
                            _ => b.insert(at, b"{}[]\",:0-.e"[rng.below(11)]),
                        }
                    }
                    b
                }
                // A random JSON tree.
                2 => serde_json::to_vec(&random_value(&mut rng, 0)).unwrap(),
                // Random bytes.
                _ => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
            };
            // Mostly the usual clock and window; sometimes extremes.
            let (now, backfill) = if rng.below(5) == 0 {
                (
                    [NOW_MS, 0, i64::MIN, i64::MAX][rng.below(4)],
                    [DEFAULT_BACKFILL_MS, 0, -1, i64::MAX, i64::MIN][rng.below(5)],
                )
            } else {
                (NOW_MS, DEFAULT_BACKFILL_MS)
            };
            match parse(&bytes, &Limits::default(), now, backfill) {
                Ok(parsed) => {
                    accepted += 1;
                    if now == NOW_MS {
                        check_invariants(&parsed, backfill);
                    }
                }
                Err(e) => {
                    let _ = e.response_body();
                    assert!(e.errors().len() <= MAX_REPORTED_ERRORS);
                }
            }
        }
        assert!(accepted > 1_000, "only {accepted} bodies accepted");
    }
}
