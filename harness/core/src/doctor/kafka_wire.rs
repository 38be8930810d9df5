//! What answers at a Kafka address, told from the bytes it sends back: a PLAINTEXT
//! listener (and what it advertises), a SASL listener (and its mechanisms), a TLS
//! listener, an HTTP server, or something else. librdkafka and sarama only say
//! "timed out" or "run out of available brokers" for all of these; speaking the
//! protocol by hand, one request at a time, tells them apart.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestHeader, SaslHandshakeRequest,
    SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Highest Metadata version asked for (Kafka 2.8 to 4.x all answer it or lower).
const METADATA_MAX: i16 = 12;
/// A response larger than this is not Kafka talking (an HTTP "HTTP/" reads as 1.2 GB).
const MAX_RESPONSE: usize = 64 << 20;

/// One broker as a listener advertises it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Advertised {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl Advertised {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The topic as the listener's metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TopicState {
    /// Kafka's error code for the topic: 0, or 3 (UNKNOWN_TOPIC_OR_PARTITION) etc.
    pub error_code: i16,
    pub partitions: usize,
    /// Partitions without a leader (leader id -1) or with an error.
    pub leaderless: usize,
}

/// What answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listener {
    /// A PLAINTEXT Kafka listener answered Metadata.
    Plaintext { brokers: Vec<Advertised>, topic: Option<TopicState> },
    /// The listener wants a SASL handshake first; it enables these mechanisms.
    Sasl { mechanisms: Vec<String> },
    /// A TLS server: it answered Kafka bytes with a TLS alert.
    Tls,
    /// An HTTP server (its status line).
    Http { status_line: String },
    /// It accepted the connection and closed it on a Kafka request without a word:
    /// a TLS listener that sends no alert, or a SASL listener that refused even
    /// the handshake.
    ClosedOnRequest,
    /// It answered with bytes that are no Kafka response.
    NotKafka { first_bytes: String },
}

/// Why nothing could be asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("the address {0:?} is not host:port")]
    BadAddress(String),
    #[error("the name does not resolve: {0}")]
    Unresolvable(String),
    #[error("connection refused (nothing listens there)")]
    Refused,
    #[error("no answer within {0:?} (a firewall, a wrong host, or a listener that never answers)")]
    Timeout(Duration),
    #[error("{0}")]
    Io(String),
}

/// Asks `addr` what it is, within `timeout` for each step; with `topic`, the
/// Metadata request also asks for that topic.
pub async fn probe(addr: &str, topic: Option<&str>, timeout: Duration) -> Result<Listener, ProbeError> {
    let mut conn = connect(addr, timeout).await?;
    // ApiVersions is answered by every Kafka listener, SASL ones included.
    let versions = match exchange(&mut conn, ApiKey::ApiVersions, 0, &ApiVersionsRequest::default(), timeout).await? {
        Answer::Kafka(mut body) => match ApiVersionsResponse::decode(&mut body, 0) {
            Ok(r) => r,
            Err(e) => return Ok(Listener::NotKafka { first_bytes: format!("an ApiVersions answer that does not decode: {e}") }),
        },
        Answer::Other(other) => return Ok(other),
    };
    let metadata_version = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Metadata as i16)
        .map(|k| k.max_version.min(METADATA_MAX))
        .unwrap_or(METADATA_MAX);
    let mut request = MetadataRequest::default().with_allow_auto_topic_creation(false);
    request.topics = Some(
        topic
            .map(|t| vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))])
            .unwrap_or_default(),
    );
    match exchange(&mut conn, ApiKey::Metadata, metadata_version, &request, timeout).await? {
        Answer::Kafka(mut body) => {
            let r = MetadataResponse::decode(&mut body, metadata_version)
                .map_err(|e| ProbeError::Io(format!("a Metadata answer that does not decode: {e}")))?;
            let brokers = r.brokers.iter().map(|b| Advertised { node_id: b.node_id.0, host: b.host.to_string(), port: b.port }).collect();
            let topic = topic.and_then(|_| r.topics.first()).map(|t| TopicState {
                error_code: t.error_code,
                partitions: t.partitions.len(),
                leaderless: t.partitions.iter().filter(|p| p.leader_id.0 < 0 || p.error_code != 0).count(),
            });
            Ok(Listener::Plaintext { brokers, topic })
        }
        // A SASL listener closes on anything but ApiVersions and SaslHandshake
        // ("Unexpected Kafka request of type METADATA during SASL handshake").
        Answer::Other(Listener::ClosedOnRequest) => sasl_mechanisms(addr, timeout).await,
        Answer::Other(other) => Ok(other),
    }
}

/// Asks for a SASL handshake on a fresh connection: a SASL listener answers with
/// the mechanisms it enables.
async fn sasl_mechanisms(addr: &str, timeout: Duration) -> Result<Listener, ProbeError> {
    let mut conn = connect(addr, timeout).await?;
    let request = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    match exchange(&mut conn, ApiKey::SaslHandshake, 1, &request, timeout).await? {
        Answer::Kafka(mut body) => match SaslHandshakeResponse::decode(&mut body, 1) {
            Ok(r) => Ok(Listener::Sasl { mechanisms: r.mechanisms.iter().map(|m| m.to_string()).collect() }),
            Err(_) => Ok(Listener::ClosedOnRequest),
        },
        Answer::Other(other) => Ok(other),
    }
}

async fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, ProbeError> {
    if addr.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
        return Err(ProbeError::BadAddress(addr.to_string()));
    }
    let resolved = match tokio::time::timeout(timeout, tokio::net::lookup_host(addr)).await {
        Err(_) => return Err(ProbeError::Timeout(timeout)),
        Ok(Err(e)) => return Err(ProbeError::Unresolvable(e.to_string())),
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| ProbeError::Unresolvable("no address".into()))?,
    };
    match tokio::time::timeout(timeout, TcpStream::connect(resolved)).await {
        Err(_) => Err(ProbeError::Timeout(timeout)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(ProbeError::Refused),
        Ok(Err(e)) => Err(ProbeError::Io(e.to_string())),
        Ok(Ok(s)) => Ok(s),
    }
}

/// A response body, or what the bytes said instead.
enum Answer {
    Kafka(Bytes),
    Other(Listener),
}

async fn exchange<R>(conn: &mut TcpStream, key: ApiKey, version: i16, request: &R, timeout: Duration) -> Result<Answer, ProbeError>
where
    R: Encodable + HeaderVersion,
{
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("harness-doctor")));
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    // kafka-protocol's errors are anyhow errors; only their text is kept.
    let io = |e: &dyn std::fmt::Display| ProbeError::Io(format!("encoding the {key:?} request: {e}"));
    header.encode(&mut frame, R::header_version(version)).map_err(|e| io(&e))?;
    request.encode(&mut frame, version).map_err(|e| io(&e))?;
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    let round_trip = async {
        conn.write_all(&frame).await?;
        let mut first = [0u8; 4];
        let n = read_some(conn, &mut first).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(Answer::Other(Listener::ClosedOnRequest));
        }
        if n < 4 {
            return Ok(Answer::Other(classify(&first[..n])));
        }
        let size = i32::from_be_bytes(first) as usize;
        if first.starts_with(b"HTTP") || first[0] == 0x15 || !(4..=MAX_RESPONSE).contains(&size) {
            let mut rest = vec![0u8; 120];
            let more = tokio::time::timeout(Duration::from_millis(300), read_some(conn, &mut rest)).await.unwrap_or(Ok(0)).unwrap_or(0);
            let mut seen = first.to_vec();
            seen.extend_from_slice(&rest[..more]);
            return Ok(Answer::Other(classify(&seen)));
        }
        let mut body = vec![0u8; size];
        conn.read_exact(&mut body).await?;
        let mut body = Bytes::from(body);
        // Response header: correlation id, then tagged fields in the flexible
        // header (ApiVersions always answers with header v0).
        let _correlation = body.get_i32();
        let flexible = key != ApiKey::ApiVersions && response_header_version(key, version) >= 1;
        if flexible {
            skip_tagged_fields(&mut body);
        }
        Ok(Answer::Kafka(body))
    };
    match tokio::time::timeout(timeout, round_trip).await {
        Err(_) => Err(ProbeError::Timeout(timeout)),
        Ok(Err(e)) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof) => {
            Ok(Answer::Other(Listener::ClosedOnRequest))
        }
        Ok(Err(e)) => Err(ProbeError::Io(e.to_string())),
        Ok(Ok(a)) => Ok(a),
    }
}

async fn read_some(conn: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = conn.read(&mut buf[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

fn response_header_version(key: ApiKey, version: i16) -> i16 {
    match key {
        ApiKey::Metadata => MetadataResponse::header_version(version),
        ApiKey::SaslHandshake => SaslHandshakeResponse::header_version(version),
        _ => ApiVersionsResponse::header_version(version),
    }
}

fn skip_tagged_fields(body: &mut Bytes) {
    let count = read_unsigned_varint(body);
    for _ in 0..count {
        let _tag = read_unsigned_varint(body);
        let size = read_unsigned_varint(body) as usize;
        body.advance(size.min(body.remaining()));
    }
}

fn read_unsigned_varint(body: &mut Bytes) -> u32 {
    let (mut value, mut shift) = (0u32, 0);
    while body.has_remaining() && shift < 35 {
        let b = body.get_u8();
        value |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    value
}

/// Names what sent `bytes` in place of a Kafka response.
fn classify(bytes: &[u8]) -> Listener {
    if bytes.starts_with(b"HTTP/") {
        let text = String::from_utf8_lossy(bytes);
        // The peer's bytes reach a terminal: no control characters.
        let line: String = text.lines().next().unwrap_or_default().chars().filter(|c| !c.is_control()).take(120).collect();
        return Listener::Http { status_line: line.trim().to_string() };
    }
    // A TLS record: content type 21 (alert), version 3.x.
    if bytes.len() >= 2 && bytes[0] == 0x15 && bytes[1] == 0x03 {
        return Listener::Tls;
    }
    let shown: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
    let text: String = String::from_utf8_lossy(bytes).chars().take(40).filter(|c| !c.is_control()).collect();
    Listener::NotKafka { first_bytes: format!("{shown} ({text:?})") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_tls_and_garbage_are_told_apart() {
        assert_eq!(
            classify(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"),
            Listener::Http { status_line: "HTTP/1.1 400 Bad Request".into() }
        );
        assert_eq!(
            classify(b"HTTP/1.1 200 \x1b[31mOK\r\n"),
            Listener::Http { status_line: "HTTP/1.1 200 [31mOK".into() },
            "no escapes reach a terminal"
        );
        assert_eq!(classify(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]), Listener::Tls);
        assert!(matches!(classify(b"SSH-2.0-OpenSSH_9.2"), Listener::NotKafka { first_bytes } if first_bytes.contains("SSH-2.0")));
    }

    #[test]
    fn varints_and_tagged_fields_are_skipped() {
        let mut b = Bytes::from_static(&[0x01, 0x05, 0x02, 0xaa, 0xbb, 0x42]);
        skip_tagged_fields(&mut b);
        assert_eq!(b.as_ref(), &[0x42]);
        let mut b = Bytes::from_static(&[0xac, 0x02]);
        assert_eq!(read_unsigned_varint(&mut b), 300);
    }

    #[tokio::test]
    async fn a_refused_port_and_a_bad_address_are_errors() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert_eq!(probe(&format!("127.0.0.1:{port}"), None, Duration::from_secs(1)).await, Err(ProbeError::Refused));
        assert!(matches!(probe("no-port", None, Duration::from_secs(1)).await, Err(ProbeError::BadAddress(_))));
    }

    #[tokio::test]
    async fn a_listener_that_never_answers_times_out() {
        let quiet = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = quiet.local_addr().unwrap().to_string();
        let _hold = tokio::spawn(async move {
            let (s, _) = quiet.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let t = Duration::from_millis(300);
        assert_eq!(probe(&addr, None, t).await, Err(ProbeError::Timeout(t)));
    }
}
