//! The MinIO servers of a manifest set (a MinIO container, or a MinIO operator
//! `Tenant`) and the Kafka notification targets their environment configures
//! (`MINIO_NOTIFY_KAFKA_<FIELD>[_<ID>]`, DESIGN §10).

use std::rc::Rc;

use super::objects::{EnvVar, Mount, Role, VolumeKind, World};
use super::yaml::At;

pub(crate) struct Minio<'a> {
    /// The container, or the Tenant's `spec`.
    pub at: At<'a>,
    pub env: Vec<EnvVar<'a>>,
    pub mounts: Vec<Mount>,
    pub read_only_root: bool,
    pub namespace: Option<&'a str>,
}

/// One Kafka target: the variables of one `<ID>` (empty for the unsuffixed ones).
pub(crate) struct Target {
    pub minio: usize,
    pub id: String,
    /// `(field, index in Minio::env)`.
    vars: Vec<(&'static str, usize)>,
}

/// The target's fields; longest first, so `SASL_USERNAME_X` is not read as `SASL` of `USERNAME_X`.
const FIELDS: &[&str] = &[
    "PRODUCER_COMPRESSION_CODEC",
    "PRODUCER_COMPRESSION_LEVEL",
    "BATCH_COMMIT_TIMEOUT",
    "TLS_SKIP_VERIFY",
    "TLS_CLIENT_AUTH",
    "CLIENT_TLS_CERT",
    "CLIENT_TLS_KEY",
    "SASL_USERNAME",
    "SASL_PASSWORD",
    "SASL_MECHANISM",
    "QUEUE_LIMIT",
    "BATCH_SIZE",
    "QUEUE_DIR",
    "BROKERS",
    "VERSION",
    "COMMENT",
    "ENABLE",
    "TOPIC",
    "SASL",
    "TLS",
];

const PREFIX: &str = "MINIO_NOTIFY_KAFKA_";

impl Target {
    pub fn var<'m, 'a>(&self, minio: &'m Minio<'a>, field: &str) -> Option<&'m EnvVar<'a>> {
        self.vars.iter().find(|(f, _)| *f == field).map(|(_, i)| &minio.env[*i])
    }

    pub fn value<'m>(&self, minio: &'m Minio, field: &str) -> Option<&'m str> {
        self.var(minio, field).and_then(|v| v.value.as_deref())
    }

    /// `on`, `true`, `enabled`… as MinIO reads a boolean.
    pub fn is_on(&self, minio: &Minio, field: &str) -> bool {
        self.value(minio, field).is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "on" | "true" | "yes" | "enabled" | "1"))
    }

    /// `MINIO_NOTIFY_KAFKA_QUEUE_DIR_PRIMARY` for field `QUEUE_DIR` of target `PRIMARY`.
    pub fn var_name(&self, field: &str) -> String {
        if self.id.is_empty() {
            format!("{PREFIX}{field}")
        } else {
            format!("{PREFIX}{field}_{}", self.id)
        }
    }

    /// `notify_kafka:primary` (what `mc admin config set` names).
    pub fn subsystem(&self) -> String {
        if self.id.is_empty() {
            "notify_kafka".into()
        } else {
            format!("notify_kafka:{}", self.id.to_lowercase())
        }
    }

    /// `target "PRIMARY"` / `the default target`, for messages.
    pub fn describe(&self) -> String {
        if self.id.is_empty() {
            "MinIO's Kafka target".into()
        } else {
            format!("MinIO's Kafka target {}", self.id)
        }
    }
}

pub(crate) fn minios<'a>(w: &World<'a>) -> Vec<Minio<'a>> {
    let mut out = Vec::new();
    for c in w.containers.iter().filter(|c| c.role == Role::Minio) {
        let env = w.env_of(&c.at, w.object_of(c).namespace).0;
        let mounts = c.mounts.iter().map(|m| Mount { path: m.path.clone(), volume: m.volume.clone(), kind: m.kind }).collect();
        let namespace = w.object_of(c).namespace;
        out.push(Minio { at: c.at.clone(), env, mounts, read_only_root: c.read_only_root, namespace });
    }
    for t in w.of_kind("Tenant").filter(|t| t.group() == "minio.min.io") {
        let Some(spec) = t.at.get("spec") else { continue };
        let env = w.env_of(&spec, t.namespace).0;
        // The operator mounts each pool's volumes at `<mountPath>` (one per server)
        // or `<mountPath>0…N-1`.
        let base = spec.text("mountPath").unwrap_or("/export").trim_end_matches('/').to_string();
        let per_server = spec
            .get("pools")
            .map(|p| p.items())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.text("volumesPerServer")?.parse::<usize>().ok())
            .max()
            .unwrap_or(1);
        let mut mounts = vec![Mount { path: base.clone(), volume: "the pool's volumes".into(), kind: Some(VolumeKind::Persistent) }];
        mounts.extend((0..per_server).map(|i| Mount {
            path: format!("{base}{i}"),
            volume: "the pool's volumes".into(),
            kind: Some(VolumeKind::Persistent),
        }));
        out.push(Minio { at: spec, env, mounts, read_only_root: false, namespace: t.namespace });
    }
    out
}

pub(crate) fn targets(minios: &[Minio]) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for (m, minio) in minios.iter().enumerate() {
        for (i, var) in minio.env.iter().enumerate() {
            let Some(rest) = var.name.strip_prefix(PREFIX) else { continue };
            let Some((field, id)) = FIELDS.iter().find_map(|f| match rest.strip_prefix(f) {
                Some("") => Some((*f, "")),
                Some(id) => id.strip_prefix('_').map(|id| (*f, id)),
                None => None,
            }) else {
                continue;
            };
            match out.iter_mut().find(|t| t.minio == m && t.id == id) {
                Some(t) => t.vars.push((field, i)),
                None => out.push(Target { minio: m, id: id.to_string(), vars: vec![(field, i)] }),
            }
        }
    }
    out
}

/// The mount a path is on: the longest mount path that is a whole-component prefix.
pub(crate) fn mount_of<'m>(mounts: &'m [Mount], path: &str) -> Option<&'m Mount> {
    mounts
        .iter()
        .filter(|m| {
            let base = m.path.trim_end_matches('/');
            path == base || path.strip_prefix(base).is_some_and(|r| r.starts_with('/')) || base.is_empty()
        })
        .max_by_key(|m| m.path.len())
}

/// For messages: `Deployment/minio container minio`.
pub(crate) fn describe(minio: &Minio) -> Rc<str> {
    match minio.at.text("name") {
        Some(n) if minio.at.path.contains("containers") => Rc::from(format!("{} container {n}", minio.at.object)),
        _ => minio.at.object.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_match_whole_path_components() {
        let m = |p: &str| Mount { path: p.into(), volume: p.into(), kind: None };
        let mounts = [m("/data"), m("/data/queue"), m("/export0")];
        assert_eq!(mount_of(&mounts, "/data/queue/kafka").map(|m| m.path.as_str()), Some("/data/queue"));
        assert_eq!(mount_of(&mounts, "/data").map(|m| m.path.as_str()), Some("/data"));
        assert!(mount_of(&mounts, "/database").is_none());
        assert!(mount_of(&mounts, "/export").is_none());
    }
}
