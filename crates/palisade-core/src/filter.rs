//! The `filter` query parameter of list endpoints, in LogicMonitor REST API v3
//! syntax: parsing it into a [`Filter`] and matching JSON items against it.
//!
//! This module owns the grammar and the matching semantics only; it does no
//! I/O and never panics, whatever the input. The input is expected to be
//! URL-decoded already (a `+` in the query string has become a space).
//!
//! # Grammar
//!
//! * Clauses are joined by `,` (AND) or `||` (OR); `||` binds tighter, so
//!   `a:"1"||b:"2",c:"3"` means `(a = 1 OR b = 2) AND c = 3`.
//! * A clause is `path OP value`. The path is a field name, possibly dotted
//!   (`customProperties.name`); the special path `_all` means "any scalar
//!   field at any depth".
//! * Operators: `:` equal, `!:` not equal, `>` `<` `>:` (>=) `<:` (<=),
//!   `~` contains, `!~` does not contain, and the value-less `:::empty`,
//!   `!::empty`, `:::null` and `!::null`.
//! * A value is a double-quoted string (`\"` and `\\` are escapes, `\*` is a
//!   literal star, any other backslash is kept as is) or an unquoted run up to
//!   the next `,` or `|`. Alternatives are separated by a single `|`:
//!   `status:"active"|"suspended"`.
//! * For `:` and `!:` an unescaped `*` is a wildcard; a value of just `*`
//!   matches any present, non-null value.
//!
//! # Semantics
//!
//! Text comparisons are case-insensitive. Ordering operators compare
//! numerically when both sides are numbers, as text otherwise. Paths go
//! through arrays: a clause holds if any element holds. The negative
//! operators (`!:`, `!~`, `!::empty`, `!::null`) are exactly the negation of
//! their positive forms, so a missing field satisfies `!:` and `!~`, and with
//! alternatives the item must differ from all of them.
//!
//! # Example
//!
//! ```
//! use palisade_core::filter;
//! use serde_json::json;
//!
//! # fn main() -> Result<(), filter::FilterError> {
//! let f = filter::parse(r#"status:"active"|"suspended",username~"adm",roles.name:"manager""#)?;
//! let user = json!({
//!     "id": 3,
//!     "username": "Admin-Eve",
//!     "status": "Suspended",
//!     "roles": [{ "id": 2, "name": "manager" }]
//! });
//! assert!(f.matches(&user));
//! assert_eq!(f.fields(), vec!["status", "username", "roles"]);
//! # Ok(())
//! # }
//! ```

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Longest filter string accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;

/// Largest number of clauses (counting both `,` and `||` separated ones).
pub const MAX_CLAUSES: usize = 64;

/// The path that means "any scalar field at any depth".
const ALL_PATH: &str = "_all";

/// A parsed filter: an AND of OR-groups of clauses.
///
/// Built by [`parse`]; an empty filter string gives a filter that matches
/// everything.
#[derive(Debug, Clone)]
pub struct Filter {
    /// AND over the groups, OR over the clauses of each group.
    groups: Vec<Vec<Clause>>,
}

/// Why a filter string was rejected. Every message starts with `filter:` and
/// is meant to be shown to the API caller as is. Positions count characters
/// from 0.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// The filter string is longer than [`MAX_FILTER_LEN`] bytes.
    #[error("filter: too long ({len} bytes, at most {max} allowed)")]
    TooLong {
        /// Length of the rejected input, in bytes.
        len: usize,
        /// The limit, [`MAX_FILTER_LEN`].
        max: usize,
    },
    /// The filter has more than [`MAX_CLAUSES`] clauses.
    #[error("filter: too many clauses (at most {max} allowed)")]
    TooManyClauses {
        /// The limit, [`MAX_CLAUSES`].
        max: usize,
    },
    /// A separator is followed by nothing (`a:"1",,b:"2"`, or a trailing `,`).
    #[error("filter: empty clause at position {pos}")]
    EmptyClause {
        /// Where the missing clause should start.
        pos: usize,
    },
    /// A clause does not start with a field name.
    #[error("filter: expected a field name at position {pos}")]
    EmptyPath {
        /// Where the field name should start.
        pos: usize,
    },
    /// A dotted field name has an empty segment (`a..b`, `.a`, `a.`).
    #[error("filter: invalid field name `{path}` at position {pos} (empty segment)")]
    InvalidPath {
        /// The field name as written.
        path: String,
        /// Where the field name starts.
        pos: usize,
    },
    /// The field name is not followed by an operator.
    #[error("filter: expected an operator after `{path}` at position {pos}")]
    MissingOperator {
        /// The field name preceding the missing operator.
        path: String,
        /// Where the operator should be.
        pos: usize,
    },
    /// A `:::` or `!::` form other than `empty` / `null`.
    #[error(
        "filter: unknown operator `{op}` after `{path}` at position {pos} \
         (expected `:::empty`, `!::empty`, `:::null` or `!::null`)"
    )]
    UnknownOperator {
        /// The operator as written.
        op: String,
        /// The field name preceding it.
        path: String,
        /// Where the operator starts.
        pos: usize,
    },
    /// A double-quoted value has no closing quote.
    #[error("filter: unterminated quoted value starting at position {pos}")]
    UnterminatedQuote {
        /// Position of the opening quote.
        pos: usize,
    },
    /// A `|` is not followed by another value.
    #[error("filter: expected a value after `|` at position {pos}")]
    MissingValue {
        /// Where the value should start.
        pos: usize,
    },
    /// Something other than `,`, `||`, `|` or the end follows a clause
    /// (for instance `a:"x"y`).
    #[error(
        "filter: unexpected `{found}` at position {pos} \
         (expected `,`, `||`, `|` or the end of the filter)"
    )]
    UnexpectedChar {
        /// The offending character.
        found: char,
        /// Its position.
        pos: usize,
    },
}

/// One `path OP value(s)` clause.
#[derive(Debug, Clone)]
struct Clause {
    path: Path,
    op: Op,
    /// Alternatives; empty for the value-less operators.
    values: Vec<Pattern>,
}

#[derive(Debug, Clone)]
enum Path {
    /// `_all`: every scalar at any depth.
    All,
    /// A dotted path, split on `.`; never empty, no empty segment.
    Segments(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Contains,
    NotContains,
    Empty,
    NotEmpty,
    Null,
    NotNull,
}

impl Op {
    fn is_equality(self) -> bool {
        matches!(self, Op::Eq | Op::Ne)
    }
}

/// A value (one alternative), pre-folded to lower case.
#[derive(Debug, Clone)]
struct Pattern {
    /// Case-folded text, with any `*` kept literally.
    text: String,
    /// `text` as a finite number, if it is one.
    num: Option<f64>,
    /// Wildcard form, only for `:` / `!:` values containing an unescaped `*`.
    glob: Option<Vec<GlobTok>>,
}

impl Pattern {
    fn new(chars: &[(char, bool)], op: Op) -> Pattern {
        let text = fold_chars(chars.iter().map(|(c, _)| *c));
        let glob = if op.is_equality() && chars.iter().any(|(_, star)| *star) {
            let mut toks = Vec::with_capacity(chars.len());
            for (c, star) in chars {
                if *star {
                    if toks.last() != Some(&GlobTok::Star) {
                        toks.push(GlobTok::Star);
                    }
                } else {
                    toks.extend(c.to_lowercase().map(GlobTok::Char));
                }
            }
            Some(toks)
        } else {
            None
        };
        let num = parse_num(&text);
        Pattern { text, num, glob }
    }

    /// True for a value made of wildcards only (`*`): "present and not null".
    fn is_star_only(&self) -> bool {
        self.glob
            .as_ref()
            .is_some_and(|g| g.iter().all(|t| *t == GlobTok::Star))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GlobTok {
    Star,
    Char(char),
}

/// Parse a filter string (already URL-decoded).
///
/// An empty or whitespace-only string gives a filter that matches
/// everything.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(FilterError::TooLong {
            len: input.len(),
            max: MAX_FILTER_LEN,
        });
    }
    if input.trim().is_empty() {
        return Ok(Filter { groups: Vec::new() });
    }
    let mut p = Parser {
        chars: input.chars().collect(),
        pos: 0,
    };
    let mut groups = Vec::new();
    let mut group = Vec::new();
    let mut count = 0usize;
    loop {
        let clause = p.clause()?;
        count += 1;
        if count > MAX_CLAUSES {
            return Err(FilterError::TooManyClauses { max: MAX_CLAUSES });
        }
        group.push(clause);
        p.skip_ws();
        match p.peek() {
            None => {
                groups.push(group);
                break;
            }
            Some(',') => {
                p.pos += 1;
                groups.push(std::mem::take(&mut group));
            }
            Some('|') if p.peek_at(1) == Some('|') => p.pos += 2,
            Some(found) => {
                return Err(FilterError::UnexpectedChar { found, pos: p.pos });
            }
        }
    }
    Ok(Filter { groups })
}

impl Filter {
    /// Whether `item` satisfies the filter.
    pub fn matches(&self, item: &Value) -> bool {
        self.groups
            .iter()
            .all(|group| group.iter().any(|clause| clause.matches(item)))
    }

    /// Names of the top-level fields the filter refers to (first path
    /// segment), deduplicated, in order of first appearance. `_all` is not a
    /// field and is left out.
    pub fn fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for clause in self.groups.iter().flatten() {
            if let Path::Segments(segments) = &clause.path {
                if let Some(first) = segments.first() {
                    if !out.contains(first) {
                        out.push(first.clone());
                    }
                }
            }
        }
        out
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-')
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(n)).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars
            .get(from..to)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    fn at_clause_end(&self) -> bool {
        match self.peek() {
            None | Some(',') => true,
            Some('|') => self.peek_at(1) == Some('|'),
            Some(_) => false,
        }
    }

    fn clause(&mut self) -> Result<Clause, FilterError> {
        self.skip_ws();
        if self.at_clause_end() {
            return Err(FilterError::EmptyClause { pos: self.pos });
        }
        let start = self.pos;
        while self.peek().is_some_and(is_path_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(FilterError::EmptyPath { pos: start });
        }
        let raw = self.text(start, self.pos);
        let path = if raw == ALL_PATH {
            Path::All
        } else {
            let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
            if segments.iter().any(String::is_empty) {
                return Err(FilterError::InvalidPath {
                    path: raw,
                    pos: start,
                });
            }
            Path::Segments(segments)
        };
        self.skip_ws();
        let op = self.operator(&raw)?;
        let mut values = Vec::new();
        if !matches!(op, Op::Empty | Op::NotEmpty | Op::Null | Op::NotNull) {
            self.skip_ws();
            loop {
                let chars = self.value()?;
                values.push(Pattern::new(&chars, op));
                self.skip_ws();
                if self.peek() == Some('|') && self.peek_at(1) != Some('|') {
                    self.pos += 1;
                    self.skip_ws();
                    if self.at_clause_end() {
                        return Err(FilterError::MissingValue { pos: self.pos });
                    }
                } else {
                    break;
                }
            }
        }
        Ok(Clause { path, op, values })
    }

    fn operator(&mut self, path: &str) -> Result<Op, FilterError> {
        let start = self.pos;
        if self.starts_with(":::") || self.starts_with("!::") {
            let negated = self.peek() == Some('!');
            self.pos += 3;
            while self.peek().is_some_and(char::is_alphabetic) {
                self.pos += 1;
            }
            let keyword = fold_chars(
                self.chars
                    .get(start + 3..self.pos)
                    .unwrap_or_default()
                    .iter()
                    .copied(),
            );
            return match (negated, keyword.as_str()) {
                (false, "empty") => Ok(Op::Empty),
                (true, "empty") => Ok(Op::NotEmpty),
                (false, "null") => Ok(Op::Null),
                (true, "null") => Ok(Op::NotNull),
                _ => Err(FilterError::UnknownOperator {
                    op: self.text(start, self.pos),
                    path: path.to_owned(),
                    pos: start,
                }),
            };
        }
        let two = [
            ("!:", Op::Ne),
            ("!~", Op::NotContains),
            (">:", Op::Ge),
            ("<:", Op::Le),
        ];
        for (s, op) in two {
            if self.starts_with(s) {
                self.pos += 2;
                return Ok(op);
            }
        }
        let op = match self.peek() {
            Some(':') => Op::Eq,
            Some('~') => Op::Contains,
            Some('>') => Op::Gt,
            Some('<') => Op::Lt,
            _ => {
                return Err(FilterError::MissingOperator {
                    path: path.to_owned(),
                    pos: start,
                })
            }
        };
        self.pos += 1;
        Ok(op)
    }

    /// One value: characters paired with "is an unescaped `*`".
    fn value(&mut self) -> Result<Vec<(char, bool)>, FilterError> {
        let mut out = Vec::new();
        if self.peek() == Some('"') {
            let open = self.pos;
            self.pos += 1;
            loop {
                match self.peek() {
                    None => return Err(FilterError::UnterminatedQuote { pos: open }),
                    Some('"') => {
                        self.pos += 1;
                        return Ok(out);
                    }
                    Some('\\') => {
                        match self.peek_at(1) {
                            None => return Err(FilterError::UnterminatedQuote { pos: open }),
                            Some(c @ ('"' | '\\' | '*')) => out.push((c, false)),
                            Some(c) => {
                                out.push(('\\', false));
                                out.push((c, false));
                            }
                        }
                        self.pos += 2;
                    }
                    Some(c) => {
                        out.push((c, c == '*'));
                        self.pos += 1;
                    }
                }
            }
        }
        while let Some(c) = self.peek() {
            if c == ',' || c == '|' {
                break;
            }
            out.push((c, c == '*'));
            self.pos += 1;
        }
        while out.last().is_some_and(|(c, _)| c.is_whitespace()) {
            out.pop();
        }
        Ok(out)
    }
}

impl Clause {
    fn matches(&self, item: &Value) -> bool {
        let candidates = match &self.path {
            Path::All => all_scalars(item),
            Path::Segments(segments) => resolve(item, segments),
        };
        match self.op {
            Op::Empty => candidates.is_empty() || candidates.iter().any(|v| is_empty(v)),
            Op::NotEmpty => !(candidates.is_empty() || candidates.iter().any(|v| is_empty(v))),
            Op::Null => candidates.is_empty() || candidates.iter().any(|v| v.is_null()),
            Op::NotNull => !(candidates.is_empty() || candidates.iter().any(|v| v.is_null())),
            Op::Ne | Op::NotContains => !self.any_positive(&candidates),
            Op::Eq | Op::Gt | Op::Lt | Op::Ge | Op::Le | Op::Contains => {
                self.any_positive(&candidates)
            }
        }
    }

    /// Whether the positive form of the operator holds for any alternative
    /// and any candidate.
    fn any_positive(&self, candidates: &[&Value]) -> bool {
        self.values.iter().any(|pat| {
            if self.op.is_equality() && pat.is_star_only() {
                return candidates.iter().any(|v| !v.is_null());
            }
            candidates
                .iter()
                .any(|v| any_scalar(v, |s| scalar_matches(self.op, pat, s)))
        })
    }
}

/// Values found at `segments` under `item`, going through arrays at every
/// step. A terminal array is returned as is (not flattened).
fn resolve<'a>(item: &'a Value, segments: &[String]) -> Vec<&'a Value> {
    let mut current = vec![item];
    for segment in segments {
        let mut next = Vec::new();
        for value in current {
            let mut stack = vec![value];
            while let Some(v) = stack.pop() {
                match v {
                    Value::Object(map) => {
                        if let Some(found) = map.get(segment) {
                            next.push(found);
                        }
                    }
                    Value::Array(items) => stack.extend(items.iter().rev()),
                    _ => {}
                }
            }
        }
        current = next;
    }
    current
}

/// Every non-container value at any depth (strings, numbers, booleans, null).
fn all_scalars(item: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack = vec![item];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => stack.extend(map.values().rev()),
            Value::Array(items) => stack.extend(items.iter().rev()),
            _ => out.push(v),
        }
    }
    out
}

/// Apply `f` to `v`, or to every element of `v` (recursively) if it is an
/// array; true as soon as one call is.
fn any_scalar(v: &Value, mut f: impl FnMut(&Value) -> bool) -> bool {
    let mut stack = vec![v];
    while let Some(x) = stack.pop() {
        match x {
            Value::Array(items) => stack.extend(items.iter().rev()),
            _ => {
                if f(x) {
                    return true;
                }
            }
        }
    }
    false
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn fold_chars(chars: impl Iterator<Item = char>) -> String {
    chars.flat_map(char::to_lowercase).collect()
}

fn fold(s: &str) -> String {
    fold_chars(s.chars())
}

fn parse_num(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Case-folded text of a scalar; `None` for null, objects and arrays.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(fold(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn scalar_matches(op: Op, pat: &Pattern, v: &Value) -> bool {
    match op {
        Op::Eq | Op::Ne => equals(pat, v),
        Op::Contains | Op::NotContains => {
            scalar_text(v).is_some_and(|t| t.contains(pat.text.as_str()))
        }
        Op::Gt => compare(v, pat) == Some(Ordering::Greater),
        Op::Lt => compare(v, pat) == Some(Ordering::Less),
        Op::Ge => matches!(compare(v, pat), Some(Ordering::Greater | Ordering::Equal)),
        Op::Le => matches!(compare(v, pat), Some(Ordering::Less | Ordering::Equal)),
        Op::Empty | Op::NotEmpty | Op::Null | Op::NotNull => false,
    }
}

fn equals(pat: &Pattern, v: &Value) -> bool {
    if let Some(glob) = &pat.glob {
        return scalar_text(v).is_some_and(|t| glob_match(glob, &t));
    }
    match v {
        Value::String(s) => fold(s) == pat.text,
        Value::Number(n) => number_equals(n, pat),
        Value::Bool(b) => pat.text == if *b { "true" } else { "false" },
        _ => false,
    }
}

fn number_equals(n: &Number, pat: &Pattern) -> bool {
    if let (Some(a), Ok(b)) = (n.as_i64(), pat.text.parse::<i64>()) {
        return a == b;
    }
    if let (Some(a), Ok(b)) = (n.as_u64(), pat.text.parse::<u64>()) {
        return a == b;
    }
    match (n.as_f64(), pat.num) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Order of the item's scalar relative to the pattern: numeric if both are
/// numbers, case-insensitive text otherwise. `None` if `v` is not a scalar.
fn compare(v: &Value, pat: &Pattern) -> Option<Ordering> {
    let text = scalar_text(v)?;
    if let (Some(a), Some(b)) = (parse_num(&text), pat.num) {
        return a.partial_cmp(&b);
    }
    Some(text.as_str().cmp(pat.text.as_str()))
}

/// Glob match with `*` only, in O(len(pattern) * len(text)) at worst: on a
/// mismatch, backtrack to just after the most recent star, once.
fn glob_match(pattern: &[GlobTok], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    let mut last_star: Option<usize> = None;
    let mut mark = 0usize;
    while t < text.len() {
        match pattern.get(p) {
            Some(GlobTok::Star) => {
                last_star = Some(p);
                mark = t;
                p += 1;
            }
            Some(GlobTok::Char(c)) if text.get(t) == Some(c) => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                Some(star) => {
                    p = star + 1;
                    mark += 1;
                    t = mark;
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|tok| *tok == GlobTok::Star))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": 5,
            "username": "Alice",
            "email": "alice@example.com",
            "status": "active",
            "note": "",
            "apionly": false,
            "acceptEULA": true,
            "lastLoginOn": 1700000000,
            "score": 9.5,
            "version": "10",
            "nothing": null,
            "tags": ["blue", "Green"],
            "emptyList": [],
            "roles": [
                {"id": 1, "name": "readonly"},
                {"id": 2, "name": "Manager"}
            ],
            "customProperties": [
                {"name": "site", "value": "Paris"},
                {"name": "rack", "value": "R12"}
            ],
            "address": {"city": "Lyon", "zip": "69001", "geo": {"lat": 45.76}}
        })
    }

    fn m(filter: &str) -> bool {
        parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&user())
    }

    fn err(filter: &str) -> FilterError {
        match parse(filter) {
            Ok(f) => panic!("{filter} parsed: {f:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(m(""));
        assert!(m("   \t "));
        assert!(parse("").unwrap().fields().is_empty());
        assert!(parse("").unwrap().matches(&json!(null)));
    }

    #[test]
    fn equal_is_case_insensitive() {
        assert!(m(r#"username:"alice""#));
        assert!(m(r#"username:"ALICE""#));
        assert!(m("username:alice"));
        assert!(!m(r#"username:"alic""#));
        assert!(m(r#"note:"""#));
        assert!(m("note:"));
    }

    #[test]
    fn not_equal() {
        assert!(m(r#"username!:"bob""#));
        assert!(!m(r#"username!:"ALICE""#));
        assert!(m(r#"missing!:"x""#));
        assert!(m(r#"missing.deeper!:"x""#));
    }

    #[test]
    fn ordering_numeric_and_text() {
        assert!(m("lastLoginOn>1600000000"));
        assert!(!m("lastLoginOn<1600000000"));
        assert!(m("lastLoginOn>:1700000000"));
        assert!(m("lastLoginOn<:1700000000"));
        assert!(!m("lastLoginOn>1700000000"));
        assert!(m("score>9.25"));
        assert!(m("score<:9.5"));
        // "10" vs 9: both numeric, so numeric (as text "10" < "9").
        assert!(m(r#"version>"9""#));
        assert!(m(r#"version<:"10.0""#));
        // text comparison, case-insensitive
        assert!(m(r#"username>"AARON""#));
        assert!(m(r#"username<"bob""#));
        assert!(m(r#"username>:"alice""#));
        assert!(!m(r#"username>"b""#));
        // missing fields and non-scalars fail
        assert!(!m("missing>1"));
        assert!(!m("missing<1"));
        assert!(!m("address>1"));
        assert!(!m("nothing<:1"));
    }

    #[test]
    fn contains_and_not_contains() {
        assert!(m(r#"email~"EXAMPLE""#));
        assert!(m("email~@ex"));
        assert!(!m(r#"email~"nope""#));
        assert!(m(r#"email!~"nope""#));
        assert!(!m(r#"email!~"alice""#));
        assert!(m(r#"missing!~"x""#));
        assert!(!m(r#"missing~"x""#));
        assert!(m("lastLoginOn~7000"));
        // `*` is literal for `~`
        assert!(!m(r#"email~"a*e""#));
        assert!(parse(r#"a~"x*y""#).unwrap().matches(&json!({"a": "1x*y2"})));
    }

    #[test]
    fn empty_and_null_operators() {
        assert!(m("note:::empty"));
        assert!(m("nothing:::empty"));
        assert!(m("missing:::empty"));
        assert!(m("emptyList:::empty"));
        assert!(!m("username:::empty"));
        assert!(!m("tags:::empty"));
        assert!(m("username!::empty"));
        assert!(!m("note!::empty"));
        assert!(!m("missing!::empty"));
        assert!(!m("nothing!::empty"));

        assert!(m("nothing:::null"));
        assert!(m("missing:::null"));
        assert!(!m("note:::null"));
        assert!(m("note!::null"));
        assert!(m("apionly!::null"));
        assert!(!m("nothing!::null"));
        assert!(!m("missing!::null"));

        assert!(m("note:::EMPTY"));
        assert!(m("note:::empty , username:alice"));
        assert!(m("missing:::null||username:bob"));
    }

    #[test]
    fn alternatives() {
        assert!(m(r#"status:"active"|"suspended""#));
        assert!(m(r#"status:"suspended"|"active""#));
        assert!(!m(r#"status:"suspended"|"disabled""#));
        assert!(m("status:suspended|active"));
        assert!(m(r#"status:"suspended" | active"#));
        // negative: must differ from all alternatives
        assert!(m(r#"status!:"suspended"|"disabled""#));
        assert!(!m(r#"status!:"suspended"|"active""#));
        assert!(!m(r#"email!~"zzz"|"alice""#));
        assert!(m(r#"email!~"zzz"|"yyy""#));
        assert!(m("lastLoginOn>2000000000|1"));
    }

    #[test]
    fn wildcards() {
        assert!(m(r#"username:"a*""#));
        assert!(m(r#"username:"*ICE""#));
        assert!(m(r#"username:"*l*c*""#));
        assert!(m(r#"username:"alice*""#));
        assert!(m(r#"username:"a*l*i*c*e""#));
        assert!(!m(r#"username:"b*""#));
        assert!(!m(r#"username:"*x*""#));
        assert!(m("email:*@example.com"));
        assert!(m("username!:b*"));
        assert!(!m("username!:a*"));
        assert!(m("id:*"));
        assert!(m("lastLoginOn:17*"));
        assert!(m("apionly:f*"));
        // `*` alone: present and not null, any type
        assert!(m("username:*"));
        assert!(m("note:*"));
        assert!(m("address:*"));
        assert!(m("emptyList:*"));
        assert!(!m("nothing:*"));
        assert!(!m("missing:*"));
        assert!(m("missing!:*"));
        assert!(m("nothing!:*"));
        assert!(!m("username!:*"));
        // escaped star is literal
        assert!(!m(r#"username:"a\*""#));
        assert!(parse(r#"a:"x\*""#).unwrap().matches(&json!({"a": "X*"})));
        assert!(!parse(r#"a:"x\*""#).unwrap().matches(&json!({"a": "xy"})));
    }

    #[test]
    fn glob_is_not_exponential() {
        let text = "a".repeat(3000);
        let pattern = format!("{}b", "a*".repeat(1000));
        let f = parse(&format!("x:\"{pattern}\"")).unwrap();
        assert!(!f.matches(&json!({ "x": text })));
        let toks: Vec<GlobTok> = "*a*b*"
            .chars()
            .map(|c| {
                if c == '*' {
                    GlobTok::Star
                } else {
                    GlobTok::Char(c)
                }
            })
            .collect();
        assert!(glob_match(&toks, "xxaxxbxx"));
        assert!(glob_match(&toks, "ab"));
        assert!(!glob_match(&toks, "ba"));
        assert!(glob_match(&[GlobTok::Star], ""));
        assert!(!glob_match(&[GlobTok::Char('a')], ""));
    }

    #[test]
    fn dotted_and_array_paths() {
        assert!(m(r#"roles.name:"manager""#));
        assert!(m(r#"roles.name:"readonly""#));
        assert!(!m(r#"roles.name:"admin""#));
        assert!(m(r#"roles.name!:"admin""#));
        assert!(!m(r#"roles.name!:"manager""#));
        assert!(m("roles.id>1"));
        assert!(m(r#"customProperties.name:"site""#));
        assert!(m(r#"customProperties.value~"par""#));
        assert!(m(r#"address.city:"lyon""#));
        assert!(m("address.geo.lat>45"));
        assert!(m("address.zip:69001"));
        assert!(!m(r#"address.town:"lyon""#));
        assert!(m(r#"tags:"green""#));
        assert!(m(r#"tags:"BLUE""#));
        assert!(!m(r#"tags:"red""#));
        assert!(m(r#"tags!:"red""#));
        assert!(m("tags~ree"));
        // arrays of arrays, and a path into a scalar
        let nested = json!({"a": [[{"b": "x"}], [{"b": "y"}]], "s": "str"});
        assert!(parse("a.b:y").unwrap().matches(&nested));
        assert!(!parse("s.b:str").unwrap().matches(&nested));
        assert!(parse("s.b!:str").unwrap().matches(&nested));
        // dashed field names
        assert!(parse("my-field:1")
            .unwrap()
            .matches(&json!({"my-field": 1})));
    }

    #[test]
    fn all_path() {
        assert!(m(r#"_all~"paris""#));
        assert!(m(r#"_all:"R12""#));
        assert!(m(r#"_all~"lyon""#));
        assert!(m("_all:69001"));
        assert!(m("_all:45.76"));
        assert!(!m(r#"_all~"tokyo""#));
        assert!(m(r#"_all!~"tokyo""#));
        assert!(!m(r#"_all!~"alice""#));
        assert!(parse(r#"_all:"x""#).unwrap().fields().is_empty());
    }

    #[test]
    fn numbers_and_booleans() {
        assert!(m("id:5"));
        assert!(m(r#"id:"5""#));
        assert!(m("id:5.0"));
        assert!(!m("id:6"));
        assert!(m("id!:6"));
        assert!(parse("id:5").unwrap().matches(&json!({"id": "5"})));
        assert!(!parse("id:5").unwrap().matches(&json!({"id": "5.0"})));
        assert!(m("score:9.5"));
        assert!(m("apionly:false"));
        assert!(m(r#"apionly:"FALSE""#));
        assert!(!m("apionly:true"));
        assert!(m("acceptEULA:true"));
        assert!(m("apionly!:true"));
        assert!(!m("apionly:0"));
        assert!(!m("nothing:null"));
        // large integers compare exactly
        let big = json!({"n": 9_007_199_254_740_993u64});
        assert!(parse("n:9007199254740993").unwrap().matches(&big));
        assert!(!parse("n:9007199254740992").unwrap().matches(&big));
        // "nan"/"inf" are not numbers
        assert!(parse("x>nan").unwrap().matches(&json!({"x": "zzz"})));
        assert!(!parse("x:inf").unwrap().matches(&json!({"x": 1e308})));
    }

    #[test]
    fn and_or_precedence() {
        // (a=1 OR b=2) AND c=3
        let f = parse(r#"a:"1"||b:"2",c:"3""#).unwrap();
        assert!(f.matches(&json!({"a": "1", "c": "3"})));
        assert!(f.matches(&json!({"b": "2", "c": "3"})));
        assert!(!f.matches(&json!({"a": "1", "b": "2", "c": "4"})));
        assert!(!f.matches(&json!({"a": "9", "b": "9", "c": "3"})));
        let f = parse("c:3,a:1||b:2").unwrap();
        assert!(f.matches(&json!({"b": 2, "c": 3})));
        assert!(!f.matches(&json!({"b": 2})));
        assert!(m("username:alice , status:active"));
        assert!(!m("username:alice,status:suspended"));
        assert!(m("username:bob || status:active"));
    }

    #[test]
    fn whitespace_and_quotes() {
        assert!(m("  username:alice  "));
        assert!(m(r#" username : "alice" , status:"active" "#));
        let f = parse(r#"name:"My Device""#).unwrap();
        assert!(f.matches(&json!({"name": "my device"})));
        let f = parse("name:My Device").unwrap();
        assert!(f.matches(&json!({"name": "my device"})));
        let f = parse(r#"name:"a,b|c""#).unwrap();
        assert!(f.matches(&json!({"name": "a,b|c"})));
        let f = parse(r#"name:"say \"hi\" \\ there""#).unwrap();
        assert!(f.matches(&json!({"name": r#"say "hi" \ there"#})));
        let f = parse(r#"path:"C:\temp""#).unwrap();
        assert!(f.matches(&json!({"path": r"c:\TEMP"})));
        let f = parse(r#"name:" padded ""#).unwrap();
        assert!(f.matches(&json!({"name": " padded "})));
        assert!(!f.matches(&json!({"name": "padded"})));
    }

    #[test]
    fn fields_lists_first_segments() {
        let f = parse(r#"roles.name:"x",username:a||customProperties.value~y,roles.id>1,_all~z"#)
            .unwrap();
        assert_eq!(f.fields(), vec!["roles", "username", "customProperties"]);
    }

    #[test]
    fn error_empty_clause() {
        assert_eq!(err(r#"a:"1",,b:"2""#), FilterError::EmptyClause { pos: 6 });
        assert_eq!(err("a:1,"), FilterError::EmptyClause { pos: 4 });
        assert_eq!(err(",a:1"), FilterError::EmptyClause { pos: 0 });
        assert_eq!(err("a:1||"), FilterError::EmptyClause { pos: 5 });
        assert_eq!(err("a:1|| ,b:2"), FilterError::EmptyClause { pos: 6 });
        assert_eq!(err("a:1,  "), FilterError::EmptyClause { pos: 6 });
    }

    #[test]
    fn error_missing_operator() {
        let e = err("username");
        assert_eq!(
            e,
            FilterError::MissingOperator {
                path: "username".into(),
                pos: 8
            }
        );
        assert_eq!(
            e.to_string(),
            "filter: expected an operator after `username` at position 8"
        );
        assert!(matches!(
            err("username=bob"),
            FilterError::MissingOperator { pos: 8, .. }
        ));
        assert!(matches!(
            err("a!b"),
            FilterError::MissingOperator { pos: 1, .. }
        ));
        assert!(matches!(
            err("a:1,b"),
            FilterError::MissingOperator { pos: 5, .. }
        ));
    }

    #[test]
    fn error_unterminated_quote() {
        assert_eq!(err(r#"a:"abc"#), FilterError::UnterminatedQuote { pos: 2 });
        assert_eq!(
            err(r#"a:"abc\""#),
            FilterError::UnterminatedQuote { pos: 2 }
        );
        assert_eq!(err(r#"a:"abc\"#), FilterError::UnterminatedQuote { pos: 2 });
        assert_eq!(
            err(r#"a:"x"|"y"#),
            FilterError::UnterminatedQuote { pos: 6 }
        );
    }

    #[test]
    fn error_empty_path() {
        assert_eq!(err(r#":"x""#), FilterError::EmptyPath { pos: 0 });
        assert_eq!(err(r#"a:1, ~"x""#), FilterError::EmptyPath { pos: 5 });
        assert_eq!(err(r#""a":1"#), FilterError::EmptyPath { pos: 0 });
        assert_eq!(
            err("a..b:1"),
            FilterError::InvalidPath {
                path: "a..b".into(),
                pos: 0
            }
        );
        assert!(matches!(err(".a:1"), FilterError::InvalidPath { .. }));
        assert!(matches!(err("a.:1"), FilterError::InvalidPath { .. }));
    }

    #[test]
    fn error_trailing_garbage() {
        assert_eq!(
            err(r#"a:"x"y"#),
            FilterError::UnexpectedChar { found: 'y', pos: 5 }
        );
        assert_eq!(
            err(r#"a:"x" "y""#),
            FilterError::UnexpectedChar { found: '"', pos: 6 }
        );
        assert!(matches!(
            err("a:::emptyx"),
            FilterError::UnknownOperator { .. }
        ));
        assert!(matches!(
            err("a:::empty|b"),
            FilterError::UnexpectedChar { found: '|', .. }
        ));
        assert!(matches!(
            err("a:::empty b:1"),
            FilterError::UnexpectedChar { found: 'b', .. }
        ));
    }

    #[test]
    fn error_unknown_advanced_operator() {
        let e = err("a:::nope");
        assert_eq!(
            e,
            FilterError::UnknownOperator {
                op: ":::nope".into(),
                path: "a".into(),
                pos: 1
            }
        );
        assert!(e
            .to_string()
            .starts_with("filter: unknown operator `:::nope`"));
        assert!(matches!(err("a!::"), FilterError::UnknownOperator { .. }));
    }

    #[test]
    fn error_missing_alternative() {
        assert_eq!(err(r#"a:"x"|"#), FilterError::MissingValue { pos: 6 });
        assert_eq!(err(r#"a:"x"| ,b:1"#), FilterError::MissingValue { pos: 7 });
    }

    #[test]
    fn limits() {
        let long = "a".repeat(MAX_FILTER_LEN + 1);
        assert_eq!(
            err(&long),
            FilterError::TooLong {
                len: MAX_FILTER_LEN + 1,
                max: MAX_FILTER_LEN
            }
        );
        let ok = vec!["a:1"; MAX_CLAUSES].join(",");
        assert!(parse(&ok).is_ok());
        let too_many = vec!["a:1"; MAX_CLAUSES + 1].join("||");
        assert_eq!(
            err(&too_many),
            FilterError::TooManyClauses { max: MAX_CLAUSES }
        );
    }

    #[test]
    fn error_messages_are_prefixed() {
        for bad in [
            "a", ",", "a:\"", "a:1,,", "a:\"x\"y", ":x", "a:::x", "a:1|", "a..b:1",
        ] {
            assert!(err(bad).to_string().starts_with("filter: "), "{bad}");
        }
    }

    /// xorshift64: deterministic, no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_input_never_panics() {
        const TOKENS: &[&str] = &[
            ":", ":", ":", "!", "!", "~", "~", "<", ">", "|", "|", "|", ",", ",", "\"", "\"", "\"",
            "*", "*", "\\", "\\", " ", " ", ".", ".", "a", "b", "c", "x", "_", "1", "9", "-", "é",
            "_all", ":::", "!::", "empty", "null", "||", "id", "roles", "name", "tags", "\t",
        ];
        let item = user();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut parsed = 0usize;
        for _ in 0..20_000 {
            let len = rng.below(24);
            let mut s = String::new();
            for _ in 0..len {
                s.push_str(TOKENS.get(rng.below(TOKENS.len())).copied().unwrap_or(""));
            }
            match parse(&s) {
                Ok(f) => {
                    parsed += 1;
                    let _ = f.matches(&item);
                    let _ = f.matches(&json!(null));
                    let _ = f.matches(&json!([1, "a", {"a": [null]}]));
                    let _ = f.fields();
                }
                Err(e) => assert!(e.to_string().starts_with("filter: "), "{s:?}: {e}"),
            }
        }
        // The generator must exercise the success path too.
        assert!(parsed > 100, "only {parsed} parsed");
    }
}
