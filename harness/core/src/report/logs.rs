//! Service log tails for the reports (HTML and JUnit): the end of each `logs/*.log`, read lossily
//! (logs may hold invalid UTF-8), bounded in lines and bytes.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Lines kept from the end of each log.
pub const TAIL_LINES: usize = 60;
/// Bytes kept from the end of each log (a single huge line is cut, not kept whole).
pub const TAIL_BYTES: u64 = 16 * 1024;
/// Logs shown at most (the processor's, MinIO's and Kafka's first).
const MAX_LOGS: usize = 8;
/// Services whose logs come first, in this order.
const FIRST: [&str; 3] = ["processor", "minio", "kafka"];

pub struct LogTail {
    /// File stem: `processor`, `kafka`, ...
    pub name: String,
    pub text: String,
    /// True when lines before these were left out.
    pub cut: bool,
}

/// The tails of `<logs_dir>/*.log`, processor, MinIO and Kafka first; none if the
/// folder is missing.
pub fn tails(logs_dir: &Path) -> Vec<LogTail> {
    let Ok(entries) = std::fs::read_dir(logs_dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log").map(str::to_string)
        })
        .collect();
    let rank = |n: &str| FIRST.iter().position(|f| *f == n).unwrap_or(FIRST.len());
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    names
        .into_iter()
        .take(MAX_LOGS)
        .filter_map(|name| {
            let (text, cut) = tail(&logs_dir.join(format!("{name}.log")), TAIL_LINES, TAIL_BYTES)?;
            Some(LogTail { name, text, cut })
        })
        .collect()
}

/// The last `lines` lines of a file, from at most its last `max_bytes` bytes.
pub fn tail(path: &Path, lines: usize, max_bytes: u64) -> Option<(String, bool)> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let from = len.saturating_sub(max_bytes);
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    f.take(max_bytes).read_to_end(&mut bytes).ok()?;
    Some(tail_of(&bytes, lines, from > 0))
}

/// The last `lines` lines of `bytes`; `cut_before` says bytes before these exist.
pub fn tail_of(bytes: &[u8], lines: usize, cut_before: bool) -> (String, bool) {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\n', '\r']);
    let all: Vec<&str> = text.split('\n').collect();
    // A read that started mid-file begins with a partial line: drop it.
    let skip_partial = usize::from(cut_before && all.len() > 1);
    let keep = &all[skip_partial..];
    let start = keep.len().saturating_sub(lines);
    (keep[start..].join("\n"), cut_before || start > 0)
}

/// Whether a log line reports trouble (highlighted in the report).
pub fn is_trouble(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    ["error", "panic", "fatal", "exception", "warn"].iter().any(|w| l.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_and_says_so() {
        let (t, cut) = tail_of(b"a\nb\nc\nd\n", 2, false);
        assert_eq!((t.as_str(), cut), ("c\nd", true));
        let (t, cut) = tail_of(b"a\nb", 5, false);
        assert_eq!((t.as_str(), cut), ("a\nb", false));
    }

    #[test]
    fn partial_first_line_and_invalid_utf8() {
        let (t, cut) = tail_of(b"tial line\nok \xff\xfe end\n", 10, true);
        assert_eq!(t, "ok \u{FFFD}\u{FFFD} end");
        assert!(cut);
    }

    #[test]
    fn reads_processor_first_then_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["kafka", "zeta", "processor", "minio", "broker-1"] {
            std::fs::write(dir.path().join(format!("{n}.log")), format!("{n} line\n")).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not a log").unwrap();
        let names: Vec<String> = tails(dir.path()).into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["processor", "minio", "kafka", "broker-1", "zeta"]);
    }
}
