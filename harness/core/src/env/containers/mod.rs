//! The containers environment: Kafka, MinIO and the builtin processor as
//! containers started through testcontainers, on a network of the run's own,
//! against whatever engine `DOCKER_HOST` names (Docker, or podman's compatible
//! service).
//!
//! - Images come from [`crate::engine::images`], built locally from what the
//!   local environment provisions (no registry is needed).
//! - Kafka has two listeners: `INTERNAL` (advertised as `<kafka container>:9092`,
//!   for MinIO and the processor on the run's network) and `EXTERNAL` (advertised
//!   as `127.0.0.1:<published port>`, for the harness on the host). Each client is
//!   told the address that works from where it stands.
//! - Everything created (containers, the network, MinIO's data volume) carries the
//!   run id and the harness's pid as labels; [`reap_leftovers`] removes what a
//!   killed harness left behind (testcontainers-rs has no reaper).
//! - A processor given as a command (a student's script) runs on the host, as in
//!   the local environment, against the published ports; the builtin one runs in a
//!   container, supervised here: when it exits on its own it is started again.
//!
//! Faults are container operations: stop (SIGTERM), kill (SIGKILL), pause (cgroup
//! freezer), start; network disconnect / connect for partitions; MinIO's queue
//! dir is a host folder bound into its container, so losing it is a wipe.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptions, RemoveVolumeOptions, StartContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use testcontainers::core::{IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::sync::watch;

mod ops;
mod processor_run;
mod reap;

use ops::{
    check_name_resolution, container_logs, container_pid, kafka_command, publish_on_loopback, remove_unless_kept, split_ref,
    wait_not_running,
};

use processor_run::{ContainerProcessor, ProcessorRun};
pub(crate) use reap::{owner_alive, process_start_ticks};
pub use reap::{reap_leftovers, Reaped};

use async_trait::async_trait;
use harness_model::scenario::{EnvKind, Service};

use super::{CanaryLost, Endpoints, EnvError, EnvSpec, Environment, ReadyTimings, S3Credentials, ServiceInfo, Unprepared};
use crate::engine::images::{self, ImageSource, RunImages};
use crate::engine::{self, LABEL_PID, LABEL_PID_START, LABEL_RUN};
use crate::services::canary;
use crate::services::kafka::{self, CONTAINER_EXTERNAL_PORT, CONTAINER_INTERNAL_PORT};
use crate::services::minio::{self, MinioConfig};
use crate::services::process::{tail_log, ProcessGroup};
use crate::services::processor::{self, ProcessorSpec, ProcessorStatus, ProcessorSupervisor};
use crate::services::provision::Toolchain;
use crate::services::redact::Redactor;
use crate::services::ServiceError;

const KAFKA_GRACE_SECS: i32 = 15;
const MINIO_GRACE_SECS: i32 = 5;
const PROCESSOR_GRACE: Duration = Duration::from_secs(10);
/// Inside the Kafka container.
const KAFKA_CONFIG: &str = "/etc/kafka/server.properties";
const KAFKA_LOG4J: &str = "/etc/kafka/log4j2.properties";
const KAFKA_DATA: &str = "/var/lib/kafka/data";
/// Inside the MinIO container.
const MINIO_ROOT: &str = "/minio";
const MINIO_API_PORT: u16 = 9000;
const MINIO_CONSOLE_PORT: u16 = 9001;
/// How long a container may take to stop before teardown goes on without it.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(60);

/// A running containers environment. Call [`ContainersEnv::shutdown`]; dropping
/// it instead leaves the containers to testcontainers' drop (removal) and the
/// network and volume to the next run's reaper.
pub struct ContainersEnv {
    spec: EnvSpec,
    docker: Docker,
    labels: HashMap<String, String>,
    /// `h-<nonce>`: prefix of every name of this run.
    prefix: String,
    network: Option<String>,
    volume: Option<String>,
    kafka: Option<ContainerAsync<GenericImage>>,
    minio: Option<ContainerAsync<GenericImage>>,
    processor: Option<ProcessorRun>,
    /// Replicas that joined the processor's group later (`processor_join`).
    replicas: Vec<(String, ProcessorRun)>,
    processor_spec: Option<ProcessorSpec>,
    /// Host processes (a processor given as a command).
    group: ProcessGroup,
    images: RunImages,
    /// What the harness (on the host) uses.
    endpoints: Endpoints,
    /// What containers on the run's network use.
    inner_endpoints: Endpoints,
    timings: ReadyTimings,
    canary_key: String,
    kafka_version: String,
    minio_version: String,
    pids: HashMap<&'static str, u32>,
    queue_dir: Option<PathBuf>,
    shut_down: bool,
}

impl std::fmt::Debug for ContainersEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainersEnv").field("prefix", &self.prefix).field("endpoints", &self.endpoints).finish()
    }
}

fn engine_err(context: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> EnvError {
    let context = context.into();
    move |e| EnvError::Engine(format!("{context}: {}", describe_engine_error(&e)))
}

fn tc_err(context: impl Into<String>) -> impl FnOnce(testcontainers::TestcontainersError) -> EnvError {
    let context = context.into();
    move |e| EnvError::Engine(format!("{context}: {e}"))
}

/// The engine's own message where there is one (it names the container or image).
fn describe_engine_error(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => format!("{message} (HTTP {status_code})"),
        other => other.to_string(),
    }
}

impl ContainersEnv {
    /// Connects to the engine, removes leftovers of killed runs, makes sure the
    /// images exist, then starts Kafka ‖ MinIO on a fresh network, waits for both,
    /// and sets up topics, buckets, notifications and the canary. On failure
    /// everything started is removed again; `<run_dir>/logs` keeps the services' logs.
    pub async fn start(
        spec: EnvSpec,
        tc: &Toolchain,
        run_id: &str,
        source: ImageSource,
        harness_bin: &Path,
        progress: &dyn Fn(&str),
    ) -> Result<ContainersEnv, EnvError> {
        let started = Instant::now();
        let logs = spec.run_dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|source| EnvError::Io { context: format!("creating {}", logs.display()), source })?;
        let docker = engine::connect().await.map_err(|e| EnvError::Engine(e.to_string()))?;
        let reaped = reap_leftovers(&docker).await;
        if !reaped.is_empty() {
            progress(&format!("removed leftovers of killed runs and of runs kept with --keep: {reaped}"));
        }
        let images = images::run_images(source, &docker, tc, harness_bin, progress).await.map_err(|e| EnvError::Engine(e.to_string()))?;

        let token =
            |n| crate::services::token::hex_token(n).map_err(|source| EnvError::Io { context: "reading /dev/urandom".into(), source });
        let credentials =
            S3Credentials { access_key: format!("harness-{}", token(6)?), secret_key: token(20)?, region: "us-east-1".into() };
        let prefix = format!("h-{}", token(4)?);
        let canary_key = canary::canary_key(&token(8)?);
        let ports =
            crate::services::ports::free_ports(2).map_err(|source| EnvError::Io { context: "picking free ports".into(), source })?;
        let (kafka_port, minio_port) = (ports[0], ports[1]);
        let endpoints = Endpoints {
            kafka_bootstrap: format!("127.0.0.1:{kafka_port}"),
            kafka_sasl: None,
            s3_endpoint: format!("http://127.0.0.1:{minio_port}"),
            credentials,
            events_topic: spec.events_topic.clone(),
            outputs_topic: spec.outputs_topic.clone(),
            source_bucket: spec.source_bucket.clone(),
            target_bucket: spec.target_bucket.clone(),
        };
        let inner_endpoints = Endpoints {
            kafka_bootstrap: format!("{prefix}-kafka:{CONTAINER_INTERNAL_PORT}"),
            s3_endpoint: format!("http://{prefix}-minio:{MINIO_API_PORT}"),
            ..endpoints.clone()
        };
        let mut labels =
            HashMap::from([(LABEL_RUN.to_string(), run_id.to_string()), (LABEL_PID.to_string(), std::process::id().to_string())]);
        if let Some(start) = process_start_ticks(std::process::id()) {
            labels.insert(LABEL_PID_START.to_string(), start.to_string());
        }
        let mut env = ContainersEnv {
            group: ProcessGroup::new(logs).with_redactor(Redactor::new(
                std::iter::once(endpoints.credentials.secret_key.clone()).chain(spec.secrets.iter().cloned()),
            )),
            spec,
            docker,
            labels,
            prefix,
            network: None,
            volume: None,
            kafka: None,
            minio: None,
            processor: None,
            replicas: Vec::new(),
            processor_spec: None,
            images,
            endpoints,
            inner_endpoints,
            timings: ReadyTimings::default(),
            canary_key,
            kafka_version: tc.kafka_version.clone(),
            minio_version: tc.minio_version.clone(),
            pids: HashMap::new(),
            queue_dir: None,
            shut_down: false,
        };
        match env.bring_up(kafka_port, minio_port, progress).await {
            Ok(()) => {
                env.timings.total = started.elapsed();
                Ok(env)
            }
            Err(e) => {
                env.teardown(false).await;
                env.shut_down = true;
                if source == ImageSource::Official {
                    return Err(EnvError::Engine(format!(
                        "{e}\n(--images official: the engine pulls {} and {} from a registry; where none is \
                         reachable, use the images built here: --images local, the default)",
                        env.images.set.kafka, env.images.set.minio
                    )));
                }
                Err(e)
            }
        }
    }

    async fn bring_up(&mut self, kafka_port: u16, minio_port: u16, progress: &dyn Fn(&str)) -> Result<(), EnvError> {
        let network = format!("{}-net", self.prefix);
        self.docker
            .create_network(NetworkCreateRequest { name: network.clone(), labels: Some(self.labels.clone()), ..Default::default() })
            .await
            .map_err(engine_err(format!("creating network {network}")))?;
        self.network = Some(network.clone());
        let volume = format!("{}-minio-data", self.prefix);
        self.docker
            .create_volume(VolumeCreateRequest { name: Some(volume.clone()), labels: Some(self.labels.clone()), ..Default::default() })
            .await
            .map_err(engine_err(format!("creating volume {volume}")))?;
        self.volume = Some(volume.clone());
        let queue_dir = self.spec.minio_queue_dir.then(|| self.spec.run_dir.join("minio-queue"));
        if let Some(dir) = &queue_dir {
            std::fs::create_dir_all(dir).map_err(|source| EnvError::Io { context: format!("creating {}", dir.display()), source })?;
        }
        self.queue_dir = queue_dir.clone();

        progress(&format!(
            "starting Kafka {} and MinIO in containers on network {network} (engine {})…",
            self.kafka_version,
            engine::docker_host()
        ));
        let kafka_name = format!("{}-kafka", self.prefix);
        let minio_name = format!("{}-minio", self.prefix);
        let (repo, tag) = split_ref(&self.images.set.kafka);
        let kafka_req = GenericImage::new(repo, tag)
            .with_cmd(["sh", "-c", &kafka_command(&self.images.kafka_java, &self.images.kafka_libs)])
            .with_container_name(&kafka_name)
            .with_network(&network)
            .with_labels(self.labels.clone())
            .with_mapped_port(kafka_port, CONTAINER_EXTERNAL_PORT.tcp())
            .with_host_config_modifier(publish_on_loopback)
            .with_copy_to(KAFKA_CONFIG, kafka::container_server_properties(&kafka_name, kafka_port, Path::new(KAFKA_DATA)).into_bytes())
            .with_copy_to(KAFKA_LOG4J, kafka::LOG4J2_PROPERTIES.as_bytes().to_vec());

        let minio_cfg = MinioConfig {
            bin: PathBuf::from(&self.images.minio_bin),
            dir: PathBuf::from(MINIO_ROOT),
            kafka_bootstrap: self.inner_endpoints.kafka_bootstrap.clone(),
            events_topic: self.spec.events_topic.clone(),
            outputs_topic: self.spec.outputs_topic.clone(),
            queue_dir: self.spec.minio_queue_dir,
            queue_limit: self.spec.minio_queue_limit,
            sync_events: self.spec.minio_sync_events,
            events_sasl: None,
            credentials: self.endpoints.credentials.clone(),
            ready_timeout: self.spec.ready_timeout,
        };
        let (repo, tag) = split_ref(&self.images.set.minio);
        let mut minio_req = GenericImage::new(repo, tag)
            .with_cmd([
                self.images.minio_bin.clone(),
                "server".into(),
                minio_cfg.data_dir().display().to_string(),
                "--address".into(),
                format!(":{MINIO_API_PORT}"),
                "--console-address".into(),
                format!(":{MINIO_CONSOLE_PORT}"),
            ])
            .with_container_name(&minio_name)
            .with_network(&network)
            .with_labels(self.labels.clone())
            .with_mapped_port(minio_port, MINIO_API_PORT.tcp())
            .with_host_config_modifier(publish_on_loopback)
            .with_mount(Mount::volume_mount(volume, minio_cfg.data_dir().display().to_string()));
        for (k, v) in minio::minio_env(&minio_cfg) {
            minio_req = minio_req.with_env_var(k, v);
        }
        if let Some(dir) = &queue_dir {
            minio_req =
                minio_req.with_mount(Mount::bind_mount(dir.display().to_string(), minio_cfg.queue_dir_path().display().to_string()));
        }

        let t = Instant::now();
        let (k, m) = tokio::join!(kafka_req.start(), minio_req.start());
        // Keep whatever started, so a failure of the other is cleaned up with it.
        let k = k.map_err(tc_err("starting the Kafka container"));
        let m = m.map_err(tc_err("starting the MinIO container"));
        if let Ok(c) = &k {
            self.pids.insert(kafka::SERVICE, container_pid(&self.docker, c.id()).await.unwrap_or(0));
        }
        if let Ok(c) = &m {
            self.pids.insert(minio::SERVICE, container_pid(&self.docker, c.id()).await.unwrap_or(0));
        }
        let (k, m) = match (k, m) {
            (Ok(k), Ok(m)) => (k, m),
            (Ok(k), Err(e)) => {
                self.kafka = Some(k);
                return Err(e);
            }
            (Err(e), Ok(m)) => {
                self.minio = Some(m);
                return Err(e);
            }
            (Err(e), Err(_)) => return Err(e),
        };
        let (kafka_id, minio_id) = (k.id().to_string(), m.id().to_string());
        self.kafka = Some(k);
        self.minio = Some(m);
        // MinIO dials Kafka by container name: without DNS on the network it would
        // retry until the ready timeout and then show a long log. Ask once, now.
        if let Some(kafka) = &self.kafka {
            check_name_resolution(kafka, &kafka_name, &minio_name, &network).await?;
        }
        let s3 = crate::services::s3::s3_client(&self.endpoints.s3_endpoint, &self.endpoints.credentials);
        let (kr, mr) = tokio::join!(
            self.wait_ready(Service::Kafka, &kafka_id, t, self.spec.ready_timeout),
            self.wait_ready(Service::Minio, &minio_id, t, self.spec.ready_timeout)
        );
        self.timings.kafka = kr?;
        self.timings.minio = mr?;

        let setup_started = Instant::now();
        match super::prepare_pipeline(&self.endpoints.kafka_bootstrap, &s3, &self.spec, &self.canary_key).await {
            Ok(()) => {}
            Err(Unprepared::NoEvent) => {
                return Err(EnvError::Canary(Box::new(CanaryLost {
                    bucket: self.spec.source_bucket.clone(),
                    key: self.canary_key.clone(),
                    topic: self.spec.events_topic.clone(),
                    timeout: self.spec.ready_timeout,
                    diagnosis: None,
                    minio_log_tail: self.log_tail(minio::SERVICE, 20).await,
                })))
            }
            Err(e) => return Err(e.into_env_error()),
        }
        self.timings.canary = setup_started.elapsed();
        Ok(())
    }

    /// Polls the service's probe through the host's endpoint until it passes, the
    /// container stops running, or `timeout` passes since `since`.
    async fn wait_ready(&self, service: Service, id: &str, since: Instant, timeout: Duration) -> Result<Duration, EnvError> {
        let nonce =
            crate::services::token::hex_token(8).map_err(|source| EnvError::Io { context: "reading /dev/urandom".into(), source })?;
        let s3 = crate::services::s3::s3_client(&self.endpoints.s3_endpoint, &self.endpoints.credentials);
        let key = format!("_harness/ready/{nonce}");
        let mut last: String;
        loop {
            let probe = match service {
                Service::Kafka => kafka::round_trip(&self.endpoints.kafka_bootstrap, &nonce, 1).await,
                _ => minio::probe(&s3, &key).await,
            };
            match probe {
                Ok(()) => {
                    if service == Service::Minio {
                        let _ = s3.delete_bucket().bucket(minio::READY_BUCKET).send().await;
                    }
                    return Ok(since.elapsed());
                }
                Err(e) => last = e,
            }
            let state = self.docker.inspect_container(id, None::<InspectContainerOptions>).await.ok().and_then(|i| i.state);
            let running = state.as_ref().and_then(|s| s.running).unwrap_or(false);
            if !running {
                let status = state.and_then(|s| s.exit_code).map_or("state unknown".to_string(), |c| format!("exit code {c}"));
                return Err(ServiceError::Exited {
                    service: service.name().into(),
                    status: format!("container {id:.12} stopped, {status}"),
                    log: self.group.log_path(service.name()),
                    tail: self.log_tail(service.name(), 20).await,
                }
                .into());
            }
            if since.elapsed() >= timeout {
                return Err(ServiceError::NotReady {
                    service: service.name().into(),
                    timeout,
                    detail: last,
                    log: self.group.log_path(service.name()),
                    tail: self.log_tail(service.name(), 20).await,
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The processor and its replicas, with their names.
    fn processors(&self) -> Vec<(String, &ProcessorRun)> {
        let primary = self.processor.as_ref().map(|p| ("processor".to_string(), p));
        primary.into_iter().chain(self.replicas.iter().map(|(n, p)| (n.clone(), p))).collect()
    }

    /// Every processor replica stopped (SIGTERM with its grace, or SIGKILL when
    /// `hard`) and held so until `start_service`; returns how each ended.
    async fn hold_processors(&self, hard: bool) -> Result<Option<String>, EnvError> {
        let grace = if hard { Duration::ZERO } else { PROCESSOR_GRACE };
        let mut ended = Vec::new();
        for (name, run) in self.processors() {
            let how = run.hold(grace).await.map_err(|e| EnvError::Processor(format!("stopping {name}: {e}")))?;
            ended.push(format!("{name}: {}", how.unwrap_or_else(|| "was not running".into())));
        }
        if ended.is_empty() {
            return Err(EnvError::Engine("no processor runs".into()));
        }
        Ok(Some(format!("{} processor(s) stopped ({})", ended.len(), ended.join("; "))))
    }

    async fn spawn_processor(&self, spec: &ProcessorSpec) -> Result<ProcessorRun, EnvError> {
        if !spec.builtin && spec.image.is_none() {
            let child = processor::child_spec(spec, &self.endpoints);
            return Ok(ProcessorRun::Host(ProcessorSupervisor::start(&self.group, child)?));
        }
        let mut env = processor::contract_env(&self.inner_endpoints);
        for (k, v) in &spec.env {
            env.retain(|(existing, _)| existing != k);
            env.push((k.clone(), v.clone()));
        }
        let name = format!("{}-{}", self.prefix, spec.name);
        // A user's image runs with its own entrypoint and command.
        let (repo, tag) = split_ref(spec.image.as_deref().unwrap_or(&self.images.set.processor));
        let image = GenericImage::new(repo, tag);
        let image = if spec.image.is_some() { image.into() } else { image.with_cmd([images::HARNESS_BIN, "processor"]) };
        let mut req =
            image.with_container_name(&name).with_network(self.network.clone().unwrap_or_default()).with_labels(self.labels.clone());
        for (k, v) in env {
            req = req.with_env_var(k, v);
        }
        let container = req.start().await.map_err(tc_err(format!("starting the {} container", spec.name)))?;
        Ok(ProcessorRun::Container(Box::new(ContainerProcessor::start(self.docker.clone(), container).await)))
    }

    fn container_id(&self, service: Service) -> Result<String, EnvError> {
        let id = match service {
            Service::Kafka => self.kafka.as_ref().map(|c| c.id().to_string()),
            Service::Minio => self.minio.as_ref().map(|c| c.id().to_string()),
            Service::Processor => match &self.processor {
                Some(ProcessorRun::Container(p)) => Some(p.id.clone()),
                _ => None,
            },
        };
        id.ok_or_else(|| EnvError::Engine(format!("{} has no container in this run", service.name())))
    }

    /// Processor, MinIO, Kafka stopped in that order; their logs written to
    /// `logs/`; containers, network and volume removed (kept, stopped, with `keep`:
    /// the next run's reaper removes them). Never fails: what cannot be removed is
    /// reported and left to the reaper.
    async fn teardown(&mut self, keep: bool) {
        let replicas = std::mem::take(&mut self.replicas);
        let name = self.processor_spec.as_ref().map_or_else(|| "processor".to_string(), |s| s.name.clone());
        for (name, mut p) in self.processor.take().map(|p| (name, p)).into_iter().chain(replicas) {
            p.stop(&self.docker).await;
            if let ProcessorRun::Container(c) = p {
                self.save_logs(&name, &c.id).await;
                remove_unless_kept(c.container, keep).await;
            }
        }
        self.group.kill_group();
        for (service, grace, slot) in
            [(Service::Minio, MINIO_GRACE_SECS, self.minio.take()), (Service::Kafka, KAFKA_GRACE_SECS, self.kafka.take())]
        {
            let Some(c) = slot else { continue };
            let _ = tokio::time::timeout(ENGINE_TIMEOUT, self.docker.unpause_container(c.id())).await;
            let stop = self.docker.stop_container(c.id(), Some(StopContainerOptions { t: Some(grace), signal: None }));
            if let Err(e) = tokio::time::timeout(ENGINE_TIMEOUT, stop).await.unwrap_or(Ok(())) {
                tracing::debug!("stopping {}: {e}", service.name());
            }
            self.save_logs(service.name(), c.id()).await;
            remove_unless_kept(c, keep).await;
        }
        if keep {
            return;
        }
        if let Some(n) = self.network.take() {
            if let Err(e) = self.docker.remove_network(&n).await {
                tracing::warn!("removing network {n}: {}", describe_engine_error(&e));
            }
        }
        if let Some(v) = self.volume.take() {
            if let Err(e) = self.docker.remove_volume(&v, Some(RemoveVolumeOptions { force: true })).await {
                tracing::warn!("removing volume {v}: {}", describe_engine_error(&e));
            }
        }
        if let Some(dir) = self.queue_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    async fn save_logs(&self, service: &str, id: &str) {
        let text = container_logs(&self.docker, id, None, &self.group.redactor()).await;
        let path = self.group.log_path(service);
        if let Err(e) = std::fs::write(&path, text) {
            tracing::warn!("writing {}: {e}", path.display());
        }
    }
}

#[async_trait]
impl Environment for ContainersEnv {
    fn kind(&self) -> EnvKind {
        EnvKind::Containers
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn services(&self) -> Vec<ServiceInfo> {
        let mut out = vec![
            ServiceInfo {
                name: kafka::SERVICE.into(),
                version: format!("Apache Kafka {} (container {})", self.kafka_version, self.images.set.kafka),
                log_path: self.group.log_path(kafka::SERVICE),
                pid: self.pids.get(kafka::SERVICE).copied(),
            },
            ServiceInfo {
                name: minio::SERVICE.into(),
                version: format!("{} (container {})", self.minio_version, self.images.set.minio),
                log_path: self.group.log_path(minio::SERVICE),
                pid: self.pids.get(minio::SERVICE).copied(),
            },
        ];
        for (name, p) in self.processors() {
            let pid = p.status().borrow().pid;
            out.push(ServiceInfo { log_path: self.group.log_path(&name), name, version: String::new(), pid });
        }
        out
    }

    fn ready_timings(&self) -> &ReadyTimings {
        &self.timings
    }

    fn canary_key(&self) -> &str {
        &self.canary_key
    }

    fn run_dir(&self) -> &Path {
        &self.spec.run_dir
    }

    fn minio_queue_dir(&self) -> Option<PathBuf> {
        self.queue_dir.clone()
    }

    /// The last `n` lines a service wrote (from the engine while its container
    /// exists, from `logs/<service>.log` after teardown wrote it).
    async fn log_tail(&self, service: &str, n: usize) -> String {
        let id = match service {
            s if s == kafka::SERVICE => self.kafka.as_ref().map(|c| c.id().to_string()),
            s if s == minio::SERVICE => self.minio.as_ref().map(|c| c.id().to_string()),
            _ => match &self.processor {
                Some(ProcessorRun::Container(p)) => Some(p.id.clone()),
                _ => None,
            },
        };
        match id {
            Some(id) => {
                let text = container_logs(&self.docker, &id, Some(n), &self.group.redactor()).await;
                String::from_utf8_lossy(&text).into_owned()
            }
            None => tail_log(&self.group.log_path(service), n),
        }
    }

    /// Starts the processor: the builtin one in a container on the run's network,
    /// a command on the host against the published ports.
    async fn start_processor(&mut self, spec: ProcessorSpec) -> Result<(), EnvError> {
        if let Some(mut old) = self.processor.take() {
            old.stop(&self.docker).await;
        }
        self.processor = Some(self.spawn_processor(&spec).await?);
        self.processor_spec = Some(spec);
        Ok(())
    }

    /// Starts one more replica of the processor (same image or command, same group),
    /// as a scale-up would. Returns its pid.
    async fn add_processor_replica(&mut self) -> Result<u32, EnvError> {
        let mut spec = self.processor_spec.clone().ok_or_else(|| EnvError::Engine("no processor runs".into()))?;
        spec.name = format!("{}-{}", spec.name, self.replicas.len() + 2);
        let run = self.spawn_processor(&spec).await?;
        let pid = run.status().borrow().pid.unwrap_or(0);
        self.replicas.push((spec.name, run));
        Ok(pid)
    }

    async fn stop_processor(&mut self) -> Option<ProcessorStatus> {
        for (_, r) in &mut self.replicas {
            r.stop(&self.docker).await;
        }
        let p = self.processor.as_mut()?;
        Some(p.stop(&self.docker).await)
    }

    fn processor_events(&self) -> Option<watch::Receiver<ProcessorStatus>> {
        self.processor.as_ref().map(ProcessorRun::status)
    }

    /// Stops the service's container: SIGTERM with the service's grace, or SIGKILL
    /// when `hard`. Returns how it exited.
    async fn stop_service(&mut self, service: Service, hard: bool) -> Result<Option<String>, EnvError> {
        if service == Service::Processor {
            return self.hold_processors(hard).await;
        }
        let id = self.container_id(service)?;
        if hard {
            self.docker
                .kill_container(&id, Some(KillContainerOptions { signal: "KILL".into() }))
                .await
                .map_err(engine_err(format!("killing the {} container", service.name())))?;
            wait_not_running(&self.docker, &id, ENGINE_TIMEOUT).await;
        } else {
            let t = if service == Service::Kafka { KAFKA_GRACE_SECS } else { MINIO_GRACE_SECS };
            self.docker
                .stop_container(&id, Some(StopContainerOptions { t: Some(t), signal: None }))
                .await
                .map_err(engine_err(format!("stopping the {} container", service.name())))?;
        }
        let code =
            self.docker.inspect_container(&id, None::<InspectContainerOptions>).await.ok().and_then(|i| i.state).and_then(|s| s.exit_code);
        // An engine reports an exit by signal N as 128 + N.
        let signal = |c: i64| match c {
            137 => " (SIGKILL)",
            143 => " (SIGTERM)",
            _ => "",
        };
        Ok(code.map(|c| format!("container exited with code {c}{}", signal(c))))
    }

    /// Starts a stopped service's container again (same ports, same data) and waits
    /// for its readiness probe; returns how long that took.
    async fn start_service(&mut self, service: Service) -> Result<Duration, EnvError> {
        let t = Instant::now();
        if service == Service::Processor {
            for (name, run) in self.processors() {
                run.release().await.map_err(|e| EnvError::Processor(format!("starting {name} again: {e}")))?;
            }
            return Ok(t.elapsed());
        }
        let id = self.container_id(service)?;
        self.docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
            .map_err(engine_err(format!("starting the {} container again", service.name())))?;
        if let Some(pid) = container_pid(&self.docker, &id).await {
            self.pids.insert(service.name(), pid);
        }
        self.wait_ready(service, &id, t, self.spec.ready_timeout).await
    }

    async fn pause_service(&mut self, service: Service) -> Result<Option<u32>, EnvError> {
        let id = self.container_id(service)?;
        self.docker.pause_container(&id).await.map_err(engine_err(format!("pausing the {} container", service.name())))?;
        Ok(None)
    }

    async fn resume_service(&mut self, service: Service) -> Result<(), EnvError> {
        let id = self.container_id(service)?;
        self.docker.unpause_container(&id).await.map_err(engine_err(format!("unpausing the {} container", service.name())))
    }

    /// Cuts the service's container off the run's network: every link to it breaks,
    /// including the host's through its published port.
    async fn disconnect(&mut self, service: Service) -> Result<(), EnvError> {
        let id = self.container_id(service)?;
        let network = self.network.clone().unwrap_or_default();
        self.docker
            .disconnect_network(&network, NetworkDisconnectRequest { container: id, force: Some(true) })
            .await
            .map_err(engine_err(format!("disconnecting {} from {network}", service.name())))
    }

    async fn reconnect(&mut self, service: Service) -> Result<(), EnvError> {
        let id = self.container_id(service)?;
        let network = self.network.clone().unwrap_or_default();
        let name = format!("{}-{}", self.prefix, service.name());
        let endpoint = EndpointSettings { aliases: Some(vec![name]), ..Default::default() };
        self.docker
            .connect_network(&network, NetworkConnectRequest { container: id, endpoint_config: Some(endpoint) })
            .await
            .map_err(engine_err(format!("reconnecting {} to {network}", service.name())))
    }

    /// SIGKILL to the processor (its container, or its host process); returns the
    /// pid it had. Its supervisor starts it again.
    async fn kill_processor(&mut self) -> Result<u32, EnvError> {
        let status = self.processor_events().ok_or_else(|| EnvError::Engine("no processor runs".into()))?;
        let pid = status.borrow().pid.ok_or_else(|| EnvError::Engine("the processor is not running (between restarts)".into()))?;
        match &self.processor {
            Some(ProcessorRun::Container(p)) => {
                self.docker
                    .kill_container(&p.id, Some(KillContainerOptions { signal: "KILL".into() }))
                    .await
                    .map_err(engine_err("killing the processor container"))?;
            }
            _ => super::kill_pid(pid)?,
        }
        Ok(pid)
    }

    async fn shutdown(mut self: Box<Self>, keep: bool) -> Result<(), EnvError> {
        self.teardown(keep).await;
        self.shut_down = true;
        Ok(())
    }
}

impl Drop for ContainersEnv {
    fn drop(&mut self) {
        if !self.shut_down {
            // Last resort (panic): host processes die now; testcontainers removes the
            // containers as they drop; the network and volume go with the next run's reaper.
            self.group.kill_group();
        }
    }
}
