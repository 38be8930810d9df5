//! The run lifecycle: provision → start → ready → workload → drain → check →
//! report → teardown. Teardown happens on every path: success, error, Ctrl-C.

mod exercise;
pub(crate) mod ids;
mod progress;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use harness_model::check::{check, CheckSpec, Ledger};
use harness_model::exit::ExitCode;
use harness_model::history::History;
use harness_model::metrics::{self, Metrics};
use harness_model::results::{Counts, EnvironmentInfo, ReadySeconds, RunResults, ScenarioInfo, ServiceVersion, Timings};
use harness_model::scenario::{EnvKind, Expectation, Misconfiguration, Scenario};
use harness_model::verdict::{judge, overall, ExpectationResult, Verdict};

use crate::env::{self, EnvError, EnvSpec};
use crate::report;
use crate::services::provision;
use crate::services::redact::Redactor;
pub use progress::Progress;

/// How a run is carried out, beyond what the scenario says.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Reports go to `<reports_root>/<run-id>/`.
    pub reports_root: PathBuf,
    /// Keep Kafka's and MinIO's data dirs (logs are always kept).
    pub keep: bool,
    /// No progress lines on stderr.
    pub quiet: bool,
    /// Containers environment: images built here, or the official ones.
    pub images: crate::engine::images::ImageSource,
}

pub struct RunOutcome {
    pub results: RunResults,
    pub report_dir: PathBuf,
    pub exit: ExitCode,
    /// The scenario's secrets (`processor.secret_env`): what prints the results
    /// masks them ([`RunOutcome::summary`]).
    pub redactor: Redactor,
}

impl RunOutcome {
    /// The terminal summary, with the scenario's secrets masked.
    pub fn summary(&self) -> String {
        self.redactor.redact_str(&report::summary(&self.results, &self.report_dir.display().to_string())).into_owned()
    }
}

/// Why a run stopped before it could be judged.
enum Abort {
    /// The environment could not be provisioned or started (exit 3).
    Environment(String),
    /// Ctrl-C.
    Interrupted,
}

/// Runs one scenario end to end and writes its reports. Never panics on bad input
/// or a failing environment: those become an exit code and a recorded error.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> RunOutcome {
    let started_wall = SystemTime::now();
    let started = Instant::now();
    let run_id = ids::run_id(&scenario.name, started_wall);
    let report_dir = opts.reports_root.join(&run_id);
    let redactor = Redactor::new(scenario.processor.secret_values());
    let progress = Progress::new(opts.quiet).masking(redactor.clone());
    let clock = crate::clock::Clock::start();
    progress.say(&format!("run {run_id}: reports in {}", report_dir.display()));

    let mut ctx = Context {
        scenario,
        started_wall,
        started,
        run_id,
        report_dir,
        progress,
        redactor,
        timings: Timings::default(),
        env_info: env_info(scenario),
    };

    let say = {
        let p = ctx.progress.clone();
        move |m: &str| p.say(m)
    };
    // A killed run may have left faults unhealed; heal them before starting.
    for h in crate::fault::journal::heal_leftovers(&opts.reports_root) {
        ctx.progress.say(&format!(
            "healed the leftovers of killed run {}: {} processes killed, {} data dirs removed",
            h.run_dir.display(),
            h.processes_killed,
            h.data_dirs_removed
        ));
    }
    let t = Instant::now();
    let external = scenario.environment.kind == harness_model::scenario::EnvKind::External;
    let toolchain = if external {
        // Nothing is started: no Kafka jars or MinIO binary needed.
        Ok(provision::Toolchain::default())
    } else {
        tokio::select! {
            r = provision::provision(&say) => r,
            _ = tokio::signal::ctrl_c() => return ctx.aborted(Abort::Interrupted),
        }
    };
    let toolchain = match toolchain {
        Ok(tc) => tc,
        Err(e) => return ctx.aborted(Abort::Environment(e.to_string())),
    };
    ctx.timings.provision_seconds = t.elapsed().as_secs_f64();
    ctx.timings.provisioned = toolchain.provisioned.clone();

    // A misconfiguration on purpose: MinIO's Kafka target gets an HTTP port, or a
    // listener of its own that advertises a port where nothing listens.
    let wrong_port = match scenario.environment.misconfigure {
        Some(Misconfiguration::WrongListenerPort) => match crate::fault::HttpDecoy::start().await {
            Ok(d) => Some(d),
            Err(e) => return ctx.aborted(Abort::Environment(format!("starting the HTTP decoy for wrong_listener_port: {e}"))),
        },
        _ => None,
    };
    let unreachable_advertised = match scenario.environment.misconfigure {
        Some(Misconfiguration::UnreachableAdvertisedListener) => match crate::services::ports::free_ports(1) {
            Ok(p) => Some(format!("127.0.0.1:{}", p[0])),
            Err(e) => return ctx.aborted(Abort::Environment(format!("picking a port for unreachable_advertised_listener: {e}"))),
        },
        _ => None,
    };
    let sasl_listener = match scenario.environment.misconfigure {
        Some(Misconfiguration::SaslMismatch) => match crate::services::ports::free_ports(1) {
            Ok(p) => Some(p[0]),
            Err(e) => return ctx.aborted(Abort::Environment(format!("picking a port for sasl_mismatch: {e}"))),
        },
        _ => None,
    };
    let misconfigured_address = wrong_port
        .as_ref()
        .map(|w| w.address())
        .or_else(|| unreachable_advertised.clone())
        .or_else(|| sasl_listener.map(|p| format!("127.0.0.1:{p}")))
        // No address is wrong there: the diagnosis must name the target's setting.
        .or_else(|| {
            (scenario.environment.misconfigure == Some(Misconfiguration::SaslOnPlaintext))
                .then(|| format!("MINIO_NOTIFY_KAFKA_SASL_{}=on", crate::services::minio::EVENTS_TARGET))
        });
    if !external {
        ctx.progress.say(&format!("starting Kafka and MinIO ({} environment)", ctx.env_info.kind));
    }
    let spec = EnvSpec {
        run_dir: ctx.report_dir.clone(),
        events_topic: scenario.pipeline.topic.clone(),
        outputs_topic: format!("{}-outputs", scenario.pipeline.topic),
        events_partitions: scenario.environment.events_partitions as i32,
        kafka_brokers: scenario.environment.kafka_brokers,
        kafka_operator: scenario.environment.kafka_operator,
        source_bucket: scenario.pipeline.source_bucket.clone(),
        target_bucket: scenario.pipeline.target_bucket.clone(),
        minio_queue_dir: scenario.environment.minio_queue_dir,
        minio_queue_limit: scenario.environment.minio_queue_limit,
        minio_sync_events: scenario.environment.minio_sync_events,
        ready_timeout: scenario.environment.ready_timeout,
        minio_kafka_address: wrong_port.as_ref().map(|w| w.address()),
        minio_listener_advertises: unreachable_advertised,
        minio_listener_sasl: sasl_listener,
        minio_target_sasl: scenario.environment.misconfigure == Some(Misconfiguration::SaslOnPlaintext),
        fault_links: scenario.faults.iter().any(|f| f.kind.is_network()),
        seed: scenario.seed,
        secrets: scenario.processor.secret_values(),
    };
    let harness_bin = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return ctx.aborted(Abort::Environment(format!("finding the harness binary for the processor: {e}"))),
    };
    let cx = env::StartContext {
        toolchain: &toolchain,
        run_id: &ctx.run_id,
        images: opts.images,
        harness_bin: &harness_bin,
        progress: &say,
        external: scenario.environment.external.as_ref(),
        processor_group: &scenario.processor.group_id,
    };
    let start = env::start(scenario.environment.kind, spec, &cx);
    let started_env = tokio::select! {
        r = start => r,
        _ = tokio::signal::ctrl_c() => return ctx.aborted(Abort::Interrupted),
    };
    let mut env = match started_env {
        Ok(env) => env,
        Err(e) if scenario.expectations.contains(&Expectation::MisconfigurationReported) => {
            let address = misconfigured_address.unwrap_or_default();
            let named =
                matches!(&e, EnvError::Canary(c) if !address.is_empty() && c.diagnosis.as_ref().is_some_and(|d| d.contains(&address)));
            return ctx.diagnosed(e.to_string(), named);
        }
        Err(e) => return ctx.aborted(Abort::Environment(e.to_string())),
    };
    let rt = env.ready_timings();
    ctx.timings.ready_seconds = ReadySeconds {
        kafka: rt.kafka.as_secs_f64(),
        minio: rt.minio.as_secs_f64(),
        canary: rt.canary.as_secs_f64(),
        total: rt.total.as_secs_f64(),
    };
    ctx.env_info.services = env.services().into_iter().map(|s| ServiceVersion { name: s.name, version: s.version }).collect();
    ctx.env_info.services.push(ServiceVersion { name: "processor".into(), version: processor_version(scenario) });
    ctx.progress.say(&format!("environment ready in {:.1}s", rt.total.as_secs_f64()));

    // The first Ctrl-C stops the workload: faults in progress heal, the drain is
    // skipped, and the run is judged Unknown on what happened so far (a partial
    // report). A second Ctrl-C stops at once.
    let (exercised, interrupted) = {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let exercise = exercise::exercise(env.as_mut(), scenario, &ctx.run_id, clock, &ctx.progress, stop_rx);
        tokio::pin!(exercise);
        tokio::select! {
            r = &mut exercise => (Some(r), false),
            _ = tokio::signal::ctrl_c() => {
                let _ = stop_tx.send(true);
                ctx.progress.say("interrupted: no more uploads; healing faults and writing a partial report (Ctrl-C again to stop at once)");
                tokio::select! {
                    r = &mut exercise => (Some(r), true),
                    _ = tokio::signal::ctrl_c() => (None, true),
                }
            }
        }
    };
    if env.kind() == EnvKind::External {
        let left = if opts.keep { "the run's uploads and thumbnails stay (--keep)" } else { "removing the run's objects from its buckets" };
        ctx.progress.say(&format!("done with the external pipeline (it keeps running: the harness started none of it); {left}"));
    } else {
        ctx.progress.say(&format!("stopping the processor, MinIO and Kafka ({})", env.kind().name()));
    }
    if let Err(e) = env.shutdown(opts.keep).await {
        ctx.progress.say(&format!("teardown: {e}"));
    }
    // Everything the faults touched is gone with the environment.
    crate::fault::journal::close(&ctx.report_dir);
    match exercised {
        None => ctx.aborted(Abort::Interrupted),
        Some(Err(e)) => ctx.aborted(Abort::Environment(e.to_string())),
        Some(Ok(ex)) => {
            ctx.timings.workload_seconds = ex.workload_seconds;
            ctx.timings.drain_seconds = ex.drain_seconds;
            ctx.timings.drained = ex.history.drained;
            ctx.timings.drain_end = ex.history.drain_end;
            if interrupted {
                ctx.judged_partially(ex.history)
            } else {
                ctx.judged(ex.history)
            }
        }
    }
}

struct Context<'a> {
    scenario: &'a Scenario,
    started_wall: SystemTime,
    started: Instant,
    run_id: String,
    report_dir: PathBuf,
    progress: Progress,
    /// The scenario's secrets: masked in the scenario's copy and every report.
    redactor: Redactor,
    timings: Timings,
    env_info: EnvironmentInfo,
}

impl Context<'_> {
    /// Check, judge and report a history that was recorded to the end.
    fn judged(self, history: History) -> RunOutcome {
        let spec = CheckSpec { thumbnail_width: self.scenario.pipeline.thumbnail_width };
        // The checker is pure and total, but a bug there must make the run Unknown,
        // never crash it or pass it.
        let checked = std::panic::catch_unwind(|| {
            let ledger = check(&history, &spec);
            let metrics = metrics::compute(&ledger);
            let verdicts = judge(&self.scenario.expectations, &history, &ledger, &metrics);
            (ledger, metrics, verdicts)
        });
        let (ledger, metrics, verdicts, error) = match checked {
            Ok((l, m, v)) => (l, m, v, None),
            Err(_) => {
                let err = "the checker crashed; the run cannot be judged (this is a harness bug)".to_string();
                (Ledger::default(), Metrics::default(), self.unknown_all(&err), Some(err))
            }
        };
        self.finish(Some(&history), ledger, metrics, verdicts, error)
    }

    /// A run stopped by Ctrl-C after part of its workload: the ledger, metrics and
    /// fault windows of what happened are reported, every expectation is Unknown.
    fn judged_partially(self, history: History) -> RunOutcome {
        let spec = CheckSpec { thumbnail_width: self.scenario.pipeline.thumbnail_width };
        let err = format!(
            "interrupted (Ctrl-C) after {} of {} uploads; this partial report shows what happened until then",
            history.uploads.len(),
            self.scenario.workload.images
        );
        self.progress.say(&format!("error: {err}"));
        // A checker bug must not lose the partial report: it then has no ledger.
        let (ledger, metrics) = std::panic::catch_unwind(|| {
            let ledger = check(&history, &spec);
            let metrics = metrics::compute(&ledger);
            (ledger, metrics)
        })
        .unwrap_or_default();
        let verdicts = self.unknown_all(&err);
        self.finish(Some(&history), ledger, metrics, verdicts, Some(err))
    }

    fn aborted(self, why: Abort) -> RunOutcome {
        let (err, exit) = match why {
            Abort::Environment(e) => (e, ExitCode::Environment),
            Abort::Interrupted => ("interrupted (Ctrl-C) before the run finished".to_string(), ExitCode::ExpectationFailed),
        };
        self.progress.say(&format!("error: {err}"));
        let verdicts = self.unknown_all(&err);
        let mut outcome = self.finish(None, Ledger::default(), Metrics::default(), verdicts, Some(err));
        outcome.exit = exit;
        outcome.results.exit_code = exit.code();
        if let Err(e) = report::write_all_masked(&outcome.report_dir, &outcome.results, None, &outcome.redactor) {
            eprintln!("error: could not write reports: {e}");
        }
        outcome
    }

    /// The environment failed as a misconfiguration on purpose should make it fail:
    /// the run passes when the harness's diagnosis named the misconfigured address.
    fn diagnosed(self, err: String, named: bool) -> RunOutcome {
        self.progress.say(&format!("environment failed as expected: {err}"));
        let verdicts = self
            .scenario
            .expectations
            .iter()
            .map(|e| {
                let verdict = match e {
                    Expectation::MisconfigurationReported if named => Verdict::Pass,
                    Expectation::MisconfigurationReported => Verdict::Fail,
                    _ => Verdict::Unknown,
                };
                let detail = if named || !matches!(e, Expectation::MisconfigurationReported) {
                    err.clone()
                } else {
                    format!("the harness did not name the misconfigured address as the likely cause: {err}")
                };
                ExpectationResult { id: e.id(), expected: e.describe(), verdict, detail }
            })
            .collect();
        self.finish(None, Ledger::default(), Metrics::default(), verdicts, Some(err))
    }

    fn unknown_all(&self, why: &str) -> Vec<ExpectationResult> {
        self.scenario
            .expectations
            .iter()
            .map(|e| ExpectationResult { id: e.id(), expected: e.describe(), verdict: Verdict::Unknown, detail: why.to_string() })
            .collect()
    }

    fn finish(
        self,
        history: Option<&History>,
        ledger: Ledger,
        metrics: Metrics,
        verdicts: Vec<ExpectationResult>,
        error: Option<String>,
    ) -> RunOutcome {
        let outcome_verdict = overall(&verdicts);
        let exit = if outcome_verdict == Verdict::Pass { ExitCode::Passed } else { ExitCode::ExpectationFailed };
        let counts = history.map_or_else(Counts::default, |h| Counts::from_history(h, &ledger.findings));
        let s = self.scenario;
        let results = RunResults {
            schema_version: harness_model::results::SCHEMA_VERSION,
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
            run_id: self.run_id.clone(),
            scenario: ScenarioInfo {
                name: s.name.clone(),
                file: s.file.display().to_string(),
                description: s.description.clone(),
                seed: s.seed,
                images: s.workload.images,
                rate_per_second: s.workload.rate.per_second,
                thumbnail_width: s.pipeline.thumbnail_width,
            },
            started_at: ids::rfc3339(self.started_wall),
            duration_seconds: self.started.elapsed().as_secs_f64(),
            outcome: outcome_verdict,
            exit_code: exit.code(),
            error,
            expectations: verdicts,
            counts,
            metrics,
            timings: self.timings,
            environment: self.env_info,
            findings: ledger.findings,
            ledger: ledger.entries,
            faults: history.map(|h| h.faults.clone()).unwrap_or_default(),
        };
        // The scenario copy comes first: report.html embeds the copy, not the original
        // file, which may have changed since the run started.
        if let Err(e) = std::fs::create_dir_all(&self.report_dir)
            .and_then(|()| std::fs::write(self.report_dir.join("scenario.yaml"), self.redactor.redact(s.source_text.as_bytes())))
        {
            eprintln!("error: could not copy the scenario into the reports: {e}");
        }
        if let Err(e) = report::write_all_masked(&self.report_dir, &results, history, &self.redactor) {
            eprintln!("error: could not write reports: {e}");
        }
        RunOutcome { results, report_dir: self.report_dir, exit, redactor: self.redactor }
    }
}

fn env_info(s: &Scenario) -> EnvironmentInfo {
    EnvironmentInfo { kind: s.environment.kind.name().into(), processor: s.processor.label(), services: Vec::new() }
}

fn processor_version(s: &Scenario) -> String {
    match &s.processor.kind {
        harness_model::scenario::ProcessorKind::Builtin(_) => format!("harness-processor {}", harness_processor_version()),
        harness_model::scenario::ProcessorKind::Command(argv) => format!("command: {}", argv.join(" ")),
        harness_model::scenario::ProcessorKind::Image(image) => format!("image {image}"),
        harness_model::scenario::ProcessorKind::Running => format!("the pipeline's own, consumer group {}", s.processor.group_id),
    }
}

/// The reference processor is built from this workspace, so it has our version.
fn harness_processor_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Longest the drain waits after everything is accounted for, to catch late duplicates.
pub(crate) const SETTLE: Duration = Duration::from_secs(2);

/// The folder that holds a run's reports, for messages.
pub fn display_dir(p: &Path) -> String {
    p.display().to_string()
}
