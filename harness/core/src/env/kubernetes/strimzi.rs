//! `environment.kafka.operator: strimzi`: Kafka as the seeds run it, a Strimzi
//! `Kafka` (KRaft, its nodes from one `KafkaNodePool` with both roles) and the
//! topics as `KafkaTopic`s, in the run's namespace, for the cluster operator
//! installed on the cluster beforehand to run.
//!
//! In order, each step failing with what to do: Strimzi's CRDs are installed; the
//! resources pass a server-side dry run with strict field validation (a field
//! the installed CRDs do not know is an error, not silently pruned); a cluster
//! operator runs somewhere on the cluster; the resources are created and their
//! `Ready` conditions awaited; the bootstrap addresses are read from the Kafka's
//! status listeners (`plain` for the pods, the node-port `external` one for the
//! harness).
//!
//! The node-port listener is open to anyone who reaches a node, so it requires
//! SCRAM-SHA-512 of the run's `KafkaUser` ([`USER`]), whose password is the run's
//! own (a Secret the KafkaUser names); the `plain` listener the pods use has no
//! node port. (Not run here: no Strimzi operator can run on this machine.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, ValidationDirective};
use kube::Client;
use serde_json::{json, Value};

use super::cluster::KubeErr;
use crate::doctor::discover::{strimzi_listener, Endpoint};
use crate::env::EnvError;

pub const GROUP: &str = "kafka.strimzi.io";
pub const VERSION: &str = "v1beta2";
/// The Kafka's name; its pods are `harness-dual-role-<id>`.
pub const CLUSTER: &str = "harness";
pub const POOL: &str = "dual-role";
/// The KafkaUser the harness authenticates as at the node-port listener.
pub const USER: &str = "harness";
/// The Secret with its password (the User Operator reads it from there).
pub const USER_SECRET: &str = "harness-kafka-user";
const CLUSTER_LABEL: &str = "strimzi.io/cluster";
/// The cluster operator's Deployment carries this label (Strimzi's install files).
const OPERATOR_LABEL: &str = "strimzi.io/kind=cluster-operator";
const FIELD_MANAGER: &str = "harness";
const POLL: Duration = Duration::from_millis(500);

/// What the run needs of the Kafka Strimzi runs.
#[derive(Debug)]
pub struct StrimziKafka {
    pub bootstrap: Endpoint,
    /// `status.kafkaVersion`.
    pub version: String,
}

pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The resources of a run: the Kafka, its node pool, one KafkaTopic per
/// `(topic, partitions)`. One broker (replication factor 1, as the harness's own
/// Kafka); ephemeral storage, since the run's namespace lives as long as the run.
pub fn resources(topics: &[(&str, i32)], labels: &BTreeMap<String, String>) -> Vec<Value> {
    // The KafkaUser's password comes from USER_SECRET, created before these.
    let mut pool_labels = labels.clone();
    pool_labels.insert(CLUSTER_LABEL.into(), CLUSTER.into());
    let mut out = vec![
        json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "Kafka",
            "metadata": {
                "name": CLUSTER,
                "labels": labels,
                "annotations": { "strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled" }
            },
            "spec": {
                "kafka": {
                    "listeners": [
                        { "name": "plain", "port": 9092, "type": "internal", "tls": false },
                        {
                            "name": "external", "port": 9094, "type": "nodeport", "tls": false,
                            "authentication": { "type": "scram-sha-512" }
                        }
                    ],
                    "config": {
                        "offsets.topic.replication.factor": 1,
                        "transaction.state.log.replication.factor": 1,
                        "transaction.state.log.min.isr": 1,
                        "default.replication.factor": 1,
                        "min.insync.replicas": 1
                    }
                },
                "entityOperator": { "topicOperator": {}, "userOperator": {} }
            }
        }),
        json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "KafkaNodePool",
            "metadata": { "name": POOL, "labels": pool_labels },
            "spec": {
                "replicas": 1,
                "roles": ["controller", "broker"],
                "storage": { "type": "ephemeral" }
            }
        }),
    ];
    out.push(json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "KafkaUser",
        "metadata": { "name": USER, "labels": pool_labels },
        "spec": {
            "authentication": {
                "type": "scram-sha-512",
                "password": { "valueFrom": { "secretKeyRef": { "name": USER_SECRET, "key": "password" } } }
            }
        }
    }));
    for (topic, partitions) in topics {
        out.push(json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "KafkaTopic",
            "metadata": { "name": object_name(topic), "labels": pool_labels },
            "spec": { "topicName": topic, "partitions": partitions, "replicas": 1 }
        }));
    }
    out
}

/// A topic's name as a Kubernetes object name (lower case, `-` for what DNS
/// names cannot hold); the real name is `spec.topicName`.
fn object_name(topic: &str) -> String {
    let name: String = topic.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    name.trim_matches('-').to_string()
}

fn plural(kind: &str) -> &'static str {
    match kind {
        "Kafka" => "kafkas",
        "KafkaNodePool" => "kafkanodepools",
        "KafkaUser" => "kafkausers",
        _ => "kafkatopics",
    }
}

fn api(client: &Client, ns: &str, v: &Value) -> (Api<DynamicObject>, String) {
    let kind = v["kind"].as_str().unwrap_or_default();
    let name = v["metadata"]["name"].as_str().unwrap_or_default().to_string();
    (Api::namespaced_with(client.clone(), ns, &resource(kind, plural(kind))), format!("{kind} {name}"))
}

/// Brings the Kafka up (see the module's steps) and reads where it is.
pub async fn start(
    client: &Client,
    ns: &str,
    topics: &[(&str, i32)],
    labels: &BTreeMap<String, String>,
    password: &str,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<StrimziKafka, EnvError> {
    crds_installed(client).await?;
    let objects = resources(topics, labels);
    dry_run(client, ns, &objects).await?;
    let secret = super::manifests::env_secret(USER_SECRET, &[("password".to_string(), password.to_string())], labels);
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ns)
        .create(&Default::default(), &secret)
        .await
        .map_err(KubeErr::ctx(format!("creating the Secret {USER_SECRET}")))?;
    progress("Strimzi's resources passed the API server's dry run (strict field validation)");
    let operator = operator_running(client).await?;
    progress(&format!(
        "creating Kafka {CLUSTER} (KRaft, node pool {POOL}) and its KafkaTopics for Strimzi's cluster operator ({operator})…"
    ));
    apply(client, ns, &objects, false).await?;
    let kafka = wait_ready(client, ns, &objects, timeout, progress).await?;
    let bootstrap = strimzi_listener(&kafka).ok_or_else(|| {
        EnvError::Engine(format!("Kafka {CLUSTER} is Ready, but its status has no plain internal listener to bootstrap from"))
    })?;
    let version = kafka.data.pointer("/status/kafkaVersion").and_then(Value::as_str).unwrap_or("?").to_string();
    Ok(StrimziKafka { bootstrap, version })
}

async fn crds_installed(client: &Client) -> Result<(), EnvError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut missing = Vec::new();
    for plural in ["kafkas", "kafkanodepools", "kafkatopics", "kafkausers"] {
        let name = format!("{plural}.{GROUP}");
        if crds.get_opt(&name).await.map_err(KubeErr::ctx("reading Strimzi's CRDs"))?.is_none() {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(EnvError::Engine(format!(
        "`environment.kafka.operator: strimzi` needs Strimzi on the cluster, and it has no {}: install its cluster \
         operator first (e.g. `kubectl create namespace strimzi && kubectl create -f \
         'https://strimzi.io/install/latest?namespace=strimzi' -n strimzi`, set to watch all namespaces), or leave \
         `operator` out to run the harness's own Kafka",
        missing.join(", ")
    )))
}

/// Server-side apply, or its dry run, with strict field validation: a field the
/// installed CRDs do not define is refused, not pruned.
async fn apply(client: &Client, ns: &str, objects: &[Value], dry_run: bool) -> Result<(), EnvError> {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    params.field_validation = Some(ValidationDirective::Strict);
    for v in objects {
        let (api, what) = api(client, ns, v);
        let name = v["metadata"]["name"].as_str().unwrap_or_default();
        api.patch(name, &params, &Patch::Apply(v)).await.map_err(|e| {
            EnvError::Engine(format!(
                "the API server refuses {what}{}: {}",
                if dry_run { " (dry run)" } else { "" },
                super::cluster::describe(&e)
            ))
        })?;
    }
    Ok(())
}

async fn dry_run(client: &Client, ns: &str, objects: &[Value]) -> Result<(), EnvError> {
    apply(client, ns, objects, true).await
}

/// The namespace and name of a running cluster operator.
async fn operator_running(client: &Client) -> Result<String, EnvError> {
    let deployments: Api<Deployment> = Api::all(client.clone());
    let list = deployments
        .list(&ListParams::default().labels(OPERATOR_LABEL))
        .await
        .map_err(KubeErr::ctx("looking for Strimzi's cluster operator"))?;
    let ready = list.items.iter().find(|d| d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0) > 0);
    match (ready, list.items.first()) {
        (Some(d), _) => Ok(format!(
            "Deployment {} in namespace {}",
            d.metadata.name.clone().unwrap_or_default(),
            d.metadata.namespace.clone().unwrap_or_default()
        )),
        (None, Some(d)) => Err(EnvError::Engine(format!(
            "Strimzi's cluster operator (Deployment {} in namespace {}) has no ready replica: `kubectl -n {1} describe \
             deployment {0}` and its pod's log say why (often: its image cannot be pulled)",
            d.metadata.name.clone().unwrap_or_default(),
            d.metadata.namespace.clone().unwrap_or_default()
        ))),
        (None, None) => Err(EnvError::Engine(format!(
            "Strimzi's CRDs are installed but no cluster operator runs (no Deployment labelled {OPERATOR_LABEL}): nothing \
             would act on the Kafka; install the operator (https://strimzi.io/install/latest) or leave `operator` out"
        ))),
    }
}

/// Waits for every resource's `Ready` condition; returns the Kafka as last read.
async fn wait_ready(
    client: &Client,
    ns: &str,
    objects: &[Value],
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<DynamicObject, EnvError> {
    let started = Instant::now();
    let mut last_said = Instant::now();
    loop {
        let mut waiting = Vec::new();
        let mut kafka = None;
        for v in objects {
            let (api, what) = api(client, ns, v);
            let name = v["metadata"]["name"].as_str().unwrap_or_default();
            let o = api.get_opt(name).await.map_err(KubeErr::ctx(format!("reading {what}")))?;
            match o.as_ref().map(readiness) {
                Some(Readiness::Ready) => {}
                Some(Readiness::Waiting(why)) => waiting.push(format!("{what}: {why}")),
                None => waiting.push(format!("{what}: gone")),
            }
            if v["kind"] == "Kafka" {
                kafka = o;
            }
        }
        if waiting.is_empty() {
            if let Some(k) = kafka {
                return Ok(k);
            }
        }
        if started.elapsed() > timeout {
            return Err(EnvError::Engine(format!(
                "Strimzi's resources were not Ready within {}s: {}; the cluster operator's log says why",
                timeout.as_secs(),
                waiting.join("; ")
            )));
        }
        if last_said.elapsed() > Duration::from_secs(10) {
            progress(&format!("waiting for Strimzi: {}", waiting.join("; ")));
            last_said = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Why not yet: the Ready condition's reason and message, or that there is none.
    Waiting(String),
}

/// A Strimzi resource's `Ready` condition.
pub fn readiness(o: &DynamicObject) -> Readiness {
    let conditions = o.data.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    match conditions.iter().find(|c| c["type"] == "Ready") {
        Some(c) if c["status"] == "True" => Readiness::Ready,
        Some(c) => Readiness::Waiting(format!(
            "not Ready ({}{})",
            c["reason"].as_str().unwrap_or("no reason"),
            c["message"].as_str().map(|m| format!(": {m}")).unwrap_or_default()
        )),
        None => Readiness::Waiting("no Ready condition yet (has the operator seen it?)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kafka_is_kraft_with_a_dual_role_pool_and_the_topics_are_labelled_for_it() {
        let labels = BTreeMap::from([("io.harness.run".to_string(), "r1".to_string())]);
        let mut r = resources(&[("minio-events", 3), ("minio_events.outputs", 1)], &labels);
        assert_eq!(r.len(), 5);
        let kafka = &r[0];
        assert_eq!(kafka["metadata"]["annotations"]["strimzi.io/kraft"], "enabled");
        assert_eq!(kafka["metadata"]["annotations"]["strimzi.io/node-pools"], "enabled");
        let listeners = kafka["spec"]["kafka"]["listeners"].as_array().unwrap();
        assert!(listeners.iter().all(|l| l["tls"] == false && l["name"].is_string() && l["port"].is_u64()));
        // What a node port reaches wants the run's user; the pods' listener has no node port.
        for l in listeners {
            let exposed = l["type"] != "internal" && l["type"] != "cluster-ip";
            assert_eq!(exposed, l["authentication"]["type"] == "scram-sha-512", "{l}");
        }
        assert_eq!(kafka["spec"]["entityOperator"]["userOperator"], json!({}), "the User Operator makes the KafkaUser");
        assert_eq!(r[1]["kind"], "KafkaNodePool");
        assert_eq!(r[1]["metadata"]["labels"][CLUSTER_LABEL], CLUSTER);
        assert_eq!(r[1]["spec"]["roles"], json!(["controller", "broker"]));
        let user = r.remove(2);
        assert_eq!((user["kind"].as_str(), user["metadata"]["name"].as_str()), (Some("KafkaUser"), Some(USER)));
        assert_eq!(user["metadata"]["labels"][CLUSTER_LABEL], CLUSTER);
        assert_eq!(user["spec"]["authentication"]["type"], "scram-sha-512");
        assert_eq!(user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]["name"], USER_SECRET);
        assert_eq!(r[2]["metadata"]["name"], "minio-events");
        assert_eq!(r[2]["spec"]["partitions"], 3);
        assert_eq!(r[3]["metadata"]["name"], "minio-events-outputs", "a valid object name");
        assert_eq!(r[3]["spec"]["topicName"], "minio_events.outputs", "the topic keeps its name");
        assert!(r[2..]
            .iter()
            .all(|t| t["metadata"]["labels"][CLUSTER_LABEL] == CLUSTER && t["metadata"]["labels"]["io.harness.run"] == "r1"));
    }

    #[test]
    fn readiness_reads_the_ready_condition() {
        let o = |status: Value| -> DynamicObject {
            serde_json::from_value(
                json!({ "apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "metadata": { "name": "k" }, "status": status }),
            )
            .unwrap()
        };
        assert_eq!(readiness(&o(json!({ "conditions": [{ "type": "Ready", "status": "True" }] }))), Readiness::Ready);
        let Readiness::Waiting(why) = readiness(&o(
            json!({ "conditions": [{ "type": "Ready", "status": "False", "reason": "InvalidResourceException", "message": "bad" }] }),
        )) else {
            panic!()
        };
        assert_eq!(why, "not Ready (InvalidResourceException: bad)");
        assert!(matches!(readiness(&o(json!({}))), Readiness::Waiting(w) if w.contains("no Ready condition")));
    }
}
