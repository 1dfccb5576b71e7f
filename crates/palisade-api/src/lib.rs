//! LogicMonitor REST API v3 wire types, as Palisade speaks them.
//!
//! Field names are LogicMonitor's camelCase names; the official `logicmonitor-sdk` raises on
//! a missing required field (`Admin.username/email/roles`, `Role.name/privileges`,
//! `Privilege.objectType/objectId/operation`), so response types carry them unconditionally.
//! Request types are separate and every field is optional, so a PATCH sends only what changes.
//!
//! ```
//! use palisade_api::ErrorBody;
//! let e = ErrorBody::new(404, "no such user");
//! assert_eq!(serde_json::to_value(&e).unwrap()["errorCode"], 1404);
//! ```
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A privilege: `{objectType, objectId, operation, subOperation, objectName}`.
pub type PrivilegeWire = serde_json::Map<String, Value>;

/// The list envelope of every LogicMonitor list call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListEnvelope {
    /// Items matching the filter, before paging.
    pub total: usize,
    /// Always null: Palisade has no saved searches.
    pub search_id: Option<String>,
    /// The page.
    pub items: Vec<Value>,
}

/// LogicMonitor's error body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// What went wrong and what to do about it. Never a secret, never a stack trace.
    pub error_message: String,
    /// LogicMonitor's code: 1000 + the HTTP status.
    pub error_code: u16,
    /// Structured detail, when there is any.
    pub error_detail: Option<Value>,
}

impl ErrorBody {
    /// An error body for an HTTP status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ErrorBody {
            error_message: message.into(),
            error_code: 1000 + status,
            error_detail: None,
        }
    }
}

/// A role reference or full role in a user request: only `id` (or `name`) is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    /// The role id.
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub id: Option<i64>,
    /// The role name, used when there is no id.
    #[serde(default)]
    pub name: Option<String>,
}

/// A user (`Admin`) as sent to `POST`, `PATCH` and `PUT /setting/admins`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminRequest {
    /// Sign-in name.
    pub username: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Password; applied on update only with `?changePassword=true`.
    pub password: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Phone number (E.164 recommended).
    pub phone: Option<String>,
    /// Free text.
    pub note: Option<String>,
    /// `active` or `suspended`.
    pub status: Option<String>,
    /// API-only user: tokens only, no password, no UI.
    pub apionly: Option<bool>,
    /// Roles by id.
    pub roles: Option<Vec<RoleRef>>,
    /// IANA timezone.
    pub timezone: Option<String>,
    /// Must change the password at next sign-in.
    pub force_password_change: Option<bool>,
    /// SMS email address.
    pub sms_email: Option<String>,
    /// `sms` or `fullText`.
    pub sms_email_format: Option<String>,
    /// `email` or `smsemail`.
    pub contact_method: Option<String>,
}

/// A role as sent to `POST`, `PATCH` and `PUT /setting/roles`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRequest {
    /// Unique name.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Privileges.
    pub privileges: Option<Vec<Value>>,
    /// Holders must use a second factor.
    #[serde(rename = "twoFARequired")]
    pub two_fa_required: Option<bool>,
}

/// An API token as sent to `POST` and `PATCH .../apitokens`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenRequest {
    /// Free text.
    pub note: Option<String>,
    /// 1 disabled, 2 enabled.
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub status: Option<i64>,
    /// Expiry in epoch seconds, 0 or absent for none.
    #[serde(default, deserialize_with = "lenient_opt_i64")]
    pub expires_on: Option<i64>,
}

/// Accepts an integer or a numeric string (the SDK sends ints; scripts send either).
fn lenient_opt_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v: Option<Value> = Option::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("expected an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("expected an integer")),
        Some(_) => Err(serde::de::Error::custom("expected an integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_accept_sdk_shapes() {
        let a: AdminRequest = serde_json::from_str(
            r#"{"username": "carol", "email": "c@example.com", "roles": [{"id": 1}], "apionly": true}"#,
        )
        .unwrap();
        assert_eq!(a.roles.unwrap()[0].id, Some(1));
        let t: ApiTokenRequest = serde_json::from_str(r#"{"status": "1"}"#).unwrap();
        assert_eq!(t.status, Some(1));
        let r: RoleRequest =
            serde_json::from_str(r#"{"name": "x", "privileges": [], "twoFARequired": true}"#)
                .unwrap();
        assert_eq!(r.two_fa_required, Some(true));
    }
}
