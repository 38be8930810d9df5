//! Runs a scenario's fault schedule alongside the workload, one fault at a time:
//! wait for its start → apply → prove the effect → hold `down_for` → heal → prove
//! the recovery → record its [`FaultWindow`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness_model::history::FaultWindow;
use harness_model::scenario::{Action, EnvKind, FaultSpec, FaultStart, Op, Proof, Service};
use tokio::sync::watch;

use super::cluster;
use super::guard::inject;
use super::journal;
use super::links::LinkProbes;
use crate::clock::Clock;
use crate::env::Environment;
use crate::services::probe::{group_probe, kafka_probe, s3_probe};
use crate::workload::UploadProgress;

/// How long a probe may keep passing after injection before the fault counts as
/// not taken effect.
const EFFECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long traffic may take to come back after the heal.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(100);
/// A group's coordinator answers once per probe; no need to ask it ten times a second.
const GROUP_POLL: Duration = Duration::from_millis(500);
/// Bound on one read of a group's committed offsets.
const PROBE_STEP: Duration = Duration::from_secs(5);

/// What the scheduler needs besides the environment.
pub struct ScheduleInputs<'a> {
    pub faults: &'a [FaultSpec],
    pub clock: Clock,
    /// When the workload began (fault starts are relative to it).
    pub workload_started: Instant,
    /// Acknowledged uploads so far (for `after_uploads`).
    pub uploads: Arc<UploadProgress>,
    /// Turns true when the workload has finished: faults not yet due are skipped.
    pub workload_done: watch::Receiver<bool>,
    pub say: &'a (dyn Fn(&str) + Sync),
    /// The processor's consumer group (`processor_join` watches its membership).
    pub processor_group: &'a str,
}

/// Runs every fault in turn; returns the windows of the faults that were injected.
/// A fault that could not be applied is recorded without an effect (Unknown).
pub async fn run_schedule(env: &mut dyn Environment, mut inp: ScheduleInputs<'_>) -> Vec<FaultWindow> {
    let mut windows = Vec::new();
    for spec in inp.faults {
        if !wait_for_start(spec, &mut inp).await {
            (inp.say)(&format!("fault #{} {}: the workload ended before it was due; not injected", spec.index, spec.kind.key()));
            continue;
        }
        windows.push(one_fault(env, spec, &inp).await);
    }
    windows
}

/// Waits out the fault's outage. With `heal_after_uploads`, returns why it ended:
/// the count was reached, the workload ended, or `down_for` ran out first.
async fn hold(spec: &FaultSpec, inp: &ScheduleInputs<'_>, t0: Instant) -> Option<String> {
    let Some(n) = spec.heal_after_uploads else {
        tokio::time::sleep(spec.down_for.saturating_sub(t0.elapsed())).await;
        return None;
    };
    let mut done = inp.workload_done.clone();
    loop {
        let acked = inp.uploads.acked.load(Ordering::Relaxed);
        if acked >= u64::from(n) {
            return Some(format!("healed after {acked} acknowledged uploads (heal_after_uploads: {n})"));
        }
        if *done.borrow() {
            return Some(format!("healed when the workload ended, at {acked} of the {n} uploads heal_after_uploads waits for"));
        }
        if t0.elapsed() >= spec.down_for {
            return Some(format!(
                "healed after down_for ({}s), at {acked} of the {n} uploads heal_after_uploads waits for",
                spec.down_for.as_secs_f64()
            ));
        }
        if let Ok(Err(_)) = tokio::time::timeout(POLL, done.changed()).await {
            tokio::time::sleep(POLL).await; // the workload's sender is gone
        }
    }
}

/// True when the start came; false when the workload finished first.
async fn wait_for_start(spec: &FaultSpec, inp: &mut ScheduleInputs<'_>) -> bool {
    loop {
        let due = match spec.start {
            FaultStart::At(at) => inp.workload_started.elapsed() >= at,
            FaultStart::AfterUploads(n) => inp.uploads.acked.load(Ordering::Relaxed) >= u64::from(n),
        };
        if due {
            return true;
        }
        if *inp.workload_done.borrow() {
            return false;
        }
        let _ = tokio::time::timeout(POLL, inp.workload_done.changed()).await;
    }
}

/// The probe a [`Proof`] stands for in this environment, for this fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// A produce/consume round trip through the harness's bootstrap.
    Kafka,
    /// An S3 put/get/delete through the harness's endpoint.
    S3,
    /// The fault proxies' probes (`LinkProbes`).
    Links,
    Leadership,
    Supervisor,
    Group,
    EachBroker,
    /// The broker's acknowledgements of what an event fault published.
    Acknowledged,
    /// The processor group's committed offsets, past what was published.
    CommittedPast,
    /// The processor group's committed offsets read back after a rewind.
    Rewound,
}

/// A processor instance as the environment knows it: a pid, or on Kubernetes the
/// number the pod watcher gave the pod (pods have no pid the harness can see).
fn instance(env: &dyn Environment, id: u32) -> String {
    match env.kind() {
        EnvKind::Kubernetes => format!("pod #{id}"),
        EnvKind::Local | EnvKind::Containers | EnvKind::External => format!("pid {id}"),
    }
}

fn probe_for(proof: Proof, spec: &FaultSpec, env: &dyn Environment) -> Result<Probe, String> {
    let client = |service: Service| match service {
        Service::Kafka => Ok(Probe::Kafka),
        Service::Minio => Ok(Probe::S3),
        Service::Processor => Err("the processor has no client path of its own to probe".to_string()),
    };
    match proof {
        Proof::Client(service) => client(service),
        Proof::Links => Ok(Probe::Links),
        // Through the links' proxies where the fault went there; else the host's
        // path to the partitioned service, which crosses the same network.
        Proof::Reach => match spec.kind.describe().ops(spec.target, env.kind()).as_deref() {
            Some([Op::LinkProxy]) => Ok(Probe::Links),
            _ => client(spec.target.service().ok_or_else(|| format!("{} is not a service to reach", spec.target))?),
        },
        Proof::Leadership => Ok(Probe::Leadership),
        Proof::Supervisor => Ok(Probe::Supervisor),
        Proof::GroupMembers => Ok(Probe::Group),
        Proof::EachBroker => Ok(Probe::EachBroker),
        Proof::Acknowledged => Ok(Probe::Acknowledged),
        Proof::CommittedPast => Ok(Probe::CommittedPast),
        Proof::Rewound => Ok(Probe::Rewound),
    }
}

async fn one_fault(env: &mut dyn Environment, spec: &FaultSpec, inp: &ScheduleInputs<'_>) -> FaultWindow {
    let clock = inp.clock;
    let kind = spec.kind;
    let d = kind.describe();
    let mut w = FaultWindow {
        index: spec.index,
        kind: kind.key().to_string(),
        target: spec.target.to_string(),
        injected_at: clock.now(),
        effect_seen_at: None,
        proof: String::new(),
        healed_at: None,
        recovered_at: None,
        wiped_events: Vec::new(),
    };
    (inp.say)(&format!("fault #{} {} on {}: injecting", spec.index, kind.key(), spec.target));
    let ep = env.endpoints().clone();
    let s3 = crate::services::s3::s3_client(&ep.s3_endpoint, &ep.credentials);
    let processor_before = env.processor_events().map(|rx| rx.borrow().clone());
    let pids: Vec<u32> = env.services().iter().filter_map(|s| s.pid).collect();
    let entry = journal::Entry { harness_pid: std::process::id(), index: spec.index, kind: kind.key().into(), pids };
    if let Err(e) = journal::record(env.run_dir(), &entry) {
        w.proof = format!("not applied: could not write the fault journal: {e}");
        (inp.say)(&w.proof);
        return w;
    }
    if let Err(why) = super::guard::admissible(env, spec) {
        w.proof = format!("could not be applied: {why} (validation should have rejected it)");
        (inp.say)(&w.proof);
        return w;
    }
    let probes = probe_for(d.effect, spec, env).and_then(|effect| Ok((effect, probe_for(d.recovery, spec, env)?)));
    let (effect_probe, recovery_probe) = match probes {
        Ok(p) => p,
        Err(e) => {
            w.proof = format!("not applied: {e}");
            (inp.say)(&w.proof);
            return w;
        }
    };
    // A rolling restart is a sequence of its own: each broker down, proven, back.
    if effect_probe == Probe::EachBroker {
        let w = cluster::rolling_restart(env, spec, clock, w, RECOVERY_TIMEOUT).await;
        (inp.say)(&format!("fault #{} {}: {}", spec.index, kind.key(), w.proof));
        return w;
    }
    // Network faults on the links' proxies are proven through the links.
    let links = if effect_probe == Probe::Links || recovery_probe == Probe::Links {
        match LinkProbes::new(env, spec).await {
            Ok(p) => Some(p),
            Err(e) => {
                w.proof = format!("not applied: {e}");
                (inp.say)(&w.proof);
                return w;
            }
        }
    } else {
        None
    };
    // A join shows as one member more than before (a group may already have several).
    let members_before = if effect_probe == Probe::Group || recovery_probe == Probe::Group {
        group_probe(&ep.kafka_bootstrap, inp.processor_group).await.map_or(1, |(n, _)| n.max(1))
    } else {
        0
    };
    let t0 = Instant::now();
    let mut guard = match inject(env, spec, inp.processor_group).await {
        Ok(g) => g,
        Err(e) => {
            w.proof = format!("could not be applied: {e}");
            (inp.say)(&w.proof);
            return w;
        }
    };

    // Proof of effect: the real client path fails (or the process is gone).
    match effect_probe {
        Probe::Links => {
            let links = links.as_ref().expect("link probes exist for a Links proof");
            let deadline = Instant::now() + EFFECT_TIMEOUT;
            loop {
                let (all, _, seen) = links.observe().await;
                if all {
                    w.effect_seen_at = Some(clock.now());
                    w.proof = seen;
                    break;
                }
                if Instant::now() >= deadline {
                    w.proof = format!("the fault did not take effect within {}s: {seen}", EFFECT_TIMEOUT.as_secs());
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Probe::Kafka | Probe::S3 => {
            let deadline = Instant::now() + EFFECT_TIMEOUT;
            loop {
                let r = if effect_probe == Probe::Kafka {
                    kafka_probe(&ep.kafka_bootstrap).await
                } else {
                    s3_probe(&s3, &ep.source_bucket).await
                };
                match r {
                    Err(failed) => {
                        w.effect_seen_at = Some(clock.now());
                        w.proof = format!("{}{failed}", guard.exit_status.as_ref().map(|s| format!("{s}; ")).unwrap_or_default());
                        break;
                    }
                    Ok(passed) if Instant::now() >= deadline => {
                        w.proof = format!("the fault did not take effect: {passed} {}s after injection", EFFECT_TIMEOUT.as_secs());
                        break;
                    }
                    Ok(_) => tokio::time::sleep(POLL).await,
                }
            }
        }
        Probe::Leadership => {
            let killed = guard.broker().unwrap_or(0);
            let exit = guard.exit_status.clone().unwrap_or_default();
            match cluster::leader_moved(&ep.kafka_bootstrap, &ep.events_topic, killed, EFFECT_TIMEOUT).await {
                Ok(moved) => {
                    w.effect_seen_at = Some(clock.now());
                    w.proof = format!("{exit}; {moved}");
                }
                Err(e) => w.proof = format!("{exit}; the fault did not take effect: {e}"),
            }
        }
        Probe::Group => {
            let pid = guard.pid().unwrap_or(0);
            let group = inp.processor_group;
            let deadline = Instant::now() + EFFECT_TIMEOUT;
            loop {
                match group_probe(&ep.kafka_bootstrap, group).await {
                    Ok((n, state)) if n > members_before => {
                        w.effect_seen_at = Some(clock.now());
                        w.proof = format!(
                            "replica {} started; consumer group {group} has {n} members, {members_before} before ({state})",
                            instance(env, pid)
                        );
                        break;
                    }
                    other if Instant::now() >= deadline => {
                        let seen = match other {
                            Ok((n, state)) => format!("{n} member(s), {state}"),
                            Err(e) => e,
                        };
                        w.proof = format!(
                            "replica {} started but consumer group {group} showed no member beyond its {members_before} within {}s ({seen})",
                            instance(env, pid),
                            EFFECT_TIMEOUT.as_secs()
                        );
                        break;
                    }
                    _ => tokio::time::sleep(GROUP_POLL).await,
                }
            }
        }
        Probe::Supervisor => {
            let pid = guard.pid().unwrap_or(0);
            let before = processor_before.map_or(0, |s| s.exits.len());
            match env.processor_events() {
                Some(mut rx) => {
                    let seen = tokio::time::timeout(EFFECT_TIMEOUT, rx.wait_for(|s| s.exits.len() > before && s.pid != Some(pid))).await;
                    match seen {
                        Ok(Ok(st)) => {
                            w.effect_seen_at = Some(clock.now());
                            let exit = st.exits.last().map(|x| x.status.clone()).unwrap_or_default();
                            w.proof = format!("processor {} gone ({exit}), seen by its supervisor", instance(env, pid));
                        }
                        _ => {
                            w.proof = format!(
                                "processor {} was sent SIGKILL but its supervisor saw no exit within {}s",
                                instance(env, pid),
                                EFFECT_TIMEOUT.as_secs()
                            )
                        }
                    }
                }
                None => w.proof = "no processor status to observe".into(),
            }
        }
        Probe::Acknowledged | Probe::Rewound => match guard.records() {
            Some(p) => {
                w.effect_seen_at = Some(clock.now());
                w.proof = format!("{}{}", guard.exit_status.as_ref().map(|s| format!("{s}; ")).unwrap_or_default(), p.summary);
            }
            None => w.proof = "nothing was published or rewound".into(),
        },
        Probe::CommittedPast | Probe::EachBroker => unreachable!("not a proof of effect"),
    }

    // The outage: `down_for`, or until `heal_after_uploads` (bounded by `down_for`).
    if let Some(why) = hold(spec, inp, t0).await {
        w.proof = format!("{}; {why}", w.proof);
    }
    // queue_dir loss: the queued events are wiped while the broker is still down.
    if d.action == Action::StopAndWipeQueue {
        match env.wipe_minio_queue().await {
            Ok((wiped, _)) if wiped.events == 0 => {
                w.effect_seen_at = None;
                w.proof = format!("{}; but the queue dir held no queued events to lose", w.proof);
            }
            Ok((wiped, at)) => {
                w.effect_seen_at = w.effect_seen_at.map(|_| clock.now());
                let named = match wiped.keys.as_slice() {
                    [] => String::new(),
                    [one] => format!(" (for {one})"),
                    [first, .., last] => format!(" (for {first} … {last})"),
                };
                w.proof = format!("{}; wiped {} queued events{named} from {at}", w.proof, wiped.events);
                w.wiped_events = wiped.keys;
            }
            Err(e) => {
                w.effect_seen_at = None;
                w.proof = format!("{}; wiping MinIO's queue dir failed: {e}", w.proof);
            }
        }
    }

    (inp.say)(&format!("fault #{} {}: healing ({})", spec.index, kind.key(), w.proof));
    // The heal's start is what counts: a restart's own wait is part of recovery.
    let heal_started = clock.now();
    match guard.heal(env).await {
        Ok(()) => w.healed_at = Some(heal_started),
        Err(e) => {
            w.proof = format!("{}; heal failed: {e}", w.proof);
            (inp.say)(&format!("fault #{}: heal failed: {e}", spec.index));
            return w;
        }
    }

    // Proof of recovery through the same path.
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let group = if recovery_probe == Probe::CommittedPast {
        Some(crate::observe::group::connect(&ep.kafka_bootstrap, inp.processor_group, &ep.events_topic, PROBE_STEP).await)
    } else {
        None
    };
    loop {
        let r = match recovery_probe {
            Probe::Links => match links.as_ref().expect("link probes exist for a Links proof").observe().await {
                (_, true, seen) => Ok(seen),
                (_, false, seen) => Err(seen),
            },
            Probe::Leadership => {
                let killed = guard.broker().unwrap_or(0);
                cluster::wait_isr(&ep.kafka_bootstrap, &ep.events_topic, killed, true, Duration::ZERO)
                    .await
                    .map(|isr| format!("broker {killed} is back in the ISR ({isr})"))
            }
            Probe::Kafka => kafka_probe(&ep.kafka_bootstrap).await,
            Probe::S3 => s3_probe(&s3, &ep.source_bucket).await,
            // Recovered: the rebalance is over with the replica and at least one other
            // member in it. Not "more than before": a member of a process killed just
            // before (processor_crash) is counted until its session times out.
            Probe::Group => match group_probe(&ep.kafka_bootstrap, inp.processor_group).await {
                Ok((n, state)) if n >= 2 && state == "Stable" => {
                    Ok(format!("consumer group {} is Stable with {n} members", inp.processor_group))
                }
                Ok((n, state)) => Err(format!("{n} member(s), {state}")),
                Err(e) => Err(e),
            },
            Probe::Supervisor => match env.processor_events() {
                Some(rx) => {
                    let st = rx.borrow().clone();
                    match st.pid {
                        Some(p) if Some(p) != guard.pid() => Ok(format!("the supervisor restarted the processor as {}", instance(env, p))),
                        _ => Err("no replacement process yet".to_string()),
                    }
                }
                None => Err("no processor status".into()),
            },
            Probe::CommittedPast => {
                let noun = if d.action == Action::Rewind { "records it had committed before the rewind" } else { "published records" };
                committed_past(group.as_ref(), guard.records().map_or(&[][..], |p| &p.offsets), noun).await
            }
            Probe::Acknowledged | Probe::Rewound | Probe::EachBroker => unreachable!("not a proof of recovery"),
        };
        match r {
            Ok(ok) => {
                w.recovered_at = Some(clock.now());
                w.proof = format!("{}; after the heal: {ok}", w.proof);
                break;
            }
            Err(e) if Instant::now() >= deadline => {
                w.proof = format!("{}; not recovered {}s after the heal: {e}", w.proof, RECOVERY_TIMEOUT.as_secs());
                break;
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
    (inp.say)(&format!(
        "fault #{} {}: {}",
        spec.index,
        kind.key(),
        if w.recovered_at.is_some() { "healed and recovered" } else { "did not recover" }
    ));
    w
}

/// Whether the processor's group has committed past every published record (it
/// took them and went on); else what it has committed so far.
async fn committed_past(
    group: Option<&Result<crate::observe::group::GroupReader, String>>,
    published: &[(i32, i64)],
    noun: &str,
) -> Result<String, String> {
    let reader = match group {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(format!("cannot read the processor group's offsets: {e}")),
        None => return Err("no group reader".into()),
    };
    let offsets = reader.committed_async(PROBE_STEP).await;
    if let Some(e) = &offsets.error {
        return Err(e.clone());
    }
    let behind: Vec<String> =
        published.iter().filter(|(p, o)| offsets.covers(*p, *o) != Some(true)).map(|(p, o)| format!("{}/{p}@{o}", offsets.topic)).collect();
    if behind.is_empty() {
        Ok(format!("consumer group {} committed past all {} {noun}", offsets.group, published.len()))
    } else {
        tokio::time::sleep(GROUP_POLL).await;
        let at: Vec<String> = offsets.committed.iter().map(|(p, o)| format!("{p}:{o}")).collect();
        Err(format!(
            "consumer group {} has not committed past {} (committed: {})",
            offsets.group,
            harness_model::verdict::list(behind.iter()),
            if at.is_empty() { "nothing".to_string() } else { at.join(", ") }
        ))
    }
}
