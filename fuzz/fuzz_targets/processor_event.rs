//! The reference processor's reading of a Kafka record (`harness/processor/src/event.rs`):
//! any payload is a list of dispositions or an error, never a panic.
//!
//! The module is compiled in from its source file rather than through the
//! harness-processor crate, which would build librdkafka and the AWS SDK into the fuzz
//! build. The parser stays where it is: the processor depends on no crate of the
//! harness (docs/ARCHITECTURE.md), and this file needs only serde, serde_json,
//! thiserror and percent-encoding, which this crate names.
#![no_main]

#[allow(dead_code)]
#[path = "../../harness/processor/src/event.rs"]
mod event;

use event::Disposition;
use libfuzzer_sys::fuzz_target;

const SOURCE_BUCKET: &str = "images";

fuzz_target!(|data: &[u8]| {
    if let Ok(dispositions) = event::parse(Some(data), SOURCE_BUCKET) {
        for d in &dispositions {
            if let Disposition::Process(object) = d {
                assert!(!object.key.is_empty(), "an empty key is processed");
            }
        }
    }
    if let Ok(raw) = std::str::from_utf8(data) {
        let decoded = event::decode_key(raw);
        if !raw.contains(['%', '+']) {
            assert_eq!(decoded.as_deref(), Ok(raw), "a key without escapes decodes to itself");
        }
    }
});
