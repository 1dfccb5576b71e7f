#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade_promql::ast::{AggregateGrouping, AggregateOp, Expr, Function, ValueType};
use palisade_promql::parser::{parse, parse_selector, MAX_DEPTH, MAX_QUERY_LEN};
use palisade_tsdb::MatchOp;

/// A fully parenthesised prefix form, to check structure and precedence.
fn sx(e: &Expr) -> String {
    match e {
        Expr::Number(v) => format!("{v}"),
        Expr::String(s) => format!("{s:?}"),
        Expr::Vector(vs) => vs.name.clone().unwrap_or_else(|| "{..}".into()),
        Expr::Matrix(ms) => format!(
            "{}[{}]",
            ms.vector.name.clone().unwrap_or_default(),
            ms.range_ms
        ),
        Expr::Call(c) => format!(
            "{}({})",
            c.func.name(),
            c.args.iter().map(sx).collect::<Vec<_>>().join(" ")
        ),
        Expr::Aggregate(a) => {
            let g = match &a.grouping {
                AggregateGrouping::None => String::new(),
                AggregateGrouping::By(l) => format!(" by {}", l.join(",")),
                AggregateGrouping::Without(l) => format!(" without {}", l.join(",")),
            };
            let p = a
                .param
                .as_ref()
                .map(|p| format!("{} ", sx(p)))
                .unwrap_or_default();
            format!("({}{g} {p}{})", a.op.name(), sx(&a.expr))
        }
        Expr::Neg(e) => format!("(- {})", sx(e)),
        Expr::Paren(e) => sx(e),
        Expr::Binary(b) => {
            let m = match &b.matching {
                Some(m) => format!(
                    "{}({})",
                    if m.on { "on" } else { "ignoring" },
                    m.labels.join(",")
                ),
                None => String::new(),
            };
            format!(
                "({}{}{m} {} {})",
                b.op.symbol(),
                if b.return_bool { "bool" } else { "" },
                sx(&b.lhs),
                sx(&b.rhs)
            )
        }
    }
}

fn p(q: &str) -> String {
    sx(&parse(q).unwrap_or_else(|e| panic!("{q}: {e}")))
}

#[test]
fn precedence_and_associativity() {
    let cases = [
        ("1 + 2 * 3", "(+ 1 (* 2 3))"),
        ("1 * 2 + 3", "(+ (* 1 2) 3)"),
        ("(1 + 2) * 3", "(* (+ 1 2) 3)"),
        ("a - b - c", "(- (- a b) c)"),
        ("a / b * c % d", "(% (* (/ a b) c) d)"),
        ("2 ^ 3 ^ 2", "(^ 2 (^ 3 2))"),
        ("-2 ^ 2", "(- (^ 2 2))"),
        ("-a * b", "(* (- a) b)"),
        ("-a + b", "(+ (- a) b)"),
        ("2 * -x", "(* 2 (- x))"),
        ("1 - -1", "(- 1 -1)"),
        ("2 ^ -1", "(^ 2 -1)"),
        ("+a", "a"),
        ("- - a", "(- (- a))"),
        ("a > b + 1", "(> a (+ b 1))"),
        ("a + 1 > b * 2", "(> (+ a 1) (* b 2))"),
        ("a or b and c", "(or a (and b c))"),
        ("a and b or c", "(or (and a b) c)"),
        ("a and b unless c", "(unless (and a b) c)"),
        ("a or b or c", "(or (or a b) c)"),
        ("a == b or c > d", "(or (== a b) (> c d))"),
        ("a > bool b", "(>bool a b)"),
        ("1 < bool 2", "(<bool 1 2)"),
        ("a + on(x, y) b * c", "(+on(x,y) a (* b c))"),
        ("a / ignoring(dc) b", "(/ignoring(dc) a b)"),
        ("a > bool on() b", "(>boolon() a b)"),
        ("a AND b", "(and a b)"),
        ("sum(a) + sum(b) * 2", "(+ (sum a) (* (sum b) 2))"),
        ("rate(x[5m]) * 60", "(* rate(x[300000]) 60)"),
        ("x offset 5m * 2", "(* x 2)"),
    ];
    for (q, want) in cases {
        assert_eq!(p(q), want, "{q}");
    }
}

#[test]
fn accepted_expressions() {
    let ok = [
        "1",
        "1.5",
        ".5",
        "5.",
        "1e3",
        "1E-3",
        "0x1F",
        "Inf",
        "-Inf",
        "+Inf",
        "NaN",
        "nan",
        "inf",
        "\"str\"",
        "'str'",
        "`raw\\d`",
        "up",
        "job:rate:5m",
        "up{}",
        "up{job=\"a\"}",
        "up{job=\"a\",}",
        "up{job='a', instance!=\"b\", dc=~\"x|y\", env!~`prod.*`}",
        "{__name__=\"up\"}",
        "{__name__=~\"up|down\"}",
        "{job=~\".+\"}",
        "{job!=\"\"}",
        "{a=\"\", b=\"x\"}",
        "up{by=\"x\", on=\"y\", offset=\"z\"}",
        "x[5m]",
        "x[1h30m]",
        "x[100ms]",
        "x[1y]",
        "x offset 5m",
        "x offset -5m",
        "x[5m] offset 1w",
        "x{a=\"b\"}[5m] offset 1h",
        "rate(x[5m])",
        "irate(x[1m])",
        "increase(x[1h])",
        "delta(x[5m])",
        "idelta(x[5m])",
        "avg_over_time(x[5m])",
        "sum_over_time(x[5m])",
        "min_over_time(x[5m])",
        "max_over_time(x[5m])",
        "count_over_time(x[5m])",
        "last_over_time(x[5m])",
        "present_over_time(x[5m])",
        "stddev_over_time(x[5m])",
        "stdvar_over_time(x[5m])",
        "changes(x[5m])",
        "resets(x[5m])",
        "rate((x[5m]))",
        "abs(x)",
        "ceil(x)",
        "floor(x)",
        "round(x)",
        "round(x, 0.5)",
        "sqrt(x)",
        "exp(x)",
        "ln(x)",
        "log2(x)",
        "log10(x)",
        "sgn(x)",
        "clamp(x, 0, 1)",
        "clamp_min(x, 0)",
        "clamp_max(x, 100)",
        "time()",
        "vector(1)",
        "vector(time())",
        "scalar(x)",
        "sort(x)",
        "sort_desc(x)",
        "sum(x)",
        "SUM(x)",
        "sum by (a) (x)",
        "sum(x) by (a)",
        "sum without (a, b) (x)",
        "sum(x) without (a,)",
        "sum by () (x)",
        "avg(x)",
        "min(x)",
        "max(x)",
        "count(x)",
        "group(x)",
        "stddev(x)",
        "stdvar(x)",
        "topk(5, x)",
        "bottomk(2, x) by (a)",
        "quantile(0.9, x)",
        "quantile by (a) (scalar(y), x)",
        "sum by (on, by, bool) (x)",
        "sum(rate(x[5m])) by (job) / on(job) sum(rate(y[5m])) by (job)",
        "x > 5",
        "5 < x",
        "x == bool 1",
        "1 == bool 1",
        "x and y",
        "x or on(a) y",
        "x unless ignoring(b) y",
        "((x))",
        "-x",
        "-(x + 1)",
        "- 1",
        "x # a comment\n + 1",
        "rate(x[5m]) # trailing comment",
        "time() - 60",
        "sum(x) > bool 1",
    ];
    for q in ok {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        // Printing and re-parsing is stable.
        let printed = e.to_string();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{q} -> {printed}: {e}"));
        assert_eq!(again.to_string(), printed, "{q}");
    }
}

#[test]
fn literal_values() {
    let num = |q: &str| match parse(q).unwrap() {
        Expr::Number(v) => v,
        e => panic!("{q}: {e:?}"),
    };
    assert_eq!(num("1e3"), 1000.0);
    assert_eq!(num("0x1F"), 31.0);
    assert_eq!(num("-Inf"), f64::NEG_INFINITY);
    assert_eq!(num("+Inf"), f64::INFINITY);
    assert!(num("NaN").is_nan());
    assert_eq!(num("-.5"), -0.5);
    let s = |q: &str| match parse(q).unwrap() {
        Expr::String(s) => s,
        e => panic!("{q}: {e:?}"),
    };
    assert_eq!(s(r#""a\"b\\c\n""#), "a\"b\\c\n");
    assert_eq!(s(r"'it\'s'"), "it's");
    assert_eq!(s(r"`a\nb`"), "a\\nb");
    assert_eq!(s(r#""\u00e9\x41""#), "éA");
}

#[test]
fn selectors_ranges_and_offsets() {
    let Expr::Matrix(ms) = parse("x{a=\"b\", c=~\"d.*\"}[1h30m] offset -1m").unwrap() else {
        panic!()
    };
    assert_eq!(ms.range_ms, 5_400_000);
    assert_eq!(ms.vector.offset_ms, -60_000);
    assert_eq!(ms.vector.name.as_deref(), Some("x"));
    assert_eq!(ms.vector.matchers.len(), 3);
    assert_eq!(ms.vector.matchers[0].label, "__name__");
    assert_eq!(ms.vector.matchers[2].op, MatchOp::Regex);
    let vs = parse_selector("{__name__=~\"a|b\", job!~\"x\"}").unwrap();
    assert_eq!(vs.name, None);
    assert_eq!(vs.matchers[1].op, MatchOp::NotRegex);
    assert!(parse_selector("rate(x[5m])").is_err());
    assert!(parse_selector("x offset 5m").is_err());
    assert!(parse_selector("{}").is_err());
}

#[test]
fn aggregation_forms_are_equivalent() {
    assert_eq!(
        parse("sum by (a) (x)").unwrap(),
        parse("sum(x) by (a)").unwrap()
    );
    assert_eq!(
        parse("topk without (a) (3, x)").unwrap(),
        parse("topk(3, x) without (a)").unwrap()
    );
    let Expr::Aggregate(a) = parse("count without (b, c) (x)").unwrap() else {
        panic!()
    };
    assert_eq!(a.op, AggregateOp::Count);
    assert_eq!(
        a.grouping,
        AggregateGrouping::Without(vec!["b".into(), "c".into()])
    );
}

#[test]
fn types() {
    assert_eq!(parse("1 + 1").unwrap().value_type(), ValueType::Scalar);
    assert_eq!(parse("x + 1").unwrap().value_type(), ValueType::Vector);
    assert_eq!(parse("x[5m]").unwrap().value_type(), ValueType::Matrix);
    assert_eq!(parse("scalar(x)").unwrap().value_type(), ValueType::Scalar);
    assert_eq!(parse("\"s\"").unwrap().value_type(), ValueType::String);
    assert_eq!(parse("(time())").unwrap().value_type(), ValueType::Scalar);
    assert!(Function::all().len() >= 30);
    for f in Function::all() {
        assert_eq!(Function::from_name(f.name()), Some(*f));
    }
}

/// (query, expected byte position, expected message fragment)
#[test]
fn rejected_expressions() {
    let bad: &[(&str, usize, &str)] = &[
        ("", 0, "unexpected end of input"),
        ("1 +", 3, "unexpected end of input"),
        ("foo bar", 4, "after the expression"),
        ("(1", 2, "expected \")\""),
        ("1)", 1, "after the expression"),
        ("x{", 2, "expected a label name"),
        ("x{a=\"b\"", 7, "expected \",\" or \"}\""),
        ("x{a=b}", 4, "expected a string"),
        ("x{a==\"b\"}", 3, "expected one of"),
        ("x{1a=\"b\"}", 2, "bad number"),
        ("x{a:b=\"c\"}", 2, "expected a label name"),
        ("{}", 0, "at least one non-empty matcher"),
        ("{a=\"\"}", 0, "at least one non-empty matcher"),
        ("{a=~\".*\"}", 0, "at least one non-empty matcher"),
        ("x{a=~\"(\"}", 5, "invalid regular expression"),
        ("x{__name__=\"y\"}", 2, "set twice"),
        ("x[5]", 2, "expected a duration"),
        ("x[0s]", 2, "greater than 0"),
        ("x[5m", 4, "expected \"]\""),
        ("x[5m:1m]", 4, "subqueries are not supported"),
        ("rate(x[5m])[5m:]", 11, "subqueries are not supported"),
        ("(x)[5m]", 3, "ranges only allowed for vector selectors"),
        ("x offset 5m[5m]", 11, "range must come before the offset"),
        ("x offset 5m offset 1m", 12, "multiple times"),
        ("x offset", 8, "expected a duration"),
        ("(x) offset 5m", 4, "offset modifier must be preceded"),
        ("x @ 100", 2, "@ modifier is not supported"),
        ("5m", 0, "duration"),
        ("1e", 0, "bad number"),
        ("1.2.3", 0, "bad number"),
        ("\"abc", 0, "unterminated"),
        ("'a\nb'", 0, "unterminated"),
        ("`abc", 0, "unterminated raw string"),
        ("\"\\q\"", 1, "invalid escape"),
        ("a ! b", 2, "after \"!\""),
        ("a $ b", 2, "unexpected character"),
        ("foo(x)", 0, "unknown function with name \"foo\""),
        ("Rate(x[5m])", 0, "unknown function"),
        (
            "rate(x)",
            5,
            "expected type range vector in call to function \"rate\", got instant vector",
        ),
        ("sum(rate(x))", 9, "expected type range vector"),
        ("abs(x[5m])", 4, "expected type instant vector"),
        ("rate(x[5m], 1)", 13, "expected 1 argument(s)"),
        ("round(x, 1, 2)", 13, "expected 1 to 2 argument(s)"),
        ("time(1)", 6, "expected 0 argument(s)"),
        ("rate(", 5, "unexpected end of input"),
        ("rate(x[5m]", 10, "expected \",\" or \")\""),
        ("clamp_min(x, y)", 13, "expected type scalar"),
        (
            "sum(x[5m])",
            4,
            "expected type instant vector in aggregation expression, got range vector",
        ),
        ("sum(1)", 4, "expected type instant vector in aggregation"),
        ("sum x", 4, "expected \"(\" after sum"),
        ("topk(x)", 6, "expected \",\" after the parameter"),
        (
            "topk(x, y)",
            5,
            "expected type scalar in aggregation parameter",
        ),
        ("sum by (a) (x) by (b)", 15, "only one by/without"),
        ("sum(x) by (a) without (b)", 14, "only one by/without"),
        ("sum by (\"a\") (x)", 8, "expected a label name"),
        ("sum by a (x)", 7, "expected \"(\""),
        ("count_values(\"v\", x)", 0, "not supported"),
        (
            "1 > 2",
            2,
            "comparisons between scalars must use BOOL modifier",
        ),
        ("1 and 2", 2, "set operator \"and\" not allowed"),
        ("x and 1", 2, "set operator"),
        (
            "x + on(a) 1",
            2,
            "vector matching only allowed between instant vectors",
        ),
        (
            "x + bool 1",
            4,
            "bool modifier can only be used on comparison operators",
        ),
        ("x * on(a) group_left(b) y", 10, "group_left/group_right"),
        ("x * group_right y", 4, "group_left/group_right"),
        (
            "\"a\" + 1",
            0,
            "binary expression must contain only scalar and instant vector",
        ),
        ("x[5m] + 1", 0, "binary expression must contain only"),
        ("-\"a\"", 1, "unary expression only allowed"),
        ("-x[5m]", 1, "unary expression only allowed"),
        ("by", 0, "unexpected keyword"),
        ("x + offset", 4, "unexpected keyword"),
        ("x atan2 y", 2, "after the expression"),
        ("x{a=\"b\"} {c=\"d\"}", 9, "after the expression"),
    ];
    for (q, pos, msg) in bad {
        match parse(q) {
            Ok(e) => panic!("{q:?} parsed as {e}"),
            Err(e) => {
                assert!(
                    e.message.contains(msg),
                    "{q:?}: message {:?} lacks {msg:?}",
                    e.message
                );
                assert_eq!(e.pos, *pos, "{q:?}: {e}");
                assert!(e.to_string().contains(&format!("position {pos}")));
            }
        }
    }
}

#[test]
fn nesting_and_length_limits() {
    let nested = |n: usize| format!("{}x{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nested(MAX_DEPTH - 2)).is_ok());
    let e = parse(&nested(MAX_DEPTH + 5)).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{e}");
    // Deep input near the length limit fails cleanly instead of overflowing the stack.
    for unit in [
        "(",
        "-",
        "sum(",
        "abs(",
        "1^",
        "x+",
        "x and ",
        "-(",
        "{a=\"b\"}+",
    ] {
        let q = unit.repeat((MAX_QUERY_LEN - 10) / unit.len());
        assert!(parse(&q).is_err(), "{unit}");
    }
    let chain = |n: usize| vec!["x"; n].join(" + ");
    assert!(parse(&chain(MAX_DEPTH - 1)).is_ok());
    assert!(parse(&chain(MAX_DEPTH + 1)).is_err());
    let big = format!("x{{a=\"{}\"}}", "a".repeat(MAX_QUERY_LEN));
    let e = parse(&big).unwrap_err();
    assert_eq!(e.pos, 0);
    assert!(e.message.contains("too long"));
}

#[test]
fn parses_in_a_small_stack() {
    // The parser must not need a large stack for the deepest accepted input.
    let q = format!(
        "{}x{}",
        "sum(abs(".repeat(MAX_DEPTH / 2 - 1),
        "))".repeat(MAX_DEPTH / 2 - 1)
    );
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            parse(&q).unwrap();
            let deep = "(".repeat(60_000);
            assert!(parse(&deep).is_err());
        })
        .unwrap();
    handle.join().unwrap();
}
