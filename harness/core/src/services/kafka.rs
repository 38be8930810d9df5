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
        Ok(KafkaPorts {
            broker: ports[0],
            controller: ports[1],
        })
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
}

/// `server.properties` of a one-node KRaft cluster on 127.0.0.1.
pub fn server_properties(ports: KafkaPorts, data_dir: &Path) -> String {
    let KafkaPorts { broker, controller } = ports;
    format!(
        "# Written by the harness: one combined broker + controller on loopback.\n\
         controller.quorum.voters=1@127.0.0.1:{controller}\n\
         listeners=PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{broker}\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=PLAINTEXT\n\
         {}",
        common_properties(data_dir)
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
    let (internal, external) = (CONTAINER_INTERNAL_PORT, CONTAINER_EXTERNAL_PORT);
    format!(
        "# Written by the harness: one combined broker + controller in a container.\n\
         controller.quorum.voters=1@localhost:9093\n\
         listeners=INTERNAL://0.0.0.0:{internal},EXTERNAL://0.0.0.0:{external},CONTROLLER://localhost:9093\n\
         advertised.listeners=INTERNAL://{internal_host}:{internal},EXTERNAL://127.0.0.1:{host_port}\n\
         listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=INTERNAL\n\
         {}",
        common_properties(data_dir)
    )
}

fn common_properties(data_dir: &Path) -> String {
    format!(
        "process.roles=broker,controller\n\
         node.id=1\n\
         controller.listener.names=CONTROLLER\n\
         log.dirs={data}\n\
         num.partitions=1\n\
         default.replication.factor=1\n\
         min.insync.replicas=1\n\
         offsets.topic.replication.factor=1\n\
         offsets.topic.num.partitions=1\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         share.coordinator.state.topic.replication.factor=1\n\
         share.coordinator.state.topic.min.isr=1\n\
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
}

impl Kafka {
    /// Formats a fresh data dir, starts the broker and waits until a message
    /// makes the round trip. On failure nothing of this start is left running.
    pub async fn start(
        group: &ProcessGroup,
        cfg: &KafkaConfig,
        ports: KafkaPorts,
    ) -> Result<Kafka, ServiceError> {
        let started = Instant::now();
        let io = |what: &str, path: &Path| {
            let context = format!("{what} {}", path.display());
            move |e| ServiceError::io(SERVICE, context, e)
        };
        match std::fs::remove_dir_all(&cfg.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("removing", &cfg.dir)(e))
            }
            _ => {}
        }
        let config_dir = cfg.dir.join("config");
        let data_dir = cfg.dir.join("data");
        for dir in [&config_dir, &data_dir] {
            std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        }
        let props = config_dir.join("server.properties");
        std::fs::write(&props, server_properties(ports, &data_dir))
            .map_err(io("writing", &props))?;
        let log4j = config_dir.join("log4j2.properties");
        std::fs::write(&log4j, LOG4J2_PROPERTIES).map_err(io("writing", &log4j))?;
        let cluster_id = super::token::kafka_cluster_id()
            .map_err(|e| ServiceError::io(SERVICE, "reading /dev/urandom", e))?;

        let java_with = |main: &str, rest: &[&str]| {
            let mut args = jvm_args(&cfg.libs, &log4j);
            args.push(main.into());
            args.extend(rest.iter().map(|s| s.to_string()));
            ChildSpec {
                name: SERVICE.into(),
                program: cfg.java.clone(),
                args,
                ..ChildSpec::default()
            }
        };
        let props_arg = props.display().to_string();
        let mut format = group.spawn(&java_with(
            "kafka.tools.StorageTool",
            &[
                "format",
                "--cluster-id",
                &cluster_id,
                "--config",
                &props_arg,
            ],
        ))?;
        let status = match tokio::time::timeout(cfg.ready_timeout, format.wait()).await {
            Ok(Ok(status)) => status,
            other => {
                let _ = format.kill().await;
                return Err(ServiceError::NotReady {
                    service: SERVICE.into(),
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
                service: format!("{SERVICE} (storage format)"),
                status: super::process::describe_status(status),
                log: format.log_path().to_path_buf(),
                tail: format.log_tail(20),
            });
        }

        let mut process = group.spawn(&java_with("kafka.Kafka", &[&props_arg]))?;
        let bootstrap = ports.bootstrap();
        let nonce = super::token::hex_token(8)
            .map_err(|e| ServiceError::io(SERVICE, "reading /dev/urandom", e))?;
        let remaining = cfg.ready_timeout.saturating_sub(started.elapsed());
        let ready = ready_or_exit(
            &mut process,
            SERVICE,
            remaining,
            Duration::from_millis(200),
            || round_trip(&bootstrap, &nonce),
        )
        .await;
        if let Err(e) = ready {
            let _ = process.kill().await;
            return Err(e);
        }
        Ok(Kafka {
            process,
            ports,
            ready_in: started.elapsed(),
        })
    }

    /// Starts the broker again on the same ports, config and data (no format),
    /// after its process exited (a fault stopped or killed it), and waits for the
    /// same produce/consume round trip as [`Kafka::start`]. Returns how long it took.
    pub async fn restart(
        &mut self,
        group: &ProcessGroup,
        cfg: &KafkaConfig,
    ) -> Result<Duration, ServiceError> {
        let started = Instant::now();
        let config_dir = cfg.dir.join("config");
        let mut args = jvm_args(&cfg.libs, &config_dir.join("log4j2.properties"));
        args.push("kafka.Kafka".into());
        args.push(config_dir.join("server.properties").display().to_string());
        let spec = ChildSpec {
            name: SERVICE.into(),
            program: cfg.java.clone(),
            args,
            ..ChildSpec::default()
        };
        let mut process = group.spawn(&spec)?;
        let bootstrap = self.ports.bootstrap();
        let nonce = super::token::hex_token(8)
            .map_err(|e| ServiceError::io(SERVICE, "reading /dev/urandom", e))?;
        let ready = ready_or_exit(
            &mut process,
            SERVICE,
            cfg.ready_timeout,
            Duration::from_millis(200),
            || round_trip(&bootstrap, &nonce),
        )
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

    /// Creates a topic with replication factor 1.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<(), ServiceError> {
        create_topic(&self.bootstrap(), name, partitions, Duration::from_secs(30))
            .await
            .map_err(|detail| {
                ServiceError::setup(SERVICE, format!("creating topic {name}"), detail)
            })
    }

    /// SIGTERM (controlled shutdown), SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> std::io::Result<()> {
        self.process.stop(grace).await.map(|_| ())
    }
}

/// Config shared by the harness's helper clients: quick reconnects (the broker
/// may just be starting) and no librdkafka error spam while it is.
pub fn helper_client_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("client.id", "harness")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set_log_level(RDKafkaLogLevel::Critical);
    cfg
}

/// Creates `name`; an existing topic counts as created (idempotent retries).
pub async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = helper_client_config(bootstrap)
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let opts = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics([&topic], &opts)
        .await
        .map_err(|e| format!("create topics request: {e}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("topic {topic}: {code}")),
        }
    }
    Ok(())
}

/// One readiness probe: create the ready topic, produce `nonce` with acks=all,
/// consume it back from the beginning.
pub(crate) async fn round_trip(bootstrap: &str, nonce: &str) -> Result<(), String> {
    const STEP: Duration = Duration::from_secs(5);
    create_topic(bootstrap, READY_TOPIC, 1, STEP).await?;
    let producer: FutureProducer = helper_client_config(bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", "5000")
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    producer
        .send(
            FutureRecord::to(READY_TOPIC).key("ready").payload(nonce),
            STEP,
        )
        .await
        .map_err(|(e, _)| format!("produce to {READY_TOPIC}: {e}"))?;
    let consumer: StreamConsumer = helper_client_config(bootstrap)
        .set("group.id", "_harness_ready")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(READY_TOPIC, 0, Offset::Beginning)
        .map_err(|e| format!("assign: {e}"))?;
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    let consumed = tokio::time::timeout(STEP, async {
        loop {
            let msg = consumer
                .recv()
                .await
                .map_err(|e| format!("consume from {READY_TOPIC}: {e}"))?;
            if msg.payload() == Some(nonce.as_bytes()) {
                return Ok::<(), String>(());
            }
        }
    })
    .await;
    match consumed {
        Ok(result) => result,
        Err(_) => Err(format!(
            "produced to {READY_TOPIC} but did not consume it back within {STEP:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_describe_one_loopback_kraft_node() {
        let ports = KafkaPorts {
            broker: 4001,
            controller: 4002,
        };
        let text = server_properties(ports, Path::new("/run/kafka/data"));
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
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(ports.bootstrap(), "127.0.0.1:4001");
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
        for want in [
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
        ] {
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
        };
        let err = Kafka::start(&group, &cfg, KafkaPorts::pick().unwrap())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("kafka (storage format) exited during startup (exit code 1)"),
            "{text}"
        );
        assert!(text.contains("harness: starting /bin/false"), "{text}");
        assert!(dir.path().join("kafka/config/server.properties").is_file());
    }

    #[test]
    fn picked_ports_differ() {
        let p = KafkaPorts::pick().unwrap();
        assert_ne!(p.broker, p.controller);
    }
}
