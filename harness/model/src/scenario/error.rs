//! Scenario errors that say where and what: `file:line: key.path: message`.

use std::fmt;

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

/// What the loader's bounds are, for errors: a scenario is a small file, so they are
/// tight, and an alias bomb (nine aliases of nine aliases of … : 600 bytes, 9^9 nodes)
/// or a deep nesting stops at them with an error instead of growing the process.
const BOUNDS: &str = "1 MiB, 32 levels of nesting, 100,000 nodes, 100 aliases and anchors, 10,000 events replayed by aliases";

/// serde-saphyr's budget and alias limits set to [`BOUNDS`].
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 32;
    budget.max_nodes = 100_000;
    budget.max_events = 300_000;
    budget.max_aliases = 100;
    budget.max_anchors = 100;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = 1 << 20;
    budget.max_recorded_anchor_events = 10_000;
    budget.max_recorded_anchor_bytes = 1 << 20;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 10_000;
    options.alias_limits.max_replay_stack_depth = 32;
    options
}

/// A bound of [`options`] was hit (not a mistake in the scenario).
fn is_bound(e: &serde_saphyr::Error) -> bool {
    if let serde_saphyr::Error::AliasError { error, .. } | serde_saphyr::Error::WithSnippet { error, .. } = e {
        return is_bound(error);
    }
    // The parser's own nesting limit (`budget.max_depth` sets it).
    if e.to_string().starts_with("recursion limit exceeded") {
        return true;
    }
    matches!(
        e,
        serde_saphyr::Error::Budget { .. }
            | serde_saphyr::Error::AliasReplayLimitExceeded { .. }
            | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
            | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
            | serde_saphyr::Error::AliasReplayCounterOverflow { .. }
    )
}

/// A file over [`super::MAX_FILE_BYTES`], not read.
pub(super) fn too_large(file: &str, size: &str) -> ScenarioError {
    let cap = super::MAX_FILE_BYTES;
    ScenarioError::Invalid(Problem {
        file: file.to_string(),
        line: None,
        path: String::new(),
        message: format!("the file is {size} bytes, over the {} MiB ({cap} bytes) a scenario file may have; it is not read", cap >> 20),
    })
}

/// Reads the file into the raw mirror, recording the key path of a failure.
pub(super) fn read_raw(text: &str, file: &str) -> Result<RawScenario, ScenarioError> {
    read_yaml(
        text,
        file,
        "the file is empty; a scenario needs at least `name`, `processor`, `workload` and `expect`",
        "a scenario file is a mapping of keys (`name`, `processor`, `workload`, `expect`, ...)",
    )
}

/// Reads one YAML document into `T` within the loader's bounds, an error naming the
/// file, line and key path: scenarios, and other files of the same kind (a class's
/// roster). `empty` and `not_a_mapping` say what the file should hold.
pub(crate) fn read_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    empty: &str,
    not_a_mapping: &str,
) -> Result<T, ScenarioError> {
    if text.trim().is_empty() {
        return Err(ScenarioError::Invalid(Problem { file: file.to_string(), line: None, path: String::new(), message: empty.into() }));
    }
    let mut failed_at: Option<String> = None;
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
        T::deserialize(tracked).inspect_err(|_| {
            failed_at = Some(track.path().to_string());
        })
    });
    result.map_err(|e| {
        // The deserializer reads as it goes, so a syntax error later in the file (an
        // unclosed `{` that swallows the next lines) first shows up as a wrong value
        // ("unknown variant `resize workload`"). The document read as anything at all
        // names the syntax error itself; only when it reads is the type error the answer.
        let e = match serde_saphyr::from_str_with_options::<serde::de::IgnoredAny>(text, options()) {
            Err(syntax) if !is_bound(syntax.without_snippet()) => {
                failed_at = None;
                syntax
            }
            _ => e,
        };
        let path = failed_at.map(|p| clean_path(&p)).unwrap_or_default();
        let inner = e.without_snippet();
        let mut message = bare_message(&inner.to_string());
        if is_bound(inner) {
            message = format!("{message}: past the scenario loader's bounds ({BOUNDS}); the file is not read further");
        }
        if path.is_empty() && message.contains("expected mapping") {
            message = not_a_mapping.into();
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::scenario;

    fn error(text: &str) -> String {
        scenario::parse(text, Path::new("s.yaml")).unwrap_err().to_string()
    }

    /// Nine levels of nine aliases under a key the loader reads.
    fn bomb() -> String {
        let mut text =
            "name: bomb\nprocessor:\n  builtin: resize\n  env:\n    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
        for i in 1..9 {
            text.push_str(&format!("    l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); 9].join(", ")));
        }
        text
    }

    #[test]
    fn an_alias_bomb_stops_at_its_first_node_of_the_wrong_type() {
        // No field of a scenario takes nested sequences: the bomb is never expanded.
        assert_eq!(error(&bomb()), "s.yaml:5: processor.env.l0: expected string scalar");
    }

    #[test]
    fn aliases_past_the_bound_are_an_error_naming_the_file_and_the_bounds() {
        let ok = format!("name: &n x\nprocessor:\n  command: [{}]\n", vec!["*n"; 100].join(", "));
        assert!(!error(&ok).contains("bounds"), "{}", error(&ok));
        let text = format!("name: &n x\nprocessor:\n  command: [{}]\n", vec!["*n"; 101].join(", "));
        assert_eq!(
            error(&text),
            "s.yaml:3: processor.command: budget breached: Aliases { aliases: 101 }: past the scenario loader's bounds (1 MiB, \
             32 levels of nesting, 100,000 nodes, 100 aliases and anchors, 10,000 events replayed by aliases); the file is not read further"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_naming_the_file() {
        // The parser reads ahead of the loader: its nesting limit answers first.
        let e = error(&"[".repeat(100_000));
        assert!(e.starts_with("s.yaml:1: recursion limit exceeded: past the scenario loader's bounds"), "{e}");
    }

    #[test]
    fn a_text_over_the_cap_is_refused_with_its_size() {
        let text = format!("name: x\ndescription: {}\n", "y".repeat(1 << 20));
        assert_eq!(
            error(&text),
            format!("s.yaml: the file is {} bytes, over the 1 MiB (1048576 bytes) a scenario file may have; it is not read", text.len())
        );
    }
}
