//! `harness class ROSTER`: a teacher's check of a whole class. For every student of
//! the roster, with at most `jobs` at once and a time budget each: `harness lint` of
//! their manifests and `harness doctor` of their live setup, each a child process of
//! this same binary (so a student's check is exactly what the student would run, and
//! a stopped check cleans up the way a stopped doctor does: SIGINT, and the doctor
//! deletes its probe pod and Secret). Then one matrix of students × links ([`report`]).
//!
//! Read-only: nothing is written into a student's setup but what the doctor writes
//! (its canary, removed; its probe pod and Secret, deleted). For a student given as a
//! namespace, the doctor's child gets no credential variables at all: it reads MinIO's
//! from the namespace, and the teacher's never reach the student's cluster.

pub mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use harness_model::roster::{Column, Manifests, Roster, ShortRun, Student};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::{watch, Semaphore};

use crate::doctor::{Diagnosis, Link, Severity};

/// How the class is checked.
pub struct Options {
    /// This binary: lint and doctor run as its children.
    pub harness_bin: PathBuf,
    /// The class's folder: class.html, junit.xml, class.json, class.csv, and
    /// `students/<name>/` with each student's doctor reports and lint.json.
    pub reports: PathBuf,
    /// Students checked at once.
    pub jobs: usize,
    /// The doctor's `--timeout` (each probe).
    pub probe_timeout: Duration,
    /// The roster's file, as named on the command line (for the reports).
    pub roster: String,
}

/// A cell's state, from least to most telling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not reached: the student's check stopped before it (budget, Ctrl-C, a failed doctor).
    NotChecked,
    /// The doctor skipped it (a link before it is broken, or not asked for).
    Skipped,
    Ok,
    Warning,
    Error,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::NotChecked => "not checked",
            State::Skipped => "skipped",
            State::Ok => "ok",
            State::Warning => "warning",
            State::Error => "broken",
        }
    }
    /// Counts for points: the link works (a warning included).
    pub fn works(self) -> bool {
        matches!(self, State::Ok | State::Warning)
    }
}

/// One student's verdict on one link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub state: State,
    /// The first finding of that state: what was checked and seen.
    pub line: String,
    /// Its cause and fix, for errors and warnings.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    Warnings,
    Broken,
    /// The student's checks did not end within their budget.
    OverBudget,
    /// The doctor or lint gave no answer that could be read.
    Failed,
    /// Ctrl-C: stopped, or never started.
    Interrupted,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Warnings => "works, with warnings",
            Verdict::Broken => "broken",
            Verdict::OverBudget => "over its budget",
            Verdict::Failed => "not diagnosed",
            Verdict::Interrupted => "interrupted",
        }
    }
}

/// One student's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudentResult {
    pub name: String,
    pub verdict: Verdict,
    /// The doctor's first line (or lint's first error, or why neither answered).
    pub first_line: String,
    /// The first broken link, in the chain's order.
    pub first_broken: Option<Column>,
    /// A cell per link that applies to this student (manifests only when given, the
    /// cluster only for a namespace).
    pub cells: BTreeMap<Column, Cell>,
    pub points: f64,
    pub max_points: f64,
    pub millis: u64,
    /// The doctor's report.html, relative to the class's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

impl StudentResult {
    pub fn errors(&self) -> usize {
        self.cells.values().filter(|c| c.state == State::Error).count()
    }
}

/// The class's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassResult {
    pub roster: String,
    pub jobs: usize,
    pub millis: u64,
    pub interrupted: bool,
    pub weights: BTreeMap<Column, f64>,
    /// Most broken first.
    pub students: Vec<StudentResult>,
}

/// What a child process did.
enum Ended {
    Exited { code: Option<i32>, stdout: String, stderr: String },
    OverBudget { stderr: String },
    Interrupted,
    NotStarted(String),
}

/// At most this much of a child's output is kept (a doctor's JSON is a few KiB).
const MAX_OUTPUT: u64 = 4 << 20;
/// After SIGINT, how long a child has to clean up (delete its probe pod) before SIGKILL.
const GRACE: Duration = Duration::from_secs(30);

/// Checks every student; Ctrl-C stops the running checks (each cleans up) and starts
/// no more, and the result says which were not checked.
pub async fn run(roster: &Roster, opts: &Options, progress: &(dyn Fn(&str) + Sync)) -> ClassResult {
    let started = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;

    // The probe pod's image, built and loaded once per cluster, not by every doctor at once.
    let contexts: BTreeSet<Option<String>> =
        roster.students.iter().filter(|s| s.namespace.is_some() && s.s3_endpoint.is_none()).map(|s| s.context.clone()).collect();
    let mut images: BTreeMap<Option<String>, String> = BTreeMap::new();
    for context in contexts {
        progress(&format!("the probe pod's image on cluster {}", context.as_deref().unwrap_or("(current context)")));
        let load = crate::env::kubernetes::harness_image(context.as_deref(), &opts.harness_bin, progress);
        tokio::select! {
            image = load => match image {
                Ok(image) => { images.insert(context, image); }
                // That student's own doctor says why (a missing context, no engine).
                Err(e) => progress(&format!("  not loaded: {e}")),
            },
            _ = &mut ctrl_c => { interrupted = true; break; }
        }
    }

    let total = roster.students.len();
    let mut results: Vec<Option<StudentResult>> = vec![None; total];
    if !interrupted {
        let slots = Arc::new(Semaphore::new(opts.jobs.max(1)));
        let mut checks = futures::stream::FuturesUnordered::new();
        for (i, s) in roster.students.iter().enumerate() {
            let (slots, stop) = (slots.clone(), stop_rx.clone());
            let image = images.get(&s.context).cloned();
            checks.push(async move {
                let Ok(_slot) = slots.acquire_owned().await else { return (i, not_checked(s, roster)) };
                if *stop.borrow() {
                    return (i, not_checked(s, roster));
                }
                (i, check(s, roster, opts, image.as_deref(), stop).await)
            });
        }
        let mut done = 0;
        loop {
            tokio::select! {
                next = checks.next() => match next {
                    Some((i, r)) => {
                        done += 1;
                        progress(&format!("{done:>3}/{total} {}: {} ({:.1} s)", r.name, r.first_line, r.millis as f64 / 1000.0));
                        results[i] = Some(r);
                    }
                    None => break,
                },
                _ = &mut ctrl_c, if !interrupted => {
                    interrupted = true;
                    let _ = stop_tx.send(true);
                    progress("interrupted (Ctrl-C): stopping the running checks (each deletes its probe pod), starting no more");
                }
            }
        }
    }
    let mut students: Vec<StudentResult> =
        results.into_iter().zip(&roster.students).map(|(r, s)| r.unwrap_or_else(|| not_checked(s, roster))).collect();
    sort_most_broken_first(&mut students);
    ClassResult {
        roster: opts.roster.clone(),
        jobs: opts.jobs,
        millis: started.elapsed().as_millis() as u64,
        interrupted,
        weights: roster.weights.clone(),
        students,
    }
}

/// Most broken first: more broken links, then fewer points, then by name.
pub fn sort_most_broken_first(students: &mut [StudentResult]) {
    let ratio = |s: &StudentResult| if s.max_points > 0.0 { s.points / s.max_points } else { 0.0 };
    students.sort_by(|a, b| {
        b.errors()
            .cmp(&a.errors())
            .then(b.verdict.cmp(&a.verdict))
            .then(ratio(a).partial_cmp(&ratio(b)).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.name.cmp(&b.name))
    });
}

/// The links that apply to a student.
fn columns(s: &Student) -> Vec<Column> {
    Column::ALL
        .into_iter()
        .filter(|c| match c {
            Column::Manifests => s.manifests.is_some(),
            Column::Cluster => s.namespace.is_some(),
            Column::ExactlyOnce | Column::Latency => s.run.is_some() && s.is_live(),
            _ => s.is_live(),
        })
        .collect()
}

fn not_checked(s: &Student, roster: &Roster) -> StudentResult {
    let cells =
        columns(s).into_iter().map(|c| (c, Cell { state: State::NotChecked, line: "not checked".into(), detail: String::new() })).collect();
    finish(s, roster, cells, (Verdict::Interrupted, "not checked: the class was interrupted (Ctrl-C)".into(), None), 0, None)
}

/// Points, the first broken link and the verdict's order, from the cells.
fn finish(
    s: &Student,
    roster: &Roster,
    cells: BTreeMap<Column, Cell>,
    (verdict, first_line, first_broken): (Verdict, String, Option<Column>),
    millis: u64,
    report: Option<String>,
) -> StudentResult {
    let weight = |c: &Column| roster.weights.get(c).copied().unwrap_or(1.0);
    // `+ 0.0`: the sum of nothing is -0.0, which would print as "-0".
    let points = cells.iter().filter(|(_, cell)| cell.state.works()).map(|(c, _)| weight(c)).sum::<f64>() + 0.0;
    let max_points = cells.keys().map(weight).sum::<f64>() + 0.0;
    let first_broken = first_broken.or_else(|| cells.iter().find(|(_, cell)| cell.state == State::Error).map(|(c, _)| *c));
    StudentResult { name: s.name.clone(), verdict, first_line, first_broken, cells, points, max_points, millis, report }
}

/// One student: lint, then the doctor, within the student's budget.
async fn check(s: &Student, roster: &Roster, opts: &Options, image: Option<&str>, stop: watch::Receiver<bool>) -> StudentResult {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + s.budget;
    let dir = opts.reports.join("students").join(&s.name);
    let mut cells: BTreeMap<Column, Cell> =
        columns(s).into_iter().map(|c| (c, Cell { state: State::NotChecked, line: "not checked".into(), detail: String::new() })).collect();
    let mut verdict = None;
    let mut first_line = None;
    let budget_line = || format!("over its budget of {:.0} s (the roster's `budget`): stopped", s.budget.as_secs_f64());
    if let Err(e) = std::fs::create_dir_all(&dir) {
        let line = format!("cannot write the student's reports into {}: {e}", dir.display());
        return finish(s, roster, cells, (Verdict::Failed, line, None), 0, None);
    }

    if let Some(manifests) = &s.manifests {
        let folder = match manifests {
            Manifests::Folder(p) => Ok(p.clone()),
            Manifests::Git(url) => clone(url, &dir.join("manifests"), deadline, stop.clone()).await,
        };
        let ended = match folder {
            Ok(folder) => {
                let mut cmd = tokio::process::Command::new(&opts.harness_bin);
                cmd.arg("lint").arg("--format").arg("json").arg(folder);
                child(cmd, deadline, stop.clone()).await
            }
            Err(ended) => ended,
        };
        let cell = match ended {
            Ended::Exited { code: None, stdout, stderr } if stdout.starts_with(CLONE_FAILED) => {
                Cell { state: State::Error, line: format!("{stdout}: {}", tail(&stderr)), detail: String::new() }
            }
            Ended::Exited { code, stdout, stderr } => {
                let _ = std::fs::write(dir.join("lint.json"), &stdout);
                lint_cell(code, &stdout, &stderr)
            }
            Ended::OverBudget { .. } => {
                verdict = Some(Verdict::OverBudget);
                first_line = Some(budget_line());
                Cell { state: State::NotChecked, line: "lint did not end within the budget".into(), detail: String::new() }
            }
            Ended::Interrupted => {
                verdict = Some(Verdict::Interrupted);
                first_line = Some("interrupted (Ctrl-C) during lint".into());
                Cell { state: State::NotChecked, line: "interrupted".into(), detail: String::new() }
            }
            Ended::NotStarted(e) => Cell { state: State::Error, line: format!("harness lint did not start: {e}"), detail: String::new() },
        };
        cells.insert(Column::Manifests, cell);
    }

    let mut report = None;
    let mut doctor_broken = false;
    let mut doctor_first = None;
    if s.is_live() && verdict.is_none() {
        let mut cmd = tokio::process::Command::new(&opts.harness_bin);
        cmd.args(doctor_args(s, &dir, opts.probe_timeout, image));
        if s.s3_endpoint.is_none() {
            // The namespace's own credentials only: the teacher's stay here.
            cmd.env_remove(&s.access_key_env).env_remove(&s.secret_key_env);
        }
        match child(cmd, deadline, stop.clone()).await {
            Ended::Exited { code, stdout, stderr } => match read_diagnosis(&stdout) {
                Ok((d, said)) => {
                    for (column, cell) in doctor_cells(&d) {
                        cells.insert(column, cell);
                    }
                    doctor_broken = d.first_error().is_some();
                    // The live chain's first break is the student's first broken link; the
                    // manifests' only when the pipeline itself works.
                    doctor_first = d.first_error().map(|f| column_of(f.link));
                    first_line = Some(said);
                    if dir.join("report.html").exists() {
                        report = Some(format!("students/{}/report.html", s.name));
                    }
                }
                Err(e) => {
                    verdict = Some(Verdict::Failed);
                    first_line = Some(format!("the doctor gave no answer (exit {code:?}: {e}): {}", tail(&stderr)));
                }
            },
            Ended::OverBudget { stderr } => {
                verdict = Some(Verdict::OverBudget);
                first_line = Some(format!("{}; its doctor was at: {}", budget_line(), tail(&stderr)));
            }
            Ended::Interrupted => {
                verdict = Some(Verdict::Interrupted);
                first_line = Some("interrupted (Ctrl-C) while the doctor ran; its probe pod was deleted".into());
            }
            Ended::NotStarted(e) => {
                verdict = Some(Verdict::Failed);
                first_line = Some(format!("harness doctor did not start: {e}"));
            }
        }
    }

    // The short run, when asked for and the doctor found every link working.
    let mut run_broken = None;
    if let (Some(run), None) = (&s.run, verdict) {
        if doctor_broken {
            for c in [Column::ExactlyOnce, Column::Latency] {
                cells.insert(
                    c,
                    Cell { state: State::Skipped, line: "not run: the doctor found a broken link".into(), detail: String::new() },
                );
            }
        } else {
            match short_run(s, run, opts, &dir, deadline, stop).await {
                Ok(run_cells) => {
                    run_broken = run_cells.iter().find(|(_, c)| c.state == State::Error).map(|(_, c)| format!("short run: {}", c.line));
                    cells.extend(run_cells);
                }
                Err((v, line)) => {
                    verdict = Some(v);
                    first_line = Some(line);
                }
            }
        }
    }

    let worst = cells.values().map(|c| c.state).max().unwrap_or(State::Ok);
    let verdict = verdict.unwrap_or(match worst {
        State::Error => Verdict::Broken,
        State::Warning => Verdict::Warnings,
        _ => Verdict::Healthy,
    });
    // The doctor's first line when it found the break (or all is well); the short run's
    // failure when the links all work; lint's first error when only the manifests are wrong.
    let manifests_broken = cells.get(&Column::Manifests).filter(|c| c.state == State::Error).map(|c| format!("manifests: {}", c.line));
    let stopped = matches!(verdict, Verdict::OverBudget | Verdict::Failed | Verdict::Interrupted);
    let first_line = match (first_line, manifests_broken, run_broken) {
        (Some(l), _, _) if doctor_broken || stopped => l,
        (_, _, Some(r)) => r,
        (_, Some(m), None) => m,
        (Some(l), None, None) => l,
        (None, None, None) => cells.get(&Column::Manifests).map(|c| format!("manifests: {}", c.line)).unwrap_or_else(|| "checked".into()),
    };
    finish(s, roster, cells, (verdict, first_line, doctor_first), started.elapsed().as_millis() as u64, report)
}

/// What a failed clone's `Ended::Exited` carries on stdout (its own, never lint's).
const CLONE_FAILED: &str = "git clone of the manifests failed";

/// `git clone --depth 1` of a student's repository into `into` (emptied first), within
/// the budget; never a prompt for credentials (no terminal, `GIT_TERMINAL_PROMPT=0`).
/// A failed clone comes back as an `Ended` whose stdout starts with [`CLONE_FAILED`].
async fn clone(url: &str, into: &Path, deadline: tokio::time::Instant, stop: watch::Receiver<bool>) -> Result<PathBuf, Ended> {
    let _ = std::fs::remove_dir_all(into);
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(["clone", "--depth", "1", "--single-branch", "--no-tags", "--quiet", "--", url])
        .arg(into)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true");
    match child(cmd, deadline, stop).await {
        Ended::Exited { code: Some(0), .. } => Ok(into.to_path_buf()),
        Ended::Exited { code, stderr, .. } => {
            let exit = code.map(|c| format!("exit {c}")).unwrap_or_else(|| "killed".into());
            Err(Ended::Exited { code: None, stdout: format!("{CLONE_FAILED} ({url}, {exit})"), stderr })
        }
        Ended::NotStarted(e) => {
            Err(Ended::Exited { code: None, stdout: format!("{CLONE_FAILED} ({url}): git did not start: {e}"), stderr: String::new() })
        }
        other => Err(other),
    }
}

/// `harness run` of a short external run against the student's own pipeline (its
/// scenario and reports in `students/<name>/run*`): the exactly-once and latency cells,
/// or the verdict that stopped it (budget, Ctrl-C).
async fn short_run(
    s: &Student,
    run: &ShortRun,
    opts: &Options,
    dir: &Path,
    deadline: tokio::time::Instant,
    stop: watch::Receiver<bool>,
) -> Result<Vec<(Column, Cell)>, (Verdict, String)> {
    let broken = |line: String| {
        Ok(vec![
            (Column::ExactlyOnce, Cell { state: State::Error, line: line.clone(), detail: String::new() }),
            (Column::Latency, Cell { state: State::Error, line, detail: String::new() }),
        ])
    };
    let scenario = dir.join("run.yaml");
    let reports = dir.join("run");
    let _ = std::fs::remove_dir_all(&reports);
    if let Err(e) = std::fs::write(&scenario, short_run_scenario(s, run)) {
        return broken(format!("cannot write {}: {e}", scenario.display()));
    }
    let mut cmd = tokio::process::Command::new(&opts.harness_bin);
    cmd.arg("run").arg("--reports").arg(&reports).arg(&scenario);
    if s.s3_endpoint.is_none() {
        // As for the doctor: the namespace's own credentials only.
        cmd.env_remove(&s.access_key_env).env_remove(&s.secret_key_env);
    }
    let stderr = match child(cmd, deadline, stop).await {
        Ended::Exited { stderr, .. } => stderr,
        Ended::OverBudget { stderr } => {
            return Err((
                Verdict::OverBudget,
                format!(
                    "over its budget of {:.0} s (the roster's `budget`) in the short run, at: {}",
                    s.budget.as_secs_f64(),
                    tail(&stderr)
                ),
            ))
        }
        Ended::Interrupted => {
            return Err((Verdict::Interrupted, "interrupted (Ctrl-C) during the short run; its objects were removed".into()))
        }
        Ended::NotStarted(e) => return broken(format!("harness run did not start: {e}")),
    };
    let results = std::fs::read_dir(&reports).into_iter().flatten().flatten().map(|e| e.path().join("results.json")).find(|p| p.is_file());
    let Some(path) = results else { return broken(format!("the run wrote no results: {}", tail(&stderr))) };
    let mut text = String::new();
    let read = std::fs::File::open(&path).and_then(|f| std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_OUTPUT), &mut text));
    let v: serde_json::Value = match read.map_err(|e| e.to_string()).and_then(|_| serde_json::from_str(&text).map_err(|e| e.to_string())) {
        Ok(v) => v,
        Err(e) => return broken(format!("{} cannot be read: {e}", path.display())),
    };
    let report = path.with_file_name("report.html");
    let report = report.strip_prefix(&opts.reports).unwrap_or(&report).display().to_string();
    if let Some(error) = v["error"].as_str() {
        return broken(format!("the run stopped: {}", error.chars().take(300).collect::<String>()));
    }
    let cell = |id: &str| {
        let e = v["expectations"].as_array().into_iter().flatten().find(|e| e["id"] == id);
        let Some(e) = e else {
            return Cell { state: State::Error, line: format!("the run judged no {id}"), detail: format!("report: {report}") };
        };
        let state = match e["verdict"].as_str() {
            Some("pass") => State::Ok,
            _ => State::Error,
        };
        let detail = e["detail"].as_str().unwrap_or_default().chars().take(300).collect::<String>();
        Cell {
            state,
            line: format!("{id}: {}", detail),
            detail: format!("expected {}; report: {report}", e["expected"].as_str().unwrap_or("?")),
        }
    };
    Ok(vec![(Column::ExactlyOnce, cell("exactly_once")), (Column::Latency, cell("latency.end_to_end.p95"))])
}

/// The short run's scenario: `kind: external` at the student's namespace or endpoints,
/// their own running processor, a few images, exactly once and a p95 bound. JSON, which
/// is YAML, so no name of the roster needs quoting by hand.
pub fn short_run_scenario(s: &Student, run: &ShortRun) -> String {
    let mut external = serde_json::Map::new();
    if let Some(ns) = &s.namespace {
        external.insert("namespace".into(), ns.clone().into());
    }
    if let Some(c) = &s.context {
        external.insert("context".into(), c.clone().into());
    }
    if let (Some(s3), Some(kafka)) = (&s.s3_endpoint, &s.kafka_bootstrap) {
        external.insert("s3_endpoint".into(), s3.clone().into());
        external.insert("kafka_bootstrap".into(), kafka.clone().into());
    }
    external.insert("access_key_env".into(), s.access_key_env.clone().into());
    external.insert("secret_key_env".into(), s.secret_key_env.clone().into());
    let mut processor = serde_json::json!({ "running": true });
    if let Some(g) = &s.group {
        processor["group_id"] = g.clone().into();
    }
    let scenario = serde_json::json!({
        "name": format!("class-{}", s.name),
        "description": "harness class: a short run against the student's own pipeline",
        "environment": { "kind": "external", "external": external },
        "pipeline": {
            "source_bucket": s.source_bucket, "target_bucket": s.target_bucket,
            "topic": s.topic, "thumbnail_width": run.thumbnail_width,
        },
        "processor": processor,
        "workload": { "images": run.images, "rate": "5/s" },
        "expect": {
            "exactly_once": true,
            "latency": { "end_to_end": { "p95": format!("{}ms", run.p95.as_millis()) } },
        },
    });
    serde_json::to_string_pretty(&scenario).unwrap_or_default() + "\n"
}

/// `harness doctor` for one student, JSON on stdout, reports into the student's folder.
fn doctor_args(s: &Student, dir: &Path, probe_timeout: Duration, image: Option<&str>) -> Vec<String> {
    let mut a: Vec<String> = vec!["doctor".into(), "--format".into(), "json".into(), "--quiet".into()];
    let mut kv = |k: &str, v: &str| {
        a.push(k.into());
        a.push(v.into());
    };
    kv("--reports", &dir.display().to_string());
    kv("--topic", &s.topic);
    kv("--source-bucket", &s.source_bucket);
    kv("--target-bucket", &s.target_bucket);
    kv("--access-key-env", &s.access_key_env);
    kv("--secret-key-env", &s.secret_key_env);
    kv("--timeout", &format!("{}ms", probe_timeout.as_millis().max(1)));
    if let Some(g) = &s.group {
        kv("--group", g);
    }
    if let Some(ns) = &s.namespace {
        kv("--namespace", ns);
        if let Some(c) = &s.context {
            kv("--context", c);
        }
    }
    if let (Some(s3), Some(kafka)) = (&s.s3_endpoint, &s.kafka_bootstrap) {
        kv("--s3", s3);
        kv("--kafka", kafka);
    }
    if let (Some(image), None) = (image, &s.s3_endpoint) {
        kv("--probe-image", image);
    }
    if !s.canary {
        a.push("--no-canary".into());
    }
    a
}

/// The doctor's JSON: its findings and its first line.
fn read_diagnosis(stdout: &str) -> Result<(Diagnosis, String), String> {
    let v: serde_json::Value = serde_json::from_str(stdout).map_err(|e| format!("no JSON: {e}"))?;
    let said = v.get("verdict").and_then(|s| s.as_str()).unwrap_or_default();
    let said = said.strip_prefix("doctor: ").unwrap_or(said).to_string();
    let d: Diagnosis = serde_json::from_value(v).map_err(|e| format!("not the doctor's JSON: {e}"))?;
    Ok((d, said))
}

/// The matrix's column of a doctor's link.
pub fn column_of(link: Link) -> Column {
    match link {
        Link::Workloads | Link::TopicResource | Link::Discovery => Column::Cluster,
        Link::S3 => Column::S3,
        Link::Buckets => Column::Buckets,
        Link::BucketNotification => Column::BucketNotification,
        Link::MinioKafkaTarget => Column::MinioKafkaTarget,
        Link::KafkaBootstrap => Column::KafkaBootstrap,
        Link::AdvertisedListeners => Column::AdvertisedListeners,
        Link::Topic => Column::Topic,
        Link::ConsumerGroup => Column::ConsumerGroup,
        Link::Pipeline => Column::Canary,
    }
}

/// Each column's worst finding (the first of that severity), as a cell.
pub fn doctor_cells(d: &Diagnosis) -> BTreeMap<Column, Cell> {
    let mut cells: BTreeMap<Column, Cell> = BTreeMap::new();
    for f in &d.findings {
        let state = match f.severity {
            Severity::Ok => State::Ok,
            Severity::Skipped => State::Skipped,
            Severity::Warning => State::Warning,
            Severity::Error => State::Error,
        };
        let column = column_of(f.link);
        if cells.get(&column).is_some_and(|c| c.state >= state) {
            continue;
        }
        let mut detail = String::new();
        if let Some(c) = &f.cause {
            detail.push_str(&format!("cause: {c}\n"));
        }
        if let Some(x) = &f.fix {
            detail.push_str(&format!("fix: {x}\n"));
        }
        cells.insert(column, Cell { state, line: format!("{}: {}", f.check, f.evidence), detail });
    }
    cells
}

/// `harness lint --format json`'s answer as a cell.
fn lint_cell(code: Option<i32>, stdout: &str, stderr: &str) -> Cell {
    let v: serde_json::Value = match serde_json::from_str(stdout) {
        Ok(v) => v,
        Err(_) => {
            return Cell { state: State::Error, line: format!("harness lint gave no answer: {}", tail(stderr)), detail: String::new() }
        }
    };
    let findings = v["findings"].as_array().cloned().unwrap_or_default();
    let shown = |f: &serde_json::Value| {
        format!(
            "{}:{}: {}[{}]: {}",
            f["file"].as_str().unwrap_or("?"),
            f["line"].as_u64().map(|l| l.to_string()).unwrap_or_default(),
            f["severity"].as_str().unwrap_or(""),
            f["rule"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or("")
        )
    };
    let fix = |f: &serde_json::Value| f["fix"].as_str().map(|x| format!("fix: {x}")).unwrap_or_default();
    let (errors, warnings) = (v["errors"].as_u64().unwrap_or(0), v["warnings"].as_u64().unwrap_or(0));
    if code == Some(2) {
        return Cell { state: State::Error, line: format!("the manifests could not be read: {}", tail(stderr)), detail: String::new() };
    }
    let first = |sev: &str| findings.iter().find(|f| f["severity"] == sev);
    match (first("error"), first("warning")) {
        (Some(f), _) => {
            Cell { state: State::Error, line: format!("{errors} error(s), {warnings} warning(s); first: {}", shown(f)), detail: fix(f) }
        }
        (None, Some(f)) => Cell { state: State::Warning, line: format!("{warnings} warning(s); first: {}", shown(f)), detail: fix(f) },
        (None, None) => {
            let files = v["files"].as_array().map(|a| a.len()).unwrap_or(0);
            Cell { state: State::Ok, line: format!("no findings in {files} file(s)"), detail: String::new() }
        }
    }
}

/// The last line of a child's stderr: where it was.
fn tail(stderr: &str) -> String {
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(nothing on stderr)");
    last.chars().take(300).collect()
}

/// Runs a child until it ends, its budget ends, or the class is interrupted; in the
/// last two cases SIGINT first (the doctor deletes its probe pod), SIGKILL after [`GRACE`].
async fn child(mut cmd: tokio::process::Command, deadline: tokio::time::Instant, mut stop: watch::Receiver<bool>) -> Ended {
    // A group of its own: the terminal's Ctrl-C reaches the class, which stops each
    // child in turn; kill_on_drop: never one left behind by a panic.
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(true);
    let mut c = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Ended::NotStarted(e.to_string()),
    };
    let out = c.stdout.take().map(|o| tokio::spawn(read_capped(o)));
    let err = c.stderr.take().map(|e| tokio::spawn(read_capped(e)));
    let stopped = tokio::select! {
        _ = c.wait() => None,
        _ = tokio::time::sleep_until(deadline) => Some(false),
        _ = stop.wait_for(|s| *s) => Some(true),
    };
    if stopped.is_some() {
        if let Some(pid) = c.id() {
            // SAFETY: a plain kill(2) on our own child's pid, which has not been reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        }
        if tokio::time::timeout(GRACE, c.wait()).await.is_err() {
            let _ = c.kill().await;
        }
    }
    let code = c.wait().await.ok().and_then(|s| s.code());
    let joined = |h: Option<tokio::task::JoinHandle<String>>| async move {
        match h {
            Some(h) => tokio::time::timeout(Duration::from_secs(5), h).await.ok().and_then(Result::ok).unwrap_or_default(),
            None => String::new(),
        }
    };
    let (stdout, stderr) = (joined(out).await, joined(err).await);
    match stopped {
        None => Ended::Exited { code, stdout, stderr },
        Some(false) => Ended::OverBudget { stderr },
        Some(true) => Ended::Interrupted,
    }
}

async fn read_capped(r: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut buf = Vec::new();
    let _ = r.take(MAX_OUTPUT).read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Finding;

    fn finding(link: Link, severity: Severity, check: &str) -> Finding {
        Finding { link, severity, check: check.into(), evidence: "seen".into(), cause: None, fix: None, millis: 0 }
    }

    #[test]
    fn each_column_holds_its_worst_finding_and_the_first_of_it() {
        let d = Diagnosis {
            s3_endpoint: String::new(),
            kafka_bootstrap: String::new(),
            topic: String::new(),
            source_bucket: String::new(),
            target_bucket: String::new(),
            findings: vec![
                finding(Link::Discovery, Severity::Ok, "endpoints"),
                finding(Link::MinioKafkaTarget, Severity::Warning, "queue_dir"),
                finding(Link::MinioKafkaTarget, Severity::Error, "target 1"),
                finding(Link::MinioKafkaTarget, Severity::Error, "target 2"),
                finding(Link::Pipeline, Severity::Skipped, "canary"),
            ],
            millis: 0,
            walked_from: None,
        };
        let cells = doctor_cells(&d);
        assert_eq!(cells[&Column::Cluster].state, State::Ok);
        assert_eq!(cells[&Column::MinioKafkaTarget].state, State::Error);
        assert_eq!(cells[&Column::MinioKafkaTarget].line, "target 1: seen");
        assert_eq!(cells[&Column::Canary].state, State::Skipped);
        assert!(!cells.contains_key(&Column::S3));
    }

    #[test]
    fn a_student_with_nothing_working_has_zero_points_not_minus_zero() {
        let roster = harness_model::roster::parse("students:\n  - { name: a, namespace: a }\n", std::path::Path::new("r.yaml")).unwrap();
        let r = not_checked(&roster.students[0], &roster);
        assert_eq!(format!("{} / {}", r.points, r.max_points), "0 / 10");
        assert!(r.points.is_sign_positive());
    }

    #[test]
    fn the_short_run_is_a_valid_external_scenario_of_the_students_pipeline() {
        let roster = harness_model::roster::parse(
            "defaults: { topic: image-events, run: { images: 7, thumbnail_width: 200, p95: 4s } }
students:
  - { name: alice, namespace: \"al'ice\", context: kind-a, group: resizer }
  - { name: bob, s3_endpoint: 'http://127.0.0.1:9000', kafka_bootstrap: '127.0.0.1:9094', access_key_env: BOB_USER, secret_key_env: BOB_SECRET }
",
            std::path::Path::new("class.yaml"),
        )
        .unwrap();
        for s in &roster.students {
            let text = short_run_scenario(s, s.run.as_ref().unwrap());
            let sc = harness_model::scenario::parse(&text, std::path::Path::new("run.yaml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(sc.environment.kind, harness_model::scenario::EnvKind::External, "{text}");
            let ext = sc.environment.external.as_ref().unwrap();
            assert_eq!((sc.workload.images, sc.pipeline.thumbnail_width, sc.pipeline.topic.as_str()), (7, 200, "image-events"));
            assert!(matches!(sc.processor.kind, harness_model::scenario::ProcessorKind::Running), "{text}");
            if s.name == "alice" {
                assert_eq!((ext.namespace.as_deref(), ext.context.as_deref()), (Some("al'ice"), Some("kind-a")));
                assert_eq!(sc.processor.group_id, "resizer");
            } else {
                assert_eq!((ext.s3_endpoint.as_str(), ext.access_key_env.as_str()), ("http://127.0.0.1:9000", "BOB_USER"));
            }
        }
    }

    #[test]
    fn the_most_broken_come_first() {
        let r = |name: &str, errors: usize, points: f64| StudentResult {
            name: name.into(),
            verdict: if errors > 0 { Verdict::Broken } else { Verdict::Healthy },
            first_line: String::new(),
            first_broken: None,
            cells: Column::ALL
                .iter()
                .take(errors)
                .map(|c| (*c, Cell { state: State::Error, line: String::new(), detail: String::new() }))
                .collect(),
            points,
            max_points: 10.0,
            millis: 0,
            report: None,
        };
        let mut class = vec![r("ok", 0, 10.0), r("one", 1, 8.0), r("two", 2, 9.0), r("one-b", 1, 3.0)];
        sort_most_broken_first(&mut class);
        let names: Vec<&str> = class.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["two", "one-b", "one", "ok"]);
    }
}
