//! MinIO's event records, parsed leniently: a record the harness cannot read is
//! counted, not fatal. The parser is pure, so it lives in `harness-model`
//! (`harness_model::records`, where its tests and the fuzz target `observer_records`
//! reach it without Kafka); re-exported here so the observers' paths stay the same.

pub use harness_model::records::{parse_records, S3Record};
