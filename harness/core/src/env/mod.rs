//! Environments: where the services of a run live, and what a run gets back
//! from one (endpoints, service logs, readiness timings).
//!
//! - [`local::LocalEnv`]: Kafka and MinIO as child processes on 127.0.0.1.
//! - [`containers::ContainersEnv`]: Kafka, MinIO and the builtin processor as
//!   containers (testcontainers) on a network of the run's own.
//! - [`kubernetes::KubernetesEnv`]: the same as StatefulSets and a Deployment in a
//!   namespace of the run's own, on the cluster the kube context names.
//! - [`external::ExternalEnv`]: a pipeline that already runs; nothing is started.
//!
//! [`Environment`] is the one a run holds (`Box<dyn Environment>`, from [`start`]):
//! the operations of every environment in one vocabulary, for the run lifecycle
//! and for fault injection.

pub mod containers;
pub mod external;
pub mod kubernetes;
pub mod local;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use harness_model::scenario::{EnvKind, Link, Service, Target};
use tokio::sync::watch;

use crate::engine::images::ImageSource;
use crate::netfault::LinkControl;
pub use crate::services::endpoints::{Endpoints, S3Credentials};
use crate::services::processor::{ProcessorSpec, ProcessorStatus};
use crate::services::provision::{ProvisionError, Toolchain};
use crate::services::ServiceError;

pub use containers::ContainersEnv;
pub use kubernetes::KubernetesEnv;
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
    /// Kafka run by an operator (kubernetes only): `None`, the harness's own.
    pub kafka_operator: Option<harness_model::scenario::KafkaOperator>,
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
    /// MinIO's Kafka target points at a SASL_PLAINTEXT listener of the broker on
    /// this port, and speaks PLAINTEXT to it (a misconfiguration on purpose; local only).
    pub minio_listener_sasl: Option<u16>,
    /// MinIO's pipeline target speaks SASL/PLAIN to the broker's PLAINTEXT
    /// listener (a misconfiguration on purpose; local only).
    pub minio_target_sasl: bool,
    /// Put a TCP fault proxy on each link (`minio->kafka`, `processor->kafka`,
    /// `processor->minio`) for network faults (local only).
    pub fault_links: bool,
    /// The scenario's seed (the proxies' jitter).
    pub seed: u64,
    /// Values the run masks in every log besides its own credentials: the
    /// scenario's `processor.secret_env`.
    pub secrets: Vec<String>,
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
    /// The processor could not be stopped or started as asked (message names it).
    #[error("{0}")]
    Processor(String),
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

/// What a run holds of its environment: one vocabulary of services
/// ([`Service`]) and operations for every environment. The run lifecycle uses the
/// first group; fault injection the operations below them, which are
/// [`harness_model::scenario::Op`]s: an environment implements those its
/// [`EnvKind::fault_ops`] lists (a test holds each environment to its list) and
/// leaves the others to the default, a typed [`EnvError::Unsupported`].
///
/// Adding an environment: a module implementing this trait, and its line in [`start`].
#[async_trait]
pub trait Environment: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> EnvKind;
    fn endpoints(&self) -> &Endpoints;
    /// The services, for the report (and the pids the fault journal records).
    fn services(&self) -> Vec<ServiceInfo>;
    fn ready_timings(&self) -> &ReadyTimings;
    fn canary_key(&self) -> &str;
    /// Where the harness's observers start reading the events topic, per partition;
    /// `None`: from the beginning (a topic of the harness's own, empty before the run).
    /// A pipeline the harness did not start has a topic of any length: read from where
    /// it ended before the canary, so memory and work follow this run, not its history.
    fn events_from(&self) -> Option<Vec<(i32, rdkafka::Offset)>> {
        None
    }
    fn run_dir(&self) -> &Path;
    /// MinIO's queue dir on the host, when it has one there.
    fn minio_queue_dir(&self) -> Option<PathBuf>;
    /// Whether MinIO keeps undelivered events in a queue dir (`queue_dir_loss`
    /// needs one to wipe).
    fn has_minio_queue_dir(&self) -> bool {
        self.minio_queue_dir().is_some()
    }
    /// [`Op::WipeQueue`]: removes the events MinIO holds in its queue dir; returns
    /// how many and for which objects, and where they were (for the fault's proof).
    async fn wipe_minio_queue(&self) -> Result<(crate::fault::Wiped, String), EnvError> {
        let Some(dir) = self.minio_queue_dir() else {
            return Err(unsupported(self.kind(), "wiping MinIO's queue dir (it has none)".to_string()));
        };
        let wiped = crate::fault::wipe_dir_contents(&dir)
            .map_err(|source| EnvError::Io { context: format!("wiping {}", dir.display()), source })?;
        Ok((wiped, dir.display().to_string()))
    }
    /// The last `n` lines of a service's log.
    async fn log_tail(&self, service: &str, n: usize) -> String;
    /// Starts the processor under its supervisor (restarted when it exits on its own).
    async fn start_processor(&mut self, spec: ProcessorSpec) -> Result<(), EnvError>;
    /// Stops every processor replica; returns the first one's final status.
    async fn stop_processor(&mut self) -> Option<ProcessorStatus>;
    fn processor_events(&self) -> Option<watch::Receiver<ProcessorStatus>>;
    /// Stops and removes everything (`keep`: data stays for a look).
    async fn shutdown(self: Box<Self>, keep: bool) -> Result<(), EnvError>;

    /// [`Op::Stop`]: ends a service (SIGTERM with its grace, or SIGKILL when
    /// `hard`); returns how it exited, as a whole phrase for the fault's proof
    /// ("process exit code 143 after SIGTERM", "pod kafka-0 deleted with …").
    async fn stop_service(&mut self, service: Service, hard: bool) -> Result<Option<String>, EnvError> {
        let _ = hard;
        Err(unsupported(self.kind(), format!("stopping {}", service.name())))
    }

    /// [`Op::Stop`]: starts an ended service again on its ports and data; returns
    /// once it is ready, with how long that took.
    async fn start_service(&mut self, service: Service) -> Result<Duration, EnvError> {
        Err(unsupported(self.kind(), format!("starting {} again", service.name())))
    }

    /// [`Op::Pause`]: freezes a service. Returns the pid to resume with SIGCONT when
    /// the freeze is a signal, so a dropped guard can heal it without awaiting.
    async fn pause_service(&mut self, service: Service) -> Result<Option<u32>, EnvError> {
        Err(unsupported(self.kind(), format!("pausing {}", service.name())))
    }

    async fn resume_service(&mut self, service: Service) -> Result<(), EnvError> {
        Err(unsupported(self.kind(), format!("resuming {}", service.name())))
    }

    /// [`Op::Disconnect`]: cuts a service off the run's network.
    async fn disconnect(&mut self, service: Service) -> Result<(), EnvError> {
        Err(unsupported(self.kind(), format!("disconnecting {} from the network", service.name())))
    }

    async fn reconnect(&mut self, service: Service) -> Result<(), EnvError> {
        Err(unsupported(self.kind(), format!("reconnecting {} to the network", service.name())))
    }

    /// KRaft node ids of the Kafka cluster (`[1]` for one broker).
    fn kafka_node_ids(&self) -> Vec<u32> {
        vec![1]
    }

    /// [`Op::StopBroker`]: ends one broker of the cluster (SIGTERM with its grace,
    /// or SIGKILL when `hard`); returns how it exited.
    async fn stop_broker(&mut self, node_id: u32, hard: bool) -> Result<Option<String>, EnvError> {
        let _ = hard;
        Err(unsupported(self.kind(), format!("stopping broker {node_id} of a cluster")))
    }

    /// [`Op::StopBroker`]: starts one broker again on its ports and data; returns
    /// once its own produce/consume round trip passed.
    async fn start_broker(&mut self, node_id: u32) -> Result<Duration, EnvError> {
        Err(unsupported(self.kind(), format!("starting broker {node_id} of a cluster")))
    }

    /// [`Op::LinkProxy`]: the fault proxies of a network fault's target (a link, or
    /// every link to a service).
    fn link_controls(&self, target: Target) -> Result<Vec<LinkControl>, EnvError> {
        Err(unsupported(self.kind(), format!("faults on {target} (they need the local environment's fault proxies)")))
    }

    /// How a probe crosses `link` the way its client does (through its proxy).
    fn link_path(&self, link: Link) -> Option<LinkPath> {
        let _ = link;
        None
    }

    /// [`Op::KillProcessor`]: SIGKILL to the processor; returns the pid it had. Its
    /// supervisor restarts it.
    async fn kill_processor(&mut self) -> Result<u32, EnvError> {
        Err(unsupported(self.kind(), "killing the processor"))
    }

    /// [`Op::AddReplica`]: one more processor replica in the same consumer group;
    /// returns its pid.
    async fn add_processor_replica(&mut self) -> Result<u32, EnvError> {
        Err(unsupported(self.kind(), "starting a processor replica"))
    }
}

/// What starting an environment needs besides its [`EnvSpec`].
pub struct StartContext<'a> {
    pub toolchain: &'a Toolchain,
    pub run_id: &'a str,
    /// Containers: images built here, or the official ones.
    pub images: ImageSource,
    /// The `harness` binary, which runs the builtin processor (`harness processor`)
    /// in the processor image.
    pub harness_bin: &'a Path,
    pub progress: &'a (dyn Fn(&str) + Sync),
    /// The external environment's endpoints (the scenario's `environment.external`).
    pub external: Option<&'a harness_model::scenario::External>,
    /// The processor's consumer group (the external environment checks it).
    pub processor_group: &'a str,
}

/// Starts the environment a scenario names: the one registration point of every
/// environment (the match is exhaustive).
/// Each start is boxed: the futures are large, and nesting them in a run's future
/// overflows the compiler's layout depth.
pub async fn start(kind: EnvKind, spec: EnvSpec, cx: &StartContext<'_>) -> Result<Box<dyn Environment>, EnvError> {
    match kind {
        EnvKind::Local => Ok(Box::new(Box::pin(LocalEnv::start(spec, cx.toolchain, cx.progress)).await?)),
        EnvKind::Containers => {
            Ok(Box::new(Box::pin(ContainersEnv::start(spec, cx.toolchain, cx.run_id, cx.images, cx.harness_bin, cx.progress)).await?))
        }
        EnvKind::Kubernetes => {
            Ok(Box::new(Box::pin(KubernetesEnv::start(spec, cx.toolchain, cx.run_id, cx.images, cx.harness_bin, cx.progress)).await?))
        }
        EnvKind::External => {
            let ext = cx.external.ok_or_else(|| unsupported(kind, "a run without `environment.external` (validation requires it)"))?;
            Ok(Box::new(Box::pin(external::ExternalEnv::start(spec, ext, cx.run_id, cx.processor_group, cx.progress)).await?))
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

/// The error of an operation `environment` cannot carry out.
pub fn unsupported(environment: EnvKind, operation: impl Into<String>) -> EnvError {
    EnvError::Unsupported { environment: environment.name(), operation: operation.into() }
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
}
