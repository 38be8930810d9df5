//! Environments: where the services of a run live, and what a run gets back
//! from one (endpoints, service logs, readiness timings).
//!
//! - [`local::LocalEnv`]: Kafka and MinIO as child processes on 127.0.0.1.
//! - [`containers::ContainersEnv`]: Kafka, MinIO and the builtin processor as
//!   containers (testcontainers) on a network of the run's own.
//!
//! [`Env`] is the one a run holds: the operations of both, for the run lifecycle
//! and for fault injection.

pub mod containers;
pub mod local;

use std::path::PathBuf;
use std::time::Duration;

use crate::services::provision::ProvisionError;
use crate::services::ServiceError;

pub use containers::ContainersEnv;
pub use local::LocalEnv;

use crate::services::canary::{self, CanaryError};
use crate::services::{kafka, minio};

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
    /// Kafka brokers: 1, or 3 for a replicated cluster (local only).
    pub kafka_brokers: u32,
    pub source_bucket: String,
    pub target_bucket: String,
    /// Give MinIO's Kafka targets a `queue_dir` under the run dir.
    pub minio_queue_dir: bool,
    /// With `minio_queue_dir`: the pipeline target's `queue_limit` (`None`: MinIO's default).
    pub minio_queue_limit: Option<u32>,
    /// `MINIO_API_SYNC_EVENTS=on`: a PUT waits for its notification.
    pub minio_sync_events: bool,
    /// Limit for each readiness condition (Kafka, MinIO, canary).
    pub ready_timeout: Duration,
    /// Give MinIO's Kafka targets this address instead of the broker's (a
    /// misconfiguration on purpose, to prove the harness diagnoses it).
    pub minio_kafka_address: Option<String>,
    /// MinIO bootstraps from a broker listener of its own that advertises this
    /// address, where nothing answers (a misconfiguration on purpose; local only).
    pub minio_listener_advertises: Option<String>,
    /// Put a TCP fault proxy on each link (`minio->kafka`, `processor->kafka`,
    /// `processor->minio`) for network faults (local only).
    pub fault_links: bool,
    /// The scenario's seed (the proxies' jitter).
    pub seed: u64,
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
    /// Everything started, but the canary's notification never arrived (boxed:
    /// the largest variant, and errors travel by value).
    #[error(transparent)]
    Canary(Box<CanaryLost>),
    /// The container engine or one of its operations failed (message names it).
    #[error("{0}")]
    Engine(String),
    /// The environment cannot do this (validation should have rejected the scenario).
    #[error("{operation} is not supported by the {environment} environment")]
    Unsupported { environment: &'static str, operation: String },
    /// The run dir could not be prepared or cleaned.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// MinIO accepted the canary upload, but its notification never reached the topic.
#[derive(Debug, thiserror::Error)]
#[error("MinIO accepted the canary upload {bucket}/{key} but no notification arrived on topic {topic} within {}{}; MinIO's log says:\n{minio_log_tail}", crate::services::secs(*timeout), diagnosis.as_ref().map(|d| format!("; {d}")).unwrap_or_default())]
pub struct CanaryLost {
    pub bucket: String,
    pub key: String,
    pub topic: String,
    pub timeout: Duration,
    /// The likely cause, when the harness could find it (names the address).
    pub diagnosis: Option<String>,
    pub minio_log_tail: String,
}

/// The environment of a run, whichever kind the scenario asked for.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per run, never moved in a loop
pub enum Env {
    Local(LocalEnv),
    Containers(Box<ContainersEnv>),
}

pub use containers::Service;

impl Env {
    /// `local` or `containers`, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Env::Local(_) => "local",
            Env::Containers(_) => "containers",
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        match self {
            Env::Local(e) => e.endpoints(),
            Env::Containers(e) => e.endpoints(),
        }
    }

    pub fn services(&self) -> Vec<ServiceInfo> {
        match self {
            Env::Local(e) => e.services(),
            Env::Containers(e) => e.services(),
        }
    }

    pub fn ready_timings(&self) -> &ReadyTimings {
        match self {
            Env::Local(e) => e.ready_timings(),
            Env::Containers(e) => e.ready_timings(),
        }
    }

    pub fn canary_key(&self) -> &str {
        match self {
            Env::Local(e) => e.canary_key(),
            Env::Containers(e) => e.canary_key(),
        }
    }

    pub fn run_dir(&self) -> &std::path::Path {
        match self {
            Env::Local(e) => e.run_dir(),
            Env::Containers(e) => e.run_dir(),
        }
    }

    pub fn minio_queue_dir(&self) -> Option<PathBuf> {
        match self {
            Env::Local(e) => e.minio_queue_dir(),
            Env::Containers(e) => e.minio_queue_dir(),
        }
    }

    /// The last `n` lines of a service's log.
    pub async fn log_tail(&self, service: &str, n: usize) -> String {
        match self {
            Env::Local(e) => e.log_tail(service, n),
            Env::Containers(e) => e.log_tail(service, n).await,
        }
    }

    pub async fn start_processor(&mut self, spec: crate::services::processor::ProcessorSpec) -> Result<(), EnvError> {
        match self {
            Env::Local(e) => e.start_processor(spec).await,
            Env::Containers(e) => e.start_processor(spec).await,
        }
    }

    pub async fn stop_processor(&mut self) -> Option<crate::services::processor::ProcessorStatus> {
        match self {
            Env::Local(e) => e.stop_processor().await,
            Env::Containers(e) => e.stop_processor().await,
        }
    }

    pub fn processor_events(&self) -> Option<tokio::sync::watch::Receiver<crate::services::processor::ProcessorStatus>> {
        match self {
            Env::Local(e) => e.processor_events(),
            Env::Containers(e) => e.processor_events(),
        }
    }

    pub async fn shutdown(self, keep: bool) -> Result<(), EnvError> {
        match self {
            Env::Local(e) => e.shutdown(keep).await,
            Env::Containers(e) => (*e).shutdown(keep).await,
        }
    }

    /// Ends a service (SIGTERM with its grace, or SIGKILL when `hard`); returns how
    /// it exited.
    pub async fn stop_service(&mut self, service: Service, hard: bool) -> Result<Option<String>, EnvError> {
        let signal = if hard { libc::SIGKILL } else { libc::SIGTERM };
        match (self, service) {
            (Env::Local(e), Service::Kafka) => e.signal_kafka(signal).await,
            (Env::Local(e), Service::Minio) => e.signal_minio(signal).await,
            (Env::Local(_), Service::Processor) => Err(unsupported("local", "stopping the processor as a fault")),
            (Env::Containers(e), s) => e.stop_service(s, hard).await,
        }
    }

    /// Starts an ended service again on its ports and data; returns once it is ready.
    pub async fn start_service(&mut self, service: Service) -> Result<Duration, EnvError> {
        match (self, service) {
            (Env::Local(e), Service::Kafka) => e.restart_kafka().await,
            (Env::Local(e), Service::Minio) => e.restart_minio().await,
            (Env::Local(_), Service::Processor) => Err(unsupported("local", "starting the processor as a heal")),
            (Env::Containers(e), s) => e.start_service(s).await,
        }
    }

    /// Freezes a service. Returns the pid to resume with SIGCONT when the freeze is
    /// a signal (local), so a dropped guard can heal it without awaiting.
    pub async fn pause_service(&mut self, service: Service) -> Result<Option<u32>, EnvError> {
        match (self, service) {
            (Env::Local(e), Service::Kafka) => {
                let pid = e.kafka_pid().ok_or_else(|| unsupported("local", "pausing a broker that is not running"))?;
                e.signal_kafka(libc::SIGSTOP).await?;
                Ok(Some(pid))
            }
            (Env::Local(_), _) => Err(unsupported("local", "pausing anything but the broker locally")),
            (Env::Containers(e), s) => e.pause_service(s).await.map(|()| None),
        }
    }

    pub async fn resume_service(&mut self, service: Service) -> Result<(), EnvError> {
        match (self, service) {
            (Env::Local(e), Service::Kafka) => e.signal_kafka(libc::SIGCONT).await.map(|_| ()),
            (Env::Local(_), _) => Err(unsupported("local", "resuming anything but the broker locally")),
            (Env::Containers(e), s) => e.resume_service(s).await,
        }
    }

    /// Cuts a service off the run's network (containers; the local environment
    /// partitions links through its fault proxies instead).
    pub async fn disconnect(&mut self, service: Service) -> Result<(), EnvError> {
        match self {
            Env::Local(_) => Err(unsupported("local", "disconnecting a service (partition its links instead)")),
            Env::Containers(e) => e.disconnect(service).await,
        }
    }

    pub async fn reconnect(&mut self, service: Service) -> Result<(), EnvError> {
        match self {
            Env::Local(_) => Err(unsupported("local", "reconnecting a service")),
            Env::Containers(e) => e.reconnect(service).await,
        }
    }

    /// KRaft node ids of the Kafka cluster (`[1]` for one broker).
    pub fn kafka_node_ids(&self) -> Vec<u32> {
        match self {
            Env::Local(e) => e.kafka_node_ids(),
            Env::Containers(_) => vec![1],
        }
    }

    /// Ends one broker of the cluster (SIGTERM with its grace, or SIGKILL when
    /// `hard`); returns how it exited. Local only.
    pub async fn stop_broker(&mut self, node_id: u32, hard: bool) -> Result<Option<String>, EnvError> {
        let signal = if hard { libc::SIGKILL } else { libc::SIGTERM };
        match self {
            Env::Local(e) => e.signal_kafka_node(node_id, signal).await,
            Env::Containers(_) => Err(unsupported("containers", "stopping one broker of a cluster")),
        }
    }

    /// Starts one broker of the cluster again on its ports and data; returns once
    /// its own produce/consume round trip passed.
    pub async fn start_broker(&mut self, node_id: u32) -> Result<Duration, EnvError> {
        match self {
            Env::Local(e) => e.restart_kafka_node(node_id).await,
            Env::Containers(_) => Err(unsupported("containers", "starting one broker of a cluster")),
        }
    }

    /// Whether network faults go through fault proxies on the links.
    pub fn has_fault_links(&self) -> bool {
        matches!(self, Env::Local(e) if e.has_fault_links())
    }

    /// The fault proxies of a network fault's target: a link, or every link to a
    /// service (`kafka`, `minio`).
    pub fn link_controls(&self, target: &str) -> Result<Vec<crate::netfault::LinkControl>, EnvError> {
        match self {
            Env::Local(e) => e.link_controls(target),
            Env::Containers(_) => Err(unsupported("containers", "faults on a link (they need the local environment's fault proxies)")),
        }
    }

    /// How a probe crosses `link` the way its client does (through its proxy).
    pub fn link_path(&self, link: &str) -> Option<LinkPath> {
        match self {
            Env::Local(e) => e.link_path(link),
            Env::Containers(_) => None,
        }
    }

    /// One more processor replica in the same consumer group; returns its pid.
    pub async fn add_processor_replica(&mut self) -> Result<u32, EnvError> {
        match self {
            Env::Local(e) => e.add_processor_replica().await,
            Env::Containers(e) => e.add_processor_replica().await,
        }
    }

    /// SIGKILL to the processor; returns the pid it had. Its supervisor restarts it.
    pub async fn kill_processor(&mut self) -> Result<u32, EnvError> {
        match self {
            Env::Local(e) => {
                let status = e.processor_events().ok_or_else(|| unsupported("local", "killing a processor when none runs"))?;
                let pid = status.borrow().pid.ok_or_else(|| unsupported("local", "killing the processor between restarts"))?;
                kill_pid(pid)?;
                Ok(pid)
            }
            Env::Containers(e) => e.kill_processor().await,
        }
    }
}

/// Where a probe goes to cross a link as its client does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkPath {
    /// A Kafka bootstrap address (the proxy; the broker advertises it back).
    Kafka(String),
    /// An S3 endpoint, `http://host:port`.
    S3(String),
}

fn unsupported(environment: &'static str, operation: &str) -> EnvError {
    EnvError::Unsupported { environment, operation: operation.to_string() }
}

/// SIGKILL to one process.
pub(crate) fn kill_pid(pid: u32) -> Result<(), EnvError> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } != 0 {
        return Err(EnvError::Io { context: format!("SIGKILL to pid {pid}"), source: std::io::Error::last_os_error() });
    }
    Ok(())
}

/// Why the pipeline's topics, buckets, notifications or canary could not be set up.
pub(crate) enum Unprepared {
    Service(ServiceError),
    /// Everything was accepted, but the canary's notification never arrived.
    NoEvent,
}

impl Unprepared {
    /// The error for everything but `NoEvent`, which each environment diagnoses itself.
    pub(crate) fn into_env_error(self) -> EnvError {
        match self {
            Unprepared::Service(e) => e.into(),
            Unprepared::NoEvent => EnvError::Engine("the canary's notification never arrived".into()),
        }
    }
}

/// Topics → buckets (target versioned) → bucket notifications → canary, the same
/// in every environment, through the endpoints the harness itself uses.
pub(crate) async fn prepare_pipeline(bootstrap: &str, s3: &aws_sdk_s3::Client, spec: &EnvSpec, canary_key: &str) -> Result<(), Unprepared> {
    let topic = |name: &str, partitions: i32| {
        let name = name.to_string();
        async move {
            kafka::create_topic(bootstrap, &name, partitions, spec.kafka_brokers, Duration::from_secs(30))
                .await
                .map_err(|detail| Unprepared::Service(ServiceError::setup(kafka::SERVICE, format!("creating topic {name}"), detail)))
        }
    };
    topic(&spec.events_topic, spec.events_partitions).await?;
    topic(&spec.outputs_topic, 1).await?;
    minio::setup_bucket(s3, &spec.source_bucket, false).await.map_err(Unprepared::Service)?;
    minio::setup_bucket(s3, &spec.target_bucket, true).await.map_err(Unprepared::Service)?;
    minio::notify_on_create(s3, &spec.source_bucket, minio::EVENTS_TARGET).await.map_err(Unprepared::Service)?;
    minio::notify_on_create(s3, &spec.target_bucket, minio::OUTPUTS_TARGET).await.map_err(Unprepared::Service)?;
    let result =
        canary::run_canary(s3, bootstrap, &spec.events_topic, spec.events_partitions, &spec.source_bucket, canary_key, spec.ready_timeout)
            .await;
    match result {
        Ok(_) => Ok(()),
        Err(CanaryError::Setup(detail)) => Err(Unprepared::Service(ServiceError::setup(minio::SERVICE, "canary", detail))),
        Err(CanaryError::NoEvent) => Err(Unprepared::NoEvent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_error_names_the_stage_topic_and_minio_log() {
        let err = EnvError::Canary(Box::new(CanaryLost {
            bucket: "images".into(),
            key: "_harness/canary/ab.png".into(),
            topic: "minio-events".into(),
            timeout: Duration::from_secs(60),
            diagnosis: None,
            minio_log_tail: "API: http://127.0.0.1:9000".into(),
        }));
        assert_eq!(
            err.to_string(),
            "MinIO accepted the canary upload images/_harness/canary/ab.png but no notification \
             arrived on topic minio-events within 60s; MinIO's log says:\nAPI: http://127.0.0.1:9000"
        );
    }

    #[test]
    fn credentials_debug_redacts_the_secret() {
        let creds = S3Credentials { access_key: "harness-abc".into(), secret_key: "s3cr3t-value".into(), region: "us-east-1".into() };
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
