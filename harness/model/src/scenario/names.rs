//! Names with rules of their own (buckets, topics, scenario names) and positive counts,
//! validated while the file is read so errors carry the line and key path.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An S3 bucket name (3-63 characters: lowercase letters, digits, `-` and `.`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BucketName(pub String);

impl FromStr for BucketName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let ok_ends =
            s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()) && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        if (3..=63).contains(&s.len()) && ok_chars && ok_ends && !s.contains("..") {
            Ok(BucketName(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not a valid bucket name (3-63 characters: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
            ))
        }
    }
}

/// A Kafka topic name (1-249 characters of `a-zA-Z0-9._-`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicName(pub String);

impl FromStr for TopicName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok =
            (1..=249).contains(&s.len()) && s != "." && s != ".." && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok && !s.starts_with("__") {
            Ok(TopicName(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not a usable topic name (1-249 characters of letters, digits, '.', '_' and '-', not starting with \"__\")"
            ))
        }
    }
}

/// A scenario name: used in file names, JUnit and report titles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioName(pub String);

impl FromStr for ScenarioName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok = (1..=100).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(ScenarioName(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not a valid scenario name (1-100 characters of letters, digits, '.', '_' and '-', starting with a letter or digit)"
            ))
        }
    }
}

macro_rules! string_name {
    ($ty:ty, $name:literal, $pattern:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(de::Error::custom)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern })
            }
        }
    };
}

string_name!(BucketName, "BucketName", r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$");
string_name!(TopicName, "TopicName", r"^[a-zA-Z0-9._-]{1,249}$");
string_name!(ScenarioName, "ScenarioName", r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,99}$");

/// A whole number from 1 to `u32::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number greater than zero")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Count, E> {
                match u32::try_from(n) {
                    Ok(0) => Err(E::custom("must be greater than zero, got 0")),
                    Ok(n) => Ok(Count(n)),
                    Err(_) => Err(E::custom(format!("must be at most {}, got {n}", u32::MAX))),
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Count, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("must be greater than zero, got {n}"))),
                }
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Count, E> {
                Err(E::custom(format!("expected a whole number greater than zero, got {n}")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Count, E> {
                Err(E::custom(format!("expected a whole number greater than zero, got {s:?}")))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Count, E> {
                Err(E::custom(format!("expected a whole number greater than zero, got {b}")))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Count {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Count")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": u32::MAX })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert!("images".parse::<BucketName>().is_ok());
        assert!("my.bucket-1".parse::<BucketName>().is_ok());
        for bad in ["Images", "ab", "-abc", "abc-", "a..b", "a_b", ""] {
            assert!(bad.parse::<BucketName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn topics() {
        assert!("minio-events".parse::<TopicName>().is_ok());
        for bad in ["", ".", "a b", "__consumer_offsets", "ü"] {
            assert!(bad.parse::<TopicName>().is_err(), "{bad}");
        }
    }
}
