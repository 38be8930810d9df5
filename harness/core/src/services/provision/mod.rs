//! Provisioning: Kafka's jars and MinIO's binary, fetched or built once into a
//! per-user cache, plus the Java runtime found on the machine.
//!
//! Cache dir: `$HARNESS_CACHE_DIR`, else `$XDG_CACHE_HOME/harness`, else
//! `$HOME/.cache/harness`.
//! - Kafka: `$KAFKA_HOME/libs` if set, else `<cache>/kafka/4.1.1/libs`, made by
//!   `mvn dependency:copy-dependencies` on a generated pom.
//! - MinIO: `$MINIO_BIN` if set, else `<cache>/minio/<commit>/bin/minio`, made by
//!   `go install github.com/minio/minio@<pinned version>`.
//!
//! Both are built in a temp dir next to their final place and renamed into it
//! when complete, so an interrupted fetch is never mistaken for a finished one.
//! A lock file per tool keeps two harness processes from fetching at once.

mod fetch;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use fetch::{ensure_kafka_jars, ensure_minio};
pub(crate) use fetch::{run_logged, CacheLock};

/// The Kafka release whose jars the harness runs.
pub const KAFKA_VERSION: &str = "4.1.1";
/// log4j2, which Kafka 4 logs through.
pub const LOG4J_VERSION: &str = "2.24.3";
/// The SLF4J → log4j2 binding. `kafka_2.13`'s pom pins `slf4j-api` 1.7.36, and
/// Maven's nearest-wins keeps that version, so the binding must be the SLF4J
/// 1.x one: with `log4j-slf4j2-impl` SLF4J falls back to its no-op logger and
/// Kafka's log stays empty.
pub const LOG4J_SLF4J_BINDING: &str = "log4j-slf4j-impl";
/// The MinIO Go module version `go install` builds.
pub const MINIO_MODULE_VERSION: &str = "v0.0.0-20260212201848-7aac2a2c5b7c";
/// The commit in [`MINIO_MODULE_VERSION`]; names the cache dir.
pub const MINIO_COMMIT: &str = "7aac2a2c5b7c";

const INSTALL_HINT: &str = "install what is missing (Debian: apt-get install openjdk-17-jre-headless maven golang)";

/// The binaries a local run needs (empty for an external pipeline, which needs none).
#[derive(Clone, Debug, Default)]
pub struct Toolchain {
    /// Directory of Kafka's jars (the classpath is `<kafka_libs>/*`).
    pub kafka_libs: PathBuf,
    pub kafka_version: String,
    pub minio_bin: PathBuf,
    /// First line of `minio --version`, or the pinned module version for a
    /// `go install` build (those report "DEVELOPMENT.GOGET").
    pub minio_version: String,
    pub java: PathBuf,
    /// First line of `java -version`.
    pub java_version: String,
    /// What this call fetched or built into the cache, with how long it took.
    pub provisioned: Vec<harness_model::results::Provisioned>,
}

/// Why provisioning failed. Each message says what to install or set.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("not found on PATH: {tools}; {hint}")]
    MissingTools { tools: String, hint: String },
    #[error("{var}={value} is not usable: {reason}")]
    BadVariable { var: &'static str, value: String, reason: String },
    #[error("no cache directory: set HARNESS_CACHE_DIR (or HOME)")]
    NoCacheDir,
    #[error("{what} failed ({status}); last lines of its output ({log}):\n{tail}", log = log.display())]
    Command { what: String, status: String, log: PathBuf, tail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProvisionError {
    let context = context.into();
    move |source| ProvisionError::Io { context, source }
}

/// Finds or fetches everything a local run needs. Cold, this takes minutes;
/// `progress` hears one line per slow step, nothing else. Missing tools are
/// reported together in one error before anything is fetched.
pub async fn provision(progress: &dyn Fn(&str)) -> Result<Toolchain, ProvisionError> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut missing = Vec::new();
    let java = find_java(env("JAVA_HOME").as_deref());
    if java.is_none() {
        missing.push(("java", "to run Kafka", None));
    }
    let kafka_home = env("KAFKA_HOME");
    let minio_var = env("MINIO_BIN");
    let cache = if kafka_home.is_none() || minio_var.is_none() { Some(cache_dir_from(&env)?) } else { None };
    if let (None, Some(cache)) = (&kafka_home, &cache) {
        if !kafka_libs_complete(&kafka_cache_dir(cache).join("libs")) && find_on_path("mvn").is_none() {
            let alt = format!("set KAFKA_HOME to an extracted Kafka {KAFKA_VERSION} release");
            missing.push(("mvn", "to fetch Kafka's jars from Maven Central", Some(alt)));
        }
    }
    if let (None, Some(cache)) = (&minio_var, &cache) {
        if !is_executable(&minio_cache_bin(cache)) && find_on_path("go").is_none() {
            let alt = "set MINIO_BIN to a minio binary".to_string();
            missing.push(("go", "to build MinIO (Go >= 1.21)", Some(alt)));
        }
    }
    let java = match java {
        Some(java) if missing.is_empty() => java,
        _ => return Err(missing_tools_error(&missing)),
    };
    let java_version = first_line_of(&java, &["-version"]).await;

    let mut provisioned = Vec::new();
    let mut timed = |what: String, into: &Path, since: std::time::Instant| {
        provisioned.push(harness_model::results::Provisioned {
            what,
            seconds: since.elapsed().as_secs_f64(),
            into: into.display().to_string(),
        })
    };
    let kafka_libs = match (&kafka_home, &cache) {
        (Some(home), _) => kafka_home_libs(Path::new(home))?,
        (None, Some(cache)) => {
            let (cached, since) = (kafka_libs_complete(&kafka_cache_dir(cache).join("libs")), std::time::Instant::now());
            let libs = ensure_kafka_jars(cache, progress).await?;
            if !cached {
                timed(format!("fetched Kafka {KAFKA_VERSION}'s jars from Maven Central"), &libs, since);
            }
            libs
        }
        (None, None) => return Err(ProvisionError::NoCacheDir),
    };
    let kafka_version = kafka_version_in(&kafka_libs).unwrap_or_else(|| KAFKA_VERSION.to_string());
    let (minio_bin, built_by_us) = match (&minio_var, &cache) {
        (Some(bin), _) => (minio_bin_from_var(Path::new(bin))?, false),
        (None, Some(cache)) => {
            let (cached, since) = (is_executable(&minio_cache_bin(cache)), std::time::Instant::now());
            let bin = ensure_minio(cache, progress).await?;
            if !cached {
                timed("built MinIO with go install".to_string(), &bin, since);
            }
            (bin, true)
        }
        (None, None) => return Err(ProvisionError::NoCacheDir),
    };
    let reported = first_line_of(&minio_bin, &["--version"]).await;
    let minio_version = if built_by_us && reported.contains("DEVELOPMENT") {
        format!("github.com/minio/minio@{MINIO_MODULE_VERSION} (go install)")
    } else {
        reported
    };
    Ok(Toolchain { kafka_libs, kafka_version, minio_bin, minio_version, java, java_version, provisioned })
}

/// One error for every missing tool: what each is for, what to install, and
/// which variable would make it unnecessary.
fn missing_tools_error(missing: &[(&'static str, &'static str, Option<String>)]) -> ProvisionError {
    let tools = missing.iter().map(|(tool, purpose, _)| format!("`{tool}` ({purpose})")).collect::<Vec<_>>().join(", ");
    let mut hint = INSTALL_HINT.to_string();
    for (_, _, alt) in missing {
        if let Some(alt) = alt {
            hint.push_str(", or ");
            hint.push_str(alt);
        }
    }
    ProvisionError::MissingTools { tools, hint }
}

/// The cache dir from an environment lookup (a function so tests need not touch
/// the process environment).
pub fn cache_dir_from(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf, ProvisionError> {
    if let Some(dir) = env("HARNESS_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = env("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("harness"));
    }
    match env("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("harness")),
        None => Err(ProvisionError::NoCacheDir),
    }
}

/// `<cache>/kafka/<version>`: holds `pom.xml` and `libs/`.
pub fn kafka_cache_dir(cache: &Path) -> PathBuf {
    cache.join("kafka").join(KAFKA_VERSION)
}

/// `<cache>/minio/<commit>/bin/minio`.
pub fn minio_cache_bin(cache: &Path) -> PathBuf {
    cache.join("minio").join(MINIO_COMMIT).join("bin").join("minio")
}

/// The pom whose runtime dependencies are exactly the jars Kafka needs.
pub fn kafka_pom() -> String {
    let dep = |g: &str, a: &str, v: &str| {
        format!("    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>\n")
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n\
         \x20 <modelVersion>4.0.0</modelVersion>\n\
         \x20 <groupId>harness.provision</groupId>\n\
         \x20 <artifactId>kafka-runtime</artifactId>\n\
         \x20 <version>1</version>\n\
         \x20 <packaging>pom</packaging>\n\
         \x20 <dependencies>\n{}{}{}\x20 </dependencies>\n\
         </project>\n",
        dep("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
        dep("org.apache.logging.log4j", LOG4J_SLF4J_BINDING, LOG4J_VERSION),
        dep("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
    )
}

/// A libs dir is complete when it holds the broker jar, log4j's core and the
/// SLF4J binding; the atomic rename guarantees the rest came with them. (A
/// cache made by an earlier pom with the SLF4J 2 binding is not complete: it
/// runs, but Kafka logs nothing, so it is fetched again once.)
fn kafka_libs_complete(libs: &Path) -> bool {
    [
        format!("kafka_2.13-{KAFKA_VERSION}.jar"),
        format!("log4j-core-{LOG4J_VERSION}.jar"),
        format!("{LOG4J_SLF4J_BINDING}-{LOG4J_VERSION}.jar"),
    ]
    .iter()
    .all(|jar| libs.join(jar).is_file())
}

/// The Kafka version from the `kafka-clients-<v>.jar` in a libs dir.
pub fn kafka_version_in(libs: &Path) -> Option<String> {
    std::fs::read_dir(libs).ok()?.find_map(|entry| {
        let name = entry.ok()?.file_name().into_string().ok()?;
        let v = name.strip_prefix("kafka-clients-")?.strip_suffix(".jar")?;
        (!v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit())).then(|| v.to_string())
    })
}

fn kafka_home_libs(home: &Path) -> Result<PathBuf, ProvisionError> {
    let libs = home.join("libs");
    if kafka_version_in(&libs).is_none() {
        return Err(ProvisionError::BadVariable {
            var: "KAFKA_HOME",
            value: home.display().to_string(),
            reason: "no libs/kafka-clients-*.jar inside; point it at an extracted Kafka release".into(),
        });
    }
    Ok(libs)
}

fn minio_bin_from_var(bin: &Path) -> Result<PathBuf, ProvisionError> {
    if !is_executable(bin) {
        return Err(ProvisionError::BadVariable {
            var: "MINIO_BIN",
            value: bin.display().to_string(),
            reason: "not an executable file".into(),
        });
    }
    Ok(bin.to_path_buf())
}

/// `$JAVA_HOME/bin/java` if that exists, else `java` on PATH.
fn find_java(java_home: Option<&OsStr>) -> Option<PathBuf> {
    if let Some(home) = java_home {
        let java = Path::new(home).join("bin").join("java");
        if is_executable(&java) {
            return Some(java);
        }
    }
    find_on_path("java")
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The first executable called `name` in `$PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
}

/// First non-empty line a program prints (stdout, then stderr: `java -version`
/// writes to stderr). A failure becomes a note, not an error: versions are for
/// the report only.
async fn first_line_of(program: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(program).args(args).stdin(Stdio::null()).output().await;
    match out {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("unknown")
            .to_string(),
        Err(e) => format!("unknown ({} failed: {e})", program.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn cache_dir_prefers_harness_then_xdg_then_home() {
        let all = [("HARNESS_CACHE_DIR", "/h"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/home/u")];
        assert_eq!(cache_dir_from(&env_of(&all)).unwrap(), PathBuf::from("/h"));
        assert_eq!(cache_dir_from(&env_of(&all[1..])).unwrap(), PathBuf::from("/x/harness"));
        assert_eq!(cache_dir_from(&env_of(&all[2..])).unwrap(), PathBuf::from("/home/u/.cache/harness"));
        assert!(matches!(cache_dir_from(&env_of(&[])), Err(ProvisionError::NoCacheDir)));
    }

    #[test]
    fn cache_layout_is_versioned() {
        let c = Path::new("/c");
        assert_eq!(kafka_cache_dir(c), PathBuf::from("/c/kafka/4.1.1"));
        assert_eq!(minio_cache_bin(c), PathBuf::from("/c/minio/7aac2a2c5b7c/bin/minio"));
        assert!(MINIO_MODULE_VERSION.ends_with(MINIO_COMMIT));
    }

    #[test]
    fn pom_pins_kafka_and_log4j() {
        let pom = kafka_pom();
        assert!(pom.contains("<packaging>pom</packaging>"));
        assert!(pom.contains("<artifactId>kafka_2.13</artifactId><version>4.1.1</version>"));
        assert!(pom.contains("<artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version>"));
        assert!(pom.contains("<artifactId>log4j-core</artifactId><version>2.24.3</version>"));
    }

    #[test]
    fn libs_are_complete_only_with_broker_and_log4j_jars() {
        let dir = tempfile::tempdir().unwrap();
        let libs = dir.path();
        assert!(!kafka_libs_complete(libs));
        std::fs::write(libs.join("kafka_2.13-4.1.1.jar"), b"").unwrap();
        assert!(!kafka_libs_complete(libs));
        std::fs::write(libs.join("log4j-core-2.24.3.jar"), b"").unwrap();
        std::fs::write(libs.join("log4j-slf4j2-impl-2.24.3.jar"), b"").unwrap();
        assert!(!kafka_libs_complete(libs), "the SLF4J 2 binding does not bind slf4j-api 1.7");
        std::fs::write(libs.join("log4j-slf4j-impl-2.24.3.jar"), b"").unwrap();
        assert!(kafka_libs_complete(libs));
        assert_eq!(kafka_version_in(libs), None);
        std::fs::write(libs.join("kafka-clients-4.1.1.jar"), b"").unwrap();
        assert_eq!(kafka_version_in(libs).as_deref(), Some("4.1.1"));
    }

    #[test]
    fn missing_tools_make_one_error_naming_installs_and_variables() {
        let err = missing_tools_error(&[
            ("java", "to run Kafka", None),
            ("go", "to build MinIO (Go >= 1.21)", Some("set MINIO_BIN to a minio binary".into())),
        ])
        .to_string();
        assert_eq!(
            err,
            "not found on PATH: `java` (to run Kafka), `go` (to build MinIO (Go >= 1.21)); \
             install what is missing (Debian: apt-get install openjdk-17-jre-headless maven golang), \
             or set MINIO_BIN to a minio binary"
        );
    }

    #[test]
    fn bad_variables_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let err = kafka_home_libs(dir.path()).unwrap_err().to_string();
        assert!(err.starts_with("KAFKA_HOME="), "{err}");
        let err = minio_bin_from_var(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(err.contains("MINIO_BIN=") && err.contains("not an executable"), "{err}");
    }
}
