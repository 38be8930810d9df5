//! What a lint rule reports: where, what will happen, and what to change.

use std::fmt;

use serde::Serialize;

use crate::text::printable;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The pipeline cannot work as written (or loses events it was set up to keep).
    Error,
    /// It works, but fails or loses events under conditions a test will meet.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Where a finding points: a file, a 1-based line and the key path inside the
/// document, prefixed by the object (`Deployment/minio spec.template.spec…`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Site {
    pub file: String,
    pub line: u32,
    pub path: String,
}

/// One problem in a set of manifests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable id (`kafka-topic-operator`); see [`super::RULES`].
    pub rule: &'static str,
    pub file: String,
    pub line: u32,
    pub path: String,
    /// What is wrong and what will happen because of it.
    pub message: String,
    /// The field and value to change, or the command to run.
    pub fix: String,
}

impl Finding {
    pub(crate) fn new(rule: &'static str, severity: Severity, site: Site, message: String, fix: String) -> Finding {
        Finding { severity, rule, file: site.file, line: site.line, path: site.path, message, fix }
    }
}

/// `file:line: path: error[rule]: message`, then `  fix: …` on its own line.
/// For the terminal: what came from the manifests (file names, keys, quoted values)
/// goes through [`printable`], so a manifest cannot move the cursor or fake a line.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:{}: ", printable(&self.file), self.line)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", printable(&self.path))?;
        }
        write!(f, "{}[{}]: {}", self.severity, self.rule, printable(&self.message))?;
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", printable(&self.fix))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifests_escape_sequences_are_shown_not_obeyed() {
        let f = Finding {
            severity: Severity::Error,
            rule: "topic-mismatch",
            file: "k8s/\u{1b}[2Jp.yaml".into(),
            line: 3,
            path: "spec.env[0].value".into(),
            message: "the processor reads topic \"a\rb\"".into(),
            fix: "KAFKA_TOPIC: \u{202e}x".into(),
        };
        let shown = f.to_string();
        assert!(!shown.contains('\u{1b}') && !shown.contains('\r') && !shown.contains('\u{202e}'), "{shown:?}");
        assert_eq!(shown, "k8s/\\u{1b}[2Jp.yaml:3: spec.env[0].value: error[topic-mismatch]: the processor reads topic \"a\\rb\"\n  fix: KAFKA_TOPIC: \\u{202e}x");
    }
}
