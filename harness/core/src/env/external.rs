//! The external environment: a pipeline that already runs (a student's cluster
//! through port-forwards, a team's staging). The harness starts and stops nothing.
//! Getting ready is `harness doctor`'s walk without its canary (a broken link ends
//! the run with the doctor's diagnosis), then the canary's event on the topic.
//! Outputs are found by listing the target bucket, since that MinIO announces
//! nothing to the harness.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harness_model::scenario::{EnvKind, External};
use tokio::sync::watch;

use super::{EnvError, EnvSpec, Environment, ReadyTimings, ServiceInfo};
use crate::doctor::{self, kafka_wire, render, Severity};
use crate::services::canary::{self, CanaryError};
use crate::services::endpoints::{Endpoints, S3Credentials};
use crate::services::processor::{ProcessorSpec, ProcessorStatus};
use crate::services::s3::s3_client;

#[derive(Debug)]
pub struct ExternalEnv {
    spec: EnvSpec,
    endpoints: Endpoints,
    timings: ReadyTimings,
    canary_key: String,
    /// The events topic's ends before the canary (see [`Environment::events_from`]).
    events_from: Vec<(i32, rdkafka::Offset)>,
    run_id: String,
}

/// The most objects of one run removed from one prefix of a pipeline's bucket (a run
/// uploads at most this many; more under the run's prefix is not the run's doing).
const CLEANUP_LIMIT: usize = 100_000;

impl ExternalEnv {
    /// Checks the pipeline as the doctor does and sends the canary.
    pub async fn start(
        spec: EnvSpec,
        ext: &External,
        run_id: &str,
        group: &str,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<ExternalEnv, EnvError> {
        let started = Instant::now();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let credentials = match (var(&ext.access_key_env), var(&ext.secret_key_env)) {
            (Some(access_key), Some(secret_key)) => Some(S3Credentials { access_key, secret_key, region: ext.region.clone() }),
            // In a namespace, MinIO's own spec says them.
            _ if ext.namespace.is_some() => None,
            (a, _) => {
                let name = if a.is_none() { &ext.access_key_env } else { &ext.secret_key_env };
                return Err(EnvError::Engine(format!(
                    "the external pipeline's S3 credentials are read from environment variable {name}, which is not set; export it \
                     (environment.external.access_key_env / secret_key_env name other variables)"
                )));
            }
        };
        let target = doctor::Target {
            s3_endpoint: ext.s3_endpoint.clone(),
            credentials,
            kafka_bootstrap: ext.kafka_bootstrap.clone(),
            topic: spec.events_topic.clone(),
            source_bucket: spec.source_bucket.clone(),
            target_bucket: spec.target_bucket.clone(),
            group: Some(group.to_string()),
            canary: false,
            probe_timeout: Duration::from_secs(3),
            canary_timeout: spec.ready_timeout,
            kubernetes: ext.namespace.clone().map(|namespace| doctor::cluster::Scope { context: ext.context.clone(), namespace }),
            from: doctor::Vantage::Here,
        };
        let target = match &target.kubernetes {
            Some(scope) => {
                progress(&format!("reading the pipeline's endpoints from namespace {}…", scope.namespace));
                doctor::resolve(&target)
                    .await
                    .map_err(|e| EnvError::Engine(format!("the external pipeline in namespace {}: {e}", scope.namespace)))?
            }
            None => target,
        };
        let Some(credentials) = target.credentials.clone() else {
            return Err(EnvError::Engine("the external pipeline's S3 credentials: none given and none found".into()));
        };
        let endpoints = Endpoints {
            kafka_bootstrap: target.kafka_bootstrap.clone(),
            kafka_sasl: None,
            s3_endpoint: target.s3_endpoint.clone(),
            credentials,
            events_topic: spec.events_topic.clone(),
            outputs_topic: String::new(),
            source_bucket: spec.source_bucket.clone(),
            target_bucket: spec.target_bucket.clone(),
        };
        progress(&format!(
            "checking the external pipeline at {} and {} (as `harness doctor` does)",
            endpoints.s3_endpoint, endpoints.kafka_bootstrap
        ));
        let diagnosis = doctor::diagnose(&target, progress).await;
        let checked = started.elapsed();
        let _ = std::fs::create_dir_all(&spec.run_dir);
        let _ = render::write_reports(&diagnosis, &spec.run_dir.join("doctor"));
        if diagnosis.worst() == Severity::Error {
            return Err(EnvError::Engine(format!("the external pipeline is broken; {}", render::text(&diagnosis))));
        }
        for w in diagnosis.findings.iter().filter(|f| f.severity == Severity::Warning) {
            progress(&format!("warning: {}: {}: {}", w.link.name(), w.check, w.evidence));
        }

        // The canary proves the path from an upload to the topic, as in every
        // environment; the pipeline's processor will make a thumbnail of it too
        // (its key is under the harness's prefix, which the checks ignore).
        let t = Instant::now();
        let first = endpoints.kafka_bootstrap.split(',').next().unwrap_or_default().trim().to_string();
        let partitions = match kafka_wire::probe(&first, Some(&spec.events_topic), Duration::from_secs(3)).await {
            Ok(kafka_wire::Listener::Plaintext { topic: Some(t), .. }) if t.partitions > 0 => t.partitions as i32,
            _ => 1,
        };
        let canary_key = canary::canary_key(run_id);
        let s3 = s3_client(&endpoints.s3_endpoint, &endpoints.credentials);
        let events_from = canary::high_watermarks(&endpoints.kafka_bootstrap, &spec.events_topic, partitions, Duration::from_secs(5)).await;
        match canary::run_canary_from(&s3, &endpoints.kafka_bootstrap, &spec.events_topic, &events_from, &spec.source_bucket, &canary_key, spec.ready_timeout)
            .await
        {
            Ok(_) => {}
            Err(CanaryError::Setup(detail)) => return Err(EnvError::Engine(format!("the canary could not be sent: {detail}"))),
            Err(CanaryError::NoEvent) => {
                return Err(EnvError::Engine(format!(
                    "MinIO accepted the canary {}/{canary_key}, but its event did not reach topic {} within {}; every link answered the doctor, so \
                     MinIO's Kafka target is likely offline from where MinIO runs: read MinIO's log for kafka errors",
                    spec.source_bucket,
                    spec.events_topic,
                    crate::services::secs(spec.ready_timeout)
                )))
            }
        }
        let timings = ReadyTimings { kafka: checked, minio: Duration::ZERO, canary: t.elapsed(), total: started.elapsed() };
        Ok(ExternalEnv { spec, endpoints, timings, canary_key, events_from, run_id: run_id.to_string() })
    }
}

#[async_trait]
impl Environment for ExternalEnv {
    fn kind(&self) -> EnvKind {
        EnvKind::External
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn services(&self) -> Vec<ServiceInfo> {
        let info = |name: &str, at: &str| ServiceInfo {
            name: name.into(),
            version: format!("external, at {at}"),
            log_path: self.spec.run_dir.join("logs").join(format!("{name}.log")),
            pid: None,
        };
        vec![info("kafka", &self.endpoints.kafka_bootstrap), info("minio", &self.endpoints.s3_endpoint)]
    }

    fn ready_timings(&self) -> &ReadyTimings {
        &self.timings
    }

    fn canary_key(&self) -> &str {
        &self.canary_key
    }

    fn events_from(&self) -> Option<Vec<(i32, rdkafka::Offset)>> {
        Some(self.events_from.clone())
    }

    fn run_dir(&self) -> &Path {
        &self.spec.run_dir
    }

    fn minio_queue_dir(&self) -> Option<PathBuf> {
        None
    }

    async fn log_tail(&self, _service: &str, _n: usize) -> String {
        "(an external pipeline: the harness has none of its logs; `kubectl logs` or the services' own logs have them)".into()
    }

    /// Validation admits only `processor: { running: true }` here, which is never started.
    async fn start_processor(&mut self, _spec: ProcessorSpec) -> Result<(), EnvError> {
        Err(super::unsupported(EnvKind::External, "starting a processor"))
    }

    async fn stop_processor(&mut self) -> Option<ProcessorStatus> {
        None
    }

    fn processor_events(&self) -> Option<watch::Receiver<ProcessorStatus>> {
        None
    }

    /// Nothing of the pipeline is the harness's to stop; what the run put into its
    /// buckets is removed (the uploads and thumbnails under the run's prefix, the
    /// canary and its thumbnail, the observers' probe), unless `keep`.
    async fn shutdown(self: Box<Self>, keep: bool) -> Result<(), EnvError> {
        let s3 = s3_client(&self.endpoints.s3_endpoint, &self.endpoints.credentials);
        let (source, target) = (&self.endpoints.source_bucket, &self.endpoints.target_bucket);
        let run = format!("{}/", self.run_id);
        let canary = self.canary_key.trim_end_matches(".png").to_string();
        let probe = format!("{}probe/{}", harness_model::HARNESS_KEY_PREFIX, self.run_id);
        let mut prefixes = vec![(source, canary.clone())];
        if !keep {
            prefixes.extend([(source, run.clone()), (target, run), (target, canary), (target, probe)]);
        }
        let mut left = Vec::new();
        for (bucket, prefix) in prefixes {
            if let Err(e) = crate::services::s3::remove_prefix(&s3, bucket, &prefix, CLEANUP_LIMIT, Duration::from_secs(60)).await {
                left.push(e);
            }
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(EnvError::Engine(format!("the run's objects could not all be removed from the pipeline's buckets: {}", left.join("; "))))
        }
    }
}
