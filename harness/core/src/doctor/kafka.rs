//! Kafka's half of the chain: what answers at a bootstrap address (the same check
//! serves MinIO's `brokers=` and the processor's bootstrap), whether the brokers
//! it advertises are reachable, the topic, and the consumer group reading it.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::groups::GroupInfo;

use super::kafka_wire::{probe, Advertised, Listener, ProbeError, TopicState};
use super::{addresses, Finding, Link, Notes, Severity, Target};
use crate::services::kafka::helper_client_config;

/// How a client talks to a listener, to compare with what the listener wants.
pub(super) struct ListenerUse {
    pub sasl: bool,
    pub tls: bool,
    /// "MinIO" or "the processor".
    pub client: &'static str,
    /// The setting that holds the address (`notify_kafka:1 brokers`).
    pub setting: String,
}

/// What `addr` is, judged for `uses`, and (for a PLAINTEXT listener) whether the
/// brokers it advertises answer. Findings go to `link`; advertised ones to
/// [`Link::AdvertisedListeners`].
pub(super) async fn listener_verdict(addr: &str, uses: &ListenerUse, t: &Target, fix: &str, link: Link) -> Vec<Finding> {
    listener_check(addr, uses, t, fix, link).await.0
}

async fn listener_check(addr: &str, uses: &ListenerUse, t: &Target, fix: &str, link: Link) -> (Vec<Finding>, Option<TopicState>) {
    let check = format!("{} → {addr} ({})", uses.client, uses.setting);
    let client = uses.client;
    let answer = probe(addr, Some(&t.topic), t.probe_timeout).await;
    let finding = match answer {
        Err(e @ ProbeError::Silent(_)) => Finding::error(link, check, e.to_string())
            .because(format!(
                "{addr} is not a Kafka listener: every Kafka listener answers ApiVersions at once, and this one keeps the connection \
                 open without a word (an HTTP server waiting for a whole request line, as Go's servers do: MinIO's console, \
                 Prometheus, Grafana); {client}'s Kafka client only times out"
            ))
            .fix(fix),
        Err(e) => {
            let cause = match e {
                ProbeError::Refused => "nothing listens on that port",
                ProbeError::Unresolvable(_) => "the host name does not resolve here",
                ProbeError::Timeout(_) => "the address swallows connections or requests (a firewall, a wrong host, or a port that is not Kafka's)",
                _ => "the address cannot be reached",
            };
            Finding::error(link, check, e.to_string()).because(cause).fix(fix)
        }
        Ok(Listener::Http { status_line }) => Finding::error(link, check, format!("an HTTP server answered Kafka's ApiVersions request: {status_line:?}"))
            .because(format!(
                "{addr} is not a Kafka listener (an HTTP port, e.g. a Service's 8080); {client}'s Kafka client only says \
                 \"client has run out of available brokers to talk to … i/o timeout\"",
            ))
            .fix(fix),
        Ok(Listener::NotKafka { first_bytes }) => {
            Finding::error(link, check, format!("answered with bytes that are no Kafka response: {first_bytes}")).because(format!("{addr} is not a Kafka listener")).fix(fix)
        }
        Ok(Listener::Sasl { mechanisms }) if !uses.sasl => Finding::error(link, check, format!("the listener wants a SASL handshake (mechanisms: {})", mechanisms.join(", ")))
            .because(format!(
                "a SASL listener and a PLAINTEXT client: the broker closes the connection and logs \"Unexpected Kafka request of type METADATA during SASL handshake\"; {client} sees only timeouts"
            ))
            .fix(if client == "MinIO" {
                format!(
                    "{} sasl=on sasl_mechanism={} sasl_username=USER sasl_password=PASSWORD, or point it at a PLAINTEXT listener",
                    fix.split(" brokers=").next().unwrap_or(fix),
                    mechanisms.first().map(|m| m.to_ascii_lowercase()).unwrap_or_else(|| "plain".into())
                )
            } else {
                "give the processor SASL settings (security.protocol=SASL_PLAINTEXT, sasl.mechanism, username, password), or a PLAINTEXT listener".to_string()
            }),
        Ok(Listener::Sasl { mechanisms }) => Finding::ok(link, check, format!("a SASL listener ({}), and {client} uses SASL", mechanisms.join(", "))),
        Ok(Listener::Tls) if !uses.tls => Finding::error(link, check, "a TLS listener answered with a TLS alert")
            .because(format!("{client} speaks plaintext to a TLS listener"))
            .fix(if client == "MinIO" { format!("{} tls=on (and tls_skip_verify=on for a self-signed CA)", fix.split(" brokers=").next().unwrap_or(fix)) } else { fix.to_string() }),
        Ok(Listener::Tls) => Finding::ok(link, check, format!("a TLS listener, and {client} uses TLS")),
        Ok(Listener::ClosedOnRequest) => Finding::error(link, check, "the listener closed the connection on Kafka's ApiVersions request")
            .because("a TLS listener that sends no alert, or a listener that refuses this client")
            .fix(fix),
        Ok(Listener::Plaintext { .. }) if uses.sasl || uses.tls => Finding::error(
            link,
            check,
            format!("a PLAINTEXT listener, but {client} is set to use {}", if uses.sasl { "SASL" } else { "TLS" }),
        )
        .because("the broker answers a SASL or TLS handshake on a PLAINTEXT listener with an error or garbage; nothing is delivered")
        .fix(if client == "MinIO" { format!("{} sasl=off tls=off", fix.split(" brokers=").next().unwrap_or(fix)) } else { fix.to_string() }),
        Ok(Listener::Plaintext { brokers, topic }) => {
            let mut out = vec![Finding::ok(link, check, format!("a PLAINTEXT Kafka listener; it advertises {}", shown(&brokers)))];
            out.extend(advertised(addr, &brokers, uses, t).await);
            return (out, topic);
        }
    };
    (vec![finding], None)
}

fn shown(brokers: &[Advertised]) -> String {
    let mut listed = brokers.iter().take(MAX_ADVERTISED).map(|b| format!("broker {} at {}", b.node_id, b.address())).collect::<Vec<_>>();
    if brokers.len() > MAX_ADVERTISED {
        listed.push(format!("and {} more", brokers.len() - MAX_ADVERTISED));
    }
    listed.join(", ")
}

/// At most this many advertised brokers are probed: the list comes from the wire,
/// and each probe may take the whole timeout.
const MAX_ADVERTISED: usize = 32;

/// Bootstrap worked; every later request goes to the advertised addresses. They
/// are probed all at once, so the check takes one probe's time however many there are.
async fn advertised(bootstrap: &str, brokers: &[Advertised], uses: &ListenerUse, t: &Target) -> Vec<Finding> {
    let probed = &brokers[..brokers.len().min(MAX_ADVERTISED)];
    let answers = futures::future::join_all(probed.iter().map(|b| async move { probe(&b.address(), None, t.probe_timeout).await })).await;
    let mut out = Vec::new();
    for (b, answer) in probed.iter().zip(answers) {
        let addr = b.address();
        let check = format!("{} → broker {} advertised by {bootstrap} as {addr}", uses.client, b.node_id);
        match answer {
            Ok(Listener::Plaintext { .. }) => out.push(Finding::ok(Link::AdvertisedListeners, check, "reachable, a PLAINTEXT listener")),
            other => {
                let seen = match other {
                    Err(e) => e.to_string(),
                    Ok(l) => format!("{l:?}"),
                };
                out.push(
                    Finding::error(Link::AdvertisedListeners, check, format!("{addr}: {seen}"))
                        .because(format!(
                            "bootstrap from {bootstrap} works, but the broker advertises {addr}, which {} cannot use: everything after bootstrap times out",
                            uses.client
                        ))
                        .fix(format!(
                            "make the listener behind {bootstrap} advertise an address its clients reach (advertised.listeners=NAME://host:port; \
                             Bitnami: KAFKA_CFG_ADVERTISED_LISTENERS; Strimzi: the listener's configuration.brokers[].advertisedHost/advertisedPort; \
                             in a cluster: the Service's DNS name)"
                        )),
                );
            }
        }
    }
    if brokers.len() > MAX_ADVERTISED {
        out.push(Finding::warning(
            Link::AdvertisedListeners,
            format!("{} → the brokers advertised by {bootstrap}", uses.client),
            format!("{} brokers advertised; the first {MAX_ADVERTISED} were probed, the others were not", brokers.len()),
        ));
    }
    out
}

/// The processor's side: bootstrap, advertised listeners, topic, consumer group.
/// The topic's partition count when it exists.
pub(super) async fn check(t: &Target, notes: &mut Notes) -> Option<usize> {
    let uses = ListenerUse { sasl: false, tls: false, client: "the processor", setting: "KAFKA_BOOTSTRAP_SERVERS".into() };
    let fix = format!("give KAFKA_BOOTSTRAP_SERVERS a PLAINTEXT Kafka listener (now {})", t.kafka_bootstrap);
    let mut topic = None;
    for addr in addresses(&t.kafka_bootstrap) {
        let (findings, seen) = listener_check(&addr, &uses, t, &fix, Link::KafkaBootstrap).await;
        for f in findings {
            notes.push(f);
        }
        topic = topic.or(seen);
    }
    if notes.has_error(Link::KafkaBootstrap) || notes.has_error(Link::AdvertisedListeners) {
        notes.push(Finding::skipped(Link::Topic, format!("topic {}", t.topic), "Kafka is not reachable as a client would use it"));
        notes.push(Finding::skipped(Link::ConsumerGroup, "consumer group", "Kafka is not reachable as a client would use it"));
        return None;
    }
    let check = format!("topic {}", t.topic);
    let Some(topic) = topic else {
        notes.push(Finding::skipped(Link::Topic, check, "the listener gave no topic metadata"));
        return None;
    };
    let partitions = match topic.error_code {
        0 if topic.leaderless == 0 => {
            notes.push(Finding::ok(Link::Topic, check, format!("{} partitions, each with a leader", topic.partitions)));
            topic.partitions
        }
        0 => {
            notes.push(
                Finding::error(Link::Topic, check, format!("{} of {} partitions have no leader", topic.leaderless, topic.partitions))
                    .because("a partition without a leader accepts no events: a broker holding it is down")
                    .fix("start the brokers that hold those partitions (kafka-topics.sh --describe shows them)"),
            );
            topic.partitions
        }
        3 => {
            notes.push(
                Finding::error(Link::Topic, check, "UNKNOWN_TOPIC_OR_PARTITION: the topic does not exist")
                    .because("nothing was created under that name: with auto-creation off MinIO's events have nowhere to go; with it on, the topic appears with broker defaults (1 partition). A Strimzi KafkaTopic without the strimzi.io/cluster label, or written for another operator, is never turned into a topic")
                    .fix(format!(
                        "kafka-topics.sh --bootstrap-server {} --create --topic {} --partitions 3, or a KafkaTopic (apiVersion kafka.strimzi.io/v1beta2) with metadata.labels strimzi.io/cluster: <your Kafka's name>",
                        t.kafka_bootstrap, t.topic
                    )),
            );
            return None;
        }
        code => {
            notes.push(
                Finding::error(Link::Topic, check, format!("Kafka error code {code} for the topic"))
                    .because("the broker refuses the topic's metadata (e.g. authorization)"),
            );
            return None;
        }
    };
    notes.push(group_finding(t).await);
    Some(partitions)
}

/// The consumer group reading the topic: members, and lag.
async fn group_finding(t: &Target) -> Finding {
    let (bootstrap, topic, wanted, timeout) = (t.kafka_bootstrap.clone(), t.topic.clone(), t.group.clone(), t.probe_timeout);
    let looked = tokio::task::spawn_blocking(move || groups_reading(&bootstrap, &topic, wanted.as_deref(), timeout)).await;
    let check = match &t.group {
        Some(g) => format!("consumer group {g} reads {}", t.topic),
        None => format!("a consumer group reads {}", t.topic),
    };
    let fix = "start the processor and read its log: it must subscribe to the topic with the group it is given (KAFKA_GROUP_ID); \
               in Kubernetes: kubectl get pods, kubectl logs deploy/<processor> --previous for a crash loop";
    match looked {
        Err(e) => Finding::skipped(Link::ConsumerGroup, check, format!("the group lookup failed: {e}")),
        Ok(Err(e)) => Finding::error(Link::ConsumerGroup, check, e).because("Kafka did not list the consumer groups"),
        Ok(Ok(GroupsSeen { readers, others })) => match readers.first() {
            Some(g) if g.members > 0 => Finding::ok(
                Link::ConsumerGroup,
                check,
                format!(
                    "group {} ({}), {} member(s), lag {}",
                    g.name,
                    g.state,
                    g.members,
                    g.lag.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into())
                ),
            ),
            Some(g) => Finding::error(
                Link::ConsumerGroup,
                check,
                format!(
                    "group {} is {} with no member; lag {}",
                    g.name,
                    g.state,
                    g.lag.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into())
                ),
            )
            .because("no processor is consuming: it is not running, crash-loops, or left the group")
            .fix(fix),
            None => Finding::error(
                Link::ConsumerGroup,
                check,
                if others.is_empty() {
                    "no consumer group exists".to_string()
                } else {
                    format!("no group reads it; groups: {}", others.join(", "))
                },
            )
            .because("no processor ever joined a group on this topic: it is not running, never subscribed, or reads another topic")
            .fix(fix),
        },
    }
}

struct GroupSeen {
    name: String,
    state: String,
    members: usize,
    lag: Option<i64>,
}

struct GroupsSeen {
    /// Groups reading the topic (or the named group, whatever it reads).
    readers: Vec<GroupSeen>,
    /// Other groups, with what they read.
    others: Vec<String>,
}

fn groups_reading(bootstrap: &str, topic: &str, wanted: Option<&str>, timeout: Duration) -> Result<GroupsSeen, String> {
    let client: BaseConsumer = helper_client_config(bootstrap).create().map_err(|e| format!("Kafka client: {e}"))?;
    let list = client.fetch_group_list(wanted, timeout).map_err(|e| format!("listing groups: {e}"))?;
    let (mut readers, mut others) = (Vec::new(), Vec::new());
    for g in list.groups().iter().filter(|g| !g.name().starts_with("_harness") && !g.name().starts_with("harness-observer")) {
        let topics = assigned_topics(g);
        let reads = topics.iter().any(|t| t == topic);
        // The group asked for counts as a reader unless its members are assigned
        // other topics only: a processor subscribed to the wrong topic is no reader,
        // and saying so now spares the canary's wait for a thumbnail that never comes.
        if reads || (wanted == Some(g.name()) && topics.is_empty()) {
            readers.push(GroupSeen { name: g.name().to_string(), state: g.state().to_string(), members: g.members().len(), lag: None });
        } else {
            others.push(format!("{} ({})", g.name(), if topics.is_empty() { "no member".to_string() } else { topics.join(", ") }));
        }
    }
    // An empty group has no assignment to tell its topic: one that committed
    // offsets on the topic reads it all the same.
    if wanted.is_none() && readers.is_empty() {
        for g in list.groups().iter().filter(|g| g.members().is_empty()) {
            if lag(bootstrap, g.name(), topic, timeout).is_some() {
                readers.push(GroupSeen { name: g.name().to_string(), state: g.state().to_string(), members: 0, lag: None });
            }
        }
    }
    for r in &mut readers {
        r.lag = lag(bootstrap, &r.name, topic, timeout);
    }
    readers.sort_by_key(|r| std::cmp::Reverse(r.members));
    Ok(GroupsSeen { readers, others })
}

/// Events of `topic` the group has not committed yet; `None` when it committed none.
fn lag(bootstrap: &str, group: &str, topic: &str, timeout: Duration) -> Option<i64> {
    crate::observe::group::GroupReader::connect(bootstrap, group, topic, timeout).ok()?.lag(timeout)
}

/// Topics in the members' assignments (Kafka's ConsumerProtocolAssignment:
/// version i16, then [topic string, [partition i32]]).
fn assigned_topics(g: &GroupInfo) -> Vec<String> {
    let mut topics: Vec<String> = g.members().iter().filter_map(|m| m.assignment()).flat_map(decode_assignment).collect();
    topics.sort();
    topics.dedup();
    topics
}

fn decode_assignment(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 2; // version
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = bytes.get(at..at + n)?;
        at += n;
        Some(s)
    };
    let Some(count) = take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { return out };
    for _ in 0..count.clamp(0, 10_000) {
        let Some(len) = take(2).map(|b| i16::from_be_bytes([b[0], b[1]])) else { break };
        let Some(name) = take(len.max(0) as usize) else { break };
        out.push(String::from_utf8_lossy(name).into_owned());
        let Some(n) = take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { break };
        if take(4 * n.clamp(0, 1_000_000) as usize).is_none() {
            break;
        }
    }
    out
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Skipped => "skipped",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_name_their_topics() {
        // version 1, two topics: "minio-events" [0, 1] and "x" [].
        let mut b = vec![0, 1, 0, 0, 0, 2];
        b.extend([0, 12]);
        b.extend(b"minio-events");
        b.extend([0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
        b.extend([0, 1, b'x', 0, 0, 0, 0]);
        b.extend([0, 0, 0, 0]); // user data
        assert_eq!(decode_assignment(&b), vec!["minio-events", "x"]);
        assert!(decode_assignment(&[0, 1, 0, 0]).is_empty(), "truncated is empty, not a panic");
        assert!(decode_assignment(&[0, 1, 0, 0, 0, 1, 0, 5, b'a']).is_empty(), "a name cut short is dropped");
    }
}
