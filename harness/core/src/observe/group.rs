//! The processor's consumer group as Kafka records it: its committed offsets on the
//! events topic. Read with the group's id but without joining it (an OffsetFetch,
//! no subscription), so the processor's group is never rebalanced by the harness.
//! The one write is [`GroupReader::reset_to`], the `replay` fault's, while the
//! group is empty.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use harness_model::history::GroupOffsets;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::services::kafka::helper_client_config;

/// A reader of one group's committed offsets on one topic, kept for a whole drain.
#[derive(Clone)]
pub struct GroupReader {
    consumer: Arc<BaseConsumer>,
    group: String,
    topic: String,
    partitions: Arc<Vec<i32>>,
}

impl GroupReader {
    /// Connects and learns the topic's partitions. Blocking; bounded by `timeout`.
    pub fn connect(bootstrap: &str, group: &str, topic: &str, timeout: Duration) -> Result<Self, String> {
        let consumer: BaseConsumer = helper_client_config(bootstrap)
            .set("group.id", group)
            // Never commit: this client only reads what the processor committed.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .map_err(|e| format!("Kafka client: {e}"))?;
        let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| format!("metadata of topic {topic}: {e}"))?;
        let partitions: Vec<i32> =
            metadata.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        if partitions.is_empty() {
            return Err(format!("topic {topic} has no partitions"));
        }
        Ok(GroupReader {
            consumer: Arc::new(consumer),
            group: group.to_string(),
            topic: topic.to_string(),
            partitions: Arc::new(partitions),
        })
    }

    /// The group's committed offsets now. Blocking; bounded by `timeout`.
    pub fn committed(&self, timeout: Duration) -> GroupOffsets {
        let mut tpl = TopicPartitionList::new();
        for p in self.partitions.iter() {
            tpl.add_partition(&self.topic, *p);
        }
        let mut out = GroupOffsets { group: self.group.clone(), topic: self.topic.clone(), ..Default::default() };
        match self.consumer.committed_offsets(tpl, timeout) {
            Ok(list) => {
                out.committed = list
                    .elements()
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((e.partition(), o)),
                        _ => None,
                    })
                    .collect::<BTreeMap<_, _>>();
            }
            Err(e) => out.error = Some(format!("fetching the committed offsets of group {}: {e}", self.group)),
        }
        out
    }

    /// Events of the topic the group has not committed yet: per partition, from its
    /// committed offset (or the low watermark, where it committed none) to the high
    /// watermark. `None` when the group committed nothing or Kafka did not answer.
    /// Blocking; each request bounded by `timeout`.
    pub fn lag(&self, timeout: Duration) -> Option<i64> {
        let offsets = self.committed(timeout);
        if offsets.error.is_some() || offsets.committed.is_empty() {
            return None;
        }
        let mut total = 0;
        for p in self.partitions.iter() {
            let (low, high) = self.consumer.fetch_watermarks(&self.topic, *p, timeout).ok()?;
            let from = offsets.committed.get(p).copied().unwrap_or(low).max(low);
            total += (high - from).max(0);
        }
        Some(total)
    }

    /// Each partition's low watermark (the earliest offset still on the topic).
    /// Blocking; each request bounded by `timeout`.
    pub fn low_watermarks(&self, timeout: Duration) -> Result<BTreeMap<i32, i64>, String> {
        let mut out = BTreeMap::new();
        for p in self.partitions.iter() {
            let (low, _) =
                self.consumer.fetch_watermarks(&self.topic, *p, timeout).map_err(|e| format!("watermarks of {}/{p}: {e}", self.topic))?;
            out.insert(*p, low);
        }
        Ok(out)
    }

    /// Commits `offsets` as the group's, from outside it (no member id, no
    /// generation), as `kafka-consumer-groups --reset-offsets` does. The broker
    /// takes it only while the group is empty. Blocking.
    pub fn reset_to(&self, offsets: &BTreeMap<i32, i64>) -> Result<(), String> {
        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in offsets {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(o)).map_err(|e| e.to_string())?;
        }
        self.consumer.commit(&tpl, CommitMode::Sync).map_err(|e| e.to_string())
    }

    /// [`GroupReader::committed`] off the async runtime.
    pub async fn committed_async(&self, timeout: Duration) -> GroupOffsets {
        let me = self.clone();
        let group = self.group.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || me.committed(timeout)).await.unwrap_or_else(|e| GroupOffsets {
            group,
            topic,
            error: Some(format!("reading the committed offsets: {e}")),
            ..Default::default()
        })
    }
}

/// Connects off the async runtime; the error says why, for the report.
pub async fn connect(bootstrap: &str, group: &str, topic: &str, timeout: Duration) -> Result<GroupReader, String> {
    let (b, g, t) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || GroupReader::connect(&b, &g, &t, timeout)).await.map_err(|e| e.to_string())?
}
