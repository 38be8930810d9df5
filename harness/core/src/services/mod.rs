//! The services of a run: provisioning their binaries, running them as child
//! processes, and proving them ready through their real client paths.
//!
//! - [`provision`]: Kafka's jars and MinIO's binary in a per-user cache.
//! - [`process`]: child processes in one process group per run, with logs.
//! - [`redact`]: the run's secrets masked in every log it keeps.
//! - [`ready`]: waiting for a readiness probe, a process exit or a timeout.
//! - [`kafka`]: a single-broker KRaft Kafka on 127.0.0.1.
//! - [`minio`]: a single-node MinIO with two Kafka notification targets.
//! - [`endpoints`]: where the services are reached, and the run's S3 credentials.
//! - [`s3`]: the S3 client every part of the harness uses.
//! - [`probe`]: one-shot probes through the real client paths (proofs, diagnoses).
//! - [`canary`]: one upload whose notification must arrive before a run starts.
//! - [`processor`]: the processor under test, supervised like a Deployment.
//!
//! Nothing here knows about scenarios or environments; `env` wires these pieces together.

pub mod canary;
pub mod endpoints;
pub mod kafka;
pub mod minio;
pub mod ports;
pub mod probe;
pub mod process;
pub mod processor;
pub mod provision;
pub mod ready;
pub mod redact;
pub mod s3;
pub(crate) mod token;

use std::path::PathBuf;
use std::time::Duration;

/// Why a service could not be started or proven ready.
///
/// Every variant names the service; the ones about a running process carry the
/// last lines of its log, because that is where the reason usually is.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The program could not be started at all.
    #[error("{service}: could not start {program}: {source}")]
    Spawn {
        service: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or directory the service needs could not be prepared.
    #[error("{service}: {context}: {source}")]
    Io {
        service: String,
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The process exited while it should have been starting or running.
    #[error("{service} exited during startup ({status}); last lines of {log}:\n{tail}", log = log.display())]
    Exited { service: String, status: String, log: PathBuf, tail: String },
    /// A port picked for the service was taken by someone else before it bound it.
    #[error("{service} could not bind its port (address already in use); last lines of {log}:\n{tail}", log = log.display())]
    PortInUse { service: String, log: PathBuf, tail: String },
    /// The readiness probe did not pass in time.
    #[error("{service} was not ready within {}: {detail}; last lines of {log}:\n{tail}", secs(*timeout), log = log.display())]
    NotReady { service: String, timeout: Duration, detail: String, log: PathBuf, tail: String },
    /// A setup request through a client (create a topic, a bucket...) failed.
    #[error("{service}: {stage}: {detail}")]
    Setup { service: String, stage: String, detail: String },
}

/// "60s", "0.3s": durations in messages for people.
pub(crate) fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl ServiceError {
    /// True when retrying with fresh ports may help.
    pub fn is_port_in_use(&self) -> bool {
        matches!(self, ServiceError::PortInUse { .. })
    }

    pub(crate) fn io(service: &str, context: impl Into<String>, source: std::io::Error) -> Self {
        ServiceError::Io { service: service.to_string(), context: context.into(), source }
    }

    pub(crate) fn setup(service: &str, stage: impl Into<String>, detail: impl ToString) -> Self {
        ServiceError::Setup { service: service.to_string(), stage: stage.into(), detail: detail.to_string() }
    }
}
