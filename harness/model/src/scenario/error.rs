//! Scenario errors that say where and what: `file:line: key.path: message`.

use std::fmt;

use serde::Deserialize;

use super::raw::RawScenario;

/// One problem in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<u64>,
    /// Key path such as `workload.rate` or `expect.latency.end_to_end.p95`; empty
    /// for problems with the document as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read the scenario file: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(Problem),
}

impl ScenarioError {
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ScenarioError::Invalid(p) => Some(p),
            ScenarioError::Read { .. } => None,
        }
    }
}

/// Reads the file into the raw mirror, recording the key path of a failure.
pub(super) fn read_raw(text: &str, file: &str) -> Result<RawScenario, ScenarioError> {
    if text.trim().is_empty() {
        return Err(ScenarioError::Invalid(Problem {
            file: file.to_string(),
            line: None,
            path: String::new(),
            message: "the file is empty; a scenario needs at least `name`, `processor`, `workload` and `expect`".into(),
        }));
    }
    let mut failed_at: Option<String> = None;
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
        RawScenario::deserialize(tracked).inspect_err(|_| {
            failed_at = Some(track.path().to_string());
        })
    });
    result.map_err(|e| {
        let path = failed_at.map(|p| clean_path(&p)).unwrap_or_default();
        let inner = e.without_snippet();
        let mut message = bare_message(&inner.to_string());
        if path.is_empty() && message.contains("expected mapping") {
            message = "a scenario file is a mapping of keys (`name`, `processor`, `workload`, `expect`, ...)".into();
        }
        ScenarioError::Invalid(Problem { file: file.to_string(), line: inner.location().map(|l| l.line()), path, message })
    })
}

/// `Spanned<T>` fields show up as an extra `.value` segment; people never wrote it.
fn clean_path(p: &str) -> String {
    if p == "." {
        return String::new();
    }
    p.split('.').filter(|seg| *seg != "value").collect::<Vec<_>>().join(".")
}

/// serde-saphyr's text ends with its own position (" at line 3, column 7"); we print
/// the position once, up front, so it is cut from the message.
fn bare_message(s: &str) -> String {
    let s = s.trim();
    let cut = s.rfind(" at line ").filter(|&i| s[i..].contains("column")).unwrap_or(s.len());
    s[..cut].trim_end_matches([',', ':', ' ']).to_string()
}
