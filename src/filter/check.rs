//! From the AST to a checked [`Filter`]: field names resolved (aliases included), values typed
//! (numbers, RFC 3339 or relative times, regexes), and evaluation on an [`EventFrame`].

use std::cmp::Ordering;

use jiff::{SignedDuration, Timestamp};
use regex::Regex;

use super::FilterError;
use super::parse::{self, Expr, Op, Value};
use crate::event::EventFrame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Time,
}

/// Every field the language knows: its names (canonical first, then aliases), its kind, and the
/// field-selector label the API server accepts for it (core/v1 Events), if any.
pub struct FieldInfo {
    pub names: &'static [&'static str],
    kind: Kind,
    pub selector: Option<&'static str>,
    get: for<'a> fn(&'a EventFrame<'a>) -> Option<Got<'a>>,
}

enum Got<'a> {
    Text(&'a str),
    Number(i64),
}

fn text<'a>(s: &'a Option<std::borrow::Cow<'a, str>>) -> Option<Got<'a>> {
    s.as_deref().map(Got::Text)
}

macro_rules! field {
    ([$($name:literal),+], $kind:ident, $sel:expr, |$f:ident| $get:expr) => {
        FieldInfo { names: &[$($name),+], kind: Kind::$kind, selector: $sel, get: |$f| $get }
    };
}

pub static FIELDS: &[FieldInfo] = &[
    field!(["frame.type"], Text, None, |f| Some(Got::Text(
        &f.frame_type
    ))),
    field!(["type"], Text, Some("type"), |f| text(&f.object.event_type)),
    field!(["reason"], Text, Some("reason"), |f| text(&f.object.reason)),
    field!(["message"], Text, None, |f| text(&f.object.message)),
    field!(
        ["metadata.namespace", "namespace", "ns"],
        Text,
        Some("metadata.namespace"),
        |f| text(&f.object.metadata.namespace)
    ),
    field!(["metadata.name"], Text, Some("metadata.name"), |f| text(
        &f.object.metadata.name
    )),
    field!(["metadata.uid", "uid"], Text, None, |f| text(
        &f.object.metadata.uid
    )),
    field!(["metadata.resourceVersion"], Text, None, |f| text(
        &f.object.metadata.resource_version
    )),
    field!(["metadata.creationTimestamp"], Time, None, |f| text(
        &f.object.metadata.creation_timestamp
    )),
    field!(
        ["involvedObject.kind", "kind"],
        Text,
        Some("involvedObject.kind"),
        |f| text(&f.object.involved_object.kind)
    ),
    field!(
        ["involvedObject.name", "name"],
        Text,
        Some("involvedObject.name"),
        |f| text(&f.object.involved_object.name)
    ),
    field!(
        ["involvedObject.namespace"],
        Text,
        Some("involvedObject.namespace"),
        |f| text(&f.object.involved_object.namespace)
    ),
    field!(
        ["involvedObject.uid"],
        Text,
        Some("involvedObject.uid"),
        |f| text(&f.object.involved_object.uid)
    ),
    field!(
        ["involvedObject.apiVersion"],
        Text,
        Some("involvedObject.apiVersion"),
        |f| text(&f.object.involved_object.api_version)
    ),
    field!(
        ["involvedObject.resourceVersion"],
        Text,
        Some("involvedObject.resourceVersion"),
        |f| text(&f.object.involved_object.resource_version)
    ),
    field!(
        ["involvedObject.fieldPath"],
        Text,
        Some("involvedObject.fieldPath"),
        |f| text(&f.object.involved_object.field_path)
    ),
    field!(
        ["source.component", "source", "component"],
        Text,
        Some("source"),
        |f| text(&f.object.source.component)
    ),
    field!(["source.host", "host"], Text, None, |f| text(
        &f.object.source.host
    )),
    field!(
        ["reportingComponent"],
        Text,
        Some("reportingComponent"),
        |f| text(&f.object.reporting_component)
    ),
    field!(["reportingInstance"], Text, None, |f| text(
        &f.object.reporting_instance
    )),
    field!(["action"], Text, None, |f| text(&f.object.action)),
    field!(["count"], Number, None, |f| f.object.count.map(Got::Number)),
    field!(["series.count"], Number, None, |f| f
        .object
        .series
        .as_ref()
        .and_then(|s| s.count)
        .map(Got::Number)),
    field!(["firstTimestamp"], Time, None, |f| text(
        &f.object.first_timestamp
    )),
    field!(["lastTimestamp"], Time, None, |f| text(
        &f.object.last_timestamp
    )),
    field!(["eventTime"], Time, None, |f| text(&f.object.event_time)),
    field!(["series.lastObservedTime"], Time, None, |f| f
        .object
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_deref())
        .map(Got::Text)),
    field!(["time"], Time, None, |f| f.object.time().map(Got::Text)),
];

/// A field by any of its names, with its index in [`FIELDS`].
fn lookup(name: &str) -> Option<(usize, &'static FieldInfo)> {
    FIELDS
        .iter()
        .enumerate()
        .find(|(_, f)| f.names.contains(&name))
}

/// The known name closest to a misspelt one: a small edit distance, or one containing the other.
fn suggest(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    FIELDS
        .iter()
        .flat_map(|f| f.names.iter())
        .map(|n| {
            (
                strsim::damerau_levenshtein(&name, &n.to_ascii_lowercase()),
                *n,
            )
        })
        .filter(|(d, n)| {
            *d <= 2.max(n.len() / 4) || (name.len() >= 4 && n.to_ascii_lowercase().contains(&name))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

#[derive(Debug)]
enum Node {
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
    root: Node,
    expr: String,
}

impl Filter {
    /// Parses and checks an expression; relative times are taken from now.
    pub fn parse(expr: &str) -> Result<Self, FilterError> {
        Self::parse_at(expr, Timestamp::now())
    }

    /// As [`parse`](Self::parse), with relative times taken from `now`.
    pub fn parse_at(expr: &str, now: Timestamp) -> Result<Self, FilterError> {
        let ast = parse::parse(expr).map_err(|e| {
            let found = match e.at.chars().next() {
                None => "the end of the expression".to_string(),
                Some(c) => format!("`{c}`"),
            };
            FilterError::at(
                expr,
                &e.at[..e.at.chars().next().map_or(0, char::len_utf8)],
                format!("expected {}, found {found}", e.expected),
            )
        })?;
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

    pub fn matches(&self, frame: &EventFrame<'_>) -> bool {
        eval(&self.root, frame)
    }

    /// The part the API server can evaluate as a `fieldSelector`: the equality and inequality
    /// tests on selectable fields that the whole expression requires (top-level `and` terms).
    /// `None` when there is no such part.
    pub fn field_selector(&self) -> Option<String> {
        let terms: Vec<&Node> = match &self.root {
            Node::And(all) => all.iter().collect(),
            one => vec![one],
        };
        let parts: Vec<String> = terms
            .into_iter()
            .filter_map(|n| match n {
                Node::Text { field, eq, value } if selector_safe(value) => FIELDS[*field]
                    .selector
                    .map(|label| format!("{label}{}{value}", if *eq { "=" } else { "!=" })),
                _ => None,
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }

    /// Whether the expression is nothing but a server-side field selector (for `--field-selector`).
    pub fn is_field_selector(&self) -> bool {
        let terms: Vec<&Node> = match &self.root {
            Node::And(all) => all.iter().collect(),
            one => vec![one],
        };
        terms.iter().all(|n| matches!(n, Node::Text { field, value, .. } if FIELDS[*field].selector.is_some() && selector_safe(value)))
    }
}

/// Values the API server's selector syntax carries without escaping.
fn selector_safe(v: &str) -> bool {
    !v.contains([',', '=', '!', '\\'])
}

/// Checks a `--field-selector`: kubectl syntax on the fields the API server supports for Events.
/// Returns it in canonical form.
pub fn check_field_selector(sel: &str) -> Result<String, FilterError> {
    let f = Filter::parse(sel)?;
    if !f.is_field_selector() {
        let supported: Vec<&str> = FIELDS.iter().filter_map(|f| f.selector).collect();
        return Err(FilterError {
            expr: sel.to_string(),
            start: 0,
            end: sel.len(),
            message: "a field selector is `field=value` / `field!=value` terms joined by `,`"
                .into(),
            help: Some(format!(
                "fields the API server supports for Events: {}; use --filter for anything else",
                supported.join(", ")
            )),
        });
    }
    Ok(f.field_selector().unwrap_or_default())
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
        } => {
            let (index, info) = resolve(expr, field)?;
            match (info.kind, op) {
                (_, Op::Match | Op::NotMatch) if info.kind == Kind::Text => Node::Regex {
                    field: index,
                    matches: *op == Op::Match,
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
                    eq: *op == Op::Eq,
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
                (Kind::Number, Op::Match | Op::NotMatch)
                | (Kind::Time, Op::Match | Op::NotMatch) => {
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
                    op: *op,
                    value: number(expr, value)?,
                },
                (Kind::Time, _) => Node::Time {
                    field: index,
                    op: *op,
                    value: time(expr, value, now)?,
                },
            }
        }
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
                None => err.help("fields: type, reason, message, namespace, kind, name, count, time, frame.type, involvedObject.*, metadata.*, source.*, … (see README)"),
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
pub fn time(expr: &str, v: &Value<'_>, now: Timestamp) -> Result<Timestamp, FilterError> {
    parse_time(&v.text, now).ok_or_else(|| {
        FilterError::at(expr, v.span, format!("expected a time, found `{}`", v.text))
            .help("use RFC 3339 (2026-11-22T10:00:00Z) or a relative time such as -10m, -2h, -1d")
    })
}

pub fn parse_time(s: &str, now: Timestamp) -> Option<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => (-1, s),
    };
    let secs = i64::try_from(parse_duration(rest)?.as_secs()).ok()?;
    now.checked_add(SignedDuration::from_secs(sign * secs)).ok()
}

/// A duration such as `30s`, `5m`, `2h30m` or `1d`.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut secs: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        secs = secs.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    if !digits.is_empty() || s.is_empty() || secs > i64::MAX as u64 {
        return None;
    }
    Some(std::time::Duration::from_secs(secs))
}

fn eval(node: &Node, f: &EventFrame<'_>) -> bool {
    let get = |field: &usize| (FIELDS[*field].get)(f);
    let as_text = |g: Option<Got<'_>>| match g {
        Some(Got::Text(s)) => s.to_string(),
        Some(Got::Number(n)) => n.to_string(),
        None => String::new(),
    };
    match node {
        Node::And(all) => all.iter().all(|n| eval(n, f)),
        Node::Or(all) => all.iter().any(|n| eval(n, f)),
        Node::Not(n) => !eval(n, f),
        Node::Text { field, eq, value } => {
            let same = match get(field) {
                Some(Got::Text(s)) => s == value,
                other => as_text(other) == *value,
            };
            same == *eq
        }
        Node::Regex { field, matches, re } => {
            let found = match get(field) {
                Some(Got::Text(s)) => re.is_match(s),
                other => re.is_match(&as_text(other)),
            };
            found == *matches
        }
        Node::In {
            field,
            negated,
            values,
        } => {
            let v = as_text(get(field));
            values.contains(&v) != *negated
        }
        Node::Number { field, op, value } => match get(field) {
            Some(Got::Number(n)) => compare(n.cmp(value), *op),
            _ => false,
        },
        Node::Time { field, op, value } => match get(field) {
            Some(Got::Text(s)) => s
                .parse::<Timestamp>()
                .is_ok_and(|t| compare(t.cmp(value), *op)),
            _ => false,
        },
    }
}

fn compare(ord: Ordering, op: Op) -> bool {
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Match | Op::NotMatch => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn relative_and_absolute_times() {
        let t = |s| parse_time(s, now()).map(|t| t.to_string());
        assert_eq!(t("-10m").as_deref(), Some("2026-11-22T11:50:00Z"));
        assert_eq!(t("10m").as_deref(), Some("2026-11-22T11:50:00Z"));
        assert_eq!(t("+1h").as_deref(), Some("2026-11-22T13:00:00Z"));
        assert_eq!(t("-1d2h").as_deref(), Some("2026-11-21T10:00:00Z"));
        assert_eq!(
            t("2026-11-22T10:00:00.123456Z").as_deref(),
            Some("2026-11-22T10:00:00.123456Z")
        );
        for bad in [
            "",
            "-",
            "10",
            "10x",
            "m",
            "-99999999999999999999d",
            "yesterday",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn push_down_takes_only_required_selectable_equalities() {
        let sel = |e: &str| Filter::parse_at(e, now()).unwrap().field_selector();
        assert_eq!(
            sel("type=Warning,involvedObject.kind!=Pod").as_deref(),
            Some("type=Warning,involvedObject.kind!=Pod")
        );
        assert_eq!(
            sel("kind=Pod and count>3 and message=~x").as_deref(),
            Some("involvedObject.kind=Pod")
        );
        assert_eq!(
            sel("namespace==a,component=kubelet").as_deref(),
            Some("metadata.namespace=a,source=kubelet")
        );
        assert_eq!(
            sel("type=Warning or reason=BackOff"),
            None,
            "an `or` cannot be pushed down"
        );
        assert_eq!(sel("not type=Warning"), None);
        assert_eq!(
            sel("message=x,host=h,frame.type=ADDED"),
            None,
            "not selectable"
        );
        assert_eq!(
            sel("reason=\"a,b\""),
            None,
            "values needing escapes stay local"
        );
    }

    #[test]
    fn field_selectors_are_checked() {
        assert_eq!(
            check_field_selector("type==Warning,reason!=X").unwrap(),
            "type=Warning,reason!=X"
        );
        let err = check_field_selector("message=x").unwrap_err();
        assert!(err.help.unwrap().contains("involvedObject.kind"));
        assert!(check_field_selector("type=Warning or type=Normal").is_err());
        assert!(
            check_field_selector("typo=Warning")
                .unwrap_err()
                .to_string()
                .contains("did you mean `type`?")
        );
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
        let e = err("type=Warning junk");
        assert_eq!(
            e.message,
            "expected `and`, `or`, `,` or the end of the expression, found `j`"
        );
    }
}
