//! The final word on outputs: every version in the (versioned) target bucket, each
//! read back and decoded.

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

/// Every version in `bucket`.
async fn all_versions(client: &Client, bucket: &str) -> Result<Vec<Listed>, String> {
    let mut versions: Vec<Listed> = Vec::new();
    let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = client
            .list_object_versions()
            .bucket(bucket)
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
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() && version_marker.is_none() {
            break;
        }
    }
    Ok(versions)
}

/// Every version in `bucket` now: what was there before a run, which the run's
/// judgement must leave out (an external pipeline's bucket is not empty).
pub async fn versions_now(client: &Client, bucket: &str) -> Result<HashSet<Stamp>, String> {
    Ok(all_versions(client, bucket).await?.into_iter().map(|l| l.stamp).collect())
}

/// Outputs of a pipeline whose MinIO announces nothing to the harness (an external
/// one): lists `bucket` every [`POLL_EVERY`] and records each version not in `known`
/// (the versions there before the run), seen at the poll that found it (so a latency
/// is late by up to one poll). Runs until aborted. `known` is the caller's, taken
/// before anything of the run was written: a baseline listed here, concurrently with
/// the run's first writes, could take the harness's probe for the pipeline's past.
pub(super) async fn poll_outputs(
    client: Client,
    bucket: String,
    observed: std::sync::Arc<super::Observed>,
    clock: crate::clock::Clock,
    mut known: HashSet<Stamp>,
) {
    let mut every = tokio::time::interval(POLL_EVERY);
    loop {
        every.tick().await;
        let Ok(now) = versions_now(&client, &bucket).await else { continue };
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

/// Lists every object version of `bucket` but those in `before` and inspects each;
/// `seen` supplies the time each version was first announced.
pub async fn list_outputs(
    client: &Client,
    bucket: &str,
    seen: &[OutputSeen],
    before: &HashSet<Stamp>,
) -> Result<Vec<OutputVersion>, ObserveError> {
    let versions: Vec<(String, String, u64)> = all_versions(client, bucket)
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

async fn inspect(client: &Client, bucket: &str, key: &str, version_id: &str) -> Inspection {
    let got = client.get_object().bucket(bucket).key(key).version_id(version_id).send().await;
    let body = match got {
        Ok(o) => o.body.collect().await.map(|b| b.into_bytes()),
        Err(e) => return Inspection::Unreadable { reason: crate::services::s3::describe_sdk_error(&e) },
    };
    let bytes = match body {
        Ok(b) => b,
        Err(e) => return Inspection::Unreadable { reason: e.to_string() },
    };
    let format = image::guess_format(&bytes).map(|f| format!("{f:?}").to_lowercase());
    match image::load_from_memory(&bytes) {
        Ok(img) => Inspection::Image { width: img.width(), height: img.height(), format: format.unwrap_or_default() },
        Err(e) => Inspection::NotAnImage { reason: e.to_string() },
    }
}
