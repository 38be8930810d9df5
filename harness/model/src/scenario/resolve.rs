//! Raw scenario → validated [`Scenario`]: defaults, cross-field rules, paths.

use std::path::Path;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::catalog::capability;
use super::env_rules::{first_broken, Facts};
use super::faults::{random_schedule, resolve_fault, resolve_random};
use super::raw::{BuiltinName, EnvKind, HostileKind, KeyStyle, RawPercentiles, RawScenario};
use super::units::{Format, ImageSize};
use super::{
    Environment, Expectation, External, Pipeline, Problem, Processor, ProcessorKind, Quantile, Scenario, ScenarioError, Stage, Workload,
};

/// Environment variables the harness sets for every processor (DESIGN §5); a
/// scenario may not override them, or the processor would talk to something else.
/// The last, `AWS_ENDPOINT_URL`, is a convenience; the others are the contract
/// ([`contract_required`]).
pub const CONTRACT_VARS: [&str; 11] = [
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
    "KAFKA_GROUP_ID",
    "S3_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "SOURCE_BUCKET",
    "TARGET_BUCKET",
    "THUMBNAIL_WIDTH",
    "AWS_ENDPOINT_URL",
];

/// The shortest value `processor.secret_env` may mark: the run's redactor masks
/// nothing shorter (it would scramble every log).
pub const MIN_SECRET_LEN: usize = 8;

/// The processor contract's variables: every processor needs each.
pub fn contract_required() -> &'static [&'static str] {
    &CONTRACT_VARS[..10]
}

pub(super) fn resolve(raw: RawScenario, text: &str, path: &Path, base_dir: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let problem = |loc: Location, key: &str, message: String| {
        ScenarioError::Invalid(Problem { file: file.clone(), line: Some(loc.line()), path: key.to_string(), message })
    };

    let kind_loc = raw.environment.kind.as_ref().map(|k| k.referenced);
    let kind = match raw.environment.kind {
        None => EnvKind::Local,
        Some(Spanned { value: EnvKind::Local, .. }) => EnvKind::Local,
        Some(Spanned { value: EnvKind::Containers, .. }) => EnvKind::Containers,
        Some(Spanned { value: EnvKind::Kubernetes, .. }) => EnvKind::Kubernetes,
        Some(Spanned { value: EnvKind::External, .. }) => EnvKind::External,
    };
    // What this kind of environment can run: the table `--env` reads too. Checked before
    // the details of each section, at the key it names.
    let facts = Facts {
        kind,
        kafka_brokers: raw.environment.kafka.brokers.as_ref().map_or(1, |b| b.value.0),
        kafka_operator: raw.environment.kafka.operator.is_some(),
        misconfigure: raw.environment.misconfigure.is_some(),
        external_given: raw.environment.external.is_some(),
        processor_running: raw.processor.value.running,
        processor_image: raw.processor.value.image.is_some(),
    };
    if let Some(rule) = first_broken(&facts) {
        let at = match rule.path {
            "environment.kafka.brokers" => raw.environment.kafka.brokers.as_ref().map(|b| b.referenced),
            "environment.kafka.operator" => raw.environment.kafka.operator.as_ref().map(|o| o.referenced),
            "environment.misconfigure" => raw.environment.misconfigure.as_ref().and(kind_loc),
            "processor" | "processor.image" => Some(raw.processor.referenced),
            _ => kind_loc,
        };
        return Err(ScenarioError::Invalid(Problem {
            file: file.clone(),
            line: at.or(kind_loc).map(|l| l.line()),
            path: rule.path.into(),
            message: (rule.in_file)(kind),
        }));
    }
    let external =
        match (kind, raw.environment.external) {
            (EnvKind::External, Some(e)) => {
                let e_loc = e.referenced;
                let e = e.value;
                if e.namespace.is_none() {
                    for (given, key) in [(&e.s3_endpoint, "s3_endpoint"), (&e.kafka_bootstrap, "kafka_bootstrap")] {
                        if given.is_none() {
                            return Err(problem(
                                e_loc,
                                &format!("environment.external.{key}"),
                                format!("missing: give `{key}`, or `namespace:` to read the endpoints from a Kubernetes namespace"),
                            ));
                        }
                    }
                }
                if let Some(s3) = e.s3_endpoint.as_ref().filter(|s| !(s.starts_with("http://") || s.starts_with("https://"))) {
                    return Err(problem(
                        e_loc,
                        "environment.external.s3_endpoint",
                        format!("{s:?} is not a URL; write it as http://host:port", s = s3),
                    ));
                }
                if let Some(k) = e.kafka_bootstrap.as_ref().filter(|k| {
                    k.split(',').any(|a| a.trim().rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()))
                }) {
                    return Err(problem(e_loc, "environment.external.kafka_bootstrap", format!("{k:?} is not host:port[,host:port]")));
                }
                if e.context.is_some() && e.namespace.is_none() {
                    return Err(problem(
                        e_loc,
                        "environment.external.context",
                        "names the kube context of `namespace`; add `namespace:`, or remove it".into(),
                    ));
                }
                let local_only = [
                    (raw.environment.minio.queue_dir, "minio.queue_dir"),
                    (raw.environment.minio.sync_events, "minio.sync_events"),
                    (raw.environment.kafka.partitions.is_some(), "kafka.partitions"),
                    (raw.environment.kafka.brokers.is_some(), "kafka.brokers"),
                    (raw.environment.misconfigure.is_some(), "misconfigure"),
                ];
                if let Some((_, key)) = local_only.iter().find(|(set, _)| *set) {
                    return Err(problem(
                        e_loc,
                        &format!("environment.{key}"),
                        "configures services the harness starts; an external pipeline is configured by whoever runs it: remove it".into(),
                    ));
                }
                Some(External {
                    s3_endpoint: e.s3_endpoint.unwrap_or_default(),
                    kafka_bootstrap: e.kafka_bootstrap.unwrap_or_default(),
                    namespace: e.namespace,
                    context: e.context,
                    access_key_env: e.access_key_env.unwrap_or_else(|| "MINIO_ROOT_USER".into()),
                    secret_key_env: e.secret_key_env.unwrap_or_else(|| "MINIO_ROOT_PASSWORD".into()),
                    region: e.region.unwrap_or_else(|| "us-east-1".into()),
                    event_faults: e.event_faults,
                })
            }
            (_, Some(e)) => {
                return Err(problem(
                    e.referenced,
                    "environment.external",
                    format!("only applies to `kind: external` (this is {})", kind.name()),
                ))
            }
            (_, None) => None,
        };
    let kafka_brokers = match &raw.environment.kafka.brokers {
        None => 1,
        Some(b) if b.value.0 == 1 || b.value.0 == 3 => b.value.0,
        Some(b) => {
            return Err(problem(
                b.referenced,
                "environment.kafka.brokers",
                format!("must be 1 or 3 (a KRaft quorum of three tolerates one broker down), got {}", b.value.0),
            ))
        }
    };
    let kafka_operator = raw.environment.kafka.operator.as_ref().map(|o| o.value);
    if let Some(limit) = &raw.environment.minio.queue_limit {
        if !raw.environment.minio.queue_dir {
            return Err(problem(
                limit.referenced,
                "environment.minio.queue_limit",
                "limits MinIO's queue_dir, and there is none: add `queue_dir: true`".into(),
            ));
        }
    }

    let target_loc = raw.pipeline.target_bucket.as_ref().map(|s| s.referenced);
    let pipeline = Pipeline {
        source_bucket: raw.pipeline.source_bucket.map_or_else(|| "images".to_string(), |b| b.0),
        target_bucket: raw.pipeline.target_bucket.map_or_else(|| "thumbnails".to_string(), |b| b.value.0),
        topic: raw.pipeline.topic.map_or_else(|| "minio-events".to_string(), |t| t.0),
        thumbnail_width: raw.pipeline.thumbnail_width.map_or(128, |c| c.0),
    };
    if pipeline.source_bucket == pipeline.target_bucket {
        return Err(ScenarioError::Invalid(Problem {
            file,
            line: target_loc.map(|l| l.line()),
            path: "pipeline.target_bucket".to_string(),
            message: format!(
                "the target bucket must differ from the source bucket ({:?}): the processor would consume its own thumbnails",
                pipeline.source_bucket
            ),
        }));
    }

    let proc_loc = raw.processor.referenced;
    let p = raw.processor.value;
    let kind_of_processor = match (p.builtin, p.command, p.image) {
        (None, None, None) if p.running => ProcessorKind::Running,
        (b, c, i) if p.running && (b.is_some() || c.is_some() || i.is_some()) => {
            return Err(problem(proc_loc, "processor", "`running: true` starts no processor; remove `builtin`/`command`".into()));
        }
        (Some(b), None, None) => ProcessorKind::Builtin(b),
        (None, Some(argv), None) => {
            if argv.is_empty() || argv[0].trim().is_empty() {
                return Err(problem(proc_loc, "processor.command", "must name a program, e.g. [python3, consumer.py]".into()));
            }
            ProcessorKind::Command(argv)
        }
        (None, None, Some(image)) => {
            if image.trim().is_empty() || image.contains(char::is_whitespace) {
                return Err(problem(proc_loc, "processor.image", format!("{image:?} is not an image reference, e.g. localhost/resizer:1")));
            }
            ProcessorKind::Image(image)
        }
        (Some(_), Some(_), None) => {
            return Err(problem(proc_loc, "processor", "give either `builtin` or `command`, not both".into()));
        }
        (None, None, None) => {
            return Err(problem(
                proc_loc,
                "processor",
                "say which processor to test: `builtin: resize`, `command: [program, args...]` or `image: REF` (containers, kubernetes)"
                    .into(),
            ));
        }
        _ => return Err(problem(proc_loc, "processor", "give one of `builtin`, `command` or `image`, not several".into())),
    };
    if let Some(var) = p.env.keys().find(|k| CONTRACT_VARS.contains(&k.as_str())) {
        return Err(problem(
            proc_loc,
            &format!("processor.env.{var}"),
            "is set by the harness (processor contract); remove it from the scenario".into(),
        ));
    }
    let secret_env = match p.secret_env {
        None => Vec::new(),
        Some(names) => {
            let loc = names.referenced;
            for (i, name) in names.value.iter().enumerate() {
                if !p.env.contains_key(name) {
                    let known: Vec<&str> = p.env.keys().map(String::as_str).collect();
                    return Err(problem(
                        loc,
                        &format!("processor.secret_env[{i}]"),
                        format!(
                            "{name:?} is not a variable of processor.env ({}): list the names of env variables whose values are secret",
                            if known.is_empty() { "it has none".to_string() } else { format!("it has {}", known.join(", ")) }
                        ),
                    ));
                }
                if let Some(v) = p.env.get(name).filter(|v| v.len() < MIN_SECRET_LEN) {
                    return Err(problem(
                        loc,
                        &format!("processor.secret_env[{i}]"),
                        format!(
                            "the value of {name} has {} characters; a secret to mask needs at least {MIN_SECRET_LEN} (masking a shorter one would scramble every log)",
                            v.chars().count()
                        ),
                    ));
                }
            }
            names.value
        }
    };
    if matches!(kind_of_processor, ProcessorKind::Builtin(BuiltinName::Resize) | ProcessorKind::Image(_)) && p.workdir.is_some() {
        return Err(problem(proc_loc, "processor.workdir", "only applies to `command` processors".into()));
    }
    let processor = Processor {
        kind: kind_of_processor,
        workdir: match p.workdir {
            Some(w) => base_dir.join(w),
            None => base_dir.to_path_buf(),
        },
        env: p.env,
        secret_env,
        group_id: p.group_id.unwrap_or_else(|| "thumbnailer".to_string()),
    };

    let w = raw.workload;
    let workload = Workload {
        images: w.images.0,
        rate: w.rate,
        concurrency: w.concurrency.map_or(8, |c| c.0),
        sizes: dedup(w.sizes.unwrap_or_else(|| vec![ImageSize { width: 640, height: 480 }])),
        formats: dedup(w.formats.unwrap_or_else(|| vec![Format::Jpeg, Format::Png])),
        keys: w.keys.unwrap_or(KeyStyle::Tricky),
        hostile: {
            let mut h = w.hostile.unwrap_or_default();
            h.sort();
            h.dedup();
            h
        },
    };
    if workload.sizes.is_empty() || workload.formats.is_empty() {
        return Err(ScenarioError::Invalid(Problem {
            file,
            line: None,
            path: if workload.sizes.is_empty() { "workload.sizes" } else { "workload.formats" }.to_string(),
            message: "must list at least one entry (or be left out for the default)".into(),
        }));
    }

    let expect_loc = raw.expect.referenced;
    let e = raw.expect.value;
    let mut expectations = Vec::new();
    if e.exactly_once == Some(true) {
        expectations.push(Expectation::ExactlyOnce);
    }
    if let Some(lat) = e.latency {
        for (stage, pct) in
            [(Stage::EndToEnd, lat.end_to_end), (Stage::UploadToEvent, lat.upload_to_event), (Stage::EventToOutput, lat.event_to_output)]
        {
            push_latency(&mut expectations, stage, pct);
        }
    }
    if let Some(t) = e.throughput {
        expectations.push(Expectation::Throughput { min_per_second: t.min.per_second });
    }
    if let Some(n) = e.notifications_lost {
        if let (Some(lo), Some(hi)) = (n.at_least, n.at_most) {
            if lo > hi {
                return Err(problem(expect_loc, "expect.notifications_lost", format!("at_least ({lo}) is greater than at_most ({hi})")));
            }
        }
        if n.at_least.is_none() && n.at_most.is_none() {
            return Err(problem(expect_loc, "expect.notifications_lost", "give `at_least`, `at_most` or both".into()));
        }
        expectations.push(Expectation::NotificationsLost { at_least: n.at_least, at_most: n.at_most });
    }
    match (e.skipped_inputs, workload.hostile.is_empty()) {
        (Some(true), true) => {
            return Err(problem(
                expect_loc,
                "expect.skipped_inputs",
                format!("needs hostile inputs to judge: add `workload.hostile: [{}]`", HostileKind::ALL.map(HostileKind::key).join(", ")),
            ))
        }
        (Some(true), false) => expectations.push(Expectation::SkippedInputs { planned: workload.hostile.len() as u32 }),
        _ => {}
    }
    let misconfigure = raw.environment.misconfigure;
    match (misconfigure, e.misconfiguration_reported) {
        (Some(_), Some(true)) if expectations.is_empty() => expectations.push(Expectation::MisconfigurationReported),
        (Some(_), Some(true)) => {
            return Err(problem(
                expect_loc,
                "expect",
                "with `environment.misconfigure` no workload can run: expect only `misconfiguration_reported: true`".into(),
            ))
        }
        (Some(_), _) => {
            return Err(problem(
                expect_loc,
                "expect.misconfiguration_reported",
                "`environment.misconfigure` is set: add `misconfiguration_reported: true`".into(),
            ))
        }
        (None, Some(true)) => {
            return Err(problem(
                expect_loc,
                "expect.misconfiguration_reported",
                "needs `environment.misconfigure` (e.g. `wrong_listener_port`): nothing is misconfigured to report".into(),
            ))
        }
        (None, _) => {}
    }
    if expectations.is_empty() {
        return Err(problem(
            expect_loc,
            "expect",
            "states no expectation; add at least one of `exactly_once: true`, `latency`, `throughput`, \
             `notifications_lost`, `skipped_inputs`"
                .into(),
        ));
    }

    let environment = Environment {
        kind,
        events_partitions: raw.environment.kafka.partitions.map_or(3, |c| c.0),
        kafka_brokers,
        kafka_operator,
        minio_queue_dir: raw.environment.minio.queue_dir,
        minio_queue_limit: raw.environment.minio.queue_limit.map(|l| l.value.0),
        minio_sync_events: raw.environment.minio.sync_events,
        ready_timeout: raw.environment.ready_timeout.map_or(Duration::from_secs(120), |s| s.0),
        misconfigure,
        external,
    };
    let mut faults = Vec::new();
    for (i, f) in raw.faults.into_iter().enumerate() {
        let loc = f.referenced;
        let spec = resolve_fault(i as u32, f.value).map_err(|(key, msg)| problem(loc, &format!("faults[{i}].{key}"), msg))?;
        capability(spec.kind, spec.target, &environment)
            .map_err(|why| problem(loc, &format!("faults[{i}].kind"), format!("{}: {why}", spec.kind.key())))?;
        faults.push(spec);
    }
    if let Some(r) = raw.random_faults {
        let loc = r.referenced;
        let random = resolve_random(r.value).map_err(|(key, msg)| problem(loc, &format!("random_faults.{key}"), msg))?;
        for kind in &random.kinds {
            capability(*kind, kind.target(), &environment)
                .map_err(|why| problem(loc, "random_faults.kinds", format!("{}: {why}", kind.key())))?;
        }
        let horizon = Duration::from_secs_f64(f64::from(workload.images) / workload.rate.per_second);
        faults.extend(random_schedule(&random, raw.seed.unwrap_or(1), horizon, faults.len() as u32));
    }
    if !faults.is_empty() {
        expectations.push(Expectation::FaultsTookEffect { planned: faults.len() as u32 });
    }

    Ok(Scenario {
        name: raw.name.0,
        description: raw.description,
        seed: raw.seed.unwrap_or(1),
        file: path.to_path_buf(),
        environment,
        faults,
        pipeline,
        processor,
        workload,
        drain_timeout: raw.drain.timeout.map_or(Duration::from_secs(60), |s| s.0),
        drain_quiet: raw.drain.quiet.map_or(Duration::from_secs(10), |s| s.0),
        expectations,
        source_text: text.to_string(),
    })
}

fn push_latency(out: &mut Vec<Expectation>, stage: Stage, p: Option<RawPercentiles>) {
    let Some(p) = p else { return };
    for (quantile, bound) in
        [(Quantile::P50, p.p50), (Quantile::P90, p.p90), (Quantile::P95, p.p95), (Quantile::P99, p.p99), (Quantile::Max, p.max)]
    {
        if let Some(b) = bound {
            out.push(Expectation::Latency { stage, quantile, bound: b.0 });
        }
    }
}

fn dedup<T: Ord + Clone>(mut v: Vec<T>) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}
