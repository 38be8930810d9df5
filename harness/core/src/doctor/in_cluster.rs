//! The links walked from inside the cluster: a short-lived pod in the pipeline's
//! namespace runs `harness doctor --format json` against the addresses the
//! pipeline's own pods use, so advertised listeners, Service names and network
//! paths are checked as MinIO and the processor see them, not as a laptop does.
//!
//! The pod runs the harness's image (the processor image: the harness binary and
//! nothing else), built and loaded the way runs load theirs, or `--probe-image`.
//! Credentials reach it through a Secret of its own (never its spec), which the
//! pod owns: deleting the pod removes it. Only credentials found in that namespace
//! are ever put there (the caller's own never are: see `diagnose`). Both are
//! deleted when the walk ends, Ctrl-C included; the pod also has an
//! `activeDeadlineSeconds`, so a doctor killed mid-walk (SIGKILL) leaves a finished
//! pod and its Secret at most, both labelled [`ROLE_LABEL`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, LogParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

use super::cluster::{bounded, pod_findings};
use super::{Diagnosis, Finding, Link, Notes, Severity, Target};
use crate::services::endpoints::S3Credentials;

/// The label on the probe's pod and Secret (`kubectl delete pod,secret -l …`).
pub const ROLE_LABEL: &str = "io.harness.role";
const ROLE: &str = "doctor-probe";
const CONTAINER: &str = "doctor";
/// How long the pod may take to start (an image already on the node: ~1 s).
const START_LIMIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(250);
/// The longest one read of the pod or its log may take.
const READ_LIMIT: Duration = Duration::from_secs(10);
/// The most of the pod's log read: its diagnosis is a few kilobytes of JSON.
const LOG_LIMIT: i64 = 1 << 20;

/// Where the links are walked from.
#[derive(Clone, Debug, Default)]
pub enum Vantage {
    /// From where the doctor runs.
    #[default]
    Here,
    /// From a pod in the pipeline's namespace (needs `Target::kubernetes`).
    Cluster {
        /// The image to run; `None`: the harness's own, built and loaded here.
        image: Option<String>,
        /// The harness executable the image is built from.
        harness_bin: PathBuf,
    },
}

/// Walks the links from a pod; its findings are appended to `notes`. Returns
/// where they were walked from (for the report's header).
pub(super) async fn walk(
    client: &Client,
    t: &Target,
    credentials: &S3Credentials,
    image: &str,
    notes: &mut Notes,
    progress: &(dyn Fn(&str) + Sync),
) -> Option<String> {
    let ns = &t.kubernetes.as_ref()?.namespace;
    let name = match crate::services::token::hex_token(4) {
        Ok(tok) => format!("harness-doctor-{tok}"),
        Err(e) => {
            notes.push(Finding::error(Link::Discovery, "start a probe pod", format!("reading /dev/urandom: {e}")));
            return None;
        }
    };
    let check = format!("walk the links from pod {name} in namespace {ns}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let budget = walk_budget(t);
    progress(&format!("starting pod {name} ({image}) in namespace {ns} to walk the links from inside the cluster…"));
    let work = async {
        match create(&pods, &secrets, &name, image, t, credentials, budget).await {
            Ok(()) => wait_and_read(&pods, &name, ns, budget).await,
            Err(e) => Err(Finding::error(Link::Discovery, check.clone(), e)
                .because("the doctor may not create pods or Secrets in this namespace")
                .fix("run it with a kubeconfig allowed to (`kubectl auth can-i create pods -n NAMESPACE`), or walk from here: --from here with --s3/--kafka through port-forwards")),
        }
    };
    // Ctrl-C while the pod is made or runs: stop waiting, and remove it all below.
    let outcome = tokio::select! {
        outcome = work => outcome,
        _ = tokio::signal::ctrl_c() => Err(Finding::error(Link::Discovery, check.clone(), "interrupted (Ctrl-C) while the probe pod ran; the pod and its Secret were deleted")),
    };
    // The Secret goes with its pod (owner reference); delete both anyway, on every
    // path, each call bounded: a slow API server cannot hold the doctor here.
    let gone = Duration::from_secs(10);
    let _ =
        bounded(gone, "deleting the probe pod", pods.delete(&name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }))
            .await;
    let _ = bounded(gone, "deleting the probe's Secret", secrets.delete(&name, &DeleteParams::default())).await;
    match outcome {
        Ok(inner) => {
            notes.push(Finding::ok(
                Link::Discovery,
                check,
                format!("{} finding(s) from inside the cluster, walked in {:.1} s", inner.findings.len(), inner.millis as f64 / 1000.0),
            ));
            for f in inner.findings {
                notes.push_as_is(f);
            }
            Some(format!("pod {name} in namespace {ns} (the pipeline's own view)"))
        }
        Err(f) => {
            notes.push(f);
            None
        }
    }
}

/// The longest the inner doctor can take: every probe at its limit, the canary,
/// and a margin.
fn walk_budget(t: &Target) -> Duration {
    t.probe_timeout * 20 + if t.canary { t.canary_timeout } else { Duration::ZERO } + Duration::from_secs(10)
}

/// `harness doctor` as the pod runs it: the inside addresses, JSON out (the
/// credentials come from the environment, the pod's Secret).
pub(super) fn command(t: &Target, region: &str) -> Vec<String> {
    let mut argv: Vec<String> = [
        crate::engine::images::HARNESS_BIN,
        "doctor",
        "--s3",
        &t.s3_endpoint,
        "--kafka",
        &t.kafka_bootstrap,
        "--topic",
        &t.topic,
        "--source-bucket",
        &t.source_bucket,
        "--target-bucket",
        &t.target_bucket,
        "--format",
        "json",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(["--region".into(), region.to_string()]);
    argv.extend(["--timeout".into(), format!("{}ms", t.probe_timeout.as_millis())]);
    argv.extend(["--canary-timeout".into(), format!("{}ms", t.canary_timeout.as_millis())]);
    if let Some(g) = &t.group {
        argv.extend(["--group".into(), g.clone()]);
    }
    if !t.canary {
        argv.push("--no-canary".into());
    }
    argv
}

async fn create(
    pods: &Api<Pod>,
    secrets: &Api<Secret>,
    name: &str,
    image: &str,
    t: &Target,
    credentials: &S3Credentials,
    budget: Duration,
) -> Result<(), String> {
    let labels =
        BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), "harness".to_string()), (ROLE_LABEL.to_string(), ROLE.to_string())]);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "stringData": { "MINIO_ROOT_USER": credentials.access_key, "MINIO_ROOT_PASSWORD": credentials.secret_key }
    }))
    .map_err(|e| format!("the probe's Secret: {e}"))?;
    let timeout = t.probe_timeout.max(Duration::from_secs(5));
    bounded(timeout, "creating the probe's Secret", secrets.create(&PostParams::default(), &secret)).await?;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": (budget + START_LIMIT).as_secs(),
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": CONTAINER,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": command(t, &credentials.region),
                "envFrom": [{ "secretRef": { "name": name } }],
                "resources": { "requests": { "cpu": "50m", "memory": "64Mi" } }
            }]
        }
    }))
    .map_err(|e| format!("the probe's pod: {e}"))?;
    let pod = bounded(timeout, "creating the probe pod", pods.create(&PostParams::default(), &pod)).await?;
    let owner = json!({ "metadata": { "ownerReferences": [{
        "apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod.metadata.uid.unwrap_or_default()
    }] } });
    let _ = bounded(timeout, "owning the probe's Secret", secrets.patch(name, &PatchParams::default(), &Patch::Merge(&owner))).await;
    Ok(())
}

/// Waits for the pod to end and reads its answer from its log.
async fn wait_and_read(pods: &Api<Pod>, name: &str, ns: &str, budget: Duration) -> Result<Diagnosis, Finding> {
    let check = format!("walk the links from pod {name} in namespace {ns}");
    let started = Instant::now();
    let mut running_since: Option<Instant> = None;
    loop {
        let pod = bounded(READ_LIMIT, "reading the probe pod", pods.get_opt(name)).await.ok().flatten();
        let phase = pod.as_ref().and_then(|p| p.status.as_ref()?.phase.clone()).unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            break;
        }
        if let Some(p) = &pod {
            // A pod that cannot start (image, scheduling) is said at once.
            if let Some(f) = pod_findings(p, ns).into_iter().find(|f| f.severity == Severity::Error) {
                return Err(Finding { link: Link::Discovery, check: check.clone(), ..f }
                    .fix(format!("load the harness's image into the cluster (`harness images build`, then `kind load docker-image REF`), or name one the nodes have with --probe-image; or walk from here: --from here. Then `kubectl delete pod {name} -n {ns}` if it is left")));
            }
        }
        if phase == "Running" {
            running_since.get_or_insert_with(Instant::now);
        }
        let limit = match running_since {
            Some(t) if t.elapsed() > budget => Some(format!("the walk did not end within {budget:?}")),
            None if started.elapsed() > START_LIMIT => Some(format!("the pod did not start within {START_LIMIT:?} (phase {phase:?})")),
            _ => None,
        };
        if let Some(why) = limit {
            return Err(Finding::error(Link::Discovery, check, why)
                .because("the pod was not scheduled or started, or the doctor inside it hung")
                .fix(format!("`kubectl describe pod {name} -n {ns}` and `kubectl logs {name} -n {ns}`")));
        }
        tokio::time::sleep(POLL).await;
    }
    // At most LOG_LIMIT bytes: an image named by --probe-image may print anything; a
    // log cut there is no diagnosis, a finding below.
    let params = LogParams { container: Some(CONTAINER.into()), limit_bytes: Some(LOG_LIMIT), ..Default::default() };
    let log = bounded(READ_LIMIT, "reading its log", pods.logs(name, &params))
        .await
        .map_err(|e| Finding::error(Link::Discovery, check.clone(), e).because("the API server did not give the pod's log"))?;
    parse(&log).map_err(|e| {
        Finding::error(Link::Discovery, check, e)
            .because("the image's harness did not answer with a diagnosis: an image of another harness version, or not the harness at all")
            .fix("give --probe-image an image built by this harness (`harness images build`), or leave --probe-image out")
    })
}

/// The diagnosis in the pod's log (anything the doctor printed before it is ignored).
pub(super) fn parse(log: &str) -> Result<Diagnosis, String> {
    let start = log.find("{\n").or_else(|| log.find('{')).ok_or_else(|| format!("its log holds no JSON: {}", tail(log)))?;
    serde_json::from_str(&log[start..]).map_err(|e| format!("its log is no diagnosis ({e}): {}", tail(log)))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
    if tail.is_empty() {
        "(empty)".into()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pods_answer_is_read_back_as_a_diagnosis() {
        let d = Diagnosis {
            s3_endpoint: "http://minio.alice.svc:9000".into(),
            kafka_bootstrap: "kafka.alice.svc:9092".into(),
            topic: "t".into(),
            source_bucket: "a".into(),
            target_bucket: "b".into(),
            findings: vec![Finding::error(Link::AdvertisedListeners, "x", "y").because("c").fix("f")],
            millis: 12,
            walked_from: None,
        };
        let back = parse(&format!("some line\n{}", super::super::render::json(&d))).unwrap();
        assert_eq!(back.findings.len(), 1);
        assert_eq!(back.findings[0].link, Link::AdvertisedListeners);
        assert_eq!(back.findings[0].fix.as_deref(), Some("f"));
        let e = parse("exec /usr/local/bin/harness: no such file or directory").unwrap_err();
        assert!(e.contains("no such file"), "{e}");
    }

    #[test]
    fn the_pod_walks_the_inside_addresses_and_prints_json() {
        let t = Target {
            s3_endpoint: "http://10.96.0.5:9000".into(),
            credentials: None,
            kafka_bootstrap: "10.96.0.7:9092".into(),
            topic: "minio-events".into(),
            source_bucket: "images".into(),
            target_bucket: "thumbnails".into(),
            group: Some("resizer".into()),
            canary: false,
            probe_timeout: Duration::from_millis(1500),
            canary_timeout: Duration::from_secs(30),
            kubernetes: None,
            from: Vantage::Here,
        };
        let argv = command(&t, "eu-west-1").join(" ");
        assert!(argv.starts_with("/usr/local/bin/harness doctor --s3 http://10.96.0.5:9000 --kafka 10.96.0.7:9092"), "{argv}");
        assert!(argv.contains("--format json --quiet --region eu-west-1 --timeout 1500ms"), "{argv}");
        assert!(argv.ends_with("--group resizer --no-canary"), "{argv}");
    }
}
