//! Untrusted text made safe for a terminal. Evidence quoted from a student's cluster,
//! a broker's answer or a manifest may hold escape sequences (colours, cursor moves,
//! a title change, a cleared screen), carriage returns that overwrite a line, or
//! bidirectional overrides that show text in another order than it is read: each
//! is shown as its escape (`\u{1b}`, `\r`, `\u{202e}`), so what is printed is what
//! was there.

use std::borrow::Cow;

/// `s` with every control character (newlines included: one finding is one line) and
/// every bidirectional formatting character written as its Rust escape.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        assert!(matches!(printable("kafka-0.kafka:9092 → ok, ü"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_carriage_returns_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(printable("\x1b[2J\x1b]0;owned\x07x"), "\\u{1b}[2J\\u{1b}]0;owned\\u{7}x");
        assert_eq!(printable("ok\rFAIL\nnext"), "ok\\rFAIL\\nnext");
        assert_eq!(printable("a\u{202e}cba"), "a\\u{202e}cba");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m", "a C1 control sequence introducer");
    }
}
