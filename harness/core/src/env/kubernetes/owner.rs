//! Whose namespace is whose. A run labels its namespace with a random token and keeps
//! a lease file of that token on this machine (`<cache>/k8s-owners/<token>`, holding
//! its pid and the pid's start time). The reaper of killed runs deletes a namespace
//! only when this machine holds its lease and the run that wrote it is gone: a run on
//! another machine sharing the cluster (even one with the same hostname, as CI runners
//! often have) holds no lease here, so its live namespace is never touched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::engine::{LABEL_PID, LABEL_PID_START};

/// The namespace label holding the owning run's token.
pub const LABEL_OWNER: &str = "io.harness.owner";

fn leases() -> Option<PathBuf> {
    let dir = crate::services::provision::cache_dir_from(&|k| std::env::var_os(k)).ok()?.join("k8s-owners");
    Some(dir)
}

/// A new token, with this process's lease on it written. `None`: no lease could be
/// written (no cache dir): the namespace is then never reaped, only deleted by its run.
pub fn claim() -> Option<String> {
    claim_in(&leases()?)
}

/// The run removed its namespace itself: its lease goes too.
pub fn release(token: &str) {
    if let Some(dir) = leases() {
        release_in(&dir, token);
    }
}

/// Whether the namespace with these labels is this machine's and its run is gone.
pub fn is_ours_and_abandoned(labels: &HashMap<String, String>) -> bool {
    leases().is_some_and(|dir| abandoned_in(&dir, labels))
}

fn claim_in(dir: &Path) -> Option<String> {
    let token = crate::services::token::hex_token(16).ok()?;
    std::fs::create_dir_all(dir).ok()?;
    let pid = std::process::id();
    let start = crate::env::containers::process_start_ticks(pid).map(|s| s.to_string()).unwrap_or_default();
    std::fs::write(dir.join(&token), format!("{pid} {start}\n")).ok()?;
    Some(token)
}

fn release_in(dir: &Path, token: &str) {
    if valid(token) {
        let _ = std::fs::remove_file(dir.join(token));
    }
}

fn abandoned_in(dir: &Path, labels: &HashMap<String, String>) -> bool {
    let Some(token) = labels.get(LABEL_OWNER).filter(|t| valid(t)) else { return false };
    let Ok(lease) = std::fs::read_to_string(dir.join(token)) else { return false };
    let mut fields = lease.split_whitespace();
    let run: HashMap<String, String> = [(LABEL_PID, fields.next()), (LABEL_PID_START, fields.next())]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?.to_string())))
        .collect();
    !crate::env::containers::owner_alive(&run)
}

/// A token as [`claim`] makes them: a label value is never a path.
fn valid(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lease_held_here_by_a_dead_run_makes_a_namespace_reapable() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let mine = claim_in(dir).expect("a lease");
        let labels = |t: &str| HashMap::from([(LABEL_OWNER.to_string(), t.to_string())]);
        assert!(!abandoned_in(dir, &labels(&mine)), "this process is alive");
        // Another machine's run (the same hostname and pid would not matter): no lease here.
        assert!(!abandoned_in(dir, &labels(&"ab".repeat(16))));
        // A path in a label is no token.
        assert!(!abandoned_in(dir, &labels("../../etc/passwd")));
        // A dead run's lease (a pid above the kernel's limit: it cannot exist).
        let dead = "cd".repeat(16);
        std::fs::write(dir.join(&dead), "4194305 1\n").unwrap();
        assert!(abandoned_in(dir, &labels(&dead)));
        release_in(dir, &mine);
        assert!(!abandoned_in(dir, &labels(&mine)), "released: not ours to judge any more");
    }
}
