//! With `--namespace`: the Kubernetes objects the pipeline runs as, read through
//! the API server before the links are walked. What a student sees as "it just
//! hangs" is often here: a pod the scheduler places nowhere, a volume claim no
//! provisioner binds, a container that crash-loops or whose image cannot be
//! pulled, a `KafkaTopic` Strimzi's Topic Operator ignores (no
//! `strimzi.io/cluster` label, a label naming another cluster, or a resource of
//! another operator's API group).
//!
//! Reads only; every request is bounded by the probe timeout.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::Client;

use crate::env::kubernetes::ClusterTarget;

use super::{Finding, Link, Notes};

/// Strimzi's API group and the label its Topic Operator selects topics by.
use crate::env::kubernetes::strimzi::{GROUP as STRIMZI_GROUP, VERSION as STRIMZI_VERSION};
const CLUSTER_LABEL: &str = "strimzi.io/cluster";
/// Restarts from which a container that is running again still counts as crash-looping.
const RESTARTS_TO_FLAG: i32 = 3;

/// Where the pipeline runs on Kubernetes.
#[derive(Clone, Debug)]
pub struct Scope {
    /// A context of the kubeconfig (`KUBECONFIG`, else `~/.kube/config`, else the
    /// harness's own cluster's); `None`: its current one.
    pub context: Option<String>,
    pub namespace: String,
}

/// The Kubernetes checks: pods and volume claims, then Strimzi topic resources.
/// The client, when the cluster answers.
pub(super) async fn check(scope: &Scope, topic: &str, timeout: Duration, notes: &mut Notes) -> Option<Client> {
    let ns = &scope.namespace;
    let check = format!("pods and volume claims of namespace {ns}");
    let client = match client(scope, timeout).await {
        Ok(c) => c,
        Err(e) => {
            let cause = if e.starts_with(NO_CONTEXT) {
                e.clone()
            } else {
                "the doctor cannot read the cluster through the kubeconfig it was given".to_string()
            };
            notes.push(
                Finding::error(Link::Workloads, check, e)
                    .because(cause)
                    .fix("check `kubectl --context CONTEXT get pods -n NAMESPACE` works from here (`kubectl config get-contexts` lists the contexts; `kind export kubeconfig --name NAME` adds a kind cluster's), or set KUBECONFIG"),
            );
            return None;
        }
    };
    match workloads(&client, ns, timeout).await {
        Ok(found) if found.is_empty() => {}
        Ok(found) => found.into_iter().for_each(|f| notes.push(f)),
        Err(e) => notes.push(Finding::error(Link::Workloads, check, e).because("the API server did not list the namespace's pods")),
    }
    topics(&client, ns, topic, timeout, notes).await;
    super::live_lint::check(&client, ns, timeout, notes).await;
    Some(client)
}

const NO_CONTEXT: &str = "the kubeconfig has no context";

pub(super) async fn client(scope: &Scope, timeout: Duration) -> Result<Client, String> {
    // A context the kubeconfig lacks is said as such, not as a connection error.
    if let (Some(wanted), Ok(config)) = (&scope.context, kube::config::Kubeconfig::read()) {
        if !config.contexts.iter().any(|c| &c.name == wanted) {
            let names: Vec<&str> = config.contexts.iter().take(20).map(|c| c.name.as_str()).collect();
            return Err(format!("{NO_CONTEXT} {wanted:?} (it has: {})", if names.is_empty() { "none".into() } else { names.join(", ") }));
        }
    }
    let target = ClusterTarget::resolve(scope.context.as_deref()).map_err(|e| e.to_string())?;
    let client = target.client().await.map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(format!("the API server does not answer: {}", describe(&e))),
        Err(_) => Err(format!("the API server did not answer within {timeout:?}")),
    }
}

fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} (HTTP {})", s.message, s.code),
        other => other.to_string(),
    }
}

pub(super) async fn bounded<T>(
    timeout: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {}", describe(&e))),
        Err(_) => Err(format!("{what}: no answer within {timeout:?}")),
    }
}

/// One finding per pod or claim that is stuck, or one clean bill.
async fn workloads(client: &Client, ns: &str, timeout: Duration) -> Result<Vec<Finding>, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pods = bounded(timeout, "listing pods", pods.list(&ListParams::default())).await?.items;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let claims = bounded(timeout, "listing volume claims", claims.list(&ListParams::default())).await?.items;
    let mut out: Vec<Finding> = pods.iter().flat_map(|p| pod_findings(p, ns)).collect();
    out.extend(claims.iter().filter_map(|c| claim_finding(c, ns)));
    if out.is_empty() {
        let check = format!("pods and volume claims of namespace {ns}");
        let exists = bounded(timeout, "reading the namespace", Api::<Namespace>::all(client.clone()).get_opt(ns)).await;
        out.push(if matches!(exists, Ok(None)) {
            Finding::error(Link::Workloads, check, format!("namespace {ns} does not exist"))
                .because("the namespace is misspelt, or the pipeline runs on another cluster (kube context)")
                .fix("find the pipeline's namespace with `kubectl get pods -A` (and the context with `kubectl config get-contexts`)")
        } else if pods.is_empty() {
            Finding::warning(Link::Workloads, check, format!("namespace {ns} has no pods"))
                .because("nothing of the pipeline runs in this namespace, or the namespace is misspelt")
                .fix("find the pipeline's namespace with `kubectl get pods -A`")
        } else {
            let names: Vec<String> = pods.iter().filter_map(|p| p.metadata.name.clone()).collect();
            Finding::ok(
                Link::Workloads,
                check,
                format!("{} pod(s) scheduled and running (or done), none crash-looping: {}", pods.len(), names.join(", ")),
            )
        });
    }
    Ok(out)
}

/// What is wrong with one pod: unschedulable, or a container that cannot start or keeps dying.
pub(super) fn pod_findings(pod: &Pod, ns: &str) -> Vec<Finding> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let Some(status) = &pod.status else { return Vec::new() };
    let mut out = Vec::new();
    let unscheduled = status.conditions.iter().flatten().find(|c| c.type_ == "PodScheduled" && c.status == "False");
    if let Some(c) = unscheduled {
        let reason = c.reason.clone().unwrap_or_else(|| "not scheduled".into());
        let message = c.message.clone().unwrap_or_default();
        out.push(
            Finding::error(Link::Workloads, format!("pod {name} is scheduled"), format!("{reason}: {message}"))
                .because(
                    "the scheduler places it on no node: its resources.requests exceed what any node has free, a \
                     nodeSelector, affinity or taint excludes every node, or a PersistentVolumeClaim it mounts is not bound",
                )
                .fix(format!(
                    "`kubectl describe pod {name} -n {ns}` names what is missing; lower resources.requests (or free or add \
                     nodes), or bind its volume claim"
                )),
        );
    }
    for cs in status.container_statuses.iter().flatten() {
        let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
        let reason = waiting.and_then(|w| w.reason.clone()).unwrap_or_default();
        let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        let last_exit = last.map(|t| {
            let why = t.reason.clone().unwrap_or_default();
            let message = t.message.clone().filter(|m| !m.is_empty()).map(|m| format!(": {}", m.trim())).unwrap_or_default();
            format!("last exit code {} ({why}){message}", t.exit_code)
        });
        let check = format!("container {} of pod {name} runs", cs.name);
        match reason.as_str() {
            "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull" => out.push(
                Finding::error(Link::Workloads, check, format!("{reason} for image {}: {}", cs.image, waiting_message(waiting)))
                    .because("the node cannot get the image: a typo in image:, a private registry without imagePullSecrets, or a local image never loaded into the cluster")
                    .fix(format!("fix image: in the manifest, or load it (`kind load docker-image {}`) and set imagePullPolicy: IfNotPresent", cs.image)),
            ),
            "RunContainerError" | "StartError" => out.push(
                Finding::error(Link::Workloads, check, format!("{reason}, restarted {} time(s): {}", cs.restart_count, waiting_message(waiting)))
                    .because("the container cannot be started: its command is not in the image (a wrong command:, args: or entrypoint), or a mount it needs fails")
                    .fix(format!("fix command:/args: of container {} (what does the image hold?); `kubectl describe pod {name} -n {ns}`", cs.name)),
            ),
            "CreateContainerConfigError" | "CreateContainerError" => out.push(
                Finding::error(Link::Workloads, check, format!("{reason}: {}", waiting_message(waiting)))
                    .because("the container cannot be created: a Secret, ConfigMap or key it names does not exist, or its command is wrong")
                    .fix(format!("`kubectl describe pod {name} -n {ns}`; create what it names, or fix the reference")),
            ),
            _ if reason == "CrashLoopBackOff" || cs.restart_count >= RESTARTS_TO_FLAG => out.push(
                Finding::error(
                    Link::Workloads,
                    check,
                    format!(
                        "{}restarted {} time(s); {}",
                        if reason.is_empty() { String::new() } else { format!("{reason}, ") },
                        cs.restart_count,
                        last_exit.unwrap_or_else(|| "no exit recorded".into())
                    ),
                )
                .because("it exits soon after it starts, and Kubernetes restarts it with a growing back-off: for a processor, often a missing environment variable, a wrong command, or a crash on one event")
                .fix(format!("read why: `kubectl logs {name} -c {} -n {ns} --previous`", cs.name)),
            ),
            _ => {}
        }
    }
    let phase = status.phase.clone().unwrap_or_default();
    if out.is_empty() && (phase == "Pending" || phase == "Failed" || phase == "Unknown") {
        let waiting: Vec<String> = status
            .container_statuses
            .iter()
            .flatten()
            .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone().map(|r| format!("{}: {r}", c.name)))
            .collect();
        out.push(
            Finding::warning(
                Link::Workloads,
                format!("pod {name} runs"),
                format!("{phase}{}", if waiting.is_empty() { String::new() } else { format!(" ({})", waiting.join(", ")) }),
            )
            .because("it is not running (yet): if it stays so, its events say why")
            .fix(format!("`kubectl describe pod {name} -n {ns}`")),
        );
    }
    out
}

fn waiting_message(w: Option<&k8s_openapi::api::core::v1::ContainerStateWaiting>) -> String {
    w.and_then(|w| w.message.clone()).unwrap_or_default()
}

pub(super) fn claim_finding(claim: &PersistentVolumeClaim, ns: &str) -> Option<Finding> {
    let phase = claim.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    if phase != "Pending" {
        return None;
    }
    let name = claim.metadata.name.clone().unwrap_or_default();
    let class = claim.spec.as_ref().and_then(|s| s.storage_class_name.clone());
    Some(
        Finding::error(
            Link::Workloads,
            format!("volume claim {name} is bound"),
            format!("Pending, storageClassName {}", class.as_deref().map_or_else(|| "unset (the cluster's default)".to_string(), |c| format!("{c:?}"))),
        )
        .because("no volume binds it: the StorageClass does not exist or has no provisioner, or the cluster has no default StorageClass; the pod that mounts it never schedules")
        .fix(format!(
            "`kubectl get storageclass`; set storageClassName to one that exists (kind has \"standard\"), or install a provisioner; `kubectl describe pvc {name} -n {ns}`"
        )),
    )
}

pub(super) use crate::env::kubernetes::strimzi::resource as strimzi;

/// Strimzi `KafkaTopic`s the Topic Operator will not act on, and `KafkaTopic`s of
/// other API groups in a namespace where Strimzi runs Kafka.
async fn topics(client: &Client, ns: &str, topic: &str, timeout: Duration, notes: &mut Notes) {
    let check = format!("KafkaTopic resources of namespace {ns}");
    let kafkas: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &strimzi("Kafka", "kafkas"));
    let kafkas = match bounded(timeout, "listing Strimzi Kafka resources", kafkas.list(&ListParams::default())).await {
        Ok(l) => l.items,
        // No Strimzi CRDs on this cluster: nothing of Strimzi to check.
        Err(e) if e.contains("HTTP 404") => {
            notes.push(Finding::skipped(Link::TopicResource, check, format!("no Strimzi resources on this cluster ({e})")));
            return;
        }
        Err(e) => {
            notes.push(Finding::skipped(Link::TopicResource, check, e));
            return;
        }
    };
    let clusters: BTreeSet<String> = kafkas.iter().filter_map(|k| k.metadata.name.clone()).collect();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &strimzi("KafkaTopic", "kafkatopics"));
    let strimzi_topics = match bounded(timeout, "listing KafkaTopic resources", api.list(&ListParams::default())).await {
        Ok(l) => l.items,
        Err(e) => {
            notes.push(Finding::skipped(Link::TopicResource, check, e));
            return;
        }
    };
    let others = foreign_topics(client, ns, timeout).await;
    let before = notes.findings.len();
    for t in &strimzi_topics {
        if let Some(f) = strimzi_topic_finding(t, &clusters, ns) {
            notes.push(f);
        }
    }
    if !clusters.is_empty() {
        for (api_version, name) in &others {
            notes.push(
                Finding::error(Link::TopicResource, format!("KafkaTopic {name} is read by an operator"), format!("apiVersion {api_version}"))
                    .because(format!(
                        "Kafka runs under Strimzi here ({}), and Strimzi's Topic Operator reads only {STRIMZI_GROUP} KafkaTopics: \
                         this one, written for another operator, is ignored and its topic never created (or auto-created with the broker's defaults)",
                        clusters.iter().cloned().collect::<Vec<_>>().join(", ")
                    ))
                    .fix(format!(
                        "apiVersion: {STRIMZI_GROUP}/{STRIMZI_VERSION}, kind: KafkaTopic, metadata.labels {CLUSTER_LABEL}: {}, spec: {{partitions, replicas}}",
                        clusters.iter().next().cloned().unwrap_or_default()
                    )),
            );
        }
    }
    let names_topic = |t: &DynamicObject| {
        let spec_name = t.data.pointer("/spec/topicName").and_then(|v| v.as_str());
        spec_name.or(t.metadata.name.as_deref()) == Some(topic)
    };
    if notes.findings.len() == before {
        if !clusters.is_empty() && !strimzi_topics.iter().any(names_topic) {
            notes.push(
                Finding::warning(Link::TopicResource, check, format!("no KafkaTopic for topic {topic}"))
                    .because(
                        "the topic exists only if a client's request auto-created it, with the broker's default partitions and replicas",
                    )
                    .fix(format!("a KafkaTopic named {topic} labelled {CLUSTER_LABEL}: <your Kafka's name>")),
            );
        } else {
            notes.push(Finding::ok(
                Link::TopicResource,
                check,
                format!("{} Strimzi KafkaTopic(s), each labelled with an existing Kafka cluster", strimzi_topics.len()),
            ));
        }
    }
}

/// One Strimzi topic: labelled for a Kafka cluster of this namespace, and Ready
/// where the Topic Operator reported on it.
pub(super) fn strimzi_topic_finding(t: &DynamicObject, clusters: &BTreeSet<String>, ns: &str) -> Option<Finding> {
    let name = t.metadata.name.clone().unwrap_or_default();
    let check = format!("KafkaTopic {name} is managed by Strimzi");
    let label = t.metadata.labels.as_ref().and_then(|l| l.get(CLUSTER_LABEL)).cloned();
    let known = clusters.iter().cloned().collect::<Vec<_>>().join(", ");
    let first = clusters.iter().next().cloned().unwrap_or_else(|| "<your Kafka's name>".into());
    match label {
        None => {
            return Some(
                Finding::error(Link::TopicResource, check, format!("no {CLUSTER_LABEL} label"))
                    .because("Strimzi's Topic Operator manages only KafkaTopics labelled with its Kafka cluster's name: this one is ignored, and the topic is never created (or auto-created with the broker's defaults)")
                    .fix(format!("metadata.labels: {{{CLUSTER_LABEL}: {first}}}")),
            )
        }
        Some(c) if !clusters.contains(&c) => {
            return Some(
                Finding::error(Link::TopicResource, check, format!("{CLUSTER_LABEL}: {c}, but namespace {ns} has no Kafka named {c:?} (it has: {})", if known.is_empty() { "none".to_string() } else { known }))
                    .because("the label names the Kafka cluster whose Topic Operator should manage the topic; no such cluster watches it")
                    .fix(format!("metadata.labels: {{{CLUSTER_LABEL}: {first}}}")),
            )
        }
        Some(_) => {}
    }
    let conditions = t.data.pointer("/status/conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    let not_ready = conditions.iter().find(|c| c["type"] == "Ready" && c["status"] == "False");
    if let Some(c) = not_ready {
        return Some(
            Finding::error(
                Link::TopicResource,
                check,
                format!("Ready=False: {} {}", c["reason"].as_str().unwrap_or_default(), c["message"].as_str().unwrap_or_default())
                    .trim()
                    .to_string(),
            )
            .because("the Topic Operator tried and failed")
            .fix(format!("`kubectl describe kafkatopic {name} -n {ns}`")),
        );
    }
    None
}

/// `KafkaTopic` resources of other API groups in the namespace: (apiVersion, name).
async fn foreign_topics(client: &Client, ns: &str, timeout: Duration) -> Vec<(String, String)> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Listing CRDs needs a cluster-wide read a student's account may not have: then
    // there is nothing to say, not an error.
    let Ok(crds) = bounded(timeout, "listing CRDs", crds.list(&ListParams::default())).await else { return Vec::new() };
    let mut out = Vec::new();
    for crd in crds.items.iter().filter(|c| c.spec.names.kind == "KafkaTopic" && c.spec.group != STRIMZI_GROUP) {
        if let Some(version) = crd.spec.versions.iter().find(|v| v.served) {
            let resource = ApiResource {
                group: crd.spec.group.clone(),
                version: version.name.clone(),
                api_version: format!("{}/{}", crd.spec.group, version.name),
                kind: "KafkaTopic".into(),
                plural: crd.spec.names.plural.clone(),
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
            if let Ok(list) = bounded(timeout, "listing KafkaTopics", api.list(&ListParams::default())).await {
                out.extend(list.items.into_iter().filter_map(|o| o.metadata.name).map(|n| (resource.api_version.clone(), n)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_unschedulable_pod_and_a_crash_loop_are_named_with_the_command_to_read() {
        let p = pod(serde_json::json!({
            "metadata": { "name": "processor-1" },
            "status": {
                "phase": "Pending",
                "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": "0/1 nodes are available: 1 Insufficient cpu." }],
                "containerStatuses": [{
                    "name": "resize", "image": "student/resizer:1", "imageID": "", "ready": false, "restartCount": 4,
                    "state": { "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 40s" } },
                    "lastState": { "terminated": { "exitCode": 1, "reason": "Error" } }
                }]
            }
        }));
        let f = pod_findings(&p, "alice");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].evidence, "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu.");
        assert!(f[0].fix.as_deref().unwrap().contains("kubectl describe pod processor-1 -n alice"));
        assert_eq!(f[1].evidence, "CrashLoopBackOff, restarted 4 time(s); last exit code 1 (Error)");
        assert!(f[1].fix.as_deref().unwrap().contains("kubectl logs processor-1 -c resize -n alice --previous"));
        let healthy = pod(serde_json::json!({ "metadata": { "name": "ok" }, "status": { "phase": "Running",
            "conditions": [{ "type": "PodScheduled", "status": "True" }],
            "containerStatuses": [{ "name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 1,
                                    "state": { "running": {} } }] } }));
        assert!(pod_findings(&healthy, "alice").is_empty(), "one restart is not a loop");
        let wrong_command = pod(serde_json::json!({ "metadata": { "name": "p" }, "status": { "phase": "Running",
            "containerStatuses": [{ "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
                "state": { "waiting": { "reason": "RunContainerError", "message": "exec: \"/no-such\": stat /no-such: no such file or directory" } } }] } }));
        let f = pod_findings(&wrong_command, "alice");
        assert_eq!(f.len(), 1);
        assert!(f[0].evidence.starts_with("RunContainerError, restarted 1 time(s): exec: \"/no-such\""), "{}", f[0].evidence);
        let starting = pod(serde_json::json!({ "metadata": { "name": "p" }, "status": { "phase": "Pending",
            "containerStatuses": [{ "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": { "waiting": { "reason": "ContainerCreating" } } }] } }));
        assert_eq!(pod_findings(&starting, "alice")[0].evidence, "Pending (c: ContainerCreating)");
    }

    #[test]
    fn a_topic_without_the_label_or_for_another_cluster_is_ignored_by_strimzi() {
        let topic = |labels: serde_json::Value| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic",
                "metadata": { "name": "minio-events", "labels": labels }, "spec": { "partitions": 3 }
            }))
            .unwrap()
        };
        let clusters: BTreeSet<String> = ["my-cluster".to_string()].into();
        let none = strimzi_topic_finding(&topic(serde_json::json!({})), &clusters, "alice").unwrap();
        assert_eq!(none.evidence, "no strimzi.io/cluster label");
        assert_eq!(none.fix.as_deref(), Some("metadata.labels: {strimzi.io/cluster: my-cluster}"));
        let other = strimzi_topic_finding(&topic(serde_json::json!({ "strimzi.io/cluster": "kafka" })), &clusters, "alice").unwrap();
        assert!(other.evidence.contains("no Kafka named \"kafka\" (it has: my-cluster)"), "{}", other.evidence);
        assert!(strimzi_topic_finding(&topic(serde_json::json!({ "strimzi.io/cluster": "my-cluster" })), &clusters, "alice").is_none());
    }

    #[test]
    fn a_pending_claim_names_its_storage_class() {
        let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "data-kafka-0" }, "spec": { "storageClassName": "fast" }, "status": { "phase": "Pending" }
        }))
        .unwrap();
        let f = claim_finding(&claim, "alice").unwrap();
        assert_eq!(f.evidence, "Pending, storageClassName \"fast\"");
        let bound: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({ "status": { "phase": "Bound" } })).unwrap();
        assert!(claim_finding(&bound, "alice").is_none());
    }
}
