//! Every fault kind against one running environment: injected, proven and healed
//! where the kind's description ([`harness_model::scenario::describe`]) says this
//! environment can do it, refused everywhere else. The tests hold each
//! environment to the catalog with it (`tests/faults.rs`, `tests/containers.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness_model::history::FaultWindow;
use harness_model::scenario::{self, capability, EventParams, FaultKind, FaultSpec, FaultStart, LinkParams};

use super::schedule::{run_schedule, ScheduleInputs};
use crate::clock::Clock;
use crate::env::Environment;
use crate::workload::UploadProgress;

/// Outage of each fault: long enough for its proof of effect to be seen.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// The keys [`upload_until_dropped`] puts during queue_dir_loss's outage start so.
const QUEUED_UPLOADS: &str = "conformance/queued-";

/// What one kind did against the environment.
#[derive(Debug)]
pub struct KindOutcome {
    pub kind: FaultKind,
    /// What validation says of this kind in this environment.
    pub expected: Result<(), String>,
    pub window: FaultWindow,
}

impl KindOutcome {
    /// `Ok` when what happened is what the description promised: applied, shown,
    /// healed and recovered where it is injectable; refused, untouched, elsewhere.
    pub fn verdict(&self) -> Result<(), String> {
        let w = &self.window;
        let says = |what: &str| Err(format!("{}: {what}; proof: {}", self.kind.key(), w.proof));
        match &self.expected {
            Ok(()) => {
                if w.healed_at.is_none() {
                    return says("injectable here by its description, but it was not applied and healed");
                }
                if w.effect_seen_at.is_none() {
                    return says("applied, but no effect was proven");
                }
                // [`every_kind`] uploads through queue_dir_loss's outage: the wipe must
                // take events of those uploads, not only whatever an earlier kind left.
                if self.kind == FaultKind::QueueDirLoss && !w.wiped_events.iter().any(|k| k.starts_with(QUEUED_UPLOADS)) {
                    return says(&format!(
                        "applied, but none of the events it wiped was for an upload made during its outage ({QUEUED_UPLOADS}*): {:?}",
                        w.wiped_events.iter().take(5).collect::<Vec<_>>()
                    ));
                }
                if w.recovered_at.is_none() {
                    return says("healed, but no recovery was proven");
                }
                Ok(())
            }
            Err(why) => {
                if w.healed_at.is_some() || w.effect_seen_at.is_some() || !w.proof.starts_with("could not be applied") {
                    return says(&format!("validation rejects it here ({why}), yet it was applied"));
                }
                Ok(())
            }
        }
    }
}

/// Runs one fault of every kind, in [`FaultKind::ALL`]'s order (`processor_join`,
/// which leaves a replica behind, is last), each through the scheduler as a run
/// would: journal, inject, proof of effect, heal, proof of recovery. The processor
/// started before must stay in `processor_group` through all of them (its
/// membership is what `processor_join` is proven against): a fault that leaves it
/// stuck fails the kind after it, as it found a fault proxy that did (see
/// `netfault::tests::a_side_that_closes_closes_the_other`).
pub async fn every_kind(env: &mut dyn Environment, processor_group: &str, say: &(dyn Fn(&str) + Sync)) -> Vec<KindOutcome> {
    // The facts validation would have had about this environment.
    let facts = scenario::Environment {
        kind: env.kind(),
        events_partitions: 1,
        kafka_brokers: env.kafka_node_ids().len() as u32,
        kafka_operator: None,
        minio_queue_dir: env.has_minio_queue_dir(),
        minio_queue_limit: None,
        minio_sync_events: false,
        ready_timeout: Duration::from_secs(60),
        misconfigure: None,
        external: None,
    };
    let clock = Clock::start();
    let (_done_tx, done_rx) = tokio::sync::watch::channel(false);
    let uploads = Arc::new(UploadProgress::default());
    let mut out = Vec::new();
    for (index, kind) in FaultKind::ALL.into_iter().enumerate() {
        let spec = FaultSpec {
            index: index as u32,
            kind,
            target: kind.target(),
            start: FaultStart::At(Duration::ZERO),
            down_for: if kind.has_outage() { DOWN_FOR } else { Duration::ZERO },
            heal_after_uploads: None,
            link: LinkParams::defaults(kind),
            events: EventParams::defaults(kind),
        };
        let expected = capability(kind, spec.target, &facts);
        // queue_dir_loss wipes the events MinIO queued while the broker was away: with
        // no uploads there would be none, and nothing to prove. Upload through it.
        let uploading = (kind == FaultKind::QueueDirLoss && expected.is_ok()).then(|| upload_until_dropped(env.endpoints()));
        let faults = [spec];
        let inputs = ScheduleInputs {
            faults: &faults,
            clock,
            workload_started: Instant::now(),
            uploads: uploads.clone(),
            workload_done: done_rx.clone(),
            say,
            processor_group,
        };
        let window = run_schedule(env, inputs).await.pop();
        drop(uploading);
        let Some(window) = window else {
            out.push(KindOutcome { kind, expected, window: not_run(kind, &faults[0]) });
            continue;
        };
        out.push(KindOutcome { kind, expected, window });
    }
    out
}

/// Puts a small object into the source bucket every 100 ms until the returned guard is
/// dropped (each upload publishes an event, queued by MinIO while Kafka is away).
fn upload_until_dropped(e: &crate::services::endpoints::Endpoints) -> AbortOnDrop {
    let client = crate::services::s3::s3_client(&e.s3_endpoint, &e.credentials);
    let bucket = e.source_bucket.clone();
    AbortOnDrop(tokio::spawn(async move {
        for i in 0u32.. {
            let key = format!("{QUEUED_UPLOADS}{i:05}.txt");
            let body = aws_sdk_s3::primitives::ByteStream::from_static(b"queued while the broker is away");
            let _ = tokio::time::timeout(Duration::from_secs(5), client.put_object().bucket(&bucket).key(key).body(body).send()).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }))
}

/// A task that ends with its guard.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn not_run(kind: FaultKind, spec: &FaultSpec) -> FaultWindow {
    FaultWindow {
        index: spec.index,
        kind: kind.key().into(),
        target: spec.target.to_string(),
        injected_at: 0,
        effect_seen_at: None,
        proof: "the scheduler skipped it".into(),
        healed_at: None,
        recovered_at: None,
        wiped_events: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_dir_loss(wiped: &[&str]) -> KindOutcome {
        KindOutcome {
            kind: FaultKind::QueueDirLoss,
            expected: Ok(()),
            window: FaultWindow {
                index: 0,
                kind: "queue_dir_loss".into(),
                target: "kafka".into(),
                injected_at: 0,
                effect_seen_at: Some(1),
                proof: "wiped".into(),
                healed_at: Some(2),
                recovered_at: Some(3),
                wiped_events: wiped.iter().map(|k| k.to_string()).collect(),
            },
        }
    }

    /// Events an earlier kind left queued do not prove that the outage's own uploads
    /// were lost: the wipe must have taken at least one of those.
    #[test]
    fn queue_dir_loss_counts_only_when_it_wiped_the_outages_own_uploads() {
        assert!(queue_dir_loss(&["conformance/queued-00003.txt"]).verdict().is_ok());
        let e = queue_dir_loss(&["probe-1.txt"]).verdict().unwrap_err();
        assert!(e.contains("none of the events it wiped was for an upload made during its outage"), "{e}");
        assert!(queue_dir_loss(&[]).verdict().is_err());
    }
}
