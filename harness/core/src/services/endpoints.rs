//! Where a running environment's services are reached, and with which credentials:
//! what every client of the harness (and the processor's contract) needs.

/// S3 credentials of a run. They are generated per run and must never reach a
/// log, an error or a report: `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("region", &self.region)
            .finish()
    }
}

/// Where the services of a running environment are reached.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// `host:port[,host:port]`.
    pub kafka_bootstrap: String,
    /// `http://host:port`.
    pub s3_endpoint: String,
    pub credentials: S3Credentials,
    pub events_topic: String,
    pub outputs_topic: String,
    pub source_bucket: String,
    pub target_bucket: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_redacts_the_secret() {
        let creds = S3Credentials { access_key: "harness-abc".into(), secret_key: "s3cr3t-value".into(), region: "us-east-1".into() };
        let shown = format!("{creds:?}");
        assert!(shown.contains("harness-abc"));
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        let endpoints = Endpoints {
            kafka_bootstrap: "127.0.0.1:1".into(),
            s3_endpoint: "http://127.0.0.1:2".into(),
            credentials: creds,
            events_topic: "e".into(),
            outputs_topic: "o".into(),
            source_bucket: "s".into(),
            target_bucket: "t".into(),
        };
        assert!(!format!("{endpoints:?}").contains("s3cr3t-value"));
    }
}
