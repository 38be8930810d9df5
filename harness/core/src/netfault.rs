//! A TCP fault proxy: one per link of the pipeline (`minio->kafka`,
//! `processor->kafka`, `processor->minio`), in the harness's own process, between
//! the client and the service. A [`LinkControl`] switches what the link does to the
//! bytes it carries:
//!
//! - [`LinkFault::Partition`]: a blackhole. Nothing is read or written until the
//!   heal; open connections stay open (their bytes wait in the kernel's buffers) and
//!   new ones are accepted but not connected upstream, as behind a dropped route.
//! - [`LinkFault::Latency`]: every chunk is released `delay ± jitter` after it was
//!   read, each direction, in order (a TCP stream cannot reorder).
//! - [`LinkFault::Bandwidth`]: a token bucket per direction, shared by every
//!   connection of the link (a link's capacity, not a connection's).
//! - [`LinkFault::Reset`]: open connections are closed with RST on both sides, and
//!   new ones are reset as soon as they are accepted, until the heal.
//!
//! Kafka hands its clients the addresses it *advertises* after the bootstrap, so a
//! proxy in front of a broker only stays in the path when the broker advertises the
//! proxy: the local environment gives the broker one listener per link, each
//! advertising its proxy (see `env::local`).
//!
//! Healing is `clear()`, synchronous and idempotent, so a guard can heal on drop.
//! Dropping the [`FaultProxy`] closes its listener and every connection through it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness_model::rng::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What a link currently does to its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum LinkFault {
    /// Bytes pass as they come.
    #[default]
    Clear,
    Partition,
    Latency {
        delay: Duration,
        jitter: Duration,
    },
    Bandwidth {
        bytes_per_second: u64,
    },
    Reset,
}

/// Switches one link's fault; cheap to clone, usable from a `Drop`.
#[derive(Clone, Debug)]
pub struct LinkControl {
    link: &'static str,
    state: Arc<watch::Sender<LinkFault>>,
}

impl LinkControl {
    pub fn set(&self, fault: LinkFault) {
        self.state.send_replace(fault);
    }

    /// Heals the link; harmless when it is clear already.
    pub fn clear(&self) {
        self.set(LinkFault::Clear);
    }
}

/// A running proxy: listens on a loopback port of its own, forwards to `upstream`.
#[derive(Debug)]
pub struct FaultProxy {
    address: SocketAddr,
    control: LinkControl,
    accept: JoinHandle<()>,
}

/// Largest chunk read at once; also the unit latency and bandwidth apply to.
const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction of a connection (latency's queue).
const QUEUE: usize = 64;

impl FaultProxy {
    /// Binds `127.0.0.1:0` and starts forwarding to `upstream`. `seed` makes the
    /// jitter of a run reproducible.
    pub async fn start(link: &'static str, upstream: SocketAddr, seed: u64) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (tx, rx) = watch::channel(LinkFault::Clear);
        let buckets = Arc::new([Mutex::new(Bucket::new()), Mutex::new(Bucket::new())]);
        let accept = tokio::spawn(accept_loop(listener, upstream, rx, buckets, Rng::fork(seed, link)));
        Ok(FaultProxy { address, control: LinkControl { link, state: Arc::new(tx) }, accept })
    }

    /// Where clients connect instead of the service.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn link(&self) -> &'static str {
        self.control.link
    }

    pub fn control(&self) -> LinkControl {
        self.control.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept task owns the connections' JoinSet: aborting it drops them all.
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    state: watch::Receiver<LinkFault>,
    buckets: Arc<[Mutex<Bucket>; 2]>,
    mut rng: Rng,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::debug!("fault proxy accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let seed = rng.next_u64();
        connections.spawn(connection(client, upstream, state.clone(), buckets.clone(), seed));
    }
}

/// Why a connection ended.
enum End {
    /// A side closed or failed: close the other side too.
    Closed,
    /// The link was reset: RST to both sides.
    Reset,
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut state: watch::Receiver<LinkFault>,
    buckets: Arc<[Mutex<Bucket>; 2]>,
    seed: u64,
) {
    // A connection accepted during a partition waits (like a SYN into a blackhole
    // that happened to get through); during a reset it is reset at once.
    match hold_while_partitioned(&mut state).await {
        Ok(()) => {}
        Err(End::Reset) => return abort(&client),
        Err(End::Closed) => return,
    }
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(_) => return abort(&client),
    };
    let (mut client, mut server) = (client, server);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut rng = Rng::new(seed);
    let (up_seed, down_seed) = (rng.next_u64(), rng.next_u64());
    let end = {
        // Borrowed halves: unlike owned ones they do not send a FIN when dropped,
        // which would reach the peer before a reset's RST.
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let up = pump(cr, sw, state.clone(), buckets.clone(), 0, up_seed);
        let down = pump(sr, cw, state, buckets, 1, down_seed);
        // Either direction ending ends the connection (the pipeline's clients do
        // not half-close); a pump finishes only after its queue was written.
        tokio::select! {
            end = up => end,
            end = down => end,
        }
    };
    if let End::Reset = end {
        abort(&client);
        abort(&server);
    }
}

/// RST to a socket the proxy holds alone.
fn abort(s: &TcpStream) {
    let _ = s.set_zero_linger();
}

/// Returns when the link is not partitioned; `Err(Reset)` on a reset, `Err(Closed)`
/// when the proxy is gone.
async fn hold_while_partitioned(state: &mut watch::Receiver<LinkFault>) -> Result<(), End> {
    loop {
        match *state.borrow_and_update() {
            LinkFault::Reset => return Err(End::Reset),
            LinkFault::Partition => {}
            _ => return Ok(()),
        }
        if state.changed().await.is_err() {
            return Err(End::Closed);
        }
    }
}

/// One direction: read chunks, stamp each with its release time, write them in
/// order at that time within the bandwidth.
async fn pump(
    mut r: ReadHalf<'_>,
    mut w: WriteHalf<'_>,
    state: watch::Receiver<LinkFault>,
    buckets: Arc<[Mutex<Bucket>; 2]>,
    direction: usize,
    seed: u64,
) -> End {
    let (tx, mut rx) = mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(QUEUE);
    let mut read_state = state.clone();
    let mut write_state = state;
    let reader = async {
        // Owned here, so that the reader's end (EOF, an error) drops the sender: the
        // writer then drains the queue and ends, and the connection closes both ways.
        // Borrowed, it lived as long as `pump` and a closed side was never passed on.
        let tx = tx;
        let mut rng = Rng::new(seed);
        let mut buf = vec![0u8; CHUNK];
        let mut last_release = tokio::time::Instant::now();
        loop {
            hold_while_partitioned(&mut read_state).await?;
            let n = tokio::select! {
                read = r.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return Ok::<(), End>(()),
                    Ok(n) => n,
                },
                changed = read_state.changed() => {
                    if changed.is_err() { return Err(End::Closed) }
                    continue;
                }
            };
            let now = tokio::time::Instant::now();
            let release = match *read_state.borrow() {
                LinkFault::Latency { delay, jitter } => now + jittered(delay, jitter, &mut rng),
                _ => now,
            };
            // A stream keeps its order: no chunk overtakes the one before it.
            last_release = release.max(last_release);
            if tx.send((last_release, buf[..n].to_vec())).await.is_err() {
                return Err(End::Closed);
            }
        }
    };
    let writer = async {
        while let Some((release, chunk)) = rx.recv().await {
            tokio::time::sleep_until(release).await;
            hold_while_partitioned(&mut write_state).await?;
            let limit = match *write_state.borrow() {
                LinkFault::Bandwidth { bytes_per_second } => Some(bytes_per_second),
                _ => None,
            };
            if let Some(bps) = limit {
                let wait = buckets[direction].lock().map(|mut b| b.take(chunk.len(), bps)).unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
            if w.write_all(&chunk).await.is_err() {
                return Err(End::Closed);
            }
        }
        Ok::<(), End>(())
    };
    // The reader ending (EOF) closes the queue; the writer drains it, then both end.
    match tokio::try_join!(reader, writer) {
        Ok(_) => End::Closed,
        Err(e) => e,
    }
}

/// `delay` plus a uniform offset in `[-jitter, +jitter]`, never negative.
fn jittered(delay: Duration, jitter: Duration, rng: &mut Rng) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let offset = jitter.as_secs_f64() * (2.0 * rng.unit() - 1.0);
    Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0))
}

/// A token bucket that may go into debt: `take` books the bytes at once and says
/// how long to wait before sending them, so concurrent connections queue fairly.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new() -> Self {
        Bucket { tokens: 0.0, last: Instant::now() }
    }

    fn take(&mut self, bytes: usize, bytes_per_second: u64) -> Duration {
        let rate = bytes_per_second.max(1) as f64;
        // A burst of at most 20 ms worth of bytes (or one chunk), so a probe sees
        // the limit within a fraction of a second.
        let burst = (rate / 50.0).max(1024.0);
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(burst);
        self.last = now;
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server standing in for the service.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else { return };
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// Writes `n` bytes and reads them back through the proxy; returns the time.
    /// Round trips of `n` bytes until one takes less than `under` (what the fault
    /// added at least), for up to 10 s: a loaded machine may slow some round trips,
    /// but a fault still in place slows every one. No upper time bound on one.
    async fn healed_within(s: &mut TcpStream, n: usize, under: Duration) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let took = round_trip(s, n).await.unwrap();
            if took < under {
                return;
            }
            seen.push(took);
        }
        panic!("no round trip under {under:?} in 10 s after the heal: {seen:?}");
    }

    async fn round_trip(s: &mut TcpStream, n: usize) -> std::io::Result<Duration> {
        let started = Instant::now();
        let data = vec![7u8; n];
        let (mut r, mut w) = s.split();
        let write = async { w.write_all(&data).await };
        let read = async {
            let mut got = vec![0u8; n];
            r.read_exact(&mut got).await.map(|_| got)
        };
        let (wrote, got) = tokio::join!(write, read);
        wrote?;
        assert_eq!(got?, data, "bytes pass unchanged");
        Ok(started.elapsed())
    }

    /// A service that closes a connection (a killed broker's sockets close too):
    /// the proxy must close the client's side, not leave it open and silent. A
    /// client that waits for an answer on such a connection waits for its own
    /// request timeout (librdkafka's JoinGroup: over 5 minutes).
    #[tokio::test]
    async fn a_side_that_closes_closes_the_other() {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let upstream = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                drop(s);
            }
        });
        let proxy = FaultProxy::start("a->b", upstream, 1).await.unwrap();
        let mut s = TcpStream::connect(proxy.address()).await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the client's side stayed open after the service closed: {read:?}");
    }

    #[tokio::test]
    async fn clear_links_pass_bytes_unchanged() {
        let proxy = FaultProxy::start("a->b", echo().await, 1).await.unwrap();
        let mut s = TcpStream::connect(proxy.address()).await.unwrap();
        for n in [1, 100, 300_000] {
            round_trip(&mut s, n).await.unwrap();
        }
    }

    #[tokio::test]
    async fn latency_delays_each_direction_and_heals() {
        let proxy = FaultProxy::start("a->b", echo().await, 1).await.unwrap();
        let mut s = TcpStream::connect(proxy.address()).await.unwrap();
        let base = round_trip(&mut s, 10).await.unwrap();
        proxy.control().set(LinkFault::Latency { delay: Duration::from_millis(150), jitter: Duration::from_millis(50) });
        let slow = round_trip(&mut s, 10).await.unwrap();
        // Two directions of 100-200 ms each.
        assert!(slow >= Duration::from_millis(200), "{slow:?} (clear: {base:?})");
        proxy.control().clear();
        // Healed: a round trip faster than the 200 ms the fault adds at least.
        healed_within(&mut s, 10, Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn bandwidth_limits_the_link() {
        let proxy = FaultProxy::start("a->b", echo().await, 1).await.unwrap();
        proxy.control().set(LinkFault::Bandwidth { bytes_per_second: 200_000 });
        let mut s = TcpStream::connect(proxy.address()).await.unwrap();
        // 100 kB each way at 200 kB/s each direction: about 0.5 s.
        let took = round_trip(&mut s, 100_000).await.unwrap();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        proxy.control().clear();
        healed_within(&mut s, 100_000, Duration::from_millis(400)).await;
    }

    #[tokio::test]
    async fn partition_holds_bytes_until_the_heal() {
        let proxy = FaultProxy::start("a->b", echo().await, 1).await.unwrap();
        let mut open = TcpStream::connect(proxy.address()).await.unwrap();
        round_trip(&mut open, 10).await.unwrap();
        proxy.control().set(LinkFault::Partition);
        let mut fresh = TcpStream::connect(proxy.address()).await.unwrap();
        for s in [&mut open, &mut fresh] {
            let blocked = tokio::time::timeout(Duration::from_millis(300), round_trip(s, 10)).await;
            assert!(blocked.is_err(), "no byte crosses a partition");
        }
        proxy.control().clear();
        // The held bytes arrive after the heal (a partition is not a reset); the
        // timed-out round trips left 10 bytes each in flight.
        for s in [&mut open, &mut fresh] {
            let mut held = [0u8; 10];
            tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut held)).await.unwrap().unwrap();
            round_trip(s, 10).await.unwrap();
        }
    }

    #[tokio::test]
    async fn reset_resets_open_and_new_connections_until_the_heal() {
        let proxy = FaultProxy::start("a->b", echo().await, 1).await.unwrap();
        let mut open = TcpStream::connect(proxy.address()).await.unwrap();
        round_trip(&mut open, 10).await.unwrap();
        proxy.control().set(LinkFault::Reset);
        let mut buf = [0u8; 1];
        let err = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buf)).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
        let mut fresh = TcpStream::connect(proxy.address()).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(2), fresh.read(&mut buf)).await.unwrap();
        assert!(matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset), "{r:?}");
        proxy.control().clear();
        proxy.control().clear();
        let mut healed = TcpStream::connect(proxy.address()).await.unwrap();
        round_trip(&mut healed, 10).await.unwrap();
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_follows_the_seed() {
        let (d, j) = (Duration::from_millis(100), Duration::from_millis(40));
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..500).map(|_| jittered(d, j, &mut rng)).collect::<Vec<_>>()
        };
        let a = draw(3);
        assert_eq!(a, draw(3));
        assert!(a.iter().all(|x| *x >= Duration::from_millis(60) && *x <= Duration::from_millis(140)));
        assert!(a.iter().any(|x| *x < Duration::from_millis(80)) && a.iter().any(|x| *x > Duration::from_millis(120)));
    }

    #[test]
    fn the_bucket_books_debt_at_the_rate() {
        let mut b = Bucket::new();
        // 1 MB at 1 MB/s with an empty bucket: about a second of waiting.
        let wait = b.take(1_000_000, 1_000_000);
        assert!(wait > Duration::from_millis(950) && wait <= Duration::from_millis(1000), "{wait:?}");
        // The next booking queues behind it.
        let next = b.take(500_000, 1_000_000);
        assert!(next > Duration::from_millis(1400), "{next:?}");
    }
}
