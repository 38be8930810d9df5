//! The processor under test, supervised like a Kubernetes Deployment: started
//! with the contract's environment (DESIGN §5), restarted with backoff when it
//! exits unexpectedly, every exit recorded for the run's history.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::process::{describe_status, ChildProcess, ChildSpec, ProcessGroup};
use super::ServiceError;
use crate::env::Endpoints;

/// First restart delay; doubles per consecutive crash up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A run at least this long resets the backoff (the crash was not a loop).
pub const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Contract defaults; `ProcessorSpec::env` overrides them.
pub const DEFAULT_GROUP_ID: &str = "harness-processor";
pub const DEFAULT_THUMBNAIL_WIDTH: u32 = 128;

/// The processor command. `env` is applied on top of the contract's variables,
/// so it can set `KAFKA_GROUP_ID` or `THUMBNAIL_WIDTH`.
#[derive(Clone, Debug)]
pub struct ProcessorSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Service name: the log is `logs/<name>.log`.
    pub name: String,
    /// The reference processor (`harness processor`): an environment with its own
    /// images runs it from there instead of `program`.
    pub builtin: bool,
}

/// The contract's environment for a processor talking to `endpoints`.
/// Holds the S3 secret: never log it.
pub fn contract_env(endpoints: &Endpoints) -> Vec<(String, String)> {
    let creds = &endpoints.credentials;
    [
        ("KAFKA_BOOTSTRAP_SERVERS", endpoints.kafka_bootstrap.clone()),
        ("KAFKA_TOPIC", endpoints.events_topic.clone()),
        ("KAFKA_GROUP_ID", DEFAULT_GROUP_ID.to_string()),
        ("S3_ENDPOINT", endpoints.s3_endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", creds.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_key.clone()),
        ("AWS_REGION", creds.region.clone()),
        ("SOURCE_BUCKET", endpoints.source_bucket.clone()),
        ("TARGET_BUCKET", endpoints.target_bucket.clone()),
        ("THUMBNAIL_WIDTH", DEFAULT_THUMBNAIL_WIDTH.to_string()),
        // Not in the contract, but stops AWS SDKs from probing EC2 metadata
        // and lets SDKs that read AWS_ENDPOINT_URL find MinIO unconfigured.
        ("AWS_ENDPOINT_URL", endpoints.s3_endpoint.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The child spec: contract env, then the spec's env on top. Inherited `AWS_*`
/// and `KAFKA_*` variables are removed so a developer's shell (a profile, a
/// session token) cannot leak into the processor.
pub fn child_spec(spec: &ProcessorSpec, endpoints: &Endpoints) -> ChildSpec {
    let mut env = contract_env(endpoints);
    for (k, v) in &spec.env {
        env.retain(|(existing, _)| existing != k);
        env.push((k.clone(), v.clone()));
    }
    ChildSpec {
        name: spec.name.clone(),
        program: spec.program.clone(),
        args: spec.args.clone(),
        env,
        env_remove_prefixes: vec!["AWS_".into(), "KAFKA_".into()],
        cwd: Some(spec.cwd.clone()),
    }
}

/// One exit of the processor.
#[derive(Clone, Debug)]
pub struct ProcessorExit {
    /// Monotonic time of the exit (as seen by the supervisor).
    pub at: Instant,
    pub wall_time: SystemTime,
    /// How long that process ran.
    pub uptime: Duration,
    /// "exit code 1", "killed by signal 9 (SIGKILL)".
    pub status: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// True only for the exit `stop()` asked for.
    pub expected: bool,
}

/// What the supervisor knows; published on a watch channel on every change.
#[derive(Clone, Debug, Default)]
pub struct ProcessorStatus {
    /// Processes started (1 + restarts).
    pub starts: u32,
    /// Restarts after unexpected exits.
    pub restarts: u32,
    pub exits: Vec<ProcessorExit>,
    /// Pid of the running process, if one runs.
    pub pid: Option<u32>,
    /// The last failure to start a replacement, if the latest attempt failed.
    pub last_spawn_error: Option<String>,
    /// `stop()` was called and the process is gone.
    pub stopped: bool,
}

/// Runs the processor until stopped; restarts it when it exits on its own.
#[derive(Debug)]
pub struct ProcessorSupervisor {
    name: String,
    stop_tx: Option<oneshot::Sender<Duration>>,
    task: Option<JoinHandle<()>>,
    status: watch::Receiver<ProcessorStatus>,
    log_path: PathBuf,
}

impl ProcessorSupervisor {
    /// Starts the first process now (so a bad command fails here) and the
    /// supervising task. Call from async code on the run's runtime: the task
    /// spawns the replacements from a worker thread (see `process` docs).
    pub fn start(group: &ProcessGroup, spec: ChildSpec) -> Result<Self, ServiceError> {
        let first = group.spawn(&spec)?;
        let (status_tx, status) = watch::channel(ProcessorStatus { starts: 1, pid: Some(first.pid()), ..ProcessorStatus::default() });
        let (stop_tx, stop_rx) = oneshot::channel();
        let log_path = first.log_path().to_path_buf();
        let task = tokio::spawn(supervise(group.clone(), spec.clone(), first, status_tx, stop_rx));
        Ok(ProcessorSupervisor { name: spec.name, stop_tx: Some(stop_tx), task: Some(task), status, log_path })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_path(&self) -> &std::path::Path {
        &self.log_path
    }

    /// A receiver of the status: `borrow()` for a snapshot, `changed()` to
    /// hear about each start, exit and restart.
    pub fn status(&self) -> watch::Receiver<ProcessorStatus> {
        self.status.clone()
    }

    /// SIGTERM, up to `grace` (10 s for the contract) to exit, then SIGKILL.
    /// Returns the final status. Harmless twice.
    pub async fn stop(&mut self, grace: Duration) -> ProcessorStatus {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(grace);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.status.borrow().clone()
    }
}

fn exit_record(status: std::io::Result<std::process::ExitStatus>, uptime: Duration, expected: bool) -> ProcessorExit {
    use std::os::unix::process::ExitStatusExt;
    let (text, code, signal) = match status {
        Ok(s) => (describe_status(s), s.code(), s.signal()),
        Err(e) => (format!("wait failed: {e}"), None, None),
    };
    ProcessorExit { at: Instant::now(), wall_time: SystemTime::now(), uptime, status: text, code, signal, expected }
}

async fn supervise(
    group: ProcessGroup,
    spec: ChildSpec,
    first: ChildProcess,
    status: watch::Sender<ProcessorStatus>,
    mut stop_rx: oneshot::Receiver<Duration>,
) {
    let mut child = Some(first);
    let mut backoff = INITIAL_BACKOFF;
    loop {
        if let Some(running) = child.as_mut() {
            tokio::select! {
                exit = running.wait() => {
                    let uptime = running.started().elapsed();
                    let record = exit_record(exit, uptime, false);
                    tracing::warn!(processor = %spec.name, status = %record.status, "processor exited; restarting");
                    status.send_modify(|s| { s.pid = None; s.exits.push(record); });
                    if uptime >= STABLE_AFTER {
                        backoff = INITIAL_BACKOFF;
                    }
                    child = None;
                }
                grace = &mut stop_rx => {
                    // A dropped supervisor (Err) means: kill now.
                    let grace = grace.unwrap_or(Duration::ZERO);
                    let uptime = running.started().elapsed();
                    let exit = running.stop(grace).await;
                    let record = exit_record(exit, uptime, true);
                    status.send_modify(|s| { s.pid = None; s.exits.push(record); s.stopped = true; });
                    return;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut stop_rx => {
                status.send_modify(|s| s.stopped = true);
                return;
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match group.spawn(&spec) {
            Ok(replacement) => {
                let pid = replacement.pid();
                status.send_modify(|s| {
                    s.starts += 1;
                    s.restarts += 1;
                    s.pid = Some(pid);
                    s.last_spawn_error = None;
                });
                child = Some(replacement);
            }
            Err(e) => {
                tracing::warn!(processor = %spec.name, "could not restart processor: {e}");
                status.send_modify(|s| s.last_spawn_error = Some(e.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::S3Credentials;

    fn endpoints() -> Endpoints {
        Endpoints {
            kafka_bootstrap: "127.0.0.1:9092".into(),
            s3_endpoint: "http://127.0.0.1:9000".into(),
            credentials: S3Credentials { access_key: "ak".into(), secret_key: "sk".into(), region: "us-east-1".into() },
            events_topic: "minio-events".into(),
            outputs_topic: "outputs".into(),
            source_bucket: "images".into(),
            target_bucket: "thumbnails".into(),
        }
    }

    #[test]
    fn contract_env_has_every_variable_and_spec_env_overrides() {
        let spec = ProcessorSpec {
            program: "/usr/bin/python3".into(),
            args: vec!["consumer.py".into()],
            env: vec![("THUMBNAIL_WIDTH".into(), "200".into()), ("EXTRA".into(), "1".into())],
            cwd: "/work".into(),
            name: "processor".into(),
            builtin: false,
        };
        let child = child_spec(&spec, &endpoints());
        let get = |k: &str| child.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("KAFKA_BOOTSTRAP_SERVERS"), Some("127.0.0.1:9092"));
        assert_eq!(get("KAFKA_TOPIC"), Some("minio-events"));
        assert_eq!(get("KAFKA_GROUP_ID"), Some(DEFAULT_GROUP_ID));
        assert_eq!(get("S3_ENDPOINT"), Some("http://127.0.0.1:9000"));
        assert_eq!(get("AWS_ACCESS_KEY_ID"), Some("ak"));
        assert_eq!(get("AWS_SECRET_ACCESS_KEY"), Some("sk"));
        assert_eq!(get("AWS_REGION"), Some("us-east-1"));
        assert_eq!(get("SOURCE_BUCKET"), Some("images"));
        assert_eq!(get("TARGET_BUCKET"), Some("thumbnails"));
        assert_eq!(get("THUMBNAIL_WIDTH"), Some("200"));
        assert_eq!(get("EXTRA"), Some("1"));
        assert_eq!(child.env.iter().filter(|(k, _)| k == "THUMBNAIL_WIDTH").count(), 1);
        assert!(child.env_remove_prefixes.contains(&"AWS_".to_string()));
        assert_eq!(child.cwd, Some(PathBuf::from("/work")));
    }

    #[tokio::test]
    async fn crashing_processor_is_restarted_with_backoff_and_stops_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let group = ProcessGroup::new(dir.path());
        let spec = ChildSpec {
            name: "crasher".into(),
            program: "/bin/sh".into(),
            // Crashes on the first start, then stays up.
            args: vec![
                "-c".into(),
                format!("if [ -e {0} ]; then exec sleep 60; else touch {0}; exit 3; fi", dir.path().join("seen").display()),
            ],
            ..ChildSpec::default()
        };
        let mut sup = ProcessorSupervisor::start(&group, spec).unwrap();
        let mut rx = sup.status();
        let restarted = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| s.restarts == 1 && s.pid.is_some()))
            .await
            .unwrap()
            .unwrap()
            .clone();
        assert_eq!(restarted.exits.len(), 1);
        assert_eq!(restarted.exits[0].code, Some(3));
        assert!(!restarted.exits[0].expected);

        let last = sup.stop(Duration::from_secs(5)).await;
        assert!(last.stopped);
        assert_eq!(last.starts, 2);
        assert_eq!(last.exits.len(), 2);
        assert!(last.exits[1].expected);
        assert_eq!(last.exits[1].signal, Some(libc::SIGTERM));
        assert!(group.is_empty());
    }
}
