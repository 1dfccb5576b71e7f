//! The PromQL lexer: input text to tokens with byte positions.

use super::ParseError;

/// A token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok<'a> {
    /// An identifier (metric name, label name, keyword or function name).
    Ident(&'a str),
    /// A number literal.
    Number(f64),
    /// A duration literal, in milliseconds.
    Duration(i64),
    /// A string literal, unescaped.
    Str(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    /// `=`
    Assign,
    /// `==`
    EqlC,
    /// `!=`
    Neq,
    /// `=~`
    EqlRegex,
    /// `!~`
    NeqRegex,
    Lss,
    Lte,
    Gtr,
    Gte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eof,
}

impl Tok<'_> {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier \"{s}\""),
            Tok::Number(_) => "number".into(),
            Tok::Duration(_) => "duration".into(),
            Tok::Str(_) => "string".into(),
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::LBrace => "\"{\"".into(),
            Tok::RBrace => "\"}\"".into(),
            Tok::LBracket => "\"[\"".into(),
            Tok::RBracket => "\"]\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Colon => "\":\"".into(),
            Tok::At => "\"@\"".into(),
            Tok::Assign => "\"=\"".into(),
            Tok::EqlC => "\"==\"".into(),
            Tok::Neq => "\"!=\"".into(),
            Tok::EqlRegex => "\"=~\"".into(),
            Tok::NeqRegex => "\"!~\"".into(),
            Tok::Lss => "\"<\"".into(),
            Tok::Lte => "\"<=\"".into(),
            Tok::Gtr => "\">\"".into(),
            Tok::Gte => "\">=\"".into(),
            Tok::Add => "\"+\"".into(),
            Tok::Sub => "\"-\"".into(),
            Tok::Mul => "\"*\"".into(),
            Tok::Div => "\"/\"".into(),
            Tok::Mod => "\"%\"".into(),
            Tok::Pow => "\"^\"".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token<'a> {
    pub(crate) tok: Tok<'a>,
    pub(crate) pos: usize,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Splits the input into tokens (the last one is [`Tok::Eof`]).
pub(crate) fn lex(input: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Inside `[...]` a colon is the subquery separator, not part of an identifier.
    let mut in_brackets = false;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'{' => {
                i += 1;
                Tok::LBrace
            }
            b'}' => {
                i += 1;
                Tok::RBrace
            }
            b'[' => {
                i += 1;
                in_brackets = true;
                Tok::LBracket
            }
            b']' => {
                i += 1;
                in_brackets = false;
                Tok::RBracket
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'@' => {
                i += 1;
                Tok::At
            }
            b':' if in_brackets => {
                i += 1;
                Tok::Colon
            }
            b'+' => {
                i += 1;
                Tok::Add
            }
            b'-' => {
                i += 1;
                Tok::Sub
            }
            b'*' => {
                i += 1;
                Tok::Mul
            }
            b'/' => {
                i += 1;
                Tok::Div
            }
            b'%' => {
                i += 1;
                Tok::Mod
            }
            b'^' => {
                i += 1;
                Tok::Pow
            }
            b'=' => match bytes.get(i + 1) {
                Some(b'=') => {
                    i += 2;
                    Tok::EqlC
                }
                Some(b'~') => {
                    i += 2;
                    Tok::EqlRegex
                }
                _ => {
                    i += 1;
                    Tok::Assign
                }
            },
            b'!' => match bytes.get(i + 1) {
                Some(b'=') => {
                    i += 2;
                    Tok::Neq
                }
                Some(b'~') => {
                    i += 2;
                    Tok::NeqRegex
                }
                _ => return Err(ParseError::new(i, "unexpected character after \"!\"")),
            },
            b'<' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Lte
                } else {
                    i += 1;
                    Tok::Lss
                }
            }
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Gte
                } else {
                    i += 1;
                    Tok::Gtr
                }
            }
            b'"' | b'\'' => {
                let (s, end) = lex_quoted(input, i)?;
                i = end;
                Tok::Str(s)
            }
            b'`' => {
                let rest = input.get(i + 1..).unwrap_or("");
                match rest.find('`') {
                    Some(len) => {
                        let s = rest.get(..len).unwrap_or("").to_owned();
                        i += len + 2;
                        Tok::Str(s)
                    }
                    None => return Err(ParseError::new(i, "unterminated raw string")),
                }
            }
            c if c.is_ascii_digit()
                || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let (tok, end) = lex_number_or_duration(input, i)?;
                i = end;
                tok
            }
            c if is_ident_start(c) => {
                while i < bytes.len() && is_ident_char(bytes[i]) {
                    i += 1;
                }
                Tok::Ident(input.get(start..i).unwrap_or(""))
            }
            _ => {
                let ch = input.get(i..).and_then(|s| s.chars().next()).unwrap_or('?');
                return Err(ParseError::new(i, format!("unexpected character {ch:?}")));
            }
        };
        out.push(Token { tok, pos: start });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: input.len(),
    });
    Ok(out)
}

/// Lexes a number (`1`, `1.5`, `.5`, `1e3`, `0x1f`) or a duration (`5m`, `1h30m`) at `start`.
fn lex_number_or_duration(input: &str, start: usize) -> Result<(Tok<'static>, usize), ParseError> {
    let bytes = input.as_bytes();
    let mut i = start;
    let hex = bytes.get(i) == Some(&b'0')
        && matches!(bytes.get(i + 1), Some(b'x') | Some(b'X'))
        && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    while i < bytes.len() {
        let c = bytes[i];
        let exponent_sign = (c == b'+' || c == b'-')
            && !hex
            && i > start
            && matches!(bytes[i - 1], b'e' | b'E')
            && bytes[start..i - 1]
                .iter()
                .all(|b| b.is_ascii_digit() || *b == b'.')
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    let text = input.get(start..i).unwrap_or("");
    let bad = || ParseError::new(start, format!("bad number or duration syntax: {text:?}"));
    if hex {
        let digits = text.get(2..).unwrap_or("");
        let v = u64::from_str_radix(digits, 16).map_err(|_| bad())?;
        return Ok((Tok::Number(v as f64), i));
    }
    // Only digits, dots and an exponent reach the float parser: Rust's parser would also
    // accept "inf" or "nan", which cannot start with a digit or a dot.
    let numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if numeric {
        if let Ok(v) = text.parse::<f64>() {
            return Ok((Tok::Number(v), i));
        }
        return Err(bad());
    }
    match parse_duration(text) {
        Some(Ok(ms)) => Ok((Tok::Duration(ms), i)),
        Some(Err(())) => Err(ParseError::new(
            start,
            format!("duration out of range: {text:?}"),
        )),
        None => Err(bad()),
    }
}

/// Parses a PromQL duration: units `y w d h m s ms`, each at most once, largest first
/// (`1h30m`). `None`: not a duration; `Some(Err)`: too large.
pub(crate) fn parse_duration(text: &str) -> Option<Result<i64, ()>> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: Option<i64> = Some(0);
    while i < bytes.len() {
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_start {
            return None;
        }
        let n: Option<i64> = text.get(digits_start..i)?.parse().ok();
        let unit = if bytes.get(i..i + 2) == Some(b"ms") {
            "ms"
        } else {
            match bytes.get(i) {
                Some(b'y') => "y",
                Some(b'w') => "w",
                Some(b'd') => "d",
                Some(b'h') => "h",
                Some(b'm') => "m",
                Some(b's') => "s",
                _ => return None,
            }
        };
        i += unit.len();
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        if idx < next_unit {
            return None;
        }
        next_unit = idx + 1;
        let len = UNITS[idx].1;
        total = match (total, n) {
            (Some(t), Some(n)) => n.checked_mul(len).and_then(|v| t.checked_add(v)),
            _ => None,
        };
    }
    Some(total.ok_or(()))
}

/// Lexes a `"..."` or `'...'` string with Go-style escapes; returns it and the end offset.
fn lex_quoted(input: &str, start: usize) -> Result<(String, usize), ParseError> {
    let bytes = input.as_bytes();
    let quote = bytes[start];
    let mut out: Vec<u8> = Vec::new();
    let mut i = start + 1;
    let unterminated = || ParseError::new(start, "unterminated quoted string");
    loop {
        let Some(&c) = bytes.get(i) else {
            return Err(unterminated());
        };
        if c == quote {
            i += 1;
            break;
        }
        match c {
            b'\n' => return Err(unterminated()),
            b'\\' => {
                let esc_pos = i;
                let Some(&e) = bytes.get(i + 1) else {
                    return Err(unterminated());
                };
                i += 2;
                let bad = |what: &str| {
                    ParseError::new(esc_pos, format!("invalid escape sequence: {what}"))
                };
                match e {
                    b'a' => out.push(0x07),
                    b'b' => out.push(0x08),
                    b'f' => out.push(0x0c),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(0x0b),
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    b'\'' => out.push(b'\''),
                    b'x' => {
                        let h = hex_value(bytes.get(i..i + 2))
                            .ok_or_else(|| bad("\\x needs two hex digits"))?;
                        out.push(h as u8);
                        i += 2;
                    }
                    b'0'..=b'7' => {
                        let digits = bytes
                            .get(i - 1..i + 2)
                            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
                            .ok_or_else(|| bad("octal escape needs three digits"))?;
                        let v = digits
                            .iter()
                            .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                        let v = u8::try_from(v).map_err(|_| bad("octal escape above \\377"))?;
                        out.push(v);
                        i += 2;
                    }
                    b'u' | b'U' => {
                        let n = if e == b'u' { 4 } else { 8 };
                        let v = hex_value(bytes.get(i..i + n))
                            .ok_or_else(|| bad("\\u needs 4 and \\U 8 hex digits"))?;
                        let ch =
                            char::from_u32(v).ok_or_else(|| bad("not a Unicode scalar value"))?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        i += n;
                    }
                    _ => return Err(bad("unknown escape")),
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    let s = String::from_utf8(out)
        .map_err(|_| ParseError::new(start, "string escapes produce invalid UTF-8"))?;
    Ok((s, i))
}

fn hex_value(digits: Option<&[u8]>) -> Option<u32> {
    let digits = digits?;
    let mut v: u32 = 0;
    for d in digits {
        let x = char::from(*d).to_digit(16)?;
        v = v.checked_mul(16)?.checked_add(x)?;
    }
    Some(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(toks("1e3"), vec![Tok::Number(1000.0), Tok::Eof]);
        assert_eq!(toks("1.5E-3"), vec![Tok::Number(0.0015), Tok::Eof]);
        assert_eq!(toks(".5"), vec![Tok::Number(0.5), Tok::Eof]);
        assert_eq!(toks("0x1F"), vec![Tok::Number(31.0), Tok::Eof]);
        assert_eq!(toks("5m"), vec![Tok::Duration(300_000), Tok::Eof]);
        assert_eq!(toks("1h30m"), vec![Tok::Duration(5_400_000), Tok::Eof]);
        assert_eq!(toks("100ms"), vec![Tok::Duration(100), Tok::Eof]);
        assert_eq!(
            toks("1y2w"),
            vec![Tok::Duration(365 * 86_400_000 + 14 * 86_400_000), Tok::Eof]
        );
        assert_eq!(
            toks("5m-3"),
            vec![Tok::Duration(300_000), Tok::Sub, Tok::Number(3.0), Tok::Eof]
        );
        assert!(lex("1e").is_err());
        assert!(lex("1.2.3").is_err());
        assert!(lex("5mh").is_err());
        assert!(lex("30m1h").is_err());
        assert!(lex("1m1m").is_err());
        assert!(lex("99999999999999999999y").is_err());
        assert!(lex("0x").is_err());
    }

    #[test]
    fn strings() {
        assert_eq!(
            toks(r#""a\"b\n""#),
            vec![Tok::Str("a\"b\n".into()), Tok::Eof]
        );
        assert_eq!(toks(r"'it\'s'"), vec![Tok::Str("it's".into()), Tok::Eof]);
        assert_eq!(toks(r"`a\d+`"), vec![Tok::Str("a\\d+".into()), Tok::Eof]);
        assert_eq!(
            toks(r#""\x41\101\u00e9\U0001F600""#),
            vec![Tok::Str("AAé😀".into()), Tok::Eof]
        );
        assert_eq!(toks("\"é\""), vec![Tok::Str("é".into()), Tok::Eof]);
        assert!(lex("\"abc").is_err());
        assert!(lex("\"a\nb\"").is_err());
        assert!(lex(r#""\q""#).is_err());
        assert!(lex(r#""\xff""#).is_err(), "invalid UTF-8");
        assert!(lex(r#""\ud800""#).is_err(), "surrogate");
        assert!(lex("`abc").is_err());
        assert!(lex("\"\\").is_err());
    }

    #[test]
    fn operators_and_comments() {
        assert_eq!(
            toks("a==b!=c=~d!~e<=f>=g # comment\n<h>"),
            vec![
                Tok::Ident("a"),
                Tok::EqlC,
                Tok::Ident("b"),
                Tok::Neq,
                Tok::Ident("c"),
                Tok::EqlRegex,
                Tok::Ident("d"),
                Tok::NeqRegex,
                Tok::Ident("e"),
                Tok::Lte,
                Tok::Ident("f"),
                Tok::Gte,
                Tok::Ident("g"),
                Tok::Lss,
                Tok::Ident("h"),
                Tok::Gtr,
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("x[5m:1m]"),
            vec![
                Tok::Ident("x"),
                Tok::LBracket,
                Tok::Duration(300_000),
                Tok::Colon,
                Tok::Duration(60_000),
                Tok::RBracket,
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("job:rate:5m"),
            vec![Tok::Ident("job:rate:5m"), Tok::Eof]
        );
        assert!(lex("a ! b").is_err());
        assert!(lex("a ; b").is_err());
        let err = lex("abc €").unwrap_err();
        assert_eq!(err.pos, 4);
    }
}
