//! MinIO's event records, parsed leniently: a record the harness cannot read is
//! counted, not fatal. The observers of `harness-core` read every message on the
//! events topic with [`parse_records`] (re-exported there as `observe::parse_records`).

use crate::keys::decode_event_key;
use serde_json::Value;

/// The parts of one S3 event record the harness uses.
#[derive(Clone, Debug, PartialEq)]
pub struct S3Record {
    pub event_name: String,
    pub bucket: String,
    /// Decoded key.
    pub key: String,
    pub etag: String,
    pub version_id: String,
    pub size: u64,
}

/// Parses one Kafka message from MinIO (`{"EventName":…,"Key":…,"Records":[…]}`).
pub fn parse_records(payload: &[u8]) -> Result<Vec<S3Record>, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let records = v.get("Records").and_then(Value::as_array).ok_or("no Records array")?;
    let s = |r: &Value, path: &[&str]| -> String {
        path.iter().try_fold(r, |v, k| v.get(k)).and_then(Value::as_str).unwrap_or_default().to_string()
    };
    Ok(records
        .iter()
        .map(|r| S3Record {
            event_name: s(r, &["eventName"]),
            bucket: s(r, &["s3", "bucket", "name"]),
            key: decode_event_key(&s(r, &["s3", "object", "key"])),
            etag: s(r, &["s3", "object", "eTag"]).trim_matches('"').to_string(),
            version_id: s(r, &["s3", "object", "versionId"]),
            size: r.pointer("/s3/object/size").and_then(Value::as_u64).unwrap_or(0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_minio_record() {
        let payload = br#"{"EventName":"s3:ObjectCreated:Put","Key":"images/a%2Fb+c.jpg","Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"images"},"object":{"key":"a%2Fb+c.jpg","size":1234,"eTag":"abc123","versionId":"v1","sequencer":"17"}}}]}"#;
        let r = parse_records(payload).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].key, "a/b c.jpg");
        assert_eq!((r[0].bucket.as_str(), r[0].etag.as_str(), r[0].size), ("images", "abc123", 1234));
        assert_eq!(r[0].event_name, "s3:ObjectCreated:Put");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_records(b"\xff\x00").is_err());
        assert!(parse_records(b"{}").is_err());
        assert_eq!(parse_records(br#"{"Records":[{}]}"#).unwrap()[0].key, "");
    }
}
