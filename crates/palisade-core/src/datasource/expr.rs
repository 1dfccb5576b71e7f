//! The arithmetic language of `expression` datapoints.
//!
//! An expression computes a value from other datapoints of the same instance, after their
//! own processing (a counter contributes its per-second rate, not its raw count):
//!
//! ```text
//! expr    := term (("+" | "-") term)*
//! term    := unary (("*" | "/") unary)*
//! unary   := "-" unary | primary
//! primary := number | name | "(" expr ")"
//! number  := digits ("." digits)? (("e" | "E") ("+" | "-")? digits)?
//! name    := [A-Za-z_][A-Za-z0-9_]*      a datapoint of the same datasource
//! ```
//!
//! * `*` and `/` bind tighter than `+` and `-`; all four associate to the left.
//! * Names are case-sensitive, like datapoint names.
//! * Evaluation yields no value (`None`) when an input has no value, on a division by zero,
//!   and when a result is not finite (an overflow).
//! * An expression is at most [`MAX_LEN`] bytes, and parentheses and unary minus nest at
//!   most [`MAX_DEPTH`] levels. Parsing and evaluation never panic; evaluation runs over a
//!   compiled postfix program, without recursion.
//!
//! ```
//! use palisade_core::datasource::expr;
//! # fn main() -> Result<(), expr::ExprError> {
//! let e = expr::parse("100 * (total - idle) / total")?;
//! assert_eq!(e.references(), ["total", "idle"]);
//! let value = e.evaluate(&|name: &str| match name {
//!     "total" => Some(200.0),
//!     "idle" => Some(50.0),
//!     _ => None,
//! });
//! assert_eq!(value, Some(75.0));
//! assert_eq!(e.evaluate(&|_: &str| Some(0.0)), None); // division by zero
//! # Ok(())
//! # }
//! ```

/// Longest expression accepted, in bytes.
pub const MAX_LEN: usize = 1024;

/// Deepest nesting of parentheses and unary minus.
pub const MAX_DEPTH: usize = 32;

/// Why an expression was rejected. Positions count characters from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The expression is empty or only whitespace.
    #[error("the expression is empty")]
    Empty,
    /// The expression is longer than [`MAX_LEN`] bytes.
    #[error("the expression is too long ({len} bytes, at most {max} allowed)")]
    TooLong {
        /// Length of the rejected input, in bytes.
        len: usize,
        /// The limit, [`MAX_LEN`].
        max: usize,
    },
    /// A character that starts no token.
    #[error("unexpected `{found}` at position {pos}")]
    UnexpectedChar {
        /// The offending character.
        found: char,
        /// Its position.
        pos: usize,
    },
    /// A malformed or out-of-range number (`1.`, `2x`, `1e999`).
    #[error("`{text}` at position {pos} is not a valid number")]
    BadNumber {
        /// The number as written.
        text: String,
        /// Where it starts.
        pos: usize,
    },
    /// A token where something else was expected.
    #[error("expected {expected} at position {pos}, found `{found}`")]
    UnexpectedToken {
        /// The token as written.
        found: String,
        /// What the grammar expected there.
        expected: &'static str,
        /// Where the token starts.
        pos: usize,
    },
    /// The expression ends where more was expected.
    #[error("unexpected end of the expression, expected {expected}")]
    UnexpectedEnd {
        /// What the grammar expected.
        expected: &'static str,
    },
    /// Parentheses and unary minus nest deeper than [`MAX_DEPTH`].
    #[error("nested too deeply at position {pos} (at most {max} levels)")]
    TooDeep {
        /// The limit, [`MAX_DEPTH`].
        max: usize,
        /// Where the limit was exceeded.
        pos: usize,
    },
}

/// A parsed expression, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    /// Postfix program.
    ops: Vec<Op>,
    /// Names read, unique, in order of first appearance; `Op::Var` indexes this.
    refs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Num(f64),
    Var(usize),
    Neg,
    Add,
    Sub,
    Mul,
    Div,
}

impl Expression {
    /// The datapoint names the expression reads, each once, in order of first appearance.
    pub fn references(&self) -> &[String] {
        &self.refs
    }

    /// Evaluates the expression, reading datapoint values through `value`.
    ///
    /// `None` when an input has no value (or is not finite), on a division by zero, or when
    /// an intermediate result is not finite.
    pub fn evaluate(&self, value: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
        let mut inputs: Vec<Option<f64>> = vec![None; self.refs.len()];
        let mut stack: Vec<f64> = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let result = match *op {
                Op::Num(n) => n,
                Op::Var(i) => {
                    let slot = inputs.get_mut(i)?;
                    match *slot {
                        Some(v) => v,
                        None => {
                            let v = value(self.refs.get(i)?)?;
                            *slot = Some(v);
                            v
                        }
                    }
                }
                Op::Neg => -stack.pop()?,
                Op::Add | Op::Sub | Op::Mul | Op::Div => {
                    let b = stack.pop()?;
                    let a = stack.pop()?;
                    match *op {
                        Op::Add => a + b,
                        Op::Sub => a - b,
                        Op::Mul => a * b,
                        _ => {
                            if b == 0.0 {
                                return None;
                            }
                            a / b
                        }
                    }
                }
            };
            if !result.is_finite() {
                return None;
            }
            stack.push(result);
        }
        match stack.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Plus,
    Minus,
    Star,
    Slash,
    LParen,
    RParen,
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Num(n) => n.to_string(),
            Tok::Ident(s) => s.clone(),
            Tok::Plus => "+".into(),
            Tok::Minus => "-".into(),
            Tok::Star => "*".into(),
            Tok::Slash => "/".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
        }
    }
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Expression, ExprError> {
    if text.len() > MAX_LEN {
        return Err(ExprError::TooLong {
            len: text.len(),
            max: MAX_LEN,
        });
    }
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Err(ExprError::Empty);
    }
    let mut p = Parser {
        tokens,
        next: 0,
        ops: Vec::new(),
        refs: Vec::new(),
    };
    p.expr(0)?;
    if let Some((pos, tok)) = p.tokens.get(p.next) {
        return Err(ExprError::UnexpectedToken {
            found: tok.text(),
            expected: "an operator or the end of the expression",
            pos: *pos,
        });
    }
    Ok(Expression {
        ops: p.ops,
        refs: p.refs,
    })
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '0'..='9' => {
                let (n, end) = lex_number(&chars, start)?;
                out.push((start, Tok::Num(n)));
                i = end;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let end = scan(&chars, start, |c| c.is_ascii_alphanumeric() || c == '_');
                out.push((start, Tok::Ident(chars[start..end].iter().collect())));
                i = end;
                continue;
            }
            found => return Err(ExprError::UnexpectedChar { found, pos: start }),
        };
        out.push((start, tok));
        i += 1;
    }
    Ok(out)
}

/// First index at or after `from` whose character does not satisfy `ok`.
fn scan(chars: &[char], from: usize, ok: impl Fn(char) -> bool) -> usize {
    let mut i = from;
    while chars.get(i).is_some_and(|&c| ok(c)) {
        i += 1;
    }
    i
}

fn lex_number(chars: &[char], start: usize) -> Result<(f64, usize), ExprError> {
    let digit = |c: char| c.is_ascii_digit();
    let mut end = scan(chars, start, digit);
    let mut valid = true;
    if chars.get(end) == Some(&'.') {
        let frac = scan(chars, end + 1, digit);
        valid &= frac > end + 1;
        end = frac;
    }
    if matches!(chars.get(end), Some('e' | 'E')) {
        let mut exp = end + 1;
        if matches!(chars.get(exp), Some('+' | '-')) {
            exp += 1;
        }
        let digits = scan(chars, exp, digit);
        valid &= digits > exp;
        end = digits;
    }
    // Anything glued to the number (`2x`, `1.2.3`) makes the whole run invalid.
    let glued = scan(chars, end, |c| {
        c.is_ascii_alphanumeric() || c == '_' || c == '.'
    });
    valid &= glued == end;
    let text: String = chars[start..glued].iter().collect();
    match text.parse::<f64>() {
        Ok(n) if valid && n.is_finite() => Ok((n, glued)),
        _ => Err(ExprError::BadNumber { text, pos: start }),
    }
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    next: usize,
    ops: Vec<Op>,
    refs: Vec<String>,
}

const OPERAND: &str = "a number, a datapoint name or `(`";

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn pos(&self) -> usize {
        self.tokens.get(self.next).map_or(0, |(p, _)| *p)
    }

    fn deeper(&self, depth: usize) -> Result<usize, ExprError> {
        if depth >= MAX_DEPTH {
            return Err(ExprError::TooDeep {
                max: MAX_DEPTH,
                pos: self.pos(),
            });
        }
        Ok(depth + 1)
    }

    fn expr(&mut self, depth: usize) -> Result<(), ExprError> {
        self.term(depth)?;
        loop {
            let op = match self.peek() {
                Some(Tok::Plus) => Op::Add,
                Some(Tok::Minus) => Op::Sub,
                _ => return Ok(()),
            };
            self.next += 1;
            self.term(depth)?;
            self.ops.push(op);
        }
    }

    fn term(&mut self, depth: usize) -> Result<(), ExprError> {
        self.unary(depth)?;
        loop {
            let op = match self.peek() {
                Some(Tok::Star) => Op::Mul,
                Some(Tok::Slash) => Op::Div,
                _ => return Ok(()),
            };
            self.next += 1;
            self.unary(depth)?;
            self.ops.push(op);
        }
    }

    fn unary(&mut self, depth: usize) -> Result<(), ExprError> {
        if self.peek() == Some(&Tok::Minus) {
            let inner = self.deeper(depth)?;
            self.next += 1;
            self.unary(inner)?;
            self.ops.push(Op::Neg);
            return Ok(());
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<(), ExprError> {
        let Some((pos, tok)) = self.tokens.get(self.next).cloned() else {
            return Err(ExprError::UnexpectedEnd { expected: OPERAND });
        };
        match tok {
            Tok::Num(n) => {
                self.next += 1;
                self.ops.push(Op::Num(n));
            }
            Tok::Ident(name) => {
                self.next += 1;
                let index = match self.refs.iter().position(|r| *r == name) {
                    Some(i) => i,
                    None => {
                        self.refs.push(name);
                        self.refs.len() - 1
                    }
                };
                self.ops.push(Op::Var(index));
            }
            Tok::LParen => {
                let inner = self.deeper(depth)?;
                self.next += 1;
                self.expr(inner)?;
                match self.tokens.get(self.next) {
                    Some((_, Tok::RParen)) => self.next += 1,
                    Some((pos, tok)) => {
                        return Err(ExprError::UnexpectedToken {
                            found: tok.text(),
                            expected: "`)` or an operator",
                            pos: *pos,
                        })
                    }
                    None => return Err(ExprError::UnexpectedEnd { expected: "`)`" }),
                }
            }
            other => {
                return Err(ExprError::UnexpectedToken {
                    found: other.text(),
                    expected: OPERAND,
                    pos,
                })
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn eval(text: &str, vars: &[(&str, f64)]) -> Option<f64> {
        parse(text)
            .unwrap()
            .evaluate(&|n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("1 + 2 * 3", &[]), Some(7.0));
        assert_eq!(eval("(1 + 2) * 3", &[]), Some(9.0));
        assert_eq!(eval("10 - 4 - 3", &[]), Some(3.0));
        assert_eq!(eval("64 / 4 / 2", &[]), Some(8.0));
        assert_eq!(eval("2 * -3", &[]), Some(-6.0));
        assert_eq!(eval("--2", &[]), Some(2.0));
        assert_eq!(eval("-(1 + 2) * 2", &[]), Some(-6.0));
        assert_eq!(eval("1.5e2 + 2E-1", &[]), Some(150.2));
        assert_eq!(eval("a*8", &[("a", 2.5)]), Some(20.0));
    }

    #[test]
    fn missing_inputs_and_division_by_zero_give_no_value() {
        assert_eq!(eval("a + 1", &[]), None);
        assert_eq!(eval("a / b", &[("a", 1.0), ("b", 0.0)]), None);
        assert_eq!(eval("a / (b - b)", &[("a", 1.0), ("b", 3.0)]), None);
        assert_eq!(eval("0 / 0", &[]), None);
        assert_eq!(eval("a", &[("a", f64::NAN)]), None);
        assert_eq!(eval("1e308 * 10", &[]), None);
        assert_eq!(eval("1 / (1e308 * 10)", &[]), None);
    }

    #[test]
    fn references_are_unique_in_order() {
        let e = parse("b + a * b - c / a").unwrap();
        assert_eq!(e.references(), ["b", "a", "c"]);
        assert!(parse("42").unwrap().references().is_empty());
    }

    #[test]
    fn names_are_case_sensitive() {
        assert_eq!(eval("Idle", &[("idle", 1.0)]), None);
        assert_eq!(eval("_x9", &[("_x9", 1.0)]), Some(1.0));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(parse(""), Err(ExprError::Empty));
        assert_eq!(parse("   "), Err(ExprError::Empty));
        assert!(matches!(parse("1 +"), Err(ExprError::UnexpectedEnd { .. })));
        assert!(matches!(parse("(1"), Err(ExprError::UnexpectedEnd { .. })));
        assert!(matches!(
            parse("1 2"),
            Err(ExprError::UnexpectedToken { pos: 2, .. })
        ));
        assert!(matches!(
            parse(")"),
            Err(ExprError::UnexpectedToken { pos: 0, .. })
        ));
        assert!(matches!(
            parse("* 2"),
            Err(ExprError::UnexpectedToken { .. })
        ));
        assert!(matches!(
            parse("+2"),
            Err(ExprError::UnexpectedToken { .. })
        ));
        assert_eq!(
            parse("a % b"),
            Err(ExprError::UnexpectedChar { found: '%', pos: 2 })
        );
        assert!(matches!(
            parse("a.b"),
            Err(ExprError::UnexpectedChar { .. })
        ));
        assert!(matches!(parse("é"), Err(ExprError::UnexpectedChar { .. })));
        for bad in ["1.", "2x", "1.2.3", "1e", "1e+", "1e999", "3_0"] {
            assert!(
                matches!(parse(bad), Err(ExprError::BadNumber { .. })),
                "{bad}"
            );
        }
        assert!(matches!(parse(".5"), Err(ExprError::UnexpectedChar { .. })));
    }

    #[test]
    fn length_limit() {
        let ok = format!("1{}", " ".repeat(MAX_LEN - 1));
        assert!(parse(&ok).is_ok());
        let long = "1".repeat(MAX_LEN + 1);
        assert_eq!(
            parse(&long),
            Err(ExprError::TooLong {
                len: MAX_LEN + 1,
                max: MAX_LEN
            })
        );
    }

    #[test]
    fn nesting_limit() {
        let at_limit = format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(eval(&at_limit, &[]), Some(1.0));
        let over = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(matches!(parse(&over), Err(ExprError::TooDeep { .. })));
        assert_eq!(eval(&format!("{}1", "-".repeat(MAX_DEPTH)), &[]), Some(1.0));
        assert!(matches!(
            parse(&format!("{}1", "-".repeat(MAX_DEPTH + 1))),
            Err(ExprError::TooDeep { .. })
        ));
        assert!(matches!(
            parse(&format!("{}1", "(-".repeat(MAX_DEPTH))),
            Err(ExprError::TooDeep { .. })
        ));
    }

    #[test]
    fn long_flat_chains_evaluate_without_recursion() {
        let text = vec!["1"; MAX_LEN / 4].join(" + ");
        assert_eq!(eval(&text, &[]), Some((MAX_LEN / 4) as f64));
    }

    #[test]
    fn never_panics_on_garbage() {
        let samples = [
            "((((", "))))", "-", "--", "()", "(+)", "1e-", "a(b)", "\u{0}", "1/-0",
        ];
        for s in samples {
            let _ = parse(s).map(|e| e.evaluate(&|_: &str| Some(1.0)));
        }
        assert_eq!(eval("1/-0", &[]), None);
    }
}
