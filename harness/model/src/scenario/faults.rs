//! Fault schedules: the explicit `faults:` list and the seeded `random_faults:`
//! resolved into one list of [`FaultSpec`]s. What each kind is and where it can be
//! injected is [`super::catalog`].
//!
//! The schedule is a pure function of the scenario (seed included), so the same
//! file always gives the same faults at the same moments.

use std::time::Duration;

use serde::Serialize;

use super::catalog::Target;
use super::raw::{FaultKind, PoisonKind, RawFault, RawRandomFaults};
use super::units::{ByteRate, Span};
use crate::rng::Rng;

/// Outage of a fault when the scenario does not say.
pub const DEFAULT_DOWN_FOR: Duration = Duration::from_secs(5);
/// Longest outage of a fault healed by `heal_after_uploads` without `down_for`: in
/// practice the workload ends first, which heals it too.
pub const MAX_HOLD: Duration = Duration::from_secs(3600);
/// One-way delay of a `latency` fault when the scenario does not say.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(200);
/// Limit of a `bandwidth` fault when the scenario does not say.
pub const DEFAULT_BANDWIDTH: u64 = 256 * 1024;

/// One fault of the resolved schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultSpec {
    /// Position in the schedule (explicit faults first, then the random ones).
    pub index: u32,
    pub kind: FaultKind,
    /// A service (`kafka`, `minio`, `processor`) or, for network faults, a link.
    pub target: Target,
    pub start: FaultStart,
    /// How long the service stays down or paused before it is healed (zero for
    /// `processor_crash`: its supervisor decides).
    #[serde(with = "super::secs")]
    pub down_for: Duration,
    /// Explicit heal: once this many uploads were acknowledged (`down_for` is
    /// then the longest the fault may last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heal_after_uploads: Option<u32>,
    /// `latency` and `bandwidth`: what the link gets.
    #[serde(skip_serializing_if = "LinkParams::is_empty")]
    pub link: LinkParams,
    /// `duplicate_events` and `poison_event`: what is published.
    #[serde(skip_serializing_if = "EventParams::is_empty")]
    pub events: EventParams,
}

/// Events already delivered to publish again when none is given.
pub const DEFAULT_DUPLICATES: u32 = 10;

/// What an event fault publishes to the events topic.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventParams {
    /// `duplicate_events`: how many delivered events to publish again. `replay`:
    /// how many committed events to consume again (`None`: all of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// `poison_event`: the records, one message each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub poison: Vec<PoisonKind>,
}

impl EventParams {
    pub fn is_empty(&self) -> bool {
        *self == EventParams::default()
    }

    /// The defaults of `kind` (empty for kinds that publish nothing).
    pub fn defaults(kind: FaultKind) -> EventParams {
        resolve_events(kind, None, None).unwrap_or_default()
    }
}

/// What a network fault does to the bytes on its links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LinkParams {
    /// `latency`: one-way delay, seconds.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_secs")]
    pub delay: Option<Duration>,
    /// `latency`: uniform jitter either way around `delay`, seconds.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_secs")]
    pub jitter: Option<Duration>,
    /// `bandwidth`: bytes per second each direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
}

impl LinkParams {
    pub fn is_empty(&self) -> bool {
        *self == LinkParams::default()
    }

    /// The defaults of `kind` (empty for kinds without parameters).
    pub fn defaults(kind: FaultKind) -> LinkParams {
        match kind {
            FaultKind::Latency => LinkParams { delay: Some(DEFAULT_DELAY), jitter: Some(Duration::ZERO), ..LinkParams::default() },
            FaultKind::Bandwidth => LinkParams { bytes_per_second: Some(DEFAULT_BANDWIDTH), ..LinkParams::default() },
            _ => LinkParams::default(),
        }
    }
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.unwrap_or_default().as_secs_f64())
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

/// An explicit fault, checked; `Err((key, message))` names the offending key.
pub(super) fn resolve_fault(index: u32, raw: RawFault) -> Result<FaultSpec, (&'static str, String)> {
    let kind = raw.kind;
    let target = match raw.target {
        None => kind.target(),
        Some(t) if kind.targets().iter().any(|k| k.name() == t) => Target::parse(&t).expect("a listed target parses"),
        Some(t) => {
            let quoted: Vec<String> = kind.targets().iter().map(|t| format!("{:?}", t.name())).collect();
            let allowed = match quoted.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => quoted.join(""),
            };
            return Err(("target", format!("{} applies to {allowed}, not {t:?}", kind.key())));
        }
    };
    let start = match (raw.at, raw.after_uploads) {
        (Some(at), None) => FaultStart::At(at.0),
        (None, Some(n)) => FaultStart::AfterUploads(n.0),
        (Some(_), Some(_)) => return Err(("at", "give either `at` or `after_uploads`, not both".into())),
        (None, None) => return Err(("at", "say when the fault starts: `at: 4s` (since the workload began) or `after_uploads: 50`".into())),
    };
    let heal_after_uploads = match (raw.heal_after_uploads, start) {
        (None, _) => None,
        (Some(_), _) if !kind.has_outage() => {
            return Err(("heal_after_uploads", format!("does not apply to {}: it has no outage to heal; remove it", kind.key())))
        }
        (Some(h), FaultStart::AfterUploads(n)) if h.0 <= n => {
            return Err((
                "heal_after_uploads",
                format!("({}) must be greater than after_uploads ({n}): the heal comes after the start", h.0),
            ))
        }
        (Some(h), _) => Some(h.0),
    };
    let down_for = match (kind.has_outage(), raw.down_for) {
        (true, None) if heal_after_uploads.is_some() => MAX_HOLD,
        (true, d) => d.map_or(DEFAULT_DOWN_FOR, |d| d.0),
        (false, None) => Duration::ZERO,
        (false, Some(_)) => {
            return Err((
                "down_for",
                match kind {
                    FaultKind::ProcessorJoin => {
                        "does not apply to processor_join: the replica stays until the run ends; remove it".to_string()
                    }
                    FaultKind::DuplicateEvents | FaultKind::PoisonEvent => {
                        format!("does not apply to {}: what it publishes stays on the topic, there is no outage; remove it", kind.key())
                    }
                    FaultKind::Replay => {
                        "does not apply to replay: the processor is down only as long as the reset takes; remove it".to_string()
                    }
                    _ => format!("does not apply to {}: its supervisor restarts the processor; remove it", kind.key()),
                },
            ))
        }
    };
    if kind.has_outage() && down_for.is_zero() {
        return Err(("down_for", "must be greater than zero".into()));
    }
    let link = resolve_link(kind, raw.delay, raw.jitter, raw.bandwidth)?;
    let events = resolve_events(kind, raw.count.map(|c| c.0), raw.poison)?;
    Ok(FaultSpec { index, kind, target, start, down_for, heal_after_uploads, link, events })
}

/// `count` and `poison`: each only on its own kind, with defaults.
fn resolve_events(kind: FaultKind, count: Option<u32>, poison: Option<Vec<PoisonKind>>) -> Result<EventParams, (&'static str, String)> {
    let only = |key: &'static str, owner: &str| Err((key, format!("applies to {owner} faults only, not {}; remove it", kind.key())));
    match kind {
        FaultKind::DuplicateEvents => {
            if poison.is_some() {
                return only("poison", "poison_event");
            }
            let count = count.unwrap_or(DEFAULT_DUPLICATES);
            if count == 0 {
                return Err(("count", "must be at least 1".into()));
            }
            Ok(EventParams { count: Some(count), poison: Vec::new() })
        }
        FaultKind::Replay => {
            if poison.is_some() {
                return only("poison", "poison_event");
            }
            if count == Some(0) {
                return Err(("count", "must be at least 1 (leave it out to replay everything the group committed)".into()));
            }
            Ok(EventParams { count, poison: Vec::new() })
        }
        FaultKind::PoisonEvent => {
            if count.is_some() {
                return only("count", "duplicate_events and replay");
            }
            let mut poison = poison.unwrap_or_else(|| PoisonKind::ALL.to_vec());
            if poison.is_empty() {
                return Err(("poison", format!("name at least one of {}", PoisonKind::ALL.map(PoisonKind::key).join(", "))));
            }
            poison.sort();
            poison.dedup();
            Ok(EventParams { count: None, poison })
        }
        _ if count.is_some() => only("count", "duplicate_events and replay"),
        _ if poison.is_some() => only("poison", "poison_event"),
        _ => Ok(EventParams::default()),
    }
}

/// `delay`, `jitter` and `bandwidth`: each only on its own kind, with defaults.
fn resolve_link(
    kind: FaultKind,
    delay: Option<Span>,
    jitter: Option<Span>,
    bandwidth: Option<ByteRate>,
) -> Result<LinkParams, (&'static str, String)> {
    let only = |key: &'static str, owner: &str| Err((key, format!("applies to {owner} faults only, not {}; remove it", kind.key())));
    if kind != FaultKind::Latency {
        if delay.is_some() {
            return only("delay", "latency");
        }
        if jitter.is_some() {
            return only("jitter", "latency");
        }
    }
    if kind != FaultKind::Bandwidth && bandwidth.is_some() {
        return only("bandwidth", "bandwidth");
    }
    let mut p = LinkParams::defaults(kind);
    if let Some(d) = delay {
        if d.0.is_zero() {
            return Err(("delay", "must be greater than zero".into()));
        }
        p.delay = Some(d.0);
    }
    if let Some(j) = jitter {
        let delay = p.delay.unwrap_or(DEFAULT_DELAY);
        if j.0 > delay {
            return Err((
                "jitter",
                format!("({j}) must not exceed delay ({}): a byte cannot arrive before it was sent", super::units::format_duration(delay)),
            ));
        }
        p.jitter = Some(j.0);
    }
    if let Some(b) = bandwidth {
        p.bytes_per_second = Some(b.bytes_per_second);
    }
    Ok(p)
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
            target: kind.target(),
            start: FaultStart::At(at),
            down_for,
            heal_after_uploads: None,
            link: LinkParams::defaults(kind),
            events: EventParams::defaults(kind),
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
