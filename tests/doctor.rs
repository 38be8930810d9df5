//! `harness doctor` against real broken setups: one real Kafka with three kinds of
//! listener (PLAINTEXT; one whose advertised address nothing answers on; SASL/PLAIN)
//! and a real MinIO per case, each set up the way a student got it wrong. Each
//! case asserts the root cause the doctor names first, the fix it gives, and a
//! correct setup gets a clean bill with one image through the whole pipeline.
//!
//! Needs Java, Maven and Go (or a warm cache); CI installs them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness_core::fault::decoy::HttpDecoy;
use harness_core::services::endpoints::S3Credentials;
use harness_core::services::kafka::{self, ExtraListener, Kafka, KafkaConfig, KafkaPorts};
use harness_core::services::minio::{self, Minio, MinioConfig, MinioPorts, EVENTS_TARGET};
use harness_core::services::process::ProcessGroup;
use harness_core::services::provision::{provision, Toolchain};

use crate::util::{harness, slot};

pub(crate) const TOPIC: &str = "minio-events";
pub(crate) const USER: &str = "doctor-user";
pub(crate) const SECRET: &str = "doctor-secret-0123";

/// What a case's MinIO is given.
struct Case {
    name: &'static str,
    /// MinIO's `brokers=`.
    brokers: String,
    queue_dir: bool,
    /// Which bucket gets the Kafka notification rule (`None`: no rule).
    rule_on: Option<&'static str>,
    processor: bool,
    canary: bool,
    /// MinIO's target speaks SASL/PLAIN.
    sasl: bool,
}

struct Answer {
    code: i32,
    json: serde_json::Value,
    stdout: String,
    took: Duration,
}

fn doctor(s3: &str, bootstrap: &str, group: &str, canary: bool, reports: Option<&std::path::Path>) -> Answer {
    let mut args = vec![
        "doctor",
        "--s3",
        s3,
        "--kafka",
        bootstrap,
        "--topic",
        TOPIC,
        "--group",
        group,
        "--access-key-env",
        "DOCTOR_AK",
        "--secret-key-env",
        "DOCTOR_SK",
        "--format",
        "json",
        "-q",
    ];
    if !canary {
        args.push("--no-canary");
    }
    let dir;
    if let Some(r) = reports {
        dir = r.display().to_string();
        args.extend(["--reports", dir.as_str()]);
    }
    let started = Instant::now();
    let out = harness(&args, &[("DOCTOR_AK", USER.into()), ("DOCTOR_SK", SECRET.into())]);
    let took = started.elapsed();
    let json = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("doctor's JSON: {e}\n{}\n{}", out.stdout, out.stderr));
    Answer { code: out.code, json, stdout: out.stdout, took }
}

fn first_error(a: &Answer) -> Option<&serde_json::Value> {
    a.json["findings"].as_array().unwrap().iter().find(|f| f["severity"] == "error")
}

fn finding<'a>(a: &'a Answer, link: &str, severity: &str) -> Option<&'a serde_json::Value> {
    a.json["findings"].as_array().unwrap().iter().find(|f| f["link"] == link && f["severity"] == severity)
}

pub(crate) fn start_processor(bootstrap: &str, s3: &str, group: &str, width: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("processor")
        .envs([
            ("KAFKA_BOOTSTRAP_SERVERS", bootstrap),
            ("KAFKA_TOPIC", TOPIC),
            ("KAFKA_GROUP_ID", group),
            ("S3_ENDPOINT", s3),
            ("AWS_ACCESS_KEY_ID", USER),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_REGION", "us-east-1"),
            ("SOURCE_BUCKET", "images"),
            ("TARGET_BUCKET", "thumbnails"),
        ])
        .env("THUMBNAIL_WIDTH", width.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the reference processor")
}

/// Kills the processor on every way out of a case.
pub(crate) struct Reaped(pub(crate) Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A single Kafka broker below `dir` with `extra` listeners, and the pipeline's
/// topic (3 partitions); its bootstrap address.
pub(crate) async fn start_kafka(toolchain: &Toolchain, group: &ProcessGroup, dir: &Path, extra: Vec<ExtraListener>) -> (Kafka, String) {
    let ports = KafkaPorts::pick().unwrap();
    let cfg = KafkaConfig {
        java: toolchain.java.clone(),
        libs: toolchain.kafka_libs.clone(),
        dir: dir.join("kafka"),
        ready_timeout: Duration::from_secs(90),
        extra_listeners: extra,
        cluster: None,
    };
    let broker = Kafka::start(group, &cfg, ports).await.expect("kafka");
    let bootstrap = ports.bootstrap();
    kafka::create_topic(&bootstrap, TOPIC, 3, 1, Duration::from_secs(30)).await.expect("topic");
    (broker, bootstrap)
}

#[test]
fn doctor_names_the_root_cause_of_each_broken_setup() {
    let _place = slot();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(each_broken_setup());
}

async fn each_broken_setup() {
    let toolchain = provision(&|l: &str| eprintln!("{l}")).await.expect("provisioning");
    let dir = tempfile::tempdir().unwrap();
    let group = ProcessGroup::new(dir.path().join("logs"));

    let free = harness_core::services::ports::free_ports(3).unwrap();
    let (badadv, sasl, dead) = (free[0], free[1], free[2]);
    let extra = vec![
        ExtraListener { name: "BADADV".into(), port: badadv, advertised: format!("127.0.0.1:{dead}"), sasl_plain: None },
        ExtraListener {
            name: "SASL".into(),
            port: sasl,
            advertised: format!("127.0.0.1:{sasl}"),
            sasl_plain: Some(("student".into(), "pw".into())),
        },
    ];
    let (_kafka, bootstrap) = start_kafka(&toolchain, &group, dir.path(), extra).await;
    let decoy = HttpDecoy::start().await.unwrap();
    // An HTTP server as Go writes them (MinIO's console, Prometheus, Grafana): it reads
    // until a whole request line has come, and Kafka's binary request has no line end,
    // so it never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut conn, _)) = silent.accept().await {
            held.push(tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await.is_ok_and(|n| n > 0) {}
            }));
        }
    });

    let plain = bootstrap.clone();
    let cases = [
        Case {
            name: "correct",
            brokers: plain.clone(),
            queue_dir: true,
            rule_on: Some("images"),
            processor: true,
            canary: true,
            sasl: false,
        },
        Case {
            name: "1 wrong port (HTTP)",
            brokers: decoy.address(),
            queue_dir: true,
            rule_on: Some("images"),
            processor: true,
            canary: true,
            sasl: false,
        },
        Case {
            name: "1 wrong port (silent HTTP)",
            brokers: silent_addr.clone(),
            queue_dir: true,
            rule_on: Some("images"),
            processor: true,
            canary: true,
            sasl: false,
        },
        Case {
            name: "2 unreachable advertised listener",
            brokers: format!("127.0.0.1:{badadv}"),
            queue_dir: true,
            rule_on: Some("images"),
            processor: true,
            canary: true,
            sasl: false,
        },
        Case {
            name: "3 SASL listener, PLAINTEXT MinIO",
            brokers: format!("127.0.0.1:{sasl}"),
            queue_dir: true,
            rule_on: Some("images"),
            processor: true,
            canary: true,
            sasl: false,
        },
        Case {
            name: "3 PLAINTEXT listener, SASL MinIO",
            brokers: plain.clone(),
            queue_dir: true,
            rule_on: Some("images"),
            processor: true,
            canary: true,
            sasl: true,
        },
        Case {
            name: "5 notification on the wrong bucket",
            brokers: plain.clone(),
            queue_dir: true,
            rule_on: Some("thumbnails"),
            processor: true,
            canary: true,
            sasl: false,
        },
        Case {
            name: "5 no notification",
            brokers: plain.clone(),
            queue_dir: true,
            rule_on: None,
            processor: true,
            canary: true,
            sasl: false,
        },
        Case {
            name: "6 no queue_dir",
            brokers: plain.clone(),
            queue_dir: false,
            rule_on: Some("images"),
            processor: true,
            canary: false,
            sasl: false,
        },
        Case {
            name: "7 no processor",
            brokers: plain.clone(),
            queue_dir: true,
            rule_on: Some("images"),
            processor: false,
            canary: true,
            sasl: false,
        },
    ];
    let mut table = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let mcfg = MinioConfig {
            bin: toolchain.minio_bin.clone(),
            dir: dir.path().join(format!("minio-{i}")),
            kafka_bootstrap: case.brokers.clone(),
            events_topic: TOPIC.into(),
            outputs_topic: "harness-outputs".into(),
            queue_dir: case.queue_dir,
            queue_limit: None,
            sync_events: false,
            events_sasl: case.sasl.then(|| ("student".to_string(), "pw".to_string())),
            credentials: S3Credentials { access_key: USER.into(), secret_key: SECRET.into(), region: "us-east-1".into() },
            ready_timeout: Duration::from_secs(60),
        };
        let mut m = Minio::start(&group, &mcfg, MinioPorts::pick().unwrap()).await.expect("minio");
        let s3 = m.endpoint();
        for (bucket, versioned) in [("images", false), ("thumbnails", true)] {
            minio::setup_bucket(m.client(), bucket, versioned).await.expect("bucket");
        }
        if let Some(bucket) = case.rule_on {
            minio::notify_on_create(m.client(), bucket, EVENTS_TARGET).await.expect("notification rule");
        }
        // A group per case: a killed processor stays a member until its session
        // times out, and the next case must not see it.
        let group_id = format!("thumbnailer-{i}");
        let _processor = case.processor.then(|| Reaped(start_processor(&bootstrap, &s3, &group_id, 16)));
        if case.processor {
            // Readiness, not a retry: the processor joins its group in a few seconds.
            let deadline = Instant::now() + Duration::from_secs(30);
            while finding(&doctor(&s3, &bootstrap, &group_id, false, None), "consumer_group", "ok").is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let reports = dir.path().join(format!("reports-{i}"));
        let a = doctor(&s3, &bootstrap, &group_id, case.canary, Some(&reports));
        let verdict = a.json["verdict"].as_str().unwrap_or_default().to_string();
        eprintln!("{}: {verdict} [{:.1} s]", case.name, a.took.as_secs_f64());
        table.push(format!("{} | {verdict} | {:.1} s", case.name, a.took.as_secs_f64()));
        let err = first_error(&a).cloned().unwrap_or_default();
        let cause = err["cause"].as_str().unwrap_or_default().to_string();
        let fix = err["fix"].as_str().unwrap_or_default().to_string();
        let shown = format!("{}\n{}", case.name, a.stdout);
        match case.name {
            "correct" => {
                assert_eq!(a.code, 0, "{shown}");
                assert_eq!(a.json["healthy"], true, "{shown}");
                let canary = finding(&a, "pipeline", "ok").unwrap_or_else(|| panic!("the canary went through: {shown}"));
                assert!(canary["evidence"].as_str().unwrap().contains("thumbnail"), "{shown}");
                assert!(finding(&a, "minio_kafka_target", "ok").is_some(), "target online: {shown}");
                for f in ["doctor.json", "junit.xml", "report.html"] {
                    assert!(reports.join(f).exists(), "{f} written");
                }
            }
            "1 wrong port (HTTP)" => {
                assert_eq!(a.code, 1, "{shown}");
                assert_eq!(err["link"], "minio_kafka_target", "{shown}");
                assert!(err["evidence"].as_str().unwrap().contains("HTTP/1.1 400"), "{shown}");
                assert!(cause.contains("is not a Kafka listener"), "{shown}");
                assert!(fix.contains(&format!("notify_kafka:{EVENTS_TARGET} brokers={bootstrap}")), "{shown}");
                let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
                assert!(junit.contains("<failure") && junit.contains("is not a Kafka listener"), "{junit}");
            }
            "1 wrong port (silent HTTP)" => {
                // #24: it said "every link answered, but the event never reached the
                // topic" after 36 s, and blamed admin rights.
                assert_eq!(a.code, 1, "{shown}");
                assert_eq!(err["link"], "minio_kafka_target", "{shown}");
                assert!(err["check"].as_str().unwrap().contains(&silent_addr), "{shown}");
                assert!(cause.contains(&format!("{silent_addr} is not a Kafka listener")), "{shown}");
                assert!(fix.contains(&format!("brokers={bootstrap}")), "{shown}");
                assert!(!a.stdout.contains("admin rights"), "silence is not a lack of rights: {shown}");
                assert!(a.took < Duration::from_secs(10), "answered in {:?}: {shown}", a.took);
            }
            "2 unreachable advertised listener" => {
                assert_eq!(a.code, 1, "{shown}");
                assert_eq!(err["link"], "advertised_listeners", "{shown}");
                assert!(err["evidence"].as_str().unwrap().contains(&format!("127.0.0.1:{dead}")), "{shown}");
                assert!(cause.contains("bootstrap from") && cause.contains("advertises"), "{shown}");
                assert!(fix.contains("advertised.listeners"), "{shown}");
            }
            "3 SASL listener, PLAINTEXT MinIO" => {
                assert_eq!(a.code, 1, "{shown}");
                assert_eq!(err["link"], "minio_kafka_target", "{shown}");
                assert!(err["evidence"].as_str().unwrap().contains("SASL handshake (mechanisms: PLAIN)"), "{shown}");
                assert!(cause.contains("Unexpected Kafka request of type METADATA during SASL handshake"), "{shown}");
                assert!(fix.contains("sasl=on") && fix.contains("sasl_mechanism=plain"), "{shown}");
            }
            "3 PLAINTEXT listener, SASL MinIO" => {
                assert_eq!(a.code, 1, "{shown}");
                assert_eq!(err["link"], "minio_kafka_target", "{shown}");
                assert!(err["evidence"].as_str().unwrap().contains("a PLAINTEXT listener, but MinIO is set to use SASL"), "{shown}");
                assert!(fix.contains("sasl=off"), "{shown}");
            }
            "5 notification on the wrong bucket" => {
                assert_eq!(a.code, 1, "{shown}");
                assert_eq!(err["link"], "bucket_notification", "{shown}");
                assert!(err["evidence"].as_str().unwrap().contains("but on: thumbnails"), "{shown}");
                assert!(fix.contains("mc event add ALIAS/images arn:minio:sqs::1:kafka --event put"), "{shown}");
            }
            "5 no notification" => {
                assert_eq!(a.code, 1, "{shown}");
                assert_eq!(err["link"], "bucket_notification", "{shown}");
                assert!(cause.contains("publish no event"), "{shown}");
            }
            "6 no queue_dir" => {
                let w = finding(&a, "minio_kafka_target", "warning").unwrap_or_else(|| panic!("a queue_dir warning: {shown}"));
                assert!(w["evidence"] == "no queue_dir" && w["fix"].as_str().unwrap().contains("queue_dir="), "{shown}");
                assert_eq!(a.code, 0, "a warning alone passes: {shown}");
                assert!(a.json["verdict"].as_str().unwrap().starts_with("doctor: works, with 1 warning"), "{shown}");
            }
            "7 no processor" => {
                assert_eq!(a.code, 1, "{shown}");
                assert_eq!(err["link"], "consumer_group", "{shown}");
                assert!(cause.contains("no processor"), "{shown}");
                assert_eq!(
                    finding(&a, "pipeline", "skipped").map(|f| f["evidence"].clone()),
                    Some("skipped: fix the errors above first".into()),
                    "{shown}"
                );
            }
            other => unreachable!("{other}"),
        }
        m.stop(Duration::from_secs(5)).await.unwrap();
    }
    eprintln!("failure | first line | time to answer\n{}", table.join("\n"));
}
