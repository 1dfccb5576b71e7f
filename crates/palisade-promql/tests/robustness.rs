#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Deterministic fuzzing: 20,000 random and mutated inputs never make the parser panic;
//! whatever parses prints back to PromQL that parses to the same text, and evaluates
//! without panicking.

mod common;

use common::{key, MemStore};
use palisade_promql::{eval, parse};

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
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const SEEDS: &[&str] = &[
    "sum by (device) (rate(http_requests_total{code=~\"5..\", job!=\"x\"}[5m]))",
    "rate(x[5m]) / on(a) irate(y[1m] offset 1h) > bool 0.5",
    "topk(3, avg_over_time(cpu{host=~'web-.*'}[10m])) or vector(1)",
    "-2 ^ 3 ^ -1 * (4 + time()) % 7",
    "clamp(round(x, 0.5), -Inf, NaN) unless ignoring(b) count without (a) (y)",
    "quantile(0.9, increase(c[1h30m])) and scalar(z) < bool 1e3",
    "{__name__=~\"a|b\", c=\"\\\"q\\\"\\n\"} offset -5m",
    "max(x) by (a, b,) - min without () (x)",
    "sort_desc(sum(x)) + 0x1F - .5",
    "`raw` ",
];

const TOKENS: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "@",
    "=",
    "==",
    "!=",
    "=~",
    "!~",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    " ",
    "\n",
    "#",
    "\"",
    "'",
    "`",
    "\\",
    "x",
    "y",
    "sum",
    "by",
    "without",
    "on",
    "ignoring",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "rate",
    "topk",
    "vector",
    "time",
    "5m",
    "1h30m",
    "0s",
    "1e3",
    "0x",
    "Inf",
    "NaN",
    "1",
    "0.5",
    "__name__",
    "group_left",
    "é",
    "\u{0}",
    "{a=\"b\"}",
    "[5m]",
    "[5m:1m]",
    "(x)",
    "-",
    "99999999999999999999y",
];

fn mutate(rng: &mut XorShift, input: &str) -> String {
    let mut s: Vec<char> = input.chars().collect();
    let rounds = if rng.below(2) == 0 {
        1
    } else {
        1 + rng.below(4)
    };
    for _ in 0..rounds {
        let at = rng.below(s.len() + 1);
        match rng.below(6) {
            0 => {
                let tok = rng.pick(TOKENS);
                s.splice(at..at, tok.chars());
            }
            1 if !s.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(s.len());
                s.drain(at.min(end)..end);
            }
            2 if !s.is_empty() => {
                let i = rng.below(s.len());
                s[i] = char::from_u32(rng.below(0x80) as u32).unwrap_or('?');
            }
            3 if s.len() > 2 => {
                let (a, b) = (rng.below(s.len()), rng.below(s.len()));
                s.swap(a, b);
            }
            4 => {
                let end = (at + rng.below(12)).min(s.len());
                let dup: Vec<char> = s[at.min(end)..end].to_vec();
                s.splice(at..at, dup);
            }
            _ => {
                let tok = rng.pick(TOKENS);
                s.extend(tok.chars());
            }
        }
    }
    s.into_iter().collect()
}

fn random_tokens(rng: &mut XorShift) -> String {
    (0..rng.below(24)).map(|_| rng.pick(TOKENS)).collect()
}

#[tokio::test]
async fn twenty_thousand_inputs_never_panic() {
    let store = MemStore::new();
    for (i, host) in ["a", "b"].iter().enumerate() {
        let samples: Vec<(i64, f64)> = (0..20)
            .map(|j| (j * 15_000, (j * (i as i64 + 1)) as f64))
            .collect();
        store.add(key("x", &[("a", host), ("b", "1")]), &samples);
        store.add(key("y", &[("a", host)]), &samples);
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut evaluated) = (0usize, 0usize);
    for n in 0..20_000 {
        let input = match n % 4 {
            0 => random_tokens(&mut rng),
            _ => {
                let seed = rng.pick(SEEDS);
                mutate(&mut rng, seed)
            }
        };
        let Ok(expr) = parse(&input) else {
            continue;
        };
        accepted += 1;
        let printed = expr.to_string();
        let reparsed = parse(&printed).unwrap_or_else(|e| panic!("{input:?} -> {printed:?}: {e}"));
        assert_eq!(reparsed.to_string(), printed, "{input:?}");
        if eval::instant(&store, &expr, 200_000).await.is_ok() {
            evaluated += 1;
        }
        let _ = eval::range(&store, &expr, 0, 300_000, 30_000).await;
    }
    eprintln!("{accepted} of 20000 inputs parsed, {evaluated} evaluated");
    // The corpus is useful: a fair share of inputs parse and evaluate.
    assert!(accepted > 1_500, "only {accepted} inputs parsed");
    assert!(evaluated > 1_000, "only {evaluated} inputs evaluated");
}
