//! `harness class ROSTER` (#24): a roster checked like a scenario, and a class of
//! student-style pipelines on the real cluster of `ci/k8s up`, each with its own
//! mistake, checked in one command and left exactly as it was.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};

use crate::faults::run_in_place;
use crate::util::{exclusive, harness};

/// A roster with a mistake gets `file:line: key: message` and exit 2, like a scenario;
/// `--check` lists what it would check; `--schema` is the roster's JSON Schema.
#[test]
fn a_roster_is_checked_like_a_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("class.yaml");
    std::fs::write(&roster, "defaults: { topic: image-events }\nstudents:\n  - { name: alice, namespace: alice }\n  - name: bob\n    s3_endpoint: 127.0.0.1:9000\n    kafka_bootstrap: 127.0.0.1:9094\n").unwrap();
    let out = harness(&["class", roster.to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "error: {}:4: students[1].s3_endpoint: \"127.0.0.1:9000\": give the endpoint as a URL, e.g. http://127.0.0.1:9000",
            roster.display()
        )
    );
    std::fs::write(&roster, "students:\n  - { name: alice, namespace: alice, manifests: alice }\n  - { name: bob, s3_endpoint: 'http://127.0.0.1:9000', kafka_bootstrap: '127.0.0.1:9094' }\n").unwrap();
    let out = harness(&["class", "--check", roster.to_str().unwrap()], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("alice: namespace alice; manifests ")
            && out.stdout.contains("bob: S3 http://127.0.0.1:9000, Kafka 127.0.0.1:9094"),
        "{}",
        out.stdout
    );
    let out = harness(&["class", "--schema"], &[]);
    let schema: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["title"], "harness class roster", "{}", out.stdout);
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(crate::util::repo().join("scenarios/roster.schema.json")).unwrap()).unwrap();
    assert_eq!(schema, committed, "scenarios/roster.schema.json is out of date: harness class --schema > scenarios/roster.schema.json");
}

/// Manifests given as a git URL are cloned (depth 1, no prompt) into the student's
/// folder and linted; a URL that does not clone is that student's manifests cell, and
/// the class goes on.
#[test]
fn manifests_given_as_a_git_url_are_cloned_and_linted() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("alice-src");
    std::fs::create_dir_all(&src).unwrap();
    let corpus = crate::util::repo().join("harness/model/tests/lint/strimzi-banzaicloud-topic");
    for f in crate::util::files_below(&corpus) {
        std::fs::copy(&f, src.join(f.file_name().unwrap())).unwrap();
    }
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(&src).output().expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["-c", "user.name=alice", "-c", "user.email=alice@example.org", "commit", "-q", "-m", "my pipeline"]);
    let roster = dir.path().join("class.yaml");
    std::fs::write(
        &roster,
        format!(
            "students:\n  - {{ name: alice, manifests: 'file://{}' }}\n  - {{ name: bob, manifests: 'file://{}/no-such.git' }}\n",
            src.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let out = harness(&["class", "--reports", reports.to_str().unwrap(), roster.to_str().unwrap()], &[]);
    assert_eq!(out.code, 1, "both students' manifests are broken\n{}\n{}", out.stdout, out.stderr);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(reports.join("class.json")).unwrap()).unwrap();
    let cell = |name: &str| json["students"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["cells"]["manifests"].clone();
    let (alice, bob) = (cell("alice"), cell("bob"));
    assert_eq!(alice["state"], "error", "{json}");
    assert!(alice["line"].as_str().unwrap().contains("kafka-topic-operator"), "the clone was linted: {json}");
    assert!(reports.join("students/alice/manifests/topics.yaml").is_file(), "cloned into the student's folder");
    assert_eq!(bob["state"], "error", "{json}");
    assert!(bob["line"].as_str().unwrap().starts_with("git clone of the manifests failed (file://"), "{json}");
}

/// What one student's namespace is given.
struct Setup {
    name: &'static str,
    /// MinIO's target: the shared Kafka, MinIO's own S3 port (a Go server: silent to
    /// Kafka's request), or a Kafka of the namespace's own advertising `localhost`.
    brokers: Brokers,
    queue_dir: bool,
    rule_on: &'static str,
    /// The topic the processor reads (the pipeline's is `events-<name>`).
    processor_topic: Option<&'static str>,
    /// The processor prints its environment (MinIO's password with it) and exits: its
    /// termination message, which the doctor quotes, holds the student's secret.
    crashes: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Brokers {
    Shared,
    OwnS3Port,
    OwnKafkaAdvertisingLocalhost,
}

const SETUPS: [Setup; 7] = [
    Setup { name: "healthy", brokers: Brokers::Shared, queue_dir: true, rule_on: "images", processor_topic: None, crashes: false },
    Setup { name: "silent-port", brokers: Brokers::OwnS3Port, queue_dir: true, rule_on: "images", processor_topic: None, crashes: false },
    Setup {
        name: "localhost-adv",
        brokers: Brokers::OwnKafkaAdvertisingLocalhost,
        queue_dir: true,
        rule_on: "images",
        processor_topic: None,
        crashes: false,
    },
    Setup { name: "wrong-bucket", brokers: Brokers::Shared, queue_dir: true, rule_on: "thumbnails", processor_topic: None, crashes: false },
    Setup {
        name: "wrong-topic",
        brokers: Brokers::Shared,
        queue_dir: true,
        rule_on: "images",
        processor_topic: Some("image-events"),
        crashes: false,
    },
    Setup { name: "no-queue-dir", brokers: Brokers::Shared, queue_dir: false, rule_on: "images", processor_topic: None, crashes: false },
    Setup { name: "crash-loop", brokers: Brokers::Shared, queue_dir: true, rule_on: "images", processor_topic: None, crashes: true },
];

/// Everything the cluster holds that a test could leave behind: namespaces, and every
/// pod, Service, Secret and ConfigMap by namespace/name.
async fn inventory(client: &kube::Client) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let lp = ListParams::default();
    for ns in Api::<Namespace>::all(client.clone()).list(&lp).await.unwrap().items {
        all.insert(format!("namespace {}", ns.metadata.name.unwrap_or_default()));
    }
    let named = |kind: &str, m: &kube::api::ObjectMeta| {
        format!("{kind} {}/{}", m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default())
    };
    for p in Api::<Pod>::all(client.clone()).list(&lp).await.unwrap().items {
        all.insert(named("pod", &p.metadata));
    }
    for s in Api::<Service>::all(client.clone()).list(&lp).await.unwrap().items {
        all.insert(named("service", &s.metadata));
    }
    for s in Api::<Secret>::all(client.clone()).list(&lp).await.unwrap().items {
        all.insert(named("secret", &s.metadata));
    }
    for c in Api::<ConfigMap>::all(client.clone()).list(&lp).await.unwrap().items {
        all.insert(named("configmap", &c.metadata));
    }
    all
}

/// A Kubernetes object from its JSON (its type from where it goes).
macro_rules! typed {
    ($v:expr) => {
        serde_json::from_value($v).unwrap_or_else(|e| panic!("{e}"))
    };
}

/// The main container of a pod template (not the harness's `signals` sidecar).
fn main_container(template: &Value, name: &str) -> Value {
    template["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// Seven student-style pipelines, each in a namespace of its own, built from plain
/// manifests (a MinIO pod, its Secret and Service, a processor Deployment, a Kafka
/// Service) around one shared Kafka: the images and Kafka of one kubernetes run kept
/// with `--keep`. One has a Kafka of its own that advertises `localhost`. Plus a roster
/// entry whose context does not exist and one given as endpoints (the healthy
/// pipeline's addresses, as through port-forwards). `harness class` names each
/// student's verdict and first broken link, at `--jobs 1` and at the default; no
/// probe pod, no teacher's credential in any namespace; and once the class's
/// namespaces are deleted the cluster holds exactly what it held before.
#[test]
fn a_class_of_student_namespaces_gets_each_verdict_and_the_cluster_is_left_as_it_was() {
    let _alone = exclusive();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = rt.block_on(kube::Client::try_default()).expect("a kube client from KUBECONFIG (ci/test sets it)");
    let before = rt.block_on(inventory(&client));
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() % 1_000_000_000;
    let host_dir = format!("/tmp/hcls-{nonce}");
    let mut fixture = ClassFixture { namespaces: Vec::new(), host_dir: host_dir.clone() };

    let kept = run_in_place(&["--env", "kubernetes", "--keep"], "scenarios/smoke.yaml");
    // The base run only lends its images and Kafka: correct, its speed not judged here.
    crate::util::assert_correct(kept.code, &kept.results, || kept.explain());
    let base = crate::kubernetes::namespace_of(&kept);
    fixture.namespaces.push(base.clone());

    let dir = tempfile::tempdir().unwrap();
    let teacher_secret = format!("teachers-own-secret-{nonce}");
    let (healthy_s3, outside_kafka, healthy_user, healthy_secret) = rt.block_on(async {
        let pp = PostParams::default();
        // The base run's images, commands and Kafka.
        let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &base);
        let kafka_set = serde_json::to_value(sets.get("kafka").await.unwrap()).unwrap();
        let minio_set = serde_json::to_value(sets.get("minio").await.unwrap()).unwrap();
        let processor = serde_json::to_value(Api::<Deployment>::namespaced(client.clone(), &base).get("processor").await.unwrap()).unwrap();
        let kafka_c = main_container(&kafka_set["spec"]["template"], "kafka");
        let kafka_volumes = kafka_set["spec"]["template"]["spec"]["volumes"].clone();
        let minio_c = main_container(&minio_set["spec"]["template"], "minio");
        let processor_c = main_container(&processor["spec"]["template"], "processor");
        // The base run's namespace is reaped by any kubernetes run that starts after it
        // (another test's, another user's of the cluster): what the class needs of it is
        // read above, and the shared Kafka runs in a namespace of the class's own.
        let _ = Api::<Namespace>::all(client.clone()).delete(&base, &Default::default()).await;
        let shared_ns = format!("hcls-{nonce}-kafka");
        fixture.namespaces.push(shared_ns.clone());
        Api::<Namespace>::all(client.clone()).create(&pp, &typed!(json!({ "metadata": { "name": shared_ns } }))).await.unwrap();
        let svc = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "kafka" },
            "spec": { "type": "NodePort", "selector": { "app": "kafka" }, "ports": [
                { "name": "internal", "port": 9092, "targetPort": 9092 }, { "name": "external", "port": 9094, "targetPort": 9094 }] } });
        let kafka_svc = Api::<Service>::namespaced(client.clone(), &shared_ns).create(&pp, &typed!(svc)).await.unwrap();
        let kafka_ip = kafka_svc.spec.as_ref().and_then(|s| s.cluster_ip.clone()).unwrap();
        let shared_kafka = format!("{kafka_ip}:9092");
        // From here (the node), the listener that advertises the node's address.
        let node_port = kafka_svc.spec.as_ref().and_then(|s| s.ports.as_ref()).and_then(|p| p.iter().find(|p| p.name.as_deref() == Some("external"))).and_then(|p| p.node_port).unwrap();
        let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone()).list(&ListParams::default()).await.unwrap().items;
        let node_ip = nodes.iter().flat_map(|n| n.status.iter().flat_map(|s| s.addresses.iter().flatten())).find(|a| a.type_ == "InternalIP").map(|a| a.address.clone()).unwrap();
        let outside_kafka = format!("{node_ip}:{node_port}");
        let kafka_pod = |ns: &str, internal: &str, external: &str| {
            let properties = harness_core::services::kafka::container_server_properties_advertising(internal, external, None, Path::new("/var/lib/kafka/data"));
            let config = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "kafka" },
                "data": { "server.properties": properties, "log4j2.properties": harness_core::services::kafka::LOG4J2_PROPERTIES } });
            let volumes: Vec<Value> = kafka_volumes
                .as_array()
                .unwrap()
                .iter()
                // The harness's broker reads its config from a Secret (it holds the node
                // port's SASL password); a student's plain broker from a ConfigMap.
                .map(|v| {
                    if v.get("configMap").is_some() || v.get("secret").is_some() {
                        json!({ "name": v["name"], "configMap": { "name": "kafka" } })
                    } else {
                        json!({ "name": v["name"], "emptyDir": {} })
                    }
                })
                .collect();
            let mut c = kafka_c.clone();
            c["resources"] = json!({ "requests": { "cpu": "100m", "memory": "256Mi" } });
            let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "kafka-0", "namespace": ns, "labels": { "app": "kafka" } },
                "spec": { "containers": [c], "volumes": volumes, "terminationGracePeriodSeconds": 0, "enableServiceLinks": false } });
            (config, pod)
        };
        let (config, pod) = kafka_pod(&shared_ns, &shared_kafka, &outside_kafka);
        Api::<ConfigMap>::namespaced(client.clone(), &shared_ns).create(&pp, &typed!(config)).await.unwrap();
        Api::<Pod>::namespaced(client.clone(), &shared_ns).create(&pp, &typed!(pod)).await.unwrap();
        wait_for_kafka(&shared_kafka).await;
        let kafka_pod_ip = Api::<Pod>::namespaced(client.clone(), &shared_ns).get("kafka-0").await.unwrap().status.and_then(|s| s.pod_ip).unwrap();

        let mut creds = None;
        for setup in &SETUPS {
            let ns = format!("hcls-{nonce}-{}", setup.name);
            fixture.namespaces.push(ns.clone());
            let user = format!("student-{}", setup.name);
            let secret = format!("pw-{}-{nonce}", setup.name);
            let topic = format!("events-{}", setup.name);
            let mut manifests: Vec<Value> = Vec::new();
            let labels = json!({ "io.harness.test": "class" });
            Api::<Namespace>::all(client.clone()).create(&pp, &typed!(json!({ "metadata": { "name": ns, "labels": labels } }))).await.unwrap();
            let services: Api<Service> = Api::namespaced(client.clone(), &ns);
            let minio_svc = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "minio" },
                "spec": { "selector": { "app": "minio" }, "ports": [{ "name": "api", "port": 9000, "targetPort": 9000 }] } });
            let minio_svc_made = services.create(&pp, &typed!(minio_svc.clone())).await.unwrap();
            let minio_ip = minio_svc_made.spec.and_then(|s| s.cluster_ip).unwrap();
            manifests.push(minio_svc);
            // The Kafka MinIO and the processor use: the shared one through a Service
            // of the namespace, or a broker of its own.
            let bootstrap = if setup.brokers == Brokers::OwnKafkaAdvertisingLocalhost {
                let (config, pod) = kafka_pod(&ns, "localhost:9092", "localhost:9094");
                Api::<ConfigMap>::namespaced(client.clone(), &ns).create(&pp, &typed!(config.clone())).await.unwrap();
                Api::<Pod>::namespaced(client.clone(), &ns).create(&pp, &typed!(pod.clone())).await.unwrap();
                let svc = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "kafka" },
                    "spec": { "selector": { "app": "kafka" }, "ports": [{ "name": "kafka", "port": 9092, "targetPort": 9092 }] } });
                let made = services.create(&pp, &typed!(svc.clone())).await.unwrap();
                manifests.extend([config, pod, svc]);
                format!("{}:9092", made.spec.and_then(|s| s.cluster_ip).unwrap())
            } else {
                let svc = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "kafka" },
                    "spec": { "ports": [{ "name": "kafka", "port": 9092, "targetPort": 9092 }] } });
                services.create(&pp, &typed!(svc.clone())).await.unwrap();
                let slice = json!({ "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": { "name": "kafka-shared", "labels": { "kubernetes.io/service-name": "kafka" } },
                    "addressType": "IPv4", "ports": [{ "name": "kafka", "port": 9092 }],
                    "endpoints": [{ "addresses": [kafka_pod_ip] }] });
                Api::<EndpointSlice>::namespaced(client.clone(), &ns).create(&pp, &typed!(slice.clone())).await.unwrap();
                manifests.extend([svc, slice]);
                shared_kafka.clone()
            };
            let target_brokers = if setup.brokers == Brokers::OwnS3Port { format!("{minio_ip}:9000") } else { bootstrap.clone() };
            let secret_obj = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "minio-env" },
                "stringData": { "MINIO_ROOT_USER": user, "MINIO_ROOT_PASSWORD": secret } });
            Api::<Secret>::namespaced(client.clone(), &ns).create(&pp, &typed!(secret_obj)).await.unwrap();
            // The manifests folder shows the Secret without its values, as a student commits it.
            manifests.push(json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "minio-env" },
                "stringData": { "MINIO_ROOT_USER": "CHANGE-ME", "MINIO_ROOT_PASSWORD": "CHANGE-ME" } }));
            let mut env = vec![
                json!({ "name": "MINIO_NOTIFY_KAFKA_ENABLE_PRIMARY", "value": "on" }),
                json!({ "name": "MINIO_NOTIFY_KAFKA_BROKERS_PRIMARY", "value": target_brokers }),
                json!({ "name": "MINIO_NOTIFY_KAFKA_TOPIC_PRIMARY", "value": topic }),
            ];
            if setup.queue_dir {
                env.push(json!({ "name": "MINIO_NOTIFY_KAFKA_QUEUE_DIR_PRIMARY", "value": "/minio/events-queue" }));
                env.push(json!({ "name": "MINIO_NOTIFY_KAFKA_QUEUE_LIMIT_PRIMARY", "value": "100000" }));
            }
            let mut m = minio_c.clone();
            m["env"] = json!(env);
            m["envFrom"] = json!([{ "secretRef": { "name": "minio-env" } }]);
            m["volumeMounts"] = json!([{ "name": "data", "mountPath": "/minio" }]);
            let minio_pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "minio-0", "labels": { "app": "minio" } },
                "spec": { "containers": [m], "terminationGracePeriodSeconds": 0, "enableServiceLinks": false,
                          "volumes": [{ "name": "data", "hostPath": { "path": format!("{host_dir}/{}", setup.name), "type": "DirectoryOrCreate" } }] } });
            Api::<Pod>::namespaced(client.clone(), &ns).create(&pp, &typed!(minio_pod.clone())).await.unwrap();
            manifests.push(minio_pod);
            let secret_ref = |key: &str| json!({ "secretKeyRef": { "name": "minio-env", "key": key } });
            let mut p = processor_c.clone();
            p["env"] = json!([
                { "name": "KAFKA_BOOTSTRAP_SERVERS", "value": bootstrap },
                { "name": "KAFKA_TOPIC", "value": setup.processor_topic.map(String::from).unwrap_or_else(|| topic.clone()) },
                { "name": "KAFKA_GROUP_ID", "value": format!("thumbnailer-{}", setup.name) },
                { "name": "S3_ENDPOINT", "value": format!("http://{minio_ip}:9000") },
                { "name": "AWS_ACCESS_KEY_ID", "valueFrom": secret_ref("MINIO_ROOT_USER") },
                { "name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret_ref("MINIO_ROOT_PASSWORD") },
                { "name": "AWS_REGION", "value": "us-east-1" },
                { "name": "SOURCE_BUCKET", "value": "images" },
                { "name": "TARGET_BUCKET", "value": "thumbnails" },
                { "name": "THUMBNAIL_WIDTH", "value": "128" }
            ]);
            p.as_object_mut().unwrap().remove("envFrom");
            if setup.crashes {
                // A student's debugging print: the whole environment, then a crash; with
                // this policy the log's tail becomes the termination message.
                p["command"] = json!(["sh", "-c", "env; exit 1"]);
                // The harness's processor image holds its binary only; the Kafka image is
                // Debian's, with a shell, as a student's Python image has.
                p["image"] = kafka_c["image"].clone();
                p.as_object_mut().unwrap().remove("args");
                p["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
            }
            let deployment = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "processor" },
                "spec": { "replicas": 1, "selector": { "matchLabels": { "app": "processor" } },
                          "template": { "metadata": { "labels": { "app": "processor" } },
                                        "spec": { "containers": [p], "terminationGracePeriodSeconds": 0, "enableServiceLinks": false } } } });
            Api::<Deployment>::namespaced(client.clone(), &ns).create(&pp, &typed!(deployment.clone())).await.unwrap();
            manifests.push(deployment);
            let folder = dir.path().join("students").join(setup.name);
            std::fs::create_dir_all(&folder).unwrap();
            let text: Vec<String> = manifests.iter().map(|m| serde_json::to_string_pretty(m).unwrap()).collect();
            std::fs::write(folder.join("pipeline.yaml"), text.join("\n---\n")).unwrap();

            // The topic on its Kafka, the buckets and the notification rule.
            let (k8s_bootstrap, s3) = (bootstrap.clone(), format!("http://{minio_ip}:9000"));
            let creds_s3 = harness_core::services::endpoints::S3Credentials { access_key: user.clone(), secret_key: secret.clone(), region: "us-east-1".into() };
            wait_for_kafka(&k8s_bootstrap).await;
            // A broker that advertises localhost is of no use from here either: its
            // topic does not matter, the doctor stops at its advertised listener.
            if setup.brokers != Brokers::OwnKafkaAdvertisingLocalhost {
                harness_core::services::kafka::create_topic(&outside_kafka, &topic, 1, 1, Duration::from_secs(30)).await.unwrap();
            }
            // The wrong topic exists (another pipeline's): the processor reads it happily.
            if let Some(other) = setup.processor_topic {
                harness_core::services::kafka::create_topic(&outside_kafka, other, 1, 1, Duration::from_secs(30)).await.unwrap();
            }
            let s3c = harness_core::services::s3::s3_client(&s3, &creds_s3);
            let deadline = Instant::now() + Duration::from_secs(120);
            while s3c.list_buckets().send().await.is_err() {
                assert!(Instant::now() < deadline, "{ns}: MinIO never answered at {s3}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            for (bucket, versioned) in [("images", false), ("thumbnails", true)] {
                harness_core::services::minio::setup_bucket(&s3c, bucket, versioned).await.unwrap();
            }
            harness_core::services::minio::notify_on_create(&s3c, setup.rule_on, "PRIMARY").await.unwrap();
            if setup.name == "healthy" {
                creds = Some((s3, user, secret));
            }
        }
        let (s3, user, secret) = creds.unwrap();
        (s3, outside_kafka, user, secret)
    });

    // The healthy processor is in its group (the canary depends on it).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = harness(
            &[
                "doctor",
                "--s3",
                &healthy_s3,
                "--kafka",
                &outside_kafka,
                "--topic",
                "events-healthy",
                "--group",
                "thumbnailer-healthy",
                "--no-canary",
                "--format",
                "json",
                "-q",
                "--access-key-env",
                "H_USER",
                "--secret-key-env",
                "H_SECRET",
            ],
            &[("H_USER", healthy_user.clone()), ("H_SECRET", healthy_secret.clone())],
        );
        if out.stdout.contains("\"healthy\": true") {
            break;
        }
        assert!(Instant::now() < deadline, "the healthy pipeline never became healthy: {}", out.stdout);
        std::thread::sleep(Duration::from_millis(1000));
    }

    // The crash-looping processor has crashed once, its environment in its termination message.
    rt.block_on(async {
        let ns = format!("hcls-{nonce}-crash-loop");
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let items = pods.list(&ListParams::default().labels("app=processor")).await.unwrap().items;
            let quoted = items.iter().flat_map(|p| p.status.iter().flat_map(|s| s.container_statuses.iter().flatten())).any(|c| {
                let message = c.last_state.as_ref().and_then(|l| l.terminated.as_ref()).and_then(|t| t.message.as_ref());
                message.is_some_and(|m| m.contains("AWS_SECRET_ACCESS_KEY=pw-crash-loop"))
            });
            if quoted {
                break;
            }
            assert!(Instant::now() < deadline, "{ns}: the processor never crashed with its environment in its termination message");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    // Latency weighs nothing: the points do not depend on how busy this machine is.
    let mut roster = String::from("defaults: { budget: 90s }\nweights: { canary: 3, latency: 0 }\nstudents:\n");
    for s in &SETUPS {
        // The healthy student gets the short run too.
        let run = if s.name == "healthy" { ", run: { images: 5 }" } else { "" };
        roster.push_str(&format!(
            "  - {{ name: {0}, namespace: hcls-{nonce}-{0}, topic: events-{0}, group: thumbnailer-{0}, manifests: students/{0}{run} }}\n",
            s.name
        ));
    }
    roster.push_str("  - { name: no-context, context: no-such-context-here, namespace: whatever }\n");
    roster.push_str(&format!(
        "  - {{ name: forwarded, s3_endpoint: '{healthy_s3}', kafka_bootstrap: '{outside_kafka}', topic: events-healthy, group: thumbnailer-healthy, access_key_env: FWD_USER, secret_key_env: FWD_SECRET }}\n"
    ));
    let roster_file = dir.path().join("class.yaml");
    std::fs::write(&roster_file, &roster).unwrap();

    let class = |jobs: Option<&str>, reports: &Path| {
        let mut args = vec!["class", "--reports", reports.to_str().unwrap()];
        if let Some(j) = jobs {
            args.extend(["--jobs", j]);
        }
        args.push(roster_file.to_str().unwrap());
        let started = Instant::now();
        // The teacher's own credentials in the environment: none may reach a namespace.
        let out = harness(
            &args,
            &[
                ("MINIO_ROOT_USER", "teacher".into()),
                ("MINIO_ROOT_PASSWORD", teacher_secret.clone()),
                ("FWD_USER", healthy_user.clone()),
                ("FWD_SECRET", healthy_secret.clone()),
            ],
        );
        (out, started.elapsed())
    };
    let reports_1 = dir.path().join("class-1");
    let (one, took_1) = class(Some("1"), &reports_1);
    // Kept after the test (overwritten by the next): the page a teacher reads.
    let reports_n = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::util::repo().join("target"))
        .join("test-artifacts/class");
    let _ = std::fs::remove_dir_all(&reports_n);
    let (many, took_n) = class(None, &reports_n);
    eprintln!("class of 9: --jobs 1 {:.1} s, default jobs {:.1} s\n{}", took_1.as_secs_f64(), took_n.as_secs_f64(), many.stdout);

    for (out, reports) in [(&one, &reports_1), (&many, &reports_n)] {
        assert_eq!(out.code, 1, "some students are broken\n{}\n{}", out.stdout, out.stderr);
        let json: Value = serde_json::from_str(&std::fs::read_to_string(reports.join("class.json")).unwrap()).unwrap();
        let shown = serde_json::to_string_pretty(&json["students"]).unwrap();
        let student = |name: &str| {
            json["students"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap_or_else(|| panic!("{name}: {shown}"))
        };
        let expect = |name: &str, verdict: &str, first: Option<&str>, says: &str| {
            let s = student(name);
            assert_eq!(s["verdict"], verdict, "{name}: {shown}");
            assert_eq!(s["first_broken"].as_str(), first, "{name}: {shown}");
            assert!(s["first_line"].as_str().unwrap().contains(says), "{name}: {says:?}: {shown}");
        };
        expect("healthy", "healthy", None, "healthy: every link works");
        expect("silent-port", "broken", Some("minio_kafka_target"), "is not a Kafka listener");
        expect("localhost-adv", "broken", Some("advertised_listeners"), "advertises localhost:9092");
        expect("wrong-bucket", "broken", Some("bucket_notification"), "another bucket");
        expect("wrong-topic", "broken", Some("consumer_group"), "no processor ever joined a group on this topic");
        expect("no-queue-dir", "warnings", None, "works, with");
        expect("crash-loop", "broken", Some("cluster"), "it exits soon after it starts");
        // The doctor quoted the crash's termination message, the student's password
        // redacted (#22): in no report, not in what the terminal showed.
        let crash_secret = format!("pw-crash-loop-{nonce}");
        assert!(shown.contains("AWS_SECRET_ACCESS_KEY=<redacted>"), "the termination message is quoted, redacted: {shown}");
        assert!(!out.stdout.contains(&crash_secret) && !out.stderr.contains(&crash_secret), "the student's secret on the terminal");
        for path in crate::util::files_below(reports) {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(!text.contains(&crash_secret), "the student's secret is in {}", path.display());
        }
        expect("no-context", "broken", Some("cluster"), "the kubeconfig has no context \"no-such-context-here\"");
        expect("forwarded", "healthy", None, "healthy: every link works");
        assert_eq!(student("no-queue-dir")["cells"]["minio_kafka_target"]["state"], "warning", "{shown}");
        assert_eq!(student("healthy")["cells"]["canary"]["state"], "ok", "the canary went through: {shown}");
        // The short run: exactly once through the student's own processor, and its p95
        // judged (its verdict is this machine's as much as the pipeline's: not asserted).
        assert_eq!(student("healthy")["cells"]["exactly_once"]["state"], "ok", "the short run: {shown}");
        assert!(student("healthy")["cells"]["latency"]["line"].as_str().unwrap().starts_with("latency.end_to_end.p95: "), "{shown}");
        assert!(student("wrong-bucket")["cells"].get("exactly_once").is_none(), "no run unless the roster asks: {shown}");
        // Most broken first; the healthy at the end.
        let order: Vec<&str> = json["students"].as_array().unwrap().iter().map(|s| s["verdict"].as_str().unwrap()).collect();
        assert!(order.iter().rposition(|v| *v == "broken") < order.iter().position(|v| *v == "healthy"), "{order:?}");
        for f in ["class.html", "junit.xml", "class.csv", "students/healthy/report.html", "students/healthy/lint.json"] {
            assert!(reports.join(f).exists(), "{f} written");
        }
        let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
        assert_eq!(junit.matches("<testsuite ").count(), 9, "{junit}");
        assert!(junit.contains("is not a Kafka listener"), "{junit}");
        let csv = std::fs::read_to_string(reports.join("class.csv")).unwrap();
        // Every link of the healthy pipeline scores (the canary 3 points); a broken one's fewer.
        let row = |name: &str| {
            csv.lines()
                .find(|l| l.starts_with(&format!("{name},")))
                .unwrap_or_else(|| panic!("{name}: {csv}"))
                .split(',')
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let (healthy, wrong) = (row("healthy"), row("wrong-bucket"));
        assert_eq!(healthy[healthy.len() - 2], healthy[healthy.len() - 1], "{csv}");
        assert_eq!(healthy[11], "3", "the canary's weight: {csv}");
        assert!(wrong[wrong.len() - 2].parse::<f64>().unwrap() < wrong[wrong.len() - 1].parse::<f64>().unwrap(), "{csv}");
    }
    assert!(
        many.stderr.lines().filter(|l| l.starts_with("class:") && l.contains("/9 ")).count() == 9,
        "a line per student: {}",
        many.stderr
    );

    interrupted_class_leaves_no_probe_and_a_partial_report(
        &rt,
        &client,
        &roster_file,
        dir.path(),
        &fixture.namespaces[1..],
        &[
            ("MINIO_ROOT_USER", "teacher".into()),
            ("MINIO_ROOT_PASSWORD", teacher_secret.clone()),
            ("FWD_USER", healthy_user.clone()),
            ("FWD_SECRET", healthy_secret.clone()),
        ],
    );

    rt.block_on(async {
        // The doctors' canaries and the short runs removed every object they wrote.
        let creds = harness_core::services::endpoints::S3Credentials {
            access_key: healthy_user.clone(),
            secret_key: healthy_secret.clone(),
            region: "us-east-1".into(),
        };
        let s3 = harness_core::services::s3::s3_client(&healthy_s3, &creds);
        for bucket in ["images", "thumbnails"] {
            let left = s3.list_object_versions().bucket(bucket).send().await.unwrap();
            let keys: Vec<&str> =
                left.versions().iter().filter_map(|v| v.key()).chain(left.delete_markers().iter().filter_map(|m| m.key())).collect();
            assert!(keys.is_empty(), "the healthy student's {bucket} holds what the class wrote: {keys:?}");
        }
        // Read-only: no probe pod or Secret left, no teacher's credential anywhere.
        for ns in &fixture.namespaces[1..] {
            let probe = ListParams::default().labels("io.harness.role=doctor-probe");
            assert!(Api::<Pod>::namespaced(client.clone(), ns).list(&probe).await.unwrap().items.is_empty(), "probe pod left in {ns}");
            let secrets = Api::<Secret>::namespaced(client.clone(), ns).list(&ListParams::default()).await.unwrap().items;
            assert_eq!(
                secrets.iter().filter(|s| s.metadata.name.as_deref() != Some("minio-env")).count(),
                0,
                "{ns} holds a Secret it did not have"
            );
            for s in secrets {
                for v in s.data.unwrap_or_default().values() {
                    assert!(!String::from_utf8_lossy(&v.0).contains(&teacher_secret), "the teacher's secret is in {ns}");
                }
            }
        }
    });
    drop(fixture);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let after = rt.block_on(inventory(&client));
        if after == before {
            break;
        }
        let extra: Vec<&String> = after.difference(&before).collect();
        let missing: Vec<&String> = before.difference(&after).collect();
        assert!(Instant::now() < deadline, "the cluster is not as it was: extra {extra:?}, missing {missing:?}");
        std::thread::sleep(Duration::from_millis(1000));
    }
}

/// Ctrl-C (SIGINT) while the students' probe pods run: the class stops each running
/// doctor (each deletes its probe pod and Secret), starts no more, and writes a
/// partial report that says so; when it has ended, no probe pod or Secret is left.
fn interrupted_class_leaves_no_probe_and_a_partial_report(
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
    roster: &Path,
    dir: &Path,
    namespaces: &[String],
    env: &[(&str, String)],
) {
    let reports = dir.join("class-interrupted");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["class", "--jobs", "2", "--reports", reports.to_str().unwrap(), roster.to_str().unwrap()])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(crate::util::repo())
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
    let probes = |kind: &str| -> Vec<String> {
        namespaces
            .iter()
            .flat_map(|ns| {
                let names: Vec<Option<String>> = if kind == "pod" {
                    rt.block_on(Api::<Pod>::namespaced(client.clone(), ns).list(&probe))
                        .unwrap()
                        .items
                        .into_iter()
                        .map(|p| p.metadata.name)
                        .collect()
                } else {
                    rt.block_on(Api::<Secret>::namespaced(client.clone(), ns).list(&probe))
                        .unwrap()
                        .items
                        .into_iter()
                        .map(|s| s.metadata.name)
                        .collect()
                };
                names.into_iter().map(move |n| format!("{kind} {ns}/{}", n.unwrap_or_default()))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while probes("pod").is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the class ended before a probe pod ran: {}", stderr.join().unwrap());
        assert!(Instant::now() < deadline, "no probe pod within 120 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = crate::util::interrupt_and_wait(&mut child, Duration::from_secs(90), "the class");
    let (out, err) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert_eq!(status.code(), Some(1), "interrupted: not a passing class\n{out}\n{err}");
    assert!(out.contains("interrupted (Ctrl-C): a partial report"), "{out}\n{err}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(reports.join("class.json")).unwrap()).unwrap();
    assert_eq!(json["interrupted"], true, "{json}");
    let verdicts: Vec<&str> = json["students"].as_array().unwrap().iter().map(|s| s["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts.len(), 9, "every student in the partial report: {verdicts:?}");
    assert!(verdicts.contains(&"interrupted"), "the stopped and the never started say so: {verdicts:?}");
    assert!(reports.join("class.html").exists() && reports.join("junit.xml").exists(), "the partial report is written");
    // Deleted by each doctor before the class ended, not later by a deadline.
    let left: Vec<String> = probes("pod").into_iter().chain(probes("secret")).collect();
    assert!(left.is_empty(), "left after Ctrl-C: {left:?}");
}

/// Until a Kafka listener answers at `addr` (the host reaches cluster IPs).
async fn wait_for_kafka(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(harness_core::doctor::kafka_wire::Listener::Plaintext { .. }) =
            harness_core::doctor::kafka_wire::probe(addr, None, Duration::from_secs(2)).await
        {
            return;
        }
        assert!(Instant::now() < deadline, "no Kafka listener at {addr} within 180 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The class's namespaces (and the base run's) and the MinIO folders on the node,
/// removed on every way out.
struct ClassFixture {
    namespaces: Vec<String>,
    host_dir: String,
}

impl Drop for ClassFixture {
    fn drop(&mut self) {
        let namespaces = std::mem::take(&mut self.namespaces);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let Ok(client) = kube::Client::try_default().await else { return };
                for ns in namespaces {
                    let _ = Api::<Namespace>::all(client.clone()).delete(&ns, &Default::default()).await;
                }
            })
        })
        .join();
        let _ = std::fs::remove_dir_all(&self.host_dir);
    }
}
