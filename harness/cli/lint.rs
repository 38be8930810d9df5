//! `harness lint`: reads manifest files and prints what `harness_model::lint` finds.
//!
//! Suggested `after_help` (kept in [`LINT_HELP`]):
//!
//! ```text
//! Examples:
//!   harness lint k8s/                              # every *.yaml / *.yml under k8s/, as one set
//!   helm template kafka bitnami/kafka | harness lint - k8s/minio.yaml
//!   kubectl kustomize overlays/kind | harness lint -
//!   harness lint --format json k8s/ > lint.json
//!
//! All files are checked together: a KafkaTopic may be in another file than its Kafka.
//! Rules: kafka-topic-*, topic-*, bootstrap-*, sasl-*, tls-mismatch, minio-*,
//! resources-missing, processor-env-missing, yaml-syntax.
//!
//! Exit codes: 0 no errors (warnings allowed) · 1 at least one error · 2 a path could not be read
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode as ProcessExit;

use clap::{Args, ValueEnum};
use harness_model::exit::ExitCode;
use harness_model::lint::{self, Finding, Severity};

pub const LINT_HELP: &str = "Examples:
  harness lint k8s/                              # every *.yaml / *.yml under k8s/, as one set
  helm template kafka bitnami/kafka | harness lint - k8s/minio.yaml
  kubectl kustomize overlays/kind | harness lint -
  harness lint --format json k8s/ > lint.json

All files are checked together: a KafkaTopic may be in another file than its Kafka.
Rules: kafka-topic-*, topic-*, bootstrap-*, sasl-*, tls-mismatch, minio-*,
resources-missing, processor-env-missing, yaml-syntax.

Exit codes: 0 no errors (warnings allowed) · 1 at least one error · 2 a path could not be read";

#[derive(Args)]
pub struct LintArgs {
    /// Manifest files, or folders read recursively for *.yaml and *.yml; `-` reads stdin
    /// (e.g. `helm template … | harness lint -`).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output: findings for people, or JSON (findings with severity, rule, file, line,
    /// path, message, fix) for tools.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    format: LintFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LintFormat {
    Text,
    Json,
}

pub fn run(args: LintArgs) -> ProcessExit {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut unreadable = false;
    for path in &args.paths {
        if let Err(e) = read_path(path, &mut files) {
            eprintln!("error: {e}");
            unreadable = true;
        }
    }
    let findings = lint::lint_files(files.iter().map(|(name, text)| (name.as_str(), text.as_str())));
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = findings.len() - errors;
    match args.format {
        LintFormat::Text => print!("{}", text_report(&findings, files.len(), errors, warnings, unreadable)),
        LintFormat::Json => {
            let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
            let json = serde_json::json!({ "files": names, "errors": errors, "warnings": warnings, "findings": findings });
            println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
        }
    }
    let code = if unreadable {
        ExitCode::InvalidInput
    } else if errors > 0 {
        ExitCode::ExpectationFailed
    } else {
        ExitCode::Passed
    };
    ProcessExit::from(code.code())
}

fn text_report(findings: &[Finding], files: usize, errors: usize, warnings: usize, unreadable: bool) -> String {
    let mut out: String = findings.iter().map(|f| format!("{f}\n")).collect();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if findings.is_empty() && !unreadable {
        out.push_str(&format!("ok: no findings in {}\n", plural(files, "file")));
    } else if findings.is_empty() {
        out.push_str(&format!("no findings in the {} that could be read\n", plural(files, "file")));
    } else {
        out.push_str(&format!("{}, {} in {}\n", plural(errors, "error"), plural(warnings, "warning"), plural(files, "file")));
    }
    out
}

/// Adds a file, every *.yaml / *.yml under a folder (sorted, so output is stable), or
/// stdin for `-`.
fn read_path(path: &Path, files: &mut Vec<(String, String)>) -> Result<(), String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read stdin: {e}"))?;
        files.push(("<stdin>".into(), text));
        return Ok(());
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_dir() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        files.push((path.display().to_string(), text));
        return Ok(());
    }
    let before = files.len();
    walk(path, files)?;
    if files.len() == before {
        return Err(format!("no *.yaml or *.yml files under {}", path.display()));
    }
    Ok(())
}

fn walk(dir: &Path, files: &mut Vec<(String, String)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, files)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            files.push((p.display().to_string(), text));
        }
    }
    Ok(())
}
