//! Scenario files: read (`raw`), then resolved into the validated [`Scenario`].
//!
//! Every error names the file, the line and the key path, e.g.
//! `scenarios/x.yaml:12: workload.rate: expected "<number>/s" (e.g. "50/s"), got "fast"`.

pub mod catalog;
mod env_rules;
pub(crate) mod error;
pub mod faults;
mod names;
mod raw;
mod resolve;
pub use resolve::contract_required;
pub mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use catalog::{
    capability, describe, injectable, Action, Brokers, FaultDescription, Link, LinkEffect, Op, Proof, Published, Service, Target,
};
pub use error::{Problem, ScenarioError};
pub use faults::{EventParams, FaultSpec, FaultStart, LinkParams, DEFAULT_BANDWIDTH, DEFAULT_DELAY, DEFAULT_DUPLICATES};
pub use names::{BucketName, ScenarioName, TopicName};
pub use raw::{
    BuiltinName, EnvKind, FaultKind, HostileKind, HostileRule, KafkaOperator, KeyStyle, Misconfiguration, PoisonKind, RawScenario,
};
pub use units::{ByteRate, Format, ImageSize, Rate};

/// A validated scenario: everything the engine needs, with defaults filled in.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub seed: u64,
    /// The file it was read from, as given on the command line.
    pub file: PathBuf,
    pub environment: Environment,
    pub pipeline: Pipeline,
    pub processor: Processor,
    pub workload: Workload,
    #[serde(with = "secs")]
    pub drain_timeout: Duration,
    /// See `drain.quiet`.
    #[serde(with = "secs")]
    pub drain_quiet: Duration,
    /// The fault schedule: explicit faults, then the random ones drawn from the seed.
    pub faults: Vec<FaultSpec>,
    pub expectations: Vec<Expectation>,
    /// The file's text, kept for reports.
    #[serde(skip)]
    pub source_text: String,
}

impl Scenario {
    /// The same scenario on another kind of environment (`harness run --env`), checked
    /// as if the file had said so: a fault or misconfiguration that environment cannot
    /// provide is an error naming the file and the key.
    pub fn on_environment(mut self, kind: EnvKind) -> Result<Scenario, ScenarioError> {
        let problem = |path: String, message: String| {
            ScenarioError::Invalid(Problem { file: self.file.display().to_string(), line: None, path, message })
        };
        let name = kind.name();
        // The same table the file's `environment.kind` is checked against.
        let facts = env_rules::Facts {
            kind,
            kafka_brokers: self.environment.kafka_brokers,
            kafka_operator: self.environment.kafka_operator.is_some(),
            misconfigure: self.environment.misconfigure.is_some(),
            external_given: self.environment.external.is_some(),
            processor_running: matches!(self.processor.kind, ProcessorKind::Running),
            processor_image: matches!(self.processor.kind, ProcessorKind::Image(_)),
        };
        if let Some(rule) = env_rules::first_broken(&facts) {
            return Err(problem(rule.path.into(), (rule.with_flag)(kind)));
        }
        self.environment.kind = kind;
        for spec in &self.faults {
            catalog::capability(spec.kind, spec.target, &self.environment).map_err(|why| {
                problem(format!("faults[{}].kind", spec.index), format!("{} (with --env {name}): {why}", spec.kind.key()))
            })?;
        }
        Ok(self)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Environment {
    pub kind: EnvKind,
    pub events_partitions: u32,
    /// 1, or 3 for a replicated cluster (replication factor 3, min.insync.replicas 2).
    pub kafka_brokers: u32,
    /// Kafka run by an operator (kubernetes): `None` is the harness's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_operator: Option<KafkaOperator>,
    pub minio_queue_dir: bool,
    /// With `minio_queue_dir`: the pipeline target's queue_limit (`None`: MinIO's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minio_queue_limit: Option<u32>,
    pub minio_sync_events: bool,
    #[serde(with = "secs")]
    pub ready_timeout: Duration,
    /// A misconfiguration the environment is started with on purpose.
    pub misconfigure: Option<Misconfiguration>,
    /// With `kind: external`: where the existing pipeline is reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
}

/// An existing pipeline's endpoints; the credentials stay in the environment
/// variables named here.
#[derive(Clone, Debug, Serialize)]
pub struct External {
    /// Empty: read from `namespace`.
    pub s3_endpoint: String,
    /// Empty: read from `namespace`.
    pub kafka_bootstrap: String,
    pub namespace: Option<String>,
    pub context: Option<String>,
    pub access_key_env: String,
    pub secret_key_env: String,
    pub region: String,
    /// The scenario allows faults that publish into the pipeline's topic.
    pub event_faults: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Pipeline {
    pub source_bucket: String,
    pub target_bucket: String,
    pub topic: String,
    pub thumbnail_width: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Processor {
    pub kind: ProcessorKind,
    /// Working directory, already resolved against the scenario file's folder.
    pub workdir: PathBuf,
    pub env: BTreeMap<String, String>,
    /// Names of `env` variables whose values are secret (each is a key of `env`).
    pub secret_env: Vec<String>,
    pub group_id: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessorKind {
    Builtin(BuiltinName),
    Command(Vec<String>),
    /// A container image, run with its own entrypoint (containers, kubernetes).
    Image(String),
    /// The pipeline's own processor, already running (external environment).
    Running,
}

impl Processor {
    /// The values of `env` the scenario marks secret: what a run masks wherever it
    /// writes (logs, reports, the scenario's copy, the terminal).
    pub fn secret_values(&self) -> Vec<String> {
        self.secret_env.iter().filter_map(|k| self.env.get(k)).filter(|v| !v.is_empty()).cloned().collect()
    }

    /// How reports name the processor: `builtin:resize` or the command line.
    pub fn label(&self) -> String {
        match &self.kind {
            ProcessorKind::Builtin(BuiltinName::Resize) => "builtin:resize".to_string(),
            ProcessorKind::Command(argv) => argv.join(" "),
            ProcessorKind::Image(image) => format!("image {image}"),
            ProcessorKind::Running => format!("the pipeline's own (group {})", self.group_id),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    pub images: u32,
    pub rate: Rate,
    pub concurrency: u32,
    pub sizes: Vec<ImageSize>,
    pub formats: Vec<Format>,
    pub keys: KeyStyle,
    /// One upload of each, spread among the images (see `workload.hostile`).
    pub hostile: Vec<HostileKind>,
}

/// Where in the pipeline a latency is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Upload acknowledged → thumbnail seen.
    EndToEnd,
    /// Upload acknowledged → event seen on the topic.
    UploadToEvent,
    /// Event seen on the topic → thumbnail seen.
    EventToOutput,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::EndToEnd, Stage::UploadToEvent, Stage::EventToOutput];
    pub fn key(self) -> &'static str {
        match self {
            Stage::EndToEnd => "end_to_end",
            Stage::UploadToEvent => "upload_to_event",
            Stage::EventToOutput => "event_to_output",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Stage::EndToEnd => "end-to-end",
            Stage::UploadToEvent => "upload → event",
            Stage::EventToOutput => "event → output",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantile {
    P50,
    P90,
    P95,
    P99,
    Max,
}

impl Quantile {
    pub fn key(self) -> &'static str {
        match self {
            Quantile::P50 => "p50",
            Quantile::P90 => "p90",
            Quantile::P95 => "p95",
            Quantile::P99 => "p99",
            Quantile::Max => "max",
        }
    }
    /// The quantile as a fraction (max is 1.0).
    pub fn fraction(self) -> f64 {
        match self {
            Quantile::P50 => 0.50,
            Quantile::P90 => 0.90,
            Quantile::P95 => 0.95,
            Quantile::P99 => 0.99,
            Quantile::Max => 1.0,
        }
    }
}

/// One expectation; each becomes one verdict and one JUnit testcase.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expectation {
    ExactlyOnce,
    Latency {
        stage: Stage,
        quantile: Quantile,
        #[serde(with = "secs")]
        bound: Duration,
    },
    Throughput {
        min_per_second: f64,
    },
    /// Damage expected from a fault: how many uploads never had an event on the topic.
    NotificationsLost {
        at_least: Option<u32>,
        at_most: Option<u32>,
    },
    /// Added to every scenario with faults: each fault was injected, proven by a probe
    /// to take effect, healed, and proven healed. Unknown otherwise, never Fail.
    FaultsTookEffect {
        planned: u32,
    },
    /// The environment was misconfigured on purpose; the harness must say that
    /// notifications never arrived and name the misconfigured address.
    MisconfigurationReported,
    /// Hostile inputs were skipped (or, where allowed, got a valid thumbnail) and
    /// the processor never exited.
    SkippedInputs {
        /// How many hostile inputs the workload has.
        planned: u32,
    },
}

impl Expectation {
    /// A stable identifier: `exactly_once`, `latency.end_to_end.p95`, `throughput.min`.
    pub fn id(&self) -> String {
        match self {
            Expectation::ExactlyOnce => "exactly_once".to_string(),
            Expectation::Latency { stage, quantile, .. } => format!("latency.{}.{}", stage.key(), quantile.key()),
            Expectation::Throughput { .. } => "throughput.min".to_string(),
            Expectation::NotificationsLost { .. } => "notifications_lost".to_string(),
            Expectation::FaultsTookEffect { .. } => "faults.took_effect".to_string(),
            Expectation::MisconfigurationReported => "misconfiguration_reported".to_string(),
            Expectation::SkippedInputs { .. } => "skipped_inputs".to_string(),
        }
    }

    /// What is expected, in words: `p95 end-to-end latency <= 3s`.
    pub fn describe(&self) -> String {
        match self {
            Expectation::ExactlyOnce => "every upload has exactly one valid thumbnail, and no others".to_string(),
            Expectation::Latency { stage, quantile, bound } => {
                format!("{} {} latency <= {}", quantile.key(), stage.label(), units::format_duration(*bound))
            }
            Expectation::Throughput { min_per_second } => format!("throughput >= {min_per_second}/s"),
            Expectation::NotificationsLost { at_least, at_most } => {
                let range = match (at_least, at_most) {
                    (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
                    (Some(lo), None) => format!("at least {lo}"),
                    (None, Some(hi)) => format!("at most {hi}"),
                    (None, None) => "any number of".to_string(),
                };
                format!("{range} uploads lost at the notification stage (no event on the topic), every one named")
            }
            Expectation::MisconfigurationReported => {
                "the harness reports that notifications never arrived and names the misconfigured address or setting".to_string()
            }
            Expectation::FaultsTookEffect { planned } => {
                format!("each of the {planned} faults was injected, proven to take effect, healed and proven healed")
            }
            Expectation::SkippedInputs { .. } => {
                "the processor skips inputs that are not images (no thumbnail), gives the valid ones a thumbnail, and never exits on them"
                    .to_string()
            }
        }
    }
}

/// The largest scenario file read (#22): real ones are about a KiB; a larger file is an
/// error naming its size before it is read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads and validates a scenario file (at most [`MAX_FILE_BYTES`]).
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    parse(&read_bounded(path)?, path)
}

/// A file's text, at most [`MAX_FILE_BYTES`] (checked before reading, and while reading).
pub(crate) fn read_bounded(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read;
    let file = path.display().to_string();
    let read_error = |source| ScenarioError::Read { file: file.clone(), source };
    let f = std::fs::File::open(path).map_err(read_error)?;
    let size = f.metadata().map_err(read_error)?.len();
    if size > MAX_FILE_BYTES {
        return Err(error::too_large(&file, &size.to_string()));
    }
    // The size a FIFO or a device reports is 0: the read itself stops past the cap.
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(error::too_large(&file, &format!("more than {MAX_FILE_BYTES}")));
    }
    String::from_utf8(bytes)
        .map_err(|_| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8")))
}

/// Validates a scenario's text (at most [`MAX_FILE_BYTES`]); `path` names it in errors
/// and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(error::too_large(&file, &text.len().to_string()));
    }
    let raw = error::read_raw(text, &file)?;
    // `my.yaml` has the parent "": relative paths in it are relative to ".", not to
    // an empty path (which no process can be started in).
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    resolve::resolve(raw, text, path, &base_dir)
}

/// The JSON Schema of scenario files (committed as `scenarios/schema.json`).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(RawScenario);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}

/// Durations serialize as seconds (f64) in results and reports.
pub(crate) mod secs {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}
