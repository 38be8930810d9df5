//! The processor contract: environment variables parsed into a validated `Config`.

use std::fmt;

/// Largest accepted `THUMBNAIL_WIDTH`; anything wider is a typo, not a thumbnail.
pub const MAX_THUMBNAIL_WIDTH: u32 = 16_384;
/// Largest accepted `PROCESSOR_CONCURRENCY`.
pub const MAX_CONCURRENCY: usize = 256;
/// `PROCESSOR_CONCURRENCY` when the variable is not set.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Largest accepted `PROCESSOR_SLOWDOWN_PERCENT`.
pub const MAX_SLOWDOWN_PERCENT: u32 = 1000;

/// The processor's settings, one field per contract variable.
#[derive(Clone, Debug)]
pub struct Config {
    /// `KAFKA_BOOTSTRAP_SERVERS`: `host:port[,host:port]`.
    pub kafka_bootstrap_servers: String,
    /// `KAFKA_TOPIC`: the topic with MinIO's events.
    pub kafka_topic: String,
    /// `KAFKA_GROUP_ID`: the consumer group.
    pub kafka_group_id: String,
    /// `S3_ENDPOINT`: `http://host:port`.
    pub s3_endpoint: String,
    /// `AWS_ACCESS_KEY_ID`.
    pub aws_access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`; its `Debug` never shows the value.
    pub aws_secret_access_key: Secret,
    /// `AWS_REGION`.
    pub aws_region: String,
    /// `SOURCE_BUCKET`: where the images are.
    pub source_bucket: String,
    /// `TARGET_BUCKET`: where the thumbnails go, under the same key.
    pub target_bucket: String,
    /// `THUMBNAIL_WIDTH`: every thumbnail is exactly this wide.
    pub thumbnail_width: u32,
    /// `PROCESSOR_CONCURRENCY`: messages processed at once (default 4).
    pub concurrency: usize,
    /// `PROCESSOR_SLOWDOWN_PERCENT` (not in the contract; a test knob, default 0): after
    /// each image is written, burn CPU for this percentage of the time the image took
    /// (GET, decode, resize, encode, PUT), so each image takes that much longer. The
    /// regression gate's A/B measurement (`ci/gate-measure`) uses it; it never changes
    /// what is written.
    pub slowdown_percent: u32,
    /// `KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT` with `KAFKA_SASL_MECHANISM` (`PLAIN`,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512`), `KAFKA_SASL_USERNAME` and
    /// `KAFKA_SASL_PASSWORD` (not in the contract's required part: the harness sets
    /// them only where the address needs SASL, a kubernetes run's node port).
    /// `None`: PLAINTEXT.
    pub kafka_sasl: Option<Sasl>,
}

/// SASL over PLAINTEXT: the mechanism, the user and the password.
#[derive(Clone, Debug)]
pub struct Sasl {
    pub mechanism: String,
    pub user: String,
    pub password: Secret,
}

/// A secret string whose `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself; only for handing to the S3 client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Every problem found in the environment, not just the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<ConfigProblem>,
}

impl ConfigError {
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid processor environment: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// One bad or missing variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("{var} is not set (expected {expects})")]
    Missing { var: &'static str, expects: &'static str },
    /// `value` is `None` for secrets, so it never reaches a log.
    #[error("{var}{} is invalid (expected {expects})", shown(.value))]
    Invalid { var: &'static str, value: Option<String>, expects: &'static str },
}

impl ConfigProblem {
    /// The variable this problem is about.
    pub fn var(&self) -> &'static str {
        match self {
            ConfigProblem::Missing { var, .. } | ConfigProblem::Invalid { var, .. } => var,
        }
    }
}

fn shown(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("={v:?}"),
        None => String::new(),
    }
}

impl Config {
    /// Reads the contract from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Reads the contract through `lookup` (a variable name to its value), so tests
    /// need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut r = Reader { lookup: &lookup, problems: Vec::new() };
        let kafka_bootstrap_servers = r.required("KAFKA_BOOTSTRAP_SERVERS", "host:port[,host:port]", |v| {
            v.split(',')
                .all(|s| {
                    let s = s.trim();
                    s.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                })
                .then(|| v.to_string())
        });
        let kafka_topic = r.text("KAFKA_TOPIC", "the Kafka topic with MinIO's events");
        let kafka_group_id = r.text("KAFKA_GROUP_ID", "a Kafka consumer group id");
        let s3_endpoint = r.required("S3_ENDPOINT", "an http:// or https:// URL", |v| {
            let rest = v.strip_prefix("http://").or_else(|| v.strip_prefix("https://"))?;
            (!rest.is_empty()).then(|| v.trim_end_matches('/').to_string())
        });
        let aws_access_key_id = r.text("AWS_ACCESS_KEY_ID", "an S3 access key");
        let aws_secret_access_key = match (r.lookup)("AWS_SECRET_ACCESS_KEY") {
            Some(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                r.problems.push(ConfigProblem::Missing { var: "AWS_SECRET_ACCESS_KEY", expects: "an S3 secret key" });
                None
            }
        };
        let aws_region = r.text("AWS_REGION", "a region name, e.g. us-east-1");
        let source_bucket = r.text("SOURCE_BUCKET", "the bucket with the images");
        let target_bucket = r.text("TARGET_BUCKET", "the bucket for the thumbnails");
        let thumbnail_width = r.required("THUMBNAIL_WIDTH", "a whole number of pixels from 1 to 16384", |v| {
            v.parse::<u32>().ok().filter(|w| (1..=MAX_THUMBNAIL_WIDTH).contains(w))
        });
        let concurrency = match (r.lookup)("PROCESSOR_CONCURRENCY") {
            None => Some(DEFAULT_CONCURRENCY),
            Some(v) if v.trim().is_empty() => Some(DEFAULT_CONCURRENCY),
            Some(v) => r.parse("PROCESSOR_CONCURRENCY", "a whole number from 1 to 256", &v, |v| {
                v.parse::<usize>().ok().filter(|n| (1..=MAX_CONCURRENCY).contains(n))
            }),
        };
        let slowdown_percent = match (r.lookup)("PROCESSOR_SLOWDOWN_PERCENT") {
            None => Some(0),
            Some(v) if v.trim().is_empty() => Some(0),
            Some(v) => r.parse("PROCESSOR_SLOWDOWN_PERCENT", "a whole number from 0 to 1000", &v, |v| {
                v.parse::<u32>().ok().filter(|p| *p <= MAX_SLOWDOWN_PERCENT)
            }),
        };
        let kafka_sasl = r.sasl();
        if let (Some(s), Some(t)) = (&source_bucket, &target_bucket) {
            if s == t {
                r.problems.push(ConfigProblem::Invalid {
                    var: "TARGET_BUCKET",
                    value: Some(t.clone()),
                    expects: "a bucket other than SOURCE_BUCKET (thumbnails keep the same key)",
                });
            }
        }
        match (
            kafka_bootstrap_servers,
            kafka_topic,
            kafka_group_id,
            s3_endpoint,
            aws_access_key_id,
            aws_secret_access_key,
            aws_region,
            source_bucket,
            target_bucket,
            thumbnail_width,
            concurrency,
            slowdown_percent,
        ) {
            (
                Some(kafka_bootstrap_servers),
                Some(kafka_topic),
                Some(kafka_group_id),
                Some(s3_endpoint),
                Some(aws_access_key_id),
                Some(aws_secret_access_key),
                Some(aws_region),
                Some(source_bucket),
                Some(target_bucket),
                Some(thumbnail_width),
                Some(concurrency),
                Some(slowdown_percent),
            ) if r.problems.is_empty() => Ok(Config {
                kafka_bootstrap_servers,
                kafka_topic,
                kafka_group_id,
                s3_endpoint,
                aws_access_key_id,
                aws_secret_access_key,
                aws_region,
                source_bucket,
                target_bucket,
                thumbnail_width,
                concurrency,
                slowdown_percent,
                kafka_sasl,
            }),
            _ => Err(ConfigError { problems: r.problems }),
        }
    }
}

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
}

impl Reader<'_> {
    /// A required variable, trimmed, checked by `check`.
    fn required<T>(&mut self, var: &'static str, expects: &'static str, check: impl Fn(&str) -> Option<T>) -> Option<T> {
        match (self.lookup)(var) {
            Some(v) if !v.trim().is_empty() => self.parse(var, expects, &v, check),
            _ => {
                self.problems.push(ConfigProblem::Missing { var, expects });
                None
            }
        }
    }

    fn parse<T>(&mut self, var: &'static str, expects: &'static str, value: &str, check: impl Fn(&str) -> Option<T>) -> Option<T> {
        let parsed = check(value.trim());
        if parsed.is_none() {
            self.problems.push(ConfigProblem::Invalid { var, value: Some(value.to_string()), expects });
        }
        parsed
    }

    /// A required, non-empty string taken as it is (trimmed).
    fn text(&mut self, var: &'static str, expects: &'static str) -> Option<String> {
        self.required(var, expects, |v| Some(v.to_string()))
    }

    /// `KAFKA_SECURITY_PROTOCOL`: unset or `PLAINTEXT`, none; `SASL_PLAINTEXT`, the
    /// mechanism must be PLAIN and the user and password are required.
    fn sasl(&mut self) -> Option<Sasl> {
        let protocol = (self.lookup)("KAFKA_SECURITY_PROTOCOL").map(|p| p.trim().to_ascii_uppercase()).unwrap_or_default();
        match protocol.as_str() {
            "" | "PLAINTEXT" => return None,
            "SASL_PLAINTEXT" => {}
            _ => {
                self.problems.push(ConfigProblem::Invalid {
                    var: "KAFKA_SECURITY_PROTOCOL",
                    value: Some(protocol),
                    expects: "PLAINTEXT or SASL_PLAINTEXT",
                });
                return None;
            }
        }
        let mechanism = (self.lookup)("KAFKA_SASL_MECHANISM").map(|m| m.trim().to_ascii_uppercase()).unwrap_or_default();
        let known = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&mechanism.as_str());
        if !known {
            self.problems.push(ConfigProblem::Invalid {
                var: "KAFKA_SASL_MECHANISM",
                value: Some(mechanism.clone()),
                expects: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            });
        }
        let user = self.text("KAFKA_SASL_USERNAME", "the SASL user of SASL_PLAINTEXT");
        let password = match (self.lookup)("KAFKA_SASL_PASSWORD") {
            Some(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                self.problems.push(ConfigProblem::Missing { var: "KAFKA_SASL_PASSWORD", expects: "the SASL password of SASL_PLAINTEXT" });
                None
            }
        };
        Some(Sasl { mechanism, user: user?, password: password? }).filter(|_| known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn full() -> BTreeMap<&'static str, String> {
        [
            ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            ("KAFKA_TOPIC", "minio-events"),
            ("KAFKA_GROUP_ID", "thumbnailer"),
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "minioadmin"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
            ("AWS_REGION", "us-east-1"),
            ("SOURCE_BUCKET", "images"),
            ("TARGET_BUCKET", "thumbnails"),
            ("THUMBNAIL_WIDTH", "128"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    }

    fn parse(env: &BTreeMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn full_environment_parses_with_default_concurrency() {
        let cfg = parse(&full()).expect("valid");
        assert_eq!(cfg.thumbnail_width, 128);
        assert_eq!(cfg.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(cfg.s3_endpoint, "http://127.0.0.1:9000");
        assert_eq!(cfg.aws_secret_access_key.expose(), "very-secret-value");
    }

    #[test]
    fn sasl_plain_is_read_when_the_address_needs_it() {
        assert!(parse(&full()).expect("valid").kafka_sasl.is_none());
        let mut env = full();
        env.insert("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT".into());
        env.insert("KAFKA_SASL_MECHANISM", "PLAIN".into());
        env.insert("KAFKA_SASL_USERNAME", "harness".into());
        env.insert("KAFKA_SASL_PASSWORD", "sasl-secret-value".into());
        let sasl = parse(&env).expect("valid").kafka_sasl.expect("SASL");
        assert_eq!((sasl.mechanism.as_str(), sasl.user.as_str(), sasl.password.expose()), ("PLAIN", "harness", "sasl-secret-value"));
        env.insert("KAFKA_SASL_MECHANISM", "scram-sha-512".into());
        assert_eq!(parse(&env).expect("valid").kafka_sasl.expect("SASL").mechanism, "SCRAM-SHA-512");
        env.remove("KAFKA_SASL_PASSWORD");
        let err = parse(&env).expect_err("no password");
        assert!(err.problems.iter().any(|p| p.var() == "KAFKA_SASL_PASSWORD"), "{err:?}");
        env.insert("KAFKA_SASL_PASSWORD", "sasl-secret-value".into());
        env.insert("KAFKA_SECURITY_PROTOCOL", "SSL".into());
        assert!(parse(&env).is_err(), "TLS is not what the processor speaks");
    }

    #[test]
    fn concurrency_is_read_when_set() {
        let mut env = full();
        env.insert("PROCESSOR_CONCURRENCY", "16".into());
        assert_eq!(parse(&env).expect("valid").concurrency, 16);
    }

    #[test]
    fn slowdown_defaults_to_zero_and_is_bounded() {
        assert_eq!(parse(&full()).expect("valid").slowdown_percent, 0);
        let mut env = full();
        env.insert("PROCESSOR_SLOWDOWN_PERCENT", "10".into());
        assert_eq!(parse(&env).expect("valid").slowdown_percent, 10);
        env.insert("PROCESSOR_SLOWDOWN_PERCENT", "1001".into());
        let err = parse(&env).expect_err("too slow");
        assert_eq!(err.problems()[0].var(), "PROCESSOR_SLOWDOWN_PERCENT");
    }

    #[test]
    fn missing_variable_is_named_with_what_it_expects() {
        let mut env = full();
        env.remove("KAFKA_TOPIC");
        let err = parse(&env).expect_err("missing topic");
        assert_eq!(err.problems().len(), 1);
        assert_eq!(err.problems()[0].var(), "KAFKA_TOPIC");
        let text = err.to_string();
        assert!(text.contains("KAFKA_TOPIC is not set"), "{text}");
        assert!(text.contains("topic"), "{text}");
    }

    #[test]
    fn every_problem_is_reported() {
        let mut env = full();
        env.remove("SOURCE_BUCKET");
        env.insert("THUMBNAIL_WIDTH", "wide".into());
        env.insert("PROCESSOR_CONCURRENCY", "0".into());
        env.insert("S3_ENDPOINT", "127.0.0.1:9000".into());
        let err = parse(&env).expect_err("bad");
        let vars: Vec<_> = err.problems().iter().map(ConfigProblem::var).collect();
        assert_eq!(vars, ["S3_ENDPOINT", "SOURCE_BUCKET", "THUMBNAIL_WIDTH", "PROCESSOR_CONCURRENCY"]);
        let text = err.to_string();
        assert!(text.contains("THUMBNAIL_WIDTH=\"wide\" is invalid"), "{text}");
    }

    #[test]
    fn zero_width_and_bad_bootstrap_are_invalid() {
        let mut env = full();
        env.insert("THUMBNAIL_WIDTH", "0".into());
        env.insert("KAFKA_BOOTSTRAP_SERVERS", "localhost".into());
        let err = parse(&env).expect_err("bad");
        let vars: Vec<_> = err.problems().iter().map(ConfigProblem::var).collect();
        assert_eq!(vars, ["KAFKA_BOOTSTRAP_SERVERS", "THUMBNAIL_WIDTH"]);
    }

    #[test]
    fn same_source_and_target_bucket_is_rejected() {
        let mut env = full();
        env.insert("TARGET_BUCKET", "images".into());
        let err = parse(&env).expect_err("same bucket");
        assert_eq!(err.problems()[0].var(), "TARGET_BUCKET");
    }

    #[test]
    fn secret_never_appears_in_debug_or_errors() {
        let cfg = parse(&full()).expect("valid");
        assert!(!format!("{cfg:?}").contains("very-secret-value"));
        let mut env = full();
        env.insert("AWS_SECRET_ACCESS_KEY", String::new());
        let err = parse(&env).expect_err("empty secret");
        assert_eq!(err.problems()[0].var(), "AWS_SECRET_ACCESS_KEY");
    }
}
