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
mod kafka;
pub mod kafka_wire;
mod minio;
pub mod minio_admin;
pub mod render;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::services::endpoints::S3Credentials;

/// The pipeline to diagnose, as a student or teacher gives it.
#[derive(Clone, Debug)]
pub struct Target {
    /// `http://host:port` of MinIO's S3 API.
    pub s3_endpoint: String,
    pub credentials: S3Credentials,
    /// The bootstrap address the processor uses (`host:port[,…]`).
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
    /// topic resources are checked first.
    pub kubernetes: Option<cluster::Scope>,
}

/// The links of the chain, in the order they are walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Pods and volume claims of the pipeline's namespace.
    Workloads,
    /// Strimzi `KafkaTopic` resources.
    TopicResource,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Ok,
    /// Not checked: a link it depends on is broken, or the doctor lacks access.
    Skipped,
    Warning,
    Error,
}

/// One thing the doctor checked.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub link: Link,
    pub severity: Severity,
    /// What was checked, in a few words.
    pub check: String,
    /// What was seen: the exact error or value.
    pub evidence: String,
    /// Why it is broken (for warnings and errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// What to change: a command line or a manifest field.
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    pub s3_endpoint: String,
    pub kafka_bootstrap: String,
    pub topic: String,
    pub source_bucket: String,
    pub target_bucket: String,
    pub findings: Vec<Finding>,
    pub millis: u64,
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

    if let Some(scope) = &target.kubernetes {
        progress(&format!("Kubernetes: pods, volume claims and KafkaTopics of namespace {}", scope.namespace));
        cluster::check(scope, &target.topic, target.probe_timeout, &mut notes).await;
    }
    progress("MinIO: S3 API, buckets, bucket notification, Kafka targets");
    let minio = minio::check(target, &mut notes).await;
    progress("Kafka: bootstrap, advertised listeners, topic, consumer group");
    let partitions = kafka::check(target, &mut notes).await;
    if !target.canary {
        notes.push(Finding::skipped(Link::Pipeline, "one image through the pipeline", "not asked for (--no-canary)"));
    } else if notes.any_error() {
        notes.push(Finding::skipped(Link::Pipeline, "one image through the pipeline", "skipped: fix the errors above first"));
    } else if let Some((s3, filter)) = minio {
        progress("canary: one image through the whole pipeline");
        let route = canary::Route { prefix: filter.prefix, suffix: filter.suffix, partitions: partitions.unwrap_or(1) };
        canary::check(target, &s3, &route, &mut notes).await;
    }
    Diagnosis {
        s3_endpoint: target.s3_endpoint.clone(),
        kafka_bootstrap: target.kafka_bootstrap.clone(),
        topic: target.topic.clone(),
        source_bucket: target.source_bucket.clone(),
        target_bucket: target.target_bucket.clone(),
        findings: notes.findings,
        millis: started.elapsed().as_millis() as u64,
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
        };
        assert_eq!(d.worst(), Severity::Error);
        assert_eq!(d.first_error().unwrap().check, "first");
        assert_eq!(addresses(" a:1, b:2 ,"), vec!["a:1", "b:2"]);
    }
}
