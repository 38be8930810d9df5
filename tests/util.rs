//! Running the binary and reading what it wrote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn harness(args: &[&str], env: &[(&str, String)]) -> Output {
    harness_in(&repo(), args, env)
}

/// [`harness`] started in `dir`, as a user in their own folder would.
pub fn harness_in(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    harness_within(dir, args, env, run_limit())
}

/// [`harness_in`] stopped as hung after `limit`.
fn harness_within(dir: &Path, args: &[&str], env: &[(&str, String)], limit: Duration) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run the harness binary");
    let stdout = Captured::start(child.stdout.take().expect("piped stdout"));
    let stderr = Captured::start(child.stderr.take().expect("piped stderr"));
    let status = wait_bounded(&mut child, args, limit);
    // Ended: read to the end, as `Command::output` does. Hung and stopped: what was
    // printed so far (a process it left behind may hold the pipes open forever).
    let wait = if status.is_some() { None } else { Some(Duration::from_secs(10)) };
    let (stdout, stderr) = (stdout.finish(wait), stderr.finish(wait));
    let Some(status) = status else {
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        panic!(
            "`harness {}` did not end within {} s and was stopped: the harness bounds its own waits, so this is a hang \
             (HARNESS_TEST_RUN_LIMIT sets the limit). The last lines it printed:\n{}",
            args.join(" "),
            limit.as_secs(),
            tail.join("\n")
        );
    };
    Output { code: status.code().unwrap_or(-1), stdout, stderr }
}

/// The longest a single harness invocation in a test may take before it counts as hung:
/// `HARNESS_TEST_RUN_LIMIT` seconds, else 20 minutes (the longest scenario here takes
/// about 5 on a loaded 2-core machine). A hung run then fails its test with what it
/// printed, instead of holding the whole suite until CI's own limit kills it silently.
pub fn run_limit() -> Duration {
    let secs = std::env::var("HARNESS_TEST_RUN_LIMIT").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(1200);
    Duration::from_secs(secs)
}

/// A child's output, read by a thread of its own into a buffer that can be looked at
/// before the stream ends.
struct Captured {
    bytes: std::sync::Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Captured {
    fn start(mut from: impl std::io::Read + Send + 'static) -> Captured {
        let bytes = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = bytes.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = from.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend_from_slice(&chunk[..n]);
            }
        });
        Captured { bytes, reader }
    }

    /// The text read: after the stream's end (`None`), or after at most `wait`.
    fn finish(self, wait: Option<Duration>) -> String {
        match wait {
            None => {
                let _ = self.reader.join();
            }
            Some(wait) => {
                let until = Instant::now() + wait;
                while !self.reader.is_finished() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        let bytes = self.bytes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Waits for `child` at most [`run_limit`]; past it, asks it to stop as Ctrl-C would
/// (so it removes what it started), then kills it a minute later. `None`: it hung.
fn wait_bounded(child: &mut std::process::Child, args: &[&str], limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => break,
            Err(e) => panic!("waiting for `harness {}`: {e}", args.join(" ")),
        }
    }
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let grace = Instant::now() + Duration::from_secs(60);
    while Instant::now() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// How many end-to-end runs may overlap: `HARNESS_TEST_JOBS`, else 3. Each run has its
/// own ports, folders, containers and namespace, and most of a run is waiting (services
/// starting, drains, faults healing), so runs overlap well even on 2 cores; the tests
/// judge correctness, not speed (speed bounds belong in benchmarks), so a loaded
/// machine slows them but cannot fail them.
fn jobs() -> usize {
    std::env::var("HARNESS_TEST_JOBS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(3)
}

struct Places {
    taken: usize,
    /// An exclusive test is waiting or running: no new shared place is given.
    exclusive: bool,
}

static PLACES: Mutex<Places> = Mutex::new(Places { taken: 0, exclusive: false });
static FREED: Condvar = Condvar::new();

/// A place among the end-to-end runs allowed at once ([`jobs`]), held until dropped.
/// The time it was held is appended to `HARNESS_TEST_TIMES` when that is set
/// (`ci/test` prints the slowest tests from it).
pub struct Place {
    count: usize,
    exclusive: bool,
    waited: Duration,
    since: Instant,
}

fn lock() -> MutexGuard<'static, Places> {
    PLACES.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One place: for a test whose runs may overlap with other tests' runs.
pub fn slot() -> Place {
    let asked = Instant::now();
    let mut p = lock();
    while p.exclusive || p.taken >= jobs() {
        p = FREED.wait(p).unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    p.taken += 1;
    Place { count: 1, exclusive: false, waited: asked.elapsed(), since: Instant::now() }
}

/// Every place: for a test that must see no other run, e.g. one that leaves a killed
/// run behind for its own next run to reap (any other run would reap it first).
pub fn exclusive() -> Place {
    let asked = Instant::now();
    let mut p = lock();
    while p.exclusive {
        p = FREED.wait(p).unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    p.exclusive = true;
    while p.taken > 0 {
        p = FREED.wait(p).unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    let count = jobs();
    p.taken = count;
    Place { count, exclusive: true, waited: asked.elapsed(), since: Instant::now() }
}

impl Drop for Place {
    fn drop(&mut self) {
        let held = self.since.elapsed();
        {
            let mut p = lock();
            p.taken -= self.count;
            if self.exclusive {
                p.exclusive = false;
            }
        }
        FREED.notify_all();
        if let Ok(file) = std::env::var("HARNESS_TEST_TIMES") {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            let line = format!("{:.1}\t{:.1}\t{name}\n", held.as_secs_f64(), self.waited.as_secs_f64());
            let _ = std::fs::OpenOptions::new().create(true).append(true).open(file).and_then(|mut f| f.write_all(line.as_bytes()));
        }
    }
}

/// Starts the harness with `args` and reads its stderr until a line satisfies `stop`
/// (or the stream ends, or `timeout` passes). Returns the running child and the lines
/// read; the caller decides what to do with it (kill it mid-run, typically).
pub fn spawn_until(args: &[&str], timeout: std::time::Duration, stop: impl Fn(&str) -> bool) -> (std::process::Child, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the harness binary");
    // Lines come through a reader thread, so a harness that prints nothing cannot hold
    // this past `timeout`; the thread keeps reading after we stop listening, so the
    // harness's later lines do not meet a closed pipe.
    let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Ok(text) = rx.recv_timeout(left) else { break };
        let done = stop(&text);
        seen.push(text);
        if done {
            break;
        }
    }
    (child, seen)
}

/// Sends `child` SIGINT (as Ctrl-C) and waits at most `within` for it to end; `what`
/// names it in the failure.
pub fn interrupt_and_wait(child: &mut std::process::Child, within: std::time::Duration, what: &str) -> std::process::ExitStatus {
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(sent.success(), "SIGINT to {what} was not delivered");
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "{what} did not end within {within:?} of SIGINT");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The single run folder a `harness run --reports DIR` created.
pub fn only_run_dir(reports: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> =
        std::fs::read_dir(reports).expect("reports dir").map(|e| e.expect("entry").path()).filter(|p| p.is_dir()).collect();
    assert_eq!(dirs.len(), 1, "expected one run dir in {}: {dirs:?}", reports.display());
    dirs.into_iter().next().unwrap()
}

/// The verdict and detail of expectation `id` in a results.json; `context` explains a miss.
pub fn expectation(results: &serde_json::Value, id: &str, context: impl Fn() -> String) -> (String, String) {
    let e = results["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no expectation {id}: {}", context()));
    (e["verdict"].as_str().unwrap().to_string(), e["detail"].as_str().unwrap().to_string())
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Processes whose command line mentions `needle` (e.g. a run dir): what a run
/// must not leave behind.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// CRC-32 (IEEE), as Python's `zlib.crc32`: the student processor picks the keys it
/// misbehaves on with it, so the tests can say exactly which keys must be named.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// The watchdog fails a hung run with what it printed, instead of waiting forever: a
/// doctor asking a listener that accepts and never answers (as S3 and as Kafka), given
/// a minute per probe, is stopped after 2 s.
#[test]
fn a_hung_harness_fails_its_test_instead_of_holding_the_suite() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let started = Instant::now();
    let hung = std::panic::catch_unwind(|| {
        let creds = [("MINIO_ROOT_USER", "someone".to_string()), ("MINIO_ROOT_PASSWORD", "some-password".to_string())];
        let s3 = format!("http://{addr}");
        harness_within(
            &repo(),
            &["doctor", "--s3", &s3, "--kafka", &addr, "--timeout", "60s", "--no-canary"],
            &creds,
            Duration::from_secs(2),
        )
    });
    let message = hung.err().and_then(|p| p.downcast_ref::<String>().cloned()).expect("a panic naming the hang");
    assert!(message.contains("did not end within 2 s and was stopped"), "{message}");
    assert!(message.contains("doctor:"), "what it printed so far is shown: {message}");
    assert!(started.elapsed() < Duration::from_secs(50), "stopped at the limit, not at the probe's minute");
    drop(silent);
}

#[test]
fn crc32_matches_zlib() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    // python3 -c 'import zlib; print(hex(zlib.crc32("unicode/Müller-00002-日本.jpg".encode())))'
    assert_eq!(crc32("unicode/Müller-00002-日本.jpg".as_bytes()), 0x6596a529);
}

/// Every file below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// True for an expectation that bounds speed (latency or throughput): its verdict
/// judges the machine as much as the pipeline.
pub fn is_speed(id: &str) -> bool {
    id.starts_with("latency.") || id.starts_with("throughput.")
}

/// The functional tests judge correctness: every expectation but the speed ones must
/// pass, and the run exits 0, or 1 with only speed bounds failed (a loaded machine:
/// `scenarios/smoke.yaml` keeps the bounds users run; benchmarks measure speed).
/// Speed verdicts must still be there, measured (pass or fail, never unknown).
pub fn assert_correct(code: i32, results: &serde_json::Value, explain: impl Fn() -> String) {
    let expectations = results["expectations"].as_array().unwrap_or_else(|| panic!("no expectations: {}", explain()));
    assert!(!expectations.is_empty(), "no expectations: {}", explain());
    let mut speed_failed = Vec::new();
    for e in expectations {
        let (id, verdict) = (e["id"].as_str().unwrap_or_default(), e["verdict"].as_str().unwrap_or_default());
        if is_speed(id) {
            assert!(verdict == "pass" || verdict == "fail", "{id} was not measured ({verdict}): {}", explain());
            if verdict == "fail" {
                speed_failed.push(id);
            }
        } else {
            assert_eq!(verdict, "pass", "{id}: {}", explain());
        }
    }
    if speed_failed.is_empty() {
        assert_eq!(code, 0, "{}", explain());
        assert_eq!(results["outcome"], "pass", "{}", explain());
    } else {
        eprintln!("speed bounds failed on this machine (not judged here): {speed_failed:?}");
        assert_eq!(code, 1, "{}", explain());
        assert_eq!(results["outcome"], "fail", "{}", explain());
    }
}
