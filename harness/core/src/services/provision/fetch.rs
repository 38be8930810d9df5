//! The slow, one-time steps of provisioning: fetching Kafka's jars with Maven
//! and building MinIO with `go install`, each into a temp dir renamed into the
//! cache when complete, under a per-tool lock file.

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{
    find_on_path, io_err, is_executable, kafka_cache_dir, kafka_libs_complete, kafka_pom, minio_cache_bin, missing_tools_error,
    ProvisionError, KAFKA_VERSION, MINIO_COMMIT, MINIO_MODULE_VERSION,
};
use crate::services::process::{describe_status, tail_log};

/// Holds an exclusive `flock` on `<dir>/.lock` while alive: one harness process
/// fills a cache folder at a time (Kafka's jars, MinIO, container images).
pub(crate) struct CacheLock {
    _file: std::fs::File,
}

impl CacheLock {
    pub(crate) async fn acquire(dir: &Path, what: &str, progress: &dyn Fn(&str)) -> Result<Self, ProvisionError> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let path = dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(CacheLock { _file: file });
        }
        progress(&format!("waiting for another harness process that is provisioning {what}…"));
        // A blocking wait on a blocking-pool thread: nothing is spawned from it.
        tokio::task::spawn_blocking(move || {
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                Ok(CacheLock { _file: file })
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
        .await
        .map_err(|e| ProvisionError::Io {
            context: format!("waiting for {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(io_err(format!("locking {}", path.display())))
    }
}

fn temp_dir_in(parent: &Path, label: &str) -> Result<PathBuf, ProvisionError> {
    let nonce = crate::services::token::hex_token(4).map_err(io_err("reading /dev/urandom"))?;
    let dir = parent.join(format!(".tmp-{label}-{}-{nonce}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    Ok(dir)
}

/// Runs a provisioning command with its output in `log`, showing its progress (time
/// so far, lines of output, the latest line) while it runs; a failure carries the
/// output's tail.
pub(crate) async fn run_logged(
    what: &str,
    cmd: &mut tokio::process::Command,
    log: &Path,
    progress: &dyn Fn(&str),
) -> Result<(), ProvisionError> {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, BufReader};

    let out = std::fs::File::create(log).map_err(io_err(format!("creating {}", log.display())))?;
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(io_err(format!("starting {what}")))?;
    // Both streams go line by line into the log and into what the watch shows.
    let seen = Arc::new(Mutex::new((0u64, String::new(), out)));
    let mut readers = Vec::new();
    let streams: [Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>; 2] =
        [child.stdout.take().map(|o| Box::new(o) as _), child.stderr.take().map(|e| Box::new(e) as _)];
    for stream in streams.into_iter().flatten() {
        let seen = seen.clone();
        readers.push(tokio::spawn(async move {
            // Bytes, not `lines()`: a line that is not UTF-8 (a file name in tar's
            // output) would end `lines()`, and the command would meet a closed pipe.
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line).await, Ok(1..)) {
                use std::io::Write;
                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                let _ = s.2.write_all(&line);
                s.0 += 1;
                s.1 = String::from_utf8_lossy(&line).trim_end().to_string();
                line.clear();
            }
        }));
    }
    let mut watch = crate::status::StepWatch::start(what);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(io_err(format!("waiting for {what}")))?,
            _ = tick.tick() => {
                let (lines, last) = {
                    let s = seen.lock().unwrap_or_else(|e| e.into_inner());
                    (s.0, s.1.clone())
                };
                watch.update(lines, &last, progress);
            }
        }
    };
    for r in readers {
        let _ = r.await;
    }
    watch.finish(status.success(), progress);
    if status.success() {
        return Ok(());
    }
    Err(ProvisionError::Command {
        what: what.to_string(),
        status: describe_status(status),
        log: log.to_path_buf(),
        tail: tail_log(log, 20),
    })
}

pub(super) async fn ensure_kafka_jars(cache: &Path, progress: &dyn Fn(&str)) -> Result<PathBuf, ProvisionError> {
    let final_dir = kafka_cache_dir(cache);
    let libs = final_dir.join("libs");
    if kafka_libs_complete(&libs) {
        return Ok(libs);
    }
    let mvn = find_on_path("mvn").ok_or_else(|| {
        let alt = format!("set KAFKA_HOME to an extracted Kafka {KAFKA_VERSION} release");
        missing_tools_error(&[("mvn", "to fetch Kafka's jars from Maven Central", Some(alt))])
    })?;
    let parent = cache.join("kafka");
    let _lock = CacheLock::acquire(&parent, "Kafka's jars", progress).await?;
    if kafka_libs_complete(&libs) {
        return Ok(libs); // another process finished while we waited
    }
    progress(&format!(
        "fetching Kafka {KAFKA_VERSION} jars from Maven Central (one time, ~1 min; log: {})…",
        parent.join("fetch.log").display()
    ));
    let tmp = temp_dir_in(&parent, KAFKA_VERSION)?;
    let pom = tmp.join("pom.xml");
    std::fs::write(&pom, kafka_pom()).map_err(io_err(format!("writing {}", pom.display())))?;
    let log = parent.join("fetch.log");
    let result = run_logged(
        "mvn dependency:copy-dependencies",
        tokio::process::Command::new(&mvn)
            .args(["-B", "dependency:copy-dependencies", "-DoutputDirectory=libs", "-DincludeScope=runtime"])
            .current_dir(&tmp),
        &log,
        progress,
    )
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if !kafka_libs_complete(&tmp.join("libs")) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(ProvisionError::Command {
            what: "mvn dependency:copy-dependencies".into(),
            status: format!("succeeded but kafka_2.13-{KAFKA_VERSION}.jar is missing"),
            log: log.clone(),
            tail: tail_log(&log, 20),
        });
    }
    // An incomplete leftover is moved aside, not deleted: a Kafka another run
    // started from it may still load classes from those jars.
    if final_dir.exists() {
        let old = parent.join(format!(".old-{KAFKA_VERSION}-{}", std::process::id()));
        std::fs::rename(&final_dir, &old).map_err(io_err(format!("moving {} aside", final_dir.display())))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io_err(format!("moving jars into {}", final_dir.display())))?;
    Ok(libs)
}

pub(super) async fn ensure_minio(cache: &Path, progress: &dyn Fn(&str)) -> Result<PathBuf, ProvisionError> {
    let bin = minio_cache_bin(cache);
    if is_executable(&bin) {
        return Ok(bin);
    }
    let go = find_on_path("go").ok_or_else(|| {
        let alt = "set MINIO_BIN to a minio binary".to_string();
        missing_tools_error(&[("go", "to build MinIO (Go >= 1.21)", Some(alt))])
    })?;
    let parent = cache.join("minio");
    let _lock = CacheLock::acquire(&parent, "MinIO", progress).await?;
    if is_executable(&bin) {
        return Ok(bin);
    }
    let tmp = temp_dir_in(&parent, MINIO_COMMIT)?;
    let log = parent.join("build.log");
    progress(&format!("building MinIO with go install (one time, 3-8 minutes; log: {})…", log.display()));
    let result = run_logged(
        "go install github.com/minio/minio",
        tokio::process::Command::new(&go)
            .args([
                "install",
                // -v names each package as it is built: the progress line shows them.
                "-v",
                "-trimpath",
                &format!("github.com/minio/minio@{MINIO_MODULE_VERSION}"),
            ])
            .env("GOBIN", tmp.join("bin"))
            .env("CGO_ENABLED", "0")
            .current_dir(&tmp),
        &log,
        progress,
    )
    .await;
    let moved = result.and_then(|()| {
        let dir = bin.parent().unwrap_or(&parent);
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        std::fs::rename(tmp.join("bin").join("minio"), &bin).map_err(io_err(format!("moving minio into {}", bin.display())))
    });
    let _ = std::fs::remove_dir_all(&tmp);
    moved.map(|()| bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output that is not UTF-8 is kept byte for byte, and the command still runs
    /// to its end: its pipes stay read.
    #[tokio::test]
    async fn a_step_with_non_utf8_output_runs_to_the_end_and_logs_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("step.log");
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "printf 'a\\377b\\n'; i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; printf 'end'"]);
        run_logged("sh", &mut cmd, &log, &|_| {}).await.expect("the step succeeds");
        let bytes = std::fs::read(&log).unwrap();
        assert!(bytes.starts_with(b"a\xffb\nline 0\n"), "{:?}", &bytes[..20]);
        assert!(bytes.ends_with(b"line 19999\nend"));
    }
}
