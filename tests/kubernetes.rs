//! The kubernetes environment on a real cluster: the harness's own, from `ci/k8s
//! up` (kube-apiserver, kubelet, … built from the Go module proxy, Debian's
//! containerd), which `ci/test` starts and names in KUBECONFIG. The same scenario
//! files as the local environment, run with `--env kubernetes`, must reach the same
//! verdicts (exactly-once included); faults are API operations proven by the same
//! probes; a run's namespace is deleted at its end, and a killed run's by the next.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

use crate::faults::{run_in_place, run_with};
use crate::util::{assert_correct, exclusive, harness, only_run_dir, slot, spawn_until};

/// The namespaces labelled with this run id, on the cluster the harness uses
/// (KUBECONFIG: `ci/test` sets it to the cluster `ci/k8s up` started).
fn namespaces_of_run(run_id: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = kube::Client::try_default().await.expect("a kube client from KUBECONFIG (ci/test sets it)");
        let api: Api<Namespace> = Api::all(client);
        let list = api.list(&ListParams::default().labels(&format!("io.harness.run={run_id}"))).await.expect("listing namespaces");
        list.items.into_iter().filter_map(|n| n.metadata.name).collect()
    })
}

/// The run's namespace, named in results.json's services.
pub(crate) fn namespace_of(run: &crate::faults::Run) -> String {
    let services = run.results["environment"]["services"].to_string();
    let at = services.find("namespace h-").unwrap_or_else(|| panic!("no namespace in the services: {services}"));
    services[at + "namespace ".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect()
}

/// Namespaces labelled with this run id (the harness deletes them in the
/// background: give them the time a namespace takes to go).
fn assert_namespace_gone(run_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = namespaces_of_run(run_id);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "run {run_id} left namespaces behind: {left:?}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn run_id(run: &crate::faults::Run) -> String {
    run.results["run_id"].as_str().unwrap().to_string()
}

#[test]
fn smoke_on_kubernetes_passes_like_local_and_leaves_nothing() {
    let run = run_with(&["--env", "kubernetes"], "scenarios/smoke.yaml");
    assert_correct(run.code, &run.results, || run.explain());
    assert_eq!(run.results["environment"]["kind"], "kubernetes");
    let ns = namespace_of(&run);
    assert!(ns.starts_with("h-"), "{ns}");
    let kafka_log = std::fs::read_to_string(run.dir.join("logs/kafka.log")).unwrap_or_default();
    assert!(kafka_log.contains("Kafka Server started"), "the broker pod's log is kept: {}", &kafka_log[..kafka_log.len().min(2000)]);
    let processor_log = std::fs::read_to_string(run.dir.join("logs/processor.log")).unwrap_or_default();
    assert!(!processor_log.is_empty(), "the processor pod's log is kept");
    let events = std::fs::read_to_string(run.dir.join("logs/kubernetes-events.log")).unwrap_or_default();
    assert!(events.contains("Pod/kafka-0"), "the namespace's events are kept: {events}");
    let secret = run.results["environment"].to_string();
    assert!(!secret.contains("AWS_SECRET"), "no credentials in results.json");
    assert_namespace_gone(&run_id(&run));
}

#[test]
fn broker_kill_is_a_real_sigkill_then_the_pod_comes_back_and_exactly_once_holds() {
    let run = run_with(&["--env", "kubernetes"], "scenarios/faults/broker-kill.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    run.assert_faults_proven(
        &["broker_kill"],
        &["SIGKILL to kafka (pid", "in pod kafka-0), then the pod deleted", "produce to", "after the heal: produce"],
    );
    let kafka_log = std::fs::read_to_string(run.dir.join("logs/kafka.log")).unwrap_or_default();
    let pods: Vec<&str> = kafka_log.split("=== pod kafka-0").skip(1).collect();
    assert_eq!(pods.len(), 2, "both broker pods' logs are kept, the killed one's too");
    assert!(pods[0].contains("Kafka Server started"), "{}", pods[0]);
    assert!(!pods[0].contains("shutting down"), "a SIGKILL leaves the broker no time for a shutdown: {}", pods[0]);
    assert_eq!(run.verdict("exactly_once").0, "pass", "{}", run.explain());
    assert_namespace_gone(&run_id(&run));
}

#[test]
fn a_crashed_processor_is_restarted_by_the_kubelet_and_exactly_once_holds() {
    let run = run_with(&["--env", "kubernetes"], "scenarios/faults/processor-crash.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    run.assert_faults_proven(&["processor_crash"], &["processor pod #1 gone", "exit code 137 (SIGKILL)"]);
    let processor_log = std::fs::read_to_string(run.dir.join("logs/processor.log")).unwrap_or_default();
    assert!(processor_log.contains("container start 2"), "the restarted container's log follows the killed one's");
    assert_eq!(run.verdict("exactly_once").0, "pass", "{}", run.explain());
    assert_namespace_gone(&run_id(&run));
}

#[test]
fn a_scaled_up_processor_rebalances_the_group_and_exactly_once_holds() {
    let run = run_with(&["--env", "kubernetes"], "scenarios/faults/processor-join.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    run.assert_faults_proven(&["processor_join"], &["replica pod #2 started", "has 2 members", "Stable with 2 members"]);
    assert_eq!(run.verdict("exactly_once").0, "pass", "{}", run.explain());
    assert_namespace_gone(&run_id(&run));
}

/// The queue is wiped from inside MinIO's pod (its signals container mounts
/// MinIO's folder) while the broker is down; the lost notifications are found and
/// named as on local.
#[test]
fn queue_dir_loss_wipes_the_queue_in_minios_pod_and_every_lost_key_is_named() {
    let run = run_with(&["--env", "kubernetes"], "scenarios/faults/queue-dir-loss.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    run.assert_faults_proven(&["queue_dir_loss"], &["SIGKILL to kafka", "wiped", "queued events", "from /minio/queue in pod minio-0"]);
    run.assert_the_wiped_events_are_the_lost_ones();
    assert_namespace_gone(&run_id(&run));
}

/// The broker's pod cut off by iptables in its own network namespace: every
/// client's bytes are held (the harness's produce times out, nothing is refused)
/// until the heal; MinIO's queue_dir keeps the events, exactly-once holds.
#[test]
fn a_partitioned_brokers_pod_blackholes_every_client_and_exactly_once_holds() {
    let run = run_with(&["--env", "kubernetes"], "scenarios/faults/partition-kafka.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    run.assert_faults_proven(&["partition"], &["MessageTimedOut", "after the heal: produce"]);
    assert_eq!(run.verdict("exactly_once").0, "pass", "{}", run.explain());
    assert_namespace_gone(&run_id(&run));
}

#[test]
fn validate_with_env_kubernetes_rejects_what_it_cannot_do() {
    for (file, says) in [
        ("scenarios/faults/latency.yaml", "latency (with --env kubernetes): cannot be injected by the kubernetes environment"),
        ("scenarios/faults/leader-kill.yaml", "the kubernetes environment runs one broker in this version"),
    ] {
        let out = harness(&["validate", "--env", "kubernetes", file], &[]);
        let text = format!("{}{}", out.stdout, out.stderr);
        assert_eq!(out.code, 2, "{file}: {text}");
        assert!(text.contains(says), "{file}: {text}");
    }
    let out = harness(
        &[
            "validate",
            "--env",
            "kubernetes",
            "scenarios/smoke.yaml",
            "scenarios/faults/broker-kill.yaml",
            "scenarios/faults/processor-join.yaml",
            "scenarios/faults/queue-dir-loss.yaml",
            "scenarios/faults/partition-kafka.yaml",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

/// SIGKILL the harness mid-workload: its namespace stays. The next run deletes it
/// (and its data on the node) before it starts. The test runs alone (every
/// place): any other run would reap it first.
#[test]
fn a_killed_runs_namespace_is_deleted_by_the_next_run() {
    let _alone = exclusive();
    let reports = tempfile::tempdir().unwrap();
    let args = ["run", "--env", "kubernetes", "--reports", reports.path().to_str().unwrap(), "scenarios/smoke.yaml"];
    let (mut child, seen) = spawn_until(&args, Duration::from_secs(600), |l| l.contains("uploading "));
    assert!(seen.iter().any(|l| l.contains("uploading ")), "never reached the workload:\n{}", seen.join("\n"));
    child.kill().unwrap();
    child.wait().unwrap();
    let id = only_run_dir(reports.path()).file_name().unwrap().to_string_lossy().into_owned();
    let left = namespaces_of_run(&id);
    assert_eq!(left.len(), 1, "the killed run's namespace should still be there: {left:?}");

    let run = run_in_place(&["--env", "kubernetes"], "scenarios/faults/broker-stop.yaml");
    assert!(run.stderr.contains("namespace(s) left by killed runs"), "{}", run.explain());
    assert_namespace_gone(&id);
    assert_eq!(run.code, 0, "{}", run.explain());
    run.assert_faults_proven(&["broker_stop"], &["pod kafka-0 deleted with a grace of 15 s", "exit code 143 (SIGTERM)"]);
    assert_namespace_gone(&run_id(&run));
}

/// The same smoke scenario on a kind cluster created for it, with the images loaded
/// by `kind load docker-image` (the harness does that for a context named `kind-*`).
/// kind's node image (kindest/node) comes from a registry, which this project's
/// machines cannot reach; where one is reachable and kind and Docker are installed,
/// `cargo test -- --ignored kind` runs it.
#[test]
#[ignore = "needs kind, Docker and a registry for kind's node image (kindest/node); none is reachable here"]
fn smoke_on_a_kind_cluster_created_for_it() {
    let _place = slot();
    let cluster = "harness-test";
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    let kc = kubeconfig.path().to_str().unwrap().to_string();
    let create = std::process::Command::new("kind")
        .args(["create", "cluster", "--name", cluster, "--kubeconfig", &kc, "--wait", "120s"])
        .status()
        .expect("kind on PATH");
    assert!(create.success(), "kind create cluster failed");
    let reports = tempfile::tempdir().unwrap();
    let out = harness(
        &["run", "--env", "kubernetes", "--reports", reports.path().to_str().unwrap(), "scenarios/smoke.yaml"],
        &[("KUBECONFIG", kc.clone())],
    );
    let _ = std::process::Command::new("kind").args(["delete", "cluster", "--name", cluster, "--kubeconfig", &kc]).status();
    assert!(out.stderr.contains(&format!("into kind cluster {cluster}")), "{}", out.stderr);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// What the doctor's Kubernetes test creates, removed when it drops (a failed
/// assertion included): its namespace, and the CRDs it installed itself.
struct DoctorFixture {
    namespace: String,
    crds: Vec<String>,
}

impl Drop for DoctorFixture {
    fn drop(&mut self) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let (ns, crds) = (self.namespace.clone(), std::mem::take(&mut self.crds));
        // Its own thread and runtime: a drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let Ok(client) = kube::Client::try_default().await else { return };
                let _ = Api::<Namespace>::all(client.clone()).delete(&ns, &Default::default()).await;
                for crd in crds {
                    let _ = Api::<CustomResourceDefinition>::all(client.clone()).delete(&crd, &Default::default()).await;
                }
            })
        })
        .join();
    }
}

/// A CRD for `kind` in `group` whose objects take any fields (Strimzi's real
/// schemas are not needed to be read back).
fn open_crd(group: &str, version: &str, kind: &str, plural: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.{group}"), "labels": { "io.harness.test": "doctor" } },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List") },
            "versions": [{
                "name": version, "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } },
                "subresources": { "status": {} }
            }]
        }
    })
}

/// `harness doctor --namespace` against a real API server, scheduler and kubelet
/// (the cluster `ci/k8s up` started): a pod no node can take (failure 7), a
/// container whose command is not in its image (a real crash loop: the kubelet's
/// back-off), a volume claim no provisioner binds, and KafkaTopics Strimzi's Topic
/// Operator would ignore (failure 4): one without the `strimzi.io/cluster` label,
/// one naming another cluster, one of `kafka.banzaicloud.io`; and a MinIO whose
/// Kafka target queues on an `emptyDir` (failure 6, read from the live objects by
/// the lint's rules). The CRDs are Strimzi-shaped ones the test installs (the
/// operator's images cannot be pulled here); a correctly labelled topic gets no
/// finding.
#[test]
fn doctor_names_what_is_stuck_in_a_namespace_and_the_topics_strimzi_would_ignore() {
    use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{ApiResource, DynamicObject, PostParams};

    let _place = slot();
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() % 1_000_000_000;
    let mut fixture = DoctorFixture { namespace: format!("hdoc-{nonce}"), crds: Vec::new() };
    let ns = fixture.namespace.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = kube::Client::try_default().await.expect("a kube client from KUBECONFIG (ci/test sets it)");
        let pp = PostParams::default();
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": ns, "labels": { "io.harness.test": "doctor" } } })).unwrap();
        Api::<Namespace>::all(client.clone()).create(&pp, &namespace).await.expect("creating the namespace");

        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for (group, version, kind, plural) in [
            ("kafka.strimzi.io", "v1beta2", "Kafka", "kafkas"),
            ("kafka.strimzi.io", "v1beta2", "KafkaTopic", "kafkatopics"),
            ("kafka.banzaicloud.io", "v1alpha1", "KafkaTopic", "kafkatopics"),
        ] {
            let crd: CustomResourceDefinition = serde_json::from_value(open_crd(group, version, kind, plural)).unwrap();
            match crds.create(&pp, &crd).await {
                Ok(_) => fixture.crds.push(format!("{plural}.{group}")),
                Err(kube::Error::Api(e)) if e.code == 409 => {} // installed before: left as found
                Err(e) => panic!("installing the CRD {plural}.{group}: {e}"),
            }
        }
        // A CRD serves its kind once Established.
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in ["kafkas.kafka.strimzi.io", "kafkatopics.kafka.strimzi.io", "kafkatopics.kafka.banzaicloud.io"] {
            loop {
                let crd = crds.get(name).await.expect("reading the CRD back");
                let established = crd.status.and_then(|s| s.conditions).unwrap_or_default().iter().any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    break;
                }
                assert!(Instant::now() < deadline, "CRD {name} never became Established");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let object = |api_version: &str, kind: &str, name: &str, labels: serde_json::Value| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": api_version, "kind": kind,
                "metadata": { "name": name, "labels": labels }, "spec": { "partitions": 3, "replicas": 1 }
            }))
            .unwrap()
        };
        let resource = |group: &str, version: &str, kind: &str, plural: &str| ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: format!("{group}/{version}"),
            kind: kind.into(),
            plural: plural.into(),
        };
        let strimzi_topics = resource("kafka.strimzi.io", "v1beta2", "KafkaTopic", "kafkatopics");
        let creates = [
            (resource("kafka.strimzi.io", "v1beta2", "Kafka", "kafkas"), object("kafka.strimzi.io/v1beta2", "Kafka", "my-cluster", serde_json::json!({}))),
            (strimzi_topics.clone(), object("kafka.strimzi.io/v1beta2", "KafkaTopic", "minio-events", serde_json::json!({ "strimzi.io/cluster": "my-cluster" }))),
            (strimzi_topics.clone(), object("kafka.strimzi.io/v1beta2", "KafkaTopic", "no-label", serde_json::json!({}))),
            (strimzi_topics.clone(), object("kafka.strimzi.io/v1beta2", "KafkaTopic", "wrong-cluster", serde_json::json!({ "strimzi.io/cluster": "kafka" }))),
            (
                resource("kafka.banzaicloud.io", "v1alpha1", "KafkaTopic", "kafkatopics"),
                object("kafka.banzaicloud.io/v1alpha1", "KafkaTopic", "images-banzai", serde_json::json!({})),
            ),
        ];
        for (r, o) in creates {
            Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &r).create(&pp, &o).await.expect("creating a custom resource");
        }

        // The node's pause image runs anywhere without a registry.
        let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await.expect("listing nodes");
        let pause = nodes
            .items
            .iter()
            .flat_map(|n| n.status.iter().flat_map(|s| s.images.iter().flatten()))
            .flat_map(|i| i.names.iter().flatten())
            .find(|n| n.contains("/pause:"))
            .cloned()
            .expect("the node has the pause image");
        let pod = |name: &str, container: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": name },
                "spec": { "containers": [container], "terminationGracePeriodSeconds": 0 }
            }))
            .unwrap()
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let greedy = serde_json::json!({ "name": "resize", "image": pause, "imagePullPolicy": "Never",
                                          "resources": { "requests": { "cpu": "1000" } } });
        let crasher = serde_json::json!({ "name": "resize", "image": pause, "imagePullPolicy": "Never", "command": ["/no-such-processor"] });
        pods.create(&pp, &pod("greedy", greedy)).await.expect("creating the greedy pod");
        pods.create(&pp, &pod("crasher", crasher)).await.expect("creating the crashing pod");
        // An image the node does not have, and may not pull: the kubelet says so at
        // once (no registry needed to see the pull diagnosis).
        let unpullable = serde_json::json!({ "name": "resize", "image": "localhost/no-such-processor:1", "imagePullPolicy": "Never" });
        pods.create(&pp, &pod("unpullable", unpullable)).await.expect("creating the pod without its image");
        // Failure 6 on Kubernetes: MinIO's Kafka target queues on an emptyDir.
        let minio: Pod = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "minio-0" },
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{ "name": "minio", "image": pause, "imagePullPolicy": "Never", "args": ["server", "/data"],
                    "env": [
                        { "name": "MINIO_NOTIFY_KAFKA_ENABLE_PRIMARY", "value": "on" },
                        { "name": "MINIO_NOTIFY_KAFKA_BROKERS_PRIMARY", "value": "kafka:9092" },
                        { "name": "MINIO_NOTIFY_KAFKA_TOPIC_PRIMARY", "value": "minio-events" },
                        { "name": "MINIO_NOTIFY_KAFKA_QUEUE_DIR_PRIMARY", "value": "/queue/events" }
                    ],
                    "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } },
                    "volumeMounts": [{ "name": "queue", "mountPath": "/queue" }] }],
                "volumes": [{ "name": "queue", "emptyDir": {} }]
            }
        }))
        .unwrap();
        pods.create(&pp, &minio).await.expect("creating the MinIO pod");
        let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "data" },
            "spec": { "accessModes": ["ReadWriteOnce"], "storageClassName": "no-such-class", "resources": { "requests": { "storage": "1Gi" } } }
        }))
        .unwrap();
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns).create(&pp, &claim).await.expect("creating the claim");

        // Until the scheduler has given up on one pod and the kubelet is backing off the other.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let greedy = pods.get("greedy").await.unwrap();
            let crasher = pods.get("crasher").await.unwrap();
            let unscheduled = greedy.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == "PodScheduled" && c.status == "False");
            let looping = crasher.status.iter().flat_map(|s| s.container_statuses.iter().flatten()).any(|c| {
                c.restart_count >= 1 && c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()) == Some("CrashLoopBackOff")
            });
            let unpulled = pods.get("unpullable").await.unwrap().status.iter().flat_map(|s| s.container_statuses.iter().flatten()).any(|c| {
                c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()) == Some("ErrImageNeverPull")
            });
            if unscheduled && looping && unpulled {
                break;
            }
            assert!(Instant::now() < deadline, "the fixture never got stuck: greedy {:?}, crasher {:?}", greedy.status, crasher.status);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    let started = Instant::now();
    let out = harness(
        &["doctor", "--namespace", &ns, "--s3", "http://127.0.0.1:1", "--kafka", "127.0.0.1:1", "--no-canary", "--format", "json", "-q"],
        &[("MINIO_ROOT_USER", "x".into()), ("MINIO_ROOT_PASSWORD", "y".into())],
    );
    let took = started.elapsed();
    drop(fixture);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    let findings = json["findings"].as_array().unwrap().clone();
    let shown = serde_json::to_string_pretty(&findings).unwrap();
    let error = |link: &str, check: &str| {
        findings
            .iter()
            .find(|f| f["link"] == link && f["severity"] == "error" && f["check"].as_str().unwrap().contains(check))
            .unwrap_or_else(|| panic!("no {link} error about {check:?}: {shown}"))
            .clone()
    };
    assert_eq!(out.code, 1, "{shown}");
    assert!(took < Duration::from_secs(20), "answered in {took:?}");
    let greedy = error("workloads", "pod greedy is scheduled");
    assert!(greedy["evidence"].as_str().unwrap().contains("Insufficient cpu"), "{shown}");
    assert!(greedy["fix"].as_str().unwrap().contains(&format!("kubectl describe pod greedy -n {ns}")), "{shown}");
    let crasher = error("workloads", "container resize of pod crasher runs");
    // Between two attempts the kubelet says CrashLoopBackOff; during one, RunContainerError.
    let evidence = crasher["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("restarted") && (evidence.contains("CrashLoopBackOff") || evidence.contains("/no-such-processor")),
        "{shown}"
    );
    let fix = crasher["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!("kubectl logs crasher -c resize -n {ns} --previous"))
            || fix.contains("fix command:/args: of container resize"),
        "{shown}"
    );
    let unpullable = error("workloads", "container resize of pod unpullable runs");
    assert!(unpullable["evidence"].as_str().unwrap().contains("ErrImageNeverPull for image localhost/no-such-processor:1"), "{shown}");
    assert!(unpullable["fix"].as_str().unwrap().contains("kind load docker-image localhost/no-such-processor:1"), "{shown}");
    let claim = error("workloads", "volume claim data is bound");
    assert!(claim["evidence"].as_str().unwrap().contains("no-such-class"), "{shown}");
    let no_label = error("topic_resource", "KafkaTopic no-label");
    assert_eq!(no_label["evidence"], "no strimzi.io/cluster label", "{shown}");
    assert_eq!(no_label["fix"], "metadata.labels: {strimzi.io/cluster: my-cluster}", "{shown}");
    let wrong = error("topic_resource", "KafkaTopic wrong-cluster");
    assert!(wrong["evidence"].as_str().unwrap().contains("no Kafka named \"kafka\" (it has: my-cluster)"), "{shown}");
    let banzai = error("topic_resource", "KafkaTopic images-banzai");
    assert_eq!(banzai["evidence"], "apiVersion kafka.banzaicloud.io/v1alpha1", "{shown}");
    assert!(!shown.contains("KafkaTopic minio-events"), "the labelled topic is fine: {shown}");
    let queue = findings
        .iter()
        .find(|f| f["link"] == "minio_kafka_target" && f["check"].as_str().unwrap().contains("minio-queue-dir-emptydir"))
        .unwrap_or_else(|| panic!("no finding on the queue_dir on an emptyDir: {shown}"));
    assert_eq!(queue["severity"], "warning", "{shown}");
    assert!(queue["evidence"].as_str().unwrap().contains("queue_dir /queue/events"), "{shown}");
    assert!(queue["fix"].as_str().unwrap().contains("persistentVolumeClaim"), "{shown}");
    eprintln!("doctor on a broken namespace answered in {:.1} s", took.as_secs_f64());
}

/// `processor: { image: … }` on kubernetes: the user's image is loaded into the
/// cluster (again on every run: its tag may name a new build) and runs as the
/// processor Deployment with its own command; processor_crash finds its process by
/// the container's id (not a command line it cannot know); exactly-once holds.
#[test]
fn a_users_processor_image_runs_as_the_deployment() {
    let image = crate::containers::user_image();
    let dir = tempfile::tempdir().unwrap();
    let run = run_with(&["--env", "kubernetes"], crate::containers::image_scenario(dir.path(), &image).to_str().unwrap());
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(run.results["environment"]["processor"], format!("image {image}"), "{}", run.explain());
    run.assert_faults_proven(&["processor_crash"], &["gone", "seen by its supervisor", "restarted the processor"]);
    assert_namespace_gone(&run_id(&run));
}

/// Scales the processor Deployment of `ns` and waits until that many of its pods run.
async fn scale_processor(client: &kube::Client, ns: &str, replicas: i32) {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Patch, PatchParams};
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({ "spec": { "replicas": replicas } });
    deployments.patch_scale("processor", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("scaling the processor");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = pods.list(&ListParams::default().labels("app.kubernetes.io/name=processor")).await.expect("listing pods");
        let running = list.items.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
        if running as i32 == replicas && list.items.len() as i32 == replicas {
            return;
        }
        assert!(Instant::now() < deadline, "the processor never got to {replicas} running pod(s)");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An existing pipeline found from its namespace alone (issue: validating a
/// student's pipeline). A kubernetes run kept with `--keep` stands in for a
/// student's namespace (real Kafka, MinIO and processor pods behind Services, the
/// credentials in a Secret); its processor is started again. Then:
/// `harness doctor --namespace NS` reads the endpoints and credentials from the
/// namespace and walks every link from a pod inside it (the pipeline's own view),
/// canary included, and leaves no pod behind; `--from here` walks them through the
/// node ports; a scenario with `external: { namespace: NS }` runs against it and
/// passes exactly-once; with the processor scaled to 0 the doctor, from inside,
/// says the pipeline is broken.
#[test]
fn a_pipeline_is_found_from_its_namespace_and_walked_from_inside_it() {
    use k8s_openapi::api::core::v1::Pod;
    // Alone: a kept run's namespace is reaped by any other run once its harness ended.
    let _alone = exclusive();
    let kept = run_in_place(&["--env", "kubernetes", "--keep"], "scenarios/smoke.yaml");
    let ns = namespace_of(&kept);
    // Deleted at the end, a failed assertion included (and by the next run's reaper
    // if this test dies: its labels name the harness that made it, which is gone).
    let _fixture = DoctorFixture { namespace: ns.clone(), crds: Vec::new() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = rt.block_on(kube::Client::try_default()).expect("a kube client from KUBECONFIG (ci/test sets it)");
    node_ports_answer_only_with_the_runs_secrets(&rt, &client, &ns, &kept.dir);
    rt.block_on(scale_processor(&client, &ns, 1));
    // The run's S3 secret, by value, is in none of the files the kubernetes run wrote
    // (its pods' logs, events, results and reports).
    let secret = secret_of(&rt, &client, &ns);
    let files = crate::util::files_below(&kept.dir);
    assert!(files.len() >= 5, "the run wrote its logs and reports: {files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{} holds the run's S3 secret", file.display());
    }

    let doctor = |extra: &[&str]| {
        let mut args = vec!["doctor", "--namespace", ns.as_str(), "--format", "json", "-q"];
        args.extend_from_slice(extra);
        let started = Instant::now();
        // No credentials in the environment: they are read from MinIO's Secret.
        let out = harness(&args, &[("MINIO_ROOT_USER", String::new()), ("MINIO_ROOT_PASSWORD", String::new())]);
        let took = started.elapsed();
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
        (out.code, json, took)
    };
    let (code, inside, took) = doctor(&[]);
    let shown = serde_json::to_string_pretty(&inside).unwrap();
    assert_eq!(code, 0, "{shown}");
    assert_eq!(inside["healthy"], true, "{shown}");
    let from = inside["walked_from"].as_str().unwrap_or_else(|| panic!("not walked from a pod: {shown}"));
    assert!(from.starts_with("pod harness-doctor-") && from.contains(&ns), "{shown}");
    let finding = |d: &serde_json::Value, link: &str, check: &str| {
        d["findings"].as_array().unwrap().iter().find(|f| f["link"] == link && f["check"].as_str().unwrap().contains(check)).cloned()
    };
    let kafka = finding(&inside, "discovery", "Kafka bootstrap").unwrap_or_else(|| panic!("{shown}"));
    assert!(kafka["evidence"].as_str().unwrap().contains("Service kafka, port internal"), "{shown}");
    let credentials = finding(&inside, "discovery", "MinIO's credentials").unwrap_or_else(|| panic!("{shown}"));
    assert!(credentials["evidence"].as_str().unwrap().contains("Secret minio-env"), "{shown}");
    let canary = finding(&inside, "pipeline", "one image through the pipeline").unwrap_or_else(|| panic!("{shown}"));
    assert_eq!(canary["severity"], "ok", "the canary went through from inside: {shown}");
    assert!(!shown.contains(&secret_of(&rt, &client, &ns)), "the credentials are written nowhere");
    eprintln!("doctor from inside namespace {ns}: healthy, answered in {:.1} s", took.as_secs_f64());
    // The probe pod and its Secret are gone.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let left = rt.block_on(pods.list(&ListParams::default().labels("io.harness.role=doctor-probe"))).unwrap().items;
    assert!(left.is_empty(), "probe pods left: {:?}", left.iter().map(|p| p.metadata.name.clone()).collect::<Vec<_>>());
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    let left = rt.block_on(secrets.list(&ListParams::default().labels("io.harness.role=doctor-probe"))).unwrap().items;
    assert!(left.is_empty(), "probe Secrets left: {:?}", left.iter().map(|s| s.metadata.name.clone()).collect::<Vec<_>>());

    interrupted_probe_leaves_nothing_and_never_carries_your_credentials(&rt, &client, &ns);

    let (code, here, _) = doctor(&["--from", "here", "--no-canary"]);
    let shown_here = serde_json::to_string_pretty(&here).unwrap();
    assert_eq!(code, 0, "{shown_here}");
    assert!(here["walked_from"].is_null(), "{shown_here}");
    assert_ne!(here["s3_endpoint"], inside["s3_endpoint"], "from here, the node port: {shown_here}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("external-namespace.yaml");
    std::fs::write(
        &file,
        format!(
            "name: external-namespace
environment:
  kind: external
  external: {{ namespace: {ns} }}
processor: {{ running: true, group_id: thumbnailer }}
workload: {{ images: 30, rate: 10/s }}
drain: {{ timeout: 60s }}
expect: {{ exactly_once: true }}
"
        ),
    )
    .unwrap();
    let run = run_in_place(&[], file.to_str().unwrap());
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(run.results["outcome"], "pass", "{}", run.explain());

    rt.block_on(scale_processor(&client, &ns, 0));
    let (code, broken, took) = doctor(&["--canary-timeout", "5s"]);
    let shown = serde_json::to_string_pretty(&broken).unwrap();
    assert_eq!(code, 1, "{shown}");
    assert!(broken["walked_from"].as_str().is_some_and(|w| w.starts_with("pod harness-doctor-")), "{shown}");
    let first = broken["findings"].as_array().unwrap().iter().find(|f| f["severity"] == "error").unwrap().clone();
    // The README's promise: a group without a member is named as such, before any canary.
    assert_eq!(first["link"], "consumer_group", "{shown}");
    assert!(broken["verdict"].as_str().is_some_and(|v| v.starts_with("doctor: BROKEN at consumer group")), "{shown}");
    assert!(first["fix"].as_str().is_some_and(|f| !f.is_empty()), "{shown}");
    eprintln!("doctor from inside, processor scaled to 0: {} ({:.1} s)", broken["verdict"], took.as_secs_f64());
}

/// `harness doctor --namespace NS` (from inside) with credentials of its own in the
/// environment, interrupted (SIGINT, as Ctrl-C) while its probe pod runs: the pod's
/// Secret held the namespace's credentials, never the caller's, and the pod and the
/// Secret are gone when the doctor has ended.
fn interrupted_probe_leaves_nothing_and_never_carries_your_credentials(rt: &tokio::runtime::Runtime, client: &kube::Client, ns: &str) {
    use k8s_openapi::api::core::v1::{Pod, Secret};
    let own_password = format!("callers-own-password-{}", std::process::id());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["doctor", "--namespace", ns, "--format", "json", "-q"])
        .env("MINIO_ROOT_USER", "callers-own-user")
        .env("MINIO_ROOT_PASSWORD", &own_password)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the harness binary");
    let stdout = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let probe = ListParams::default().labels("io.harness.role=doctor-probe");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    // The image was loaded by the walk before: the pod follows its Secret within seconds.
    let deadline = Instant::now() + Duration::from_secs(120);
    let held = loop {
        let made = rt.block_on(secrets.list(&probe)).unwrap().items;
        let running = !rt.block_on(pods.list(&probe)).unwrap().items.is_empty();
        if let (Some(secret), true) = (made.first(), running) {
            break secret.data.clone().unwrap_or_default();
        }
        assert!(child.try_wait().unwrap().is_none(), "the doctor ended before its probe pod ran: {}", stderr.join().unwrap());
        assert!(Instant::now() < deadline, "no probe pod and Secret within 120 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    let held: Vec<String> = held.values().map(|v| String::from_utf8_lossy(&v.0).into_owned()).collect();
    assert!(!held.iter().any(|v| v.contains(&own_password) || v == "callers-own-user"), "the caller's credentials went into {ns}");
    assert!(held.contains(&secret_of(rt, client, ns)), "the probe's Secret holds the namespace's own credentials: {held:?}");

    let status = crate::util::interrupt_and_wait(&mut child, Duration::from_secs(60), "the doctor");
    let (out, err) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert_eq!(status.code(), Some(1), "interrupted: a broken verdict that says so\n{out}\n{err}");
    assert!(out.contains("interrupted (Ctrl-C) while the probe pod ran"), "{out}\n{err}");
    // Deleted by the doctor before it ended, not later by a deadline or a collector.
    let pods_left = rt.block_on(pods.list(&probe)).unwrap().items;
    let secrets_left = rt.block_on(secrets.list(&probe)).unwrap().items;
    assert!(
        pods_left.is_empty() && secrets_left.is_empty(),
        "left after Ctrl-C: {} pod(s), {} Secret(s)",
        pods_left.len(),
        secrets_left.len()
    );
}

/// What anyone who reaches a node reaches of a run (its node ports) answers only
/// with that run's secrets: Kafka's PLAINTEXT listener has no node port; at the
/// one node port of Kafka, a client without credentials gets no metadata (the
/// broker wants a SASL handshake and drops it) and a wrong password is refused,
/// while the run's own password (from the broker's config Secret) gets the
/// metadata, so the refusals are the listener's, not a dead port; MinIO's node
/// port refuses an anonymous request, and its keys are the run's random ones.
/// The SASL password, by value, is in none of the files the run wrote.
fn node_ports_answer_only_with_the_runs_secrets(rt: &tokio::runtime::Runtime, client: &kube::Client, ns: &str, run_dir: &std::path::Path) {
    use k8s_openapi::api::core::v1::{Secret, Service};
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let node_ports = |name: &str| -> Vec<i32> {
        let svc = rt.block_on(services.get(name)).unwrap_or_else(|e| panic!("Service {name}: {e}"));
        svc.spec.and_then(|s| s.ports).unwrap_or_default().iter().filter_map(|p| p.node_port).collect()
    };
    assert!(node_ports("kafka").is_empty(), "Kafka's PLAINTEXT listener (the pods') has no node port");
    let kafka_port = node_ports("kafka-external");
    assert_eq!(kafka_port.len(), 1, "one node port for Kafka: {kafka_port:?}");
    let minio_port = node_ports("minio");
    let node = rt.block_on(harness_core::env::kubernetes::node_address(client)).expect("the node's address");
    let kafka = format!("{node}:{}", kafka_port[0]);
    // Asked first, before anything is read of the run's secrets.
    assert!(kafka_wire::metadata(&kafka, None).is_err(), "{kafka} answered Metadata to a client without credentials");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let file = |secret: &str, key: &str| -> String {
        let s = rt.block_on(secrets.get(secret)).unwrap_or_else(|e| panic!("Secret {secret}: {e}"));
        s.data.unwrap_or_default().get(key).map(|v| String::from_utf8_lossy(&v.0).into_owned()).unwrap_or_else(|| panic!("{secret}/{key}"))
    };
    let properties = file("kafka", "server.properties");
    let password = properties
        .split("user_harness=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no SASL user in the broker's config:\n{properties}"))
        .to_string();
    assert!(password.len() >= 32, "a random password of the run");
    let wrong = kafka_wire::metadata(&kafka, Some(("harness", "not-the-password")));
    assert!(wrong.as_ref().is_err_and(|e| e.contains("authentication failed")), "{kafka} with a wrong password: {wrong:?}");
    let brokers =
        kafka_wire::metadata(&kafka, Some(("harness", &password))).unwrap_or_else(|e| panic!("{kafka} with the run's password: {e}"));
    assert_eq!(brokers, std::slice::from_ref(&kafka), "the SASL listener advertises the node port");

    let user = file("minio-env", "MINIO_ROOT_USER");
    assert!(user.starts_with("harness-") && user != "minioadmin", "MinIO's user is the run's: {user}");
    let minio = format!("{node}:{}", minio_port.first().expect("MinIO's node port"));
    let answer = http_get(&minio, "/");
    assert!(answer.starts_with("HTTP/1.1 403") && answer.contains("AccessDenied"), "an anonymous request to {minio}: {answer}");

    for file in crate::util::files_below(run_dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "{} holds the SASL password", file.display());
    }
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.take(64 * 1024).read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Just enough of Kafka's protocol, by hand, to ask a listener for its brokers as
/// a client with no credentials, or after a SASL/PLAIN handshake.
mod kafka_wire {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    fn request(s: &mut TcpStream, api_key: i16, version: i16, correlation: i32, body: &[u8]) -> Result<Vec<u8>, String> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&api_key.to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&correlation.to_be_bytes());
        frame.extend_from_slice(&4i16.to_be_bytes());
        frame.extend_from_slice(b"test");
        frame.extend_from_slice(body);
        let mut out = (frame.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&frame);
        s.write_all(&out).map_err(|e| format!("sending: {e}"))?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).map_err(|e| format!("no answer: {e}"))?;
        let len = i32::from_be_bytes(len);
        if !(4..=1 << 20).contains(&len) {
            return Err(format!("a frame of {len} bytes"));
        }
        let mut answer = vec![0u8; len as usize];
        s.read_exact(&mut answer).map_err(|e| format!("a cut answer: {e}"))?;
        let got = i32::from_be_bytes(answer[..4].try_into().unwrap());
        if got != correlation {
            return Err(format!("correlation id {got}, not {correlation}"));
        }
        Ok(answer[4..].to_vec())
    }

    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8], String> {
            if self.0.len() < n {
                return Err("a short answer".into());
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Ok(a)
        }
        fn i16(&mut self) -> Result<i16, String> {
            Ok(i16::from_be_bytes(self.take(2)?.try_into().unwrap()))
        }
        fn i32(&mut self) -> Result<i32, String> {
            Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
        }
        fn string(&mut self) -> Result<String, String> {
            let n = self.i16()?;
            Ok(String::from_utf8_lossy(self.take(n.max(0) as usize)?).into_owned())
        }
    }

    /// The brokers (`host:port`) a Metadata v0 request is answered with.
    pub fn metadata(addr: &str, sasl: Option<(&str, &str)>) -> Result<Vec<String>, String> {
        let mut s = TcpStream::connect(addr).map_err(|e| format!("connecting: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        if let Some((user, password)) = sasl {
            let mut body = 5i16.to_be_bytes().to_vec();
            body.extend_from_slice(b"PLAIN");
            let answer = request(&mut s, 17, 1, 1, &body)?;
            let error = Reader(&answer).i16()?;
            if error != 0 {
                return Err(format!("SaslHandshake error {error}"));
            }
            let token = format!("\0{user}\0{password}");
            let mut body = (token.len() as i32).to_be_bytes().to_vec();
            body.extend_from_slice(token.as_bytes());
            let answer = request(&mut s, 36, 0, 2, &body)?;
            let error = Reader(&answer).i16()?;
            if error != 0 {
                return Err(format!("authentication failed: SaslAuthenticate error {error}"));
            }
        }
        let answer = request(&mut s, 3, 0, 3, &0i32.to_be_bytes())?;
        let mut r = Reader(&answer);
        let n = r.i32()?;
        (0..n.clamp(0, 64))
            .map(|_| {
                r.i32()?;
                let host = r.string()?;
                Ok(format!("{host}:{}", r.i32()?))
            })
            .collect()
    }
}

/// MinIO's secret key in the namespace's `minio-env` Secret.
fn secret_of(rt: &tokio::runtime::Runtime, client: &kube::Client, ns: &str) -> String {
    use k8s_openapi::api::core::v1::Secret;
    let secret = rt.block_on(Api::<Secret>::namespaced(client.clone(), ns).get("minio-env")).expect("MinIO's Secret");
    let value = secret.data.unwrap_or_default().get("MINIO_ROOT_PASSWORD").map(|v| String::from_utf8_lossy(&v.0).into_owned());
    value.filter(|v| v.len() >= 8).expect("MinIO's password in its Secret")
}

/// A CRD of Strimzi's group with a structural schema written from Strimzi's API
/// reference (the fields the harness uses and their neighbours, their types, enums
/// and required fields): with strict field validation the API server refuses an
/// unknown or misspelt field, a wrong type or a value outside an enum.
fn strict_strimzi_crd(kind: &str, plural: &str, spec: serde_json::Value) -> serde_json::Value {
    let open = serde_json::json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.kafka.strimzi.io"), "labels": { "io.harness.test": "strimzi" } },
        "spec": {
            "group": "kafka.strimzi.io",
            "scope": "Namespaced",
            "names": { "kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List") },
            "versions": [{
                "name": "v1beta2", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": spec, "status": open }
                } },
                "subresources": { "status": {} }
            }]
        }
    })
}

fn strict_strimzi_crds() -> Vec<serde_json::Value> {
    use serde_json::json;
    let open = json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    let listener = json!({
        "type": "object",
        "required": ["name", "port", "type", "tls"],
        "properties": {
            "name": { "type": "string", "pattern": "^[a-z0-9]{1,11}$" },
            "port": { "type": "integer", "minimum": 9092 },
            "type": { "type": "string", "enum": ["internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"] },
            "tls": { "type": "boolean" },
            "authentication": open, "configuration": open, "networkPolicyPeers": { "type": "array", "items": open }
        }
    });
    let kafka = json!({
        "type": "object",
        "required": ["kafka"],
        "properties": {
            "kafka": {
                "type": "object",
                "required": ["listeners"],
                "properties": {
                    "version": { "type": "string" }, "metadataVersion": { "type": "string" },
                    "replicas": { "type": "integer", "minimum": 1 },
                    "listeners": { "type": "array", "minItems": 1, "items": listener },
                    "config": open, "storage": open, "resources": open, "jvmOptions": open, "template": open,
                    "authorization": open, "rack": open, "logging": open, "metricsConfig": open
                }
            },
            "entityOperator": { "type": "object", "properties": { "topicOperator": open, "userOperator": open, "template": open } },
            "zookeeper": open, "cruiseControl": open, "kafkaExporter": open, "clusterCa": open, "clientsCa": open
        }
    });
    let pool = json!({
        "type": "object",
        "required": ["replicas", "storage", "roles"],
        "properties": {
            "replicas": { "type": "integer", "minimum": 0 },
            "roles": { "type": "array", "items": { "type": "string", "enum": ["controller", "broker"] } },
            "storage": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": { "type": "string", "enum": ["ephemeral", "persistent-claim", "jbod"] },
                    "size": { "type": "string" }, "sizeLimit": { "type": "string" }, "class": { "type": "string" },
                    "deleteClaim": { "type": "boolean" }, "kraftMetadata": { "type": "string", "enum": ["shared"] },
                    "volumes": { "type": "array", "items": open }
                }
            },
            "resources": open, "jvmOptions": open, "template": open
        }
    });
    let topic = json!({
        "type": "object",
        "properties": {
            "topicName": { "type": "string" },
            "partitions": { "type": "integer", "minimum": 1 },
            "replicas": { "type": "integer", "minimum": 1, "maximum": 32767 },
            "config": open
        }
    });
    let user = json!({
        "type": "object",
        "properties": {
            "authentication": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": { "type": "string", "enum": ["tls", "tls-external", "scram-sha-512"] },
                    "password": {
                        "type": "object",
                        "required": ["valueFrom"],
                        "properties": {
                            "valueFrom": {
                                "type": "object",
                                "properties": {
                                    "secretKeyRef": {
                                        "type": "object",
                                        "properties": { "name": { "type": "string" }, "key": { "type": "string" }, "optional": { "type": "boolean" } }
                                    }
                                }
                            }
                        }
                    }
                }
            },
            "authorization": open, "quotas": open, "template": open
        }
    });
    vec![
        strict_strimzi_crd("Kafka", "kafkas", kafka),
        strict_strimzi_crd("KafkaNodePool", "kafkanodepools", pool),
        strict_strimzi_crd("KafkaTopic", "kafkatopics", topic),
        strict_strimzi_crd("KafkaUser", "kafkausers", user),
    ]
}

/// `environment.kafka.operator: strimzi` on a real API server, as far as it can go
/// here (Strimzi's operator images cannot be pulled): without Strimzi's CRDs the
/// run stops at once saying what to install; with Strimzi-shaped CRDs (strict
/// schemas written from Strimzi's API reference) the harness's Kafka,
/// KafkaNodePool and KafkaTopics pass the API server's server-side dry run with
/// strict field validation, which refuses a missing `tls` or a misspelt field (so
/// the dry run can fail), and the run then stops saying no cluster operator runs.
/// The operator's reconciliation, Ready conditions and status listeners have not
/// run here; they are unit-tested on Strimzi's documented status shape.
#[test]
fn strimzi_mode_is_checked_against_the_api_server_and_says_what_is_missing() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{DynamicObject, Patch, PatchParams, PostParams, ValidationDirective};

    let _place = slot();
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() % 1_000_000_000;
    let mut fixture = DoctorFixture { namespace: format!("hstrimzi-{nonce}"), crds: Vec::new() };
    let ns = fixture.namespace.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = rt.block_on(kube::Client::try_default()).expect("a kube client from KUBECONFIG (ci/test sets it)");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let names =
        ["kafkas.kafka.strimzi.io", "kafkanodepools.kafka.strimzi.io", "kafkatopics.kafka.strimzi.io", "kafkausers.kafka.strimzi.io"];
    // Leftovers of a killed test go; a real Strimzi's CRDs must not be replaced.
    rt.block_on(async {
        for name in names {
            if let Some(crd) = crds.get_opt(name).await.unwrap() {
                let ours = crd.metadata.labels.as_ref().is_some_and(|l| l.contains_key("io.harness.test"));
                assert!(ours, "CRD {name} is on this cluster and no test installed it: run this test on the ci/k8s cluster");
                crds.delete(name, &Default::default()).await.unwrap();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for name in names {
            while crds.get_opt(name).await.unwrap().is_some() {
                assert!(Instant::now() < deadline, "CRD {name} was not removed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strimzi.yaml");
    std::fs::write(
        &file,
        "name: strimzi-smoke
environment:
  kind: kubernetes
  kafka: { operator: strimzi }
processor: { builtin: resize }
workload: { images: 5, rate: 5/s }
expect: { exactly_once: true }
",
    )
    .unwrap();
    let validate = harness(&["validate", file.to_str().unwrap()], &[]);
    assert_eq!(validate.code, 0, "{}{}", validate.stdout, validate.stderr);
    let run = |what: &str| {
        let reports = tempfile::tempdir().unwrap();
        let out = harness(&["run", "--reports", reports.path().to_str().unwrap(), file.to_str().unwrap()], &[]);
        let dir = only_run_dir(reports.path());
        let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
        assert_namespace_gone(results["run_id"].as_str().unwrap());
        assert_eq!(out.code, 3, "{what}: an environment that cannot start\n{}", out.stderr);
        out.stderr
    };
    let without = run("without Strimzi's CRDs");
    assert!(without.contains("needs Strimzi on the cluster, and it has no kafkas.kafka.strimzi.io"), "{without}");
    assert!(without.contains("https://strimzi.io/install/latest"), "{without}");

    rt.block_on(async {
        let pp = PostParams::default();
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": ns, "labels": { "io.harness.test": "strimzi" } } })).unwrap();
        Api::<Namespace>::all(client.clone()).create(&pp, &namespace).await.expect("creating the namespace");
        for crd in strict_strimzi_crds() {
            let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
            let name = crd.metadata.name.clone().unwrap();
            crds.create(&pp, &crd).await.unwrap_or_else(|e| panic!("installing the CRD {name}: {e}"));
            fixture.crds.push(name);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in names {
            loop {
                let crd = crds.get(name).await.expect("reading the CRD back");
                if crd.status.and_then(|s| s.conditions).unwrap_or_default().iter().any(|c| c.type_ == "Established" && c.status == "True")
                {
                    break;
                }
                assert!(Instant::now() < deadline, "CRD {name} never became Established");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // The dry run bites: a listener without `tls`, a misspelt field.
        let mut params = PatchParams::apply("harness-test");
        params.dry_run = true;
        params.field_validation = Some(ValidationDirective::Strict);
        let kafkas: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &harness_core::env::kubernetes::strimzi::resource("Kafka", "kafkas"));
        let no_tls = serde_json::json!({ "apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "metadata": { "name": "k" },
            "spec": { "kafka": { "listeners": [{ "name": "plain", "port": 9092, "type": "internal" }] } } });
        let e = kafkas.patch("k", &params, &Patch::Apply(&no_tls)).await.expect_err("a listener without tls is refused");
        assert!(e.to_string().contains("tls"), "{e}");
        let topics: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &harness_core::env::kubernetes::strimzi::resource("KafkaTopic", "kafkatopics"));
        let typo = serde_json::json!({ "apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic", "metadata": { "name": "t" },
            "spec": { "partitons": 3 } });
        let e = topics.patch("t", &params, &Patch::Apply(&typo)).await.expect_err("a misspelt field is refused");
        assert!(e.to_string().contains("partitons"), "{e}");
    });

    let with = run("with Strimzi's CRDs, without its operator");
    assert!(with.contains("Strimzi's resources passed the API server's dry run (strict field validation)"), "{with}");
    assert!(with.contains("no cluster operator runs (no Deployment labelled strimzi.io/kind=cluster-operator)"), "{with}");
    drop(fixture);
}
