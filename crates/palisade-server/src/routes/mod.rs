//! HTTP handlers: thin adapters from requests to [`crate::ops`] and [`crate::wire`].

pub mod accesslogs;
pub mod alerting;
pub mod collectors;
pub mod compliance;
pub mod data;
pub mod datasources;
pub mod devices;
pub mod ingest;
pub mod prometheus;
pub mod roles;
pub mod token_migration;
pub mod tokens;
pub mod users;

use crate::error::ApiError;
use axum::Json;
use palisade_api::ListEnvelope;
use palisade_core::listing::ListQuery;
use serde_json::Value;
use std::collections::HashMap;

/// Decoded query parameters (form encoding: `+` is a space).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))?;
        Ok(Params(pairs.into_iter().collect()))
    }

    /// A parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A boolean parameter (`true`/`True`/`1`).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// The list query (`size`, `offset`, `fields`, `sort`, `filter`).
    pub fn list_query(&self) -> Result<ListQuery, ApiError> {
        ListQuery::from_params(
            self.get("size"),
            self.get("offset"),
            self.get("fields"),
            self.get("sort"),
            self.get("filter"),
        )
        .map_err(|e| ApiError::BadRequest(e.to_string()))
    }

    /// Filters, sorts, pages and projects `items` into the list envelope.
    pub fn list(
        &self,
        items: Vec<Value>,
        required: &[&str],
    ) -> Result<Json<ListEnvelope>, ApiError> {
        let (total, items) = self.list_query()?.apply(items, required);
        Ok(Json(ListEnvelope {
            total,
            search_id: None,
            items,
        }))
    }

    /// Projects one object by `fields`.
    pub fn one(&self, item: Value, required: &[&str]) -> Result<Json<Value>, ApiError> {
        let q = ListQuery::from_params(None, None, self.get("fields"), None, None)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let (_, mut items) = q.apply(vec![item], required);
        Ok(Json(items.pop().unwrap_or(Value::Null)))
    }
}

/// Parses a numeric path id.
pub fn id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::NotFound(format!("{what} `{raw}` not found (ids are numbers)")))
}

/// Unknown paths under the API.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

/// `GET /healthz`.
pub async fn healthz() -> Json<Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
