//! The images of the containers environment, built locally through the Docker API
//! from what the local environment provisions (no image registry is needed):
//!
//! - `localhost/harness-debian:<tag>`: a Debian root filesystem made once by
//!   `debootstrap` (with a Java runtime) and cached as a tarball in
//!   `<cache>/images/`;
//! - `localhost/harness-kafka:<tag>`: that base plus Kafka's jars in [`KAFKA_LIBS`];
//! - `localhost/harness-minio:<tag>` and `localhost/harness-processor:<tag>`:
//!   `FROM scratch` with one binary and the shared libraries `ldd` lists for it.
//!
//! A tag is the first 12 hex digits of the sha256 of everything that goes into
//! the image, so an image that exists is up to date and is not built again.
//! No image has an ENTRYPOINT: a container's command is its whole argv.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use bollard::query_parameters::{BuildImageOptionsBuilder, ListImagesOptionsBuilder};
use bollard::Docker;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::services::process::describe_status;
use crate::services::provision::{cache_dir_from, find_on_path, ProvisionError, Toolchain};

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

const DEBIAN_SUITE: &str = "bookworm";
const DEBIAN_VARIANT: &str = "minbase";
const DEBIAN_PACKAGES: &[&str] = &["openjdk-17-jre-headless"];
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
const MIRROR_VAR: &str = "HARNESS_DEBIAN_MIRROR";
/// Bumped whenever the way the root filesystem is made or packed changes, so a
/// tarball cached by an older recipe is not reused.
const ROOTFS_RECIPE: u32 = 1;
/// Left out of the root filesystem: the engine provides `/dev`, `/proc` and
/// `/sys`; manuals and translations are dead weight in a test image.
const ROOTFS_EXCLUDES: &[&str] = &["dev", "proc", "sys", "usr/share/man", "usr/share/locale", "usr/share/info"];
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

/// What identifies the Debian root filesystem: the inputs of debootstrap (not
/// the mirror, which serves the same packages) and the packing recipe.
fn rootfs_identity() -> String {
    let recipe = format!(
        "debootstrap\0{DEBIAN_SUITE}\0{DEBIAN_VARIANT}\0{}\0recipe {ROOTFS_RECIPE}\0{}",
        DEBIAN_PACKAGES.join(","),
        ROOTFS_EXCLUDES.join(",")
    );
    hex12(&Sha256::digest(recipe.as_bytes()))
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

/// `FROM scratch` with `binary` at `dest`, its shared libraries at their own
/// paths, and a `/tmp`.
async fn binary_image(kind: &'static str, binary: &Path, dest: &str, cmd: &[&str]) -> Result<ImageSpec, ImageError> {
    let libs = shared_libraries(binary).await?;
    let mut entries = vec![
        Entry { path: "rootfs/tmp".into(), mode: 0o1777, source: Source::Dir },
        Entry { path: format!("rootfs{dest}"), mode: 0o755, source: Source::File(binary.to_path_buf()) },
    ];
    for lib in libs {
        entries.push(Entry { path: format!("rootfs{}", lib.display()), mode: 0o755, source: Source::File(lib) });
    }
    let cmd = serde_json::to_string(cmd).unwrap_or_default();
    let dockerfile = format!("FROM scratch\nCOPY rootfs/ /\nENV PATH={PATH_ENV}\nLABEL {LABEL_IMAGE}={kind}\nCMD {cmd}\n");
    Ok(ImageSpec { kind, context: Context { dockerfile, entries } })
}

// ---- shared libraries ------------------------------------------------------

/// The absolute paths of the shared libraries `binary` loads (its `ldd` closure).
async fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let ldd = find_on_path("ldd").ok_or(ImageError::MissingTool {
        tool: "ldd",
        purpose: "to find the shared libraries to put in an image",
        fix: "install glibc's ldd (Debian: apt-get install libc-bin)",
    })?;
    let out = tokio::process::Command::new(ldd)
        .arg(binary)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(io_err(format!("running ldd {}", binary.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.contains("statically linked") || stderr.contains("not a dynamic executable") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        let message = format!("{}: {}", describe_status(out.status), stderr.trim());
        return Err(ImageError::Ldd { binary: binary.to_path_buf(), message });
    }
    parse_ldd(&stdout).map_err(|missing| ImageError::MissingLibraries { binary: binary.to_path_buf(), missing })
}

/// Library paths from `ldd` output, sorted; the names of libraries it could not
/// find are the error. The kernel's vDSO (no path) is skipped.
fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut libs = BTreeSet::new();
    let mut missing = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // `name => /path (0x…)`, `name => not found`, `/path (0x…)`, `name (0x…)`
        let (name, target) = match line.split_once("=>") {
            Some((name, target)) => (name.trim(), target.trim()),
            None => (line, line),
        };
        if target.starts_with("not found") {
            missing.push(name.to_string());
        } else if let Some(path) = target.split_whitespace().next().filter(|p| p.starts_with('/')) {
            libs.insert(PathBuf::from(path));
        }
    }
    if missing.is_empty() {
        Ok(libs.into_iter().collect())
    } else {
        Err(missing)
    }
}

// ---- the Debian root filesystem --------------------------------------------

/// Makes the cached root filesystem tarball unless it exists: debootstrap into a
/// temp dir next to it, pack, rename into place. A half-made one is removed.
async fn ensure_rootfs(images_dir: &Path, rootfs_tar: &Path, progress: &dyn Fn(&str)) -> Result<(), ImageError> {
    if rootfs_tar.is_file() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ImageError::NotRoot);
    }
    let debootstrap = find_on_path("debootstrap").or_else(|| Some(PathBuf::from("/usr/sbin/debootstrap")).filter(|p| p.is_file())).ok_or(
        ImageError::MissingTool {
            tool: "debootstrap",
            purpose: "to make the Kafka image's Debian root filesystem",
            fix: "run `ci/podman` (installs it), or apt-get install debootstrap",
        },
    )?;
    // Leftovers of a killed run: nobody else works here while we hold the lock.
    if let Ok(entries) = std::fs::read_dir(images_dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-rootfs-") {
                progress(&format!("removing {}, left by an interrupted build…", e.path().display()));
                remove_tree(&e.path()).map_err(io_err(format!("removing {}", e.path().display())))?;
            }
        }
    }
    let tmp = TempTree(images_dir.join(format!(".tmp-rootfs-{}", std::process::id())));
    let root = tmp.0.join("root");
    std::fs::create_dir_all(&root).map_err(io_err(format!("creating {}", root.display())))?;
    let mirror = std::env::var(MIRROR_VAR).ok().filter(|m| !m.is_empty());
    let mirror = mirror.as_deref().unwrap_or(DEBIAN_MIRROR);
    let log = images_dir.join("debootstrap.log");
    progress(&format!(
        "making a Debian {DEBIAN_SUITE} root filesystem with debootstrap from {mirror} \
         (one time, a few minutes; log: {})…",
        log.display()
    ));
    let mut cmd = tokio::process::Command::new(&debootstrap);
    cmd.arg(format!("--variant={DEBIAN_VARIANT}"))
        .arg(format!("--include={}", DEBIAN_PACKAGES.join(",")))
        .args([DEBIAN_SUITE])
        .arg(&root)
        .arg(mirror);
    run_logged("debootstrap", &mut cmd, &log, progress).await?;
    for needed in ["bin/sh", KAFKA_JAVA.trim_start_matches('/')] {
        if !exists_in_root(&root, needed) {
            return Err(ImageError::IncompleteRootfs { missing: format!("/{needed}"), log });
        }
    }
    // What debootstrap leaves for apt is not needed in an image.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for e in entries.flatten().filter(|e| e.path().is_file()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    progress("packing the root filesystem…");
    let packed = tmp.0.join("rootfs.tar");
    // GNU tar, not the tar crate: it keeps hard links, xattrs and special files.
    let mut tar = tokio::process::Command::new("tar");
    tar.args(["--numeric-owner", "--xattrs", "--one-file-system"])
        .args(ROOTFS_EXCLUDES.iter().map(|p| format!("--exclude=./{p}/*")))
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&packed)
        .arg(".");
    run_logged("tar (packing the root filesystem)", &mut tar, &tmp.0.join("tar.log"), progress).await?;
    std::fs::rename(&packed, rootfs_tar).map_err(io_err(format!("renaming {} to {}", packed.display(), rootfs_tar.display())))?;
    Ok(())
}

/// Whether `rel` exists in `root`, following symlinks inside `root` (absolute
/// links point into the root filesystem, not the host).
fn exists_in_root(root: &Path, rel: &str) -> bool {
    let mut path = root.join(rel);
    for _ in 0..16 {
        match std::fs::read_link(&path) {
            Ok(target) if target.is_absolute() => {
                path = root.join(target.strip_prefix("/").unwrap_or(&target));
            }
            Ok(target) => path = path.parent().unwrap_or(root).join(target),
            Err(_) => return path.exists(),
        }
    }
    false
}

/// A command with its output in `log` (provisioning's runner; its failure keeps
/// the output's tail).
async fn run_logged(what: &str, cmd: &mut tokio::process::Command, log: &Path, progress: &dyn Fn(&str)) -> Result<(), ImageError> {
    crate::services::provision::run_logged(what, cmd, log, progress).await.map_err(|e| match e {
        ProvisionError::Command { what, status, log, tail } => ImageError::Command { what, status, log, tail },
        other => ImageError::Cache(other),
    })
}

/// A temp dir removed on drop (after unmounting what debootstrap may have left
/// mounted in it).
struct TempTree(PathBuf);

impl Drop for TempTree {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.0) {
            eprintln!("warning: could not remove {}: {e}", self.0.display());
        }
    }
}

/// Removes `dir` after detaching every mount below it. Refuses if a mount stays:
/// debootstrap bind-mounts host devices, and deleting through them would delete
/// the host's.
fn remove_tree(dir: &Path) -> io::Result<()> {
    let Ok(dir) = dir.canonicalize() else {
        return Ok(());
    };
    let mut mounts = mounts_under(&dir)?;
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for m in &mounts {
        if let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) {
            // SAFETY: a valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let left = mounts_under(&dir)?;
    if !left.is_empty() {
        return Err(io::Error::other(format!(
            "still mounted below it: {}; unmount them and remove it by hand",
            left.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    std::fs::remove_dir_all(&dir)
}

fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect())
}

// ---- the engine ------------------------------------------------------------

async fn image_exists(docker: &Docker, reference: &str) -> Result<bool, ImageError> {
    match docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(source) => Err(ImageError::Engine { context: format!("inspecting image {reference}"), source }),
    }
}

/// Sends `spec`'s build context (a tar streamed as it is written) to the
/// engine's build endpoint and follows the build to its end.
async fn build(docker: &Docker, spec: &ImageSpec, reference: &str, progress: &dyn Fn(&str)) -> Result<(), ImageError> {
    let size_mb = spec.context.size_bytes() / 1_000_000;
    progress(&format!("image {}: building {reference} ({size_mb} MB context)…", spec.kind));
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(8);
    let context = spec.context.clone();
    let packer = tokio::task::spawn_blocking(move || {
        let on_error = tx.clone();
        let result = context.write_tar(ChannelWriter { tx, buf: Vec::new() }).and_then(|mut w| w.flush());
        if let Err(e) = &result {
            let _ = on_error.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        result
    });
    let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk.map(Into::into), rx)) });
    let options = BuildImageOptionsBuilder::new().dockerfile("Dockerfile").t(reference).rm(true).forcerm(true).build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_try_stream(body)));
    let mut tail = VecDeque::new();
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                for line in info.stream.iter().flat_map(|s| s.lines()).map(str::trim_end) {
                    if line.trim().is_empty() {
                        continue;
                    }
                    if line.starts_with("STEP ") || line.starts_with("Step ") {
                        progress(&format!("  {line}"));
                    }
                    if tail.len() == 20 {
                        tail.pop_front();
                    }
                    tail.push_back(line.to_string());
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                failure = Some(error);
                break;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    drop(stream);
    let packed = packer.await.map_err(|e| io::Error::other(e.to_string())).and_then(|r| r);
    let tail: String = tail.iter().map(|l| format!("\n  {l}")).collect();
    let fail = |message: String| ImageError::Build { reference: reference.into(), message, tail: tail.clone() };
    if let Some(message) = failure {
        return Err(fail(message));
    }
    if let Err(e) = packed {
        return Err(fail(format!("sending the build context: {e}")));
    }
    if !image_exists(docker, reference).await? {
        return Err(fail("the engine reported no error but has no image by that name".into()));
    }
    Ok(())
}

/// A `Write` that hands 1 MiB chunks to an async channel (the request body).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the engine stopped reading the build context"))
    }
}

// ---- build contexts --------------------------------------------------------

/// A build context: a Dockerfile and the files it copies.
#[derive(Clone, Debug)]
struct Context {
    dockerfile: String,
    entries: Vec<Entry>,
}

/// One file or directory of a build context, at `path` (relative, `/`-separated).
#[derive(Clone, Debug)]
struct Entry {
    path: String,
    mode: u32,
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Dir,
    File(PathBuf),
    /// A large file hashed by the identity of what made it, not by its bytes.
    FileKnownAs(PathBuf, String),
}

impl Context {
    fn sorted(&self) -> Vec<&Entry> {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    }

    /// First 12 hex digits of the sha256 of the Dockerfile and every entry's
    /// path, mode and contents.
    fn content_hash(&self) -> io::Result<String> {
        let mut h = Sha256::new();
        h.update(format!("Dockerfile {}\n", self.dockerfile.len()));
        h.update(&self.dockerfile);
        for e in self.sorted() {
            h.update(format!("\n{} {:o} ", e.path, e.mode));
            match &e.source {
                Source::Dir => h.update("dir\n"),
                Source::FileKnownAs(_, id) => h.update(format!("known-as {id}\n")),
                Source::File(p) => {
                    let mut f = std::fs::File::open(p).map_err(|e| with_path(e, p))?;
                    h.update(format!("file {}\n", f.metadata()?.len()));
                    io::copy(&mut f, &mut h).map_err(|e| with_path(e, p))?;
                }
            }
        }
        Ok(hex12(&h.finalize()))
    }

    /// Bytes of all files (for progress).
    fn size_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter_map(|e| match &e.source {
                Source::File(p) | Source::FileKnownAs(p, _) => std::fs::metadata(p).ok(),
                Source::Dir => None,
            })
            .map(|m| m.len())
            .sum()
    }

    /// Writes the context as a tar: `Dockerfile`, then the entries with their
    /// parent directories, owned by root, mtime 0.
    fn write_tar<W: Write>(&self, w: W) -> io::Result<W> {
        let mut tar = tar::Builder::new(w);
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h
        };
        let df = self.dockerfile.as_bytes();
        tar.append_data(&mut header(tar::EntryType::Regular, 0o644, df.len() as u64), "Dockerfile", df)?;
        let mut dirs = BTreeSet::new();
        for e in self.sorted() {
            let parents: Vec<&str> = e.path.match_indices('/').map(|(i, _)| &e.path[..i]).collect();
            for parent in parents {
                if dirs.insert(parent.to_string()) {
                    tar.append_data(&mut header(tar::EntryType::Directory, 0o755, 0), parent, io::empty())?;
                }
            }
            match &e.source {
                Source::Dir => {
                    if dirs.insert(e.path.clone()) {
                        tar.append_data(&mut header(tar::EntryType::Directory, e.mode, 0), &e.path, io::empty())?;
                    }
                }
                Source::File(p) | Source::FileKnownAs(p, _) => {
                    let f = std::fs::File::open(p).map_err(|err| with_path(err, p))?;
                    let len = f.metadata()?.len();
                    let mut h = header(tar::EntryType::Regular, e.mode, len);
                    let mut reader = f.take(len);
                    tar.append_data(&mut h, &e.path, &mut reader)?;
                    if reader.limit() != 0 {
                        return Err(io::Error::other(format!("{} shrank while being read", p.display())));
                    }
                }
            }
        }
        tar.into_inner()
    }
}

fn with_path(e: io::Error, p: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

fn hex12(digest: &[u8]) -> String {
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
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
    use std::collections::BTreeMap;

    const LDD_HARNESS: &str = "\
\tlinux-vdso.so.1 (0x00007fbd08af1000)
\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007fbd08ac0000)
\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007fbd08aa0000)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007fbd089c0000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fbd0721e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fbd08af3000)
";

    #[test]
    fn ldd_output_gives_library_paths_without_the_vdso() {
        let libs = parse_ldd(LDD_HARNESS).unwrap();
        let libs: Vec<_> = libs.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            libs,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libm.so.6",
                "/lib/x86_64-linux-gnu/libz.so.1",
                "/lib64/ld-linux-x86-64.so.2",
            ]
        );
    }

    #[test]
    fn ldd_not_found_lines_name_the_missing_libraries() {
        let out = format!("{LDD_HARNESS}\tlibssl.so.3 => not found\n\tlibfoo.so.1 => not found\n");
        assert_eq!(parse_ldd(&out).unwrap_err(), ["libssl.so.3", "libfoo.so.1"]);
        let err = ImageError::MissingLibraries { binary: "/x/minio".into(), missing: parse_ldd(&out).unwrap_err() };
        assert!(err.to_string().contains("/x/minio needs shared libraries this machine does not have (libssl.so.3, libfoo.so.1)"));
    }

    fn context_in(dir: &Path) -> Context {
        std::fs::write(dir.join("bin"), b"binary").unwrap();
        std::fs::write(dir.join("lib"), b"library").unwrap();
        Context {
            dockerfile: "FROM scratch\nCOPY rootfs/ /\n".into(),
            entries: vec![
                Entry { path: "rootfs/usr/local/bin/x".into(), mode: 0o755, source: Source::File(dir.join("bin")) },
                Entry { path: "rootfs/lib/libx.so".into(), mode: 0o755, source: Source::File(dir.join("lib")) },
                Entry { path: "rootfs/tmp".into(), mode: 0o1777, source: Source::Dir },
            ],
        }
    }

    #[test]
    fn content_hash_is_stable_and_sees_contents_paths_modes_and_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context_in(dir.path());
        let hash = ctx.content_hash().unwrap();
        assert_eq!(hash.len(), 12);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(ctx.content_hash().unwrap(), hash, "same inputs, same hash");
        let mut reordered = ctx.clone();
        reordered.entries.reverse();
        assert_eq!(reordered.content_hash().unwrap(), hash, "entry order does not matter");

        let mut moved = ctx.clone();
        moved.entries[1].path = "rootfs/lib64/libx.so".into();
        assert_ne!(moved.content_hash().unwrap(), hash, "path");
        let mut chmod = ctx.clone();
        chmod.entries[0].mode = 0o700;
        assert_ne!(chmod.content_hash().unwrap(), hash, "mode");
        let mut df = ctx.clone();
        df.dockerfile.push_str("CMD [\"/x\"]\n");
        assert_ne!(df.content_hash().unwrap(), hash, "Dockerfile");
        std::fs::write(dir.path().join("lib"), b"library v2").unwrap();
        assert_ne!(ctx.content_hash().unwrap(), hash, "contents");
    }

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
    fn tar_context_holds_dockerfile_parents_files_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context_in(dir.path());
        let bytes = ctx.write_tar(Vec::new()).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
            let mode = entry.header().mode().unwrap();
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            seen.insert(path, (mode, String::from_utf8(body).unwrap()));
        }
        let paths: Vec<&str> = seen.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "Dockerfile",
                "rootfs",
                "rootfs/lib",
                "rootfs/lib/libx.so",
                "rootfs/tmp",
                "rootfs/usr",
                "rootfs/usr/local",
                "rootfs/usr/local/bin",
                "rootfs/usr/local/bin/x",
            ]
        );
        assert_eq!(seen["Dockerfile"].1, ctx.dockerfile);
        assert_eq!(seen["rootfs/usr/local/bin/x"], (0o755, "binary".into()));
        assert_eq!(seen["rootfs/tmp"].0, 0o1777);
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

    #[test]
    fn symlinks_in_a_root_filesystem_resolve_inside_it() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::create_dir_all(r.join("etc/alternatives")).unwrap();
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
        std::fs::write(r.join("usr/bin/dash"), b"").unwrap();
        std::os::unix::fs::symlink("dash", r.join("usr/bin/sh")).unwrap();
        std::os::unix::fs::symlink("/etc/alternatives/java", r.join("usr/bin/java")).unwrap();
        assert!(exists_in_root(r, "bin/sh"));
        assert!(!exists_in_root(r, "usr/bin/java"), "dangling inside the root");
        std::fs::write(r.join("etc/alternatives/java"), b"").unwrap();
        assert!(exists_in_root(r, "usr/bin/java"));
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
        let docker = crate::containers::connect().await.expect("engine");
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
