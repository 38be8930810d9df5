//! A fault as a value: [`inject`] applies it and returns the guard that heals it.

use std::path::{Path, PathBuf};

use harness_model::history::WIPED_KEYS_MAX;
use harness_model::scenario::{Action, Brokers, FaultKind, FaultSpec, Op, Service};

use super::events::{self, PublishedRecords};
use super::links::link_fault;
use super::FaultError;
use crate::env::Environment;
use crate::netfault::LinkControl;

/// What an applied fault changed, so that healing knows what to undo.
#[derive(Debug)]
enum Applied {
    /// The service ended (SIGTERM or SIGKILL, of a process or a container); heal
    /// starts it again.
    Down(Service),
    /// The service is frozen; heal resumes it. `pid` is set when the freeze is a
    /// SIGSTOP (local), which a dropped guard can undo without awaiting.
    Paused { service: Service, pid: Option<u32> },
    /// The service is cut off the run's network; heal connects it again.
    Partitioned(Service),
    /// The links' fault proxies partition, delay, limit or reset their bytes; heal
    /// clears them (synchronously, so a dropped guard heals too).
    Link(Vec<LinkControl>),
    /// One broker of a cluster ended (`leader_kill`); heal starts it again.
    BrokerDown(u32),
    /// The processor was SIGKILLed; its supervisor restarts it, nothing to undo.
    ProcessorKilled { pid: u32 },
    /// A second processor replica joined the group; it stays (a scale-up is not
    /// undone), and stops with the processor at the end of the run.
    ReplicaJoined { pid: u32 },
    /// Records published to the events topic; they stay there, nothing to undo.
    Published(PublishedRecords),
    /// Every processor replica held stopped and the group's offsets moved back;
    /// heal starts the replicas again. The records are those the group had
    /// committed, to be committed past again.
    Rewound(PublishedRecords),
}

/// An applied fault. Call [`Injected::heal`]; healing twice is harmless. Dropping
/// an unhealed guard (Ctrl-C, an error) resumes a SIGSTOPped broker and clears a
/// link's proxy at once; a service that was stopped, frozen in a container or partitioned stays so, and
/// the environment's teardown removes it.
#[derive(Debug)]
pub struct Injected {
    index: u32,
    kind: FaultKind,
    applied: Applied,
    healed: bool,
    /// How the process or container exited, when the fault ended one (proof).
    pub exit_status: Option<String>,
}

/// Whether the running environment can take `spec` as its kind's description
/// says: the operations, the number of brokers, a queue dir. Validation checks
/// the same against the scenario; this holds the running environment to it, so
/// a fault is never applied where the description says it cannot be.
pub fn admissible(env: &dyn Environment, spec: &FaultSpec) -> Result<(), String> {
    let d = spec.kind.describe();
    let name = env.kind().name();
    if d.ops(spec.target, env.kind()).is_none() {
        return Err(format!("{} on {} cannot be injected by the {name} environment", d.key, spec.target));
    }
    let brokers = env.kafka_node_ids().len();
    match d.brokers {
        Brokers::One if brokers != 1 => return Err(format!("{} acts on a single broker; this cluster has {brokers}", d.key)),
        Brokers::Cluster if brokers < 2 => return Err(format!("{} needs a Kafka cluster; this one has {brokers} broker", d.key)),
        _ => {}
    }
    if d.needs_queue_dir && !env.has_minio_queue_dir() {
        return Err(format!("{} needs a MinIO queue dir; this environment's MinIO has none", d.key));
    }
    Ok(())
}

/// Applies `spec` to the environment: the action its kind's description names,
/// through the operation the environment has for it.
pub async fn inject(env: &mut dyn Environment, spec: &FaultSpec, processor_group: &str) -> Result<Injected, FaultError> {
    let kind = spec.kind;
    let env_err = |what: &'static str| move |source| FaultError::Env { index: spec.index, kind: kind.key(), what, source };
    let other = |what: String| FaultError::Other { index: spec.index, kind: kind.key(), what };
    admissible(env, spec).map_err(|why| other(format!("{why} (validation should have rejected it)")))?;
    let d = kind.describe();
    let (applied, exit_status) = match d.action {
        Action::Stop { service, hard } => {
            let what = match (service, hard) {
                (Service::Kafka, false) => "stopping the broker",
                (Service::Kafka, true) => "killing the broker",
                (Service::Minio, false) => "stopping MinIO",
                (Service::Minio, true) => "killing MinIO",
                (Service::Processor, _) => "stopping the processor",
            };
            let st = env.stop_service(service, hard).await.map_err(env_err(what))?;
            (Applied::Down(service), st)
        }
        Action::StopAndWipeQueue => {
            let st = env.stop_service(Service::Kafka, true).await.map_err(env_err("killing the broker"))?;
            (Applied::Down(Service::Kafka), st)
        }
        Action::Pause(service) => {
            let what = if service == Service::Kafka { "pausing the broker" } else { "pausing the service" };
            let pid = env.pause_service(service).await.map_err(env_err(what))?;
            (Applied::Paused { service, pid }, None)
        }
        Action::KillLeader => {
            let (bootstrap, topic) = {
                let ep = env.endpoints();
                (ep.kafka_bootstrap.clone(), ep.events_topic.clone())
            };
            let node = super::cluster::leader_of(&bootstrap, &topic).await.map_err(|e| other(format!("finding the leader: {e}")))?;
            let st = env.stop_broker(node, true).await.map_err(env_err("killing the partition leader"))?;
            (Applied::BrokerDown(node), Some(format!("broker {node} (leader of {topic}/0) {}", st.unwrap_or_default())))
        }
        Action::RollingRestart => {
            return Err(other("a rolling restart is a sequence of its own (`cluster::rolling_restart`), not one injection".into()))
        }
        Action::KillProcessor => {
            let pid = env.kill_processor().await.map_err(env_err("killing the processor"))?;
            (Applied::ProcessorKilled { pid }, None)
        }
        Action::AddReplica => {
            let pid = env.add_processor_replica().await.map_err(env_err("starting a second processor replica"))?;
            (Applied::ReplicaJoined { pid }, None)
        }
        Action::Publish(what) => {
            let ep = env.endpoints().clone();
            let published = events::publish(&ep, spec, what).await.map_err(other)?;
            (Applied::Published(published), None)
        }
        Action::Rewind => {
            let stopped = match env.stop_service(Service::Processor, false).await {
                Ok(s) => s,
                Err(e) => {
                    // Replicas held before the one that failed run again (a release of
                    // a running one changes nothing).
                    let _ = env.start_service(Service::Processor).await;
                    return Err(env_err("stopping the processor")(e));
                }
            };
            let ep = env.endpoints().clone();
            match events::rewind(&ep, processor_group, spec.events.count).await {
                Ok(rewound) => (Applied::Rewound(rewound), stopped),
                Err(e) => {
                    // Nothing was moved: the processor goes on from where it was.
                    let again = match env.start_service(Service::Processor).await {
                        Ok(_) => "the processor was started again".to_string(),
                        Err(start) => format!("and starting the processor again failed: {start}"),
                    };
                    return Err(other(format!("{e}; {again}")));
                }
            }
        }
        Action::Partition | Action::Link(_) => match d.ops(spec.target, env.kind()).as_deref() {
            Some([Op::LinkProxy]) => {
                let controls = env.link_controls(spec.target).map_err(env_err("finding the link's fault proxy"))?;
                let fault = link_fault(spec).ok_or_else(|| other("not a fault on links".into()))?;
                for c in &controls {
                    c.set(fault);
                }
                (Applied::Link(controls), None)
            }
            Some([Op::Disconnect(service)]) => {
                env.disconnect(*service).await.map_err(env_err("disconnecting the service from the network"))?;
                (Applied::Partitioned(*service), None)
            }
            _ => {
                return Err(other(format!(
                    "{} on {} cannot be injected by the {} environment (validation should have rejected it)",
                    kind.key(),
                    spec.target,
                    env.kind().name()
                )))
            }
        },
    };
    Ok(Injected { index: spec.index, kind, applied, healed: false, exit_status })
}

impl Injected {
    /// Undoes the fault: starts a stopped service again (on its ports and data),
    /// resumes a paused one, reconnects a partitioned one. Idempotent.
    pub async fn heal(&mut self, env: &mut dyn Environment) -> Result<(), FaultError> {
        if self.healed {
            return Ok(());
        }
        let err = |what: &'static str| {
            let (index, kind) = (self.index, self.kind.key());
            move |source| FaultError::Env { index, kind, what, source }
        };
        match &self.applied {
            &Applied::Down(service) => {
                env.start_service(service).await.map_err(err("starting the service again"))?;
            }
            Applied::Rewound(_) => {
                env.start_service(Service::Processor).await.map_err(err("starting the processor again"))?;
            }
            &Applied::BrokerDown(node) => {
                env.start_broker(node).await.map_err(err("starting the broker again"))?;
            }
            &Applied::Paused { service, .. } => {
                env.resume_service(service).await.map_err(err("resuming the service"))?;
            }
            &Applied::Partitioned(service) => {
                env.reconnect(service).await.map_err(err("reconnecting the service to the network"))?;
            }
            Applied::Link(controls) => controls.iter().for_each(LinkControl::clear),
            Applied::ProcessorKilled { .. } | Applied::ReplicaJoined { .. } | Applied::Published(_) => {}
        }
        self.healed = true;
        Ok(())
    }

    pub fn is_healed(&self) -> bool {
        self.healed
    }

    /// The broker a cluster fault ended, where there is one.
    pub fn broker(&self) -> Option<u32> {
        match self.applied {
            Applied::BrokerDown(node) => Some(node),
            _ => None,
        }
    }

    /// What an event fault published, or what a replay rewound: the records the
    /// processor's group must commit past.
    pub fn records(&self) -> Option<&PublishedRecords> {
        match &self.applied {
            Applied::Published(p) | Applied::Rewound(p) => Some(p),
            _ => None,
        }
    }

    /// The pid the fault was applied to, where there is one.
    pub fn pid(&self) -> Option<u32> {
        match self.applied {
            Applied::Paused { pid, .. } => pid,
            Applied::ProcessorKilled { pid } | Applied::ReplicaJoined { pid } => Some(pid),
            _ => None,
        }
    }
}

impl Drop for Injected {
    fn drop(&mut self) {
        if self.healed {
            return;
        }
        match &self.applied {
            Applied::Paused { pid: Some(pid), .. } => {
                // SAFETY: kill has no memory-safety preconditions. The pid is still
                // ours: a stopped child cannot exit, so it cannot have been reaped.
                unsafe { libc::kill(*pid as libc::pid_t, libc::SIGCONT) };
                self.healed = true;
            }
            Applied::Link(controls) => {
                controls.iter().for_each(LinkControl::clear);
                self.healed = true;
            }
            _ => {}
        }
    }
}

/// What a queue_dir wipe removed: how many queued events, and the source objects the
/// first [`WIPED_KEYS_MAX`] of them were for.
#[derive(Debug, Default)]
pub struct Wiped {
    pub events: usize,
    pub keys: Vec<String>,
}

/// How much of each queued event is read for its key: MinIO's record has the object's
/// key (after the identity, request and bucket, ~1 KiB) before its user metadata, so
/// the key is within this however long the metadata is.
pub const QUEUED_EVENT_HEAD: usize = 8192;
/// How deep below the queue dir files are looked for (MinIO uses one folder a target).
pub const QUEUE_DIR_DEPTH: usize = 3;

/// Removes every file below `dir` (the folders stay: MinIO keeps using them) and
/// says which source objects the removed events were for. The queue_dir loss: MinIO
/// treats a queued event whose file is gone as sent. A file that appears while this
/// runs is left (it is delivered later, not lost), so the count is exactly what was
/// removed.
pub fn wipe_dir_contents(dir: &Path) -> std::io::Result<Wiped> {
    let mut files = Vec::new();
    list_files(dir, QUEUE_DIR_DEPTH, &mut files)?;
    let mut wiped = Wiped::default();
    for path in files {
        if wiped.keys.len() < WIPED_KEYS_MAX {
            let mut head = Vec::with_capacity(QUEUED_EVENT_HEAD);
            if let Ok(f) = std::fs::File::open(&path) {
                let _ = std::io::Read::read_to_end(&mut std::io::Read::take(f, QUEUED_EVENT_HEAD as u64), &mut head);
            }
            wiped.keys.extend(queued_event_keys(&String::from_utf8_lossy(&head)).into_iter().take(1));
        }
        match std::fs::remove_file(&path) {
            Ok(()) => wiped.events += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // sent meanwhile: not lost
            Err(e) => return Err(e),
        }
    }
    Ok(wiped)
}

fn list_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() && depth > 0 {
            list_files(&entry.path(), depth - 1, out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// The source objects named by MinIO's queued events in `text` (each a JSON event
/// record as MinIO queues it, possibly cut short): each record's
/// `"object":{"key":"…"` gives the key, which MinIO writes form-encoded (so with no
/// quote in it), in order.
pub fn queued_event_keys(text: &str) -> Vec<String> {
    const FIELD: &str = "\"object\":{\"key\":\"";
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(FIELD) {
        rest = &rest[at + FIELD.len()..];
        let Some(end) = rest.find('"') else { break };
        keys.push(harness_model::keys::decode_event_key(&rest[..end]));
        rest = &rest[end..];
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat.rsplit(") ").next().unwrap().chars().next().unwrap()
    }

    /// The guard heals a pause on drop (Ctrl-C, an error), and explicitly; twice is harmless.
    #[tokio::test]
    async fn a_paused_process_is_resumed_when_the_guard_drops() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let pause = || {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while state(pid) != 'T' {
                assert!(std::time::Instant::now() < deadline, "did not stop");
                std::thread::yield_now();
            }
            Injected {
                index: 0,
                kind: FaultKind::BrokerPause,
                applied: Applied::Paused { service: Service::Kafka, pid: Some(pid) },
                healed: false,
                exit_status: None,
            }
        };
        let guard = pause();
        assert!(!guard.is_healed());
        drop(guard);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while state(pid) == 'T' {
            assert!(std::time::Instant::now() < deadline, "drop did not resume the process");
            std::thread::yield_now();
        }
        let mut guard = pause();
        guard.healed = true; // as after an explicit heal: drop must not touch it again
        drop(guard);
        assert_eq!(state(pid), 'T', "a healed guard does nothing on drop");
        // SAFETY: as above.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn wiping_keeps_the_folders_and_names_the_events_it_removed() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("minio-kafka-1");
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..3 {
            std::fs::write(sub.join(format!("{i}.event")), b"{}").unwrap();
        }
        std::fs::write(dir.path().join("top.event"), b"{}").unwrap();
        // As MinIO queues a record (Go's json.Marshal of event.Event), the key form-encoded.
        let event = |key: &str| {
            format!(
                r#"{{"eventVersion":"2.0","eventSource":"minio:s3","eventName":"s3:ObjectCreated:Put","s3":{{"s3SchemaVersion":"1.0","bucket":{{"name":"uploads"}},"object":{{"key":"{key}","size":3,"userMetadata":{{"content-type":"image/jpeg"}},"sequencer":"1"}}}}}}"#
            )
        };
        std::fs::write(sub.join("a.event"), event("img-00001.jpg")).unwrap();
        std::fs::write(sub.join("b.event"), event("run-1%2Fimg+%22quoted%22.jpg")).unwrap();
        let wiped = wipe_dir_contents(dir.path()).unwrap();
        assert_eq!(wiped.events, 6);
        let mut keys = wiped.keys;
        keys.sort();
        assert_eq!(keys, ["img-00001.jpg", "run-1/img \"quoted\".jpg"], "the keys of the events, decoded");
        assert!(sub.is_dir(), "MinIO's target folder stays");
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 0);
        assert_eq!(wipe_dir_contents(dir.path()).unwrap().events, 0, "twice is harmless");
    }
}
