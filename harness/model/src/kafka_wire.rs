//! Kafka's answers to the doctor's three requests (ApiVersions v0, Metadata v0–12,
//! SaslHandshake v1), decoded by hand from the bytes an address sent back.
//!
//! The address may be anything (an HTTP port, a stranger's service, a test's allocation
//! bomb), so every count and length is checked against the bytes left before anything
//! is read, and nothing is allocated from a count: a lying answer is a [`WireError`]
//! naming the byte, never an abort. Only what the doctor uses is kept (API versions,
//! advertised brokers, the topic's partitions and leaders, SASL mechanisms); the other
//! fields are stepped over. Layouts: Kafka's `clients/src/main/resources/common/message/`
//! `ApiVersionsResponse.json`, `MetadataResponse.json`, `SaslHandshakeResponse.json`;
//! the unit tests hold this decoder to the `kafka-protocol` crate's on every version.
//! The I/O (length prefix, timeouts) is `harness_core::doctor::kafka_wire`.

/// The largest answer read. The doctor asks Metadata for one topic or none: about
/// 40 bytes a partition and 30 a broker, so 16 MiB is far beyond any real cluster.
pub const MAX_FRAME: usize = 16 << 20;

/// Highest Metadata version this decoder reads (Kafka 2.8 to 4.x answer it or lower).
pub const METADATA_MAX_VERSION: i16 = 12;

/// The body size a 4-byte length prefix announces, when it is one a Kafka answer can
/// have: at least the correlation id, at most [`MAX_FRAME`].
pub fn frame_size(prefix: [u8; 4]) -> Option<usize> {
    let size = usize::try_from(i32::from_be_bytes(prefix)).ok()?;
    (4..=MAX_FRAME).contains(&size).then_some(size)
}

/// Why an answer is no Kafka answer to the request: where, and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("byte {at}: {what}")]
pub struct WireError {
    /// Offset in the answer's body (after the length prefix).
    pub at: usize,
    pub what: String,
}

/// One API a listener supports, and its versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiVersion {
    pub api_key: i16,
    pub min_version: i16,
    pub max_version: i16,
}

/// Kafka's API key of Metadata.
pub const METADATA_KEY: i16 = 3;

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

/// A topic as the listener's metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TopicState {
    /// Kafka's error code for the topic: 0, or 3 (UNKNOWN_TOPIC_OR_PARTITION) etc.
    pub error_code: i16,
    pub partitions: usize,
    /// Partitions without a leader (leader id -1) or with an error.
    pub leaderless: usize,
}

/// What the doctor keeps of a Metadata answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub brokers: Vec<Advertised>,
    pub topics: Vec<TopicState>,
}

/// An ApiVersions v0 answer (header v0: correlation id only): the APIs listed.
pub fn api_versions(body: &[u8], correlation_id: i32) -> Result<Vec<ApiVersion>, WireError> {
    let mut r = Reader::new(body);
    r.header(correlation_id, false)?;
    r.i16("error_code")?;
    let n = r.count(false, 6, "api_keys")?;
    let mut keys = Vec::new();
    for _ in 0..n {
        keys.push(ApiVersion { api_key: r.i16("api_key")?, min_version: r.i16("min_version")?, max_version: r.i16("max_version")? });
    }
    Ok(keys)
}

/// A Metadata answer of `version` (flexible, with header v1, from v9).
pub fn metadata(body: &[u8], correlation_id: i32, version: i16) -> Result<Metadata, WireError> {
    if !(0..=METADATA_MAX_VERSION).contains(&version) {
        return Err(WireError { at: 0, what: format!("Metadata version {version} is not read here (0 to {METADATA_MAX_VERSION})") });
    }
    let flexible = version >= 9;
    let mut r = Reader::new(body);
    r.header(correlation_id, flexible)?;
    if version >= 3 {
        r.i32("throttle_time_ms")?;
    }
    let mut brokers = Vec::new();
    for _ in 0..r.count(flexible, 1, "brokers")? {
        let node_id = r.i32("a broker's node_id")?;
        let host = r.text(flexible, "a broker's host")?;
        let port = r.i32("a broker's port")?;
        if version >= 1 {
            r.string(flexible, "a broker's rack")?;
        }
        if flexible {
            r.tagged_fields()?;
        }
        brokers.push(Advertised { node_id, host, port });
    }
    if version >= 2 {
        r.string(flexible, "cluster_id")?;
    }
    if version >= 1 {
        r.i32("controller_id")?;
    }
    let mut topics = Vec::new();
    for _ in 0..r.count(flexible, 1, "topics")? {
        let error_code = r.i16("a topic's error_code")?;
        r.string(flexible, "a topic's name")?;
        if version >= 10 {
            r.take(16, "a topic's topic_id")?;
        }
        if version >= 1 {
            r.take(1, "a topic's is_internal")?;
        }
        let partitions = r.count(flexible, 1, "a topic's partitions")?;
        let mut leaderless = 0;
        for _ in 0..partitions {
            let error_code = r.i16("a partition's error_code")?;
            r.i32("a partition's partition_index")?;
            let leader_id = r.i32("a partition's leader_id")?;
            if version >= 7 {
                r.i32("a partition's leader_epoch")?;
            }
            r.int32s(flexible, "a partition's replica_nodes")?;
            r.int32s(flexible, "a partition's isr_nodes")?;
            if version >= 5 {
                r.int32s(flexible, "a partition's offline_replicas")?;
            }
            if flexible {
                r.tagged_fields()?;
            }
            if leader_id < 0 || error_code != 0 {
                leaderless += 1;
            }
        }
        if version >= 8 {
            r.i32("a topic's topic_authorized_operations")?;
        }
        if flexible {
            r.tagged_fields()?;
        }
        topics.push(TopicState { error_code, partitions, leaderless });
    }
    if (8..=10).contains(&version) {
        r.i32("cluster_authorized_operations")?;
    }
    if flexible {
        r.tagged_fields()?;
    }
    Ok(Metadata { brokers, topics })
}

/// A SaslHandshake v1 answer (header v0): the mechanisms the listener enables.
pub fn sasl_handshake(body: &[u8], correlation_id: i32) -> Result<Vec<String>, WireError> {
    let mut r = Reader::new(body);
    r.header(correlation_id, false)?;
    r.i16("error_code")?;
    let mut mechanisms = Vec::new();
    for _ in 0..r.count(false, 2, "mechanisms")? {
        mechanisms.push(r.text(false, "a mechanism")?);
    }
    Ok(mechanisms)
}

/// A cursor over an answer whose every read is checked against the bytes left.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        if n > self.left() {
            return Err(WireError { at: self.at, what: format!("{what}: {n} bytes wanted, {} left", self.left()) });
        }
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    fn i16(&mut self, what: &str) -> Result<i16, WireError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32, WireError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Kafka's unsigned varint: at most 5 bytes, at most 32 bits.
    fn uvarint(&mut self, what: &str) -> Result<u32, WireError> {
        let start = self.at;
        let refuse = |what: String| WireError { at: start, what };
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.take(1, what)?[0];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(value).map_err(|_| refuse(format!("{what}: a varint beyond 32 bits")));
            }
        }
        Err(refuse(format!("{what}: a varint longer than 5 bytes")))
    }

    /// The response header: the request's correlation id, then (flexible) tagged fields.
    fn header(&mut self, correlation_id: i32, flexible: bool) -> Result<(), WireError> {
        let got = self.i32("the correlation id")?;
        if got != correlation_id {
            return Err(WireError { at: 0, what: format!("correlation id {got}, not the request's {correlation_id}") });
        }
        if flexible {
            self.tagged_fields()?;
        }
        Ok(())
    }

    /// An array's length (INT32, or flexible: a varint of length + 1), checked against
    /// the bytes left at `min_size` bytes an entry. Null is refused: no array the
    /// doctor reads is nullable.
    fn count(&mut self, flexible: bool, min_size: usize, what: &str) -> Result<usize, WireError> {
        let start = self.at;
        let refuse = |what: String| WireError { at: start, what };
        let n = if flexible {
            match self.uvarint(what)? {
                0 => return Err(refuse(format!("{what}: null"))),
                n => (n - 1) as usize,
            }
        } else {
            let n = self.i32(what)?;
            usize::try_from(n).map_err(|_| refuse(format!("{what}: a count of {n}")))?
        };
        if n.saturating_mul(min_size) > self.left() {
            return Err(refuse(format!("{what}: {n} entries announced, {} bytes left", self.left())));
        }
        Ok(n)
    }

    /// A nullable string's bytes (INT16 length, or flexible: a varint of length + 1).
    fn string(&mut self, flexible: bool, what: &str) -> Result<Option<&'a [u8]>, WireError> {
        let start = self.at;
        let len = if flexible {
            match self.uvarint(what)? {
                0 => return Ok(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i16(what)? {
                -1 => return Ok(None),
                n => usize::try_from(n).map_err(|_| WireError { at: start, what: format!("{what}: a length of {n}") })?,
            }
        };
        self.take(len, what).map(Some)
    }

    /// A string the doctor keeps and prints: present, UTF-8, no control characters
    /// (an answer's bytes reach a terminal).
    fn text(&mut self, flexible: bool, what: &str) -> Result<String, WireError> {
        let start = self.at;
        let bytes = self.string(flexible, what)?.ok_or_else(|| WireError { at: start, what: format!("{what}: null") })?;
        match std::str::from_utf8(bytes) {
            Ok(s) if !s.chars().any(char::is_control) => Ok(s.to_string()),
            _ => Err(WireError { at: start, what: format!("{what}: not printable UTF-8") }),
        }
    }

    /// An INT32 array, stepped over.
    fn int32s(&mut self, flexible: bool, what: &str) -> Result<(), WireError> {
        let n = self.count(flexible, 4, what)?;
        self.take(n * 4, what).map(drop)
    }

    /// A flexible struct's tagged fields, stepped over.
    fn tagged_fields(&mut self) -> Result<(), WireError> {
        let start = self.at;
        let n = self.uvarint("tagged fields")?;
        if n as usize > self.left() {
            return Err(WireError { at: start, what: format!("tagged fields: {n} announced, {} bytes left", self.left()) });
        }
        for _ in 0..n {
            self.uvarint("a tagged field's tag")?;
            let size = self.uvarint("a tagged field's size")? as usize;
            self.take(size, "a tagged field")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
