//! The doctor's reading of MinIO's admin answers (`harness_model::minio_admin`): the
//! server info's notification targets and the `notify_kafka` configuration text. Any
//! answer is read or found empty, never a panic, and never more targets than it holds.
//!
//! The first byte picks the answer the rest is: even, the server info (JSON);
//! odd, the configuration text (as decrypted).
#![no_main]

use harness_model::minio_admin::{parse_kafka_config, parse_targets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    if pick % 2 == 0 {
        if let Ok(info) = serde_json::from_slice::<serde_json::Value>(body) {
            // Each target took at least `{"x":{}}` of the answer.
            assert!(parse_targets(&info).len() * 8 <= body.len());
        }
    } else {
        let text = String::from_utf8_lossy(body);
        let targets = parse_kafka_config(&text);
        // One target per id, and each id was written on a line of its own.
        assert!(targets.len() <= text.lines().count());
        for t in &targets {
            assert!(!t.id.is_empty());
        }
    }
});
