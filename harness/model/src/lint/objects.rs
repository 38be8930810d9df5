//! The Kubernetes objects of a manifest set, read the way the cluster would: pod
//! templates and their containers (environment resolved through the set's ConfigMaps
//! and Secrets, volumes and mounts), Services, and which container is Kafka, MinIO or
//! a processor.

use std::rc::Rc;

use super::yaml::{At, Node};

/// One object (`kind` + `metadata`) of a document, or of a `List`'s `items`.
pub(crate) struct Object<'a> {
    pub kind: &'a str,
    pub api_version: &'a str,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub at: At<'a>,
}

impl<'a> Object<'a> {
    /// The API group: `kafka.strimzi.io` of `kafka.strimzi.io/v1beta2`; empty for core.
    pub fn group(&self) -> &'a str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    pub fn label(&self, key: &str) -> Option<At<'a>> {
        self.at.dig("metadata.labels")?.get(key)
    }

    pub fn same_namespace(&self, ns: Option<&str>) -> bool {
        same_namespace(self.namespace, ns)
    }
}

/// An object without a namespace goes wherever it is applied (`kubectl -n`), so it
/// matches any.
pub(crate) fn same_namespace(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Kafka,
    Minio,
    /// Neither Kafka nor MinIO, with a Kafka client's `KAFKA_*` variables ([`CLIENT_VARS`]).
    Processor,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VolumeKind {
    /// A PersistentVolumeClaim, a StatefulSet's volumeClaimTemplate, a hostPath…
    Persistent,
    EmptyDir,
    /// configMap, secret, downwardAPI, projected: mounted read-only.
    ReadOnly(&'static str),
}

pub(crate) struct Mount {
    pub path: String,
    pub volume: String,
    /// `None` when the mount names a volume the pod does not define.
    pub kind: Option<VolumeKind>,
}

/// One environment variable as the container will see it.
pub(crate) struct EnvVar<'a> {
    pub name: String,
    /// `None` when the value comes from somewhere these manifests do not show.
    pub value: Option<String>,
    /// Where the value is written: the `value` key, or the key of the ConfigMap or
    /// Secret it comes from.
    pub at: At<'a>,
}

pub(crate) struct Pod<'a> {
    pub object: usize,
    pub labels: Vec<(&'a str, &'a str)>,
    /// `(volume, ConfigMap)` of the pod's configMap volumes.
    pub config_maps: Vec<(&'a str, &'a str)>,
}

pub(crate) struct Container<'a> {
    pub pod: usize,
    pub at: At<'a>,
    pub env: Vec<EnvVar<'a>>,
    /// False when an `envFrom`/`valueFrom` names a ConfigMap or Secret not in these
    /// manifests: a variable missing here may still be set.
    pub env_complete: bool,
    pub ports: Vec<(Option<&'a str>, u16)>,
    pub mounts: Vec<Mount>,
    pub role: Role,
    pub read_only_root: bool,
}

impl<'a> Container<'a> {
    pub fn var(&self, name: &str) -> Option<&EnvVar<'a>> {
        self.env.iter().find(|v| v.name == name)
    }

    pub fn name(&self) -> &'a str {
        self.at.text("name").unwrap_or("?")
    }
}

pub(crate) struct ServicePort<'a> {
    pub name: Option<&'a str>,
    pub port: u16,
    /// `targetPort` as written: a number or a container port's name.
    pub target: Option<&'a str>,
}

pub(crate) struct Service<'a> {
    pub object: usize,
    pub selector: Vec<(&'a str, &'a str)>,
    pub ports: Vec<ServicePort<'a>>,
    pub headless: bool,
}

pub(crate) struct World<'a> {
    pub objects: Vec<Object<'a>>,
    pub pods: Vec<Pod<'a>>,
    pub containers: Vec<Container<'a>>,
    pub services: Vec<Service<'a>>,
}

impl<'a> World<'a> {
    pub fn build(files: &'a [(String, Vec<Node>)]) -> World<'a> {
        let mut objects = Vec::new();
        for (file, docs) in files {
            for doc in docs {
                collect_objects(doc, file, &mut objects);
            }
        }
        let mut world = World { objects, pods: Vec::new(), containers: Vec::new(), services: Vec::new() };
        for i in 0..world.objects.len() {
            world.read_pod(i);
            world.read_service(i);
        }
        world
    }

    pub fn of_kind<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s Object<'a>> + 's {
        self.objects.iter().filter(move |o| o.kind == kind)
    }

    pub fn object_of(&self, c: &Container<'a>) -> &Object<'a> {
        &self.objects[self.pods[c.pod].object]
    }

    pub fn service_name(&self, s: &Service<'a>) -> &'a str {
        self.objects[s.object].name
    }

    /// The pod templates a Service sends traffic to.
    pub fn selected_pods(&self, s: &Service<'a>) -> Vec<usize> {
        if s.selector.is_empty() {
            return Vec::new();
        }
        let ns = self.objects[s.object].namespace;
        (0..self.pods.len())
            .filter(|&p| {
                let pod = &self.pods[p];
                self.objects[pod.object].same_namespace(ns) && s.selector.iter().all(|kv| pod.labels.contains(kv))
            })
            .collect()
    }

    fn read_pod(&mut self, object: usize) {
        let o = &self.objects[object];
        let template = match o.kind {
            "Pod" => Some(o.at.clone()),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" => o.at.dig("spec.template"),
            "CronJob" => o.at.dig("spec.jobTemplate.spec.template"),
            _ => None,
        };
        let Some(template) = template else { return };
        let Some(spec) = template.get("spec") else { return };
        let labels = template.dig("metadata.labels").map(|l| pairs(&l)).unwrap_or_default();
        let mut volumes: Vec<(&str, VolumeKind)> = spec
            .get("volumes")
            .map(|v| v.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| Some((v.text("name")?, volume_kind(v))))
            .collect();
        for claim in o.at.dig("spec.volumeClaimTemplates").map(|v| v.items()).unwrap_or_default() {
            volumes.extend(claim.dig("metadata.name").and_then(|n| n.str()).map(|n| (n, VolumeKind::Persistent)));
        }
        let config_maps = spec
            .get("volumes")
            .map(|v| v.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| Some((v.text("name")?, v.get("configMap")?.text("name")?)))
            .collect();
        let ns = o.namespace;
        let pod = self.pods.len();
        let containers: Vec<Container<'a>> = spec
            .get("containers")
            .map(|c| c.items())
            .unwrap_or_default()
            .into_iter()
            .map(|c| self.read_container(pod, c, ns, &volumes))
            .collect();
        self.pods.push(Pod { object, labels, config_maps });
        self.containers.extend(containers);
    }

    fn read_container(&self, pod: usize, at: At<'a>, ns: Option<&str>, volumes: &[(&str, VolumeKind)]) -> Container<'a> {
        let (env, env_complete) = self.env_of(&at, ns);
        let ports = at
            .get("ports")
            .map(|p| p.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| Some((p.text("name"), p.text("containerPort")?.parse().ok()?)))
            .collect();
        let mounts = at
            .get("volumeMounts")
            .map(|m| m.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| {
                let volume = m.text("name")?;
                let kind = volumes.iter().find(|(n, _)| *n == volume).map(|(_, k)| *k);
                Some(Mount { path: m.text("mountPath")?.to_string(), volume: volume.to_string(), kind })
            })
            .collect();
        let read_only_root = at.dig("securityContext.readOnlyRootFilesystem").and_then(|a| a.str()) == Some("true");
        let words: Vec<&str> = ["command", "args"]
            .iter()
            .filter_map(|k| at.get(k))
            .flat_map(|a| a.items())
            .filter_map(|a| a.str())
            .flat_map(|s| s.split_whitespace())
            .collect();
        let role = role(at.text("image").unwrap_or(""), &env, &words);
        Container { pod, at, env, env_complete, ports, mounts, role, read_only_root }
    }

    /// `envFrom` first, then `env` (which wins, as in Kubernetes).
    pub fn env_of(&self, container: &At<'a>, ns: Option<&str>) -> (Vec<EnvVar<'a>>, bool) {
        let mut env: Vec<EnvVar<'a>> = Vec::new();
        let mut complete = true;
        for from in container.get("envFrom").map(|e| e.items()).unwrap_or_default() {
            let prefix = from.text("prefix").unwrap_or("");
            for (key, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                let Some(name) = from.get(key).and_then(|r| r.text("name")) else { continue };
                match self.config(kind, name, ns) {
                    Some(data) => env.extend(data.into_iter().map(|(k, value, at)| EnvVar { name: format!("{prefix}{k}"), value, at })),
                    None => complete = false,
                }
            }
        }
        for item in container.get("env").map(|e| e.items()).unwrap_or_default() {
            let Some(name) = item.text("name") else { continue };
            let var = if let Some(v) = item.get("value") {
                EnvVar { name: name.to_string(), value: v.str().map(str::to_string), at: v }
            } else if let Some(from) = item.get("valueFrom") {
                let reference = [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")].iter().find_map(|(key, kind)| {
                    let r = from.get(key)?;
                    Some((*kind, r.text("name")?, r.text("key")?))
                });
                let found = reference.and_then(|(kind, n, k)| self.config(kind, n, ns)?.into_iter().find(|(key, _, _)| key == k));
                match found {
                    Some((_, value, at)) => EnvVar { name: name.to_string(), value, at },
                    None => EnvVar { name: name.to_string(), value: None, at: from },
                }
            } else {
                EnvVar { name: name.to_string(), value: None, at: item }
            };
            env.retain(|v| v.name != name);
            env.push(var);
        }
        (env, complete)
    }

    /// The keys of a ConfigMap or Secret in these manifests with their values
    /// (Secret `data` decoded); `None` when the set does not define it.
    pub fn config(&self, kind: &str, name: &str, ns: Option<&str>) -> Option<Vec<(String, Option<String>, At<'a>)>> {
        let o = self.objects.iter().find(|o| o.kind == kind && o.name == name && o.same_namespace(ns))?;
        let mut out = Vec::new();
        for (key, decode) in [("data", kind == "Secret"), ("stringData", false)] {
            for (k, v) in o.at.get(key).map(|d| d.entries()).unwrap_or_default() {
                let value = v.str().map(|s| if decode { base64(s).unwrap_or_default() } else { s.to_string() });
                out.push((k.to_string(), value, v));
            }
        }
        Some(out)
    }

    fn read_service(&mut self, object: usize) {
        let o = &self.objects[object];
        if o.kind != "Service" {
            return;
        }
        let selector = o.at.dig("spec.selector").map(|s| pairs(&s)).unwrap_or_default();
        let ports = o
            .at
            .dig("spec.ports")
            .map(|p| p.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| Some(ServicePort { name: p.text("name"), port: p.text("port")?.parse().ok()?, target: p.text("targetPort") }))
            .collect();
        let headless = o.at.dig("spec.clusterIP").and_then(|c| c.str()) == Some("None");
        self.services.push(Service { object, selector, ports, headless });
    }
}

fn collect_objects<'a>(doc: &'a Node, file: &'a str, out: &mut Vec<Object<'a>>) {
    let probe = At::root(doc, file, Rc::from(""));
    let Some(kind) = probe.text("kind") else { return };
    if kind.ends_with("List") {
        for item in probe.get("items").map(|i| i.items()).unwrap_or_default() {
            collect_objects(item.node, file, out);
        }
        return;
    }
    let meta = probe.get("metadata");
    let name = meta.as_ref().and_then(|m| m.text("name").or_else(|| m.text("generateName"))).unwrap_or("(unnamed)");
    let namespace = meta.as_ref().and_then(|m| m.text("namespace"));
    let at = At::root(doc, file, Rc::from(format!("{kind}/{name}")));
    out.push(Object { kind, api_version: probe.text("apiVersion").unwrap_or(""), name, namespace, at });
}

fn pairs<'a>(map: &At<'a>) -> Vec<(&'a str, &'a str)> {
    map.entries().into_iter().filter_map(|(k, v)| Some((k, v.str()?))).collect()
}

fn volume_kind(v: &At) -> VolumeKind {
    if v.get("emptyDir").is_some() {
        VolumeKind::EmptyDir
    } else if let Some(kind) = ["configMap", "secret", "downwardAPI", "projected"].into_iter().find(|k| v.get(k).is_some()) {
        VolumeKind::ReadOnly(kind)
    } else {
        VolumeKind::Persistent
    }
}

/// Variables only a Kafka broker or controller is started with.
const KAFKA_SERVER_VARS: &[&str] = &[
    "KAFKA_CFG_LISTENERS",
    "KAFKA_LISTENERS",
    "KAFKA_CFG_PROCESS_ROLES",
    "KAFKA_PROCESS_ROLES",
    "KAFKA_CFG_NODE_ID",
    "KAFKA_NODE_ID",
    "KAFKA_BROKER_ID",
    "KAFKA_CFG_BROKER_ID",
    "KAFKA_CFG_ZOOKEEPER_CONNECT",
    "KAFKA_ZOOKEEPER_CONNECT",
    "KAFKA_ADVERTISED_LISTENERS",
    "KAFKA_CFG_ADVERTISED_LISTENERS",
    "KAFKA_KRAFT_CLUSTER_ID",
];

/// Variables of a Kafka consumer: the contract's, and the names students give them
/// (tools such as kafka-ui use their own, `KAFKA_CLUSTERS_0_…`, and are not processors).
const CLIENT_VARS: &[&str] = &[
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
    "KAFKA_GROUP_ID",
    "KAFKA_BROKERS",
    "KAFKA_BROKER",
    "KAFKA_SERVERS",
    "KAFKA_SERVER",
    "KAFKA_BOOTSTRAP_SERVER",
    "KAFKA_BOOTSTRAP",
    "KAFKA_TOPIC_NAME",
    "KAFKA_GROUP",
    "KAFKA_CONSUMER_GROUP",
];

/// The image's name without registry, path, tag or digest: `kafka` of
/// `docker.io/bitnami/kafka:3.9.0`.
pub(crate) fn image_name(image: &str) -> &str {
    let repo = image.split('@').next().unwrap_or(image);
    let last = repo.rsplit('/').next().unwrap_or(repo);
    last.split(':').next().unwrap_or(last)
}

fn role(image: &str, env: &[EnvVar], words: &[&str]) -> Role {
    let name = image_name(image);
    let has = |p: &dyn Fn(&str) -> bool| env.iter().any(|v| p(&v.name));
    if matches!(name, "kafka" | "cp-kafka" | "cp-server" | "kafka-native") || has(&|n| KAFKA_SERVER_VARS.contains(&n)) {
        Role::Kafka
    } else if name == "minio"
        || has(&|n| n.starts_with("MINIO_NOTIFY_"))
        || (words.iter().any(|w| w.ends_with("minio")) && words.contains(&"server"))
    {
        Role::Minio
    } else if has(&|n| CLIENT_VARS.contains(&n)) {
        Role::Processor
    } else {
        Role::Other
    }
}

/// Standard base64 (Secret `data`); `None` when it is not valid.
fn base64(s: &str) -> Option<String> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::yaml::parse_stream;

    fn world(text: &str) -> Vec<(String, Vec<Node>)> {
        vec![("m.yaml".to_string(), parse_stream(text).0)]
    }

    #[test]
    fn env_comes_from_config_maps_and_secrets_and_env_wins() {
        let files = world(
            r#"kind: ConfigMap
metadata: {name: cfg}
data:
  KAFKA_TOPIC: events
  KAFKA_GROUP_ID: g
---
kind: Secret
metadata: {name: s}
data:
  AWS_SECRET_ACCESS_KEY: c2VjcmV0
---
kind: Deployment
metadata: {name: p}
spec:
  template:
    spec:
      containers:
      - name: c
        image: me/consumer:1
        envFrom: [{configMapRef: {name: cfg}}]
        env:
        - {name: KAFKA_GROUP_ID, value: mine}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: s, key: AWS_SECRET_ACCESS_KEY}}
"#,
        );
        let w = World::build(&files);
        let c = &w.containers[0];
        assert_eq!(c.role, Role::Processor);
        assert!(c.env_complete);
        let topic = c.var("KAFKA_TOPIC").unwrap();
        assert_eq!((topic.value.as_deref(), topic.at.line, topic.at.object.as_ref()), (Some("events"), 4, "ConfigMap/cfg"));
        assert_eq!(c.var("KAFKA_GROUP_ID").unwrap().value.as_deref(), Some("mine"));
        assert_eq!(c.var("AWS_SECRET_ACCESS_KEY").unwrap().value.as_deref(), Some("secret"));
    }

    #[test]
    fn roles_by_image_and_variables() {
        let files = world(
            r#"kind: Pod
metadata: {name: a}
spec:
  containers:
  - {name: k, image: docker.io/bitnami/kafka:3.9}
  - {name: m, image: quay.io/minio/minio@sha256:00}
  - {name: p, image: student/kafka-consumer, env: [{name: KAFKA_BOOTSTRAP_SERVERS, value: k:9092}]}
  - {name: x, image: busybox}
"#,
        );
        let w = World::build(&files);
        let roles: Vec<Role> = w.containers.iter().map(|c| c.role).collect();
        assert_eq!(roles, [Role::Kafka, Role::Minio, Role::Processor, Role::Other]);
    }

    #[test]
    fn base64_decodes_secret_data() {
        assert_eq!(base64("a2Fma2E6OTA5Mg==").as_deref(), Some("kafka:9092"));
        assert_eq!(base64("!!"), None);
    }
}
