//! The S3 client every part of the harness uses to talk to MinIO.

use std::time::Duration;

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};

use crate::services::endpoints::S3Credentials;

/// An S3 client for a MinIO at `endpoint` (`http://host:port`): path-style
/// addressing, static credentials, the SDK's latest behavior defaults.
///
/// A short connect timeout: MinIO is local, and a refused or hanging connect
/// should surface quickly instead of stalling a probe or an upload.
pub fn s3_client(endpoint: &str, creds: &S3Credentials) -> aws_sdk_s3::Client {
    let credentials = Credentials::new(creds.access_key.clone(), creds.secret_key.clone(), None, None, "harness");
    let timeouts = TimeoutConfig::builder().connect_timeout(Duration::from_secs(3)).build();
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(Region::new(creds.region.clone()))
        .credentials_provider(credentials)
        .force_path_style(true)
        .timeout_config(timeouts)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The message of an SDK error, with the service's error code when there is
/// one ("NoSuchBucket: The specified bucket does not exist"). The SDK's
/// `Display` is only "service error"; this is what error messages should show.
pub fn describe_sdk_error<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let meta = e.err();
            match (meta.code(), meta.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => format!("{meta}"),
            }
        }
        other => {
            // The source chain holds the useful part ("connection refused").
            let mut msg = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            msg
        }
    }
}

/// Removes every version under `prefix` in `bucket` (delete markers included), at most
/// `limit` of them, within `within`: for objects the harness put into a bucket it does
/// not own. Returns how many were removed; an error says what was left and why.
pub async fn remove_prefix(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    limit: usize,
    within: Duration,
) -> Result<usize, String> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let work = async {
        let mut removed = 0usize;
        loop {
            // Always the first page: what was deleted is no longer listed.
            let page = client
                .list_object_versions()
                .bucket(bucket)
                .prefix(prefix)
                .max_keys(1000)
                .send()
                .await
                .map_err(|e| format!("listing {bucket}/{prefix}*: {}", describe_sdk_error(&e)))?;
            let ids: Vec<ObjectIdentifier> = page
                .versions()
                .iter()
                .filter_map(|v| Some((v.key()?, v.version_id())))
                .chain(page.delete_markers().iter().filter_map(|m| Some((m.key()?, m.version_id()))))
                .filter(|(k, _)| k.starts_with(prefix))
                .filter_map(|(k, v)| ObjectIdentifier::builder().key(k).set_version_id(v.map(str::to_string)).build().ok())
                .collect();
            if ids.is_empty() {
                return Ok(removed);
            }
            if removed + ids.len() > limit {
                return Err(format!("more than {limit} objects under {bucket}/{prefix}: {removed} removed, the rest left"));
            }
            let n = ids.len();
            let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build().map_err(|e| e.to_string())?;
            let answer = client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| format!("deleting under {bucket}/{prefix}: {}", describe_sdk_error(&e)))?;
            if let Some(e) = answer.errors().first() {
                return Err(format!("deleting {bucket}/{}: {}", e.key().unwrap_or("?"), e.message().unwrap_or("refused")));
            }
            removed += n;
        }
    };
    tokio::time::timeout(within, work).await.unwrap_or_else(|_| Err(format!("removing {bucket}/{prefix}* took longer than {within:?}")))
}
