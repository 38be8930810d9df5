//! Scalar values written as strings in scenario files: rates, durations, image sizes,
//! bounds and image formats. Each parses with an error that says what it expected, so
//! a typo is reported where it was written.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Implements Deserialize (from a string, or a bare number where `$num` allows it),
/// Serialize (as the display string) and JsonSchema (a string with a pattern).
macro_rules! string_scalar {
    ($ty:ty, $name:literal, $pattern:literal, $desc:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($desc)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, n: u64) -> Result<$ty, E> {
                        n.to_string().parse().map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, n: i64) -> Result<$ty, E> {
                        n.to_string().parse().map_err(E::custom)
                    }
                    fn visit_f64<E: de::Error>(self, n: f64) -> Result<$ty, E> {
                        n.to_string().parse().map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern, "description": $desc })
            }
        }
    };
}

/// Events per second, written `50/s` (also `/m`, `/min`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected \"<number>/s\" (e.g. \"50/s\"), got {s:?}");
        let (num, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let n: f64 = num.trim().parse().map_err(|_| bad())?;
        let per_second = match unit.trim() {
            "s" | "sec" => n,
            "m" | "min" => n / 60.0,
            _ => return Err(bad()),
        };
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(format!("rate must be greater than zero, got {s:?}"));
        }
        Ok(Rate { per_second })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/s", self.per_second)
    }
}

string_scalar!(Rate, "Rate", r"^\s*[0-9.]+\s*/\s*(s|sec|m|min)\s*$", "a rate such as \"50/s\"");

/// A duration, written `500ms`, `3s`, `1.5s` or `2m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad = || format!("expected a duration such as \"500ms\", \"3s\" or \"2m\", got {s:?}");
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "ms" => n / 1000.0,
            "s" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        if !secs.is_finite() || !(0.0..=7.0 * 86400.0).contains(&secs) {
            return Err(format!("duration out of range (0 to 7 days), got {s:?}"));
        }
        Ok(Span(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

string_scalar!(Span, "Duration", r"^\s*[0-9.]+\s*(ms|s|m|min|h)\s*$", "a duration such as \"500ms\", \"3s\" or \"2m\"");

/// Formats a duration the way scenario files write them (`250ms`, `3s`, `1.5s`).
/// Precision follows magnitude: `2.5ms`, `304.1ms`, `1.5s`, `12.25s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{}ms", trim_float(ms, 1))
    } else {
        format!("{}s", trim_float(ms / 1000.0, 2))
    }
}

fn trim_float(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// An upper bound on a duration: `3s`, `< 3s` or `<= 3s` (all mean "at most").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound(pub Duration);

impl FromStr for Bound {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let t = t.strip_prefix("<=").or_else(|| t.strip_prefix('<')).unwrap_or(t);
        t.parse::<Span>().map(|d| Bound(d.0)).map_err(|_| format!("expected a bound such as \"3s\" or \"< 500ms\", got {s:?}"))
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "<= {}", format_duration(self.0))
    }
}

string_scalar!(Bound, "Bound", r"^\s*(<=?)?\s*[0-9.]+\s*(ms|s|m|min|h)\s*$", "an upper bound such as \"3s\" or \"< 500ms\"");

/// A bandwidth, written `256KiB/s`, `1MB/s` or `800kbit/s` (`B`, `KB`/`kB`, `KiB`,
/// `MB`, `MiB`, `kbit`, `Mbit`; per second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRate {
    pub bytes_per_second: u64,
}

impl FromStr for ByteRate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected a bandwidth such as \"256KiB/s\", \"1MB/s\" or \"800kbit/s\", got {s:?}");
        let body = s.trim().strip_suffix("/s").ok_or_else(bad)?.trim();
        let split = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (num, unit) = body.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let factor = match unit.trim() {
            "B" => 1.0,
            "KB" | "kB" => 1e3,
            "KiB" => 1024.0,
            "MB" => 1e6,
            "MiB" => 1024.0 * 1024.0,
            "kbit" => 125.0,
            "Mbit" => 125_000.0,
            _ => return Err(bad()),
        };
        let bytes = n * factor;
        if !bytes.is_finite() || !(1024.0..=1e10).contains(&bytes) {
            return Err(format!("bandwidth out of range (1KiB/s to 10GB/s), got {s:?}"));
        }
        Ok(ByteRate { bytes_per_second: bytes as u64 })
    }
}

impl fmt::Display for ByteRate {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let b = self.bytes_per_second;
        if b % (1024 * 1024) == 0 {
            write!(f, "{}MiB/s", b / (1024 * 1024))
        } else if b % 1024 == 0 {
            write!(f, "{}KiB/s", b / 1024)
        } else {
            write!(f, "{b}B/s")
        }
    }
}

string_scalar!(ByteRate, "ByteRate", r"^\s*[0-9.]+\s*(B|KB|kB|KiB|MB|MiB|kbit|Mbit)\s*/s\s*$", "a bandwidth such as \"256KiB/s\"");

/// Image dimensions, written `640x480`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

/// Largest edge the workload generates; bigger images only slow the run down.
pub const MAX_EDGE: u32 = 8192;

impl FromStr for ImageSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected \"<width>x<height>\" (e.g. \"640x480\"), got {s:?}");
        let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let width: u32 = w.trim().parse().map_err(|_| bad())?;
        let height: u32 = h.trim().parse().map_err(|_| bad())?;
        if width == 0 || height == 0 || width > MAX_EDGE || height > MAX_EDGE {
            return Err(format!("each edge must be 1 to {MAX_EDGE} pixels, got {s:?}"));
        }
        Ok(ImageSize { width, height })
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

string_scalar!(ImageSize, "ImageSize", r"^\s*[0-9]+\s*[xX]\s*[0-9]+\s*$", "image dimensions such as \"640x480\"");

/// Image formats the workload can generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_rates() {
        let b = |s: &str| s.parse::<ByteRate>().map(|r| r.bytes_per_second);
        assert_eq!(b("256KiB/s"), Ok(256 * 1024));
        assert_eq!(b(" 1.5 MB/s "), Ok(1_500_000));
        assert_eq!(b("800kbit/s"), Ok(100_000));
        assert_eq!(b("2MiB/s").map(|v| ByteRate { bytes_per_second: v }.to_string()), Ok("2MiB/s".into()));
        for bad in ["256KiB", "fast/s", "10XB/s", "100B/s", "-5KiB/s"] {
            assert!(b(bad).is_err(), "{bad} should be rejected");
        }
        assert!(b("100B/s").unwrap_err().contains("out of range"));
    }

    #[test]
    fn rates() {
        assert_eq!("50/s".parse::<Rate>().unwrap().per_second, 50.0);
        assert_eq!(" 120 / min ".parse::<Rate>().unwrap().per_second, 2.0);
        assert!("fast".parse::<Rate>().unwrap_err().contains("\"fast\""));
        assert!("0/s".parse::<Rate>().is_err());
        assert!("-3/s".parse::<Rate>().is_err());
        assert!("NaN/s".parse::<Rate>().is_err());
    }

    #[test]
    fn spans() {
        assert_eq!("500ms".parse::<Span>().unwrap().0, Duration::from_millis(500));
        assert_eq!("1.5s".parse::<Span>().unwrap().0, Duration::from_millis(1500));
        assert_eq!("2m".parse::<Span>().unwrap().0, Duration::from_secs(120));
        assert!("3".parse::<Span>().is_err());
        assert!("s".parse::<Span>().is_err());
        assert!("1e400s".parse::<Span>().is_err());
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_micros(2500)), "2.5ms");
        assert_eq!(format_duration(Duration::from_micros(304_127)), "304.1ms");
        assert_eq!(format_duration(Duration::from_millis(3000)), "3s");
        assert_eq!(format_duration(Duration::from_millis(12_345)), "12.35s");
    }

    #[test]
    fn bounds() {
        assert_eq!("< 3s".parse::<Bound>().unwrap().0, Duration::from_secs(3));
        assert_eq!("<=250ms".parse::<Bound>().unwrap().0, Duration::from_millis(250));
        assert_eq!("3s".parse::<Bound>().unwrap().0, Duration::from_secs(3));
        assert!("> 3s".parse::<Bound>().is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!("640x480".parse::<ImageSize>().unwrap(), ImageSize { width: 640, height: 480 });
        assert!("640".parse::<ImageSize>().is_err());
        assert!("0x10".parse::<ImageSize>().is_err());
        assert!("99999x10".parse::<ImageSize>().is_err());
    }
}
