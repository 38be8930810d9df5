//! Secrets the harness hands out (the run's S3 secret key) never reach a log or a
//! report: every log a run keeps is written through a [`Redactor`], as CI systems
//! mask secrets. A processor that prints its environment (students' scripts often
//! do) then logs `AWS_SECRET_ACCESS_KEY=***`.

use std::borrow::Cow;
use std::sync::Arc;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not masked: masking a 2-character "secret" would
/// scramble every log, and the harness never hands out one that short.
const MIN_SECRET_LEN: usize = 8;

/// The secrets of one run. Cheap to clone. Its `Debug` shows how many, never which.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor {{ {} secret(s) }}", self.secrets.len())
    }
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<Vec<u8>> = secrets.into_iter().filter(|s| s.len() >= MIN_SECRET_LEN).map(String::into_bytes).collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets: Arc::new(secrets) }
    }

    /// These secrets and `secret`.
    pub fn with(&self, secret: String) -> Self {
        let known = self.secrets.iter().map(|s| String::from_utf8_lossy(s).into_owned());
        Redactor::new(known.chain(std::iter::once(secret)))
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `bytes` with every secret replaced by [`MASK`].
    pub fn redact<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out: Cow<[u8]> = Cow::Borrowed(bytes);
        for secret in self.secrets.iter() {
            if find(&out, secret).is_some() {
                out = Cow::Owned(replace_all(&out, secret, MASK.as_bytes()));
            }
        }
        out
    }

    pub fn redact_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Replacing whole UTF-8 strings with ASCII keeps valid UTF-8 valid.
            Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    /// How many bytes at the end of `bytes` could be the start of a secret that the
    /// next chunk completes: a stream holds back only those.
    fn pending_prefix(&self, bytes: &[u8]) -> usize {
        let mut keep = 0;
        for secret in self.secrets.iter() {
            let longest = (secret.len() - 1).min(bytes.len());
            for n in (keep + 1..=longest).rev() {
                if bytes[bytes.len() - n..] == secret[..n] {
                    keep = n;
                    break;
                }
            }
        }
        keep
    }
}

/// Masks a byte stream that arrives in chunks (a child's output): a secret split
/// across two chunks is still masked, and nothing is held back unless it could be
/// the start of a secret, so log lines appear as soon as they are written.
#[derive(Debug)]
pub struct RedactingStream {
    redactor: Redactor,
    held: Vec<u8>,
}

impl RedactingStream {
    pub fn new(redactor: Redactor) -> Self {
        RedactingStream { redactor, held: Vec::new() }
    }

    /// The bytes of `chunk` (and of earlier held bytes) that can be written now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.held.extend_from_slice(chunk);
        let mut out = self.redactor.redact(&self.held).into_owned();
        let keep = self.redactor.pending_prefix(&out);
        self.held = out.split_off(out.len() - keep);
        out
    }

    /// Whatever is still held, at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = find(rest, needle) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(with);
        rest = &rest[i + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "0123456789abcdef0123";

    #[test]
    fn secrets_are_masked_and_short_ones_ignored() {
        let r = Redactor::new([SECRET.to_string(), "ab".to_string()]);
        assert_eq!(r.redact_str(&format!("AWS_SECRET_ACCESS_KEY={SECRET}\nx={SECRET}{SECRET}")), "AWS_SECRET_ACCESS_KEY=***\nx=******");
        assert!(matches!(r.redact_str("ab cd"), Cow::Borrowed("ab cd")));
        assert!(Redactor::new([String::new()]).is_empty());
        let more = r.with("a-sasl-password".to_string());
        assert_eq!(more.redact_str(&format!("{SECRET} a-sasl-password")), "*** ***");
        assert_eq!(r.redact_str("a-sasl-password"), "a-sasl-password", "the first redactor is unchanged");
        assert_eq!(format!("{more:?}"), "Redactor { 2 secret(s) }", "Debug names no secret");
    }

    #[test]
    fn a_stream_holds_back_only_a_possible_start_of_a_secret() {
        let mut s = RedactingStream::new(Redactor::new([SECRET.to_string()]));
        assert_eq!(s.push(b"ready\n"), b"ready\n", "plain text is written at once");
        assert_eq!(s.push(b"key=0123"), b"key=", "a possible start is held");
        assert_eq!(s.push(b"456789abcdef0123 done"), b"*** done");
        assert_eq!(s.push(b"01234"), b"");
        assert_eq!(s.push(b"x"), b"01234x", "not a secret after all");
        assert_eq!(s.push(b"0"), b"");
        assert_eq!(s.finish(), b"0");
    }

    proptest! {
        /// However the output is cut into chunks, the stream writes what redacting
        /// the whole output at once writes, and never the secret.
        #[test]
        fn chunking_never_leaks(
            parts in prop::collection::vec(prop_oneof![Just(SECRET.as_bytes().to_vec()), Just(b"0123".to_vec()), prop::collection::vec(any::<u8>(), 0..12)], 0..12),
            cuts in prop::collection::vec(0usize..64, 0..8),
        ) {
            let whole: Vec<u8> = parts.concat();
            let r = Redactor::new([SECRET.to_string()]);
            let mut s = RedactingStream::new(r.clone());
            let mut written = Vec::new();
            let mut at = 0;
            for c in cuts {
                let end = (at + c).min(whole.len());
                written.extend(s.push(&whole[at..end]));
                at = end;
            }
            written.extend(s.push(&whole[at..]));
            written.extend(s.finish());
            prop_assert_eq!(&written, &r.redact(&whole).into_owned());
            prop_assert!(find(&written, SECRET.as_bytes()).is_none());
        }
    }
}
