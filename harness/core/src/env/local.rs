//! The local environment: Kafka and MinIO as child processes on 127.0.0.1,
//! fresh data dirs under the run dir, one process group for the whole run.
//!
//! Start order (why: see `services::minio`): Kafka ‖ MinIO, each until ready →
//! topics → buckets (target versioned) → bucket notifications → canary.
//! MinIO is given Kafka's address before either starts; when Kafka loses its
//! port to someone else, both start again on fresh ports (up to 3 attempts).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harness_model::scenario::{EnvKind, Link, Service, Target};
use tokio::sync::watch;

use super::{CanaryLost, Endpoints, EnvError, EnvSpec, Environment, LinkPath, ReadyTimings, S3Credentials, ServiceInfo};
use crate::doctor::kafka_wire::{self, Listener};
use crate::netfault::{FaultProxy, LinkControl};
use crate::services::canary;
use crate::services::kafka::{self, ClusterNode, ExtraListener, Kafka, KafkaConfig, KafkaPorts};
use crate::services::minio::{self, Minio, MinioConfig, MinioPorts};
use crate::services::process::{tail_log, ProcessGroup};
use crate::services::processor::{self, ProcessorSpec, ProcessorStatus, ProcessorSupervisor};
use crate::services::provision::Toolchain;
use crate::services::redact::Redactor;
use crate::services::ServiceError;

/// Attempts at starting Kafka + MinIO when a picked port was taken meanwhile.
const START_ATTEMPTS: u32 = 3;
const PROCESSOR_GRACE: Duration = Duration::from_secs(10);
const MINIO_GRACE: Duration = Duration::from_secs(5);
const KAFKA_GRACE: Duration = Duration::from_secs(15);

/// A running local environment. Call [`LocalEnv::shutdown`]; dropping it
/// instead SIGKILLs the whole process group (the panic path).
#[derive(Debug)]
pub struct LocalEnv {
    spec: EnvSpec,
    group: ProcessGroup,
    /// The broker, or the cluster's nodes in node id order (`kafka.brokers: 3`).
    kafka: Vec<Kafka>,
    minio: Option<Minio>,
    processor: Option<ProcessorSupervisor>,
    /// Replicas that joined the processor's group later (`processor_join`).
    replicas: Vec<ProcessorSupervisor>,
    /// How the processor was started, to start replicas the same way.
    processor_spec: Option<ProcessorSpec>,
    /// How Kafka and MinIO were started, to start them again after a fault.
    kafka_cfgs: Vec<KafkaConfig>,
    minio_cfg: Option<MinioConfig>,
    /// Fault proxies on `minio->kafka`, `processor->kafka`, `processor->minio`,
    /// when the scenario has network faults (`EnvSpec::fault_links`).
    links: Vec<FaultProxy>,
    endpoints: Endpoints,
    timings: ReadyTimings,
    canary_key: String,
    kafka_version: String,
    minio_version: String,
    shut_down: bool,
}

impl LocalEnv {
    /// Starts Kafka and MinIO concurrently, then topics, buckets, notifications
    /// and the canary. On failure everything started is stopped again and the
    /// data dirs are removed; `<run_dir>/logs` stays.
    ///
    /// Call from async code on the run's runtime, not from `spawn_blocking`
    /// (children die with the thread that spawned them; see `services::process`).
    pub async fn start(spec: EnvSpec, tc: &Toolchain, progress: &dyn Fn(&str)) -> Result<LocalEnv, EnvError> {
        let started = Instant::now();
        let logs = spec.run_dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|source| EnvError::Io { context: format!("creating {}", logs.display()), source })?;
        let credentials = generate_credentials()
            .map_err(|source| EnvError::Io { context: "reading /dev/urandom for the run's credentials".into(), source })?;
        let nonce =
            crate::services::token::hex_token(8).map_err(|source| EnvError::Io { context: "reading /dev/urandom".into(), source })?;
        let redactor = Redactor::new(std::iter::once(credentials.secret_key.clone()).chain(spec.secrets.iter().cloned()));
        let mut env = LocalEnv {
            endpoints: Endpoints {
                kafka_bootstrap: String::new(),
                kafka_sasl: None,
                s3_endpoint: String::new(),
                credentials,
                events_topic: spec.events_topic.clone(),
                outputs_topic: spec.outputs_topic.clone(),
                source_bucket: spec.source_bucket.clone(),
                target_bucket: spec.target_bucket.clone(),
            },
            group: ProcessGroup::new(logs).with_redactor(redactor),
            kafka: Vec::new(),
            minio: None,
            processor: None,
            replicas: Vec::new(),
            processor_spec: None,
            kafka_cfgs: Vec::new(),
            minio_cfg: None,
            links: Vec::new(),
            timings: ReadyTimings::default(),
            canary_key: canary::canary_key(&nonce),
            kafka_version: tc.kafka_version.clone(),
            minio_version: tc.minio_version.clone(),
            shut_down: false,
            spec,
        };
        match env.bring_up(tc, progress).await {
            Ok(()) => {
                env.timings.total = started.elapsed();
                Ok(env)
            }
            Err(e) => {
                if let Err(cleanup) = env.teardown(false).await {
                    tracing::warn!("cleanup after a failed start: {cleanup}");
                }
                env.shut_down = true;
                Err(e)
            }
        }
    }

    async fn bring_up(&mut self, tc: &Toolchain, progress: &dyn Fn(&str)) -> Result<(), EnvError> {
        progress(&format!(
            "starting Kafka {} and MinIO on 127.0.0.1 (logs in {})…",
            tc.kafka_version,
            self.spec.run_dir.join("logs").display()
        ));
        let (kafka, minio, kafka_cfgs, minio_cfg, links) = self.start_services(tc).await?;
        self.links = links;
        self.kafka_cfgs = kafka_cfgs;
        self.minio_cfg = Some(minio_cfg);
        self.timings.kafka = kafka.iter().map(Kafka::ready_in).max().unwrap_or_default();
        self.timings.minio = minio.ready_in();
        self.endpoints.kafka_bootstrap = cluster_bootstrap(&kafka);
        self.endpoints.s3_endpoint = minio.endpoint();
        self.kafka = kafka;
        let minio = self.minio.insert(minio);
        let bootstrap = self.endpoints.kafka_bootstrap.clone();

        let setup_started = Instant::now();
        let prepared = super::prepare_pipeline(&bootstrap, minio.client(), &self.spec, &self.canary_key).await;
        if let Err(super::Unprepared::NoEvent) = prepared {
            let spec = &self.spec;
            let minio_brokers = self.minio_cfg.as_ref().map(|c| c.kafka_bootstrap.clone()).unwrap_or_default();
            let diagnosis = diagnose_no_event(&minio_brokers, &bootstrap, minio::EVENTS_TARGET, spec.minio_target_sasl).await;
            return Err(EnvError::Canary(Box::new(CanaryLost {
                bucket: spec.source_bucket.clone(),
                key: self.canary_key.clone(),
                topic: spec.events_topic.clone(),
                timeout: spec.ready_timeout,
                diagnosis,
                minio_log_tail: minio.process().log_tail(20),
            })));
        }
        prepared.map_err(super::Unprepared::into_env_error)?;
        self.timings.canary = setup_started.elapsed();
        Ok(())
    }

    /// Kafka ‖ MinIO; both again on fresh ports when one lost a port race. With
    /// `kafka_brokers: 3`, three combined KRaft nodes start together (each is ready
    /// once the replicated readiness topic works, i.e. once all have registered).
    /// With `fault_links`, the links' proxies start first and the broker gets a
    /// listener per Kafka link that advertises the link's proxy, so clients stay
    /// behind the proxy after the bootstrap (one broker only: validation sees to it).
    async fn start_services(
        &self,
        tc: &Toolchain,
    ) -> Result<(Vec<Kafka>, Minio, Vec<KafkaConfig>, MinioConfig, Vec<FaultProxy>), EnvError> {
        let io = |source| EnvError::Io { context: "picking free ports".into(), source };
        let loopback = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let brokers = self.spec.kafka_brokers.max(1) as usize;
        let mut attempt = 1;
        loop {
            let kafka_ports = (0..brokers).map(|_| KafkaPorts::pick()).collect::<std::io::Result<Vec<_>>>().map_err(io)?;
            let minio_ports = MinioPorts::pick().map_err(io)?;
            let mut extra_listeners = Vec::new();
            let mut links = Vec::new();
            let mut minio_brokers = kafka_ports.iter().map(KafkaPorts::bootstrap).collect::<Vec<_>>().join(",");
            if self.spec.fault_links && brokers == 1 {
                let ports = crate::services::ports::free_ports(2).map_err(io)?;
                let proxy = |link, port| FaultProxy::start(link, loopback(port), self.spec.seed);
                let proxy_err = |source| EnvError::Io { context: "starting the links' fault proxies".into(), source };
                let to_kafka = proxy("minio->kafka", ports[0]).await.map_err(proxy_err)?;
                let processor_kafka = proxy("processor->kafka", ports[1]).await.map_err(proxy_err)?;
                let processor_minio = proxy("processor->minio", minio_ports.api).await.map_err(proxy_err)?;
                extra_listeners.push(ExtraListener {
                    name: "MINIO".into(),
                    port: ports[0],
                    advertised: to_kafka.address().to_string(),
                    sasl_plain: None,
                });
                extra_listeners.push(ExtraListener {
                    name: "PROCESSOR".into(),
                    port: ports[1],
                    advertised: processor_kafka.address().to_string(),
                    sasl_plain: None,
                });
                minio_brokers = to_kafka.address().to_string();
                links = vec![to_kafka, processor_kafka, processor_minio];
            } else if let Some(unreachable) = self.spec.minio_listener_advertises.as_ref().filter(|_| brokers == 1) {
                let port = crate::services::ports::free_ports(1).map_err(io)?[0];
                extra_listeners.push(ExtraListener { name: "MINIO".into(), port, advertised: unreachable.clone(), sasl_plain: None });
                minio_brokers = loopback(port).to_string();
            } else if let Some(port) = self.spec.minio_listener_sasl.filter(|_| brokers == 1) {
                let password = crate::services::token::hex_token(12)
                    .map_err(|source| EnvError::Io { context: "reading /dev/urandom for the SASL password".into(), source })?;
                self.group.add_secret(password.clone());
                let sasl_plain = Some(("minio".to_string(), password));
                extra_listeners.push(ExtraListener { name: "MINIO".into(), port, advertised: loopback(port).to_string(), sasl_plain });
                minio_brokers = loopback(port).to_string();
            }
            let nodes: Vec<Option<ClusterNode>> = if brokers > 1 {
                let id = crate::services::token::kafka_cluster_id()
                    .map_err(|source| EnvError::Io { context: "reading /dev/urandom for the cluster id".into(), source })?;
                ClusterNode::cluster(&kafka_ports, &id).into_iter().map(Some).collect()
            } else {
                vec![None]
            };
            let kafka_cfgs: Vec<KafkaConfig> = nodes
                .into_iter()
                .map(|cluster| KafkaConfig {
                    java: tc.java.clone(),
                    libs: tc.kafka_libs.clone(),
                    dir: match &cluster {
                        None => self.spec.run_dir.join("kafka"),
                        Some(c) => self.spec.run_dir.join("kafka").join(format!("node-{}", c.node_id)),
                    },
                    ready_timeout: self.spec.ready_timeout,
                    extra_listeners: extra_listeners.clone(),
                    cluster,
                })
                .collect();
            let minio_cfg = MinioConfig {
                bin: tc.minio_bin.clone(),
                dir: self.spec.run_dir.join("minio"),
                kafka_bootstrap: self.spec.minio_kafka_address.clone().unwrap_or(minio_brokers),
                events_topic: self.spec.events_topic.clone(),
                outputs_topic: self.spec.outputs_topic.clone(),
                queue_dir: self.spec.minio_queue_dir,
                queue_limit: self.spec.minio_queue_limit,
                sync_events: self.spec.minio_sync_events,
                // Any user and password: a PLAINTEXT listener never gets as far as
                // checking them.
                events_sasl: self.spec.minio_target_sasl.then(|| ("minio".to_string(), "harness".to_string())),
                credentials: self.endpoints.credentials.clone(),
                ready_timeout: self.spec.ready_timeout,
            };
            let starts = kafka_cfgs.iter().zip(&kafka_ports).map(|(cfg, ports)| Kafka::start(&self.group, cfg, *ports));
            let (ks, m) = tokio::join!(futures::future::join_all(starts), Minio::start(&self.group, &minio_cfg, minio_ports));
            let mut started = Vec::new();
            let mut errors = Vec::new();
            for k in ks {
                match k {
                    Ok(k) => started.push(k),
                    Err(e) => errors.push(e),
                }
            }
            let m = match m {
                Ok(m) if errors.is_empty() => return Ok((started, m, kafka_cfgs, minio_cfg, links)),
                Ok(mut m) => {
                    let _ = m.process_mut().kill().await;
                    None
                }
                Err(e) => Some(e),
            };
            for mut k in started {
                let _ = k.process_mut().kill().await;
            }
            if let Some(e) = m {
                errors.push(e);
            }
            // Report the error that is not merely a lost port race.
            let port_race = errors.iter().any(ServiceError::is_port_in_use);
            let err = match errors.iter().position(|e| !e.is_port_in_use()) {
                Some(i) => errors.swap_remove(i),
                None => errors.swap_remove(0),
            };
            if port_race && attempt < START_ATTEMPTS {
                tracing::info!(attempt, "a picked port was taken meanwhile; starting again on fresh ports");
                attempt += 1;
                continue;
            }
            return Err(err.into());
        }
    }

    /// Every processor replica stopped (SIGTERM with the contract's grace, or
    /// SIGKILL when `hard`) and held so, under its supervisor, until
    /// `start_service`; returns how each ended, as a phrase for the proof.
    async fn hold_processors(&self, hard: bool) -> Result<Option<String>, EnvError> {
        let grace = if hard { Duration::ZERO } else { PROCESSOR_GRACE };
        let mut ended = Vec::new();
        for p in self.processor.iter().chain(&self.replicas) {
            let how = p.supervision().hold(grace).await.map_err(|e| EnvError::Processor(format!("stopping {}: {e}", p.name())))?;
            ended.push(format!("{}: {}", p.name(), how.unwrap_or_else(|| "was not running".into())));
        }
        if ended.is_empty() {
            return Err(not_running("a running processor"));
        }
        Ok(Some(format!("{} processor(s) stopped ({})", ended.len(), ended.join("; "))))
    }

    /// What the processor is given: the links' proxies where there are some.
    fn processor_endpoints(&self) -> Endpoints {
        let mut ep = self.endpoints.clone();
        if let Some(LinkPath::Kafka(bootstrap)) = self.link_path(Link::ProcessorKafka) {
            ep.kafka_bootstrap = bootstrap;
        }
        if let Some(LinkPath::S3(endpoint)) = self.link_path(Link::ProcessorMinio) {
            ep.s3_endpoint = endpoint;
        }
        ep
    }

    /// The run's process group id, for fault injectors and tests.
    pub fn pgid(&self) -> Option<i32> {
        self.group.pgid()
    }

    async fn teardown(&mut self, keep: bool) -> Result<(), EnvError> {
        for mut r in self.replicas.drain(..) {
            r.stop(PROCESSOR_GRACE).await;
        }
        if let Some(mut p) = self.processor.take() {
            p.stop(PROCESSOR_GRACE).await;
        }
        // MinIO before Kafka: its last events still have a broker to go to.
        if let Some(mut m) = self.minio.take() {
            if let Err(e) = m.stop(MINIO_GRACE).await {
                tracing::warn!("stopping MinIO: {e}");
            }
        }
        // A cluster's nodes stop together: one by one, the last would wait out its
        // grace for a quorum that is gone.
        let stops = self.kafka.iter_mut().map(|k| async move {
            if let Err(e) = k.stop(KAFKA_GRACE).await {
                tracing::warn!("stopping {}: {e}", k.name());
            }
        });
        futures::future::join_all(stops).await;
        self.kafka.clear();
        // Anything a child forked (a processor's own children) goes too.
        self.group.kill_group();
        self.links.clear();
        if keep {
            return Ok(());
        }
        for dir in ["kafka", "minio"] {
            remove_dir(&self.spec.run_dir.join(dir))?;
        }
        Ok(())
    }

    /// Pid of the running broker (the first node of a cluster); `None` once it exited.
    fn kafka_pid(&mut self) -> Option<u32> {
        let k = self.kafka.first_mut()?;
        k.process_mut().try_status().is_none().then(|| k.process().pid())
    }

    /// Sends `signal` to node `node_id` of the cluster (1: the single broker). For
    /// SIGTERM (controlled shutdown, SIGKILL after 15 s) and SIGKILL it waits for
    /// the exit and returns it described; other signals (SIGSTOP, SIGCONT) return
    /// at once with `None`.
    async fn signal_kafka_node(&mut self, node_id: u32, signal: i32) -> Result<Option<String>, EnvError> {
        let k = self.kafka.iter_mut().find(|k| k.node_id() == node_id).ok_or_else(|| not_running(&format!("kafka node {node_id}")))?;
        signal_and_wait(k.process_mut(), signal, KAFKA_GRACE).await
    }

    /// Starts node `node_id` again on its ports and data after
    /// [`LocalEnv::signal_kafka_node`] ended it; returns once its produce/consume round trip passed.
    async fn restart_kafka_node(&mut self, node_id: u32) -> Result<Duration, EnvError> {
        let i = self.kafka.iter().position(|k| k.node_id() == node_id).ok_or_else(|| not_running(&format!("kafka node {node_id}")))?;
        let (Some(k), Some(cfg)) = (self.kafka.get_mut(i), self.kafka_cfgs.get(i)) else {
            return Err(not_running(kafka::SERVICE));
        };
        Ok(k.restart(&self.group, cfg).await?)
    }

    /// Like [`LocalEnv::signal_kafka_node`], for MinIO (SIGTERM grace 5 s).
    async fn signal_minio(&mut self, signal: i32) -> Result<Option<String>, EnvError> {
        let m = self.minio.as_mut().ok_or_else(|| not_running(minio::SERVICE))?;
        signal_and_wait(m.process_mut(), signal, MINIO_GRACE).await
    }

    /// Starts MinIO again on its port and data; returns once put/get/delete passed.
    async fn restart_minio(&mut self) -> Result<Duration, EnvError> {
        let (Some(m), Some(cfg)) = (self.minio.as_mut(), self.minio_cfg.as_ref()) else {
            return Err(not_running(minio::SERVICE));
        };
        Ok(m.restart(&self.group, cfg).await?)
    }
}

#[async_trait]
impl Environment for LocalEnv {
    fn kind(&self) -> EnvKind {
        EnvKind::Local
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Kafka, MinIO and (once started) the processor, with versions and logs.
    fn services(&self) -> Vec<ServiceInfo> {
        let mut out: Vec<ServiceInfo> = self
            .kafka
            .iter()
            .map(|k| ServiceInfo {
                name: k.name().to_string(),
                version: format!("Apache Kafka {}", self.kafka_version),
                log_path: self.group.log_path(k.name()),
                pid: Some(k.process().pid()),
            })
            .collect();
        out.extend([ServiceInfo {
            name: minio::SERVICE.into(),
            version: self.minio_version.clone(),
            log_path: self.group.log_path(minio::SERVICE),
            pid: self.minio.as_ref().map(|m| m.process().pid()),
        }]);
        for p in self.processor.iter().chain(&self.replicas) {
            out.push(ServiceInfo {
                name: p.name().to_string(),
                version: String::new(),
                log_path: p.log_path().to_path_buf(),
                pid: p.status().borrow().pid,
            });
        }
        out
    }

    fn ready_timings(&self) -> &ReadyTimings {
        &self.timings
    }

    /// Key of the canary object in the source bucket (its event is on the
    /// events topic, so observers and checkers must skip it).
    fn canary_key(&self) -> &str {
        &self.canary_key
    }

    fn run_dir(&self) -> &Path {
        &self.spec.run_dir
    }

    /// MinIO's notification queue dir, when the run has one.
    fn minio_queue_dir(&self) -> Option<PathBuf> {
        self.minio_cfg.as_ref().filter(|c| c.queue_dir).map(MinioConfig::queue_dir_path)
    }

    /// Tail of a service's log (for error messages of later stages).
    async fn log_tail(&self, service: &str, n_lines: usize) -> String {
        tail_log(&self.group.log_path(service), n_lines)
    }

    /// Starts the processor with the contract's environment and supervises it.
    async fn start_processor(&mut self, spec: ProcessorSpec) -> Result<(), EnvError> {
        if spec.image.is_some() {
            return Err(super::unsupported(EnvKind::Local, "a processor image (it runs in a container engine)"));
        }
        if let Some(mut old) = self.processor.take() {
            old.stop(PROCESSOR_GRACE).await;
        }
        let child = processor::child_spec(&spec, &self.processor_endpoints());
        self.processor = Some(ProcessorSupervisor::start(&self.group, child)?);
        self.processor_spec = Some(spec);
        Ok(())
    }

    /// Stops the processor (SIGTERM, 10 s grace, SIGKILL) and returns its final
    /// status; `None` if none runs. The watch receivers keep the final status.
    async fn stop_processor(&mut self) -> Option<ProcessorStatus> {
        for r in &mut self.replicas {
            r.stop(PROCESSOR_GRACE).await;
        }
        let mut p = self.processor.take()?;
        let status = p.stop(PROCESSOR_GRACE).await;
        self.processor = Some(p);
        Some(status)
    }

    /// The processor's starts, exits and restarts; `None` before `start_processor`.
    fn processor_events(&self) -> Option<watch::Receiver<ProcessorStatus>> {
        self.processor.as_ref().map(ProcessorSupervisor::status)
    }

    /// Stops the processor, then MinIO and Kafka gracefully, then kills
    /// whatever is left in the group; removes the data dirs unless `keep`.
    /// `<run_dir>/logs` is always kept.
    async fn shutdown(mut self: Box<Self>, keep: bool) -> Result<(), EnvError> {
        let result = self.teardown(keep).await;
        self.shut_down = true;
        result
    }

    async fn stop_service(&mut self, service: Service, hard: bool) -> Result<Option<String>, EnvError> {
        let signal = if hard { libc::SIGKILL } else { libc::SIGTERM };
        let exit = match service {
            Service::Kafka => self.signal_kafka_node(1, signal).await,
            Service::Minio => self.signal_minio(signal).await,
            Service::Processor => return self.hold_processors(hard).await,
        }?;
        // A whole phrase for the proof ("process exit code 143 after SIGTERM").
        Ok(exit.map(|e| format!("process {e}")))
    }

    async fn start_service(&mut self, service: Service) -> Result<Duration, EnvError> {
        match service {
            Service::Kafka => self.restart_kafka_node(1).await,
            Service::Minio => self.restart_minio().await,
            Service::Processor => {
                let t = Instant::now();
                for p in self.processor.iter().chain(&self.replicas) {
                    p.supervision().release().await.map_err(|e| EnvError::Processor(format!("starting {} again: {e}", p.name())))?;
                }
                Ok(t.elapsed())
            }
        }
    }

    /// SIGSTOP to the broker; returns its pid, so a dropped guard can SIGCONT it.
    async fn pause_service(&mut self, service: Service) -> Result<Option<u32>, EnvError> {
        if service != Service::Kafka {
            return Err(super::unsupported(EnvKind::Local, format!("pausing {}", service.name())));
        }
        let pid = self.kafka_pid().ok_or_else(|| not_running("a running broker"))?;
        self.signal_kafka_node(1, libc::SIGSTOP).await?;
        Ok(Some(pid))
    }

    async fn resume_service(&mut self, service: Service) -> Result<(), EnvError> {
        if service != Service::Kafka {
            return Err(super::unsupported(EnvKind::Local, format!("resuming {}", service.name())));
        }
        self.signal_kafka_node(1, libc::SIGCONT).await.map(|_| ())
    }

    /// KRaft node ids of the running cluster (`[1]` for the single broker).
    fn kafka_node_ids(&self) -> Vec<u32> {
        self.kafka.iter().map(Kafka::node_id).collect()
    }

    async fn stop_broker(&mut self, node_id: u32, hard: bool) -> Result<Option<String>, EnvError> {
        self.signal_kafka_node(node_id, if hard { libc::SIGKILL } else { libc::SIGTERM }).await
    }

    async fn start_broker(&mut self, node_id: u32) -> Result<Duration, EnvError> {
        self.restart_kafka_node(node_id).await
    }

    /// The proxies' controls of a link, or of every link to a service.
    fn link_controls(&self, target: Target) -> Result<Vec<LinkControl>, EnvError> {
        let wanted: Vec<&str> = target.links().into_iter().map(Link::name).collect();
        let controls: Vec<LinkControl> = self.links.iter().filter(|p| wanted.contains(&p.link())).map(FaultProxy::control).collect();
        if controls.is_empty() {
            return Err(not_running(&format!("a fault proxy for {target}")));
        }
        Ok(controls)
    }

    /// The proxy a probe connects to, to cross `link` as its client does.
    fn link_path(&self, link: Link) -> Option<LinkPath> {
        let p = self.links.iter().find(|p| p.link() == link.name())?;
        Some(match link.ends().1 {
            Service::Minio => LinkPath::S3(format!("http://{}", p.address())),
            _ => LinkPath::Kafka(p.address().to_string()),
        })
    }

    /// SIGKILL to the processor; returns the pid it had. Its supervisor restarts it.
    async fn kill_processor(&mut self) -> Result<u32, EnvError> {
        let status = self.processor_events().ok_or_else(|| not_running("a running processor"))?;
        let pid = status.borrow().pid.ok_or_else(|| not_running("a processor between restarts"))?;
        super::kill_pid(pid)?;
        Ok(pid)
    }

    /// Starts one more replica of the processor (same command, same group; log
    /// `processor-<n>.log`), as a scale-up of a Deployment would. Returns its pid.
    async fn add_processor_replica(&mut self) -> Result<u32, EnvError> {
        let mut spec = self.processor_spec.clone().ok_or_else(|| not_running("processor"))?;
        spec.name = format!("{}-{}", spec.name, self.replicas.len() + 2);
        let child = processor::child_spec(&spec, &self.processor_endpoints());
        let replica = ProcessorSupervisor::start(&self.group, child)?;
        let pid = replica.status().borrow().pid.unwrap_or(0);
        self.replicas.push(replica);
        Ok(pid)
    }
}

impl Drop for LocalEnv {
    fn drop(&mut self) {
        if !self.shut_down {
            // Last resort (panic, cancelled future): no grace, no await.
            self.group.kill_group();
        }
    }
}

/// Why the canary's event may not have arrived, probed as MinIO's Kafka client
/// would: no Kafka listener at the target's address (the bootstrap fails), or a
/// listener that answers the bootstrap but advertises an address where nothing
/// answers (clients go there next, and their produce goes nowhere).
async fn diagnose_no_event(minio_brokers: &str, kafka_bootstrap: &str, target: &str, target_sasl: bool) -> Option<String> {
    if minio_brokers.is_empty() {
        return None;
    }
    // A SASL listener answers ApiVersions and closes on anything else before the
    // handshake; a PLAINTEXT one answers Metadata straight away: told from the
    // broker's answers, not guessed from a timeout.
    let listener = kafka_wire::probe(minio_brokers, None, Duration::from_secs(2)).await;
    if let (Ok(Listener::Plaintext { .. }), true) = (&listener, target_sasl) {
        return Some(format!(
            "likely cause: MinIO's Kafka target speaks SASL (MINIO_NOTIFY_KAFKA_SASL_{target}=on, mechanism PLAIN) \
             to {minio_brokers}, a PLAINTEXT listener: it answers Metadata with no handshake, and does not take \
             the SASL handshake MinIO opens with, so the target stays offline (MinIO logs \"kafka: client has run \
             out of available brokers to talk to\"). Fix: turn SASL off for the target \
             (MINIO_NOTIFY_KAFKA_SASL_{target}=off, or `mc admin config set ALIAS notify_kafka:{target} sasl=off`), \
             or point it at a SASL_PLAINTEXT listener of the broker"
        ));
    }
    if let (Ok(Listener::Sasl { mechanisms }), false) = (listener, target_sasl) {
        return Some(format!(
            "likely cause: MinIO's Kafka target points at {minio_brokers} (MINIO_NOTIFY_KAFKA_BROKERS_{target}), \
             a SASL_PLAINTEXT listener (mechanisms: {}) that closes the connection on any request before a SASL \
             handshake, and the target speaks PLAINTEXT (the broker logs \"Unexpected Kafka request of type \
             METADATA during SASL handshake\"). Fix: give the target SASL (MINIO_NOTIFY_KAFKA_SASL_{target}=on, \
             _SASL_USERNAME_{target}, _SASL_PASSWORD_{target}, _SASL_MECHANISM_{target}=plain), or point it at a \
             PLAINTEXT listener (the harness's own listener is {kafka_bootstrap})",
            mechanisms.join(", ")
        ));
    }
    let advertised = match crate::services::probe::advertised_brokers(minio_brokers).await {
        Ok(a) => a,
        Err(_) => {
            let e = crate::services::probe::kafka_probe(minio_brokers).await.err()?;
            return Some(format!(
                "likely cause: MinIO's Kafka target points at {minio_brokers} \
                 (MINIO_NOTIFY_KAFKA_BROKERS_{target}), where no Kafka listener answers \
                 ({e}); the broker listens on {kafka_bootstrap}"
            ));
        }
    };
    let mut dead = Vec::new();
    for address in &advertised {
        let connect = tokio::net::TcpStream::connect(address.as_str());
        if !matches!(tokio::time::timeout(Duration::from_secs(1), connect).await, Ok(Ok(_))) {
            dead.push(address.as_str());
        }
    }
    if dead.is_empty() {
        return None;
    }
    Some(format!(
        "likely cause: MinIO's Kafka target (MINIO_NOTIFY_KAFKA_BROKERS_{target}) bootstraps from \
         {minio_brokers}, which answers, but the broker advertises {} for that listener, where nothing \
         answers; Kafka clients connect to the advertised address after the bootstrap, so every event \
         is lost. Fix the listener's entry in advertised.listeners to an address MinIO can reach \
         (the harness's own listener is {kafka_bootstrap})",
        dead.join(", ")
    ))
}

fn not_running(service: &str) -> EnvError {
    EnvError::Io {
        context: format!("{service} is not part of this environment"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

/// Sends `signal`; for SIGTERM and SIGKILL waits for (and reaps) the exit.
async fn signal_and_wait(p: &mut crate::services::process::ChildProcess, signal: i32, grace: Duration) -> Result<Option<String>, EnvError> {
    let context = format!("signalling {} (pid {})", p.name(), p.pid());
    let status = match signal {
        libc::SIGTERM => p.stop(grace).await,
        libc::SIGKILL => p.kill().await,
        other => return p.signal(other).map(|()| None).map_err(|source| EnvError::Io { context, source }),
    };
    match status {
        Ok(s) => Ok(Some(after_signal(&crate::services::process::describe_status(s), signal))),
        Err(source) => Err(EnvError::Io { context, source }),
    }
}

/// How a process exited, saying which signal it was sent when the exit does not:
/// a JVM that handles SIGTERM exits with code 143, which names no signal.
fn after_signal(exit: &str, signal: i32) -> String {
    let sent = if signal == libc::SIGKILL { "SIGKILL" } else { "SIGTERM" };
    if exit.contains(sent) {
        exit.to_string()
    } else {
        format!("{exit} after {sent}")
    }
}

fn remove_dir(dir: &PathBuf) -> Result<(), EnvError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(EnvError::Io { context: format!("removing {}", dir.display()), source: e })
        }
        _ => Ok(()),
    }
}

/// `host:port,host:port` of every node.
fn cluster_bootstrap(nodes: &[Kafka]) -> String {
    nodes.iter().map(Kafka::bootstrap).collect::<Vec<_>>().join(",")
}

/// Fresh root credentials for the run's MinIO.
fn generate_credentials() -> std::io::Result<S3Credentials> {
    Ok(S3Credentials {
        access_key: format!("harness-{}", crate::services::token::hex_token(6)?),
        secret_key: crate::services::token::hex_token(20)?,
        region: "us-east-1".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_names_the_signal_it_followed() {
        assert_eq!(after_signal("exit code 143", libc::SIGTERM), "exit code 143 after SIGTERM");
        assert_eq!(after_signal("killed by signal 9 (SIGKILL)", libc::SIGKILL), "killed by signal 9 (SIGKILL)");
        assert_eq!(after_signal("killed by signal 15 (SIGTERM)", libc::SIGTERM), "killed by signal 15 (SIGTERM)");
    }
}
