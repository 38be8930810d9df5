//! Progress lines on stderr: what the run is doing now, with the time since start.

use std::io::Write;
use std::time::Instant;

#[derive(Clone)]
pub struct Progress {
    start: Instant,
    quiet: bool,
    /// The scenario's secrets (`processor.secret_env`), masked in every line.
    redactor: crate::services::redact::Redactor,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress { start: Instant::now(), quiet, redactor: Default::default() }
    }

    /// The same, with `redactor`'s secrets masked in every line.
    pub fn masking(mut self, redactor: crate::services::redact::Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// One line on stderr. A closed stderr (`… 2>&1 | head`, a reader that went
    /// away) must not end the run: the line is dropped, the run and its reports go on.
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            let msg = self.redactor.redact_str(msg);
            let _ = writeln!(std::io::stderr(), "[{:>6.1}s] {msg}", self.start.elapsed().as_secs_f64());
        }
    }
}
