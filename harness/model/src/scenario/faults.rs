//! Fault schedules: the explicit `faults:` list and the seeded `random_faults:`
//! resolved into one list of [`FaultSpec`]s, and what each environment can inject.
//!
//! The schedule is a pure function of the scenario (seed included), so the same
//! file always gives the same faults at the same moments.

use std::time::Duration;

use serde::Serialize;

use super::raw::{EnvKind, FaultKind, RawFault, RawRandomFaults};
use super::Environment;
use crate::rng::Rng;

/// Outage of a fault when the scenario does not say.
pub const DEFAULT_DOWN_FOR: Duration = Duration::from_secs(5);

/// One fault of the resolved schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultSpec {
    /// Position in the schedule (explicit faults first, then the random ones).
    pub index: u32,
    pub kind: FaultKind,
    /// `kafka`, `minio` or `processor`.
    pub target: String,
    pub start: FaultStart,
    /// How long the service stays down or paused before it is healed (zero for
    /// `processor_crash`: its supervisor decides).
    #[serde(with = "super::secs")]
    pub down_for: Duration,
}

/// When a fault starts, relative to the workload.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultStart {
    /// Seconds since the workload began.
    #[serde(with = "super::secs")]
    At(Duration),
    /// Once this many uploads were acknowledged.
    AfterUploads(u32),
}

impl FaultKind {
    pub const ALL: [FaultKind; 14] = [
        FaultKind::BrokerStop,
        FaultKind::BrokerKill,
        FaultKind::BrokerPause,
        FaultKind::ProcessorCrash,
        FaultKind::MinioRestart,
        FaultKind::MinioKill,
        FaultKind::QueueDirLoss,
        FaultKind::Partition,
        FaultKind::Latency,
        FaultKind::Bandwidth,
        FaultKind::ConnectionReset,
        FaultKind::LeaderKill,
        FaultKind::RollingRestart,
        FaultKind::ProcessorJoin,
    ];

    /// The name scenario files use: `broker_kill`.
    pub fn key(self) -> &'static str {
        match self {
            FaultKind::BrokerStop => "broker_stop",
            FaultKind::BrokerKill => "broker_kill",
            FaultKind::BrokerPause => "broker_pause",
            FaultKind::ProcessorCrash => "processor_crash",
            FaultKind::MinioRestart => "minio_restart",
            FaultKind::MinioKill => "minio_kill",
            FaultKind::QueueDirLoss => "queue_dir_loss",
            FaultKind::Partition => "partition",
            FaultKind::Latency => "latency",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::ConnectionReset => "connection_reset",
            FaultKind::LeaderKill => "leader_kill",
            FaultKind::RollingRestart => "rolling_restart",
            FaultKind::ProcessorJoin => "processor_join",
        }
    }

    /// The service a fault of this kind is applied to.
    pub fn target(self) -> &'static str {
        match self {
            FaultKind::BrokerStop
            | FaultKind::BrokerKill
            | FaultKind::BrokerPause
            | FaultKind::QueueDirLoss
            | FaultKind::LeaderKill
            | FaultKind::RollingRestart => "kafka",
            FaultKind::MinioRestart | FaultKind::MinioKill => "minio",
            FaultKind::ProcessorCrash | FaultKind::ProcessorJoin => "processor",
            FaultKind::Partition => "kafka",
            FaultKind::Latency | FaultKind::Bandwidth | FaultKind::ConnectionReset => "minio->kafka",
        }
    }

    /// Every target a fault of this kind may name (the first is the default).
    pub fn targets(self) -> &'static [&'static str] {
        match self {
            // The service is cut off from the run's network: every link to it breaks.
            FaultKind::Partition => &["kafka", "minio"],
            _ => std::slice::from_ref(match self.target() {
                "kafka" => &"kafka",
                "minio" => &"minio",
                "processor" => &"processor",
                _ => &"minio->kafka",
            }),
        }
    }

    /// Whether `down_for` means anything for this kind.
    pub fn has_outage(self) -> bool {
        !matches!(self, FaultKind::ProcessorCrash | FaultKind::ProcessorJoin)
    }
}

/// Whether the scenario's environment (this version) can inject `kind` in `env`;
/// the error says why not and what would make it possible.
pub fn capability(kind: FaultKind, env: &Environment) -> Result<(), String> {
    match env.kind {
        EnvKind::Local => local_capability(kind, env),
        EnvKind::Containers => containers_capability(kind, env),
        EnvKind::Kubernetes => Err("the kubernetes environment cannot inject faults in this version".into()),
    }
}

fn local_capability(kind: FaultKind, env: &Environment) -> Result<(), String> {
    let injectable = list(LOCAL);
    match kind {
        FaultKind::QueueDirLoss if !env.minio_queue_dir => Err(QUEUE_DIR_NEEDED.to_string()),
        FaultKind::Partition => Err(format!(
            "cannot be injected by the local environment of this version (it needs the TCP fault proxy, \
             which is not built yet); use `environment.kind: containers`, which disconnects the service \
             from the run's network; injectable here: {injectable}"
        )),
        FaultKind::Latency | FaultKind::Bandwidth | FaultKind::ConnectionReset => Err(format!(
            "cannot be injected by the local environment of this version: network faults need the TCP fault \
             proxy, which is not built yet; injectable here: {injectable}"
        )),
        FaultKind::LeaderKill | FaultKind::RollingRestart => Err(format!(
            "needs a three-broker Kafka cluster, which the local environment of this version does not start \
             (one broker only); injectable here: {injectable}"
        )),
        _ => Ok(()),
    }
}

fn containers_capability(kind: FaultKind, env: &Environment) -> Result<(), String> {
    match kind {
        FaultKind::QueueDirLoss if !env.minio_queue_dir => Err(QUEUE_DIR_NEEDED.to_string()),
        k if CONTAINERS.contains(&k) => Ok(()),
        _ => Err(format!(
            "cannot be injected by the containers environment of this version; injectable there: {}",
            list(CONTAINERS)
        )),
    }
}

const QUEUE_DIR_NEEDED: &str = "needs a queue dir to lose: set `environment.minio.queue_dir: true`";

const LOCAL: &[FaultKind] = &[
    FaultKind::BrokerStop,
    FaultKind::BrokerKill,
    FaultKind::BrokerPause,
    FaultKind::ProcessorCrash,
    FaultKind::MinioRestart,
    FaultKind::MinioKill,
    FaultKind::QueueDirLoss,
    FaultKind::ProcessorJoin,
];

const CONTAINERS: &[FaultKind] = &[
    FaultKind::BrokerStop,
    FaultKind::BrokerKill,
    FaultKind::BrokerPause,
    FaultKind::ProcessorCrash,
    FaultKind::MinioRestart,
    FaultKind::MinioKill,
    FaultKind::QueueDirLoss,
    FaultKind::Partition,
    FaultKind::ProcessorJoin,
];

fn list(kinds: &[FaultKind]) -> String {
    kinds.iter().map(|k| k.key()).collect::<Vec<_>>().join(", ")
}

/// An explicit fault, checked; `Err((key, message))` names the offending key.
pub(super) fn resolve_fault(index: u32, raw: RawFault) -> Result<FaultSpec, (&'static str, String)> {
    let kind = raw.kind;
    let target = match raw.target {
        None => kind.target().to_string(),
        Some(t) if kind.targets().contains(&t.as_str()) => t,
        Some(t) => {
            let allowed = kind.targets().iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(" or ");
            return Err(("target", format!("{} applies to {allowed}, not {t:?}", kind.key())));
        }
    };
    let start = match (raw.at, raw.after_uploads) {
        (Some(at), None) => FaultStart::At(at.0),
        (None, Some(n)) => FaultStart::AfterUploads(n.0),
        (Some(_), Some(_)) => return Err(("at", "give either `at` or `after_uploads`, not both".into())),
        (None, None) => {
            return Err(("at", "say when the fault starts: `at: 4s` (since the workload began) or `after_uploads: 50`".into()))
        }
    };
    let down_for = match (kind.has_outage(), raw.down_for) {
        (true, d) => d.map_or(DEFAULT_DOWN_FOR, |d| d.0),
        (false, None) => Duration::ZERO,
        (false, Some(_)) => {
            return Err((
                "down_for",
                match kind {
                    FaultKind::ProcessorJoin => "does not apply to processor_join: the replica stays until the run ends; remove it".to_string(),
                    _ => format!("does not apply to {}: its supervisor restarts the processor; remove it", kind.key()),
                },
            ))
        }
    };
    if kind.has_outage() && down_for.is_zero() {
        return Err(("down_for", "must be greater than zero".into()));
    }
    Ok(FaultSpec { index, kind, target, start, down_for })
}

/// The random part of a schedule, resolved: pure input to [`random_schedule`].
#[derive(Clone, Debug, PartialEq)]
pub struct RandomFaults {
    pub kinds: Vec<FaultKind>,
    pub every_min: Duration,
    pub every_max: Duration,
    pub first_at: Duration,
    pub count: Option<u32>,
    pub down_for: Duration,
}

pub(super) fn resolve_random(raw: RawRandomFaults) -> Result<RandomFaults, (&'static str, String)> {
    if raw.kinds.is_empty() {
        return Err(("kinds", "list at least one fault kind to pick from".into()));
    }
    if raw.every.min.0 > raw.every.max.0 {
        return Err(("every", format!("min ({}) is greater than max ({})", raw.every.min, raw.every.max)));
    }
    if raw.every.max.0.is_zero() {
        return Err(("every.max", "must be greater than zero".into()));
    }
    let down_for = raw.down_for.map_or(DEFAULT_DOWN_FOR, |d| d.0);
    if down_for.is_zero() {
        return Err(("down_for", "must be greater than zero".into()));
    }
    Ok(RandomFaults {
        kinds: raw.kinds,
        every_min: raw.every.min.0,
        every_max: raw.every.max.0,
        first_at: raw.first_at.map_or(raw.every.min.0, |f| f.0),
        count: raw.count.map(|c| c.0),
        down_for,
    })
}

/// Most faults a random schedule may hold, whatever the scenario says.
pub const MAX_RANDOM_FAULTS: u32 = 1000;

/// Draws the random schedule from the seed. Faults start at `first_at`, then each
/// `every` (uniform in `[min, max]`, millisecond steps) after the previous start,
/// until `count` faults or until `horizon` (the workload's planned duration).
/// A fault never starts before the previous one is healed.
pub fn random_schedule(r: &RandomFaults, seed: u64, horizon: Duration, first_index: u32) -> Vec<FaultSpec> {
    let mut rng = Rng::fork(seed, "faults");
    let mut out = Vec::new();
    let mut at = r.first_at;
    let limit = r.count.unwrap_or(MAX_RANDOM_FAULTS).min(MAX_RANDOM_FAULTS);
    while (out.len() as u32) < limit && (r.count.is_some() || at <= horizon) {
        let kind = r.kinds[rng.below(r.kinds.len() as u64) as usize];
        let down_for = if kind.has_outage() { r.down_for } else { Duration::ZERO };
        out.push(FaultSpec {
            index: first_index + out.len() as u32,
            kind,
            target: kind.target().to_string(),
            start: FaultStart::At(at),
            down_for,
        });
        let span_ms = (r.every_max - r.every_min).as_millis() as u64;
        let gap = r.every_min + Duration::from_millis(rng.below(span_ms + 1));
        at += gap.max(down_for + Duration::from_secs(1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn random(kinds: Vec<FaultKind>, min: u64, max: u64, count: Option<u32>) -> RandomFaults {
        RandomFaults {
            kinds,
            every_min: Duration::from_millis(min),
            every_max: Duration::from_millis(max),
            first_at: Duration::from_millis(min),
            count,
            down_for: Duration::from_secs(2),
        }
    }

    proptest! {
        /// The same seed gives the same schedule; every start lies in the horizon
        /// (without `count`), and gaps respect `every` and the previous outage.
        #[test]
        fn same_seed_same_schedule(
            seed in any::<u64>(),
            min in 0u64..20_000,
            extra in 0u64..20_000,
            horizon_s in 0u64..300,
            kinds in prop::collection::vec(prop::sample::select(FaultKind::ALL.to_vec()), 1..5),
        ) {
            let r = random(kinds.clone(), min, min + extra, None);
            let horizon = Duration::from_secs(horizon_s);
            let a = random_schedule(&r, seed, horizon, 0);
            let b = random_schedule(&r, seed, horizon, 0);
            prop_assert_eq!(&a, &b);
            for (i, f) in a.iter().enumerate() {
                prop_assert_eq!(f.index, i as u32);
                prop_assert!(kinds.contains(&f.kind));
                let FaultStart::At(at) = f.start else { panic!("random faults start at a time") };
                prop_assert!(at <= horizon.max(r.first_at));
                if i > 0 {
                    let FaultStart::At(prev) = a[i - 1].start else { unreachable!() };
                    let gap = at - prev;
                    prop_assert!(gap >= r.every_min && gap >= a[i - 1].down_for);
                    prop_assert!(gap <= r.every_max.max(a[i - 1].down_for + Duration::from_secs(1)));
                }
            }
        }

        #[test]
        fn count_bounds_the_schedule(seed in any::<u64>(), count in 1u32..20) {
            let r = random(vec![FaultKind::BrokerKill, FaultKind::ProcessorCrash], 1000, 3000, Some(count));
            prop_assert_eq!(random_schedule(&r, seed, Duration::ZERO, 3).len(), count as usize);
        }
    }

    #[test]
    fn different_seeds_give_different_schedules() {
        let r = random(FaultKind::ALL.to_vec(), 1000, 20_000, Some(10));
        assert_ne!(random_schedule(&r, 1, Duration::ZERO, 0), random_schedule(&r, 2, Duration::ZERO, 0));
    }

    #[test]
    fn crash_has_no_outage() {
        let r = random(vec![FaultKind::ProcessorCrash], 1000, 1000, Some(2));
        let s = random_schedule(&r, 7, Duration::ZERO, 0);
        assert!(s.iter().all(|f| f.down_for.is_zero() && f.target == "processor"));
    }
}
