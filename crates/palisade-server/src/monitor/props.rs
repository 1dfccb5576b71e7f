//! Writing properties: validation, sealing of credentials, the `********` rule and
//! LogicMonitor's `opType` semantics.

use crate::error::ApiError;
use crate::keys::Keys;
use palisade_core::property::{self, PropertyError, MASK};
use palisade_store::inventory::Property;
use serde_json::Value;

/// How a list of properties in a write combines with the stored ones (`opType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    /// The list replaces every custom property (LogicMonitor's default for a full update).
    Refresh,
    /// Listed properties are added or changed; others are kept.
    Replace,
    /// Listed properties are added; existing names are refused.
    Add,
    /// Listed properties are removed.
    Delete,
}

impl OpType {
    /// Parses `opType` (case-insensitive); `None` gives the default.
    pub fn parse(raw: Option<&str>, default: OpType) -> Result<OpType, ApiError> {
        match raw.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => Ok(default),
            Some("refresh") => Ok(OpType::Refresh),
            Some("replace") => Ok(OpType::Replace),
            Some("add") => Ok(OpType::Add),
            Some("delete") => Ok(OpType::Delete),
            Some(other) => Err(ApiError::BadRequest(format!(
                "opType `{other}` is not one of refresh, replace, add, delete"
            ))),
        }
    }
}

fn sealing_context(name: &str) -> String {
    format!("palisade property {}", name.to_ascii_lowercase())
}

/// Parses `[{name, value}]`.
pub fn parse_list(
    v: Option<&Value>,
    field: &str,
) -> Result<Option<Vec<(String, String)>>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    if v.is_null() {
        return Ok(None);
    }
    let arr = v.as_array().ok_or_else(|| {
        ApiError::BadRequest(format!("`{field}` must be a list of {{name, value}}"))
    })?;
    let mut out = Vec::with_capacity(arr.len());
    for item in arr {
        let name = item.get("name").and_then(Value::as_str);
        let value = match item.get("value") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        };
        match (name, value) {
            (Some(n), Some(val)) => out.push((n.to_string(), val)),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "each entry of `{field}` needs a string `name` and a `value`"
                )))
            }
        }
    }
    Ok(Some(out))
}

/// One property as it should be stored: credentials sealed, `********` keeping the stored one.
pub fn prepare(
    keys: &Keys,
    existing: &[Property],
    name: &str,
    value: &str,
) -> Result<Property, PropertyError> {
    property::validate(name, value)?;
    if !property::is_credential(name) {
        return Ok(Property {
            name: name.into(),
            value: value.into(),
            sealed: false,
        });
    }
    if value == MASK {
        return existing
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name) && p.sealed)
            .cloned()
            .ok_or_else(|| PropertyError::NothingToKeep(name.into()));
    }
    Ok(Property {
        name: name.into(),
        value: keys.seal(value.as_bytes(), &sealing_context(name)),
        sealed: true,
    })
}

/// Applies a list of properties to the stored ones.
pub fn apply(
    keys: &Keys,
    existing: &[Property],
    incoming: &[(String, String)],
    op: OpType,
) -> Result<Vec<Property>, PropertyError> {
    let mut seen = std::collections::BTreeSet::new();
    for (n, _) in incoming {
        if !seen.insert(n.to_ascii_lowercase()) {
            return Err(PropertyError::Name(format!("{n} (listed twice)")));
        }
    }
    match op {
        OpType::Refresh => incoming
            .iter()
            .map(|(n, v)| prepare(keys, existing, n, v))
            .collect(),
        OpType::Replace | OpType::Add => {
            let mut out = existing.to_vec();
            for (n, v) in incoming {
                let p = prepare(keys, existing, n, v)?;
                match out.iter_mut().find(|e| e.name.eq_ignore_ascii_case(n)) {
                    Some(_) if op == OpType::Add => {
                        return Err(PropertyError::Name(format!("{n} (already set)")))
                    }
                    Some(slot) => *slot = p,
                    None => out.push(p),
                }
            }
            Ok(out)
        }
        OpType::Delete => Ok(existing
            .iter()
            .filter(|e| !incoming.iter().any(|(n, _)| e.name.eq_ignore_ascii_case(n)))
            .cloned()
            .collect()),
    }
}

/// The value a client may see: credentials masked.
pub fn shown(name: &str, value: &str, sealed: bool) -> String {
    if sealed || property::is_credential(name) {
        MASK.into()
    } else {
        value.into()
    }
}

/// Decrypts a credential for the collector that monitors the device.
pub fn reveal(keys: &Keys, name: &str, value: &str, sealed: bool) -> Result<String, ApiError> {
    if !sealed {
        return Ok(value.into());
    }
    let plain = keys.open(value, &sealing_context(name)).map_err(|_| {
        ApiError::Internal(format!("credential property {name} cannot be decrypted"))
    })?;
    String::from_utf8(plain.expose().clone())
        .map_err(|_| ApiError::Internal(format!("credential property {name} is not UTF-8")))
}

impl From<PropertyError> for ApiError {
    fn from(e: PropertyError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}
