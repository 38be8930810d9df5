//! The harness's own hot paths: scenario parsing, the checker on a history of a
//! million events, and latency histograms (summarising and merging).
//!
//! `cargo bench -p harness-model --bench hot_paths`

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use harness_model::check::{check, CheckSpec};
use harness_model::history::{EventSeen, History, Inspection, OutputVersion, Upload};
use harness_model::metrics;
use harness_model::scenario;
use hdrhistogram::Histogram;

const SCENARIO: &str = r#"
name: bench-scenario
description: a scenario with every section, as a user would write it
seed: 42
environment:
  kind: local
  kafka: { partitions: 6 }
  minio: { queue_dir: true, sync_events: false }
  ready_timeout: 120s
pipeline:
  source_bucket: images
  target_bucket: thumbnails
  topic: minio-events
  thumbnail_width: 128
processor:
  builtin: resize
  env: { LOG_LEVEL: info }
workload:
  images: 1000
  rate: 50/s
  concurrency: 8
  sizes: [640x480, 1024x768, 1920x1080]
  formats: [jpeg, png]
  keys: tricky
drain:
  timeout: 60s
expect:
  exactly_once: true
  latency:
    end_to_end: { p50: 500ms, p95: 3s, p99: 5s }
    upload_to_event: { p95: 1s }
    event_to_output: { p99: 2s }
  throughput: { min: 10/s }
"#;

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("scenario");
    g.throughput(Throughput::Bytes(SCENARIO.len() as u64));
    g.bench_function("parse+validate", |b| {
        b.iter(|| scenario::parse(black_box(SCENARIO), Path::new("scenarios/bench.yaml")).expect("valid"))
    });
    g.finish();
}

/// `n` uploads, each with one event and one thumbnail, except every 1000th lost and
/// every 997th written twice: a realistic ledger with a few findings.
fn history(n: usize) -> History {
    let mut h = History { drained: true, ..Default::default() };
    h.uploads.reserve(n);
    h.events.reserve(n);
    h.outputs.reserve(n);
    for i in 0..n {
        let key = format!("batch-{:03}/photo {:07}.jpg", i % 512, i);
        let t = i as u64 * 1_000;
        h.uploads.push(Upload {
            key: key.clone(),
            etag: format!("{i:032x}"),
            bytes: 50_000,
            width: 640,
            height: 480,
            format: "jpeg".into(),
            scheduled_at: t,
            acked_at: t + 5_000,
            hostile: None,
        });
        h.events.push(EventSeen {
            key: key.clone(),
            bucket: "images".into(),
            event_name: "s3:ObjectCreated:Put".into(),
            etag: format!("{i:032x}"),
            partition: (i % 6) as i32,
            offset: i as i64,
            at: t + 20_000,
        });
        if i % 1000 == 0 {
            continue;
        }
        let copies = if i % 997 == 0 { 2 } else { 1 };
        for v in 0..copies {
            h.outputs.push(OutputVersion {
                key: key.clone(),
                version_id: format!("v{i}-{v}"),
                bytes: 4_000,
                seen_at: Some(t + 90_000 + v * 1_000),
                inspection: Inspection::Image { width: 128, height: 96, format: "jpeg".into() },
            });
        }
    }
    h
}

fn bench_check(c: &mut Criterion) {
    let n = 1_000_000;
    let h = history(n);
    let spec = CheckSpec { thumbnail_width: 128 };
    let mut g = c.benchmark_group("checker");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("check 1M uploads+events+outputs", |b| b.iter(|| check(black_box(&h), &spec)));
    let ledger = check(&h, &spec);
    g.bench_function("metrics 1M-row ledger", |b| b.iter(|| metrics::compute(black_box(&ledger))));
    g.finish();
}

fn bench_histograms(c: &mut Criterion) {
    let samples: Vec<u64> = (0..1_000_000u64).map(|i| 1_000 + (i * 7919) % 3_000_000).collect();
    let mut g = c.benchmark_group("histogram");
    g.throughput(Throughput::Elements(samples.len() as u64));
    g.sample_size(20);
    g.bench_function("summarize 1M samples", |b| b.iter(|| metrics::summarize(black_box(&samples))));
    g.finish();

    // Merging: 64 per-partition (or per-run) histograms of 10k samples into one.
    let parts: Vec<Histogram<u64>> = (0..64u64)
        .map(|p| {
            let mut h = Histogram::<u64>::new_with_bounds(1, 86_400_000_000, 3).expect("bounds");
            for i in 0..10_000u64 {
                h.saturating_record(1_000 + (i * 7919 + p * 104_729) % 3_000_000);
            }
            h
        })
        .collect();
    let mut g = c.benchmark_group("histogram");
    g.throughput(Throughput::Elements(parts.len() as u64));
    g.bench_function("merge 64 histograms", |b| {
        b.iter_batched(
            || Histogram::<u64>::new_with_bounds(1, 86_400_000_000, 3).expect("bounds"),
            |mut total| {
                for p in &parts {
                    total.add(p).expect("same bounds");
                }
                total
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_parse, bench_check, bench_histograms);
criterion_main!(benches);
