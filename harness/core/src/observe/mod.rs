//! Recorders that build the history: the harness's own consumers on the events and
//! outputs topics, and the final listing of every version in the target bucket.

pub mod group;
mod listing;
mod records;
mod topic;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness_model::history::{EventSeen, Micros};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use listing::{list_outputs, versions_now, Stamp};
pub use records::{parse_records, S3Record};

use crate::clock::Clock;

/// A thumbnail version as its notification announced it.
#[derive(Clone, Debug)]
pub struct OutputSeen {
    pub key: String,
    pub version_id: String,
    pub at: Micros,
}

/// What the observers have recorded so far; shared with the drain loop.
#[derive(Default)]
pub struct Observed {
    pub events: Mutex<Vec<EventSeen>>,
    pub outputs: Mutex<Vec<OutputSeen>>,
    pub undecodable: Mutex<Vec<String>>,
    /// Woken on every record, so waiting code need not poll.
    pub changed: Notify,
}

impl Observed {
    pub fn saw_event(&self, key: &str) -> bool {
        self.events.lock().map(|v| v.iter().any(|e| e.key == key)).unwrap_or(false)
    }
    pub fn saw_output(&self, key: &str) -> bool {
        self.outputs.lock().map(|v| v.iter().any(|o| o.key == key)).unwrap_or(false)
    }
}

/// The two topic consumers; stopping them keeps what they recorded.
pub struct Observers {
    pub observed: Arc<Observed>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("cannot create a Kafka consumer for topic {topic}: {reason}")]
    Consumer { topic: String, reason: String },
    #[error("topic {topic} has no partitions (metadata: {reason})")]
    NoPartitions { topic: String, reason: String },
    #[error("the harness's own consumer saw no {what} on topic {topic} within {secs}s")]
    NotLive { what: String, topic: String, secs: u64 },
    /// The target bucket's versions could not be listed.
    #[error("listing versions of bucket {bucket}: {detail}")]
    Listing { bucket: String, detail: String },
}

impl Observers {
    /// Starts both consumers from the beginning of their topics.
    pub async fn start(bootstrap: &str, events_topic: &str, outputs_topic: &str, run_id: &str, clock: Clock) -> Result<Self, ObserveError> {
        let observed = Arc::new(Observed::default());
        let events = topic::assign_all(bootstrap, events_topic, &[], &format!("harness-observer-{run_id}")).await?;
        let outputs = topic::assign_all(bootstrap, outputs_topic, &[], &format!("harness-observer-{run_id}")).await?;
        let tasks = vec![
            tokio::spawn(topic::record_events(events, observed.clone(), clock)),
            tokio::spawn(topic::record_outputs(outputs, observed.clone(), clock)),
        ];
        Ok(Observers { observed, tasks })
    }

    /// Like [`Observers::start`], but outputs are found by listing `bucket` under
    /// `prefixes` (for a pipeline whose MinIO the harness did not configure to
    /// announce them); the versions in `before` were there before the run and are
    /// not its outputs. Events
    /// are read from the offsets in `from` (partitions not named there: from the start).
    #[allow(clippy::too_many_arguments)]
    pub async fn start_listing(
        bootstrap: &str,
        events_topic: &str,
        from: &[(i32, rdkafka::Offset)],
        s3: aws_sdk_s3::Client,
        bucket: &str,
        prefixes: Vec<String>,
        before: std::collections::HashSet<Stamp>,
        run_id: &str,
        clock: Clock,
    ) -> Result<Self, ObserveError> {
        let observed = Arc::new(Observed::default());
        let events = topic::assign_all(bootstrap, events_topic, from, &format!("harness-observer-{run_id}")).await?;
        let tasks = vec![
            tokio::spawn(topic::record_events(events, observed.clone(), clock)),
            tokio::spawn(listing::poll_outputs(s3, bucket.to_string(), prefixes, observed.clone(), clock, before)),
        ];
        Ok(Observers { observed, tasks })
    }

    /// Waits until `pred` holds, re-checking whenever a record arrives.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&Observed) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.observed.changed.notified();
            if pred(&self.observed) {
                return true;
            }
            // Notify can miss a wake-up between the check and the wait; a short
            // timeout bounds that without busy-polling.
            let step = deadline.saturating_duration_since(tokio::time::Instant::now()).min(Duration::from_millis(250));
            if step.is_zero() {
                return pred(&self.observed);
            }
            let _ = tokio::time::timeout(step, changed).await;
        }
    }

    pub fn stop(self) -> Arc<Observed> {
        self.observed.clone()
        // Drop aborts the consumers.
    }
}

impl Drop for Observers {
    /// Also on cancellation (Ctrl-C): consumers must not outlive the run and talk to
    /// a broker that is being stopped.
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
