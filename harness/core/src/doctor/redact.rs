//! What the doctor quotes comes from setups nobody here wrote: a crashing pod's
//! termination message (the tail of its log, with `FallbackToLogsOnError`), an API's
//! error text, a pod's own answer. A student's script that prints its environment puts
//! MinIO's password there, and the doctor's answer goes into reports a whole class or a
//! CI's artifacts show. So before the answer leaves the doctor, every credential it
//! knows (the MinIO secret keys it was given or found) is replaced in every finding,
//! and in what it quotes, the value of any `NAME=value` whose name says it is a
//! password, secret or token.
//!
//! Access keys are left as they are: they are identifiers (AWS calls them "key IDs"),
//! often plain words (`minio`, `admin`) that replacing everywhere would garble.

use super::Finding;

/// What a redacted value reads as.
pub const REDACTED: &str = "<redacted>";

/// Shorter known values are not replaced (they would garble ordinary words); MinIO
/// itself refuses a root password under 8 characters.
const MIN_KNOWN: usize = 4;

/// Replaces the known secrets in every text of every finding, and masks
/// `NAME=value` secrets in the evidence (the quoted part; cause and fix are the
/// doctor's own words, whose placeholders such as `sasl_password=PASSWORD` stay).
pub fn findings(findings: &mut [Finding], known: &[&str]) {
    let mut known: Vec<&str> = known.iter().copied().filter(|k| k.chars().count() >= MIN_KNOWN).collect();
    // The longest first: a secret that contains another is replaced whole.
    known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    known.dedup();
    for f in findings {
        f.check = known_values(&f.check, &known);
        f.evidence = named_values(&known_values(&f.evidence, &known));
        for text in [&mut f.cause, &mut f.fix].into_iter().flatten() {
            *text = known_values(text, &known);
        }
    }
}

/// `text` with every occurrence of a known secret replaced.
pub fn known_values(text: &str, known: &[&str]) -> String {
    let mut out = text.to_string();
    for k in known {
        if out.contains(k) {
            out = out.replace(k, REDACTED);
        }
    }
    out
}

/// Whether a variable or key name says its value is a secret.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL"].iter().any(|w| upper.contains(w))
}

/// `text` with the value of every `NAME=value` whose name says secret masked (up to
/// the next space, quote, comma, semicolon, `&` or line end; a quoted value to its
/// closing quote), as in `env` dumps,
/// config lines and URLs' query strings.
pub fn named_values(text: &str) -> String {
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let ends_value = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '&' | ')' | ']' | '}');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        let after = &after[1..];
        let name_start = before.char_indices().rev().take_while(|(_, c)| name_char(*c)).last().map(|(i, _)| i).unwrap_or(before.len());
        let name = &before[name_start..];
        out.push_str(before);
        out.push('=');
        if !name.is_empty() && is_secret_name(name) {
            // A quoted value up to its closing quote (or the end), quotes kept.
            let quote = after.chars().next().filter(|c| matches!(c, '"' | '\''));
            let (open, value_len) = match quote {
                Some(q) => (1, after[1..].find(q).unwrap_or(after.len() - 1)),
                None => (0, after.find(ends_value).unwrap_or(after.len())),
            };
            out.push_str(&after[..open]);
            if value_len > 0 {
                out.push_str(REDACTED);
            }
            rest = &after[open + value_len..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Link;

    #[test]
    fn known_secrets_are_replaced_everywhere_and_short_ones_are_left() {
        let mut f =
            vec![Finding::error(Link::Workloads, "pod processor-1 runs", "Error: last exit code 1: login s3cr3t-pw failed for minio")
                .because("s3cr3t-pw was refused")
                .fix("rotate s3cr3t-pw")];
        findings(&mut f, &["s3cr3t-pw", "abc", ""]);
        assert_eq!(f[0].evidence, "Error: last exit code 1: login <redacted> failed for minio");
        assert_eq!(f[0].cause.as_deref(), Some("<redacted> was refused"));
        assert_eq!(f[0].fix.as_deref(), Some("rotate <redacted>"));
        // A secret that contains another is replaced whole, whatever order they come in.
        let mut g = vec![Finding::ok(Link::S3, "login", "secret secret-2")];
        findings(&mut g, &["secret", "secret-2"]);
        assert_eq!(g[0].evidence, "<redacted> <redacted>");
        let mut g = vec![Finding::ok(Link::S3, "login", "secret-2")];
        findings(&mut g, &["secret", "secret-2"]);
        assert_eq!(g[0].evidence, "<redacted>", "not <redacted>-2");
    }

    #[test]
    fn secret_looking_assignments_are_masked_in_what_is_quoted_only() {
        let dump = "AWS_ACCESS_KEY_ID=student AWS_SECRET_ACCESS_KEY=abc/def+g== KAFKA_TOPIC=events \
                    sasl_password='x y' url=http://h/?token=t0k&x=1 MINIO_ROOT_PASSWORD= end=";
        assert_eq!(
            named_values(dump),
            "AWS_ACCESS_KEY_ID=student AWS_SECRET_ACCESS_KEY=<redacted> KAFKA_TOPIC=events \
             sasl_password='<redacted>' url=http://h/?token=<redacted>&x=1 MINIO_ROOT_PASSWORD= end="
        );
        let mut f =
            vec![Finding::error(Link::MinioKafkaTarget, "SASL", "db_password=hunter22 in the log").fix("set sasl_password=PASSWORD")];
        findings(&mut f, &[]);
        assert_eq!(f[0].evidence, "db_password=<redacted> in the log");
        assert_eq!(f[0].fix.as_deref(), Some("set sasl_password=PASSWORD"), "the doctor's own placeholders stay");
        // Non-ASCII around the sign is not split mid-character.
        assert_eq!(named_values("é=ü TOKEN=ß"), "é=ü TOKEN=<redacted>");
        assert_eq!(named_values("SECRET=\"unclosed"), "SECRET=\"<redacted>");
    }
}
