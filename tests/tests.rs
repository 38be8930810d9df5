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
//! - `hostile`: `harness doctor` against listeners of the test's own that answer with
//!   hostile or broken bytes (a count of 2^31−1, a frame cut short, a slow loris, HTTP,
//!   TLS, random bytes, a thousand advertised brokers), under a memory limit; no
//!   services needed.
//! - `external`: scenarios against a pipeline the harness did not start
//!   (`kind: external`), judged as usual; a broken one gets the doctor's diagnosis.
//! - `registry`: runs on official images; ignored here (no registry), the reason says so.

mod cli;
mod conformance;
mod containers;
mod doctor;
mod e2e;
mod external;
mod faults;
mod hostile;
mod kubernetes;
mod registry;
mod util;
