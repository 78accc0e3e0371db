//! A parser for Logstash's pipeline configuration language (the grammar of logstash-core's
//! `logstash.treetop`), so that a syntax error in `logstash/` fails the tests, and so that the
//! fields the pipeline reads and writes can be checked against the index template.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_while, take_while1};
use nom::character::complete::{char, satisfy};
use nom::combinator::{cut, opt, recognize, value};
use nom::multi::{many0, separated_list0};
use nom::sequence::{delimited, pair, preceded};
use nom::{IResult, Parser};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Number(String),
    Bare(String),
    Array(Vec<Value>),
    Hash(Vec<(String, Value)>),
    Plugin(Plugin),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    pub name: String,
    pub attributes: Vec<(String, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Plugin(Plugin),
    /// `if … else if … else`: each arm's condition (None for `else`) and body.
    Branch(Vec<(Option<Condition>, Vec<Item>)>),
}

/// A condition, kept as the field selectors it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub selectors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: String,
    pub items: Vec<Item>,
}

type R<'a, T> = IResult<&'a str, T>;

/// Whitespace and `#` comments.
fn sp(i: &str) -> R<'_, ()> {
    value(
        (),
        many0(alt((
            value((), take_while1(char::is_whitespace)),
            value((), pair(char('#'), take_till(|c| c == '\n'))),
        ))),
    )
    .parse(i)
}

fn ws<'a, T>(
    p: impl Parser<&'a str, Output = T, Error = nom::error::Error<&'a str>>,
) -> impl Parser<&'a str, Output = T, Error = nom::error::Error<&'a str>> {
    delimited(sp, p, sp)
}

fn bareword(i: &str) -> R<'_, String> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
    ))
    .map(str::to_string)
    .parse(i)
}

fn quoted(q: char) -> impl Fn(&str) -> R<'_, String> {
    move |i| {
        let (mut rest, _) = char(q)(i)?;
        let mut out = String::new();
        loop {
            let mut chars = rest.chars();
            match chars.next() {
                None => {
                    return Err(nom::Err::Error(nom::error::Error::new(
                        rest,
                        nom::error::ErrorKind::Char,
                    )));
                }
                Some('\\') => {
                    if let Some(c) = chars.next() {
                        out.push('\\');
                        out.push(c);
                    }
                }
                Some(c) if c == q => return Ok((chars.as_str(), out)),
                Some(c) => out.push(c),
            }
            rest = chars.as_str();
        }
    }
}

fn string(i: &str) -> R<'_, String> {
    alt((quoted('"'), quoted('\''))).parse(i)
}

fn number(i: &str) -> R<'_, String> {
    recognize((
        opt(char('-')),
        take_while1(|c: char| c.is_ascii_digit()),
        opt(pair(char('.'), take_while(|c: char| c.is_ascii_digit()))),
    ))
    .map(str::to_string)
    .parse(i)
}

fn name(i: &str) -> R<'_, String> {
    alt((bareword, string)).parse(i)
}

fn array(i: &str) -> R<'_, Vec<Value>> {
    delimited(
        ws(char('[')),
        separated_list0(ws(char(',')), value_),
        preceded(sp, char(']')),
    )
    .parse(i)
}

fn hash(i: &str) -> R<'_, Vec<(String, Value)>> {
    delimited(
        ws(char('{')),
        many0(ws(pair(
            alt((number, bareword, string)),
            preceded(ws(tag("=>")), value_),
        ))),
        char('}'),
    )
    .parse(i)
}

fn value_(i: &str) -> R<'_, Value> {
    alt((
        plugin.map(Value::Plugin),
        string.map(Value::Str),
        number.map(Value::Number),
        bareword.map(Value::Bare),
        array.map(Value::Array),
        hash.map(Value::Hash),
    ))
    .parse(i)
}

fn attribute(i: &str) -> R<'_, (String, Value)> {
    pair(name, preceded(ws(tag("=>")), value_)).parse(i)
}

fn plugin(i: &str) -> R<'_, Plugin> {
    let (i, name) = name(i)?;
    let (i, _) = ws(char('{')).parse(i)?;
    // Inside the braces there is no going back: a mistake is reported where it is.
    let (i, attributes) = cut(many0(ws(attribute))).parse(i)?;
    let (i, _) = cut(char('}')).parse(i)?;
    Ok((i, Plugin { name, attributes }))
}

fn selector(i: &str) -> R<'_, String> {
    recognize(nom::multi::many1(delimited(
        char('['),
        take_while1(|c| c != ']' && c != ','),
        char(']'),
    )))
    .map(str::to_string)
    .parse(i)
}

fn regexp(i: &str) -> R<'_, String> {
    let (i, _) = char('/')(i)?;
    let (i, body) = take_till(|c| c == '/')(i)?;
    let (i, _) = char('/')(i)?;
    Ok((i, body.to_string()))
}

/// A right-hand value in a condition; returns the selectors it reads.
fn rvalue(i: &str) -> R<'_, Vec<String>> {
    alt((
        selector.map(|s| vec![s]),
        string.map(|_| vec![]),
        number.map(|_| vec![]),
        regexp.map(|_| vec![]),
        array.map(|_| vec![]),
    ))
    .parse(i)
}

fn expression(i: &str) -> R<'_, Vec<String>> {
    let paren = delimited(pair(char('('), sp), condition, pair(sp, char(')'))).map(|c| c.selectors);
    let negative = preceded(
        pair(char('!'), sp),
        alt((
            delimited(pair(char('('), sp), condition, pair(sp, char(')'))).map(|c| c.selectors),
            selector.map(|s| vec![s]),
        )),
    );
    let compare = |i| {
        let (i, mut left) = rvalue(i)?;
        let op = alt((
            tag("=="),
            tag("!="),
            tag("<="),
            tag(">="),
            tag("=~"),
            tag("!~"),
            tag("<"),
            tag(">"),
            recognize(pair(tag("not"), preceded(sp, tag("in")))),
            tag("in"),
        ));
        match opt(pair(ws(op), rvalue)).parse(i)? {
            (i, Some((_, right))) => {
                left.extend(right);
                Ok((i, left))
            }
            (i, None) => Ok((i, left)),
        }
    };
    alt((paren, negative, compare)).parse(i)
}

fn condition(i: &str) -> R<'_, Condition> {
    let (mut i, mut selectors) = expression(i)?;
    while let Ok((rest, more)) = preceded(
        ws(alt((tag("and"), tag("or"), tag("xor"), tag("nand")))),
        expression,
    )
    .parse(i)
    {
        selectors.extend(more);
        i = rest;
    }
    Ok((i, Condition { selectors }))
}

fn block(i: &str) -> R<'_, Vec<Item>> {
    delimited(ws(char('{')), cut(many0(ws(item))), cut(char('}'))).parse(i)
}

fn branch(i: &str) -> R<'_, Item> {
    let (i, first) = preceded(pair(tag("if"), sp), cut(pair(condition, block))).parse(i)?;
    let mut arms = vec![(Some(first.0), first.1)];
    let (i, more) = many0(preceded(
        (sp, tag("else"), sp, tag("if"), sp),
        pair(condition, block),
    ))
    .parse(i)?;
    arms.extend(more.into_iter().map(|(c, b)| (Some(c), b)));
    let (i, last) = opt(preceded((sp, tag("else"), sp), block)).parse(i)?;
    if let Some(b) = last {
        arms.push((None, b));
    }
    Ok((i, Item::Branch(arms)))
}

fn item(i: &str) -> R<'_, Item> {
    alt((branch, plugin.map(Item::Plugin))).parse(i)
}

fn section(i: &str) -> R<'_, Section> {
    let (i, kind) = alt((tag("input"), tag("filter"), tag("output"))).parse(i)?;
    let (i, items) = cut(block).parse(i)?;
    Ok((
        i,
        Section {
            kind: kind.to_string(),
            items,
        },
    ))
}

/// Parses a whole file, or says where it stops making sense.
pub fn parse(text: &str) -> Result<Vec<Section>, String> {
    match many0(ws(section)).parse(text) {
        Ok(("", sections)) => Ok(sections),
        Ok((rest, _))
        | Err(
            nom::Err::Error(nom::error::Error { input: rest, .. })
            | nom::Err::Failure(nom::error::Error { input: rest, .. }),
        ) => {
            let at = text.len() - rest.len();
            let line = text[..at].matches('\n').count() + 1;
            Err(format!(
                "syntax error at line {line}: {:?}",
                rest.chars().take(60).collect::<String>()
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Every field reference the configuration reads or writes, as `[a][b]` paths: condition
/// selectors, `%{[..]}` references, and the field names given to options that take them.
pub fn field_refs(sections: &[Section]) -> Vec<String> {
    let mut out = Vec::new();
    for s in sections {
        items(&s.items, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn items(list: &[Item], out: &mut Vec<String>) {
    for item in list {
        match item {
            Item::Plugin(p) => plugin_refs(p, out),
            Item::Branch(arms) => {
                for (cond, body) in arms {
                    if let Some(c) = cond {
                        out.extend(c.selectors.iter().cloned());
                    }
                    items(body, out);
                }
            }
        }
    }
}

/// A field name as the options write it: `message`, `@timestamp` or `[a][b]`.
fn as_ref(s: &str) -> String {
    if s.starts_with('[') {
        s.to_string()
    } else {
        format!("[{s}]")
    }
}

fn sprintf_refs(s: &str, out: &mut Vec<String>) {
    let mut rest = s;
    while let Some(start) = rest.find("%{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        if !inner.starts_with('+') {
            out.push(as_ref(inner));
        }
        rest = &after[end + 1..];
    }
}

fn plugin_refs(p: &Plugin, out: &mut Vec<String>) {
    const FIELD_OPTIONS: &[&str] = &["source", "target", "remove_field"];
    const FIELD_HASHES: &[&str] = &["rename", "copy", "add_field"];
    for (key, v) in &p.attributes {
        match v {
            Value::Str(s) if FIELD_OPTIONS.contains(&key.as_str()) && p.name != "beats" => {
                out.push(as_ref(s))
            }
            Value::Array(items) if FIELD_OPTIONS.contains(&key.as_str()) => {
                out.extend(items.iter().filter_map(|v| {
                    if let Value::Str(s) = v {
                        Some(as_ref(s))
                    } else {
                        None
                    }
                }));
            }
            Value::Array(items) if key == "match" => {
                if let Some(Value::Str(s)) = items.first() {
                    out.push(as_ref(s));
                }
            }
            Value::Hash(entries) if FIELD_HASHES.contains(&key.as_str()) => {
                for (k, v) in entries {
                    out.push(as_ref(k));
                    if key != "add_field"
                        && let Value::Str(s) = v
                    {
                        out.push(as_ref(s));
                    }
                }
            }
            _ => {}
        }
        let mut strings = Vec::new();
        collect_strings(v, &mut strings);
        for s in strings {
            sprintf_refs(&s, out);
        }
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Str(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        Value::Hash(h) => h.iter().for_each(|(_, v)| collect_strings(v, out)),
        Value::Plugin(p) => p
            .attributes
            .iter()
            .for_each(|(_, v)| collect_strings(v, out)),
        _ => {}
    }
}

#[test]
fn parses_the_language_and_rejects_broken_configs() {
    let ok = r#"
        # comment
        filter {
          if [a][b] == "x" and ![c] or ("y" in [tags]) {
            mutate { add_field => { "[d]" => "%{[a][b]}" } remove_field => ["e", "[f][g]"] }
          } else if [n] >= 5 or [m] =~ /^re$/ {
            drop {}
          } else {
            json { source => "message" target => "[@metadata][x]" }
          }
        }
        output { stdout { codec => rubydebug { metadata => true } } }
    "#;
    let sections = parse(ok).unwrap();
    assert_eq!(sections.len(), 2);
    let refs = field_refs(&sections);
    for r in [
        "[a][b]",
        "[c]",
        "[tags]",
        "[d]",
        "[e]",
        "[f][g]",
        "[n]",
        "[m]",
        "[message]",
        "[@metadata][x]",
    ] {
        assert!(refs.contains(&r.to_string()), "{r} in {refs:?}");
    }
    let err = parse("filter {\n  mutate {\n    rename => }\n}\n").unwrap_err();
    assert!(err.contains("line 3"), "{err}");
    for broken in [
        "filter { mutate { add_field => { \"a\" => \"b\" } }",
        "filter { if [a] == { drop {} } }",
        "filter { mutate { rename => } }",
        "filter { json { source => \"message } }",
        "outputs { stdout {} }",
        "filter { if [a] { drop {} } els { drop {} } }",
    ] {
        assert!(parse(broken).is_err(), "{broken}");
    }
}
