//! Progress lines on stderr: what the run is doing now, with the time since start.

use std::io::Write;
use std::time::Instant;

#[derive(Clone)]
pub struct Progress {
    start: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress { start: Instant::now(), quiet }
    }

    /// One line on stderr. A closed stderr (`… 2>&1 | head`, a reader that went
    /// away) must not end the run: the line is dropped, the run and its reports go on.
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "[{:>6.1}s] {msg}", self.start.elapsed().as_secs_f64());
        }
    }
}
