//! From the AST to a checked [`Filter`]: field names resolved (aliases included), values typed
//! (numbers, RFC 3339 or relative times, regexes), relative times fixed.

use jiff::Timestamp;
use regex::Regex;

use super::FilterError;
use super::fields::{FieldInfo, Kind, lookup, suggest};
use super::parse::{self, Expr, Op, Value};

#[derive(Debug)]
pub(super) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Text {
        field: usize,
        eq: bool,
        value: String,
    },
    Regex {
        field: usize,
        matches: bool,
        re: Regex,
    },
    In {
        field: usize,
        negated: bool,
        values: Vec<String>,
    },
    Number {
        field: usize,
        op: Op,
        value: i64,
    },
    Time {
        field: usize,
        op: Op,
        value: Timestamp,
    },
}

/// A checked filter, ready to evaluate.
#[derive(Debug)]
pub struct Filter {
    pub(super) root: Node,
    expr: String,
}

impl Filter {
    /// Parses and checks an expression; relative times are taken from now.
    pub fn parse(expr: &str) -> Result<Self, FilterError> {
        Self::parse_at(expr, Timestamp::now())
    }

    /// As [`parse`](Self::parse), with relative times taken from `now`.
    pub fn parse_at(expr: &str, now: Timestamp) -> Result<Self, FilterError> {
        let ast = parse::parse(expr).map_err(|e| syntax_error(expr, &e))?;
        let root = compile(expr, &ast, now)?;
        Ok(Filter {
            root,
            expr: expr.to_string(),
        })
    }

    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }
}

/// Operators people type that mean one of ours.
const MISTYPED_OPERATORS: &[(&str, &str)] = &[("~=", "=~"), ("~!", "!~")];

/// A syntax error pointing at the first character that does not fit; a mistyped operator is
/// named as such, with the one meant.
fn syntax_error(expr: &str, e: &parse::SyntaxError<'_>) -> FilterError {
    let span = &e.at[..e.at.chars().next().map_or(0, char::len_utf8)];
    let found = if span.is_empty() {
        "the end of the expression".to_string()
    } else {
        format!("`{span}`")
    };
    let err = FilterError::at(
        expr,
        span,
        format!("expected {}, found {found}", e.expected),
    );
    match MISTYPED_OPERATORS
        .iter()
        .find(|(typo, _)| e.at.starts_with(typo))
    {
        Some((typo, meant)) => {
            let typo_span = &e.at[..typo.len()];
            FilterError::at(expr, typo_span, format!("`{typo}` is not an operator"))
                .help(format!("did you mean `{meant}`?"))
        }
        None => err,
    }
}

fn compile(expr: &str, e: &Expr<'_>, now: Timestamp) -> Result<Node, FilterError> {
    Ok(match e {
        Expr::And(all) => Node::And(
            all.iter()
                .map(|e| compile(expr, e, now))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(all) => Node::Or(
            all.iter()
                .map(|e| compile(expr, e, now))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(e) => Node::Not(Box::new(compile(expr, e, now)?)),
        Expr::In {
            field,
            negated,
            values,
        } => {
            let (index, info) = resolve(expr, field)?;
            if info.kind != Kind::Text {
                return Err(FilterError::at(
                    expr,
                    field,
                    format!(
                        "`in` compares text; `{field}` is a {}",
                        kind_name(info.kind)
                    ),
                ));
            }
            Node::In {
                field: index,
                negated: *negated,
                values: values.iter().map(|v| v.text.to_string()).collect(),
            }
        }
        Expr::Cmp {
            field,
            op,
            op_span,
            value,
        } => compile_cmp(expr, field, *op, op_span, value, now)?,
    })
}

/// A comparison: the operator must suit the field's kind, the value must parse as that kind.
fn compile_cmp(
    expr: &str,
    field: &str,
    op: Op,
    op_span: &str,
    value: &Value<'_>,
    now: Timestamp,
) -> Result<Node, FilterError> {
    let (index, info) = resolve(expr, field)?;
    Ok(match (info.kind, op) {
        (_, Op::Match | Op::NotMatch) if info.kind == Kind::Text => Node::Regex {
            field: index,
            matches: op == Op::Match,
            re: Regex::new(&value.text).map_err(|e| {
                FilterError::at(
                    expr,
                    value.span,
                    format!("invalid regular expression: {}", first_line(&e.to_string())),
                )
            })?,
        },
        (Kind::Text, Op::Eq | Op::Ne) => Node::Text {
            field: index,
            eq: op == Op::Eq,
            value: value.text.to_string(),
        },
        (Kind::Text, _) => {
            return Err(FilterError::at(
                expr,
                op_span,
                format!(
                    "`{}` does not apply to the text field `{field}`",
                    op.as_str()
                ),
            )
            .help("text fields take =, ==, !=, =~, !~ and in (…)"));
        }
        (Kind::Number, Op::Match | Op::NotMatch) | (Kind::Time, Op::Match | Op::NotMatch) => {
            return Err(FilterError::at(
                expr,
                op_span,
                format!(
                    "`{}` applies to text; `{field}` is a {}",
                    op.as_str(),
                    kind_name(info.kind)
                ),
            ));
        }
        (Kind::Number, _) => Node::Number {
            field: index,
            op,
            value: number(expr, value)?,
        },
        (Kind::Time, _) => Node::Time {
            field: index,
            op,
            value: time(expr, value, now)?,
        },
    })
}

fn first_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map_or(s.lines().next().unwrap_or(s), |l| {
            l.trim_start_matches("error:").trim()
        })
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Text => "text field",
        Kind::Number => "number",
        Kind::Time => "timestamp",
    }
}

fn resolve(expr: &str, name: &str) -> Result<(usize, &'static FieldInfo), FilterError> {
    match lookup(name) {
        Some(found) => Ok(found),
        None => {
            let err = FilterError::at(expr, name, format!("unknown field `{name}`"));
            Err(match suggest(name) {
                Some(s) => err.help(format!("did you mean `{s}`?")),
                None => err.help("fields: type, reason, message, namespace, kind, name, count, time, frame.type, involvedObject.*, metadata.*, source.*, … (see docs/guide.md)"),
            })
        }
    }
}

fn number(expr: &str, v: &Value<'_>) -> Result<i64, FilterError> {
    v.text.parse().map_err(|_| {
        FilterError::at(
            expr,
            v.span,
            format!("expected a whole number, found `{}`", v.text),
        )
    })
}

/// RFC 3339 (`2026-11-22T10:00:00Z`), or relative to now: `-10m`, `-2h30m`, `-1d` (past; the
/// sign may be left out) or `+5m` (future). Units: s, m, h, d.
fn time(expr: &str, v: &Value<'_>, now: Timestamp) -> Result<Timestamp, FilterError> {
    crate::time::parse_time(&v.text, now).ok_or_else(|| {
        FilterError::at(expr, v.span, format!("expected a time, found `{}`", v.text))
            .help("use RFC 3339 (2026-11-22T10:00:00Z) or a relative time such as -10m, -2h, -1d")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn check_errors_point_at_the_problem() {
        let err = |e: &str| Filter::parse_at(e, now()).unwrap_err();
        let e = err("type=Warning,kindd=Pod");
        assert_eq!((e.start, e.end), (13, 18));
        assert_eq!(e.help.as_deref(), Some("did you mean `kind`?"));
        let e = err("count >= many");
        assert!(e.message.contains("whole number") && e.start == 9, "{e:?}");
        let e = err("reason > x");
        assert!(e.message.contains("does not apply"), "{e:?}");
        let e = err("lastTimestamp > yesterday");
        assert!(e.message.contains("expected a time"), "{e:?}");
        let e = err("message =~ \"(unclosed\"");
        assert!(e.message.contains("regular expression"), "{e:?}");
        let e = err("count in (1,2)");
        assert!(e.message.contains("`in` compares text"), "{e:?}");
        // A keyword where a field belongs is the problem, not the word after it.
        let e = err("type=Warning or or reason=x");
        assert_eq!(e.start, 16, "{e}");
        assert!(e.message.starts_with("expected a field name"), "{e}");
        let e = err("message ~= probe");
        assert_eq!((e.start, e.end), (8, 10));
        assert_eq!(e.help.as_deref(), Some("did you mean `=~`?"));
        let e = err("type=Warning junk");
        assert_eq!(
            e.message,
            "expected `and`, `or`, `,` or the end of the expression, found `j`"
        );
    }
}
