//! The upload plan: which images, under which keys, at what time, from the seed.
//!
//! Open loop: upload `i` is due at `i / rate` after the workload starts, whatever
//! happened to earlier uploads, so a slow pipeline shows up as latency instead of
//! silently lowering the offered load.

use std::time::Duration;

use serde::Serialize;

use crate::rng::Rng;
use crate::scenario::{Format, HostileKind, ImageSize, KeyStyle, Workload};

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
    /// A hostile input (`workload.hostile`) rather than an ordinary image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostile: Option<HostileKind>,
}

/// S3's (and MinIO's) longest object key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// MinIO stores each `/`-separated part of a key as a file name: at most 255 bytes.
const MAX_KEY_PART: usize = 255;
/// The size of the `huge` hostile input.
pub const HUGE: ImageSize = ImageSize { width: 8000, height: 8000 };

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
    let images = (0..w.images)
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
                hostile: None,
            }
        })
        .collect::<Vec<_>>();
    with_hostile(images, w, seed)
}

/// Mixes one upload of each hostile kind into `images`, evenly spread, each due
/// with the image it follows. The ordinary images keep their keys and times.
fn with_hostile(mut images: Vec<PlannedUpload>, w: &Workload, seed: u64) -> Vec<PlannedUpload> {
    let h = w.hostile.len() as u32;
    let mut rng = Rng::fork(seed, "hostile");
    for (j, kind) in w.hostile.iter().enumerate().rev() {
        let after = ((j as u32 + 1) * w.images / (h + 1)).min(w.images.saturating_sub(1)) as usize;
        let due = images.get(after).map_or(Duration::ZERO, |p| p.due);
        let (size, key) = match kind {
            HostileKind::NotAnImage => (w.sizes[0], "hostile/not-an-image.jpg".to_string()),
            HostileKind::Empty => (w.sizes[0], "hostile/empty.jpg".to_string()),
            HostileKind::TruncatedJpeg => (w.sizes[0], "hostile/truncated.jpg".to_string()),
            HostileKind::Huge => (HUGE, format!("hostile/huge-{}x{}.jpg", HUGE.width, HUGE.height)),
            HostileKind::LongKey => (w.sizes[0], long_key("")),
            HostileKind::Oversized => (w.sizes[0], "hostile/oversized.jpg".to_string()),
        };
        let upload = PlannedUpload {
            index: w.images + j as u32,
            key,
            size,
            format: Format::Jpeg,
            pixel_seed: rng.next_u64(),
            due,
            hostile: Some(*kind),
        };
        images.insert((after + 1).min(images.len()), upload);
    }
    images
}

/// A key of exactly [`MAX_KEY_BYTES`] bytes that starts with `prefix`, in parts
/// MinIO can store.
pub fn long_key(prefix: &str) -> String {
    let mut key = format!("{prefix}hostile/long-key/");
    let end = ".jpg";
    while key.len() + end.len() < MAX_KEY_BYTES {
        let room = MAX_KEY_BYTES - key.len() - end.len();
        let part = room.min(MAX_KEY_PART - end.len());
        key.push_str(&"k".repeat(part));
        if key.len() + end.len() < MAX_KEY_BYTES {
            key.pop();
            key.push('/');
        }
    }
    key.push_str(end);
    key
}

/// Puts every key under `prefix` (an external run's own folder); the long key
/// stays at the limit.
pub fn prefix_keys(planned: &mut [PlannedUpload], prefix: &str) {
    for u in planned {
        u.key = if u.hostile == Some(HostileKind::LongKey) { long_key(prefix) } else { format!("{prefix}{}", u.key) };
    }
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
            hostile: Vec::new(),
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

    #[test]
    fn hostile_inputs_are_added_spread_and_leave_the_images_alone() {
        let mut w = workload(20, KeyStyle::Plain);
        let plain = plan(&w, 3);
        w.hostile = HostileKind::ALL.to_vec();
        let mixed = plan(&w, 3);
        assert_eq!(mixed.len(), 26);
        let images: Vec<_> = mixed.iter().filter(|p| p.hostile.is_none()).cloned().collect();
        assert_eq!(images, plain, "the ordinary images are the same with or without hostile inputs");
        let at: Vec<usize> = mixed.iter().enumerate().filter(|(_, p)| p.hostile.is_some()).map(|(i, _)| i).collect();
        // After images 2, 5, 8, 11, 14 and 17 of 20 (i·20/7), counting the ones inserted before.
        assert_eq!(at, vec![3, 7, 11, 15, 19, 23], "spread evenly");
        let long = mixed.iter().find(|p| p.hostile == Some(HostileKind::LongKey)).unwrap();
        assert_eq!(long.key.len(), MAX_KEY_BYTES);
        assert!(long.key.split('/').all(|part| part.len() <= 255), "{}", long.key);
        let mut keys: Vec<&str> = mixed.iter().map(|p| p.key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 26, "keys are unique");
        let mut prefixed = mixed.clone();
        prefix_keys(&mut prefixed, "run-1/");
        assert!(prefixed.iter().all(|p| p.key.starts_with("run-1/")));
        assert_eq!(prefixed.iter().find(|p| p.hostile == Some(HostileKind::LongKey)).unwrap().key.len(), MAX_KEY_BYTES);
    }
}
