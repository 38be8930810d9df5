//! report.html in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `ci/setup`) loads the report, logs no console message (no script error, no blocked
//! fetch or script under the page's Content-Security-Policy), shows the verdict and
//! both charts, and leaves a screenshot in `target/test-artifacts/`.

mod fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fixture::{history, report_dir, results, CORPUS};
use harness_core::report::write_all;

/// A hang guard, not a timing assertion: Chromium normally needs a few seconds.
const BROWSER_LIMIT: Duration = Duration::from_secs(180);

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CHROMIUM={} is not a file: unset it and run ci/setup (it installs Debian's `chromium`)", p.display());
        return p;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        for name in ["chromium", "chromium-browser"] {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium is not installed: run ci/setup (it installs Debian's `chromium` package), or set CHROMIUM to a Chromium binary");
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

struct Loaded {
    dom: String,
    /// Console messages Chromium logged for the page (errors, CSP violations, logs).
    console: Vec<String>,
}

/// Loads `page` in headless Chromium; `extra` adds e.g. `--dump-dom` or `--screenshot=...`.
fn load(page: &Path, extra: &[String]) -> Loaded {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.canonicalize().expect("page path").display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let (out_pipe, err_pipe) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let (out, err) = (read(Box::new(out_pipe)), read(Box::new(err_pipe)));
    loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if started.elapsed() > BROWSER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dom = String::from_utf8_lossy(&out.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    let console = stderr.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect();
    Loaded { dom, console }
}

/// The detector works: a page with a script error and a blocked fetch is caught.
#[test]
fn console_errors_are_detected_on_a_broken_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'\"></head>\
         <body><p>broken</p><img src=\"http://127.0.0.1:9/x.png\"><script>notDefined();</script></body></html>",
    )
    .expect("write page");
    let loaded = load(&page, &["--dump-dom".into()]);
    assert!(loaded.console.iter().any(|l| l.contains("notDefined is not defined")), "script error not seen: {:?}", loaded.console);
    assert!(loaded.console.iter().any(|l| l.contains("Content Security Policy")), "blocked fetch not seen: {:?}", loaded.console);
    assert!(loaded.dom.contains("<p>broken</p>"));
}

/// Count of elements named `tag` in a serialised DOM (text is escaped there, so a
/// `<tag` is always an element).
fn elements(dom: &str, tag: &str) -> usize {
    dom.matches(&format!("<{tag}")).count()
}

#[test]
fn report_renders_in_chromium_without_console_errors() {
    let keys: Vec<&str> = CORPUS.to_vec();
    let h = history(400, &keys, true);
    let mut r = results("browser-check", Some(&h), None);
    r.scenario.name = format!("browser-check {}", CORPUS[0]);
    let dir = report_dir(&CORPUS[..5]);
    write_all(dir.path(), &r, Some(&h)).expect("reports written");
    let page = dir.path().join("report.html");

    let loaded = load(&page, &["--dump-dom".into()]);
    assert!(loaded.console.is_empty(), "console messages while loading the report:\n{}", loaded.console.join("\n"));
    let dom = &loaded.dom;
    assert!(dom.contains("id=\"verdict\""), "no verdict banner in the DOM");
    assert!(dom.contains("<div class=\"word\">FAIL</div>"), "verdict word missing");
    assert_eq!(elements(dom, "svg"), 2, "expected the timeline and the latency chart");
    // The payloads stayed text: no element they could have created exists.
    for tag in ["script", "img", "base", "iframe", "object"] {
        assert_eq!(elements(dom, tag), 0, "a <{tag}> element exists in the rendered report");
    }
    assert!(!dom.contains("<h1>forged</h1>"));
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"));

    let shot = artifacts().join("report.png");
    let _ = std::fs::remove_file(&shot);
    let loaded = load(&page, &[format!("--screenshot={}", shot.display()), "--window-size=1280,3400".into()]);
    assert!(loaded.console.is_empty(), "{:?}", loaded.console);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "screenshot is not a rendered page ({} bytes)", png.len());
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn aborted_run_report_renders_in_chromium() {
    let r = results("aborted", None, Some("the environment did not start: MinIO exited with code 1 </pre><img src=x onerror=alert(1)>"));
    let dir = report_dir(&[]);
    write_all(dir.path(), &r, None).expect("reports written");
    let shot = artifacts().join("report-aborted.png");
    let _ = std::fs::remove_file(&shot);
    let page = dir.path().join("report.html");
    let loaded = load(&page, &["--dump-dom".into()]);
    assert!(loaded.console.is_empty(), "{:?}", loaded.console);
    assert!(loaded.dom.contains("<div class=\"word\">UNKNOWN</div>"));
    assert!(loaded.dom.contains("id=\"run-error\""));
    assert_eq!(elements(&loaded.dom, "img"), 0);
    load(&page, &[format!("--screenshot={}", shot.display()), "--window-size=1280,1400".into()]);
    assert!(std::fs::read(&shot).expect("screenshot").starts_with(b"\x89PNG"));
}
