//! Every fault kind described once, as data: what it targets, what it needs of the
//! environment, what it does, and how the harness proves its effect and its
//! recovery. Validation ([`capability`]), the JSON schema's descriptions, the
//! fault guard and the scheduler (harness-core) all read [`describe`].
//!
//! Adding a kind: a `FaultKind` variant (`raw.rs`) and its entry in [`describe`]
//! (the match is exhaustive, so the build fails until it has one). Only a new
//! [`Action`] or [`Proof`] needs code in harness-core, and there too the matches
//! over them are exhaustive.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Serialize, Serializer};

use super::raw::{EnvKind, FaultKind};
use super::Environment;

/// One service of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Kafka,
    Minio,
    Processor,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Kafka, Service::Minio, Service::Processor];

    /// The name scenario files and reports use: `kafka`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Kafka => "kafka",
            Service::Minio => "minio",
            Service::Processor => "processor",
        }
    }
}

/// A connection between two parts of the pipeline, named `client->server`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Link {
    MinioKafka,
    ProcessorKafka,
    ProcessorMinio,
}

impl Link {
    pub const ALL: [Link; 3] = [Link::MinioKafka, Link::ProcessorKafka, Link::ProcessorMinio];

    pub fn name(self) -> &'static str {
        match self {
            Link::MinioKafka => "minio->kafka",
            Link::ProcessorKafka => "processor->kafka",
            Link::ProcessorMinio => "processor->minio",
        }
    }

    /// The client end and the server end.
    pub fn ends(self) -> (Service, Service) {
        match self {
            Link::MinioKafka => (Service::Minio, Service::Kafka),
            Link::ProcessorKafka => (Service::Processor, Service::Kafka),
            Link::ProcessorMinio => (Service::Processor, Service::Minio),
        }
    }
}

/// What a fault is applied to: a service, or one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Service(Service),
    Link(Link),
}

impl Target {
    pub const KAFKA: Target = Target::Service(Service::Kafka);
    pub const MINIO: Target = Target::Service(Service::Minio);
    pub const PROCESSOR: Target = Target::Service(Service::Processor);

    pub fn name(self) -> &'static str {
        match self {
            Target::Service(s) => s.name(),
            Target::Link(l) => l.name(),
        }
    }

    /// The target a scenario file names, if it names one.
    pub fn parse(name: &str) -> Option<Target> {
        let service = Service::ALL.into_iter().find(|s| s.name() == name).map(Target::Service);
        service.or_else(|| Link::ALL.into_iter().find(|l| l.name() == name).map(Target::Link))
    }

    /// The links it stands for: the link itself, or every link to or from a service.
    pub fn links(self) -> Vec<Link> {
        match self {
            Target::Link(l) => vec![l],
            Target::Service(s) => Link::ALL.into_iter().filter(|l| l.ends().0 == s || l.ends().1 == s).collect(),
        }
    }

    pub fn service(self) -> Option<Service> {
        match self {
            Target::Service(s) => Some(s),
            Target::Link(_) => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl PartialEq<&str> for Target {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// What a fault does to the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The service ends: SIGTERM with its grace, or SIGKILL when `hard`. The heal
    /// starts it again on its ports and data.
    Stop { service: Service, hard: bool },
    /// The service is frozen; the heal resumes it.
    Pause(Service),
    /// The broker is killed and, while it is down, MinIO's queue dir is wiped; the
    /// heal starts the broker again.
    StopAndWipeQueue,
    /// The broker leading partition 0 of the events topic is killed; the heal starts it again.
    KillLeader,
    /// Each broker in turn: SIGTERM, down for `down_for`, started, back in sync.
    RollingRestart,
    /// SIGKILL to the processor; its supervisor starts it again (no heal).
    KillProcessor,
    /// One more processor replica joins the consumer group; it stays (no heal).
    AddReplica,
    /// The target stops answering (a blackhole) until the heal.
    Partition,
    /// The target's links get this treatment until the heal.
    Link(LinkEffect),
    /// Records published to the events topic by the harness, as MinIO would have;
    /// they stay there (no heal).
    Publish(Published),
    /// Every processor replica stopped, the processor group's committed offsets
    /// moved back (an operator's `kafka-consumer-groups --reset-offsets`), the
    /// replicas started again: the heal.
    Rewind,
}

/// What an event fault publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// Exact copies (key, value, headers) of events already on the topic.
    Duplicates,
    /// Records a processor must survive: see `PoisonKind`.
    Poison,
}

/// What a link fault does to the bytes on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEffect {
    Delay,
    Throttle,
    Reset,
}

/// How the harness proves a fault took effect, or that the pipeline recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// The harness's own client path to the service fails (effect) or passes
    /// again (recovery): a produce/consume round trip, or an S3 put/get/delete.
    Client(Service),
    /// The target is unreachable (effect) or reachable (recovery) the way its
    /// clients reach it: through the links' fault proxies where the environment
    /// has them, else through the host's path to the service.
    Reach,
    /// Probes through each of the target's fault proxies see the effect, or clean traffic.
    Links,
    /// Partition 0's leadership moved off the killed broker (effect); the broker is
    /// back in the ISR (recovery).
    Leadership,
    /// Each broker's own stop, start and return to the ISR (a sequence of its own).
    EachBroker,
    /// The processor's supervisor saw the exit (effect) and a new process (recovery).
    Supervisor,
    /// The consumer group gained a member (effect) and is Stable again (recovery).
    GroupMembers,
    /// The broker acknowledged every published record, at its partition and offset.
    Acknowledged,
    /// The processor's consumer group committed past every published record: the
    /// processor took them and went on. After a rewind: past every record it had
    /// committed before, consumed again.
    CommittedPast,
    /// The processor group's committed offsets, read back, are the rewound ones.
    Rewound,
}

/// How many brokers a kind needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Brokers {
    One,
    Cluster,
    Any,
}

/// A fault kind, described.
#[derive(Clone, Copy, Debug)]
pub struct FaultDescription {
    pub kind: FaultKind,
    /// The name scenario files use: `broker_kill`.
    pub key: &'static str,
    /// What it does, for users (the JSON schema's description, `harness faults`).
    pub doc: &'static str,
    /// Every target it may name; the first is the default.
    pub targets: &'static [Target],
    /// Whether `down_for` means anything: the fault holds until a heal.
    pub outage: bool,
    pub brokers: Brokers,
    /// Needs `environment.minio.queue_dir: true`.
    pub needs_queue_dir: bool,
    pub action: Action,
    pub effect: Proof,
    pub recovery: Proof,
}

const KAFKA: &[Target] = &[Target::KAFKA];
const MINIO: &[Target] = &[Target::MINIO];
const PROCESSOR: &[Target] = &[Target::PROCESSOR];
const LINK_FIRST: &[Target] =
    &[Target::Link(Link::MinioKafka), Target::Link(Link::ProcessorKafka), Target::Link(Link::ProcessorMinio), Target::KAFKA, Target::MINIO];
const SERVICE_FIRST: &[Target] =
    &[Target::KAFKA, Target::MINIO, Target::Link(Link::MinioKafka), Target::Link(Link::ProcessorKafka), Target::Link(Link::ProcessorMinio)];

/// The description of `kind`.
pub fn describe(kind: FaultKind) -> FaultDescription {
    use Proof::*;
    let d = |key, doc, targets, action, effect, recovery| FaultDescription {
        kind,
        key,
        doc,
        targets,
        outage: true,
        brokers: Brokers::Any,
        needs_queue_dir: false,
        action,
        effect,
        recovery,
    };
    let stop = |service, hard| Action::Stop { service, hard };
    let one_broker = |d: FaultDescription| FaultDescription { brokers: Brokers::One, ..d };
    let cluster = |d: FaultDescription| FaultDescription { brokers: Brokers::Cluster, ..d };
    let no_outage = |d: FaultDescription| FaultDescription { outage: false, ..d };
    match kind {
        FaultKind::BrokerStop => one_broker(d(
            "broker_stop",
            "The broker gets SIGTERM (controlled shutdown) and is started again on the same\nports and data after `down_for`.",
            KAFKA,
            stop(Service::Kafka, false),
            Client(Service::Kafka),
            Client(Service::Kafka),
        )),
        FaultKind::BrokerKill => one_broker(d(
            "broker_kill",
            "The broker gets SIGKILL and is started again after `down_for`.",
            KAFKA,
            stop(Service::Kafka, true),
            Client(Service::Kafka),
            Client(Service::Kafka),
        )),
        FaultKind::BrokerPause => one_broker(d(
            "broker_pause",
            "The broker gets SIGSTOP and SIGCONT after `down_for`.",
            KAFKA,
            Action::Pause(Service::Kafka),
            Client(Service::Kafka),
            Client(Service::Kafka),
        )),
        FaultKind::ProcessorCrash => no_outage(d(
            "processor_crash",
            "The processor gets SIGKILL; its supervisor starts it again.",
            PROCESSOR,
            Action::KillProcessor,
            Supervisor,
            Supervisor,
        )),
        FaultKind::MinioRestart => d(
            "minio_restart",
            "MinIO gets SIGTERM and is started again on the same port and data after `down_for`.",
            MINIO,
            stop(Service::Minio, false),
            Client(Service::Minio),
            Client(Service::Minio),
        ),
        FaultKind::MinioKill => d(
            "minio_kill",
            "MinIO gets SIGKILL and is started again after `down_for`.",
            MINIO,
            stop(Service::Minio, true),
            Client(Service::Minio),
            Client(Service::Minio),
        ),
        FaultKind::QueueDirLoss => FaultDescription {
            needs_queue_dir: true,
            ..one_broker(d(
                "queue_dir_loss",
                "With `environment.minio.queue_dir: true`: the broker is killed, uploads go on\n(MinIO queues their events), \
                 the queue dir's contents are wiped, the broker\ncomes back after `down_for`. The queued events are lost.",
                KAFKA,
                Action::StopAndWipeQueue,
                Client(Service::Kafka),
                Client(Service::Kafka),
            ))
        },
        FaultKind::Partition => one_broker(d(
            "partition",
            "The target stops answering: bytes are held, not refused (a blackhole), until\nthe heal. Local: through the TCP \
             fault proxy on a link (`minio->kafka`,\n`processor->kafka`, `processor->minio`) or on every link to a service\n\
             (`kafka`, `minio`); containers: the service is disconnected from the network;\nkubernetes: every packet \
             of the service's pod is dropped by iptables in its own network\nnamespace.",
            SERVICE_FIRST,
            Action::Partition,
            Reach,
            Reach,
        )),
        FaultKind::Latency => one_broker(d(
            "latency",
            "Every byte on the link is delayed by `delay` (default 200ms) plus a uniform\njitter of up to `jitter` either way, \
             each direction, order kept.",
            LINK_FIRST,
            Action::Link(LinkEffect::Delay),
            Links,
            Links,
        )),
        FaultKind::Bandwidth => one_broker(d(
            "bandwidth",
            "The link carries at most `bandwidth` (default 256KiB/s) each direction.",
            LINK_FIRST,
            Action::Link(LinkEffect::Throttle),
            Links,
            Links,
        )),
        FaultKind::ConnectionReset => one_broker(d(
            "connection_reset",
            "Open connections on the link are reset (RST) and new ones are reset at\nonce, until the heal.",
            LINK_FIRST,
            Action::Link(LinkEffect::Reset),
            Links,
            Links,
        )),
        FaultKind::LeaderKill => cluster(d(
            "leader_kill",
            "With `environment.kafka.brokers: 3`: the broker leading partition 0 of the\nevents topic gets SIGKILL and starts \
             again after `down_for`; the others elect\na new leader.",
            KAFKA,
            Action::KillLeader,
            Leadership,
            Leadership,
        )),
        FaultKind::RollingRestart => cluster(d(
            "rolling_restart",
            "With `environment.kafka.brokers: 3`: each broker in turn gets SIGTERM, stays\ndown for `down_for`, starts again and \
             must be back in sync before the next.",
            KAFKA,
            Action::RollingRestart,
            EachBroker,
            EachBroker,
        )),
        FaultKind::DuplicateEvents => no_outage(d(
            "duplicate_events",
            "`count` events already on the events topic (default 10, spread over what was\ndelivered) are published again, \
             byte for byte with their keys and headers, as\nMinIO's at-least-once Kafka target does after a timeout. An \
             idempotent processor\nstill writes each thumbnail once.",
            KAFKA,
            Action::Publish(Published::Duplicates),
            Acknowledged,
            CommittedPast,
        )),
        FaultKind::PoisonEvent => no_outage(d(
            "poison_event",
            "Records a processor must survive are published to the events topic: `poison`\nnames them (default all): \
             malformed_json, missing_object (a created object\nthat does not exist), removal (s3:ObjectRemoved:Delete), \
             other_bucket (a created\nobject in another bucket). Proven handled when the processor's group commits\npast them.",
            KAFKA,
            Action::Publish(Published::Poison),
            Acknowledged,
            CommittedPast,
        )),
        FaultKind::Replay => no_outage(d(
            "replay",
            "Every processor replica is stopped (SIGTERM, as for a deploy), the processor's\nconsumer group's committed offsets \
             are moved back by `count` events over the\npartitions (default: all, to the earliest offset), as an operator's\n\
             `kafka-consumer-groups --reset-offsets` does, and the replicas start again. The\nprocessor consumes those events \
             a second time; an idempotent one writes no\nthumbnail twice. No `down_for`: the processor is down only as long as \
             the reset\ntakes.",
            PROCESSOR,
            Action::Rewind,
            Rewound,
            CommittedPast,
        )),
        FaultKind::ProcessorJoin => no_outage(d(
            "processor_join",
            "A second processor replica joins the consumer group (a rebalance); it stays\nuntil the run ends, as a scale-up \
             would. No `down_for`.",
            PROCESSOR,
            Action::AddReplica,
            GroupMembers,
            GroupMembers,
        )),
    }
}

/// One operation an environment may be able to carry out for faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// End a service and start it again.
    Stop(Service),
    /// Freeze a service and resume it.
    Pause(Service),
    /// End and start one broker of a cluster.
    StopBroker,
    /// SIGKILL to the processor (its supervisor restarts it).
    KillProcessor,
    /// Start one more processor replica.
    AddReplica,
    /// Cut a service off the network and connect it again.
    Disconnect(Service),
    /// Partition, delay, limit or reset a link's bytes through its fault proxy.
    LinkProxy,
    /// Wipe MinIO's queue dir (as a folder on the host, or from inside MinIO's pod).
    WipeQueue,
    /// Produce records to the events topic (the harness reaches Kafka as a client).
    Publish,
}

// `Op::Stop(Service::Processor)`: every processor replica stopped and held so
// (under its supervisor, whose history goes on) until it is started again.

impl EnvKind {
    /// The environment's name in scenario files: `local`.
    pub fn name(self) -> &'static str {
        match self {
            EnvKind::Local => "local",
            EnvKind::Containers => "containers",
            EnvKind::Kubernetes => "kubernetes",
            EnvKind::External => "external",
        }
    }

    /// The fault operations this environment carries out (harness-core's
    /// implementation of the environment must support each; a test holds it to it).
    pub fn fault_ops(self) -> &'static [Op] {
        match self {
            EnvKind::Local => &[
                Op::Stop(Service::Kafka),
                Op::Stop(Service::Minio),
                Op::Stop(Service::Processor),
                Op::Pause(Service::Kafka),
                Op::StopBroker,
                Op::KillProcessor,
                Op::AddReplica,
                Op::LinkProxy,
                Op::WipeQueue,
                Op::Publish,
            ],
            EnvKind::Containers => &[
                Op::Stop(Service::Kafka),
                Op::Stop(Service::Minio),
                Op::Stop(Service::Processor),
                Op::Pause(Service::Kafka),
                Op::KillProcessor,
                Op::AddReplica,
                Op::Disconnect(Service::Kafka),
                Op::Disconnect(Service::Minio),
                Op::WipeQueue,
                Op::Publish,
            ],
            // Pods deleted (with grace 0 for a kill) and StatefulSets scaled; the
            // processor's Deployment scaled up, or to zero and back; the broker
            // frozen by SIGSTOP from its pod's signals container; MinIO's queue
            // wiped from its pod's signals container; a service's pod cut off by
            // iptables in its own network namespace (bridge CNI enforces no
            // NetworkPolicy). Not yet: single links (no fault proxy between pods).
            EnvKind::Kubernetes => &[
                Op::Stop(Service::Kafka),
                Op::Stop(Service::Minio),
                Op::Stop(Service::Processor),
                Op::Pause(Service::Kafka),
                Op::KillProcessor,
                Op::AddReplica,
                Op::Disconnect(Service::Kafka),
                Op::Disconnect(Service::Minio),
                Op::WipeQueue,
                Op::Publish,
            ],
            // Someone else's pipeline: the harness controls none of its services; it
            // can only publish to its topic, as any client could.
            EnvKind::External => &[Op::Publish],
        }
    }

    pub fn can(self, op: Op) -> bool {
        self.fault_ops().contains(&op)
    }
}

impl FaultDescription {
    /// The operations its action needs on `target` in `env`, or `None` when no
    /// operation of `env` can carry it out there.
    pub fn ops(&self, target: Target, env: EnvKind) -> Option<Vec<Op>> {
        let ops = match self.action {
            Action::Stop { service, .. } => vec![Op::Stop(service)],
            Action::Pause(service) => vec![Op::Pause(service)],
            Action::StopAndWipeQueue => vec![Op::Stop(Service::Kafka), Op::WipeQueue],
            Action::KillLeader | Action::RollingRestart => vec![Op::StopBroker],
            Action::KillProcessor => vec![Op::KillProcessor],
            Action::AddReplica => vec![Op::AddReplica],
            Action::Publish(_) => vec![Op::Publish],
            Action::Rewind => vec![Op::Stop(Service::Processor)],
            Action::Link(_) => vec![Op::LinkProxy],
            Action::Partition if env.can(Op::LinkProxy) => vec![Op::LinkProxy],
            Action::Partition => vec![Op::Disconnect(target.service()?)],
        };
        ops.iter().all(|op| env.can(*op)).then_some(ops)
    }
}

impl FaultKind {
    /// Every kind, in the order validation messages list them.
    pub const ALL: [FaultKind; 17] = [
        FaultKind::BrokerStop,
        FaultKind::BrokerKill,
        FaultKind::BrokerPause,
        FaultKind::LeaderKill,
        FaultKind::RollingRestart,
        FaultKind::ProcessorCrash,
        FaultKind::MinioRestart,
        FaultKind::MinioKill,
        FaultKind::QueueDirLoss,
        FaultKind::Partition,
        FaultKind::Latency,
        FaultKind::Bandwidth,
        FaultKind::ConnectionReset,
        FaultKind::DuplicateEvents,
        FaultKind::PoisonEvent,
        FaultKind::Replay,
        FaultKind::ProcessorJoin,
    ];

    pub fn describe(self) -> FaultDescription {
        describe(self)
    }

    /// The name scenario files use: `broker_kill`.
    pub fn key(self) -> &'static str {
        describe(self).key
    }

    /// The default target of a fault of this kind.
    pub fn target(self) -> Target {
        describe(self).targets[0]
    }

    /// Every target a fault of this kind may name (the first is the default).
    pub fn targets(self) -> &'static [Target] {
        describe(self).targets
    }

    /// Whether this is a network fault (a link, or every link to a service).
    pub fn is_network(self) -> bool {
        matches!(describe(self).action, Action::Partition | Action::Link(_))
    }

    /// Whether `down_for` means anything for this kind.
    pub fn has_outage(self) -> bool {
        describe(self).outage
    }
}

impl JsonSchema for FaultKind {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("FaultKind")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let variants: Vec<serde_json::Value> = FaultKind::SCHEMA_ORDER
            .iter()
            .map(|k| {
                let d = describe(*k);
                let envs: Vec<&str> = ENVIRONMENTS.iter().filter(|e| d.ops(d.targets[0], **e).is_some()).map(|e| e.name()).collect();
                let description = format!("{}\nInjectable by: {}.", d.doc, envs.join(", "));
                serde_json::json!({ "const": d.key, "description": description, "type": "string" })
            })
            .collect();
        json_schema!({
            "description": "The kinds of fault. Which of them an environment can inject is checked when the\nscenario is validated.",
            "oneOf": variants,
        })
    }
}

/// The environments, in the order messages list them.
pub const ENVIRONMENTS: [EnvKind; 3] = [EnvKind::Local, EnvKind::Containers, EnvKind::Kubernetes];

impl FaultKind {
    /// Declaration order (the schema lists kinds as scenario files have known them).
    const SCHEMA_ORDER: [FaultKind; 17] = [
        FaultKind::BrokerStop,
        FaultKind::BrokerKill,
        FaultKind::BrokerPause,
        FaultKind::ProcessorCrash,
        FaultKind::MinioRestart,
        FaultKind::MinioKill,
        FaultKind::QueueDirLoss,
        FaultKind::Partition,
        FaultKind::Latency,
        FaultKind::Bandwidth,
        FaultKind::ConnectionReset,
        FaultKind::LeaderKill,
        FaultKind::RollingRestart,
        FaultKind::ProcessorJoin,
        FaultKind::DuplicateEvents,
        FaultKind::PoisonEvent,
        FaultKind::Replay,
    ];
}

const QUEUE_DIR_NEEDED: &str = "needs a queue dir to lose: set `environment.minio.queue_dir: true`";

/// Whether `env` (this version) can inject `kind` on `target`; the error says why
/// not and what would make it possible. Read from [`describe`] and
/// [`EnvKind::fault_ops`] alone.
pub fn capability(kind: FaultKind, target: Target, env: &Environment) -> Result<(), String> {
    let d = describe(kind);
    if d.needs_queue_dir && !env.minio_queue_dir {
        return Err(QUEUE_DIR_NEEDED.to_string());
    }
    if env.kind == EnvKind::External && !env.external.as_ref().is_some_and(|e| e.event_faults) {
        return Err(format!(
            "publishes into the topic of a pipeline the harness only checks, which a check must not change unless the \
             scenario says so: add `environment.external.event_faults: true` (injectable there then: {})",
            list(injectable(env.kind, env.kafka_brokers))
        ));
    }
    if env.kind.fault_ops().is_empty() {
        return Err(format!("the {} environment cannot inject faults in this version", env.kind.name()));
    }
    if d.ops(target, env.kind).is_none() {
        if let (Action::Partition, Target::Link(link)) = (d.action, target) {
            return Err(format!(
                "on the link {} needs the local environment's TCP fault proxy; the {} environment \
                 partitions a whole service (`target: kafka` or `target: minio`)",
                link.name(),
                env.kind.name()
            ));
        }
        return Err(format!(
            "cannot be injected by the {} environment of this version; injectable there: {}",
            env.kind.name(),
            list(injectable(env.kind, env.kafka_brokers))
        ));
    }
    let ops = d.ops(target, env.kind).unwrap_or_default();
    let on_the_broker =
        |op: &Op| matches!(op, Op::Stop(Service::Kafka) | Op::Pause(Service::Kafka) | Op::Disconnect(Service::Kafka) | Op::StopBroker);
    if env.kafka_operator.is_some() && ops.iter().any(on_the_broker) {
        return Err(format!(
            "acts on the broker's pod, which Strimzi's cluster operator owns with `environment.kafka.operator: strimzi` \
             (not supported there yet); injectable there: {}",
            list(
                injectable(env.kind, 1)
                    .into_iter()
                    .filter(|k| !describe(*k).ops(k.target(), env.kind).unwrap_or_default().iter().any(on_the_broker))
                    .collect()
            )
        ));
    }
    let cluster = env.kafka_brokers > 1;
    match (d.brokers, cluster) {
        (Brokers::Cluster, false) => Err(format!(
            "needs a three-broker Kafka cluster: set `environment.kafka.brokers: 3`; injectable on one broker: {}",
            list(injectable(env.kind, 1))
        )),
        (Brokers::One, true) if kind.is_network() => Err(format!(
            "network faults need a single broker in this version (each link's fault proxy stands in front of one \
             broker); injectable on three brokers: {}",
            list(injectable(env.kind, 3))
        )),
        (Brokers::One, true) => Err(format!(
            "acts on a single broker; on a three-broker cluster use leader_kill or rolling_restart; injectable \
             there: {}",
            list(injectable(env.kind, 3))
        )),
        _ => Ok(()),
    }
}

/// The kinds `env` injects with `brokers` brokers (and a queue dir), on their default target.
pub fn injectable(env: EnvKind, brokers: u32) -> Vec<FaultKind> {
    let fits = |b: Brokers| match b {
        Brokers::One => brokers == 1,
        Brokers::Cluster => brokers > 1,
        Brokers::Any => true,
    };
    FaultKind::ALL
        .into_iter()
        .filter(|k| {
            let d = describe(*k);
            fits(d.brokers) && d.ops(d.targets[0], env).is_some()
        })
        .collect()
}

fn list(kinds: Vec<FaultKind>) -> String {
    kinds.iter().map(|k| k.key()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_describes_itself_with_its_serde_name() {
        for kind in FaultKind::ALL {
            let d = describe(kind);
            assert_eq!(d.kind, kind);
            let serde_name = serde_json::to_value(kind).unwrap();
            assert_eq!(serde_name, d.key, "{kind:?}");
            assert!(!d.targets.is_empty() && !d.doc.is_empty(), "{kind:?}");
            assert_eq!(Target::parse(d.targets[0].name()), Some(d.targets[0]));
        }
        let mut sorted = FaultKind::SCHEMA_ORDER;
        sorted.sort();
        let mut all = FaultKind::ALL;
        all.sort();
        assert_eq!(sorted, all, "both orders hold every kind once");
    }

    #[test]
    fn the_lists_in_messages_are_the_ones_users_know() {
        let keys = |v: Vec<FaultKind>| list(v);
        assert_eq!(
            keys(injectable(EnvKind::Local, 1)),
            "broker_stop, broker_kill, broker_pause, processor_crash, minio_restart, minio_kill, queue_dir_loss, \
             partition, latency, bandwidth, connection_reset, duplicate_events, poison_event, replay, processor_join"
        );
        assert_eq!(
            keys(injectable(EnvKind::Local, 3)),
            "leader_kill, rolling_restart, processor_crash, minio_restart, minio_kill, duplicate_events, poison_event, replay, \
             processor_join"
        );
        assert_eq!(
            keys(injectable(EnvKind::Containers, 1)),
            "broker_stop, broker_kill, broker_pause, processor_crash, minio_restart, minio_kill, queue_dir_loss, \
             partition, duplicate_events, poison_event, replay, processor_join"
        );
        assert_eq!(
            keys(injectable(EnvKind::Kubernetes, 1)),
            "broker_stop, broker_kill, broker_pause, processor_crash, minio_restart, minio_kill, queue_dir_loss, \
             partition, duplicate_events, poison_event, replay, processor_join"
        );
        assert_eq!(keys(injectable(EnvKind::External, 1)), "duplicate_events, poison_event");
    }

    #[test]
    fn a_service_target_stands_for_its_links() {
        assert_eq!(Target::KAFKA.links(), [Link::MinioKafka, Link::ProcessorKafka]);
        assert_eq!(Target::MINIO.links(), [Link::MinioKafka, Link::ProcessorMinio]);
        assert_eq!(Target::PROCESSOR.links().len(), 2);
        assert_eq!(Target::parse("processor->minio"), Some(Target::Link(Link::ProcessorMinio)));
        assert_eq!(Target::parse("nowhere"), None);
        for kind in FaultKind::ALL.iter().filter(|k| k.is_network()) {
            assert!(kind.targets().iter().all(|t| !t.links().is_empty()), "{kind:?}");
        }
    }

    #[test]
    fn a_partition_without_link_proxies_needs_a_service_target() {
        let d = describe(FaultKind::Partition);
        assert_eq!(d.ops(Target::MINIO, EnvKind::Containers), Some(vec![Op::Disconnect(Service::Minio)]));
        assert_eq!(d.ops(Target::Link(Link::MinioKafka), EnvKind::Containers), None);
        assert_eq!(d.ops(Target::Link(Link::MinioKafka), EnvKind::Local), Some(vec![Op::LinkProxy]));
    }
}
