//! The syntax tree of a parsed PromQL expression.
//!
//! [`crate::parser::parse`] builds it and checks its types, so every tree it returns is
//! well-typed: function arguments, aggregation operands and binary operands have the types
//! PromQL requires. [`Expr`]'s `Display` prints the tree back as PromQL.

use palisade_tsdb::{MatchOp, Matcher, Selector, METRIC_LABEL};
use std::fmt;

/// The type an expression evaluates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// One number per evaluation step.
    Scalar,
    /// A set of series, one value per series and step.
    Vector,
    /// A set of series, the raw samples of a time window per series and step.
    Matrix,
    /// A string literal.
    String,
}

impl ValueType {
    /// The name PromQL's error messages use.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A PromQL expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number literal (`1`, `1e3`, `0x1f`, `Inf`, `NaN`). A negated literal is folded.
    Number(f64),
    /// A string literal, unescaped.
    String(String),
    /// An instant vector selector: `metric{label="value"} offset 5m`.
    Vector(VectorSelector),
    /// A range vector selector: `metric{label="value"}[5m] offset 1h`.
    Matrix(MatrixSelector),
    /// A function call.
    Call(Call),
    /// An aggregation such as `sum by (job) (x)`.
    Aggregate(Aggregate),
    /// Unary minus. (Unary plus is dropped by the parser.)
    Neg(Box<Expr>),
    /// A binary operation.
    Binary(Binary),
    /// Parentheses.
    Paren(Box<Expr>),
}

impl Expr {
    /// The type the expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number(_) => ValueType::Scalar,
            Expr::String(_) => ValueType::String,
            Expr::Vector(_) => ValueType::Vector,
            Expr::Matrix(_) => ValueType::Matrix,
            Expr::Call(c) => c.func.return_type(),
            Expr::Aggregate(_) => ValueType::Vector,
            Expr::Neg(e) | Expr::Paren(e) => e.value_type(),
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
        }
    }

    /// The expression without any enclosing parentheses.
    pub fn unparen(&self) -> &Expr {
        let mut e = self;
        while let Expr::Paren(inner) = e {
            e = inner;
        }
        e
    }
}

/// An instant vector selector.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSelector {
    /// The metric name, when written before the braces.
    pub name: Option<String>,
    /// All matchers, the metric name's `__name__="..."` first when `name` is set.
    pub matchers: Vec<Matcher>,
    /// The `offset` in milliseconds (negative: into the future). 0 when absent.
    pub offset_ms: i64,
}

impl VectorSelector {
    /// The storage selector (all matchers).
    pub fn selector(&self) -> Selector {
        Selector {
            matchers: self.matchers.clone(),
        }
    }
}

/// A range vector selector: a vector selector and a window length.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSelector {
    /// The selector (its offset applies to the window).
    pub vector: VectorSelector,
    /// The window length in milliseconds (> 0).
    pub range_ms: i64,
}

/// A function call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The function.
    pub func: Function,
    /// The arguments (count and types checked by the parser).
    pub args: Vec<Expr>,
}

/// An aggregation over the series of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    /// The operator.
    pub op: AggregateOp,
    /// The aggregated instant vector.
    pub expr: Box<Expr>,
    /// The scalar parameter of `topk`, `bottomk` and `quantile`.
    pub param: Option<Box<Expr>>,
    /// `by (...)` or `without (...)`.
    pub grouping: AggregateGrouping,
}

/// The grouping clause of an aggregation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AggregateGrouping {
    /// No clause: one group of all series.
    None,
    /// `by (labels)`: group on these labels only.
    By(Vec<String>),
    /// `without (labels)`: group on all labels but these (and the metric name).
    Without(Vec<String>),
}

/// A binary operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Binary {
    /// The operator.
    pub op: BinaryOp,
    /// The left operand.
    pub lhs: Box<Expr>,
    /// The right operand.
    pub rhs: Box<Expr>,
    /// The `bool` modifier of a comparison: answer 0/1 instead of filtering.
    pub return_bool: bool,
    /// `on (...)` / `ignoring (...)` between two vectors.
    pub matching: Option<VectorMatching>,
}

/// Label matching between two instant vectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorMatching {
    /// `on` (true) or `ignoring` (false).
    pub on: bool,
    /// The label names.
    pub labels: Vec<String>,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Gt => ">",
            BinaryOp::Lt => "<",
            BinaryOp::Ge => ">=",
            BinaryOp::Le => "<=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }

    /// Binding strength, Prometheus' order: `or` < `and unless` < comparisons < `+ -` <
    /// `* / %` < `^`.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Gt
            | BinaryOp::Lt
            | BinaryOp::Ge
            | BinaryOp::Le => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 5,
            BinaryOp::Pow => 6,
        }
    }

    /// `==`, `!=`, `>`, `<`, `>=`, `<=`.
    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    /// `and`, `or`, `unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }

    /// `+ - * / % ^` (these drop the metric name).
    pub fn is_arithmetic(self) -> bool {
        !self.is_comparison() && !self.is_set()
    }
}

/// Aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `count`
    Count,
    /// `group` (1 per group)
    Group,
    /// `stddev` (population)
    Stddev,
    /// `stdvar` (population)
    Stdvar,
    /// `topk(k, v)`
    Topk,
    /// `bottomk(k, v)`
    Bottomk,
    /// `quantile(φ, v)`
    Quantile,
}

impl AggregateOp {
    /// Looks an operator up by name (case-insensitive, as PromQL keywords are).
    pub fn from_name(name: &str) -> Option<AggregateOp> {
        let op = match name.to_ascii_lowercase().as_str() {
            "sum" => AggregateOp::Sum,
            "avg" => AggregateOp::Avg,
            "min" => AggregateOp::Min,
            "max" => AggregateOp::Max,
            "count" => AggregateOp::Count,
            "group" => AggregateOp::Group,
            "stddev" => AggregateOp::Stddev,
            "stdvar" => AggregateOp::Stdvar,
            "topk" => AggregateOp::Topk,
            "bottomk" => AggregateOp::Bottomk,
            "quantile" => AggregateOp::Quantile,
            _ => return None,
        };
        Some(op)
    }

    /// The operator's name.
    pub fn name(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Count => "count",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::Quantile => "quantile",
        }
    }

    /// Whether the operator takes a scalar parameter before the vector.
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Quantile
        )
    }
}

/// The supported functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    /// `rate(v range-vector)`
    Rate,
    /// `irate(v range-vector)`
    Irate,
    /// `increase(v range-vector)`
    Increase,
    /// `delta(v range-vector)`
    Delta,
    /// `idelta(v range-vector)`
    Idelta,
    /// `avg_over_time(v range-vector)`
    AvgOverTime,
    /// `sum_over_time(v range-vector)`
    SumOverTime,
    /// `min_over_time(v range-vector)`
    MinOverTime,
    /// `max_over_time(v range-vector)`
    MaxOverTime,
    /// `count_over_time(v range-vector)`
    CountOverTime,
    /// `last_over_time(v range-vector)` (keeps the metric name)
    LastOverTime,
    /// `present_over_time(v range-vector)`
    PresentOverTime,
    /// `stddev_over_time(v range-vector)`
    StddevOverTime,
    /// `stdvar_over_time(v range-vector)`
    StdvarOverTime,
    /// `changes(v range-vector)`
    Changes,
    /// `resets(v range-vector)`
    Resets,
    /// `abs(v)`
    Abs,
    /// `ceil(v)`
    Ceil,
    /// `floor(v)`
    Floor,
    /// `round(v, to_nearest=1)`
    Round,
    /// `sqrt(v)`
    Sqrt,
    /// `exp(v)`
    Exp,
    /// `ln(v)`
    Ln,
    /// `log2(v)`
    Log2,
    /// `log10(v)`
    Log10,
    /// `sgn(v)`
    Sgn,
    /// `clamp(v, min, max)`
    Clamp,
    /// `clamp_min(v, min)`
    ClampMin,
    /// `clamp_max(v, max)`
    ClampMax,
    /// `time()`
    Time,
    /// `vector(s scalar)`
    Vector,
    /// `scalar(v instant-vector)`
    Scalar,
    /// `sort(v)` (by value, ascending; instant queries)
    Sort,
    /// `sort_desc(v)`
    SortDesc,
}

const ALL_FUNCTIONS: &[Function] = &[
    Function::Rate,
    Function::Irate,
    Function::Increase,
    Function::Delta,
    Function::Idelta,
    Function::AvgOverTime,
    Function::SumOverTime,
    Function::MinOverTime,
    Function::MaxOverTime,
    Function::CountOverTime,
    Function::LastOverTime,
    Function::PresentOverTime,
    Function::StddevOverTime,
    Function::StdvarOverTime,
    Function::Changes,
    Function::Resets,
    Function::Abs,
    Function::Ceil,
    Function::Floor,
    Function::Round,
    Function::Sqrt,
    Function::Exp,
    Function::Ln,
    Function::Log2,
    Function::Log10,
    Function::Sgn,
    Function::Clamp,
    Function::ClampMin,
    Function::ClampMax,
    Function::Time,
    Function::Vector,
    Function::Scalar,
    Function::Sort,
    Function::SortDesc,
];

impl Function {
    /// Every supported function.
    pub fn all() -> &'static [Function] {
        ALL_FUNCTIONS
    }

    /// Looks a function up by name (case-sensitive, as in PromQL).
    pub fn from_name(name: &str) -> Option<Function> {
        ALL_FUNCTIONS.iter().copied().find(|f| f.name() == name)
    }

    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            Function::Rate => "rate",
            Function::Irate => "irate",
            Function::Increase => "increase",
            Function::Delta => "delta",
            Function::Idelta => "idelta",
            Function::AvgOverTime => "avg_over_time",
            Function::SumOverTime => "sum_over_time",
            Function::MinOverTime => "min_over_time",
            Function::MaxOverTime => "max_over_time",
            Function::CountOverTime => "count_over_time",
            Function::LastOverTime => "last_over_time",
            Function::PresentOverTime => "present_over_time",
            Function::StddevOverTime => "stddev_over_time",
            Function::StdvarOverTime => "stdvar_over_time",
            Function::Changes => "changes",
            Function::Resets => "resets",
            Function::Abs => "abs",
            Function::Ceil => "ceil",
            Function::Floor => "floor",
            Function::Round => "round",
            Function::Sqrt => "sqrt",
            Function::Exp => "exp",
            Function::Ln => "ln",
            Function::Log2 => "log2",
            Function::Log10 => "log10",
            Function::Sgn => "sgn",
            Function::Clamp => "clamp",
            Function::ClampMin => "clamp_min",
            Function::ClampMax => "clamp_max",
            Function::Time => "time",
            Function::Vector => "vector",
            Function::Scalar => "scalar",
            Function::Sort => "sort",
            Function::SortDesc => "sort_desc",
        }
    }

    /// The argument types; the first [`Function::min_args`] are required.
    pub fn arg_types(self) -> &'static [ValueType] {
        use ValueType::{Matrix, Scalar, Vector};
        match self {
            Function::Rate
            | Function::Irate
            | Function::Increase
            | Function::Delta
            | Function::Idelta
            | Function::AvgOverTime
            | Function::SumOverTime
            | Function::MinOverTime
            | Function::MaxOverTime
            | Function::CountOverTime
            | Function::LastOverTime
            | Function::PresentOverTime
            | Function::StddevOverTime
            | Function::StdvarOverTime
            | Function::Changes
            | Function::Resets => &[Matrix],
            Function::Abs
            | Function::Ceil
            | Function::Floor
            | Function::Sqrt
            | Function::Exp
            | Function::Ln
            | Function::Log2
            | Function::Log10
            | Function::Sgn
            | Function::Scalar
            | Function::Sort
            | Function::SortDesc => &[Vector],
            Function::Round | Function::ClampMin | Function::ClampMax => &[Vector, Scalar],
            Function::Clamp => &[Vector, Scalar, Scalar],
            Function::Time => &[],
            Function::Vector => &[Scalar],
        }
    }

    /// How many arguments are required.
    pub fn min_args(self) -> usize {
        match self {
            Function::Round => 1,
            f => f.arg_types().len(),
        }
    }

    /// The type of the result.
    pub fn return_type(self) -> ValueType {
        match self {
            Function::Time | Function::Scalar => ValueType::Scalar,
            _ => ValueType::Vector,
        }
    }

    /// Whether the function takes a range vector (and reduces each window to a value).
    pub fn takes_range(self) -> bool {
        self.arg_types().first() == Some(&ValueType::Matrix)
    }
}

// ---- printing ----

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\x{:02x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Formats milliseconds as a PromQL duration (`1h30m`, `500ms`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    for (unit, len) in [
        ("y", 365 * 86_400_000u64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        let n = rest / len;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            rest -= n * len;
        }
    }
    out
}

fn write_labels(f: &mut fmt::Formatter<'_>, labels: &[String]) -> fmt::Result {
    f.write_str("(")?;
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(l)?;
    }
    f.write_str(")")
}

fn write_number(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    if v.is_nan() {
        f.write_str("NaN")
    } else if v == f64::INFINITY {
        f.write_str("Inf")
    } else if v == f64::NEG_INFINITY {
        f.write_str("-Inf")
    } else {
        write!(f, "{v}")
    }
}

impl fmt::Display for VectorSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest: Vec<&Matcher> = Vec::with_capacity(self.matchers.len());
        for m in &self.matchers {
            let is_name = self
                .name
                .as_deref()
                .is_some_and(|n| m.label == METRIC_LABEL && m.op == MatchOp::Equal && m.value == n);
            if !is_name {
                rest.push(m);
            }
        }
        if let Some(name) = &self.name {
            f.write_str(name)?;
        }
        if !rest.is_empty() || self.name.is_none() {
            f.write_str("{")?;
            for (i, m) in rest.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                let op = match m.op {
                    MatchOp::Equal => "=",
                    MatchOp::NotEqual => "!=",
                    MatchOp::Regex => "=~",
                    MatchOp::NotRegex => "!~",
                };
                write!(f, "{}{op}", m.label)?;
                write_string(f, &m.value)?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

fn write_offset(f: &mut fmt::Formatter<'_>, offset_ms: i64) -> fmt::Result {
    if offset_ms != 0 {
        write!(f, " offset {}", format_duration(offset_ms))?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(v) => write_number(f, *v),
            Expr::String(s) => write_string(f, s),
            Expr::Vector(vs) => {
                write!(f, "{vs}")?;
                write_offset(f, vs.offset_ms)
            }
            Expr::Matrix(ms) => {
                write!(f, "{}[{}]", ms.vector, format_duration(ms.range_ms))?;
                write_offset(f, ms.vector.offset_ms)
            }
            Expr::Call(c) => {
                write!(f, "{}(", c.func.name())?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Expr::Aggregate(a) => {
                f.write_str(a.op.name())?;
                match &a.grouping {
                    AggregateGrouping::None => {}
                    AggregateGrouping::By(l) => {
                        f.write_str(" by ")?;
                        write_labels(f, l)?;
                        f.write_str(" ")?;
                    }
                    AggregateGrouping::Without(l) => {
                        f.write_str(" without ")?;
                        write_labels(f, l)?;
                        f.write_str(" ")?;
                    }
                }
                f.write_str("(")?;
                if let Some(p) = &a.param {
                    write!(f, "{p}, ")?;
                }
                write!(f, "{})", a.expr)
            }
            Expr::Neg(e) => write!(f, "-{e}"),
            Expr::Binary(b) => {
                write!(f, "{} {}", b.lhs, b.op.symbol())?;
                if b.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(m) = &b.matching {
                    f.write_str(if m.on { " on" } else { " ignoring" })?;
                    write_labels(f, &m.labels)?;
                }
                write!(f, " {}", b.rhs)
            }
            Expr::Paren(e) => write!(f, "({e})"),
        }
    }
}
