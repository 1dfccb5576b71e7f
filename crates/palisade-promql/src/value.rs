//! Query results.

use palisade_tsdb::{Labels, Sample};

/// The result of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number at the evaluation time.
    Scalar {
        /// Evaluation time (ms since the epoch).
        t_ms: i64,
        /// The value.
        value: f64,
    },
    /// A string at the evaluation time (a top-level string literal).
    String {
        /// Evaluation time (ms since the epoch).
        t_ms: i64,
        /// The string.
        value: String,
    },
    /// An instant vector: one value per series (instant queries).
    Vector(Vec<InstantSample>),
    /// Series with several samples each: every range query, and an instant query of a
    /// range selector (`x[5m]`, the raw samples with their own timestamps).
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// The Prometheus API's `resultType`.
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// One series' value in an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    /// The series' labels; the metric name, when kept, is under `__name__`.
    pub labels: Labels,
    /// The evaluation time (ms since the epoch).
    pub t_ms: i64,
    /// The value.
    pub value: f64,
}

/// One series of a matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    /// The series' labels; the metric name, when kept, is under `__name__`.
    pub labels: Labels,
    /// The samples, ascending by time (never empty).
    pub samples: Vec<Sample>,
}

/// Formats a value as Prometheus does (Go's `strconv.FormatFloat(v, 'f', -1, 64)`):
/// shortest round-trip digits without exponent, `+Inf`, `-Inf`, `NaN`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display for f64 prints the shortest round-trip digits and never an
        // exponent, like Go's 'f' format with precision -1.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::format_value;

    #[test]
    fn formats_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(-2.25), "-2.25");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(-0.0), "-0");
    }
}
