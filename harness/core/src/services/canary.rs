//! The canary: one small PNG uploaded to the source bucket whose MinIO event
//! must arrive on the events topic before a run may start. It proves the whole
//! notification path (bucket config → MinIO's Kafka target → broker → topic)
//! through the same clients the run uses.

use std::io::Cursor;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::kafka::helper_client_config;
use super::s3::describe_sdk_error;

/// Where canaries live in the source bucket; checkers should ignore this prefix.
pub const CANARY_PREFIX: &str = "_harness/canary/";

/// `_harness/canary/<nonce>.png`.
pub fn canary_key(nonce: &str) -> String {
    format!("{CANARY_PREFIX}{nonce}.png")
}

/// A valid 32×24 PNG (a gradient), so a processor that meets the canary event
/// later can resize it like any other upload.
pub fn canary_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([(x * 8) as u8, (y * 10) as u8, 128]));
    let mut out = Cursor::new(Vec::new());
    // Encoding a small in-memory image into a Vec cannot fail.
    let _ = img.write_to(&mut out, image::ImageFormat::Png);
    out.into_inner()
}

/// How the canary failed.
#[derive(Debug)]
pub enum CanaryError {
    /// The upload or the consumer could not even be set up.
    Setup(String),
    /// MinIO accepted the upload but no event arrived in time.
    NoEvent,
}

/// A MinIO event record seen on a topic.
#[derive(Clone, Debug)]
pub struct SeenEvent {
    pub event_name: String,
    pub partition: i32,
    pub offset: i64,
}

/// Uploads the canary to `bucket/key` and waits up to `timeout` for its event
/// on `topic` (which has `partitions` partitions).
pub async fn run_canary(
    s3: &aws_sdk_s3::Client,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    bucket: &str,
    key: &str,
    timeout: Duration,
) -> Result<SeenEvent, CanaryError> {
    // Read from where the partitions end before the upload: nothing can be missed,
    // nothing older is read (an existing pipeline's topic may be long), and with
    // explicit partitions there is no group join to wait for.
    let from = high_watermarks(bootstrap, topic, partitions, timeout.min(WATERMARKS_TIMEOUT)).await;
    run_canary_from(s3, bootstrap, topic, &from, bucket, key, timeout).await
}

/// [`run_canary`] reading each partition from the offset `from` gives (the topic's
/// ends, taken with [`high_watermarks`] before the upload, by a caller that needs them
/// too).
pub async fn run_canary_from(
    s3: &aws_sdk_s3::Client,
    bootstrap: &str,
    topic: &str,
    from: &[(i32, Offset)],
    bucket: &str,
    key: &str,
    timeout: Duration,
) -> Result<SeenEvent, CanaryError> {
    let consumer = assigned_consumer(bootstrap, topic, from).map_err(CanaryError::Setup)?;
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("image/png")
        .body(ByteStream::from(canary_png()))
        .send()
        .await
        .map_err(|e| CanaryError::Setup(format!("uploading {bucket}/{key}: {}", describe_sdk_error(&e))))?;
    match tokio::time::timeout(timeout, next_event_for(&consumer, bucket, key)).await {
        Ok(Ok(seen)) => Ok(seen),
        Ok(Err(e)) => Err(CanaryError::Setup(e)),
        Err(_) => Err(CanaryError::NoEvent),
    }
}

/// Waits up to `timeout` for MinIO's event about `bucket/key` on `topic`,
/// reading every partition from the beginning. For probes and tests.
pub async fn wait_for_object_event(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    bucket: &str,
    key: &str,
    timeout: Duration,
) -> Result<SeenEvent, String> {
    let from: Vec<(i32, Offset)> = (0..partitions.max(1)).map(|p| (p, Offset::Beginning)).collect();
    wait_for_object_event_from(bootstrap, topic, &from, bucket, key, timeout).await
}

/// [`wait_for_object_event`] reading each partition from the offset `from` gives
/// (taken with [`high_watermarks`] before the upload: only newer events are read).
pub async fn wait_for_object_event_from(
    bootstrap: &str,
    topic: &str,
    from: &[(i32, Offset)],
    bucket: &str,
    key: &str,
    timeout: Duration,
) -> Result<SeenEvent, String> {
    let consumer = assigned_consumer(bootstrap, topic, from)?;
    tokio::time::timeout(timeout, next_event_for(&consumer, bucket, key))
        .await
        .unwrap_or_else(|_| Err(format!("no event for {bucket}/{key} on {topic} within {timeout:?}")))
}

/// Longest wait for a topic's high watermarks.
const WATERMARKS_TIMEOUT: Duration = Duration::from_secs(5);

/// Where each of the topic's `partitions` ends now. A partition whose end cannot
/// be read within `timeout` is read from its beginning instead: slower on a long
/// topic, never blind.
pub async fn high_watermarks(bootstrap: &str, topic: &str, partitions: i32, timeout: Duration) -> Vec<(i32, Offset)> {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    let read = tokio::task::spawn_blocking(move || {
        let consumer: Result<BaseConsumer, _> = helper_client_config(&b).set("group.id", "_harness_canary").create();
        let deadline = std::time::Instant::now() + timeout;
        (0..partitions.max(1))
            .map(|p| {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let end = consumer.as_ref().ok().and_then(|c| c.fetch_watermarks(&t, p, left).ok()).map(|(_, high)| high);
                (p, end.map_or(Offset::Beginning, Offset::Offset))
            })
            .collect()
    });
    read.await.unwrap_or_else(|_| (0..partitions.max(1)).map(|p| (p, Offset::Beginning)).collect())
}

fn assigned_consumer(bootstrap: &str, topic: &str, from: &[(i32, Offset)]) -> Result<StreamConsumer, String> {
    let consumer: StreamConsumer = helper_client_config(bootstrap)
        .set("group.id", "_harness_canary")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("consumer for {topic}: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    for &(p, offset) in from {
        assignment.add_partition_offset(topic, p, offset).map_err(|e| format!("assigning {topic}/{p}: {e}"))?;
    }
    consumer.assign(&assignment).map_err(|e| format!("assigning {topic}: {e}"))?;
    Ok(consumer)
}

async fn next_event_for(consumer: &StreamConsumer, bucket: &str, key: &str) -> Result<SeenEvent, String> {
    let wanted = format!("{bucket}/{key}");
    loop {
        let msg = match consumer.recv().await {
            Ok(msg) => msg,
            // librdkafka reconnects by itself: a broker that does not answer yet (a pod
            // just started, a node port not yet routed, a loaded machine) is a wait,
            // which the caller's timeout bounds, not a verdict.
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(format!("consuming: {e}")),
        };
        let Some(payload) = msg.payload() else {
            continue;
        };
        if let Some(event_name) = event_about(payload, &wanted) {
            return Ok(SeenEvent { event_name, partition: msg.partition(), offset: msg.offset() });
        }
    }
}

/// The event name of a MinIO Kafka message if it is about `bucket/key`
/// (MinIO's message is `{"EventName":…,"Key":"bucket/key","Records":[…]}` with
/// the key unescaped).
pub fn event_about(payload: &[u8], bucket_and_key: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if value.get("Key")?.as_str()? != bucket_and_key {
        return None;
    }
    Some(value.get("EventName")?.as_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_is_a_decodable_png_under_the_prefix() {
        let png = canary_png();
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!((img.width(), img.height()), (32, 24));
        assert_eq!(canary_key("ab12"), "_harness/canary/ab12.png");
    }

    #[test]
    fn events_are_matched_on_bucket_and_key() {
        let payload = br#"{"EventName":"s3:ObjectCreated:Put","Key":"images/_harness/canary/x.png","Records":[]}"#;
        assert_eq!(event_about(payload, "images/_harness/canary/x.png").as_deref(), Some("s3:ObjectCreated:Put"));
        assert_eq!(event_about(payload, "images/other.png"), None);
        assert_eq!(event_about(b"not json", "images/x"), None);
    }
}
