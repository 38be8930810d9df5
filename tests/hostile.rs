//! `harness doctor` against addresses that answer Kafka's requests with hostile or
//! broken bytes (#22): a count of 2^31−1, a frame cut short, a byte a second, an HTTP
//! server, a TLS server, random bytes, a thousand advertised brokers. Each listener is
//! a thread of the test on 127.0.0.1; the doctor runs under a 2 GiB address-space
//! limit and a wall-time bound, and must answer with a finding (exit 1), never abort
//! or hang. No Kafka or MinIO needed: the S3 endpoint is a closed loopback port.
//!
//! Then `harness lint` and `harness validate` against hostile YAML and folders (an
//! alias bomb, a symlink loop, 10,000 documents, 10,001 files, 100,000 `[`, a 1 GiB
//! file) under the same bounds: a finding or an error naming the file, never an abort.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The doctor's address-space limit (KiB, for `ulimit -v`): a count of 2^31−1 made it
/// ask for 64 GiB; a bound of 2 GiB also catches bombs that would merely fit.
const MEMORY_LIMIT_KIB: u64 = 2 << 20;
/// Far above what any case takes (a few seconds): a hang, not a slow answer.
const WALL_LIMIT: Duration = Duration::from_secs(60);
/// `--timeout`: the limit of each probe.
const PROBE_TIMEOUT: &str = "2s";

/// What a hostile listener does with one connection.
type Script = dyn Fn(&mut TcpStream, &AtomicBool) + Send + Sync;

/// A listener on 127.0.0.1 running `script` on each connection (a thread each);
/// stopped and joined on drop.
struct Hostile {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hostile {
    fn start(script: impl Fn(&mut TcpStream, &AtomicBool) + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut handlers = Vec::new();
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let (script, stopping) = (script.clone(), stopping.clone());
                handlers.push(std::thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    script(&mut conn, &stopping);
                }));
            }
            handlers.into_iter().for_each(|h| drop(h.join()));
        });
        Hostile { addr, stop, thread: Some(thread) }
    }

    /// Answers each request of a connection with `answer(api_key, correlation_id)`
    /// (`None`: close), as a Kafka listener would.
    fn kafka(answer: impl Fn(i16, [u8; 4]) -> Option<Vec<u8>> + Send + Sync + 'static) -> Hostile {
        Hostile::start(move |conn, _| {
            while let Some((key, correlation)) = read_request(conn) {
                match answer(key, correlation) {
                    Some(bytes) if conn.write_all(&bytes).is_ok() => {}
                    _ => return,
                }
            }
        })
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop.
        drop(TcpStream::connect(&self.addr));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One Kafka request: its API key and correlation id (`None`: closed, or not Kafka).
fn read_request(conn: &mut TcpStream) -> Option<(i16, [u8; 4])> {
    let mut len = [0u8; 4];
    conn.read_exact(&mut len).ok()?;
    let len = usize::try_from(i32::from_be_bytes(len)).ok().filter(|l| (8..65_536).contains(l))?;
    let mut request = vec![0u8; len];
    conn.read_exact(&mut request).ok()?;
    Some((i16::from_be_bytes([request[0], request[1]]), [request[4], request[5], request[6], request[7]]))
}

/// A frame: the length prefix, the correlation id, then `body`.
fn frame(correlation: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    out.extend(correlation);
    out.extend(body);
    out
}

/// An ApiVersions v0 answer: no error, Metadata (key 3) up to v8 (not flexible).
fn api_versions(correlation: [u8; 4]) -> Vec<u8> {
    frame(correlation, &[0, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 8])
}

/// The count of the 14-byte bomb: 2^31−1.
const BOMB: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];

/// A port nothing listens on (for `--s3`: the doctor's S3 checks fail at once).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Run {
    json: serde_json::Value,
    took: Duration,
}

impl Run {
    /// The error the doctor found at the Kafka bootstrap address.
    fn kafka_error(&self) -> &serde_json::Value {
        let findings = self.json["findings"].as_array().unwrap();
        findings
            .iter()
            .find(|f| f["link"] == "kafka_bootstrap" && f["severity"] == "error")
            .unwrap_or_else(|| panic!("no error at the Kafka bootstrap: {:#}", self.json))
    }

    fn evidence(&self) -> &str {
        self.kafka_error()["evidence"].as_str().unwrap()
    }

    fn cause(&self) -> &str {
        self.kafka_error()["cause"].as_str().unwrap()
    }
}

/// `harness doctor --kafka ADDR`, under the memory limit and the wall-time bound;
/// asserts it exited 1 (a broken link) with its JSON, not an abort or a hang.
fn doctor(kafka: &str) -> Run {
    let s3 = format!("http://127.0.0.1:{}", closed_port());
    let script = format!("ulimit -v {MEMORY_LIMIT_KIB} && exec timeout -s KILL {} \"$0\" \"$@\"", WALL_LIMIT.as_secs());
    let started = Instant::now();
    let out = std::process::Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_harness")])
        .args(["doctor", "--s3", &s3, "--kafka", kafka, "--no-canary", "--timeout", PROBE_TIMEOUT, "--format", "json", "-q"])
        .args(["--access-key-env", "HOSTILE_TEST_AK", "--secret-key-env", "HOSTILE_TEST_SK"])
        .envs([("HOSTILE_TEST_AK", "user"), ("HOSTILE_TEST_SK", "secret-0123")])
        .current_dir(crate::util::repo())
        .output()
        .expect("run the harness binary");
    let took = started.elapsed();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    let code = out.status.code().unwrap_or(-1);
    assert!(took < WALL_LIMIT, "the doctor hung ({took:?}, exit {code}): {stderr}");
    assert_eq!(code, 1, "the doctor's exit code (1: a broken link)\nstdout: {stdout}\nstderr: {stderr}");
    assert!(!stderr.contains("memory allocation"), "{stderr}");
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("the doctor's JSON: {e}\n{stdout}\n{stderr}"));
    Run { json, took }
}

/// Asserts the doctor named `addr` as no Kafka listener, with `evidence` in what it saw.
fn assert_not_kafka(run: &Run, addr: &str, evidence: &str) {
    assert_eq!(run.cause(), format!("{addr} is not a Kafka listener"), "{:#}", run.kafka_error());
    assert!(run.evidence().contains(evidence), "{:?} lacks {evidence:?}", run.evidence());
}

/// #22: the 14-byte answer that made the doctor print "memory allocation of
/// 68719476704 bytes failed" and abort.
#[test]
fn an_array_count_of_2_pow_31_minus_1_is_a_finding_not_an_abort() {
    let bomb = Hostile::kafka(|_, correlation| Some(frame(correlation, &[&[0, 0][..], &BOMB].concat())));
    let run = doctor(&bomb.addr);
    assert_not_kafka(&run, &bomb.addr, "no ApiVersions answer (byte 6: api_keys: 2147483647 entries announced, 0 bytes left)");
    assert!(run.took < Duration::from_secs(20), "{:?}", run.took);
}

/// The same count in the two later answers: Metadata's brokers, SaslHandshake's
/// mechanisms (behind a listener that closes on Metadata, as a SASL one does).
#[test]
fn a_count_bomb_in_metadata_or_the_sasl_handshake_is_a_finding() {
    let metadata = Hostile::kafka(|key, correlation| match key {
        18 => Some(api_versions(correlation)),
        _ => Some(frame(correlation, &[&[0, 0, 0, 0][..], &BOMB].concat())), // throttle, brokers
    });
    let run = doctor(&metadata.addr);
    assert_not_kafka(&run, &metadata.addr, "no Metadata answer (byte 8: brokers: 2147483647 entries announced, 0 bytes left)");

    let sasl = Hostile::kafka(|key, correlation| match key {
        18 => Some(api_versions(correlation)),
        17 => Some(frame(correlation, &[&[0, 0][..], &BOMB].concat())),
        _ => None,
    });
    let run = doctor(&sasl.addr);
    assert_not_kafka(&run, &sasl.addr, "no SaslHandshake answer (byte 6: mechanisms: 2147483647 entries announced, 0 bytes left)");
}

#[test]
fn a_frame_cut_short_is_a_finding() {
    // 256 bytes announced, 6 sent, closed.
    let cut = Hostile::start(|conn, _| {
        let Some((_, correlation)) = read_request(conn) else { return };
        let mut f = frame(correlation, &[0, 0]);
        f[..4].copy_from_slice(&256i32.to_be_bytes());
        let _ = conn.write_all(&f);
    });
    let run = doctor(&cut.addr);
    assert_not_kafka(&run, &cut.addr, "a 256-byte answer announced, the connection closed after 6");
}

/// A byte a second of a well-formed answer: every read succeeds, the answer never
/// completes within the probe's timeout, which bounds the whole probe.
#[test]
fn a_slow_loris_is_cut_at_the_probe_timeout() {
    let loris = Hostile::start(|conn, stop| {
        let Some((_, correlation)) = read_request(conn) else { return };
        for b in api_versions(correlation).into_iter().cycle().take(120) {
            if stop.load(Ordering::SeqCst) || conn.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let run = doctor(&loris.addr);
    assert!(run.evidence().starts_with("no answer within 2s"), "{:#}", run.kafka_error());
    assert!(run.cause().contains("a port that is not Kafka's"), "{:#}", run.kafka_error());
    // The probe's 2 s, the S3 checks' time, start-up: far from the 16 s of the full answer.
    assert!(run.took < Duration::from_secs(10), "{:?}", run.took);
}

#[test]
fn an_http_server_on_the_kafka_port_is_named() {
    let http = Hostile::start(|conn, _| {
        let mut request = [0u8; 512];
        let _ = conn.read(&mut request);
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    let run = doctor(&http.addr);
    assert!(run.cause().starts_with(&format!("{} is not a Kafka listener (an HTTP port", http.addr)), "{:#}", run.kafka_error());
    assert!(run.evidence().contains("\"HTTP/1.1 400 Bad Request\""), "{:#}", run.kafka_error());
}

/// A TLS server answers plaintext with an alert (the doctor names a TLS listener),
/// or, looking like one, with a handshake record whose first bytes read as 369 MB.
#[test]
fn a_tls_looking_listener_is_named() {
    let alert = Hostile::start(|conn, _| {
        let _ = read_request(conn);
        let _ = conn.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]); // fatal, decode_error
    });
    let run = doctor(&alert.addr);
    assert_eq!(run.evidence(), "a TLS listener answered with a TLS alert");
    assert_eq!(run.cause(), "the processor speaks plaintext to a TLS listener");

    let handshake = Hostile::start(|conn, _| {
        let _ = read_request(conn);
        let mut hello = vec![0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03];
        hello.extend([0x5a; 115]);
        let _ = conn.write_all(&hello);
    });
    let run = doctor(&handshake.addr);
    assert_not_kafka(&run, &handshake.addr, "16 03 03 00 7a 02 00 00 76 03 03 5a");
}

/// Random bytes (seeded: the same every run), as they come and behind a plausible
/// frame (a length and the correlation id, so the decoder reads them).
#[test]
fn random_bytes_are_a_finding() {
    for seed in [1u64, 22, 0x5eed] {
        let raw = Hostile::start(move |conn, _| {
            let _ = read_request(conn);
            let _ = conn.write_all(&random_bytes(seed, 4096));
        });
        let run = doctor(&raw.addr);
        assert_eq!(run.cause(), format!("{} is not a Kafka listener", raw.addr), "seed {seed}: {:#}", run.kafka_error());

        let framed = Hostile::kafka(move |_, correlation| Some(frame(correlation, &random_bytes(seed, 200))));
        let run = doctor(&framed.addr);
        assert_not_kafka(&run, &framed.addr, "no ApiVersions answer (byte ");
    }
}

/// A Kafka-looking listener advertising a thousand brokers, all at an address that
/// accepts and never answers: probed all at once, 32 of them, in one probe's time.
#[test]
fn a_thousand_advertised_brokers_take_one_probe_time() {
    let silent = Hostile::start(|conn, stop| {
        let mut sink = [0u8; 512];
        // Reads until the doctor goes away (or the test ends): never a word back.
        loop {
            match conn.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
                        && !stop.load(Ordering::SeqCst) => {}
                Err(_) => return,
            }
        }
    });
    let (host, port) = silent.addr.rsplit_once(':').unwrap();
    let (host, port) = (host.to_string(), port.parse::<i32>().unwrap());
    let kafka = Hostile::kafka(move |key, correlation| match key {
        18 => Some(api_versions(correlation)),
        _ => {
            // Metadata v8: throttle, brokers, cluster id, controller, no topics, cluster ops.
            let mut body = vec![0, 0, 0, 0];
            body.extend(1000i32.to_be_bytes());
            for id in 0..1000i32 {
                body.extend(id.to_be_bytes());
                body.extend((host.len() as i16).to_be_bytes());
                body.extend(host.as_bytes());
                body.extend(port.to_be_bytes());
                body.extend((-1i16).to_be_bytes()); // no rack
            }
            body.extend((-1i16).to_be_bytes());
            body.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            Some(frame(correlation, &body))
        }
    });
    let run = doctor(&kafka.addr);
    let findings = run.json["findings"].as_array().unwrap();
    let ok = findings.iter().find(|f| f["link"] == "kafka_bootstrap" && f["severity"] == "ok").expect("the bootstrap answered as Kafka");
    assert!(ok["evidence"].as_str().unwrap().ends_with("and 968 more"), "{ok:#}");
    let advertised: Vec<_> = findings.iter().filter(|f| f["link"] == "advertised_listeners").collect();
    assert_eq!(advertised.iter().filter(|f| f["severity"] == "error").count(), 32);
    let warning = advertised.iter().find(|f| f["severity"] == "warning").expect("a warning for those not probed");
    assert_eq!(warning["evidence"], "1000 brokers advertised; the first 32 were probed, the others were not");
    assert!(run.took < Duration::from_secs(15), "32 probes of 2 s one after another would take 64 s: {:?}", run.took);
}

/// xorshift64*: the same bytes for the same seed.
fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Hostile YAML and folders (#22): `harness lint` and the scenario loader
// (`harness validate`, as `harness run` loads) under the same memory limit and wall
// bound. A bound hit is a finding (`input-too-large`, exit 1) or an error naming the
// file (exit 2), never an abort.

/// "Billion laughs": nine levels of nine aliases, 9^9 nodes from 600 bytes. Before
/// #22 `harness lint` grew past 4 GB and aborted.
const ALIAS_BOMB: &str = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
";

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// `harness ARGS` in `dir` under the memory limit and the wall bound; asserts it
/// neither hung nor aborted.
fn harness_bounded(dir: &std::path::Path, args: &[&str]) -> Outcome {
    let script = format!("ulimit -v {MEMORY_LIMIT_KIB} && exec timeout -s KILL {} \"$0\" \"$@\"", WALL_LIMIT.as_secs());
    let started = Instant::now();
    let out = std::process::Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_harness")])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the harness binary");
    let took = started.elapsed();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    let code = out.status.code().unwrap_or(-1);
    assert!(took < WALL_LIMIT, "harness {args:?} hung ({took:?}, exit {code}): {stderr}");
    assert!(!stderr.contains("memory allocation") && !stderr.contains("overflowed its stack"), "harness {args:?} aborted: {stderr}");
    assert!(code >= 0, "harness {args:?} was killed by a signal: {stderr}");
    Outcome { code, stdout, stderr, took }
}

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn lint_of_an_alias_bomb_is_input_too_large_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bomb.yaml", ALIAS_BOMB);
    let run = harness_bounded(dir.path(), &["lint", "bomb.yaml"]);
    assert_eq!(run.code, 1, "exit 1: an error finding\n{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(
            "bomb.yaml:6: error[input-too-large]: bomb.yaml is not read past line 6: its aliases expand to more than 100000 nodes"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("1 error, 0 warnings in 1 file\n"), "{}", run.stdout);
    assert!(run.took < Duration::from_secs(10), "{:?}", run.took);

    let json = harness_bounded(dir.path(), &["lint", "--format", "json", "bomb.yaml"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["findings"][0]["rule"], "input-too-large", "{json:#}");
    assert_eq!(json["findings"][0]["file"], "bomb.yaml", "{json:#}");
}

#[test]
fn validate_of_an_alias_bomb_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // As the top of a file, and under a key the loader reads: no key of a scenario takes
    // nested sequences, so the first wrong node stops it and the bomb is never expanded.
    write(dir.path(), "bomb.yaml", ALIAS_BOMB);
    let nested: String = format!(
        "name: bomb\nprocessor:\n  builtin: resize\n  env:\n{}",
        ALIAS_BOMB.lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    write(dir.path(), "nested.yaml", &nested);
    // Aliases the loader does expand, past its bound of 100.
    write(dir.path(), "aliases.yaml", &format!("name: &n x\nprocessor:\n  command: [{}]\n", vec!["*n"; 101].join(", ")));
    let expected = [
        ("bomb.yaml", "error: bomb.yaml:1: a: unknown field `a`, expected one of "),
        ("nested.yaml", "error: nested.yaml:5: processor.env.a: expected string scalar\n"),
        (
            "aliases.yaml",
            "error: aliases.yaml:3: processor.command: budget breached: Aliases { aliases: 101 }: past the scenario loader's bounds \
             (1 MiB, 32 levels of nesting, 100,000 nodes, 100 aliases and anchors, 10,000 events replayed by aliases); the file is not read further\n",
        ),
    ];
    for (file, error) in expected {
        let run = harness_bounded(dir.path(), &["validate", file]);
        assert_eq!(run.code, 2, "exit 2: invalid input\n{}{}", run.stdout, run.stderr);
        assert!(run.stderr.starts_with(error), "{}", run.stderr);
        assert!(run.took < Duration::from_secs(10), "{:?}", run.took);
    }
}

#[test]
fn lint_does_not_follow_a_symlink_loop() {
    let dir = tempfile::tempdir().unwrap();
    let k8s = dir.path().join("k8s");
    std::fs::create_dir_all(k8s.join("loop")).unwrap();
    write(&k8s, "topic.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n");
    std::os::unix::fs::symlink("..", k8s.join("loop/up")).unwrap();
    let run = harness_bounded(dir.path(), &["lint", "k8s"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "note: k8s/loop/up: a symlink to a folder, not followed (a link can lead back up the walk); name its target to lint it\n\
         ok: no findings in 1 file\n"
    );
}

#[test]
fn lint_of_10000_documents_is_linear() {
    // The `correct` lint case (9 documents), once per namespace: 9,999 documents,
    // each copy as right as the original.
    let case = crate::util::repo().join("harness/model/tests/lint/correct");
    let mut files: Vec<_> = std::fs::read_dir(&case).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let set: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n---\n");
    let copies: Vec<String> = (0..1111).map(|i| set.replace("pipeline", &format!("pipeline-{i}"))).collect();
    let text = copies.join("\n---\n");
    assert_eq!(text.matches("\nkind: ").count() + usize::from(text.starts_with("kind: ")), 9999);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big.yaml", &text);
    let run = harness_bounded(dir.path(), &["lint", "big.yaml"]);
    let head = &run.stdout[..run.stdout.len().min(2000)];
    assert!(run.code == 0 && run.stdout == "ok: no findings in 1 file\n", "exit {}: {head}\n{}", run.code, run.stderr);
    // Measured: 0.45 s and 78 MB (a quarter of the documents: 0.13 s), so no rule is quadratic.
    assert!(run.took < Duration::from_secs(20), "{:?}", run.took);
}

#[test]
fn deep_nesting_is_a_finding_and_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "deep.yaml", &"[".repeat(100_000));
    let run = harness_bounded(dir.path(), &["lint", "deep.yaml"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(
            "deep.yaml:1: error[input-too-large]: deep.yaml is not read past line 1: it nests more than 128 levels deep (the bound on depth)"
        ),
        "{}",
        run.stdout
    );
    let run = harness_bounded(dir.path(), &["validate", "deep.yaml"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.starts_with("error: deep.yaml:1: recursion limit exceeded: past the scenario loader's bounds"), "{}", run.stderr);
}

#[test]
fn a_file_over_the_size_cap_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: 1 GiB that takes no disk.
    std::fs::File::create(dir.path().join("huge.yaml")).unwrap().set_len(1 << 30).unwrap();
    let run = harness_bounded(dir.path(), &["lint", "huge.yaml"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "huge.yaml:1: error[input-too-large]: huge.yaml is 1073741824 bytes, more than the 16 MiB a file may have; it is not checked\n  \
         fix: lint a smaller set (fewer files, or the files that hold the pipeline's objects)\n\
         1 error, 0 warnings in 0 files\n"
    );
    let run = harness_bounded(dir.path(), &["validate", "huge.yaml"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr,
        "error: huge.yaml: the file is 1073741824 bytes, over the 1 MiB (1048576 bytes) a scenario file may have; it is not read\n"
    );
    assert!(run.took < Duration::from_secs(5), "{:?}", run.took);
}

#[test]
fn a_folder_walk_stops_at_10000_files() {
    let dir = tempfile::tempdir().unwrap();
    let k8s = dir.path().join("k8s");
    std::fs::create_dir(&k8s).unwrap();
    for i in 0..10_001 {
        write(&k8s, &format!("cm-{i:05}.yaml"), "kind: ConfigMap\n");
    }
    let run = harness_bounded(dir.path(), &["lint", "k8s"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with(
            "k8s:1: error[input-too-large]: the walk of k8s stopped at 10000 files (the bound on files read): k8s/cm-10000.yaml and the files after it are not read; it is not checked\n"
        ),
        "{}",
        &run.stdout[..run.stdout.len().min(2000)]
    );
    assert!(run.stdout.ends_with("1 error, 0 warnings in 10000 files\n"), "{}", &run.stdout[run.stdout.len().saturating_sub(500)..]);
}
