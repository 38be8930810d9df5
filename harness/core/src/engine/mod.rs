//! The containers environment's engine side: the Docker-API connection (any
//! socket `DOCKER_HOST` names: Docker, or podman's compatible service), the
//! images the harness builds for itself ([`images`]), and the labels every
//! container, network and volume of a run carries so that leftovers of a killed
//! run can be found and removed.

pub mod images;

use std::path::Path;

use bollard::Docker;

/// Label on everything a run creates: the run id.
pub const LABEL_RUN: &str = "io.harness.run";
/// Label: pid of the harness process that created it (leftover detection).
pub const LABEL_PID: &str = "io.harness.pid";
/// Label: that process's start time in clock ticks since boot (`/proc/<pid>/stat`
/// field 22), so a recycled pid is not mistaken for the living harness.
pub const LABEL_PID_START: &str = "io.harness.pid-start";

/// Kafka's entrypoint in an image built here (`sh -c` text): format the storage on
/// the first start (a restart keeps it and skips the format's own JVM), then the
/// broker. A fixed cluster id is fine: every run has its own data.
pub fn kafka_entrypoint(java: &str, libs: &str, config: &Path, log4j: &Path, data: &Path) -> String {
    let jvm = crate::services::kafka::jvm_args(Path::new(libs), log4j).into_iter().map(|a| shell_quote(&a)).collect::<Vec<_>>().join(" ");
    let (config, data) = (config.display(), data.display());
    format!(
        "{{ test -f {data}/meta.properties || {java} {jvm} kafka.tools.StorageTool format \
         --cluster-id {KAFKA_CLUSTER_ID} --config {config} --ignore-formatted; }} && exec {java} {jvm} kafka.Kafka {config}"
    )
}

const KAFKA_CLUSTER_ID: &str = "harnessContainers0000A";

/// A word for `sh`: as it is when it has nothing special, else single-quoted.
pub fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Why the container engine could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "no container engine answers at {host} ({source}); start Docker, or podman's \
         Docker-compatible service (`ci/podman` does that here), and point DOCKER_HOST at its socket, \
         e.g. DOCKER_HOST=unix:///run/harness/podman.sock"
    )]
    Unreachable {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("{context}: {source}")]
    Api {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// The socket the engine is reached at, as a user would set it.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Connects to the engine `DOCKER_HOST` names (default `/var/run/docker.sock`) and
/// checks that it answers.
pub async fn connect() -> Result<Docker, EngineError> {
    let host = docker_host();
    let unreachable = |source| EngineError::Unreachable { host: host.clone(), source };
    let docker = Docker::connect_with_defaults().map_err(unreachable)?;
    match tokio::time::timeout(std::time::Duration::from_secs(10), docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(unreachable(e)),
        Err(_) => Err(unreachable(bollard::errors::Error::RequestTimeoutError)),
    }
}
