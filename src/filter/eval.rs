//! Evaluating a checked [`Filter`] on one Event.

use std::cmp::Ordering;

use jiff::Timestamp;

use super::Filter;
use super::check::Node;
use super::fields::{FIELDS, Got};
use super::parse::Op;
use crate::event::EventFrame;

impl Filter {
    pub fn matches(&self, frame: &EventFrame<'_>) -> bool {
        eval(&self.root, frame)
    }
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
