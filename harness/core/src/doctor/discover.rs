//! With `--namespace` and no endpoints: where the pipeline's Kafka and MinIO are
//! and which credentials MinIO takes, read from the namespace's objects, as a
//! student would point someone at them ("it's the thing in namespace alice").
//!
//! - Kafka: a Strimzi `Kafka`'s status listeners (the operator's own answer),
//!   else the Service that looks most like a Kafka bootstrap (a name or port
//!   named for Kafka, port 9092).
//! - MinIO: a MinIO operator `Tenant` (its Service `minio`), else the Service in
//!   front of a pod running `minio server`.
//! - Credentials: the MinIO container's `MINIO_ROOT_USER`/`MINIO_ROOT_PASSWORD`
//!   (literal, from a Secret key, or from an `envFrom` Secret), or a Tenant's
//!   configuration Secret. Only where they were found is ever shown.
//!
//! Each endpoint has two addresses: as the pipeline's pods reach it (the
//! Service's DNS name, or its cluster IP on a cluster without DNS), and from
//! outside (a node port on a node's address, else the cluster IP, which only the
//! cluster's own nodes reach).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Secret, Service};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::Client;
use serde_json::Value;

use super::cluster::{bounded, strimzi};
use super::{Finding, Link};
use crate::services::endpoints::S3Credentials;

/// One service of the pipeline, found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// As the pipeline's pods reach it.
    pub inside: String,
    /// As a client outside the cluster reaches it.
    pub outside: String,
    /// Where it was read, e.g. `Service kafka, port internal`.
    pub from: String,
}

/// What the namespace says about the pipeline.
#[derive(Debug)]
pub struct Discovery {
    pub kafka: Option<Endpoint>,
    pub s3: Option<Endpoint>,
    /// The credentials and where they were read (never their values).
    pub credentials: Option<(S3Credentials, String)>,
    /// One finding per endpoint (found, or not and why).
    pub findings: Vec<Finding>,
}

/// Reads the namespace. Never fails: what is not found is a finding.
pub async fn discover(client: &Client, ns: &str, timeout: Duration) -> Discovery {
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let services = bounded(timeout, "listing Services", services.list(&ListParams::default())).await.map(|l| l.items);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pods = bounded(timeout, "listing pods", pods.list(&ListParams::default())).await.map(|l| l.items).unwrap_or_default();
    let dns = has_cluster_dns(client, timeout).await;
    let node = node_address(client, timeout).await;
    let look = Look { ns, dns, node: node.as_deref() };
    let mut findings = Vec::new();
    let services = match services {
        Ok(s) => s,
        Err(e) => {
            findings.push(
                Finding::error(Link::Discovery, format!("the pipeline's endpoints in namespace {ns}"), e)
                    .because("the doctor cannot list the namespace's Services")
                    .fix("give the endpoints with --s3 and --kafka, or check `kubectl get svc -n NAMESPACE` works with this kubeconfig"),
            );
            return Discovery { kafka: None, s3: None, credentials: None, findings };
        }
    };

    let kafka = match strimzi_kafka(client, ns, timeout).await {
        Some(Ok(e)) => Some(e),
        Some(Err(f)) => {
            findings.push(f);
            None
        }
        None => kafka_service(&services, &look),
    };
    findings.push(match &kafka {
        Some(k) => found("Kafka bootstrap", k, ns),
        None if findings.is_empty() => Finding::error(Link::Discovery, format!("Kafka bootstrap in namespace {ns}"), describe_services(&services))
            .because("no Strimzi Kafka and no Service that looks like a Kafka bootstrap (a name or port named kafka, or port 9092)")
            .fix("give the bootstrap address with --kafka (e.g. through `kubectl port-forward`), or run the doctor with the namespace Kafka runs in"),
        None => Finding::skipped(Link::Discovery, "Kafka bootstrap from Services", "a Strimzi Kafka is defined but not ready (above)"),
    });

    let tenant = minio_tenant(client, ns, timeout).await;
    let minio_pod = pods.iter().find_map(|p| minio_container(p).map(|c| (p, c)));
    let s3 = match &tenant {
        Some(t) => tenant_service(t, &services, &look),
        None => minio_pod.and_then(|(pod, c)| minio_service(pod, c, &services, &look)),
    };
    findings.push(match &s3 {
        Some(s) => found("MinIO's S3 API", s, ns),
        None => Finding::error(
            Link::Discovery,
            format!("MinIO's S3 API in namespace {ns}"),
            match minio_pod {
                Some((p, _)) => format!(
                    "pod {} runs MinIO, but no Service selects it on its API port; {}",
                    p.metadata.name.clone().unwrap_or_default(),
                    describe_services(&services)
                ),
                None => format!("no pod runs `minio server` and no MinIO Tenant; {}", describe_services(&services)),
            },
        )
        .because("the doctor finds MinIO as a MinIO operator Tenant or as a Service in front of a pod running `minio server`")
        .fix("give the S3 endpoint with --s3 (e.g. through `kubectl port-forward svc/minio 9000`), or add a Service for MinIO's API port"),
    });

    let credentials = match (&tenant, minio_pod) {
        (Some(t), _) => tenant_credentials(client, ns, t, timeout).await,
        (None, Some((pod, c))) => container_credentials(client, ns, pod, c, timeout).await,
        (None, None) => None,
    };
    Discovery { kafka, s3, credentials, findings }
}

fn found(what: &str, e: &Endpoint, ns: &str) -> Finding {
    let outside = if e.outside == e.inside { String::new() } else { format!("; from outside the cluster: {}", e.outside) };
    Finding::ok(Link::Discovery, format!("{what} in namespace {ns}"), format!("{} ({}){outside}", e.inside, e.from))
}

/// How addresses are written on this cluster.
struct Look<'a> {
    ns: &'a str,
    /// The cluster runs DNS (a `kube-dns` Service): pods use Service names.
    dns: bool,
    /// A Ready node's InternalIP, where node ports are reached.
    node: Option<&'a str>,
}

impl Look<'_> {
    /// `host:port` of a Service's port as pods reach it.
    fn inside(&self, svc: &Service, port: i32) -> Option<String> {
        let name = svc.metadata.name.as_deref()?;
        if self.dns {
            return Some(format!("{name}.{}.svc:{port}", self.ns));
        }
        cluster_ip(svc).map(|ip| format!("{ip}:{port}"))
    }
    /// `host:port` from outside: the node port of the Service's `port` on a
    /// node's address, else the cluster IP (which only the cluster's nodes reach).
    fn outside(&self, svc: &Service, port: i32) -> Option<String> {
        let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref())?;
        let node_port = ports.iter().find(|p| p.port == port).and_then(|p| p.node_port);
        match (self.node, node_port) {
            (Some(node), Some(np)) => Some(format!("{node}:{np}")),
            _ => cluster_ip(svc).map(|ip| format!("{ip}:{port}")),
        }
    }
}

fn cluster_ip(svc: &Service) -> Option<String> {
    svc.spec.as_ref()?.cluster_ip.clone().filter(|ip| !ip.is_empty() && ip != "None")
}

fn describe_services(services: &[Service]) -> String {
    if services.is_empty() {
        return "the namespace has no Services".into();
    }
    let list: Vec<String> = services
        .iter()
        .map(|s| {
            let ports: Vec<String> = s
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .into_iter()
                .flatten()
                .map(|p| p.name.as_ref().map_or_else(|| p.port.to_string(), |n| format!("{n}/{}", p.port)))
                .collect();
            format!("{} [{}]", s.metadata.name.clone().unwrap_or_default(), ports.join(", "))
        })
        .collect();
    format!("Services: {}", list.join("; "))
}

async fn has_cluster_dns(client: &Client, timeout: Duration) -> bool {
    let api: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    matches!(bounded(timeout, "reading Service kube-dns", api.get_opt("kube-dns")).await, Ok(Some(_)))
}

async fn node_address(client: &Client, timeout: Duration) -> Option<String> {
    tokio::time::timeout(timeout, crate::env::kubernetes::node_address(client)).await.ok()?.ok()
}

/// A Strimzi `Kafka` of the namespace: `None` where Strimzi is not installed or
/// defines none; an error finding where one is defined but has no listeners yet.
async fn strimzi_kafka(client: &Client, ns: &str, timeout: Duration) -> Option<Result<Endpoint, Finding>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &strimzi("Kafka", "kafkas"));
    let kafkas = bounded(timeout, "listing Strimzi Kafka resources", api.list(&ListParams::default())).await.ok()?.items;
    let first = kafkas.first()?;
    Some(kafkas.iter().find_map(strimzi_listener).ok_or_else(|| {
        let name = first.metadata.name.clone().unwrap_or_default();
        let conditions: Vec<String> = first
            .data
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| format!("{} {} {}", c["type"].as_str().unwrap_or("?"), c["status"].as_str().unwrap_or("?"), c["message"].as_str().unwrap_or("")))
            .collect();
        Finding::error(
            Link::Discovery,
            format!("Strimzi Kafka {name} has a bootstrap address"),
            if conditions.is_empty() { "no status: the operator has not reconciled it".to_string() } else { conditions.join("; ") },
        )
        .because("Strimzi writes the bootstrap addresses into the Kafka's status.listeners once the cluster is Ready; it is not")
        .fix(format!("`kubectl describe kafka {name} -n {ns}` and the cluster operator's log say why; is the operator running and watching this namespace?"))
    }))
}

/// The bootstrap of a Strimzi Kafka's status: a plain internal listener for the
/// pods, a plain node-port/load-balancer/ingress one (if any) from outside.
pub(crate) fn strimzi_listener(kafka: &DynamicObject) -> Option<Endpoint> {
    let name = kafka.metadata.name.clone().unwrap_or_default();
    let spec: BTreeMap<String, (String, bool)> = kafka
        .data
        .pointer("/spec/kafka/listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            Some((
                l["name"].as_str()?.to_string(),
                (l["type"].as_str().unwrap_or("internal").to_string(), l["tls"].as_bool().unwrap_or(false)),
            ))
        })
        .collect();
    let status = kafka.data.pointer("/status/listeners").and_then(Value::as_array)?;
    let bootstrap = |l: &Value| -> Option<(String, String, String, bool)> {
        let lname = l["name"].as_str().or(l["type"].as_str())?.to_string();
        let servers = l["bootstrapServers"].as_str().map(String::from).or_else(|| {
            let a = l["addresses"].as_array()?.first()?;
            Some(format!("{}:{}", a["host"].as_str()?, a["port"].as_i64()?))
        })?;
        let (kind, tls) = spec.get(&lname).cloned().unwrap_or(("internal".into(), false));
        Some((lname, servers, kind, tls))
    };
    let listeners: Vec<_> = status.iter().filter_map(bootstrap).collect();
    let internal = |k: &str| k == "internal" || k == "cluster-ip";
    let inside = listeners.iter().find(|l| internal(&l.2) && !l.3).or_else(|| listeners.iter().find(|l| internal(&l.2)))?;
    // Strimzi's internal addresses are DNS names; without cluster DNS the pods
    // could not use them either, and the doctor says so where it probes.
    let outside = listeners.iter().find(|l| !internal(&l.2) && !l.3);
    Some(Endpoint {
        inside: inside.1.clone(),
        outside: outside.map_or_else(|| inside.1.clone(), |l| l.1.clone()),
        from: format!(
            "Strimzi Kafka {name}, status listener {}{}",
            inside.0,
            outside.map(|l| format!("; listener {} ({}) from outside", l.0, l.2)).unwrap_or_default()
        ),
    })
}

/// How much a Service port looks like a Kafka client listener (0: not at all).
fn kafka_score(svc: &Service, port: &k8s_openapi::api::core::v1::ServicePort) -> i32 {
    let svc_name = svc.metadata.name.as_deref().unwrap_or_default().to_ascii_lowercase();
    let pname = port.name.as_deref().unwrap_or_default().to_ascii_lowercase();
    let not_clients = ["controller", "metrics", "jmx", "exporter", "replication", "external", "zookeeper", "http", "console", "ui"];
    if not_clients.iter().any(|n| pname.contains(n) || svc_name.contains(n)) {
        return 0;
    }
    let mut score = 0;
    if port.port == 9092 {
        score += 3;
    }
    if ["kafka", "plain", "client", "broker", "tcp-kafka", "internal"].iter().any(|n| pname.contains(n)) {
        score += 2;
    }
    if svc_name.contains("kafka") {
        score += 2;
    }
    if score > 0 && svc_name.contains("bootstrap") {
        score += 2;
    }
    if score > 0 && cluster_ip(svc).is_some() {
        // A headless Service names single brokers; a bootstrap has an address.
        score += 1;
    }
    score
}

fn kafka_service(services: &[Service], look: &Look<'_>) -> Option<Endpoint> {
    let (svc, port) = services
        .iter()
        .flat_map(|s| s.spec.as_ref().and_then(|sp| sp.ports.as_ref()).into_iter().flatten().map(move |p| (s, p)))
        .map(|(s, p)| (kafka_score(s, p), s, p))
        .filter(|(score, _, _)| *score > 0)
        .max_by_key(|(score, _, _)| *score)
        .map(|(_, s, p)| (s, p))?;
    let name = svc.metadata.name.clone().unwrap_or_default();
    // A Service with an `external` port beside the client one (the harness's
    // own, many charts): outside clients bootstrap there.
    let external = svc.spec.as_ref()?.ports.as_ref()?.iter().find(|p| p.name.as_deref().is_some_and(|n| n.contains("external")));
    let outside_port = external.filter(|p| p.node_port.is_some()).map_or(port.port, |p| p.port);
    Some(Endpoint {
        inside: look.inside(svc, port.port)?,
        outside: look.outside(svc, outside_port)?,
        from: format!(
            "Service {name}, port {}{}",
            port.name.clone().unwrap_or_else(|| port.port.to_string()),
            if outside_port != port.port { format!("; port {outside_port} from outside") } else { String::new() }
        ),
    })
}

/// The MinIO container of a pod: its image names MinIO and it runs `server`.
fn minio_container(pod: &Pod) -> Option<&Container> {
    pod.spec.as_ref()?.containers.iter().find(|c| {
        let image = c.image.as_deref().unwrap_or_default().to_ascii_lowercase();
        let argv: Vec<&str> = c.command.iter().flatten().chain(c.args.iter().flatten()).map(String::as_str).collect();
        image.contains("minio") && !image.contains("/mc") && !image.contains("operator") && argv.contains(&"server")
    })
}

/// MinIO's API port in its container: `--address :PORT`, a port named for the
/// API, else 9000.
fn minio_port(c: &Container) -> i32 {
    let argv: Vec<&String> = c.command.iter().flatten().chain(c.args.iter().flatten()).collect();
    let from_arg = argv
        .windows(2)
        .find(|w| w[0] == "--address")
        .and_then(|w| w[1].rsplit(':').next()?.parse().ok())
        .or_else(|| argv.iter().find_map(|a| a.strip_prefix("--address=")?.rsplit(':').next()?.parse().ok()));
    let named =
        c.ports.iter().flatten().find(|p| p.name.as_deref().is_some_and(|n| ["api", "http", "s3", "minio"].iter().any(|k| n.contains(k))));
    from_arg.or(named.map(|p| p.container_port)).unwrap_or(9000)
}

fn minio_service(pod: &Pod, c: &Container, services: &[Service], look: &Look<'_>) -> Option<Endpoint> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let api_port = minio_port(c);
    let port_name = c.ports.iter().flatten().find(|p| p.container_port == api_port).and_then(|p| p.name.clone());
    let selects = |s: &Service| {
        let sel = s.spec.as_ref().and_then(|sp| sp.selector.as_ref());
        sel.is_some_and(|sel| !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
    };
    let targets = |p: &k8s_openapi::api::core::v1::ServicePort| match &p.target_port {
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => *n == api_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(n)) => Some(n) == port_name.as_ref(),
        None => p.port == api_port,
    };
    let mut candidates: Vec<(&Service, i32)> = services
        .iter()
        .filter(|s| selects(s))
        .filter_map(|s| s.spec.as_ref()?.ports.as_ref()?.iter().find(|p| targets(p)).map(|p| (s, p.port)))
        .collect();
    // A Service with an address before a headless one.
    candidates.sort_by_key(|(s, _)| cluster_ip(s).is_none());
    let (svc, port) = candidates.first()?;
    let scheme = if *port == 443 { "https" } else { "http" };
    Some(Endpoint {
        inside: format!("{scheme}://{}", look.inside(svc, *port)?),
        outside: format!("{scheme}://{}", look.outside(svc, *port)?),
        from: format!(
            "Service {} in front of pod {} (`minio server`, API port {api_port})",
            svc.metadata.name.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default()
        ),
    })
}

fn tenant_resource() -> ApiResource {
    ApiResource {
        group: "minio.min.io".into(),
        version: "v2".into(),
        api_version: "minio.min.io/v2".into(),
        kind: "Tenant".into(),
        plural: "tenants".into(),
    }
}

async fn minio_tenant(client: &Client, ns: &str, timeout: Duration) -> Option<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &tenant_resource());
    bounded(timeout, "listing MinIO Tenants", api.list(&ListParams::default())).await.ok()?.items.into_iter().next()
}

/// The operator puts a Tenant's S3 API behind Service `minio` (port 80, or 443
/// with TLS).
fn tenant_service(tenant: &DynamicObject, services: &[Service], look: &Look<'_>) -> Option<Endpoint> {
    let svc = services.iter().find(|s| s.metadata.name.as_deref() == Some("minio"))?;
    let port = svc.spec.as_ref()?.ports.as_ref()?.first()?.port;
    let scheme = if port == 443 { "https" } else { "http" };
    Some(Endpoint {
        inside: format!("{scheme}://{}", look.inside(svc, port)?),
        outside: format!("{scheme}://{}", look.outside(svc, port)?),
        from: format!("MinIO Tenant {}, Service minio", tenant.metadata.name.clone().unwrap_or_default()),
    })
}

const USER_VARS: [&str; 2] = ["MINIO_ROOT_USER", "MINIO_ACCESS_KEY"];
const PASSWORD_VARS: [&str; 2] = ["MINIO_ROOT_PASSWORD", "MINIO_SECRET_KEY"];

/// A Tenant's root credentials: its configuration Secret's `config.env`
/// (`export MINIO_ROOT_USER=…`).
async fn tenant_credentials(client: &Client, ns: &str, tenant: &DynamicObject, timeout: Duration) -> Option<(S3Credentials, String)> {
    let name = tenant.data.pointer("/spec/configuration/name")?.as_str()?;
    let secret = read_secret(client, ns, name, timeout).await?;
    let env = parse_env_file(&secret.get("config.env")?.clone());
    let pick = |keys: &[&str]| keys.iter().find_map(|k| env.get(*k).cloned());
    let credentials = S3Credentials { access_key: pick(&USER_VARS)?, secret_key: pick(&PASSWORD_VARS)?, region: "us-east-1".into() };
    Some((credentials, format!("Secret {name} (config.env of MinIO Tenant {})", tenant.metadata.name.clone().unwrap_or_default())))
}

/// `export KEY="value"` lines.
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').trim_matches('\'').to_string()))
        })
        .collect()
}

async fn read_secret(client: &Client, ns: &str, name: &str, timeout: Duration) -> Option<BTreeMap<String, String>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = bounded(timeout, "reading a Secret", api.get(name)).await.ok()?;
    Some(secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect())
}

/// The MinIO container's root credentials, wherever its spec takes them from.
async fn container_credentials(client: &Client, ns: &str, pod: &Pod, c: &Container, timeout: Duration) -> Option<(S3Credentials, String)> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut sources: Vec<String> = Vec::new();
    for from in c.env_from.iter().flatten() {
        if let Some(name) = from.secret_ref.as_ref().map(|r| r.name.clone()) {
            if let Some(data) = read_secret(client, ns, &name, timeout).await {
                if USER_VARS.iter().chain(&PASSWORD_VARS).any(|k| data.contains_key(*k)) {
                    sources.push(format!("Secret {name}"));
                }
                values.extend(data);
            }
        }
    }
    for var in c.env.iter().flatten() {
        if !USER_VARS.contains(&var.name.as_str()) && !PASSWORD_VARS.contains(&var.name.as_str()) {
            continue;
        }
        if let Some(v) = &var.value {
            values.insert(var.name.clone(), v.clone());
            sources.push(format!("{} in the pod spec", var.name));
        } else if let Some(r) = var.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()) {
            if let Some(v) = read_secret(client, ns, &r.name, timeout).await.and_then(|d| d.get(&r.key).cloned()) {
                values.insert(var.name.clone(), v);
                sources.push(format!("Secret {} key {}", r.name, r.key));
            }
        }
    }
    let pick = |keys: &[&str]| keys.iter().find_map(|k| values.get(*k).cloned());
    let credentials = S3Credentials { access_key: pick(&USER_VARS)?, secret_key: pick(&PASSWORD_VARS)?, region: "us-east-1".into() };
    sources.dedup();
    Some((credentials, format!("{} (container {} of pod {pod_name})", sources.join(", "), c.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_kafka_bootstrap_is_the_service_most_like_one() {
        let look = Look { ns: "alice", dns: true, node: Some("10.0.0.5") };
        let services = vec![
            svc(
                serde_json::json!({"metadata": {"name": "minio"}, "spec": {"clusterIP": "10.96.0.9", "ports": [{"name": "api", "port": 9000}]}}),
            ),
            svc(
                serde_json::json!({"metadata": {"name": "kafka-headless"}, "spec": {"clusterIP": "None", "ports": [{"name": "tcp-client", "port": 9092}]}}),
            ),
            svc(serde_json::json!({"metadata": {"name": "kafka"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.7", "ports": [
                {"name": "internal", "port": 9092, "nodePort": 30001},
                {"name": "external", "port": 9094, "nodePort": 30002},
                {"name": "controller", "port": 9093}
            ]}})),
        ];
        let e = kafka_service(&services, &look).unwrap();
        assert_eq!(e.inside, "kafka.alice.svc:9092");
        assert_eq!(e.outside, "10.0.0.5:30002", "outside clients bootstrap on the external listener's node port");
        let no_dns = Look { dns: false, ..look };
        assert_eq!(kafka_service(&services, &no_dns).unwrap().inside, "10.96.0.7:9092");
        assert!(kafka_service(&services[..1], &no_dns).is_none(), "MinIO's Service is no Kafka");
    }

    #[test]
    fn a_strimzi_kafka_gives_its_plain_internal_listener_and_an_external_one() {
        let kafka: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "metadata": {"name": "my-cluster"},
            "spec": {"kafka": {"listeners": [
                {"name": "plain", "port": 9092, "type": "internal", "tls": false},
                {"name": "tls", "port": 9093, "type": "internal", "tls": true},
                {"name": "external", "port": 9094, "type": "nodeport", "tls": false}
            ]}},
            "status": {"listeners": [
                {"name": "tls", "bootstrapServers": "my-cluster-kafka-bootstrap.alice.svc:9093"},
                {"name": "plain", "bootstrapServers": "my-cluster-kafka-bootstrap.alice.svc:9092"},
                {"name": "external", "addresses": [{"host": "172.18.0.2", "port": 31234}]}
            ]}
        }))
        .unwrap();
        let e = strimzi_listener(&kafka).unwrap();
        assert_eq!(e.inside, "my-cluster-kafka-bootstrap.alice.svc:9092");
        assert_eq!(e.outside, "172.18.0.2:31234");
        assert!(e.from.contains("Strimzi Kafka my-cluster"), "{}", e.from);
    }

    #[test]
    fn minio_is_found_behind_the_service_selecting_its_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "minio-0", "labels": {"app": "minio", "pod": "x"}},
            "spec": {"containers": [
                {"name": "sidecar", "image": "busybox"},
                {"name": "minio", "image": "quay.io/minio/minio:latest", "args": ["server", "/data", "--address", ":9100", "--console-address", ":9001"],
                 "ports": [{"name": "s3", "containerPort": 9100}]}
            ]}
        }))
        .unwrap();
        let c = minio_container(&pod).unwrap();
        assert_eq!(minio_port(c), 9100);
        let services = vec![
            svc(
                serde_json::json!({"metadata": {"name": "other"}, "spec": {"clusterIP": "10.96.0.3", "selector": {"app": "other"}, "ports": [{"port": 80, "targetPort": 9100}]}}),
            ),
            svc(
                serde_json::json!({"metadata": {"name": "minio-console"}, "spec": {"clusterIP": "10.96.0.4", "selector": {"app": "minio"}, "ports": [{"port": 9001, "targetPort": 9001}]}}),
            ),
            svc(
                serde_json::json!({"metadata": {"name": "minio"}, "spec": {"clusterIP": "10.96.0.5", "selector": {"app": "minio"}, "ports": [{"port": 80, "targetPort": "s3"}]}}),
            ),
        ];
        let look = Look { ns: "bob", dns: false, node: Some("10.0.0.5") };
        let e = minio_service(&pod, c, &services, &look).unwrap();
        assert_eq!(e.inside, "http://10.96.0.5:80");
        assert_eq!(e.outside, "http://10.96.0.5:80", "no node port: the cluster IP, reachable from the nodes");
    }

    #[test]
    fn a_tenants_config_env_is_read() {
        let env = parse_env_file("export MINIO_ROOT_USER=\"admin\"\nexport MINIO_ROOT_PASSWORD='s3cret'\n# comment\n");
        assert_eq!(env.get("MINIO_ROOT_USER").unwrap(), "admin");
        assert_eq!(env.get("MINIO_ROOT_PASSWORD").unwrap(), "s3cret");
    }
}
