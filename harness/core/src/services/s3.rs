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
