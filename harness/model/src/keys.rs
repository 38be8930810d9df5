//! Object keys as MinIO writes them into event records.
//!
//! MinIO URL-encodes keys in its notifications in the `application/x-www-form-urlencoded`
//! style: a space arrives as `+`, a literal `+` as `%2B`. Processors that forget the
//! `+` rule lose every key with a space in it, which is why the workload uses such keys.

use percent_encoding::percent_decode_str;

/// Decodes a key from a MinIO event record (`+` is a space, then percent-decoding).
/// Invalid UTF-8 after decoding is replaced rather than rejected: the key is then
/// reported as-is and simply will not match an upload.
pub fn decode_event_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_encoding() {
        assert_eq!(decode_event_key("a%2Fb+c.jpg"), "a/b c.jpg");
        assert_eq!(decode_event_key("x%2By.png"), "x+y.png");
        assert_eq!(decode_event_key("M%C3%BCller+%E6%97%A5.jpg"), "Müller 日.jpg");
        assert_eq!(decode_event_key("100%25+done.jpg"), "100% done.jpg");
        assert_eq!(decode_event_key("nested/a/b.png"), "nested/a/b.png");
    }
}
