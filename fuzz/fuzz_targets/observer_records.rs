//! The observers' reading of a Kafka message from MinIO (`harness_model::records`,
//! used by harness-core's topic observers) and the key decoding it uses: any payload
//! is records or an error, never a panic.
#![no_main]

use harness_model::keys::decode_event_key;
use harness_model::records::parse_records;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = parse_records(data) {
        for r in &records {
            assert!(!r.etag.starts_with('"') && !r.etag.ends_with('"'), "etag keeps its quotes: {:?}", r.etag);
        }
    }
    if let Ok(raw) = std::str::from_utf8(data) {
        let key = decode_event_key(raw);
        if !raw.contains(['%', '+']) {
            assert_eq!(key, raw, "a key without escapes decodes to itself");
        }
    }
});
