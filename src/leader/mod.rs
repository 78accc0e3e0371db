//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does it
//! (kube-scheduler's timings), with one addition: the leader keeps its write position per scope
//! in an annotation of the Lease, updated in the same write as each renewal, so that the next
//! leader continues where the last one's output ended.
//!
//! Expiry is judged by our own clock: a candidate remembers when it last saw the Lease's holder
//! or renew time change and takes over once the lease duration passes with no change; clocks are
//! never compared across machines. Every update carries the resourceVersion read before it
//! (optimistic concurrency): of two candidates racing, exactly one wins, the other gets 409.
//!
//! No crate of the kube-rs ecosystem writes state of ours in the renewal itself
//! (`kube-leader-election` compares timestamps across machines, `kube-lease-manager` applies its
//! own fields only), so the small protocol is written here.
//!
//! - [`lease`]: the protocol (observe, verdict, create / take over / renew / release).
//! - [`term`]: the loops around it: stand by until we lead, keep leading until the renew
//!   deadline passes without a renewal, step down.

mod lease;
mod term;

use std::time::Duration;

pub use lease::Elector;
pub use term::{Ended, keep_leading, stand_by, step_down};

/// `--leader-elect-*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error("the Lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}
