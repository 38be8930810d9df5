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
    produce_probe(bootstrap, 0, PROBE_TIMEOUT).await
}

/// [`kafka_probe`] with a payload of `payload` bytes (at least a few) and its own
/// timeout, for links that are slow on purpose.
pub(crate) async fn produce_probe(bootstrap: &str, payload: usize, timeout: Duration) -> Result<String, String> {
    let started = Instant::now();
    let producer: FutureProducer = helper_client_config(bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .set("socket.connection.setup.timeout.ms", "1000")
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let body = vec![b'p'; payload.max(5)];
    let sent = producer.send(FutureRecord::to(READY_TOPIC).key("fault-probe").payload(&body), timeout);
    match tokio::time::timeout(timeout + Duration::from_millis(500), sent).await {
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

/// The broker addresses a bootstrap server hands out (`host:port`, as advertised
/// for the listener the bootstrap went through): where clients connect next.
///
/// Spoken as one raw Metadata request (v4, no topics) to the first address of
/// `bootstrap` rather than through librdkafka, which sends its metadata requests
/// to the brokers it has learned, i.e. to exactly the advertised address that may
/// not answer.
pub async fn advertised_brokers(bootstrap: &str) -> Result<Vec<String>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = bootstrap.split(',').next().unwrap_or_default().trim().to_string();
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
        s.write_all(&metadata_request()).await.map_err(|e| format!("sending to {addr}: {e}"))?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.map_err(|e| format!("reading from {addr}: {e}"))?;
        let len = i32::from_be_bytes(len);
        if !(8..=1 << 20).contains(&len) {
            return Err(format!("{addr} did not answer like a Kafka broker (response length {len})"));
        }
        let mut body = vec![0u8; len as usize];
        s.read_exact(&mut body).await.map_err(|e| format!("reading from {addr}: {e}"))?;
        parse_metadata_brokers(&body).ok_or_else(|| format!("{addr} did not answer like a Kafka broker"))
    };
    tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no metadata from {addr} within {}ms", PROBE_TIMEOUT.as_millis()))?
}

/// Metadata request v4 (the oldest Kafka 4 still serves) for no topic: only the
/// brokers come back.
fn metadata_request() -> Vec<u8> {
    let client = b"harness";
    let mut body = Vec::new();
    body.extend_from_slice(&3i16.to_be_bytes()); // api key: Metadata
    body.extend_from_slice(&4i16.to_be_bytes()); // api version
    body.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    body.extend_from_slice(&(client.len() as i16).to_be_bytes());
    body.extend_from_slice(client);
    body.extend_from_slice(&0i32.to_be_bytes()); // topics: none
    body.push(0); // allow_auto_topic_creation: false
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// `host:port` of each broker in a Metadata v4 response body (after the length).
fn parse_metadata_brokers(body: &[u8]) -> Option<Vec<String>> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let part = body.get(at..at + n)?;
        at += n;
        Some(part)
    };
    let correlation = i32::from_be_bytes(take(4)?.try_into().ok()?);
    if correlation != 1 {
        return None;
    }
    let _throttle = take(4)?;
    let brokers = i32::from_be_bytes(take(4)?.try_into().ok()?);
    if !(0..=10_000).contains(&brokers) {
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..brokers {
        let _node = take(4)?;
        let host_len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let host = std::str::from_utf8(take(usize::try_from(host_len).ok()?)?).ok()?.to_string();
        let port = i32::from_be_bytes(take(4)?.try_into().ok()?);
        let rack_len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        if rack_len > 0 {
            take(rack_len as usize)?;
        }
        out.push(format!("{host}:{port}"));
    }
    Some(out)
}

/// One partition as the cluster's metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: i32,
    /// Node id of the leader; negative while there is none.
    pub leader: i32,
    pub isr: Vec<i32>,
}

/// Leader and in-sync replicas of every partition of `topic`, from the metadata
/// any reachable broker of `bootstrap` serves (what a client would be told).
pub async fn topic_partitions(bootstrap: &str, topic: &str) -> Result<Vec<PartitionInfo>, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer =
        helper_client_config(bootstrap).set("socket.connection.setup.timeout.ms", "1000").create().map_err(|e| format!("consumer: {e}"))?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let md = consumer.fetch_metadata(Some(&topic), PROBE_TIMEOUT).map_err(|e| format!("metadata request: {e}"))?;
        let t = md.topics().iter().find(|t| t.name() == topic).ok_or_else(|| format!("no metadata for topic {topic}"))?;
        if let Some(e) = t.error() {
            return Err(format!("metadata of {topic}: {e:?}"));
        }
        let mut parts: Vec<PartitionInfo> =
            t.partitions().iter().map(|p| PartitionInfo { id: p.id(), leader: p.leader(), isr: p.isr().to_vec() }).collect();
        parts.sort_by_key(|p| p.id);
        Ok(parts)
    })
    .await
    .map_err(|e| format!("metadata task: {e}"))?
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

#[cfg(test)]
mod tests {
    use super::*;

    fn response(brokers: &[(i32, &str, i32, Option<&str>)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&(brokers.len() as i32).to_be_bytes());
        for (node, host, port, rack) in brokers {
            b.extend_from_slice(&node.to_be_bytes());
            b.extend_from_slice(&(host.len() as i16).to_be_bytes());
            b.extend_from_slice(host.as_bytes());
            b.extend_from_slice(&port.to_be_bytes());
            match rack {
                None => b.extend_from_slice(&(-1i16).to_be_bytes()),
                Some(r) => {
                    b.extend_from_slice(&(r.len() as i16).to_be_bytes());
                    b.extend_from_slice(r.as_bytes());
                }
            }
        }
        b.extend_from_slice(&[0xff, 0xff]); // cluster id and the rest: ignored
        b
    }

    #[test]
    fn metadata_brokers_are_read_with_and_without_racks() {
        let body = response(&[(1, "127.0.0.1", 40001, None), (2, "kafka-2.internal", 9092, Some("rack-a"))]);
        assert_eq!(parse_metadata_brokers(&body).unwrap(), ["127.0.0.1:40001", "kafka-2.internal:9092"]);
    }

    #[test]
    fn anything_else_is_not_a_broker_answer() {
        assert_eq!(parse_metadata_brokers(b"HTTP/1.1 400 Bad Request\r\n"), None);
        let body = response(&[(1, "127.0.0.1", 40001, None)]);
        assert_eq!(parse_metadata_brokers(&body[..body.len() - 8]), None, "truncated");
        let req = metadata_request();
        assert_eq!(i32::from_be_bytes(req[..4].try_into().unwrap()) as usize, req.len() - 4);
        assert_eq!(&req[4..8], &[0, 3, 0, 4], "Metadata v4");
    }
}
