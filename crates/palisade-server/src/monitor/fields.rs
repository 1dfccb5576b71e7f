//! Reading fields of a JSON request body with one answer for every wrong type: the
//! monitoring handlers (devices, groups, SDTs, alerts, chains) all parse through these.

use crate::error::ApiError;
use serde_json::Value;

/// A string field; `None` when absent or null.
pub fn str_field(v: &Value, name: &str) -> Result<Option<String>, ApiError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::BadRequest(format!("`{name}` must be a string"))),
    }
}

/// An integer field (numbers or numeric strings, as the SDK may send); `None` when absent.
pub fn int_field(v: &Value, name: &str) -> Result<Option<i64>, ApiError> {
    let bad = || ApiError::BadRequest(format!("`{name}` must be an integer"));
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A boolean field (JSON booleans only); `None` when absent.
pub fn bool_field(v: &Value, name: &str) -> Result<Option<bool>, ApiError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::BadRequest(format!(
            "`{name}` must be true or false"
        ))),
    }
}

/// A short free-text field: at most `max` bytes, no control characters but newlines.
pub fn check_text(what: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.len() > max || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::BadRequest(format!(
            "`{what}` must be at most {max} bytes without control characters"
        )));
    }
    Ok(())
}
