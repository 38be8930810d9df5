//! `harness lint`: static checks of Kubernetes manifests for the MinIO → Kafka →
//! processor pipeline, without a cluster.
//!
//! Shape: the YAML of every file is read into a tree that keeps lines
//! ([`yaml`]); the objects are read the way the cluster would read them ([`objects`]:
//! pod templates, containers with their environment resolved through the set's
//! ConfigMaps and Secrets, Services); then the Kafkas ([`kafka`]) and the MinIO
//! servers with their Kafka targets ([`minio`]) are found, and each rule ([`rules`])
//! reports [`Finding`]s. Rules see the whole set, so a KafkaTopic may sit in another
//! file than its Kafka.
//!
//! ```
//! use harness_model::lint;
//! let findings = lint::lint_documents("topic.yaml", "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata: {name: minio-events}\n");
//! assert_eq!(findings[0].rule, "kafka-topic-cluster-label");
//! assert_eq!(findings[0].line, 3);
//! ```

pub mod bounds;
mod finding;
mod kafka;
mod minio;
mod objects;
mod rules;
mod yaml;

pub use finding::{Finding, Severity, Site};

/// Every rule: id, severity, what it catches. Ids are stable (scripts filter on them).
pub const RULES: &[(&str, Severity, &str)] = &[
    ("yaml-syntax", Severity::Error, "the file is not YAML: nothing after the error is read"),
    (
        "input-too-large",
        Severity::Error,
        "a file, folder or YAML stream past one of the linter's bounds (size, files, alias expansion, nodes, depth, documents): the rest is not read",
    ),
    ("kafka-topic-operator", Severity::Error, "a KafkaTopic/KafkaUser for another operator than the one managing the Kafka here"),
    ("kafka-topic-cluster-label", Severity::Error, "a Strimzi KafkaTopic/KafkaUser without the strimzi.io/cluster label"),
    (
        "kafka-topic-cluster-unknown",
        Severity::Error,
        "the strimzi.io/cluster label names a Kafka not defined here (or in another namespace)",
    ),
    (
        "kafka-topic-operator-disabled",
        Severity::Error,
        "KafkaTopics/KafkaUsers for a Strimzi Kafka without spec.entityOperator.topicOperator/userOperator",
    ),
    ("topic-undefined", Severity::Error, "MinIO or the processor uses a topic that no KafkaTopic defines"),
    ("topic-mismatch", Severity::Error, "the processor reads another topic than MinIO writes to"),
    ("bootstrap-port", Severity::Error, "a bootstrap address whose port is not a Kafka client listener (or does not reach Kafka at all)"),
    ("bootstrap-host", Severity::Warning, "a bootstrap address naming a Service or Kafka these manifests do not define"),
    ("sasl-mismatch", Severity::Error, "SASL on the listener but not on the client, or the reverse"),
    ("sasl-mechanism", Severity::Error, "the client's SASL mechanism is not enabled on the listener"),
    ("tls-mismatch", Severity::Error, "TLS (or client certificates) on the listener but not on the client, or the reverse"),
    ("minio-target-incomplete", Severity::Error, "a MinIO Kafka target that is not enabled, or enabled without brokers or topic"),
    ("minio-queue-dir-missing", Severity::Warning, "a MinIO Kafka target without queue_dir: events are dropped while Kafka is down"),
    ("minio-queue-dir-emptydir", Severity::Error, "the queue_dir is on an emptyDir: queued events vanish with the pod"),
    (
        "minio-queue-dir-unmounted",
        Severity::Error,
        "the queue_dir is on no (writable) volume: lost with the container, or cannot be created",
    ),
    ("resources-missing", Severity::Warning, "a Kafka, MinIO or processor container without resource requests or limits"),
    (
        "processor-env-missing",
        Severity::Warning,
        "a processor without the variables of the harness's processor contract (README): needed when the harness runs it, not by a processor configured its own way",
    ),
];

/// A set of manifest files linted together.
#[derive(Default)]
pub struct Manifests {
    files: Vec<(String, Vec<yaml::Node>)>,
    syntax: Vec<Finding>,
}

impl Manifests {
    pub fn new() -> Manifests {
        Manifests::default()
    }

    /// Adds one file's text (any number of `---` documents). A syntax error becomes
    /// a `yaml-syntax` finding, a bound hit ([`bounds`]) an `input-too-large` one; the
    /// documents before it are still linted.
    pub fn add(&mut self, file: &str, text: &str) {
        let size = text.len() as u64;
        if size > bounds::FILE_BYTES {
            self.too_large(file, format!("{file} is {size} bytes, more than the {} a file may have", bounds::human(bounds::FILE_BYTES)));
            return;
        }
        let (docs, err) = yaml::parse_stream(text);
        if let Some(e) = err {
            let site = Site { file: file.to_string(), line: e.line, path: String::new() };
            self.syntax.push(if e.bound {
                Finding::new(
                    "input-too-large",
                    Severity::Error,
                    site,
                    format!(
                        "{file} is not read past line {}: {}; this document and the rest of the file are not checked",
                        e.line, e.message
                    ),
                    "expand the aliases or split the file: a manifest the cluster would accept stays far below this bound".into(),
                )
            } else {
                Finding::new(
                    "yaml-syntax",
                    Severity::Error,
                    site,
                    format!("not valid YAML: {}; this document and the rest of the file are not checked", e.message),
                    if e.message.contains("quoted scalar") {
                        "a quote opened on this line or above is not closed on its own line".into()
                    } else {
                        "fix the YAML at this line (indentation, an unclosed quote or bracket, a tab)".into()
                    },
                )
            });
        }
        self.files.push((file.to_string(), docs));
    }

    /// A file or folder not read (or not read to its end) because of a bound: an
    /// `input-too-large` finding at its line 1, `message` saying which bound.
    pub fn too_large(&mut self, file: &str, message: String) {
        self.syntax.push(Finding::new(
            "input-too-large",
            Severity::Error,
            Site { file: file.to_string(), line: 1, path: String::new() },
            format!("{message}; it is not checked"),
            "lint a smaller set (fewer files, or the files that hold the pipeline's objects)".into(),
        ));
        self.files.push((file.to_string(), Vec::new()));
    }

    /// Every finding, by file (in the order added), line and rule.
    pub fn lint(&self) -> Vec<Finding> {
        let world = objects::World::build(&self.files);
        let mut out = rules::run(&world);
        out.extend(self.syntax.iter().cloned());
        // A map, not a search per comparison: 10,000 files with findings would be quadratic.
        let mut position: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, (name, _)) in self.files.iter().enumerate() {
            position.entry(name.as_str()).or_insert(i);
        }
        let order = |f: &Finding| position.get(f.file.as_str()).copied().unwrap_or(usize::MAX);
        out.sort_by(|a, b| (order(a), a.line, a.rule, &a.path).cmp(&(order(b), b.line, b.rule, &b.path)));
        out.dedup();
        out
    }
}

/// Lints one file on its own.
pub fn lint_documents(file: &str, text: &str) -> Vec<Finding> {
    let mut m = Manifests::new();
    m.add(file, text);
    m.lint()
}

/// Lints `(file, text)` pairs as one set (cross-file rules see all of them).
pub fn lint_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Finding> {
    let mut m = Manifests::new();
    for (file, text) in files {
        m.add(file, text);
    }
    m.lint()
}
