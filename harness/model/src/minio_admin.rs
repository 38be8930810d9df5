//! What MinIO's admin API answers, read: the server info's notification targets and
//! the `notify_kafka` configuration's text (once decrypted: `harness-core`'s
//! doctor does the HTTP and the decryption). Pure functions of the answer, so the
//! fuzz target `minio_admin` runs them on any bytes.

/// The most the doctor reads of one admin answer (the server info of a large
/// deployment is tens of KiB; the Kafka configuration a few).
pub const MAX_ANSWER: usize = 4 << 20;

/// One notification target as the server info reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TargetState {
    /// `kafka`, `webhook`, …
    pub kind: String,
    /// The target's id (`1` in `arn:minio:sqs::1:kafka`).
    pub id: String,
    pub online: bool,
}

/// One Kafka target of MinIO's configuration (`notify_kafka:<id>`), values as set
/// (by `mc admin config set` or a `MINIO_NOTIFY_KAFKA_*` variable).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KafkaTarget {
    pub id: String,
    pub enabled: bool,
    pub brokers: String,
    pub topic: String,
    pub queue_dir: String,
    pub sasl: bool,
    pub tls: bool,
}

/// `services.notifications` of the server info: `[{"kafka": [{"1": {"status": "online"}}]}]`.
pub fn parse_targets(info: &serde_json::Value) -> Vec<TargetState> {
    let mut out = Vec::new();
    let Some(kinds) = info.pointer("/services/notifications").and_then(|n| n.as_array()) else { return out };
    for kind in kinds.iter().filter_map(|k| k.as_object()) {
        for (name, list) in kind {
            for entry in list.as_array().into_iter().flatten().filter_map(|e| e.as_object()) {
                for (id, status) in entry {
                    let online = status.get("status").and_then(|s| s.as_str()) == Some("online");
                    out.push(TargetState { kind: name.clone(), id: id.clone(), online });
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    out
}

/// `mc admin config get … notify_kafka` text: one line per target,
/// `notify_kafka:1 enable=on brokers=… topic=… queue_dir="…"`, and for values set by
/// environment variables, comment lines `# MINIO_NOTIFY_KAFKA_BROKERS_1=…`.
pub fn parse_kafka_config(text: &str) -> Vec<KafkaTarget> {
    let mut targets: std::collections::BTreeMap<String, KafkaTarget> = Default::default();
    let mut set = |id: &str, key: &str, value: &str| {
        let t = targets.entry(id.to_string()).or_insert_with(|| KafkaTarget { id: id.to_string(), ..Default::default() });
        let on = matches!(value, "on" | "true" | "1" | "yes");
        match key.to_ascii_lowercase().as_str() {
            "enable" => t.enabled = on,
            "brokers" => t.brokers = value.to_string(),
            "topic" => t.topic = value.to_string(),
            "queue_dir" => t.queue_dir = value.to_string(),
            "sasl" => t.sasl = on,
            "tls" => t.tls = on,
            _ => {}
        }
    };
    for line in text.lines().map(str::trim) {
        if let Some(env) = line.strip_prefix('#').map(str::trim).and_then(|l| l.strip_prefix("MINIO_NOTIFY_KAFKA_")) {
            let Some((name, value)) = env.split_once('=') else { continue };
            let (key, id) = match name.rsplit_once('_') {
                // `QUEUE_DIR` alone splits into `QUEUE` + `DIR`: not a key, so no id.
                Some((k, id)) if !id.is_empty() && is_env_key(k) => (k, id),
                _ => (name, "_"),
            };
            set(id, key, unquote(value));
        } else if let Some(rest) = line.strip_prefix("notify_kafka") {
            let (id, kvs) = match rest.strip_prefix(':') {
                // (`notify_kafka: …`, no id: the default target, as without the colon)
                Some(r) => match r.split_once(' ').unwrap_or((r, "")) {
                    ("", kvs) => ("_", kvs),
                    pair => pair,
                },
                None => ("_", rest),
            };
            for (k, v) in split_kvs(kvs) {
                set(id, &k, &v);
            }
        }
    }
    // `_` is the default target (no id): it is a target only when enabled.
    targets.into_values().filter(|t| t.id != "_" || t.enabled).collect()
}

fn is_env_key(k: &str) -> bool {
    matches!(k.to_ascii_lowercase().as_str(), "enable" | "brokers" | "topic" | "queue_dir" | "sasl" | "tls" | "queue_limit")
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v)
}

/// `a=1 b="x y" c=` → pairs; values may be quoted.
fn split_kvs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().to_string();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key, value));
        rest = next.trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_info_targets_are_read() {
        let info = serde_json::json!({"services": {"notifications": [
            {"kafka": [{"1": {"status": "offline"}}, {"2": {"status": "online"}}]},
            {"webhook": [{"w": {"status": "online"}}]}
        ]}});
        let t = parse_targets(&info);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0], TargetState { kind: "kafka".into(), id: "1".into(), online: false });
        assert!(t[1].online && t[2].kind == "webhook");
        assert!(parse_targets(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn config_lines_and_env_comments_are_read() {
        let text = "notify_kafka:1 enable=on brokers=kafka:8080 topic=images queue_dir=\"/q 1\" sasl=off tls=off\n\
                    # MINIO_NOTIFY_KAFKA_ENABLE_2=on\n\
                    # MINIO_NOTIFY_KAFKA_BROKERS_2=127.0.0.1:9092\n\
                    # MINIO_NOTIFY_KAFKA_QUEUE_DIR_2=/data/q\n\
                    # MINIO_NOTIFY_KAFKA_SASL_2=on\n\
                    notify_kafka enable=off brokers= topic=\n";
        let t = parse_kafka_config(text);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!((t[0].id.as_str(), t[0].brokers.as_str(), t[0].queue_dir.as_str(), t[0].enabled), ("1", "kafka:8080", "/q 1", true));
        assert_eq!((t[1].id.as_str(), t[1].brokers.as_str(), t[1].queue_dir.as_str(), t[1].sasl), ("2", "127.0.0.1:9092", "/data/q", true));
    }
}
