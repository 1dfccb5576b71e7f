//! Query parameters of list endpoints (`size`, `offset`, `fields`, `sort`,
//! `filter`) and how they shape the LogicMonitor list envelope: validating
//! the raw values into a [`ListQuery`], then filtering, sorting, counting,
//! paginating and projecting a list of JSON items with [`ListQuery::apply`].
//!
//! The envelope itself (`{"total": .., "items": [..]}`) is built by the
//! caller from the `(total, items)` pair this module returns.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::filter::{self, Filter, FilterError};

/// Page size used when `size` is absent, empty or `0`.
pub const DEFAULT_SIZE: usize = 50;

/// Largest accepted page size.
pub const MAX_SIZE: usize = 1000;

/// Direction of a sort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortOrder {
    /// Smallest first (`+field` or `field`).
    Asc,
    /// Largest first (`-field`).
    Desc,
}

/// A parsed `sort` parameter.
#[derive(Debug, Clone)]
pub struct Sort {
    /// Field to sort on; may be dotted to reach into nested objects.
    pub field: String,
    /// Direction.
    pub order: SortOrder,
}

/// A validated list query.
///
/// `ListQuery::default()` has `size == 0`, which [`ListQuery::apply`] treats
/// as [`DEFAULT_SIZE`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Page size; `0` means [`DEFAULT_SIZE`], values above [`MAX_SIZE`] are
    /// capped when applied.
    pub size: usize,
    /// Number of matching items to skip.
    pub offset: usize,
    /// Fields to keep in each item (besides `id` and the required ones);
    /// `None` keeps whole items.
    pub fields: Option<Vec<String>>,
    /// Sort to apply before paginating; `None` keeps the input order.
    pub sort: Option<Sort>,
    /// Filter to apply first; `None` keeps every item.
    pub filter: Option<Filter>,
}

/// Why list query parameters were rejected; messages are meant for the API
/// caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListQueryError {
    /// `size` is not an integer between 0 and [`MAX_SIZE`].
    #[error("invalid size `{value}`: size must be between 1 and 1000")]
    InvalidSize {
        /// The raw value.
        value: String,
    },
    /// `offset` is not a non-negative integer.
    #[error("invalid offset `{value}`: offset must be a non-negative integer")]
    InvalidOffset {
        /// The raw value.
        value: String,
    },
    /// `sort` is not `+field`, `-field` or `field`.
    #[error("invalid sort `{value}`: expected `+field`, `-field` or `field`")]
    InvalidSort {
        /// The raw value.
        value: String,
    },
    /// `filter` does not parse.
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// `None` for an absent or blank parameter.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

fn is_field_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !name.split('.').any(str::is_empty)
}

fn parse_sort(raw: &str) -> Result<Sort, ListQueryError> {
    let invalid = || ListQueryError::InvalidSort {
        value: raw.to_owned(),
    };
    let (order, rest) = match raw.chars().next() {
        // A `+` form-decoded into a space counts as `+`.
        Some('+' | ' ') => (SortOrder::Asc, raw.get(1..).unwrap_or_default()),
        Some('-') => (SortOrder::Desc, raw.get(1..).unwrap_or_default()),
        _ => (SortOrder::Asc, raw),
    };
    let field = rest.trim();
    if !is_field_name(field) {
        return Err(invalid());
    }
    Ok(Sort {
        field: field.to_owned(),
        order,
    })
}

impl ListQuery {
    /// Build from raw (already URL-decoded) query values; `None` means the
    /// parameter is absent. A blank value is treated as absent.
    ///
    /// * `size`: default [`DEFAULT_SIZE`]; `0` also means the default; above
    ///   [`MAX_SIZE`] or not an integer is an error.
    /// * `offset`: default `0`; must be a non-negative integer.
    /// * `fields`: comma-separated field names; blanks are skipped.
    /// * `sort`: `+field`, ` field` (a decoded `+`), `-field` or `field`.
    /// * `filter`: see [`crate::filter`].
    pub fn from_params(
        size: Option<&str>,
        offset: Option<&str>,
        fields: Option<&str>,
        sort: Option<&str>,
        filter: Option<&str>,
    ) -> Result<ListQuery, ListQueryError> {
        let size = match present(size) {
            None => DEFAULT_SIZE,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(0) => DEFAULT_SIZE,
                Ok(n) if n <= MAX_SIZE => n,
                _ => {
                    return Err(ListQueryError::InvalidSize {
                        value: raw.to_owned(),
                    })
                }
            },
        };
        let offset = match present(offset) {
            None => 0,
            Some(raw) => {
                raw.trim()
                    .parse::<usize>()
                    .map_err(|_| ListQueryError::InvalidOffset {
                        value: raw.to_owned(),
                    })?
            }
        };
        let fields = present(fields)
            .map(|raw| {
                let mut out: Vec<String> = Vec::new();
                for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if !out.iter().any(|f| f == name) {
                        out.push(name.to_owned());
                    }
                }
                out
            })
            .filter(|list| !list.is_empty());
        let sort = present(sort).map(parse_sort).transpose()?;
        let filter = present(filter).map(filter::parse).transpose()?;
        Ok(ListQuery {
            size,
            offset,
            fields,
            sort,
            filter,
        })
    }

    /// The page size actually used: `size`, with `0` meaning
    /// [`DEFAULT_SIZE`] and capped at [`MAX_SIZE`].
    pub fn page_size(&self) -> usize {
        if self.size == 0 {
            DEFAULT_SIZE
        } else {
            self.size.min(MAX_SIZE)
        }
    }

    /// Filter, sort, count, paginate, project. `required` are field names
    /// always kept in projected items (the SDK crashes if they are missing).
    /// Returns (total after filtering, page items).
    ///
    /// Sorting is stable; numbers compare numerically, strings
    /// case-insensitively, and missing or null values come last in either
    /// order (booleans sort before numbers, numbers before strings, strings
    /// before arrays and objects). Projection keeps `id`, `required` and the
    /// first segment of each requested field; items that are not objects are
    /// returned unchanged.
    pub fn apply(&self, items: Vec<Value>, required: &[&str]) -> (usize, Vec<Value>) {
        let mut items: Vec<Value> = match &self.filter {
            Some(f) => items.into_iter().filter(|item| f.matches(item)).collect(),
            None => items,
        };
        let total = items.len();
        if let Some(sort) = &self.sort {
            let mut keyed: Vec<(SortKey, Value)> = items
                .into_iter()
                .map(|item| (SortKey::of(lookup(&item, &sort.field)), item))
                .collect();
            keyed.sort_by(|(a, _), (b, _)| a.compare(b, &sort.order));
            items = keyed.into_iter().map(|(_, item)| item).collect();
        }
        let page = items.into_iter().skip(self.offset).take(self.page_size());
        let page: Vec<Value> = match &self.fields {
            None => page.collect(),
            Some(fields) => {
                let keep: Vec<&str> = std::iter::once("id")
                    .chain(required.iter().copied())
                    .chain(
                        fields
                            .iter()
                            .map(|f| f.split('.').next().unwrap_or_default()),
                    )
                    .collect();
                page.map(|item| project(item, &keep)).collect()
            }
        };
        (total, page)
    }
}

fn project(item: Value, keep: &[&str]) -> Value {
    match item {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| keep.contains(&k.as_str()))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

/// The value at a dotted path through nested objects.
fn lookup<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(item, |v, segment| v.as_object()?.get(segment))
}

/// Precomputed sort key; the derived order within a variant is total
/// (`f64::total_cmp` for numbers).
enum SortKey {
    Bool(bool),
    Num(f64),
    Str(String),
    Other,
    Missing,
}

impl SortKey {
    fn of(v: Option<&Value>) -> SortKey {
        match v {
            None | Some(Value::Null) => SortKey::Missing,
            Some(Value::Bool(b)) => SortKey::Bool(*b),
            Some(Value::Number(n)) => n.as_f64().map_or(SortKey::Other, SortKey::Num),
            Some(Value::String(s)) => {
                SortKey::Str(s.chars().flat_map(char::to_lowercase).collect())
            }
            Some(Value::Array(_) | Value::Object(_)) => SortKey::Other,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            SortKey::Bool(_) => 0,
            SortKey::Num(_) => 1,
            SortKey::Str(_) => 2,
            SortKey::Other => 3,
            SortKey::Missing => 4,
        }
    }

    /// Total order: present values by `order`, missing ones always last.
    fn compare(&self, other: &SortKey, order: &SortOrder) -> Ordering {
        let ord = match (self, other) {
            (SortKey::Missing, SortKey::Missing) => return Ordering::Equal,
            (SortKey::Missing, _) => return Ordering::Greater,
            (_, SortKey::Missing) => return Ordering::Less,
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            (SortKey::Num(a), SortKey::Num(b)) => a.total_cmp(b),
            (SortKey::Str(a), SortKey::Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        };
        match order {
            SortOrder::Asc => ord,
            SortOrder::Desc => ord.reverse(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(
        size: Option<&str>,
        offset: Option<&str>,
        fields: Option<&str>,
        sort: Option<&str>,
        filter: Option<&str>,
    ) -> ListQuery {
        ListQuery::from_params(size, offset, fields, sort, filter).unwrap()
    }

    fn users() -> Vec<Value> {
        vec![
            json!({"id": 1, "username": "carol", "status": "active", "score": 10, "email": "c@x"}),
            json!({"id": 2, "username": "Alice", "status": "suspended", "score": 9, "email": "a@x"}),
            json!({"id": 3, "username": "bob", "status": "active", "email": "b@x"}),
            json!({"id": 4, "username": "dave", "status": "active", "score": 100, "email": "d@x"}),
            json!({"id": 5, "username": "eve", "status": "active", "score": null, "email": "e@x"}),
        ]
    }

    fn ids(items: &[Value]) -> Vec<i64> {
        items
            .iter()
            .map(|i| i.get("id").and_then(Value::as_i64).unwrap_or(-1))
            .collect()
    }

    #[test]
    fn defaults() {
        let query = q(None, None, None, None, None);
        assert_eq!(query.size, DEFAULT_SIZE);
        assert_eq!(query.offset, 0);
        assert!(query.fields.is_none());
        assert!(query.sort.is_none());
        assert!(query.filter.is_none());
        let blank = q(Some(""), Some(" "), Some(""), Some(""), Some(""));
        assert_eq!(blank.size, DEFAULT_SIZE);
        assert_eq!(blank.offset, 0);
        assert!(blank.fields.is_none() && blank.sort.is_none() && blank.filter.is_none());
    }

    #[test]
    fn size_rules() {
        assert_eq!(q(Some("0"), None, None, None, None).size, DEFAULT_SIZE);
        assert_eq!(q(Some("1"), None, None, None, None).size, 1);
        assert_eq!(q(Some("1000"), None, None, None, None).size, 1000);
        for bad in ["1001", "abc", "-1", "1.5", "99999999999999999999999"] {
            let e = ListQuery::from_params(Some(bad), None, None, None, None).unwrap_err();
            assert_eq!(
                e,
                ListQueryError::InvalidSize {
                    value: bad.to_owned()
                }
            );
            assert!(e.to_string().contains("size must be between 1 and 1000"));
        }
    }

    #[test]
    fn offset_rules() {
        assert_eq!(q(None, Some("25"), None, None, None).offset, 25);
        assert_eq!(q(None, Some("0"), None, None, None).offset, 0);
        for bad in ["-1", "x", "2.5"] {
            assert_eq!(
                ListQuery::from_params(None, Some(bad), None, None, None).unwrap_err(),
                ListQueryError::InvalidOffset {
                    value: bad.to_owned()
                }
            );
        }
    }

    #[test]
    fn sort_parsing() {
        let s = |raw: &str| q(None, None, None, Some(raw), None).sort.unwrap();
        let plus = s("+username");
        assert_eq!(
            (plus.field.as_str(), plus.order),
            ("username", SortOrder::Asc)
        );
        let space = s(" username");
        assert_eq!(
            (space.field.as_str(), space.order),
            ("username", SortOrder::Asc)
        );
        let minus = s("-id");
        assert_eq!((minus.field.as_str(), minus.order), ("id", SortOrder::Desc));
        let bare = s("lastLoginOn");
        assert_eq!(
            (bare.field.as_str(), bare.order),
            ("lastLoginOn", SortOrder::Asc)
        );
        assert_eq!(s("-address.city").field, "address.city");
        for bad in ["+", "-", "a,b", "+-x", "--x", "a b", "a..b", "*"] {
            assert_eq!(
                ListQuery::from_params(None, None, None, Some(bad), None).unwrap_err(),
                ListQueryError::InvalidSort {
                    value: bad.to_owned()
                },
                "{bad}"
            );
        }
    }

    #[test]
    fn fields_parsing() {
        let f = q(None, None, Some("username, email,,username"), None, None);
        assert_eq!(
            f.fields,
            Some(vec!["username".to_owned(), "email".to_owned()])
        );
        assert!(q(None, None, Some(" , "), None, None).fields.is_none());
    }

    #[test]
    fn filter_errors_are_wrapped() {
        let e = ListQuery::from_params(None, None, None, None, Some("username")).unwrap_err();
        assert!(matches!(
            e,
            ListQueryError::Filter(FilterError::MissingOperator { .. })
        ));
        assert_eq!(
            e.to_string(),
            "filter: expected an operator after `username` at position 8"
        );
    }

    #[test]
    fn apply_filters_counts_and_paginates() {
        let query = q(Some("2"), Some("1"), None, None, Some(r#"status:"active""#));
        let (total, page) = query.apply(users(), &[]);
        assert_eq!(total, 4);
        assert_eq!(ids(&page), vec![3, 4]);
        let (total, page) = q(Some("2"), Some("10"), None, None, None).apply(users(), &[]);
        assert_eq!(total, 5);
        assert!(page.is_empty());
        let (total, page) = ListQuery::default().apply(users(), &[]);
        assert_eq!((total, page.len()), (5, 5));
    }

    #[test]
    fn default_query_uses_default_page_size() {
        let many: Vec<Value> = (0..120).map(|i| json!({"id": i})).collect();
        let (total, page) = ListQuery::default().apply(many.clone(), &[]);
        assert_eq!((total, page.len()), (120, DEFAULT_SIZE));
        let big = ListQuery {
            size: 5000,
            ..ListQuery::default()
        };
        assert_eq!(big.page_size(), MAX_SIZE);
    }

    #[test]
    fn sort_strings_case_insensitive() {
        let (_, page) = q(None, None, None, Some("+username"), None).apply(users(), &[]);
        assert_eq!(ids(&page), vec![2, 3, 1, 4, 5]);
        let (_, page) = q(None, None, None, Some("-username"), None).apply(users(), &[]);
        assert_eq!(ids(&page), vec![5, 4, 1, 3, 2]);
    }

    #[test]
    fn sort_numbers_missing_last() {
        let (_, page) = q(None, None, None, Some("score"), None).apply(users(), &[]);
        assert_eq!(ids(&page), vec![2, 1, 4, 3, 5]);
        let (_, page) = q(None, None, None, Some("-score"), None).apply(users(), &[]);
        assert_eq!(ids(&page), vec![4, 1, 2, 3, 5]);
    }

    #[test]
    fn sort_is_stable_and_total() {
        let (_, page) = q(None, None, None, Some("status"), None).apply(users(), &[]);
        assert_eq!(ids(&page), vec![1, 3, 4, 5, 2]);
        let (_, page) = q(None, None, None, Some("-status"), None).apply(users(), &[]);
        assert_eq!(ids(&page), vec![2, 1, 3, 4, 5]);
        // mixed types: bool < number < string < container, null/missing last
        let mixed = vec![
            json!({"id": 1, "v": "b"}),
            json!({"id": 2, "v": null}),
            json!({"id": 3, "v": 2}),
            json!({"id": 4, "v": [1]}),
            json!({"id": 5, "v": true}),
            json!({"id": 6}),
            json!({"id": 7, "v": "A"}),
            json!({"id": 8, "v": -1.5}),
            json!("not an object"),
        ];
        let (_, page) = q(None, None, None, Some("v"), None).apply(mixed.clone(), &[]);
        assert_eq!(ids(&page), vec![5, 8, 3, 7, 1, 4, 2, 6, -1]);
        let (_, page) = q(None, None, None, Some("-v"), None).apply(mixed, &[]);
        assert_eq!(ids(&page), vec![4, 1, 7, 3, 8, 5, 2, 6, -1]);
    }

    #[test]
    fn sort_by_dotted_field() {
        let items = vec![
            json!({"id": 1, "address": {"city": "Paris"}}),
            json!({"id": 2, "address": {"city": "lyon"}}),
            json!({"id": 3}),
        ];
        let (_, page) = q(None, None, None, Some("address.city"), None).apply(items, &[]);
        assert_eq!(ids(&page), vec![2, 1, 3]);
    }

    #[test]
    fn projection_keeps_id_and_required() {
        let query = q(
            None,
            None,
            Some("email,customProperties.name"),
            Some("-id"),
            None,
        );
        let mut items = users();
        items.push(json!("scalar"));
        let (total, page) = query.apply(items, &["username"]);
        assert_eq!(total, 6);
        // non-objects have no sort key (last) and are not projected
        assert_eq!(page.last(), Some(&json!("scalar")));
        assert_eq!(
            page.first(),
            Some(&json!({"id": 5, "username": "eve", "email": "e@x"}))
        );
        let with_cp = vec![json!({"id": 9, "x": 1, "customProperties": [{"name": "a"}]})];
        let (_, page) = query.apply(with_cp, &[]);
        assert_eq!(
            page,
            vec![json!({"id": 9, "customProperties": [{"name": "a"}]})]
        );
        // without `fields`, whole objects
        let (_, page) = q(Some("1"), None, None, None, None).apply(users(), &["username"]);
        assert_eq!(page, users().into_iter().take(1).collect::<Vec<_>>());
    }
}
