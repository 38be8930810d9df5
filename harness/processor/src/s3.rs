//! The S3 side: the client, GET of a source, conditional PUT of a thumbnail, and
//! which failures are worth a retry.

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use crate::config::Config;
use crate::image_ops::Thumbnail;

/// A stalled body read is given up after this long (and retried).
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the client: path-style addressing, static credentials, few SDK retries and
/// short timeouts, so a stalled MinIO shows up in our own retry log quickly.
pub(crate) fn client(cfg: &Config) -> Client {
    let credentials = Credentials::new(
        cfg.aws_access_key_id.clone(),
        cfg.aws_secret_access_key.expose().to_string(),
        None,
        None,
        "processor-environment",
    );
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(cfg.aws_region.clone()))
        .endpoint_url(cfg.s3_endpoint.clone())
        .credentials_provider(credentials)
        .force_path_style(true)
        // Checksums only where S3 requires them: works with older S3 implementations.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(500)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(25))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// Why an S3 call did not succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Permanent for this object: log `skip` and commit past it.
    Skip { reason: &'static str, detail: String },
    /// Worth another try after a pause.
    Transient(String),
}

/// A source object's content.
pub(crate) struct Source {
    pub bytes: Vec<u8>,
    /// The ETag without quotes.
    pub etag: Option<String>,
}

/// What a conditional PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutOutcome {
    Written,
    /// `If-None-Match: *` failed: the thumbnail exists (a redelivered event).
    AlreadyExists,
}

/// Sources larger than this are skipped unread: a thumbnailer that reads any object
/// whole can be made to hold gigabytes by one upload.
pub(crate) const MAX_SOURCE_BYTES: u64 = 64 << 20;

/// GETs `bucket/key` in full, if it is at most [`MAX_SOURCE_BYTES`].
pub(crate) async fn get(client: &Client, bucket: &str, key: &str) -> Result<Source, Failure> {
    let out = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(err) => {
            let (status, code) = status_and_code(&err);
            let missing = code.as_deref() == Some("NoSuchKey") || (status == Some(404) && code.as_deref() != Some("NoSuchBucket"));
            if missing {
                return Err(Failure::Skip { reason: "no-such-key", detail: format!("{bucket}/{key} does not exist (any more)") });
            }
            return Err(classify(err));
        }
    };
    let etag = out.e_tag().map(|e| e.trim_matches('"').to_string());
    let too_large = |size: String| Failure::Skip {
        reason: "too-large",
        detail: format!("{bucket}/{key} has {size} bytes, more than the {} MiB a source may have", MAX_SOURCE_BYTES >> 20),
    };
    if let Some(len) = out.content_length().filter(|l| u64::try_from(*l).unwrap_or(0) > MAX_SOURCE_BYTES) {
        return Err(too_large(len.to_string()));
    }
    // The length announced is not trusted either: the read stops one byte past the cap.
    let mut bytes = Vec::new();
    let mut body = tokio::io::AsyncReadExt::take(out.body.into_async_read(), MAX_SOURCE_BYTES + 1);
    let read = tokio::io::AsyncReadExt::read_to_end(&mut body, &mut bytes);
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(Ok(_)) if bytes.len() as u64 > MAX_SOURCE_BYTES => Err(too_large(format!("more than {MAX_SOURCE_BYTES}"))),
        Ok(Ok(_)) => Ok(Source { bytes, etag }),
        Ok(Err(err)) => Err(Failure::Transient(format!("reading body: {err}"))),
        Err(_) => Err(Failure::Transient(format!("reading body: no progress within {BODY_TIMEOUT:?}"))),
    }
}

/// PUTs the thumbnail to `bucket/key` only if nothing is there yet.
pub(crate) async fn put_if_absent(
    client: &Client,
    bucket: &str,
    key: &str,
    thumb: &Thumbnail,
    source_etag: Option<&str>,
) -> Result<PutOutcome, Failure> {
    let mut req = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .if_none_match("*")
        .content_type(thumb.content_type)
        .body(ByteStream::from(thumb.bytes.clone()));
    if let Some(etag) = source_etag.filter(|e| e.bytes().all(|b| b.is_ascii_graphic())) {
        req = req.metadata("source-etag", etag);
    }
    match req.send().await {
        Ok(_) => Ok(PutOutcome::Written),
        Err(err) => {
            let (status, code) = status_and_code(&err);
            if status == Some(412) || code.as_deref() == Some("PreconditionFailed") {
                Ok(PutOutcome::AlreadyExists)
            } else {
                Err(classify(err))
            }
        }
    }
}

fn status_and_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> (Option<u16>, Option<String>) {
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.as_service_error().and_then(|e| e.code()).map(str::to_string);
    (status, code)
}

/// Everything that is not a known per-object outcome is retried: network trouble,
/// timeouts and 5xx obviously, but also 4xx such as AccessDenied or NoSuchBucket,
/// which are set-up problems that stall the pipeline visibly instead of losing events.
/// Only a request that cannot even be built is skipped.
fn classify<E: std::error::Error + 'static>(err: SdkError<E, HttpResponse>) -> Failure {
    match err {
        SdkError::ConstructionFailure(_) => Failure::Skip { reason: "bad-request", detail: DisplayErrorContext(&err).to_string() },
        other => Failure::Transient(DisplayErrorContext(&other).to_string()),
    }
}
