//! Event faults: records the harness publishes to the events topic itself, as MinIO
//! would have (duplicates of delivered events) or as a processor must survive
//! (poison). The broker's acknowledgement of each record, at its partition and
//! offset, is the proof of effect; the processor group committing past all of them
//! is the proof that the processor took them and went on.
//!
//! And the replay: the processor group's committed offsets moved back while every
//! replica is stopped ([`rewind`]), proven by reading them back; the group
//! committing past where it had been is the proof that it consumed them again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness_model::scenario::{FaultSpec, PoisonKind, Published};
use harness_model::HARNESS_KEY_PREFIX;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::observe::group::GroupReader;
use crate::observe::parse_records;
use crate::services::endpoints::Endpoints;
use crate::services::kafka::helper_client_config;

/// Bound on reading what was delivered, and on each acknowledgement.
const STEP: Duration = Duration::from_secs(10);

/// What an event fault published: each record's partition and offset, and a line
/// for the fault's proof.
#[derive(Clone, Debug)]
pub struct PublishedRecords {
    pub offsets: Vec<(i32, i64)>,
    pub summary: String,
}

/// How long a rewind waits for the processor's group to have no member left (a
/// member that did not leave is dropped when its session times out: 45 s by
/// librdkafka's default).
const EMPTY_GROUP_LIMIT: Duration = Duration::from_secs(60);

/// Moves the committed offsets of `group` on the events topic back by `count`
/// events over the partitions (`None`: to the earliest offset), as
/// `kafka-consumer-groups --reset-offsets` does; the processor must be stopped
/// (the broker takes a commit from outside the group only when it is empty, so
/// this waits for that, bounded). Returns the records the group must commit past
/// again (the last one it had committed, per partition moved) and the proof.
pub async fn rewind(ep: &Endpoints, group: &str, count: Option<u32>) -> Result<PublishedRecords, String> {
    let (b, g, t) = (ep.kafka_bootstrap.clone(), group.to_string(), ep.events_topic.clone());
    tokio::task::spawn_blocking(move || rewind_blocking(&b, &g, &t, count)).await.map_err(|e| format!("rewinding: {e}"))?
}

fn rewind_blocking(bootstrap: &str, group: &str, topic: &str, count: Option<u32>) -> Result<PublishedRecords, String> {
    let reader = GroupReader::connect(bootstrap, group, topic, STEP)?;
    let lows = reader.low_watermarks(STEP)?;
    let committed = |what: &str| {
        let offsets = reader.committed(STEP);
        match offsets.error {
            Some(e) => Err(format!("{what}: {e}")),
            None => Ok(offsets.committed),
        }
    };
    let before = committed("before the rewind")?;
    let targets = rewind_targets(&before, &lows, count);
    if targets.is_empty() {
        return Err(format!("consumer group {group} has committed nothing on {topic} that could be consumed again"));
    }
    // A commit from outside the group is taken only once the group is empty: the
    // stopped replicas' leaving, or their sessions timing out.
    let started = Instant::now();
    loop {
        match reader.reset_to(&targets) {
            Ok(()) => break,
            Err(e) if started.elapsed() >= EMPTY_GROUP_LIMIT => {
                return Err(format!(
                    "committing the rewound offsets of group {group} was refused for {} s: {e} (a member of the group is \
                     still there: another consumer with the same group id?)",
                    EMPTY_GROUP_LIMIT.as_secs()
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    let waited = started.elapsed();
    let read_back = committed("after the rewind")?;
    let moved: Vec<String> = targets.iter().map(|(p, o)| format!("{topic}/{p} {}→{o}", before[p])).collect();
    let wrong: Vec<String> = targets
        .iter()
        .filter(|(p, o)| read_back.get(p) != Some(o))
        .map(|(p, o)| format!("{topic}/{p} reads {} instead of {o}", read_back.get(p).map_or("nothing".to_string(), i64::to_string)))
        .collect();
    if !wrong.is_empty() {
        return Err(format!("rewound group {group} ({}), but its offsets read back otherwise: {}", moved.join(", "), wrong.join(", ")));
    }
    let events: i64 = targets.iter().map(|(p, o)| before[p] - o).sum();
    let summary = format!(
        "consumer group {group} reset like `kafka-consumer-groups --reset-offsets`: {} ({events} events to consume again; \
         the group was empty after {:.1} s; read back from the broker)",
        moved.join(", "),
        waited.as_secs_f64()
    );
    // The last record each moved partition had committed: committing past it again
    // means the replayed events were consumed.
    let offsets = targets.keys().map(|p| (*p, before[p] - 1)).collect();
    Ok(PublishedRecords { offsets, summary })
}

/// Where each partition's committed offset goes: back by `count` events dealt out
/// over the partitions one at a time (`None`: to the low watermark), never below
/// the low watermark. Only partitions that move are in the answer.
fn rewind_targets(committed: &BTreeMap<i32, i64>, lows: &BTreeMap<i32, i64>, count: Option<u32>) -> BTreeMap<i32, i64> {
    let floor = |p: &i32| lows.get(p).copied().unwrap_or(0);
    let mut target: BTreeMap<i32, i64> = committed.clone();
    match count {
        None => target.iter_mut().for_each(|(p, o)| *o = floor(p).min(*o)),
        Some(n) => {
            let mut left = n;
            while left > 0 {
                let mut moved = false;
                for (p, o) in target.iter_mut() {
                    if left > 0 && *o > floor(p) {
                        *o -= 1;
                        left -= 1;
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
    }
    target.retain(|p, o| committed[p] > *o);
    target
}

/// One message as it will be (re)published.
struct Outgoing {
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    /// The original's partition for a duplicate (a redelivery goes where the first
    /// copy went); the partitioner's choice for poison.
    partition: Option<i32>,
    what: String,
}

pub async fn publish(ep: &Endpoints, spec: &FaultSpec, what: Published) -> Result<PublishedRecords, String> {
    let outgoing = match what {
        Published::Duplicates => {
            let (b, t) = (ep.kafka_bootstrap.clone(), ep.events_topic.clone());
            let count = spec.events.count.unwrap_or(harness_model::scenario::DEFAULT_DUPLICATES) as usize;
            tokio::task::spawn_blocking(move || delivered(&b, &t, count)).await.map_err(|e| format!("reading the topic: {e}"))??
        }
        Published::Poison => poison(&spec.events.poison, &ep.source_bucket, spec.index),
    };
    if outgoing.is_empty() {
        return Err(format!("topic {} holds no delivered event to publish again", ep.events_topic));
    }
    let producer: FutureProducer = helper_client_config(&ep.kafka_bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", STEP.as_millis().to_string())
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let mut offsets = Vec::new();
    let mut shown = Vec::new();
    for m in &outgoing {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &m.headers {
            headers = headers.insert(rdkafka::message::Header { key: k, value: Some(v) });
        }
        let mut record = FutureRecord::<Vec<u8>, Vec<u8>>::to(&ep.events_topic).payload(&m.payload).headers(headers);
        if let Some(k) = &m.key {
            record = record.key(k);
        }
        if let Some(p) = m.partition {
            record = record.partition(p);
        }
        let delivery = producer.send(record, STEP).await;
        let (partition, offset) = match delivery {
            Ok(d) => (d.partition, d.offset),
            Err((e, _)) => return Err(format!("publishing {} to {}: {e}", m.what, ep.events_topic)),
        };
        offsets.push((partition, offset));
        shown.push(format!("{} at {}/{partition}@{offset}", m.what, ep.events_topic));
    }
    let verb = if what == Published::Duplicates { "published again" } else { "published" };
    let summary =
        format!("{} records {verb}, each acknowledged by the broker: {}", offsets.len(), harness_model::verdict::list(shown.iter()));
    Ok(PublishedRecords { offsets, summary })
}

/// How far back `duplicate_events` reads each partition for events to copy: the
/// topic of a pipeline that already runs may hold millions.
const DUPLICATE_WINDOW: i64 = 10_000;

/// Up to `count` messages already on the topic, spread evenly over what was
/// delivered (at most the last [`DUPLICATE_WINDOW`] of each partition), the
/// pipeline's own events first (the harness's canary only when there is nothing
/// else). Reads up to the high watermarks of when it started.
fn delivered(bootstrap: &str, topic: &str, count: usize) -> Result<Vec<Outgoing>, String> {
    let consumer: BaseConsumer = helper_client_config(bootstrap)
        .set("group.id", "_harness-duplicates")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let metadata = consumer.fetch_metadata(Some(topic), STEP).map_err(|e| format!("metadata of {topic}: {e}"))?;
    let partitions: Vec<i32> =
        metadata.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, STEP).map_err(|e| format!("watermarks of {topic}/{p}: {e}"))?;
        if high > low {
            ends.push((p, high));
            let from = low.max(high - DUPLICATE_WINDOW);
            tpl.add_partition_offset(topic, p, Offset::Offset(from)).map_err(|e| e.to_string())?;
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&tpl).map_err(|e| format!("assigning {topic}: {e}"))?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let deadline = std::time::Instant::now() + STEP;
    let mut done: Vec<i32> = Vec::new();
    while done.len() < ends.len() && std::time::Instant::now() < deadline {
        let Some(Ok(msg)) = consumer.poll(Duration::from_millis(200)) else { continue };
        let (p, o) = (msg.partition(), msg.offset());
        let end = ends.iter().find(|(q, _)| *q == p).map_or(0, |(_, h)| *h);
        if o >= end {
            continue;
        }
        if o + 1 >= end && !done.contains(&p) {
            done.push(p);
        }
        let payload = msg.payload().unwrap_or_default().to_vec();
        let keys: Vec<String> = parse_records(&payload).map(|r| r.into_iter().map(|r| r.key).collect()).unwrap_or_default();
        let headers = msg
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
            .unwrap_or_default();
        let what = format!("a copy of {}", keys.first().map_or_else(|| format!("{topic}/{p}@{o}"), |k| format!("{k:?}")));
        let m = Outgoing { key: msg.key().map(<[u8]>::to_vec), payload, headers, partition: Some(p), what };
        if keys.iter().any(|k| k.starts_with(HARNESS_KEY_PREFIX)) {
            theirs.push(m);
        } else {
            ours.push(m);
        }
    }
    let pool = if ours.is_empty() { theirs } else { ours };
    Ok(spread(pool, count))
}

/// `count` items evenly spaced through `pool` (all of them when it has fewer).
fn spread<T>(pool: Vec<T>, count: usize) -> Vec<T> {
    let n = pool.len();
    if n <= count {
        return pool;
    }
    let wanted: Vec<usize> = (0..count).map(|i| i * n / count).collect();
    pool.into_iter().enumerate().filter(|(i, _)| wanted.contains(i)).map(|(_, m)| m).collect()
}

/// The poison records: keys no upload has, so that any thumbnail made for them is a
/// phantom the checker names.
fn poison(kinds: &[PoisonKind], source_bucket: &str, index: u32) -> Vec<Outgoing> {
    kinds
        .iter()
        .map(|k| {
            let key = format!("poison/fault-{index}/{}.jpg", k.key().replace('_', "-"));
            let (bucket, payload) = match k {
                PoisonKind::MalformedJson => {
                    let full = minio_event("s3:ObjectCreated:Put", source_bucket, &key).to_string();
                    // Cut off mid-record, as a truncated write would leave it.
                    (source_bucket.to_string(), full.as_bytes()[..full.len() / 2].to_vec())
                }
                PoisonKind::MissingObject => {
                    (source_bucket.to_string(), minio_event("s3:ObjectCreated:Put", source_bucket, &key).to_string().into_bytes())
                }
                PoisonKind::Removal => {
                    (source_bucket.to_string(), minio_event("s3:ObjectRemoved:Delete", source_bucket, &key).to_string().into_bytes())
                }
                PoisonKind::OtherBucket => {
                    let other = format!("{source_bucket}-other");
                    let event = minio_event("s3:ObjectCreated:Put", &other, &key).to_string().into_bytes();
                    (other, event)
                }
            };
            Outgoing {
                key: Some(format!("{bucket}/{key}").into_bytes()),
                payload,
                headers: Vec::new(),
                partition: None,
                what: format!("{} ({key:?})", k.key()),
            }
        })
        .collect()
}

/// A Kafka message as MinIO's Kafka target writes it: one record, the key
/// URL-encoded in the record (these keys need no escaping).
fn minio_event(event: &str, bucket: &str, key: &str) -> serde_json::Value {
    let now = crate::run::ids::rfc3339(std::time::SystemTime::now());
    let removal = event.starts_with("s3:ObjectRemoved:");
    let object = if removal {
        json!({ "key": key, "sequencer": "1800000000000000" })
    } else {
        json!({
            "key": key,
            "size": 1024,
            "eTag": "0f343b0931126a20f133d67c2b018a3b",
            "contentType": "image/jpeg",
            "userMetadata": { "content-type": "image/jpeg" },
            "sequencer": "1800000000000000"
        })
    };
    json!({
        "EventName": event,
        "Key": format!("{bucket}/{key}"),
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": now,
            "eventName": event,
            "userIdentity": { "principalId": "harness" },
            "requestParameters": { "principalId": "harness", "region": "", "sourceIPAddress": "127.0.0.1" },
            "responseElements": { "x-amz-request-id": "harness-poison", "x-minio-origin-endpoint": "" },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": { "name": bucket, "ownerIdentity": { "principalId": "harness" }, "arn": format!("arn:aws:s3:::{bucket}") },
                "object": object
            },
            "source": { "host": "127.0.0.1", "port": "", "userAgent": "harness (poison_event)" }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_picks_evenly_and_never_more_than_there_is() {
        assert_eq!(spread((0..10).collect(), 3), vec![0, 3, 6]);
        assert_eq!(spread((0..2).collect(), 5), vec![0, 1]);
        assert_eq!(spread((0..4).collect(), 4), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_rewind_deals_its_count_over_the_partitions_and_stops_at_the_low_watermark() {
        let map = |v: &[(i32, i64)]| v.iter().copied().collect::<BTreeMap<_, _>>();
        let committed = map(&[(0, 10), (1, 3), (2, 7)]);
        let lows = map(&[(0, 0), (1, 2), (2, 7), (3, 0)]);
        assert_eq!(rewind_targets(&committed, &lows, None), map(&[(0, 0), (1, 2)]), "all: to the low watermark; 2 has nothing to replay");
        assert_eq!(rewind_targets(&committed, &lows, Some(3)), map(&[(0, 8), (1, 2)]), "one at a time while a partition has room");
        assert_eq!(rewind_targets(&committed, &lows, Some(100)), map(&[(0, 0), (1, 2)]), "never below the low watermark");
        assert!(rewind_targets(&map(&[(0, 5)]), &map(&[(0, 5)]), None).is_empty(), "nothing committed beyond what is on the topic");
        assert!(rewind_targets(&BTreeMap::new(), &lows, Some(4)).is_empty(), "a group that committed nothing has nothing to replay");
    }

    #[test]
    fn poison_is_what_each_kind_says_it_is() {
        let out = poison(&PoisonKind::ALL, "images", 3);
        assert_eq!(out.len(), 4);
        assert!(parse_records(&out[0].payload).is_err(), "malformed_json must not parse");
        let created = parse_records(&out[1].payload).unwrap();
        assert_eq!((created[0].bucket.as_str(), created[0].event_name.as_str()), ("images", "s3:ObjectCreated:Put"));
        assert_eq!(created[0].key, "poison/fault-3/missing-object.jpg");
        assert_eq!(parse_records(&out[2].payload).unwrap()[0].event_name, "s3:ObjectRemoved:Delete");
        assert_eq!(parse_records(&out[3].payload).unwrap()[0].bucket, "images-other");
        assert!(out.iter().all(|m| !String::from_utf8_lossy(m.key.as_deref().unwrap()).contains(HARNESS_KEY_PREFIX)));
    }
}
