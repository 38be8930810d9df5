//! Probes through the real client paths: each returns `Ok(what it saw)` when the
//! path works and `Err(what failed)` when it does not, within a short timeout.

use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::services::kafka::{helper_client_config, READY_TOPIC};

/// How long one probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Produces one record (acks=all) to the readiness topic with a fresh producer: the
/// path MinIO and the processor use (bootstrap, metadata, leader, produce).
pub async fn kafka_probe(bootstrap: &str) -> Result<String, String> {
    let started = Instant::now();
    let producer: FutureProducer = helper_client_config(bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", PROBE_TIMEOUT.as_millis().to_string())
        .set("socket.connection.setup.timeout.ms", "1000")
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let sent = producer.send(FutureRecord::to(READY_TOPIC).key("fault-probe").payload("probe"), PROBE_TIMEOUT);
    match tokio::time::timeout(PROBE_TIMEOUT + Duration::from_millis(500), sent).await {
        Ok(Ok(_)) => Ok(format!("produce to {READY_TOPIC} via {bootstrap} acknowledged in {}ms", started.elapsed().as_millis())),
        Ok(Err((e, _))) => Err(format!("produce to {READY_TOPIC} via {bootstrap} failed: {e}")),
        Err(_) => Err(format!("produce to {READY_TOPIC} via {bootstrap}: no acknowledgement within {}ms", started.elapsed().as_millis())),
    }
}

/// Members and state of a consumer group, as the group coordinator reports them
/// (what a rebalance changes).
pub async fn group_probe(bootstrap: &str, group: &str) -> Result<(usize, String), String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = helper_client_config(bootstrap).create().map_err(|e| format!("consumer: {e}"))?;
    let group = group.to_string();
    // The list holds a librdkafka pointer: read it on the blocking thread.
    tokio::task::spawn_blocking(move || {
        let listed = consumer.fetch_group_list(Some(&group), PROBE_TIMEOUT).map_err(|e| format!("describing the consumer group: {e}"))?;
        let g = listed.groups().first().ok_or("the coordinator does not know the group")?;
        Ok((g.members().len(), g.state().to_string()))
    })
    .await
    .map_err(|e| format!("group lookup task: {e}"))?
}

/// HEAD of a bucket through the S3 API.
pub async fn s3_probe(client: &aws_sdk_s3::Client, bucket: &str) -> Result<String, String> {
    let started = Instant::now();
    match tokio::time::timeout(PROBE_TIMEOUT, client.head_bucket().bucket(bucket).send()).await {
        Ok(Ok(_)) => Ok(format!("S3 HEAD {bucket} answered in {}ms", started.elapsed().as_millis())),
        Ok(Err(e)) => Err(format!("S3 HEAD {bucket} failed: {}", crate::services::s3::describe_sdk_error(&e))),
        Err(_) => Err(format!("S3 HEAD {bucket}: no answer within {}ms", PROBE_TIMEOUT.as_millis())),
    }
}
