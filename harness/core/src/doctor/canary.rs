//! The last link: one small PNG through the whole pipeline. Its event must reach
//! the topic and its thumbnail the target bucket; both objects are removed after.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

use super::{Finding, Link, Notes, Target};
use crate::services::canary::{canary_png, high_watermarks, wait_for_object_event_from};
use crate::services::s3::describe_sdk_error;

/// Where the canary goes: a key the source bucket's notification filter lets through.
pub(super) struct Route {
    pub prefix: String,
    pub suffix: String,
    pub partitions: usize,
}

pub(super) async fn check(t: &Target, s3: &aws_sdk_s3::Client, route: &Route, notes: &mut Notes) {
    let nonce = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0));
    let suffix = if route.suffix.is_empty() { ".png" } else { route.suffix.as_str() };
    let key = format!("{}harness-doctor-{nonce}{suffix}", route.prefix);
    let check = format!("one image through the pipeline ({}/{key})", t.source_bucket);
    // Where the topic ends before the upload: the canary's event is read from
    // there, not from the beginning of a topic that may hold years of events.
    let partitions = route.partitions.max(1) as i32;
    let from = high_watermarks(&t.kafka_bootstrap, &t.topic, partitions, t.probe_timeout).await;
    let started = Instant::now();
    let upload = s3.put_object().bucket(&t.source_bucket).key(&key).content_type("image/png").body(ByteStream::from(canary_png())).send();
    if let Err(e) = tokio::time::timeout(t.probe_timeout, upload)
        .await
        .map_err(|_| format!("no answer within {:?}", t.probe_timeout))
        .and_then(|r| r.map_err(|e| describe_sdk_error(&e)))
    {
        notes.push(
            Finding::error(Link::Pipeline, check, format!("upload refused: {e}")).because("the user may not write to the source bucket"),
        );
        return;
    }
    let event = wait_for_object_event_from(&t.kafka_bootstrap, &t.topic, &from, &t.source_bucket, &key, t.canary_timeout);
    let thumbnail = wait_for_thumbnail(s3, &t.target_bucket, &key, t.canary_timeout, started);
    let (event, thumbnail) = tokio::join!(event, thumbnail);
    match (&event, &thumbnail) {
        (Ok(seen), Ok((after, size))) => notes.push(Finding::ok(
            Link::Pipeline,
            check,
            format!("event {} on partition {} offset {}; thumbnail {}/{key} ({size} bytes) {:.1} s after the upload", seen.event_name, seen.partition, seen.offset, t.target_bucket, after.as_secs_f64()),
        )),
        (Err(e), _) => notes.push(
            Finding::error(Link::Pipeline, check, format!("MinIO accepted the upload; {e}"))
                .because("every link answered, but the event never reached the topic: MinIO's target is offline from where MinIO runs, or drops events")
                .fix("read MinIO's log for \"kafka\" errors (kubectl logs <minio pod> | grep -i kafka), then run the doctor from where MinIO runs"),
        ),
        (Ok(seen), Err(e)) => notes.push(
            Finding::error(Link::Pipeline, check, format!("the event arrived (partition {}, offset {}), but {e}", seen.partition, seen.offset))
                .because("the processor did not write the thumbnail: it crashed on the event, wrote another key or bucket, or is too slow")
                .fix(format!("read the processor's log; it must write {}/<same key>", t.target_bucket)),
        ),
    }
    // Every version of the canary's key and its delete markers: in a versioned bucket (a
    // thumbnails bucket often is) a plain delete only hides the object behind a marker.
    for bucket in [&t.source_bucket, &t.target_bucket] {
        let _ = crate::services::s3::remove_prefix(s3, bucket, &key, CANARY_VERSIONS_MAX, t.probe_timeout).await;
    }
}

/// At most this many versions of the canary's key are removed (a processor that
/// rewrites its thumbnail in a loop could make more).
const CANARY_VERSIONS_MAX: usize = 100;

/// Polls for `bucket/key` until it exists; its size and when it appeared.
async fn wait_for_thumbnail(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    timeout: Duration,
    started: Instant,
) -> Result<(Duration, i64), String> {
    let deadline = started + timeout;
    loop {
        if let Ok(Ok(head)) = tokio::time::timeout(Duration::from_secs(2), s3.head_object().bucket(bucket).key(key).send()).await {
            return Ok((started.elapsed(), head.content_length().unwrap_or(0)));
        }
        if Instant::now() >= deadline {
            return Err(format!("no thumbnail {bucket}/{key} within {:?}", timeout));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
