//! The doctor's reading of what answers at a Kafka address (`harness_model::kafka_wire`):
//! any answer is decoded or an error, never a panic, and never an allocation beyond
//! the answer's size (ci/fuzz runs with -rss_limit_mb and -malloc_limit_mb, so a
//! reservation sized from a count on the wire is a crash).
//!
//! The first byte picks the request the rest answers: 0–12 Metadata of that version,
//! 13 ApiVersions, 14 SaslHandshake; any other, all three (Metadata v12). The rest is
//! the answer's body after its length prefix, whose first 4 bytes also go through
//! `frame_size`.
#![no_main]

use harness_model::kafka_wire::{api_versions, frame_size, metadata, sasl_handshake, MAX_FRAME};
use libfuzzer_sys::fuzz_target;

/// The doctor's correlation id (harness/core/src/doctor/kafka_wire.rs).
const CORRELATION_ID: i32 = 7;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    if let Some(prefix) = body.first_chunk::<4>() {
        if let Some(size) = frame_size(*prefix) {
            assert!((4..=MAX_FRAME).contains(&size));
        }
    }
    let metadata_of = |version: i16| {
        if let Ok(m) = metadata(body, CORRELATION_ID, version) {
            // Each broker and topic kept took bytes of the answer.
            assert!(m.brokers.len() + m.topics.len() <= body.len());
            for b in &m.brokers {
                assert!(!b.host.chars().any(char::is_control), "a host with control characters: {:?}", b.host);
            }
        }
    };
    let api_versions_of = || {
        if let Ok(keys) = api_versions(body, CORRELATION_ID) {
            assert!(keys.len() * 6 + 10 <= body.len());
        }
    };
    let sasl_of = || {
        if let Ok(mechanisms) = sasl_handshake(body, CORRELATION_ID) {
            assert!(mechanisms.len() * 2 + 10 <= body.len());
        }
    };
    match pick {
        0..=12 => metadata_of(i16::from(pick)),
        13 => api_versions_of(),
        14 => sasl_of(),
        _ => {
            metadata_of(12);
            api_versions_of();
            sasl_of();
        }
    }
});
