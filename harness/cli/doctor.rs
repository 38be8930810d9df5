//! `harness doctor`: the command line of [`harness_core::doctor`].

use std::path::PathBuf;
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use harness_core::doctor::{self, render, Severity, Target, Vantage};
use harness_core::services::endpoints::S3Credentials;
use harness_model::exit::ExitCode;

pub const DOCTOR_HELP: &str = "Examples:
  # a pipeline on this machine (MinIO's root credentials in the environment)
  export MINIO_ROOT_USER=minioadmin MINIO_ROOT_PASSWORD=minioadmin
  harness doctor --s3 http://127.0.0.1:9000 --kafka 127.0.0.1:9092

  # a student's cluster through port-forwards, their names for things, reports for CI
  harness doctor --s3 http://127.0.0.1:9000 --kafka 127.0.0.1:9094 --topic images-events \\
      --source-bucket uploads --target-bucket thumbs --group resizer --reports out/alice

  harness doctor --format json ... > doctor.json

  # a pipeline on Kubernetes: its pods, volume claims and KafkaTopics, then the endpoints
  # and MinIO's credentials read from the namespace, then the links walked from a pod there
  harness doctor --context kind-alice --namespace pipeline --topic images-events

  # the same, but the links walked from here through port-forwards
  harness doctor --namespace pipeline --from here --s3 http://127.0.0.1:9000 --kafka 127.0.0.1:9094

With --namespace it first reads the namespace's objects through the API server: pods the
scheduler places nowhere, volume claims no provisioner binds, containers that crash-loop or
cannot pull their image, Strimzi KafkaTopics its Topic Operator ignores (no strimzi.io/cluster
label, a label naming another cluster, another operator's apiVersion). Then it walks the
chain link by link: S3 API and credentials → buckets → the source bucket's
notification rules → MinIO's Kafka targets (admin API: state, brokers, topic, SASL/TLS,
queue_dir) → what answers at each Kafka address (PLAINTEXT, SASL, TLS, HTTP…) → the brokers
it advertises → the topic → the consumer group → one image through the whole pipeline
(only when nothing else failed; removed afterwards). Each problem comes with the evidence,
the cause and a fix. Every probe has a timeout (--timeout): a broken setup is answered in
seconds. Addresses are probed from where the doctor runs; run it where the pipeline's
clients run (or through port-forwards that keep the advertised addresses reachable).

With --namespace and without --s3/--kafka, the endpoints are read from the namespace (a
Strimzi Kafka's status listeners or a Kafka Service; a MinIO Tenant or the Service in front
of `minio server`) and the links are walked from a short-lived pod in that namespace
(--from cluster): advertised listeners and Service names are checked as the pipeline's own
pods see them. The pod runs the harness's image, built and loaded into the cluster here
(the harness's own cluster, or kind) unless --probe-image names one the nodes have; it and
its Secret are deleted afterwards.

Credentials are read from the environment variables --access-key-env and --secret-key-env
name, never from the command line, and are written nowhere; with --namespace and those
unset, from the MinIO container's spec or Secret. The admin API needs the root user or an
admin user. The probe pod (--from cluster) carries only credentials found in its namespace,
never yours, in a Secret of its own deleted with the pod (Ctrl-C included).

Exit codes: 0 every link works (warnings allowed) · 1 a link is broken · 2 invalid command line
· 3 the reports could not be written";

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// MinIO's S3 endpoint, `http://host:port` [default: http://127.0.0.1:9000, or read
    /// from --namespace].
    #[arg(long, value_name = "URL")]
    s3: Option<String>,
    /// The Kafka bootstrap address the processor uses, `host:port[,host:port]` [default:
    /// 127.0.0.1:9092, or read from --namespace].
    #[arg(long, value_name = "ADDRESS")]
    kafka: Option<String>,
    /// The topic MinIO publishes the source bucket's events to.
    #[arg(long, default_value = "minio-events")]
    topic: String,
    /// The bucket images are uploaded to.
    #[arg(long, value_name = "BUCKET", default_value = "images")]
    source_bucket: String,
    /// The bucket thumbnails are written to.
    #[arg(long, value_name = "BUCKET", default_value = "thumbnails")]
    target_bucket: String,
    /// The processor's consumer group (default: any group reading the topic).
    #[arg(long)]
    group: Option<String>,
    /// Environment variable holding the S3 access key.
    #[arg(long, value_name = "VAR", default_value = "MINIO_ROOT_USER")]
    access_key_env: String,
    /// Environment variable holding the S3 secret key.
    #[arg(long, value_name = "VAR", default_value = "MINIO_ROOT_PASSWORD")]
    secret_key_env: String,
    /// Region for S3 signatures.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Do not send an image through the pipeline.
    #[arg(long)]
    no_canary: bool,
    /// Limit of each probe, e.g. `3s`, `500ms`.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    timeout: Duration,
    /// How long the canary's thumbnail may take.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    canary_timeout: Duration,
    /// `text` (default) or `json` on stdout.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// Also write doctor.json, junit.xml and report.html into this folder.
    #[arg(long, value_name = "DIR")]
    reports: Option<PathBuf>,
    /// The Kubernetes namespace the pipeline runs in: check its pods, volume claims
    /// and KafkaTopic resources first.
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// The kubeconfig context to use with --namespace (default: the current one).
    #[arg(long, value_name = "CONTEXT", requires = "namespace")]
    context: Option<String>,
    /// Where the links are walked from: `here`, or `cluster` (a pod in --namespace)
    /// [default: cluster with --namespace and no --s3/--kafka, else here].
    #[arg(long, value_name = "WHERE", value_parser = ["here", "cluster"], requires = "namespace")]
    from: Option<String>,
    /// The image of the probe pod (--from cluster) [default: the harness's own, built and
    /// loaded into the cluster].
    #[arg(long, value_name = "IMAGE", requires = "namespace")]
    probe_image: Option<String>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

pub fn doctor(runtime: &tokio::runtime::Runtime, args: DoctorArgs) -> ProcessExit {
    let invalid = |message: String| {
        eprintln!("error: {message}");
        ProcessExit::from(ExitCode::InvalidInput.code())
    };
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let credentials = match (var(&args.access_key_env), var(&args.secret_key_env)) {
        (Some(access_key), Some(secret_key)) => Some(S3Credentials { access_key, secret_key, region: args.region.clone() }),
        // Read from MinIO's spec in the namespace.
        _ if args.namespace.is_some() => None,
        _ => {
            let missing: Vec<&str> =
                [&args.access_key_env, &args.secret_key_env].into_iter().filter(|v| var(v).is_none()).map(String::as_str).collect();
            return invalid(format!(
                "the S3 credentials are read from the environment, and {} {} not set; export them, or name other variables with --access-key-env/--secret-key-env",
                missing.join(" and "),
                if missing.len() == 1 { "is" } else { "are" }
            ));
        }
    };
    if let Some(s3) = args.s3.as_ref().filter(|s| !s.starts_with("http://") && !s.starts_with("https://")) {
        return invalid(format!("--s3 {s3:?}: give the endpoint as a URL, e.g. http://{s3}"));
    }
    let in_namespace = args.namespace.is_some();
    let from_cluster = match args.from.as_deref() {
        Some(f) => f == "cluster",
        None => in_namespace && args.s3.is_none() && args.kafka.is_none(),
    };
    let from = if from_cluster {
        let harness_bin = match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => return invalid(format!("finding the harness executable for the probe pod's image: {e}")),
        };
        Vantage::Cluster { image: args.probe_image.clone(), harness_bin }
    } else {
        Vantage::Here
    };
    // Without a namespace to read them from, the local defaults.
    let or_default =
        |given: Option<String>, default: &str| given.unwrap_or_else(|| if in_namespace { String::new() } else { default.into() });
    let target = Target {
        s3_endpoint: or_default(args.s3, "http://127.0.0.1:9000"),
        credentials,
        kafka_bootstrap: or_default(args.kafka, "127.0.0.1:9092"),
        topic: args.topic,
        source_bucket: args.source_bucket,
        target_bucket: args.target_bucket,
        group: args.group,
        canary: !args.no_canary,
        probe_timeout: args.timeout,
        canary_timeout: args.canary_timeout,
        kubernetes: args.namespace.map(|namespace| doctor::cluster::Scope { context: args.context, namespace }),
        from,
    };
    let quiet = args.quiet;
    let progress = move |m: &str| {
        if !quiet {
            eprintln!("doctor: {m}");
        }
    };
    let d = runtime.block_on(doctor::diagnose(&target, &progress));
    match args.format.as_str() {
        "json" => print!("{}", render::json(&d)),
        _ => print!("{}", render::text(&d)),
    }
    if let Some(dir) = &args.reports {
        if let Err(e) = render::write_reports(&d, dir) {
            eprintln!("error: writing the reports into {}: {e}", dir.display());
            return ProcessExit::from(ExitCode::Environment.code());
        }
        if !quiet {
            eprintln!("doctor: reports in {}/ (doctor.json, junit.xml, report.html)", dir.display());
        }
    }
    if d.worst() == Severity::Error {
        ProcessExit::from(ExitCode::ExpectationFailed.code())
    } else {
        ProcessExit::SUCCESS
    }
}

/// `3s`, `500ms`, `2m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: f64 = n.parse().map_err(|_| format!("{s:?} is no duration; write e.g. 3s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use ms, s or m")),
    };
    if !(0.001..=3600.0).contains(&secs) {
        return Err(format!("{s:?} is out of range (1ms to 60m)"));
    }
    Ok(Duration::from_secs_f64(secs))
}
