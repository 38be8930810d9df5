//! The engine operations the containers environment is built from: Kafka's
//! entrypoint, image references, pids and exits of containers, the name-lookup
//! check, loopback-only ports, logs and removal.

use std::path::Path;
use std::time::{Duration, Instant};

use bollard::models::HostConfig;
use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use bollard::Docker;
use futures::StreamExt;
use testcontainers::core::ExecCommand;
use testcontainers::{ContainerAsync, GenericImage};

use super::{EnvError, ENGINE_TIMEOUT, KAFKA_CONFIG, KAFKA_DATA, KAFKA_LOG4J};
use crate::services::redact::Redactor;

/// Kafka's entrypoint in its container (see [`crate::engine::kafka_entrypoint`]).
pub(super) fn kafka_command(java: &str, libs: &str) -> String {
    crate::engine::kafka_entrypoint(java, libs, Path::new(KAFKA_CONFIG), Path::new(KAFKA_LOG4J), Path::new(KAFKA_DATA))
}

/// `localhost/harness-kafka:abc` → (`localhost/harness-kafka`, `abc`).
pub(super) fn split_ref(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

pub(super) async fn container_pid(docker: &Docker, id: &str) -> Option<u32> {
    let state = docker.inspect_container(id, None::<InspectContainerOptions>).await.ok()?.state?;
    state.pid.filter(|p| *p > 0).map(|p| p as u32)
}

pub(super) async fn wait_not_running(docker: &Docker, id: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let running = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.running)
            .unwrap_or(false);
        if !running {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long the name lookup inside a container may take before it counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Looks `peer` up by name from inside `from` (a container on `network`), and fails
/// fast, in one line that names the cause and the fix, when the engine's network
/// does not resolve container names. A container without a lookup tool (an
/// official image) skips the check: the services' own readiness still catches it.
pub(super) async fn check_name_resolution(
    from: &ContainerAsync<GenericImage>,
    from_name: &str,
    peer: &str,
    network: &str,
) -> Result<(), EnvError> {
    let script = "if command -v getent >/dev/null 2>&1; then getent hosts \"$1\" >/dev/null && echo resolved || echo unresolved; \
                  elif command -v nslookup >/dev/null 2>&1; then nslookup \"$1\" >/dev/null 2>&1 && echo resolved || echo unresolved; \
                  else echo no-tool; fi";
    let lookup = async {
        let mut res = from.exec(ExecCommand::new(["sh", "-c", script, "lookup", peer])).await.map_err(|e| e.to_string())?;
        let out = res.stdout_to_vec().await.map_err(|e| e.to_string())?;
        Ok::<String, String>(String::from_utf8_lossy(&out).trim().to_string())
    };
    let answer = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            tracing::warn!("could not check name resolution on {network}: {e}");
            return Ok(());
        }
        Err(_) => format!("no answer within {}s", LOOKUP_TIMEOUT.as_secs()),
    };
    match answer.as_str() {
        "resolved" | "no-tool" => Ok(()),
        other => Err(EnvError::Engine(no_container_dns(from_name, peer, network, other))),
    }
}

/// The one line a run without container DNS ends with.
pub(super) fn no_container_dns(from: &str, peer: &str, network: &str, answer: &str) -> String {
    format!(
        "containers on network {network} cannot find each other by name ({from} looked up {peer}: {answer}): \
         the engine's network has no DNS. With podman, install netavark and aardvark-dns and set \
         network_backend = \"netavark\" in containers.conf (`ci/setup` and `ci/podman` do both)"
    )
}

/// Published ports listen on 127.0.0.1 only: an engine binds them on every interface
/// by default, which would put MinIO (with the run's credentials) and Kafka on the
/// network. testcontainers sets no host address, so it is set here.
pub(super) fn publish_on_loopback(host_config: &mut HostConfig) {
    for bindings in host_config.port_bindings.iter_mut().flat_map(|m| m.values_mut()).flatten() {
        for b in bindings {
            b.host_ip = Some(LOOPBACK.to_string());
        }
    }
}

/// Where the harness publishes containers' ports.
const LOOPBACK: &str = "127.0.0.1";

/// A container's output, with the run's secrets masked (as the host's logs are).
pub(super) async fn container_logs(docker: &Docker, id: &str, tail: Option<usize>, redactor: &Redactor) -> Vec<u8> {
    let opts =
        LogsOptions { stdout: true, stderr: true, tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()), ..Default::default() };
    let mut out = Vec::new();
    let mut stream = docker.logs(id, Some(opts));
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        out.extend_from_slice(&chunk.into_bytes());
    }
    redactor.redact(&out).into_owned()
}

/// Removes the container; with `keep`, leaves it (stopped) for inspection: the
/// handle is forgotten, because dropping it would make testcontainers remove it.
pub(super) async fn remove_unless_kept(c: ContainerAsync<GenericImage>, keep: bool) {
    if keep {
        std::mem::forget(c);
        return;
    }
    let id = c.id().to_string();
    match tokio::time::timeout(ENGINE_TIMEOUT, c.rm()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("removing container {id:.12}: {e}"),
        Err(_) => tracing::warn!("removing container {id:.12}: no answer within {}s", ENGINE_TIMEOUT.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::images;

    #[test]
    fn image_refs_split_at_the_tag() {
        assert_eq!(split_ref("localhost/harness-kafka:3f2a9c1b7d4e"), ("localhost/harness-kafka".into(), "3f2a9c1b7d4e".into()));
        assert_eq!(split_ref("localhost:5000/kafka"), ("localhost:5000/kafka".into(), "latest".into()));
    }

    #[test]
    fn kafka_command_formats_once_then_execs_the_broker() {
        let cmd = kafka_command(images::KAFKA_JAVA, images::KAFKA_LIBS);
        assert!(cmd.contains("kafka.tools.StorageTool format"), "{cmd}");
        assert!(cmd.contains("--ignore-formatted"), "{cmd}");
        assert!(cmd.contains("&& exec /usr/bin/java"), "{cmd}");
        assert!(cmd.starts_with("{ test -f /var/lib/kafka/data/meta.properties || "), "a restart skips the format: {cmd}");
        assert!(cmd.contains("'/opt/kafka/libs/*'"), "the classpath glob is quoted for sh: {cmd}");
        assert!(cmd.ends_with("kafka.Kafka /etc/kafka/server.properties"), "{cmd}");
    }
}
