//! Every pod's log, followed from its first line into `logs/<service>.log` while
//! the run goes on: a pod a fault deletes (a killed broker, a crashed processor)
//! takes its log with it, so reading logs at teardown would lose exactly the ones
//! a failed run needs.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use tokio::task::JoinSet;

use super::manifests::{APP_LABEL, PROCESSOR};
use crate::services::redact::Redactor;

const POLL: Duration = Duration::from_millis(500);

/// Follows the logs of every pod of the namespace whose service label is one of
/// `apps`, into `dir/<app>.log`.
pub(super) struct LogFollowers {
    task: tokio::task::JoinHandle<()>,
    streams: Arc<tokio::sync::Mutex<JoinSet<()>>>,
}

impl LogFollowers {
    pub(super) fn start(pods: Api<Pod>, dir: PathBuf, redactor: Redactor, apps: &'static [&'static str]) -> LogFollowers {
        let streams = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        let task = tokio::spawn(discover(pods, dir, Arc::new(redactor), apps, streams.clone()));
        LogFollowers { task, streams }
    }

    /// Stops looking for new pods and gives the open streams `grace` to deliver
    /// their last lines (a pod that is going ends its stream), then ends them.
    pub(super) async fn stop(&self, grace: Duration) {
        self.task.abort();
        let mut streams = self.streams.lock().await;
        let _ = tokio::time::timeout(grace, async { while streams.join_next().await.is_some() {} }).await;
        streams.abort_all();
    }
}

impl Drop for LogFollowers {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(mut s) = self.streams.try_lock() {
            s.abort_all();
        }
    }
}

/// Each container start of each pod, once: (pod uid, restart count).
async fn discover(
    pods: Api<Pod>,
    dir: PathBuf,
    redactor: Arc<Redactor>,
    apps: &'static [&'static str],
    streams: Arc<tokio::sync::Mutex<JoinSet<()>>>,
) {
    let mut followed: HashSet<(String, i32)> = HashSet::new();
    loop {
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for pod in list.items {
                let app = pod.metadata.labels.as_ref().and_then(|l| l.get(APP_LABEL)).cloned().unwrap_or_default();
                let Some(app) = apps.iter().find(|a| **a == app) else { continue };
                let (Some(uid), Some(name)) = (pod.metadata.uid.clone(), pod.metadata.name.clone()) else { continue };
                let container = super::cluster::service_container(&pod, app);
                let started = container.and_then(|c| c.state.as_ref()).is_some_and(|s| s.running.is_some() || s.terminated.is_some());
                let restarts = container.map_or(0, |c| c.restart_count);
                if !started || followed.contains(&(uid.clone(), restarts)) {
                    continue;
                }
                let lp = LogParams { follow: true, container: Some(app.to_string()), ..Default::default() };
                let Ok(stream) = pods.log_stream(&name, &lp).await else { continue };
                followed.insert((uid, restarts));
                let path = dir.join(format!("{app}.log"));
                let prefix = if *app == PROCESSOR { format!("[{name}] ") } else { String::new() };
                let header = format!(
                    "=== pod {name}{} ===\n",
                    if restarts > 0 { format!(", container start {}", restarts + 1) } else { String::new() }
                );
                let redactor = redactor.clone();
                streams.lock().await.spawn(async move {
                    let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) else { return };
                    let _ = file.write_all(header.as_bytes());
                    let mut lines = stream.lines();
                    while let Some(Ok(line)) = lines.next().await {
                        let line = format!("{prefix}{line}\n");
                        let _ = file.write_all(&redactor.redact(line.as_bytes()));
                    }
                });
            }
        }
        tokio::time::sleep(POLL).await;
    }
}
