//! The Kafkas a manifest set defines (a Strimzi `Kafka`, or a broker container of a
//! StatefulSet with its listeners) and where a bootstrap address lands among them.

use std::collections::BTreeMap;

use super::objects::{same_namespace, Role, Service, World};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    None,
    /// SASL with these mechanisms (`SCRAM-SHA-512`…); empty when not written down.
    Sasl(Vec<String>),
    /// TLS client certificates (Strimzi `authentication: {type: tls}`).
    Mtls,
}

#[derive(Clone, Debug)]
pub(crate) struct Listener {
    pub name: String,
    pub port: u16,
    pub tls: bool,
    pub auth: Auth,
    /// A KRaft controller listener: only controllers talk to it.
    pub controller: bool,
}

impl Listener {
    /// Kafka's name for what the listener speaks: `SASL_PLAINTEXT`, `SSL`…
    pub fn protocol(&self) -> &'static str {
        match (matches!(self.auth, Auth::Sasl(_)), self.tls) {
            (true, true) => "SASL_SSL",
            (true, false) => "SASL_PLAINTEXT",
            (false, true) => "SSL",
            (false, false) => "PLAINTEXT",
        }
    }
}

pub(crate) enum Flavor {
    Strimzi {
        topic_operator: bool,
        user_operator: bool,
    },
    /// A broker container (`World::containers` index).
    Broker {
        container: usize,
    },
}

pub(crate) struct Kafka {
    /// `World::objects` index.
    pub object: usize,
    pub flavor: Flavor,
    /// Empty when the manifests do not say (a broker's defaults).
    pub listeners: Vec<Listener>,
}

impl Kafka {
    /// `PLAIN 9092 (PLAINTEXT), TLS 9093 (SSL)`.
    pub fn describe_listeners(&self) -> String {
        let mut parts: Vec<String> = self
            .listeners
            .iter()
            .map(|l| {
                let mut s = format!("{} {} ({}", l.name, l.port, if l.controller { "controller" } else { l.protocol() });
                if let Auth::Sasl(m) = &l.auth {
                    if !m.is_empty() {
                        s.push_str(&format!(" {}", m.join("/")));
                    }
                }
                if l.auth == Auth::Mtls {
                    s.push_str(", client certificates");
                }
                s.push(')');
                s
            })
            .collect();
        if parts.is_empty() {
            parts.push("none written in the manifests".into());
        }
        parts.join(", ")
    }

    /// The listeners a client may use.
    pub fn client_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners.iter().filter(|l| !l.controller)
    }
}

pub(crate) fn kafkas(w: &World) -> Vec<Kafka> {
    let mut out = Vec::new();
    for (i, o) in w.objects.iter().enumerate() {
        if o.kind == "Kafka" && o.group() == "kafka.strimzi.io" {
            let eo = o.at.dig("spec.entityOperator");
            let has = |k: &str| eo.as_ref().and_then(|e| e.get(k)).is_some();
            let flavor = Flavor::Strimzi { topic_operator: has("topicOperator"), user_operator: has("userOperator") };
            out.push(Kafka { object: i, flavor, listeners: strimzi_listeners(o.at.dig("spec.kafka.listeners")) });
        }
    }
    for (i, c) in w.containers.iter().enumerate() {
        if c.role == Role::Kafka {
            let props = broker_config(w, i);
            out.push(Kafka { object: w.pods[c.pod].object, flavor: Flavor::Broker { container: i }, listeners: broker_listeners(&props) });
        }
    }
    out
}

fn strimzi_listeners(at: Option<super::yaml::At>) -> Vec<Listener> {
    let Some(at) = at else { return Vec::new() };
    let auth = |l: &super::yaml::At| match l.dig("authentication.type").and_then(|t| t.str()) {
        Some("tls") => Auth::Mtls,
        Some("scram-sha-512") => Auth::Sasl(vec!["SCRAM-SHA-512".into()]),
        Some("oauth") => Auth::Sasl(vec!["OAUTHBEARER".into()]),
        Some(_) => Auth::Sasl(Vec::new()),
        None => Auth::None,
    };
    let mut out = Vec::new();
    for l in at.items() {
        let (Some(name), Some(port)) = (l.text("name"), l.text("port").and_then(|p| p.parse().ok())) else { continue };
        out.push(Listener { name: name.into(), port, tls: l.text("tls") == Some("true"), auth: auth(&l), controller: false });
    }
    // The old (v1beta1) map form: `listeners: {plain: {}, tls: {}, external: {…}}`.
    for (name, l) in at.entries() {
        let (port, tls) = match name {
            "plain" => (9092, false),
            "tls" => (9093, true),
            "external" => (9094, l.text("tls") != Some("false")),
            _ => continue,
        };
        out.push(Listener { name: name.into(), port, tls, auth: auth(&l), controller: false });
    }
    out
}

/// A broker's settings by property name (`listeners`, `listener.security.protocol.map`…):
/// from `server.properties`-like ConfigMaps it mounts, then from `KAFKA_CFG_*` /
/// `KAFKA_*` variables, which win (Bitnami and Apache images map them onto properties).
fn broker_config(w: &World, container: usize) -> BTreeMap<String, String> {
    let c = &w.containers[container];
    let mut props = BTreeMap::new();
    let ns = w.object_of(c).namespace;
    for m in &c.mounts {
        let Some(name) = w.pods[c.pod].config_maps.iter().find(|(v, _)| *v == m.volume).map(|(_, cm)| *cm) else { continue };
        for (_, value, _) in w.config("ConfigMap", name, ns).unwrap_or_default() {
            let Some(text) = value else { continue };
            if !text.lines().any(|l| l.trim_start().starts_with("listeners=")) {
                continue;
            }
            for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
                if let Some((k, v)) = line.split_once('=') {
                    props.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
    }
    for v in &c.env {
        let Some(value) = &v.value else { continue };
        let key = v.name.strip_prefix("KAFKA_CFG_").or_else(|| v.name.strip_prefix("KAFKA_"));
        if let Some(key) = key {
            props.insert(key.to_ascii_lowercase().replace('_', "."), value.clone());
        }
    }
    props
}

fn broker_listeners(props: &BTreeMap<String, String>) -> Vec<Listener> {
    let Some(listeners) = props.get("listeners") else { return Vec::new() };
    let map: BTreeMap<String, String> = props
        .get("listener.security.protocol.map")
        .map(|m| {
            m.split(',').filter_map(|kv| kv.split_once(':')).map(|(k, v)| (k.trim().to_uppercase(), v.trim().to_uppercase())).collect()
        })
        .unwrap_or_default();
    let controllers: Vec<String> =
        props.get("controller.listener.names").map(|c| c.split(',').map(|s| s.trim().to_uppercase()).collect()).unwrap_or_default();
    let mechanisms = |name: &str| -> Vec<String> {
        let own = format!("listener.name.{}.sasl.enabled.mechanisms", name.to_lowercase());
        props
            .get(&own)
            .or_else(|| props.get("sasl.enabled.mechanisms"))
            .map(|m| m.split(',').map(|s| s.trim().to_uppercase()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for l in listeners.split(',') {
        let Some((name, rest)) = l.trim().split_once("://") else { continue };
        let Some(port) = rest.rsplit(':').next().and_then(|p| p.parse().ok()) else { continue };
        let name = name.to_uppercase();
        let protocol = map.get(&name).cloned().unwrap_or_else(|| name.clone());
        let auth = if protocol.starts_with("SASL_") { Auth::Sasl(mechanisms(&name)) } else { Auth::None };
        let tls = protocol == "SSL" || protocol == "SASL_SSL";
        out.push(Listener { controller: controllers.contains(&name), name, port, tls, auth });
    }
    out
}

/// Where a `host:port` of a bootstrap list lands.
pub(crate) enum Landing<'k> {
    Listener(&'k Kafka, &'k Listener),
    /// A Kafka, but not one of its client listeners; `via` says how the port got there.
    NotListener {
        kafka: &'k Kafka,
        via: String,
    },
    /// Something that is not Kafka.
    NotKafka {
        via: String,
    },
    /// An in-cluster name that nothing in these manifests defines.
    NoHost,
    /// Outside what the manifests show (an IP, an external name, defaults not written).
    Unknown,
}

/// `host:port` items of a bootstrap list (a `SASL_SSL://` prefix is dropped).
pub(crate) fn addresses(list: &str) -> Vec<(&str, Option<u16>)> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            let a = a.split_once("://").map_or(a, |(_, rest)| rest);
            match a.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().ok()),
                None => (a, None),
            }
        })
        .collect()
}

pub(crate) fn resolve<'k>(w: &World, kafkas: &'k [Kafka], host: &str, port: u16, ns: Option<&str>) -> Landing<'k> {
    let labels: Vec<&str> = host.split('.').collect();
    let ns_at = |i: usize| labels.get(i).copied().filter(|l| *l != "svc").or(ns);
    let service =
        |name: &str, ns: Option<&str>| w.services.iter().find(|s| w.service_name(s) == name && w.objects[s.object].same_namespace(ns));
    if let Some(s) = service(labels[0], ns_at(1)) {
        return through_service(w, kafkas, s, port);
    }
    if labels.len() >= 2 {
        if let Some(s) = service(labels[1], ns_at(2)).filter(|s| s.headless) {
            let pods = w.selected_pods(s);
            if let Some(k) =
                kafkas.iter().find(|k| matches!(k.flavor, Flavor::Broker { container } if pods.contains(&w.containers[container].pod)))
            {
                return by_port(k, port, format!("pod {} of headless Service {}", labels[0], labels[1]));
            }
        }
    }
    for k in kafkas.iter().filter(|k| matches!(k.flavor, Flavor::Strimzi { .. })) {
        let o = &w.objects[k.object];
        let prefix = format!("{}-", o.name);
        let strimzi_service = |l: &str| {
            l.strip_prefix(&prefix).is_some_and(|rest| {
                rest == "kafka-bootstrap" || rest == "kafka-brokers" || (rest.starts_with("kafka-") && rest.ends_with("-bootstrap"))
            })
        };
        let (name, ns_index) = if strimzi_service(labels[0]) {
            (labels[0], 1)
        } else if labels.len() >= 2 && labels[1] == format!("{}kafka-brokers", prefix) {
            (labels[1], 2)
        } else {
            continue;
        };
        if same_namespace(o.namespace, ns_at(ns_index)) {
            return by_port(k, port, format!("{name}, a Service Strimzi makes for Kafka/{}", o.name));
        }
    }
    for b in w.of_kind("KafkaBridge") {
        if labels[0] == format!("{}-bridge-service", b.name) {
            return Landing::NotKafka {
                via: format!(
                    "{} is the Service of KafkaBridge/{}: Strimzi's HTTP bridge, which speaks HTTP, not Kafka's protocol",
                    labels[0], b.name
                ),
            };
        }
    }
    let ip_or_local = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok();
    let in_cluster = labels.len() <= 2 || host.ends_with(".svc") || host.contains(".svc.");
    if in_cluster && !ip_or_local {
        Landing::NoHost
    } else {
        Landing::Unknown
    }
}

fn through_service<'k>(w: &World, kafkas: &'k [Kafka], s: &Service, port: u16) -> Landing<'k> {
    let name = w.service_name(s);
    let pods = w.selected_pods(s);
    let broker = kafkas.iter().find(|k| matches!(k.flavor, Flavor::Broker { container } if pods.contains(&w.containers[container].pod)));
    let ports = s.ports.iter().map(|p| p.name.map_or(p.port.to_string(), |n| format!("{} ({n})", p.port))).collect::<Vec<_>>().join(", ");
    let Some(sp) = s.ports.iter().find(|p| p.port == port) else {
        return match broker {
            Some(kafka) => Landing::NotListener { kafka, via: format!("Service {name} has no port {port} (its ports: {ports})") },
            None if pods.is_empty() => Landing::Unknown,
            None => Landing::NotKafka { via: format!("Service {name} has no port {port} (its ports: {ports})") },
        };
    };
    let Some(kafka) = broker else {
        if pods.is_empty() {
            return Landing::Unknown;
        }
        let what: Vec<String> = pods.iter().map(|&p| w.objects[w.pods[p].object].at.object.to_string()).collect();
        return Landing::NotKafka { via: format!("Service {name} port {port} goes to {}, which runs no Kafka", what.join(", ")) };
    };
    let Flavor::Broker { container } = kafka.flavor else { return Landing::Unknown };
    let c = &w.containers[container];
    let target = sp.target.unwrap_or("");
    let container_port = match target.parse::<u16>() {
        Ok(n) => Some(n),
        Err(_) if target.is_empty() => Some(port),
        Err(_) => c.ports.iter().find(|(n, _)| *n == Some(target)).map(|(_, p)| *p),
    };
    let Some(cp) = container_port else {
        return Landing::NotListener {
            kafka,
            via: format!("Service {name} port {port} targets the port named {target:?}, which container {} does not define", c.name()),
        };
    };
    let named = c.ports.iter().find(|(_, p)| *p == cp).and_then(|(n, _)| *n).map(|n| format!(" ({n})")).unwrap_or_default();
    by_port(kafka, cp, format!("Service {name} port {port} goes to container port {cp}{named}"))
}

fn by_port<'k>(kafka: &'k Kafka, port: u16, via: String) -> Landing<'k> {
    if kafka.listeners.is_empty() {
        return Landing::Unknown;
    }
    match kafka.listeners.iter().find(|l| l.port == port) {
        Some(l) if l.controller => {
            Landing::NotListener { kafka, via: format!("{via}: the KRaft controller listener {}, which only controllers use", l.name) }
        }
        Some(l) => Landing::Listener(kafka, l),
        None => Landing::NotListener { kafka, via },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::yaml::parse_stream;

    #[test]
    fn bitnami_listeners_with_protocol_map_and_controller() {
        let text = r#"kind: StatefulSet
metadata: {name: kafka}
spec:
  template:
    spec:
      containers:
      - name: kafka
        image: bitnami/kafka:3.9
        env:
        - {name: KAFKA_CFG_LISTENERS, value: 'CLIENT://:9092,CONTROLLER://:9093,INTERNAL://:9094'}
        - {name: KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP, value: 'CLIENT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT'}
        - {name: KAFKA_CFG_CONTROLLER_LISTENER_NAMES, value: CONTROLLER}
        - {name: KAFKA_CFG_SASL_ENABLED_MECHANISMS, value: 'PLAIN,SCRAM-SHA-512'}
"#;
        let files = vec![("k.yaml".to_string(), parse_stream(text).0)];
        let w = World::build(&files);
        let k = kafkas(&w);
        assert_eq!(k.len(), 1);
        assert_eq!(
            k[0].describe_listeners(),
            "CLIENT 9092 (SASL_PLAINTEXT PLAIN/SCRAM-SHA-512), CONTROLLER 9093 (controller), INTERNAL 9094 (PLAINTEXT)"
        );
    }

    #[test]
    fn addresses_split_and_drop_protocol_prefixes() {
        assert_eq!(addresses("SASL_SSL://a:9093, b.ns.svc:9092,c"), [("a", Some(9093)), ("b.ns.svc", Some(9092)), ("c", None)]);
    }
}
