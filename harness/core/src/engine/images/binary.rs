//! `FROM scratch` images of one binary: the binary and the shared libraries
//! `ldd` lists for it, at their own paths.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::context::{Context, Entry, Source};
use super::{io_err, ImageError, ImageSpec, LABEL_IMAGE, PATH_ENV};
use crate::services::process::describe_status;
use crate::services::provision::find_on_path;

/// The system's trust roots (Debian's path, where rustls-native-certs looks).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// `FROM scratch` with `binary` at `dest`, its shared libraries at their own
/// paths, a `/tmp`, and this machine's CA bundle when it has one: TLS clients in
/// the binary load the system's roots (the AWS SDK's, in a debug build, asserts
/// there are some, and the processor would crash-loop without them).
pub(super) async fn binary_image(kind: &'static str, binary: &Path, dest: &str, cmd: &[&str]) -> Result<ImageSpec, ImageError> {
    let libs = shared_libraries(binary).await?;
    let mut entries = vec![
        Entry { path: "rootfs/tmp".into(), mode: 0o1777, source: Source::Dir },
        Entry { path: format!("rootfs{dest}"), mode: 0o755, source: Source::File(binary.to_path_buf()) },
    ];
    for lib in libs {
        entries.push(Entry { path: format!("rootfs{}", lib.display()), mode: 0o755, source: Source::File(lib) });
    }
    if Path::new(CA_BUNDLE).is_file() {
        entries.push(Entry { path: format!("rootfs{CA_BUNDLE}"), mode: 0o644, source: Source::File(PathBuf::from(CA_BUNDLE)) });
    }
    let cmd = serde_json::to_string(cmd).unwrap_or_default();
    let dockerfile = format!("FROM scratch\nCOPY rootfs/ /\nENV PATH={PATH_ENV}\nLABEL {LABEL_IMAGE}={kind}\nCMD {cmd}\n");
    Ok(ImageSpec { kind, context: Context { dockerfile, entries } })
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
