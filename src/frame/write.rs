//! What a watch sends the writer: batches of whole lines, and the marks that tell the writer
//! what the output covers once those lines are written; and the [`Outlet`] it sends them
//! through, so that the watch needs nothing of the output but this.

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

/// The writer has stopped: nothing more can be sent.
#[derive(Debug)]
pub struct Closed;

/// Where a watch sends what it read: the output's handle (a plain channel in tests).
pub trait Outlet: Clone + Send + Sync + 'static {
    /// Hands over `message`, in order after everything this sender sent before, waiting while
    /// the writer is behind: backpressure slows the watch, nothing is dropped.
    fn send(&self, message: Write) -> impl Future<Output = Result<(), Closed>> + Send;
}
