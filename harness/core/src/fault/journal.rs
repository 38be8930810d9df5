//! The fault journal: each fault is written to `<run dir>/fault-journal.jsonl`
//! before it is applied, with the processes it may leave in a bad state. A run
//! that ends normally removes its journal; a journal whose harness is gone belongs
//! to a killed run, and the next run heals what it left before starting.
//!
//! Local children die with the harness (PR_SET_PDEATHSIG), so usually only the
//! data dirs are left; the journal still resumes and kills any process that
//! survived, after checking its command line still names the killed run's dir (a
//! recycled pid is never touched).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const JOURNAL_FILE: &str = "fault-journal.jsonl";
/// What a healed journal is renamed to (kept as a record).
pub const HEALED_FILE: &str = "fault-journal.healed.jsonl";

#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub harness_pid: u32,
    pub index: u32,
    pub kind: String,
    /// Pids of the run's services when the fault was applied.
    pub pids: Vec<u32>,
}

/// Appends `entry` and flushes it to disk before the fault is applied.
pub fn record(run_dir: &Path, entry: &Entry) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(run_dir.join(JOURNAL_FILE))?;
    writeln!(f, "{}", serde_json::to_string(entry).map_err(std::io::Error::other)?)?;
    f.sync_all()
}

/// The run ended normally: nothing to heal later.
pub fn close(run_dir: &Path) {
    let _ = std::fs::remove_file(run_dir.join(JOURNAL_FILE));
}

/// What was healed in one killed run's folder.
#[derive(Debug, PartialEq, Eq)]
pub struct Healed {
    pub run_dir: PathBuf,
    pub processes_killed: usize,
    pub data_dirs_removed: usize,
}

/// Heals every killed run's leftovers below `reports_root`.
pub fn heal_leftovers(reports_root: &Path) -> Vec<Healed> {
    let Ok(dirs) = std::fs::read_dir(reports_root) else { return Vec::new() };
    let mut healed = Vec::new();
    for dir in dirs.flatten().map(|e| e.path()) {
        let journal = dir.join(JOURNAL_FILE);
        let Ok(text) = std::fs::read_to_string(&journal) else { continue };
        let entries: Vec<Entry> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        if entries.iter().any(|e| alive(e.harness_pid) && e.harness_pid != std::process::id()) {
            continue; // that run is still going
        }
        let needle = dir.display().to_string();
        let mut killed = 0;
        for pid in entries.iter().flat_map(|e| e.pids.iter().copied()) {
            if cmdline(pid).is_some_and(|c| c.contains(&needle)) {
                // SAFETY: kill has no memory-safety preconditions; the pid's command
                // line names the killed run's dir, so it is that run's process.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGCONT);
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
                killed += 1;
            }
        }
        let mut removed = 0;
        for data in ["kafka", "minio"] {
            if std::fs::remove_dir_all(dir.join(data)).is_ok() {
                removed += 1;
            }
        }
        let _ = std::fs::rename(&journal, dir.join(HEALED_FILE));
        healed.push(Healed { run_dir: dir, processes_killed: killed, data_dirs_removed: removed });
    }
    healed
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn cmdline(pid: u32) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/cmdline")).ok().map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_runs_journal_is_healed_a_closed_one_is_not() {
        let root = tempfile::tempdir().unwrap();
        let killed = root.path().join("killed-run");
        let clean = root.path().join("clean-run");
        for d in [&killed, &clean] {
            std::fs::create_dir_all(d.join("kafka/data")).unwrap();
            std::fs::create_dir_all(d.join("minio")).unwrap();
        }
        // A survivor of the killed run: its command line names the run dir, as
        // Kafka's and MinIO's do. One process that never execs, so its command
        // line cannot change under the test (an `sh -c "exec sleep"` lost the dir
        // whenever the exec won the race against SIGSTOP).
        let marker = killed.join("kafka/server.log");
        std::fs::write(&marker, "").unwrap();
        let mut survivor = std::process::Command::new("tail").arg("-f").arg(&marker).spawn().unwrap();
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(survivor.id() as libc::pid_t, libc::SIGSTOP) };
        let dead_pid = 0x7fff_fff0; // no such process
        let entry = |pids| Entry { harness_pid: dead_pid, index: 0, kind: "broker_pause".into(), pids };
        record(&killed, &entry(vec![survivor.id(), 1])).unwrap();
        record(&clean, &entry(vec![])).unwrap();
        close(&clean);

        let healed = heal_leftovers(root.path());
        assert_eq!(healed, [Healed { run_dir: killed.clone(), processes_killed: 1, data_dirs_removed: 2 }]);
        assert!(survivor.wait().unwrap().code().is_none(), "the survivor was killed");
        assert!(!killed.join("kafka").exists() && killed.join(HEALED_FILE).exists());
        assert!(clean.join("kafka").exists(), "a closed journal's run is left alone");
        assert!(heal_leftovers(root.path()).is_empty(), "healing twice is harmless");
    }
}
