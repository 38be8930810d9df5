//! A single-broker KRaft Kafka on 127.0.0.1: its config files, start, readiness
//! (a real produce + consume round trip) and topic creation.
//!
//! Kafka 4 is KRaft only, and a release's scripts do no more than
//! `java -cp 'libs/*' kafka.tools.StorageTool format …` then
//! `java -cp 'libs/*' kafka.Kafka server.properties`, so that is what runs here,
//! with a static one-voter controller quorum on its own port.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

pub use super::endpoints::KafkaSasl;
use super::process::{ChildProcess, ChildSpec, ProcessGroup};
use super::ready::ready_or_exit;
use super::ServiceError;

/// Service name: the log is `logs/kafka.log`.
pub const SERVICE: &str = "kafka";
/// Topic of the readiness round trip.
pub const READY_TOPIC: &str = "_harness_ready";

/// The two ports of a combined broker + controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KafkaPorts {
    pub broker: u16,
    pub controller: u16,
}

impl KafkaPorts {
    /// Two free ports from the OS.
    pub fn pick() -> std::io::Result<Self> {
        let ports = super::ports::free_ports(2)?;
        Ok(KafkaPorts { broker: ports[0], controller: ports[1] })
    }

    /// `127.0.0.1:<broker>`, which is also what the broker advertises.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.broker)
    }
}

/// Where and with what Kafka runs.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    pub java: PathBuf,
    /// Directory of Kafka's jars.
    pub libs: PathBuf,
    /// Fresh per start: `config/` and `data/` go below it.
    pub dir: PathBuf,
    pub ready_timeout: Duration,
    /// Listeners besides `PLAINTEXT` (which the harness itself uses).
    pub extra_listeners: Vec<ExtraListener>,
    /// This node's place in a multi-broker cluster; `None` for the single broker.
    pub cluster: Option<ClusterNode>,
}

impl KafkaConfig {
    /// Service and log name: `kafka`, or `kafka-<id>` in a cluster.
    pub fn name(&self) -> String {
        match &self.cluster {
            None => SERVICE.to_string(),
            Some(c) => format!("{SERVICE}-{}", c.node_id),
        }
    }

    /// Replication factor of every topic the harness creates.
    pub fn replication(&self) -> u32 {
        self.cluster.as_ref().map_or(1, |c| c.replication)
    }
}

/// One combined broker + controller of a KRaft cluster on loopback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    pub node_id: u32,
    /// `controller.quorum.voters` of the whole cluster: `1@127.0.0.1:p1,2@…`.
    pub voters: String,
    /// Replication factor of topics (the cluster's size); `min.insync.replicas`
    /// is one less (2 of 3: one broker may be down).
    pub replication: u32,
    /// Every node is formatted with the same cluster id.
    pub cluster_id: String,
}

impl ClusterNode {
    /// The nodes of a cluster on `ports` (one entry per node, ids from 1).
    pub fn cluster(ports: &[KafkaPorts], cluster_id: &str) -> Vec<ClusterNode> {
        let voters = ports.iter().enumerate().map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.controller)).collect::<Vec<_>>().join(",");
        (1..=ports.len() as u32)
            .map(|node_id| ClusterNode {
                node_id,
                voters: voters.clone(),
                replication: ports.len() as u32,
                cluster_id: cluster_id.to_string(),
            })
            .collect()
    }
}

/// A listener of its own for one kind of client, advertising an address that may
/// differ from where it listens: a fault proxy in front of it, or (a
/// misconfiguration on purpose) an address where nothing answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraListener {
    /// Listener name, upper case (`MINIO`, `PROCESSOR`).
    pub name: String,
    /// Loopback port the broker binds.
    pub port: u16,
    /// `host:port` the broker hands to clients that bootstrap through it.
    pub advertised: String,
    /// A SASL_PLAINTEXT listener with mechanism PLAIN and this one user (name,
    /// password), as students' Bitnami charts set up; `None`: PLAINTEXT.
    pub sasl_plain: Option<(String, String)>,
}

/// The `listener.name.<listener>.*` lines of a SASL_PLAINTEXT listener with
/// mechanism PLAIN and one user. Kafka logs such values as `[hidden]`.
fn sasl_plain_listener_properties(listener: &str, user: &str, password: &str) -> String {
    let prefix = format!("listener.name.{}", listener.to_ascii_lowercase());
    format!(
        "{prefix}.sasl.enabled.mechanisms=PLAIN\n\
         {prefix}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
         username=\"{user}\" password=\"{password}\" user_{user}=\"{password}\";\n"
    )
}

/// `server.properties` of a KRaft node on 127.0.0.1: the single broker, or node
/// `cluster.node_id` of a cluster.
pub fn server_properties(ports: KafkaPorts, data_dir: &Path, extra: &[ExtraListener], cluster: Option<&ClusterNode>) -> String {
    let KafkaPorts { broker, controller } = ports;
    let (mut listeners, mut advertised, mut map, mut sasl) = (String::new(), String::new(), String::new(), String::new());
    for l in extra {
        listeners.push_str(&format!(",{}://127.0.0.1:{}", l.name, l.port));
        advertised.push_str(&format!(",{}://{}", l.name, l.advertised));
        match &l.sasl_plain {
            None => map.push_str(&format!(",{}:PLAINTEXT", l.name)),
            Some((user, password)) => {
                map.push_str(&format!(",{}:SASL_PLAINTEXT", l.name));
                sasl.push_str(&sasl_plain_listener_properties(&l.name, user, password));
            }
        }
    }
    let (what, voters, node_id, replication) = match cluster {
        None => ("one combined broker + controller".to_string(), format!("1@127.0.0.1:{controller}"), 1, 1),
        Some(c) => (format!("node {} of a {}-node cluster", c.node_id, c.replication), c.voters.clone(), c.node_id, c.replication),
    };
    format!(
        "# Written by the harness: {what} on loopback.\n\
         controller.quorum.voters={voters}\n\
         listeners=PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}{listeners}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{broker}{advertised}\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{map}\n\
         inter.broker.listener.name=PLAINTEXT\n\
         {sasl}{}",
        common_properties(data_dir, node_id, replication)
    )
}

/// Port of the listener other containers use (advertised under the container's name).
pub const CONTAINER_INTERNAL_PORT: u16 = 9092;
/// Port of the listener the host uses through a published port.
pub const CONTAINER_EXTERNAL_PORT: u16 = 9094;

/// `server.properties` of a one-node KRaft cluster in a container: containers on
/// the run's network reach `INTERNAL` as `<internal_host>:9092`; the host reaches
/// `EXTERNAL` through the port published as `127.0.0.1:<host_port>`. Each
/// listener advertises the address that works for the clients that reach it.
pub fn container_server_properties(internal_host: &str, host_port: u16, data_dir: &Path) -> String {
    container_server_properties_advertising(
        &format!("{internal_host}:{CONTAINER_INTERNAL_PORT}"),
        &format!("127.0.0.1:{host_port}"),
        None,
        data_dir,
    )
}

/// The same broker, advertising `INTERNAL` and `EXTERNAL` as the given
/// `host:port`s (Kubernetes: a Service's cluster IP, and a node's address with
/// the node port). The listeners bind 9092 and 9094 inside the pod or container.
/// With `external_sasl`, `EXTERNAL` is SASL_PLAINTEXT (PLAIN) with that one user:
/// what a node port exposes to anyone who reaches the node.
pub fn container_server_properties_advertising(
    internal: &str,
    external: &str,
    external_sasl: Option<&KafkaSasl>,
    data_dir: &Path,
) -> String {
    let (internal_port, external_port) = (CONTAINER_INTERNAL_PORT, CONTAINER_EXTERNAL_PORT);
    let (external_protocol, sasl) = match external_sasl {
        None => ("PLAINTEXT", String::new()),
        Some(s) => ("SASL_PLAINTEXT", sasl_plain_listener_properties("EXTERNAL", &s.user, &s.password)),
    };
    format!(
        "# Written by the harness: one combined broker + controller in a container.\n\
         controller.quorum.voters=1@localhost:9093\n\
         listeners=INTERNAL://0.0.0.0:{internal_port},EXTERNAL://0.0.0.0:{external_port},CONTROLLER://localhost:9093\n\
         advertised.listeners=INTERNAL://{internal},EXTERNAL://{external}\n\
         listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:{external_protocol},CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=INTERNAL\n\
         {sasl}{}",
        common_properties(data_dir, 1, 1)
    )
}

fn common_properties(data_dir: &Path, node_id: u32, replication: u32) -> String {
    let isr = replication.saturating_sub(1).max(1);
    format!(
        "process.roles=broker,controller\n\
         node.id={node_id}\n\
         controller.listener.names=CONTROLLER\n\
         log.dirs={data}\n\
         num.partitions=1\n\
         default.replication.factor={replication}\n\
         min.insync.replicas={isr}\n\
         offsets.topic.replication.factor={replication}\n\
         offsets.topic.num.partitions=1\n\
         transaction.state.log.replication.factor={replication}\n\
         transaction.state.log.min.isr={isr}\n\
         share.coordinator.state.topic.replication.factor={replication}\n\
         share.coordinator.state.topic.min.isr={isr}\n\
         group.initial.rebalance.delay.ms=0\n\
         auto.create.topics.enable=false\n",
        data = data_dir.display()
    )
}

/// log4j2 config: INFO to stdout (which the harness appends to `kafka.log`).
pub const LOG4J2_PROPERTIES: &str = "\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
";

/// JVM options and classpath, before the main class.
pub fn jvm_args(libs: &Path, log4j_config: &Path) -> Vec<String> {
    vec![
        "-Xms256m".into(),
        "-Xmx768m".into(),
        "-XX:+UseG1GC".into(),
        "-XX:MaxGCPauseMillis=20".into(),
        "-Djava.awt.headless=true".into(),
        format!("-Dlog4j2.configurationFile={}", log4j_config.display()),
        "-cp".into(),
        format!("{}/*", libs.display()),
    ]
}

/// A running, ready Kafka broker.
#[derive(Debug)]
pub struct Kafka {
    process: ChildProcess,
    ports: KafkaPorts,
    ready_in: Duration,
    /// `kafka`, or `kafka-<id>` in a cluster.
    name: String,
    node_id: u32,
    /// Replication factor of the readiness topic (the cluster's size).
    replication: u32,
}

impl Kafka {
    /// Formats a fresh data dir, starts the broker and waits until a message
    /// makes the round trip. On failure nothing of this start is left running.
    pub async fn start(group: &ProcessGroup, cfg: &KafkaConfig, ports: KafkaPorts) -> Result<Kafka, ServiceError> {
        let started = Instant::now();
        let name = cfg.name();
        let service = name.as_str();
        let io = |what: &str, path: &Path| {
            let context = format!("{what} {}", path.display());
            move |e| ServiceError::io(service, context, e)
        };
        match std::fs::remove_dir_all(&cfg.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("removing", &cfg.dir)(e)),
            _ => {}
        }
        let config_dir = cfg.dir.join("config");
        let data_dir = cfg.dir.join("data");
        for dir in [&config_dir, &data_dir] {
            std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        }
        let props = config_dir.join("server.properties");
        std::fs::write(&props, server_properties(ports, &data_dir, &cfg.extra_listeners, cfg.cluster.as_ref()))
            .map_err(io("writing", &props))?;
        let log4j = config_dir.join("log4j2.properties");
        std::fs::write(&log4j, LOG4J2_PROPERTIES).map_err(io("writing", &log4j))?;
        let cluster_id = match &cfg.cluster {
            Some(c) => c.cluster_id.clone(),
            None => super::token::kafka_cluster_id().map_err(|e| ServiceError::io(service, "reading /dev/urandom", e))?,
        };

        let java_with = |main: &str, rest: &[&str]| {
            let mut args = jvm_args(&cfg.libs, &log4j);
            args.push(main.into());
            args.extend(rest.iter().map(|s| s.to_string()));
            ChildSpec { name: name.clone(), program: cfg.java.clone(), args, ..ChildSpec::default() }
        };
        let props_arg = props.display().to_string();
        let mut format =
            group.spawn(&java_with("kafka.tools.StorageTool", &["format", "--cluster-id", &cluster_id, "--config", &props_arg]))?;
        let status = match tokio::time::timeout(cfg.ready_timeout, format.wait()).await {
            Ok(Ok(status)) => status,
            other => {
                let _ = format.kill().await;
                return Err(ServiceError::NotReady {
                    service: name.clone(),
                    timeout: cfg.ready_timeout,
                    detail: match other {
                        Ok(Err(e)) => format!("waiting for the storage format failed: {e}"),
                        _ => "the storage format did not finish".into(),
                    },
                    log: format.log_path().to_path_buf(),
                    tail: format.log_tail(20),
                });
            }
        };
        if !status.success() {
            return Err(ServiceError::Exited {
                service: format!("{name} (storage format)"),
                status: super::process::describe_status(status),
                log: format.log_path().to_path_buf(),
                tail: format.log_tail(20),
            });
        }

        let mut process = group.spawn(&java_with("kafka.Kafka", &[&props_arg]))?;
        let bootstrap = ports.bootstrap();
        let nonce = super::token::hex_token(8).map_err(|e| ServiceError::io(service, "reading /dev/urandom", e))?;
        let remaining = cfg.ready_timeout.saturating_sub(started.elapsed());
        let replication = cfg.replication();
        let ready =
            ready_or_exit(&mut process, service, remaining, Duration::from_millis(200), || round_trip(&bootstrap, &nonce, replication))
                .await;
        if let Err(e) = ready {
            let _ = process.kill().await;
            return Err(e);
        }
        Ok(Kafka { process, ports, ready_in: started.elapsed(), node_id: cfg.cluster.as_ref().map_or(1, |c| c.node_id), name, replication })
    }

    /// Starts the broker again on the same ports, config and data (no format),
    /// after its process exited (a fault stopped or killed it), and waits for the
    /// same produce/consume round trip as [`Kafka::start`]. Returns how long it took.
    pub async fn restart(&mut self, group: &ProcessGroup, cfg: &KafkaConfig) -> Result<Duration, ServiceError> {
        let started = Instant::now();
        let config_dir = cfg.dir.join("config");
        let mut args = jvm_args(&cfg.libs, &config_dir.join("log4j2.properties"));
        args.push("kafka.Kafka".into());
        args.push(config_dir.join("server.properties").display().to_string());
        let spec = ChildSpec { name: self.name.clone(), program: cfg.java.clone(), args, ..ChildSpec::default() };
        let mut process = group.spawn(&spec)?;
        let bootstrap = self.ports.bootstrap();
        let nonce = super::token::hex_token(8).map_err(|e| ServiceError::io(&self.name, "reading /dev/urandom", e))?;
        let replication = self.replication;
        let ready = ready_or_exit(&mut process, &self.name, cfg.ready_timeout, Duration::from_millis(200), || {
            round_trip(&bootstrap, &nonce, replication)
        })
        .await;
        if let Err(e) = ready {
            let _ = process.kill().await;
            return Err(e);
        }
        self.process = process;
        Ok(started.elapsed())
    }

    /// `127.0.0.1:<port>` for clients.
    pub fn bootstrap(&self) -> String {
        self.ports.bootstrap()
    }

    pub fn ports(&self) -> KafkaPorts {
        self.ports
    }

    /// `kafka`, or `kafka-<id>` in a cluster (also its log's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// KRaft node id (1 for the single broker).
    pub fn node_id(&self) -> u32 {
        self.node_id
    }

    /// From spawn of the storage format to the passed round trip.
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    pub fn process(&self) -> &ChildProcess {
        &self.process
    }

    pub fn process_mut(&mut self) -> &mut ChildProcess {
        &mut self.process
    }

    /// SIGTERM (controlled shutdown), SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> std::io::Result<()> {
        self.process.stop(grace).await.map(|_| ())
    }
}

/// The bootstrap addresses whose listener needs SASL, with the credentials: every
/// client the harness makes is built by [`client_config`] from a bootstrap address,
/// so the credentials follow the address into the observers, the canary, the
/// fault probes, the admin and group clients, without each of their (some thirty)
/// signatures carrying them. Entries come and go with the environment that owns
/// the listener ([`SaslAddress`]).
static SASL_ADDRESSES: std::sync::RwLock<Vec<(String, KafkaSasl)>> = std::sync::RwLock::new(Vec::new());

/// While it lives, clients of `bootstrap` authenticate with its credentials.
#[derive(Debug)]
pub struct SaslAddress {
    bootstrap: String,
}

impl SaslAddress {
    pub fn register(bootstrap: &str, sasl: KafkaSasl) -> SaslAddress {
        let mut all = SASL_ADDRESSES.write().unwrap_or_else(|p| p.into_inner());
        all.retain(|(b, _)| b != bootstrap);
        all.push((bootstrap.to_string(), sasl));
        SaslAddress { bootstrap: bootstrap.to_string() }
    }
}

impl Drop for SaslAddress {
    fn drop(&mut self) {
        SASL_ADDRESSES.write().unwrap_or_else(|p| p.into_inner()).retain(|(b, _)| *b != self.bootstrap);
    }
}

/// The credentials registered for `bootstrap`, if its listener needs SASL.
pub fn sasl_for(bootstrap: &str) -> Option<KafkaSasl> {
    SASL_ADDRESSES.read().unwrap_or_else(|p| p.into_inner()).iter().find(|(b, _)| b == bootstrap).map(|(_, s)| s.clone())
}

/// The base of every client the harness makes: `bootstrap.servers`, and SASL when
/// the address was registered as needing it ([`SaslAddress`]).
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap);
    if let Some(sasl) = sasl_for(bootstrap) {
        cfg.set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", &sasl.mechanism)
            .set("sasl.username", &sasl.user)
            .set("sasl.password", &sasl.password);
    }
    cfg
}

/// Config shared by the harness's helper clients: quick reconnects (the broker
/// may just be starting) and no librdkafka error spam while it is.
pub fn helper_client_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = client_config(bootstrap);
    cfg.set("client.id", "harness")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set_log_level(RDKafkaLogLevel::Critical);
    cfg
}

/// Creates `name`; an existing topic counts as created (idempotent retries).
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32, replication: u32, timeout: Duration) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = helper_client_config(bootstrap).create().map_err(|e| format!("admin client: {e}"))?;
    let opts = AdminOptions::new().request_timeout(Some(timeout)).operation_timeout(Some(timeout));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication as i32));
    let results = admin.create_topics([&topic], &opts).await.map_err(|e| format!("create topics request: {e}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("topic {topic}: {code}")),
        }
    }
    Ok(())
}

/// One readiness probe: create the ready topic (replicated `replication` times, so
/// in a cluster it passes only once every broker has registered), produce `nonce`
/// with acks=all, consume it back from the beginning.
pub(crate) async fn round_trip(bootstrap: &str, nonce: &str, replication: u32) -> Result<(), String> {
    const STEP: Duration = Duration::from_secs(5);
    create_topic(bootstrap, READY_TOPIC, 1, replication, STEP).await?;
    let producer: FutureProducer = helper_client_config(bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", "5000")
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    producer
        .send(FutureRecord::to(READY_TOPIC).key("ready").payload(nonce), STEP)
        .await
        .map_err(|(e, _)| format!("produce to {READY_TOPIC}: {e}"))?;
    let consumer: StreamConsumer = helper_client_config(bootstrap)
        .set("group.id", "_harness_ready")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(READY_TOPIC, 0, Offset::Beginning).map_err(|e| format!("assign: {e}"))?;
    consumer.assign(&assignment).map_err(|e| format!("assign: {e}"))?;
    let consumed = tokio::time::timeout(STEP, async {
        loop {
            let msg = consumer.recv().await.map_err(|e| format!("consume from {READY_TOPIC}: {e}"))?;
            if msg.payload() == Some(nonce.as_bytes()) {
                return Ok::<(), String>(());
            }
        }
    })
    .await;
    match consumed {
        Ok(result) => result,
        Err(_) => Err(format!("produced to {READY_TOPIC} but did not consume it back within {STEP:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_describe_one_loopback_kraft_node() {
        let ports = KafkaPorts { broker: 4001, controller: 4002 };
        let text = server_properties(ports, Path::new("/run/kafka/data"), &[], None);
        for line in [
            "process.roles=broker,controller",
            "node.id=1",
            "controller.quorum.voters=1@127.0.0.1:4002",
            "listeners=PLAINTEXT://127.0.0.1:4001,CONTROLLER://127.0.0.1:4002",
            "advertised.listeners=PLAINTEXT://127.0.0.1:4001",
            "controller.listener.names=CONTROLLER",
            "log.dirs=/run/kafka/data",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert_eq!(ports.bootstrap(), "127.0.0.1:4001");
    }

    #[test]
    fn extra_listeners_advertise_their_own_address() {
        let ports = KafkaPorts { broker: 4001, controller: 4002 };
        let extra = [
            ExtraListener { name: "MINIO".into(), port: 4003, advertised: "127.0.0.1:5003".into(), sasl_plain: None },
            ExtraListener { name: "PROCESSOR".into(), port: 4004, advertised: "127.0.0.1:5004".into(), sasl_plain: None },
        ];
        let text = server_properties(ports, Path::new("/d"), &extra, None);
        for line in [
            "listeners=PLAINTEXT://127.0.0.1:4001,CONTROLLER://127.0.0.1:4002,MINIO://127.0.0.1:4003,PROCESSOR://127.0.0.1:4004",
            "advertised.listeners=PLAINTEXT://127.0.0.1:4001,MINIO://127.0.0.1:5003,PROCESSOR://127.0.0.1:5004",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,MINIO:PLAINTEXT,PROCESSOR:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_sasl_listener_gets_plain_and_its_user() {
        let ports = KafkaPorts { broker: 4001, controller: 4002 };
        let extra = [ExtraListener {
            name: "SASL".into(),
            port: 4005,
            advertised: "127.0.0.1:4005".into(),
            sasl_plain: Some(("ann".into(), "pw".into())),
        }];
        let text = server_properties(ports, Path::new("/d"), &extra, None);
        assert!(text.contains(",SASL:SASL_PLAINTEXT"), "{text}");
        assert!(text.lines().any(|l| l == "listener.name.sasl.sasl.enabled.mechanisms=PLAIN"), "{text}");
        assert!(text.contains("listener.name.sasl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"ann\" password=\"pw\" user_ann=\"pw\";"), "{text}");
    }

    #[test]
    fn cluster_nodes_share_voters_and_replicate_three_ways() {
        let ports = [
            KafkaPorts { broker: 4001, controller: 4002 },
            KafkaPorts { broker: 4011, controller: 4012 },
            KafkaPorts { broker: 4021, controller: 4022 },
        ];
        let nodes = ClusterNode::cluster(&ports, "abc");
        assert_eq!(nodes.len(), 3);
        let text = server_properties(ports[1], Path::new("/d2"), &[], Some(&nodes[1]));
        for line in [
            "node.id=2",
            "controller.quorum.voters=1@127.0.0.1:4002,2@127.0.0.1:4012,3@127.0.0.1:4022",
            "listeners=PLAINTEXT://127.0.0.1:4011,CONTROLLER://127.0.0.1:4012",
            "default.replication.factor=3",
            "min.insync.replicas=2",
            "offsets.topic.replication.factor=3",
            "transaction.state.log.min.isr=2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(nodes.iter().all(|n| n.cluster_id == "abc" && n.replication == 3));
        let single = server_properties(ports[0], Path::new("/d"), &[], None);
        assert!(single.lines().any(|l| l == "min.insync.replicas=1") && single.lines().any(|l| l == "node.id=1"));
    }

    #[test]
    fn container_properties_advertise_an_address_per_side() {
        let text = container_server_properties("h-ab12-kafka", 41000, Path::new("/var/lib/kafka/data"));
        for line in [
            "process.roles=broker,controller",
            "listeners=INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9094,CONTROLLER://localhost:9093",
            "advertised.listeners=INTERNAL://h-ab12-kafka:9092,EXTERNAL://127.0.0.1:41000",
            "inter.broker.listener.name=INTERNAL",
            "log.dirs=/var/lib/kafka/data",
            "auto.create.topics.enable=false",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("PLAINTEXT://127.0.0.1"), "{text}");
    }

    #[test]
    fn jvm_args_carry_heap_gc_log4j_and_classpath() {
        let args = jvm_args(Path::new("/k/libs"), Path::new("/r/log4j2.properties"));
        for want in ["-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true"] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
        assert!(args.contains(&"-Dlog4j2.configurationFile=/r/log4j2.properties".to_string()));
        assert_eq!(&args[args.len() - 2..], ["-cp", "/k/libs/*"]);
        assert!(LOG4J2_PROPERTIES.contains("rootLogger.level = INFO"));
    }

    #[tokio::test]
    async fn a_failing_storage_format_names_kafka_and_carries_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let group = ProcessGroup::new(dir.path().join("logs"));
        let cfg = KafkaConfig {
            java: "/bin/false".into(),
            libs: dir.path().join("libs"),
            dir: dir.path().join("kafka"),
            ready_timeout: Duration::from_secs(10),
            extra_listeners: Vec::new(),
            cluster: None,
        };
        let err = Kafka::start(&group, &cfg, KafkaPorts::pick().unwrap()).await.unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("kafka (storage format) exited during startup (exit code 1)"), "{text}");
        assert!(text.contains("harness: starting /bin/false"), "{text}");
        assert!(dir.path().join("kafka/config/server.properties").is_file());
    }

    #[test]
    fn picked_ports_differ() {
        let p = KafkaPorts::pick().unwrap();
        assert_ne!(p.broker, p.controller);
    }
}
