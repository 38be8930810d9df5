//! The one way text gets into the HTML report: [`text`] escapes it for element
//! content and attribute values alike.
//!
//! Everything that comes from a scenario, an object key, a log or an error goes
//! through [`text`] (the page builder's `text`/`attr` call it); only the report's own
//! fixed markup is written raw. Chart labels that carry data are reduced to a safe
//! alphabet by [`chart_label`] before plotters (which escapes `<>&"'` itself) sees them.

/// Escapes `s` for HTML element content and double- or single-quoted attribute values.
///
/// Besides `& < > " '`, it neutralises what is not markup but still surprises: C0/C1
/// control characters and noncharacters become U+FFFD (a parse error otherwise, and
/// ANSI escapes from logs would render as garbage); U+2028/U+2029 become numeric
/// references, so the text stays inert even if it ever ended up inside a script.
/// `/` is escaped too, so no `</script` or `</style` sequence survives in any context.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '/' => out.push_str("&#47;"),
            '\u{2028}' => out.push_str("&#x2028;"),
            '\u{2029}' => out.push_str("&#x2029;"),
            '\t' | '\n' => out.push(c),
            '\r' => {}
            c if is_unwanted(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Control characters (other than tab and newline) and Unicode noncharacters.
fn is_unwanted(c: char) -> bool {
    let u = c as u32;
    c.is_control() || (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE
}

/// A label drawn inside a chart: letters, digits and a few punctuation marks kept,
/// anything else replaced by `?`, at most `max` characters. Chart labels are short
/// names (`broker_kill`, `minio->kafka`); this keeps them inert whatever they hold.
pub fn chart_label(s: &str, max: usize) -> String {
    let mut out: String = s.chars().map(|c| if c.is_alphanumeric() || " _-.:#>+()%".contains(c) { c } else { '?' }).take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(text("<img src=x onerror=alert(1)>"), "&lt;img src=x onerror=alert(1)&gt;");
        assert_eq!(text("</script><!--"), "&lt;&#47;script&gt;&lt;!--");
        assert_eq!(text("a\"b'c&d"), "a&quot;b&#39;c&amp;d");
    }

    #[test]
    fn separators_and_controls_are_neutralised() {
        assert_eq!(text("a\u{2028}b\u{2029}c"), "a&#x2028;b&#x2029;c");
        assert_eq!(text("x\u{1b}[31my\u{0}z\r\n"), "x\u{FFFD}[31my\u{FFFD}z\n");
        assert_eq!(text("\u{FFFE}\u{FDD0}日本"), "\u{FFFD}\u{FFFD}日本");
    }

    #[test]
    fn chart_labels_keep_a_safe_alphabet() {
        assert_eq!(chart_label("broker_kill minio->kafka", 40), "broker_kill minio->kafka");
        assert_eq!(chart_label("<script>&", 40), "?script>?");
        assert_eq!(chart_label("abcdef", 3), "abc…");
    }
}
