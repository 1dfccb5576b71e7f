//! LogicMonitor's static thresholds (`alertExpr`) and alert severities.
//!
//! An `alertExpr` is an operator followed by one to three numbers separated by spaces:
//! `"> 60 80 90"` means warning above 60, error above 80, critical above 90. The empty string
//! means "no threshold" (the datapoint does not alert on its value).
//!
//! # Rules
//!
//! - **Operators:** `>`, `>=`, `<`, `<=`, `=`, `!=`. `=` and `!=` compare exactly (no epsilon).
//! - **Positional values.** The values are listed in severity order warning, error, critical.
//!   With one value it is the warning level; with two, warning and error. There is no way to
//!   skip a level positionally: a critical-only threshold is written with the same value three
//!   times (`"> 90 90 90"`), since [`Threshold::evaluate`] reports the highest level breached.
//! - **Levels are independent.** Each level is compared on its own and the highest severity
//!   whose comparison holds wins; values need not be ordered (LogicMonitor accepts
//!   `"> 90 80 70"` too, and there 95 is critical).
//! - **NaN never breaches**, whatever the operator (`!= 5` included): in LogicMonitor NaN means
//!   "no data", which is the business of `alertForNoData`, not of the threshold.
//! - **Hostile input:** at most [`MAX_EXPR_LEN`] bytes; each value at most [`MAX_VALUE_LEN`]
//!   characters of `0-9 + - . e E` with at least one digit, finite (`inf`, `NaN`, `1e999` and
//!   hexadecimal are refused). Whitespace around and between tokens may be any ASCII
//!   whitespace, and the space after the operator is optional (`">=90"`).
//! - **Canonical form** ([`Display`](std::fmt::Display)): the operator, one space, the values
//!   separated by single spaces, each in the shortest form that parses back to the same
//!   number (`"> 60 80.5 1e20"`); `parse(display(t)) == t` always.
//! - **Overrides** ([`effective`]): the nearest setting wins, device before the deepest
//!   group before its ancestors before the datasource's default; an override that is the
//!   empty string disables alerting on that datapoint for everything below it.
//!
//! ```
//! use palisade_core::threshold::{Severity, Threshold};
//! let t = Threshold::parse(">  60 80   90").unwrap().unwrap();
//! assert_eq!(t.to_string(), "> 60 80 90");
//! assert_eq!(t.evaluate(85.0), Some(Severity::Error));
//! assert_eq!(t.evaluate(50.0), None);
//! assert_eq!(Threshold::parse("").unwrap(), None);
//! ```

use std::fmt;
use std::str::FromStr;

/// Longest accepted `alertExpr`, in bytes.
pub const MAX_EXPR_LEN: usize = 128;
/// Longest accepted single value, in characters.
pub const MAX_VALUE_LEN: usize = 32;

/// An alert severity, with LogicMonitor's numeric codes (the `severity` field of an alert).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "u8", try_from = "u8")]
pub enum Severity {
    /// Warning (LogicMonitor code 2).
    Warning = 2,
    /// Error (LogicMonitor code 3).
    Error = 3,
    /// Critical (LogicMonitor code 4).
    Critical = 4,
}

/// A number that is not a LogicMonitor severity code (2, 3 or 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("severity code {0} is not one of 2 (warning), 3 (error), 4 (critical)")]
pub struct InvalidSeverity(pub u8);

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 3] = [Severity::Warning, Severity::Error, Severity::Critical];

    /// LogicMonitor's numeric code: 2 warning, 3 error, 4 critical.
    pub fn as_lm_code(self) -> u8 {
        self as u8
    }

    /// The severity for a LogicMonitor code, `None` for anything but 2, 3 and 4.
    pub fn from_lm_code(code: u8) -> Option<Severity> {
        match code {
            2 => Some(Severity::Warning),
            3 => Some(Severity::Error),
            4 => Some(Severity::Critical),
            _ => None,
        }
    }

    /// The lowercase name: `warning`, `error` or `critical`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// The severity for a name, ignoring case; `warn` is accepted for `warning`.
    pub fn from_name(name: &str) -> Option<Severity> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("warning") || name.eq_ignore_ascii_case("warn") {
            Some(Severity::Warning)
        } else if name.eq_ignore_ascii_case("error") {
            Some(Severity::Error)
        } else if name.eq_ignore_ascii_case("critical") {
            Some(Severity::Critical)
        } else {
            None
        }
    }

    /// Position in [`Severity::ALL`] (0 warning, 1 error, 2 critical).
    pub(crate) fn index(self) -> usize {
        match self {
            Severity::Warning => 0,
            Severity::Error => 1,
            Severity::Critical => 2,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Severity> for u8 {
    fn from(s: Severity) -> u8 {
        s.as_lm_code()
    }
}

impl TryFrom<u8> for Severity {
    type Error = InvalidSeverity;
    fn try_from(code: u8) -> Result<Severity, InvalidSeverity> {
        Severity::from_lm_code(code).ok_or(InvalidSeverity(code))
    }
}

/// The comparison of a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=` (exact equality)
    Eq,
    /// `!=`
    Ne,
}

impl Operator {
    /// The operator as written in an `alertExpr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Eq => "=",
            Operator::Ne => "!=",
        }
    }

    fn from_token(s: &str) -> Option<Operator> {
        Some(match s {
            ">" => Operator::Gt,
            ">=" => Operator::Ge,
            "<" => Operator::Lt,
            "<=" => Operator::Le,
            "=" => Operator::Eq,
            "!=" => Operator::Ne,
            _ => return None,
        })
    }

    /// Whether `value <op> limit` holds. False whenever `value` is NaN.
    pub fn holds(self, value: f64, limit: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        match self {
            Operator::Gt => value > limit,
            Operator::Ge => value >= limit,
            Operator::Lt => value < limit,
            Operator::Le => value <= limit,
            Operator::Eq => value == limit,
            Operator::Ne => value != limit,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an `alertExpr` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    /// Longer than [`MAX_EXPR_LEN`].
    #[error("threshold: too long ({len} bytes, at most {max} allowed)")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// [`MAX_EXPR_LEN`].
        max: usize,
    },
    /// Empty where a threshold is required ([`FromStr`]; [`Threshold::parse`] returns `None`).
    #[error("threshold: empty")]
    Empty,
    /// The expression does not start with an operator.
    #[error("threshold: expected an operator (>, >=, <, <=, =, !=) at the start")]
    MissingOperator,
    /// The expression starts with operator characters that are not an operator (`==`, `=>`).
    #[error("threshold: unknown operator {0:?}; use >, >=, <, <=, = or !=")]
    UnknownOperator(String),
    /// An operator without values.
    #[error("threshold: expected 1 to 3 values (warning, error, critical) after the operator")]
    MissingValue,
    /// More than three values.
    #[error("threshold: {count} values; at most 3 (warning, error, critical) are allowed")]
    TooManyValues {
        /// Number of values found.
        count: usize,
    },
    /// A value that is not a finite decimal number.
    #[error("threshold: value {position} ({token:?}) is not a finite decimal number")]
    InvalidNumber {
        /// 1 for the warning value, 2 for error, 3 for critical.
        position: usize,
        /// The offending text (at most [`MAX_VALUE_LEN`] characters of it).
        token: String,
    },
}

/// A parsed static threshold: an operator and the warning, error and critical levels.
///
/// The levels always form a prefix: warning is always set, error only with warning, critical
/// only with both.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    op: Operator,
    levels: [Option<f64>; 3],
}

impl Threshold {
    /// A threshold from an operator and 1 to 3 finite values (warning, error, critical).
    pub fn new(op: Operator, values: &[f64]) -> Result<Threshold, ThresholdError> {
        if values.is_empty() {
            return Err(ThresholdError::MissingValue);
        }
        if values.len() > 3 {
            return Err(ThresholdError::TooManyValues {
                count: values.len(),
            });
        }
        let mut levels = [None; 3];
        for (i, (slot, v)) in levels.iter_mut().zip(values).enumerate() {
            if !v.is_finite() {
                return Err(ThresholdError::InvalidNumber {
                    position: i + 1,
                    token: v.to_string(),
                });
            }
            *slot = Some(*v);
        }
        Ok(Threshold { op, levels })
    }

    /// Parses an `alertExpr`; `Ok(None)` for the empty (or all-whitespace) string.
    pub fn parse(expr: &str) -> Result<Option<Threshold>, ThresholdError> {
        if expr.len() > MAX_EXPR_LEN {
            return Err(ThresholdError::TooLong {
                len: expr.len(),
                max: MAX_EXPR_LEN,
            });
        }
        let expr = expr.trim_matches(|c: char| c.is_ascii_whitespace());
        if expr.is_empty() {
            return Ok(None);
        }
        let op_len = expr
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '!'))
            .unwrap_or(expr.len());
        if op_len == 0 {
            return Err(ThresholdError::MissingOperator);
        }
        let (op_text, rest) = expr.split_at(op_len);
        let op = Operator::from_token(op_text)
            .ok_or_else(|| ThresholdError::UnknownOperator(op_text.to_string()))?;
        let tokens: Vec<&str> = rest.split_ascii_whitespace().collect();
        if tokens.is_empty() {
            return Err(ThresholdError::MissingValue);
        }
        if tokens.len() > 3 {
            return Err(ThresholdError::TooManyValues {
                count: tokens.len(),
            });
        }
        let mut levels = [None; 3];
        for (i, (slot, token)) in levels.iter_mut().zip(&tokens).enumerate() {
            *slot = Some(
                parse_number(token).ok_or_else(|| ThresholdError::InvalidNumber {
                    position: i + 1,
                    token: token.chars().take(MAX_VALUE_LEN).collect(),
                })?,
            );
        }
        Ok(Some(Threshold { op, levels }))
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.op
    }

    /// The value of one level, `None` when the expression does not set it.
    pub fn level(&self, severity: Severity) -> Option<f64> {
        self.levels[severity.index()]
    }

    /// The highest severity whose level is breached by `value`; `None` when none is, and
    /// always for NaN.
    pub fn evaluate(&self, value: f64) -> Option<Severity> {
        Severity::ALL.iter().rev().copied().find(|s| {
            self.level(*s)
                .is_some_and(|limit| self.op.holds(value, limit))
        })
    }

    /// The condition of one level as LogicMonitor shows it in an alert's `threshold` field
    /// (`"> 80"`), `None` when the level is not set.
    pub fn level_expr(&self, severity: Severity) -> Option<String> {
        self.level(severity)
            .map(|v| format!("{} {}", self.op, Canonical(v)))
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        for v in self.levels.iter().flatten() {
            write!(f, " {}", Canonical(*v))?;
        }
        Ok(())
    }
}

impl FromStr for Threshold {
    type Err = ThresholdError;
    /// Like [`Threshold::parse`], but the empty string is [`ThresholdError::Empty`].
    fn from_str(s: &str) -> Result<Threshold, ThresholdError> {
        Threshold::parse(s)?.ok_or(ThresholdError::Empty)
    }
}

/// The threshold in force for a datapoint: the nearest setting wins.
///
/// `device_override` beats the last (deepest) entry of `group_overrides_from_root_to_leaf`,
/// which beats the entries before it, which beat `datapoint_default`. Only groups that set an
/// override appear in the slice. A `Some("")` (or an empty slice entry) that wins disables
/// alerting: the answer is `Ok(None)`. Only the winning expression is parsed; an invalid
/// winner is an error rather than a silent fallback to a more distant setting.
pub fn effective(
    datapoint_default: Option<&str>,
    group_overrides_from_root_to_leaf: &[&str],
    device_override: Option<&str>,
) -> Result<Option<Threshold>, ThresholdError> {
    let winner = device_override
        .or_else(|| group_overrides_from_root_to_leaf.last().copied())
        .or(datapoint_default);
    match winner {
        Some(expr) => Threshold::parse(expr),
        None => Ok(None),
    }
}

fn parse_number(token: &str) -> Option<f64> {
    if token.is_empty()
        || token.len() > MAX_VALUE_LEN
        || !token
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        || !token.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    token.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Shortest round-tripping text of a finite number, short enough to parse back under
/// [`MAX_VALUE_LEN`]: plain decimals for moderate magnitudes, exponent form otherwise.
struct Canonical(f64);

impl fmt::Display for Canonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        let a = v.abs();
        if a != 0.0 && !(1e-6..1e16).contains(&a) {
            write!(f, "{v:e}")
        } else {
            write!(f, "{v}")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn t(s: &str) -> Threshold {
        Threshold::parse(s).unwrap().unwrap()
    }

    #[test]
    fn severity_codes_and_names() {
        for s in Severity::ALL {
            assert_eq!(Severity::from_lm_code(s.as_lm_code()), Some(s));
            assert_eq!(Severity::from_name(s.name()), Some(s));
            assert_eq!(Severity::try_from(u8::from(s)), Ok(s));
        }
        assert_eq!(Severity::Warning.as_lm_code(), 2);
        assert_eq!(Severity::Error.as_lm_code(), 3);
        assert_eq!(Severity::Critical.as_lm_code(), 4);
        assert_eq!(Severity::from_lm_code(1), None);
        assert_eq!(Severity::from_lm_code(5), None);
        assert_eq!(Severity::try_from(0), Err(InvalidSeverity(0)));
        assert_eq!(Severity::from_name(" WARN "), Some(Severity::Warning));
        assert_eq!(Severity::from_name("Critical"), Some(Severity::Critical));
        assert_eq!(Severity::from_name("fatal"), None);
        assert_eq!(Severity::Critical.to_string(), "critical");
        assert!(Severity::Warning < Severity::Error && Severity::Error < Severity::Critical);
    }

    #[test]
    fn severity_serialises_as_lm_code() {
        assert_eq!(serde_json::to_string(&Severity::Error).unwrap(), "3");
        let s: Severity = serde_json::from_str("4").unwrap();
        assert_eq!(s, Severity::Critical);
        assert!(serde_json::from_str::<Severity>("1").is_err());
        assert!(serde_json::from_str::<Severity>("\"error\"").is_err());
    }

    #[test]
    fn parses_three_values() {
        let x = t("> 60 80 90");
        assert_eq!(x.operator(), Operator::Gt);
        assert_eq!(x.level(Severity::Warning), Some(60.0));
        assert_eq!(x.level(Severity::Error), Some(80.0));
        assert_eq!(x.level(Severity::Critical), Some(90.0));
        assert_eq!(x.to_string(), "> 60 80 90");
    }

    #[test]
    fn fewer_values_fill_warning_then_error() {
        let one = t(">= 5");
        assert_eq!(one.level(Severity::Warning), Some(5.0));
        assert_eq!(one.level(Severity::Error), None);
        assert_eq!(one.level(Severity::Critical), None);
        assert_eq!(one.evaluate(1e9), Some(Severity::Warning));
        let two = t("< 10 5");
        assert_eq!(two.level(Severity::Warning), Some(10.0));
        assert_eq!(two.level(Severity::Error), Some(5.0));
        assert_eq!(two.level(Severity::Critical), None);
        assert_eq!(two.evaluate(-100.0), Some(Severity::Error));
        assert_eq!(two.evaluate(7.0), Some(Severity::Warning));
        assert_eq!(two.evaluate(10.0), None);
    }

    #[test]
    fn empty_means_no_threshold() {
        assert_eq!(Threshold::parse("").unwrap(), None);
        assert_eq!(Threshold::parse(" \t\n").unwrap(), None);
        assert_eq!("".parse::<Threshold>(), Err(ThresholdError::Empty));
    }

    #[test]
    fn every_operator() {
        let cases: [(&str, f64, Option<Severity>); 14] = [
            ("> 10", 10.0, None),
            ("> 10", 10.5, Some(Severity::Warning)),
            (">= 10", 10.0, Some(Severity::Warning)),
            (">= 10", 9.99, None),
            ("< 10", 9.0, Some(Severity::Warning)),
            ("< 10", 10.0, None),
            ("<= 10", 10.0, Some(Severity::Warning)),
            ("<= 10", 10.01, None),
            ("= 0", 0.0, Some(Severity::Warning)),
            ("= 0", -0.0, Some(Severity::Warning)),
            ("= 0", 0.1, None),
            ("!= 1", 2.0, Some(Severity::Warning)),
            ("!= 1", 1.0, None),
            ("!= 1 1 1", 0.0, Some(Severity::Critical)),
        ];
        for (expr, value, want) in cases {
            assert_eq!(t(expr).evaluate(value), want, "{expr} on {value}");
        }
    }

    #[test]
    fn highest_breached_level_wins() {
        let x = t("> 60 80 90");
        assert_eq!(x.evaluate(60.0), None);
        assert_eq!(x.evaluate(61.0), Some(Severity::Warning));
        assert_eq!(x.evaluate(80.0), Some(Severity::Warning));
        assert_eq!(x.evaluate(85.0), Some(Severity::Error));
        assert_eq!(x.evaluate(90.5), Some(Severity::Critical));
        assert_eq!(x.evaluate(f64::INFINITY), Some(Severity::Critical));
        // critical only, written as three equal values
        let c = t("> 90 90 90");
        assert_eq!(c.evaluate(95.0), Some(Severity::Critical));
        assert_eq!(c.evaluate(85.0), None);
        // unordered levels are evaluated independently
        let u = t("> 90 80 70");
        assert_eq!(u.evaluate(75.0), Some(Severity::Critical));
        assert_eq!(u.evaluate(65.0), None);
    }

    #[test]
    fn nan_never_breaches() {
        for expr in ["> 1", "< 1", ">= 1", "<= 1", "= 1", "!= 1 2 3"] {
            assert_eq!(t(expr).evaluate(f64::NAN), None, "{expr}");
        }
    }

    #[test]
    fn lenient_spacing_canonical_display() {
        assert_eq!(t(" >=90").to_string(), ">= 90");
        assert_eq!(t("<\t1   2\n3 ").to_string(), "< 1 2 3");
        assert_eq!(t("!= -1.50 +2 .5").to_string(), "!= -1.5 2 0.5");
        assert_eq!(t("> 1e3 5E-1 0").to_string(), "> 1000 0.5 0");
    }

    #[test]
    fn display_round_trips() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1.0 / 3.0,
            123_456_789.125,
            9_999_999_999_999_998.0,
            1e16,
            1e-6,
            9.99e-7,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            -2.5e-300,
        ];
        for op in [
            Operator::Gt,
            Operator::Ge,
            Operator::Lt,
            Operator::Le,
            Operator::Eq,
            Operator::Ne,
        ] {
            for chunk in values.chunks(3) {
                let x = Threshold::new(op, chunk).unwrap();
                let text = x.to_string();
                assert!(text.len() <= MAX_EXPR_LEN);
                let back = t(&text);
                assert_eq!(back.to_string(), text);
                for s in Severity::ALL {
                    assert_eq!(
                        back.level(s).map(f64::to_bits),
                        x.level(s).map(f64::to_bits),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn level_expr_is_lm_alert_threshold_text() {
        let x = t(">= 60 80");
        assert_eq!(x.level_expr(Severity::Warning).as_deref(), Some(">= 60"));
        assert_eq!(x.level_expr(Severity::Error).as_deref(), Some(">= 80"));
        assert_eq!(x.level_expr(Severity::Critical), None);
    }

    #[test]
    fn refuses_bad_input() {
        use ThresholdError as E;
        assert_eq!(Threshold::parse("60 80"), Err(E::MissingOperator));
        assert_eq!(Threshold::parse("abc"), Err(E::MissingOperator));
        assert_eq!(
            Threshold::parse("== 5"),
            Err(E::UnknownOperator("==".into()))
        );
        assert_eq!(
            Threshold::parse("=> 5"),
            Err(E::UnknownOperator("=>".into()))
        );
        assert_eq!(
            Threshold::parse("<> 5"),
            Err(E::UnknownOperator("<>".into()))
        );
        assert_eq!(Threshold::parse(">"), Err(E::MissingValue));
        assert_eq!(Threshold::parse(">=   "), Err(E::MissingValue));
        assert_eq!(
            Threshold::parse("> 1 2 3 4"),
            Err(E::TooManyValues { count: 4 })
        );
        for (expr, position, token) in [
            ("> abc", 1, "abc"),
            ("> 1 inf", 2, "inf"),
            ("> 1 2 NaN", 3, "NaN"),
            ("> 1e999", 1, "1e999"),
            ("> 0x10", 1, "0x10"),
            ("> 1,5", 1, "1,5"),
            ("> -", 1, "-"),
            ("> .", 1, "."),
            ("> 1..2", 1, "1..2"),
            ("> 5%", 1, "5%"),
            ("> 1 ２", 2, "２"),
        ] {
            assert_eq!(
                Threshold::parse(expr),
                Err(E::InvalidNumber {
                    position,
                    token: token.into()
                }),
                "{expr}"
            );
        }
        assert!(matches!(
            Threshold::new(Operator::Gt, &[1.0, f64::NAN]),
            Err(E::InvalidNumber { position: 2, .. })
        ));
        assert_eq!(Threshold::new(Operator::Gt, &[]), Err(E::MissingValue));
        assert_eq!(
            Threshold::new(Operator::Gt, &[1.0; 4]),
            Err(E::TooManyValues { count: 4 })
        );
    }

    #[test]
    fn length_limits() {
        let long = format!("> {}", "1".repeat(MAX_EXPR_LEN));
        assert_eq!(
            Threshold::parse(&long),
            Err(ThresholdError::TooLong {
                len: MAX_EXPR_LEN + 2,
                max: MAX_EXPR_LEN
            })
        );
        let long_value = format!("> {}", "9".repeat(MAX_VALUE_LEN + 1));
        match Threshold::parse(&long_value) {
            Err(ThresholdError::InvalidNumber { position: 1, token }) => {
                assert_eq!(token.len(), MAX_VALUE_LEN)
            }
            other => panic!("{other:?}"),
        }
        let max_value = format!("> {}", "9".repeat(MAX_VALUE_LEN));
        assert!(Threshold::parse(&max_value).unwrap().is_some());
        // padding counts against the limit too
        let padded = format!("> 1{}", " ".repeat(MAX_EXPR_LEN));
        assert!(matches!(
            Threshold::parse(&padded),
            Err(ThresholdError::TooLong { .. })
        ));
    }

    #[test]
    fn error_messages_escape_hostile_text() {
        let e = Threshold::parse("> \u{1b}[31m").unwrap_err();
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
        let e = Threshold::parse("=~ 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "threshold: value 1 (\"~\") is not a finite decimal number"
        );
    }

    #[test]
    fn effective_nearest_wins() {
        let d = Some("> 60 80 90");
        assert_eq!(effective(d, &[], None).unwrap(), Some(t("> 60 80 90")));
        assert_eq!(effective(d, &["> 1", "> 2"], None).unwrap(), Some(t("> 2")));
        assert_eq!(
            effective(d, &["> 1", "> 2"], Some("< 5")).unwrap(),
            Some(t("< 5"))
        );
        assert_eq!(effective(None, &["> 1"], None).unwrap(), Some(t("> 1")));
        assert_eq!(effective(None, &[], Some("= 3")).unwrap(), Some(t("= 3")));
        assert_eq!(effective(None, &[], None).unwrap(), None);
    }

    #[test]
    fn effective_empty_override_disables() {
        let d = Some("> 60 80 90");
        assert_eq!(effective(d, &[""], None).unwrap(), None);
        assert_eq!(effective(d, &["> 1"], Some("")).unwrap(), None);
        assert_eq!(effective(d, &["> 1", ""], None).unwrap(), None);
        // a deeper override re-enables below a disabling ancestor
        assert_eq!(effective(d, &["", "> 7"], None).unwrap(), Some(t("> 7")));
        assert_eq!(
            effective(Some(""), &[], Some("> 7")).unwrap(),
            Some(t("> 7"))
        );
        assert_eq!(effective(Some(""), &[], None).unwrap(), None);
    }

    #[test]
    fn effective_invalid_winner_is_an_error() {
        assert!(effective(Some("> 1"), &["> x"], None).is_err());
        // an invalid but shadowed setting does not matter
        assert_eq!(
            effective(Some("> x"), &["> 1"], None).unwrap(),
            Some(t("> 1"))
        );
    }
}
