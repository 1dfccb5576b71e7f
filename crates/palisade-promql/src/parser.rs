//! A hand-written recursive-descent PromQL parser with Prometheus' operator precedence.
//!
//! ```
//! use palisade_promql::parser::parse;
//! let expr = parse(r#"sum by (device) (rate(http_requests_total{code=~"5.."}[5m]))"#).unwrap();
//! assert_eq!(expr.to_string(), r#"sum by (device) (rate(http_requests_total{code=~"5.."}[5m]))"#);
//! ```
//!
//! Precedence, loosest first: `or`; `and` `unless`; `==` `!=` `<` `<=` `>` `>=`; `+` `-`;
//! `*` `/` `%`; unary `-` / `+`; `^` (right-associative, so `-2 ^ 2` is `-(2 ^ 2)`).
//! All binary operators but `^` are left-associative.

mod lexer;

use crate::ast::{
    Aggregate, AggregateGrouping, AggregateOp, Binary, BinaryOp, Call, Expr, Function,
    MatrixSelector, ValueType, VectorMatching, VectorSelector,
};
use lexer::{Tok, Token};
use palisade_tsdb::{MatchOp, Matcher, Selector, SeriesKey, METRIC_LABEL};

pub(crate) use lexer::parse_duration;

/// The longest accepted query, in bytes.
pub const MAX_QUERY_LEN: usize = 64 * 1024;

/// The deepest accepted expression tree (every operator, call, aggregation and pair of
/// parentheses adds a level). Bounds the parser's and the evaluator's recursion.
pub const MAX_DEPTH: usize = 64;

/// A syntax or type error, with the byte offset (0-based) where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at position {pos}: {message}")]
pub struct ParseError {
    /// Byte offset into the query (0-based).
    pub pos: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(pos: usize, message: impl Into<String>) -> Self {
        ParseError {
            pos,
            message: message.into(),
        }
    }
}

/// Parses a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    if input.len() > MAX_QUERY_LEN {
        return Err(ParseError::new(
            0,
            format!(
                "query is too long ({} bytes, the limit is {MAX_QUERY_LEN})",
                input.len()
            ),
        ));
    }
    let toks = lexer::lex(input)?;
    let mut p = Parser { toks, i: 0 };
    let node = p.expr(0, 0)?;
    let t = p.peek_token();
    if t.tok != Tok::Eof {
        return Err(ParseError::new(
            t.pos,
            format!("unexpected {} after the expression", t.tok.describe()),
        ));
    }
    Ok(node.expr)
}

/// Parses a series selector as used by `match[]` (`metric{...}` or `{...}`, no offset or
/// range).
pub fn parse_selector(input: &str) -> Result<VectorSelector, ParseError> {
    match parse(input)? {
        Expr::Vector(vs) if vs.offset_ms == 0 => Ok(vs),
        _ => Err(ParseError::new(
            0,
            "expected a series selector such as metric{label=\"value\"}",
        )),
    }
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Words that cannot be metric names (PromQL keywords, case-insensitive).
fn is_keyword(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "and"
            | "or"
            | "unless"
            | "atan2"
            | "by"
            | "without"
            | "on"
            | "ignoring"
            | "group_left"
            | "group_right"
            | "bool"
            | "offset"
            | "count_values"
            | "limitk"
            | "limit_ratio"
    ) || AggregateOp::from_name(word).is_some()
}

/// A parsed subtree with its depth and start offset.
struct Node {
    expr: Expr,
    depth: usize,
    pos: usize,
}

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek_token(&self) -> &Token<'a> {
        // The token list always ends with Eof and `i` never moves past it.
        let last = self.toks.len().saturating_sub(1);
        &self.toks[self.i.min(last)]
    }

    fn peek(&self) -> &Tok<'a> {
        &self.peek_token().tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok<'a> {
        let last = self.toks.len().saturating_sub(1);
        &self.toks[(self.i + ahead).min(last)].tok
    }

    fn pos(&self) -> usize {
        self.peek_token().pos
    }

    fn advance(&mut self) {
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
    }

    fn unexpected(&self, context: &str) -> ParseError {
        let t = self.peek_token();
        ParseError::new(t.pos, format!("unexpected {} {context}", t.tok.describe()))
    }

    fn expect(&mut self, tok: Tok<'static>, context: &str) -> Result<(), ParseError> {
        if *self.peek() == tok {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(context))
        }
    }

    fn check_depth(depth: usize, pos: usize) -> Result<(), ParseError> {
        if depth > MAX_DEPTH {
            Err(ParseError::new(
                pos,
                format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"),
            ))
        } else {
            Ok(())
        }
    }

    fn binary_op(&self) -> Option<BinaryOp> {
        let op = match self.peek() {
            Tok::Add => BinaryOp::Add,
            Tok::Sub => BinaryOp::Sub,
            Tok::Mul => BinaryOp::Mul,
            Tok::Div => BinaryOp::Div,
            Tok::Mod => BinaryOp::Mod,
            Tok::Pow => BinaryOp::Pow,
            Tok::EqlC => BinaryOp::Eq,
            Tok::Neq => BinaryOp::Ne,
            Tok::Gtr => BinaryOp::Gt,
            Tok::Lss => BinaryOp::Lt,
            Tok::Gte => BinaryOp::Ge,
            Tok::Lte => BinaryOp::Le,
            Tok::Ident(w) if w.eq_ignore_ascii_case("and") => BinaryOp::And,
            Tok::Ident(w) if w.eq_ignore_ascii_case("or") => BinaryOp::Or,
            Tok::Ident(w) if w.eq_ignore_ascii_case("unless") => BinaryOp::Unless,
            _ => return None,
        };
        Some(op)
    }

    /// Parses operators binding at least as tightly as `min_prec`. `level` is the
    /// recursion depth, bounded by [`MAX_DEPTH`]. (The functions on the recursive path —
    /// `expr`, `unary`, `postfix`, `primary`, `paren`, `aggregate`, `call` — keep their
    /// frames small by moving the rest into `#[inline(never)]` helpers.)
    fn expr(&mut self, min_prec: u8, level: usize) -> Result<Node, ParseError> {
        Self::check_depth(level, self.pos())?;
        let mut lhs = self.unary(level)?;
        while let Some(op) = self.binary_op() {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_pos = self.pos();
            self.advance();
            let (return_bool, matching) = self.binary_modifiers(op)?;
            let next_min = if op == BinaryOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min, level + 1)?;
            lhs = make_binary(op, lhs, rhs, return_bool, matching, op_pos)?;
        }
        Ok(lhs)
    }

    /// `bool`, `on (...)` / `ignoring (...)` after a binary operator.
    #[inline(never)]
    fn binary_modifiers(
        &mut self,
        op: BinaryOp,
    ) -> Result<(bool, Option<VectorMatching>), ParseError> {
        let mut return_bool = false;
        if self.peek_keyword("bool") {
            if !op.is_comparison() {
                return Err(ParseError::new(
                    self.pos(),
                    "bool modifier can only be used on comparison operators",
                ));
            }
            return_bool = true;
            self.advance();
        }
        let mut matching = None;
        if self.peek_keyword("on") || self.peek_keyword("ignoring") {
            let on = self.peek_keyword("on");
            self.advance();
            let labels = self.label_list()?;
            matching = Some(VectorMatching { on, labels });
        }
        if self.peek_keyword("group_left") || self.peek_keyword("group_right") {
            return Err(ParseError::new(
                self.pos(),
                "group_left/group_right (many-to-one matching) is not supported",
            ));
        }
        Ok((return_bool, matching))
    }

    fn unary(&mut self, level: usize) -> Result<Node, ParseError> {
        let neg = match self.peek() {
            Tok::Sub => true,
            Tok::Add => false,
            _ => return self.postfix(level),
        };
        let pos = self.pos();
        self.advance();
        // Unary operators bind like `*`: tighter than `+`, looser than `^`.
        let operand = self.expr(BinaryOp::Pow.precedence(), level + 1)?;
        make_unary(neg, operand, pos)
    }

    /// A primary expression and its `[range]` / `offset` suffixes.
    fn postfix(&mut self, level: usize) -> Result<Node, ParseError> {
        let mut node = self.primary(level)?;
        loop {
            match self.peek() {
                Tok::LBracket => self.range_suffix(&mut node)?,
                Tok::Ident(w) if w.eq_ignore_ascii_case("offset") => {
                    self.offset_suffix(&mut node)?
                }
                Tok::At => {
                    return Err(ParseError::new(
                        self.pos(),
                        "the @ modifier is not supported",
                    ))
                }
                _ => return Ok(node),
            }
        }
    }

    /// `[5m]` after a vector selector. (Kept out of `postfix` so the recursive path has
    /// small stack frames.)
    #[inline(never)]
    fn range_suffix(&mut self, node: &mut Node) -> Result<(), ParseError> {
        let bracket = self.pos();
        let vs = match &node.expr {
            Expr::Vector(vs) if vs.offset_ms == 0 => vs.clone(),
            Expr::Vector(_) => {
                return Err(ParseError::new(
                    bracket,
                    "the range must come before the offset: x[5m] offset 1h",
                ))
            }
            _ => {
                let sub = self.looks_like_subquery();
                return Err(ParseError::new(
                    bracket,
                    if sub {
                        "subqueries are not supported"
                    } else {
                        "ranges only allowed for vector selectors"
                    },
                ));
            }
        };
        self.advance();
        let range_ms = match *self.peek() {
            Tok::Duration(d) => d,
            _ => return Err(self.unexpected("in range, expected a duration such as 5m")),
        };
        let dur_pos = self.pos();
        self.advance();
        if *self.peek() == Tok::Colon {
            return Err(ParseError::new(self.pos(), "subqueries are not supported"));
        }
        self.expect(Tok::RBracket, "in range, expected \"]\"")?;
        if range_ms <= 0 {
            return Err(ParseError::new(dur_pos, "range must be greater than 0"));
        }
        node.expr = Expr::Matrix(MatrixSelector {
            vector: vs,
            range_ms,
        });
        Ok(())
    }

    /// `offset 5m` after a selector.
    #[inline(never)]
    fn offset_suffix(&mut self, node: &mut Node) -> Result<(), ParseError> {
        let kw = self.pos();
        self.advance();
        let negative = match self.peek() {
            Tok::Sub => {
                self.advance();
                true
            }
            Tok::Add => {
                self.advance();
                false
            }
            _ => false,
        };
        let d = match *self.peek() {
            Tok::Duration(d) => d,
            _ => return Err(self.unexpected("after offset, expected a duration such as 5m")),
        };
        self.advance();
        let d = if negative { -d } else { d };
        let slot = match &mut node.expr {
            Expr::Vector(vs) => &mut vs.offset_ms,
            Expr::Matrix(ms) => &mut ms.vector.offset_ms,
            _ => {
                return Err(ParseError::new(
                    kw,
                    "offset modifier must be preceded by an instant vector selector or range vector selector",
                ))
            }
        };
        if *slot != 0 {
            return Err(ParseError::new(kw, "offset may not be set multiple times"));
        }
        *slot = d;
        Ok(())
    }

    /// Whether the tokens after `[` read `duration :` (a subquery).
    fn looks_like_subquery(&self) -> bool {
        matches!(self.peek_at(1), Tok::Duration(_)) && *self.peek_at(2) == Tok::Colon
    }

    fn primary(&mut self, level: usize) -> Result<Node, ParseError> {
        match self.peek() {
            Tok::LParen => self.paren(level),
            Tok::Ident(_) => self.ident_primary(level),
            _ => self.literal_or_selector(),
        }
    }

    fn paren(&mut self, level: usize) -> Result<Node, ParseError> {
        let pos = self.pos();
        self.advance();
        let inner = self.expr(0, level + 1)?;
        self.expect(Tok::RParen, "in parentheses, expected \")\"")?;
        let depth = inner.depth + 1;
        Self::check_depth(depth, pos)?;
        Ok(Node {
            expr: Expr::Paren(Box::new(inner.expr)),
            depth,
            pos,
        })
    }

    /// Numbers, strings and `{...}` selectors (no recursion).
    #[inline(never)]
    fn literal_or_selector(&mut self) -> Result<Node, ParseError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Number(v) => {
                self.advance();
                Ok(leaf(Expr::Number(v), pos))
            }
            Tok::Str(s) => {
                self.advance();
                Ok(leaf(Expr::String(s), pos))
            }
            Tok::LBrace => {
                let vs = self.selector(None, pos)?;
                Ok(leaf(Expr::Vector(vs), pos))
            }
            Tok::Duration(_) => {
                Err(self.unexpected("(a duration is only allowed in [range] or after offset)"))
            }
            _ => Err(self.unexpected("where an expression was expected")),
        }
    }

    /// What an identifier starts: an aggregation, a function call, `Inf`/`NaN` or a
    /// selector.
    fn ident_primary(&mut self, level: usize) -> Result<Node, ParseError> {
        let pos = self.pos();
        let Tok::Ident(word) = *self.peek() else {
            return Err(self.unexpected("where an expression was expected"));
        };
        if let Some(op) = AggregateOp::from_name(word) {
            return self.aggregate(op, level);
        }
        if *self.peek_at(1) == Tok::LParen && !is_keyword(word) {
            return match Function::from_name(word) {
                Some(f) => self.call(f, level),
                None => Err(unknown_function(word, pos)),
            };
        }
        self.ident_leaf(word, pos)
    }

    /// `Inf`, `NaN` or a selector starting with a metric name.
    #[inline(never)]
    fn ident_leaf(&mut self, word: &'a str, pos: usize) -> Result<Node, ParseError> {
        if word.eq_ignore_ascii_case("inf") {
            self.advance();
            return Ok(leaf(Expr::Number(f64::INFINITY), pos));
        }
        if word.eq_ignore_ascii_case("nan") {
            self.advance();
            return Ok(leaf(Expr::Number(f64::NAN), pos));
        }
        if matches!(
            word.to_ascii_lowercase().as_str(),
            "count_values" | "limitk" | "limit_ratio"
        ) {
            return Err(ParseError::new(
                pos,
                format!("aggregation \"{word}\" is not supported"),
            ));
        }
        if is_keyword(word) {
            return Err(ParseError::new(
                pos,
                format!("unexpected keyword \"{word}\""),
            ));
        }
        self.advance();
        let vs = self.selector(Some(word.to_owned()), pos)?;
        Ok(leaf(Expr::Vector(vs), pos))
    }

    /// Parses the `{...}` part of a selector (if present) and validates the whole selector.
    fn selector(&mut self, name: Option<String>, pos: usize) -> Result<VectorSelector, ParseError> {
        let mut matchers = Vec::new();
        if let Some(n) = &name {
            matchers.push(Matcher {
                label: METRIC_LABEL.to_owned(),
                op: MatchOp::Equal,
                value: n.clone(),
            });
        }
        if *self.peek() == Tok::LBrace {
            self.advance();
            loop {
                if *self.peek() == Tok::RBrace {
                    self.advance();
                    break;
                }
                let label_pos = self.pos();
                let label = match self.peek() {
                    Tok::Ident(l) if is_label_name(l) => (*l).to_owned(),
                    _ => return Err(self.unexpected("in label matching, expected a label name")),
                };
                self.advance();
                let op = match self.peek() {
                    Tok::Assign => MatchOp::Equal,
                    Tok::Neq => MatchOp::NotEqual,
                    Tok::EqlRegex => MatchOp::Regex,
                    Tok::NeqRegex => MatchOp::NotRegex,
                    _ => {
                        return Err(self.unexpected(
                            "in label matching, expected one of \"=\", \"!=\", \"=~\", \"!~\"",
                        ))
                    }
                };
                self.advance();
                let value_pos = self.pos();
                let value = match self.peek() {
                    Tok::Str(s) => s.clone(),
                    _ => return Err(self.unexpected("in label matching, expected a string")),
                };
                self.advance();
                if label == METRIC_LABEL && name.is_some() {
                    return Err(ParseError::new(
                        label_pos,
                        "metric name must not be set twice",
                    ));
                }
                let m = Matcher { label, op, value };
                if matches!(op, MatchOp::Regex | MatchOp::NotRegex) {
                    if let Err(e) = (Selector {
                        matchers: vec![m.clone()],
                    })
                    .compile()
                    {
                        return Err(ParseError::new(
                            value_pos,
                            format!("invalid regular expression: {e}"),
                        ));
                    }
                }
                matchers.push(m);
                match self.peek() {
                    Tok::Comma => self.advance(),
                    Tok::RBrace => {}
                    _ => return Err(self.unexpected("in label matching, expected \",\" or \"}\"")),
                }
            }
        }
        // Like Prometheus: at least one matcher must not match the empty string, so a
        // selector never selects every series.
        let selector = Selector {
            matchers: matchers.clone(),
        };
        let matches_empty = selector
            .compile()
            .map(|c| c.matches(&SeriesKey::default()))
            .unwrap_or(true);
        if matches_empty {
            return Err(ParseError::new(
                pos,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        Ok(VectorSelector {
            name,
            matchers,
            offset_ms: 0,
        })
    }

    /// `( label, ... )` — for `by`, `without`, `on`, `ignoring`. Keywords are fine here.
    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen, "in grouping, expected \"(\"")?;
        let mut labels = Vec::new();
        loop {
            match self.peek() {
                Tok::RParen => {
                    self.advance();
                    return Ok(labels);
                }
                Tok::Ident(l) if is_label_name(l) => {
                    labels.push((*l).to_owned());
                    self.advance();
                }
                _ => return Err(self.unexpected("in grouping, expected a label name")),
            }
            match self.peek() {
                Tok::Comma => self.advance(),
                Tok::RParen => {}
                _ => return Err(self.unexpected("in grouping, expected \",\" or \")\"")),
            }
        }
    }

    fn grouping(&mut self) -> Result<Option<AggregateGrouping>, ParseError> {
        if self.peek_keyword("by") {
            self.advance();
            Ok(Some(AggregateGrouping::By(self.label_list()?)))
        } else if self.peek_keyword("without") {
            self.advance();
            Ok(Some(AggregateGrouping::Without(self.label_list()?)))
        } else {
            Ok(None)
        }
    }

    fn aggregate(&mut self, op: AggregateOp, level: usize) -> Result<Node, ParseError> {
        let pos = self.pos();
        let prefix = self.aggregate_open(op)?;
        let param = if op.has_param() {
            let p = self.expr(0, level + 1)?;
            self.expect(
                Tok::Comma,
                "in aggregation, expected \",\" after the parameter",
            )?;
            Some(p)
        } else {
            None
        };
        let inner = self.expr(0, level + 1)?;
        self.finish_aggregate(op, prefix, param, inner, pos)
    }

    /// The operator keyword, an optional prefix `by`/`without` clause and `(`.
    #[inline(never)]
    fn aggregate_open(&mut self, op: AggregateOp) -> Result<Option<AggregateGrouping>, ParseError> {
        self.advance();
        let prefix = self.grouping()?;
        if *self.peek() != Tok::LParen {
            return Err(self.unexpected(&format!(
                "in aggregation, expected \"(\" after {}",
                op.name()
            )));
        }
        self.advance();
        Ok(prefix)
    }

    /// Type checks, `)` and an optional suffix `by`/`without` clause.
    #[inline(never)]
    fn finish_aggregate(
        &mut self,
        op: AggregateOp,
        prefix: Option<AggregateGrouping>,
        param: Option<Node>,
        inner: Node,
        pos: usize,
    ) -> Result<Node, ParseError> {
        let mut depth = 0;
        if let Some(p) = &param {
            if p.expr.value_type() != ValueType::Scalar {
                return Err(ParseError::new(
                    p.pos,
                    format!(
                        "expected type scalar in aggregation parameter, got {}",
                        p.expr.value_type()
                    ),
                ));
            }
            depth = p.depth;
        }
        if inner.expr.value_type() != ValueType::Vector {
            return Err(ParseError::new(
                inner.pos,
                format!(
                    "expected type instant vector in aggregation expression, got {}",
                    inner.expr.value_type()
                ),
            ));
        }
        self.expect(Tok::RParen, "in aggregation, expected \")\"")?;
        let suffix_pos = self.pos();
        let suffix = self.grouping()?;
        if suffix.is_some() && (self.peek_keyword("by") || self.peek_keyword("without")) {
            return Err(ParseError::new(
                self.pos(),
                "aggregation must have only one by/without clause",
            ));
        }
        let grouping = match (prefix, suffix) {
            (Some(_), Some(_)) => {
                return Err(ParseError::new(
                    suffix_pos,
                    "aggregation must have only one by/without clause",
                ))
            }
            (Some(g), None) | (None, Some(g)) => g,
            (None, None) => AggregateGrouping::None,
        };
        let depth = depth.max(inner.depth) + 1;
        Self::check_depth(depth, pos)?;
        Ok(Node {
            expr: Expr::Aggregate(Aggregate {
                op,
                expr: Box::new(inner.expr),
                param: param.map(|p| Box::new(p.expr)),
                grouping,
            }),
            depth,
            pos,
        })
    }

    fn call(&mut self, func: Function, level: usize) -> Result<Node, ParseError> {
        let pos = self.pos();
        self.advance(); // name
        self.advance(); // (
        let mut args: Vec<Node> = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                args.push(self.expr(0, level + 1)?);
                if *self.peek() == Tok::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
        }
        self.finish_call(func, args, pos)
    }

    /// `)`, argument count and types.
    #[inline(never)]
    fn finish_call(
        &mut self,
        func: Function,
        args: Vec<Node>,
        pos: usize,
    ) -> Result<Node, ParseError> {
        if *self.peek() != Tok::RParen {
            return Err(self.unexpected(&format!(
                "in call to function \"{}\", expected \",\" or \")\"",
                func.name()
            )));
        }
        let close = self.pos();
        self.advance();
        let types = func.arg_types();
        if args.len() < func.min_args() || args.len() > types.len() {
            let expected = if func.min_args() == types.len() {
                types.len().to_string()
            } else {
                format!("{} to {}", func.min_args(), types.len())
            };
            return Err(ParseError::new(
                close,
                format!(
                    "expected {expected} argument(s) in call to \"{}\", got {}",
                    func.name(),
                    args.len()
                ),
            ));
        }
        let mut depth = 0;
        for (arg, want) in args.iter().zip(types) {
            let got = arg.expr.value_type();
            if got != *want {
                return Err(ParseError::new(
                    arg.pos,
                    format!(
                        "expected type {want} in call to function \"{}\", got {got}",
                        func.name()
                    ),
                ));
            }
            depth = depth.max(arg.depth);
        }
        let depth = depth + 1;
        Self::check_depth(depth, pos)?;
        Ok(Node {
            expr: Expr::Call(Call {
                func,
                args: args.into_iter().map(|a| a.expr).collect(),
            }),
            depth,
            pos,
        })
    }
}

#[cold]
#[inline(never)]
fn unknown_function(word: &str, pos: usize) -> ParseError {
    ParseError::new(pos, format!("unknown function with name \"{word}\""))
}

fn leaf(expr: Expr, pos: usize) -> Node {
    Node {
        expr,
        depth: 1,
        pos,
    }
}

/// Type-checks a unary operator and folds `-<number>`.
#[inline(never)]
fn make_unary(neg: bool, operand: Node, pos: usize) -> Result<Node, ParseError> {
    let t = operand.expr.value_type();
    if t != ValueType::Scalar && t != ValueType::Vector {
        return Err(ParseError::new(
            operand.pos,
            format!("unary expression only allowed on expressions of type scalar or instant vector, got {t}"),
        ));
    }
    if !neg {
        return Ok(Node { pos, ..operand });
    }
    let expr = match operand.expr {
        Expr::Number(v) => Expr::Number(-v),
        e => Expr::Neg(Box::new(e)),
    };
    let depth = operand.depth + 1;
    Parser::check_depth(depth, pos)?;
    Ok(Node { expr, depth, pos })
}

#[inline(never)]
fn make_binary(
    op: BinaryOp,
    lhs: Node,
    rhs: Node,
    return_bool: bool,
    mut matching: Option<VectorMatching>,
    op_pos: usize,
) -> Result<Node, ParseError> {
    let lt = lhs.expr.value_type();
    let rt = rhs.expr.value_type();
    for (t, at) in [(lt, lhs.pos), (rt, rhs.pos)] {
        if t != ValueType::Scalar && t != ValueType::Vector {
            return Err(ParseError::new(
                at,
                format!(
                    "binary expression must contain only scalar and instant vector types, got {t}"
                ),
            ));
        }
    }
    let both_vectors = lt == ValueType::Vector && rt == ValueType::Vector;
    if op.is_set() && !both_vectors {
        return Err(ParseError::new(
            op_pos,
            format!(
                "set operator \"{}\" not allowed in binary scalar expression",
                op.symbol()
            ),
        ));
    }
    if op.is_comparison() && lt == ValueType::Scalar && rt == ValueType::Scalar && !return_bool {
        return Err(ParseError::new(
            op_pos,
            "comparisons between scalars must use BOOL modifier",
        ));
    }
    if !both_vectors {
        if matching.as_ref().is_some_and(|m| !m.labels.is_empty()) {
            return Err(ParseError::new(
                op_pos,
                "vector matching only allowed between instant vectors",
            ));
        }
        matching = None;
    }
    Ok(Node {
        expr: Expr::Binary(Binary {
            op,
            lhs: Box::new(lhs.expr),
            rhs: Box::new(rhs.expr),
            return_bool,
            matching,
        }),
        depth: {
            let depth = lhs.depth.max(rhs.depth) + 1;
            Parser::check_depth(depth, op_pos)?;
            depth
        },
        pos: lhs.pos,
    })
}
