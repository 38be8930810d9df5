//! Reports written into `reports/<run-id>/`: `junit.xml`, `results.json`,
//! `history.json`, `report.html`, and the summary printed on the terminal.

mod html;
mod junit;
mod logs;
mod terminal;

use std::path::{Path, PathBuf};

use harness_model::history::History;
use harness_model::results::RunResults;

use crate::services::redact::Redactor;

/// For other reports' writers (the doctor's): the one escaping of each format.
pub(crate) use html::escape_text as html_text;
pub use junit::junit_xml;
pub(crate) use junit::xml_safe;
pub use logs::LogTail;
pub use terminal::summary;

/// A report file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ReportError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes every report file; returns the first error with the file it concerns.
pub fn write_all(dir: &Path, results: &RunResults, history: Option<&History>) -> Result<(), ReportError> {
    write_all_masked(dir, results, history, &Redactor::default())
}

/// [`write_all`], with `redactor`'s secrets (the scenario's `processor.secret_env`)
/// masked in every file: a value can reach a report by many roads (an error, a
/// log tail, the scenario's text), so the files are masked as they are written.
pub fn write_all_masked(dir: &Path, results: &RunResults, history: Option<&History>, redactor: &Redactor) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError { path: dir.to_path_buf(), source })?;
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, redactor.redact(&bytes)).map_err(|source| ReportError { path, source })
    };
    let json = |v: &dyn erased::Json| v.to_vec();
    write("results.json", json(results))?;
    if let Some(h) = history {
        write("history.json", json(h))?;
    }
    let tails = logs::tails(&dir.join("logs"));
    write("junit.xml", junit_xml(results, &tails))?;
    // The page is drawn from every corner of the run's data; a bug there must not
    // take the other reports (or the run) down with it.
    let page = std::panic::catch_unwind(|| html::render(&html::Input::from_dir(dir, results, history, tails)))
        .unwrap_or_else(|_| html::fallback(results));
    write("report.html", page.into_bytes())?;
    Ok(())
}

/// The HTML report of a run whose report folder is `dir` (scenario text and service
/// logs are read from there).
pub fn html_report(dir: &Path, results: &RunResults, history: Option<&History>) -> String {
    html::render(&html::Input::from_dir(dir, results, history, logs::tails(&dir.join("logs"))))
}

mod erased {
    /// Pretty JSON of anything serializable, behind one object-safe call.
    pub trait Json {
        fn to_vec(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_vec(&self) -> Vec<u8> {
            let mut v = serde_json::to_vec_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}").into_bytes());
            v.push(b'\n');
            v
        }
    }
}
