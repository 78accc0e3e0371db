//! Exit codes, one set for every subcommand (`run`, `tail`, `summary`, `prepare-dir`,
//! `completion`): what a script or a Kubernetes restart policy sees.

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success; for `run`: stopped by SIGTERM/SIGINT after writing and syncing everything read.
    Ok = 0,
    /// A runtime failure: the output or the HTTP address is unusable, a file cannot be read or
    /// holds no frames, or an internal error.
    Failure = 1,
    /// Invalid command line (or environment variable standing for a flag).
    Usage = 2,
    /// No usable cluster access (kubeconfig or in-cluster configuration).
    NoCluster = 3,
    /// The API server refused us at start-up (401, 403 or another 4xx).
    Refused = 4,
    /// Another process is writing to the same output file.
    Locked = 5,
}

impl ExitCode {
    /// Every code, in order.
    pub const ALL: [ExitCode; 6] = [
        ExitCode::Ok,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::NoCluster,
        ExitCode::Refused,
        ExitCode::Locked,
    ];

    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_numbers_are_the_documented_ones() {
        let codes: Vec<u8> = ExitCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5]);
    }
}
