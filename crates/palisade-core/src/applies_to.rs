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

use std::borrow::Cow;
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
    #[error(
        "appliesTo: the condition at position {pos} cannot be compared; use `!`, `&&` or `||`"
    )]
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

/// A parsed `appliesTo` expression, built by [`parse`]. Parse once and keep it: parsing
/// compiles the regular expressions (up to tens of milliseconds for the largest), evaluating
/// is cheap.
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
/// The `is...()` convenience functions.
enum Builtin {
    Linux,
    Windows,
    Unix,
    Solaris,
    FreeBsd,
    Cisco,
    Juniper,
    Network,
    Device,
}

impl Builtin {
    fn from_name(lower: &str) -> Option<Self> {
        Some(match lower {
            "islinux" => Builtin::Linux,
            "iswindows" => Builtin::Windows,
            "isunix" => Builtin::Unix,
            "issolaris" => Builtin::Solaris,
            "isfreebsd" => Builtin::FreeBsd,
            "iscisco" => Builtin::Cisco,
            "isjuniper" => Builtin::Juniper,
            "isnetwork" => Builtin::Network,
            "isdevice" => Builtin::Device,
            _ => return None,
        })
    }

    /// The lowercase words of `system.sysinfo` that make it true, for the sysinfo ones.
    fn sysinfo_words(self) -> &'static [&'static str] {
        match self {
            Builtin::Linux => &["linux"],
            Builtin::Windows => &["windows"],
            Builtin::Unix => &[
                "linux", "solaris", "sunos", "freebsd", "openbsd", "netbsd", "aix", "hp-ux",
                "darwin",
            ],
            Builtin::Solaris => &["solaris", "sunos"],
            Builtin::FreeBsd => &["freebsd"],
            Builtin::Cisco => &["cisco"],
            Builtin::Juniper => &["juniper", "junos"],
            Builtin::Network => &["cisco", "juniper", "junos"],
            Builtin::Device => &[],
        }
    }

    fn properties(self) -> &'static [&'static str] {
        match self {
            Builtin::Network => &[CATEGORIES, SYSINFO],
            Builtin::Device => &[DEVICE_TYPE],
            _ => &[SYSINFO],
        }
    }

    fn eval(self, props: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Builtin::Device => match props(DEVICE_TYPE) {
                None => true,
                Some(v) => {
                    let v = v.trim();
                    v.is_empty() || v == "0"
                }
            },
            Builtin::Network => {
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
            .any(|entry| eq_ignore_case(entry.trim(), lower_category)),
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
fn resolve<'a>(op: &'a Operand, props: &dyn Fn(&str) -> Option<String>) -> Cow<'a, str> {
    match op {
        Operand::Prop(name) => Cow::Owned(props(name).unwrap_or_default()),
        Operand::Literal(lit) => Cow::Borrowed(&lit.text),
    }
}

fn resolve_lower<'a>(op: &'a Operand, props: &dyn Fn(&str) -> Option<String>) -> Cow<'a, str> {
    match op {
        Operand::Prop(name) => Cow::Owned(props(name).unwrap_or_default().to_lowercase()),
        Operand::Literal(lit) => Cow::Borrowed(&lit.lower),
    }
}

/// Case-insensitive equality, without allocating for ASCII text.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
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
                        None => eq_ignore_case(&a, &b),
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
                TextFn::StartsWith => a.starts_with(b.as_ref()),
                TextFn::EndsWith => a.ends_with(b.as_ref()),
                TextFn::Contains => a.contains(b.as_ref()),
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
            (d, next)
                if d.is_ascii_digit() || (d == '-' && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
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
                None => {
                    return Err(AppliesToError::UnexpectedEnd {
                        expected: "`,` or `)`",
                    })
                }
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
    use super::*;
    use std::collections::HashMap;

    fn linux_web() -> HashMap<String, String> {
        [
            ("system.hostname", "WEB-01.example.com"),
            ("system.displayname", "web-01"),
            (
                "system.sysinfo",
                "Linux web-01 6.1.0-18-amd64 #1 SMP Debian x86_64",
            ),
            ("system.categories", "Linux, snmpTCPUDP ,frontend"),
            ("system.cpu.count", "8"),
            ("system.memory", "16.5"),
            ("snmp.community", "public"),
            ("location", ""),
            ("env", "Production"),
            ("weird name", "yes"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn check(expr: &str, props: &HashMap<String, String>) -> bool {
        let parsed = match parse(expr) {
            Ok(p) => p,
            Err(e) => panic!("{expr}: {e}"),
        };
        parsed.matches(&|name: &str| props.get(name).cloned())
    }

    fn t(expr: &str) -> bool {
        check(expr, &linux_web())
    }

    fn err(expr: &str) -> AppliesToError {
        match parse(expr) {
            Ok(e) => panic!("{expr} parsed: {e:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn equality_is_case_insensitive_and_numeric_when_both_numbers() {
        assert!(t(r#"system.displayname == "web-01""#));
        assert!(t(r#"system.displayname == "WEB-01""#));
        assert!(t(r#"SYSTEM.DisplayName == "web-01""#));
        assert!(!t(r#"system.displayname == "web-02""#));
        assert!(t(r#"system.displayname != "web-02""#));
        assert!(!t(r#"system.displayname != "Web-01""#));
        assert!(t("system.cpu.count == 8"));
        assert!(t(r#"system.cpu.count == "8.0""#));
        assert!(t("system.memory == 16.50"));
        assert!(t(r#""web-01" == system.displayname"#));
        assert!(t("system.displayname == system.displayname"));
        assert!(!t("system.displayname == system.hostname"));
    }

    #[test]
    fn missing_property_reads_as_empty() {
        assert!(t(r#"nosuch.prop == """#));
        assert!(t(r#"nosuch.prop != "x""#));
        assert!(!t(r#"nosuch.prop == "x""#));
        assert!(t(r#"location == """#));
    }

    #[test]
    fn ordering_is_numeric_only() {
        assert!(t("system.cpu.count > 4"));
        assert!(!t("system.cpu.count < 4"));
        assert!(t("system.cpu.count >= 8"));
        assert!(t("system.cpu.count <= 8"));
        assert!(!t("system.cpu.count <= 7.5"));
        assert!(t("system.memory < 16.6"));
        assert!(t("system.memory > -1"));
        assert!(t(r#"system.cpu.count > "4""#));
        // Not numbers on one side: never true, whichever operator.
        assert!(!t(r#"system.displayname > "a""#));
        assert!(!t(r#"system.displayname < "z""#));
        assert!(!t("nosuch.prop < 4"));
        assert!(!t("nosuch.prop >= 0"));
        assert!(!t("nosuch.prop <= 0"));
    }

    #[test]
    fn regex_match_is_unanchored_case_insensitive_and_negatable() {
        assert!(t(r#"system.sysinfo =~ "linux""#));
        assert!(t(r#"system.hostname =~ "^web-\d+\.""#));
        assert!(!t(r#"system.hostname =~ "^db-""#));
        assert!(t(r#"system.hostname !~ "^db-""#));
        assert!(!t(r#"system.sysinfo !~ "LINUX""#));
        assert!(!t(r#"system.sysinfo =~ "(?-i)LINUX""#));
        assert!(t(r#"system.sysinfo =~ "(?-i)Linux""#));
        assert!(t(r#"nosuch.prop =~ "^$""#));
        assert!(t(r#"nosuch.prop !~ ".""#));
        assert!(t("system.cpu.count =~ 8"));
    }

    #[test]
    fn boolean_operators_and_keywords() {
        assert!(t(r#"isLinux() && env == "production""#));
        assert!(t(r#"isLinux() and env == "production""#));
        assert!(!t(r#"isLinux() && env == "staging""#));
        assert!(t(r#"isWindows() || env == "production""#));
        assert!(t(r#"isWindows() OR env == "production""#));
        assert!(!t(r#"isWindows() || env == "staging""#));
        assert!(t("!isWindows()"));
        assert!(t("not isWindows()"));
        assert!(t("!!isLinux()"));
        assert!(!t("NOT isLinux()"));
    }

    #[test]
    fn precedence_and_parentheses() {
        // && binds tighter than ||.
        assert!(t("true() || false() && false()"));
        assert!(!t("(true() || false()) && false()"));
        assert!(t("false() && false() || true()"));
        assert!(!t("false() && (false() || true())"));
        // ! covers the whole comparison.
        assert!(t(r#"!system.displayname == "web-02""#));
        assert!(!t(r#"!system.displayname == "web-01""#));
        assert!(t(r#"!(env == "staging") && (isLinux() || (isWindows()))"#));
        // Long flat chains.
        let chain = vec!["true()"; 500].join(" && ");
        assert!(t(&chain));
        let chain = vec!["false()"; 500].join(" || ");
        assert!(!t(&chain));
    }

    #[test]
    fn bare_property_is_present_and_not_empty() {
        assert!(t("snmp.community"));
        assert!(!t("location"));
        assert!(!t("nosuch.prop"));
        assert!(t("snmp.community && !location"));
        assert!(t(r#"getPropValue("weird name")"#));
        assert!(t(r#"getPropValue("weird name") == "YES""#));
    }

    #[test]
    fn constants() {
        assert!(t("true()"));
        assert!(!t("false()"));
        assert!(t("TRUE()"));
        assert!(t("true"));
        assert!(!t("false"));
        assert!(check("true()", &HashMap::new()));
    }

    #[test]
    fn has_category_reads_trimmed_comma_list() {
        assert!(t(r#"hasCategory("Linux")"#));
        assert!(t(r#"hasCategory("snmptcpudp")"#));
        assert!(t(r#"hascategory("FrontEnd")"#));
        assert!(t(r#"hasCategory(" frontend ")"#));
        assert!(!t(r#"hasCategory("front")"#));
        assert!(!check(r#"hasCategory("Linux")"#, &HashMap::new()));
    }

    #[test]
    fn exists_checks_a_property_name() {
        assert!(t(r#"exists("snmp.community")"#));
        assert!(t(r#"exists("location")"#));
        assert!(t("exists(location)"));
        assert!(t(r#"exists("SNMP.Community")"#));
        assert!(!t(r#"exists("ssh.user")"#));
    }

    #[test]
    fn text_functions() {
        assert!(t(r#"startsWith(system.hostname, "web-")"#));
        assert!(t(r#"startsWith(system.hostname, "WEB-01.")"#));
        assert!(!t(r#"startsWith(system.hostname, "db")"#));
        assert!(t(r#"endsWith(system.hostname, ".EXAMPLE.com")"#));
        assert!(!t(r#"endsWith(system.hostname, ".org")"#));
        assert!(t(r#"contains(system.categories, "snmp")"#));
        assert!(t(r#"contains(system.sysinfo, "debian")"#));
        assert!(!t(r#"contains(system.sysinfo, "windows")"#));
        assert!(t(r#"contains(system.cpu.count, 8)"#));
        assert!(t(r#"startsWith(nosuch.prop, "")"#));
        assert!(!t(r#"startsWith(nosuch.prop, "x")"#));
        assert!(t(r#"contains(system.hostname, system.displayname)"#));
    }

    #[test]
    fn builtins() {
        let with = |info: &str| -> HashMap<String, String> {
            [("system.sysinfo".to_string(), info.to_string())].into()
        };
        let linux = with("Linux host 6.1");
        let win = with("Microsoft Windows Server 2022 Standard");
        let sol = with("SunOS box 5.11");
        let bsd = with("FreeBSD fw 14.0-RELEASE");
        let cisco = with("Cisco IOS Software, C2960 Software");
        let junos = with("Juniper Networks, Inc. ex4300 JUNOS 21.4");
        let aix = with("IBM PowerPC CHRP Computer AIX 7.2");
        for (expr, yes) in [
            ("isLinux()", vec![&linux]),
            ("isWindows()", vec![&win]),
            ("isSolaris()", vec![&sol]),
            ("isFreeBSD()", vec![&bsd]),
            ("isCisco()", vec![&cisco]),
            ("isJuniper()", vec![&junos]),
            ("isUnix()", vec![&linux, &sol, &bsd, &aix]),
            ("isNetwork()", vec![&cisco, &junos]),
        ] {
            for dev in [&linux, &win, &sol, &bsd, &cisco, &junos, &aix] {
                let expected = yes.iter().any(|y| std::ptr::eq(*y, dev));
                assert_eq!(check(expr, dev), expected, "{expr} on {dev:?}");
            }
            assert!(!check(expr, &HashMap::new()), "{expr} on nothing");
        }
        let net: HashMap<String, String> =
            [("system.categories".to_string(), "Network,snmp".to_string())].into();
        assert!(check("isNetwork()", &net));

        assert!(check("isDevice()", &HashMap::new()));
        let kind = |v: &str| -> HashMap<String, String> {
            [("system.devicetype".to_string(), v.to_string())].into()
        };
        assert!(check("isDevice()", &kind("0")));
        assert!(!check("isDevice()", &kind("2")));
        assert!(check("ISLINUX()", &linux));
    }

    #[test]
    fn properties_lists_what_is_read() {
        let e = match parse(
            r#"System.Hostname =~ "a" && (hasCategory("x") || isLinux()) && !exists("A.B") && startsWith(c, d) && getPropValue("Weird Name") == "1" && isDevice() && e && isNetwork() && system.hostname == 1"#,
        ) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            e.properties(),
            vec![
                "system.hostname",
                "system.categories",
                "system.sysinfo",
                "a.b",
                "c",
                "d",
                "weird name",
                "system.devicetype",
                "e",
            ]
        );
        let e = match parse("true()") {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert!(e.properties().is_empty());
    }

    #[test]
    fn lookups_use_lowercase_names() {
        let e = match parse(r#"Snmp.Community == "public" && EXISTS("SSH.User")"#) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        let asked = std::cell::RefCell::new(Vec::new());
        let _ = e.matches(&|name: &str| {
            asked.borrow_mut().push(name.to_string());
            Some("public".to_string())
        });
        assert_eq!(*asked.borrow(), vec!["snmp.community", "ssh.user"]);
    }

    #[test]
    fn evaluation_short_circuits() {
        let e = match parse(r#"false() && a == "1" || true() || b == "2""#) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        let asked = std::cell::RefCell::new(0);
        assert!(e.matches(&|_: &str| {
            *asked.borrow_mut() += 1;
            None
        }));
        assert_eq!(*asked.borrow(), 0);
    }

    #[test]
    fn strings_and_escapes() {
        let props: HashMap<String, String> = [
            ("q".to_string(), r#"say "hi""#.to_string()),
            ("b".to_string(), r"C:\temp".to_string()),
            ("s".to_string(), "it's".to_string()),
        ]
        .into();
        assert!(check(r#"q == "say \"hi\"""#, &props));
        assert!(check(r#"b == "C:\\temp""#, &props));
        assert!(check(r#"b == "C:\temp""#, &props));
        assert!(check(r#"s == 'it\'s'"#, &props));
        assert!(check(r#"s == "it's""#, &props));
        assert!(check(r#"b =~ "^c:\\\\t""#, &props));
    }

    #[test]
    fn whitespace_and_realistic_expressions() {
        assert!(t("  isLinux()\n\t&&\r\n snmp.community  "));
        assert!(t(
            r#"(isLinux() || isUnix()) && !hasCategory("NoSSH") && system.hostname !~ "^(localhost|127\.)" && exists("snmp.community")"#
        ));
        assert!(t(r#"system.displayname=="web-01"&&system.cpu.count>=2"#));
    }

    #[test]
    fn errors_carry_positions() {
        assert_eq!(err(""), AppliesToError::Empty);
        assert_eq!(err("   \n"), AppliesToError::Empty);
        assert_eq!(
            err("a = \"b\""),
            AppliesToError::UnexpectedChar { found: '=', pos: 2 }
        );
        assert_eq!(
            err("a == \"b"),
            AppliesToError::UnterminatedString { pos: 5 }
        );
        assert_eq!(
            err("a & b"),
            AppliesToError::UnexpectedChar { found: '&', pos: 2 }
        );
        assert_eq!(
            err("a @ b"),
            AppliesToError::UnexpectedChar { found: '@', pos: 2 }
        );
        assert_eq!(
            err("5abc"),
            AppliesToError::UnexpectedChar { found: 'a', pos: 1 }
        );
        assert_eq!(
            err("(a == \"b\""),
            AppliesToError::UnexpectedEnd { expected: "`)`" }
        );
        assert_eq!(
            err("a == \"b\")"),
            AppliesToError::UnexpectedToken {
                found: ")".into(),
                expected: "`&&`, `||` or the end of the expression",
                pos: 8
            }
        );
        assert_eq!(
            err("a == b == c"),
            AppliesToError::UnexpectedToken {
                found: "==".into(),
                expected: "`&&`, `||` or the end of the expression",
                pos: 7
            }
        );
        assert_eq!(
            err("a &&"),
            AppliesToError::UnexpectedEnd {
                expected: "a property, a string, a number, a function or `(`"
            }
        );
        assert!(matches!(
            err("&& a"),
            AppliesToError::UnexpectedToken { pos: 0, .. }
        ));
        assert!(matches!(
            err("a == )"),
            AppliesToError::UnexpectedToken { pos: 5, .. }
        ));
        assert!(matches!(
            err("()"),
            AppliesToError::UnexpectedToken { pos: 1, .. }
        ));
        assert_eq!(
            err("isLinux() && frob(x)"),
            AppliesToError::UnknownFunction {
                name: "frob".into(),
                pos: 13
            }
        );
        assert_eq!(
            err("join(a, \",\")"),
            AppliesToError::UnknownFunction {
                name: "join".into(),
                pos: 0
            }
        );
        assert!(matches!(
            err("isLinux(a)"),
            AppliesToError::WrongArguments { pos: 0, .. }
        ));
        assert!(matches!(
            err("true(1)"),
            AppliesToError::WrongArguments { .. }
        ));
        assert!(matches!(
            err("hasCategory()"),
            AppliesToError::WrongArguments { .. }
        ));
        assert!(matches!(
            err("hasCategory(a)"),
            AppliesToError::WrongArguments { .. }
        ));
        assert!(matches!(
            err("hasCategory(\"a\", \"b\")"),
            AppliesToError::WrongArguments { .. }
        ));
        assert!(matches!(
            err("exists()"),
            AppliesToError::WrongArguments { .. }
        ));
        assert!(matches!(
            err("startsWith(a)"),
            AppliesToError::WrongArguments { .. }
        ));
        assert!(matches!(
            err("contains(a, b, c)"),
            AppliesToError::WrongArguments { .. }
        ));
        assert!(matches!(
            err("contains(a, isLinux())"),
            AppliesToError::UnexpectedToken { pos: 12, .. }
        ));
        assert!(matches!(
            err("contains(a b)"),
            AppliesToError::UnexpectedToken { pos: 11, .. }
        ));
        assert!(matches!(
            err("contains(a,"),
            AppliesToError::UnexpectedEnd { .. }
        ));
        assert!(matches!(
            err("contains(a"),
            AppliesToError::UnexpectedEnd { .. }
        ));
        assert_eq!(
            err("\"linux\" && a"),
            AppliesToError::NotACondition {
                found: "\"linux\"".into(),
                pos: 0
            }
        );
        assert_eq!(
            err("a && 5"),
            AppliesToError::NotACondition {
                found: "5".into(),
                pos: 5
            }
        );
        assert_eq!(
            err("isLinux() == true()"),
            AppliesToError::CannotCompare { pos: 0 }
        );
        assert_eq!(
            err("a == isLinux()"),
            AppliesToError::CannotCompare { pos: 5 }
        );
        assert_eq!(err("a =~ b"), AppliesToError::RegexNotLiteral { pos: 5 });
        assert!(matches!(
            err("a =~ \"(\""),
            AppliesToError::InvalidRegex { pos: 5, .. }
        ));
        assert!(matches!(
            err("a =~ \"(?<=x)y\""),
            AppliesToError::InvalidRegex { .. }
        ));
        assert!(matches!(
            err(r#"a =~ "(a)\1""#),
            AppliesToError::InvalidRegex { .. }
        ));
    }

    #[test]
    fn error_messages_read_well() {
        assert_eq!(
            err("a == \"b").to_string(),
            "appliesTo: unterminated string starting at position 5"
        );
        assert_eq!(
            err("a =~ \"(\"").to_string(),
            "appliesTo: invalid regular expression at position 5: unclosed group"
        );
        assert_eq!(
            err("frob()").to_string(),
            "appliesTo: unknown function `frob` at position 0"
        );
        assert_eq!(
            err("isLinux(1)").to_string(),
            "appliesTo: `isLinux` at position 0 takes no arguments"
        );
        let positions_count_characters = err("é == \"b").to_string();
        assert!(
            positions_count_characters.contains("`é`"),
            "{positions_count_characters}"
        );
        assert_eq!(
            err("a == \"é\" && \"x"),
            AppliesToError::UnterminatedString { pos: 12 }
        );
    }

    #[test]
    fn limits() {
        let long = format!("a == \"{}\"", "x".repeat(MAX_LEN));
        assert_eq!(
            err(&long),
            AppliesToError::TooLong {
                len: long.len(),
                max: MAX_LEN
            }
        );
        let just = format!("a == \"{}\"", "x".repeat(MAX_LEN - 7));
        assert_eq!(just.len(), MAX_LEN);
        assert!(parse(&just).is_ok());

        let deep_ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&deep_ok).is_ok());
        let deep = format!(
            "{}a{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(matches!(
            err(&deep),
            AppliesToError::TooDeep { max: MAX_DEPTH, .. }
        ));
        let nots = format!("{}a", "!".repeat(MAX_DEPTH + 1));
        assert!(matches!(err(&nots), AppliesToError::TooDeep { .. }));
        assert!(parse(&format!("{}a", "!".repeat(MAX_DEPTH))).is_ok());
        let huge_nest = "(".repeat(MAX_LEN);
        assert!(matches!(err(&huge_nest), AppliesToError::TooDeep { .. }));

        let many = vec![r#"a =~ "x""#; MAX_REGEXES].join(" || ");
        assert!(parse(&many).is_ok());
        let too_many = vec![r#"a =~ "x""#; MAX_REGEXES + 1].join(" || ");
        assert!(matches!(
            err(&too_many),
            AppliesToError::TooManyRegexes {
                max: MAX_REGEXES,
                ..
            }
        ));

        assert!(matches!(
            err(r#"a =~ "\w{1000}\w{1000}""#),
            AppliesToError::RegexTooBig { pos: 5, .. }
        ));
        let nested = format!("a =~ \"{}x{}\"", "(".repeat(40), ")".repeat(40));
        assert!(matches!(err(&nested), AppliesToError::InvalidRegex { .. }));
    }

    #[test]
    fn numbers_lex_and_compare() {
        assert!(t("system.memory > 16"));
        assert!(t("system.memory == 16.5"));
        assert!(!t("-1 == 1"));
        assert!(t("-1 < 0"));
        assert!(matches!(
            err("1.2.3 == a"),
            AppliesToError::UnexpectedChar { found: '.', pos: 3 }
        ));
        assert!(matches!(
            err("- 1 == a"),
            AppliesToError::UnexpectedChar { found: '-', pos: 0 }
        ));
        assert_eq!(as_number("1e5"), None);
        assert_eq!(as_number("inf"), None);
        assert_eq!(as_number("NaN"), None);
        assert_eq!(as_number(" 5"), None);
        assert_eq!(as_number("5."), None);
        assert_eq!(as_number("-0.25"), Some(-0.25));
        assert_eq!(as_number(&"9".repeat(400)), None);
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// A random well-formed expression.
    fn gen_expr(rng: &mut Rng, depth: usize) -> String {
        const PROPS: &[&str] = &[
            "system.hostname",
            "system.cpu.count",
            "snmp.community",
            "location",
            "nosuch",
            "system.categories",
        ];
        const LITS: &[&str] = &["\"web\"", "\"\"", "8", "-2.5", "'Linux'", "\"snmp\""];
        const REGEXES: &[&str] = &[
            "\"^web\"",
            "\"\\d+\"",
            "\"(?-i)Linux\"",
            "\"a|b|c\"",
            "\".*\"",
        ];
        const OPS: &[&str] = &["==", "!=", "<", ">", "<=", ">="];
        let prop = |rng: &mut Rng| PROPS[rng.below(PROPS.len())].to_string();
        let value = |rng: &mut Rng| {
            if rng.below(2) == 0 {
                PROPS[rng.below(PROPS.len())].to_string()
            } else {
                LITS[rng.below(LITS.len())].to_string()
            }
        };
        let leaf = rng.below(if depth > 6 { 8 } else { 12 });
        match leaf {
            0 => prop(rng),
            1 => format!("{} {} {}", prop(rng), OPS[rng.below(OPS.len())], value(rng)),
            2 => format!("{} =~ {}", prop(rng), REGEXES[rng.below(REGEXES.len())]),
            3 => format!("{} !~ {}", prop(rng), REGEXES[rng.below(REGEXES.len())]),
            4 => format!("hasCategory({})", LITS[rng.below(LITS.len())]),
            5 => format!("startsWith({}, {})", prop(rng), value(rng)),
            6 => [
                "isLinux()",
                "isUnix()",
                "isDevice()",
                "true()",
                "false",
                "isNetwork()",
            ][rng.below(6)]
            .to_string(),
            7 => format!("exists(\"{}\")", prop(rng)),
            8 => format!("({})", gen_expr(rng, depth + 1)),
            9 => format!("!{}", gen_expr(rng, depth + 1)),
            10 => format!(
                "{} && {}",
                gen_expr(rng, depth + 1),
                gen_expr(rng, depth + 1)
            ),
            _ => format!(
                "{} || {}",
                gen_expr(rng, depth + 1),
                gen_expr(rng, depth + 1)
            ),
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        const PIECES: &[&str] = &[
            "system.hostname",
            "a",
            "snmp.community",
            "(",
            ")",
            "(",
            ")",
            "!",
            "not ",
            " && ",
            " || ",
            " and ",
            " or ",
            "==",
            "!=",
            "=~",
            "!~",
            "<",
            ">",
            "<=",
            ">=",
            "\"web\"",
            "\"(\"",
            "\"^a.*$\"",
            "\"\\d+\"",
            "'x'",
            "42",
            "-3.5",
            "true()",
            "false()",
            "isLinux()",
            "hasCategory(\"linux\")",
            "exists(\"a\")",
            "startsWith(a, \"w\")",
            "contains(",
            "endsWith(",
            "getPropValue(\"weird name\")",
            ",",
            " ",
            "\"",
            "\\",
            "é",
            "\u{0}",
            "=",
            "&",
            "|",
            "frob(",
            "TRUE",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let props = linux_web();
        let lookup = |name: &str| props.get(name).cloned();
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mut input = String::new();
            let mode = rng.below(4);
            if mode == 0 {
                // A well-formed expression, possibly with one byte changed.
                input = gen_expr(&mut rng, 0);
                if rng.below(3) == 0 && !input.is_empty() {
                    let mut chars: Vec<char> = input.chars().collect();
                    let at = rng.below(chars.len());
                    chars[at] = PIECES[rng.below(PIECES.len())]
                        .chars()
                        .next()
                        .unwrap_or('x');
                    input = chars.into_iter().collect();
                }
            } else if mode == 1 {
                // Raw random characters, mostly ASCII.
                for _ in 0..rng.below(40) {
                    let c = if rng.below(10) == 0 {
                        char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?')
                    } else {
                        (rng.below(95) as u8 + 32) as char
                    };
                    input.push(c);
                }
            } else {
                for _ in 0..rng.below(24) {
                    input.push_str(PIECES[rng.below(PIECES.len())]);
                }
            }
            if let Ok(expr) = parse(&input) {
                parsed += 1;
                let _ = expr.matches(&lookup);
                let _ = expr.matches(&|_: &str| None);
                let _ = expr.matches(&|_: &str| Some("x".repeat(100)));
                let _ = expr.properties();
            }
        }
        assert!(parsed > 3_000, "only {parsed} random inputs parsed");
    }
}
