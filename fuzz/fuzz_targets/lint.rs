//! `harness lint` on any text: every file of a set is linted together, so a NUL byte
//! in the input starts another file (cross-file rules see them all, as with `harness
//! lint DIR`). It must answer with findings, never panic or hang.
#![no_main]

use harness_model::lint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `harness lint` reads files as UTF-8; other bytes never reach the linter.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let names: Vec<String> = (0..text.split('\0').count()).map(|i| format!("m{i}.yaml")).collect();
    let findings = lint::lint_files(names.iter().map(String::as_str).zip(text.split('\0')));
    for f in &findings {
        let _ = f.to_string(); // the text report
        let _ = serde_json::to_string(f); // --format json
    }
});
