//! The project's vocabulary: a watch frame and what it carries, the resourceVersion that orders
//! frames, and the watch scope. Everything else speaks these types; this module imports nothing
//! of ours.
//!
//! A frame is parsed once, borrowing from its line: the watch type, the object's namespace and
//! resourceVersion, and for ERROR frames the Status. The object's bytes are never re-serialised:
//! what is written is what the server sent.

//!
//! - `parse`: one line → [`Frame`] whole, with serde. The watch's own reading is in `head`:
//!   [`Frame::parse_checked`] validates the whole line (`validate`'s walk, `string`'s scan) and
//!   reads the frame's place and the Event's [`Facts`] in that same pass, told by the walk the
//!   members of the few objects it enters (`key` tells their names apart);
//!   [`Frame::parse_head`] stops once the frame is placed.
//! - `list`: a LIST page and its items, each made the ADDED frame a watch would send.
//! - `write`: what a watch sends the writer.

mod head;
mod key;
mod list;
mod parse;
mod string;
mod validate;
mod write;

pub use head::Facts;
pub use list::{ListPage, ListedObject};
pub use parse::{DataKind, Frame, FrameError, Status, check_utf8};
pub use write::{Batch, Closed, Outlet, Write};

use std::cmp::Ordering;

use compact_str::CompactString;

/// An object's `metadata.resourceVersion`. Officially opaque; in practice an etcd revision.
/// The one place where resourceVersions are compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceVersion {
    /// Inline up to 24 bytes: a watch makes one per frame.
    text: CompactString,
    /// The text as a number, when it is one (read once: a watch compares every frame's).
    number: Option<u64>,
}

impl ResourceVersion {
    pub fn new(text: &str) -> Self {
        Self {
            number: text.parse().ok(),
            text: CompactString::new(text),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Orders two resourceVersions when both are numbers (etcd revisions); `None` when either
    /// is not, since the API only promises equality for opaque values.
    pub fn compare(&self, other: &Self) -> Option<Ordering> {
        if self.text == other.text {
            return Some(Ordering::Equal);
        }
        Some(self.number?.cmp(&other.number?))
    }

    /// Whether an object version must still be written, given the newest version already written
    /// for its scope. Unknown order (non-numeric versions) writes it: a duplicate is better than
    /// a loss, and the Elastic pipeline's document id makes it harmless.
    pub fn is_unwritten(&self, written: Option<&ResourceVersion>) -> bool {
        match written {
            None => true,
            Some(mark) => !matches!(self.compare(mark), Some(Ordering::Less | Ordering::Equal)),
        }
    }

    /// The newer of two versions (the second when they cannot be ordered: it came later).
    pub fn newest(self, other: Self) -> Self {
        match self.compare(&other) {
            Some(Ordering::Greater) => self,
            _ => other,
        }
    }

    /// A sort key: numeric versions in numeric order, others after them.
    pub fn sort_key(&self) -> u64 {
        self.number.unwrap_or(u64::MAX)
    }
}

impl std::fmt::Display for ResourceVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What one watch covers: every namespace, or one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    All,
    Namespace(String),
}

impl Scope {
    pub fn contains(&self, namespace: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespace(ns) => namespace == Some(ns.as_str()),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::All => f.write_str("all namespaces"),
            Scope::Namespace(ns) => write!(f, "namespace {ns}"),
        }
    }
}

/// The write position per scope (what the output holds, what a Lease hands over).
pub type Positions = std::collections::BTreeMap<Scope, ResourceVersion>;

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> ResourceVersion {
        ResourceVersion::new(s)
    }

    #[test]
    fn compares_numeric_versions_numerically() {
        assert_eq!(rv("9").compare(&rv("10")), Some(Ordering::Less));
        assert_eq!(rv("10").compare(&rv("10")), Some(Ordering::Equal));
        assert_eq!(rv("abc").compare(&rv("10")), None);
        assert_eq!(rv("abc").compare(&rv("abc")), Some(Ordering::Equal));
        assert_eq!(rv("18446744073709551616").compare(&rv("1")), None);
    }

    #[test]
    fn unwritten_means_newer_than_the_mark_or_unknown() {
        assert!(rv("5").is_unwritten(None));
        assert!(rv("11").is_unwritten(Some(&rv("10"))));
        assert!(!rv("10").is_unwritten(Some(&rv("10"))));
        assert!(!rv("9").is_unwritten(Some(&rv("10"))));
        assert!(rv("x").is_unwritten(Some(&rv("10"))));
        assert_eq!(rv("3").newest(rv("7")), rv("7"));
        assert_eq!(rv("7").newest(rv("3")), rv("7"));
    }
}
