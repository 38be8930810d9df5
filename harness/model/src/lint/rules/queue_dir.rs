//! MinIO's Kafka targets: enabled and complete, and with a `queue_dir` that outlives
//! the pod (DESIGN §10: an event whose queue file vanished counts as delivered).

use super::Cx;
use crate::lint::minio::{describe, mount_of};
use crate::lint::objects::VolumeKind;

pub(super) fn check(cx: &mut Cx) {
    let mut found = Vec::new();
    for t in &cx.targets {
        let m = &cx.minios[t.minio];
        let server = describe(m);
        let brokers = t.var(m, "BROKERS");
        let Some(anchor) = t.var(m, "ENABLE").or(brokers).or_else(|| t.var(m, "TOPIC")) else { continue };
        if !t.is_on(m, "ENABLE") {
            if brokers.is_some() && t.var(m, "ENABLE").is_none_or(|v| v.value.is_some()) {
                found.push((
                    "minio-target-incomplete",
                    anchor.at.site(),
                    format!(
                        "{} on {server} is not enabled ({} is not `on`): MinIO ignores it and sends no events to Kafka",
                        t.describe(),
                        t.var_name("ENABLE")
                    ),
                    format!("{}: \"on\"", t.var_name("ENABLE")),
                ));
            }
            continue;
        }
        let missing: Vec<String> = ["BROKERS", "TOPIC"].iter().filter(|f| t.var(m, f).is_none()).map(|f| t.var_name(f)).collect();
        if !missing.is_empty() {
            found.push((
                "minio-target-incomplete",
                anchor.at.site(),
                format!(
                    "{} on {server} is enabled without {}: MinIO cannot initialize it and sends no events to Kafka",
                    t.describe(),
                    missing.join(" and ")
                ),
                missing
                    .iter()
                    .map(|v| format!("{v}: <{}>", if v.contains("BROKERS") { "host:port" } else { "topic" }))
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
            continue;
        }
        let queue_fix = format!(
            "{}: /queue/kafka (with a PersistentVolumeClaim mounted at /queue) and {}: \"100000\"; or `mc admin config set ALIAS {} queue_dir=/queue/kafka queue_limit=100000`",
            t.var_name("QUEUE_DIR"),
            t.var_name("QUEUE_LIMIT"),
            t.subsystem()
        );
        let Some(queue) = t.var(m, "QUEUE_DIR") else {
            found.push((
                "minio-queue-dir-missing",
                anchor.at.site(),
                format!(
                    "{} on {server} has no queue_dir: while Kafka is unreachable (a broker restart, a rolling update) MinIO cannot keep the events it fails to send, and they are lost",
                    t.describe()
                ),
                queue_fix,
            ));
            continue;
        };
        let Some(path) = queue.value.as_deref() else { continue };
        let persistent = m.mounts.iter().find(|m| m.kind == Some(VolumeKind::Persistent)).map(|m| m.path.clone());
        let move_hint = persistent.map(|p| format!(", or move it onto {p}")).unwrap_or_default();
        let lost = "MinIO treats a queued event whose file is gone as delivered, so the events queued there are lost silently";
        match mount_of(&m.mounts, path) {
            Some(mount) if mount.kind == Some(VolumeKind::EmptyDir) => found.push((
                "minio-queue-dir-emptydir",
                queue.at.site(),
                format!(
                    "queue_dir {path} of {} is on volume {}, an emptyDir: it is deleted with the pod (a reschedule, a rolling update, a node drain), and {lost}",
                    t.describe(),
                    mount.volume
                ),
                format!("make volume {} a persistentVolumeClaim (or a StatefulSet volumeClaimTemplate){move_hint}", mount.volume),
            )),
            Some(mount) if matches!(mount.kind, Some(VolumeKind::ReadOnly(_))) => {
                let kind = match mount.kind {
                    Some(VolumeKind::ReadOnly(k)) => k,
                    _ => "read-only",
                };
                found.push((
                    "minio-queue-dir-unmounted",
                    queue.at.site(),
                    format!("queue_dir {path} of {} is on volume {}, a {kind} volume, which is read-only: MinIO cannot write its queue and the target fails to start", t.describe(), mount.volume),
                    format!("put {} on a PersistentVolumeClaim{move_hint}", t.var_name("QUEUE_DIR")),
                ));
            }
            Some(mount) if mount.kind.is_some() => {}
            _ => {
                let message = if m.read_only_root {
                    format!("queue_dir {path} of {} is on no mounted volume and the root filesystem is read-only: MinIO cannot create it and the target fails to start", t.describe())
                } else {
                    format!("queue_dir {path} of {} is on no mounted volume: it lives in the container's writable layer, is lost with every container restart, and {lost}", t.describe())
                };
                found.push((
                    "minio-queue-dir-unmounted",
                    queue.at.site(),
                    message,
                    format!("mount a PersistentVolumeClaim at {path} (volumeMounts + volumes, or a StatefulSet volumeClaimTemplate){move_hint}"),
                ));
            }
        }
    }
    for (rule, site, message, fix) in found {
        cx.push(rule, site, message, fix);
    }
}
