//! One Kafka message, start to finish: parse, GET, thumbnail, conditional PUT, with
//! retries of transient S3 failures until done or shut down.

use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::event::{self, Disposition, ObjectRef};
use crate::image_ops::{self, Thumbnail};
use crate::s3::{self, Failure, PutOutcome};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Output written, already present, or deliberately skipped: commit past it.
    Done,
    /// Shutdown came while retrying: do not commit, the message comes again.
    Abandoned,
}

/// Where a message came from, for log lines.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What every task shares.
pub(crate) struct Worker {
    pub s3: Client,
    pub source_bucket: String,
    pub target_bucket: String,
    pub thumbnail_width: u32,
    /// `PROCESSOR_SLOWDOWN_PERCENT`: extra CPU time per image, in percent of the time
    /// the image took (GET, thumbnail, PUT); a test knob, 0 in normal use.
    pub slowdown_percent: u32,
}

/// Set to `true` at shutdown; retry loops give up when they see it.
pub(crate) type Cancel = watch::Receiver<bool>;

impl Worker {
    /// Handles one Kafka message, which may carry several records.
    pub async fn handle(&self, payload: Option<&[u8]>, origin: &Origin, cancel: &mut Cancel) -> Outcome {
        let dispositions = match event::parse(payload, &self.source_bucket) {
            Ok(d) => d,
            Err(err) => {
                warn!(
                    topic = %origin.topic, partition = origin.partition, offset = origin.offset,
                    error = %err, "skip message: not a MinIO event"
                );
                return Outcome::Done;
            }
        };
        if dispositions.is_empty() {
            debug!(offset = origin.offset, partition = origin.partition, "message without records");
        }
        for d in dispositions {
            match d {
                Disposition::Process(obj) => {
                    if self.process(&obj, cancel).await == Outcome::Abandoned {
                        return Outcome::Abandoned;
                    }
                }
                Disposition::Ignore { why } => {
                    debug!(partition = origin.partition, offset = origin.offset, "ignored record: {why}");
                }
                Disposition::BadKey { raw_key, why } => {
                    warn!(key = ?raw_key, reason = %"bad-key", detail = ?why, "skip");
                }
            }
        }
        Outcome::Done
    }

    /// Makes and stores the thumbnail of one object.
    async fn process(&self, obj: &ObjectRef, cancel: &mut Cancel) -> Outcome {
        let started = Instant::now();
        let key = obj.key.as_str();
        let source = match retry("get", key, cancel, || s3::get(&self.s3, &self.source_bucket, key)).await {
            Step::Ok(s) => s,
            Step::Skipped => return Outcome::Done,
            Step::Abandoned => return Outcome::Abandoned,
        };
        let source_bytes = source.bytes.len();
        let width = self.thumbnail_width;
        let bytes = source.bytes;
        let thumb = match tokio::task::spawn_blocking(move || image_ops::make_thumbnail(&bytes, width)).await {
            Ok(Ok(t)) => t,
            Ok(Err(err)) => {
                warn!(key = ?key, reason = %err.reason(), source_bytes, detail = ?err.to_string(), "skip");
                return Outcome::Done;
            }
            Err(join) => {
                // The decoder panicked on this input: skip the object, keep running.
                warn!(key = ?key, reason = %"decoder-panic", source_bytes, detail = ?join.to_string(), "skip");
                return Outcome::Done;
            }
        };
        let etag = source.etag.as_deref();
        let put = retry("put", key, cancel, || s3::put_if_absent(&self.s3, &self.target_bucket, key, &thumb, etag)).await;
        if self.slowdown_percent > 0 && matches!(put, Step::Ok(_)) {
            let extra = started.elapsed() * self.slowdown_percent / 100;
            let _ = tokio::task::spawn_blocking(move || burn_cpu(extra)).await;
        }
        let ms = started.elapsed().as_millis() as u64;
        match put {
            Step::Ok(PutOutcome::Written) => {
                log_processed(key, source_bytes, &thumb, ms);
                Outcome::Done
            }
            Step::Ok(PutOutcome::AlreadyExists) => {
                info!(key = ?key, ms, "exists: thumbnail already written (redelivered event)");
                Outcome::Done
            }
            Step::Skipped => Outcome::Done,
            Step::Abandoned => Outcome::Abandoned,
        }
    }
}

/// Keeps this thread busy for `d`: the slowdown knob makes the processor slower the
/// way slower code would (CPU used, not a sleep that frees the core).
fn burn_cpu(d: Duration) {
    if d.is_zero() {
        return;
    }
    let until = Instant::now() + d;
    let mut x = 0u64;
    while Instant::now() < until {
        for _ in 0..64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

fn log_processed(key: &str, source_bytes: usize, thumb: &Thumbnail, ms: u64) {
    info!(
        key = ?key,
        source_bytes,
        width = thumb.width,
        height = thumb.height,
        output_bytes = thumb.bytes.len(),
        ms,
        "processed"
    );
}

enum Step<T> {
    Ok(T),
    Skipped,
    Abandoned,
}

/// Runs `op` until it succeeds or fails for good, pausing 100 ms, 200 ms, ... 5 s
/// between transient failures; gives up as soon as shutdown is signalled.
async fn retry<T, F, Fut>(op_name: &'static str, key: &str, cancel: &mut Cancel, mut op: F) -> Step<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut delay = FIRST_BACKOFF;
    let mut attempt = 1u32;
    loop {
        match op().await {
            Ok(v) => return Step::Ok(v),
            Err(Failure::Skip { reason, detail }) => {
                warn!(key = ?key, reason = %reason, detail = ?detail, "skip");
                return Step::Skipped;
            }
            Err(Failure::Transient(error)) => {
                warn!(
                    key = ?key, op = %op_name, attempt, retry_in_ms = delay.as_millis() as u64,
                    error = ?error, "transient S3 failure"
                );
            }
        }
        if *cancel.borrow() {
            return Step::Abandoned;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = cancel.wait_for(|stop| *stop) => return Step::Abandoned,
        }
        delay = (delay * 2).min(MAX_BACKOFF);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test(start_paused = true)]
    async fn retry_backs_off_until_success() {
        let (_tx, mut rx) = watch::channel(false);
        let calls = Cell::new(0);
        let start = tokio::time::Instant::now();
        let step = retry("get", "k", &mut rx, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 4 {
                    Err(Failure::Transient("503".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert!(matches!(step, Step::Ok(4)));
        // 100 + 200 + 400 ms of pauses.
        assert_eq!(start.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_on_skip_and_on_shutdown() {
        let (tx, mut rx) = watch::channel(false);
        let step: Step<()> =
            retry("get", "k", &mut rx, || async { Err(Failure::Skip { reason: "no-such-key", detail: String::new() }) }).await;
        assert!(matches!(step, Step::Skipped));

        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let _ = tx.send(true);
        });
        let step: Step<()> = retry("put", "k", &mut rx, || async { Err(Failure::Transient("refused".into())) }).await;
        assert!(matches!(step, Step::Abandoned));
        stopper.await.expect("stopper");
    }
}
