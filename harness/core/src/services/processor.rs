//! The processor under test, supervised like a Kubernetes Deployment: started
//! with the contract's environment (DESIGN §5), restarted with backoff when it
//! exits unexpectedly, every exit recorded for the run's history.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::process::{describe_status, ChildProcess, ChildSpec, ProcessGroup};
use super::ServiceError;
use crate::services::endpoints::Endpoints;

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
    /// A container image of the processor, run with its own entrypoint (containers
    /// and kubernetes environments; `program` is then unused).
    pub image: Option<String>,
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
    .chain(sasl_env(endpoints.kafka_sasl.as_ref()))
    .collect()
}

/// Where the Kafka address needs SASL (a kubernetes run's node port, which a
/// processor command on this machine uses): librdkafka's settings, as variables.
fn sasl_env(sasl: Option<&super::endpoints::KafkaSasl>) -> Vec<(String, String)> {
    let Some(s) = sasl else { return Vec::new() };
    [
        ("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT".to_string()),
        ("KAFKA_SASL_MECHANISM", s.mechanism.clone()),
        ("KAFKA_SASL_USERNAME", s.user.clone()),
        ("KAFKA_SASL_PASSWORD", s.password.clone()),
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
    /// `hold()` stopped the process and nothing runs until `release()`.
    pub held: bool,
}

/// How one process ended, as its launcher saw it; the supervisor adds the times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitSeen {
    /// "exit code 1", "killed by signal 9 (SIGKILL)".
    pub status: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitSeen {
    /// The exit record, stamped now.
    fn record(self, uptime: Duration, expected: bool) -> ProcessorExit {
        let ExitSeen { status, code, signal } = self;
        ProcessorExit { at: Instant::now(), wall_time: SystemTime::now(), uptime, status, code, signal, expected }
    }
}

/// What [`Supervision`] needs of one kind of processor: a host process, a
/// container. The supervisor owns the policy (backoff, the status, what a stop
/// means); a launcher only acts on its process.
///
/// `wait_exit` and `stop` are called only while a process runs: after the first
/// start (done before the supervisor is handed the launcher) or a successful
/// `restart`, and until `wait_exit` has returned its exit.
#[async_trait::async_trait]
pub trait Launcher: Send + 'static {
    /// Waits until the running process exits on its own. Must be cancel-safe:
    /// a stop request drops it and calls `stop` instead.
    async fn wait_exit(&mut self) -> ExitSeen;

    /// Stops the running process: ask it, up to `grace` to exit, then force it.
    /// Returns how it ended.
    async fn stop(&mut self, grace: Duration) -> ExitSeen;

    /// Starts a replacement for a process that exited. Returns its pid, if known,
    /// or why it could not be started (the supervisor tries again later).
    async fn restart(&mut self) -> Result<Option<u32>, String>;
}

/// A supervising task: keeps a processor running through its [`Launcher`],
/// restarting it with backoff when it exits on its own, until stopped; every
/// start and exit is published as a [`ProcessorStatus`]. It can also hold the
/// processor stopped and release it again (an operator scaling a Deployment to
/// zero and back), keeping one history of starts and exits throughout.
#[derive(Debug)]
pub struct Supervision {
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
    status: watch::Receiver<ProcessorStatus>,
}

/// What the supervising task is asked to do.
#[derive(Debug)]
enum Command {
    /// Stop the process with this grace and end supervision.
    Stop(Duration),
    /// Stop the process with this grace and start nothing until `Release`;
    /// answers how it ended (`None`: nothing was running).
    Hold(Duration, oneshot::Sender<Option<String>>),
    /// Start the held process again; answers its pid, or why it could not start.
    Release(oneshot::Sender<Result<Option<u32>, String>>),
}

impl Supervision {
    /// Supervises the process `launcher` has just started (`pid`, if known).
    /// Call from async code on the run's runtime.
    pub fn spawn(launcher: impl Launcher, pid: Option<u32>) -> Self {
        let (status_tx, status) = watch::channel(ProcessorStatus { starts: 1, pid, ..ProcessorStatus::default() });
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(supervise(launcher, tokio::time::Instant::now(), status_tx, rx));
        Supervision { commands, task: Some(task), status }
    }

    /// Stops the process through the launcher with `grace` (or cancels a pending
    /// restart) and starts nothing until [`Supervision::release`]. The exit is an
    /// expected one. Returns how the process ended, `None` when none was running.
    pub async fn hold(&self, grace: Duration) -> Result<Option<String>, String> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Hold(grace, tx)).map_err(|_| "the processor's supervision has ended".to_string())?;
        rx.await.map_err(|_| "the processor's supervision ended while stopping it".to_string())
    }

    /// Starts a held process again (a start, not a restart: nothing crashed).
    /// Returns its pid, if known. Releasing a running process changes nothing.
    pub async fn release(&self) -> Result<Option<u32>, String> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Release(tx)).map_err(|_| "the processor's supervision has ended".to_string())?;
        rx.await.map_err(|_| "the processor's supervision ended while starting it".to_string())?
    }

    /// A receiver of the status: `borrow()` for a snapshot, `changed()` to
    /// hear about each start, exit and restart.
    pub fn status(&self) -> watch::Receiver<ProcessorStatus> {
        self.status.clone()
    }

    /// Stops the process through the launcher with `grace`, or cancels a pending
    /// restart, and waits for the task. Returns the final status. Harmless twice.
    pub async fn stop(&mut self, grace: Duration) -> ProcessorStatus {
        let _ = self.commands.send(Command::Stop(grace));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.status.borrow().clone()
    }
}

/// Where the supervisor loop is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    /// The process exited on its own; a restart follows the backoff.
    BackingOff,
    /// Stopped by `Hold`; nothing starts until `Release`.
    Held,
}

/// The supervisor loop. `started` is when the running process started; uptimes
/// are measured on tokio's clock (the same as `Instant` unless time is paused).
/// A closed command channel (the supervisor was dropped) means: stop now.
async fn supervise(
    mut launcher: impl Launcher,
    mut started: tokio::time::Instant,
    status: watch::Sender<ProcessorStatus>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut state = State::Running;
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let command = match state {
            State::Running => tokio::select! {
                exit = launcher.wait_exit() => {
                    let uptime = started.elapsed();
                    status.send_modify(|s| { s.pid = None; s.exits.push(exit.record(uptime, false)); });
                    if uptime >= STABLE_AFTER {
                        backoff = INITIAL_BACKOFF;
                    }
                    state = State::BackingOff;
                    continue;
                }
                command = commands.recv() => command,
            },
            State::BackingOff => tokio::select! {
                _ = tokio::time::sleep(backoff) => {
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    match launcher.restart().await {
                        Ok(pid) => {
                            started = tokio::time::Instant::now();
                            state = State::Running;
                            status.send_modify(|s| {
                                s.starts += 1;
                                s.restarts += 1;
                                s.pid = pid;
                                s.last_spawn_error = None;
                            });
                        }
                        Err(e) => status.send_modify(|s| s.last_spawn_error = Some(e)),
                    }
                    continue;
                }
                command = commands.recv() => command,
            },
            State::Held => commands.recv().await,
        };
        let running = state == State::Running;
        match command {
            None | Some(Command::Stop(_)) => {
                let grace = match command {
                    Some(Command::Stop(grace)) => grace,
                    _ => Duration::ZERO,
                };
                if running {
                    stop_expected(&mut launcher, &status, grace, started).await;
                }
                status.send_modify(|s| {
                    s.stopped = true;
                    s.held = false;
                });
                return;
            }
            Some(Command::Hold(grace, reply)) => {
                let ended = if running { Some(stop_expected(&mut launcher, &status, grace, started).await) } else { None };
                status.send_modify(|s| s.held = true);
                state = State::Held;
                let _ = reply.send(ended);
            }
            Some(Command::Release(reply)) => {
                if state != State::Held {
                    let _ = reply.send(Ok(status.borrow().pid));
                    continue;
                }
                let started_again = launcher.restart().await;
                if let Ok(pid) = started_again {
                    started = tokio::time::Instant::now();
                    backoff = INITIAL_BACKOFF;
                    state = State::Running;
                    status.send_modify(|s| {
                        s.starts += 1;
                        s.pid = pid;
                        s.held = false;
                        s.last_spawn_error = None;
                    });
                }
                let _ = reply.send(started_again);
            }
        }
    }
}

/// Stops the running process, as asked (an expected exit); returns how it ended.
async fn stop_expected(
    launcher: &mut impl Launcher,
    status: &watch::Sender<ProcessorStatus>,
    grace: Duration,
    started: tokio::time::Instant,
) -> String {
    let exit = launcher.stop(grace).await;
    let uptime = started.elapsed();
    let said = exit.status.clone();
    status.send_modify(|s| {
        s.pid = None;
        s.exits.push(exit.record(uptime, true));
    });
    said
}

/// Runs the processor as a host process until stopped; restarts it when it
/// exits on its own.
#[derive(Debug)]
pub struct ProcessorSupervisor {
    name: String,
    log_path: PathBuf,
    supervision: Supervision,
}

impl ProcessorSupervisor {
    /// Starts the first process now (so a bad command fails here) and the
    /// supervising task. Call from async code on the run's runtime: the task
    /// spawns the replacements from a worker thread (see `process` docs).
    pub fn start(group: &ProcessGroup, spec: ChildSpec) -> Result<Self, ServiceError> {
        let first = group.spawn(&spec)?;
        let (name, log_path, pid) = (spec.name.clone(), first.log_path().to_path_buf(), first.pid());
        let supervision = Supervision::spawn(HostLauncher { group: group.clone(), spec, child: first }, Some(pid));
        Ok(ProcessorSupervisor { name, log_path, supervision })
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
        self.supervision.status()
    }

    /// SIGTERM, up to `grace` (10 s for the contract) to exit, then SIGKILL.
    /// Returns the final status. Harmless twice.
    pub async fn stop(&mut self, grace: Duration) -> ProcessorStatus {
        self.supervision.stop(grace).await
    }

    /// The supervision, to hold the processor stopped and release it again.
    pub fn supervision(&self) -> &Supervision {
        &self.supervision
    }
}

/// A host process in the run's process group.
struct HostLauncher {
    group: ProcessGroup,
    spec: ChildSpec,
    /// The latest process; after its exit it stays here, reaped, until replaced.
    child: ChildProcess,
}

#[async_trait::async_trait]
impl Launcher for HostLauncher {
    async fn wait_exit(&mut self) -> ExitSeen {
        let exit = host_exit(self.child.wait().await);
        tracing::warn!(processor = %self.spec.name, status = %exit.status, "processor exited; restarting");
        exit
    }

    async fn stop(&mut self, grace: Duration) -> ExitSeen {
        host_exit(self.child.stop(grace).await)
    }

    async fn restart(&mut self) -> Result<Option<u32>, String> {
        match self.group.spawn(&self.spec) {
            Ok(replacement) => {
                self.child = replacement;
                Ok(Some(self.child.pid()))
            }
            Err(e) => {
                tracing::warn!(processor = %self.spec.name, "could not restart processor: {e}");
                Err(e.to_string())
            }
        }
    }
}

fn host_exit(status: std::io::Result<std::process::ExitStatus>) -> ExitSeen {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => ExitSeen { status: describe_status(s), code: s.code(), signal: s.signal() },
        Err(e) => ExitSeen { status: format!("wait failed: {e}"), code: None, signal: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::endpoints::S3Credentials;

    fn endpoints() -> Endpoints {
        Endpoints {
            kafka_bootstrap: "127.0.0.1:9092".into(),
            kafka_sasl: None,
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
            image: None,
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
        assert!(get("KAFKA_SASL_PASSWORD").is_none(), "a PLAINTEXT address gets no SASL variables");
        let mut sasl = endpoints();
        sasl.kafka_sasl = Some(crate::services::endpoints::KafkaSasl::plain("harness", "pw-12345678".into()));
        let child = child_spec(&spec, &sasl);
        let get = |k: &str| child.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("KAFKA_SECURITY_PROTOCOL"), Some("SASL_PLAINTEXT"));
        assert_eq!(get("KAFKA_SASL_MECHANISM"), Some("PLAIN"));
        assert_eq!(get("KAFKA_SASL_USERNAME"), Some("harness"));
        assert_eq!(get("KAFKA_SASL_PASSWORD"), Some("pw-12345678"));
    }

    /// What the fake launcher was asked to do, at what (virtual) time.
    #[derive(Debug, PartialEq)]
    enum Call {
        Restart(Duration),
        Stop(Duration, Duration),
    }

    /// Process `n` (0 = the first) runs `lifetimes[n]`, or until stopped when the
    /// list is exhausted; restart `n` answers `restarts[n]`.
    struct FakeLauncher {
        t0: tokio::time::Instant,
        started: tokio::time::Instant,
        runs: usize,
        lifetimes: Vec<Duration>,
        restarts: std::collections::VecDeque<Result<Option<u32>, String>>,
        calls: std::sync::Arc<std::sync::Mutex<Vec<Call>>>,
    }

    #[async_trait::async_trait]
    impl Launcher for FakeLauncher {
        async fn wait_exit(&mut self) -> ExitSeen {
            match self.lifetimes.get(self.runs) {
                Some(&lifetime) => tokio::time::sleep_until(self.started + lifetime).await,
                None => std::future::pending().await,
            }
            self.runs += 1;
            ExitSeen { status: "exit code 1".into(), code: Some(1), signal: None }
        }

        async fn stop(&mut self, grace: Duration) -> ExitSeen {
            self.calls.lock().unwrap().push(Call::Stop(self.t0.elapsed(), grace));
            ExitSeen { status: "killed by signal 15 (SIGTERM)".into(), code: None, signal: Some(libc::SIGTERM) }
        }

        async fn restart(&mut self) -> Result<Option<u32>, String> {
            self.calls.lock().unwrap().push(Call::Restart(self.t0.elapsed()));
            let answer = self.restarts.pop_front().expect("an unscripted restart");
            if answer.is_ok() {
                self.started = tokio::time::Instant::now();
            }
            answer
        }
    }

    fn fake(lifetimes: &[u64], restarts: Vec<Result<Option<u32>, String>>) -> (FakeLauncher, std::sync::Arc<std::sync::Mutex<Vec<Call>>>) {
        let calls = std::sync::Arc::default();
        let now = tokio::time::Instant::now();
        let launcher = FakeLauncher {
            t0: now,
            started: now,
            runs: 0,
            lifetimes: lifetimes.iter().map(|&ms| Duration::from_millis(ms)).collect(),
            restarts: restarts.into(),
            calls: std::sync::Arc::clone(&calls),
        };
        (launcher, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_resets_after_a_stable_run_and_a_stop_cancels_it() {
        let ms = Duration::from_millis;
        // Crashes at once three times, runs 12 s, crashes at once, fails to
        // restart once, crashes at once again.
        let (launcher, calls) =
            fake(&[0, 0, 0, 12_000, 0, 0], vec![Ok(Some(2)), Ok(Some(3)), Ok(Some(4)), Ok(Some(5)), Err("no image".into()), Ok(Some(6))]);
        let mut sup = Supervision::spawn(launcher, Some(1));
        let mut rx = sup.status();

        let failed = rx.wait_for(|s| s.last_spawn_error.is_some()).await.unwrap().clone();
        assert_eq!(failed.last_spawn_error.as_deref(), Some("no image"));
        assert_eq!((failed.starts, failed.restarts, failed.pid, failed.exits.len()), (5, 4, None, 5));

        // Process 6 has crashed: the supervisor waits 4 s before the next start.
        let crashed = rx.wait_for(|s| s.exits.len() == 6).await.unwrap().clone();
        assert_eq!((crashed.starts, crashed.restarts, crashed.pid, crashed.last_spawn_error), (6, 5, None, None));
        let last = sup.stop(Duration::from_secs(10)).await;

        let restarts = [500, 1_500, 3_500, 16_000, 17_000, 19_000].map(|t| Call::Restart(ms(t)));
        // Exits after 0, 0, 0, 12 s (stable: the backoff goes back to 500 ms), 0, 0.
        assert_eq!(*calls.lock().unwrap(), restarts, "restart times; no launcher stop, as nothing ran when stopped");
        let uptimes: Vec<_> = last.exits.iter().map(|x| x.uptime).collect();
        assert_eq!(uptimes, [0, 0, 0, 12_000, 0, 0].map(ms));
        assert!(last.exits.iter().all(|x| !x.expected && x.code == Some(1)));
        assert!(last.stopped);
        assert_eq!((last.starts, last.restarts, last.pid), (6, 5, None));
        assert_eq!(sup.stop(Duration::ZERO).await.exits.len(), 6, "a second stop changes nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_a_running_process_records_an_expected_exit() {
        let (launcher, calls) = fake(&[100], vec![Ok(Some(8))]);
        let mut sup = Supervision::spawn(launcher, Some(7));
        let mut rx = sup.status();
        rx.wait_for(|s| s.pid == Some(8)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let last = sup.stop(Duration::from_secs(10)).await;

        assert_eq!(
            *calls.lock().unwrap(),
            [Call::Restart(Duration::from_millis(600)), Call::Stop(Duration::from_millis(30_600), Duration::from_secs(10))]
        );
        assert!(last.stopped);
        assert_eq!((last.starts, last.restarts, last.pid), (2, 1, None));
        assert_eq!(last.exits.len(), 2);
        let stop = &last.exits[1];
        assert!(stop.expected);
        assert_eq!((stop.signal, stop.uptime), (Some(libc::SIGTERM), Duration::from_secs(30)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_process_stays_stopped_until_released_and_keeps_its_history() {
        let secs = Duration::from_secs;
        // The first process crashes after 1 s; its replacement runs until held.
        let (launcher, calls) = fake(&[1_000], vec![Ok(Some(2)), Ok(Some(3))]);
        let mut sup = Supervision::spawn(launcher, Some(1));
        let mut rx = sup.status();
        rx.wait_for(|s| s.pid == Some(2)).await.unwrap();
        tokio::time::sleep(secs(5)).await;

        let ended = sup.hold(secs(10)).await.unwrap();
        assert_eq!(ended.as_deref(), Some("killed by signal 15 (SIGTERM)"));
        let held = rx.borrow().clone();
        assert!(held.held && !held.stopped);
        assert_eq!((held.starts, held.restarts, held.pid, held.exits.len()), (2, 1, None, 2));
        assert!(held.exits[1].expected, "a hold is an exit the harness asked for");
        // However long it is held, nothing starts: no backoff restart.
        tokio::time::sleep(secs(60)).await;
        assert_eq!(sup.hold(secs(10)).await.unwrap(), None, "holding twice stops nothing");

        assert_eq!(sup.release().await, Ok(Some(3)));
        let released = rx.borrow().clone();
        assert!(!released.held);
        assert_eq!(
            (released.starts, released.restarts, released.pid, released.exits.len()),
            (3, 1, Some(3), 2),
            "a release is a start, not a restart"
        );
        assert_eq!(sup.release().await, Ok(Some(3)), "releasing a running process changes nothing");

        let last = sup.stop(secs(10)).await;
        assert!(last.stopped && !last.held);
        assert_eq!(last.exits.len(), 3, "one history across the hold: crash, hold, stop");
        let ms = Duration::from_millis;
        assert_eq!(
            *calls.lock().unwrap(),
            [Call::Restart(ms(1_500)), Call::Stop(ms(6_500), secs(10)), Call::Restart(ms(66_500)), Call::Stop(ms(66_500), secs(10))]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_release_leaves_it_held_and_says_why() {
        let (launcher, _) = fake(&[], vec![Err("no such file".into()), Ok(Some(9))]);
        let mut sup = Supervision::spawn(launcher, Some(1));
        sup.hold(Duration::from_secs(1)).await.unwrap();
        assert_eq!(sup.release().await, Err("no such file".to_string()));
        assert!(sup.status().borrow().held);
        assert_eq!(sup.release().await, Ok(Some(9)));
        assert_eq!(sup.stop(Duration::ZERO).await.starts, 2);
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
