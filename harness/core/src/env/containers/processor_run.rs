//! The processor of a containers run: the builtin one in a container, supervised
//! by the processor supervisor through [`ContainerLauncher`] (an exit it did not
//! ask for is recorded and followed by a start, with backoff); a command on the
//! host under the host supervisor.

use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, StartContainerOptions, StopContainerOptions};
use bollard::Docker;
use testcontainers::{ContainerAsync, GenericImage};
use tokio::sync::watch;

use super::{container_pid, describe_engine_error, ENGINE_TIMEOUT, PROCESSOR_GRACE};
use crate::services::processor::{ExitSeen, Launcher, ProcessorStatus, ProcessorSupervisor, Supervision};

/// The processor of a run: in a container (builtin) or on the host (command).
pub(super) enum ProcessorRun {
    Host(ProcessorSupervisor),
    Container(Box<ContainerProcessor>),
}

/// The builtin processor in a container, supervised like a host processor: an
/// exit it did not ask for is recorded and followed by a start (with backoff).
pub(super) struct ContainerProcessor {
    pub(super) id: String,
    pub(super) container: ContainerAsync<GenericImage>,
    supervision: Supervision,
}

impl ContainerProcessor {
    pub(super) async fn start(docker: Docker, container: ContainerAsync<GenericImage>) -> Self {
        let id = container.id().to_string();
        let pid = container_pid(&docker, &id).await;
        let supervision = Supervision::spawn(ContainerLauncher { docker, id: id.clone() }, pid);
        ContainerProcessor { id, container, supervision }
    }
}

impl ProcessorRun {
    pub(super) fn status(&self) -> watch::Receiver<ProcessorStatus> {
        match self {
            ProcessorRun::Host(s) => s.status(),
            ProcessorRun::Container(c) => c.supervision.status(),
        }
    }

    fn supervision(&self) -> &Supervision {
        match self {
            ProcessorRun::Host(s) => s.supervision(),
            ProcessorRun::Container(c) => &c.supervision,
        }
    }

    /// Stops the processor (SIGTERM, up to `grace`, SIGKILL) and starts nothing
    /// until [`ProcessorRun::release`]; returns how it ended.
    pub(super) async fn hold(&self, grace: Duration) -> Result<Option<String>, String> {
        // A container's stop is two engine calls of at most ENGINE_TIMEOUT each.
        let limit = grace + 2 * ENGINE_TIMEOUT;
        match tokio::time::timeout(limit, self.supervision().hold(grace)).await {
            Ok(r) => r,
            Err(_) => Err(format!("the processor did not stop within {} s", limit.as_secs())),
        }
    }

    /// Starts a held processor again; returns its pid, if known.
    pub(super) async fn release(&self) -> Result<Option<u32>, String> {
        self.supervision().release().await
    }

    /// Stops the processor (SIGTERM, 10 s grace, SIGKILL). Harmless twice.
    /// (A container's launcher has its own engine client; `_docker` stays for
    /// the callers.)
    pub(super) async fn stop(&mut self, _docker: &Docker) -> ProcessorStatus {
        match self {
            ProcessorRun::Host(s) => s.stop(PROCESSOR_GRACE).await,
            // The launcher's stop is two engine calls of at most ENGINE_TIMEOUT each.
            ProcessorRun::Container(c) => match tokio::time::timeout(2 * ENGINE_TIMEOUT, c.supervision.stop(PROCESSOR_GRACE)).await {
                Ok(status) => status,
                Err(_) => c.supervision.status().borrow().clone(),
            },
        }
    }
}

/// A container that is started again in place (same id, same configuration).
struct ContainerLauncher {
    docker: Docker,
    id: String,
}

#[async_trait::async_trait]
impl Launcher for ContainerLauncher {
    async fn wait_exit(&mut self) -> ExitSeen {
        engine_exit(exit_of(&self.docker, &self.id).await)
    }

    async fn stop(&mut self, grace: Duration) -> ExitSeen {
        let opts = StopContainerOptions { t: Some(grace.as_secs() as i32), signal: None };
        let _ = tokio::time::timeout(ENGINE_TIMEOUT, self.docker.stop_container(&self.id, Some(opts))).await;
        engine_exit(tokio::time::timeout(ENGINE_TIMEOUT, exit_of(&self.docker, &self.id)).await.ok().flatten())
    }

    async fn restart(&mut self) -> Result<Option<u32>, String> {
        self.docker.start_container(&self.id, None::<StartContainerOptions>).await.map_err(|e| describe_engine_error(&e))?;
        Ok(container_pid(&self.docker, &self.id).await)
    }
}

/// Waits until the container is not running and returns its exit code. Polls the
/// container's state: podman 4's Docker-compatible `wait` endpoint busy-loops on the
/// server (measured: 1.2 cores for as long as a wait is open), which starved the
/// pipeline on a 2-core machine.
async fn exit_of(docker: &Docker, id: &str) -> Option<i64> {
    loop {
        match docker.inspect_container(id, None::<InspectContainerOptions>).await {
            Ok(i) => {
                let state = i.state.unwrap_or_default();
                if !state.running.unwrap_or(false) && !state.restarting.unwrap_or(false) {
                    return state.exit_code;
                }
            }
            // Gone (removed by someone else): no code to report.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return None,
            Err(e) => tracing::debug!("inspecting {id:.12}: {e}"),
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
}

/// How often a supervised container's state is asked for.
const EXIT_POLL: Duration = Duration::from_millis(250);

/// A container's exit as the engine reports it (`None`: unknown).
fn engine_exit(code: Option<i64>) -> ExitSeen {
    // An engine reports death by signal N as 128 + N.
    let signal = code.filter(|c| (129..=159).contains(c)).map(|c| (c - 128) as i32);
    let status = match (code, signal) {
        (_, Some(9)) => "killed by signal 9 (SIGKILL)".to_string(),
        (_, Some(15)) => "killed by signal 15 (SIGTERM)".to_string(),
        (_, Some(s)) => format!("killed by signal {s}"),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "exit status unknown".to_string(),
    };
    ExitSeen { status, code: code.filter(|_| signal.is_none()).map(|c| c as i32), signal }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_exit_codes_become_signals() {
        let killed = engine_exit(Some(137));
        assert_eq!((killed.signal, killed.code, killed.status.as_str()), (Some(9), None, "killed by signal 9 (SIGKILL)"));
        let failed = engine_exit(Some(1));
        assert_eq!((failed.signal, failed.code, failed.status.as_str()), (None, Some(1), "exit code 1"));
    }
}
