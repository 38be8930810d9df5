//! The middle of a run, against a ready environment: observers, processor,
//! workload, drain, and the final listing that completes the history.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness_model::check::{classify_missing, Missing};
use harness_model::history::{DrainEnd, EventSeen, GroupOffsets, History, ProcessorExit};
use harness_model::scenario::{EnvKind, HostileRule, ProcessorKind, Scenario};
use harness_model::workload::plan;

use super::{Progress, SETTLE};
use crate::clock::Clock;
use crate::env::{EnvError, Environment};
use crate::fault;
use crate::observe::group::{self, GroupReader};
use crate::observe::{list_outputs, versions_now, ObserveError, Observed, Observers};
use crate::services::processor::ProcessorSpec;
use crate::services::s3::s3_client;
use crate::workload::{run_uploads, stopped, UploadProgress};

/// How long the harness's own consumers may take to show they are live.
const OBSERVER_LIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one read of the processor group's offsets.
const GROUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the drain looks at the group's offsets once it has been quiet.
const DRAIN_CHECK: Duration = Duration::from_secs(1);

pub(super) struct Exercised {
    pub history: History,
    pub workload_seconds: f64,
    pub drain_seconds: f64,
}

/// Why the middle of a run could not go on (the run ends with exit 3, the message
/// in its results).
#[derive(Debug, thiserror::Error)]
pub(super) enum ExerciseError {
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error("writing a probe to bucket {bucket}: {detail}")]
    Probe { bucket: String, detail: String },
    #[error("the harness's own consumers did not see the {what} within {secs}s; Kafka's log says:\n{kafka_log}")]
    ObserversBlind { what: &'static str, secs: u64, kafka_log: String },
    #[error("cannot find the harness binary to run the builtin processor: {0}")]
    NoHarnessBinary(#[source] std::io::Error),
    /// The processor could not be started.
    #[error(transparent)]
    Processor(EnvError),
}

/// `stop` turns true on Ctrl-C: no further upload starts, faults in progress are
/// healed as usual, the drain is skipped, and what happened until then is recorded.
pub(super) async fn exercise(
    env: &mut dyn Environment,
    scenario: &Scenario,
    run_id: &str,
    clock: Clock,
    progress: &Progress,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Exercised, ExerciseError> {
    let ep = env.endpoints().clone();
    let s3 = s3_client(&ep.s3_endpoint, &ep.credentials);

    // Observers first, proven live before anything is uploaded: the canary's event
    // must be visible, and a probe written to the target bucket must be announced.
    // An external pipeline's target bucket holds thumbnails from before this run
    // (its owner's tests, an earlier run with the same seed and keys): they are
    // not this run's outputs. The harness's own environments start empty.
    let probe = format!("{}probe/{run_id}.txt", harness_model::HARNESS_KEY_PREFIX);
    // What the run lists of the target bucket: all of a bucket of its own; of an
    // external pipeline's, only the run's keys (`<run-id>/…`), its probe and the
    // keys of poison events (`poison/…`, a thumbnail of one is a phantom), so a
    // bucket with millions of the owner's objects costs nothing per poll.
    let outputs_scope = if env.kind() == EnvKind::External {
        vec![format!("{run_id}/"), probe.clone(), "poison/".to_string()]
    } else {
        vec![String::new()]
    };
    let before = if env.kind() == EnvKind::External {
        versions_now(&s3, &ep.target_bucket, &outputs_scope)
            .await
            .map_err(|detail| ObserveError::Listing { bucket: ep.target_bucket.clone(), detail })?
    } else {
        Default::default()
    };
    let observers = if env.kind() == EnvKind::External {
        // Nobody asked that pipeline's MinIO to announce thumbnails: list them.
        let from = env.events_from().unwrap_or_default();
        Observers::start_listing(
            &ep.kafka_bootstrap,
            &ep.events_topic,
            &from,
            s3.clone(),
            &ep.target_bucket,
            outputs_scope.clone(),
            before.clone(),
            run_id,
            clock,
        )
        .await?
    } else {
        Observers::start(&ep.kafka_bootstrap, &ep.events_topic, &ep.outputs_topic, run_id, clock).await?
    };
    let canary = env.canary_key().to_string();
    s3.put_object()
        .bucket(&ep.target_bucket)
        .key(&probe)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"probe"))
        .send()
        .await
        .map_err(|e| ExerciseError::Probe { bucket: ep.target_bucket.clone(), detail: crate::services::s3::describe_sdk_error(&e) })?;
    let live = observers.wait_for(OBSERVER_LIVE_TIMEOUT, |o| o.saw_event(&canary) && o.saw_output(&probe)).await;
    if !live {
        let what = if observers.observed.saw_event(&canary) { "probe's event on the outputs topic" } else { "canary's event" };
        return Err(ExerciseError::ObserversBlind {
            what,
            secs: OBSERVER_LIVE_TIMEOUT.as_secs(),
            kafka_log: env.log_tail("kafka", 15).await,
        });
    }

    if matches!(scenario.processor.kind, ProcessorKind::Running) {
        progress.say(&format!("testing the processor that runs already: {}", scenario.processor.label()));
    } else {
        progress.say(&format!("starting processor {}", scenario.processor.label()));
        env.start_processor(processor_spec(scenario)?).await.map_err(ExerciseError::Processor)?;
    }
    let status = env.processor_events();

    let w = &scenario.workload;
    progress.say(&format!(
        "uploading {} images at {}/s (concurrency {}) to bucket {}",
        w.images, w.rate.per_second, w.concurrency, ep.source_bucket
    ));
    let counters = Arc::new(UploadProgress::default());
    let mut history = History { workload_started: clock.now(), ..Default::default() };
    let t_workload = Instant::now();
    let mut planned = plan(w, scenario.seed);
    if env.kind() == EnvKind::External {
        // Someone else's buckets: keys of this run's own, so an earlier run's objects
        // (same seed, same keys) are neither overwritten nor taken for this run's. A
        // processor that refuses to overwrite a thumbnail (If-None-Match) would
        // otherwise write nothing for them.
        harness_model::workload::prefix_keys(&mut planned, &format!("{run_id}/"));
    }
    let uploads = run_uploads(s3.clone(), ep.source_bucket.clone(), planned, w.concurrency, clock, counters.clone(), stop.clone());
    let ticker = AbortOnDrop(tokio::spawn(ticker(progress.clone(), counters.clone(), observers.observed.clone(), w.images)));
    // The fault schedule runs alongside the uploads; it borrows the environment
    // (to stop, pause and restart services) while the uploads only need S3.
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let uploads = async {
        let r = uploads.await;
        let finished = clock.now();
        let _ = done_tx.send(true);
        (r, finished)
    };
    let say = {
        let p = progress.clone();
        move |m: &str| p.say(m)
    };
    let schedule = fault::run_schedule(
        env,
        fault::ScheduleInputs {
            faults: &scenario.faults,
            clock,
            workload_started: t_workload,
            uploads: counters.clone(),
            workload_done: done_rx,
            say: &say,
            processor_group: &scenario.processor.group_id,
        },
    );
    let (((uploaded, failed), finished), windows) = tokio::join!(uploads, schedule);
    drop(ticker);
    history.uploads = uploaded;
    history.upload_failures = failed;
    history.workload_finished = finished;
    history.faults = windows;
    let workload_seconds = t_workload.elapsed().as_secs_f64();

    progress.say(&format!(
        "{} uploads acknowledged, {} failed; draining (up to {}s)",
        history.uploads.len(),
        history.upload_failures.len(),
        scenario.drain_timeout.as_secs()
    ));
    let t_drain = Instant::now();
    // Hostile inputs that are not images get no thumbnail from a correct processor:
    // nothing to wait for (`skipped_inputs` judges them).
    let expected: HashSet<String> =
        history.uploads.iter().filter(|u| u.hostile.is_none_or(|k| k.rule() == HostileRule::Thumbnail)).map(|u| u.key.clone()).collect();
    let drain_ticker = AbortOnDrop(tokio::spawn(ticker_outputs(progress.clone(), observers.observed.clone(), expected.len())));
    // The processor's group's committed offsets tell a thumbnail the processor
    // dropped from one it has not got to; without them the drain can only time out.
    let group = group::connect(&ep.kafka_bootstrap, &scenario.processor.group_id, &ep.events_topic, GROUP_TIMEOUT).await;
    let mut stop_drain = stop.clone();
    let limits = DrainLimits { timeout: scenario.drain_timeout, quiet: scenario.drain_quiet };
    history.drain_end = tokio::select! {
        end = drain(&observers, &expected, limits, group.as_ref().ok(), clock) => end,
        () = stopped(&mut stop_drain) => DrainEnd::Interrupted,
    };
    history.drained = history.drain_end == DrainEnd::Complete;
    drop(drain_ticker);
    if history.drain_end == DrainEnd::Settled {
        progress.say(&format!(
            "drain settled: group {} committed the events of every missing thumbnail and none arrived for {}",
            scenario.processor.group_id,
            harness_model::scenario::units::format_duration(scenario.drain_quiet)
        ));
    }
    if history.drained {
        // Late duplicates (a redelivery after a commit was lost) arrive after the
        // first copy; give them a moment to show.
        tokio::time::sleep(SETTLE).await;
    }
    history.drain_finished = clock.now();
    let drain_seconds = t_drain.elapsed().as_secs_f64();

    // Stop the processor before the final listing, so the listing is final.
    env.stop_processor().await;
    // A processor that stopped cleanly has committed what it finished: its offsets
    // now are its last word on which events it handled.
    history.group = Some(match &group {
        Ok(reader) => reader.committed_async(GROUP_TIMEOUT).await,
        Err(e) => GroupOffsets {
            group: scenario.processor.group_id.clone(),
            topic: ep.events_topic.clone(),
            error: Some(e.clone()),
            ..Default::default()
        },
    });
    if let Some(rx) = status {
        let st = rx.borrow().clone();
        history.processor_exits = st
            .exits
            .iter()
            .filter(|x| !x.expected)
            .map(|x| ProcessorExit { at: clock.at(x.at), status: x.status.clone(), restarted: true })
            .collect();
    }

    progress.say("listing and inspecting every thumbnail version");
    // Notifications can trail the write by a moment; the listing is authoritative,
    // the observers only supply first-seen times.
    let observed = observers.stop();
    let seen = observed.outputs.lock().map(|v| v.clone()).unwrap_or_default();
    history.outputs = list_outputs(&s3, &ep.target_bucket, &outputs_scope, &seen, &before).await?;
    history.events = observed.events.lock().map(|v| v.clone()).unwrap_or_default();
    if env.kind() == EnvKind::External {
        // The observer reads that topic from its beginning (to find the canary's
        // event); what it read before the first upload is the pipeline's past,
        // possibly for the same keys, and must not count as this run's events.
        let started = history.workload_started;
        history.events.retain(|e| e.at >= started || e.key.starts_with(harness_model::HARNESS_KEY_PREFIX));
    }
    Ok(Exercised { history, workload_seconds, drain_seconds })
}

#[derive(Clone, Copy)]
struct DrainLimits {
    timeout: Duration,
    quiet: Duration,
}

/// Waits until every upload has a thumbnail (`Complete`); or, once nothing has
/// arrived for `quiet`, until the group has committed the event of every missing
/// thumbnail (`Settled`: the processor dropped them, waiting cannot help); or until
/// the timeout (`Timeout`).
async fn drain(
    observers: &Observers,
    expected: &HashSet<String>,
    limits: DrainLimits,
    group: Option<&GroupReader>,
    clock: Clock,
) -> DrainEnd {
    let deadline = Instant::now() + limits.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if observers.wait_for(left.min(DRAIN_CHECK), |o| missing(o, expected).is_empty()).await {
            return DrainEnd::Complete;
        }
        if Instant::now() >= deadline {
            return DrainEnd::Timeout;
        }
        let Some(group) = group else { continue };
        let o = &observers.observed;
        if clock.now().saturating_sub(last_record(o)) < limits.quiet.as_micros() as u64 {
            continue;
        }
        let offsets = group.committed_async(GROUP_TIMEOUT.min(left)).await;
        let events = o.events.lock().map(|v| v.clone()).unwrap_or_default();
        let mut events_of: HashMap<&str, Vec<&EventSeen>> = HashMap::new();
        for e in &events {
            events_of.entry(e.key.as_str()).or_default().push(e);
        }
        let all_dropped = missing(o, expected)
            .iter()
            .all(|k| classify_missing(events_of.get(k.as_str()).into_iter().flatten().copied(), Some(&offsets)) == Missing::Lost);
        if all_dropped {
            return DrainEnd::Settled;
        }
    }
}

/// The expected keys with no thumbnail seen yet.
fn missing(o: &Observed, expected: &HashSet<String>) -> Vec<String> {
    let seen: HashSet<String> = o.outputs.lock().map(|v| v.iter().map(|x| x.key.clone()).collect()).unwrap_or_default();
    expected.iter().filter(|k| !seen.contains(*k)).cloned().collect()
}

/// When the observers last recorded an event or a thumbnail.
fn last_record(o: &Observed) -> u64 {
    let events = o.events.lock().map(|v| v.iter().map(|e| e.at).max().unwrap_or(0)).unwrap_or(0);
    let outputs = o.outputs.lock().map(|v| v.iter().map(|x| x.at).max().unwrap_or(0)).unwrap_or(0);
    events.max(outputs)
}

fn processor_spec(s: &Scenario) -> Result<ProcessorSpec, ExerciseError> {
    let mut env: Vec<(String, String)> =
        vec![("THUMBNAIL_WIDTH".into(), s.pipeline.thumbnail_width.to_string()), ("KAFKA_GROUP_ID".into(), s.processor.group_id.clone())];
    env.extend(s.processor.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let builtin = matches!(s.processor.kind, ProcessorKind::Builtin(_));
    let (program, args) = match &s.processor.kind {
        ProcessorKind::Builtin(_) => {
            let exe = std::env::current_exe().map_err(ExerciseError::NoHarnessBinary)?;
            (exe, vec!["processor".to_string()])
        }
        ProcessorKind::Running => {
            return Err(ExerciseError::Processor(crate::env::unsupported(s.environment.kind, "starting the pipeline's own processor")))
        }
        ProcessorKind::Image(_) => (std::path::PathBuf::new(), Vec::new()),
        ProcessorKind::Command(argv) => {
            let p = std::path::PathBuf::from(&argv[0]);
            // `./x.py` and `bin/x` are relative to the workdir; a bare name is looked up on PATH.
            let program = if p.components().count() > 1 && p.is_relative() { s.processor.workdir.join(p) } else { p };
            (program, argv[1..].to_vec())
        }
    };
    let image = match &s.processor.kind {
        ProcessorKind::Image(image) => Some(image.clone()),
        _ => None,
    };
    Ok(ProcessorSpec { program, args, env, cwd: s.processor.workdir.clone(), name: "processor".into(), builtin, image })
}

/// Prints upload progress every 2 s; never finishes on its own.
async fn ticker(progress: Progress, counters: Arc<UploadProgress>, observed: Arc<crate::observe::Observed>, total: u32) {
    let mut every = tokio::time::interval(Duration::from_secs(2));
    every.tick().await;
    loop {
        every.tick().await;
        let outs = observed.outputs.lock().map(|v| v.len()).unwrap_or(0);
        progress.say(&format!(
            "uploads {}/{total} acknowledged ({} failed) · thumbnails seen {outs}",
            counters.acked.load(Ordering::Relaxed),
            counters.failed.load(Ordering::Relaxed)
        ));
    }
}

async fn ticker_outputs(progress: Progress, observed: Arc<crate::observe::Observed>, expected: usize) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    every.tick().await;
    loop {
        every.tick().await;
        let outs = observed.outputs.lock().map(|v| v.len()).unwrap_or(0);
        progress.say(&format!("draining: thumbnails seen {outs} (expecting {expected})"));
    }
}

/// Aborts a background task when dropped, also when the run is cancelled (Ctrl-C).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
