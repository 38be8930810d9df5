//! Run ids and wall-clock timestamps (UTC), without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// `<scenario>-<YYYYMMDD>-<HHMMSS>-<4 hex>`: sorts by time, unique per start.
pub fn run_id(scenario: &str, now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, day, h, mi, s) = civil(d.as_secs());
    let salt = (d.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{scenario}-{y:04}{mo:02}{day:02}-{h:02}{mi:02}{s:02}-{salt:04x}")
}

/// RFC 3339 UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Seconds since the Unix epoch → (year, month, day, hour, minute, second), using
/// Howard Hinnant's days-to-civil algorithm.
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        // python3 -c "import calendar; print(calendar.timegm((2026,11,21,5,30,45)))"
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_239_045)), "2026-11-21T05:30:45Z");
        assert!(run_id("smoke", UNIX_EPOCH + Duration::from_secs(1_795_239_045)).starts_with("smoke-20261121-053045-"));
    }
}
