//! What a watch sends the writer: batches of whole lines, and the marks that tell the writer
//! what the output covers once those lines are written.

use super::{ResourceVersion, Scope};

/// One or more complete frame lines, each ending in `\n`: what the watch hands the writer.
pub type Batch = Vec<u8>;

/// What a watch sends the writer, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Write {
    Lines(Batch),
    /// Every frame of this scope up to here has been sent: once written and synced, the output
    /// covers the scope (see `position::covered`).
    Covered(Scope),
    /// The last frame sent for this scope so far has this resourceVersion: once the lines before
    /// are written, it is the scope's write position (handed over to the next leader).
    Position(Scope, ResourceVersion),
}

impl From<Batch> for Write {
    fn from(batch: Batch) -> Self {
        Write::Lines(batch)
    }
}
