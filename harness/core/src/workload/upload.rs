//! The uploader: PUT each image when it is due (open loop), record every ack.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use harness_model::history::{Upload, UploadFailure};
use harness_model::workload::PlannedUpload;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::images::{generate, GeneratedImage};
use crate::clock::Clock;

/// Longest a single PUT may take before it is recorded as failed.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters the progress line reads while uploads run.
#[derive(Default)]
pub struct UploadProgress {
    pub acked: AtomicU64,
    pub failed: AtomicU64,
}

/// Resolves once `stop` is true; never, if its sender is gone without saying so.
pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Generates images on a thread of their own, a bounded distance ahead of the
/// schedule, and uploads each when due with at most `concurrency` PUTs in flight.
/// When `stop` turns true (Ctrl-C), no further upload starts; the ones in flight
/// finish and are recorded.
pub async fn run_uploads(
    client: Client,
    bucket: String,
    plan: Vec<PlannedUpload>,
    concurrency: u32,
    clock: Clock,
    progress: Arc<UploadProgress>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Vec<Upload>, Vec<UploadFailure>) {
    let (tx, mut rx) = mpsc::channel::<Result<GeneratedImage, (PlannedUpload, String)>>(64);
    let generator = std::thread::Builder::new().name("image-gen".into()).spawn(move || {
        for p in plan {
            let item = generate(&p).map_err(|e| (p, format!("could not generate the image: {e}")));
            if tx.blocking_send(item).is_err() {
                return;
            }
        }
    });
    if let Err(e) = generator {
        let failure = UploadFailure { key: String::new(), error: format!("cannot start the image generator: {e}"), at: clock.now() };
        return (Vec::new(), vec![failure]);
    }

    let start = tokio::time::Instant::now();
    let workload_epoch = clock.now();
    let permits = Arc::new(Semaphore::new(concurrency.max(1) as usize));
    let mut tasks: JoinSet<Result<Upload, UploadFailure>> = JoinSet::new();
    loop {
        let item = tokio::select! {
            item = rx.recv() => item,
            () = stopped(&mut stop) => None,
        };
        let Some(item) = item else { break };
        let img = match item {
            Ok(img) => img,
            Err((p, error)) => {
                progress.failed.fetch_add(1, Ordering::Relaxed);
                let at = clock.now();
                tasks.spawn(async move { Err(UploadFailure { key: p.key, error, at }) });
                continue;
            }
        };
        let due = tokio::select! {
            _ = tokio::time::sleep_until(start + img.plan.due) => true,
            () = stopped(&mut stop) => false,
        };
        if !due {
            break;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let (client, bucket, progress) = (client.clone(), bucket.clone(), progress.clone());
        let scheduled_at = workload_epoch + img.plan.due.as_micros() as u64;
        tasks.spawn(async move {
            let _permit = permit;
            let result = put(&client, &bucket, img, scheduled_at, &clock).await;
            let counter = if result.is_ok() { &progress.acked } else { &progress.failed };
            counter.fetch_add(1, Ordering::Relaxed);
            result
        });
    }

    // The generator stops at its next send.
    drop(rx);
    let (mut uploads, mut failures) = (Vec::new(), Vec::new());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(u)) => uploads.push(u),
            Ok(Err(f)) => failures.push(f),
            Err(e) => failures.push(UploadFailure { key: String::new(), error: format!("upload task failed: {e}"), at: clock.now() }),
        }
    }
    uploads.sort_by_key(|u| u.scheduled_at);
    (uploads, failures)
}

async fn put(client: &Client, bucket: &str, img: GeneratedImage, scheduled_at: u64, clock: &Clock) -> Result<Upload, UploadFailure> {
    let bytes = img.bytes.len() as u64;
    let p = img.plan;
    let request =
        client.put_object().bucket(bucket).key(&p.key).content_type(p.format.content_type()).body(ByteStream::from(img.bytes)).send();
    let fail = |error: String| UploadFailure { key: p.key.clone(), error, at: clock.now() };
    match tokio::time::timeout(PUT_TIMEOUT, request).await {
        Err(_) => Err(fail(format!("no answer within {}s", PUT_TIMEOUT.as_secs()))),
        Ok(Err(e)) => Err(fail(crate::services::s3::describe_sdk_error(&e))),
        Ok(Ok(out)) => Ok(Upload {
            key: p.key.clone(),
            etag: out.e_tag().unwrap_or_default().trim_matches('"').to_string(),
            bytes,
            width: p.size.width,
            height: p.size.height,
            format: format!("{:?}", p.format).to_lowercase(),
            scheduled_at,
            acked_at: clock.now(),
            hostile: p.hostile,
        }),
    }
}
