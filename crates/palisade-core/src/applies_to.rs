//! LogicMonitor's `appliesTo` expression language: which devices a dynamic device group
//! holds and which devices a datasource applies to, decided from the devices' properties.
//!
//! [`parse`] turns an expression into an [`Expr`]; [`Expr::matches`] evaluates it against a
//! device's properties, read through a lookup function; [`Expr::properties`] lists the
//! properties it reads (so a caller knows which property changes call for re-evaluation).
//! Parsing and evaluation never panic, whatever the input, and are bounded: the input is at
//! most [`MAX_LEN`] bytes, nesting at most [`MAX_DEPTH`] levels, an expression holds at most
//! [`MAX_REGEXES`] regular expressions, each compiled under a size limit by the `regex`
//! crate, whose matching is linear in the length of the text. Evaluation visits each node
//! of the expression once.
//!
//! # Grammar
//!
//! ```text
//! expr       := and (("||" | "or") and)*
//! and        := unary (("&&" | "and") unary)*
//! unary      := ("!" | "not") unary | "(" expr ")" | comparison
//! comparison := term (op term)?          op: == != =~ !~ < > <= >=
//! term       := property | "string" | 'string' | number | function "(" args ")"
//! ```
//!
//! * `!` applies to a whole comparison: `!system.hostname == "a"` means
//!   `!(system.hostname == "a")`. `&&` binds tighter than `||`. Comparisons do not chain.
//! * A property is a name such as `system.hostname`, `snmp.community` or
//!   `kubernetes.label-app`: a letter or `_`, then letters, digits, `_`, `.`, `-` and `:`.
//!   For any other name use `getPropValue("name")`. Property names are case-insensitive.
//! * Strings are in double (or single) quotes; `\"`, `\'` and `\\` are escapes, any other
//!   backslash is kept as is, so `"\d+"` is the regular expression `\d+`.
//! * Numbers are decimal: `-?digits(.digits)?`.
//! * The keywords `and`, `or`, `not`, `true` and `false` are case-insensitive.
//!
//! # Semantics
//!
//! * A missing property reads as the empty string in comparisons: `system.x == ""` holds
//!   for a device without `system.x`, and so does `system.x != "a"`.
//! * A bare property (or `getPropValue("p")`) holds when the property is present and not
//!   empty.
//! * `==` and `!=` compare numerically when both sides are decimal numbers (`"2.0" == 2`),
//!   otherwise as text, **case-insensitively** (LogicMonitor's behaviour).
//! * `<`, `>`, `<=`, `>=` compare numerically; when either side is not a number the
//!   comparison is false (so a missing property never satisfies `system.cpus < 4`).
//! * `=~` holds when the regular expression (a string literal on the right) matches
//!   anywhere in the value; `!~` is its negation. Matching is **case-insensitive** by
//!   default, as in LogicMonitor's portal (its documentation has said both; Palisade chose
//!   the more forgiving reading). Write `(?-i)` at the start of the pattern for a
//!   case-sensitive match. The syntax is the `regex` crate's: no backreferences, no
//!   look-around, which is what keeps matching linear.
//! * String functions compare case-insensitively.
//!
//! # Functions
//!
//! | Function | Holds when |
//! |---|---|
//! | `true()`, `false()` | always / never (also bare `true`, `false`) |
//! | `hasCategory("x")` | the comma-separated `system.categories` has the entry `x` (case-insensitive, entries trimmed) |
//! | `exists("p")` or `exists(p)` | the property `p` is present, even if empty. LogicMonitor's `exists()` looks for a property *value*; Palisade's checks a property *name*. |
//! | `startsWith(a, b)`, `endsWith(a, b)`, `contains(a, b)` | the text of `a` starts with, ends with or contains that of `b` (each a property, string or number). `contains` is a substring test, so it also finds an entry of a comma-separated list. |
//! | `getPropValue("p")` | not a condition but a value: the property `p`, for names the grammar cannot spell |
//! | `isLinux()`, `isWindows()`, `isSolaris()`, `isFreeBSD()`, `isCisco()`, `isJuniper()` | `system.sysinfo` contains `linux`, `windows`, `solaris` or `sunos`, `freebsd`, `cisco`, `juniper` or `junos` |
//! | `isUnix()` | `system.sysinfo` names Linux, Solaris, SunOS, a BSD, AIX, HP-UX or Darwin |
//! | `isNetwork()` | `hasCategory("network")`, `isCisco()` or `isJuniper()` |
//! | `isDevice()` | `system.devicetype` is absent or `0` (a regular device, not a cloud resource) |
//!
//! Function names are case-insensitive. `join` and user-defined functions are not supported.
//!
//! # Example
//!
//! ```
//! use palisade_core::applies_to;
//! use std::collections::HashMap;
//!
//! # fn main() -> Result<(), applies_to::AppliesToError> {
//! let expr = applies_to::parse(
//!     r#"isLinux() && (system.hostname =~ "^web-\d+" || hasCategory("frontend")) && !exists("maintenance")"#,
//! )?;
//! let device: HashMap<&str, &str> = [
//!     ("system.sysinfo", "Linux web-01 6.1.0-18-amd64 x86_64"),
//!     ("system.hostname", "WEB-01"),
//! ]
//! .into();
//! // Property names are handed to the lookup in lowercase.
//! assert!(expr.matches(&|name: &str| device.get(name).map(|v| v.to_string())));
//! assert_eq!(
//!     expr.properties(),
//!     vec!["system.sysinfo", "system.hostname", "system.categories", "maintenance"]
//! );
//! # Ok(())
//! # }
//! ```

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};

/// Longest expression accepted, in bytes.
pub const MAX_LEN: usize = 8 * 1024;

/// Deepest nesting of parentheses and negations.
pub const MAX_DEPTH: usize = 64;

/// Most regular expressions (`=~`, `!~`) in one expression.
pub const MAX_REGEXES: usize = 32;

/// Size limit of one compiled regular expression, in bytes (the `regex` crate's
/// `size_limit`); also the limit of its lazy DFA cache.
pub const MAX_REGEX_SIZE: usize = 256 * 1024;

/// Deepest nesting of groups inside one regular expression.
const MAX_REGEX_NEST: u32 = 32;

/// The property `hasCategory()` reads.
const CATEGORIES: &str = "system.categories";
/// The property the `isLinux()` family reads.
const SYSINFO: &str = "system.sysinfo";
/// The property `isDevice()` reads.
const DEVICE_TYPE: &str = "system.devicetype";

/// Why an expression was rejected. Every message starts with `appliesTo:` and is meant to
/// be shown to the API caller as is. Positions count characters from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppliesToError {
    /// The expression is longer than [`MAX_LEN`] bytes.
    #[error("appliesTo: too long ({len} bytes, at most {max} allowed)")]
    TooLong {
        /// Length of the rejected input, in bytes.
        len: usize,
        /// The limit, [`MAX_LEN`].
        max: usize,
    },
    /// The expression is empty or only whitespace.
    #[error("appliesTo: the expression is empty")]
    Empty,
    /// A character that starts no token.
    #[error("appliesTo: unexpected `{found}` at position {pos}")]
    UnexpectedChar {
        /// The offending character.
        found: char,
        /// Its position.
        pos: usize,
    },
    /// A string literal has no closing quote.
    #[error("appliesTo: unterminated string starting at position {pos}")]
    UnterminatedString {
        /// Position of the opening quote.
        pos: usize,
    },
    /// A token where something else was expected.
    #[error("appliesTo: expected {expected} at position {pos}, found `{found}`")]
    UnexpectedToken {
        /// The token as written.
        found: String,
        /// What the grammar expected there.
        expected: &'static str,
        /// Where the token starts.
        pos: usize,
    },
    /// The expression ends where more was expected.
    #[error("appliesTo: unexpected end of the expression, expected {expected}")]
    UnexpectedEnd {
        /// What the grammar expected.
        expected: &'static str,
    },
    /// Parentheses and negations nest deeper than [`MAX_DEPTH`].
    #[error("appliesTo: nested too deeply at position {pos} (at most {max} levels)")]
    TooDeep {
        /// The limit, [`MAX_DEPTH`].
        max: usize,
        /// Where the limit was exceeded.
        pos: usize,
    },
    /// A function Palisade does not know.
    #[error("appliesTo: unknown function `{name}` at position {pos}")]
    UnknownFunction {
        /// The function name as written.
        name: String,
        /// Where the name starts.
        pos: usize,
    },
    /// A known function called with the wrong arguments.
    #[error("appliesTo: `{name}` at position {pos} takes {expected}")]
    WrongArguments {
        /// The function name as written.
        name: String,
        /// The arguments it takes, in words.
        expected: &'static str,
        /// Where the call starts.
        pos: usize,
    },
    /// A string or number stands where a condition is needed (`"linux" && ...`).
    #[error("appliesTo: `{found}` at position {pos} is a value, not a condition; compare it with something")]
    NotACondition {
        /// The literal as written.
        found: String,
        /// Where it starts.
        pos: usize,
    },
    /// A condition (a function such as `isLinux()`) is compared with something.
    #[error("appliesTo: the condition at position {pos} cannot be compared; use `!`, `&&` or `||`")]
    CannotCompare {
        /// Where the condition starts.
        pos: usize,
    },
    /// The right side of `=~` or `!~` is not a string literal.
    #[error("appliesTo: the regular expression at position {pos} must be a string literal")]
    RegexNotLiteral {
        /// Where the right side starts.
        pos: usize,
    },
    /// The regular expression does not compile.
    #[error("appliesTo: invalid regular expression at position {pos}: {detail}")]
    InvalidRegex {
        /// Where the string literal starts.
        pos: usize,
        /// What the regex compiler said.
        detail: String,
    },
    /// The regular expression compiles to more than [`MAX_REGEX_SIZE`] bytes.
    #[error("appliesTo: the regular expression at position {pos} is too large once compiled (limit {max} bytes)")]
    RegexTooBig {
        /// Where the string literal starts.
        pos: usize,
        /// The limit, [`MAX_REGEX_SIZE`].
        max: usize,
    },
    /// More than [`MAX_REGEXES`] regular expressions.
    #[error("appliesTo: too many regular expressions (at most {max}), the one at position {pos} is one too many")]
    TooManyRegexes {
        /// The limit, [`MAX_REGEXES`].
        max: usize,
        /// Where the extra one starts.
        pos: usize,
    },
}

/// A parsed `appliesTo` expression, built by [`parse`].
#[derive(Debug, Clone)]
pub struct Expr {
    root: Node,
}

/// A node of the expression tree. `&&` and `||` chains are flattened, so the tree is no
/// deeper than the nesting of parentheses and negations.
#[derive(Debug, Clone)]
enum Node {
    Const(bool),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// A bare property: present and not empty.
    Truthy(String),
    Compare {
        left: Operand,
        op: CmpOp,
        right: Operand,
    },
    Regex {
        left: Operand,
        regex: Box<Regex>,
        negate: bool,
    },
    HasCategory(String),
    Exists(String),
    Text {
        func: TextFn,
        left: Operand,
        right: Operand,
    },
    Builtin(Builtin),
}

/// A value: a property (lowercased name) or a literal.
#[derive(Debug, Clone)]
enum Operand {
    Prop(String),
    Literal(Literal),
}

/// A string or number literal, with its lowercase form computed once.
#[derive(Debug, Clone)]
struct Literal {
    text: String,
    lower: String,
}

impl Literal {
    fn new(text: String) -> Self {
        let lower = text.to_lowercase();
        Literal { text, lower }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextFn {
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    IsLinux,
    IsWindows,
    IsUnix,
    IsSolaris,
    IsFreeBsd,
    IsCisco,
    IsJuniper,
    IsNetwork,
    IsDevice,
}

impl Builtin {
    fn from_name(lower: &str) -> Option<Self> {
        Some(match lower {
            "islinux" => Builtin::IsLinux,
            "iswindows" => Builtin::IsWindows,
            "isunix" => Builtin::IsUnix,
            "issolaris" => Builtin::IsSolaris,
            "isfreebsd" => Builtin::IsFreeBsd,
            "iscisco" => Builtin::IsCisco,
            "isjuniper" => Builtin::IsJuniper,
            "isnetwork" => Builtin::IsNetwork,
            "isdevice" => Builtin::IsDevice,
            _ => return None,
        })
    }

    /// The lowercase words of `system.sysinfo` that make it true, for the sysinfo ones.
    fn sysinfo_words(self) -> &'static [&'static str] {
        match self {
            Builtin::IsLinux => &["linux"],
            Builtin::IsWindows => &["windows"],
            Builtin::IsUnix => &[
                "linux", "solaris", "sunos", "freebsd", "openbsd", "netbsd", "aix", "hp-ux",
                "darwin",
            ],
            Builtin::IsSolaris => &["solaris", "sunos"],
            Builtin::IsFreeBsd => &["freebsd"],
            Builtin::IsCisco => &["cisco"],
            Builtin::IsJuniper => &["juniper", "junos"],
            Builtin::IsNetwork => &["cisco", "juniper", "junos"],
            Builtin::IsDevice => &[],
        }
    }

    fn properties(self) -> &'static [&'static str] {
        match self {
            Builtin::IsNetwork => &[CATEGORIES, SYSINFO],
            Builtin::IsDevice => &[DEVICE_TYPE],
            _ => &[SYSINFO],
        }
    }

    fn eval(self, props: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Builtin::IsDevice => match props(DEVICE_TYPE) {
                None => true,
                Some(v) => {
                    let v = v.trim();
                    v.is_empty() || v == "0"
                }
            },
            Builtin::IsNetwork => {
                has_category(props, "network") || sysinfo_has(props, self.sysinfo_words())
            }
            _ => sysinfo_has(props, self.sysinfo_words()),
        }
    }
}

fn sysinfo_has(props: &dyn Fn(&str) -> Option<String>, words: &[&str]) -> bool {
    match props(SYSINFO) {
        Some(info) => {
            let info = info.to_lowercase();
            words.iter().any(|w| info.contains(w))
        }
        None => false,
    }
}

fn has_category(props: &dyn Fn(&str) -> Option<String>, lower_category: &str) -> bool {
    match props(CATEGORIES) {
        Some(list) => list
            .split(',')
            .any(|entry| entry.trim().to_lowercase() == lower_category),
        None => false,
    }
}

/// Parses an `appliesTo` expression. Leading and trailing whitespace is ignored; an empty
/// expression is an error (a caller for which "no expression" is meaningful checks for it
/// first).
pub fn parse(input: &str) -> Result<Expr, AppliesToError> {
    if input.len() > MAX_LEN {
        return Err(AppliesToError::TooLong {
            len: input.len(),
            max: MAX_LEN,
        });
    }
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Err(AppliesToError::Empty);
    }
    let mut parser = Parser {
        tokens,
        next: 0,
        regexes: 0,
    };
    let root = parser.parse_or(0)?;
    if let Some(tok) = parser.peek() {
        return Err(AppliesToError::UnexpectedToken {
            found: tok.kind.to_string(),
            expected: "`&&`, `||` or the end of the expression",
            pos: tok.pos,
        });
    }
    Ok(Expr { root })
}

impl Expr {
    /// Whether a device with these properties satisfies the expression. `props` is called
    /// with lowercase property names (matching must be case-insensitive, e.g. by keeping
    /// the device's property names lowercased) and answers the value, or `None` when the
    /// device has no such property.
    pub fn matches(&self, props: &dyn Fn(&str) -> Option<String>) -> bool {
        eval(&self.root, props)
    }

    /// The properties the expression reads, lowercased, each once, in order of first use,
    /// including those functions read (`system.categories` for `hasCategory()`,
    /// `system.sysinfo` for `isLinux()`, ...).
    pub fn properties(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        collect_properties(&self.root, &mut out);
        out
    }
}

fn push_unique(out: &mut Vec<String>, name: &str) {
    if !out.iter().any(|p| p == name) {
        out.push(name.to_string());
    }
}

fn collect_operand(op: &Operand, out: &mut Vec<String>) {
    if let Operand::Prop(name) = op {
        push_unique(out, name);
    }
}

fn collect_properties(node: &Node, out: &mut Vec<String>) {
    match node {
        Node::Const(_) => {}
        Node::And(children) | Node::Or(children) => {
            for child in children {
                collect_properties(child, out);
            }
        }
        Node::Not(inner) => collect_properties(inner, out),
        Node::Truthy(name) | Node::Exists(name) => push_unique(out, name),
        Node::Compare { left, right, .. } | Node::Text { left, right, .. } => {
            collect_operand(left, out);
            collect_operand(right, out);
        }
        Node::Regex { left, .. } => collect_operand(left, out),
        Node::HasCategory(_) => push_unique(out, CATEGORIES),
        Node::Builtin(b) => {
            for name in b.properties() {
                push_unique(out, name);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation

/// An operand's value, lowercased or not; a missing property is the empty string.
fn resolve(op: &Operand, props: &dyn Fn(&str) -> Option<String>) -> String {
    match op {
        Operand::Prop(name) => props(name).unwrap_or_default(),
        Operand::Literal(lit) => lit.text.clone(),
    }
}

fn resolve_lower(op: &Operand, props: &dyn Fn(&str) -> Option<String>) -> String {
    match op {
        Operand::Prop(name) => props(name).unwrap_or_default().to_lowercase(),
        Operand::Literal(lit) => lit.lower.clone(),
    }
}

/// A decimal number `-?digits(.digits)?`, as `f64`; anything else is not a number.
fn as_number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !frac.is_none_or(all_digits) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn eval(node: &Node, props: &dyn Fn(&str) -> Option<String>) -> bool {
    match node {
        Node::Const(b) => *b,
        Node::And(children) => children.iter().all(|c| eval(c, props)),
        Node::Or(children) => children.iter().any(|c| eval(c, props)),
        Node::Not(inner) => !eval(inner, props),
        Node::Truthy(name) => props(name).is_some_and(|v| !v.is_empty()),
        Node::Compare { left, op, right } => {
            let a = resolve(left, props);
            let b = resolve(right, props);
            let numeric = match (as_number(&a), as_number(&b)) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => None,
            };
            match op {
                CmpOp::Eq | CmpOp::Ne => {
                    let equal = match numeric {
                        Some(ord) => ord == Ordering::Equal,
                        None => a.to_lowercase() == b.to_lowercase(),
                    };
                    equal == (*op == CmpOp::Eq)
                }
                CmpOp::Lt => numeric == Some(Ordering::Less),
                CmpOp::Gt => numeric == Some(Ordering::Greater),
                CmpOp::Le => matches!(numeric, Some(Ordering::Less | Ordering::Equal)),
                CmpOp::Ge => matches!(numeric, Some(Ordering::Greater | Ordering::Equal)),
            }
        }
        Node::Regex {
            left,
            regex,
            negate,
        } => regex.is_match(&resolve(left, props)) != *negate,
        Node::HasCategory(lower) => has_category(props, lower),
        Node::Exists(name) => props(name).is_some(),
        Node::Text { func, left, right } => {
            let a = resolve_lower(left, props);
            let b = resolve_lower(right, props);
            match func {
                TextFn::StartsWith => a.starts_with(&b),
                TextFn::EndsWith => a.ends_with(&b),
                TextFn::Contains => a.contains(&b),
            }
        }
        Node::Builtin(b) => b.eval(props),
    }
}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum TokKind {
    Ident(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    Comma,
    Cmp(CmpOp),
    Match,
    NotMatch,
    And,
    Or,
    Not,
}

impl std::fmt::Display for TokKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokKind::Ident(s) | TokKind::Num(s) => f.write_str(s),
            TokKind::Str(s) => write!(f, "\"{s}\""),
            TokKind::LParen => f.write_str("("),
            TokKind::RParen => f.write_str(")"),
            TokKind::Comma => f.write_str(","),
            TokKind::Cmp(op) => f.write_str(match op {
                CmpOp::Eq => "==",
                CmpOp::Ne => "!=",
                CmpOp::Lt => "<",
                CmpOp::Gt => ">",
                CmpOp::Le => "<=",
                CmpOp::Ge => ">=",
            }),
            TokKind::Match => f.write_str("=~"),
            TokKind::NotMatch => f.write_str("!~"),
            TokKind::And => f.write_str("&&"),
            TokKind::Or => f.write_str("||"),
            TokKind::Not => f.write_str("!"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokKind,
    /// Character position of the token's first character.
    pos: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':')
}

fn lex(input: &str) -> Result<Vec<Token>, AppliesToError> {
    let chars: Vec<char> = input.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = at(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let pos = i;
        let two = (c, at(i + 1));
        let (kind, len) = match two {
            ('(', _) => (TokKind::LParen, 1),
            (')', _) => (TokKind::RParen, 1),
            (',', _) => (TokKind::Comma, 1),
            ('=', Some('=')) => (TokKind::Cmp(CmpOp::Eq), 2),
            ('=', Some('~')) => (TokKind::Match, 2),
            ('!', Some('=')) => (TokKind::Cmp(CmpOp::Ne), 2),
            ('!', Some('~')) => (TokKind::NotMatch, 2),
            ('!', _) => (TokKind::Not, 1),
            ('<', Some('=')) => (TokKind::Cmp(CmpOp::Le), 2),
            ('<', _) => (TokKind::Cmp(CmpOp::Lt), 1),
            ('>', Some('=')) => (TokKind::Cmp(CmpOp::Ge), 2),
            ('>', _) => (TokKind::Cmp(CmpOp::Gt), 1),
            ('&', Some('&')) => (TokKind::And, 2),
            ('|', Some('|')) => (TokKind::Or, 2),
            ('"' | '\'', _) => {
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    match at(j) {
                        None => return Err(AppliesToError::UnterminatedString { pos }),
                        Some(q) if q == c => break,
                        Some('\\') => match at(j + 1) {
                            Some(e) if e == '"' || e == '\'' || e == '\\' => {
                                text.push(e);
                                j += 2;
                            }
                            _ => {
                                text.push('\\');
                                j += 1;
                            }
                        },
                        Some(other) => {
                            text.push(other);
                            j += 1;
                        }
                    }
                }
                (TokKind::Str(text), j + 1 - i)
            }
            (d, next) if d.is_ascii_digit() || (d == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let mut j = i + 1;
                while at(j).is_some_and(|n| n.is_ascii_digit()) {
                    j += 1;
                }
                if at(j) == Some('.') && at(j + 1).is_some_and(|n| n.is_ascii_digit()) {
                    j += 1;
                    while at(j).is_some_and(|n| n.is_ascii_digit()) {
                        j += 1;
                    }
                }
                if at(j).is_some_and(is_ident_char) {
                    let found = at(j).unwrap_or(d);
                    return Err(AppliesToError::UnexpectedChar { found, pos: j });
                }
                let text: String = chars.get(i..j).unwrap_or_default().iter().collect();
                (TokKind::Num(text), j - i)
            }
            (s, _) if is_ident_start(s) => {
                let mut j = i + 1;
                while at(j).is_some_and(is_ident_char) {
                    j += 1;
                }
                let text: String = chars.get(i..j).unwrap_or_default().iter().collect();
                let kind = match text.to_ascii_lowercase().as_str() {
                    "and" => TokKind::And,
                    "or" => TokKind::Or,
                    "not" => TokKind::Not,
                    _ => TokKind::Ident(text),
                };
                (kind, j - i)
            }
            (found, _) => return Err(AppliesToError::UnexpectedChar { found, pos }),
        };
        tokens.push(Token { kind, pos });
        i += len;
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------
// Parser

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    regexes: usize,
}

/// What a term turned out to be: a condition (a function call such as `isLinux()`), or a
/// value (a property, literal or `getPropValue()`) that may be compared.
enum Term {
    Cond(Node),
    Value(Operand),
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_kind(&self) -> Option<&TokKind> {
        self.peek().map(|t| &t.kind)
    }

    fn bump(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.next).cloned();
        if tok.is_some() {
            self.next += 1;
        }
        tok
    }

    /// The position of the next token, or of the end (just past the last token).
    fn here(&self) -> usize {
        self.peek()
            .map(|t| t.pos)
            .or_else(|| self.tokens.last().map(|t| t.pos + 1))
            .unwrap_or(0)
    }

    fn expect(&mut self, want: TokKind, expected: &'static str) -> Result<Token, AppliesToError> {
        match self.bump() {
            Some(tok) if tok.kind == want => Ok(tok),
            Some(tok) => Err(AppliesToError::UnexpectedToken {
                found: tok.kind.to_string(),
                expected,
                pos: tok.pos,
            }),
            None => Err(AppliesToError::UnexpectedEnd { expected }),
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), AppliesToError> {
        if depth > MAX_DEPTH {
            return Err(AppliesToError::TooDeep {
                max: MAX_DEPTH,
                pos: self.here(),
            });
        }
        Ok(())
    }

    fn parse_or(&mut self, depth: usize) -> Result<Node, AppliesToError> {
        self.check_depth(depth)?;
        let mut terms = vec![self.parse_and(depth)?];
        while self.peek_kind() == Some(&TokKind::Or) {
            self.next += 1;
            terms.push(self.parse_and(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Node::Const(false))
        } else {
            Node::Or(terms)
        })
    }

    fn parse_and(&mut self, depth: usize) -> Result<Node, AppliesToError> {
        let mut terms = vec![self.parse_unary(depth)?];
        while self.peek_kind() == Some(&TokKind::And) {
            self.next += 1;
            terms.push(self.parse_unary(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Node::Const(false))
        } else {
            Node::And(terms)
        })
    }

    fn parse_unary(&mut self, depth: usize) -> Result<Node, AppliesToError> {
        self.check_depth(depth)?;
        match self.peek_kind() {
            Some(TokKind::Not) => {
                self.next += 1;
                Ok(Node::Not(Box::new(self.parse_unary(depth + 1)?)))
            }
            Some(TokKind::LParen) => {
                self.next += 1;
                let inner = self.parse_or(depth + 1)?;
                self.expect(TokKind::RParen, "`)`")?;
                Ok(inner)
            }
            _ => self.parse_comparison(),
        }
    }

    fn parse_comparison(&mut self) -> Result<Node, AppliesToError> {
        let start = self.here();
        let first = self.peek().map(|t| t.kind.to_string());
        let left = self.parse_term()?;
        let op = match self.peek_kind() {
            Some(TokKind::Cmp(op)) => Some(Ok(*op)),
            Some(TokKind::Match) => Some(Err(false)),
            Some(TokKind::NotMatch) => Some(Err(true)),
            _ => None,
        };
        let Some(op) = op else {
            return match left {
                Term::Cond(node) => Ok(node),
                Term::Value(Operand::Prop(name)) => Ok(Node::Truthy(name)),
                Term::Value(Operand::Literal(_)) => Err(AppliesToError::NotACondition {
                    found: first.unwrap_or_default(),
                    pos: start,
                }),
            };
        };
        let left = match left {
            Term::Value(v) => v,
            Term::Cond(_) => return Err(AppliesToError::CannotCompare { pos: start }),
        };
        self.next += 1;
        let right_pos = self.here();
        let right = match self.parse_term()? {
            Term::Value(v) => v,
            Term::Cond(_) => return Err(AppliesToError::CannotCompare { pos: right_pos }),
        };
        match op {
            Ok(op) => Ok(Node::Compare { left, op, right }),
            Err(negate) => {
                let Operand::Literal(lit) = right else {
                    return Err(AppliesToError::RegexNotLiteral { pos: right_pos });
                };
                let regex = self.compile_regex(&lit.text, right_pos)?;
                Ok(Node::Regex {
                    left,
                    regex: Box::new(regex),
                    negate,
                })
            }
        }
    }

    fn compile_regex(&mut self, pattern: &str, pos: usize) -> Result<Regex, AppliesToError> {
        if self.regexes >= MAX_REGEXES {
            return Err(AppliesToError::TooManyRegexes {
                max: MAX_REGEXES,
                pos,
            });
        }
        self.regexes += 1;
        RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(MAX_REGEX_SIZE)
            .dfa_size_limit(MAX_REGEX_SIZE)
            .nest_limit(MAX_REGEX_NEST)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => AppliesToError::RegexTooBig {
                    pos,
                    max: MAX_REGEX_SIZE,
                },
                other => AppliesToError::InvalidRegex {
                    pos,
                    detail: regex_detail(&other.to_string()),
                },
            })
    }

    /// A property, literal or function call.
    fn parse_term(&mut self) -> Result<Term, AppliesToError> {
        const EXPECTED: &str = "a property, a string, a number, a function or `(`";
        let Some(tok) = self.bump() else {
            return Err(AppliesToError::UnexpectedEnd { expected: EXPECTED });
        };
        match tok.kind {
            TokKind::Str(s) | TokKind::Num(s) => Ok(Term::Value(Operand::Literal(Literal::new(s)))),
            TokKind::Ident(name) => {
                if self.peek_kind() == Some(&TokKind::LParen) {
                    self.next += 1;
                    self.parse_call(name, tok.pos)
                } else {
                    match name.to_ascii_lowercase().as_str() {
                        "true" => Ok(Term::Cond(Node::Const(true))),
                        "false" => Ok(Term::Cond(Node::Const(false))),
                        lower => Ok(Term::Value(Operand::Prop(lower.to_string()))),
                    }
                }
            }
            other => Err(AppliesToError::UnexpectedToken {
                found: other.to_string(),
                expected: EXPECTED,
                pos: tok.pos,
            }),
        }
    }

    /// The arguments of a call, after its `(`, up to and including the `)`. Each argument is
    /// a value; conditions are refused.
    fn parse_args(&mut self) -> Result<Vec<(usize, Operand)>, AppliesToError> {
        let mut args = Vec::new();
        if self.peek_kind() == Some(&TokKind::RParen) {
            self.next += 1;
            return Ok(args);
        }
        loop {
            let pos = self.here();
            match self.parse_term()? {
                Term::Value(v) => args.push((pos, v)),
                Term::Cond(_) => {
                    return Err(AppliesToError::UnexpectedToken {
                        found: "a condition".to_string(),
                        expected: "a property, a string or a number as argument",
                        pos,
                    })
                }
            }
            match self.bump() {
                Some(Token {
                    kind: TokKind::Comma,
                    ..
                }) => continue,
                Some(Token {
                    kind: TokKind::RParen,
                    ..
                }) => return Ok(args),
                Some(tok) => {
                    return Err(AppliesToError::UnexpectedToken {
                        found: tok.kind.to_string(),
                        expected: "`,` or `)`",
                        pos: tok.pos,
                    })
                }
                None => return Err(AppliesToError::UnexpectedEnd { expected: "`,` or `)`" }),
            }
        }
    }

    fn parse_call(&mut self, name: String, pos: usize) -> Result<Term, AppliesToError> {
        let lower = name.to_ascii_lowercase();
        let known = matches!(
            lower.as_str(),
            "true"
                | "false"
                | "hascategory"
                | "exists"
                | "getpropvalue"
                | "startswith"
                | "endswith"
                | "contains"
        ) || Builtin::from_name(&lower).is_some();
        if !known {
            return Err(AppliesToError::UnknownFunction { name, pos });
        }
        let args = self.parse_args()?;
        let wrong = |expected: &'static str| AppliesToError::WrongArguments {
            name: name.clone(),
            expected,
            pos,
        };
        let mut args = args.into_iter().map(|(_, a)| a);
        let (a, b, c) = (args.next(), args.next(), args.next());
        match lower.as_str() {
            "true" | "false" => match a {
                None => Ok(Term::Cond(Node::Const(lower == "true"))),
                Some(_) => Err(wrong("no arguments")),
            },
            "hascategory" => match (a, b) {
                (Some(Operand::Literal(lit)), None) => {
                    Ok(Term::Cond(Node::HasCategory(lit.lower.trim().to_string())))
                }
                _ => Err(wrong("one string argument, the category")),
            },
            "exists" | "getpropvalue" => {
                let prop = match (a, b) {
                    (Some(Operand::Literal(lit)), None) => lit.lower,
                    (Some(Operand::Prop(p)), None) => p,
                    _ => return Err(wrong("one argument, a property name")),
                };
                if lower == "exists" {
                    Ok(Term::Cond(Node::Exists(prop)))
                } else {
                    Ok(Term::Value(Operand::Prop(prop)))
                }
            }
            "startswith" | "endswith" | "contains" => match (a, b, c) {
                (Some(left), Some(right), None) => {
                    let func = match lower.as_str() {
                        "startswith" => TextFn::StartsWith,
                        "endswith" => TextFn::EndsWith,
                        _ => TextFn::Contains,
                    };
                    Ok(Term::Cond(Node::Text { func, left, right }))
                }
                _ => Err(wrong("two arguments: a property and a string")),
            },
            _ => match (Builtin::from_name(&lower), a) {
                (Some(b), None) => Ok(Term::Cond(Node::Builtin(b))),
                _ => Err(wrong("no arguments")),
            },
        }
    }
}

/// The useful line of a `regex` error (its message spans lines and repeats the pattern).
fn regex_detail(message: &str) -> String {
    message
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| message.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
}
