//! Exit codes, one set for every subcommand (`run`, `tail`, `prepare-dir`): what a script or a
//! Kubernetes restart policy sees.

/// Success; for `run`: stopped by SIGTERM/SIGINT after writing and syncing everything read.
pub const OK: u8 = 0;
/// A runtime failure: the output or the HTTP address is unusable, or an internal error.
pub const FAILURE: u8 = 1;
/// Invalid command line.
pub const USAGE: u8 = 2;
/// No usable cluster access (kubeconfig or in-cluster configuration).
pub const NO_CLUSTER: u8 = 3;
/// The API server refused us at start-up (401, 403 or another 4xx).
pub const REFUSED: u8 = 4;
/// Another process is writing to the same output file.
pub const LOCKED: u8 = 5;
