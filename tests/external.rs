//! The external environment: a scenario run against a pipeline the harness did not
//! start (real Kafka, real MinIO and the reference processor, started here the way a
//! student's would run), judged as usual; a broken one ends with the doctor's
//! diagnosis; faults are refused at validation.
//!
//! Needs Java, Maven and Go (or a warm cache); CI installs them.

use std::time::Duration;

use harness_core::services::endpoints::S3Credentials;
use harness_core::services::minio::{self, Minio, MinioConfig, MinioPorts, EVENTS_TARGET};
use harness_core::services::process::ProcessGroup;
use harness_core::services::provision::provision;

use crate::doctor::{start_kafka, start_processor, Reaped, SECRET, TOPIC, USER};
use crate::util::{assert_correct, files_below, harness, only_run_dir, read_json, slot};

const GROUP: &str = "resizer";

fn scenario(s3: &str, bootstrap: &str, faults: &str) -> String {
    format!(
        "name: external-smoke
environment:
  kind: external
  external:
    s3_endpoint: {s3}
    kafka_bootstrap: {bootstrap}
    access_key_env: EXT_AK
    secret_key_env: EXT_SK
processor:
  running: true
  group_id: {GROUP}
workload:
  images: 30
  rate: 15/s
{faults}drain:
  timeout: 60s
expect:
  exactly_once: true
  latency:
    end_to_end: {{ p95: 10s }}
"
    )
}

#[test]
fn a_running_pipeline_is_judged_and_a_broken_one_diagnosed() {
    let _place = slot();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(external_pipeline());
}

async fn external_pipeline() {
    let toolchain = provision(&|l: &str| eprintln!("{l}")).await.expect("provisioning");
    let dir = tempfile::tempdir().unwrap();
    let group = ProcessGroup::new(dir.path().join("logs"));
    let (_kafka, bootstrap) = start_kafka(&toolchain, &group, dir.path(), vec![]).await;
    let mcfg = MinioConfig {
        bin: toolchain.minio_bin.clone(),
        dir: dir.path().join("minio"),
        kafka_bootstrap: bootstrap.clone(),
        events_topic: TOPIC.into(),
        outputs_topic: "unused-outputs".into(),
        queue_dir: true,
        queue_limit: None,
        sync_events: false,
        events_sasl: None,
        credentials: S3Credentials { access_key: USER.into(), secret_key: SECRET.into(), region: "us-east-1".into() },
        ready_timeout: Duration::from_secs(60),
    };
    let mut m = Minio::start(&group, &mcfg, MinioPorts::pick().unwrap()).await.expect("minio");
    let s3 = m.endpoint();
    minio::setup_bucket(m.client(), "images", false).await.expect("bucket");
    minio::setup_bucket(m.client(), "thumbnails", true).await.expect("bucket");
    minio::notify_on_create(m.client(), "images", EVENTS_TARGET).await.expect("notification rule");
    let _processor = Reaped(start_processor(&bootstrap, &s3, GROUP, 128));

    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("external.yaml");
    std::fs::write(&file, scenario(&s3, &bootstrap, "")).unwrap();
    let creds = [("EXT_AK", USER.to_string()), ("EXT_SK", SECRET.to_string())];
    let file_arg = file.to_str().unwrap();

    // The processor joins its group in a few seconds; until then the doctor's check
    // (the environment's readiness) reports an empty group.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !harness(
        &[
            "doctor",
            "--s3",
            &s3,
            "--kafka",
            &bootstrap,
            "--group",
            GROUP,
            "--access-key-env",
            "EXT_AK",
            "--secret-key-env",
            "EXT_SK",
            "--no-canary",
            "-q",
        ],
        &creds,
    )
    .stdout
    .starts_with("doctor: healthy")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Kept (--keep): its uploads and thumbnails stay, for the next run to ignore.
    let reports = tempfile::tempdir().unwrap();
    let out = harness(&["run", "--keep", "--reports", reports.path().to_str().unwrap(), file_arg], &creds);
    let shown = format!("exit {}\nstdout:\n{}\nstderr:\n{}", out.code, out.stdout, out.stderr);
    eprintln!("{}", out.stdout);
    let run_dir = only_run_dir(reports.path());
    let results = read_json(&run_dir.join("results.json"));
    assert_correct(out.code, &results, || shown.clone());
    assert_eq!(results["environment"]["kind"], "external", "{shown}");
    let ledger = results["ledger"].as_array().unwrap();
    assert_eq!(ledger.len(), 30, "{shown}");
    assert!(run_dir.join("doctor/doctor.json").exists(), "the readiness check's findings are kept");
    let kept_run = results["run_id"].as_str().unwrap().to_string();
    assert_eq!(keys_under(m.client(), "images", &format!("{kept_run}/")).await, 30, "--keep: the uploads stay: {shown}");
    assert_eq!(keys_under(m.client(), "thumbnails", &format!("{kept_run}/")).await, 30, "--keep: the thumbnails stay: {shown}");
    assert!(!out.stderr.contains("starting Kafka and MinIO"), "nothing is started: {shown}");
    for entry in files_below(&run_dir) {
        let text = std::fs::read(&entry).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&text).contains(SECRET), "the secret key leaked into {}", entry.display());
    }

    // Again, same seed and so the same keys: the bucket now holds the first run's
    // thumbnails and the topic its events. Only this run's are judged. Meanwhile the
    // pipeline's owner writes objects of their own into the thumbnails bucket: the
    // run lists only its own keys (#22: never the whole bucket every 250 ms), so
    // those are neither listed nor taken for phantom thumbnails.
    let owner = {
        let client = m.client().clone();
        tokio::spawn(async move {
            for i in 0u32.. {
                let body = aws_sdk_s3::primitives::ByteStream::from_static(b"the owner's own object");
                let _ = client.put_object().bucket("thumbnails").key(format!("owner/{i}.jpg")).body(body).send().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let reports = tempfile::tempdir().unwrap();
    let out = harness(&["run", "--reports", reports.path().to_str().unwrap(), file_arg], &creds);
    owner.abort();
    let owners = keys_under(m.client(), "thumbnails", "owner/").await;
    assert!(owners >= 10, "the owner wrote during the run: {owners} objects");
    let shown = format!("exit {}\nstdout:\n{}\nstderr:\n{}", out.code, out.stdout, out.stderr);
    let results = read_json(&only_run_dir(reports.path()).join("results.json"));
    assert_correct(out.code, &results, || format!("a second run on a used pipeline: {shown}"));
    let findings = &results["findings"];
    assert_eq!(findings["phantom_outputs"].as_array().map(Vec::len), Some(0), "{shown}");
    assert_eq!(findings["duplicate_outputs"].as_array().map(Vec::len), Some(0), "{shown}");
    assert_eq!(results["counts"]["events"], 30, "the first run's events are not this run's: {shown}");
    assert_eq!(results["counts"]["output_versions"], 30, "nor its thumbnails: {shown}");
    // Without --keep, what the run put into the pipeline's buckets is gone (every
    // version: the thumbnails bucket is versioned), and only that.
    let this_run = results["run_id"].as_str().unwrap().to_string();
    for bucket in ["images", "thumbnails"] {
        assert_eq!(keys_under(m.client(), bucket, &format!("{this_run}/")).await, 0, "{bucket} still holds the run's objects: {shown}");
        let own: Vec<String> =
            versions_under(m.client(), bucket, "_harness/").await.into_iter().filter(|k| k.contains(&this_run)).collect();
        assert!(own.is_empty(), "{bucket} still holds the run's canary or probe: {own:?}\n{shown}");
        assert_eq!(
            keys_under(m.client(), bucket, &format!("{kept_run}/")).await,
            30,
            "{bucket}: the kept run's objects are not this run's: {shown}"
        );
    }

    // Broken: the bucket notification is gone. The run ends before any upload,
    // with the doctor's diagnosis, as an environment failure (exit 3).
    m.client()
        .put_bucket_notification_configuration()
        .bucket("images")
        .notification_configuration(aws_sdk_s3::types::NotificationConfiguration::builder().build())
        .send()
        .await
        .expect("clear rules");
    let reports = tempfile::tempdir().unwrap();
    let out = harness(&["run", "--reports", reports.path().to_str().unwrap(), file_arg], &creds);
    let shown = format!("exit {}\nstdout:\n{}\nstderr:\n{}", out.code, out.stdout, out.stderr);
    assert_eq!(out.code, 3, "{shown}");
    let results = read_json(&only_run_dir(reports.path()).join("results.json"));
    let error = results["error"].as_str().unwrap_or_default();
    assert!(error.contains("BROKEN at bucket notification"), "{shown}\n{error}");

    // Without the credentials' variables: a clear error naming the variable.
    let out = harness(&["run", "--reports", reports.path().to_str().unwrap(), file_arg], &[("EXT_AK", USER.to_string())]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("EXT_SK") || read_last_error(reports.path()).contains("EXT_SK"), "{}", out.stderr);
    m.stop(Duration::from_secs(5)).await.unwrap();
}

/// The keys of the object versions (delete markers included) `bucket` holds under `prefix`.
async fn versions_under(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let page = client.list_object_versions().bucket(bucket).prefix(prefix).send().await.expect("list versions");
    assert_ne!(page.is_truncated(), Some(true), "more than a page under {bucket}/{prefix}");
    page.versions().iter().filter_map(|v| v.key()).chain(page.delete_markers().iter().filter_map(|m| m.key())).map(str::to_string).collect()
}

async fn keys_under(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> usize {
    versions_under(client, bucket, prefix).await.len()
}

fn read_last_error(reports: &std::path::Path) -> String {
    let mut dirs: Vec<_> = std::fs::read_dir(reports).unwrap().flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs.last().map(|d| read_json(&d.join("results.json"))["error"].as_str().unwrap_or_default().to_string()).unwrap_or_default()
}

/// Faults need control of the services, which an external pipeline does not give.
#[test]
fn faults_on_an_external_pipeline_are_refused_at_validation() {
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("external-faults.yaml");
    std::fs::write(&file, scenario("http://127.0.0.1:9000", "127.0.0.1:9092", "faults:\n  - { kind: broker_kill, at: 2s }\n")).unwrap();
    let out = harness(&["validate", file.to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("faults[0]") && out.stderr.contains("external"), "{}", out.stderr);

    // Publishing into the pipeline's own topic changes what is checked: refused unless
    // the scenario opts in, then accepted.
    let duplicates = "faults:\n  - { kind: duplicate_events, at: 2s }\n";
    std::fs::write(&file, scenario("http://127.0.0.1:9000", "127.0.0.1:9092", duplicates)).unwrap();
    let out = harness(&["validate", file.to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("faults[0].kind: duplicate_events") && out.stderr.contains("environment.external.event_faults: true"),
        "{}",
        out.stderr
    );
    let opted_in = scenario("http://127.0.0.1:9000", "127.0.0.1:9092", duplicates)
        .replace("    secret_key_env: EXT_SK\n", "    secret_key_env: EXT_SK\n    event_faults: true\n");
    assert!(opted_in.contains("event_faults: true"));
    std::fs::write(&file, opted_in).unwrap();
    let out = harness(&["validate", file.to_str().unwrap()], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    std::fs::write(&file, scenario("http://127.0.0.1:9000", "127.0.0.1:9092", "").replace("  running: true\n", "  builtin: resize\n"))
        .unwrap();
    let out = harness(&["validate", file.to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("processor: the external environment tests the pipeline's own processor"), "{}", out.stderr);

    std::fs::write(&file, scenario("127.0.0.1:9000", "127.0.0.1:9092", "")).unwrap();
    let out = harness(&["validate", file.to_str().unwrap()], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("environment.external.s3_endpoint") && out.stderr.contains("http://host:port"), "{}", out.stderr);
}
