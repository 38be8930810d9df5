//! The local environment: Kafka and MinIO as child processes on 127.0.0.1,
//! fresh data dirs under the run dir, one process group for the whole run.
//!
//! Start order (why: see `services::minio`): Kafka ‖ MinIO, each until ready →
//! topics → buckets (target versioned) → bucket notifications → canary.
//! MinIO is given Kafka's address before either starts; when Kafka loses its
//! port to someone else, both start again on fresh ports (up to 3 attempts).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Endpoints, EnvError, EnvSpec, ReadyTimings, S3Credentials, ServiceInfo};
use crate::services::canary;
use crate::services::kafka::{self, Kafka, KafkaConfig, KafkaPorts};
use crate::services::minio::{self, Minio, MinioConfig, MinioPorts};
use crate::services::process::{tail_log, ProcessGroup};
use crate::services::processor::{self, ProcessorSpec, ProcessorStatus, ProcessorSupervisor};
use crate::services::provision::Toolchain;

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
    kafka: Option<Kafka>,
    minio: Option<Minio>,
    processor: Option<ProcessorSupervisor>,
    /// Replicas that joined the processor's group later (`processor_join`).
    replicas: Vec<ProcessorSupervisor>,
    /// How the processor was started, to start replicas the same way.
    processor_spec: Option<ProcessorSpec>,
    /// How Kafka and MinIO were started, to start them again after a fault.
    kafka_cfg: Option<KafkaConfig>,
    minio_cfg: Option<MinioConfig>,
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
    pub async fn start(
        spec: EnvSpec,
        tc: &Toolchain,
        progress: &dyn Fn(&str),
    ) -> Result<LocalEnv, EnvError> {
        let started = Instant::now();
        let logs = spec.run_dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|source| EnvError::Io {
            context: format!("creating {}", logs.display()),
            source,
        })?;
        let credentials = generate_credentials().map_err(|source| EnvError::Io {
            context: "reading /dev/urandom for the run's credentials".into(),
            source,
        })?;
        let nonce = crate::services::token::hex_token(8).map_err(|source| EnvError::Io {
            context: "reading /dev/urandom".into(),
            source,
        })?;
        let mut env = LocalEnv {
            endpoints: Endpoints {
                kafka_bootstrap: String::new(),
                s3_endpoint: String::new(),
                credentials,
                events_topic: spec.events_topic.clone(),
                outputs_topic: spec.outputs_topic.clone(),
                source_bucket: spec.source_bucket.clone(),
                target_bucket: spec.target_bucket.clone(),
            },
            group: ProcessGroup::new(logs),
            kafka: None,
            minio: None,
            processor: None,
            replicas: Vec::new(),
            processor_spec: None,
            kafka_cfg: None,
            minio_cfg: None,
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
        let (kafka, minio, kafka_cfg, minio_cfg) = self.start_services(tc).await?;
        self.kafka_cfg = Some(kafka_cfg);
        self.minio_cfg = Some(minio_cfg);
        self.timings.kafka = kafka.ready_in();
        self.timings.minio = minio.ready_in();
        self.endpoints.kafka_bootstrap = kafka.bootstrap();
        self.endpoints.s3_endpoint = minio.endpoint();
        let kafka = self.kafka.insert(kafka);
        let minio = self.minio.insert(minio);

        let setup_started = Instant::now();
        let prepared = super::prepare_pipeline(&kafka.bootstrap(), minio.client(), &self.spec, &self.canary_key).await;
        if let Err(super::Unprepared::NoEvent) = prepared {
            let spec = &self.spec;
            let minio_brokers = self.minio_cfg.as_ref().map(|c| c.kafka_bootstrap.clone()).unwrap_or_default();
            let diagnosis = diagnose_no_event(&minio_brokers, &kafka.bootstrap()).await;
            return Err(EnvError::Canary {
                bucket: spec.source_bucket.clone(),
                key: self.canary_key.clone(),
                topic: spec.events_topic.clone(),
                timeout: spec.ready_timeout,
                diagnosis,
                minio_log_tail: minio.process().log_tail(20),
            });
        }
        prepared.map_err(super::Unprepared::into_env_error)?;
        self.timings.canary = setup_started.elapsed();
        Ok(())
    }

    /// Kafka ‖ MinIO; both again on fresh ports when one lost a port race.
    async fn start_services(
        &self,
        tc: &Toolchain,
    ) -> Result<(Kafka, Minio, KafkaConfig, MinioConfig), EnvError> {
        let io = |source| EnvError::Io {
            context: "picking free ports".into(),
            source,
        };
        let mut attempt = 1;
        loop {
            let kafka_ports = KafkaPorts::pick().map_err(io)?;
            let minio_ports = MinioPorts::pick().map_err(io)?;
            let kafka_cfg = KafkaConfig {
                java: tc.java.clone(),
                libs: tc.kafka_libs.clone(),
                dir: self.spec.run_dir.join("kafka"),
                ready_timeout: self.spec.ready_timeout,
            };
            let minio_cfg = MinioConfig {
                bin: tc.minio_bin.clone(),
                dir: self.spec.run_dir.join("minio"),
                kafka_bootstrap: self
                    .spec
                    .minio_kafka_address
                    .clone()
                    .unwrap_or_else(|| kafka_ports.bootstrap()),
                events_topic: self.spec.events_topic.clone(),
                outputs_topic: self.spec.outputs_topic.clone(),
                queue_dir: self.spec.minio_queue_dir,
                sync_events: self.spec.minio_sync_events,
                credentials: self.endpoints.credentials.clone(),
                ready_timeout: self.spec.ready_timeout,
            };
            let (k, m) = tokio::join!(
                Kafka::start(&self.group, &kafka_cfg, kafka_ports),
                Minio::start(&self.group, &minio_cfg, minio_ports)
            );
            let (err, port_race) = match (k, m) {
                (Ok(k), Ok(m)) => return Ok((k, m, kafka_cfg, minio_cfg)),
                (Ok(mut k), Err(e)) => {
                    let _ = k.process_mut().kill().await;
                    let race = e.is_port_in_use();
                    (e, race)
                }
                (Err(e), Ok(mut m)) => {
                    let _ = m.process_mut().kill().await;
                    let race = e.is_port_in_use();
                    (e, race)
                }
                // Report the error that is not merely a lost port race.
                (Err(ke), Err(me)) => {
                    let race = ke.is_port_in_use() || me.is_port_in_use();
                    (
                        if ke.is_port_in_use() && !me.is_port_in_use() {
                            me
                        } else {
                            ke
                        },
                        race,
                    )
                }
            };
            if port_race && attempt < START_ATTEMPTS {
                tracing::info!(
                    attempt,
                    "a picked port was taken meanwhile; starting again on fresh ports"
                );
                attempt += 1;
                continue;
            }
            return Err(err.into());
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Kafka, MinIO and (once started) the processor, with versions and logs.
    pub fn services(&self) -> Vec<ServiceInfo> {
        let mut out = vec![
            ServiceInfo {
                name: kafka::SERVICE.into(),
                version: format!("Apache Kafka {}", self.kafka_version),
                log_path: self.group.log_path(kafka::SERVICE),
                pid: self.kafka.as_ref().map(|k| k.process().pid()),
            },
            ServiceInfo {
                name: minio::SERVICE.into(),
                version: self.minio_version.clone(),
                log_path: self.group.log_path(minio::SERVICE),
                pid: self.minio.as_ref().map(|m| m.process().pid()),
            },
        ];
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

    pub fn ready_timings(&self) -> &ReadyTimings {
        &self.timings
    }

    /// Key of the canary object in the source bucket (its event is on the
    /// events topic, so observers and checkers must skip it).
    pub fn canary_key(&self) -> &str {
        &self.canary_key
    }

    /// The run's process group id, for fault injectors and tests.
    pub fn pgid(&self) -> Option<i32> {
        self.group.pgid()
    }

    /// Starts the processor with the contract's environment and supervises it.
    pub async fn start_processor(&mut self, spec: ProcessorSpec) -> Result<(), EnvError> {
        if let Some(mut old) = self.processor.take() {
            old.stop(PROCESSOR_GRACE).await;
        }
        let child = processor::child_spec(&spec, &self.endpoints);
        self.processor = Some(ProcessorSupervisor::start(&self.group, child)?);
        self.processor_spec = Some(spec);
        Ok(())
    }

    /// Starts one more replica of the processor (same command, same group; log
    /// `processor-<n>.log`), as a scale-up of a Deployment would. Returns its pid.
    pub async fn add_processor_replica(&mut self) -> Result<u32, EnvError> {
        let mut spec = self.processor_spec.clone().ok_or_else(|| not_running("processor"))?;
        spec.name = format!("{}-{}", spec.name, self.replicas.len() + 2);
        let child = processor::child_spec(&spec, &self.endpoints);
        let replica = ProcessorSupervisor::start(&self.group, child)?;
        let pid = replica.status().borrow().pid.unwrap_or(0);
        self.replicas.push(replica);
        Ok(pid)
    }

    /// Stops the processor (SIGTERM, 10 s grace, SIGKILL) and returns its final
    /// status; `None` if none runs. The watch receivers keep the final status.
    pub async fn stop_processor(&mut self) -> Option<ProcessorStatus> {
        for r in &mut self.replicas {
            r.stop(PROCESSOR_GRACE).await;
        }
        let mut p = self.processor.take()?;
        let status = p.stop(PROCESSOR_GRACE).await;
        self.processor = Some(p);
        Some(status)
    }

    /// The processor's starts, exits and restarts; `None` before
    /// [`LocalEnv::start_processor`].
    pub fn processor_events(&self) -> Option<watch::Receiver<ProcessorStatus>> {
        self.processor.as_ref().map(ProcessorSupervisor::status)
    }

    /// Stops the processor, then MinIO and Kafka gracefully, then kills
    /// whatever is left in the group; removes the data dirs unless `keep`.
    /// `<run_dir>/logs` is always kept.
    pub async fn shutdown(mut self, keep: bool) -> Result<(), EnvError> {
        let result = self.teardown(keep).await;
        self.shut_down = true;
        result
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
        if let Some(mut k) = self.kafka.take() {
            if let Err(e) = k.stop(KAFKA_GRACE).await {
                tracing::warn!("stopping Kafka: {e}");
            }
        }
        // Anything a child forked (a processor's own children) goes too.
        self.group.kill_group();
        if keep {
            return Ok(());
        }
        for dir in ["kafka", "minio"] {
            remove_dir(&self.spec.run_dir.join(dir))?;
        }
        Ok(())
    }

    /// Pid of the running broker; `None` once it exited.
    pub fn kafka_pid(&mut self) -> Option<u32> {
        let k = self.kafka.as_mut()?;
        k.process_mut().try_status().is_none().then(|| k.process().pid())
    }

    /// Pid of the running MinIO; `None` once it exited.
    pub fn minio_pid(&mut self) -> Option<u32> {
        let m = self.minio.as_mut()?;
        m.process_mut().try_status().is_none().then(|| m.process().pid())
    }

    /// Sends `signal` to the broker. For SIGTERM (controlled shutdown, SIGKILL
    /// after 15 s) and SIGKILL it waits for the exit and returns it described;
    /// other signals (SIGSTOP, SIGCONT) return at once with `None`.
    pub async fn signal_kafka(&mut self, signal: i32) -> Result<Option<String>, EnvError> {
        let k = self.kafka.as_mut().ok_or_else(|| not_running(kafka::SERVICE))?;
        signal_and_wait(k.process_mut(), signal, KAFKA_GRACE).await
    }

    /// Starts the broker again on its ports and data after [`LocalEnv::signal_kafka`]
    /// ended it; returns once a produce/consume round trip passed.
    pub async fn restart_kafka(&mut self) -> Result<Duration, EnvError> {
        let (Some(k), Some(cfg)) = (self.kafka.as_mut(), self.kafka_cfg.as_ref()) else {
            return Err(not_running(kafka::SERVICE));
        };
        Ok(k.restart(&self.group, cfg).await?)
    }

    /// Like [`LocalEnv::signal_kafka`], for MinIO (SIGTERM grace 5 s).
    pub async fn signal_minio(&mut self, signal: i32) -> Result<Option<String>, EnvError> {
        let m = self.minio.as_mut().ok_or_else(|| not_running(minio::SERVICE))?;
        signal_and_wait(m.process_mut(), signal, MINIO_GRACE).await
    }

    /// Starts MinIO again on its port and data; returns once put/get/delete passed.
    pub async fn restart_minio(&mut self) -> Result<Duration, EnvError> {
        let (Some(m), Some(cfg)) = (self.minio.as_mut(), self.minio_cfg.as_ref()) else {
            return Err(not_running(minio::SERVICE));
        };
        Ok(m.restart(&self.group, cfg).await?)
    }

    /// MinIO's notification queue dir, when the run has one.
    pub fn minio_queue_dir(&self) -> Option<PathBuf> {
        self.minio_cfg.as_ref().filter(|c| c.queue_dir).map(MinioConfig::queue_dir_path)
    }

    /// Tail of a service's log (for error messages of later stages).
    pub fn log_tail(&self, service: &str, n_lines: usize) -> String {
        tail_log(&self.group.log_path(service), n_lines)
    }

    pub fn run_dir(&self) -> &Path {
        &self.spec.run_dir
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

/// Why the canary's event may not have arrived: MinIO's Kafka target address is
/// probed through a Kafka produce, as MinIO's client would use it.
async fn diagnose_no_event(minio_brokers: &str, kafka_bootstrap: &str) -> Option<String> {
    if minio_brokers.is_empty() {
        return None;
    }
    match crate::fault::kafka_probe(minio_brokers).await {
        Err(e) => Some(format!(
            "likely cause: MinIO's Kafka target points at {minio_brokers} \
             (MINIO_NOTIFY_KAFKA_BROKERS_{}), where no Kafka listener answers \
             ({e}); the broker listens on {kafka_bootstrap}",
            minio::EVENTS_TARGET
        )),
        Ok(_) => None,
    }
}

fn not_running(service: &str) -> EnvError {
    EnvError::Io {
        context: format!("{service} is not part of this environment"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
}

/// Sends `signal`; for SIGTERM and SIGKILL waits for (and reaps) the exit.
async fn signal_and_wait(
    p: &mut crate::services::process::ChildProcess,
    signal: i32,
    grace: Duration,
) -> Result<Option<String>, EnvError> {
    let context = format!("signalling {} (pid {})", p.name(), p.pid());
    let status = match signal {
        libc::SIGTERM => p.stop(grace).await,
        libc::SIGKILL => p.kill().await,
        other => {
            return p.signal(other).map(|()| None).map_err(|source| EnvError::Io { context, source })
        }
    };
    match status {
        Ok(s) => Ok(Some(crate::services::process::describe_status(s))),
        Err(source) => Err(EnvError::Io { context, source }),
    }
}

fn remove_dir(dir: &PathBuf) -> Result<(), EnvError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(EnvError::Io {
            context: format!("removing {}", dir.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Fresh root credentials for the run's MinIO.
fn generate_credentials() -> std::io::Result<S3Credentials> {
    Ok(S3Credentials {
        access_key: format!("harness-{}", crate::services::token::hex_token(6)?),
        secret_key: crate::services::token::hex_token(20)?,
        region: "us-east-1".into(),
    })
}
