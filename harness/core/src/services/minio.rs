//! A single-node MinIO on 127.0.0.1 with two Kafka notification targets: its
//! environment, start, readiness (S3 put/get/delete) and bucket setup.
//!
//! Target `1` carries the pipeline's events (source bucket → events topic),
//! target `2` the observation of outputs (target bucket → outputs topic).
//!
//! MinIO and Kafka start in parallel, which is safe: MinIO only *constructs*
//! its Kafka targets at startup (no connection; `FetchEnabledTargets` in
//! `cmd/config-current.go`; the connect test `TestSubSysNotificationTargets`
//! runs only for `mc admin config set`), and each target connects lazily on its
//! first event (`KafkaTarget.init` via `once.Init`, which retries until it
//! succeeds; `internal/event/target/kafka.go`). A bucket notification naming the
//! target is accepted while Kafka is down (only the ARN's existence is checked).
//! An event sent while Kafka is unreachable is dropped with a logged
//! `sarama` error, or, with `queue_dir`, stored and replayed every 3 s; a send to
//! a topic that does not exist fails the same way. Verified against the pinned
//! build: with Kafka down a PUT succeeds and its event is lost (kept and
//! delivered later with `queue_dir`); the first PUT after Kafka is up is
//! delivered. So the harness creates the topics and the bucket notifications
//! only after both services are ready, and nothing produces an event before.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Event, NotificationConfiguration, QueueConfiguration, VersioningConfiguration};

use super::process::{ChildProcess, ChildSpec, ProcessGroup};
use super::ready::ready_or_exit;
use super::s3::{describe_sdk_error, s3_client};
use super::ServiceError;
use crate::services::endpoints::S3Credentials;

/// Service name: the log is `logs/minio.log`.
pub const SERVICE: &str = "minio";
/// Notification target of the pipeline's events.
pub const EVENTS_TARGET: &str = "1";
/// Notification target of the outputs' events.
pub const OUTPUTS_TARGET: &str = "2";
/// Bucket of the readiness probe; removed once MinIO is ready.
pub const READY_BUCKET: &str = "harness-ready";
/// Each target's `queue_limit` when a `queue_dir` is used (MinIO's default).
pub const QUEUE_LIMIT: u32 = 100_000;

/// The ARN a bucket notification uses for Kafka target `id`. MinIO prints the
/// same at startup ("SQS ARNs: arn:minio:sqs::1:kafka …"); the region part is
/// empty because no region is configured.
pub fn target_arn(id: &str) -> String {
    format!("arn:minio:sqs::{id}:kafka")
}

/// MinIO's S3 API port and its (disabled but still bound) console port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinioPorts {
    pub api: u16,
    pub console: u16,
}

impl MinioPorts {
    pub fn pick() -> std::io::Result<Self> {
        let ports = super::ports::free_ports(2)?;
        Ok(MinioPorts { api: ports[0], console: ports[1] })
    }

    /// `http://127.0.0.1:<api>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.api)
    }
}

/// Where and with what MinIO runs.
#[derive(Clone, Debug)]
pub struct MinioConfig {
    pub bin: PathBuf,
    /// Fresh per start: `data/` and `queue/` go below it.
    pub dir: PathBuf,
    pub kafka_bootstrap: String,
    pub events_topic: String,
    pub outputs_topic: String,
    pub queue_dir: bool,
    /// With `queue_dir`: most events the pipeline's target (`1`) keeps queued;
    /// `None` is MinIO's default. The outputs' target keeps the default: it is
    /// the harness's observation, not part of the pipeline under test.
    pub queue_limit: Option<u32>,
    pub sync_events: bool,
    /// The pipeline's target speaks SASL/PLAIN with this user and password
    /// (`None`: PLAINTEXT, as the harness's brokers expect).
    pub events_sasl: Option<(String, String)>,
    pub credentials: S3Credentials,
    pub ready_timeout: Duration,
}

impl MinioConfig {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn queue_dir_path(&self) -> PathBuf {
        self.dir.join("queue")
    }
}

/// MinIO's environment. Holds the root credentials: never log it.
pub fn minio_env(cfg: &MinioConfig) -> Vec<(String, String)> {
    let mut env = vec![
        ("MINIO_ROOT_USER".to_string(), cfg.credentials.access_key.clone()),
        ("MINIO_ROOT_PASSWORD".to_string(), cfg.credentials.secret_key.clone()),
        ("MINIO_BROWSER".to_string(), "off".to_string()),
        ("MINIO_UPDATE".to_string(), "off".to_string()),
    ];
    for (id, topic) in [(EVENTS_TARGET, &cfg.events_topic), (OUTPUTS_TARGET, &cfg.outputs_topic)] {
        let mut set = |key: &str, value: String| env.push((format!("MINIO_NOTIFY_KAFKA_{key}_{id}"), value));
        set("ENABLE", "on".into());
        set("BROKERS", cfg.kafka_bootstrap.clone());
        set("TOPIC", topic.clone());
        if cfg.queue_dir {
            // Each target keeps its own subdirectory (minio-kafka-<id>) inside.
            set("QUEUE_DIR", cfg.queue_dir_path().display().to_string());
            let limit = if id == EVENTS_TARGET { cfg.queue_limit.unwrap_or(QUEUE_LIMIT) } else { QUEUE_LIMIT };
            set("QUEUE_LIMIT", limit.to_string());
        }
        if let Some((user, password)) = cfg.events_sasl.as_ref().filter(|_| id == EVENTS_TARGET) {
            set("SASL", "on".into());
            set("SASL_MECHANISM", "plain".into());
            set("SASL_USERNAME", user.clone());
            set("SASL_PASSWORD", password.clone());
        }
    }
    if cfg.sync_events {
        env.push(("MINIO_API_SYNC_EVENTS".into(), "on".into()));
    }
    env
}

/// `server` arguments. The root credentials stay out of MinIO's log without
/// `--anonymous` (which would also hash bucket and object names in its errors):
/// MinIO prints them only when stdout is a terminal, and here it is a file.
pub fn minio_args(ports: MinioPorts, data_dir: &Path) -> Vec<String> {
    vec![
        "server".into(),
        "--address".into(),
        format!("127.0.0.1:{}", ports.api),
        "--console-address".into(),
        format!("127.0.0.1:{}", ports.console),
        data_dir.display().to_string(),
    ]
}

/// A running, ready MinIO.
#[derive(Debug)]
pub struct Minio {
    process: ChildProcess,
    ports: MinioPorts,
    client: aws_sdk_s3::Client,
    ready_in: Duration,
}

impl Minio {
    /// Starts MinIO on a fresh data dir and waits until an object can be put,
    /// read back and deleted. On failure nothing of this start is left running.
    pub async fn start(group: &ProcessGroup, cfg: &MinioConfig, ports: MinioPorts) -> Result<Minio, ServiceError> {
        let started = Instant::now();
        match std::fs::remove_dir_all(&cfg.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ServiceError::io(SERVICE, format!("removing {}", cfg.dir.display()), e))
            }
            _ => {}
        }
        let mut dirs = vec![cfg.data_dir()];
        if cfg.queue_dir {
            dirs.push(cfg.queue_dir_path());
        }
        for dir in &dirs {
            std::fs::create_dir_all(dir).map_err(|e| ServiceError::io(SERVICE, format!("creating {}", dir.display()), e))?;
        }
        let spec = ChildSpec {
            name: SERVICE.into(),
            program: cfg.bin.clone(),
            args: minio_args(ports, &cfg.data_dir()),
            env: minio_env(cfg),
            env_remove_prefixes: vec!["MINIO_".into(), "_MINIO".into()],
            cwd: Some(cfg.dir.clone()),
        };
        let mut process = group.spawn(&spec)?;
        let client = s3_client(&ports.endpoint(), &cfg.credentials);
        let key =
            format!("_harness/ready/{}", super::token::hex_token(8).map_err(|e| ServiceError::io(SERVICE, "reading /dev/urandom", e))?);
        let ready = ready_or_exit(&mut process, SERVICE, cfg.ready_timeout, Duration::from_millis(100), || probe(&client, &key)).await;
        if let Err(e) = ready {
            let _ = process.kill().await;
            return Err(e);
        }
        // The probe bucket is empty again; a leftover would only show in listings.
        let _ = client.delete_bucket().bucket(READY_BUCKET).send().await;
        Ok(Minio { process, ports, client, ready_in: started.elapsed() })
    }

    /// Starts MinIO again on the same ports and data (nothing is wiped) after its
    /// process exited (a fault stopped or killed it), and waits for the same
    /// put/get/delete as [`Minio::start`]. Returns how long it took.
    pub async fn restart(&mut self, group: &ProcessGroup, cfg: &MinioConfig) -> Result<Duration, ServiceError> {
        let started = Instant::now();
        let spec = ChildSpec {
            name: SERVICE.into(),
            program: cfg.bin.clone(),
            args: minio_args(self.ports, &cfg.data_dir()),
            env: minio_env(cfg),
            env_remove_prefixes: vec!["MINIO_".into(), "_MINIO".into()],
            cwd: Some(cfg.dir.clone()),
        };
        let mut process = group.spawn(&spec)?;
        let key =
            format!("_harness/ready/{}", super::token::hex_token(8).map_err(|e| ServiceError::io(SERVICE, "reading /dev/urandom", e))?);
        let client = self.client.clone();
        let ready = ready_or_exit(&mut process, SERVICE, cfg.ready_timeout, Duration::from_millis(100), || probe(&client, &key)).await;
        if let Err(e) = ready {
            let _ = process.kill().await;
            return Err(e);
        }
        let _ = self.client.delete_bucket().bucket(READY_BUCKET).send().await;
        self.process = process;
        Ok(started.elapsed())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        self.ports.endpoint()
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// From spawn to the passed put/get/delete.
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    pub fn process(&self) -> &ChildProcess {
        &self.process
    }

    pub fn process_mut(&mut self) -> &mut ChildProcess {
        &mut self.process
    }

    /// Creates `bucket` (an existing one of ours is fine), optionally versioned.
    pub async fn create_bucket(&self, bucket: &str, versioned: bool) -> Result<(), ServiceError> {
        setup_bucket(&self.client, bucket, versioned).await
    }

    /// Sends `s3:ObjectCreated:*` of `bucket` to Kafka target `target_id`.
    pub async fn notify_on_create(&self, bucket: &str, target_id: &str) -> Result<(), ServiceError> {
        notify_on_create(&self.client, bucket, target_id).await
    }

    /// SIGTERM, SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> std::io::Result<()> {
        self.process.stop(grace).await.map(|_| ())
    }
}

/// Creates `bucket` (an existing one of ours is fine), optionally versioned.
pub async fn setup_bucket(client: &aws_sdk_s3::Client, bucket: &str, versioned: bool) -> Result<(), ServiceError> {
    create_bucket(client, bucket).await.map_err(|e| ServiceError::setup(SERVICE, format!("creating bucket {bucket}"), e))?;
    if versioned {
        let versioning = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
        client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(versioning)
            .send()
            .await
            .map_err(|e| ServiceError::setup(SERVICE, format!("enabling versioning on {bucket}"), describe_sdk_error(&e)))?;
    }
    Ok(())
}

/// Sends `s3:ObjectCreated:*` of `bucket` to Kafka target `target_id`.
pub async fn notify_on_create(client: &aws_sdk_s3::Client, bucket: &str, target_id: &str) -> Result<(), ServiceError> {
    let stage = format!("notifying {} of {bucket}'s s3:ObjectCreated:*", target_arn(target_id));
    let queue = QueueConfiguration::builder()
        .queue_arn(target_arn(target_id))
        .events(Event::S3ObjectCreated)
        .build()
        .map_err(|e| ServiceError::setup(SERVICE, stage.clone(), e))?;
    let config = NotificationConfiguration::builder().queue_configurations(queue).build();
    client
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config)
        .send()
        .await
        .map_err(|e| ServiceError::setup(SERVICE, stage, describe_sdk_error(&e)))?;
    Ok(())
}

async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), String> {
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => Ok(()),
        Err(e) => Err(describe_sdk_error(&e)),
    }
}

/// One readiness probe through the S3 API: bucket, put, get (same bytes), delete.
pub(crate) async fn probe(client: &aws_sdk_s3::Client, key: &str) -> Result<(), String> {
    const STEP: Duration = Duration::from_secs(5);
    let body = key.as_bytes().to_vec();
    let steps = async {
        create_bucket(client, READY_BUCKET).await?;
        client
            .put_object()
            .bucket(READY_BUCKET)
            .key(key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .map_err(|e| format!("put: {}", describe_sdk_error(&e)))?;
        let got = client
            .get_object()
            .bucket(READY_BUCKET)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("get: {}", describe_sdk_error(&e)))?
            .body
            .collect()
            .await
            .map_err(|e| format!("get body: {e}"))?
            .into_bytes();
        if got.as_ref() != body.as_slice() {
            return Err(format!("get returned {} bytes, not the {} put", got.len(), body.len()));
        }
        client.delete_object().bucket(READY_BUCKET).key(key).send().await.map_err(|e| format!("delete: {}", describe_sdk_error(&e)))?;
        Ok(())
    };
    tokio::time::timeout(STEP * 3, steps).await.unwrap_or_else(|_| Err(format!("put/get/delete did not finish within {:?}", STEP * 3)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(queue_dir: bool, sync_events: bool) -> MinioConfig {
        MinioConfig {
            bin: "/bin/minio".into(),
            dir: "/run/minio".into(),
            kafka_bootstrap: "127.0.0.1:9092".into(),
            events_topic: "minio-events".into(),
            outputs_topic: "harness-outputs".into(),
            queue_dir,
            queue_limit: None,
            sync_events,
            events_sasl: None,
            credentials: S3Credentials { access_key: "harness-ak".into(), secret_key: "secret-sk".into(), region: "us-east-1".into() },
            ready_timeout: Duration::from_secs(60),
        }
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn env_configures_two_kafka_targets() {
        let env = minio_env(&config(false, false));
        assert_eq!(get(&env, "MINIO_ROOT_USER"), Some("harness-ak"));
        assert_eq!(get(&env, "MINIO_ROOT_PASSWORD"), Some("secret-sk"));
        assert_eq!(get(&env, "MINIO_BROWSER"), Some("off"));
        assert_eq!(get(&env, "MINIO_UPDATE"), Some("off"));
        assert_eq!(get(&env, "MINIO_NOTIFY_KAFKA_ENABLE_1"), Some("on"));
        assert_eq!(get(&env, "MINIO_NOTIFY_KAFKA_BROKERS_1"), Some("127.0.0.1:9092"));
        assert_eq!(get(&env, "MINIO_NOTIFY_KAFKA_TOPIC_1"), Some("minio-events"));
        assert_eq!(get(&env, "MINIO_NOTIFY_KAFKA_ENABLE_2"), Some("on"));
        assert_eq!(get(&env, "MINIO_NOTIFY_KAFKA_TOPIC_2"), Some("harness-outputs"));
        assert_eq!(get(&env, "MINIO_NOTIFY_KAFKA_QUEUE_DIR_1"), None);
        assert_eq!(get(&env, "MINIO_NOTIFY_KAFKA_SASL_1"), None, "PLAINTEXT unless asked");
        let sasl = minio_env(&MinioConfig { events_sasl: Some(("u".into(), "p".into())), ..config(false, false) });
        assert_eq!(get(&sasl, "MINIO_NOTIFY_KAFKA_SASL_1"), Some("on"));
        assert_eq!(get(&sasl, "MINIO_NOTIFY_KAFKA_SASL_MECHANISM_1"), Some("plain"));
        assert_eq!(
            (get(&sasl, "MINIO_NOTIFY_KAFKA_SASL_USERNAME_1"), get(&sasl, "MINIO_NOTIFY_KAFKA_SASL_PASSWORD_1")),
            (Some("u"), Some("p"))
        );
        assert_eq!(get(&sasl, "MINIO_NOTIFY_KAFKA_SASL_2"), None, "the harness's own outputs target stays PLAINTEXT");
        assert_eq!(get(&env, "MINIO_API_SYNC_EVENTS"), None);
    }

    #[test]
    fn env_adds_queue_dir_and_sync_events_when_asked() {
        let env = minio_env(&config(true, true));
        for id in ["1", "2"] {
            assert_eq!(get(&env, &format!("MINIO_NOTIFY_KAFKA_QUEUE_DIR_{id}")), Some("/run/minio/queue"));
            assert_eq!(get(&env, &format!("MINIO_NOTIFY_KAFKA_QUEUE_LIMIT_{id}")), Some("100000"));
        }
        assert_eq!(get(&env, "MINIO_API_SYNC_EVENTS"), Some("on"));
    }

    #[test]
    fn args_bind_loopback() {
        let ports = MinioPorts { api: 9100, console: 9101 };
        let args = minio_args(ports, Path::new("/run/minio/data"));
        assert_eq!(args, ["server", "--address", "127.0.0.1:9100", "--console-address", "127.0.0.1:9101", "/run/minio/data"]);
        assert_eq!(ports.endpoint(), "http://127.0.0.1:9100");
        assert_eq!(target_arn(EVENTS_TARGET), "arn:minio:sqs::1:kafka");
        assert_eq!(target_arn(OUTPUTS_TARGET), "arn:minio:sqs::2:kafka");
    }
}
