//! The grammar, parsed with nom into an AST that borrows from the expression (so every node
//! knows where it stands, for error carets).
//!
//! ```text
//! expr       := or
//! or         := and (("or" | "||") and)*
//! and        := unary (("and" | "&&" | ",") unary)*
//! unary      := ("not" | "!") unary | "(" expr ")" | comparison
//! comparison := field op value | field ("in" | "notin") "(" value ("," value)* ")"
//! op         := "=" | "==" | "!=" | "=~" | "!~" | ">" | ">=" | "<" | "<="
//! value      := "double quoted" | 'single quoted' | bare (no space, comma or parenthesis)
//! ```
//! kubectl field selectors (`type=Warning,involvedObject.kind!=Pod`) are valid as they are.

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while, take_while1};
use nom::character::complete::{char, multispace0, satisfy};
use nom::combinator::{not, peek, recognize};
use nom::sequence::pair;
use nom::{IResult, Parser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Match,
    NotMatch,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Match => "=~",
            Op::NotMatch => "!~",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

/// A value as written, and where (the slice of the expression it came from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value<'a> {
    pub text: Cow<'a, str>,
    pub span: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr<'a> {
    And(Vec<Expr<'a>>),
    Or(Vec<Expr<'a>>),
    Not(Box<Expr<'a>>),
    Cmp {
        field: &'a str,
        op: Op,
        op_span: &'a str,
        value: Value<'a>,
    },
    In {
        field: &'a str,
        negated: bool,
        values: Vec<Value<'a>>,
    },
}

/// Where parsing stopped and what would have been accepted there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError<'a> {
    pub at: &'a str,
    pub expected: &'static str,
}

impl<'a> nom::error::ParseError<&'a str> for SyntaxError<'a> {
    fn from_error_kind(input: &'a str, _: nom::error::ErrorKind) -> Self {
        SyntaxError {
            at: input,
            expected: "",
        }
    }
    fn append(_: &'a str, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
    /// Of two failed alternatives, the one that got further explains better.
    fn or(self, other: Self) -> Self {
        if other.at.len() < self.at.len() {
            other
        } else {
            self
        }
    }
}

type R<'a, T> = IResult<&'a str, T, SyntaxError<'a>>;

/// Labels a failure that happens right at `i` with what was expected there.
fn expect<'a, T>(
    what: &'static str,
    mut p: impl Parser<&'a str, Output = T, Error = SyntaxError<'a>>,
) -> impl FnMut(&'a str) -> R<'a, T> {
    move |i: &'a str| {
        p.parse(i).map_err(|e| {
            e.map(|mut err| {
                if err.expected.is_empty() || err.at.len() == i.len() {
                    err.expected = what;
                }
                err
            })
        })
    }
}

fn ws(i: &str) -> R<'_, &str> {
    multispace0(i)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.' || c == '-'
}

fn keyword<'a>(kw: &'static str) -> impl FnMut(&'a str) -> R<'a, &'a str> {
    move |i| {
        let (rest, k) = tag_no_case(kw).parse(i)?;
        let (rest, _) = not(satisfy(is_word)).parse(rest)?;
        Ok((rest, k))
    }
}

/// Words of the language itself, never field names.
const KEYWORDS: &[&str] = &["and", "or", "not", "in", "notin"];

fn field(i: &str) -> R<'_, &str> {
    let what = "a field name (e.g. type, reason, involvedObject.kind)";
    let (rest, name) = expect(
        what,
        recognize(pair(
            satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
            take_while(is_word),
        )),
    )(i)?;
    if KEYWORDS.iter().any(|k| name.eq_ignore_ascii_case(k)) {
        return Err(nom::Err::Error(SyntaxError {
            at: i,
            expected: what,
        }));
    }
    Ok((rest, name))
}

fn op(i: &str) -> R<'_, (Op, &str)> {
    let (rest, s) = expect(
        "an operator (=, ==, !=, =~, !~, >, >=, <, <=) or `in`",
        alt((
            tag("=="),
            tag("=~"),
            tag("!="),
            tag("!~"),
            tag(">="),
            tag("<="),
            tag("="),
            tag(">"),
            tag("<"),
        )),
    )(i)?;
    let op = match s {
        "=" | "==" => Op::Eq,
        "!=" => Op::Ne,
        "=~" => Op::Match,
        "!~" => Op::NotMatch,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        _ => Op::Le,
    };
    Ok((rest, (op, s)))
}

fn quoted(i: &str) -> R<'_, Value<'_>> {
    let Some(q) = i.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        return Err(nom::Err::Error(SyntaxError {
            at: i,
            expected: "a value",
        }));
    };
    let mut text = String::new();
    let mut chars = i.char_indices().skip(1);
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => text.push(e),
                None => break,
            },
            c if c == q => {
                let end = at + c.len_utf8();
                return Ok((
                    &i[end..],
                    Value {
                        text: Cow::Owned(text),
                        span: &i[..end],
                    },
                ));
            }
            c => text.push(c),
        }
    }
    Err(nom::Err::Failure(SyntaxError {
        at: &i[i.len()..],
        expected: if q == '"' {
            "a closing `\"`"
        } else {
            "a closing `'`"
        },
    }))
}

fn bare(i: &str) -> R<'_, Value<'_>> {
    let (rest, s) =
        take_while1(|c: char| !c.is_whitespace() && !matches!(c, ',' | '(' | ')' | '"' | '\''))(i)?;
    Ok((
        rest,
        Value {
            text: Cow::Borrowed(s),
            span: s,
        },
    ))
}

/// A value; an empty one is allowed right before a separator or the end (`type=` matches empty).
fn value(i: &str) -> R<'_, Value<'_>> {
    expect("a value", alt((quoted, bare, empty_value)))(i)
}

fn empty_value(i: &str) -> R<'_, Value<'_>> {
    let (rest, _) = peek(alt((
        recognize(char(',')),
        recognize(char(')')),
        recognize(satisfy(char::is_whitespace)),
        eof,
    )))
    .parse(i)?;
    Ok((
        rest,
        Value {
            text: Cow::Borrowed(""),
            span: &i[..0],
        },
    ))
}

fn eof(i: &str) -> R<'_, &str> {
    if i.is_empty() {
        Ok((i, i))
    } else {
        Err(nom::Err::Error(SyntaxError {
            at: i,
            expected: "the end",
        }))
    }
}

fn in_list(i: &str) -> R<'_, Vec<Value<'_>>> {
    let (mut i, _) = (ws, expect("`(`", char('('))).parse(i)?;
    let mut values = Vec::new();
    loop {
        let (rest, (_, v, _)) = (ws, expect("a value", alt((quoted, bare))), ws).parse(i)?;
        values.push(v);
        if let Ok((rest, _)) = char::<_, SyntaxError>(',').parse(rest) {
            i = rest;
            continue;
        }
        let (rest, _) = expect("`,` or `)`", char(')'))(rest)?;
        return Ok((rest, values));
    }
}

fn comparison(i: &str) -> R<'_, Expr<'_>> {
    let (i, f) = field(i)?;
    let (i, _) = ws(i)?;
    if let Ok((rest, kw)) = alt((keyword("notin"), keyword("in"))).parse(i) {
        let (rest, values) = nom::combinator::cut(in_list).parse(rest)?;
        return Ok((
            rest,
            Expr::In {
                field: f,
                negated: kw.eq_ignore_ascii_case("notin"),
                values,
            },
        ));
    }
    let (i, (op, op_span)) = nom::combinator::cut(op).parse(i)?;
    let (i, _) = ws(i)?;
    let (i, v) = nom::combinator::cut(value).parse(i)?;
    Ok((
        i,
        Expr::Cmp {
            field: f,
            op,
            op_span,
            value: v,
        },
    ))
}

fn unary(i: &str) -> R<'_, Expr<'_>> {
    let (i, _) = ws(i)?;
    if let Ok((rest, _)) =
        alt((keyword("not"), recognize(pair(char('!'), not(char('=')))))).parse(i)
    {
        let (rest, e) = nom::combinator::cut(unary).parse(rest)?;
        return Ok((rest, Expr::Not(Box::new(e))));
    }
    if let Ok((rest, _)) = char::<_, SyntaxError>('(').parse(i) {
        let (rest, e) = nom::combinator::cut(or_expr).parse(rest)?;
        let (rest, _) = ws(rest)?;
        let (rest, _) = nom::combinator::cut(expect("`)`", char(')'))).parse(rest)?;
        return Ok((rest, e));
    }
    comparison(i)
}

fn and_sep(i: &str) -> R<'_, &str> {
    let (i, _) = ws(i)?;
    let (i, s) = alt((tag(","), tag("&&"), keyword("and"))).parse(i)?;
    ws(i).map(|(i, _)| (i, s))
}

fn or_sep(i: &str) -> R<'_, &str> {
    let (i, _) = ws(i)?;
    let (i, s) = alt((tag("||"), keyword("or"))).parse(i)?;
    ws(i).map(|(i, _)| (i, s))
}

/// `operand (sep operand)*`; a lone operand stays itself, several are joined.
fn chain<'a>(
    i: &'a str,
    operand: fn(&'a str) -> R<'a, Expr<'a>>,
    sep: fn(&'a str) -> R<'a, &'a str>,
    join: fn(Vec<Expr<'a>>) -> Expr<'a>,
) -> R<'a, Expr<'a>> {
    let (mut i, first) = operand(i)?;
    let mut all = vec![first];
    while let Ok((rest, _)) = sep(i) {
        let (rest, e) = nom::combinator::cut(operand).parse(rest)?;
        all.push(e);
        i = rest;
    }
    let e = if all.len() == 1 {
        all.pop().unwrap()
    } else {
        join(all)
    };
    Ok((i, e))
}

fn and_expr(i: &str) -> R<'_, Expr<'_>> {
    chain(i, unary, and_sep, Expr::And)
}

fn or_expr(i: &str) -> R<'_, Expr<'_>> {
    chain(i, and_expr, or_sep, Expr::Or)
}

/// Parses a whole expression.
pub fn parse(expr: &str) -> Result<Expr<'_>, SyntaxError<'_>> {
    let (rest, e) = match or_expr(expr) {
        Ok(ok) => ok,
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => return Err(e),
        Err(nom::Err::Incomplete(_)) => {
            return Err(SyntaxError {
                at: &expr[expr.len()..],
                expected: "more input",
            });
        }
    };
    let (rest, _) = ws(rest).unwrap_or((rest, ""));
    if !rest.is_empty() {
        return Err(SyntaxError {
            at: rest,
            expected: "`and`, `or`, `,` or the end of the expression",
        });
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp<'a>(field: &'a str, op: Op, value: &'a str) -> Expr<'a> {
        Expr::Cmp {
            field,
            op,
            op_span: "",
            value: Value {
                text: value.into(),
                span: "",
            },
        }
    }

    /// Compares ignoring spans.
    fn shape(e: &Expr<'_>) -> String {
        match e {
            Expr::And(v) => format!(
                "and({})",
                v.iter().map(shape).collect::<Vec<_>>().join(", ")
            ),
            Expr::Or(v) => format!("or({})", v.iter().map(shape).collect::<Vec<_>>().join(", ")),
            Expr::Not(e) => format!("not({})", shape(e)),
            Expr::Cmp {
                field, op, value, ..
            } => format!("{field}{}{:?}", op.as_str(), value.text),
            Expr::In {
                field,
                negated,
                values,
            } => {
                format!(
                    "{field} {}({})",
                    if *negated { "notin" } else { "in" },
                    values
                        .iter()
                        .map(|v| format!("{:?}", v.text))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
        }
    }

    #[test]
    fn kubectl_field_selectors_parse_as_they_are() {
        let e = parse("type=Warning,involvedObject.kind!=Pod").unwrap();
        assert_eq!(
            shape(&e),
            r#"and(type="Warning", involvedObject.kind!="Pod")"#
        );
        assert_eq!(
            shape(&parse("reason==BackOff").unwrap()),
            r#"reason="BackOff""#
        );
        assert_eq!(shape(&parse("type=").unwrap()), r#"type="""#);
        assert_eq!(shape(&cmp("a", Op::Eq, "b")), r#"a="b""#);
    }

    #[test]
    fn precedence_not_and_or_and_parentheses() {
        let e = parse("a=1 or b=2 and not c=3").unwrap();
        assert_eq!(shape(&e), r#"or(a="1", and(b="2", not(c="3")))"#);
        let e = parse("(a=1 || b=2) && !(c=~x.*)").unwrap();
        assert_eq!(shape(&e), r#"and(or(a="1", b="2"), not(c=~"x.*"))"#);
        let e = parse(r#"kind in (Pod, "Deploy ment") AND count >= 5 and message !~ 'it''s'"#);
        assert!(e.is_err(), "quotes do not double");
        let e =
            parse(r#"kind in (Pod, "Deploy ment") AND count >= 5 and message !~ 'it\'s'"#).unwrap();
        assert_eq!(
            shape(&e),
            r#"and(kind in("Pod","Deploy ment"), count>="5", message!~"it's")"#
        );
        let e = parse("lastTimestamp > -10m,namespace notin (kube-system)").unwrap();
        assert_eq!(
            shape(&e),
            r#"and(lastTimestamp>"-10m", namespace notin("kube-system"))"#
        );
        let e = parse("notes=1 or ordinal=2 and android=3").unwrap();
        assert_eq!(
            shape(&e),
            r#"or(notes="1", and(ordinal="2", android="3"))"#,
            "keywords need a boundary"
        );
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let cases = [
            ("", 0, "a field name"),
            ("type", 4, "an operator"),
            ("type=Warning and", 16, "a field name"),
            ("type=Warning junk", 13, "`and`, `or`"),
            ("(type=Warning", 13, "`)`"),
            ("kind in Pod", 8, "`(`"),
            ("kind in (Pod", 12, "`,` or `)`"),
            ("message=\"open", 13, "a closing `\"`"),
            ("type=Warning,", 13, "a field name"),
            ("3=x", 0, "a field name"),
        ];
        for (input, at, expected) in cases {
            let err = parse(input).unwrap_err();
            assert_eq!(input.len() - err.at.len(), at, "{input:?}: {err:?}");
            assert!(
                err.expected.contains(expected),
                "{input:?}: expected {:?}, got {:?}",
                expected,
                err.expected
            );
        }
    }
}
