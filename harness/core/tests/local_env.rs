//! The local environment for real: provisions and starts Kafka and MinIO,
//! proves both notification paths (source → events topic, target → outputs
//! topic) and the processor contract, then that shutdown leaves no process of
//! the run's group and no data dir behind.
//!
//! Needs Java, Maven and Go (or KAFKA_HOME / MINIO_BIN); CI installs them.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use harness_core::env::{EnvSpec, Environment, LocalEnv};
use harness_core::services::canary::{canary_png, wait_for_object_event};
use harness_core::services::processor::ProcessorSpec;
use harness_core::services::provision::provision;
use harness_core::services::s3::s3_client;

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_env_delivers_both_notification_paths_and_cleans_up() {
    let progress = |line: &str| eprintln!("{line}");
    let toolchain = provision(&progress).await.expect("provisioning");
    eprintln!("java: {} | kafka: {} | minio: {}", toolchain.java_version, toolchain.kafka_version, toolchain.minio_version);
    let dir = tempfile::tempdir().expect("temp dir");
    let run_dir = dir.path().join("run");
    let spec = EnvSpec {
        minio_kafka_address: None,
        minio_listener_advertises: None,
        minio_listener_sasl: None,
        minio_target_sasl: false,
        kafka_brokers: 1,
        kafka_operator: None,
        minio_queue_limit: None,
        fault_links: false,
        seed: 1,
        secrets: Vec::new(),
        run_dir: run_dir.clone(),
        events_topic: "minio-events".into(),
        outputs_topic: "harness-outputs".into(),
        events_partitions: 3,
        source_bucket: "images".into(),
        target_bucket: "thumbnails".into(),
        minio_queue_dir: true,
        minio_sync_events: false,
        ready_timeout: Duration::from_secs(90),
    };
    let mut env = LocalEnv::start(spec, &toolchain, &progress).await.expect("local env start");
    let t = env.ready_timings().clone();
    eprintln!("ready: kafka {:?}, minio {:?}, topics+buckets+canary {:?}, total {:?}", t.kafka, t.minio, t.canary, t.total);
    assert!(env.canary_key().starts_with("_harness/canary/"));
    let ep = env.endpoints().clone();
    let s3 = s3_client(&ep.s3_endpoint, &ep.credentials);

    // Source bucket → events topic (a key with a space: MinIO URL-encodes it in
    // the record, the message key carries it plain).
    let key = "cats/cat photo.png";
    s3.put_object().bucket(&ep.source_bucket).key(key).body(ByteStream::from(canary_png())).send().await.expect("upload to source bucket");
    let seen = wait_for_object_event(&ep.kafka_bootstrap, &ep.events_topic, 3, &ep.source_bucket, key, EVENT_TIMEOUT)
        .await
        .expect("event of the upload on the events topic");
    assert!(seen.event_name.starts_with("s3:ObjectCreated:"), "{seen:?}");

    // Target bucket → outputs topic; the target bucket is versioned.
    let put = s3
        .put_object()
        .bucket(&ep.target_bucket)
        .key(key)
        .body(ByteStream::from(canary_png()))
        .send()
        .await
        .expect("write to target bucket");
    assert!(put.version_id().is_some_and(|v| v != "null"), "target bucket is versioned");
    wait_for_object_event(&ep.kafka_bootstrap, &ep.outputs_topic, 1, &ep.target_bucket, key, EVENT_TIMEOUT)
        .await
        .expect("event of the output on the outputs topic");

    // A processor gets the contract's environment and joins the run's group.
    let script = "test \"$KAFKA_TOPIC\" = minio-events && test \"$TARGET_BUCKET\" = thumbnails \
                  && test -n \"$AWS_SECRET_ACCESS_KEY\" && echo contract-ok; exec sleep 600";
    env.start_processor(ProcessorSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![],
        cwd: dir.path().to_path_buf(),
        name: "processor".into(),
        builtin: false,
        image: None,
    })
    .await
    .expect("processor start");
    let mut status = env.processor_events().expect("processor status");
    let pid = status.borrow_and_update().pid.expect("processor pid");
    let pgid = env.pgid().expect("process group");
    // SAFETY: getpgid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::getpgid(pid as i32) }, pgid);
    let processor_log = run_dir.join("logs/processor.log");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&processor_log).unwrap_or_default().contains("contract-ok") {
        assert!(tokio::time::Instant::now() < deadline, "processor did not see the contract env");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    Box::new(env).shutdown(false).await.expect("shutdown");
    // SAFETY: kill with signal 0 only checks for existence.
    let alive = unsafe { libc::kill(-pgid, 0) } == 0;
    let errno = std::io::Error::last_os_error().raw_os_error();
    assert!(!alive && errno == Some(libc::ESRCH), "processes left in group {pgid}");
    assert!(!run_dir.join("kafka").exists(), "kafka data dir removed");
    assert!(!run_dir.join("minio").exists(), "minio data dir removed");
    for log in ["kafka.log", "minio.log", "processor.log"] {
        let text = std::fs::read_to_string(run_dir.join("logs").join(log)).expect(log);
        assert!(!text.is_empty(), "{log} kept and not empty");
        assert!(!text.contains(&ep.credentials.secret_key), "{log} must not contain the secret");
    }
}

/// The panic path: an env dropped without `shutdown` takes its processes along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_env_kills_its_process_group() {
    let toolchain = provision(&|_| {}).await.expect("provisioning");
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = EnvSpec {
        minio_kafka_address: None,
        minio_listener_advertises: None,
        minio_listener_sasl: None,
        minio_target_sasl: false,
        kafka_brokers: 1,
        kafka_operator: None,
        minio_queue_limit: None,
        fault_links: false,
        seed: 1,
        secrets: Vec::new(),
        run_dir: dir.path().join("run"),
        events_topic: "events".into(),
        outputs_topic: "outputs".into(),
        events_partitions: 1,
        source_bucket: "src".into(),
        target_bucket: "dst".into(),
        minio_queue_dir: false,
        minio_sync_events: true,
        ready_timeout: Duration::from_secs(90),
    };
    let env = LocalEnv::start(spec, &toolchain, &|_| {}).await.expect("local env start");
    let pgid = env.pgid().expect("process group");
    drop(env);
    // SIGKILL is immediate; the dropped children are reaped in the background.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // SAFETY: kill with signal 0 only checks for existence.
    while unsafe { libc::kill(-pgid, 0) } == 0 {
        assert!(tokio::time::Instant::now() < deadline, "group {pgid} still has processes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
