//! MinIO's half of the chain: the S3 API and credentials, the buckets, the source
//! bucket's notification rules, and the Kafka targets those rules name (state,
//! brokers, topic, SASL/TLS, queue_dir), read through MinIO's admin API.

use aws_sdk_s3::types::{FilterRuleName, QueueConfiguration};

use super::kafka::{listener_verdict, ListenerUse};
use super::minio_admin::{Admin, AdminError, KafkaTarget, TargetState};
use super::{addresses, Finding, Link, Notes, Target};
use crate::services::endpoints::S3Credentials;
use crate::services::s3::{describe_sdk_error, s3_client};

/// `ALIAS` in the `mc` lines of fix hints: the student's own alias for this MinIO.
pub(super) const ALIAS: &str = "ALIAS";

/// Checks MinIO; the S3 client when the S3 API answers with valid credentials, and
/// the key filter of the source bucket's first Kafka rule (the canary's route).
pub(super) async fn check(t: &Target, credentials: &S3Credentials, notes: &mut Notes) -> Option<(aws_sdk_s3::Client, Rule)> {
    let s3 = s3_client(&t.s3_endpoint, credentials);
    let listed = tokio::time::timeout(t.probe_timeout, s3.list_buckets().send()).await;
    let buckets: Vec<String> = match listed {
        Err(_) => {
            notes.push(
                Finding::error(Link::S3, format!("S3 API at {}", t.s3_endpoint), format!("no answer within {:?}", t.probe_timeout))
                    .because("MinIO is not reachable at that address from here (a wrong host or port, or a firewall)")
                    .fix("give the S3 endpoint MinIO's API listens on (`--address`, default :9000), not its console port"),
            );
            return None;
        }
        Ok(Err(e)) => {
            let said = describe_sdk_error(&e);
            let (cause, fix) = s3_cause(&said);
            notes.push(Finding::error(Link::S3, format!("S3 API at {}", t.s3_endpoint), said).because(cause).fix(fix));
            return None;
        }
        Ok(Ok(out)) => out.buckets().iter().filter_map(|b| b.name().map(String::from)).collect(),
    };
    notes.push(Finding::ok(Link::S3, format!("S3 API at {}", t.s3_endpoint), format!("credentials valid; {} buckets", buckets.len())));

    let mut missing = false;
    for bucket in [&t.source_bucket, &t.target_bucket] {
        if buckets.contains(bucket) {
            notes.push(Finding::ok(Link::Buckets, format!("bucket {bucket}"), "exists"));
        } else {
            missing = true;
            notes.push(
                Finding::error(Link::Buckets, format!("bucket {bucket}"), format!("no such bucket; there are: {}", list_or_none(&buckets)))
                    .because("the pipeline cannot read from or write to a bucket that does not exist")
                    .fix(format!("mc mb {ALIAS}/{bucket}")),
            );
        }
    }
    if missing && !buckets.contains(&t.source_bucket) {
        notes.push(Finding::skipped(Link::BucketNotification, "notification rules", "the source bucket does not exist"));
        return None;
    }

    let admin = Admin::new(&t.s3_endpoint, credentials, t.probe_timeout);
    // The ARN a fix should name: this MinIO's own Kafka target (its id may be any name,
    // `PRIMARY` as often as `1`), read with admin rights when the doctor has them.
    let configs = admin.kafka_targets().await;
    let configured = configs.as_ref().ok().and_then(|targets| pick_target(targets, &t.topic));
    let rules = notification_rules(&s3, t, &buckets, configured.as_deref(), notes).await;
    check_targets(t, &admin, configs, &rules, notes).await;
    let route = rules.into_iter().next().unwrap_or(Rule { target_id: String::new(), prefix: String::new(), suffix: String::new() });
    Some((s3, route))
}

/// Why S3 said no, and what to change.
fn s3_cause(said: &str) -> (String, String) {
    if said.contains("InvalidAccessKeyId") {
        (
            "MinIO knows no user with this access key".into(),
            "use MinIO's root user (MINIO_ROOT_USER) or a user made with `mc admin user add`".into(),
        )
    } else if said.contains("SignatureDoesNotMatch") {
        (
            "the secret key does not belong to the access key".into(),
            "use the secret key of that user (MINIO_ROOT_PASSWORD for the root user)".into(),
        )
    } else if said.contains("AccessDenied") {
        ("the user may not list buckets".into(), "give the user a policy with s3:ListAllMyBuckets, or use the root user".into())
    } else if said.contains("refused") {
        ("nothing listens at the S3 endpoint".into(), "start MinIO, or give the address and port its API listens on (default :9000)".into())
    } else {
        (
            "the S3 API did not answer as MinIO does".into(),
            "check the endpoint is MinIO's S3 API (http://host:9000), not its console".into(),
        )
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// A notification rule of the source bucket that sends object-created events to a
/// Kafka target.
pub(super) struct Rule {
    /// The target's id (`1` of `arn:minio:sqs::1:kafka`).
    pub target_id: String,
    pub prefix: String,
    pub suffix: String,
}

/// The source bucket's rules that announce uploads to a Kafka target. When there is
/// none, says why: no rule at all, a rule for other events, or rules on another bucket.
async fn notification_rules(
    s3: &aws_sdk_s3::Client,
    t: &Target,
    buckets: &[String],
    configured: Option<&str>,
    notes: &mut Notes,
) -> Vec<Rule> {
    let check = format!("bucket {} announces uploads", t.source_bucket);
    let queues = match queue_configs(s3, &t.source_bucket, t).await {
        Ok(q) => q,
        Err(e) => {
            notes.push(
                Finding::error(Link::BucketNotification, check, e).because("MinIO did not return the bucket's notification configuration"),
            );
            return Vec::new();
        }
    };
    let mut rules = Vec::new();
    let mut other_events = Vec::new();
    for q in &queues {
        let arn = q.queue_arn();
        let events: Vec<&str> = q.events().iter().map(|e| e.as_str()).collect();
        let Some(target_id) = kafka_target_id(arn) else { continue };
        if !events.iter().any(|e| matches!(*e, "s3:ObjectCreated:*" | "s3:ObjectCreated:Put")) {
            other_events.push(format!("{arn} for {}", events.join(", ")));
            continue;
        }
        let (mut prefix, mut suffix) = (String::new(), String::new());
        for r in q.filter().and_then(|f| f.key()).map(|k| k.filter_rules()).unwrap_or_default() {
            match r.name() {
                Some(FilterRuleName::Prefix) => prefix = r.value().unwrap_or_default().to_string(),
                Some(FilterRuleName::Suffix) => suffix = r.value().unwrap_or_default().to_string(),
                _ => {}
            }
        }
        rules.push(Rule { target_id: target_id.to_string(), prefix, suffix });
    }
    let mut elsewhere = Vec::new();
    let mut elsewhere_arn = None;
    if rules.is_empty() {
        for b in buckets.iter().filter(|b| **b != t.source_bucket).take(20) {
            if let Ok(q) = queue_configs(s3, b, t).await {
                if let Some(arn) = q.iter().map(|q| q.queue_arn()).find(|arn| kafka_target_id(arn).is_some()) {
                    elsewhere.push(b.clone());
                    elsewhere_arn.get_or_insert_with(|| arn.to_string());
                }
            }
        }
    }
    let arn = arn_for_fix(rules.first().map(|r| r.target_id.as_str()), elsewhere_arn, configured);
    let add = format!("mc event add {ALIAS}/{} {arn} --event put", t.source_bucket);
    if rules.is_empty() {
        let (evidence, cause) = if !other_events.is_empty() {
            (format!("rules exist but none for uploads: {}", other_events.join("; ")), "uploads (s3:ObjectCreated:Put) publish no event")
        } else if !elsewhere.is_empty() {
            (
                format!("no Kafka rule on {}, but on: {}", t.source_bucket, elsewhere.join(", ")),
                "the notification was added to another bucket than the one images are uploaded to",
            )
        } else {
            (format!("bucket {} has no notification rule for a Kafka target", t.source_bucket), "uploads publish no event at all")
        };
        notes.push(Finding::error(Link::BucketNotification, check, evidence).because(cause).fix(add));
        return rules;
    }
    for r in &rules {
        let shown = format!("uploads → arn:minio:sqs::{}:kafka", r.target_id);
        if r.prefix.is_empty() && r.suffix.is_empty() {
            notes.push(Finding::ok(Link::BucketNotification, check.clone(), shown));
        } else {
            notes.push(
                Finding::warning(
                    Link::BucketNotification,
                    check.clone(),
                    format!("{shown}, only keys with prefix {:?} and suffix {:?}", r.prefix, r.suffix),
                )
                .because("uploads whose key does not match the filter publish no event (a `.jpg` rule misses `.jpeg` and `.png`)")
                .fix(format!(
                    "drop the filter: mc event rm {ALIAS}/{} arn:minio:sqs::{}:kafka --force, then {add}",
                    t.source_bucket, r.target_id
                )),
            );
        }
    }
    rules
}

async fn queue_configs(s3: &aws_sdk_s3::Client, bucket: &str, t: &Target) -> Result<Vec<QueueConfiguration>, String> {
    match tokio::time::timeout(t.probe_timeout, s3.get_bucket_notification_configuration().bucket(bucket).send()).await {
        Err(_) => Err(format!("no answer within {:?}", t.probe_timeout)),
        Ok(Err(e)) => Err(describe_sdk_error(&e)),
        Ok(Ok(c)) => Ok(c.queue_configurations().to_vec()),
    }
}

/// The ARN a rule the doctor suggests must name, a target this MinIO has: the one a
/// rule of the source bucket uses, else one a rule on another bucket uses, else the
/// one its configuration has, else the first id MinIO gives (`1`).
fn arn_for_fix(rule_target: Option<&str>, elsewhere_arn: Option<String>, configured: Option<&str>) -> String {
    rule_target
        .map(|id| format!("arn:minio:sqs::{id}:kafka"))
        .or(elsewhere_arn)
        .or_else(|| configured.map(|id| format!("arn:minio:sqs::{id}:kafka")))
        .unwrap_or_else(|| "arn:minio:sqs::1:kafka".to_string())
}

/// The Kafka target a new rule should use: an enabled one publishing to `topic`, else
/// any enabled one.
fn pick_target(targets: &[KafkaTarget], topic: &str) -> Option<String> {
    let enabled = || targets.iter().filter(|k| k.enabled);
    enabled().find(|k| k.topic == topic).or_else(|| enabled().next()).map(|k| k.id.clone())
}

/// `arn:minio:sqs:<region>:<id>:kafka` → `<id>`.
fn kafka_target_id(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", "minio", "sqs", _region, id, "kafka"] => Some(id),
        _ => None,
    }
}

/// The Kafka targets the rules name: online, same topic, a real Kafka listener
/// that speaks what the target speaks, and a queue_dir. `configs`: MinIO's
/// configuration of its Kafka targets, as the admin API gave it.
async fn check_targets(t: &Target, admin: &Admin, configs: Result<Vec<KafkaTarget>, AdminError>, rules: &[Rule], notes: &mut Notes) {
    // The targets the rules name (else every enabled one), read from the configuration.
    let mut ids: Vec<String> = rules.iter().map(|r| r.target_id.clone()).collect();
    if let (true, Ok(c)) = (ids.is_empty(), &configs) {
        ids = c.iter().filter(|c| c.enabled).map(|c| c.id.clone()).collect();
    }
    ids.sort();
    ids.dedup();
    // The server info asks every target for its state, and a target whose broker never
    // answers holds it past the timeout: its silence says nothing about rights, and the
    // configuration (read without asking the targets) still names the brokers to probe.
    // So the brokers are probed while the server info is asked, not after its timeout.
    let probes = async {
        let Ok(configs) = &configs else { return Vec::new() };
        let targets = configs.iter().filter(|c| ids.contains(&c.id));
        futures::future::join_all(targets.map(|cfg| async move { (cfg.id.clone(), probe_brokers(t, cfg).await) })).await
    };
    let (states, mut probed) = tokio::join!(admin.targets(), probes);
    let (states, configs) = match (states, configs) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(AdminError::Request(e)), Ok(c)) => {
            notes.push(
                Finding::skipped(Link::MinioKafkaTarget, "MinIO's Kafka targets' state (admin API server info)", e)
                    .because("MinIO's server info waits on every notification target's state; the brokers are probed below instead"),
            );
            (Vec::new(), c)
        }
        (Err(AdminError::Request(e)), _) | (_, Err(AdminError::Request(e))) => {
            notes.push(
                Finding::skipped(Link::MinioKafkaTarget, "MinIO's Kafka targets (admin API)", e)
                    .because("reading the targets' state and configuration needs admin rights")
                    .fix("run the doctor with MinIO's root credentials, or a user with the admin:ServerInfo and admin:ConfigUpdate policy"),
            );
            return;
        }
        (Err(AdminError::Unreadable(e)), _) | (_, Err(AdminError::Unreadable(e))) => {
            notes.push(
                Finding::skipped(Link::MinioKafkaTarget, "MinIO's Kafka targets (admin API)", e)
                    .because("MinIO answered, but the doctor cannot read its answer, so the targets' state and configuration are unchecked")
                    .fix("read them with `mc admin config get ALIAS notify_kafka` and `mc admin info --json ALIAS`"),
            );
            return;
        }
    };
    if ids.is_empty() {
        notes.push(
            Finding::error(Link::MinioKafkaTarget, "MinIO's Kafka targets", "MinIO has no enabled Kafka target")
                .because("without a notify_kafka target MinIO cannot publish to Kafka")
                .fix(format!("mc admin config set {ALIAS} notify_kafka:1 brokers={} topic={} queue_dir=/data/.events && mc admin service restart {ALIAS}", t.kafka_bootstrap, t.topic)),
        );
        return;
    }
    for id in ids {
        let state = states.iter().find(|s| s.kind == "kafka" && s.id == id);
        let Some(cfg) = configs.iter().find(|c| c.id == id) else {
            notes.push(
                Finding::error(
                    Link::MinioKafkaTarget,
                    format!("Kafka target {id}"),
                    format!("the bucket rule names arn:minio:sqs::{id}:kafka, which is not configured"),
                )
                .because("events for a target that does not exist go nowhere")
                .fix(format!("mc admin config set {ALIAS} notify_kafka:{id} brokers={} topic={}", t.kafka_bootstrap, t.topic)),
            );
            continue;
        };
        let brokers = probed.iter().position(|(p, _)| *p == id).map(|i| probed.swap_remove(i).1).unwrap_or_default();
        check_target(t, cfg, state, brokers, notes);
    }
}

/// What each of a target's brokers answers MinIO's kind of client (see [`listener_verdict`]).
async fn probe_brokers(t: &Target, cfg: &KafkaTarget) -> Vec<Finding> {
    let id = &cfg.id;
    let uses = ListenerUse { sasl: cfg.sasl, tls: cfg.tls, client: "MinIO", setting: format!("notify_kafka:{id} brokers") };
    let fix_brokers = set_target(id, &format!("brokers={}", t.kafka_bootstrap));
    let answers = addresses(&cfg.brokers).into_iter().map(|addr| {
        let (uses, fix) = (&uses, &fix_brokers);
        async move { listener_verdict(&addr, uses, t, fix, Link::MinioKafkaTarget).await }
    });
    futures::future::join_all(answers).await.into_iter().flatten().collect()
}

/// The `mc` line that sets `kv` on Kafka target `id` and restarts MinIO.
fn set_target(id: &str, kv: &str) -> String {
    format!("mc admin config set {ALIAS} notify_kafka:{id} {kv} && mc admin service restart {ALIAS}")
}

/// One target's verdict: its topic, what its brokers answered (probed beforehand), its
/// state in MinIO's server info, its queue_dir.
fn check_target(t: &Target, cfg: &KafkaTarget, state: Option<&TargetState>, brokers: Vec<Finding>, notes: &mut Notes) {
    let id = &cfg.id;
    let name = format!("Kafka target {id} (brokers={}, topic={})", cfg.brokers, cfg.topic);
    let set = |kv: &str| set_target(id, kv);
    let before = notes.findings.len();
    if cfg.topic != t.topic {
        notes.push(
            Finding::error(
                Link::MinioKafkaTarget,
                name.clone(),
                format!("MinIO publishes to topic {:?}; the pipeline reads {:?}", cfg.topic, t.topic),
            )
            .because("the processor never sees events sent to another topic")
            .fix(set(&format!("topic={}", t.topic))),
        );
    }
    for f in brokers {
        notes.push(f);
    }
    let broken_here = notes.findings[before..].iter().any(|f| f.severity == super::Severity::Error);
    match state {
        Some(s) if !s.online && !broken_here => notes.push(
            Finding::error(Link::MinioKafkaTarget, name.clone(), "MinIO's server info reports the target offline")
                .because("MinIO's Kafka client holds no broker connection, although the brokers answer the doctor: MinIO may run where these addresses do not resolve or reach (another host, a pod)")
                .fix("run the doctor from where MinIO runs, or give MinIO an address its own network reaches"),
        ),
        Some(s) if s.online && !broken_here => notes.push(Finding::ok(Link::MinioKafkaTarget, name.clone(), "online")),
        _ => {}
    }
    if cfg.queue_dir.is_empty() {
        notes.push(
            Finding::warning(Link::MinioKafkaTarget, format!("Kafka target {id} queue_dir"), "no queue_dir")
                .because("while Kafka is unreachable MinIO drops the events of uploads instead of keeping them to send later")
                .fix(
                    set("queue_dir=/data/.minio-events queue_limit=100000")
                        + " (in Kubernetes: MINIO_NOTIFY_KAFKA_QUEUE_DIR_<ID> on a path of a persistent volume, not an emptyDir)",
                ),
        );
    } else {
        notes.push(Finding::ok(Link::MinioKafkaTarget, format!("Kafka target {id} queue_dir"), format!("queue_dir={}", cfg.queue_dir)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suggested_rule_names_a_target_this_minio_has() {
        let target = |id: &str, topic: &str, enabled: bool| KafkaTarget {
            id: id.into(),
            enabled,
            brokers: "kafka:9092".into(),
            topic: topic.into(),
            queue_dir: String::new(),
            sasl: false,
            tls: false,
        };
        // A MinIO whose only target is named PRIMARY: `::1:` would be refused by `mc`.
        let configured = pick_target(&[target("PRIMARY", "minio-events", true)], "minio-events");
        assert_eq!(arn_for_fix(None, None, configured.as_deref()), "arn:minio:sqs::PRIMARY:kafka");
        // The target of the pipeline's topic, not a disabled or another topic's one.
        let targets = [target("old", "minio-events", false), target("audit", "audit", true), target("events", "minio-events", true)];
        assert_eq!(pick_target(&targets, "minio-events").as_deref(), Some("events"));
        // A rule on another bucket names the ARN as MinIO wrote it (a region included).
        let other = Some("arn:minio:sqs:us-east-1:PRIMARY:kafka".to_string());
        assert_eq!(arn_for_fix(None, other, Some("x")), "arn:minio:sqs:us-east-1:PRIMARY:kafka");
        assert_eq!(arn_for_fix(Some("2"), None, Some("x")), "arn:minio:sqs::2:kafka");
        assert_eq!(arn_for_fix(None, None, None), "arn:minio:sqs::1:kafka", "nothing known: MinIO's first id");
    }

    #[test]
    fn arns_name_their_kafka_target() {
        assert_eq!(kafka_target_id("arn:minio:sqs::1:kafka"), Some("1"));
        assert_eq!(kafka_target_id("arn:minio:sqs:us-east-1:PRIMARY:kafka"), Some("PRIMARY"));
        assert_eq!(kafka_target_id("arn:minio:sqs::1:webhook"), None);
        assert_eq!(kafka_target_id("garbage"), None);
    }

    #[test]
    fn s3_errors_get_a_cause_and_a_fix() {
        assert!(s3_cause("InvalidAccessKeyId: The Access Key Id you provided does not exist").0.contains("no user"));
        assert!(s3_cause("SignatureDoesNotMatch: …").1.contains("secret key"));
        assert!(s3_cause("dispatch failure: io error: Connection refused").0.contains("nothing listens"));
    }
}
