//! Processors (containers with `KAFKA_*` variables that are neither Kafka nor MinIO)
//! and the processor contract (README: The processor contract): a warning, not an
//! error, since a student's own processor configured its own way is not wrong; the
//! contract binds the processors the harness runs.

use super::Cx;

/// Names students use for the contract's variables: a hint says which to rename.
const ALIASES: &[(&str, &str)] = &[
    ("KAFKA_BROKERS", "KAFKA_BOOTSTRAP_SERVERS"),
    ("KAFKA_BROKER", "KAFKA_BOOTSTRAP_SERVERS"),
    ("KAFKA_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    ("KAFKA_SERVER", "KAFKA_BOOTSTRAP_SERVERS"),
    ("KAFKA_BOOTSTRAP_SERVER", "KAFKA_BOOTSTRAP_SERVERS"),
    ("KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP_SERVERS"),
    ("BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    ("KAFKA_TOPIC_NAME", "KAFKA_TOPIC"),
    ("TOPIC", "KAFKA_TOPIC"),
    ("KAFKA_GROUP", "KAFKA_GROUP_ID"),
    ("KAFKA_CONSUMER_GROUP", "KAFKA_GROUP_ID"),
    ("GROUP_ID", "KAFKA_GROUP_ID"),
    ("MINIO_ENDPOINT", "S3_ENDPOINT"),
    ("MINIO_URL", "S3_ENDPOINT"),
    ("S3_URL", "S3_ENDPOINT"),
    ("MINIO_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
    ("MINIO_ROOT_USER", "AWS_ACCESS_KEY_ID"),
    ("MINIO_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
    ("MINIO_ROOT_PASSWORD", "AWS_SECRET_ACCESS_KEY"),
    ("INPUT_BUCKET", "SOURCE_BUCKET"),
    ("BUCKET_NAME", "SOURCE_BUCKET"),
    ("OUTPUT_BUCKET", "TARGET_BUCKET"),
    ("THUMBNAIL_BUCKET", "TARGET_BUCKET"),
    ("THUMBNAIL_SIZE", "THUMBNAIL_WIDTH"),
];

pub(super) fn check(cx: &mut Cx) {
    let mut found = Vec::new();
    for c in cx.processors() {
        if !c.env_complete {
            continue;
        }
        let missing: Vec<&str> = crate::scenario::contract_required().iter().copied().filter(|v| c.var(v).is_none()).collect();
        if missing.is_empty() {
            continue;
        }
        let renames: Vec<String> = ALIASES
            .iter()
            .filter(|(alias, real)| missing.contains(real) && c.var(alias).is_some())
            .map(|(alias, real)| format!("rename {alias} to {real}"))
            .collect();
        let at = c.at.get("env").unwrap_or_else(|| c.at.clone());
        let mut fix = renames.join(", ");
        let rest: Vec<&str> = missing.iter().copied().filter(|m| !ALIASES.iter().any(|(a, r)| r == m && c.var(a).is_some())).collect();
        if !rest.is_empty() {
            if !fix.is_empty() {
                fix.push_str("; ");
            }
            fix.push_str(&format!("add {} to env", rest.join(", ")));
        }
        found.push((
            at.site(),
            format!(
                "processor container {} lacks {} of the harness's processor contract (README, The processor contract): a processor configured its own way (its own variable names, values in its code) works without them, but one the harness runs (`processor.image`) is given exactly these and must read them",
                c.name(),
                missing.join(", "),
            ),
            fix,
        ));
    }
    for (site, message, fix) in found {
        cx.push("processor-env-missing", site, message, fix);
    }
}
