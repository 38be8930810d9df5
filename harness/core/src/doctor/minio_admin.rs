//! MinIO's admin API, as `mc admin` speaks it: signed GETs of the server info
//! (each notification target's online/offline state) and of the `notify_kafka`
//! configuration (brokers, topic, queue_dir, SASL, TLS of every Kafka target).
//!
//! The configuration comes back encrypted with the caller's secret key (madmin's
//! `EncryptData`: argon2id → AES-256-GCM or ChaCha20-Poly1305 in sio's stream
//! format); [`decrypt`] undoes that.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::services::endpoints::S3Credentials;
pub use harness_model::minio_admin::{parse_kafka_config, parse_targets, KafkaTarget, TargetState, MAX_ANSWER};

/// Why the admin API gave no answer the doctor can use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The request failed or was refused (rights, network, an HTTP error).
    #[error("{0}")]
    Request(String),
    /// MinIO answered, but its encrypted answer could not be read (FIPS mode's
    /// PBKDF2, another secret key, a damaged answer).
    #[error("{0}")]
    Unreadable(String),
}

pub struct Admin {
    endpoint: String,
    creds: S3Credentials,
    timeout: Duration,
}

impl Admin {
    pub fn new(endpoint: &str, creds: &S3Credentials, timeout: Duration) -> Admin {
        Admin { endpoint: endpoint.trim_end_matches('/').to_string(), creds: creds.clone(), timeout }
    }

    /// Every notification target and whether MinIO can reach it now (for Kafka:
    /// whether its client holds a broker connection).
    pub async fn targets(&self) -> Result<Vec<TargetState>, AdminError> {
        let body = self.get("/minio/admin/v3/info").await.map_err(AdminError::Request)?;
        let info: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| AdminError::Unreadable(format!("the server info is no JSON: {e}")))?;
        Ok(parse_targets(&info))
    }

    /// The Kafka targets of MinIO's configuration.
    pub async fn kafka_targets(&self) -> Result<Vec<KafkaTarget>, AdminError> {
        let body = self.get("/minio/admin/v3/get-config-kv?key=notify_kafka").await.map_err(AdminError::Request)?;
        let plain = decrypt(&self.creds.secret_key, &body).map_err(AdminError::Unreadable)?;
        Ok(parse_kafka_config(&String::from_utf8_lossy(&plain)))
    }

    async fn get(&self, path_and_query: &str) -> Result<Vec<u8>, String> {
        let url = format!("{}{path_and_query}", self.endpoint);
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let host = uri.authority().map(|a| a.to_string()).ok_or_else(|| format!("{url}: no host"))?;
        let identity = Credentials::new(&self.creds.access_key, &self.creds.secret_key, None, None, "harness-doctor").into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new("GET", &url, std::iter::once(("host", host.as_str())), SignableBody::Bytes(&[]))
            .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
        let mut request = http::Request::builder()
            .method("GET")
            .uri(uri)
            .header("host", &host)
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        instructions.apply_to_request_http1x(&mut request);
        let client = Client::builder(TokioExecutor::new()).build_http();
        let exchange = async {
            let response = client.request(request).await.map_err(|e| describe(&e))?;
            let status = response.status();
            // Bounded: a server that streams more than any admin answer holds is not read on.
            let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
                    Ok(_) => {
                        format!("the admin API's answer is over {} MiB, more than any answer of MinIO's: not read on", MAX_ANSWER >> 20)
                    }
                    Err(e) => e.to_string(),
                })?
                .to_bytes()
                .to_vec();
            if !status.is_success() {
                return Err(admin_error(status, &body));
            }
            Ok(body)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("MinIO's admin API gave no answer within {:?}", self.timeout))?
    }
}

/// The error chain of a client error (the useful part is at its end).
fn describe(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// MinIO's admin errors are JSON `{"Code": …, "Message": …}`.
fn admin_error(status: http::StatusCode, body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match (v.get("Code").and_then(|c| c.as_str()), v.get("Message").and_then(|m| m.as_str())) {
        (Some(code), Some(msg)) => format!("HTTP {status}: {code}: {msg}"),
        _ => format!("HTTP {status}: {}", String::from_utf8_lossy(body).chars().take(200).collect::<String>()),
    }
}

/// madmin's `DecryptData`: `salt(32) | algorithm(1) | nonce(8) | sio stream`.
pub fn decrypt(password: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    const FRAGMENT: usize = 1 << 14;
    const TAG: usize = 16;
    if data.len() < 41 + TAG {
        return Err(format!("the encrypted answer is {} bytes, too short", data.len()));
    }
    let (salt, algorithm, nonce) = (&data[..32], data[32], &data[33..41]);
    let mut key = [0u8; 32];
    let params = argon2::Params::new(64 * 1024, 1, 4, Some(32)).map_err(|e| e.to_string())?;
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut key)
        .map_err(|e| e.to_string())?;
    enum Cipher {
        Aes(Box<aes_gcm::Aes256Gcm>),
        ChaCha(Box<chacha20poly1305::ChaCha20Poly1305>),
    }
    let cipher = match algorithm {
        0x00 => Cipher::Aes(Box::new(aes_gcm::Aes256Gcm::new_from_slice(&key).map_err(|e| e.to_string())?)),
        0x01 => Cipher::ChaCha(Box::new(chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key).map_err(|e| e.to_string())?)),
        0x02 => return Err("the answer is encrypted for FIPS mode (PBKDF2), which the doctor does not read".into()),
        other => return Err(format!("unknown encryption algorithm {other:#04x}")),
    };
    let seal_open = |seq: u32, msg: &[u8], aad: &[u8], open: bool| -> Result<Vec<u8>, String> {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(nonce);
        n[8..].copy_from_slice(&seq.to_le_bytes());
        let payload = Payload { msg, aad };
        let r = match (&cipher, open) {
            (Cipher::Aes(c), false) => c.encrypt((&n).into(), payload),
            (Cipher::Aes(c), true) => c.decrypt((&n).into(), payload),
            (Cipher::ChaCha(c), false) => c.encrypt((&n).into(), payload),
            (Cipher::ChaCha(c), true) => c.decrypt((&n).into(), payload),
        };
        r.map_err(|_| "the answer does not decrypt with the secret key (not authentic)".to_string())
    };
    // sio binds every fragment to the tag of an empty message under sequence 0.
    let tag = seal_open(0, &[], &[], false)?;
    let mut aad = vec![0u8; 1 + TAG];
    aad[1..].copy_from_slice(&tag);
    let mut plain = Vec::new();
    let mut rest = &data[41..];
    let mut seq = 1u32;
    loop {
        let last = rest.len() <= FRAGMENT + TAG;
        let take = if last { rest.len() } else { FRAGMENT + TAG };
        aad[0] = if last { 0x80 } else { 0x00 };
        plain.extend(seal_open(seq, &rest[..take], &aad, true)?);
        rest = &rest[take..];
        seq += 1;
        if last {
            return Ok(plain);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_does_not_decrypt() {
        assert!(decrypt("secret", b"short").unwrap_err().contains("too short"));
        let mut data = vec![0u8; 100];
        data[32] = 0x00;
        assert!(decrypt("secret", &data).unwrap_err().contains("not authentic"));
    }
}
