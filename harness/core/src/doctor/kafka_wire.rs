//! What answers at a Kafka address, told from the bytes it sends back: a PLAINTEXT
//! listener (and what it advertises), a SASL listener (and its mechanisms), a TLS
//! listener, an HTTP server, or something else. librdkafka and sarama only say
//! "timed out" or "run out of available brokers" for all of these; speaking the
//! protocol by hand, one request at a time, tells them apart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use harness_model::kafka_wire::{self as wire, METADATA_KEY};
pub use harness_model::kafka_wire::{Advertised, TopicState};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest, RequestHeader, SaslHandshakeRequest, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every request carries it; an answer must echo it.
const CORRELATION_ID: i32 = 7;

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
    /// It answered with bytes that are no Kafka response (or no answer to the
    /// request: a count beyond the bytes sent, a frame cut short).
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
    /// The connection was accepted, and not one byte came back to Kafka's ApiVersions
    /// request (which every Kafka listener answers at once, SASL and TLS ones with an
    /// answer or an alert): an HTTP server that waits for a whole request line, as Go's
    /// servers do.
    #[error("the connection was accepted, but nothing answered Kafka's ApiVersions request within {0:?}")]
    Silent(Duration),
    #[error("{0}")]
    Io(String),
}

/// Asks `addr` what it is, all within `timeout`; with `topic`, the Metadata
/// request also asks for that topic.
pub async fn probe(addr: &str, topic: Option<&str>, timeout: Duration) -> Result<Listener, ProbeError> {
    // One deadline for the whole probe, not one a step: a listener that trickles
    // its answer (a byte a second) cannot stretch it request by request.
    let seen = Seen::default();
    match tokio::time::timeout(timeout, probe_steps(addr, topic, &seen)).await {
        Ok(answer) => answer,
        Err(_) if seen.connected.load(Ordering::Relaxed) && !seen.heard.load(Ordering::Relaxed) => Err(ProbeError::Silent(timeout)),
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

/// How far a probe got: a connection, and any byte back.
#[derive(Default)]
struct Seen {
    connected: AtomicBool,
    heard: AtomicBool,
}

async fn probe_steps(addr: &str, topic: Option<&str>, seen: &Seen) -> Result<Listener, ProbeError> {
    let mut conn = connect(addr).await?;
    seen.connected.store(true, Ordering::Relaxed);
    // ApiVersions is answered by every Kafka listener, SASL ones included.
    let versions = match exchange(&mut conn, ApiKey::ApiVersions, 0, &ApiVersionsRequest::default(), seen).await? {
        Answer::Kafka(body) => match wire::api_versions(&body, CORRELATION_ID) {
            Ok(v) => v,
            Err(e) => return Ok(undecodable(&body, "ApiVersions", &e)),
        },
        Answer::Other(other) => return Ok(other),
    };
    let metadata_version = versions
        .iter()
        .find(|k| k.api_key == METADATA_KEY)
        .map(|k| k.max_version.clamp(0, wire::METADATA_MAX_VERSION))
        .unwrap_or(wire::METADATA_MAX_VERSION);
    // Not creating the topic can only be said from v4 on; kafka-protocol refuses to
    // encode the field below (a listener that lists Metadata up to v3).
    let mut request = MetadataRequest::default().with_allow_auto_topic_creation(metadata_version < 4);
    request.topics = Some(
        topic
            .map(|t| vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))])
            .unwrap_or_default(),
    );
    match exchange(&mut conn, ApiKey::Metadata, metadata_version, &request, seen).await? {
        Answer::Kafka(body) => match wire::metadata(&body, CORRELATION_ID, metadata_version) {
            Ok(m) => Ok(Listener::Plaintext { brokers: m.brokers, topic: topic.and(m.topics.into_iter().next()) }),
            Err(e) => Ok(undecodable(&body, "Metadata", &e)),
        },
        // A SASL listener closes on anything but ApiVersions and SaslHandshake
        // ("Unexpected Kafka request of type METADATA during SASL handshake").
        Answer::Other(Listener::ClosedOnRequest) => sasl_mechanisms(addr, seen).await,
        Answer::Other(other) => Ok(other),
    }
}

/// Asks for a SASL handshake on a fresh connection: a SASL listener answers with
/// the mechanisms it enables.
async fn sasl_mechanisms(addr: &str, seen: &Seen) -> Result<Listener, ProbeError> {
    let mut conn = connect(addr).await?;
    let request = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    match exchange(&mut conn, ApiKey::SaslHandshake, 1, &request, seen).await? {
        Answer::Kafka(body) => match wire::sasl_handshake(&body, CORRELATION_ID) {
            Ok(mechanisms) => Ok(Listener::Sasl { mechanisms }),
            Err(e) => Ok(undecodable(&body, "SaslHandshake", &e)),
        },
        Answer::Other(other) => Ok(other),
    }
}

/// A framed answer that is no answer to the request.
fn undecodable(body: &[u8], request: &str, e: &wire::WireError) -> Listener {
    Listener::NotKafka { first_bytes: format!("{}: no {request} answer ({e})", shown(body)) }
}

async fn connect(addr: &str) -> Result<TcpStream, ProbeError> {
    if addr.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
        return Err(ProbeError::BadAddress(addr.to_string()));
    }
    let resolved = match tokio::net::lookup_host(addr).await {
        Err(e) => return Err(ProbeError::Unresolvable(e.to_string())),
        Ok(mut addrs) => addrs.next().ok_or_else(|| ProbeError::Unresolvable("no address".into()))?,
    };
    match TcpStream::connect(resolved).await {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(ProbeError::Refused),
        Err(e) => Err(ProbeError::Io(e.to_string())),
        Ok(s) => Ok(s),
    }
}

/// A response body (header included), or what the bytes said instead.
enum Answer {
    Kafka(Vec<u8>),
    Other(Listener),
}

/// Sends one request and reads one answer. No timeout of its own: [`probe`]'s
/// deadline covers it.
async fn exchange<R>(conn: &mut TcpStream, key: ApiKey, version: i16, request: &R, seen: &Seen) -> Result<Answer, ProbeError>
where
    R: Encodable + HeaderVersion,
{
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(CORRELATION_ID)
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
        // The first byte alone first: one byte back is an answer, not silence.
        let mut n = conn.read(&mut first[..1]).await?;
        if n == 1 {
            seen.heard.store(true, Ordering::Relaxed);
            n += read_some(conn, &mut first[1..]).await?;
        }
        if n == 0 {
            return Ok::<_, std::io::Error>(Answer::Other(Listener::ClosedOnRequest));
        }
        if n < 4 {
            return Ok(Answer::Other(classify(&first[..n])));
        }
        let size = match wire::frame_size(first) {
            Some(size) if !first.starts_with(b"HTTP") && first[0] != 0x15 => size,
            // Not a length a Kafka answer has ("HTTP" reads as 1.2 GB): what is it?
            _ => {
                let mut rest = vec![0u8; 120];
                let more = tokio::time::timeout(Duration::from_millis(300), read_some(conn, &mut rest)).await.unwrap_or(Ok(0)).unwrap_or(0);
                let mut bytes = first.to_vec();
                bytes.extend_from_slice(&rest[..more]);
                return Ok(Answer::Other(classify(&bytes)));
            }
        };
        // Grown as bytes arrive, not reserved from the prefix: a peer that announces
        // 16 MiB and sends 10 bytes costs 10 bytes.
        let mut body = Vec::new();
        (&mut *conn).take(size as u64).read_to_end(&mut body).await?;
        if body.len() < size {
            let what = format!("{}: a {size}-byte answer announced, the connection closed after {}", shown(&body), body.len());
            return Ok(Answer::Other(Listener::NotKafka { first_bytes: what }));
        }
        Ok(Answer::Kafka(body))
    };
    match round_trip.await {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof) => {
            Ok(Answer::Other(Listener::ClosedOnRequest))
        }
        Err(e) => Err(ProbeError::Io(e.to_string())),
        Ok(a) => Ok(a),
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
    Listener::NotKafka { first_bytes: shown(bytes) }
}

/// The first bytes of what a peer sent, as hex and as text without control
/// characters (they reach a terminal).
fn shown(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
    let text: String = String::from_utf8_lossy(bytes).chars().take(40).filter(|c| !c.is_control()).collect();
    format!("{hex} ({text:?})")
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

    /// A listener on 127.0.0.1 that answers the requests of each connection with
    /// `answers` in turn, a byte every `every` (all at once for zero), then closes.
    async fn answering(answers: &'static [&'static [u8]], every: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    for answer in answers {
                        let mut request = [0u8; 512];
                        let _ = s.read(&mut request).await;
                        if every.is_zero() {
                            let _ = s.write_all(answer).await;
                            continue;
                        }
                        for b in answer.iter() {
                            if s.write_all(&[*b]).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(every).await;
                        }
                    }
                });
            }
        });
        addr
    }

    /// #22: the 14 bytes that made the doctor abort on a 64 GiB allocation.
    #[tokio::test]
    async fn an_array_count_of_2_pow_31_minus_1_is_not_kafka() {
        let addr = answering(&[&[0, 0, 0, 10, 0, 0, 0, 7, 0, 0, 0x7f, 0xff, 0xff, 0xff]], Duration::ZERO).await;
        let got = probe(&addr, None, Duration::from_secs(2)).await;
        assert!(
            matches!(&got, Ok(Listener::NotKafka { first_bytes }) if first_bytes.contains("no ApiVersions answer (byte 6: api_keys: 2147483647 entries announced, 0 bytes left)")),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_frame_cut_short_or_too_large_is_not_kafka() {
        let addr = answering(&[&[0, 0, 1, 0, 0, 0, 0, 7, 1, 2]], Duration::ZERO).await;
        let got = probe(&addr, None, Duration::from_secs(2)).await;
        assert!(
            matches!(&got, Ok(Listener::NotKafka { first_bytes }) if first_bytes.ends_with("a 256-byte answer announced, the connection closed after 6")),
            "{got:?}"
        );
        // 2 GiB announced: not read, not allocated.
        let addr = answering(&[&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 7]], Duration::ZERO).await;
        let got = probe(&addr, None, Duration::from_secs(2)).await;
        assert!(matches!(&got, Ok(Listener::NotKafka { first_bytes }) if first_bytes.starts_with("7f ff ff ff 00 00 00 07")), "{got:?}");
    }

    /// Two well-formed answers (ApiVersions: Metadata up to v0; Metadata v0: no broker,
    /// no topic), a byte every 15 ms: each takes less than the timeout (300 and 240 ms
    /// of 400), both together more. The deadline is the probe's, not each request's.
    #[tokio::test]
    async fn a_trickled_answer_ends_at_the_probe_deadline() {
        const ANSWERS: &[&[u8]] =
            &[&[0, 0, 0, 16, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0], &[0, 0, 0, 12, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]];
        let addr = answering(ANSWERS, Duration::from_millis(15)).await;
        let t = Duration::from_millis(400);
        let started = std::time::Instant::now();
        assert_eq!(probe(&addr, None, t).await, Err(ProbeError::Timeout(t)));
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        // Given the time, the same answers are a (strange) PLAINTEXT listener.
        assert_eq!(probe(&addr, None, Duration::from_secs(5)).await, Ok(Listener::Plaintext { brokers: vec![], topic: None }));
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
        // Connected, and not a byte back: not a Kafka listener (Kafka answers at once).
        assert_eq!(probe(&addr, None, t).await, Err(ProbeError::Silent(t)));
    }
}
