//! Scenario types, run history, ledger, checker, metrics and verdicts.
//!
//! Everything here is pure: no I/O beyond reading a scenario file's text, no async,
//! no Kafka or S3 clients. The engine in `harness-core` records a [`history::History`]
//! and hands it to [`check::check`]; reports are built from [`results::RunResults`].

pub mod check;
pub mod compare;
pub mod exit;
pub mod history;
pub mod kafka_wire;
pub mod keys;
pub mod lint;
pub mod metrics;
pub mod minio_admin;
pub mod records;
pub mod results;
pub mod rng;
pub mod roster;
pub mod scenario;
pub mod text;
pub mod verdict;
pub mod workload;

/// Object keys under this prefix belong to the harness (readiness canaries) and are
/// never part of a ledger.
pub const HARNESS_KEY_PREFIX: &str = "_harness/";
