//! A class's roster (`harness class ROSTER`): one entry per student, each with what to
//! check (a kube context and/or namespace, a pair of endpoints, a folder of manifests)
//! and the pipeline's names where they differ from the class's defaults.
//!
//! Read with the scenario loader's bounds and errors (`file:line: key.path: message`);
//! `harness class --schema` prints the JSON Schema of [`RawRoster`]. Credentials are
//! never in a roster: only the names of the environment variables that hold them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::scenario::error::read_yaml;
use crate::scenario::units::Span;
use crate::scenario::{read_bounded, BucketName, Problem, ScenarioError, TopicName};

/// The columns of the class's matrix: the links a student's pipeline is judged on,
/// in the order the chain is walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// `harness lint` of the student's manifests.
    Manifests,
    /// The cluster: the context answers, the namespace's pods and volume claims, the
    /// endpoints found in it, Strimzi KafkaTopics.
    Cluster,
    S3,
    Buckets,
    BucketNotification,
    MinioKafkaTarget,
    KafkaBootstrap,
    AdvertisedListeners,
    Topic,
    ConsumerGroup,
    /// One image through the whole pipeline.
    Canary,
    /// The short run (`run:`): every upload got exactly one valid thumbnail.
    ExactlyOnce,
    /// The short run: end-to-end latency's p95 within the roster's bound.
    Latency,
}

impl Column {
    pub const ALL: [Column; 13] = [
        Column::Manifests,
        Column::Cluster,
        Column::S3,
        Column::Buckets,
        Column::BucketNotification,
        Column::MinioKafkaTarget,
        Column::KafkaBootstrap,
        Column::AdvertisedListeners,
        Column::Topic,
        Column::ConsumerGroup,
        Column::Canary,
        Column::ExactlyOnce,
        Column::Latency,
    ];
    /// The key in rosters, class.json and class.csv.
    pub fn key(self) -> &'static str {
        match self {
            Column::Manifests => "manifests",
            Column::Cluster => "cluster",
            Column::S3 => "s3",
            Column::Buckets => "buckets",
            Column::BucketNotification => "bucket_notification",
            Column::MinioKafkaTarget => "minio_kafka_target",
            Column::KafkaBootstrap => "kafka_bootstrap",
            Column::AdvertisedListeners => "advertised_listeners",
            Column::Topic => "topic",
            Column::ConsumerGroup => "consumer_group",
            Column::Canary => "canary",
            Column::ExactlyOnce => "exactly_once",
            Column::Latency => "latency",
        }
    }
    /// For people: the matrix's header and summary lines.
    pub fn label(self) -> &'static str {
        match self {
            Column::Manifests => "manifests",
            Column::Cluster => "cluster",
            Column::S3 => "S3",
            Column::Buckets => "buckets",
            Column::BucketNotification => "bucket notification",
            Column::MinioKafkaTarget => "MinIO's Kafka target",
            Column::KafkaBootstrap => "Kafka bootstrap",
            Column::AdvertisedListeners => "advertised listeners",
            Column::Topic => "topic",
            Column::ConsumerGroup => "consumer group",
            Column::Canary => "canary",
            Column::ExactlyOnce => "exactly once",
            Column::Latency => "latency (p95)",
        }
    }
}

/// A roster file as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "harness class roster")]
pub struct RawRoster {
    /// What every student entry takes unless it sets the field itself.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Points per link for class.csv (`canary: 3`); a link not named weighs 1, a weight
    /// of 0 leaves the link out of the points.
    #[serde(default)]
    pub weights: BTreeMap<Column, f64>,
    /// One entry per student.
    #[schemars(with = "Vec<RawStudent>")]
    pub students: Vec<Spanned<RawStudent>>,
}

/// Class-wide defaults.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// The kubeconfig context of students who name a namespace and no context (default:
    /// the current one).
    pub context: Option<String>,
    /// Variables holding MinIO's access and secret key for students given as endpoints
    /// (default MINIO_ROOT_USER / MINIO_ROOT_PASSWORD).
    pub access_key_env: Option<String>,
    pub secret_key_env: Option<String>,
    /// The pipeline's names (defaults: minio-events, images, thumbnails, any group).
    pub topic: Option<TopicName>,
    pub source_bucket: Option<BucketName>,
    pub target_bucket: Option<BucketName>,
    pub group: Option<String>,
    /// Most time one student's checks may take (default 120s); past it the student's
    /// verdict says so and the class goes on.
    pub budget: Option<Span>,
    /// Send one image through each pipeline whose links all work (default true).
    pub canary: Option<bool>,
    /// A short run for every live student whose doctor found no broken link.
    pub run: Option<RawRun>,
}

/// A short external run (`kind: external`, the student's own processor): a few images,
/// judged for exactly once and end-to-end latency; its objects are removed afterwards.
/// A student's fields take precedence over the defaults', field by field.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    /// Images uploaded, at 5 per second (default 5, at most 100).
    pub images: Option<u32>,
    /// The width the student's processor makes thumbnails (default 128).
    pub thumbnail_width: Option<u32>,
    /// The bound on end-to-end latency's p95 (default 10s).
    pub p95: Option<Span>,
}

/// One student.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStudent {
    /// Letters, digits, `.`, `_`, `-`: names the student's report folder.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// A kubeconfig context (a student's kind cluster); alone, its `default` namespace.
    pub context: Option<String>,
    /// The namespace the pipeline runs in: read for its endpoints and credentials, and
    /// walked from a pod there.
    pub namespace: Option<String>,
    /// MinIO's S3 API, `http://host:port` (e.g. a port-forward); with kafka_bootstrap.
    pub s3_endpoint: Option<String>,
    /// The Kafka address the processor uses, `host:port`.
    pub kafka_bootstrap: Option<String>,
    /// Names of the variables holding MinIO's credentials (never the values).
    pub access_key_env: Option<String>,
    pub secret_key_env: Option<String>,
    /// A folder (or file) of the student's manifests for `harness lint`, relative to
    /// the roster; or a git repository's URL (`https://…`, `ssh://…`, `git@host:path`,
    /// `file://…`), cloned (depth 1) into the student's report folder.
    pub manifests: Option<String>,
    pub topic: Option<TopicName>,
    pub source_bucket: Option<BucketName>,
    pub target_bucket: Option<BucketName>,
    /// The processor's consumer group.
    pub group: Option<String>,
    pub budget: Option<Span>,
    pub canary: Option<bool>,
    /// A short run after a clean doctor (see the defaults' `run`).
    pub run: Option<RawRun>,
}

/// A roster, checked.
#[derive(Clone, Debug, Serialize)]
pub struct Roster {
    pub students: Vec<Student>,
    /// Every column's points (1 unless the roster says otherwise).
    pub weights: BTreeMap<Column, f64>,
}

/// One student, defaults applied.
#[derive(Clone, Debug, Serialize)]
pub struct Student {
    pub name: String,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub s3_endpoint: Option<String>,
    pub kafka_bootstrap: Option<String>,
    pub access_key_env: String,
    pub secret_key_env: String,
    pub manifests: Option<Manifests>,
    pub topic: String,
    pub source_bucket: String,
    pub target_bucket: String,
    pub group: Option<String>,
    #[serde(serialize_with = "crate::scenario::secs::serialize")]
    pub budget: Duration,
    pub canary: bool,
    /// The short run, when the roster asks for one (a live student only).
    pub run: Option<ShortRun>,
}

/// Where a student's manifests are.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Manifests {
    /// Resolved against the roster's folder.
    Folder(PathBuf),
    /// A repository's URL, cloned for the check.
    Git(String),
}

impl Manifests {
    fn from_roster(m: String, base: &Path) -> Manifests {
        if is_git_url(&m) {
            Manifests::Git(m)
        } else {
            Manifests::Folder(base.join(m))
        }
    }
}

impl std::fmt::Display for Manifests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Manifests::Folder(p) => write!(f, "{}", p.display()),
            Manifests::Git(url) => write!(f, "{url} (git)"),
        }
    }
}

/// A git URL rather than a path: a scheme git speaks, or scp-like `user@host:path`.
pub fn is_git_url(m: &str) -> bool {
    ["https://", "http://", "ssh://", "git://", "file://"].iter().any(|p| m.starts_with(p))
        || m.split_once(':').is_some_and(|(host, _)| host.contains('@') && !host.contains('/'))
}

/// A student's short run, defaults applied.
#[derive(Clone, Debug, Serialize)]
pub struct ShortRun {
    pub images: u32,
    pub thumbnail_width: u32,
    #[serde(serialize_with = "crate::scenario::secs::serialize")]
    pub p95: Duration,
}

pub const RUN_IMAGES: u32 = 5;
pub const RUN_MAX_IMAGES: u32 = 100;
pub const RUN_P95: Duration = Duration::from_secs(10);

impl Student {
    /// A live setup to diagnose (a namespace, or endpoints), not only manifests.
    pub fn is_live(&self) -> bool {
        self.namespace.is_some() || self.s3_endpoint.is_some()
    }
}

pub const DEFAULT_BUDGET: Duration = Duration::from_secs(120);

/// Reads and checks a roster file (at most 1 MiB, the scenario loader's bounds).
pub fn load(path: &Path) -> Result<Roster, ScenarioError> {
    parse(&read_bounded(path)?, path)
}

/// Checks a roster's text; `path` names it in errors and anchors `manifests:` paths.
pub fn parse(text: &str, path: &Path) -> Result<Roster, ScenarioError> {
    let file = path.display().to_string();
    let raw: RawRoster = read_yaml(
        text,
        &file,
        "the file is empty; a roster needs `students:`, a list of entries with at least a `name`",
        "a roster is a mapping of keys (`defaults`, `weights`, `students`)",
    )?;
    let base = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    resolve(raw, &file, &base)
}

fn resolve(raw: RawRoster, file: &str, base: &Path) -> Result<Roster, ScenarioError> {
    let problem =
        |line: Option<u64>, path: String, message: String| ScenarioError::Invalid(Problem { file: file.to_string(), line, path, message });
    if raw.students.is_empty() {
        return Err(problem(None, "students".into(), "the roster lists no student".into()));
    }
    for (column, w) in &raw.weights {
        if !(w.is_finite() && *w >= 0.0 && *w <= 1000.0) {
            return Err(problem(None, format!("weights.{}", column.key()), format!("a weight is a number from 0 to 1000, got {w}")));
        }
    }
    let d = &raw.defaults;
    for (key, var) in [("access_key_env", &d.access_key_env), ("secret_key_env", &d.secret_key_env)] {
        if let Some(v) = var.as_deref().filter(|v| !is_env_name(v)) {
            return Err(problem(None, format!("defaults.{key}"), format!("{v:?} is not an environment variable's name (A-Z, 0-9, _)")));
        }
    }
    let mut students: Vec<Student> = Vec::with_capacity(raw.students.len());
    for (i, entry) in raw.students.into_iter().enumerate() {
        let line = Some(entry.referenced.line());
        let s = entry.value;
        let at = |key: &str| format!("students[{i}].{key}");
        let name = s.name.value.clone();
        let name_line = Some(s.name.referenced.line());
        let name_ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if !name_ok {
            return Err(problem(
                name_line,
                at("name"),
                format!("{name:?} is not a student's name here (1-64 letters, digits, '.', '_' and '-', starting with a letter or digit: it names the report's folder)"),
            ));
        }
        if let Some(first) = students.iter().position(|o| o.name == name) {
            return Err(problem(name_line, at("name"), format!("{name:?} is listed twice (also students[{first}])")));
        }
        for (key, var) in [("access_key_env", &s.access_key_env), ("secret_key_env", &s.secret_key_env)] {
            if let Some(v) = var.as_deref().filter(|v| !is_env_name(v)) {
                return Err(problem(
                    line,
                    at(key),
                    format!("{v:?} is not an environment variable's name (A-Z, 0-9, _): give the variable's name, never its value"),
                ));
            }
        }
        if let Some(s3) = s.s3_endpoint.as_deref().filter(|e| !e.starts_with("http://") && !e.starts_with("https://")) {
            return Err(problem(line, at("s3_endpoint"), format!("{s3:?}: give the endpoint as a URL, e.g. http://{s3}")));
        }
        match (&s.s3_endpoint, &s.kafka_bootstrap, &s.namespace, &s.context) {
            (Some(_), None, None, None) => {
                return Err(problem(
                    line,
                    at("kafka_bootstrap"),
                    "s3_endpoint is given without kafka_bootstrap (or a namespace to read it from)".into(),
                ))
            }
            (None, Some(_), None, None) => {
                return Err(problem(
                    line,
                    at("s3_endpoint"),
                    "kafka_bootstrap is given without s3_endpoint (or a namespace to read it from)".into(),
                ))
            }
            _ => {}
        }
        if s.context.is_none() && s.namespace.is_none() && s.s3_endpoint.is_none() && s.manifests.is_none() {
            return Err(problem(
                line,
                format!("students[{i}]"),
                format!("nothing to check for {name:?}: give a context and/or namespace, s3_endpoint and kafka_bootstrap, or manifests"),
            ));
        }
        for (key, v) in [
            ("context", &s.context),
            ("namespace", &s.namespace),
            ("group", &s.group),
            ("kafka_bootstrap", &s.kafka_bootstrap),
            ("manifests", &s.manifests),
        ] {
            if let Some(v) = v.as_deref().filter(|v| v.is_empty() || v.len() > 1024 || v.chars().any(char::is_control)) {
                return Err(problem(line, at(key), format!("{v:?}: empty, longer than 1024 bytes or with control characters")));
            }
        }
        let run = match (&s.run, &d.run) {
            (None, None) => None,
            (mine, class) => {
                let pick = |f: fn(&RawRun) -> Option<u32>| mine.as_ref().and_then(f).or_else(|| class.as_ref().and_then(f));
                let images = pick(|r| r.images).unwrap_or(RUN_IMAGES);
                let thumbnail_width = pick(|r| r.thumbnail_width).unwrap_or(128);
                let p95 = mine.as_ref().and_then(|r| r.p95).or_else(|| class.as_ref().and_then(|r| r.p95)).map(|p| p.0).unwrap_or(RUN_P95);
                let key = if s.run.is_some() { at("run") } else { "defaults.run".into() };
                let line = if s.run.is_some() { line } else { None };
                if !(1..=RUN_MAX_IMAGES).contains(&images) {
                    return Err(problem(
                        line,
                        format!("{key}.images"),
                        format!("a short run uploads 1 to {RUN_MAX_IMAGES} images, got {images}"),
                    ));
                }
                if !(1..=16_384).contains(&thumbnail_width) {
                    return Err(problem(
                        line,
                        format!("{key}.thumbnail_width"),
                        format!("a width from 1 to 16384 pixels, got {thumbnail_width}"),
                    ));
                }
                if !(Duration::from_millis(10)..=Duration::from_secs(600)).contains(&p95) {
                    return Err(problem(line, format!("{key}.p95"), format!("a bound from 10ms to 10m, got {p95:?}")));
                }
                Some(ShortRun { images, thumbnail_width, p95 })
            }
        };
        let uses_cluster = s.context.is_some() || s.namespace.is_some();
        let live = uses_cluster || s.s3_endpoint.is_some();
        // A context alone: its default namespace.
        let namespace = s.namespace.or_else(|| s.context.as_ref().map(|_| "default".to_string()));
        students.push(Student {
            name,
            context: s.context.or_else(|| if uses_cluster { d.context.clone() } else { None }),
            namespace,
            s3_endpoint: s.s3_endpoint,
            kafka_bootstrap: s.kafka_bootstrap,
            access_key_env: s.access_key_env.or_else(|| d.access_key_env.clone()).unwrap_or_else(|| "MINIO_ROOT_USER".into()),
            secret_key_env: s.secret_key_env.or_else(|| d.secret_key_env.clone()).unwrap_or_else(|| "MINIO_ROOT_PASSWORD".into()),
            manifests: s.manifests.map(|m| Manifests::from_roster(m, base)),
            topic: s.topic.or_else(|| d.topic.clone()).map(|t| t.0).unwrap_or_else(|| "minio-events".into()),
            source_bucket: s.source_bucket.or_else(|| d.source_bucket.clone()).map(|b| b.0).unwrap_or_else(|| "images".into()),
            target_bucket: s.target_bucket.or_else(|| d.target_bucket.clone()).map(|b| b.0).unwrap_or_else(|| "thumbnails".into()),
            group: s.group.or_else(|| d.group.clone()),
            budget: s.budget.or(d.budget).map(|b| b.0).unwrap_or(DEFAULT_BUDGET),
            canary: s.canary.or(d.canary).unwrap_or(true),
            // Only a live pipeline can be run against; manifests alone are linted.
            run: run.filter(|_| live),
        });
        let budget = students.last().map(|s| s.budget).unwrap_or_default();
        if !(Duration::from_secs(5)..=Duration::from_secs(3600)).contains(&budget) {
            return Err(problem(line, at("budget"), format!("a student's budget is from 5s to 1h, got {budget:?}")));
        }
    }
    let weights = Column::ALL.iter().map(|c| (*c, raw.weights.get(c).copied().unwrap_or(1.0))).collect();
    Ok(Roster { students, weights })
}

fn is_env_name(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !v.as_bytes()[0].is_ascii_digit()
}

/// The JSON Schema of roster files (`harness class --schema`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawRoster)).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, Path::new("class/roster.yaml")).unwrap_err().to_string()
    }

    #[test]
    fn defaults_apply_and_paths_are_relative_to_the_roster() {
        let r = parse(
            "defaults: { context: kind-class, topic: image-events, budget: 30s }
weights: { canary: 3, manifests: 0 }
students:
  - { name: alice, namespace: alice, manifests: alice/k8s }
  - { name: bob, s3_endpoint: 'http://127.0.0.1:9000', kafka_bootstrap: '127.0.0.1:9094', access_key_env: BOB_USER, secret_key_env: BOB_SECRET }
  - { name: carol, context: kind-carol, topic: other }
",
            Path::new("class/roster.yaml"),
        )
        .unwrap();
        let [alice, bob, carol] = &r.students[..] else { panic!() };
        assert_eq!((alice.context.as_deref(), alice.namespace.as_deref()), (Some("kind-class"), Some("alice")));
        assert!(matches!(&alice.manifests, Some(Manifests::Folder(p)) if p == Path::new("class/alice/k8s")));
        assert_eq!((alice.topic.as_str(), alice.budget, alice.canary), ("image-events", Duration::from_secs(30), true));
        assert_eq!((bob.context.as_deref(), bob.namespace.as_deref()), (None, None), "endpoints alone: no cluster");
        assert_eq!(bob.access_key_env, "BOB_USER");
        assert_eq!(alice.access_key_env, "MINIO_ROOT_USER");
        assert_eq!((carol.namespace.as_deref(), carol.topic.as_str()), (Some("default"), "other"));
        assert_eq!(r.weights[&Column::Canary], 3.0);
        assert_eq!(r.weights[&Column::Manifests], 0.0);
        assert_eq!(r.weights[&Column::S3], 1.0);
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        assert_eq!(
            err("students:\n  - name: alice\n    namespace: a\n    nmespace: b\n"),
            "class/roster.yaml:4: students[0].nmespace: unknown field `nmespace`, expected one of name, context, namespace, s3_endpoint, kafka_bootstrap, access_key_env, secret_key_env, manifests, topic, source_bucket, target_bucket, group, budget, canary, run"
        );
        assert_eq!(
            err("students:\n  - { name: alice, namespace: a }\n  - { name: alice, namespace: b }\n"),
            "class/roster.yaml:3: students[1].name: \"alice\" is listed twice (also students[0])"
        );
        assert!(err("students:\n  - { name: alice }\n").starts_with("class/roster.yaml:2: students[0]: nothing to check for \"alice\""));
        assert!(err("students:\n  - { name: a, namespace: a, budget: soon }\n")
            .starts_with("class/roster.yaml:2: students[0].budget: expected a duration"));
        assert!(err("students:\n  - { name: a, s3_endpoint: 'http://x:9000' }\n")
            .contains("students[0].kafka_bootstrap: s3_endpoint is given without"));
        assert!(err("students:\n  - { name: a, namespace: a, access_key_env: 'hunter2!' }\n").contains("never its value"));
        assert!(err("weights: { canry: 2 }\nstudents:\n  - { name: a, namespace: a }\n").starts_with("class/roster.yaml:1: weights"));
        assert!(err("students: []\n").contains("students: the roster lists no student"));
        assert!(err("").contains("the file is empty"));
        assert!(err("students:\n  - { name: '../x', namespace: a }\n").contains("students[0].name"));
    }

    #[test]
    fn manifests_are_a_folder_or_a_git_url() {
        for url in ["https://git.example/alice/k8s.git", "ssh://git@host/x", "git@github.com:alice/k8s.git", "file:///srv/alice.git"] {
            assert!(is_git_url(url), "{url}");
        }
        for path in ["alice/k8s", "./a:b", "/abs/path", "C@t/x:y"] {
            assert!(!is_git_url(path), "{path}");
        }
    }

    #[test]
    fn a_short_run_takes_the_defaults_field_by_field_and_is_bounded() {
        let r = parse(
            "defaults: { run: { images: 8, p95: 5s } }
students:
  - { name: alice, namespace: alice, run: { thumbnail_width: 200 } }
  - { name: bob, manifests: bob }
",
            Path::new("r.yaml"),
        )
        .unwrap();
        let run = r.students[0].run.as_ref().unwrap();
        assert_eq!((run.images, run.thumbnail_width, run.p95), (8, 200, Duration::from_secs(5)));
        assert!(r.students[1].run.is_none(), "manifests alone: nothing to run against");
        let none = parse("students:\n  - { name: a, namespace: a }\n", Path::new("r.yaml")).unwrap();
        assert!(none.students[0].run.is_none(), "no run unless asked");
        assert_eq!(
            err("students:\n  - { name: a, namespace: a, run: { images: 1000 } }\n"),
            "class/roster.yaml:2: students[0].run.images: a short run uploads 1 to 100 images, got 1000"
        );
        assert!(err("defaults: { run: { imgs: 3 } }\nstudents:\n  - { name: a, namespace: a }\n").contains("unknown field `imgs`"));
    }

    #[test]
    fn the_schema_names_every_field() {
        let schema = json_schema().to_string();
        for key in ["students", "defaults", "weights", "s3_endpoint", "kafka_bootstrap", "access_key_env", "manifests", "budget"] {
            assert!(schema.contains(key), "{key}");
        }
    }
}
