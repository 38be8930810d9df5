//! Black-box tests of the `harness` binary. Table of contents:
//!
//! - `cli`: validation, schema, help, exit codes; no services needed.
//! - `e2e`: real scenarios against real Kafka and MinIO (started by the harness
//!   itself, as a user would). They need Java, Maven and Go (or a warm cache) and
//!   the Python packages `ci/setup` installs for the student processor.
//! - `faults`: fault injection against real Kafka and MinIO: each fault proven to
//!   take effect and heal, verdicts as the scenario expects; `ci/faults` runs all.
//! - `conformance`: every fault kind against each environment, held to its
//!   description in the catalog (injected where validation accepts it, refused elsewhere).
//! - `containers`: the same scenarios on the containers environment (a Docker-API
//!   engine: `ci/podman` starts podman's here and `ci/test` sets `DOCKER_HOST`).
//! - `kubernetes`: the same scenarios on a real cluster (`ci/k8s up` starts the
//!   harness's own here and `ci/test` sets `KUBECONFIG`).
//! - `doctor`: `harness doctor` against real Kafka and MinIO set up the ways students
//!   get them wrong (wrong port, unreachable advertised listener, SASL, notification,
//!   queue_dir, no processor), and right.
//! - `lint`: `harness lint` as a user runs it: files, folders, stdin, JSON, exit codes.
//! - `hostile`: `harness doctor` against listeners of the test's own that answer with
//!   hostile or broken bytes (a count of 2^31−1, a frame cut short, a slow loris, HTTP,
//!   TLS, random bytes, a thousand advertised brokers), and `harness lint` and
//!   `validate` against hostile YAML and folders (an alias bomb, a symlink loop, 10,000
//!   documents or files, deep nesting, a 1 GiB file), under a memory limit; no
//!   services needed.
//! - `external`: scenarios against a pipeline the harness did not start
//!   (`kind: external`), judged as usual; a broken one gets the doctor's diagnosis.
//! - `registry`: `--images official`: the success path needs a registry (ignored here,
//!   the reason says so); the failure path runs everywhere.
//!
//! Black-box runs overlap: each holds a place (`util::slot`, `HARNESS_TEST_JOBS` at
//! once), or every place (`util::exclusive`) when no other run may reap what it left.
//!
//! What a test must assert, by kind, so that it fails when the thing it names breaks:
//!
//! - **A run** judges correctness, never speed: `util::assert_correct` lets latency and
//!   throughput bounds fail on a loaded machine (they belong to the scenarios users run
//!   and to benchmarks); no upper time bound in a test, and no sleep followed by an
//!   assumption: poll for the condition with a deadline.
//! - **A fault** asserts its proof of effect and of recovery (`assert_faults_proven`)
//!   *and* the damage it must cause or must not cause, exactly: the keys lost (each
//!   named), uploads refused, versions written twice, or exactly once held. A fault
//!   test that would pass with the fault not injected, or with every notification
//!   lost, proves nothing.
//! - **A diagnosis** asserts the first broken link and the fix the user is told, not
//!   only the exit code.
//! - **A report** asserts the content a reader relies on (the verdicts, the named
//!   keys), not only that the file exists.
//! - **A secret** is looked for by its value, in every file the run wrote
//!   (`files_below`), never by the name of the variable that would carry it.
//! - **Lists of files** are globbed from the folder, never kept by hand.

mod class;
mod cli;
mod conformance;
mod containers;
mod doctor;
mod e2e;
mod external;
mod faults;
mod hostile;
mod kubernetes;
mod lint;
mod registry;
mod util;
