//! The reference image processor: MinIO events from Kafka in, thumbnails out.
//!
//! It aims at an exactly-once *effect*: offsets are committed only after the
//! thumbnail is written (or the event deliberately skipped), and thumbnails are
//! written with `If-None-Match: *`, so a redelivered event cannot write twice.
//!
//! Exit codes of [`main_from_env`]: 0 after a clean shutdown, 1 on a runtime
//! failure (e.g. the Kafka consumer cannot be created), 2 on a bad environment.

mod commit;
mod config;
mod event;
mod image_ops;
mod s3;
mod worker;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{oneshot, watch};
use tokio::task::{Id, JoinSet};
use tracing::{error, info, warn};

use crate::commit::{OffsetTracker, Partition};
use crate::worker::{Origin, Outcome, Worker};

pub use crate::config::{Config, ConfigError, ConfigProblem, Secret};

/// The processor's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long in-flight work may take to finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the final commit and leaving the group may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a consumer error, so a dead broker does not spin the loop.
const CONSUMER_ERROR_PAUSE: Duration = Duration::from_millis(500);

/// Makes the thumbnail of `source` exactly as the processor does (decode, resize to
/// `width`, encode in the source's format); for benchmarks and tools.
pub fn thumbnail(source: &[u8], width: u32) -> Result<Vec<u8>, String> {
    image_ops::make_thumbnail(source, width).map(|t| t.bytes).map_err(|e| e.to_string())
}

/// A failure that stops the processor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the Kafka consumer for {bootstrap}: {source}")]
    CreateConsumer {
        bootstrap: String,
        #[source]
        source: KafkaError,
    },
    #[error("cannot subscribe to topic {topic:?}: {source}")]
    Subscribe {
        topic: String,
        #[source]
        source: KafkaError,
    },
}

/// Reads the environment, logs to stderr, runs until SIGTERM or SIGINT.
pub async fn main_from_env() -> ExitCode {
    install_tracing();
    let cfg = match Config::from_env() {
        Ok(cfg) => cfg,
        Err(err) => {
            eprintln!("harness-processor: {err}");
            return ExitCode::from(2);
        }
    };
    match run(cfg, termination_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!(error = %err, "processor failed");
            ExitCode::from(1)
        }
    }
}

/// Consumes and processes until `shutdown` completes, then finishes or abandons
/// in-flight work within ~5 s, commits what is done and returns.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let consumer = create_consumer(&cfg)?;
    info!(
        version = VERSION,
        bootstrap = %cfg.kafka_bootstrap_servers,
        topic = %cfg.kafka_topic,
        group = %cfg.kafka_group_id,
        s3 = %cfg.s3_endpoint,
        source = %cfg.source_bucket,
        target = %cfg.target_bucket,
        width = cfg.thumbnail_width,
        concurrency = cfg.concurrency,
        slowdown_percent = cfg.slowdown_percent,
        "processor started"
    );
    let worker = Arc::new(Worker {
        s3: s3::client(&cfg),
        source_bucket: cfg.source_bucket.clone(),
        target_bucket: cfg.target_bucket.clone(),
        thumbnail_width: cfg.thumbnail_width,
        slowdown_percent: cfg.slowdown_percent,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut state = Loop { tasks: JoinSet::new(), origins: std::collections::HashMap::new(), tracker: OffsetTracker::default() };
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = state.tasks.join_next_with_id() => {
                state.finish(joined);
                while let Some(joined) = state.tasks.try_join_next_with_id() {
                    state.finish(joined);
                }
                commit(&consumer, state.tracker.take_new_commits(), CommitMode::Async);
            }
            received = consumer.recv(), if state.tasks.len() < cfg.concurrency => match received {
                Ok(msg) => {
                    let origin = Origin {
                        topic: msg.topic().to_string(),
                        partition: msg.partition(),
                        offset: msg.offset(),
                    };
                    let payload = msg.payload().map(<[u8]>::to_vec);
                    drop(msg);
                    state.spawn(origin, payload, &worker, &stop_rx);
                }
                Err(err) => {
                    warn!(error = %err, "kafka consumer error");
                    tokio::select! {
                        () = tokio::time::sleep(CONSUMER_ERROR_PAUSE) => {}
                        () = &mut shutdown => break,
                    }
                }
            },
        }
    }

    info!(in_flight = state.tasks.len(), "shutting down");
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while !state.tasks.is_empty() {
        match tokio::time::timeout_at(deadline, state.tasks.join_next_with_id()).await {
            Ok(Some(joined)) => state.finish(joined),
            Ok(None) => break,
            Err(_) => {
                warn!(abandoned = state.tasks.len(), "in-flight work abandoned at shutdown");
                state.tasks.shutdown().await;
                break;
            }
        }
    }
    close(consumer, state.tracker.all_commits()).await;
    info!(not_committed = state.tracker.unfinished(), "processor stopped");
    Ok(())
}

/// The run loop's bookkeeping: running tasks and the offsets they stand for.
struct Loop {
    tasks: JoinSet<Outcome>,
    origins: std::collections::HashMap<Id, Origin>,
    tracker: OffsetTracker,
}

impl Loop {
    fn spawn(&mut self, origin: Origin, payload: Option<Vec<u8>>, worker: &Arc<Worker>, stop: &watch::Receiver<bool>) {
        let tp = Partition { topic: origin.topic.clone(), partition: origin.partition };
        self.tracker.started(&tp, origin.offset);
        let worker = Arc::clone(worker);
        let mut stop = stop.clone();
        let task_origin = origin.clone();
        let handle = self.tasks.spawn(async move { worker.handle(payload.as_deref(), &task_origin, &mut stop).await });
        self.origins.insert(handle.id(), origin);
    }

    fn finish(&mut self, joined: Result<(Id, Outcome), tokio::task::JoinError>) {
        let (id, outcome) = match joined {
            Ok((id, outcome)) => (id, outcome),
            Err(err) if err.is_panic() => {
                // A bug, not a property of the message: skip it rather than stall.
                error!(error = %err, "message handler panicked; skipping the message");
                (err.id(), Outcome::Done)
            }
            Err(err) => (err.id(), Outcome::Abandoned),
        };
        let Some(origin) = self.origins.remove(&id) else {
            return;
        };
        if outcome == Outcome::Done {
            let tp = Partition { topic: origin.topic, partition: origin.partition };
            self.tracker.finished(&tp, origin.offset);
        }
    }
}

/// Logs failed asynchronous commits, which rdkafka otherwise drops silently.
struct ProcessorContext;

impl ClientContext for ProcessorContext {}

impl ConsumerContext for ProcessorContext {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(err) = result {
            warn!(error = %err, "offset commit failed; a later commit covers it");
        }
    }
}

fn create_consumer(cfg: &Config) -> Result<StreamConsumer<ProcessorContext>, Error> {
    let mut client = ClientConfig::new();
    if let Some(sasl) = &cfg.kafka_sasl {
        client
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", &sasl.mechanism)
            .set("sasl.username", &sasl.user)
            .set("sasl.password", sasl.password.expose());
    }
    let consumer: StreamConsumer<ProcessorContext> = client
        .set("bootstrap.servers", &cfg.kafka_bootstrap_servers)
        .set("group.id", &cfg.kafka_group_id)
        .set("client.id", "harness-processor")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // A topic created after we subscribed is noticed within seconds, not minutes.
        .set("topic.metadata.refresh.interval.ms", "5000")
        // A replacement for a crashed instance cannot get its partitions until the
        // dead member's session expires; librdkafka's 45 s default stalled the
        // pipeline for that long after every processor crash. 10 s is well above the
        // broker's 6 s minimum and still tolerates a busy 2-core machine.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000")
        .create_with_context(ProcessorContext)
        .map_err(|source| Error::CreateConsumer { bootstrap: cfg.kafka_bootstrap_servers.clone(), source })?;
    consumer.subscribe(&[&cfg.kafka_topic]).map_err(|source| Error::Subscribe { topic: cfg.kafka_topic.clone(), source })?;
    Ok(consumer)
}

fn commit_list(positions: &[(Partition, i64)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (tp, next) in positions {
        if let Err(err) = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*next)) {
            warn!(topic = %tp.topic, partition = tp.partition, error = %err, "cannot build commit");
        }
    }
    tpl
}

fn commit<C: ConsumerContext>(consumer: &StreamConsumer<C>, positions: Vec<(Partition, i64)>, mode: CommitMode) {
    if positions.is_empty() {
        return;
    }
    if let Err(err) = consumer.commit(&commit_list(&positions), mode) {
        warn!(error = %err, "offset commit failed");
    }
}

/// Commits synchronously and leaves the group on a plain thread, waiting at most
/// `CLOSE_TIMEOUT`: with the broker gone both could block for a long time.
async fn close(consumer: StreamConsumer<ProcessorContext>, positions: Vec<(Partition, i64)>) {
    let (done_tx, done_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new().name("processor-close".into()).spawn(move || {
        commit(&consumer, positions, CommitMode::Sync);
        drop(consumer);
        let _ = done_tx.send(());
    });
    if let Err(err) = spawned {
        warn!(error = %err, "cannot start the closing thread; offsets may not be committed");
        return;
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, done_rx).await.is_err() {
        warn!("final commit did not finish within {CLOSE_TIMEOUT:?}; leaving it behind");
    }
}

fn install_tracing() {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    // Fails only if the embedding program installed a subscriber already: keep that.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Completes on SIGTERM or SIGINT.
async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
                }
                return;
            }
            Err(err) => {
                warn!(error = %err, "cannot listen for SIGTERM; only SIGINT stops the processor")
            }
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling at all: run until killed.
        std::future::pending::<()>().await;
    }
    info!("SIGINT received");
}
