//! Faults of a three-broker cluster, proven through the cluster's metadata (what
//! every client is told): `leader_kill` (the leader of the events topic's partition
//! 0 is SIGKILLed; another broker must take over) and `rolling_restart` (each broker
//! in turn: SIGTERM, out of the ISR, started again, back in sync before the next).

use std::time::{Duration, Instant};

use harness_model::history::FaultWindow;
use harness_model::scenario::FaultSpec;

use crate::clock::Clock;
use crate::env::Environment;
use crate::services::probe::{kafka_probe, topic_partitions, PartitionInfo};

const POLL: Duration = Duration::from_millis(250);

/// `1 2 3` for messages.
fn ids(isr: &[i32]) -> String {
    isr.iter().map(i32::to_string).collect::<Vec<_>>().join(" ")
}

/// The node leading partition 0 of `topic`.
pub async fn leader_of(bootstrap: &str, topic: &str) -> Result<u32, String> {
    let parts = topic_partitions(bootstrap, topic).await?;
    match parts.iter().find(|p| p.id == 0) {
        Some(p) if p.leader > 0 => Ok(p.leader as u32),
        Some(_) => Err(format!("partition 0 of {topic} has no leader")),
        None => Err(format!("{topic} has no partition 0")),
    }
}

/// Waits until partition 0 of `topic` is led by a broker other than `killed`;
/// `Ok(proof)` with the new leader and whether a produce (acks=all) still passes.
pub async fn leader_moved(bootstrap: &str, topic: &str, killed: u32, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match topic_partitions(bootstrap, topic).await {
            Ok(parts) => {
                if let Some(p) = parts.iter().find(|p| p.id == 0 && p.leader > 0 && p.leader as u32 != killed) {
                    let produce = match kafka_probe(bootstrap).await {
                        Ok(ok) => ok,
                        Err(e) => format!("but {e}"),
                    };
                    return Ok(format!("partition 0 of {topic} is led by broker {} now (ISR {}); {produce}", p.leader, ids(&p.isr)));
                }
                last = describe(&parts);
            }
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(format!("partition 0 of {topic} did not move off broker {killed} within {}s ({last})", timeout.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `node` is in (`in_sync`) or out of the ISR of every partition of
/// `topic`; returns what the metadata showed.
pub async fn wait_isr(bootstrap: &str, topic: &str, node: u32, in_sync: bool, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match topic_partitions(bootstrap, topic).await {
            Ok(parts) if !parts.is_empty() && parts.iter().all(|p| p.isr.contains(&(node as i32)) == in_sync) => {
                return Ok(describe(&parts));
            }
            Ok(parts) => last = describe(&parts),
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            let want = if in_sync { "back in" } else { "out of" };
            return Err(format!("broker {node} not {want} the ISR of every partition of {topic} within {}s ({last})", timeout.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn describe(parts: &[PartitionInfo]) -> String {
    parts.iter().map(|p| format!("p{}: leader {} ISR {}", p.id, p.leader, ids(&p.isr))).collect::<Vec<_>>().join(", ")
}

/// Each broker in turn: SIGTERM (controlled shutdown), proven out of the ISR,
/// `down_for`, started again, proven back in sync before the next one, as an
/// operator's roll does. The window: effect = the first broker out of the ISR,
/// heal = the last broker's start, recovery = the last broker back in sync.
pub async fn rolling_restart(
    env: &mut dyn Environment,
    spec: &FaultSpec,
    clock: Clock,
    mut w: FaultWindow,
    timeout: Duration,
) -> FaultWindow {
    let ep = env.endpoints().clone();
    let (bootstrap, topic) = (ep.kafka_bootstrap.as_str(), ep.events_topic.as_str());
    let mut steps = Vec::new();
    for node in env.kafka_node_ids() {
        let exit = match env.stop_broker(node, false).await {
            Ok(st) => st.unwrap_or_default(),
            Err(e) => {
                w.proof = format!("{}broker {node} could not be stopped: {e}", prefix(&steps));
                return w;
            }
        };
        match wait_isr(bootstrap, topic, node, false, timeout).await {
            Ok(_) => {
                w.effect_seen_at.get_or_insert_with(|| clock.now());
            }
            Err(e) => {
                // The roll goes on (a broker must not stay down), but unproven.
                w.effect_seen_at = None;
                steps.push(format!("broker {node}: {exit}, {e}"));
                let _ = env.start_broker(node).await;
                w.proof = format!("{}; the roll stopped", steps.join("; "));
                return w;
            }
        }
        tokio::time::sleep(spec.down_for).await;
        let started = clock.now();
        if let Err(e) = env.start_broker(node).await {
            w.proof = format!("{}broker {node}: {exit}, left the ISR, could not start again: {e}", prefix(&steps));
            return w;
        }
        let t = Instant::now();
        match wait_isr(bootstrap, topic, node, true, timeout).await {
            Ok(_) => {
                steps.push(format!("broker {node}: {exit}, left the ISR, back in sync {:.1}s after its start", t.elapsed().as_secs_f64()))
            }
            Err(e) => {
                w.healed_at = Some(started);
                w.proof = format!("{}broker {node}: {exit}, left the ISR, started again, but {e}", prefix(&steps));
                return w;
            }
        }
        w.healed_at = Some(started);
    }
    w.recovered_at = Some(clock.now());
    w.proof = steps.join("; ");
    w
}

fn prefix(steps: &[String]) -> String {
    if steps.is_empty() {
        String::new()
    } else {
        format!("{}; ", steps.join("; "))
    }
}
