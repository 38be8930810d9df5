//! Progress lines on stderr: what the run is doing now, with the time since start.

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

    pub fn say(&self, msg: &str) {
        if !self.quiet {
            eprintln!("[{:>6.1}s] {msg}", self.start.elapsed().as_secs_f64());
        }
    }
}
