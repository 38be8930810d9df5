//! The kubernetes environment: Kafka (KRaft) and MinIO as StatefulSets and the
//! builtin processor as a Deployment, in a fresh namespace per run, on whatever
//! cluster the kube context names (the harness's own from `ci/k8s up`, a kind
//! cluster, any other), through kube-rs.
//!
//! How every client reaches every service: Services created before the pods.
//! - Pods (MinIO's Kafka target, the processor) use Services' cluster IPs: Kafka's
//!   PLAINTEXT listener is behind a ClusterIP Service (`kafka`) and nowhere else.
//! - The harness, outside the cluster, uses a node's address and node ports:
//!   Kafka's second listener (`kafka-external`), which requires SASL/PLAIN with a
//!   user and password made for the run, and MinIO's API, which requires the run's
//!   random credentials. Anyone who reaches a node reaches a node port; without
//!   the run's secrets nothing behind them answers (no metadata, no topic, no
//!   object). Every client of the harness authenticates through
//!   [`kafka::SaslAddress`]; a processor command run on this machine gets the
//!   `KAFKA_SASL_*` variables.
//!
//! Why node ports and not a path of the harness's own (a port-forward): the
//! addresses must outlive the pods. Kafka advertises exactly these two addresses
//! on two listeners, so each client gets back the address that works from where it
//! stands; both stay the same when a fault deletes a pod, and neither needs cluster
//! DNS. A port-forward stream is cut by every broker kill (and a Kafka client
//! follows the advertised address, not the forward).
//!
//! The namespace carries the run id, the harness's pid and its start time and
//! host as labels; [`reap_leftovers`] deletes namespaces whose harness is gone,
//! as the containers environment does with its containers.
//!
//! With `environment.kafka.operator: strimzi`, Kafka is a Strimzi `Kafka` and
//! its topics `KafkaTopic`s instead ([`strimzi`]); the bootstrap addresses come
//! from its status.
//!
//! Faults are API operations: a StatefulSet scaled to 0 and its pod deleted (with
//! grace 0 for a kill), then scaled to 1 again; the processor's pod deleted with
//! grace 0 (its Deployment replaces it); a Deployment scaled up for a joining
//! replica. What needs the inside of a pod (signals, MinIO's queue, the pod's
//! firewall for a partition) is done from its `signals` container.

mod cluster;
mod logs;
pub mod manifests;
mod owner;
mod processor_pods;
pub mod strimzi;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harness_model::scenario::{EnvKind, KafkaOperator, Service};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service as KService};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use tokio::sync::watch;

pub use cluster::{node_address, reap_leftovers, ClusterTarget};
use cluster::{pod_problem, save_events, KubeErr};
use logs::LogFollowers;
use manifests::{KAFKA, MANAGED_BY, MINIO, PROCESSOR};
use processor_pods::PodProcessor;

use super::{CanaryLost, Endpoints, EnvError, EnvSpec, Environment, ReadyTimings, S3Credentials, ServiceInfo, Unprepared};
use crate::engine::images::{self, ImageSource, RunImages};
use crate::engine::{LABEL_PID, LABEL_PID_START, LABEL_RUN};
use crate::services::canary;
use crate::services::kafka;
use crate::services::minio::{self, MinioConfig};
use crate::services::process::{tail_log, ProcessGroup};
use crate::services::processor::{self, ProcessorSpec, ProcessorStatus, ProcessorSupervisor};
use crate::services::provision::Toolchain;
use crate::services::redact::Redactor;
use crate::services::ServiceError;

const KAFKA_GRACE_SECS: i64 = 15;
const MINIO_GRACE_SECS: i64 = 5;
const PROCESSOR_GRACE: Duration = Duration::from_secs(10);
/// Label with the host the owning harness runs on (its pid means nothing elsewhere).
pub const LABEL_HOST: &str = "io.harness.host";
/// How long one API call may take before the harness says the cluster is not answering.
const API_TIMEOUT: Duration = Duration::from_secs(20);

/// A running kubernetes environment. Call [`Environment::shutdown`]; dropped
/// instead, its namespace is left to the next run's reaper.
pub struct KubernetesEnv {
    spec: EnvSpec,
    client: Client,
    target: ClusterTarget,
    namespace: String,
    labels: BTreeMap<String, String>,
    images: RunImages,
    /// What the harness (outside the cluster) uses: node address and node ports.
    endpoints: Endpoints,
    /// What pods use: the Services' cluster IPs.
    inner_endpoints: Endpoints,
    timings: ReadyTimings,
    canary_key: String,
    kafka_version: String,
    minio_version: String,
    group: ProcessGroup,
    processor: Option<ProcessorRun>,
    processor_spec: Option<ProcessorSpec>,
    /// Every pod's log into `logs/<service>.log`, from its first line.
    logs: Option<LogFollowers>,
    shut_down: bool,
    /// The token of this run's lease on its namespace ([`owner`]), released when the
    /// run deletes the namespace itself.
    owner: Option<String>,
    /// The harness's clients of Kafka's node port authenticate while it lives.
    _sasl_address: Option<kafka::SaslAddress>,
}

/// The processor of a run: the builtin one as a Deployment, a command on the host.
enum ProcessorRun {
    Pods(Box<PodProcessor>),
    Host(ProcessorSupervisor),
}

impl ProcessorRun {
    fn status(&self) -> watch::Receiver<ProcessorStatus> {
        match self {
            ProcessorRun::Pods(p) => p.status(),
            ProcessorRun::Host(s) => s.status(),
        }
    }
}

impl std::fmt::Debug for KubernetesEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesEnv").field("namespace", &self.namespace).field("endpoints", &self.endpoints).finish()
    }
}

fn io_err(context: &str) -> impl FnOnce(std::io::Error) -> EnvError + '_ {
    move |source| EnvError::Io { context: context.to_string(), source }
}

/// The harness's own image (the processor image: the harness binary and nothing
/// else) on the nodes of the cluster `context` names (default: the current one):
/// built through the container engine and loaded as a run loads its images.
/// What `harness doctor` runs its probe pod from.
pub async fn harness_image(context: Option<&str>, harness_bin: &Path, progress: &(dyn Fn(&str) + Sync)) -> Result<String, EnvError> {
    let target = ClusterTarget::resolve(context)?;
    let docker = crate::engine::connect().await.map_err(|e| EnvError::Engine(e.to_string()))?;
    let image = images::ensure_processor_image(&docker, harness_bin, progress).await.map_err(|e| EnvError::Engine(e.to_string()))?;
    cluster::load_images(&target, &docker, &[image.as_str()], cluster::Reload::IfMissing, progress).await?;
    Ok(image)
}

impl KubernetesEnv {
    /// Connects to the cluster, reaps namespaces of killed runs, builds the images
    /// and loads them into the cluster, then creates the run's namespace with
    /// Kafka ‖ MinIO, waits for both through the harness's own client probes, and
    /// sets up topics, buckets, notifications and the canary. On failure the
    /// namespace's pod logs and events are written to `<run_dir>/logs` and the
    /// namespace is deleted.
    pub async fn start(
        spec: EnvSpec,
        tc: &Toolchain,
        run_id: &str,
        source: ImageSource,
        harness_bin: &Path,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<KubernetesEnv, EnvError> {
        let started = Instant::now();
        if source == ImageSource::Official {
            return Err(super::unsupported(
                EnvKind::Kubernetes,
                "running the official images (--images official is for the containers environment; the kubernetes \
                 environment runs the images built here, --images local, the default)",
            ));
        }
        let logs = spec.run_dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(io_err("creating the run's logs folder"))?;
        let target = ClusterTarget::resolve(None)?;
        progress(&format!("connecting to Kubernetes ({})…", target.describe()));
        let (client, cluster_id) = target.client_and_identity().await?;
        let version = cluster::server_version(&client).await?;
        let reaped = reap_leftovers(&client, &cluster_id).await;
        if reaped > 0 {
            progress(&format!("deleted {reaped} namespace(s) left by killed runs"));
        }
        let node_address = cluster::node_address(&client).await?;

        let docker = crate::engine::connect().await.map_err(|e| EnvError::Engine(e.to_string()))?;
        let images = images::run_images(source, &docker, tc, harness_bin, progress).await.map_err(|e| EnvError::Engine(e.to_string()))?;
        let own = [images.set.kafka.as_str(), images.set.minio.as_str(), images.set.processor.as_str()];
        cluster::load_images(&target, &docker, &own, cluster::Reload::IfMissing, progress).await?;

        let token = |n| crate::services::token::hex_token(n).map_err(io_err("reading /dev/urandom"));
        let credentials =
            S3Credentials { access_key: format!("harness-{}", token(6)?), secret_key: token(20)?, region: "us-east-1".into() };
        let namespace = format!("h-{}", token(4)?);
        let canary_key = canary::canary_key(&token(8)?);
        let mut labels = BTreeMap::from([
            (MANAGED_BY.to_string(), "harness".to_string()),
            (LABEL_RUN.to_string(), manifests::label_value(run_id)),
            (LABEL_PID.to_string(), std::process::id().to_string()),
            (LABEL_HOST.to_string(), manifests::label_value(&cluster::hostname())),
        ]);
        if let Some(start) = super::containers::process_start_ticks(std::process::id()) {
            labels.insert(LABEL_PID_START.to_string(), start.to_string());
        }
        // Ownership by a token with a lease on this machine (see `owner`): hostname and
        // pid are only for people reading the labels.
        let owner = owner::claim(&cluster_id);
        if let Some(token) = &owner {
            labels.insert(owner::LABEL_OWNER.to_string(), token.clone());
        }
        // The node port's listener: a user and password of this run only.
        let kafka_sasl = kafka::KafkaSasl::plain(manifests::KAFKA_EXTERNAL_USER, token(20)?);
        let placeholder = Endpoints {
            kafka_bootstrap: String::new(),
            kafka_sasl: None,
            s3_endpoint: String::new(),
            credentials,
            events_topic: spec.events_topic.clone(),
            outputs_topic: spec.outputs_topic.clone(),
            source_bucket: spec.source_bucket.clone(),
            target_bucket: spec.target_bucket.clone(),
        };
        let mut env = KubernetesEnv {
            group: ProcessGroup::new(logs).with_redactor(Redactor::new(
                [placeholder.credentials.secret_key.clone(), kafka_sasl.password.clone()].into_iter().chain(spec.secrets.iter().cloned()),
            )),
            spec,
            client,
            target,
            namespace,
            labels,
            images,
            inner_endpoints: placeholder.clone(),
            endpoints: placeholder,
            timings: ReadyTimings::default(),
            canary_key,
            kafka_version: tc.kafka_version.clone(),
            minio_version: format!("{} (cluster {version})", tc.minio_version),
            processor: None,
            processor_spec: None,
            logs: None,
            shut_down: false,
            owner,
            _sasl_address: None,
        };
        match env.bring_up(&node_address, kafka_sasl, progress).await {
            Ok(()) => {
                env.timings.total = started.elapsed();
                Ok(env)
            }
            Err(e) => {
                env.teardown(false).await;
                env.shut_down = true;
                Err(e)
            }
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn bring_up(&mut self, node: &str, kafka_sasl: kafka::KafkaSasl, progress: &dyn Fn(&str)) -> Result<(), EnvError> {
        let ns = &self.namespace;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .create(&PostParams::default(), &manifests::namespace(ns, &self.labels))
            .await
            .map_err(KubeErr::ctx(format!("creating namespace {ns}")))?;
        let logs_dir = self.spec.run_dir.join("logs");
        self.logs = Some(LogFollowers::start(self.api(), logs_dir, self.group.redactor(), &[KAFKA, MINIO, PROCESSOR]));
        let services: Api<KService> = self.api();
        let pp = PostParams::default();
        // MinIO's API on a node port: it answers nothing without the run's random keys.
        let minio_svc = manifests::node_port_service(MINIO, MINIO, &[("api", manifests::MINIO_API_PORT)], &self.labels);
        let minio_svc = services.create(&pp, &minio_svc).await.map_err(KubeErr::ctx("creating the minio Service"))?;
        let (minio_ip, minio_node_port) = cluster::addresses(&minio_svc, "api")?;
        self.endpoints.s3_endpoint = format!("http://{node}:{minio_node_port}");
        self.inner_endpoints.s3_endpoint = format!("http://{minio_ip}:{}", manifests::MINIO_API_PORT);
        let t = Instant::now();
        let kafka_set = if self.spec.kafka_operator == Some(KafkaOperator::Strimzi) {
            // Strimzi's operator runs Kafka; its status says where (before MinIO
            // is configured with it).
            let topics = [(self.spec.events_topic.as_str(), self.spec.events_partitions), (self.spec.outputs_topic.as_str(), 1)];
            let kafka =
                strimzi::start(&self.client, ns, &topics, &self.labels, &kafka_sasl.password, self.spec.ready_timeout, progress).await?;
            self.endpoints.kafka_bootstrap = kafka.bootstrap.outside;
            // Its node-port listener wants SCRAM-SHA-512 of the run's KafkaUser.
            let sasl = kafka::KafkaSasl { mechanism: "SCRAM-SHA-512".into(), user: strimzi::USER.into(), password: kafka_sasl.password };
            self._sasl_address = Some(kafka::SaslAddress::register(&self.endpoints.kafka_bootstrap, sasl.clone()));
            self.endpoints.kafka_sasl = Some(sasl);
            self.inner_endpoints.kafka_bootstrap = kafka.bootstrap.inside;
            self.kafka_version = format!("{} (Strimzi)", kafka.version);
            None
        } else {
            let (inside, outside) = manifests::kafka_services(&self.labels);
            let inside = services.create(&pp, &inside).await.map_err(KubeErr::ctx("creating the kafka Service"))?;
            let outside = services.create(&pp, &outside).await.map_err(KubeErr::ctx("creating the kafka-external Service"))?;
            let kafka_ip = cluster::cluster_ip(&inside)?;
            let (_, kafka_node_port) = cluster::addresses(&outside, "external")?;
            self.endpoints.kafka_bootstrap = format!("{node}:{kafka_node_port}");
            self.endpoints.kafka_sasl = Some(kafka_sasl.clone());
            self._sasl_address = Some(kafka::SaslAddress::register(&self.endpoints.kafka_bootstrap, kafka_sasl.clone()));
            self.inner_endpoints.kafka_bootstrap = format!("{kafka_ip}:{}", manifests::KAFKA_INTERNAL_PORT);
            let properties = kafka::container_server_properties_advertising(
                &self.inner_endpoints.kafka_bootstrap,
                &self.endpoints.kafka_bootstrap,
                Some(&kafka_sasl),
                Path::new(manifests::KAFKA_DATA),
            );
            let config = manifests::file_secret(
                KAFKA,
                &[("server.properties", properties), ("log4j2.properties", kafka::LOG4J2_PROPERTIES.to_string())],
                &self.labels,
            );
            self.api::<Secret>().create(&pp, &config).await.map_err(KubeErr::ctx("creating the kafka config Secret"))?;
            let config_dir = Path::new(manifests::KAFKA_CONFIG_DIR);
            let command = crate::engine::kafka_entrypoint(
                &self.images.kafka_java,
                &self.images.kafka_libs,
                &config_dir.join("server.properties"),
                &config_dir.join("log4j2.properties"),
                Path::new(manifests::KAFKA_DATA),
            );
            Some(manifests::kafka_stateful_set(
                &manifests::KafkaPod { image: &self.images.set.kafka, command, namespace: ns, grace_secs: KAFKA_GRACE_SECS },
                &self.labels,
            ))
        };
        progress(&format!(
            "starting {}MinIO in namespace {ns} (Kafka at {}, MinIO at {})…",
            if kafka_set.is_some() { format!("Kafka {} and ", self.kafka_version) } else { String::new() },
            self.endpoints.kafka_bootstrap,
            self.endpoints.s3_endpoint
        ));
        let minio_cfg = MinioConfig {
            bin: PathBuf::from(&self.images.minio_bin),
            dir: PathBuf::from(manifests::MINIO_ROOT),
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
        let secrets: Api<Secret> = self.api();
        secrets
            .create(&pp, &manifests::env_secret("minio-env", &minio::minio_env(&minio_cfg), &self.labels))
            .await
            .map_err(KubeErr::ctx("creating the minio-env Secret"))?;
        let minio_set = manifests::minio_stateful_set(
            &manifests::MinioPod {
                image: &self.images.set.minio,
                signals_image: &self.images.set.kafka,
                args: vec![
                    self.images.minio_bin.clone(),
                    "server".into(),
                    minio_cfg.data_dir().display().to_string(),
                    "--address".into(),
                    format!(":{}", manifests::MINIO_API_PORT),
                ],
                namespace: ns,
                env_secret: "minio-env",
                grace_secs: MINIO_GRACE_SECS,
            },
            &self.labels,
        );
        let sets: Api<StatefulSet> = self.api();
        if let Some(kafka_set) = &kafka_set {
            sets.create(&pp, kafka_set).await.map_err(KubeErr::ctx("creating the kafka StatefulSet"))?;
        }
        // MinIO's time counts from its own creation (after Strimzi's Kafka was Ready).
        let minio_t = Instant::now();
        sets.create(&pp, &minio_set).await.map_err(KubeErr::ctx("creating the minio StatefulSet"))?;
        let (kr, mr) = tokio::join!(self.wait_ready(Service::Kafka, t), self.wait_ready(Service::Minio, minio_t));
        self.timings.kafka = kr?;
        self.timings.minio = mr?;

        let setup_started = Instant::now();
        let s3 = crate::services::s3::s3_client(&self.endpoints.s3_endpoint, &self.endpoints.credentials);
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

    /// Polls the service's probe through the harness's endpoint until it passes.
    /// Fails at once when its pod cannot run (image missing on the node, crash
    /// loop, unschedulable), naming the cause; else after `ready_timeout`.
    async fn wait_ready(&self, service: Service, since: Instant) -> Result<Duration, EnvError> {
        let nonce = crate::services::token::hex_token(8).map_err(io_err("reading /dev/urandom"))?;
        let s3 = crate::services::s3::s3_client(&self.endpoints.s3_endpoint, &self.endpoints.credentials);
        let key = format!("_harness/ready/{nonce}");
        let timeout = self.spec.ready_timeout;
        let pods: Api<Pod> = self.api();
        let app = service.name();
        let mut problems = cluster::Problems::default();
        loop {
            let probe = match service {
                Service::Kafka => kafka::round_trip(&self.endpoints.kafka_bootstrap, &nonce, 1).await,
                _ => minio::probe(&s3, &key).await,
            };
            let last = match probe {
                Ok(()) => {
                    if service == Service::Minio {
                        let _ = s3.delete_bucket().bucket(minio::READY_BUCKET).send().await;
                    }
                    return Ok(since.elapsed());
                }
                Err(e) => e,
            };
            if let Some(problem) = problems.settled(pod_problem(&pods, app).await) {
                return Err(ServiceError::Exited {
                    service: app.into(),
                    status: problem,
                    log: self.group.log_path(app),
                    tail: self.log_tail(app, 20).await,
                }
                .into());
            }
            if since.elapsed() >= timeout {
                return Err(ServiceError::NotReady {
                    service: app.into(),
                    timeout,
                    detail: last,
                    log: self.group.log_path(app),
                    tail: self.log_tail(app, 20).await,
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn stateful_set_of(service: Service) -> Result<&'static str, EnvError> {
        match service {
            Service::Kafka => Ok(KAFKA),
            Service::Minio => Ok(MINIO),
            Service::Processor => Err(super::unsupported(EnvKind::Kubernetes, "stopping the processor as a service")),
        }
    }

    async fn scale_stateful_set(&self, name: &str, replicas: i32) -> Result<(), EnvError> {
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.api::<StatefulSet>()
            .patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(KubeErr::ctx(format!("scaling StatefulSet {name} to {replicas}")))?;
        Ok(())
    }

    /// Processor stopped, the services' pods deleted, their last log lines and the
    /// namespace's events written to `logs/`, hostPath data removed from the node,
    /// namespace deleted (kept, with `keep`, for a look: the next run's reaper
    /// deletes it). Never fails: what cannot be removed is reported.
    async fn teardown(&mut self, keep: bool) {
        if let Some(mut p) = self.processor.take() {
            match &mut p {
                ProcessorRun::Pods(pods) => {
                    pods.stop().await;
                }
                ProcessorRun::Host(s) => {
                    s.stop(PROCESSOR_GRACE).await;
                }
            }
        }
        self.group.kill_group();
        if !keep {
            for name in [MINIO, KAFKA] {
                let _ = self.scale_stateful_set(name, 0).await;
            }
            cluster::remove_volumes(&self.client, &self.namespace, &self.images.set.kafka, &self.labels).await;
        }
        if let Some(logs) = self.logs.take() {
            logs.stop(Duration::from_secs(if keep { 0 } else { 3 })).await;
        }
        save_events(&self.client, &self.namespace, &self.group.log_path("kubernetes-events")).await;
        if keep {
            return;
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        match namespaces.delete(&self.namespace, &DeleteParams::background()).await {
            Ok(_) => {
                if let Some(token) = &self.owner {
                    owner::release(token);
                }
            }
            Err(e) => tracing::warn!("deleting namespace {}: {e}", self.namespace),
        }
    }
}

#[async_trait]
impl Environment for KubernetesEnv {
    fn kind(&self) -> EnvKind {
        EnvKind::Kubernetes
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn services(&self) -> Vec<ServiceInfo> {
        let image = |i: &str| format!("(pod, image {i}, namespace {}, {})", self.namespace, self.target.describe());
        let mut out = vec![
            ServiceInfo {
                name: kafka::SERVICE.into(),
                version: format!("Apache Kafka {} {}", self.kafka_version, image(&self.images.set.kafka)),
                log_path: self.group.log_path(kafka::SERVICE),
                pid: None,
            },
            ServiceInfo {
                name: minio::SERVICE.into(),
                version: format!("{} {}", self.minio_version, image(&self.images.set.minio)),
                log_path: self.group.log_path(minio::SERVICE),
                pid: None,
            },
        ];
        if let Some(p) = &self.processor {
            let pid = match p {
                ProcessorRun::Host(s) => s.status().borrow().pid,
                ProcessorRun::Pods(_) => None,
            };
            out.push(ServiceInfo { name: PROCESSOR.into(), version: String::new(), log_path: self.group.log_path(PROCESSOR), pid });
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

    /// MinIO's queue dir is on the node, not on the harness's host.
    fn minio_queue_dir(&self) -> Option<PathBuf> {
        None
    }

    fn has_minio_queue_dir(&self) -> bool {
        self.spec.minio_queue_dir
    }

    /// From the MinIO pod's signals container, which mounts MinIO's folder.
    async fn wipe_minio_queue(&self) -> Result<(crate::fault::Wiped, String), EnvError> {
        if !self.spec.minio_queue_dir {
            return Err(super::unsupported(EnvKind::Kubernetes, "wiping MinIO's queue dir (it has none)".to_string()));
        }
        let pod = format!("{MINIO}-0");
        let dir = Path::new(manifests::MINIO_ROOT).join("queue").display().to_string();
        let what = format!("wiping MinIO's queue dir {dir} in pod {pod}");
        let out = cluster::exec_in_signals(&self.api(), &pod, &manifests::wipe_queue_script(&dir), &what).await?;
        let wiped = manifests::parse_wipe_output(&out).ok_or_else(|| {
            EnvError::Engine(format!(
                "{what}: the pod answered {:?}, not a count",
                harness_model::text::printable(out.lines().last().unwrap_or(""))
            ))
        })?;
        Ok((wiped, format!("{dir} in pod {pod}")))
    }

    /// The last `n` lines of a service's pods (followed into `logs/<service>.log`).
    async fn log_tail(&self, service: &str, n: usize) -> String {
        if let Some(ProcessorRun::Host(s)) = &self.processor {
            if service == s.name() {
                return tail_log(s.log_path(), n);
            }
        }
        let app = match service {
            s if s == kafka::SERVICE => KAFKA,
            s if s == minio::SERVICE => MINIO,
            _ => PROCESSOR,
        };
        tail_log(&self.group.log_path(app), n)
    }

    /// The builtin processor as a Deployment of the processor image (pods use the
    /// Services' cluster IPs); a command (a student's script) on the host against
    /// the node ports.
    async fn start_processor(&mut self, spec: ProcessorSpec) -> Result<(), EnvError> {
        if self.processor.is_some() {
            return Err(EnvError::Engine("the processor already runs".into()));
        }
        if !spec.builtin && spec.image.is_none() {
            let child = processor::child_spec(&spec, &self.endpoints);
            self.processor = Some(ProcessorRun::Host(ProcessorSupervisor::start(&self.group, child)?));
            self.processor_spec = Some(spec);
            return Ok(());
        }
        let mut env = processor::contract_env(&self.inner_endpoints);
        for (k, v) in &spec.env {
            env.retain(|(existing, _)| existing != k);
            env.push((k.clone(), v.clone()));
        }
        // A user's image is loaded like the harness's own (it must be in the engine).
        if let Some(image) = &spec.image {
            let docker = crate::engine::connect().await.map_err(|e| EnvError::Engine(e.to_string()))?;
            cluster::load_images(&self.target, &docker, &[image.as_str()], cluster::Reload::Always, &|_| {}).await?;
        }
        let pp = PostParams::default();
        self.api::<Secret>()
            .create(&pp, &manifests::env_secret("processor-env", &env, &self.labels))
            .await
            .map_err(KubeErr::ctx("creating the processor-env Secret"))?;
        let deployment = manifests::processor_deployment(
            &manifests::ProcessorPods {
                image: spec.image.as_deref().unwrap_or(&self.images.set.processor),
                signals_image: &self.images.set.kafka,
                command: if spec.image.is_some() { Vec::new() } else { vec![images::HARNESS_BIN.into(), "processor".into()] },
                pull_policy: if spec.image.is_some() { "IfNotPresent" } else { "Never" },
                env_secret: "processor-env",
                replicas: 1,
                grace_secs: PROCESSOR_GRACE.as_secs() as i64,
            },
            &self.labels,
        );
        self.api::<Deployment>().create(&pp, &deployment).await.map_err(KubeErr::ctx("creating the processor Deployment"))?;
        let pods = PodProcessor::start(self.api(), self.api()).await?;
        self.processor = Some(ProcessorRun::Pods(Box::new(pods)));
        self.processor_spec = Some(spec);
        Ok(())
    }

    async fn stop_processor(&mut self) -> Option<ProcessorStatus> {
        match self.processor.as_mut()? {
            ProcessorRun::Pods(p) => Some(p.stop().await),
            ProcessorRun::Host(s) => Some(s.stop(PROCESSOR_GRACE).await),
        }
    }

    fn processor_events(&self) -> Option<watch::Receiver<ProcessorStatus>> {
        self.processor.as_ref().map(ProcessorRun::status)
    }

    /// Kafka or MinIO down. Hard: SIGKILL to its process from the pod's signals
    /// container, then its StatefulSet scaled to 0 and the dead pod deleted before
    /// the kubelet (which looks once a second) restarts the container. Graceful:
    /// the StatefulSet scaled to 0 and the pod deleted with the service's grace
    /// (the kubelet sends SIGTERM, SIGKILL after the grace). Nothing replaces the
    /// pod until `start_service`. Returns what was done and how the container ended.
    async fn stop_service(&mut self, service: Service, hard: bool) -> Result<Option<String>, EnvError> {
        if service == Service::Processor {
            return match &mut self.processor {
                Some(ProcessorRun::Pods(p)) => p.hold().await.map(Some),
                Some(ProcessorRun::Host(s)) => {
                    let grace = if hard { Duration::ZERO } else { PROCESSOR_GRACE };
                    s.supervision().hold(grace).await.map_err(EnvError::Processor).map(|how| how.map(|h| format!("processor: {h}")))
                }
                None => Err(EnvError::Engine("no processor runs".into())),
            };
        }
        let name = Self::stateful_set_of(service)?;
        let pod = format!("{name}-0");
        let pods = self.api::<Pod>();
        let killed = if hard { Some(cluster::signal_process(&pods, &pod, name, "KILL").await?) } else { None };
        self.scale_stateful_set(name, 0).await?;
        let grace = if hard {
            0
        } else if service == Service::Kafka {
            KAFKA_GRACE_SECS
        } else {
            MINIO_GRACE_SECS
        };
        let ended = cluster::delete_pod_and_wait(&pods, &pod, grace as u32, Duration::from_secs(grace as u64 + 60)).await?;
        let done = match killed {
            Some(pids) => format!("SIGKILL to {name} (pid {pids} in pod {pod}), then the pod deleted"),
            None => format!("pod {pod} deleted with a grace of {grace} s (SIGTERM, SIGKILL after the grace)"),
        };
        Ok(Some(match ended {
            Some(exit) => format!("{done}; its container ended with {exit}"),
            None => done,
        }))
    }

    /// Scales the StatefulSet back to 1 (same Service addresses, same hostPath
    /// data) and waits for the service's readiness probe.
    async fn start_service(&mut self, service: Service) -> Result<Duration, EnvError> {
        let t = Instant::now();
        if service == Service::Processor {
            match &mut self.processor {
                Some(ProcessorRun::Pods(p)) => p.release().await?,
                Some(ProcessorRun::Host(s)) => {
                    s.supervision().release().await.map_err(|e| EnvError::Processor(format!("starting the processor again: {e}")))?;
                }
                None => return Err(EnvError::Engine("no processor runs".into())),
            }
            return Ok(t.elapsed());
        }
        let name = Self::stateful_set_of(service)?;
        self.scale_stateful_set(name, 1).await?;
        self.wait_ready(service, t).await
    }

    /// SIGSTOP to the broker's process from its pod's signals container (the pod
    /// shares one process namespace): the JVM is frozen, its connections stay
    /// open. No pid to return: a dropped guard cannot resume it, the namespace's
    /// deletion at teardown ends it.
    async fn pause_service(&mut self, service: Service) -> Result<Option<u32>, EnvError> {
        let name = Self::stateful_set_of(service)?;
        cluster::signal_process(&self.api::<Pod>(), &format!("{name}-0"), name, "STOP").await?;
        Ok(None)
    }

    /// SIGCONT to the frozen process.
    async fn resume_service(&mut self, service: Service) -> Result<(), EnvError> {
        let name = Self::stateful_set_of(service)?;
        cluster::signal_process(&self.api::<Pod>(), &format!("{name}-0"), name, "CONT").await.map(|_| ())
    }

    /// Every packet in or out of the service's pod dropped (loopback's excepted),
    /// by iptables in the pod's own network namespace from its signals container:
    /// clients' bytes are held, not refused (bridge CNI enforces no NetworkPolicy).
    async fn disconnect(&mut self, service: Service) -> Result<(), EnvError> {
        let name = Self::stateful_set_of(service)?;
        let pod = format!("{name}-0");
        let what = format!("cutting pod {pod} off the network");
        let out = cluster::exec_in_signals(&self.api(), &pod, &manifests::partition_script(), &what).await?;
        if out.trim() != "partitioned" {
            // Half-applied rules must not outlive the fault.
            let _ = cluster::exec_in_signals(&self.api(), &pod, &manifests::heal_partition_script(), &what).await;
            return Err(EnvError::Engine(format!("{what}: iptables in the pod answered {:?}", out.trim())));
        }
        Ok(())
    }

    async fn reconnect(&mut self, service: Service) -> Result<(), EnvError> {
        let name = Self::stateful_set_of(service)?;
        let pod = format!("{name}-0");
        let what = format!("connecting pod {pod} to the network again");
        let out = cluster::exec_in_signals(&self.api(), &pod, &manifests::heal_partition_script(), &what).await?;
        match out.trim() {
            "healed" => Ok(()),
            other => Err(EnvError::Engine(format!("{what}: the partition's rules are still there ({other:?})"))),
        }
    }

    /// SIGKILL to the processor's process from its pod's signals container (the
    /// kubelet restarts the container, as after any crash); a processor on the
    /// host gets SIGKILL. Returns the number the watcher gave that container (pods
    /// have no pid the harness can see), or the host pid.
    async fn kill_processor(&mut self) -> Result<u32, EnvError> {
        match &mut self.processor {
            Some(ProcessorRun::Pods(p)) => p.kill_primary().await,
            Some(ProcessorRun::Host(s)) => {
                let pid =
                    s.status().borrow().pid.ok_or_else(|| EnvError::Engine("the processor is not running (between restarts)".into()))?;
                super::kill_pid(pid)?;
                Ok(pid)
            }
            None => Err(EnvError::Engine("no processor runs".into())),
        }
    }

    /// Scales the processor's Deployment up by one (the same group), as an
    /// operator's `kubectl scale` would; returns the new pod's number.
    async fn add_processor_replica(&mut self) -> Result<u32, EnvError> {
        match &mut self.processor {
            Some(ProcessorRun::Pods(p)) => p.scale_up().await,
            Some(ProcessorRun::Host(_)) => {
                Err(super::unsupported(EnvKind::Kubernetes, "a second replica of a processor that runs on the host"))
            }
            None => Err(EnvError::Engine("no processor runs".into())),
        }
    }

    async fn shutdown(mut self: Box<Self>, keep: bool) -> Result<(), EnvError> {
        self.teardown(keep).await;
        self.shut_down = true;
        Ok(())
    }
}

impl Drop for KubernetesEnv {
    fn drop(&mut self) {
        if !self.shut_down {
            // Last resort (panic): host processes die now; the namespace goes with
            // the next run's reaper.
            self.group.kill_group();
        }
    }
}
