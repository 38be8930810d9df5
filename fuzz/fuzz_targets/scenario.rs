//! The scenario loader on any text: `harness validate` / `harness run FILE` (and
//! `--env KIND`) must answer with a scenario or an error naming file and line, never
//! panic or hang.
#![no_main]

use std::path::Path;

use harness_model::scenario::{self, EnvKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Scenario files are read as UTF-8 (`read_to_string`): other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let scenario = match scenario::parse(text, Path::new("fuzz/scenario.yaml")) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string(); // what the CLI prints
            return;
        }
    };
    // What `validate` prints and a run's reports hold.
    for e in &scenario.expectations {
        let _ = (e.id(), e.describe());
    }
    let _ = serde_json::to_string(&scenario);
    for kind in [EnvKind::Local, EnvKind::Containers, EnvKind::Kubernetes, EnvKind::External] {
        if let Err(e) = scenario.clone().on_environment(kind) {
            let _ = e.to_string();
        }
    }
});
