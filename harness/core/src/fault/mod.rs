//! Fault injection: faults as values with a guard, proof probes, and the scheduler
//! that runs a scenario's fault schedule alongside the workload.
//!
//! - [`guard`]: applying a fault returns an [`Injected`] guard; `heal` undoes it
//!   (idempotent), and dropping an unhealed guard heals what can be healed without
//!   waiting (a paused broker gets SIGCONT; a stopped service is left to teardown).
//! - What each kind does, needs and proves is data: `harness_model::scenario::describe`.
//!   The guard carries out its `Action`, the schedule its `Proof`s.
//! - Probes through the real client paths (a Kafka produce, an S3 HEAD) live in
//!   `services::probe`; the schedule also reads the processor supervisor's status.
//! - [`schedule`]: waits for each fault's start, applies it, proves it, heals it
//!   after `down_for`, proves the recovery and records a `FaultWindow`.
//!
//! - [`conformance`]: every kind against a running environment, held to its description.
//! - [`journal`]: each fault is journaled before it is applied; the next run heals
//!   what a killed run left behind.
//!
//! A fault whose effect was never shown is recorded with `effect_seen_at: None`,
//! which makes the run Unknown (`faults.took_effect`), never Pass.

mod cluster;
pub mod conformance;
pub mod decoy;
mod events;
mod guard;
pub mod journal;
mod links;
mod schedule;

pub use crate::services::probe::{advertised_brokers, group_probe, kafka_probe, s3_probe, topic_partitions, PartitionInfo};
pub use decoy::HttpDecoy;
pub use guard::{admissible, inject, queued_event_keys, wipe_dir_contents, Injected, Wiped, QUEUED_EVENT_HEAD, QUEUE_DIR_DEPTH};
pub use schedule::{run_schedule, ScheduleInputs};

/// Why a fault could not be applied or healed.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("fault #{index} {kind}: {what}: {source}")]
    Env {
        index: u32,
        kind: &'static str,
        what: &'static str,
        #[source]
        source: crate::env::EnvError,
    },
    #[error("fault #{index} {kind}: {what}")]
    Other { index: u32, kind: &'static str, what: String },
}
