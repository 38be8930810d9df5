//! Error text for people: the whole cause chain on one line.

/// An S3 SDK error with its causes (the SDK's own Display says only "service error").
pub fn s3<E: std::error::Error>(e: &E) -> String {
    aws_sdk_s3::error::DisplayErrorContext(e).to_string()
}
