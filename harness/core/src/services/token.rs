//! Random tokens from the OS: run credentials, nonces and Kafka cluster ids.
//!
//! These are not scenario randomness (that comes from the scenario's seed): they
//! only have to be unpredictable and unique per run.

use std::io::Read;

/// `n` random bytes from the kernel.
pub(crate) fn random_bytes(n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// A lowercase hex token of `n_bytes` random bytes (`2 * n_bytes` characters).
pub(crate) fn hex_token(n_bytes: usize) -> std::io::Result<String> {
    Ok(random_bytes(n_bytes)?.iter().map(|b| format!("{b:02x}")).collect())
}

/// A Kafka cluster id: 16 random bytes in unpadded URL-safe base64 (22
/// characters), which is what `kafka-storage random-uuid` prints.
pub(crate) fn kafka_cluster_id() -> std::io::Result<String> {
    loop {
        let id = base64_url(&random_bytes(16)?);
        // Kafka's own generator rejects ids starting with '-' (they read as flags).
        if !id.starts_with('-') {
            return Ok(id);
        }
    }
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_url_matches_known_vectors() {
        assert_eq!(base64_url(b""), "");
        assert_eq!(base64_url(b"f"), "Zg");
        assert_eq!(base64_url(b"fo"), "Zm8");
        assert_eq!(base64_url(b"foo"), "Zm9v");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn cluster_id_is_22_url_safe_chars() {
        let id = kafka_cluster_id().unwrap();
        assert_eq!(id.len(), 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn hex_tokens_differ() {
        let a = hex_token(16).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, hex_token(16).unwrap());
    }
}
