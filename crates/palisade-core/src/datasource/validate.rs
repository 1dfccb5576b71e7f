//! Validation of a datasource, and the compiled expression datapoints.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::error::DatasourceError;
use super::expr::{self, Expression};
use super::model::{DataPoint, DataSource, DatapointType};
use super::{check_collector, MAX_DATAPOINTS};

/// Shortest `collectInterval`, in seconds.
pub const MIN_INTERVAL: u32 = 10;
/// Longest `collectInterval`, in seconds (a day).
pub const MAX_INTERVAL: u32 = 86_400;
/// Longest datasource and datapoint name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest `displayName` and `group`.
pub const MAX_DISPLAY_LEN: usize = 128;
/// Longest datasource `description`.
pub const MAX_DESCRIPTION_LEN: usize = 4096;
/// Longest datapoint `description`.
pub const MAX_DATAPOINT_DESCRIPTION_LEN: usize = 1024;
/// Largest `alertTransitionInterval` and `alertClearTransitionInterval`.
pub const MAX_TRANSITION_INTERVAL: u32 = 60;

impl DataSource {
    /// Checks the whole datasource and returns the first problem found.
    pub fn validate(&self) -> Result<(), DatasourceError> {
        check_name("name", &self.name)?;
        max_len("displayName", &self.display_name, MAX_DISPLAY_LEN)?;
        max_len("description", &self.description, MAX_DESCRIPTION_LEN)?;
        max_len("group", &self.group, MAX_DISPLAY_LEN)?;
        if !self.applies_to.trim().is_empty() {
            crate::applies_to::parse(&self.applies_to)?;
        }
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&self.collect_interval) {
            return Err(DatasourceError::OutOfRange {
                field: "collectInterval".into(),
                value: i64::from(self.collect_interval),
                expected: "10 to 86400 seconds",
            });
        }
        if self.collect_method != self.collector.method() {
            return Err(DatasourceError::MethodMismatch {
                collect_method: self.collect_method,
                collector: self.collector.method(),
            });
        }
        check_datapoints(&self.data_points)?;
        ExpressionSet::compile(self)?;
        check_collector::check(self)
    }
}

/// Whether `name` is a valid datasource name: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `name` is a valid datapoint name: `[A-Za-z_][A-Za-z0-9_]*`, at most 64.
pub fn is_valid_datapoint_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_NAME_LEN
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_name(field: &str, name: &str) -> Result<(), DatasourceError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(DatasourceError::Name {
            field: field.into(),
            value: name.into(),
        })
    }
}

pub(crate) fn max_len(field: &str, value: &str, max: usize) -> Result<(), DatasourceError> {
    let len = value.chars().count();
    if len > max {
        return Err(DatasourceError::TooLong {
            field: field.into(),
            len,
            max,
        });
    }
    Ok(())
}

fn check_datapoints(points: &[DataPoint]) -> Result<(), DatasourceError> {
    if points.is_empty() || points.len() > MAX_DATAPOINTS {
        return Err(DatasourceError::Count {
            field: "dataPoints".into(),
            count: points.len(),
            min: 1,
            max: MAX_DATAPOINTS,
        });
    }
    let mut seen = HashSet::new();
    for (i, dp) in points.iter().enumerate() {
        let at = |f: &str| format!("dataPoints[{i}].{f}");
        if !is_valid_datapoint_name(&dp.name) {
            return Err(DatasourceError::DatapointName {
                field: at("name"),
                value: dp.name.clone(),
            });
        }
        if !seen.insert(dp.name.as_str()) {
            return Err(DatasourceError::DuplicateDatapoint {
                field: at("name"),
                name: dp.name.clone(),
            });
        }
        max_len(
            &at("description"),
            &dp.description,
            MAX_DATAPOINT_DESCRIPTION_LEN,
        )?;
        match (dp.kind, &dp.expression) {
            (DatapointType::Expression, None) => {
                return Err(DatasourceError::MissingExpression {
                    field: at("expression"),
                })
            }
            (kind, Some(_)) if kind != DatapointType::Expression => {
                return Err(DatasourceError::UnexpectedExpression {
                    field: at("expression"),
                })
            }
            _ => {}
        }
        if !is_light_threshold(&dp.alert_expr) {
            return Err(DatasourceError::AlertExpr {
                field: at("alertExpr"),
                value: dp.alert_expr.clone(),
            });
        }
        for (f, v) in [
            ("alertTransitionInterval", dp.alert_transition_interval),
            (
                "alertClearTransitionInterval",
                dp.alert_clear_transition_interval,
            ),
        ] {
            if v > MAX_TRANSITION_INTERVAL {
                return Err(DatasourceError::OutOfRange {
                    field: at(f),
                    value: i64::from(v),
                    expected: "0 to 60 collections",
                });
            }
        }
        if let (Some(min), Some(max)) = (dp.min_value, dp.max_value) {
            if min >= max {
                return Err(DatasourceError::MinMax {
                    field: format!("dataPoints[{i}]"),
                    min,
                    max,
                });
            }
        }
    }
    Ok(())
}

/// The light check of a default threshold: empty, or an operator among
/// `>`, `>=`, `<`, `<=`, `=`, `!=` followed by 1 to 3 finite numbers, separated by
/// whitespace. The full semantics belong to [`crate::threshold`].
pub fn is_light_threshold(text: &str) -> bool {
    let mut parts = text.split_whitespace();
    let Some(op) = parts.next() else {
        return true;
    };
    if !matches!(op, ">" | ">=" | "<" | "<=" | "=" | "!=") {
        return false;
    }
    let mut count = 0;
    for p in parts {
        count += 1;
        if count > 3 || !p.parse::<f64>().is_ok_and(f64::is_finite) {
            return false;
        }
    }
    count >= 1
}

/// The expression datapoints of a datasource, parsed and in an order where each comes after
/// the expressions it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressionSet {
    items: Vec<(String, Expression)>,
}

impl ExpressionSet {
    /// Parses the expressions of `ds`, checks that they name existing datapoints and do not
    /// depend on each other in a cycle, and orders them.
    pub fn compile(ds: &DataSource) -> Result<ExpressionSet, DatasourceError> {
        let mut parsed: HashMap<&str, (usize, Expression)> = HashMap::new();
        for (i, dp) in ds.data_points.iter().enumerate() {
            let Some(text) = dp.expression.as_deref() else {
                continue;
            };
            let field = format!("dataPoints[{i}].expression");
            let e = expr::parse(text).map_err(|source| DatasourceError::Expression {
                field: field.clone(),
                source,
            })?;
            if let Some(unknown) = e.references().iter().find(|r| ds.datapoint(r).is_none()) {
                return Err(DatasourceError::UnknownReference {
                    field,
                    reference: unknown.clone(),
                });
            }
            parsed.insert(dp.name.as_str(), (i, e));
        }
        // Depth-first topological sort; `stack` is the current path, for the cycle report.
        let mut order: Vec<&str> = Vec::new();
        let mut done: HashSet<&str> = HashSet::new();
        for dp in &ds.data_points {
            let mut stack: Vec<&str> = Vec::new();
            visit(&dp.name, &parsed, &mut done, &mut stack, &mut order)?;
        }
        let items = order
            .into_iter()
            .filter_map(|name| parsed.get(name).map(|(_, e)| (name.to_string(), e.clone())))
            .collect();
        Ok(ExpressionSet { items })
    }

    /// The expression datapoints, in evaluation order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|(n, _)| n.as_str())
    }

    /// Computes the expression datapoints of one instance from `values`, the processed
    /// values (counters as rates) of its other datapoints, and stores each result in
    /// `values`; an expression without a value is removed from it.
    pub fn evaluate(&self, values: &mut BTreeMap<String, f64>) {
        for (name, e) in &self.items {
            match e.evaluate(&|n: &str| values.get(n).copied()) {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None => {
                    values.remove(name);
                }
            }
        }
    }
}

fn visit<'a>(
    name: &'a str,
    parsed: &'a HashMap<&'a str, (usize, Expression)>,
    done: &mut HashSet<&'a str>,
    stack: &mut Vec<&'a str>,
    order: &mut Vec<&'a str>,
) -> Result<(), DatasourceError> {
    if done.contains(name) {
        return Ok(());
    }
    let Some((_, e)) = parsed.get(name) else {
        return Ok(()); // a collected datapoint: a leaf
    };
    if let Some(start) = stack.iter().position(|n| *n == name) {
        let mut cycle: Vec<&str> = stack[start..].to_vec();
        cycle.push(name);
        return Err(DatasourceError::ExpressionCycle {
            cycle: cycle.join(" -> "),
        });
    }
    stack.push(name);
    for r in e.references() {
        visit(r, parsed, done, stack, order)?;
    }
    stack.pop();
    done.insert(name);
    order.push(name);
    Ok(())
}
