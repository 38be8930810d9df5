//! The scenario file as written: plain serde structs that mirror the YAML.
//!
//! Unknown keys are errors everywhere. Nothing outside this module's parent sees
//! these types; `resolve` turns them into the validated [`super::Scenario`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::names::{BucketName, Count, ScenarioName, TopicName};
use super::units::{Bound, ByteRate, Format, ImageSize, Rate, Span};

/// A scenario: which environment to start, which processor to test, what to upload,
/// and what to expect.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "harness scenario")]
pub struct RawScenario {
    /// Name used in reports and JUnit: letters, digits, `-`, `_` and `.`.
    pub name: ScenarioName,
    /// One or two sentences on what this scenario shows.
    #[serde(default)]
    pub description: Option<String>,
    /// Seed for images, keys and schedules; the same seed reproduces the run. Default 1.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub environment: RawEnvironment,
    #[serde(default)]
    pub pipeline: RawPipeline,
    /// The processor under test: `builtin: resize` or `command: [...]`.
    #[schemars(with = "RawProcessor")]
    pub processor: Spanned<RawProcessor>,
    pub workload: RawWorkload,
    #[serde(default)]
    pub drain: RawDrain,
    /// Faults injected while the workload runs, each at a time or after a number of
    /// uploads; see `harness::fault` kinds.
    #[serde(default)]
    #[schemars(with = "Vec<RawFault>")]
    pub faults: Vec<Spanned<RawFault>>,
    /// A random fault schedule drawn from the seed: the same seed gives the same
    /// schedule. Added after the faults listed in `faults`.
    #[serde(default)]
    #[schemars(with = "Option<RawRandomFaults>")]
    pub random_faults: Option<Spanned<RawRandomFaults>>,
    /// What a correct run must show; at least one expectation.
    #[schemars(with = "RawExpect")]
    pub expect: Spanned<RawExpect>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    /// Where the services run: `local` (default; child processes on 127.0.0.1),
    /// `containers` (testcontainers against the engine `DOCKER_HOST` names),
    /// `kubernetes` (a namespace of the current kube context), or `external` (a
    /// pipeline that already runs; see `external`).
    #[serde(default)]
    #[schemars(with = "Option<EnvKind>")]
    pub kind: Option<Spanned<EnvKind>>,
    #[serde(default)]
    pub kafka: RawKafka,
    #[serde(default)]
    pub minio: RawMinio,
    /// How long Kafka, MinIO and the canary event may take to be ready. Default 120s.
    #[serde(default)]
    pub ready_timeout: Option<Span>,
    /// Start the environment misconfigured on purpose, as people do, to prove the
    /// harness diagnoses it: `wrong_listener_port` points MinIO's Kafka target at a
    /// port where an HTTP server answers instead of a Kafka listener;
    /// `unreachable_advertised_listener` lets MinIO bootstrap from a real listener
    /// whose advertised address nothing answers on; `sasl_mismatch` points it at a
    /// SASL_PLAINTEXT listener while it speaks PLAINTEXT; `sasl_on_plaintext` has
    /// it speak SASL/PLAIN to a PLAINTEXT listener (local environment).
    #[serde(default)]
    pub misconfigure: Option<Misconfiguration>,
    /// With `kind: external`: where the existing pipeline is reached. The harness
    /// starts and stops nothing; it checks the chain (as `harness doctor` does),
    /// uploads, observes and judges.
    #[serde(default)]
    #[schemars(with = "Option<RawExternal>")]
    pub external: Option<Spanned<RawExternal>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExternal {
    /// MinIO's S3 endpoint, `http://host:port`. Without it: read from `namespace`.
    #[serde(default)]
    pub s3_endpoint: Option<String>,
    /// The Kafka bootstrap address the pipeline's clients use, `host:port[,host:port]`.
    /// Without it: read from `namespace`.
    #[serde(default)]
    pub kafka_bootstrap: Option<String>,
    /// The Kubernetes namespace the pipeline runs in: the endpoints not given
    /// are read from it (a Strimzi `Kafka`'s status, Services, a MinIO Tenant or
    /// pod), and MinIO's credentials from its spec or Secret when the variables
    /// below are not set. Its pods are checked first.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The kubeconfig context of `namespace`. Default: the current one.
    #[serde(default)]
    pub context: Option<String>,
    /// Environment variable holding the S3 access key. Default `MINIO_ROOT_USER`.
    #[serde(default)]
    pub access_key_env: Option<String>,
    /// Environment variable holding the S3 secret key. Default `MINIO_ROOT_PASSWORD`.
    /// Credentials are never written into the scenario, a report or a log.
    #[serde(default)]
    pub secret_key_env: Option<String>,
    /// Region for S3 signatures. Default `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Allows the faults that publish into the pipeline's own topic
    /// (`duplicate_events`, `poison_event`): a check changes nothing it checks unless
    /// the scenario says so here. Default false.
    #[serde(default)]
    pub event_faults: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Misconfiguration {
    /// MinIO's Kafka target points at a port where an HTTP server answers.
    WrongListenerPort,
    /// MinIO bootstraps from a listener that advertises an address where nothing answers.
    UnreachableAdvertisedListener,
    /// MinIO's Kafka target points at a SASL_PLAINTEXT listener (mechanism PLAIN)
    /// while it speaks PLAINTEXT, as with a Bitnami chart's SASL listeners.
    SaslMismatch,
    /// The reverse: MinIO's Kafka target speaks SASL/PLAIN to the broker's
    /// PLAINTEXT listener.
    SaslOnPlaintext,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvKind {
    #[default]
    Local,
    Containers,
    Kubernetes,
    External,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// Partitions of the events topic. Default 3.
    #[serde(default)]
    pub partitions: Option<Count>,
    /// Brokers: 1 (default) or 3. Three combined KRaft nodes (broker + controller)
    /// with replication factor 3 and `min.insync.replicas` 2, for `leader_kill`
    /// and `rolling_restart` (local environment).
    #[serde(default)]
    #[schemars(with = "Option<Count>")]
    pub brokers: Option<Spanned<Count>>,
    /// Who runs Kafka (kubernetes environment): the harness's own StatefulSet
    /// (default), or `strimzi`: a Strimzi `Kafka` (KRaft, with a `KafkaNodePool`)
    /// and the topics as `KafkaTopic`s, which Strimzi's cluster operator,
    /// installed on the cluster beforehand, runs.
    #[serde(default)]
    #[schemars(with = "Option<KafkaOperator>")]
    pub operator: Option<Spanned<KafkaOperator>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaOperator {
    /// Strimzi (`kafka.strimzi.io/v1beta2`).
    Strimzi,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMinio {
    /// Give MinIO's Kafka target a `queue_dir` (events persist while Kafka is down).
    #[serde(default)]
    pub queue_dir: bool,
    /// With `queue_dir`: at most this many events of the pipeline's target wait in
    /// it (MinIO's `queue_limit`; default 100000). Events beyond it are dropped
    /// while Kafka is away: the queue overflow.
    #[serde(default)]
    #[schemars(with = "Option<Count>")]
    pub queue_limit: Option<Spanned<Count>>,
    /// `MINIO_API_SYNC_EVENTS=on`: a PUT returns only after its event was sent.
    #[serde(default)]
    pub sync_events: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// Bucket images are uploaded to. Default `images`.
    #[serde(default)]
    pub source_bucket: Option<BucketName>,
    /// Bucket thumbnails are written to. Default `thumbnails`.
    #[serde(default)]
    #[schemars(with = "Option<BucketName>")]
    pub target_bucket: Option<Spanned<BucketName>>,
    /// Topic MinIO publishes the source bucket's events to. Default `minio-events`.
    #[serde(default)]
    pub topic: Option<TopicName>,
    /// Width of a thumbnail in pixels (aspect ratio kept). Default 128.
    #[serde(default)]
    pub thumbnail_width: Option<Count>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProcessor {
    /// `true`: the pipeline's own processor is already running (with `kind:
    /// external`); the harness starts none. `group_id` names its consumer group.
    #[serde(default)]
    pub running: bool,
    /// A processor that ships with the harness: `resize`.
    #[serde(default)]
    pub builtin: Option<BuiltinName>,
    /// Any program, started with the processor contract's environment variables,
    /// e.g. `[python3, consumer.py]`. Relative paths are relative to `workdir`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// A container image of the processor (containers and kubernetes
    /// environments), e.g. `localhost/resizer:1`: run with its own entrypoint and
    /// command, and the processor contract's environment variables. It must be
    /// present in the container engine (no registry is asked); on kubernetes the
    /// harness loads it into the cluster (`kind load` for a kind context).
    #[serde(default)]
    pub image: Option<String>,
    /// Working directory of `command`, relative to the scenario file. Default: the
    /// scenario file's folder.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Extra environment variables for the processor.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Names of `env` variables whose values are secret (a token, a password):
    /// each value is masked (`***`) in every log, report and terminal line of the
    /// run, and in the copy of this scenario the report keeps. E.g.
    /// `env: { API_TOKEN: s3cr3t }` with `secret_env: [API_TOKEN]`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub secret_env: Option<Spanned<Vec<String>>>,
    /// Consumer group the processor is told to use. Default `thumbnailer`.
    #[serde(default)]
    pub group_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuiltinName {
    Resize,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// How many images to upload.
    pub images: Count,
    /// Upload rate, open loop: uploads follow this schedule whatever the pipeline does.
    pub rate: Rate,
    /// Most uploads in flight at once. Default 8.
    #[serde(default)]
    pub concurrency: Option<Count>,
    /// Image sizes, picked from the seed. Default `[640x480]`.
    #[serde(default)]
    pub sizes: Option<Vec<ImageSize>>,
    /// Image formats, picked from the seed. Default `[jpeg, png]`.
    #[serde(default)]
    pub formats: Option<Vec<Format>>,
    /// Key style: `tricky` (default: nested prefixes, spaces, `+`, `%`, non-ASCII)
    /// or `plain` (`img-0001.jpg`).
    #[serde(default)]
    pub keys: Option<KeyStyle>,
    /// Hostile inputs mixed into the workload, one of each kind listed, spread
    /// evenly among the images (in addition to them): `not_an_image`, `empty`,
    /// `truncated_jpeg`, `huge`, `long_key`. Judge them with `expect.skipped_inputs`.
    #[serde(default)]
    pub hostile: Option<Vec<HostileKind>>,
}

/// An input that breaks processors people write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostileKind {
    /// Text bytes under a `.jpg` key: must be skipped.
    NotAnImage,
    /// A zero-byte `.jpg`: must be skipped.
    Empty,
    /// A JPEG cut off at half its length: skipped, or a valid thumbnail.
    TruncatedJpeg,
    /// One 8000x8000 JPEG, far larger than the rest: a valid image, so it gets a
    /// thumbnail (exactly once) without the processor running out of memory.
    Huge,
    /// A valid image whose key is at S3's limit of 1024 bytes: gets a thumbnail.
    LongKey,
    /// 100 MB under a `.jpg` key, starting as a JPEG does: a processor that reads every
    /// object whole can be made to hold gigabytes, so it must be skipped unread.
    Oversized,
}

/// What a correct processor does with a hostile input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostileRule {
    /// No thumbnail at all.
    Skip,
    /// No thumbnail, or one valid thumbnail.
    SkipOrThumbnail,
    /// Exactly one valid thumbnail, like any image (judged by `exactly_once`).
    Thumbnail,
}

impl HostileKind {
    pub const ALL: [HostileKind; 6] = [
        HostileKind::NotAnImage,
        HostileKind::Empty,
        HostileKind::TruncatedJpeg,
        HostileKind::Huge,
        HostileKind::LongKey,
        HostileKind::Oversized,
    ];

    pub fn key(self) -> &'static str {
        match self {
            HostileKind::NotAnImage => "not_an_image",
            HostileKind::Empty => "empty",
            HostileKind::TruncatedJpeg => "truncated_jpeg",
            HostileKind::Huge => "huge",
            HostileKind::LongKey => "long_key",
            HostileKind::Oversized => "oversized",
        }
    }

    pub fn rule(self) -> HostileRule {
        match self {
            HostileKind::NotAnImage | HostileKind::Empty | HostileKind::Oversized => HostileRule::Skip,
            HostileKind::TruncatedJpeg => HostileRule::SkipOrThumbnail,
            HostileKind::Huge | HostileKind::LongKey => HostileRule::Thumbnail,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStyle {
    Tricky,
    Plain,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrain {
    /// After the last upload, how long to wait for every image to be accounted for.
    /// Default 60s.
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Ends the drain early once the processor's consumer group has committed the
    /// event of every missing thumbnail and no thumbnail has arrived for this long:
    /// what is missing then was dropped by the processor, and waiting out the
    /// timeout would change nothing. Default 10s.
    #[serde(default)]
    pub quiet: Option<Span>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// Every upload has exactly one valid thumbnail and there are no others. With
    /// `notifications_lost` bounds as well, uploads whose event never reached the
    /// topic are judged (and named) there, and exactly-once covers the rest.
    #[serde(default)]
    pub exactly_once: Option<bool>,
    #[serde(default)]
    pub latency: Option<RawLatency>,
    #[serde(default)]
    pub throughput: Option<RawThroughput>,
    /// Damage a fault is expected to cause: uploads whose notification never reached
    /// the events topic (lost at the notification stage), e.g. `{ at_least: 1 }`.
    #[serde(default)]
    pub notifications_lost: Option<RawCountBounds>,
    /// With `environment.misconfigure`: the harness must report that notifications
    /// never arrived and name the misconfigured address (or, for
    /// `sasl_on_plaintext`, setting) as the likely cause.
    #[serde(default)]
    pub misconfiguration_reported: Option<bool>,
    /// With `workload.hostile`: the processor skips what is not an image (no
    /// thumbnail; a truncated JPEG may get a valid one), never exits on them, and
    /// keeps going. Each hostile input is named with what became of it.
    #[serde(default)]
    pub skipped_inputs: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCountBounds {
    #[serde(default)]
    pub at_least: Option<u32>,
    #[serde(default)]
    pub at_most: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLatency {
    /// Upload acknowledged → thumbnail seen.
    #[serde(default)]
    pub end_to_end: Option<RawPercentiles>,
    /// Upload acknowledged → its event seen on the topic.
    #[serde(default)]
    pub upload_to_event: Option<RawPercentiles>,
    /// Event seen on the topic → thumbnail seen.
    #[serde(default)]
    pub event_to_output: Option<RawPercentiles>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPercentiles {
    #[serde(default)]
    pub p50: Option<Bound>,
    #[serde(default)]
    pub p90: Option<Bound>,
    #[serde(default)]
    pub p95: Option<Bound>,
    #[serde(default)]
    pub p99: Option<Bound>,
    #[serde(default)]
    pub max: Option<Bound>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawThroughput {
    /// Minimum thumbnails per second over the steady part of the run.
    pub min: Rate,
}

/// The kinds of fault. What each does, targets and needs, and where it can be
/// injected, is its entry in [`super::catalog::describe`] (also the JSON schema's text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    BrokerStop,
    BrokerKill,
    BrokerPause,
    ProcessorCrash,
    MinioRestart,
    MinioKill,
    QueueDirLoss,
    Partition,
    Latency,
    Bandwidth,
    ConnectionReset,
    LeaderKill,
    RollingRestart,
    ProcessorJoin,
    DuplicateEvents,
    PoisonEvent,
    Replay,
}

/// A record a `poison_event` fault publishes to the events topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PoisonKind {
    /// A message that is not JSON (a MinIO event cut off mid-record).
    MalformedJson,
    /// An `s3:ObjectCreated:Put` record for an object that does not exist.
    MissingObject,
    /// An `s3:ObjectRemoved:Delete` record.
    Removal,
    /// An `s3:ObjectCreated:Put` record for a bucket that is not the source bucket.
    OtherBucket,
}

impl PoisonKind {
    pub const ALL: [PoisonKind; 4] = [PoisonKind::MalformedJson, PoisonKind::MissingObject, PoisonKind::Removal, PoisonKind::OtherBucket];

    pub fn key(self) -> &'static str {
        match self {
            PoisonKind::MalformedJson => "malformed_json",
            PoisonKind::MissingObject => "missing_object",
            PoisonKind::Removal => "removal",
            PoisonKind::OtherBucket => "other_bucket",
        }
    }
}

/// One fault of the schedule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub kind: FaultKind,
    /// What it is applied to: `kafka`, `minio`, `processor`, or for network faults a
    /// link, `minio->kafka`, `processor->kafka`, `processor->minio` (default: the kind's own).
    #[serde(default)]
    pub target: Option<String>,
    /// Start, as time since the workload began (`4s`). Give `at` or `after_uploads`.
    #[serde(default)]
    pub at: Option<Span>,
    /// Start, once this many uploads were acknowledged.
    #[serde(default)]
    pub after_uploads: Option<Count>,
    /// How long the service stays down (or paused) before the harness heals it.
    /// Default 5s; not for `processor_crash` (its supervisor restarts it).
    #[serde(default)]
    pub down_for: Option<Span>,
    /// An explicit heal: heal once this many uploads were acknowledged (counted
    /// from the workload's start), instead of after a fixed time. `down_for` then
    /// bounds the outage (default: until the workload ends).
    #[serde(default)]
    pub heal_after_uploads: Option<Count>,
    /// `latency` only: the added one-way delay (default 200ms).
    #[serde(default)]
    pub delay: Option<Span>,
    /// `latency` only: uniform jitter around `delay`, at most `delay` (default 0).
    #[serde(default)]
    pub jitter: Option<Span>,
    /// `bandwidth` only: the link's limit each direction (default 256KiB/s).
    #[serde(default)]
    pub bandwidth: Option<ByteRate>,
    /// `duplicate_events`: how many events already on the topic to publish again
    /// (default 10). `replay`: how many events the processor's group consumes
    /// again, counted back from its committed offsets over the partitions
    /// (default: all of them, back to the earliest offset).
    #[serde(default)]
    pub count: Option<Count>,
    /// `poison_event` only: which records to publish (default: all four).
    #[serde(default)]
    pub poison: Option<Vec<PoisonKind>>,
}

/// "Every 10-20 s, one of these faults", reproducible from the seed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRandomFaults {
    /// Kinds to pick from (uniformly, from the seed).
    pub kinds: Vec<FaultKind>,
    /// Gap between the start of one fault and the next, drawn from the seed.
    pub every: RawSpanRange,
    /// Start of the first fault. Default: `every.min`.
    #[serde(default)]
    pub first_at: Option<Span>,
    /// How many faults at most. Default: as many as fit in the workload's planned
    /// duration (images / rate).
    #[serde(default)]
    pub count: Option<Count>,
    /// Outage of each fault. Default 5s.
    #[serde(default)]
    pub down_for: Option<Span>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpanRange {
    pub min: Span,
    pub max: Span,
}
