//! `harness lint`'s rules over the namespace's live objects: what the objects say
//! that a walk of the links cannot see yet, foremost a MinIO `queue_dir` on an
//! `emptyDir` or on no volume (events queued while Kafka is down vanish with the
//! pod), a bootstrap address on a port that is not a Kafka listener, or SASL on one
//! side only.
//!
//! The controllers (StatefulSets, Deployments, DaemonSets), the pods no controller
//! owns, Services, ConfigMaps, Secrets and Strimzi's resources are read as they are
//! stored, one "file" per object, and linted as one set. Secret values whose key
//! names a password, secret, token or key are replaced before the linter sees
//! them, so no finding can quote one. Rules the cluster checks answer with live
//! state (a `KafkaTopic`'s label and operator) are left to those checks.
//!
//! A lint finding is a warning here: the walk that follows proves whether the link
//! works; the objects only say why it will fail under a condition the walk does not
//! create (a pod rescheduled, a broker down).

use std::time::Duration;

use harness_model::lint::{self, Manifests};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::api::{Api, DynamicObject, ListParams};
use kube::Client;
use serde_json::Value;

use super::cluster::{bounded, strimzi};
use super::{Finding, Link, Notes};

/// Rules answered with live state elsewhere: a `KafkaTopic`'s label and operator by
/// [`super::cluster`], a target without `queue_dir` by MinIO's own configuration
/// (which `mc admin config set` may have changed since the objects were written).
const LIVE_ELSEWHERE: &[&str] =
    &["kafka-topic-operator", "kafka-topic-cluster-label", "kafka-topic-cluster-unknown", "minio-queue-dir-missing"];

pub(super) async fn check(client: &Client, ns: &str, timeout: Duration, notes: &mut Notes) {
    let objects = objects(client, ns, timeout).await;
    if objects.is_empty() {
        return;
    }
    let mut manifests = Manifests::new();
    for (name, text) in &objects {
        manifests.add(name, text);
    }
    let found: Vec<lint::Finding> = manifests.lint().into_iter().filter(|f| !LIVE_ELSEWHERE.contains(&f.rule)).collect();
    for f in found {
        notes.push(
            Finding::warning(link_of(f.rule), format!("lint rule {} at {}", f.rule, f.path), f.message)
                .because("the namespace's objects, read as `harness lint` reads manifests, say so")
                .fix(f.fix),
        );
    }
}

fn link_of(rule: &str) -> Link {
    match rule {
        r if r.starts_with("minio-") => Link::MinioKafkaTarget,
        r if r.starts_with("bootstrap-") || r.starts_with("sasl-") || r.starts_with("tls-") => Link::KafkaBootstrap,
        r if r.starts_with("topic-") => Link::Topic,
        _ => Link::Workloads,
    }
}

/// `(Kind/name, JSON text)` of every object the lint reads; JSON is YAML, so the
/// linter takes it as it is.
async fn objects(client: &Client, ns: &str, timeout: Duration) -> Vec<(String, String)> {
    let mut out: Vec<Value> = Vec::new();
    macro_rules! typed {
        ($t:ty, $kind:literal, $keep:expr) => {
            let api: Api<$t> = Api::namespaced(client.clone(), ns);
            if let Ok(list) = bounded(timeout, concat!("listing ", $kind, "s"), api.list(&ListParams::default())).await {
                for o in list.items.into_iter().filter($keep) {
                    if let Ok(mut v) = serde_json::to_value(&o) {
                        v["kind"] = $kind.into();
                        out.push(v);
                    }
                }
            }
        };
    }
    typed!(StatefulSet, "StatefulSet", |_| true);
    typed!(Deployment, "Deployment", |_| true);
    typed!(DaemonSet, "DaemonSet", |_| true);
    // A controller's pods are its template again; a bare pod is all there is.
    typed!(Pod, "Pod", |p: &Pod| p.metadata.owner_references.as_ref().is_none_or(|o| o.is_empty()));
    typed!(Service, "Service", |_| true);
    typed!(ConfigMap, "ConfigMap", |_| true);
    typed!(Secret, "Secret", |s: &Secret| s.type_.as_deref().is_none_or(|t| t == "Opaque"));
    for (kind, plural) in [("Kafka", "kafkas"), ("KafkaNodePool", "kafkanodepools"), ("KafkaTopic", "kafkatopics")] {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &strimzi(kind, plural));
        if let Ok(list) = bounded(timeout, "listing Strimzi resources", api.list(&ListParams::default())).await {
            out.extend(list.items.into_iter().filter_map(|o| serde_json::to_value(&o).ok()));
        }
    }
    out.into_iter()
        .map(|mut v| {
            tidy(&mut v);
            let name = format!("{}/{}", v["kind"].as_str().unwrap_or("?"), v["metadata"]["name"].as_str().unwrap_or("?"));
            (name, serde_json::to_string_pretty(&v).unwrap_or_default())
        })
        .collect()
}

/// What the linter does not read (status, managed fields), and secret values.
fn tidy(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
        m.remove("annotations");
    }
    if v["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(data) = v[field].as_object_mut() {
                for (k, value) in data.iter_mut() {
                    if sensitive(k) {
                        // Base64 of "redacted" where the linter decodes `data`.
                        *value = if field == "data" { "cmVkYWN0ZWQ=".into() } else { "redacted".into() };
                    }
                }
            }
        }
    }
}

fn sensitive(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "CREDENTIAL"].iter().any(|s| k.contains(s)) || k.ends_with("_KEY") || k.contains("_KEY_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_reach_the_linter() {
        let mut v = serde_json::json!({
            "kind": "Secret", "metadata": {"name": "minio-env", "managedFields": [1]},
            "data": {"MINIO_ROOT_PASSWORD": "c2VjcmV0", "MINIO_NOTIFY_KAFKA_QUEUE_DIR_1": "L3F1ZXVl", "AWS_SECRET_ACCESS_KEY": "eA=="},
            "stringData": {"MINIO_NOTIFY_KAFKA_SASL_PASSWORD_1": "p", "MINIO_NOTIFY_KAFKA_BROKERS_1": "kafka:9092"}
        });
        tidy(&mut v);
        assert_eq!(v["data"]["MINIO_ROOT_PASSWORD"], "cmVkYWN0ZWQ=");
        assert_eq!(v["data"]["AWS_SECRET_ACCESS_KEY"], "cmVkYWN0ZWQ=");
        assert_eq!(v["data"]["MINIO_NOTIFY_KAFKA_QUEUE_DIR_1"], "L3F1ZXVl", "what the rules read stays");
        assert_eq!(v["stringData"]["MINIO_NOTIFY_KAFKA_SASL_PASSWORD_1"], "redacted");
        assert_eq!(v["stringData"]["MINIO_NOTIFY_KAFKA_BROKERS_1"], "kafka:9092");
        assert!(v["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn a_live_statefulset_in_json_is_linted_like_its_manifest() {
        let sts = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "minio"},
            "spec": {"template": {"spec": {
                "containers": [{"name": "minio", "image": "minio/minio", "args": ["server", "/data"],
                    "env": [
                        {"name": "MINIO_NOTIFY_KAFKA_ENABLE_PRIMARY", "value": "on"},
                        {"name": "MINIO_NOTIFY_KAFKA_BROKERS_PRIMARY", "value": "kafka:9092"},
                        {"name": "MINIO_NOTIFY_KAFKA_TOPIC_PRIMARY", "value": "minio-events"},
                        {"name": "MINIO_NOTIFY_KAFKA_QUEUE_DIR_PRIMARY", "value": "/queue/events"}
                    ],
                    "volumeMounts": [{"name": "q", "mountPath": "/queue"}]}],
                "volumes": [{"name": "q", "emptyDir": {}}]
            }}}
        });
        let found = lint::lint_documents("StatefulSet/minio", &serde_json::to_string_pretty(&sts).unwrap());
        assert!(found.iter().any(|f| f.rule == "minio-queue-dir-emptydir"), "{found:#?}");
    }
}
