//! The images of the containers environment, built locally through the Docker API
//! from what the local environment provisions (no image registry is needed):
//!
//! - `localhost/harness-debian:<tag>`: a Debian root filesystem made once by
//!   `debootstrap` (with a Java runtime, and iptables for the kubernetes
//!   environment's partitions from a pod's signals container) and cached as a tarball in
//!   `<cache>/images/`;
//! - `localhost/harness-kafka:<tag>`: that base plus Kafka's jars in [`KAFKA_LIBS`];
//! - `localhost/harness-minio:<tag>` and `localhost/harness-processor:<tag>`:
//!   `FROM scratch` with one binary and the shared libraries `ldd` lists for it.
//!
//! A tag is the first 12 hex digits of the sha256 of everything that goes into
//! the image, so an image that exists is up to date and is not built again.
//! No image has an ENTRYPOINT: a container's command is its whole argv.

mod binary;
mod context;
mod engine;
mod rootfs;

use std::io;
use std::path::{Path, PathBuf};

use bollard::query_parameters::ListImagesOptionsBuilder;
use bollard::Docker;

use crate::services::provision::{cache_dir_from, ProvisionError, Toolchain};
use binary::binary_image;
use context::{Context, Entry, Source};
use engine::{build, image_exists};
use rootfs::{ensure_rootfs, rootfs_identity, DEBIAN_SUITE, DEBIAN_VARIANT};

/// Java inside the kafka image.
pub const KAFKA_JAVA: &str = "/usr/bin/java";
/// Kafka's jars inside the kafka image (the classpath is `<KAFKA_LIBS>/*`).
pub const KAFKA_LIBS: &str = "/opt/kafka/libs";
/// MinIO inside the minio image.
pub const MINIO_BIN: &str = "/usr/local/bin/minio";
/// The harness inside the processor image; the processor is `harness processor`.
pub const HARNESS_BIN: &str = "/usr/local/bin/harness";
/// Label on every image built here; its value is the image's kind
/// (`debian`, `kafka`, `minio`, `processor`).
pub const LABEL_IMAGE: &str = "io.harness.image";
/// Scratch images have no PATH; `sh -c "java …"` and a bare `minio` need one.
const PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Full references of the images a containers run uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    pub kafka: String,
    pub minio: String,
    pub processor: String,
}

/// One image built here, as `harness images list` shows it.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    pub reference: String,
    /// The [`LABEL_IMAGE`] value.
    pub kind: String,
    pub size_bytes: i64,
    /// Seconds since the epoch.
    pub created: i64,
}

/// Why an image could not be built. Each message names what failed and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Cache(#[from] ProvisionError),
    #[error(
        "making the Kafka image's Debian root filesystem needs root (debootstrap); run \
         `sudo ci/podman` once to set up the engine, then `sudo harness images build`"
    )]
    NotRoot,
    #[error("not found on PATH: `{tool}` ({purpose}); {fix}")]
    MissingTool { tool: &'static str, purpose: &'static str, fix: &'static str },
    #[error("{what} failed ({status}); last lines of its output ({log}):\n{tail}", log = log.display())]
    Command { what: String, status: String, log: PathBuf, tail: String },
    #[error("debootstrap finished but the root filesystem it made has no {missing}; see {log}", log = log.display())]
    IncompleteRootfs { missing: String, log: PathBuf },
    #[error("`ldd {binary}` failed: {message}", binary = binary.display())]
    Ldd { binary: PathBuf, message: String },
    #[error(
        "{binary} needs shared libraries this machine does not have ({missing}); install them \
         (`ldd {binary}` shows them as \"not found\")",
        binary = binary.display(),
        missing = missing.join(", ")
    )]
    MissingLibraries { binary: PathBuf, missing: Vec<String> },
    #[error("building image {reference} failed: {message}{tail}")]
    Build {
        reference: String,
        message: String,
        /// The build output's last lines, with a leading newline (or empty).
        tail: String,
    },
    #[error("{context}: {source}")]
    Engine {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ImageError {
    let context = context.into();
    move |source| ImageError::Io { context, source }
}

/// Builds whichever of the environment's images are missing and returns all
/// three references. `harness_bin` is the harness executable the processor image
/// runs (`std::env::current_exe()` at the call site). Cold, this takes minutes
/// (debootstrap); warm, a few seconds (hashing the binaries and jars).
/// `progress` hears one line per image and per build step.
pub async fn ensure_images(docker: &Docker, tc: &Toolchain, harness_bin: &Path, progress: &dyn Fn(&str)) -> Result<ImageSet, ImageError> {
    let images_dir = cache_dir_from(&|k| std::env::var_os(k))?.join("images");
    let _lock = crate::services::provision::CacheLock::acquire(&images_dir, "container images", progress).await?;
    let kafka = ensure_kafka(docker, tc, &images_dir, progress).await?;
    let minio = binary_image("minio", &tc.minio_bin, MINIO_BIN, &[MINIO_BIN]).await?;
    let minio = ensure_built(docker, minio, progress).await?;
    let processor = ensure_processor_image(docker, harness_bin, progress).await?;
    Ok(ImageSet { kafka, minio, processor })
}

/// The processor image alone (the harness itself as `harness processor`): the one
/// image no registry has.
pub async fn ensure_processor_image(docker: &Docker, harness_bin: &Path, progress: &dyn Fn(&str)) -> Result<String, ImageError> {
    let processor = binary_image("processor", harness_bin, HARNESS_BIN, &[HARNESS_BIN, "processor"]).await?;
    ensure_built(docker, processor, progress).await
}

/// Where a containers run's Kafka and MinIO images come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImageSource {
    /// Built here by [`ensure_images`] (no registry needed).
    #[default]
    Local,
    /// `apache/kafka` and `minio/minio`, pulled by the engine from a registry
    /// (`HARNESS_KAFKA_IMAGE` / `HARNESS_MINIO_IMAGE` override the references); the
    /// processor image is still built here.
    Official,
}

/// MinIO's official image of the release the pinned commit belongs to (DESIGN §4).
pub const OFFICIAL_MINIO: &str = "docker.io/minio/minio:RELEASE.2025-10-15T17-29-55Z";

/// Kafka's official image of a version.
pub fn official_kafka(version: &str) -> String {
    format!("docker.io/apache/kafka:{version}")
}

/// The images of a run, and where its commands find things inside them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunImages {
    pub set: ImageSet,
    /// Java in the kafka image (a path, or a name on the image's PATH).
    pub kafka_java: String,
    /// Kafka's jars in the kafka image.
    pub kafka_libs: String,
    /// MinIO in the minio image.
    pub minio_bin: String,
}

impl RunImages {
    /// The images [`ensure_images`] built.
    pub fn local(set: ImageSet) -> Self {
        RunImages { set, kafka_java: KAFKA_JAVA.into(), kafka_libs: KAFKA_LIBS.into(), minio_bin: MINIO_BIN.into() }
    }

    /// The official images: `apache/kafka` has Kafka in /opt/kafka and Java on its
    /// PATH; `minio/minio`'s entrypoint wants a command that starts with `minio`.
    pub fn official(kafka: String, minio: String, processor: String) -> Self {
        RunImages {
            set: ImageSet { kafka, minio, processor },
            kafka_java: "java".into(),
            kafka_libs: "/opt/kafka/libs".into(),
            minio_bin: "minio".into(),
        }
    }
}

/// The images of a run from `source`, building (local) or naming (official) them.
pub async fn run_images(
    source: ImageSource,
    docker: &Docker,
    tc: &Toolchain,
    harness_bin: &Path,
    progress: &dyn Fn(&str),
) -> Result<RunImages, ImageError> {
    match source {
        ImageSource::Local => Ok(RunImages::local(ensure_images(docker, tc, harness_bin, progress).await?)),
        ImageSource::Official => {
            let processor = ensure_processor_image(docker, harness_bin, progress).await?;
            let kafka = std::env::var("HARNESS_KAFKA_IMAGE").unwrap_or_else(|_| official_kafka(&tc.kafka_version));
            let minio = std::env::var("HARNESS_MINIO_IMAGE").unwrap_or_else(|_| OFFICIAL_MINIO.to_string());
            progress(&format!("official images: {kafka} and {minio} (the engine pulls them if it has not)"));
            Ok(RunImages::official(kafka, minio, processor))
        }
    }
}

/// The images built here that the engine has, newest first.
pub async fn list_images(docker: &Docker) -> Result<Vec<ImageInfo>, ImageError> {
    let filters = std::collections::HashMap::from([("label", vec![LABEL_IMAGE])]);
    let options = ListImagesOptionsBuilder::new().filters(&filters).build();
    let summaries =
        docker.list_images(Some(options)).await.map_err(|source| ImageError::Engine { context: "listing images".into(), source })?;
    let mut out: Vec<ImageInfo> = summaries
        .into_iter()
        .flat_map(|s| {
            let kind = s.labels.get(LABEL_IMAGE).cloned().unwrap_or_default();
            let tags = if s.repo_tags.is_empty() { vec![s.id.clone()] } else { s.repo_tags };
            tags.into_iter().map(move |reference| ImageInfo { reference, kind: kind.clone(), size_bytes: s.size, created: s.created })
        })
        .collect();
    out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.reference.cmp(&b.reference)));
    Ok(out)
}

// ---- the images ------------------------------------------------------------

/// An image to build: its kind, Dockerfile and the rest of its build context.
#[derive(Debug)]
struct ImageSpec {
    kind: &'static str,
    context: Context,
}

impl ImageSpec {
    /// `localhost/harness-<kind>:<content hash>`; reads every file of the context.
    async fn reference(&self) -> Result<String, ImageError> {
        let context = self.context.clone();
        let tag = tokio::task::spawn_blocking(move || context.content_hash())
            .await
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(io_err(format!("hashing the {} image's files", self.kind)))?;
        Ok(format!("localhost/harness-{}:{tag}", self.kind))
    }
}

/// The kafka image, and below it the Debian base, each built if missing.
async fn ensure_kafka(docker: &Docker, tc: &Toolchain, images_dir: &Path, progress: &dyn Fn(&str)) -> Result<String, ImageError> {
    let rootfs_id = rootfs_identity();
    let rootfs_tar = images_dir.join(format!("debian-{DEBIAN_SUITE}-{DEBIAN_VARIANT}-{rootfs_id}.tar"));
    let base = ImageSpec { kind: "debian", context: debian_context(&rootfs_tar, &rootfs_id) };
    let base_ref = base.reference().await?;
    let kafka = ImageSpec { kind: "kafka", context: kafka_context(&base_ref, &tc.kafka_libs)? };
    let kafka_ref = kafka.reference().await?;
    if image_exists(docker, &kafka_ref).await? {
        progress(&format!("image kafka: {kafka_ref} (cached)"));
        return Ok(kafka_ref);
    }
    if image_exists(docker, &base_ref).await? {
        progress(&format!("image debian: {base_ref} (cached)"));
    } else {
        ensure_rootfs(images_dir, &rootfs_tar, progress).await?;
        build(docker, &base, &base_ref, progress).await?;
    }
    build(docker, &kafka, &kafka_ref, progress).await?;
    Ok(kafka_ref)
}

/// Builds `spec` unless an image with its content hash exists; returns its reference.
async fn ensure_built(docker: &Docker, spec: ImageSpec, progress: &dyn Fn(&str)) -> Result<String, ImageError> {
    let reference = spec.reference().await?;
    if image_exists(docker, &reference).await? {
        progress(&format!("image {}: {reference} (cached)", spec.kind));
    } else {
        build(docker, &spec, &reference, progress).await?;
    }
    Ok(reference)
}

fn debian_context(rootfs_tar: &Path, rootfs_id: &str) -> Context {
    Context {
        dockerfile: format!(
            "FROM scratch\nADD rootfs.tar /\nENV PATH={PATH_ENV}\nLABEL {LABEL_IMAGE}=debian\n\
             CMD [\"/bin/sh\"]\n"
        ),
        entries: vec![Entry {
            path: "rootfs.tar".into(),
            mode: 0o644,
            source: Source::FileKnownAs(rootfs_tar.to_path_buf(), rootfs_id.to_string()),
        }],
    }
}

fn kafka_context(base_ref: &str, libs: &Path) -> Result<Context, ImageError> {
    let read = io_err(format!("reading Kafka's jars in {}", libs.display()));
    let mut jars = Vec::new();
    for entry in std::fs::read_dir(libs).map_err(read)? {
        let entry = entry.map_err(io_err(format!("reading {}", libs.display())))?;
        let path = entry.path();
        if path.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            jars.push(Entry { path: format!("libs/{name}"), mode: 0o644, source: Source::File(path) });
        }
    }
    Ok(Context { dockerfile: format!("FROM {base_ref}\nCOPY libs/ {KAFKA_LIBS}/\nLABEL {LABEL_IMAGE}=kafka\n"), entries: jars })
}

#[cfg(test)]
mod tests {
    #[test]
    fn official_images_name_the_pinned_versions_and_their_layout() {
        let imgs = super::RunImages::official(super::official_kafka("4.1.1"), super::OFFICIAL_MINIO.into(), "p".into());
        assert_eq!(imgs.set.kafka, "docker.io/apache/kafka:4.1.1");
        assert_eq!(imgs.set.minio, "docker.io/minio/minio:RELEASE.2025-10-15T17-29-55Z");
        assert_eq!((imgs.kafka_libs.as_str(), imgs.minio_bin.as_str()), ("/opt/kafka/libs", "minio"));
        let local = super::RunImages::local(imgs.set.clone());
        assert_eq!((local.kafka_java.as_str(), local.kafka_libs.as_str()), (super::KAFKA_JAVA, super::KAFKA_LIBS));
    }

    use super::*;

    #[test]
    fn known_files_are_hashed_by_identity_not_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("rootfs.tar");
        std::fs::write(&tar, b"one").unwrap();
        let a = debian_context(&tar, "id1").content_hash().unwrap();
        std::fs::write(&tar, b"two").unwrap();
        assert_eq!(debian_context(&tar, "id1").content_hash().unwrap(), a);
        assert_ne!(debian_context(&tar, "id2").content_hash().unwrap(), a);
        assert_eq!(rootfs_identity(), rootfs_identity());
    }

    #[test]
    fn binary_images_have_no_entrypoint_and_a_full_command() {
        let ctx = debian_context(Path::new("/r.tar"), "id");
        assert!(ctx.dockerfile.starts_with("FROM scratch\nADD rootfs.tar /\n"));
        assert!(!ctx.dockerfile.contains("ENTRYPOINT"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kafka-clients-4.1.1.jar"), b"jar").unwrap();
        let kafka = kafka_context("localhost/harness-debian:abc", dir.path()).unwrap();
        assert!(kafka.dockerfile.starts_with("FROM localhost/harness-debian:abc\nCOPY libs/ /opt/kafka/libs/\n"));
        assert_eq!(kafka.entries[0].path, "libs/kafka-clients-4.1.1.jar");
    }

    /// Builds the minio image against the engine DOCKER_HOST names (CI: podman
    /// via `ci/podman`) and inspects it. Without an engine it fails, saying so: a
    /// test that could not run must not pass (`ci/test` always sets one up).
    #[tokio::test]
    async fn builds_the_minio_image_against_the_engine() {
        assert!(
            std::env::var_os("DOCKER_HOST").is_some() || Path::new("/var/run/docker.sock").exists(),
            "needs a container engine: set DOCKER_HOST, or run Docker at /var/run/docker.sock \
             (`ci/test` sets up podman with `ci/podman`)"
        );
        let docker = crate::engine::connect().await.expect("engine");
        let tc = crate::services::provision::provision(&|m| eprintln!("{m}")).await.expect("provision");
        let spec = binary_image("minio", &tc.minio_bin, MINIO_BIN, &[MINIO_BIN]).await.unwrap();
        let reference = ensure_built(&docker, spec, &|m| eprintln!("{m}")).await.unwrap();
        assert!(reference.starts_with("localhost/harness-minio:"));
        let image = docker.inspect_image(&reference).await.unwrap();
        let config = image.config.unwrap();
        assert_eq!(config.labels.unwrap()[LABEL_IMAGE], "minio");
        assert_eq!(config.cmd.unwrap(), [MINIO_BIN]);
        assert!(config.entrypoint.unwrap_or_default().is_empty());
    }
}
