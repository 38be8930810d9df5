//! The decoder held to the `kafka-protocol` crate's on well-formed answers of every
//! version, and to errors (not panics, not allocations) on hostile ones.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiVersionsResponse, MetadataResponse, ResponseHeader, SaslHandshakeResponse};
use kafka_protocol::protocol::{Decodable, HeaderVersion};
use proptest::prelude::*;

use super::*;

const CORRELATION: i32 = 7;

/// Writes an answer's body the way a broker does, for `version`'s layout.
struct Writer {
    out: Vec<u8>,
    flexible: bool,
}

impl Writer {
    fn new(flexible: bool) -> Writer {
        Writer { out: CORRELATION.to_be_bytes().to_vec(), flexible }
    }
    fn i16(&mut self, v: i16) {
        self.out.extend(v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.out.extend(v.to_be_bytes());
    }
    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }
    fn count(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u32 + 1)
        } else {
            self.i32(n as i32)
        }
    }
    fn string(&mut self, s: Option<&str>) {
        match (s, self.flexible) {
            (None, true) => self.uvarint(0),
            (None, false) => self.i16(-1),
            (Some(s), true) => self.uvarint(s.len() as u32 + 1),
            (Some(s), false) => self.i16(s.len() as i16),
        }
        self.out.extend(s.unwrap_or_default().as_bytes());
    }
    /// One unknown tagged field (tag 99, 3 bytes), which readers step over.
    fn tags(&mut self) {
        if self.flexible {
            self.out.extend([1, 99, 3, 0xaa, 0xbb, 0xcc]);
        }
    }
}

/// A cluster to describe: brokers (id, host, port, rack) and topics (error code,
/// partitions as (error code, leader)).
struct Cluster {
    brokers: Vec<(i32, &'static str, i32, Option<&'static str>)>,
    topics: Vec<(i16, Vec<(i16, i32)>)>,
}

fn cluster() -> Cluster {
    Cluster {
        brokers: vec![(1, "kafka-0.kafka.svc", 9092, Some("rack-a")), (2, "10.0.0.7", 9094, None)],
        topics: vec![(0, vec![(0, 1), (0, -1), (5, 2)])],
    }
}

fn metadata_answer(version: i16, c: &Cluster) -> Vec<u8> {
    let mut w = Writer::new(version >= 9);
    w.tags(); // header v1 from v9
    if version >= 3 {
        w.i32(0);
    }
    w.count(c.brokers.len());
    for &(id, host, port, rack) in &c.brokers {
        w.i32(id);
        w.string(Some(host));
        w.i32(port);
        if version >= 1 {
            w.string(rack);
        }
        w.tags();
    }
    if version >= 2 {
        w.string(Some("cluster-xyz"));
    }
    if version >= 1 {
        w.i32(1);
    }
    w.count(c.topics.len());
    for (error_code, partitions) in &c.topics {
        w.i16(*error_code);
        w.string(Some("minio-events"));
        if version >= 10 {
            w.out.extend([0x11; 16]);
        }
        if version >= 1 {
            w.out.push(0);
        }
        w.count(partitions.len());
        for (i, &(error_code, leader)) in partitions.iter().enumerate() {
            w.i16(error_code);
            w.i32(i as i32);
            w.i32(leader);
            if version >= 7 {
                w.i32(3);
            }
            for nodes in [&[1, 2][..], &[1], &[2]].into_iter().take(if version >= 5 { 3 } else { 2 }) {
                w.count(nodes.len());
                nodes.iter().for_each(|&n| w.i32(n));
            }
            w.tags();
        }
        if version >= 8 {
            w.i32(-2147483648);
        }
        w.tags();
    }
    if (8..=10).contains(&version) {
        w.i32(-2147483648);
    }
    w.tags();
    w.out
}

fn api_versions_answer(keys: &[(i16, i16, i16)]) -> Vec<u8> {
    let mut w = Writer::new(false);
    w.i16(0);
    w.count(keys.len());
    for &(k, min, max) in keys {
        w.i16(k);
        w.i16(min);
        w.i16(max);
    }
    w.out
}

fn sasl_answer(mechanisms: &[&str]) -> Vec<u8> {
    let mut w = Writer::new(false);
    w.i16(0);
    w.count(mechanisms.len());
    mechanisms.iter().for_each(|m| w.string(Some(m)));
    w.out
}

/// `kafka-protocol`'s reading of the same bytes: header, then body, nothing left over.
fn kafka_protocol_reads<T: Decodable + HeaderVersion>(body: &[u8], version: i16) -> T {
    let mut buf = Bytes::copy_from_slice(body);
    let header = ResponseHeader::decode(&mut buf, T::header_version(version)).unwrap();
    assert_eq!(header.correlation_id, CORRELATION);
    let answer = T::decode(&mut buf, version).unwrap();
    assert_eq!(buf.remaining(), 0, "version {version}: the test's answer has bytes kafka-protocol does not read");
    answer
}

#[test]
fn metadata_of_every_version_reads_as_kafka_protocol_reads_it() {
    for version in 0..=METADATA_MAX_VERSION {
        let body = metadata_answer(version, &cluster());
        let ours = metadata(&body, CORRELATION, version).unwrap_or_else(|e| panic!("version {version}: {e}"));
        let theirs: MetadataResponse = kafka_protocol_reads(&body, version);
        let brokers: Vec<Advertised> =
            theirs.brokers.iter().map(|b| Advertised { node_id: b.node_id.0, host: b.host.to_string(), port: b.port }).collect();
        let topics: Vec<TopicState> = theirs
            .topics
            .iter()
            .map(|t| TopicState {
                error_code: t.error_code,
                partitions: t.partitions.len(),
                leaderless: t.partitions.iter().filter(|p| p.leader_id.0 < 0 || p.error_code != 0).count(),
            })
            .collect();
        assert_eq!(ours, Metadata { brokers, topics }, "version {version}");
        assert_eq!(ours.topics, vec![TopicState { error_code: 0, partitions: 3, leaderless: 2 }]);
        assert_eq!(ours.brokers[0].address(), "kafka-0.kafka.svc:9092");
    }
}

#[test]
fn api_versions_and_sasl_mechanisms_read_as_kafka_protocol_reads_them() {
    let body = api_versions_answer(&[(0, 0, 11), (METADATA_KEY, 0, 12), (17, 0, 1), (18, 0, 4)]);
    let ours = api_versions(&body, CORRELATION).unwrap();
    let theirs: ApiVersionsResponse = kafka_protocol_reads(&body, 0);
    let theirs: Vec<ApiVersion> =
        theirs.api_keys.iter().map(|k| ApiVersion { api_key: k.api_key, min_version: k.min_version, max_version: k.max_version }).collect();
    assert_eq!(ours, theirs);

    let body = sasl_answer(&["PLAIN", "SCRAM-SHA-512"]);
    assert_eq!(sasl_handshake(&body, CORRELATION).unwrap(), vec!["PLAIN", "SCRAM-SHA-512"]);
    let theirs: SaslHandshakeResponse = kafka_protocol_reads(&body, 1);
    assert_eq!(theirs.mechanisms.iter().map(|m| m.to_string()).collect::<Vec<_>>(), vec!["PLAIN", "SCRAM-SHA-512"]);
}

/// The 14 bytes that made the doctor abort (#22): a correlation id, error 0, and an
/// array of 2^31−1 entries; `kafka-protocol` reserved 64 GiB for them.
#[test]
fn an_array_count_of_2_pow_31_minus_1_is_an_error_not_an_allocation() {
    let bomb = [0, 0, 0, 7, 0, 0, 0x7f, 0xff, 0xff, 0xff];
    let e = api_versions(&bomb, CORRELATION).unwrap_err();
    assert_eq!(e, WireError { at: 6, what: "api_keys: 2147483647 entries announced, 0 bytes left".into() });
    assert!(sasl_handshake(&bomb, CORRELATION).unwrap_err().what.contains("2147483647 entries"));
    // Metadata v0: the broker array first; v9: the same as a varint (u32::MAX = 2^32-2 entries).
    assert!(metadata(&[0, 0, 0, 7, 0x7f, 0xff, 0xff, 0xff], CORRELATION, 0).unwrap_err().what.contains("2147483647 entries"));
    let flexible = [0, 0, 0, 7, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(metadata(&flexible, CORRELATION, 9).unwrap_err().what.contains("4294967294 entries"));
    // Deep inside: a partition's replica array, in an otherwise fine answer.
    let mut body = metadata_answer(1, &Cluster { brokers: vec![], topics: vec![(0, vec![(0, 1)])] });
    let replicas = body.len() - 20; // replica count, 2 replicas, isr count, 1 isr: the answer's end
    body[replicas..replicas + 4].copy_from_slice(&0x7fff_ffffi32.to_be_bytes());
    let e = metadata(&body, CORRELATION, 1).unwrap_err();
    assert_eq!(e.what, "a partition's replica_nodes: 2147483647 entries announced, 16 bytes left");
}

#[test]
fn oversize_strings_and_tagged_fields_are_errors() {
    // A broker host of 30,000 bytes with 3 left.
    let mut w = Writer::new(false);
    w.i32(1);
    w.i32(7);
    w.i16(30_000);
    w.out.extend(b"abc");
    assert_eq!(metadata(&w.out, CORRELATION, 0).unwrap_err().what, "a broker's host: 30000 bytes wanted, 3 left");
    // Flexible header announcing 200 tagged fields.
    assert!(metadata(&[0, 0, 0, 7, 200, 1], CORRELATION, 9).unwrap_err().what.contains("tagged fields: 200 announced"));
    // A tagged field of 2^32-1 bytes.
    let e = metadata(&[0, 0, 0, 7, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f], CORRELATION, 9).unwrap_err();
    assert_eq!(e.what, "a tagged field: 4294967295 bytes wanted, 0 left");
    // Varints of 6 bytes, and of 33 bits.
    assert!(metadata(&[0, 0, 0, 7, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], CORRELATION, 9).unwrap_err().what.contains("longer than 5"));
    assert!(metadata(&[0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0x1f], CORRELATION, 9).unwrap_err().what.contains("beyond 32 bits"));
}

#[test]
fn negative_counts_and_lengths_are_errors() {
    for count in [-1i32, -2, i32::MIN] {
        let mut body = vec![0, 0, 0, 7, 0, 0];
        body.extend(count.to_be_bytes());
        assert_eq!(api_versions(&body, CORRELATION).unwrap_err().what, format!("api_keys: a count of {count}"));
    }
    let mut w = Writer::new(false);
    w.i32(1);
    w.i32(7);
    w.i16(-2);
    assert_eq!(metadata(&w.out, CORRELATION, 0).unwrap_err().what, "a broker's host: a length of -2");
    let mut w = Writer::new(false);
    w.i32(1);
    w.i32(7);
    w.i16(-1);
    assert_eq!(metadata(&w.out, CORRELATION, 0).unwrap_err().what, "a broker's host: null");
}

#[test]
fn every_truncation_of_an_answer_is_an_error() {
    for version in 0..=METADATA_MAX_VERSION {
        let body = metadata_answer(version, &cluster());
        for cut in 0..body.len() {
            assert!(metadata(&body[..cut], CORRELATION, version).is_err(), "version {version}, {cut} of {} bytes", body.len());
        }
    }
    let body = api_versions_answer(&[(METADATA_KEY, 0, 12)]);
    assert!((0..body.len()).all(|cut| api_versions(&body[..cut], CORRELATION).is_err()));
    let body = sasl_answer(&["PLAIN"]);
    assert!((0..body.len()).all(|cut| sasl_handshake(&body[..cut], CORRELATION).is_err()));
}

#[test]
fn another_correlation_id_control_characters_and_unknown_versions_are_errors() {
    let body = sasl_answer(&["PLAIN"]);
    assert_eq!(sasl_handshake(&body, 8).unwrap_err().what, "correlation id 7, not the request's 8");
    // A host that would move the terminal's cursor.
    let c = Cluster { brokers: vec![(1, "evil\u{1b}[2Jhost", 9092, None)], topics: vec![] };
    assert_eq!(metadata(&metadata_answer(1, &c), CORRELATION, 1).unwrap_err().what, "a broker's host: not printable UTF-8");
    let mut w = Writer::new(false);
    w.i32(1);
    w.i32(7);
    w.i16(2);
    w.out.extend([0xff, 0xfe]);
    assert!(metadata(&w.out, CORRELATION, 0).unwrap_err().what.contains("not printable UTF-8"));
    assert!(metadata(&metadata_answer(12, &cluster()), CORRELATION, 13).is_err());
    assert!(metadata(&metadata_answer(0, &cluster()), CORRELATION, -1).is_err());
}

#[test]
fn the_length_prefix_is_capped() {
    assert_eq!(frame_size([0, 0, 0, 10]), Some(10));
    assert_eq!(frame_size([0, 0x01, 0, 0]), Some(65_536));
    assert_eq!(frame_size(((MAX_FRAME) as i32).to_be_bytes()), Some(MAX_FRAME));
    assert_eq!(frame_size(((MAX_FRAME + 1) as i32).to_be_bytes()), None);
    assert_eq!(frame_size([0, 0, 0, 3]), None, "shorter than a correlation id");
    assert_eq!(frame_size([0x7f, 0xff, 0xff, 0xff]), None);
    assert_eq!(frame_size([0xff, 0xff, 0xff, 0xfe]), None, "negative");
    assert_eq!(frame_size(*b"HTTP"), None, "1.2 GB");
}

proptest! {
    /// Any bytes: an answer or an error, never a panic; what is kept fits in the input.
    #[test]
    fn any_bytes_decode_or_fail(body in proptest::collection::vec(any::<u8>(), 0..256), version in 0i16..=12) {
        let mut body = body;
        if body.len() >= 4 {
            body[..4].copy_from_slice(&CORRELATION.to_be_bytes());
        }
        if let Ok(m) = metadata(&body, CORRELATION, version) {
            prop_assert!(m.brokers.len() + m.topics.len() <= body.len());
        }
        if let Ok(k) = api_versions(&body, CORRELATION) {
            prop_assert!(k.len() * 6 <= body.len());
        }
        let _ = sasl_handshake(&body, CORRELATION);
    }

    /// A well-formed answer with one byte changed: still no panic.
    #[test]
    fn a_changed_byte_decodes_or_fails(version in 0i16..=12, at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut body = metadata_answer(version, &cluster());
        let i = at.index(body.len());
        body[i] = byte;
        let _ = metadata(&body, CORRELATION, version);
    }
}
