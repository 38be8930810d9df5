//! The cluster side of the kubernetes environment: which cluster (kubeconfig and
//! context), loading the harness's images into it, the node address, pod
//! problems named in one line, logs and events, and reaping killed runs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Service as KService};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::io::AsyncWriteExt;

use super::manifests::{self, APP_LABEL, MANAGED_BY};
use super::API_TIMEOUT;
use crate::env::EnvError;

/// The kubeconfig `ci/k8s up` writes for the harness's own cluster.
pub const OWN_KUBECONFIG: &str = "/var/lib/harness/k8s/kubeconfig";
/// The context name of the harness's own cluster.
pub const OWN_CONTEXT: &str = "harness-k8s";
/// The containerd socket of the harness's own cluster.
pub const OWN_CONTAINERD: &str = "/run/harness/k8s/containerd.sock";

/// Turns a kube-rs error into the environment's, with what was being done.
pub(super) struct KubeErr;

impl KubeErr {
    pub(super) fn ctx(context: impl Into<String>) -> impl FnOnce(kube::Error) -> EnvError {
        let context = context.into();
        move |e| EnvError::Engine(format!("{context}: {}", describe(&e)))
    }
}

/// The API server's own message where there is one.
pub(super) fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} (HTTP {})", s.message, s.code),
        other => other.to_string(),
    }
}

/// How the harness's images get onto the cluster's nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageLoader {
    /// The harness's own cluster: `ctr images import` into its containerd.
    Ctr(PathBuf),
    /// A kind cluster: `kind load docker-image --name CLUSTER`.
    Kind(String),
    /// Another cluster: the images must be on its nodes already.
    Preloaded,
}

/// The cluster a run goes to: a kubeconfig and its current context.
#[derive(Clone, Debug)]
pub struct ClusterTarget {
    /// `None`: kube's own search (`KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    pub context: String,
    pub loader: ImageLoader,
}

impl ClusterTarget {
    /// `KUBECONFIG` or `~/.kube/config` when there is one (its current context,
    /// or `context`), else the kubeconfig of the harness's own cluster (`ci/k8s up`).
    pub fn resolve(context: Option<&str>) -> Result<ClusterTarget, EnvError> {
        let (kubeconfig, config) = match Kubeconfig::read() {
            Ok(config) => (None, config),
            Err(_) if Path::new(OWN_KUBECONFIG).exists() => {
                let config =
                    Kubeconfig::read_from(OWN_KUBECONFIG).map_err(|e| EnvError::Engine(format!("reading {OWN_KUBECONFIG}: {e}")))?;
                (Some(PathBuf::from(OWN_KUBECONFIG)), config)
            }
            Err(e) => {
                return Err(EnvError::Engine(format!(
                    "no Kubernetes cluster to run on: {e}. Set KUBECONFIG to a cluster's kubeconfig, or start \
                     the harness's own cluster with `ci/k8s up` (it prints the KUBECONFIG line), or create a kind \
                     cluster (`kind create cluster`)"
                )))
            }
        };
        let context = context.map(String::from).or_else(|| config.current_context.clone()).unwrap_or_default();
        let loader = if context == OWN_CONTEXT && Path::new(OWN_CONTAINERD).exists() {
            ImageLoader::Ctr(PathBuf::from(OWN_CONTAINERD))
        } else if let Some(cluster) = context.strip_prefix("kind-") {
            ImageLoader::Kind(cluster.to_string())
        } else {
            ImageLoader::Preloaded
        };
        Ok(ClusterTarget { kubeconfig, context, loader })
    }

    pub fn describe(&self) -> String {
        let file = self
            .kubeconfig
            .as_ref()
            .map_or_else(|| std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into()), |p| p.display().to_string());
        format!("context {} of {file}", self.context)
    }

    pub async fn client(&self) -> Result<Client, EnvError> {
        Client::try_from(self.config().await?).map_err(KubeErr::ctx("creating the Kubernetes client"))
    }

    /// A client, and the cluster's identity: its API server's URL and the CA the
    /// kubeconfig trusts it by, hashed. A run's lease records it, so that leases are
    /// pruned only against the cluster they were taken on.
    pub async fn client_and_identity(&self) -> Result<(Client, String), EnvError> {
        let config = self.config().await?;
        let identity = cluster_identity(&config.cluster_url.to_string(), config.root_cert.as_deref().unwrap_or_default());
        Ok((Client::try_from(config).map_err(KubeErr::ctx("creating the Kubernetes client"))?, identity))
    }

    async fn config(&self) -> Result<Config, EnvError> {
        let options = KubeConfigOptions { context: Some(self.context.clone()), ..Default::default() };
        match &self.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| EnvError::Engine(format!("reading {}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(kc, &options).await
            }
            None => Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| EnvError::Engine(format!("loading {}: {e}", self.describe())))
    }
}

/// Hex SHA-256 of the API server's URL and its CA certificates (DER).
pub(super) fn cluster_identity(url: &str, ca: &[Vec<u8>]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(url.as_bytes());
    for cert in ca {
        h.update((cert.len() as u64).to_be_bytes());
        h.update(cert);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl ClusterTarget {}

/// The API server's version; fails within [`API_TIMEOUT`] when it does not answer.
pub(super) async fn server_version(client: &Client) -> Result<String, EnvError> {
    match tokio::time::timeout(API_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(v)) => Ok(v.git_version),
        Ok(Err(e)) => Err(EnvError::Engine(format!(
            "the Kubernetes API server does not answer: {}; is the cluster up? (`ci/k8s status` for the harness's own)",
            describe(&e)
        ))),
        Err(_) => Err(EnvError::Engine(format!(
            "the Kubernetes API server did not answer within {}s; is the cluster up? (`ci/k8s status` for the harness's own)",
            API_TIMEOUT.as_secs()
        ))),
    }
}

/// The InternalIP of a Ready node: where the harness reaches node ports.
pub async fn node_address(client: &Client) -> Result<String, EnvError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&ListParams::default()).await.map_err(KubeErr::ctx("listing nodes"))?;
    let ready = |n: &Node| {
        n.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let node =
        list.items.iter().find(|n| ready(n)).ok_or_else(|| {
            EnvError::Engine(format!("the cluster has {} node(s) and none is Ready (kubectl get nodes)", list.items.len()))
        })?;
    let addresses = node.status.as_ref().and_then(|s| s.addresses.clone()).unwrap_or_default();
    addresses
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
        .ok_or_else(|| EnvError::Engine(format!("node {} has no InternalIP address", node.metadata.name.clone().unwrap_or_default())))
}

/// A Service's cluster IP and the node port of its port `name`.
pub(super) fn addresses(svc: &KService, name: &str) -> Result<(String, i32), EnvError> {
    let spec = svc.spec.as_ref();
    let ip = spec.and_then(|s| s.cluster_ip.clone()).filter(|ip| !ip.is_empty() && ip != "None");
    let port =
        spec.and_then(|s| s.ports.as_ref()).and_then(|ps| ps.iter().find(|p| p.name.as_deref() == Some(name))).and_then(|p| p.node_port);
    match (ip, port) {
        (Some(ip), Some(port)) => Ok((ip, port)),
        _ => Err(EnvError::Engine(format!(
            "Service {} got no cluster IP or node port for {name}",
            svc.metadata.name.clone().unwrap_or_default()
        ))),
    }
}

/// The cluster IP of a Service.
pub(super) fn cluster_ip(svc: &KService) -> Result<String, EnvError> {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .filter(|ip| !ip.is_empty() && ip != "None")
        .ok_or_else(|| EnvError::Engine(format!("Service {} got no cluster IP", svc.metadata.name.clone().unwrap_or_default())))
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Whether an image the node already has under the same name is loaded again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reload {
    /// The harness's own images: their tags are content hashes.
    IfMissing,
    /// A user's image: its tag may name a new build (`:latest`, `:dev`).
    Always,
}

/// Puts the images on the cluster's nodes (see [`ImageLoader`]).
pub(super) async fn load_images(
    target: &ClusterTarget,
    docker: &Docker,
    images: &[&str],
    reload: Reload,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), EnvError> {
    match &target.loader {
        ImageLoader::Preloaded => Ok(()),
        ImageLoader::Kind(cluster) => {
            for image in images {
                progress(&format!("loading {image} into kind cluster {cluster}…"));
                let out = tokio::process::Command::new("kind")
                    .args(["load", "docker-image", image, "--name", cluster])
                    .output()
                    .await
                    .map_err(|e| EnvError::Engine(format!("running `kind load docker-image`: {e} (is kind installed?)")))?;
                if !out.status.success() {
                    return Err(EnvError::Engine(format!(
                        "`kind load docker-image {image} --name {cluster}` failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
            Ok(())
        }
        ImageLoader::Ctr(socket) => {
            let have = ctr(socket, &["images", "ls", "-q"], None).await?;
            for image in images {
                if reload == Reload::IfMissing && have.lines().any(|l| l.trim() == *image) {
                    continue;
                }
                progress(&format!("loading {image} into the cluster's containerd…"));
                let t = Instant::now();
                let archive = docker
                    .export_image(image)
                    .map(|chunk| chunk.map(|b| b.to_vec()).map_err(|e| format!("exporting {image} from the engine: {e}")));
                ctr(socket, &["images", "import", "-"], Some(Box::pin(archive))).await?;
                tracing::info!("loaded {image} in {:.1}s", t.elapsed().as_secs_f64());
            }
            Ok(())
        }
    }
}

/// What `ctr` reads on its stdin: an image archive as the engine streams it.
type Archive<'a> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Vec<u8>, String>> + Send + 'a>>;

/// `ctr --address SOCKET -n k8s.io ARGS`, with `stdin` streamed in; its stdout.
async fn ctr(socket: &Path, args: &[&str], stdin: Option<Archive<'_>>) -> Result<String, EnvError> {
    let mut cmd = tokio::process::Command::new("ctr");
    cmd.arg("--address").arg(socket).args(["-n", "k8s.io"]).args(args);
    cmd.stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() });
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).kill_on_drop(true);
    let what = format!("ctr {}", args.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| EnvError::Engine(format!("running {what}: {e} (containerd's ctr is needed for the harness's own cluster)")))?;
    if let (Some(mut data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(EnvError::Engine)?;
            pipe.write_all(&chunk).await.map_err(|e| EnvError::Engine(format!("{what}: {e}")))?;
        }
    }
    let out = child.wait_with_output().await.map_err(|e| EnvError::Engine(format!("{what}: {e}")))?;
    if !out.status.success() {
        return Err(EnvError::Engine(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why a pod of `app` cannot run, in one line: unschedulable, its image missing on
/// the node, a crash loop, a bad config. Some of these can pass (a Secret the
/// kubelet has not cached yet, a node not Ready yet): [`Problems`] calls one
/// certain once it lasted.
pub(super) async fn pod_problem(pods: &Api<Pod>, app: &str) -> Option<Problem> {
    let list = pods.list(&ListParams::default().labels(&format!("{APP_LABEL}={app}"))).await.ok()?;
    list.items.iter().find_map(problem_of)
}

/// A pod's problem, and whether it is certain at first sight.
#[derive(Debug)]
pub(super) struct Problem {
    pub text: String,
    pub certain: bool,
}

/// How long a problem that can pass must last before a run gives up on it.
const PROBLEM_GRACE: Duration = Duration::from_secs(15);

/// Problems seen while waiting for a pod; [`Problems::settled`] says when one is certain.
#[derive(Default)]
pub(super) struct Problems {
    first_seen: Option<(String, Instant)>,
}

impl Problems {
    /// The problem to fail with: certain at once, or the same one for [`PROBLEM_GRACE`].
    pub(super) fn settled(&mut self, seen: Option<Problem>) -> Option<String> {
        let Some(p) = seen else {
            self.first_seen = None;
            return None;
        };
        if p.certain {
            return Some(p.text);
        }
        match &self.first_seen {
            Some((text, since)) if *text == p.text => (since.elapsed() >= PROBLEM_GRACE).then_some(p.text),
            _ => {
                self.first_seen = Some((p.text, Instant::now()));
                None
            }
        }
    }
}

fn problem_of(pod: &Pod) -> Option<Problem> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    if let Some(c) = status.conditions.as_ref().and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled" && c.status == "False")) {
        if c.reason.as_deref() == Some("Unschedulable") {
            let text = format!("pod {name} cannot be scheduled: {}", c.message.clone().unwrap_or_default());
            return Some(Problem { text, certain: false });
        }
    }
    for cs in status.container_statuses.iter().flatten() {
        let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else { continue };
        let reason = waiting.reason.clone().unwrap_or_default();
        let message = waiting.message.clone().unwrap_or_default();
        match reason.as_str() {
            "ErrImageNeverPull" | "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" => {
                let text = format!(
                    "pod {name}: {reason}: image {} is not on the node ({message}); load it: `ci/k8s load {}` for the \
                     harness's own cluster, `kind load docker-image {}` for kind",
                    cs.image, cs.image, cs.image
                );
                return Some(Problem { text, certain: reason == "ErrImageNeverPull" || reason == "InvalidImageName" });
            }
            "CrashLoopBackOff" => {
                let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                let exit = last.map_or(String::new(), |t| format!(", last exit code {}", t.exit_code));
                let text = format!("pod {name} is in a crash loop ({} restarts{exit})", cs.restart_count);
                return Some(Problem { text, certain: true });
            }
            "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                return Some(Problem { text: format!("pod {name}: {reason}: {message}"), certain: false });
            }
            _ => {}
        }
    }
    None
}

/// The namespace's events, oldest first, one a line: what the cluster said about
/// scheduling, pulls, kills and restarts.
pub(super) async fn save_events(client: &Client, namespace: &str, path: &Path) {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let Ok(Ok(list)) = tokio::time::timeout(API_TIMEOUT, events.list(&ListParams::default())).await else { return };
    let mut lines: Vec<(String, String)> = list
        .items
        .iter()
        .map(|e| {
            let at = (e.last_timestamp.as_ref().or(e.first_timestamp.as_ref()).map(|t| t.0))
                .or(e.event_time.as_ref().map(|t| t.0))
                .map(|t| t.to_string())
                .unwrap_or_default();
            let object =
                format!("{}/{}", e.involved_object.kind.clone().unwrap_or_default(), e.involved_object.name.clone().unwrap_or_default());
            let line = format!(
                "{at} {} {} {object}: {}",
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default().trim()
            );
            (at, line)
        })
        .collect();
    lines.sort();
    let text: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
    if let Err(e) = std::fs::write(path, text) {
        tracing::warn!("writing {}: {e}", path.display());
    }
}

/// Deletes a pod with `grace` seconds and waits until it is gone; returns how its
/// container ended when the API showed that before the pod went.
pub(super) async fn delete_pod_and_wait(pods: &Api<Pod>, name: &str, grace: u32, timeout: Duration) -> Result<Option<String>, EnvError> {
    let Some(pod) = pods.get_opt(name).await.map_err(KubeErr::ctx(format!("reading pod {name}")))? else { return Ok(None) };
    let (uid, version) = (pod.metadata.uid.clone(), pod.metadata.resource_version.clone().unwrap_or_default());
    // The service's container (named after the pod's app), not the signals one.
    let app = name.rsplit_once('-').map_or(name, |(app, _)| app);
    let ended_in = |p: &Pod| {
        service_container(p, app).and_then(|c| c.state.as_ref()).and_then(|s| s.terminated.as_ref()).map(|t| exit_text(t.exit_code))
    };
    // Watch from before the deletion: the kubelet posts the container's end in an
    // update just before the pod goes, which polling can miss.
    let wp = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(timeout.as_secs().min(290) as u32);
    let mut events = pods.watch(&wp, &version).await.map_err(KubeErr::ctx(format!("watching pod {name}")))?.boxed();
    let dp = DeleteParams { grace_period_seconds: Some(grace), ..Default::default() };
    match pods.delete(name, &dp).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        Err(e) => return Err(KubeErr::ctx(format!("deleting pod {name}"))(e)),
    }
    let mut ended = None;
    let watch = async {
        while let Some(event) = events.next().await {
            match event {
                Ok(WatchEvent::Modified(p)) if p.metadata.uid == uid => ended = ended_in(&p).or(ended.take()),
                Ok(WatchEvent::Deleted(p)) if p.metadata.uid == uid => {
                    ended = ended_in(&p).or(ended.take());
                    return true;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("watching pod {name}: {e}"),
            }
        }
        false
    };
    let gone = tokio::time::timeout(timeout, watch).await.unwrap_or(false);
    // The watch may end early (its own timeout, a dropped connection): ask once more.
    if gone || pods.get_opt(name).await.ok().flatten().is_none_or(|p| p.metadata.uid != uid) {
        return Ok(ended);
    }
    Err(EnvError::Engine(format!("pod {name} was still there {}s after its deletion", timeout.as_secs())))
}

/// Sends `signal` to the service's process in pod `pod` from its
/// [`manifests::SIGNALS`] container (one process namespace); returns the pids
/// signalled. None found is an error: nothing was done.
pub(super) async fn signal_process(pods: &Api<Pod>, pod: &str, app: &str, signal: &str) -> Result<String, EnvError> {
    let script = manifests::signal_script(signal, manifests::process_needle(app));
    run_signal_script(pods, pod, app, signal, &script).await
}

/// Sends `signal` to every process of the pod's container `container`, found by
/// the runtime's container id in their cgroup path: for a processor image the
/// harness did not build, whose command line it cannot know (and for the builtin,
/// the same way). Returns the pids signalled; none found is an error.
pub(super) async fn signal_container(pods: &Api<Pod>, pod: &str, container: &str, signal: &str) -> Result<String, EnvError> {
    let p = pods.get(pod).await.map_err(KubeErr::ctx(format!("reading pod {pod}")))?;
    let id = service_container(&p, container)
        .and_then(|c| c.container_id.clone())
        .ok_or_else(|| EnvError::Engine(format!("container {container} of pod {pod} has no runtime id (not started?)")))?;
    // `containerd://<id>`, `cri-o://<id>`, `docker://<id>`.
    let id = id.rsplit("://").next().unwrap_or(&id).to_string();
    let script = manifests::signal_container_script(signal, &id);
    run_signal_script(pods, pod, container, signal, &script).await
}

async fn run_signal_script(pods: &Api<Pod>, pod: &str, app: &str, signal: &str, script: &str) -> Result<String, EnvError> {
    let what = format!("sending SIG{signal} to {app} in pod {pod}");
    let out = exec_in_signals(pods, pod, script, &what).await?;
    let pids: Vec<&str> = out.split_whitespace().collect();
    if pids.is_empty() {
        return Err(EnvError::Engine(format!("{what}: no process of {app} found in the pod")));
    }
    Ok(pids.join(", "))
}

/// Runs `sh -c script` in the pod's signals container; its stdout. `what` names
/// the operation in errors.
pub(super) async fn exec_in_signals(pods: &Api<Pod>, pod: &str, script: &str, what: &str) -> Result<String, EnvError> {
    use tokio::io::AsyncReadExt;
    let ap = kube::api::AttachParams::default().container(manifests::SIGNALS).stdin(false).stdout(true).stderr(false);
    let exec = async {
        let mut proc = pods.exec(pod, ["sh", "-c", script], &ap).await.map_err(KubeErr::ctx(what.to_string()))?;
        let mut out = String::new();
        if let Some(mut stdout) = proc.stdout() {
            let _ = stdout.read_to_string(&mut out).await;
        }
        let _ = proc.join().await;
        Ok::<_, EnvError>(out)
    };
    tokio::time::timeout(API_TIMEOUT, exec)
        .await
        .map_err(|_| EnvError::Engine(format!("{what}: no answer within {}s", API_TIMEOUT.as_secs())))?
}

/// The status of the pod's container named `app` (each service's container is
/// named after it; the pod also has the signals container).
pub(super) fn service_container<'a>(pod: &'a Pod, app: &str) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status.as_ref()?.container_statuses.as_ref()?.iter().find(|c| c.name == app)
}

/// "exit code 143 (SIGTERM)": a container's exit code, with the signal it means.
pub(super) fn exit_text(code: i32) -> String {
    match code {
        137 => "exit code 137 (SIGKILL)".into(),
        143 => "exit code 143 (SIGTERM)".into(),
        c => format!("exit code {c}"),
    }
}

/// Removes the run's hostPath data from the node with a short-lived pod, once the
/// services' pods are gone. Never fails: a leftover is reported.
pub(super) async fn remove_volumes(client: &Client, namespace: &str, image: &str, labels: &BTreeMap<String, String>) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for app in [manifests::KAFKA, manifests::MINIO] {
        let _ = delete_pod_and_wait(&pods, &format!("{app}-0"), 0, Duration::from_secs(60)).await;
    }
    let pod = manifests::cleanup_pod(image, namespace, labels);
    if let Err(e) = pods.create(&PostParams::default(), &pod).await {
        tracing::warn!("removing the run's data from the node ({}/{namespace}): {}", manifests::VOLUME_ROOT, describe(&e));
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let phase = pods.get_opt("cleanup").await.ok().flatten().and_then(|p| p.status).and_then(|s| s.phase);
        match phase.as_deref() {
            Some("Succeeded") => return,
            Some("Failed") => break,
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    tracing::warn!("could not remove the run's data from the node: {}/{namespace} is left", manifests::VOLUME_ROOT);
}

/// Deletes every namespace a harness on this machine created and that harness is
/// gone (killed, or kept with `--keep` and ended): only those this machine holds the
/// lease of (see `owner`). Returns how many.
pub async fn reap_leftovers(client: &Client, cluster: &str) -> usize {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let lp = ListParams::default().labels(&format!("{MANAGED_BY}=harness"));
    let Ok(Ok(list)) = tokio::time::timeout(API_TIMEOUT, namespaces.list(&lp)).await else { return 0 };
    // Leases of this cluster whose namespace is gone and whose run ended: nothing
    // left to reap, only a file (read from the full list: never on a failed one).
    let owned: std::collections::HashSet<String> =
        list.items.iter().filter_map(|ns| ns.metadata.labels.as_ref()?.get(super::owner::LABEL_OWNER).cloned()).collect();
    let pruned = super::owner::prune(cluster, &owned);
    if pruned > 0 {
        tracing::info!("pruned {pruned} lease(s) of runs whose namespace is gone");
    }
    let mut reaped = 0;
    for ns in list.items {
        let labels: HashMap<String, String> = ns.metadata.labels.clone().unwrap_or_default().into_iter().collect();
        let terminating = ns.metadata.deletion_timestamp.is_some();
        if terminating || !super::owner::is_ours_and_abandoned(&labels) {
            continue;
        }
        let Some(name) = ns.metadata.name.clone() else { continue };
        // Its data first (a pod cannot start in a namespace being deleted).
        if let Some(image) = leftover_image(client, &name).await {
            remove_volumes(client, &name, &image, &ns.metadata.labels.clone().unwrap_or_default()).await;
        }
        match namespaces.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {
                reaped += 1;
                if let Some(token) = labels.get(super::owner::LABEL_OWNER) {
                    super::owner::release(token);
                }
            }
            Err(e) => tracing::warn!("deleting leftover namespace {name}: {}", describe(&e)),
        }
    }
    reaped
}

/// The Kafka image a leftover namespace used (it has `rm`, for the cleanup pod).
async fn leftover_image(client: &Client, namespace: &str) -> Option<String> {
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), namespace);
    let set = sets.get_opt(manifests::KAFKA).await.ok().flatten()?;
    set.spec?.template.spec?.containers.first()?.image.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": "kafka-0" }, "status": status })).unwrap()
    }

    #[test]
    fn a_pod_that_cannot_run_is_named_with_its_cause() {
        let never = pod(json!({ "containerStatuses": [{
            "name": "kafka", "image": "localhost/harness-kafka:1", "imageID": "", "ready": false, "restartCount": 0,
            "state": { "waiting": { "reason": "ErrImageNeverPull", "message": "image not present with pull policy of Never" } }
        }]}));
        let p = problem_of(&never).unwrap();
        assert!(p.certain && p.text.contains("ErrImageNeverPull") && p.text.contains("ci/k8s load localhost/harness-kafka:1"), "{p:?}");
        let unschedulable = pod(json!({ "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient memory."
        }]}));
        let p = problem_of(&unschedulable).unwrap();
        assert!(!p.certain && p.text.contains("Insufficient memory"), "{p:?}");
        let looping = pod(json!({ "containerStatuses": [{
            "name": "kafka", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
            "state": { "waiting": { "reason": "CrashLoopBackOff" } },
            "lastState": { "terminated": { "exitCode": 1 } }
        }]}));
        assert_eq!(problem_of(&looping).unwrap().text, "pod kafka-0 is in a crash loop (3 restarts, last exit code 1)");
        let starting = pod(json!({ "containerStatuses": [{
            "name": "kafka", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": { "waiting": { "reason": "ContainerCreating" } }
        }]}));
        assert!(problem_of(&starting).is_none());
    }

    #[test]
    fn a_problem_that_can_pass_must_last_before_it_counts() {
        let mut problems = Problems::default();
        let passing = || Some(Problem { text: "CreateContainerConfigError: failed to sync secret cache".into(), certain: false });
        assert_eq!(problems.settled(passing()), None, "first sight");
        assert_eq!(problems.settled(passing()), None, "not yet lasted");
        problems.first_seen.as_mut().unwrap().1 -= PROBLEM_GRACE;
        assert!(problems.settled(passing()).is_some(), "lasted its grace");
        assert_eq!(problems.settled(None), None);
        assert_eq!(problems.settled(passing()), None, "gone and back: from the start again");
        assert!(Problems::default().settled(Some(Problem { text: "ErrImageNeverPull".into(), certain: true })).is_some());
    }

    #[test]
    fn exit_codes_name_their_signal() {
        assert_eq!(exit_text(137), "exit code 137 (SIGKILL)");
        assert_eq!(exit_text(1), "exit code 1");
    }
}
