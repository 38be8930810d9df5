//! The final word on outputs: every version in the (versioned) target bucket, each
//! read back and decoded. A run lists only what can be its own: the whole bucket
//! in the harness's own environments (made for the run), the run's prefixes in an
//! external pipeline's (whose owner may keep any number of objects there); and no
//! listing reads more than [`MAX_LIST_PAGES`] pages.

use std::collections::{HashMap, HashSet};

use aws_sdk_s3::Client;
use futures::StreamExt;
use harness_model::history::{Inspection, OutputVersion};

use super::{ObserveError, OutputSeen};

/// Versions read back at once.
const INSPECT_CONCURRENCY: usize = 8;

/// How often [`poll_outputs`] lists the target bucket.
pub const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// One object version as a listing shows it.
struct Listed {
    stamp: Stamp,
    bytes: u64,
}

/// What tells object versions apart, also in a bucket without versioning (where every
/// version id is `null` and an overwrite differs only in its modification time).
pub type Stamp = (String, String, String);

/// The most pages (of up to 1,000 versions) one listing of one prefix reads: more
/// is an error naming the bucket, the prefix and the bound, not a listing without end.
pub const MAX_LIST_PAGES: usize = 100;

/// Every version in `bucket` under each of `prefixes` (`""`: the whole bucket).
async fn all_versions(client: &Client, bucket: &str, prefixes: &[String]) -> Result<Vec<Listed>, String> {
    let mut versions: Vec<Listed> = Vec::new();
    for prefix in prefixes {
        versions_under(client, bucket, prefix, MAX_LIST_PAGES, &mut versions).await?;
    }
    Ok(versions)
}

async fn versions_under(client: &Client, bucket: &str, prefix: &str, max_pages: usize, versions: &mut Vec<Listed>) -> Result<(), String> {
    let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
    for _ in 0..max_pages {
        let page = client
            .list_object_versions()
            .bucket(bucket)
            .set_prefix((!prefix.is_empty()).then(|| prefix.to_string()))
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .map_err(|e| crate::services::s3::describe_sdk_error(&e))?;
        for v in page.versions() {
            if let (Some(k), Some(id)) = (v.key(), v.version_id()) {
                let modified = v.last_modified().map(|t| t.to_string()).unwrap_or_default();
                versions.push(Listed { stamp: (k.to_string(), id.to_string(), modified), bytes: v.size().unwrap_or(0).max(0) as u64 });
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(());
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() && version_marker.is_none() {
            return Ok(());
        }
    }
    let under = if prefix.is_empty() { String::new() } else { format!(" under {prefix:?}") };
    Err(format!("more than {max_pages} pages of object versions{under}: the listing stopped there"))
}

/// Every version in `bucket` under `prefixes` now: what was there before a run,
/// which the run's judgement must leave out (an external pipeline's bucket is not
/// empty).
pub async fn versions_now(client: &Client, bucket: &str, prefixes: &[String]) -> Result<HashSet<Stamp>, String> {
    Ok(all_versions(client, bucket, prefixes).await?.into_iter().map(|l| l.stamp).collect())
}

/// Outputs of a pipeline whose MinIO announces nothing to the harness (an external
/// one): lists `bucket` under `prefixes` (the run's) every [`POLL_EVERY`] and
/// records each version not in `known`
/// (the versions there before the run), seen at the poll that found it (so a latency
/// is late by up to one poll). Runs until aborted. `known` is the caller's, taken
/// before anything of the run was written: a baseline listed here, concurrently with
/// the run's first writes, could take the harness's probe for the pipeline's past.
pub(super) async fn poll_outputs(
    client: Client,
    bucket: String,
    prefixes: Vec<String>,
    observed: std::sync::Arc<super::Observed>,
    clock: crate::clock::Clock,
    mut known: HashSet<Stamp>,
) {
    let mut every = tokio::time::interval(POLL_EVERY);
    loop {
        every.tick().await;
        let Ok(now) = versions_now(&client, &bucket, &prefixes).await else { continue };
        let at = clock.now();
        let fresh: Vec<Stamp> = now.difference(&known).cloned().collect();
        if fresh.is_empty() {
            continue;
        }
        if let Ok(mut outputs) = observed.outputs.lock() {
            outputs.extend(fresh.iter().map(|(key, version_id, _)| OutputSeen { key: key.clone(), version_id: version_id.clone(), at }));
        }
        known.extend(fresh);
        observed.changed.notify_waiters();
    }
}

/// Lists every object version of `bucket` under `prefixes` but those in `before`
/// and inspects each; `seen` supplies the time each version was first announced.
pub async fn list_outputs(
    client: &Client,
    bucket: &str,
    prefixes: &[String],
    seen: &[OutputSeen],
    before: &HashSet<Stamp>,
) -> Result<Vec<OutputVersion>, ObserveError> {
    let versions: Vec<(String, String, u64)> = all_versions(client, bucket, prefixes)
        .await
        .map_err(|detail| ObserveError::Listing { bucket: bucket.to_string(), detail })?
        .into_iter()
        .filter(|l| !before.contains(&l.stamp))
        .map(|l| (l.stamp.0, l.stamp.1, l.bytes))
        .collect();

    let first_seen: HashMap<(&str, &str), u64> = seen.iter().fold(HashMap::new(), |mut m, o| {
        let t = m.entry((o.key.as_str(), o.version_id.as_str())).or_insert(o.at);
        *t = (*t).min(o.at);
        m
    });
    let inspected: Vec<OutputVersion> = futures::stream::iter(versions)
        .map(|(key, version_id, bytes)| async move {
            let inspection = inspect(client, bucket, &key, &version_id).await;
            OutputVersion { key, version_id, bytes, seen_at: None, inspection }
        })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .collect()
        .await;
    let mut out: Vec<OutputVersion> = inspected
        .into_iter()
        .map(|mut o| {
            o.seen_at = first_seen.get(&(o.key.as_str(), o.version_id.as_str())).copied();
            o
        })
        .collect();
    out.sort_by(|a, b| (&a.key, a.seen_at).cmp(&(&b.key, b.seen_at)));
    Ok(out)
}

/// The most of an output read: a thumbnail is kilobytes; a processor that writes
/// something larger is judged on what it wrote without the harness reading it all.
const MAX_OUTPUT_BYTES: u64 = 32 << 20;
/// The largest image decoded (pixels per side) and the most memory decoding may take:
/// an output's header may claim any size.
const MAX_OUTPUT_SIDE: u32 = 16_384;
const MAX_DECODE_ALLOC: u64 = 256 << 20;

async fn inspect(client: &Client, bucket: &str, key: &str, version_id: &str) -> Inspection {
    // A range, so that even a server that misstates the length sends no more.
    let got =
        client.get_object().bucket(bucket).key(key).version_id(version_id).range(format!("bytes=0-{}", MAX_OUTPUT_BYTES)).send().await;
    let body = match got {
        Ok(o) => {
            let whole = o.content_range().and_then(|r| r.rsplit('/').next()).and_then(|n| n.parse::<u64>().ok());
            if let Some(len) = whole.filter(|&n| n > MAX_OUTPUT_BYTES) {
                return Inspection::NotAnImage {
                    reason: format!("{len} bytes, more than the {MAX_OUTPUT_BYTES} a thumbnail is read up to"),
                };
            }
            o.body.collect().await.map(|b| b.into_bytes())
        }
        Err(e) => return Inspection::Unreadable { reason: crate::services::s3::describe_sdk_error(&e) },
    };
    let bytes = match body {
        Ok(b) => b,
        Err(e) => return Inspection::Unreadable { reason: e.to_string() },
    };
    if bytes.len() as u64 > MAX_OUTPUT_BYTES {
        return Inspection::NotAnImage { reason: format!("more than the {MAX_OUTPUT_BYTES} bytes a thumbnail is read up to") };
    }
    decode(&bytes)
}

/// What an output's bytes are, decoded within [`MAX_OUTPUT_SIDE`] and [`MAX_DECODE_ALLOC`].
fn decode(bytes: &[u8]) -> Inspection {
    let format = image::guess_format(bytes).map(|f| format!("{f:?}").to_lowercase());
    let mut reader = match image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format() {
        Ok(r) => r,
        Err(e) => return Inspection::NotAnImage { reason: e.to_string() },
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_OUTPUT_SIDE);
    limits.max_image_height = Some(MAX_OUTPUT_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    match reader.decode() {
        Ok(img) => Inspection::Image { width: img.width(), height: img.height(), format: format.unwrap_or_default() },
        Err(e) => Inspection::NotAnImage { reason: e.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A PNG whose header says `side`×`side` RGBA pixels, followed by no pixel data.
    fn png_claiming(side: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(side.to_be_bytes());
        ihdr.extend(side.to_be_bytes());
        ihdr.extend([8, 6, 0, 0, 0]);
        out.extend(13u32.to_be_bytes());
        out.extend(&ihdr);
        out.extend(crc32(&ihdr).to_be_bytes());
        out
    }

    #[test]
    fn an_output_claiming_a_huge_image_is_not_decoded() {
        // 100,000² RGBA pixels would be 40 GB: refused by the limits, not allocated.
        match decode(&png_claiming(100_000)) {
            // Refused by the limits, not by the missing pixel data that follows.
            Inspection::NotAnImage { reason } => assert!(reason.to_lowercase().contains("limit"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_real_thumbnail_is_decoded() {
        let mut png = Vec::new();
        image::RgbImage::new(128, 96).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        match decode(&png) {
            Inspection::Image { width, height, format } => assert_eq!((width, height, format.as_str()), (128, 96, "png")),
            other => panic!("{other:?}"),
        }
    }
}
