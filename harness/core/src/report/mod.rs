//! Reports written into `reports/<run-id>/`: `junit.xml`, `results.json`,
//! `history.json`, and the summary printed on the terminal.

mod junit;
mod terminal;

use std::path::Path;

use harness_model::history::History;
use harness_model::results::RunResults;

pub use junit::junit_xml;
pub use terminal::summary;

/// Writes every report file; returns the first error with the file it concerns.
pub fn write_all(dir: &Path, results: &RunResults, history: Option<&History>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    let json = |v: &dyn erased::Json| v.to_vec();
    write("results.json", json(results))?;
    if let Some(h) = history {
        write("history.json", json(h))?;
    }
    write("junit.xml", junit_xml(results))?;
    Ok(())
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
