//! The filter language: one small language for what `run` writes and what `tail` shows.
//!
//! Layers, one file each: [`parse`](parse::parse) (nom → spanned AST), [`fields`] (the field
//! table), [`check`] (fields resolved, values typed, regexes compiled, relative times fixed →
//! [`Filter`]), [`eval`] (matching an Event), and [`selector`] (the part the API server can
//! evaluate as a `fieldSelector`).

mod check;
mod eval;
mod fields;
mod parse;
mod selector;

use std::fmt;

pub use check::Filter;
pub use selector::check_field_selector;

/// A filter expression that does not parse or check, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub expr: String,
    /// Byte range in `expr` the message is about.
    pub start: usize,
    pub end: usize,
    pub message: String,
    pub help: Option<String>,
}

impl FilterError {
    pub(crate) fn at(expr: &str, span: &str, message: impl Into<String>) -> Self {
        let start = offset(expr, span);
        FilterError {
            expr: expr.to_string(),
            start,
            end: start + span.len(),
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Where `part` (a slice of `whole`) starts in `whole`.
fn offset(whole: &str, part: &str) -> usize {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    if p >= w && p <= w + whole.len() {
        p - w
    } else {
        0
    }
}

impl fmt::Display for FilterError {
    /// ```text
    /// invalid filter: unknown field `kindd`
    ///   type=Warning,kindd=Pod
    ///                ^^^^^
    ///   help: did you mean `kind`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid filter: {}", self.message)?;
        let one_line = self.expr.replace(['\n', '\t', '\r'], " ");
        writeln!(f, "  {one_line}")?;
        let pad = self.expr[..self.start.min(self.expr.len())].chars().count();
        let width = self
            .expr
            .get(self.start..self.end)
            .map_or(1, |s| s.chars().count().max(1));
        write!(f, "  {}{}", " ".repeat(pad), "^".repeat(width))?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FilterError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventFrame;

    /// The data-driven cases in `tests/data/filter/cases.txt`.
    #[test]
    fn cases_from_file() {
        let frames: Vec<&str> = include_str!("../../tests/data/fixtures/frames.jsonl")
            .lines()
            .collect();
        let mut now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut expr: Option<&str> = None;
        let mut checked = 0;
        for (n, line) in include_str!("../../tests/data/filter/cases.txt")
            .lines()
            .enumerate()
        {
            let at = format!("tests/data/filter/cases.txt:{}", n + 1);
            let line = line.trim();
            if let Some(t) = line.strip_prefix("now:") {
                now = t.trim().parse().unwrap();
            } else if let Some(e) = line.strip_prefix("expr:") {
                expr = Some(e.trim());
            } else if let Some(m) = line.strip_prefix("match:") {
                let e = expr.unwrap_or_else(|| panic!("{at}: match without expr"));
                let filter = Filter::parse_at(e, now).unwrap_or_else(|err| panic!("{at}: {err}"));
                let got: Vec<String> = frames
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| filter.matches(&EventFrame::parse(f.as_bytes()).unwrap()))
                    .map(|(i, _)| (i + 1).to_string())
                    .collect();
                let got = if got.is_empty() {
                    "none".to_string()
                } else {
                    got.join(" ")
                };
                assert_eq!(got, m.trim(), "{at}: {e}");
                checked += 1;
            } else if let Some(msg) = line.strip_prefix("error:") {
                let e = expr.unwrap_or_else(|| panic!("{at}: error without expr"));
                let err = Filter::parse_at(e, now)
                    .err()
                    .unwrap_or_else(|| panic!("{at}: {e} parsed"));
                assert!(err.to_string().contains(msg.trim()), "{at}: {e}\n{err}");
                checked += 1;
            }
        }
        assert!(checked > 30, "only {checked} cases");
    }

    /// Arbitrary input — fragments of the grammar and random characters — never panics, and
    /// every error points inside the expression.
    #[test]
    fn arbitrary_input_never_panics() {
        let pieces = [
            "type",
            "=",
            "==",
            "!=",
            "=~",
            "!~",
            ">",
            ">=",
            "<",
            "<=",
            " ",
            ",",
            "(",
            ")",
            "and",
            "or",
            "not",
            "!",
            "in",
            "notin",
            "\"",
            "'",
            "\\",
            "count",
            "time",
            "-10m",
            "2026-11-22T10:00:00Z",
            "Warning",
            "é",
            "节",
            "\u{0}",
            "[",
            "*",
            "&&",
            "||",
            "kind",
            "message",
            "frame.type",
            "5",
            "-",
            ".",
            "\n",
        ];
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let frame = include_str!("../../tests/data/fixtures/frames.jsonl")
            .lines()
            .next()
            .unwrap();
        let frame = EventFrame::parse(frame.as_bytes()).unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let mut expr = String::new();
            for _ in 0..rng.usize(0..12) {
                if rng.u8(..) < 40 {
                    expr.push(rng.char(..));
                } else {
                    expr.push_str(pieces[rng.usize(..pieces.len())]);
                }
            }
            match Filter::parse_at(&expr, now) {
                Ok(f) => {
                    f.matches(&frame);
                    let _ = f.field_selector();
                }
                Err(e) => {
                    assert!(e.start <= e.end && e.end <= expr.len(), "{expr:?}: {e:?}");
                    assert!(
                        expr.is_char_boundary(e.start) && expr.is_char_boundary(e.end),
                        "{expr:?}: {e:?}"
                    );
                    let _ = e.to_string();
                }
            }
        }
    }

    #[test]
    fn carets_point_at_the_span_in_characters() {
        let expr = "message=~«x» and kindd=Pod";
        let span = &expr[expr.find("kindd").unwrap()..][..5];
        let e = FilterError::at(expr, span, "unknown field `kindd`").help("did you mean `kind`?");
        assert_eq!(
            e.to_string(),
            "invalid filter: unknown field `kindd`\n  message=~«x» and kindd=Pod\n                   ^^^^^\n  help: did you mean `kind`?"
        );
    }
}
