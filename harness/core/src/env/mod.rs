//! Environments: where the services of a run live, and what a run gets back
//! from one (endpoints, service logs, readiness timings).
//!
//! Only the local environment exists so far ([`local::LocalEnv`]): Kafka and
//! MinIO as child processes on 127.0.0.1.

pub mod local;

use std::path::PathBuf;
use std::time::Duration;

use crate::services::provision::ProvisionError;
use crate::services::ServiceError;

pub use local::LocalEnv;

/// What a run needs from its environment.
#[derive(Clone, Debug)]
pub struct EnvSpec {
    /// Everything of the run goes below: `logs/` (always kept), `kafka/`, `minio/`.
    pub run_dir: PathBuf,
    /// Topic MinIO's pipeline events (source bucket) go to.
    pub events_topic: String,
    /// Topic MinIO's events of the target bucket go to (observing outputs).
    pub outputs_topic: String,
    pub events_partitions: i32,
    pub source_bucket: String,
    pub target_bucket: String,
    /// Give MinIO's Kafka targets a `queue_dir` under the run dir.
    pub minio_queue_dir: bool,
    /// `MINIO_API_SYNC_EVENTS=on`: a PUT waits for its notification.
    pub minio_sync_events: bool,
    /// Limit for each readiness condition (Kafka, MinIO, canary).
    pub ready_timeout: Duration,
    /// Give MinIO's Kafka targets this address instead of the broker's (a
    /// misconfiguration on purpose, to prove the harness diagnoses it).
    pub minio_kafka_address: Option<String>,
}

/// S3 credentials of a run. They are generated per run and must never reach a
/// log, an error or a report: `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("region", &self.region)
            .finish()
    }
}

/// Where the services of a running environment are reached.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// `host:port[,host:port]`.
    pub kafka_bootstrap: String,
    /// `http://host:port`.
    pub s3_endpoint: String,
    pub credentials: S3Credentials,
    pub events_topic: String,
    pub outputs_topic: String,
    pub source_bucket: String,
    pub target_bucket: String,
}

/// One service of the environment, for the report.
#[derive(Clone, Debug)]
pub struct ServiceInfo {
    pub name: String,
    pub version: String,
    pub log_path: PathBuf,
    /// Pid while it runs (for fault injectors); `None` once stopped.
    pub pid: Option<u32>,
}

/// How long each part of getting ready took.
#[derive(Clone, Debug, Default)]
pub struct ReadyTimings {
    /// Spawn of the broker to a passed produce/consume round trip.
    pub kafka: Duration,
    /// Spawn of MinIO to a passed put/get/delete.
    pub minio: Duration,
    /// Topics, buckets, notifications and the canary's event on the topic.
    pub canary: Duration,
    /// `LocalEnv::start` from call to return.
    pub total: Duration,
}

/// Why an environment could not be provided. Exit code 3 territory.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The binaries could not be found, fetched or built.
    #[error("provisioning failed: {0}")]
    Provision(#[from] ProvisionError),
    /// A service did not start or did not become ready (message names it and
    /// carries its log tail).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Everything started, but the canary's notification never arrived.
    #[error("MinIO accepted the canary upload {bucket}/{key} but no notification arrived on topic {topic} within {}{}; MinIO's log says:\n{minio_log_tail}", crate::services::secs(*timeout), diagnosis.as_ref().map(|d| format!("; {d}")).unwrap_or_default())]
    Canary {
        bucket: String,
        key: String,
        topic: String,
        timeout: Duration,
        /// The likely cause, when the harness could find it (names the address).
        diagnosis: Option<String>,
        minio_log_tail: String,
    },
    /// The run dir could not be prepared or cleaned.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_error_names_the_stage_topic_and_minio_log() {
        let err = EnvError::Canary {
            bucket: "images".into(),
            key: "_harness/canary/ab.png".into(),
            topic: "minio-events".into(),
            timeout: Duration::from_secs(60),
            diagnosis: None,
            minio_log_tail: "API: http://127.0.0.1:9000".into(),
        };
        assert_eq!(
            err.to_string(),
            "MinIO accepted the canary upload images/_harness/canary/ab.png but no notification \
             arrived on topic minio-events within 60s; MinIO's log says:\nAPI: http://127.0.0.1:9000"
        );
    }

    #[test]
    fn credentials_debug_redacts_the_secret() {
        let creds = S3Credentials {
            access_key: "harness-abc".into(),
            secret_key: "s3cr3t-value".into(),
            region: "us-east-1".into(),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("harness-abc"));
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        let endpoints = Endpoints {
            kafka_bootstrap: "127.0.0.1:1".into(),
            s3_endpoint: "http://127.0.0.1:2".into(),
            credentials: creds,
            events_topic: "e".into(),
            outputs_topic: "o".into(),
            source_bucket: "s".into(),
            target_bucket: "t".into(),
        };
        assert!(!format!("{endpoints:?}").contains("s3cr3t-value"));
    }
}
