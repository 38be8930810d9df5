//! Consumers that read a topic, without a consumer group (partitions are assigned,
//! not subscribed), so they never rebalance and never disturb the processor's group:
//! a topic of the harness's own from its beginning, a pipeline's from given offsets.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use harness_model::history::EventSeen;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::records::parse_records;
use super::{ObserveError, Observed, OutputSeen};
use crate::clock::Clock;

/// The most partitions followed: more is a finding, not thousands of fetch sessions.
const MAX_PARTITIONS: usize = 1024;

/// A consumer of every partition of `topic`, each read from its offset in `from`,
/// else from the beginning.
pub(super) async fn assign_all(bootstrap: &str, topic: &str, from: &[(i32, Offset)], group: &str) -> Result<StreamConsumer, ObserveError> {
    let err = |reason: String| ObserveError::Consumer { topic: topic.to_string(), reason };
    let consumer: StreamConsumer = crate::services::kafka::client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        // Small fetch waits: the time a record is seen is a measurement.
        .set("fetch.wait.max.ms", "20")
        .set("socket.connection.setup.timeout.ms", "10000")
        .create()
        .map_err(|e| err(e.to_string()))?;
    let topic_owned = topic.to_string();
    let metadata = {
        let c = &consumer;
        // fetch_metadata blocks; it is short, bounded and happens once per run.
        tokio::task::block_in_place(|| c.fetch_metadata(Some(&topic_owned), Duration::from_secs(15)))
    }
    .map_err(|e| ObserveError::NoPartitions { topic: topic.to_string(), reason: e.to_string() })?;
    let partitions: Vec<i32> =
        metadata.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    if partitions.is_empty() {
        return Err(ObserveError::NoPartitions { topic: topic.to_string(), reason: "topic missing".into() });
    }
    if partitions.len() > MAX_PARTITIONS {
        return Err(err(format!("it has {} partitions; the harness follows at most {MAX_PARTITIONS}", partitions.len())));
    }
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let offset = from.iter().find(|(q, _)| *q == p).map_or(Offset::Beginning, |(_, o)| *o);
        tpl.add_partition_offset(topic, p, offset).map_err(|e| err(e.to_string()))?;
    }
    consumer.assign(&tpl).map_err(|e| err(e.to_string()))?;
    Ok(consumer)
}

pub(super) async fn record_events(consumer: StreamConsumer, observed: Arc<Observed>, clock: Clock) {
    let mut stream = consumer.stream();
    while let Some(msg) = stream.next().await {
        let Ok(msg) = msg else { continue };
        let at = clock.now();
        match parse_records(msg.payload().unwrap_or_default()) {
            Ok(records) => {
                if let Ok(mut events) = observed.events.lock() {
                    events.extend(records.into_iter().map(|r| EventSeen {
                        key: r.key,
                        bucket: r.bucket,
                        event_name: r.event_name,
                        etag: r.etag,
                        partition: msg.partition(),
                        offset: msg.offset(),
                        at,
                    }));
                }
            }
            Err(why) => {
                if let Ok(mut u) = observed.undecodable.lock() {
                    u.push(format!("{}[{}]@{}: {why}", msg.topic(), msg.partition(), msg.offset()));
                }
            }
        }
        observed.changed.notify_waiters();
    }
}

pub(super) async fn record_outputs(consumer: StreamConsumer, observed: Arc<Observed>, clock: Clock) {
    let mut stream = consumer.stream();
    while let Some(msg) = stream.next().await {
        let Ok(msg) = msg else { continue };
        let at = clock.now();
        if let Ok(records) = parse_records(msg.payload().unwrap_or_default()) {
            if let Ok(mut outputs) = observed.outputs.lock() {
                outputs.extend(records.into_iter().map(|r| OutputSeen { key: r.key, version_id: r.version_id, at }));
            }
        }
        observed.changed.notify_waiters();
    }
}
