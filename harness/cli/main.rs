//! `harness`: command-line parsing and dispatch only. The work lives in
//! `harness-core` (engine) and `harness-model` (scenarios, checker, verdicts).

mod class;
mod compare;
mod doctor;
mod lint;
mod repeat;

use std::path::PathBuf;
use std::process::ExitCode as ProcessExit;

use clap::{Parser, Subcommand};
use harness_core::engine::images::ImageSource;
use harness_core::run::{run, RunOptions};
use harness_model::exit::ExitCode;
use harness_model::scenario::{self, Scenario};

const EXIT_CODES: &str = "\
Exit codes:
  0  every expectation was met
  1  an expectation failed or could not be judged (unknown), or the run was interrupted
  2  invalid scenario file or command line
  3  the environment could not be provisioned or started";

/// End-to-end test and chaos harness for MinIO → Kafka → processor image pipelines.
#[derive(Parser)]
#[command(name = "harness", version, about, propagate_version = true, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against real Kafka and MinIO and judge the pipeline.
    #[command(after_help = "Examples:
  harness run scenarios/smoke.yaml
  harness run --keep scenarios/smoke.yaml       # keep Kafka/MinIO data for debugging
  harness run --reports /tmp/out scenarios/*.yaml
  harness run --repeat 5 a.yaml b.yaml           # a b a b …, then medians with CIs
  harness run --env containers scenarios/smoke.yaml   # the same scenario on containers
  harness run --env kubernetes scenarios/smoke.yaml   # on the cluster KUBECONFIG names
                                                      # (or the one `ci/k8s up` started)

Each run writes reports/<run-id>/: report.html, junit.xml, results.json, history.json,
scenario.yaml and logs/ (Kafka, MinIO, processor; the run's secret masked).

Exit codes: 0 passed · 1 an expectation failed or unknown · 2 invalid scenario · 3 environment did not start")]
    Run {
        /// Scenario files (YAML).
        #[arg(required = true, value_name = "SCENARIO")]
        files: Vec<PathBuf>,
        /// Folder for reports; each run gets `<folder>/<run-id>/`.
        #[arg(long, default_value = "reports", value_name = "DIR")]
        reports: PathBuf,
        /// Keep Kafka's and MinIO's data directories after the run (logs are always kept).
        #[arg(long)]
        keep: bool,
        /// No progress lines on stderr (the summary is still printed).
        #[arg(long, short)]
        quiet: bool,
        /// Run every scenario N times, interleaved, into <reports>/<name>-x<N>-<time>/,
        /// and print medians with confidence intervals (for `harness compare`).
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeat: u32,
        /// Run on this environment instead of the one the file names (`local`,
        /// `containers` through the engine DOCKER_HOST names, or `kubernetes` on the
        /// current context of KUBECONFIG, else of ~/.kube/config, else of the
        /// harness's own cluster from `ci/k8s up`).
        #[arg(long, value_name = "KIND", value_parser = parse_env_kind)]
        env: Option<scenario::EnvKind>,
        /// Containers and kubernetes environments: `local` images built here (`harness images build`;
        /// no registry needed), or `official` apache/kafka and minio/minio pulled by
        /// the engine (HARNESS_KAFKA_IMAGE / HARNESS_MINIO_IMAGE override them).
        #[arg(long, value_name = "SOURCE", default_value = "local", value_parser = parse_image_source)]
        images: ImageSource,
    },
    /// Decide whether CURRENT runs regressed against BASELINE runs (throughput, latency).
    #[command(after_help = compare::COMPARE_HELP)]
    Compare(compare::CompareArgs),
    /// Print medians of runs for dashboards: Bencher Metric Format or github-action-benchmark JSON.
    #[command(after_help = "Examples:
  harness export --format bencher reports/reference-gate-x5-1767225600 > bmf.json
  harness export --format gab-bigger reports/ > throughput.json   # customBiggerIsBetter
  harness export --format gab-smaller reports/ > latency.json     # customSmallerIsBetter")]
    Export(compare::ExportArgs),
    /// Diagnose an existing pipeline link by link: what is broken, why, and what to change.
    #[command(after_help = doctor::DOCTOR_HELP)]
    Doctor(Box<doctor::DoctorArgs>),
    /// Check a whole class: every student's manifests and pipeline, one report.
    #[command(after_help = class::CLASS_HELP)]
    Class(Box<class::ClassArgs>),
    /// Check Kubernetes manifests of the pipeline without a cluster (file:line, cause, fix).
    #[command(after_help = lint::LINT_HELP)]
    Lint(lint::LintArgs),
    /// Check scenario files without running them.
    #[command(after_help = "Examples:\n  harness validate scenarios/*.yaml\n  harness validate --env containers scenarios/faults/*.yaml")]
    Validate {
        #[arg(required = true, value_name = "SCENARIO")]
        files: Vec<PathBuf>,
        /// Check as if the files named this environment (`local`, `containers` or `kubernetes`).
        #[arg(long, value_name = "KIND", value_parser = parse_env_kind)]
        env: Option<scenario::EnvKind>,
    },
    /// Print the JSON Schema of scenario files (committed as scenarios/schema.json).
    Schema,
    /// Fetch Kafka's jars and build MinIO into the cache now, so the first run is fast.
    #[command(after_help = "Cache: $HARNESS_CACHE_DIR, else $XDG_CACHE_HOME/harness, else ~/.cache/harness.
Use an extracted Kafka release with KAFKA_HOME, or a MinIO binary with MINIO_BIN.")]
    Provision,
    /// Build the containers environment's images (Kafka, MinIO, processor) in the container engine.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Run the reference processor (reads the processor contract's environment variables).
    #[command(after_help = "Environment: KAFKA_BOOTSTRAP_SERVERS KAFKA_TOPIC KAFKA_GROUP_ID S3_ENDPOINT
AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION SOURCE_BUCKET TARGET_BUCKET THUMBNAIL_WIDTH
[PROCESSOR_CONCURRENCY]
Test knob: PROCESSOR_SLOWDOWN_PERCENT=N burns N % extra CPU time per image (regression-gate A/B runs).")]
    Processor,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Provision, then build whichever images are missing and print the three references.
    #[command(after_help = "Example:
  ci/podman                      # here: starts podman's Docker-compatible service
  export DOCKER_HOST=unix:///run/harness/podman.sock
  harness images build

The engine is the one DOCKER_HOST names (default unix:///var/run/docker.sock): Docker, or
podman's compatible service. Images are tagged by a hash of their contents, so an image that
exists is reused. The first build makes a Debian root filesystem with debootstrap (needs root),
cached in <cache>/images/.

Exit codes: 0 built or already there · 3 provisioning, the engine or a build failed")]
    Build,
    /// List the images `harness images build` made (label io.harness.image).
    List,
}

fn main() -> ProcessExit {
    let cli = Cli::parse();
    // Long steps (building MinIO, fetching Kafka) draw a live line on a terminal;
    // elsewhere they write a plain line every 30 s.
    let quiet = matches!(cli.command, Command::Run { quiet: true, .. });
    harness_core::status::set_live(!quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ProcessExit::from(ExitCode::Environment.code());
        }
    };
    match cli.command {
        Command::Processor => runtime.block_on(harness_processor::main_from_env()),
        Command::Schema => {
            let schema = scenario::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema).unwrap_or_default());
            ProcessExit::SUCCESS
        }
        Command::Validate { files, env } => match load_all(&files, env) {
            Ok(scenarios) => {
                for s in scenarios {
                    println!("ok: {} ({}: {} expectations)", s.file.display(), s.name, s.expectations.len());
                }
                ProcessExit::SUCCESS
            }
            Err(code) => code,
        },
        Command::Provision => {
            init_tracing();
            runtime.block_on(async {
                match harness_core::services::provision::provision(&|m| eprintln!("{m}")).await {
                    Ok(tc) => {
                        println!("kafka {} ({})", tc.kafka_version, tc.kafka_libs.display());
                        println!("minio {} ({})", tc.minio_version, tc.minio_bin.display());
                        if let Some(line) = harness_model::results::provisioned_line(&tc.provisioned) {
                            eprintln!("{line}");
                        }
                        ProcessExit::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ProcessExit::from(ExitCode::Environment.code())
                    }
                }
            })
        }
        Command::Images(command) => {
            init_tracing();
            let result = runtime.block_on(images(command));
            result.unwrap_or_else(|e| {
                eprintln!("error: {e}");
                ProcessExit::from(ExitCode::Environment.code())
            })
        }
        Command::Compare(args) => compare::compare(args),
        Command::Doctor(args) => doctor::doctor(&runtime, *args),
        Command::Class(args) => class::class(&runtime, *args),
        Command::Lint(args) => lint::run(args),
        Command::Export(args) => compare::export(args),
        Command::Run { files, reports, keep, quiet, repeat, env, images } => {
            init_tracing();
            let scenarios = match load_all(&files, env) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let opts = RunOptions { reports_root: reports, keep, quiet, images };
            if repeat > 1 {
                let exits = repeat::run_repeated(&runtime, &scenarios, &opts, repeat);
                return ProcessExit::from(exits.into_iter().fold(ExitCode::Passed, worse).code());
            }
            let mut worst = ExitCode::Passed;
            for s in &scenarios {
                let outcome = runtime.block_on(run(s, &opts));
                print!("{}", outcome.summary());
                worst = worse(worst, outcome.exit);
            }
            ProcessExit::from(worst.code())
        }
    }
}

/// `harness images build|list`; any error is the environment's (exit 3).
async fn images(command: ImagesCommand) -> Result<ProcessExit, Box<dyn std::error::Error>> {
    use harness_core::engine::{connect, images};
    let progress = |m: &str| eprintln!("{m}");
    match command {
        ImagesCommand::Build => {
            let tc = harness_core::services::provision::provision(&progress).await?;
            let docker = connect().await?;
            let exe = std::env::current_exe().map_err(|e| format!("finding the harness executable: {e}"))?;
            let set = images::ensure_images(&docker, &tc, &exe, &progress).await?;
            println!("kafka     {}", set.kafka);
            println!("minio     {}", set.minio);
            println!("processor {}", set.processor);
        }
        ImagesCommand::List => {
            for image in images::list_images(&connect().await?).await? {
                println!("{:<9} {:>6.0} MB  {}", image.kind, image.size_bytes as f64 / 1e6, image.reference);
            }
        }
    }
    Ok(ProcessExit::SUCCESS)
}

/// Validates every file before anything runs; prints every error, not just the first.
/// With `env`, each scenario is checked for that environment instead of its own.
fn load_all(files: &[PathBuf], env: Option<scenario::EnvKind>) -> Result<Vec<Scenario>, ProcessExit> {
    let mut ok = Vec::new();
    let mut failed = false;
    for f in files {
        let loaded = scenario::load(f).and_then(|s| match env {
            Some(kind) => s.on_environment(kind),
            None => Ok(s),
        });
        match loaded {
            Ok(s) => ok.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(ProcessExit::from(ExitCode::InvalidInput.code()))
    } else {
        Ok(ok)
    }
}

fn parse_image_source(s: &str) -> Result<ImageSource, String> {
    match s {
        "local" => Ok(ImageSource::Local),
        "official" => Ok(ImageSource::Official),
        other => Err(format!("unknown image source {other:?}; available: local, official")),
    }
}

fn parse_env_kind(s: &str) -> Result<scenario::EnvKind, String> {
    match s {
        "local" => Ok(scenario::EnvKind::Local),
        "containers" => Ok(scenario::EnvKind::Containers),
        "kubernetes" => Ok(scenario::EnvKind::Kubernetes),
        "external" => Ok(scenario::EnvKind::External),
        other => Err(format!("unknown environment {other:?}; available: local, containers, kubernetes, external")),
    }
}

/// Across several runs: an environment failure outranks a failed expectation.
fn worse(a: ExitCode, b: ExitCode) -> ExitCode {
    let rank = |c: ExitCode| match c {
        ExitCode::Passed => 0,
        ExitCode::ExpectationFailed => 1,
        ExitCode::Environment => 2,
        ExitCode::InvalidInput => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn init_tracing() {
    // librdkafka logs every failed connection of the harness's own clients, which
    // faults cause on purpose; the harness reports what matters itself (probes,
    // fault windows, diagnoses). RUST_LOG=librdkafka=info shows them again.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,librdkafka=off,rdkafka::client=off"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
