//! The upload plan: which images, under which keys, at what time, from the seed.
//!
//! Open loop: upload `i` is due at `i / rate` after the workload starts, whatever
//! happened to earlier uploads, so a slow pipeline shows up as latency instead of
//! silently lowering the offered load.

use std::time::Duration;

use serde::Serialize;

use crate::rng::Rng;
use crate::scenario::{Format, ImageSize, KeyStyle, Workload};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedUpload {
    pub index: u32,
    pub key: String,
    pub size: ImageSize,
    pub format: Format,
    /// Seed for this image's pixels.
    pub pixel_seed: u64,
    /// When it is due, from the workload's start.
    pub due: Duration,
}

/// Key shapes real processors get wrong: nested prefixes, spaces (MinIO sends `+`),
/// a literal `+`, `%`, `&` and `=`, and non-ASCII text.
const TRICKY: [&str; 6] = [
    "plain/img-{i}",
    "nested/a/b/c/img {i}",
    "unicode/Müller-{i}-日本",
    "symbols/x+y=z&{i}",
    "percent/100% done {i}",
    "spaces/two  spaces {i}",
];

pub fn plan(w: &Workload, seed: u64) -> Vec<PlannedUpload> {
    let mut rng = Rng::fork(seed, "workload");
    (0..w.images)
        .map(|i| {
            let size = w.sizes[rng.below(w.sizes.len() as u64) as usize];
            let format = w.formats[rng.below(w.formats.len() as u64) as usize];
            let n = format!("{i:05}");
            let stem = match w.keys {
                KeyStyle::Plain => format!("img-{n}"),
                KeyStyle::Tricky => TRICKY[i as usize % TRICKY.len()].replace("{i}", &n),
            };
            PlannedUpload {
                index: i,
                key: format!("{stem}.{}", format.extension()),
                size,
                format,
                pixel_seed: rng.next_u64(),
                due: Duration::from_secs_f64(f64::from(i) / w.rate.per_second),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Rate;

    fn workload(images: u32, keys: KeyStyle) -> Workload {
        Workload {
            images,
            rate: Rate { per_second: 10.0 },
            concurrency: 4,
            sizes: vec![ImageSize { width: 64, height: 48 }, ImageSize { width: 32, height: 32 }],
            formats: vec![Format::Jpeg, Format::Png],
            keys,
        }
    }

    #[test]
    fn same_seed_same_plan_and_keys_are_unique() {
        let w = workload(50, KeyStyle::Tricky);
        assert_eq!(plan(&w, 9), plan(&w, 9));
        assert_ne!(plan(&w, 9), plan(&w, 10));
        let p = plan(&w, 9);
        let mut keys: Vec<&str> = p.iter().map(|u| u.key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 50);
        assert!(p.iter().any(|u| u.key.contains(' ')) && p.iter().any(|u| u.key.contains('+')));
        assert!(p.iter().any(|u| !u.key.is_ascii()));
    }

    #[test]
    fn open_loop_schedule() {
        let p = plan(&workload(11, KeyStyle::Plain), 1);
        assert_eq!(p[0].due, Duration::ZERO);
        assert_eq!(p[10].due, Duration::from_secs(1));
        assert_eq!(p[3].key, format!("img-00003.{}", p[3].format.extension()));
    }
}
