//! Build contexts: a Dockerfile and the files it copies, their content hash
//! (an image's tag), and the tar the engine receives.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A build context: a Dockerfile and the files it copies.
#[derive(Clone, Debug)]
pub(super) struct Context {
    pub(super) dockerfile: String,
    pub(super) entries: Vec<Entry>,
}

/// One file or directory of a build context, at `path` (relative, `/`-separated).
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) path: String,
    pub(super) mode: u32,
    pub(super) source: Source,
}

#[derive(Clone, Debug)]
pub(super) enum Source {
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
    pub(super) fn content_hash(&self) -> io::Result<String> {
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
    pub(super) fn size_bytes(&self) -> u64 {
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
    pub(super) fn write_tar<W: Write>(&self, w: W) -> io::Result<W> {
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

pub(super) fn hex12(digest: &[u8]) -> String {
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

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
}
