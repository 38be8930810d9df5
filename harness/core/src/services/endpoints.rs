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

/// The credentials of a Kafka listener that needs SASL (over PLAINTEXT): the node
/// port of a kubernetes run. `Debug` shows the user, never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaSasl {
    /// `PLAIN` (the harness's own Kafka), `SCRAM-SHA-512` (Strimzi's).
    pub mechanism: String,
    pub user: String,
    pub password: String,
}

impl KafkaSasl {
    pub fn plain(user: &str, password: String) -> KafkaSasl {
        KafkaSasl { mechanism: "PLAIN".into(), user: user.into(), password }
    }
}

impl std::fmt::Debug for KafkaSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSasl").field("mechanism", &self.mechanism).field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

/// Where the services of a running environment are reached.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// `host:port[,host:port]`.
    pub kafka_bootstrap: String,
    /// What `kafka_bootstrap`'s listener requires: `None`, PLAINTEXT.
    pub kafka_sasl: Option<KafkaSasl>,
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
            kafka_sasl: Some(KafkaSasl::plain("harness", "sasl-pa55word".into())),
            s3_endpoint: "http://127.0.0.1:2".into(),
            credentials: creds,
            events_topic: "e".into(),
            outputs_topic: "o".into(),
            source_bucket: "s".into(),
            target_bucket: "t".into(),
        };
        let shown = format!("{endpoints:?}");
        assert!(!shown.contains("s3cr3t-value") && !shown.contains("sasl-pa55word"), "{shown}");
    }
}
