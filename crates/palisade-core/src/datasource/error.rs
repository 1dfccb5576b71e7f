//! Why a datasource is refused.

use crate::applies_to::AppliesToError;

use super::expr::ExprError;
use super::model::CollectMethod;

/// Why a datasource document is refused. Every message names the offending field as a path
/// into the document (`dataPoints[2].alertExpr`, `collector.oids.ifInErrors`) and is meant
/// to be shown to the API caller or CLI user as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DatasourceError {
    /// Not JSON, or not the datasource format: a syntax error, an unknown field (a typo), a
    /// missing field, a value of the wrong type.
    #[error("datasource document: {message}")]
    Format {
        /// The parser's message, with line and column.
        message: String,
    },
    /// The datasource name is not 1 to 64 letters, digits, `_` or `-`.
    #[error("{field}: `{value}` is not a valid name: use 1 to 64 letters, digits, `_` or `-`")]
    Name {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
    },
    /// A datapoint name that expressions could not name.
    #[error("{field}: `{value}` is not a valid datapoint name: use a letter or `_`, then letters, digits or `_`, at most 64 characters")]
    DatapointName {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
    },
    /// Two datapoints with one name.
    #[error("{field}: the datapoint name `{name}` is used twice")]
    DuplicateDatapoint {
        /// The field of the second one.
        field: String,
        /// The name.
        name: String,
    },
    /// A required text is empty.
    #[error("{field}: must not be empty")]
    Empty {
        /// The field.
        field: String,
    },
    /// A text is too long.
    #[error("{field}: too long ({len}, at most {max} allowed)")]
    TooLong {
        /// The field (`document` for the whole file).
        field: String,
        /// Its length: characters, but bytes for `document` and `collector.body`.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list or map has too few or too many entries.
    #[error("{field}: {count} entries, {min} to {max} allowed")]
    Count {
        /// The field.
        field: String,
        /// Entries found.
        count: usize,
        /// Fewest allowed.
        min: usize,
        /// Most allowed.
        max: usize,
    },
    /// A number out of its range.
    #[error("{field}: {value} is out of range ({expected})")]
    OutOfRange {
        /// The field.
        field: String,
        /// The value refused.
        value: i64,
        /// The range, in words.
        expected: &'static str,
    },
    /// The `appliesTo` expression does not parse (its message starts with `appliesTo:`).
    #[error(transparent)]
    AppliesTo(#[from] AppliesToError),
    /// `collectMethod` and `collector.method` disagree.
    #[error("collector.method: `{collector}` does not match collectMethod `{collect_method}`")]
    MethodMismatch {
        /// `collectMethod`.
        collect_method: CollectMethod,
        /// `collector.method`.
        collector: CollectMethod,
    },
    /// A malformed default threshold.
    #[error("{field}: `{value}` is not a threshold: write an operator (> >= < <= = !=) and 1 to 3 numbers, or nothing")]
    AlertExpr {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
    },
    /// `minValue` is not below `maxValue`.
    #[error("{field}: minValue {min} is not below maxValue {max}")]
    MinMax {
        /// The datapoint.
        field: String,
        /// `minValue`.
        min: f64,
        /// `maxValue`.
        max: f64,
    },
    /// An expression datapoint without an expression.
    #[error("{field}: an expression datapoint needs an expression")]
    MissingExpression {
        /// The field.
        field: String,
    },
    /// An expression on a datapoint that is not of type `expression`.
    #[error("{field}: only datapoints of type expression have an expression")]
    UnexpectedExpression {
        /// The field.
        field: String,
    },
    /// An expression that does not parse.
    #[error("{field}: {source}")]
    Expression {
        /// The field.
        field: String,
        /// What is wrong with it.
        #[source]
        source: ExprError,
    },
    /// An expression names a datapoint the datasource does not have.
    #[error("{field}: `{reference}` is not a datapoint of this datasource")]
    UnknownReference {
        /// The field.
        field: String,
        /// The name.
        reference: String,
    },
    /// Expressions that depend on each other.
    #[error("dataPoints: expressions refer to each other in a cycle: {cycle}")]
    ExpressionCycle {
        /// The cycle, `a -> b -> a`.
        cycle: String,
    },
    /// Not a dotted numeric OID.
    #[error("{field}: `{value}` is not a dotted numeric OID such as 1.3.6.1.2.1.1.3.0")]
    Oid {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
    },
    /// A collected datapoint the collector has no source for.
    #[error("{field}: the datapoint `{datapoint}` is collected but has no entry here")]
    MissingSource {
        /// The collector's map.
        field: String,
        /// The datapoint.
        datapoint: String,
    },
    /// A collector entry for a datapoint that does not exist or is an expression.
    #[error("{field}: `{datapoint}` is not a collected datapoint of this datasource")]
    UnknownSource {
        /// The entry.
        field: String,
        /// Its key.
        datapoint: String,
    },
    /// `hasMultiInstances` disagrees with the collector's parameters.
    #[error("{field}: {reason}")]
    Instances {
        /// The field.
        field: String,
        /// What disagrees.
        reason: &'static str,
    },
    /// A malformed `##property##` template.
    #[error("{field}: `{value}` {reason}")]
    Template {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A URL that is not `http://` or `https://` with a host.
    #[error("{field}: `{value}` is not an http:// or https:// URL with a host")]
    Url {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
    },
    /// A script name that is not a plain file name.
    #[error("{field}: `{value}` is not a script name: use 1 to 128 letters, digits, `_`, `-` or `.`, not starting with `.` (a file in the collector's scripts directory, not a path or a command)")]
    ScriptName {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
    },
    /// Not an RFC 6901 JSON pointer.
    #[error("{field}: `{value}` is not a JSON pointer (empty, or `/` followed by segments with `~0` and `~1` as the only escapes)")]
    JsonPointer {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
    },
    /// A regular expression that does not compile or lacks a required capture.
    #[error("{field}: {message}")]
    Regex {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A field the parser does not produce, or a key that cannot appear in its output.
    #[error("{field}: `{value}` is not a field of the {parser} parser")]
    ParserField {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
        /// The parser.
        parser: &'static str,
    },
    /// Not a Prometheus metric or label name.
    #[error("{field}: `{value}` is not a valid Prometheus {what} name")]
    PromName {
        /// The field.
        field: String,
        /// The value refused.
        value: String,
        /// `metric` or `label`.
        what: &'static str,
    },
    /// Parameters of the method that do not fit together.
    #[error("{field}: {reason}")]
    Inconsistent {
        /// The field.
        field: String,
        /// What does not fit.
        reason: &'static str,
    },
}
