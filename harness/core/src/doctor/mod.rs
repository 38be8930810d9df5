//! `harness doctor`: walks an existing pipeline link by link through the real
//! client paths (S3 → buckets → bucket notification → MinIO's Kafka target →
//! Kafka bootstrap → advertised listeners → topic → consumer group → one canary
//! through the whole pipeline) and says, for each link, what it saw, why it is
//! broken and what to change. Given a Kubernetes namespace, it first reads the
//! objects the pipeline runs as ([`cluster`]).
//!
//! Every probe has a timeout, and a link is only checked when the ones it
//! depends on work: on a broken setup the answer comes in seconds, not a hang.

mod canary;
pub mod cluster;
pub mod discover;
pub mod in_cluster;
mod kafka;
pub mod kafka_wire;
mod live_lint;
mod minio;
pub mod minio_admin;
pub mod redact;
pub mod render;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::services::endpoints::S3Credentials;
pub use in_cluster::Vantage;

/// The pipeline to diagnose, as a student or teacher gives it.
#[derive(Clone, Debug)]
pub struct Target {
    /// `http://host:port` of MinIO's S3 API; empty: read from the namespace.
    pub s3_endpoint: String,
    /// `None`: read from the namespace (MinIO's own spec or Secret).
    pub credentials: Option<S3Credentials>,
    /// The bootstrap address the processor uses (`host:port[,…]`); empty: read
    /// from the namespace.
    pub kafka_bootstrap: String,
    /// The topic MinIO publishes the source bucket's events to.
    pub topic: String,
    pub source_bucket: String,
    pub target_bucket: String,
    /// The processor's consumer group; `None`: any group reading the topic.
    pub group: Option<String>,
    /// Send one image through the pipeline at the end (when nothing else failed).
    pub canary: bool,
    /// Limit of each single probe.
    pub probe_timeout: Duration,
    /// How long the canary's thumbnail may take.
    pub canary_timeout: Duration,
    /// The Kubernetes namespace the pipeline runs in: its pods, volume claims and
    /// topic resources are checked first, and what the fields above leave empty
    /// is read from it.
    pub kubernetes: Option<cluster::Scope>,
    /// Where the links are walked from.
    pub from: Vantage,
}

/// The links of the chain, in the order they are walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Pods and volume claims of the pipeline's namespace.
    Workloads,
    /// Strimzi `KafkaTopic` resources.
    TopicResource,
    /// The endpoints read from the namespace, and the pod the links are walked from.
    Discovery,
    S3,
    Buckets,
    BucketNotification,
    MinioKafkaTarget,
    KafkaBootstrap,
    AdvertisedListeners,
    Topic,
    ConsumerGroup,
    Pipeline,
}

impl Link {
    pub fn name(self) -> &'static str {
        match self {
            Link::Workloads => "pods and volumes",
            Link::TopicResource => "KafkaTopic resources",
            Link::Discovery => "endpoints in the cluster",
            Link::S3 => "S3 endpoint",
            Link::Buckets => "buckets",
            Link::BucketNotification => "bucket notification",
            Link::MinioKafkaTarget => "MinIO's Kafka target",
            Link::KafkaBootstrap => "Kafka bootstrap",
            Link::AdvertisedListeners => "advertised listeners",
            Link::Topic => "topic",
            Link::ConsumerGroup => "consumer group",
            Link::Pipeline => "pipeline canary",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Ok,
    /// Not checked: a link it depends on is broken, or the doctor lacks access.
    Skipped,
    Warning,
    Error,
}

/// One thing the doctor checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    pub link: Link,
    pub severity: Severity,
    /// What was checked, in a few words.
    pub check: String,
    /// What was seen: the exact error or value.
    pub evidence: String,
    /// Why it is broken (for warnings and errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// What to change: a command line or a manifest field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// How long the check took.
    pub millis: u64,
}

impl Finding {
    fn new(link: Link, severity: Severity, check: impl Into<String>, evidence: impl Into<String>) -> Finding {
        Finding { link, severity, check: check.into(), evidence: evidence.into(), cause: None, fix: None, millis: 0 }
    }
    fn ok(link: Link, check: impl Into<String>, evidence: impl Into<String>) -> Finding {
        Finding::new(link, Severity::Ok, check, evidence)
    }
    fn error(link: Link, check: impl Into<String>, evidence: impl Into<String>) -> Finding {
        Finding::new(link, Severity::Error, check, evidence)
    }
    fn warning(link: Link, check: impl Into<String>, evidence: impl Into<String>) -> Finding {
        Finding::new(link, Severity::Warning, check, evidence)
    }
    fn skipped(link: Link, check: impl Into<String>, why: impl Into<String>) -> Finding {
        Finding::new(link, Severity::Skipped, check, why)
    }
    fn because(mut self, cause: impl Into<String>) -> Finding {
        self.cause = Some(cause.into());
        self
    }
    fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// The doctor's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Diagnosis {
    pub s3_endpoint: String,
    pub kafka_bootstrap: String,
    pub topic: String,
    pub source_bucket: String,
    pub target_bucket: String,
    pub findings: Vec<Finding>,
    pub millis: u64,
    /// Where the links from the S3 endpoint on were walked from, when not from
    /// where the doctor runs (a pod in the pipeline's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walked_from: Option<String>,
}

impl Diagnosis {
    /// The worst severity found (`Ok` for a clean bill).
    pub fn worst(&self) -> Severity {
        self.findings.iter().map(|f| f.severity).filter(|s| *s != Severity::Skipped).max().unwrap_or(Severity::Ok)
    }
    /// The first error: the root cause, since links are walked in order.
    pub fn first_error(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.severity == Severity::Error)
    }
}

/// Collects findings, timing each check.
struct Notes {
    findings: Vec<Finding>,
    started: Instant,
}

impl Notes {
    fn push(&mut self, mut f: Finding) {
        let now = Instant::now();
        f.millis = now.duration_since(self.started).as_millis() as u64;
        self.started = now;
        self.findings.push(f);
    }
    /// A finding timed elsewhere (by the doctor inside a probe pod).
    fn push_as_is(&mut self, f: Finding) {
        self.started = Instant::now();
        self.findings.push(f);
    }
    fn has_error(&self, link: Link) -> bool {
        self.findings.iter().any(|f| f.link == link && f.severity == Severity::Error)
    }
    fn any_error(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Walks the chain. Never fails: what cannot be checked is a finding.
pub async fn diagnose(target: &Target, progress: &(dyn Fn(&str) + Sync)) -> Diagnosis {
    let started = Instant::now();
    let mut notes = Notes { findings: Vec::new(), started };
    let mut t = target.clone();
    let mut walked_from = None;
    let mut client = None;
    let inside = matches!(target.from, Vantage::Cluster { .. });
    // The credentials found in the namespace: the only ones a probe pod there may carry.
    let mut namespace_credentials = None;
    if let Some(scope) = &target.kubernetes {
        progress(&format!("Kubernetes: pods, volume claims and KafkaTopics of namespace {}", scope.namespace));
        client = cluster::check(scope, &target.topic, target.probe_timeout, &mut notes).await;
        if let (Some(c), true) = (&client, inside || t.s3_endpoint.is_empty() || t.kafka_bootstrap.is_empty() || t.credentials.is_none()) {
            progress(&format!("reading the pipeline's endpoints from namespace {}", scope.namespace));
            namespace_credentials = fill_in(&mut t, discover::discover(c, &scope.namespace, target.probe_timeout).await, &mut notes);
        }
    }
    let credentials = t.credentials.clone();
    // Every secret the doctor holds, kept out of what it says (see [`redact`]).
    let secrets: Vec<String> = [target.credentials.as_ref(), t.credentials.as_ref(), namespace_credentials.as_ref()]
        .into_iter()
        .flatten()
        .map(|c| c.secret_key.clone())
        .collect();
    match credentials {
        _ if t.s3_endpoint.is_empty() || t.kafka_bootstrap.is_empty() => {
            // What was not found is an error above (or the cluster could not be read).
            if !notes.any_error() {
                notes.push(
                    Finding::error(Link::Discovery, "the pipeline's endpoints", "none given and none found").fix("give --s3 and --kafka"),
                );
            }
        }
        None => notes.push(
            Finding::error(
                Link::Discovery,
                "MinIO's credentials",
                "not in the environment and not found in the MinIO container's spec or Secrets",
            )
            .because("the doctor needs MinIO's root credentials (or an admin user's) to read its configuration")
            .fix("export MINIO_ROOT_USER and MINIO_ROOT_PASSWORD (or name other variables with --access-key-env/--secret-key-env)"),
        ),
        Some(credentials) => match (&target.from, &client) {
            (Vantage::Cluster { image, harness_bin }, Some(c)) => {
                let image = match image {
                    Some(i) => Ok(i.clone()),
                    None => {
                        let context = target.kubernetes.as_ref().and_then(|s| s.context.clone());
                        crate::env::kubernetes::harness_image(context.as_deref(), harness_bin, progress).await.map_err(|e| e.to_string())
                    }
                };
                match (image, namespace_credentials) {
                    // Never the caller's own credentials into someone else's namespace:
                    // the pod's Secret holds only what the namespace already holds.
                    (Ok(image), Some(found)) => walked_from = in_cluster::walk(c, &t, &found, &image, &mut notes, progress).await,
                    (Ok(_), None) => notes.push(
                        Finding::error(Link::Discovery, "MinIO's credentials for the probe pod", "none found in the namespace's MinIO spec or Secrets")
                            .because("the pod that walks the links from inside the namespace carries only credentials found there: the ones in your environment are never written into it")
                            .fix("walk from here with your own credentials: --from here, with --s3/--kafka through port-forwards where the advertised addresses need them"),
                    ),
                    (Err(e), _) => notes.push(
                        Finding::error(Link::Discovery, "put the harness's image on the cluster", e)
                            .because("the links are walked from a pod that runs the harness's image, and it could not be built or loaded")
                            .fix("name an image the nodes have with --probe-image, or walk from here: --from here (with port-forwards where the advertised addresses need them)"),
                    ),
                }
            }
            (Vantage::Cluster { .. }, None) => {} // the cluster could not be read: said above
            (Vantage::Here, _) => walk_here(&t, &credentials, &mut notes, progress).await,
        },
    }
    redact::findings(&mut notes.findings, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
    Diagnosis {
        s3_endpoint: t.s3_endpoint.clone(),
        kafka_bootstrap: t.kafka_bootstrap.clone(),
        topic: t.topic.clone(),
        source_bucket: t.source_bucket.clone(),
        target_bucket: t.target_bucket.clone(),
        findings: notes.findings,
        millis: started.elapsed().as_millis() as u64,
        walked_from,
    }
}

/// What the namespace says for what `target` leaves empty (see [`discover`]),
/// for a caller that needs the endpoints and credentials themselves (the external
/// environment). The error names what was not found and why.
pub async fn resolve(target: &Target) -> Result<Target, String> {
    let Some(scope) = &target.kubernetes else { return Ok(target.clone()) };
    let client = cluster::client(scope, target.probe_timeout).await?;
    let mut t = target.clone();
    let mut notes = Notes { findings: Vec::new(), started: Instant::now() };
    fill_in(&mut t, discover::discover(&client, &scope.namespace, target.probe_timeout).await, &mut notes);
    let mut missing: Vec<String> = notes
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}{}", f.check, f.evidence, f.fix.as_ref().map(|x| format!(" (fix: {x})")).unwrap_or_default()))
        .collect();
    if t.credentials.is_none() {
        missing.push(
            "MinIO's credentials: not in the environment and not in the MinIO container's spec or Secrets (export the variables \
             environment.external.access_key_env / secret_key_env name)"
                .into(),
        );
    }
    if missing.is_empty() && !(t.s3_endpoint.is_empty() || t.kafka_bootstrap.is_empty()) {
        Ok(t)
    } else {
        Err(missing.join("; "))
    }
}

/// Takes what the namespace says for what the doctor was not given: the
/// addresses the pods use when walking from a pod, else those from outside.
/// Returns the credentials found in the namespace, if any.
fn fill_in(t: &mut Target, found: discover::Discovery, notes: &mut Notes) -> Option<S3Credentials> {
    let inside = matches!(t.from, Vantage::Cluster { .. });
    // Everything given: the namespace was read only for the probe pod's credentials, and
    // what discovery says about endpoints nobody asked it for is not a finding.
    let only_for_the_probe = !t.s3_endpoint.is_empty() && !t.kafka_bootstrap.is_empty() && t.credentials.is_some();
    let pick = |e: &discover::Endpoint| if inside { e.inside.clone() } else { e.outside.clone() };
    if t.s3_endpoint.is_empty() {
        t.s3_endpoint = found.s3.as_ref().map(pick).unwrap_or_default();
    }
    if t.kafka_bootstrap.is_empty() {
        t.kafka_bootstrap = found.kafka.as_ref().map(pick).unwrap_or_default();
    }
    if !only_for_the_probe {
        found.findings.into_iter().for_each(|f| notes.push(f));
    }
    let (c, from) = found.credentials?;
    if t.credentials.is_none() {
        notes.push(Finding::ok(Link::Discovery, "MinIO's credentials", format!("from {from}")));
        t.credentials = Some(c.clone());
    } else if inside {
        notes.push(Finding::ok(
            Link::Discovery,
            "MinIO's credentials",
            format!("the probe pod uses those from {from}; the ones in your environment stay here"),
        ));
    }
    Some(c)
}

/// The links from the S3 endpoint on, walked from where the doctor runs.
async fn walk_here(t: &Target, credentials: &S3Credentials, notes: &mut Notes, progress: &(dyn Fn(&str) + Sync)) {
    progress("MinIO: S3 API, buckets, bucket notification, Kafka targets");
    let minio = minio::check(t, credentials, notes).await;
    progress("Kafka: bootstrap, advertised listeners, topic, consumer group");
    let partitions = kafka::check(t, notes).await;
    if !t.canary {
        notes.push(Finding::skipped(Link::Pipeline, "one image through the pipeline", "not asked for (--no-canary)"));
    } else if notes.any_error() {
        notes.push(Finding::skipped(Link::Pipeline, "one image through the pipeline", "skipped: fix the errors above first"));
    } else if let Some((s3, filter)) = minio {
        progress("canary: one image through the whole pipeline");
        let route = canary::Route { prefix: filter.prefix, suffix: filter.suffix, partitions: partitions.unwrap_or(1) };
        canary::check(t, &s3, &route, notes).await;
    }
}

/// `host:port` addresses of a `brokers=`/bootstrap list.
fn addresses(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_ignores_skips_and_the_first_error_is_the_root() {
        let d = Diagnosis {
            s3_endpoint: String::new(),
            kafka_bootstrap: String::new(),
            topic: String::new(),
            source_bucket: String::new(),
            target_bucket: String::new(),
            findings: vec![
                Finding::ok(Link::S3, "a", "b"),
                Finding::skipped(Link::Topic, "t", "x"),
                Finding::error(Link::MinioKafkaTarget, "first", "e"),
                Finding::error(Link::Pipeline, "second", "e"),
            ],
            millis: 0,
            walked_from: None,
        };
        assert_eq!(d.worst(), Severity::Error);
        assert_eq!(d.first_error().unwrap().check, "first");
        assert_eq!(addresses(" a:1, b:2 ,"), vec!["a:1", "b:2"]);
    }
}
