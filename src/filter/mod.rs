//! The filter language: one small language for what `run` writes and what `tail` shows.
//!
//! Layers: [`parse`](parse::parse) (nom → spanned AST), [`check`] (fields resolved, values typed,
//! regexes compiled, relative times fixed → [`Filter`]), and evaluation on an [`EventFrame`].
//! [`Filter::field_selector`] splits off the part the API server can evaluate.

mod check;
mod parse;

use std::fmt;

pub use check::{FIELDS, Filter, check_field_selector, parse_time};

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
    if p >= w && p <= w + whole.len() { p - w } else { 0 }
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
        let width = self.expr.get(self.start..self.end).map_or(1, |s| s.chars().count().max(1));
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
