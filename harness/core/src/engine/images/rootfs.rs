//! The Debian root filesystem under the `debian` (and so the `kafka`) image:
//! made once by `debootstrap`, packed with GNU tar and cached as a tarball.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::context::hex12;
use super::{io_err, ImageError, KAFKA_JAVA};
use crate::services::provision::{find_on_path, ProvisionError};

pub(super) const DEBIAN_SUITE: &str = "bookworm";
pub(super) const DEBIAN_VARIANT: &str = "minbase";
const DEBIAN_PACKAGES: &[&str] = &["openjdk-17-jre-headless", "iptables"];
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
const MIRROR_VAR: &str = "HARNESS_DEBIAN_MIRROR";
/// Bumped whenever the way the root filesystem is made or packed changes, so a
/// tarball cached by an older recipe is not reused.
const ROOTFS_RECIPE: u32 = 1;
/// Left out of the root filesystem: the engine provides `/dev`, `/proc` and
/// `/sys`; manuals and translations are dead weight in a test image.
const ROOTFS_EXCLUDES: &[&str] = &["dev", "proc", "sys", "usr/share/man", "usr/share/locale", "usr/share/info"];

/// The Debian mirror this machine's apt uses (a user behind a local mirror or proxy
/// has theirs there), from `/etc/apt/sources.list.d/*.sources` or `sources.list`.
fn apt_mirror() -> Option<String> {
    let mut texts = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "sources")).collect();
        files.sort();
        // Bounded: apt's own files, a few kB; a stranger one is read only in part.
        texts.extend(files.iter().take(32).filter_map(|f| std::fs::read_to_string(f).ok()).map(|t| t.chars().take(65_536).collect()));
    }
    texts.extend(std::fs::read_to_string("/etc/apt/sources.list").ok());
    texts.iter().find_map(|t| mirror_in(t))
}

/// The first `http(s)://…/debian` archive in apt sources (deb822 `URIs:` lines or
/// one-line `deb URI SUITE …` entries); security and other archives are skipped.
fn mirror_in(text: &str) -> Option<String> {
    text.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|line| {
        let uri = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["URIs:", uri, ..] => *uri,
            ["deb", uri, ..] if !uri.starts_with('[') => *uri,
            ["deb", _options, uri, ..] => *uri,
            _ => return None,
        };
        let is_http = uri.starts_with("http://") || uri.starts_with("https://");
        (is_http && uri.trim_end_matches('/').ends_with("/debian")).then(|| uri.trim_end_matches('/').to_string())
    })
}

/// What identifies the Debian root filesystem: the inputs of debootstrap (not
/// the mirror, which serves the same packages) and the packing recipe.
pub(super) fn rootfs_identity() -> String {
    let recipe = format!(
        "debootstrap\0{DEBIAN_SUITE}\0{DEBIAN_VARIANT}\0{}\0recipe {ROOTFS_RECIPE}\0{}",
        DEBIAN_PACKAGES.join(","),
        ROOTFS_EXCLUDES.join(",")
    );
    hex12(&Sha256::digest(recipe.as_bytes()))
}

/// Makes the cached root filesystem tarball unless it exists: debootstrap into a
/// temp dir next to it, pack, rename into place. A half-made one is removed.
pub(super) async fn ensure_rootfs(images_dir: &Path, rootfs_tar: &Path, progress: &dyn Fn(&str)) -> Result<(), ImageError> {
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
    let mirror = std::env::var(MIRROR_VAR).ok().filter(|m| !m.is_empty()).or_else(apt_mirror);
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
pub(super) fn exists_in_root(root: &Path, rel: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_read_from_apt_sources_in_either_format() {
        let deb822 = "Types: deb\n# http://snapshot.debian.org/archive/debian/2025\nURIs: http://mirror.example/debian/\n\
                      Suites: bookworm\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n";
        assert_eq!(mirror_in(deb822).as_deref(), Some("http://mirror.example/debian"));
        let one_line = "# deb http://old/debian bookworm main\ndeb [arch=amd64] https://proxy.local/debian bookworm main\n";
        assert_eq!(mirror_in(one_line).as_deref(), Some("https://proxy.local/debian"));
        assert_eq!(mirror_in("deb http://deb.debian.org/debian-security bookworm-security main\n"), None);
        assert_eq!(mirror_in("deb file:/srv/debian bookworm main\n"), None);
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
}
