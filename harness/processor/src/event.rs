//! MinIO bucket notifications: parsing a Kafka record and decoding object keys.

use serde::Deserialize;

/// What to do with one record of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// An object was created in the source bucket: make its thumbnail.
    Process(ObjectRef),
    /// Not for us (another event type or bucket); `why` is for a debug log.
    Ignore { why: String },
    /// For us, but the key cannot be decoded: skip it with a warning.
    BadKey { raw_key: String, why: String },
}

/// An object to make a thumbnail of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectRef {
    /// The decoded object key, exactly as stored in the bucket.
    pub key: String,
    /// The size in the event, if any.
    pub size: Option<u64>,
}

/// The payload is not a MinIO notification at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EventError {
    #[error("empty payload")]
    Empty,
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Option<Vec<Record>>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
    #[serde(default)]
    size: Option<u64>,
}

/// Reads one Kafka record's payload and decides, per notification record, what to do.
/// A notification without records yields an empty list.
pub(crate) fn parse(payload: Option<&[u8]>, source_bucket: &str) -> Result<Vec<Disposition>, EventError> {
    let payload = match payload {
        Some(p) if !p.iter().all(u8::is_ascii_whitespace) => p,
        _ => return Err(EventError::Empty),
    };
    let note: Notification = serde_json::from_slice(payload)?;
    Ok(note.records.unwrap_or_default().into_iter().map(|r| classify(r, source_bucket)).collect())
}

fn classify(r: Record, source_bucket: &str) -> Disposition {
    if !r.event_name.starts_with("s3:ObjectCreated:") {
        return Disposition::Ignore { why: format!("event {:?}", r.event_name) };
    }
    if r.s3.bucket.name != source_bucket {
        return Disposition::Ignore { why: format!("bucket {:?}", r.s3.bucket.name) };
    }
    match decode_key(&r.s3.object.key) {
        Ok(key) if !key.is_empty() => Disposition::Process(ObjectRef { key, size: r.s3.object.size }),
        Ok(_) => Disposition::BadKey { raw_key: r.s3.object.key, why: "empty key".to_string() },
        Err(why) => Disposition::BadKey { raw_key: r.s3.object.key, why },
    }
}

/// Decodes a key as MinIO writes it in events (Go's `url.QueryEscape`): `+` is a
/// space, then `%XX` escapes; a literal plus arrives as `%2B`.
pub(crate) fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&spaced).collect();
    String::from_utf8(bytes).map_err(|_| format!("key {raw:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape MinIO publishes to Kafka (trimmed of fields we ignore).
    fn minio_event(event: &str, bucket: &str, key: &str) -> String {
        format!(
            r#"{{"EventName":"{event}","Key":"{bucket}/{key}","Records":[{{"eventVersion":"2.0",
            "eventSource":"minio:s3","awsRegion":"","eventTime":"2025-01-01T00:00:00.000Z",
            "eventName":"{event}","userIdentity":{{"principalId":"minioadmin"}},
            "requestParameters":{{"principalId":"minioadmin","region":"","sourceIPAddress":"127.0.0.1"}},
            "responseElements":{{"x-amz-id-2":"dd9025bab4ad","x-amz-request-id":"1818C1","x-minio-deployment-id":"a0","x-minio-origin-endpoint":"http://127.0.0.1:9000"}},
            "s3":{{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{{"name":"{bucket}","ownerIdentity":{{"principalId":"minioadmin"}},"arn":"arn:aws:s3:::{bucket}"}},
            "object":{{"key":"{key}","size":123,"eTag":"d41d8cd98f00b204e9800998ecf8427e","contentType":"image/jpeg","userMetadata":{{"content-type":"image/jpeg"}},"sequencer":"1818C1A0"}}}},
            "source":{{"host":"127.0.0.1","port":"","userAgent":"MinIO (linux; amd64)"}}}}]}}"#
        )
    }

    #[test]
    fn decodes_form_encoded_keys() {
        let cases = [
            ("plain.jpg", "plain.jpg"),
            ("a%2Fb%2Fc.jpg", "a/b/c.jpg"),
            ("a/b/c.jpg", "a/b/c.jpg"),
            ("my+photo.jpg", "my photo.jpg"),
            ("one%2Btwo.png", "one+two.png"),
            ("2024%2F05%2Fholiday+pics%2Fa%2Bb+%281%29.jpg", "2024/05/holiday pics/a+b (1).jpg"),
            ("m%C3%BCnchen%2F%C3%BCber.jpg", "münchen/über.jpg"),
            ("%E6%97%A5%E6%9C%AC%2F%E5%86%99%E7%9C%9F+1.png", "日本/写真 1.png"),
            ("100%25.jpg", "100%.jpg"),
        ];
        for (raw, want) in cases {
            assert_eq!(decode_key(raw).as_deref(), Ok(want), "raw {raw}");
        }
    }

    #[test]
    fn invalid_utf8_after_decoding_is_an_error() {
        assert!(decode_key("bad%FF.jpg").is_err());
    }

    #[test]
    fn created_event_in_source_bucket_is_processed() {
        let json = minio_event("s3:ObjectCreated:Put", "images", "a%2Fb+c%2B%C3%BC.jpg");
        let got = parse(Some(json.as_bytes()), "images").expect("parses");
        assert_eq!(got, [Disposition::Process(ObjectRef { key: "a/b c+ü.jpg".into(), size: Some(123) })]);
    }

    #[test]
    fn other_bucket_and_other_event_are_ignored() {
        let other_bucket = minio_event("s3:ObjectCreated:Put", "thumbnails", "x.jpg");
        let removed = minio_event("s3:ObjectRemoved:Delete", "images", "x.jpg");
        for json in [other_bucket, removed] {
            let got = parse(Some(json.as_bytes()), "images").expect("parses");
            assert!(matches!(got.as_slice(), [Disposition::Ignore { .. }]), "{got:?}");
        }
    }

    #[test]
    fn mixed_records_are_classified_one_by_one() {
        let json = r#"{"Records":[
            {"eventName":"s3:ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"images"},"object":{"key":"big.png"}}},
            {"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"other"},"object":{"key":"x.png","size":1}}},
            {"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"images"},"object":{"key":"bad%FF","size":1}}}
        ]}"#;
        let got = parse(Some(json.as_bytes()), "images").expect("parses");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Disposition::Process(ObjectRef { key: "big.png".into(), size: None }));
        assert!(matches!(got[1], Disposition::Ignore { .. }));
        assert!(matches!(got[2], Disposition::BadKey { .. }));
    }

    #[test]
    fn notification_without_records_is_empty() {
        let got = parse(Some(br#"{"EventName":"s3:TestEvent"}"#), "images").expect("parses");
        assert!(got.is_empty());
    }

    #[test]
    fn non_json_and_empty_payloads_are_errors() {
        assert!(matches!(parse(Some(b"hello"), "images"), Err(EventError::Json(_))));
        assert!(matches!(parse(Some(b"[1,2]"), "images"), Err(EventError::Json(_))));
        assert!(matches!(parse(Some(b" \n"), "images"), Err(EventError::Empty)));
        assert!(matches!(parse(None, "images"), Err(EventError::Empty)));
    }
}
