//! Proof of network faults on links: a probe crosses each link through its proxy,
//! as the link's own client does (a Kafka produce for `*->kafka`, an S3 request for
//! `processor->minio`), and says whether it shows the fault.
//!
//! - partition, connection_reset: the probe fails;
//! - latency: the probe takes at least `delay / 2` longer than before the
//!   injection (a produce or an S3 request crosses the link at least twice each way,
//!   `delay` each on average; half of one is a margin for jitter and noise);
//! - bandwidth: a payload of about half a second's worth crosses at no more than
//!   1.5x the limit.
//!
//! Recovery is the reverse: every link's probe passes and shows no effect.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use harness_model::scenario::{Action, FaultSpec, LinkEffect, DEFAULT_BANDWIDTH, DEFAULT_DELAY};

use crate::env::{Environment, LinkPath, S3Credentials};
use crate::netfault::LinkFault;
use crate::services::probe::{produce_probe, PROBE_TIMEOUT};

/// Bucket the bandwidth probe writes to: no notification is configured on it, so
/// its objects never reach the pipeline.
pub const PROBE_BUCKET: &str = "harness-link-probe";

/// What the link's proxy is set to for `spec`; `None` for a kind that is not a
/// network fault.
pub fn link_fault(spec: &FaultSpec) -> Option<LinkFault> {
    Some(match spec.kind.describe().action {
        Action::Partition => LinkFault::Partition,
        Action::Link(LinkEffect::Delay) => {
            LinkFault::Latency { delay: spec.link.delay.unwrap_or(DEFAULT_DELAY), jitter: spec.link.jitter.unwrap_or_default() }
        }
        Action::Link(LinkEffect::Throttle) => {
            LinkFault::Bandwidth { bytes_per_second: spec.link.bytes_per_second.unwrap_or(DEFAULT_BANDWIDTH) }
        }
        Action::Link(LinkEffect::Reset) => LinkFault::Reset,
        Action::Stop { .. }
        | Action::Pause(_)
        | Action::StopAndWipeQueue
        | Action::KillLeader
        | Action::RollingRestart
        | Action::KillProcessor
        | Action::AddReplica
        | Action::Publish(_)
        | Action::Rewind => return None,
    })
}

/// One probe of one link.
#[derive(Debug)]
pub struct Observation {
    /// The probe showed the fault.
    pub faulty: bool,
    pub text: String,
}

/// The links of a fault and the probes' context.
pub struct LinkProbes {
    paths: Vec<(&'static str, LinkPath)>,
    fault: LinkFault,
    credentials: S3Credentials,
    /// Probe time per link before the injection (latency's reference).
    baseline: Vec<Duration>,
}

impl LinkProbes {
    /// The probes of `spec`'s links; measures the baseline for latency faults.
    pub async fn new(env: &dyn Environment, spec: &FaultSpec) -> Result<LinkProbes, String> {
        let fault = link_fault(spec).ok_or_else(|| format!("{} is not a fault on links", spec.kind.key()))?;
        let mut paths = Vec::new();
        for link in spec.target.links() {
            let path = env.link_path(link).ok_or_else(|| format!("no fault proxy on {}", link.name()))?;
            paths.push((link.name(), path));
        }
        let mut probes = LinkProbes { paths, fault, credentials: env.endpoints().credentials.clone(), baseline: Vec::new() };
        if matches!(fault, LinkFault::Latency { .. }) {
            let mut baseline = Vec::new();
            for (_, path) in &probes.paths {
                // The faster of two: the first pays for a fresh client's set-up.
                let mut best = Duration::MAX;
                for _ in 0..2 {
                    let (elapsed, r) = probes.request(path, 0, PROBE_TIMEOUT).await;
                    r.map_err(|e| format!("the link did not work before the fault: {e}"))?;
                    best = best.min(elapsed);
                }
                baseline.push(best);
            }
            probes.baseline = baseline;
        }
        Ok(probes)
    }

    /// Probes every link once; `(all faulty, none faulty, what each showed)`.
    pub async fn observe(&self) -> (bool, bool, String) {
        let mut seen = Vec::new();
        for (i, (link, path)) in self.paths.iter().enumerate() {
            let o = self.observe_one(i, path).await;
            seen.push((o.faulty, format!("{link}: {}", o.text)));
        }
        let all = seen.iter().all(|(f, _)| *f);
        let none = seen.iter().all(|(f, _)| !*f);
        (all, none, seen.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join("; "))
    }

    async fn observe_one(&self, i: usize, path: &LinkPath) -> Observation {
        match self.fault {
            LinkFault::Latency { delay, .. } => {
                let baseline = self.baseline.get(i).copied().unwrap_or_default();
                let (elapsed, r) = self.request(path, 0, PROBE_TIMEOUT + delay * 12).await;
                let added = elapsed.saturating_sub(baseline);
                match r {
                    Ok(what) => Observation {
                        // Effect: at least `delay` more; healed: less than half of it more.
                        faulty: added >= delay / 2,
                        text: format!("{what} ({} ms over the {} ms before the fault)", added.as_millis(), baseline.as_millis()),
                    },
                    Err(e) => Observation { faulty: true, text: e },
                }
            }
            LinkFault::Bandwidth { bytes_per_second } => {
                let size = (bytes_per_second as usize / 2).clamp(16 * 1024, 512 * 1024);
                let timeout = PROBE_TIMEOUT + Duration::from_secs_f64(3.0 * size as f64 / bytes_per_second as f64);
                let (elapsed, r) = self.request(path, size, timeout).await;
                let rate = size as f64 / elapsed.as_secs_f64().max(1e-6);
                match r {
                    Ok(_) => Observation {
                        faulty: rate <= 1.5 * bytes_per_second as f64,
                        text: format!(
                            "{} KiB crossed in {} ms: {:.0} KiB/s (limit {} KiB/s)",
                            size / 1024,
                            elapsed.as_millis(),
                            rate / 1024.0,
                            bytes_per_second / 1024
                        ),
                    },
                    Err(e) => Observation { faulty: true, text: e },
                }
            }
            // Partition and reset: the request must fail.
            LinkFault::Partition | LinkFault::Reset | LinkFault::Clear => {
                let (_, r) = self.request(path, 0, PROBE_TIMEOUT).await;
                match r {
                    Ok(what) => Observation { faulty: false, text: what },
                    Err(e) => Observation { faulty: true, text: e },
                }
            }
        }
    }

    /// One request across the link with a fresh client: a produce of `payload`
    /// bytes (Kafka) or a HEAD, or a PUT of `payload` bytes (S3). Returns the time
    /// it took and what it saw.
    async fn request(&self, path: &LinkPath, payload: usize, timeout: Duration) -> (Duration, Result<String, String>) {
        let started = Instant::now();
        let r = match path {
            LinkPath::Kafka(bootstrap) => produce_probe(bootstrap, payload, timeout).await,
            LinkPath::S3(endpoint) => s3_request(endpoint, &self.credentials, payload, timeout).await,
        };
        (started.elapsed(), r)
    }
}

async fn s3_request(endpoint: &str, creds: &S3Credentials, payload: usize, timeout: Duration) -> Result<String, String> {
    let client = crate::services::s3::s3_client(endpoint, creds);
    let describe = |e: &dyn std::fmt::Display| format!("S3 via {endpoint} failed: {e}");
    let call = async {
        if payload == 0 {
            return client
                .list_buckets()
                .send()
                .await
                .map(|_| format!("S3 ListBuckets via {endpoint} answered"))
                .map_err(|e| describe(&crate::services::s3::describe_sdk_error(&e)));
        }
        match client.create_bucket().bucket(PROBE_BUCKET).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()) => {}
            Err(e) => return Err(describe(&crate::services::s3::describe_sdk_error(&e))),
        }
        client
            .put_object()
            .bucket(PROBE_BUCKET)
            .key("probe")
            .body(ByteStream::from(vec![b'p'; payload]))
            .send()
            .await
            .map(|_| format!("S3 PUT of {} KiB via {endpoint} answered", payload / 1024))
            .map_err(|e| describe(&crate::services::s3::describe_sdk_error(&e)))
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(format!("S3 via {endpoint}: no answer within {} ms", timeout.as_millis())),
    }
}
