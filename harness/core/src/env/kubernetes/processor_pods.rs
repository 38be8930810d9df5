//! The builtin processor as a Deployment, watched: its controller restarts it,
//! and this watcher turns what the API shows (pods that appear, pods that go,
//! containers restarted in place) into the same [`ProcessorStatus`] a host
//! supervisor reports, so the checks and fault proofs read one shape.
//!
//! Pods have no pid the harness can see: each pod (and each in-place restart of
//! its container) gets the next number of this run, 1, 2, 3…, and
//! `ProcessorStatus::pid` carries the primary pod's number.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use tokio::sync::watch;

use super::cluster::{exit_text, pod_problem, signal_container, KubeErr, Problems};
use super::manifests::{APP_LABEL, PROCESSOR};
use crate::env::EnvError;
use crate::services::processor::{ProcessorExit, ProcessorStatus};

const POLL: Duration = Duration::from_millis(250);
/// How long the first pod, or a scaled-up one, may take to run.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the pods of a Deployment scaled to 0 may take to go (the contract's
/// 10 s grace, and the API's own pace).
const HOLD_TIMEOUT: Duration = Duration::from_secs(60);

struct Seen {
    number: u32,
    name: String,
    restarts: i32,
    since: Instant,
    gone: bool,
}

#[derive(Default)]
struct Tracker {
    next: u32,
    pods: HashMap<String, Seen>,
    primary: Option<String>,
    /// Scale-ups asked for whose pods have not appeared yet (not restarts).
    pending_replicas: u32,
    /// Pods of a release (a scale back up after a hold) not yet seen: starts,
    /// not restarts, whether or not a primary runs.
    pending_starts: u32,
    stopping: bool,
}

pub(super) struct PodProcessor {
    pods: Api<Pod>,
    deployments: Api<Deployment>,
    tracker: Arc<Mutex<Tracker>>,
    tx: Arc<watch::Sender<ProcessorStatus>>,
    rx: watch::Receiver<ProcessorStatus>,
    task: tokio::task::JoinHandle<()>,
    replicas: i32,
    /// Scaled to 0 by `hold`, until `release`.
    held: bool,
}

impl PodProcessor {
    /// Starts watching the Deployment's pods and waits until the first one runs
    /// (or fails at once when it cannot: image missing, crash loop).
    pub(super) async fn start(pods: Api<Pod>, deployments: Api<Deployment>) -> Result<PodProcessor, EnvError> {
        let (tx, rx) = watch::channel(ProcessorStatus::default());
        let tx = Arc::new(tx);
        let tracker = Arc::new(Mutex::new(Tracker { next: 1, ..Default::default() }));
        let task = tokio::spawn(watch_pods(pods.clone(), tracker.clone(), tx.clone()));
        let p = PodProcessor { pods, deployments, tracker, tx, rx, task, replicas: 1, held: false };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut problems = Problems::default();
        loop {
            if p.rx.borrow().pid.is_some() {
                return Ok(p);
            }
            if let Some(problem) = problems.settled(pod_problem(&p.pods, PROCESSOR).await) {
                p.task.abort();
                return Err(EnvError::Engine(format!("the processor could not start: {problem}")));
            }
            if Instant::now() >= deadline {
                p.task.abort();
                return Err(EnvError::Engine(format!(
                    "no processor pod was running {}s after its Deployment was created",
                    START_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub(super) fn status(&self) -> watch::Receiver<ProcessorStatus> {
        self.rx.clone()
    }

    /// SIGKILL to the primary pod's processor; returns its number. The kubelet
    /// restarts the container in place, which the watcher sees as an exit (code
    /// 137) and a start.
    pub(super) async fn kill_primary(&mut self) -> Result<u32, EnvError> {
        let (name, number) = {
            let t = self.tracker.lock().unwrap_or_else(|e| e.into_inner());
            let uid = t.primary.clone().ok_or_else(|| EnvError::Engine("the processor is not running (between restarts)".into()))?;
            let seen = &t.pods[&uid];
            (seen.name.clone(), seen.number)
        };
        signal_container(&self.pods, &name, PROCESSOR, "KILL").await?;
        Ok(number)
    }

    /// One more replica; returns the new pod's number once it runs.
    pub(super) async fn scale_up(&mut self) -> Result<u32, EnvError> {
        let before = self.tracker.lock().unwrap_or_else(|e| e.into_inner()).next;
        self.tracker.lock().unwrap_or_else(|e| e.into_inner()).pending_replicas += 1;
        self.replicas += 1;
        let patch = serde_json::json!({ "spec": { "replicas": self.replicas } });
        self.deployments
            .patch_scale(PROCESSOR, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(KubeErr::ctx(format!("scaling the processor Deployment to {}", self.replicas)))?;
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            let next = self.tracker.lock().unwrap_or_else(|e| e.into_inner()).next;
            if next > before {
                return Ok(next - 1);
            }
            tokio::time::sleep(POLL).await;
        }
        Err(EnvError::Engine(format!("the added processor replica was not running within {}s", START_TIMEOUT.as_secs())))
    }

    /// Scales the Deployment to 0 and waits for its pods to go (their grace, then
    /// SIGKILL), keeping the watcher: the exits are expected ones, and nothing runs
    /// until [`PodProcessor::release`]. Returns what happened, for the proof.
    pub(super) async fn hold(&mut self) -> Result<String, EnvError> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner()).stopping = true;
        let patch = serde_json::json!({ "spec": { "replicas": 0 } });
        let scaled = self.deployments.patch_scale(PROCESSOR, &PatchParams::default(), &Patch::Merge(&patch)).await;
        if let Err(e) = scaled {
            self.tracker.lock().unwrap_or_else(|e| e.into_inner()).stopping = false;
            return Err(KubeErr::ctx("scaling the processor Deployment to 0")(e));
        }
        self.held = true;
        let lp = ListParams::default().labels(&format!("{APP_LABEL}={PROCESSOR}"));
        let started = Instant::now();
        let gone = loop {
            match self.pods.list(&lp).await {
                Ok(list) if list.items.is_empty() => break true,
                _ if started.elapsed() >= HOLD_TIMEOUT => break false,
                _ => tokio::time::sleep(POLL).await,
            }
        };
        observe(&self.pods, &self.tracker, &self.tx).await;
        self.tracker.lock().unwrap_or_else(|e| e.into_inner()).stopping = false;
        if !gone {
            return Err(EnvError::Processor(format!(
                "the processor's pods were still there {}s after its Deployment was scaled to 0",
                HOLD_TIMEOUT.as_secs()
            )));
        }
        self.tx.send_modify(|s| s.held = true);
        Ok(format!(
            "Deployment {PROCESSOR} scaled from {} to 0; its pods gone after {:.1} s",
            self.replicas,
            started.elapsed().as_secs_f64()
        ))
    }

    /// Scales a held Deployment back to its replicas and waits for its pods to run
    /// (starts, not restarts: nothing crashed).
    pub(super) async fn release(&mut self) -> Result<(), EnvError> {
        if !self.held {
            return Ok(());
        }
        let before = {
            let mut t = self.tracker.lock().unwrap_or_else(|e| e.into_inner());
            t.pending_starts += self.replicas.max(0) as u32;
            t.next
        };
        let patch = serde_json::json!({ "spec": { "replicas": self.replicas } });
        self.deployments
            .patch_scale(PROCESSOR, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(KubeErr::ctx(format!("scaling the processor Deployment back to {}", self.replicas)))?;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut problems = Problems::default();
        loop {
            let next = self.tracker.lock().unwrap_or_else(|e| e.into_inner()).next;
            if next >= before + self.replicas.max(0) as u32 && self.rx.borrow().pid.is_some() {
                self.tx.send_modify(|s| s.held = false);
                self.held = false;
                return Ok(());
            }
            if let Some(problem) = problems.settled(pod_problem(&self.pods, PROCESSOR).await) {
                return Err(EnvError::Processor(format!("the processor could not start again: {problem}")));
            }
            if Instant::now() >= deadline {
                return Err(EnvError::Processor(format!(
                    "the processor's pods were not running {}s after its Deployment was scaled back to {}",
                    START_TIMEOUT.as_secs(),
                    self.replicas
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Scales the Deployment to 0 and waits for its pods to go (their grace, then
    /// SIGKILL); the exits are expected. Harmless twice.
    pub(super) async fn stop(&mut self) -> ProcessorStatus {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner()).stopping = true;
        let patch = serde_json::json!({ "spec": { "replicas": 0 } });
        if let Err(e) = self.deployments.patch_scale(PROCESSOR, &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::warn!("scaling the processor Deployment to 0: {e}");
        }
        let lp = ListParams::default().labels(&format!("{APP_LABEL}={PROCESSOR}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.pods.list(&lp).await {
                Ok(list) if list.items.is_empty() => break,
                _ => tokio::time::sleep(POLL).await,
            }
        }
        // One last look, so every exit is recorded, then no more.
        observe(&self.pods, &self.tracker, &self.tx).await;
        self.task.abort();
        self.tx.send_modify(|s| {
            s.stopped = true;
            s.pid = None;
        });
        self.rx.borrow().clone()
    }
}

impl Drop for PodProcessor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_pods(pods: Api<Pod>, tracker: Arc<Mutex<Tracker>>, tx: Arc<watch::Sender<ProcessorStatus>>) {
    loop {
        observe(&pods, &tracker, &tx).await;
        tokio::time::sleep(POLL).await;
    }
}

/// One look at the pods: new running ones are starts, vanished or deleting ones
/// and in-place container restarts are exits.
async fn observe(pods: &Api<Pod>, tracker: &Mutex<Tracker>, tx: &watch::Sender<ProcessorStatus>) {
    let lp = ListParams::default().labels(&format!("{APP_LABEL}={PROCESSOR}"));
    let Ok(list) = pods.list(&lp).await else { return };
    let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
    let mut present = HashSet::new();
    let mut changes: Vec<Change> = Vec::new();
    for pod in &list.items {
        let Some(uid) = pod.metadata.uid.clone() else { continue };
        present.insert(uid.clone());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let container = super::cluster::service_container(pod, PROCESSOR);
        let running = container.and_then(|c| c.state.as_ref()).is_some_and(|s| s.running.is_some());
        let restarts = container.map_or(0, |c| c.restart_count);
        let last_exit = container.and_then(|c| c.last_state.as_ref()).and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code);
        match t.pods.get(&uid).map(|s| (s.gone, s.restarts)) {
            None if running && !deleting => changes.push(Change::Started { uid, name, restarts }),
            Some((false, _)) if deleting => changes.push(Change::Gone { uid, exit: None }),
            Some((false, seen)) if restarts > seen && running => changes.push(Change::Restarted { uid, restarts, exit: last_exit }),
            _ => {}
        }
    }
    for (uid, seen) in &t.pods {
        if !seen.gone && !present.contains(uid) {
            changes.push(Change::Gone { uid: uid.clone(), exit: None });
        }
    }
    for change in changes {
        apply(&mut t, change, tx);
    }
}

enum Change {
    Started { uid: String, name: String, restarts: i32 },
    Restarted { uid: String, restarts: i32, exit: Option<i32> },
    Gone { uid: String, exit: Option<i32> },
}

fn apply(t: &mut Tracker, change: Change, tx: &watch::Sender<ProcessorStatus>) {
    match change {
        Change::Started { uid, name, restarts } => {
            let number = t.next;
            t.next += 1;
            let first = number == 1;
            let replica = !first && t.pending_replicas > 0 && t.primary.is_some();
            if replica {
                t.pending_replicas -= 1;
            }
            let released = !first && !replica && t.pending_starts > 0;
            if released {
                t.pending_starts -= 1;
            }
            if t.primary.is_none() {
                t.primary = Some(uid.clone());
            }
            let primary = t.primary.as_deref() == Some(uid.as_str());
            t.pods.insert(uid, Seen { number, name, restarts, since: Instant::now(), gone: false });
            tx.send_modify(|s| {
                s.starts += 1;
                if !first && !replica && !released {
                    s.restarts += 1;
                }
                if primary {
                    s.pid = Some(number);
                }
                s.last_spawn_error = None;
            });
        }
        Change::Restarted { uid, restarts, exit } => {
            let number = t.next;
            t.next += 1;
            let primary = t.primary.as_deref() == Some(uid.as_str());
            let expected = t.stopping;
            let Some(seen) = t.pods.get_mut(&uid) else { return };
            let record = exit_record(seen, exit, false, expected);
            seen.restarts = restarts;
            seen.number = number;
            seen.since = Instant::now();
            tx.send_modify(|s| {
                s.exits.push(record);
                s.starts += 1;
                s.restarts += 1;
                if primary {
                    s.pid = Some(number);
                }
            });
        }
        Change::Gone { uid, exit } => {
            let expected = t.stopping;
            let Some(seen) = t.pods.get_mut(&uid) else { return };
            seen.gone = true;
            let record = exit_record(seen, exit, true, expected);
            if t.primary.as_deref() == Some(uid.as_str()) {
                t.primary = None;
                tx.send_modify(|s| s.pid = None);
            }
            tx.send_modify(|s| s.exits.push(record));
        }
    }
}

/// `deleted`: the pod went away (scaled down, deleted); else its container ended
/// and the kubelet started it again in place.
fn exit_record(seen: &Seen, exit: Option<i32>, deleted: bool, expected: bool) -> ProcessorExit {
    let (status, code, signal) = match (deleted, exit) {
        (true, _) => (format!("pod {} deleted", seen.name), None, None),
        (false, Some(c)) if c > 128 => (format!("container of pod {} ended with {}", seen.name, exit_text(c)), None, Some(c - 128)),
        (false, Some(c)) => (format!("container of pod {} ended with exit code {c}", seen.name), Some(c), None),
        (false, None) => (format!("container of pod {} restarted", seen.name), None, None),
    };
    ProcessorExit { at: Instant::now(), wall_time: SystemTime::now(), uptime: seen.since.elapsed(), status, code, signal, expected }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(uid: &str) -> Change {
        Change::Started { uid: uid.into(), name: format!("processor-{uid}"), restarts: 0 }
    }

    #[test]
    fn the_pods_of_a_release_after_a_hold_are_starts_not_restarts() {
        let (tx, rx) = watch::channel(ProcessorStatus::default());
        let mut t = Tracker { next: 1, ..Default::default() };
        apply(&mut t, started("a"), &tx);
        t.stopping = true;
        apply(&mut t, Change::Gone { uid: "a".into(), exit: None }, &tx);
        t.stopping = false;
        assert!(rx.borrow().exits[0].expected, "a hold's exit is one the harness asked for");
        t.pending_starts = 1;
        apply(&mut t, started("b"), &tx);
        assert_eq!((rx.borrow().starts, rx.borrow().restarts, rx.borrow().pid), (2, 0, Some(2)));
        apply(&mut t, Change::Gone { uid: "b".into(), exit: None }, &tx);
        apply(&mut t, started("c"), &tx);
        assert_eq!(rx.borrow().restarts, 1, "a pod replacing one that went on its own is a restart");
    }

    #[test]
    fn a_killed_container_restarted_in_place_is_an_exit_and_a_restart() {
        let (tx, rx) = watch::channel(ProcessorStatus::default());
        let mut t = Tracker { next: 1, ..Default::default() };
        apply(&mut t, started("a"), &tx);
        assert_eq!((rx.borrow().starts, rx.borrow().restarts, rx.borrow().pid), (1, 0, Some(1)));
        apply(&mut t, Change::Restarted { uid: "a".into(), restarts: 1, exit: Some(137) }, &tx);
        let s = rx.borrow().clone();
        assert_eq!((s.starts, s.restarts, s.pid), (2, 1, Some(2)), "a new number for the new container");
        assert_eq!(s.exits[0].signal, Some(9));
        assert!(s.exits[0].status.ends_with("exit code 137 (SIGKILL)"), "{}", s.exits[0].status);
    }

    #[test]
    fn a_deleted_pod_and_its_replacement_are_an_exit_and_a_restart() {
        let (tx, rx) = watch::channel(ProcessorStatus::default());
        let mut t = Tracker { next: 1, ..Default::default() };
        apply(&mut t, started("a"), &tx);
        apply(&mut t, Change::Gone { uid: "a".into(), exit: None }, &tx);
        assert_eq!(rx.borrow().pid, None);
        assert_eq!(rx.borrow().exits[0].status, "pod processor-a deleted");
        apply(&mut t, started("b"), &tx);
        assert_eq!((rx.borrow().starts, rx.borrow().restarts, rx.borrow().pid), (2, 1, Some(2)));
    }

    #[test]
    fn a_scaled_up_replica_is_not_a_restart_and_an_in_place_restart_is() {
        let (tx, rx) = watch::channel(ProcessorStatus::default());
        let mut t = Tracker { next: 1, ..Default::default() };
        apply(&mut t, started("a"), &tx);
        t.pending_replicas = 1;
        apply(&mut t, started("b"), &tx);
        assert_eq!((rx.borrow().starts, rx.borrow().restarts, rx.borrow().pid), (2, 0, Some(1)), "the primary stays pod 1");
        apply(&mut t, Change::Restarted { uid: "a".into(), restarts: 1, exit: Some(1) }, &tx);
        let s = rx.borrow().clone();
        assert_eq!((s.starts, s.restarts, s.pid), (3, 1, Some(3)), "pod 1's container, restarted, is number 3");
        assert_eq!(s.exits[0].code, Some(1));
    }
}
