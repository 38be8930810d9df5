//! The harness's documented process exit codes.

/// Exit codes of `harness`. Stable: CI scripts branch on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Every expectation was met.
    Passed = 0,
    /// At least one expectation failed, or could not be judged (Unknown).
    ExpectationFailed = 1,
    /// The scenario file or the command line is invalid.
    InvalidInput = 2,
    /// The environment could not be provisioned or started.
    Environment = 3,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}
