//! The run's one monotonic clock: microseconds since the run began.

use std::time::Instant;

use harness_model::history::Micros;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Clock { epoch: Instant::now() }
    }

    pub fn now(&self) -> Micros {
        self.epoch.elapsed().as_micros() as Micros
    }

    /// An `Instant` taken elsewhere (e.g. by the process supervisor) on this clock.
    pub fn at(&self, t: Instant) -> Micros {
        t.saturating_duration_since(self.epoch).as_micros() as Micros
    }
}
