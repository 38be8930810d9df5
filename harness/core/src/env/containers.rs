//! The containers environment: Kafka, MinIO and the builtin processor as
//! containers started through testcontainers, on a network of the run's own,
//! against whatever engine `DOCKER_HOST` names (Docker, or podman's compatible
//! service).
//!
//! - Images come from [`crate::containers::images`], built locally from what the
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
use std::time::{Duration, Instant, SystemTime};

use bollard::models::{
    EndpointSettings, HostConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions, LogsOptions,
    RemoveContainerOptions, RemoveVolumeOptions, StartContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use testcontainers::core::{ExecCommand, IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::sync::{oneshot, watch};

use super::{CanaryLost, Endpoints, EnvError, EnvSpec, ReadyTimings, S3Credentials, ServiceInfo, Unprepared};
use crate::containers::images::{self, ImageSource, RunImages};
use crate::containers::{self as engine, LABEL_PID, LABEL_PID_START, LABEL_RUN};
use crate::services::canary;
use crate::services::kafka::{self, CONTAINER_EXTERNAL_PORT, CONTAINER_INTERNAL_PORT};
use crate::services::minio::{self, MinioConfig};
use crate::services::process::{tail_log, ProcessGroup};
use crate::services::processor::{self, ProcessorExit, ProcessorSpec, ProcessorStatus, ProcessorSupervisor};
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

/// The services of this environment, for operations that apply to one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Kafka,
    Minio,
    Processor,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Kafka => kafka::SERVICE,
            Service::Minio => minio::SERVICE,
            Service::Processor => "processor",
        }
    }
}

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

/// The processor of a run: in a container (builtin) or on the host (command).
enum ProcessorRun {
    Host(ProcessorSupervisor),
    Container(Box<ContainerProcessor>),
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
        let harness_bin = std::env::current_exe()
            .map_err(|source| EnvError::Io { context: "finding the harness binary for the processor image".into(), source })?;
        let images = images::run_images(source, &docker, tc, &harness_bin, progress).await.map_err(|e| EnvError::Engine(e.to_string()))?;

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
            group: ProcessGroup::new(logs).with_redactor(Redactor::new([endpoints.credentials.secret_key.clone()])),
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

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn services(&self) -> Vec<ServiceInfo> {
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
        let primary = self.processor.as_ref().map(|p| ("processor".to_string(), p));
        for (name, p) in primary.into_iter().chain(self.replicas.iter().map(|(n, p)| (n.clone(), p))) {
            let pid = p.status().borrow().pid;
            out.push(ServiceInfo { log_path: self.group.log_path(&name), name, version: String::new(), pid });
        }
        out
    }

    pub fn ready_timings(&self) -> &ReadyTimings {
        &self.timings
    }

    pub fn canary_key(&self) -> &str {
        &self.canary_key
    }

    pub fn run_dir(&self) -> &Path {
        &self.spec.run_dir
    }

    pub fn minio_queue_dir(&self) -> Option<PathBuf> {
        self.queue_dir.clone()
    }

    /// The last `n` lines a service wrote (from the engine while its container
    /// exists, from `logs/<service>.log` after teardown wrote it).
    pub async fn log_tail(&self, service: &str, n: usize) -> String {
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
                let text = container_logs(&self.docker, &id, Some(n), self.group.redactor()).await;
                String::from_utf8_lossy(&text).into_owned()
            }
            None => tail_log(&self.group.log_path(service), n),
        }
    }

    /// Starts the processor: the builtin one in a container on the run's network,
    /// a command on the host against the published ports.
    pub async fn start_processor(&mut self, spec: ProcessorSpec) -> Result<(), EnvError> {
        if let Some(mut old) = self.processor.take() {
            old.stop(&self.docker).await;
        }
        self.processor = Some(self.spawn_processor(&spec).await?);
        self.processor_spec = Some(spec);
        Ok(())
    }

    /// Starts one more replica of the processor (same image or command, same group),
    /// as a scale-up would. Returns its pid.
    pub async fn add_processor_replica(&mut self) -> Result<u32, EnvError> {
        let mut spec = self.processor_spec.clone().ok_or_else(|| EnvError::Engine("no processor runs".into()))?;
        spec.name = format!("{}-{}", spec.name, self.replicas.len() + 2);
        let run = self.spawn_processor(&spec).await?;
        let pid = run.status().borrow().pid.unwrap_or(0);
        self.replicas.push((spec.name, run));
        Ok(pid)
    }

    async fn spawn_processor(&self, spec: &ProcessorSpec) -> Result<ProcessorRun, EnvError> {
        if !spec.builtin {
            let child = processor::child_spec(spec, &self.endpoints);
            return Ok(ProcessorRun::Host(ProcessorSupervisor::start(&self.group, child)?));
        }
        let mut env = processor::contract_env(&self.inner_endpoints);
        for (k, v) in &spec.env {
            env.retain(|(existing, _)| existing != k);
            env.push((k.clone(), v.clone()));
        }
        let name = format!("{}-{}", self.prefix, spec.name);
        let (repo, tag) = split_ref(&self.images.set.processor);
        let mut req = GenericImage::new(repo, tag)
            .with_cmd([images::HARNESS_BIN, "processor"])
            .with_container_name(&name)
            .with_network(self.network.clone().unwrap_or_default())
            .with_labels(self.labels.clone());
        for (k, v) in env {
            req = req.with_env_var(k, v);
        }
        let container = req.start().await.map_err(tc_err(format!("starting the {} container", spec.name)))?;
        Ok(ProcessorRun::Container(Box::new(ContainerProcessor::start(self.docker.clone(), container).await)))
    }

    pub async fn stop_processor(&mut self) -> Option<ProcessorStatus> {
        for (_, r) in &mut self.replicas {
            r.stop(&self.docker).await;
        }
        let p = self.processor.as_mut()?;
        Some(p.stop(&self.docker).await)
    }

    pub fn processor_events(&self) -> Option<watch::Receiver<ProcessorStatus>> {
        self.processor.as_ref().map(ProcessorRun::status)
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

    /// Stops the service's container: SIGTERM with the service's grace, or SIGKILL
    /// when `hard`. Returns how it exited.
    pub async fn stop_service(&mut self, service: Service, hard: bool) -> Result<Option<String>, EnvError> {
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
        Ok(code.map(|c| format!("container exited with code {c}{}", if c == 137 { " (SIGKILL)" } else { "" })))
    }

    /// Starts a stopped service's container again (same ports, same data) and waits
    /// for its readiness probe; returns how long that took.
    pub async fn start_service(&mut self, service: Service) -> Result<Duration, EnvError> {
        let id = self.container_id(service)?;
        let t = Instant::now();
        self.docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
            .map_err(engine_err(format!("starting the {} container again", service.name())))?;
        if let Some(pid) = container_pid(&self.docker, &id).await {
            self.pids.insert(service.name(), pid);
        }
        self.wait_ready(service, &id, t, self.spec.ready_timeout).await
    }

    pub async fn pause_service(&mut self, service: Service) -> Result<(), EnvError> {
        let id = self.container_id(service)?;
        self.docker.pause_container(&id).await.map_err(engine_err(format!("pausing the {} container", service.name())))
    }

    pub async fn resume_service(&mut self, service: Service) -> Result<(), EnvError> {
        let id = self.container_id(service)?;
        self.docker.unpause_container(&id).await.map_err(engine_err(format!("unpausing the {} container", service.name())))
    }

    /// Cuts the service's container off the run's network: every link to it breaks,
    /// including the host's through its published port.
    pub async fn disconnect(&mut self, service: Service) -> Result<(), EnvError> {
        let id = self.container_id(service)?;
        let network = self.network.clone().unwrap_or_default();
        self.docker
            .disconnect_network(&network, NetworkDisconnectRequest { container: id, force: Some(true) })
            .await
            .map_err(engine_err(format!("disconnecting {} from {network}", service.name())))
    }

    pub async fn reconnect(&mut self, service: Service) -> Result<(), EnvError> {
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
    pub async fn kill_processor(&mut self) -> Result<u32, EnvError> {
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

    pub async fn shutdown(mut self, keep: bool) -> Result<(), EnvError> {
        self.teardown(keep).await;
        self.shut_down = true;
        Ok(())
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
        let text = container_logs(&self.docker, id, None, self.group.redactor()).await;
        let path = self.group.log_path(service);
        if let Err(e) = std::fs::write(&path, text) {
            tracing::warn!("writing {}: {e}", path.display());
        }
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

/// Kafka's entrypoint: format the storage on the first start (a restart keeps it
/// and skips the format's own JVM), then the broker.
fn kafka_command(java: &str, libs: &str) -> String {
    let jvm = kafka::jvm_args(Path::new(libs), Path::new(KAFKA_LOG4J)).into_iter().map(|a| shell_quote(&a)).collect::<Vec<_>>().join(" ");
    // A fixed cluster id is fine: every run has its own container and data.
    format!(
        "{{ test -f {KAFKA_DATA}/meta.properties || {java} {jvm} kafka.tools.StorageTool format \
         --cluster-id {CLUSTER_ID} --config {KAFKA_CONFIG} --ignore-formatted; }} && exec {java} {jvm} kafka.Kafka {KAFKA_CONFIG}"
    )
}

const CLUSTER_ID: &str = "harnessContainers0000A";

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `localhost/harness-kafka:abc` → (`localhost/harness-kafka`, `abc`).
fn split_ref(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

async fn container_pid(docker: &Docker, id: &str) -> Option<u32> {
    let state = docker.inspect_container(id, None::<InspectContainerOptions>).await.ok()?.state?;
    state.pid.filter(|p| *p > 0).map(|p| p as u32)
}

async fn wait_not_running(docker: &Docker, id: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let running = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.running)
            .unwrap_or(false);
        if !running {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// stdout and stderr of a container, interleaved as the engine returns them.
/// How long the name lookup inside a container may take before it counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Looks `peer` up by name from inside `from` (a container on `network`), and fails
/// fast, in one line that names the cause and the fix, when the engine's network
/// does not resolve container names. A container without a lookup tool (an
/// official image) skips the check: the services' own readiness still catches it.
async fn check_name_resolution(from: &ContainerAsync<GenericImage>, from_name: &str, peer: &str, network: &str) -> Result<(), EnvError> {
    let script = "if command -v getent >/dev/null 2>&1; then getent hosts \"$1\" >/dev/null && echo resolved || echo unresolved; \
                  elif command -v nslookup >/dev/null 2>&1; then nslookup \"$1\" >/dev/null 2>&1 && echo resolved || echo unresolved; \
                  else echo no-tool; fi";
    let lookup = async {
        let mut res = from.exec(ExecCommand::new(["sh", "-c", script, "lookup", peer])).await.map_err(|e| e.to_string())?;
        let out = res.stdout_to_vec().await.map_err(|e| e.to_string())?;
        Ok::<String, String>(String::from_utf8_lossy(&out).trim().to_string())
    };
    let answer = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            tracing::warn!("could not check name resolution on {network}: {e}");
            return Ok(());
        }
        Err(_) => format!("no answer within {}s", LOOKUP_TIMEOUT.as_secs()),
    };
    match answer.as_str() {
        "resolved" | "no-tool" => Ok(()),
        other => Err(EnvError::Engine(no_container_dns(from_name, peer, network, other))),
    }
}

/// The one line a run without container DNS ends with.
fn no_container_dns(from: &str, peer: &str, network: &str, answer: &str) -> String {
    format!(
        "containers on network {network} cannot find each other by name ({from} looked up {peer}: {answer}): \
         the engine's network has no DNS. With podman, install netavark and aardvark-dns and set \
         network_backend = \"netavark\" in containers.conf (`ci/setup` and `ci/podman` do both)"
    )
}

/// Published ports listen on 127.0.0.1 only: an engine binds them on every interface
/// by default, which would put MinIO (with the run's credentials) and Kafka on the
/// network. testcontainers sets no host address, so it is set here.
fn publish_on_loopback(host_config: &mut HostConfig) {
    for bindings in host_config.port_bindings.iter_mut().flat_map(|m| m.values_mut()).flatten() {
        for b in bindings {
            b.host_ip = Some(LOOPBACK.to_string());
        }
    }
}

/// Where the harness publishes containers' ports.
const LOOPBACK: &str = "127.0.0.1";

/// A container's output, with the run's secrets masked (as the host's logs are).
async fn container_logs(docker: &Docker, id: &str, tail: Option<usize>, redactor: &Redactor) -> Vec<u8> {
    let opts =
        LogsOptions { stdout: true, stderr: true, tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()), ..Default::default() };
    let mut out = Vec::new();
    let mut stream = docker.logs(id, Some(opts));
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        out.extend_from_slice(&chunk.into_bytes());
    }
    redactor.redact(&out).into_owned()
}

/// Removes the container; with `keep`, leaves it (stopped) for inspection: the
/// handle is forgotten, because dropping it would make testcontainers remove it.
async fn remove_unless_kept(c: ContainerAsync<GenericImage>, keep: bool) {
    if keep {
        std::mem::forget(c);
        return;
    }
    let id = c.id().to_string();
    match tokio::time::timeout(ENGINE_TIMEOUT, c.rm()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("removing container {id:.12}: {e}"),
        Err(_) => tracing::warn!("removing container {id:.12}: no answer within {}s", ENGINE_TIMEOUT.as_secs()),
    }
}

/// The builtin processor in a container, supervised like the host supervisor does:
/// an exit it did not ask for is recorded and followed by a start (with backoff).
struct ContainerProcessor {
    id: String,
    container: ContainerAsync<GenericImage>,
    status: watch::Receiver<ProcessorStatus>,
    stop_tx: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ContainerProcessor {
    async fn start(docker: Docker, container: ContainerAsync<GenericImage>) -> Self {
        let id = container.id().to_string();
        let pid = container_pid(&docker, &id).await;
        let (tx, status) = watch::channel(ProcessorStatus { starts: 1, pid, ..ProcessorStatus::default() });
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(supervise_container(docker, id.clone(), tx, stop_rx));
        ContainerProcessor { id, container, status, stop_tx: Some(stop_tx), task: Some(task) }
    }
}

impl ProcessorRun {
    fn status(&self) -> watch::Receiver<ProcessorStatus> {
        match self {
            ProcessorRun::Host(s) => s.status(),
            ProcessorRun::Container(c) => c.status.clone(),
        }
    }

    /// Stops the processor (SIGTERM, 10 s grace, SIGKILL). Harmless twice.
    async fn stop(&mut self, docker: &Docker) -> ProcessorStatus {
        match self {
            ProcessorRun::Host(s) => s.stop(PROCESSOR_GRACE).await,
            ProcessorRun::Container(c) => {
                if let Some(tx) = c.stop_tx.take() {
                    let _ = tx.send(());
                    let opts = StopContainerOptions { t: Some(PROCESSOR_GRACE.as_secs() as i32), signal: None };
                    let _ = tokio::time::timeout(ENGINE_TIMEOUT, docker.stop_container(&c.id, Some(opts))).await;
                }
                if let Some(task) = c.task.take() {
                    let _ = tokio::time::timeout(ENGINE_TIMEOUT, task).await;
                }
                c.status.borrow().clone()
            }
        }
    }
}

async fn supervise_container(docker: Docker, id: String, tx: watch::Sender<ProcessorStatus>, mut stop_rx: oneshot::Receiver<()>) {
    let mut backoff = processor::INITIAL_BACKOFF;
    let mut started = Instant::now();
    loop {
        let exited = tokio::select! {
            code = exit_of(&docker, &id) => code,
            _ = &mut stop_rx => {
                // Asked to stop: the exit that follows is expected.
                let code = tokio::time::timeout(ENGINE_TIMEOUT, exit_of(&docker, &id)).await.ok().flatten();
                tx.send_modify(|s| {
                    s.exits.push(exit_record(code, started.elapsed(), true));
                    s.pid = None;
                    s.stopped = true;
                });
                return;
            }
        };
        let code = exited;
        let uptime = started.elapsed();
        tx.send_modify(|s| {
            s.exits.push(exit_record(code, uptime, false));
            s.pid = None;
        });
        if uptime >= processor::STABLE_AFTER {
            backoff = processor::INITIAL_BACKOFF;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut stop_rx => {
                tx.send_modify(|s| s.stopped = true);
                return;
            }
        }
        backoff = (backoff * 2).min(processor::MAX_BACKOFF);
        match docker.start_container(&id, None::<StartContainerOptions>).await {
            Ok(()) => {
                started = Instant::now();
                let pid = container_pid(&docker, &id).await;
                tx.send_modify(|s| {
                    s.starts += 1;
                    s.restarts += 1;
                    s.pid = pid;
                    s.last_spawn_error = None;
                });
            }
            Err(e) => {
                let msg = describe_engine_error(&e);
                tx.send_modify(|s| s.last_spawn_error = Some(msg));
            }
        }
    }
}

/// Waits until the container is not running and returns its exit code. Polls the
/// container's state: podman 4's Docker-compatible `wait` endpoint busy-loops on the
/// server (measured: 1.2 cores for as long as a wait is open), which starved the
/// pipeline on a 2-core machine.
async fn exit_of(docker: &Docker, id: &str) -> Option<i64> {
    loop {
        match docker.inspect_container(id, None::<InspectContainerOptions>).await {
            Ok(i) => {
                let state = i.state.unwrap_or_default();
                if !state.running.unwrap_or(false) && !state.restarting.unwrap_or(false) {
                    return state.exit_code;
                }
            }
            // Gone (removed by someone else): no code to report.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return None,
            Err(e) => tracing::debug!("inspecting {id:.12}: {e}"),
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
}

/// How often a supervised container's state is asked for.
const EXIT_POLL: Duration = Duration::from_millis(250);

fn exit_record(code: Option<i64>, uptime: Duration, expected: bool) -> ProcessorExit {
    // An engine reports death by signal N as 128 + N.
    let signal = code.filter(|c| (129..=159).contains(c)).map(|c| (c - 128) as i32);
    let status = match (code, signal) {
        (_, Some(9)) => "killed by signal 9 (SIGKILL)".to_string(),
        (_, Some(15)) => "killed by signal 15 (SIGTERM)".to_string(),
        (_, Some(s)) => format!("killed by signal {s}"),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "exit status unknown".to_string(),
    };
    ProcessorExit {
        at: Instant::now(),
        wall_time: SystemTime::now(),
        uptime,
        status,
        code: code.filter(|_| signal.is_none()).map(|c| c as i32),
        signal,
        expected,
    }
}

/// What [`reap_leftovers`] removed.
#[derive(Debug, Default)]
pub struct Reaped {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

impl Reaped {
    pub fn is_empty(&self) -> bool {
        self.containers + self.networks + self.volumes == 0
    }
}

impl std::fmt::Display for Reaped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} containers, {} networks, {} volumes", self.containers, self.networks, self.volumes)
    }
}

/// Removes every container, network and volume labeled by a harness process that
/// is gone (its pid is not alive, or is alive but started at another time).
/// Containers first (a network or volume in use cannot be removed).
pub async fn reap_leftovers(docker: &Docker) -> Reaped {
    let mut reaped = Reaped::default();
    let filters = || Some(HashMap::from([("label".to_string(), vec![LABEL_RUN.to_string()])]));
    let orphaned = |labels: Option<&HashMap<String, String>>| labels.is_some_and(|l| !owner_alive(l));

    let containers = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: filters(), ..Default::default() }))
        .await
        .unwrap_or_default();
    for c in containers {
        if !orphaned(c.labels.as_ref()) {
            continue;
        }
        let Some(id) = c.id else { continue };
        let opts = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match docker.remove_container(&id, Some(opts)).await {
            Ok(()) => reaped.containers += 1,
            Err(e) => tracing::warn!("removing leftover container {id:.12}: {}", describe_engine_error(&e)),
        }
    }
    let networks = docker.list_networks(Some(ListNetworksOptions { filters: filters() })).await.unwrap_or_default();
    for n in networks {
        if !orphaned(n.labels.as_ref()) {
            continue;
        }
        let Some(name) = n.name else { continue };
        match docker.remove_network(&name).await {
            Ok(()) => reaped.networks += 1,
            Err(e) => tracing::warn!("removing leftover network {name}: {}", describe_engine_error(&e)),
        }
    }
    let volumes =
        docker.list_volumes(Some(ListVolumesOptions { filters: filters() })).await.ok().and_then(|v| v.volumes).unwrap_or_default();
    for v in volumes {
        if !orphaned(Some(&v.labels)) {
            continue;
        }
        match docker.remove_volume(&v.name, Some(RemoveVolumeOptions { force: true })).await {
            Ok(()) => reaped.volumes += 1,
            Err(e) => tracing::warn!("removing leftover volume {}: {}", v.name, describe_engine_error(&e)),
        }
    }
    reaped
}

/// Whether the harness process named by the labels still runs.
fn owner_alive(labels: &HashMap<String, String>) -> bool {
    let Some(pid) = labels.get(LABEL_PID).and_then(|p| p.parse::<u32>().ok()) else {
        // Not ours to judge without a pid; leave it.
        return true;
    };
    match (process_start_ticks(pid), labels.get(LABEL_PID_START).and_then(|s| s.parse::<u64>().ok())) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

/// Field 22 of `/proc/<pid>/stat`: the process's start time in clock ticks since boot.
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs_split_at_the_tag() {
        assert_eq!(split_ref("localhost/harness-kafka:3f2a9c1b7d4e"), ("localhost/harness-kafka".into(), "3f2a9c1b7d4e".into()));
        assert_eq!(split_ref("localhost:5000/kafka"), ("localhost:5000/kafka".into(), "latest".into()));
    }

    #[test]
    fn this_process_is_alive_and_a_dead_pid_is_not() {
        let me = std::process::id();
        let start = process_start_ticks(me).expect("own start time");
        let labels = |pid: u32, start: u64| {
            HashMap::from([(LABEL_PID.to_string(), pid.to_string()), (LABEL_PID_START.to_string(), start.to_string())])
        };
        assert!(owner_alive(&labels(me, start)));
        assert!(!owner_alive(&labels(me, start + 1)), "a recycled pid is not the owner");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert!(!owner_alive(&labels(dead, 1)));
        assert!(owner_alive(&HashMap::new()), "no pid label: not ours to remove");
    }

    #[test]
    fn kafka_command_formats_once_then_execs_the_broker() {
        let cmd = kafka_command(images::KAFKA_JAVA, images::KAFKA_LIBS);
        assert!(cmd.contains("kafka.tools.StorageTool format"), "{cmd}");
        assert!(cmd.contains("--ignore-formatted"), "{cmd}");
        assert!(cmd.contains("&& exec /usr/bin/java"), "{cmd}");
        assert!(cmd.starts_with("{ test -f /var/lib/kafka/data/meta.properties || "), "a restart skips the format: {cmd}");
        assert!(cmd.contains("'/opt/kafka/libs/*'"), "the classpath glob is quoted for sh: {cmd}");
        assert!(cmd.ends_with("kafka.Kafka /etc/kafka/server.properties"), "{cmd}");
    }

    #[test]
    fn engine_exit_codes_become_signals() {
        let killed = exit_record(Some(137), Duration::from_secs(1), false);
        assert_eq!((killed.signal, killed.code, killed.status.as_str()), (Some(9), None, "killed by signal 9 (SIGKILL)"));
        let failed = exit_record(Some(1), Duration::from_secs(1), false);
        assert_eq!((failed.signal, failed.code, failed.status.as_str()), (None, Some(1), "exit code 1"));
    }
}
