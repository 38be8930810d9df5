//! The objects a kubernetes run creates, written as the YAML a person would write
//! (`serde_json::json!`) and read into k8s-openapi's types, so a field the API
//! does not know fails here, in a unit test, not on a cluster.
//!
//! One namespace per run holds everything:
//! - Services created first, so the addresses Kafka advertises are known before
//!   Kafka starts, and stay the same when a fault deletes the pod: `kafka`, a
//!   ClusterIP Service of the PLAINTEXT listener the pods use (MinIO's Kafka
//!   target, the processor); `kafka-external`, a NodePort Service of the listener
//!   the harness uses from outside, which requires SASL/PLAIN with a per-run
//!   password ([`KAFKA_EXTERNAL`]); `minio`, a NodePort Service of MinIO's API,
//!   which requires the run's random credentials. A node port is open to anyone
//!   who reaches a node: nothing behind one answers without the run's secret.
//! - `kafka`: a Secret with Kafka's config files (they hold the SASL password).
//! - `kafka` and `minio` StatefulSets of one replica each, with their data on a
//!   hostPath below [`VOLUME_ROOT`] (a pod deleted by a fault comes back to its
//!   data, as a restarted process does locally).
//! - `processor`: a Deployment of the builtin processor image.

use std::collections::BTreeMap;

use harness_model::history::WIPED_KEYS_MAX;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::fault::{queued_event_keys, Wiped, QUEUED_EVENT_HEAD, QUEUE_DIR_DEPTH};

/// Every run's data lives below this node folder, one folder per namespace.
pub const VOLUME_ROOT: &str = "/var/lib/harness/k8s-volumes";
pub const KAFKA: &str = "kafka";
pub const MINIO: &str = "minio";
pub const PROCESSOR: &str = "processor";
/// The NodePort Service of Kafka's SASL listener (the harness's, from outside).
pub const KAFKA_EXTERNAL: &str = "kafka-external";
/// The SASL user of that listener (its password is the run's).
pub const KAFKA_EXTERNAL_USER: &str = "harness";
/// The label every pod of a run carries with its service's name.
pub const APP_LABEL: &str = "app.kubernetes.io/name";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Inside the Kafka pod.
pub const KAFKA_CONFIG_DIR: &str = "/etc/kafka";
pub const KAFKA_DATA: &str = "/var/lib/kafka/data";
pub const KAFKA_INTERNAL_PORT: u16 = 9092;
pub const KAFKA_EXTERNAL_PORT: u16 = 9094;
/// Inside the MinIO pod.
pub const MINIO_ROOT: &str = "/minio";
pub const MINIO_API_PORT: u16 = 9000;

fn typed<T: DeserializeOwned>(what: &str, v: Value) -> T {
    // The values below are constants of this module plus strings; a failure is a
    // bug here, which the unit tests catch.
    serde_json::from_value(v).unwrap_or_else(|e| panic!("the {what} manifest does not fit its type: {e}"))
}

fn labels_json(labels: &BTreeMap<String, String>) -> Value {
    json!(labels)
}

pub fn namespace(name: &str, labels: &BTreeMap<String, String>) -> Namespace {
    typed("namespace", json!({ "metadata": { "name": name, "labels": labels_json(labels) } }))
}

/// A NodePort Service `name` in front of the pods of `app`: every port is open on
/// every node, so only listeners that require the run's credentials go here.
/// `ports`: (name, port).
pub fn node_port_service(name: &str, app: &str, ports: &[(&str, u16)], labels: &BTreeMap<String, String>) -> Service {
    service("NodePort", name, app, ports, labels)
}

/// A ClusterIP Service `name` in front of the pods of `app`: reached from pods (and
/// the cluster's nodes), not through a node port.
pub fn cluster_ip_service(name: &str, app: &str, ports: &[(&str, u16)], labels: &BTreeMap<String, String>) -> Service {
    service("ClusterIP", name, app, ports, labels)
}

fn service(kind: &str, name: &str, app: &str, ports: &[(&str, u16)], labels: &BTreeMap<String, String>) -> Service {
    let ports: Vec<Value> = ports.iter().map(|(name, port)| json!({ "name": name, "port": port, "targetPort": port })).collect();
    typed(
        "service",
        json!({
            "metadata": { "name": name, "labels": labels_json(labels) },
            "spec": {
                "type": kind,
                "selector": { APP_LABEL: app },
                "ports": ports,
                // A fault deletes pods: only a ready pod should get traffic.
                "publishNotReadyAddresses": false
            }
        }),
    )
}

/// Kafka's two Services: `kafka` (ClusterIP, the PLAINTEXT listener of pods) and
/// [`KAFKA_EXTERNAL`] (NodePort, the SASL listener of the harness outside).
pub fn kafka_services(labels: &BTreeMap<String, String>) -> (Service, Service) {
    (
        cluster_ip_service(KAFKA, KAFKA, &[("internal", KAFKA_INTERNAL_PORT)], labels),
        node_port_service(KAFKA_EXTERNAL, KAFKA, &[("external", KAFKA_EXTERNAL_PORT)], labels),
    )
}

/// A Secret of files, mounted as a folder (config files that hold credentials).
pub fn file_secret(name: &str, files: &[(&str, String)], labels: &BTreeMap<String, String>) -> Secret {
    let data: BTreeMap<&str, &str> = files.iter().map(|(k, v)| (*k, v.as_str())).collect();
    typed("secret", json!({ "metadata": { "name": name, "labels": labels_json(labels) }, "stringData": data }))
}

/// A Secret of environment variables (credentials never sit in a pod spec).
pub fn env_secret(name: &str, env: &[(String, String)], labels: &BTreeMap<String, String>) -> Secret {
    let data: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    typed("secret", json!({ "metadata": { "name": name, "labels": labels_json(labels) }, "stringData": data }))
}

/// The container beside each service that sends its signals: the pod shares one
/// process namespace, so `kill -KILL` from here is a real SIGKILL of the service's
/// process. (Deleting a pod, even with grace 0, gives its containers SIGTERM and
/// at least two seconds: a clean shutdown, not a crash.)
pub const SIGNALS: &str = "signals";

/// What is common to every pod of a run: no service-account token (nothing here
/// talks to the API server), no service-link variables, images only from the node,
/// and the [`SIGNALS`] container ([`signals`]).
fn pod_spec(mut containers: Vec<Value>, volumes: Value, grace_secs: i64, signals: Value) -> Value {
    containers.push(signals);
    json!({
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "shareProcessNamespace": true,
        "terminationGracePeriodSeconds": grace_secs,
        "containers": containers,
        "volumes": volumes
    })
}

/// The [`SIGNALS`] container, from `image` (which has a shell). For a service
/// the harness can partition (`serves`: the port it is ready on), it may change
/// the pod's own firewall (NET_ADMIN, in the pod's network namespace only) and it
/// carries the pod's readiness probe, through loopback: a partition drops every
/// packet but loopback's, so the pod stays ready and its Service keeps sending
/// clients into the blackhole (instead of refusing them, as a Service without
/// ready pods does).
fn signals(image: &str, mounts: Value, serves: Option<u16>) -> Value {
    let mut c = json!({
        "name": SIGNALS,
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["sleep", "infinity"],
        "resources": { "requests": { "cpu": "1m", "memory": "4Mi" } },
        "volumeMounts": mounts
    });
    if let Some(port) = serves {
        c["securityContext"] = json!({ "capabilities": { "add": ["NET_ADMIN"] } });
        c["readinessProbe"] = json!({
            "exec": { "command": ["bash", "-c", format!("exec 3<>/dev/tcp/127.0.0.1/{port}")] },
            "periodSeconds": 1,
            "failureThreshold": 1
        });
    }
    c
}

/// The chain of the pod's own firewall a partition adds (one per direction).
const PARTITION_CHAIN: &str = "HARNESS-PARTITION";

/// The `sh -c` text the [`SIGNALS`] container runs to cut its pod off the network:
/// every packet in or out dropped (held, not refused), loopback's excepted. In the
/// pod's own network namespace: nothing of the node's firewall is touched.
pub fn partition_script() -> String {
    let c = PARTITION_CHAIN;
    format!(
        "set -e; \
         iptables -w -N {c}-IN; iptables -w -A {c}-IN -i lo -j RETURN; iptables -w -A {c}-IN -j DROP; \
         iptables -w -N {c}-OUT; iptables -w -A {c}-OUT -o lo -j RETURN; iptables -w -A {c}-OUT -j DROP; \
         iptables -w -I INPUT 1 -j {c}-IN; iptables -w -I OUTPUT 1 -j {c}-OUT; echo partitioned"
    )
}

/// The `sh -c` text that undoes [`partition_script`] (whatever part of it exists).
pub fn heal_partition_script() -> String {
    let c = PARTITION_CHAIN;
    format!(
        "iptables -w -D INPUT -j {c}-IN 2>/dev/null; iptables -w -D OUTPUT -j {c}-OUT 2>/dev/null; \
         for x in IN OUT; do iptables -w -F {c}-$x 2>/dev/null; iptables -w -X {c}-$x 2>/dev/null; done; \
         if iptables -w -S | grep -q {c}; then echo left; else echo healed; fi"
    )
}

/// The `sh -c` text the MinIO pod's [`SIGNALS`] container runs to remove every
/// queued event below `dir` (the folders stay: MinIO keeps using them). It prints the
/// object key field of each of the first [`WIPED_KEYS_MAX`] files, one a line, then
/// `count N`, how many it removed: [`parse_wipe_output`] reads it. Only the files
/// listed at the start are removed: one queued meanwhile is delivered later, not lost.
pub fn wipe_queue_script(dir: &str) -> String {
    format!(
        "find '{dir}' -maxdepth {QUEUE_DIR_DEPTH} -type f 2>/dev/null | {{ n=0; i=0; \
         while IFS= read -r f; do \
           if [ $i -lt {WIPED_KEYS_MAX} ]; then head -c {QUEUED_EVENT_HEAD} \"$f\" 2>/dev/null | grep -o '\"object\":{{\"key\":\"[^\"]*\"' | head -n 1; fi; i=$((i+1)); \
           rm \"$f\" 2>/dev/null && n=$((n+1)); \
         done; echo \"count $n\"; }}"
    )
}

/// What [`wipe_queue_script`] printed, read: `None` when its last line is not the count.
pub fn parse_wipe_output(out: &str) -> Option<Wiped> {
    let mut lines: Vec<&str> = out.lines().collect();
    let events = lines.pop()?.strip_prefix("count ")?.trim().parse().ok()?;
    let keys = lines.iter().flat_map(|l| queued_event_keys(l).into_iter().take(1)).take(WIPED_KEYS_MAX).collect();
    Some(Wiped { events, keys })
}
/// The `sh -c` text the [`SIGNALS`] container runs to send `signal` to every
/// process whose command line contains `needle`; prints their pids. (The `[x]`
/// around the needle's last character keeps the shell from matching itself.)
pub fn signal_script(signal: &str, needle: &str) -> String {
    let (head, last) = needle.split_at(needle.len() - 1);
    format!(
        "for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null); \
         case \"$c\" in *'{head}'[{last}]*) kill -{signal} ${{p#/proc/}} && echo ${{p#/proc/}};; esac; done"
    )
}

/// The `sh -c` text the [`SIGNALS`] container runs to send `signal` to every
/// process of the container whose runtime id is `container_id` (its cgroup path
/// holds the id, with either cgroup driver); prints their pids. Needs only `cat`.
pub fn signal_container_script(signal: &str, container_id: &str) -> String {
    format!(
        "for p in /proc/[0-9]*; do case \"$(cat $p/cgroup 2>/dev/null)\" in *'{container_id}'*) \
         kill -{signal} ${{p#/proc/}} && echo ${{p#/proc/}};; esac; done"
    )
}

/// What each service's process has in its command line.
pub fn process_needle(app: &str) -> &'static str {
    match app {
        KAFKA => "kafka.Kafka",
        MINIO => "minio server",
        _ => "harness processor",
    }
}

fn host_volume(name: &str, namespace: &str, service: &str) -> Value {
    json!({ "name": name, "hostPath": { "path": format!("{VOLUME_ROOT}/{namespace}/{service}"), "type": "DirectoryOrCreate" } })
}

fn stateful_set(app: &str, labels: &BTreeMap<String, String>, pod: Value) -> StatefulSet {
    let mut pod_labels = labels.clone();
    pod_labels.insert(APP_LABEL.into(), app.into());
    typed(
        "statefulset",
        json!({
            "metadata": { "name": app, "labels": labels_json(labels) },
            "spec": {
                "replicas": 1,
                "serviceName": app,
                "podManagementPolicy": "Parallel",
                "selector": { "matchLabels": { APP_LABEL: app } },
                "template": { "metadata": { "labels": labels_json(&pod_labels) }, "spec": pod }
            }
        }),
    )
}

pub struct KafkaPod<'a> {
    pub image: &'a str,
    /// `sh -c` command line: format storage on first start, then the broker.
    pub command: String,
    pub namespace: &'a str,
    pub grace_secs: i64,
}

pub fn kafka_stateful_set(k: &KafkaPod<'_>, labels: &BTreeMap<String, String>) -> StatefulSet {
    let container = json!({
        "name": KAFKA,
        "image": k.image,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", k.command],
        "ports": [
            { "name": "internal", "containerPort": KAFKA_INTERNAL_PORT },
            { "name": "external", "containerPort": KAFKA_EXTERNAL_PORT }
        ],
        // Ready once the broker listens (probed from the signals container); the
        // harness's own round trip is the real test.
        "resources": { "requests": { "cpu": "100m", "memory": "512Mi" } },
        "volumeMounts": [
            { "name": "config", "mountPath": KAFKA_CONFIG_DIR },
            { "name": "data", "mountPath": KAFKA_DATA }
        ]
    });
    // A Secret, not a ConfigMap: server.properties holds the SASL listener's password.
    let volumes = json!([{ "name": "config", "secret": { "secretName": KAFKA } }, host_volume("data", k.namespace, KAFKA)]);
    stateful_set(KAFKA, labels, pod_spec(vec![container], volumes, k.grace_secs, signals(k.image, json!([]), Some(KAFKA_INTERNAL_PORT))))
}

pub struct MinioPod<'a> {
    pub image: &'a str,
    /// The [`SIGNALS`] container's image (MinIO's has no shell).
    pub signals_image: &'a str,
    pub args: Vec<String>,
    pub namespace: &'a str,
    /// The Secret with MinIO's environment (root credentials, Kafka targets).
    pub env_secret: &'a str,
    pub grace_secs: i64,
}

pub fn minio_stateful_set(m: &MinioPod<'_>, labels: &BTreeMap<String, String>) -> StatefulSet {
    let container = json!({
        "name": MINIO,
        "image": m.image,
        "imagePullPolicy": "Never",
        "command": m.args,
        "envFrom": [{ "secretRef": { "name": m.env_secret } }],
        "ports": [{ "name": "api", "containerPort": MINIO_API_PORT }],
        "resources": { "requests": { "cpu": "100m", "memory": "256Mi" } },
        "volumeMounts": [{ "name": "root", "mountPath": MINIO_ROOT }]
    });
    let volumes = json!([host_volume("root", m.namespace, MINIO)]);
    // The signals container sees MinIO's folder too: `queue_dir_loss` wipes the
    // queue from there (MinIO's image has no shell).
    let signals_mounts = json!([{ "name": "root", "mountPath": MINIO_ROOT }]);
    stateful_set(
        MINIO,
        labels,
        pod_spec(vec![container], volumes, m.grace_secs, signals(m.signals_image, signals_mounts, Some(MINIO_API_PORT))),
    )
}

pub struct ProcessorPods<'a> {
    pub image: &'a str,
    /// The [`SIGNALS`] container's image (the processor's has no shell).
    pub signals_image: &'a str,
    /// Empty: the image's own entrypoint and command (a user's image).
    pub command: Vec<String>,
    /// `Never` for images the harness loaded itself; `IfNotPresent` for a user's
    /// image, which a cluster may pull from its registry.
    pub pull_policy: &'a str,
    pub env_secret: &'a str,
    pub replicas: i32,
    pub grace_secs: i64,
}

pub fn processor_deployment(p: &ProcessorPods<'_>, labels: &BTreeMap<String, String>) -> Deployment {
    let mut pod_labels = labels.clone();
    pod_labels.insert(APP_LABEL.into(), PROCESSOR.into());
    let mut container = json!({
        "name": PROCESSOR,
        "image": p.image,
        "imagePullPolicy": p.pull_policy,
        "envFrom": [{ "secretRef": { "name": p.env_secret } }],
        "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } }
    });
    if !p.command.is_empty() {
        container["command"] = json!(p.command);
    }
    typed(
        "deployment",
        json!({
            "metadata": { "name": PROCESSOR, "labels": labels_json(labels) },
            "spec": {
                "replicas": p.replicas,
                "selector": { "matchLabels": { APP_LABEL: PROCESSOR } },
                // A crashed pod is replaced at once; a scale-up adds, never swaps.
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } },
                "template": {
                    "metadata": { "labels": labels_json(&pod_labels) },
                    "spec": pod_spec(vec![container], json!([]), p.grace_secs, signals(p.signals_image, json!([]), None))
                }
            }
        }),
    )
}

/// A pod that removes the run's hostPath data from the node at teardown (the
/// harness may not run on the node, so it cannot delete the folder itself).
pub fn cleanup_pod(image: &str, namespace: &str, labels: &BTreeMap<String, String>) -> Pod {
    let mut pod_labels = labels.clone();
    pod_labels.insert(APP_LABEL.into(), "cleanup".into());
    typed(
        "cleanup pod",
        json!({
            "metadata": { "name": "cleanup", "labels": labels_json(&pod_labels) },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": false,
                "enableServiceLinks": false,
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "cleanup",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["rm", "-rf", format!("/volumes/{namespace}")],
                    "volumeMounts": [{ "name": "volumes", "mountPath": "/volumes" }]
                }],
                "volumes": [{ "name": "volumes", "hostPath": { "path": VOLUME_ROOT, "type": "DirectoryOrCreate" } }]
            }
        }),
    )
}

/// A label value from any text: at most 63 characters of `[A-Za-z0-9._-]`,
/// starting and ending with an alphanumeric (the API's rule).
pub fn label_value(text: &str) -> String {
    let s: String = text.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).take(63).collect();
    s.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

#[cfg(test)]
mod tests {
    /// The script as the pod's shell runs it (here the host's `sh`): it removes every
    /// queued file, keeps the folders, and names each event's object.
    #[test]
    fn the_wipe_script_removes_the_queue_and_names_each_event() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("kafka-1");
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..3 {
            let event = format!(
                r#"{{"eventName":"s3:ObjectCreated:Put","s3":{{"bucket":{{"name":"uploads"}},"object":{{"key":"run-7%2Fimg-{i:05}.jpg","sequencer":"1"}}}}}}"#
            );
            std::fs::write(sub.join(format!("{i}.event")), event).unwrap();
        }
        std::fs::write(sub.join("odd.event"), "not an event").unwrap();
        let out = std::process::Command::new("sh").arg("-c").arg(wipe_queue_script(&dir.path().display().to_string())).output().unwrap();
        let out = String::from_utf8(out.stdout).unwrap();
        let wiped = parse_wipe_output(&out).unwrap_or_else(|| panic!("not a count: {out:?}"));
        assert_eq!(wiped.events, 4, "{out}");
        let mut keys = wiped.keys;
        keys.sort();
        assert_eq!(keys, ["run-7/img-00000.jpg", "run-7/img-00001.jpg", "run-7/img-00002.jpg"]);
        assert!(sub.is_dir());
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 0);
        assert!(parse_wipe_output("3\n").is_none(), "an answer without its count line is not read as one");
    }

    use super::*;

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([(MANAGED_BY.to_string(), "harness".to_string()), ("io.harness.run".to_string(), "smoke-1".to_string())])
    }

    #[test]
    fn every_manifest_fits_its_api_type() {
        let l = labels();
        let ns = namespace("h-ab12", &l);
        assert_eq!(ns.metadata.name.as_deref(), Some("h-ab12"));
        let svc = node_port_service(KAFKA_EXTERNAL, KAFKA, &[("external", 9094)], &l);
        let spec = svc.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.selector.unwrap()[APP_LABEL], KAFKA);
        assert_eq!(spec.ports.unwrap().len(), 1);
        let svc = cluster_ip_service(KAFKA, KAFKA, &[("internal", 9092)], &l);
        assert_eq!(svc.spec.unwrap().type_.as_deref(), Some("ClusterIP"));
        let k =
            kafka_stateful_set(&KafkaPod { image: "localhost/k:1", command: "exec java".into(), namespace: "h-ab12", grace_secs: 15 }, &l);
        let pod = k.spec.unwrap().template;
        assert_eq!(pod.metadata.unwrap().labels.unwrap()[APP_LABEL], KAFKA);
        let pod = pod.spec.unwrap();
        assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("Never"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        let data = pod.volumes.unwrap().into_iter().find(|v| v.name == "data").unwrap();
        assert_eq!(data.host_path.unwrap().path, format!("{VOLUME_ROOT}/h-ab12/kafka"));
        let m = minio_stateful_set(
            &MinioPod {
                image: "localhost/m:1",
                signals_image: "localhost/k:1",
                args: vec!["minio".into()],
                namespace: "h-ab12",
                env_secret: "minio-env",
                grace_secs: 5,
            },
            &l,
        );
        assert!(m.spec.unwrap().template.spec.unwrap().containers[0].env.is_none(), "credentials come from the Secret only");
        let d = processor_deployment(
            &ProcessorPods {
                image: "localhost/p:1",
                signals_image: "localhost/k:1",
                command: vec!["harness".into()],
                pull_policy: "Never",
                env_secret: "processor-env",
                replicas: 1,
                grace_secs: 10,
            },
            &l,
        );
        assert_eq!(d.spec.unwrap().replicas, Some(1));
        let s = env_secret("x", &[("A".into(), "b".into())], &l);
        assert_eq!(s.string_data.unwrap()["A"], "b");
        let c = cleanup_pod("localhost/k:1", "h-ab12", &l);
        assert_eq!(c.spec.unwrap().containers[0].command.as_ref().unwrap()[2], "/volumes/h-ab12");
        let f = file_secret(KAFKA, &[("server.properties", "a=b".into())], &l);
        assert_eq!(f.string_data.unwrap()["server.properties"], "a=b");
    }

    /// What a node port exposes of Kafka: only the listener that requires the
    /// run's SASL password. The PLAINTEXT listener the pods use is behind a
    /// ClusterIP Service, and the broker's config is in a Secret.
    #[test]
    fn kafkas_node_port_reaches_only_its_sasl_listener() {
        let l = labels();
        let (inside, outside) = kafka_services(&l);
        let inside = inside.spec.unwrap();
        assert_eq!(inside.type_.as_deref(), Some("ClusterIP"));
        assert!(inside.ports.as_ref().unwrap().iter().all(|p| p.node_port.is_none()));
        let inside_ports: Vec<i32> = inside.ports.unwrap().iter().map(|p| p.port).collect();
        assert_eq!(inside_ports, [i32::from(KAFKA_INTERNAL_PORT)]);
        let outside = outside.spec.unwrap();
        assert_eq!(outside.type_.as_deref(), Some("NodePort"));
        let outside_ports: Vec<i32> = outside.ports.unwrap().iter().map(|p| p.port).collect();
        assert_eq!(outside_ports, [i32::from(KAFKA_EXTERNAL_PORT)], "the node port leads to the external listener only");
        let sasl = crate::services::kafka::KafkaSasl::plain(KAFKA_EXTERNAL_USER, "run-secret-1234".into());
        let props = crate::services::kafka::container_server_properties_advertising(
            "10.0.0.7:9092",
            "10.1.0.1:31000",
            Some(&sasl),
            std::path::Path::new(KAFKA_DATA),
        );
        assert!(
            props.lines().any(|l| l == "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"),
            "{props}"
        );
        assert!(props.lines().any(|l| l == "listener.name.external.sasl.enabled.mechanisms=PLAIN"), "{props}");
        assert!(props.contains("username=\"harness\" password=\"run-secret-1234\" user_harness=\"run-secret-1234\";"), "{props}");
        assert!(props.lines().any(|l| l == "advertised.listeners=INTERNAL://10.0.0.7:9092,EXTERNAL://10.1.0.1:31000"), "{props}");
        let k = kafka_stateful_set(&KafkaPod { image: "i", command: "x".into(), namespace: "n", grace_secs: 1 }, &l);
        let volumes = k.spec.unwrap().template.spec.unwrap().volumes.unwrap();
        let config = volumes.iter().find(|v| v.name == "config").unwrap();
        assert!(config.config_map.is_none(), "the password is in no ConfigMap");
        assert_eq!(config.secret.as_ref().unwrap().secret_name.as_deref(), Some(KAFKA));
    }

    #[test]
    fn every_pod_has_a_signals_container_sharing_its_processes() {
        let k = kafka_stateful_set(&KafkaPod { image: "localhost/k:1", command: "x".into(), namespace: "n", grace_secs: 1 }, &labels());
        let pod = k.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.share_process_namespace, Some(true));
        assert_eq!(pod.containers[1].name, SIGNALS);
    }

    /// The script really signals the process it names and not itself: run by `sh`
    /// against a `sleep` whose command line holds the needle.
    #[test]
    fn the_signal_script_kills_the_named_process_and_not_itself() {
        let mut victim = std::process::Command::new("bash").args(["-c", "exec -a harness-processor-test sleep 30"]).spawn().unwrap();
        // Until bash has exec'd the renamed sleep (polled, not a guessed pause).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let cmdline = format!("/proc/{}/cmdline", victim.id());
        while !std::fs::read_to_string(&cmdline).unwrap_or_default().contains("harness-processor-test") {
            assert!(std::time::Instant::now() < deadline, "bash never exec'd the victim");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let out = std::process::Command::new("sh").args(["-c", &signal_script("KILL", "harness-processor-test")]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), victim.id().to_string());
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(victim.wait().unwrap().signal(), Some(9));
    }

    #[test]
    fn label_values_follow_the_api_rule() {
        assert_eq!(label_value("smoke-20260101-000001-abcd"), "smoke-20260101-000001-abcd");
        assert_eq!(label_value("a b/c:"), "a-b-c");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
        assert_eq!(label_value("-x-"), "x");
    }
}
