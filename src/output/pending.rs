//! What the writer holds between taking lines in and writing them, and the write positions that
//! wait for those lines: pure, no I/O (the writer does the writing and says how much it wrote).

use super::{FLUSH_BYTES, fitting};
use crate::frame::{Batch, ResourceVersion, Scope};

/// Lines taken in and not yet written, and the positions reached once they are.
#[derive(Debug, Default)]
pub struct Pending {
    lines: Vec<u8>,
    /// How much of `lines` is written already.
    done: usize,
    /// The newest position per scope among those sent after lines still pending.
    positions: Vec<(Scope, ResourceVersion)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.done == self.lines.len()
    }

    /// Bytes not yet written.
    pub fn len(&self) -> usize {
        self.lines.len() - self.done
    }

    /// Takes a batch in behind what is pending (a large one alone is kept as it is, not copied).
    pub fn add(&mut self, batch: Batch) {
        if self.is_empty() && batch.len() >= FLUSH_BYTES {
            self.lines = batch;
            self.done = 0;
        } else {
            self.lines.extend_from_slice(&batch);
        }
    }

    /// A scope's write position: handed back to be reported now when nothing is pending, else
    /// kept until what is pending is written.
    pub fn position(
        &mut self,
        scope: Scope,
        rv: ResourceVersion,
    ) -> Option<(Scope, ResourceVersion)> {
        if self.is_empty() {
            return Some((scope, rv));
        }
        self.positions.retain(|(s, _)| *s != scope);
        self.positions.push((scope, rv));
        None
    }

    /// The next piece to write: whole lines, as many as `room` takes (at least one line).
    pub fn next_piece(&self, room: Option<u64>) -> &[u8] {
        let rest = &self.lines[self.done..];
        &rest[..room.map_or(rest.len(), |room| fitting(rest, room))]
    }

    /// `n` bytes of the next piece are written. Once nothing is pending, the positions that
    /// waited are reached: they are handed back, and the buffer is kept for next time (not
    /// larger than it needs to be).
    pub fn written(&mut self, n: usize) -> Vec<(Scope, ResourceVersion)> {
        self.done += n;
        if !self.is_empty() {
            return Vec::new();
        }
        self.lines.clear();
        self.done = 0;
        if self.lines.capacity() > FLUSH_BYTES * 4 {
            self.lines.shrink_to(FLUSH_BYTES * 2);
        }
        std::mem::take(&mut self.positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s)
    }

    #[test]
    fn a_position_waits_for_the_lines_before_it_and_only_the_newest_per_scope() {
        let mut p = Pending::default();
        let a = Scope::Namespace("a".into());
        assert_eq!(p.position(a.clone(), rv("1")), Some((a.clone(), rv("1"))));
        p.add(b"x\ny\n".to_vec());
        assert_eq!(p.position(a.clone(), rv("2")), None);
        assert_eq!(p.position(a.clone(), rv("3")), None);
        assert_eq!(p.position(Scope::All, rv("3")), None);
        assert_eq!(p.next_piece(Some(3)), b"x\n", "whole lines that fit");
        assert!(p.written(2).is_empty(), "y is still pending");
        assert_eq!(p.len(), 2);
        assert_eq!(p.next_piece(None), b"y\n");
        assert_eq!(p.written(2), [(a, rv("3")), (Scope::All, rv("3"))]);
        assert!(p.is_empty());
    }

    #[test]
    fn at_least_one_line_goes_even_past_the_room_and_a_large_batch_is_not_copied() {
        let mut p = Pending::default();
        p.add(b"aaaa\nbb\n".to_vec());
        assert_eq!(p.next_piece(Some(2)), b"aaaa\n");
        let big = vec![b'z'; FLUSH_BYTES];
        let mut q = Pending::default();
        let at = big.as_ptr();
        q.add(big);
        assert_eq!(q.next_piece(None).as_ptr(), at, "moved, not copied");
        p.add(b"c\n".to_vec());
        assert_eq!(
            p.next_piece(None),
            b"aaaa\nbb\nc\n",
            "behind what is pending"
        );
    }
}
