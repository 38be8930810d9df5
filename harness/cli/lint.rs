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
//! resources-missing, processor-env-missing, yaml-syntax, input-too-large.
//!
//! Bounds: 16 MiB a file, 256 MiB all files, 10,000 files a walk (input-too-large);
//! symlinked folders are not followed.
//!
//! Exit codes: 0 no errors (warnings allowed) · 1 at least one error · 2 a path could not be read
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode as ProcessExit;

use clap::{Args, ValueEnum};
use harness_model::exit::ExitCode;
use harness_model::lint::{bounds, Finding, Manifests, Severity};

pub const LINT_HELP: &str = "Examples:
  harness lint k8s/                              # every *.yaml / *.yml under k8s/, as one set
  helm template kafka bitnami/kafka | harness lint - k8s/minio.yaml
  kubectl kustomize overlays/kind | harness lint -
  harness lint --format json k8s/ > lint.json

All files are checked together: a KafkaTopic may be in another file than its Kafka.
Rules: kafka-topic-*, topic-*, bootstrap-*, sasl-*, tls-mismatch, minio-*,
resources-missing, processor-env-missing, yaml-syntax, input-too-large.

Bounds: 16 MiB a file, 256 MiB all files, 10,000 files a walk (input-too-large);
symlinked folders are not followed.

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
    let mut input = Input::default();
    let mut unreadable = false;
    for path in &args.paths {
        if let Err(e) = input.read_path(path) {
            // The path and the OS's words about it: a file name may hold any byte.
            eprintln!("error: {}", harness_model::text::printable(&e.to_string()));
            unreadable = true;
        }
    }
    let mut manifests = Manifests::new();
    for entry in &input.entries {
        match entry {
            Entry::Text(name, text) => manifests.add(name, text),
            Entry::TooLarge(name, why) => manifests.too_large(name, why.clone()),
        }
    }
    let findings = manifests.lint();
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = findings.len() - errors;
    let files = input.entries.iter().filter(|e| matches!(e, Entry::Text(..))).count();
    match args.format {
        LintFormat::Text => print!("{}", text_report(&findings, &input.notes, files, errors, warnings, unreadable)),
        LintFormat::Json => {
            let names: Vec<&str> =
                input.entries.iter().filter_map(|e| if let Entry::Text(n, _) = e { Some(n.as_str()) } else { None }).collect();
            let json = serde_json::json!({
                "files": names, "errors": errors, "warnings": warnings, "findings": findings, "notes": input.notes,
            });
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

fn text_report(findings: &[Finding], notes: &[String], files: usize, errors: usize, warnings: usize, unreadable: bool) -> String {
    let mut out: String = findings.iter().map(|f| format!("{f}\n")).collect();
    out.extend(notes.iter().map(|n| format!("note: {}\n", harness_model::text::printable(n))));
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

/// One input of the set: a file's text, or a file or folder a bound kept out (with why).
enum Entry {
    Text(String, String),
    TooLarge(String, String),
}

/// What the paths given hold, read within [`bounds`]: no file over `FILE_BYTES`, no
/// more than `TOTAL_BYTES` in all, a walk stops at `FILES` files and follows no
/// symlinked folder (a link to `..` would be a walk without end).
#[derive(Default)]
struct Input {
    entries: Vec<Entry>,
    /// Said after the findings: symlinked folders not followed.
    notes: Vec<String>,
    /// Files read or refused for their size (what `bounds::FILES` counts).
    files: usize,
    bytes: u64,
    /// The walk stopped at `bounds::FILES`: nothing more is read.
    cut: bool,
}

impl Input {
    /// Adds a file, every *.yaml / *.yml under a folder (sorted, so output is stable),
    /// or stdin for `-`.
    fn read_path(&mut self, path: &Path) -> Result<(), String> {
        if path == Path::new("-") {
            return self.read_file(Path::new("-"), "<stdin>".into(), Box::new(std::io::stdin()), None);
        }
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if !meta.is_dir() {
            let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            return self.read_file(path, path.display().to_string(), Box::new(file), Some(meta.len()));
        }
        let before = self.entries.len() + self.notes.len();
        self.walk(path, path)?;
        if self.entries.len() + self.notes.len() == before {
            return Err(format!("no *.yaml or *.yml files under {}", path.display()));
        }
        Ok(())
    }

    /// Reads one file (`size`: what its metadata says, none for stdin) within the bounds.
    fn read_file(&mut self, path: &Path, name: String, reader: Box<dyn Read>, size: Option<u64>) -> Result<(), String> {
        let cap = bounds::FILE_BYTES;
        self.files += 1;
        if let Some(size) = size.filter(|&s| s > cap) {
            let why = format!("{name} is {size} bytes, more than the {} a file may have", bounds::human(cap));
            self.entries.push(Entry::TooLarge(name, why));
            return Ok(());
        }
        if let Some(size) = size.filter(|&s| self.bytes + s > bounds::TOTAL_BYTES) {
            let why = format!(
                "{name} ({size} bytes) would take the set past the {} all files together may have",
                bounds::human(bounds::TOTAL_BYTES)
            );
            self.entries.push(Entry::TooLarge(name, why));
            return Ok(());
        }
        // A FIFO, a device or stdin has no size to check first: the read stops past the cap.
        let mut bytes = Vec::new();
        reader.take(cap + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if bytes.len() as u64 > cap {
            let why = format!("{name} has more than the {} a file may have", bounds::human(cap));
            self.entries.push(Entry::TooLarge(name, why));
            return Ok(());
        }
        self.bytes += bytes.len() as u64;
        let text = String::from_utf8(bytes).map_err(|_| format!("cannot read {}: stream did not contain valid UTF-8", path.display()))?;
        self.entries.push(Entry::Text(name, text));
        Ok(())
    }

    fn walk(&mut self, root: &Path, dir: &Path) -> Result<(), String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        // The entry's own type: a symlink is a symlink here, not what it points to.
        let mut paths: Vec<(PathBuf, Option<std::fs::FileType>)> =
            entries.filter_map(|e| e.ok().map(|e| (e.path(), e.file_type().ok()))).collect();
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        for (p, kind) in paths {
            if self.cut {
                return Ok(());
            }
            let link = kind.is_some_and(|k| k.is_symlink());
            // What a symlink points to (its target's type); a broken one is read as a file and named.
            let meta = if link { std::fs::metadata(&p).ok() } else { None };
            let is_dir = if link { meta.as_ref().is_some_and(|m| m.is_dir()) } else { kind.is_some_and(|k| k.is_dir()) };
            if is_dir && link {
                self.notes.push(format!(
                    "{}: a symlink to a folder, not followed (a link can lead back up the walk); name its target to lint it",
                    p.display()
                ));
            } else if is_dir {
                self.walk(root, &p)?;
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                if self.files >= bounds::FILES {
                    self.cut = true;
                    let why = format!(
                        "the walk of {} stopped at {} files (the bound on files read): {} and the files after it are not read",
                        root.display(),
                        bounds::FILES,
                        p.display()
                    );
                    self.entries.push(Entry::TooLarge(root.display().to_string(), why));
                    return Ok(());
                }
                // FIFOs, sockets, devices named *.yaml: not manifests, and opening a FIFO
                // would block the walk. (A broken symlink is opened, and named in the error.)
                let regular = if link { meta.as_ref().is_none_or(|m| m.is_file()) } else { kind.is_some_and(|k| k.is_file()) };
                if !regular {
                    continue;
                }
                let name = p.display().to_string();
                let file = std::fs::File::open(&p).map_err(|e| format!("cannot read {name}: {e}"))?;
                let size = file.metadata().map_err(|e| format!("cannot read {name}: {e}"))?.len();
                self.read_file(&p, name, Box::new(file), Some(size))?;
            }
        }
        Ok(())
    }
}
