//! Splits a chunked body into lines. Chunks and frames are unrelated: one chunk may hold many
//! lines, one line may span many chunks. Lines wholly inside a chunk are handed out without a copy.

/// What the splitter hands out for each line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line, without its `\n`.
    Complete(&'a [u8]),
    /// A line longer than the limit; its bytes were dropped.
    TooLong(usize),
}

#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// Bytes of an over-long line dropped so far (0 when not in one).
    skipping: usize,
    max_line: usize,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        Self {
            partial: Vec::new(),
            skipping: 0,
            max_line,
        }
    }

    /// Bytes of an unfinished line held back for the next chunk.
    pub fn pending(&self) -> usize {
        self.partial.len() + self.skipping
    }

    /// Feeds one chunk and calls `on_line` for each line it completes.
    pub fn push<E>(
        &mut self,
        mut chunk: &[u8],
        mut on_line: impl FnMut(Line<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            let (head, rest) = (&chunk[..nl], &chunk[nl + 1..]);
            chunk = rest;
            if self.skipping > 0 {
                let dropped = self.skipping + head.len();
                self.skipping = 0;
                on_line(Line::TooLong(dropped))?;
            } else if self.partial.is_empty() {
                if head.len() > self.max_line {
                    on_line(Line::TooLong(head.len()))?;
                } else {
                    on_line(Line::Complete(head))?;
                }
            } else if self.partial.len() + head.len() > self.max_line {
                let dropped = self.partial.len() + head.len();
                self.partial.clear();
                on_line(Line::TooLong(dropped))?;
            } else {
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                let result = on_line(Line::Complete(&line));
                self.partial = line;
                self.partial.clear();
                result?;
            }
        }
        if self.skipping > 0 {
            self.skipping += chunk.len();
        } else if self.partial.len() + chunk.len() > self.max_line {
            self.skipping = self.partial.len() + chunk.len();
            self.partial = Vec::new();
        } else {
            self.partial.extend_from_slice(chunk);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> (Vec<String>, usize) {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push::<()>(c, |l| {
                out.push(match l {
                    Line::Complete(b) => String::from_utf8(b.to_vec()).unwrap(),
                    Line::TooLong(n) => format!("<too long: {n}>"),
                });
                Ok(())
            })
            .unwrap();
        }
        (out, s.pending())
    }

    #[test]
    fn lines_across_and_within_chunks() {
        let (lines, pending) = split(&[b"ab", b"c\nde\nf", b"", b"g\n", b"\nh"], 100);
        assert_eq!(lines, ["abc", "de", "fg", ""]);
        assert_eq!(pending, 1);
    }

    #[test]
    fn every_split_point_gives_the_same_lines() {
        let body = b"{\"a\":1}\n{\"b\":\"x\\ny\"}\n\n{\"c\":3}\n";
        for cut in 0..=body.len() {
            let (lines, pending) = split(&[&body[..cut], &body[cut..]], 100);
            assert_eq!(
                lines,
                ["{\"a\":1}", "{\"b\":\"x\\ny\"}", "", "{\"c\":3}"],
                "cut {cut}"
            );
            assert_eq!(pending, 0);
        }
    }

    #[test]
    fn over_long_lines_are_dropped_and_counted() {
        let (lines, _) = split(&[b"0123456789\nok\n"], 5);
        assert_eq!(lines, ["<too long: 10>", "ok"]);
        let (lines, pending) = split(&[b"012", b"345", b"6789", b"\nok\n", b"xy"], 5);
        assert_eq!(lines, ["<too long: 10>", "ok"]);
        assert_eq!(pending, 2);
    }
}
