//! Removing what killed runs left behind: every container, network and volume
//! labeled by a harness process that is gone (testcontainers-rs has no reaper).

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions,
};
use bollard::Docker;

use super::describe_engine_error;
use crate::engine::{LABEL_PID, LABEL_PID_START, LABEL_RUN};

/// What [`reap_leftovers`] removed.
#[derive(Debug, Default)]
pub struct Reaped {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

impl Reaped {
    pub fn is_empty(&self) -> bool {
        self.containers + self.networks + self.volumes == 0
    }
}

impl std::fmt::Display for Reaped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} containers, {} networks, {} volumes", self.containers, self.networks, self.volumes)
    }
}

/// Removes every container, network and volume labeled by a harness process that
/// is gone (its pid is not alive, or is alive but started at another time).
/// Containers first (a network or volume in use cannot be removed).
pub async fn reap_leftovers(docker: &Docker) -> Reaped {
    let mut reaped = Reaped::default();
    let filters = || Some(HashMap::from([("label".to_string(), vec![LABEL_RUN.to_string()])]));
    let orphaned = |labels: Option<&HashMap<String, String>>| labels.is_some_and(|l| !owner_alive(l));

    let containers = docker
        .list_containers(Some(ListContainersOptions { all: true, filters: filters(), ..Default::default() }))
        .await
        .unwrap_or_default();
    for c in containers {
        if !orphaned(c.labels.as_ref()) {
            continue;
        }
        let Some(id) = c.id else { continue };
        let opts = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match docker.remove_container(&id, Some(opts)).await {
            Ok(()) => reaped.containers += 1,
            Err(e) => tracing::warn!("removing leftover container {id:.12}: {}", describe_engine_error(&e)),
        }
    }
    let networks = docker.list_networks(Some(ListNetworksOptions { filters: filters() })).await.unwrap_or_default();
    for n in networks {
        if !orphaned(n.labels.as_ref()) {
            continue;
        }
        let Some(name) = n.name else { continue };
        match docker.remove_network(&name).await {
            Ok(()) => reaped.networks += 1,
            Err(e) => tracing::warn!("removing leftover network {name}: {}", describe_engine_error(&e)),
        }
    }
    let volumes =
        docker.list_volumes(Some(ListVolumesOptions { filters: filters() })).await.ok().and_then(|v| v.volumes).unwrap_or_default();
    for v in volumes {
        if !orphaned(Some(&v.labels)) {
            continue;
        }
        match docker.remove_volume(&v.name, Some(RemoveVolumeOptions { force: true })).await {
            Ok(()) => reaped.volumes += 1,
            Err(e) => tracing::warn!("removing leftover volume {}: {}", v.name, describe_engine_error(&e)),
        }
    }
    reaped
}

/// Whether the harness process named by the labels still runs.
pub(crate) fn owner_alive(labels: &HashMap<String, String>) -> bool {
    let Some(pid) = labels.get(LABEL_PID).and_then(|p| p.parse::<u32>().ok()) else {
        // Not ours to judge without a pid; leave it.
        return true;
    };
    match (process_start_ticks(pid), labels.get(LABEL_PID_START).and_then(|s| s.parse::<u64>().ok())) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

/// Field 22 of `/proc/<pid>/stat`: the process's start time in clock ticks since boot.
pub(crate) fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_pid_is_not() {
        let me = std::process::id();
        let start = process_start_ticks(me).expect("own start time");
        let labels = |pid: u32, start: u64| {
            HashMap::from([(LABEL_PID.to_string(), pid.to_string()), (LABEL_PID_START.to_string(), start.to_string())])
        };
        assert!(owner_alive(&labels(me, start)));
        assert!(!owner_alive(&labels(me, start + 1)), "a recycled pid is not the owner");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert!(!owner_alive(&labels(dead, 1)));
        assert!(owner_alive(&HashMap::new()), "no pid label: not ours to remove");
    }
}
