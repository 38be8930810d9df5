//! Child processes of a run: one process group, output appended to log files,
//! and death together with the harness.
//!
//! Every child of a run joins the run's one process group: the first child
//! creates it (`setpgid(0, 0)`), later ones join its pgid. Ending the run is then
//! one `kill(-pgid, SIGKILL)`, which also reaches anything a child forked.
//!
//! Each child also gets `PR_SET_PDEATHSIG(SIGKILL)` so it dies if the harness is
//! SIGKILLed and no cleanup code runs. Linux fires that signal when the *thread*
//! that forked the child exits, not the process. So spawn children only from
//! threads that live as long as the run: the test thread or the tokio runtime's
//! worker threads (`async fn`s and `tokio::spawn`ed tasks). Never spawn from a
//! `spawn_blocking` closure: blocking-pool threads exit after 10 s idle and would
//! take the child with them.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::redact::{RedactingStream, Redactor};
use super::ServiceError;

/// What to run. Arguments and environment may hold secrets: neither is logged,
/// and `Debug` shows only the environment's names.
#[derive(Clone, Default)]
pub struct ChildSpec {
    /// Service name; the log goes to `<log_dir>/<name>.log`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Set on top of the harness's own environment.
    pub env: Vec<(String, String)>,
    /// Inherited variables whose name starts with one of these are removed
    /// (e.g. `MINIO_` so a user's shell cannot add notification targets).
    pub env_remove_prefixes: Vec<String>,
    pub cwd: Option<PathBuf>,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("program", &self.program)
            .field("args", &format_args!("<{} args>", self.args.len()))
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("env_remove_prefixes", &self.env_remove_prefixes)
            .field("cwd", &self.cwd)
            .finish()
    }
}

/// The process group of one run. Cheap to clone; clones share the group.
#[derive(Clone, Debug)]
pub struct ProcessGroup {
    /// `None` until the first child is spawned. Held locked across a spawn so
    /// two spawns cannot both create a group.
    pgid: Arc<Mutex<Option<i32>>>,
    log_dir: PathBuf,
    /// Masks the run's secrets in every child's output before it reaches the log.
    redactor: Arc<std::sync::RwLock<Redactor>>,
}

impl ProcessGroup {
    /// A group whose children log into `log_dir` (created on first spawn).
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        ProcessGroup { pgid: Arc::new(Mutex::new(None)), log_dir: log_dir.into(), redactor: Default::default() }
    }

    /// The same group, with children's output written through `redactor`.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = Arc::new(std::sync::RwLock::new(redactor));
        self
    }

    /// Masks `secret` too in the output of children spawned from now on (a secret
    /// made after the group, such as a listener's SASL password).
    pub fn add_secret(&self, secret: String) {
        let mut r = self.redactor.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        *r = r.with(secret);
    }

    /// The run's secrets, for logs written by others (a container's output).
    pub fn redactor(&self) -> Redactor {
        self.redactor.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The group id, once a child has been spawned.
    pub fn pgid(&self) -> Option<i32> {
        *self.pgid.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the log of the child named `name` goes.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    /// Starts a child in this group with stdout and stderr appended to its log.
    ///
    /// Must be called from a long-lived thread (see the module docs).
    pub fn spawn(&self, spec: &ChildSpec) -> Result<ChildProcess, ServiceError> {
        let name = spec.name.as_str();
        std::fs::create_dir_all(&self.log_dir).map_err(|e| ServiceError::io(name, format!("creating {}", self.log_dir.display()), e))?;
        let log_path = self.log_path(name);
        let mut stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| ServiceError::io(name, format!("opening {}", log_path.display()), e))?;
        let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        // Only the program: arguments of a user's processor might hold secrets.
        let _ = writeln!(
            stdout,
            "--- harness: starting {} at unix time {}.{:03} ---",
            spec.program.display(),
            unix_now.as_secs(),
            unix_now.subsec_millis()
        );
        let stderr = stdout.try_clone().map_err(|e| ServiceError::io(name, format!("opening {}", log_path.display()), e))?;

        // With secrets to mask, output goes through the harness on its way to the
        // log; otherwise straight into the file.
        let masked = !self.redactor().is_empty();
        let (out, err) = if masked { (Stdio::piped(), Stdio::piped()) } else { (stdout.into(), stderr.into()) };
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args).stdin(Stdio::null()).stdout(out).stderr(err).kill_on_drop(false);
        if !spec.env_remove_prefixes.is_empty() {
            for (key, _) in std::env::vars_os() {
                let k = key.to_string_lossy();
                if spec.env_remove_prefixes.iter().any(|p| k.starts_with(p.as_str())) {
                    cmd.env_remove(&key);
                }
            }
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }

        let mut pgid = self.pgid.lock().unwrap_or_else(|e| e.into_inner());
        let join = pgid.unwrap_or(0);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setpgid(0, join) != 0 {
                    // The group's last member is gone (EPERM): start a new one.
                    if join == 0 || libc::setpgid(0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The harness died between fork and prctl: follow it now.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child =
            cmd.spawn().map_err(|source| ServiceError::Spawn { service: name.to_string(), program: spec.program.clone(), source })?;
        if masked {
            let open = || OpenOptions::new().append(true).open(&log_path);
            if let (Some(o), Ok(f)) = (child.stdout.take(), open()) {
                tokio::spawn(copy_redacted(o, f, self.redactor()));
            }
            if let (Some(e), Ok(f)) = (child.stderr.take(), open()) {
                tokio::spawn(copy_redacted(e, f, self.redactor()));
            }
        }
        let pid = child.id().unwrap_or(0);
        // SAFETY: getpgid has no memory-safety preconditions.
        let child_pgid = unsafe { libc::getpgid(pid as libc::pid_t) };
        if child_pgid > 0 {
            *pgid = Some(child_pgid);
        }
        drop(pgid);
        tracing::debug!(service = name, pid, log = %log_path.display(), "spawned");
        Ok(ChildProcess { name: name.to_string(), child, pid, log_path, started: Instant::now(), status: None })
    }

    /// Sends `signal` to every process of the group. Returns false when the
    /// group has no process left (or never had one).
    pub fn signal_group(&self, signal: i32) -> bool {
        match self.pgid() {
            // SAFETY: kill has no memory-safety preconditions.
            Some(pg) if pg > 1 => unsafe { libc::kill(-pg, signal) == 0 },
            _ => false,
        }
    }

    /// SIGKILLs everything left in the group. The end of a run; harmless twice.
    pub fn kill_group(&self) {
        self.signal_group(libc::SIGKILL);
    }

    /// True when no process (not even an unreaped zombie) is left in the group.
    pub fn is_empty(&self) -> bool {
        !self.signal_group(0)
    }
}

/// One running child. Dropping it neither kills nor waits: tokio reaps it in
/// the background, and the group kill ends it.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: tokio::process::Child,
    pid: u32,
    log_path: PathBuf,
    started: Instant,
    status: Option<ExitStatus>,
}

impl ChildProcess {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// The exit status if the child has exited, without blocking.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
            }
        }
        self.status
    }

    /// Waits for the child to exit and reaps it. Cancel-safe.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.child.wait().await?;
        self.status = Some(status);
        Ok(status)
    }

    /// Sends `signal` to the child unless it has already been reaped (its pid
    /// could belong to someone else by then).
    pub fn signal(&mut self, signal: i32) -> std::io::Result<()> {
        if self.try_status().is_some() {
            return Ok(());
        }
        // SAFETY: kill has no memory-safety preconditions.
        if unsafe { libc::kill(self.pid as libc::pid_t, signal) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ESRCH) {
                return Err(err);
            }
        }
        Ok(())
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; always reaps.
    pub async fn stop(&mut self, grace: Duration) -> std::io::Result<ExitStatus> {
        self.signal(libc::SIGTERM)?;
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(service = %self.name, pid = self.pid, "no exit {grace:?} after SIGTERM; sending SIGKILL");
                self.signal(libc::SIGKILL)?;
                self.wait().await
            }
        }
    }

    /// SIGKILL and reap: for a child that failed to become ready.
    pub async fn kill(&mut self) -> std::io::Result<ExitStatus> {
        self.signal(libc::SIGKILL)?;
        self.wait().await
    }

    /// The last `n` lines of this child's log.
    pub fn log_tail(&self, n: usize) -> String {
        tail_log(&self.log_path, n)
    }
}

/// "exit code 1" or "killed by signal 9 (SIGKILL)".
pub fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(sig) => format!("killed by signal {sig} ({})", signal_name(sig)),
        None => status.to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => "other",
    }
}

/// Copies a child's output into its log with the run's secrets masked, until the
/// child (and whatever it forked) closes the pipe.
///
/// Writes are plain blocking appends: a few KiB into the page cache, and a line is
/// in the file (for readiness checks and tails) as soon as the child wrote it.
async fn copy_redacted(mut from: impl tokio::io::AsyncRead + Unpin, mut to: std::fs::File, redactor: Redactor) {
    use tokio::io::AsyncReadExt;
    let mut stream = RedactingStream::new(redactor);
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if to.write_all(&stream.push(&buf[..n])).is_err() {
            break;
        }
    }
    let _ = to.write_all(&stream.finish());
}

/// The last `n_lines` lines of a log file, for error messages. Reads at most the
/// last 64 KiB; a missing or unreadable file gives a note instead of an error.
pub fn tail_log(path: &Path, n_lines: usize) -> String {
    const MAX_BYTES: u64 = 64 * 1024;
    let read = || -> std::io::Result<Vec<u8>> {
        let mut f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(buf)
    };
    match read() {
        Ok(bytes) => last_lines(&String::from_utf8_lossy(&bytes), n_lines),
        Err(e) => format!("(log {} unreadable: {e})", path.display()),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_spec_debug_hides_values() {
        let spec = ChildSpec { name: "minio".into(), env: vec![("MINIO_ROOT_PASSWORD".into(), "hunter22".into())], ..ChildSpec::default() };
        let shown = format!("{spec:?}");
        assert!(shown.contains("MINIO_ROOT_PASSWORD") && !shown.contains("hunter22"), "{shown}");
    }

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb", 5), "a\nb");
        assert_eq!(last_lines("", 3), "");
    }

    #[test]
    fn tail_log_reads_the_end_of_big_files_and_notes_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(tail_log(&path, 2), "line 19998\nline 19999");
        assert!(tail_log(&dir.path().join("missing.log"), 2).contains("unreadable"));
    }

    #[test]
    fn statuses_are_described_for_humans() {
        assert_eq!(describe_status(ExitStatus::from_raw(1 << 8)), "exit code 1");
        assert_eq!(describe_status(ExitStatus::from_raw(libc::SIGKILL)), "killed by signal 9 (SIGKILL)");
    }

    #[tokio::test]
    async fn children_share_one_group_log_and_are_gone_after_kill() {
        let dir = tempfile::tempdir().unwrap();
        let group = ProcessGroup::new(dir.path().join("logs"));
        let sh = |name: &str, script: &str| ChildSpec {
            name: name.into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            ..ChildSpec::default()
        };
        let mut a = group.spawn(&sh("a", "echo hello-a; exec sleep 60")).unwrap();
        let mut b = group.spawn(&sh("b", "echo oops >&2; exec sleep 60")).unwrap();
        let pgid = group.pgid().unwrap();
        assert_eq!(pgid, a.pid() as i32, "the first child leads the group");
        // SAFETY: getpgid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::getpgid(b.pid() as i32) }, pgid);

        // stderr goes to the log (wait for the shell to have run its echo).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !b.log_tail(5).contains("oops") {
            assert!(Instant::now() < deadline, "stderr did not reach the log");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = b.stop(Duration::from_secs(5)).await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert!(!group.is_empty());

        while !a.log_tail(5).ends_with("hello-a") {
            assert!(Instant::now() < deadline, "stdout did not reach the log");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        group.kill_group();
        a.wait().await.unwrap();
        assert!(group.is_empty());
        group.kill_group(); // harmless twice
    }

    #[tokio::test]
    async fn a_new_group_is_made_when_the_old_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let group = ProcessGroup::new(dir.path());
        let spec = |name: &str| ChildSpec { name: name.into(), program: "/bin/true".into(), ..ChildSpec::default() };
        let mut first = group.spawn(&spec("first")).unwrap();
        first.wait().await.unwrap();
        let mut second = group.spawn(&spec("second")).unwrap();
        assert_eq!(group.pgid(), Some(second.pid() as i32));
        second.wait().await.unwrap();
    }
}
