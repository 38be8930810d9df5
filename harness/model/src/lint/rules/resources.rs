//! Kafka, MinIO and processor containers without resource requests or limits.

use super::Cx;
use crate::lint::objects::Role;
use crate::lint::yaml::At;

const EFFECT: &str = "the scheduler reserves nothing (BestEffort QoS), so on a small node (kind, a laptop) these pods are the first evicted or OOM-killed under load";

fn has_resources(at: Option<&At>) -> bool {
    at.is_some_and(|r| ["requests", "limits"].iter().any(|k| r.get(k).is_some_and(|v| v.is_nonempty())))
}

pub(super) fn check(cx: &mut Cx) {
    let w = cx.w;
    let mut found = Vec::new();
    for c in &w.containers {
        let (what, fix) = match c.role {
            Role::Kafka => ("Kafka", "resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}"),
            Role::Minio => ("MinIO", "resources: {requests: {cpu: 250m, memory: 512Mi}, limits: {memory: 1Gi}}"),
            Role::Processor => ("processor", "resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 512Mi}}"),
            Role::Other => continue,
        };
        let resources = c.at.get("resources");
        if !has_resources(resources.as_ref()) {
            let at = resources.unwrap_or_else(|| c.at.clone());
            found.push((
                at.site(),
                format!("{what} container {} has no resources.requests or limits: {EFFECT}", c.name()),
                fix.to_string(),
            ));
        }
    }
    let kafka_fix = "resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}";
    for k in w.of_kind("Kafka").filter(|k| k.group() == "kafka.strimzi.io") {
        let own = has_resources(k.at.dig("spec.kafka.resources").as_ref());
        let pools: Vec<_> = w
            .of_kind("KafkaNodePool")
            .filter(|p| p.same_namespace(k.namespace) && p.label("strimzi.io/cluster").and_then(|l| l.str()) == Some(k.name))
            .collect();
        if pools.is_empty() && !own {
            let at = k.at.dig("spec.kafka").unwrap_or_else(|| k.at.clone());
            found.push((at.site(), format!("Kafka/{} has no spec.kafka.resources: {EFFECT}", k.name), format!("spec.kafka.{kafka_fix}")));
        }
        for p in pools {
            if !own && !has_resources(p.at.dig("spec.resources").as_ref()) {
                let at = p.at.get("spec").unwrap_or_else(|| p.at.clone());
                found.push((
                    at.site(),
                    format!(
                        "KafkaNodePool/{} (of Kafka/{}) has no spec.resources, nor has the Kafka spec.kafka.resources: {EFFECT}",
                        p.name, k.name
                    ),
                    format!("spec.{kafka_fix}"),
                ));
            }
        }
    }
    for t in w.of_kind("Tenant").filter(|t| t.group() == "minio.min.io") {
        for pool in t.at.dig("spec.pools").map(|p| p.items()).unwrap_or_default() {
            if !has_resources(pool.get("resources").as_ref()) {
                let name = pool.text("name").unwrap_or("?");
                found.push((
                    pool.site(),
                    format!("pool {name} of Tenant/{} has no resources: {EFFECT}", t.name),
                    "resources: {requests: {cpu: 250m, memory: 512Mi}, limits: {memory: 1Gi}}".into(),
                ));
            }
        }
    }
    for (site, message, fix) in found {
        cx.push("resources-missing", site, message, fix);
    }
}
