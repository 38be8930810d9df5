//! Running the binary and reading what it wrote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the harness binary");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// End-to-end runs share a 2-core machine; one at a time keeps their latencies honest.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let deadline = std::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        let text = std::mem::take(&mut line).trim_end_matches('\n').to_string();
        let done = stop(&text);
        seen.push(text);
        if done || std::time::Instant::now() > deadline {
            break;
        }
    }
    // Keep reading, so the harness's later lines do not meet a closed pipe.
    let mut rest = stderr.lines();
    std::thread::spawn(move || while let Some(Ok(_)) = rest.next() {});
    (child, seen)
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
