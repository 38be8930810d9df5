//! Whose namespace is whose. A run labels its namespace with a random token and keeps
//! a lease file of that token on this machine (`<cache>/k8s-owners/<token>`, holding
//! its pid, the pid's start time and the identity of the cluster: its API server's
//! URL and CA, hashed). The reaper of killed runs deletes a namespace
//! only when this machine holds its lease and the run that wrote it is gone: a run on
//! another machine sharing the cluster (even one with the same hostname, as CI runners
//! often have) holds no lease here, so its live namespace is never touched. A lease
//! whose run ended and whose namespace is gone from its cluster is pruned when a run
//! on that cluster lists the namespaces ([`prune`]); a lease of another cluster is
//! left for a run there.

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
pub fn claim(cluster: &str) -> Option<String> {
    claim_in(&leases()?, cluster)
}

/// Removes the leases taken on `cluster` whose run ended and whose token no
/// namespace of the cluster carries (`owned`: the tokens of every harness
/// namespace there, read from a complete list). Returns how many.
pub fn prune(cluster: &str, owned: &std::collections::HashSet<String>) -> usize {
    leases().map_or(0, |dir| prune_in(&dir, cluster, owned))
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

fn claim_in(dir: &Path, cluster: &str) -> Option<String> {
    let token = crate::services::token::hex_token(16).ok()?;
    std::fs::create_dir_all(dir).ok()?;
    let pid = std::process::id();
    let start = crate::env::containers::process_start_ticks(pid).map_or_else(|| "-".to_string(), |s| s.to_string());
    std::fs::write(dir.join(&token), format!("{pid} {start} {cluster}\n")).ok()?;
    Some(token)
}

/// A lease: the run's pid and start time (as the `owner_alive` labels), and its cluster.
struct Lease {
    run: HashMap<String, String>,
    cluster: Option<String>,
}

fn read_lease(dir: &Path, token: &str) -> Option<Lease> {
    let text = std::fs::read_to_string(dir.join(token)).ok()?;
    let mut fields = text.split_whitespace();
    let run = [(LABEL_PID, fields.next()), (LABEL_PID_START, fields.next().filter(|s| *s != "-"))]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?.to_string())))
        .collect();
    Some(Lease { run, cluster: fields.next().map(str::to_string) })
}

fn prune_in(dir: &Path, cluster: &str, owned: &std::collections::HashSet<String>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut pruned = 0;
    for entry in entries.flatten() {
        let Some(token) = entry.file_name().to_str().map(str::to_string).filter(|t| valid(t)) else { continue };
        if owned.contains(&token) {
            continue;
        }
        let Some(lease) = read_lease(dir, &token) else { continue };
        if lease.cluster.as_deref() == Some(cluster) && !crate::env::containers::owner_alive(&lease.run) {
            release_in(dir, &token);
            pruned += 1;
        }
    }
    pruned
}

fn release_in(dir: &Path, token: &str) {
    if valid(token) {
        let _ = std::fs::remove_file(dir.join(token));
    }
}

fn abandoned_in(dir: &Path, labels: &HashMap<String, String>) -> bool {
    let Some(token) = labels.get(LABEL_OWNER).filter(|t| valid(t)) else { return false };
    let Some(lease) = read_lease(dir, token) else { return false };
    !crate::env::containers::owner_alive(&lease.run)
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
        let mine = claim_in(dir, "cluster-a").expect("a lease");
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

    /// Leases are pruned only on the cluster they were taken on, only when their
    /// run ended, and only when no namespace carries their token (that one is the
    /// reaper's, which releases the lease when it deletes the namespace).
    #[test]
    fn only_leases_of_this_cluster_whose_run_ended_and_namespace_is_gone_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let lease = |token: &str, text: &str| std::fs::write(dir.join(token), text).unwrap();
        let (gone, other_cluster, still_there, old_format) = ("a1".repeat(16), "b2".repeat(16), "c3".repeat(16), "d4".repeat(16));
        // A dead run's (a pid above the kernel's limit cannot exist).
        lease(&gone, "4194305 1 cluster-a\n");
        lease(&other_cluster, "4194305 1 cluster-b\n");
        lease(&still_there, "4194305 1 cluster-a\n");
        lease(&old_format, "4194305 1\n");
        let alive = claim_in(dir, "cluster-a").expect("a lease");
        let owned = std::collections::HashSet::from([still_there.clone()]);
        assert_eq!(prune_in(dir, "cluster-a", &owned), 1);
        let left: std::collections::BTreeSet<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        let expected: std::collections::BTreeSet<String> = [other_cluster, still_there, old_format, alive].into_iter().collect();
        assert_eq!(left, expected, "only the dead run's lease of cluster-a without a namespace went");
        assert!(!dir.join(&gone).exists());
    }
}
