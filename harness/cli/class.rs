//! `harness class ROSTER`: the command line of [`harness_core::class`].

use std::path::PathBuf;
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use harness_core::class::{self, report, Options, Verdict};
use harness_model::exit::ExitCode;
use harness_model::roster;

pub const CLASS_HELP: &str = "Examples:
  harness class class.yaml                      # every student: lint, then doctor
  harness class --jobs 1 --reports out/class class.yaml
  harness class --check class.yaml              # check the roster only
  harness class --schema > roster.schema.json

A roster:
  defaults: { context: kind-class, topic: minio-events, budget: 60s }
  weights: { canary: 3 }                        # points per link in class.csv (default 1)
  students:
    - { name: alice, namespace: alice, manifests: alice/k8s }
    - { name: bob, context: kind-bob, manifests: 'https://git.example.org/bob/k8s.git' }
    - { name: carol, s3_endpoint: 'http://127.0.0.1:9000', kafka_bootstrap: '127.0.0.1:9094',
        access_key_env: CAROL_USER, secret_key_env: CAROL_SECRET,   # port-forwards
        run: { images: 10, thumbnail_width: 200, p95: 10s } }       # and a short run

For each student, at most --jobs at once and within the student's budget: `harness lint`
of their manifests (a git URL is cloned first), then `harness doctor` of their live setup
(walked from a pod in their namespace, which carries only the credentials found there),
then, with `run:` and no broken link, a short `kind: external` run against their own
processor (exactly once, end-to-end latency; its objects removed). One line per student
as they finish. Ctrl-C stops the running checks (each deletes its probe pod), starts no more and
writes the partial report.

Reports: class.html (students × links, most broken first; hover a cell for what was seen;
a name opens the student's doctor report), junit.xml (a testsuite per student, a testcase
per link), class.json, class.csv (points per link), students/<name>/ (doctor.json,
junit.xml, report.html, lint.json, run/).

Exit codes: 0 every student's pipeline works (warnings allowed) · 1 a student's is broken,
not diagnosed, or the class was interrupted · 2 invalid roster or command line · 3 the
reports could not be written";

#[derive(clap::Args)]
pub struct ClassArgs {
    /// The roster (YAML): defaults, weights and one entry per student.
    #[arg(value_name = "ROSTER", required_unless_present = "schema")]
    roster: Option<PathBuf>,
    /// Students checked at once [default: twice the machine's cores, 2 to 16].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
    /// The class's folder [default: reports/class-<unix time>].
    #[arg(long, value_name = "DIR")]
    reports: Option<PathBuf>,
    /// Limit of each of the doctor's probes, e.g. `3s`.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = crate::doctor::parse_duration)]
    timeout: Duration,
    /// Check the roster and print its students; check no one.
    #[arg(long)]
    check: bool,
    /// Print the roster's JSON Schema.
    #[arg(long, conflicts_with_all = ["roster", "check"])]
    schema: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

pub fn class(runtime: &tokio::runtime::Runtime, args: ClassArgs) -> ProcessExit {
    if args.schema {
        println!("{}", serde_json::to_string_pretty(&roster::json_schema()).unwrap_or_default());
        return ProcessExit::SUCCESS;
    }
    let Some(file) = args.roster else { return ProcessExit::from(ExitCode::InvalidInput.code()) };
    let roster = match roster::load(&file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ProcessExit::from(ExitCode::InvalidInput.code());
        }
    };
    if args.check {
        for s in &roster.students {
            let mut what = Vec::new();
            if let Some(ns) = &s.namespace {
                what.push(format!("namespace {ns}{}", s.context.as_deref().map(|c| format!(" of context {c}")).unwrap_or_default()));
            }
            if let (Some(s3), Some(k)) = (&s.s3_endpoint, &s.kafka_bootstrap) {
                what.push(format!("S3 {s3}, Kafka {k}"));
            }
            if let Some(m) = &s.manifests {
                what.push(format!("manifests {m}"));
            }
            println!("{}: {}", s.name, what.join("; "));
        }
        println!("ok: {} student(s)", roster.students.len());
        return ProcessExit::SUCCESS;
    }
    let harness_bin = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: finding the harness executable: {e}");
            return ProcessExit::from(ExitCode::Environment.code());
        }
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let jobs = args.jobs.map(usize::from).unwrap_or((cores * 2).clamp(2, 16));
    let reports = args.reports.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        PathBuf::from("reports").join(format!("class-{now}"))
    });
    let opts = Options { harness_bin, reports: reports.clone(), jobs, probe_timeout: args.timeout, roster: file.display().to_string() };
    let quiet = args.quiet;
    let progress = move |m: &str| {
        if !quiet {
            eprintln!("class: {m}");
        }
    };
    progress(&format!("{} student(s), {jobs} at once; reports in {}/", roster.students.len(), reports.display()));
    let result = runtime.block_on(class::run(&roster, &opts, &progress));
    if let Err(e) = report::write_all(&result, &reports) {
        eprintln!("error: writing the class's reports into {}: {e}", reports.display());
        return ProcessExit::from(ExitCode::Environment.code());
    }
    let working = result.students.iter().filter(|s| matches!(s.verdict, Verdict::Healthy | Verdict::Warnings)).count();
    println!(
        "class: {working}/{} students' pipelines work ({:.1} s, {jobs} at once){}",
        result.students.len(),
        result.millis as f64 / 1000.0,
        if result.interrupted { "; interrupted (Ctrl-C): a partial report" } else { "" }
    );
    for (col, ok, of) in report::summary(&result) {
        println!("  {ok:>3}/{of:<3} {}", col.label());
    }
    println!("reports: {}/class.html (junit.xml, class.json, class.csv)", reports.display());
    if working == result.students.len() && !result.interrupted {
        ProcessExit::SUCCESS
    } else {
        ProcessExit::from(ExitCode::ExpectationFailed.code())
    }
}
