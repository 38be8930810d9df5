//! KafkaTopics and KafkaUsers that no operator here will reconcile, and topics that
//! MinIO and the processor do not agree on.

use super::Cx;
use crate::lint::kafka::Flavor;
use crate::lint::objects::Object;

/// Operators' Kafka clusters by API group.
const OPERATORS: &[(&str, &str, &str)] = &[
    ("kafka.strimzi.io", "Kafka", "Strimzi"),
    ("kafka.banzaicloud.io", "KafkaCluster", "Koperator (banzaicloud)"),
    ("platform.confluent.io", "Kafka", "Confluent for Kubernetes"),
];

fn operator(group: &str) -> &str {
    OPERATORS.iter().find(|(g, _, _)| *g == group).map_or(group, |(_, _, name)| name)
}

/// What happens to events when the topic is never created.
const NEVER_APPEARS: &str = "the topic never appears; MinIO's first event then auto-creates it with the broker's defaults (partitions and replication you did not choose), or, with auto.create.topics.enable=false, every event fails";

pub(super) fn check(cx: &mut Cx) {
    let w = cx.w;
    let clusters: Vec<&Object> =
        w.objects.iter().filter(|o| OPERATORS.iter().any(|(g, kind, _)| o.group() == *g && o.kind == *kind)).collect();
    let strimzi: Vec<&Object> = clusters.iter().copied().filter(|o| o.group() == "kafka.strimzi.io").collect();
    let broker = cx.kafkas.iter().find(|k| matches!(k.flavor, Flavor::Broker { .. })).map(|k| cx.kafka_label(k));
    // Strimzi Kafkas whose entity operator is missing, with the objects waiting for it.
    let mut waiting: Vec<(usize, &str, Vec<&str>)> = Vec::new();
    for o in w.objects.iter().filter(|o| o.kind == "KafkaTopic" || o.kind == "KafkaUser") {
        let group = o.group();
        let api = o.at.get("apiVersion").unwrap_or_else(|| o.at.clone());
        let is_topic = o.kind == "KafkaTopic";
        let served = clusters.iter().any(|c| c.group() == group);
        if let Some(other) = clusters.first().filter(|_| !served) {
            let fix = match other.group() {
                "kafka.strimzi.io" => format!(
                    "apiVersion: kafka.strimzi.io/v1beta2, metadata.labels: {{strimzi.io/cluster: {}}}, and spec.partitions / spec.replicas{}",
                    other.name,
                    if group == "kafka.banzaicloud.io" { " (Strimzi ignores banzaicloud's spec.clusterRef and spec.name)" } else { "" }
                ),
                g => format!("write it as {}'s {} (apiVersion {g}/…)", operator(g), o.kind),
            };
            cx.push(
                "kafka-topic-operator",
                api.site(),
                format!(
                    "{} {:?} is written for {} ({}), but the Kafka here is {}'s ({}): no operator here reconciles it, so {}",
                    o.kind,
                    o.name,
                    operator(group),
                    o.api_version,
                    operator(other.group()),
                    other.at.object,
                    if is_topic { NEVER_APPEARS } else { "the user is never created and clients authenticating as it are refused" }
                ),
                fix,
            );
            continue;
        }
        if let (true, Some(broker)) = (clusters.is_empty(), &broker) {
            cx.push(
                "kafka-topic-operator",
                api.site(),
                format!(
                    "{} {:?} needs {}'s operator and a Kafka it manages, but the Kafka here is {broker}, which no operator manages: {}",
                    o.kind,
                    o.name,
                    operator(group),
                    if is_topic { NEVER_APPEARS } else { "the user is never created" }
                ),
                if is_topic {
                    format!("create the topic with `kafka-topics.sh --bootstrap-server <kafka>:9092 --create --topic {} --partitions 3` (e.g. in a Job), or deploy Kafka with Strimzi", topic_name(o))
                } else {
                    "create the user in the broker's SASL configuration (Bitnami: KAFKA_CLIENT_USERS / KAFKA_CLIENT_PASSWORDS)".into()
                },
            );
            continue;
        }
        if group != "kafka.strimzi.io" {
            continue;
        }
        let names: Vec<&str> = strimzi.iter().map(|k| k.name).collect();
        let who = if is_topic { "Topic" } else { "User" };
        let Some(label) = o.label("strimzi.io/cluster") else {
            let at = o.at.dig("metadata.labels").or_else(|| o.at.get("metadata")).unwrap_or_else(|| o.at.clone());
            let name = if names.len() == 1 { names[0] } else { "<your Kafka's name>" };
            cx.push(
                "kafka-topic-cluster-label",
                at.site(),
                format!(
                    "{} {:?} has no strimzi.io/cluster label: Strimzi's {who} Operator only reconciles {}s labelled with its Kafka's name, so {}",
                    o.kind,
                    o.name,
                    o.kind,
                    if is_topic { NEVER_APPEARS } else { "the user is never created and clients authenticating as it are refused" }
                ),
                format!("metadata.labels: {{strimzi.io/cluster: {name}}}"),
            );
            continue;
        };
        let Some(cluster) = label.str() else { continue };
        if strimzi.is_empty() {
            continue;
        }
        // The Kafka of that name in the object's namespace, else one elsewhere (a
        // set may hold one pipeline per namespace, each Kafka named alike).
        let named = || strimzi.iter().filter(|k| k.name == cluster);
        let Some(k) = named().find(|k| k.same_namespace(o.namespace)).or_else(|| named().next()) else {
            cx.push(
                "kafka-topic-cluster-unknown",
                label.site(),
                format!(
                    "strimzi.io/cluster names Kafka {cluster:?}, which these manifests do not define (Kafka here: {}): no {who} Operator watches this {}, so {}",
                    names.join(", "),
                    o.kind,
                    if is_topic { NEVER_APPEARS } else { "the user is never created" }
                ),
                format!("strimzi.io/cluster: {}", names[0]),
            );
            continue;
        };
        if !k.same_namespace(o.namespace) {
            let (here, there) = (o.namespace.unwrap_or(""), k.namespace.unwrap_or(""));
            cx.push(
                "kafka-topic-cluster-unknown",
                label.site(),
                format!(
                    "{} {:?} is in namespace {here:?}, but Kafka/{cluster} is in {there:?}: its {who} Operator watches only {there:?}, so {}",
                    o.kind,
                    o.name,
                    if is_topic { NEVER_APPEARS } else { "the user is never created" }
                ),
                format!("metadata.namespace: {there}"),
            );
            continue;
        }
        let index = w.objects.iter().position(|x| std::ptr::eq(x, *k)).unwrap_or(0);
        let disabled = cx.kafkas.iter().any(|kafka| {
            kafka.object == index && matches!(kafka.flavor, Flavor::Strimzi { topic_operator, user_operator } if !(if is_topic { topic_operator } else { user_operator }))
        });
        if disabled {
            let key = if is_topic { "topicOperator" } else { "userOperator" };
            match waiting.iter_mut().find(|(i, k, _)| *i == index && *k == key) {
                Some((_, _, names)) => names.push(o.name),
                None => waiting.push((index, key, vec![o.name])),
            }
        }
    }
    for (index, key, names) in waiting {
        let k = &w.objects[index];
        let at = k.at.dig("spec.entityOperator").or_else(|| k.at.get("spec")).unwrap_or_else(|| k.at.clone());
        let (what, effect) =
            if key == "topicOperator" { ("KafkaTopics", NEVER_APPEARS) } else { ("KafkaUsers", "the users are never created") };
        cx.push(
            "kafka-topic-operator-disabled",
            at.site(),
            format!("Kafka/{} has no spec.entityOperator.{key}, so nothing reconciles its {what} ({}): {effect}", k.name, names.join(", ")),
            "spec.entityOperator: {topicOperator: {}, userOperator: {}}".into(),
        );
    }
    topic_agreement(cx);
}

/// The topic a KafkaTopic creates.
fn topic_name<'a>(o: &Object<'a>) -> &'a str {
    o.at.dig("spec.topicName").or_else(|| o.at.dig("spec.name")).and_then(|n| n.str()).unwrap_or(o.name)
}

fn topic_agreement(cx: &mut Cx) {
    let w = cx.w;
    let defined: Vec<&str> = w.of_kind("KafkaTopic").map(topic_name).collect();
    let mut written: Vec<(String, String)> = Vec::new();
    let mut found = Vec::new();
    for t in &cx.targets {
        let m = &cx.minios[t.minio];
        if !t.is_on(m, "ENABLE") {
            continue;
        }
        let Some(var) = t.var(m, "TOPIC") else { continue };
        let Some(topic) = var.value.clone() else { continue };
        written.push((topic.clone(), t.describe()));
        if !defined.is_empty() && !defined.contains(&topic.as_str()) {
            found.push((
                "topic-undefined",
                var.at.site(),
                format!(
                    "{} writes to topic {topic:?}, which no KafkaTopic defines (topics: {}): Kafka auto-creates it with the broker's defaults (or refuses it, with auto.create.topics.enable=false), and a processor reading a defined topic gets nothing",
                    t.describe(),
                    defined.join(", ")
                ),
                format!("{}: {}", t.var_name("TOPIC"), defined[0]),
            ));
        }
    }
    for c in cx.processors() {
        let Some(var) = c.var("KAFKA_TOPIC") else { continue };
        let Some(topic) = var.value.as_deref() else { continue };
        if !written.is_empty() && !written.iter().any(|(t, _)| t == topic) {
            let (theirs, who) = &written[0];
            found.push((
                "topic-mismatch",
                var.at.site(),
                format!(
                    "the processor reads topic {topic:?}, but {who} writes its events to {theirs:?}: the processor never sees an event"
                ),
                format!("KAFKA_TOPIC: {theirs}"),
            ));
        } else if written.is_empty() && !defined.is_empty() && !defined.contains(&topic) {
            found.push((
                "topic-undefined",
                var.at.site(),
                format!(
                    "the processor reads topic {topic:?}, which no KafkaTopic defines (topics: {}): it waits on a topic nobody writes to",
                    defined.join(", ")
                ),
                format!("KAFKA_TOPIC: {}", defined[0]),
            ));
        }
    }
    for (rule, site, message, fix) in found {
        cx.push(rule, site, message, fix);
    }
}
