//! Auth service benchmark over real gRPC on loopback. By default the auth service runs in a
//! child process of this one (as a real deployment's clients are other processes), both on
//! the same two cores; `BENCH_SERVER=inline` runs it in this process instead. Prints,
//! measured in the same run:
//!
//! 1. the floor: a bare `grpc.health.v1/Check` RPC on the same server (the peer), closed loop
//!    and at the same offered rate as `ValidateToken`;
//! 2. `ValidateToken`: the highest closed-loop rate, and p50/p99 at a fixed offered rate
//!    (open loop: calls leave on schedule whatever the answers do, so queueing shows);
//! 3. both again from h2load, a lighter generator (closed loop; `ValidateToken` at 8, 16
//!    and 32 in flight, for the highest rate whose p99 stays under 1 ms), whose answers must
//!    all be as long as the one tonic gets (a refusal or an error is shorter), and at the
//!    fixed rate from a paced open loop on `h2` (paced.rs), whose answers must be tonic's
//!    byte for byte;
//! 4. login throughput against the bcrypt bound (cores / one hash's time at the same cost);
//! 5. `ValidateToken` p99 at 2000/s while 32 logins hash at once, against its peer: the same
//!    open loop with no logins, in alternating windows (on a two-core VM the peer's own tail
//!    moves between 2 and 30 ms from minute to minute, so only the two side by side say what
//!    hashing adds);
//! 6. for the rows of 1 to 3, the CPU time per call of the server process (`srv us`) and of
//!    the generator (`gen us`: this process, or h2load), from /proc and getrusage: on a
//!    shared two-core machine the cost per call moves much less than rates and tails do,
//!    and the difference between `ValidateToken` and the bare RPC is what validation costs;
//! 7. for every `ValidateToken` row, the server's own account from its `/metrics` (see
//!    [`Handled`]): the bucket bound of the handler's p99 (`srv p99`, ms) and the session
//!    checks sent to Redis and PostgreSQL (`checks`). A client p99 far above `srv p99` is
//!    queueing outside the handler: in the executor, the generator or the machine;
//! 8. the server process's peak resident memory after all of it (VmHWM).
//!
//! Run with `benches/auth/run.sh` (starts PostgreSQL and Redis, installs h2load if needed).
//! Environment: SDSIM_PG_BASE, REDIS_URL, BENCH_SECONDS (default 5), BENCH_RATE (default 20000),
//! BCRYPT_COST (default 12), BENCH_CLIENT_THREADS (the generator's runtime, default 2),
//! BENCH_CHANNELS (HTTP/2 connections to auth, default 4), BENCH_H2_CONNECTIONS (the paced
//! loop's, default 2), BENCH_SERVER (`process`, the default, or `inline`), BENCH_ONLY
//! (`hashing`: only the rows of 5).

mod paced;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sdsim::settings::Settings;
use sdsim::ServiceAddrs;
use sdsim_protocols::proto::auth::auth_service_client::AuthServiceClient;
use sdsim_protocols::proto::auth::{LoginRequest, RegisterRequest, ValidateTokenRequest};
use sdsim_protocols::Service;
use sdsim_runtime::config::Secret;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stats {
    count: usize,
    errors: usize,
    secs: f64,
    lat: Vec<Duration>,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.count as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
        self.lat[i].as_secs_f64() * 1000.0
    }
    fn merge(mut parts: Vec<(usize, usize, Vec<Duration>)>, secs: f64) -> Self {
        let mut lat = Vec::new();
        let (mut count, mut errors) = (0, 0);
        for (c, e, l) in parts.drain(..) {
            count += c;
            errors += e;
            lat.extend(l);
        }
        lat.sort_unstable();
        Stats {
            count,
            errors,
            secs,
            lat,
        }
    }
}

/// Closed loop: `workers` tasks each calling `call` back to back for `dur`.
async fn closed_loop<F, Fut>(workers: usize, dur: Duration, call: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let (mut n, mut e, mut lat) = (0usize, 0usize, Vec::with_capacity(1 << 16));
            while start.elapsed() < dur {
                let t = Instant::now();
                if call(w).await {
                    n += 1;
                } else {
                    e += 1;
                }
                lat.push(t.elapsed());
            }
            (n, e, lat)
        }));
    }
    let mut parts = Vec::new();
    for t in tasks {
        parts.push(t.await.expect("worker"));
    }
    Stats::merge(parts, start.elapsed().as_secs_f64())
}

/// A periodic timer finer than tokio's millisecond wheel: a Linux timerfd read through the
/// runtime's own reactor (no foreign thread), so an open loop can spread its calls evenly.
#[cfg(target_os = "linux")]
struct FineTicker {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

#[cfg(target_os = "linux")]
impl FineTicker {
    fn new(period: Duration) -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscalls on a descriptor this function owns from creation.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let ts = libc::timespec {
            tv_sec: period.as_secs() as libc::time_t,
            tv_nsec: period.subsec_nanos() as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: ts,
            it_value: ts,
        };
        if unsafe { libc::timerfd_settime(raw, 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the descriptor is owned here and not closed while registered (AsyncFd owns it).
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(std::io::Error::from)?;
        Ok(Self { fd })
    }

    async fn tick(&self) {
        use std::os::fd::AsRawFd;
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return;
            };
            let mut n = [0u8; 8];
            // SAFETY: reads 8 bytes into a local buffer of 8 bytes.
            let r = unsafe { libc::read(self.fd.as_raw_fd(), n.as_mut_ptr().cast(), 8) };
            if r == 8 {
                return;
            }
            guard.clear_ready();
        }
    }
}

/// How an open loop spaces its calls.
#[derive(Clone, Copy, PartialEq)]
enum Spacing {
    /// Every 100 us (a timerfd on Linux; elsewhere as `Batches`).
    Fine,
    /// In per-millisecond batches (tokio's timer), which adds up to a millisecond of queueing.
    Batches,
}

/// Open loop: `rate` calls per second for `dur`, dispatched on schedule whatever the answers
/// do, each timed from its dispatch.
async fn open_loop<F, Fut>(rate: u64, dur: Duration, spacing: Spacing, call: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let call = Arc::new(call);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(bool, Duration)>();
    let start = tokio::time::Instant::now();
    let total = (rate as f64 * dur.as_secs_f64()) as u64;
    #[cfg(target_os = "linux")]
    let fine = (spacing == Spacing::Fine)
        .then(|| FineTicker::new(Duration::from_micros(100)).ok())
        .flatten();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0u64;
    while sent < total {
        #[cfg(target_os = "linux")]
        match &fine {
            Some(f) => f.tick().await,
            None => {
                tick.tick().await;
            }
        }
        #[cfg(not(target_os = "linux"))]
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            let dispatched = Instant::now();
            let call = call.clone();
            let tx = tx.clone();
            let i = sent as usize;
            tokio::spawn(async move {
                let ok = call(i).await;
                let _ = tx.send((ok, dispatched.elapsed()));
            });
            sent += 1;
        }
    }
    drop(tx);
    let (mut n, mut e, mut lat) = (0, 0, Vec::with_capacity(total as usize));
    while let Some((ok, l)) = rx.recv().await {
        if ok {
            n += 1
        } else {
            e += 1
        }
        lat.push(l);
    }
    Stats::merge(vec![(n, e, lat)], start.elapsed().as_secs_f64())
}

/// One unary gRPC call for the generators that speak HTTP/2 themselves (h2load and the
/// paced h2 loop): its path, the request as a gRPC frame, and the one answer every call must
/// get, as a frame too.
struct Probe {
    path: &'static str,
    request: bytes::Bytes,
    answer: bytes::Bytes,
}

impl Probe {
    fn new(
        path: &'static str,
        request: &impl prost::Message,
        answer: &impl prost::Message,
    ) -> Self {
        Self {
            path,
            request: grpc_frame(request),
            answer: grpc_frame(answer),
        }
    }
}

/// A gRPC message frame: not compressed, length, message.
fn grpc_frame(message: &impl prost::Message) -> bytes::Bytes {
    let body = message.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0u8);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.into()
}

/// A second generator: h2load (nghttp2's HTTP/2 load tool, in C) sending the same gRPC
/// request for `dur`, closed loop: 4 connections with `in_flight / 4` streams each in flight
/// (32 as in the tonic closed loop, and fewer to find the highest rate under a 1 ms p99). It
/// costs a fraction of a tonic client per call, so on two shared cores more of the machine
/// is left to the server. (Its fixed-rate mode sends each 10 ms's calls in one burst, so it
/// is not used for tails.) None when h2load is not installed.
///
/// Every answer must be as long as `answer` (h2load sees only HTTP statuses, and a gRPC
/// error is an HTTP 200 too): the DATA bytes it received must be a whole number of that
/// answer's frames, one per finished call. A refusal (`valid: false`) or an error (no
/// DATA) is shorter than a valid answer, so either fails the run.
///
/// In a closed loop a stall holds back only the calls in flight, so its p99 can hide a stall
/// that an open loop (calls on schedule) would show in thousands of calls; the `max` it
/// prints with the curve tells whether one happened.
async fn h2load(
    addr: std::net::SocketAddr,
    probe: &Probe,
    in_flight: usize,
    dur: Duration,
) -> Option<Stats> {
    /// Removes the directory however the run ends.
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let scratch =
        Scratch(std::env::temp_dir().join(format!("sdsim-h2load-{}", std::process::id())));
    let dir = &scratch.0;
    std::fs::create_dir_all(dir).ok()?;
    let (data, log) = (dir.join("request"), dir.join("log"));
    std::fs::write(&data, &probe.request).ok()?;
    let streams = (in_flight / 4).max(1).to_string();
    let out = tokio::process::Command::new("h2load")
        .args(["-c", "4", "-m", &streams, "-t", "1"])
        .arg(format!("--duration={}", dur.as_secs().max(1)))
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg("-d")
        .arg(&data)
        .arg(format!("--log-file={}", log.display()))
        .arg(format!("http://{addr}{}", probe.path))
        .output()
        .await;
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "h2load failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return None;
        }
        Err(_) => return None,
    };
    let report = String::from_utf8_lossy(&out.stdout);
    let field = |line: &str, unit: &str| -> Option<u64> {
        let rest = report.lines().find(|l| l.starts_with(line))?;
        let end = rest.find(unit)?;
        let start = rest[..end].rfind(['(', ' '])? + 1;
        rest[start..end].trim_end_matches(')').trim().parse().ok()
    };
    let (started, succeeded, data) = (
        field("requests:", " started"),
        field("requests:", " succeeded"),
        field("traffic:", ") data"),
    );
    let frame = probe.answer.len() as u64;
    let whole = match (started, succeeded, data) {
        (Some(st), Some(ok), Some(d)) => d % frame == 0 && (ok..=st).contains(&(d / frame)),
        _ => false,
    };
    if !whole {
        eprintln!("h2load's answers are not all the expected {frame}-byte frame:\n{report}");
        return None;
    }
    let text = std::fs::read_to_string(&log).ok()?;
    let (mut n, mut e, mut lat) = (0, 0, Vec::new());
    let (mut first, mut last) = (u64::MAX, 0u64);
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [start, status, us, ..] = f.as_slice() else {
            continue;
        };
        let (Ok(start), Ok(us)) = (start.parse::<u64>(), us.parse::<u64>()) else {
            continue;
        };
        first = first.min(start);
        last = last.max(start + us);
        if *status == "200" {
            n += 1;
        } else {
            e += 1;
        }
        lat.push(Duration::from_micros(us));
    }
    let secs = last.saturating_sub(first) as f64 / 1e6;
    Some(Stats::merge(vec![(n, e, lat)], secs.max(1e-6)))
}

/// Runs `h2load` and prints its row; None (and a hint) when h2load is not installed.
async fn h2load_row(
    name: &str,
    target: &Target,
    probe: &Probe,
    in_flight: usize,
    dur: Duration,
) -> Option<Stats> {
    let (stats, cost) = metered(
        target,
        children_cpu,
        h2load(target.grpc, probe, in_flight, dur),
    )
    .await;
    let Some(stats) = stats else {
        println!("{name:<44} (no figures: h2load is missing or failed, see above)");
        return None;
    };
    row(name, &stats, &cost);
    Some(stats)
}

/// CPU time used by this process's children that have ended and been waited for (h2load).
fn children_cpu() -> Option<Duration> {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
        return None;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Some(tv(u.ru_utime) + tv(u.ru_stime))
}

async fn channels(addr: std::net::SocketAddr, n: usize) -> Vec<Channel> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .tcp_nodelay(true)
                .connect()
                .await
                .expect("connect to auth"),
        );
    }
    out
}

fn row(name: &str, s: &Stats, cost: &Cost) {
    let us = |t: Option<Duration>| match t {
        Some(t) if s.count + s.errors > 0 => {
            format!("{:.1}", t.as_secs_f64() * 1e6 / (s.count + s.errors) as f64)
        }
        _ => "-".into(),
    };
    let cpu = cost.cpu.as_ref();
    let handled = cost.handled.as_ref().filter(|h| h.count() > 0);
    println!(
        "{name:<44} {:>10.0} {:>9.3} {:>9.3} {:>8} {:>9} {:>9} {:>9} {:>7}",
        s.rate(),
        s.pct(0.50),
        s.pct(0.99),
        s.errors,
        us(cpu.and_then(|c| c.server)),
        us(cpu.map(|c| c.client)),
        handled.map_or("-".into(), |h| h.p99_label()),
        handled.map_or("-".into(), |h| h.checks.to_string()),
    );
}

/// CPU time (user + system) a process has used so far: `pid`, or this process. Linux only.
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// CPU time spent during one measurement: by the server process (when it is a child) and
/// by the generator (this process, which also holds the server when inline, or h2load).
struct Cpu {
    server: Option<Duration>,
    client: Duration,
}

/// The server under test, as the measurements watch it.
#[derive(Clone, Copy)]
struct Target {
    grpc: std::net::SocketAddr,
    /// Its HTTP port, serving `/metrics`.
    metrics: std::net::SocketAddr,
    /// Its process, when it is a child of this one.
    pid: Option<u32>,
}

/// What one measurement cost, and what the server itself saw of it.
#[derive(Default)]
struct Cost {
    cpu: Option<Cpu>,
    handled: Option<Handled>,
}

/// The `ValidateToken` calls the server handled between two scrapes of its `/metrics`, as
/// it timed them itself (from the handler's start to its answer: without HTTP/2 framing
/// and without the wait to be polled), and the session checks they needed (cache misses
/// and refreshes sent to Redis and PostgreSQL). A client tail far above the handler's is
/// queueing outside the handler (the executor, the generator, the machine); a handler
/// tail with many checks is the session cache going to Redis and PostgreSQL.
struct Handled {
    /// (upper bound in seconds, calls that took at most that long), ascending, +Inf last.
    buckets: Vec<(f64, u64)>,
    checks: u64,
}

impl Handled {
    /// Reads the server's `/metrics` (HTTP/1.0, so the body is not chunked).
    async fn scrape(addr: std::net::SocketAddr) -> Option<Self> {
        let text = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
            c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
            let mut out = String::new();
            c.read_to_string(&mut out).ok()?;
            out.starts_with("HTTP/1.")
                .then(|| out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))?
        })
        .await
        .ok()??;
        Self::parse(&text)
    }

    /// The `ValidateToken` histogram (summed over status codes) and the session checks
    /// (summed over outcomes) of a Prometheus text exposition.
    fn parse(text: &str) -> Option<Self> {
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        let mut checks = 0;
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if series.starts_with("sdsim_auth_session_checks_total{") {
                checks += value as u64;
            } else if series.starts_with("sdsim_grpc_server_handled_seconds_bucket{")
                && series.contains("method=\"ValidateToken\"")
            {
                let le = series.split("le=\"").nth(1)?.split('"').next()?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                add(&mut buckets, le, value as u64);
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Handled { buckets, checks })
    }

    /// What happened after `before`.
    fn since(&self, before: &Handled) -> Handled {
        let earlier = |le: f64| {
            before
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0, |(_, n)| *n)
        };
        Handled {
            buckets: self
                .buckets
                .iter()
                .map(|&(le, n)| (le, n.saturating_sub(earlier(le))))
                .collect(),
            checks: self.checks.saturating_sub(before.checks),
        }
    }

    /// The calls of both.
    fn plus(mut self, other: &Handled) -> Handled {
        for &(le, n) in &other.buckets {
            add(&mut self.buckets, le, n);
        }
        self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.checks += other.checks;
        self
    }

    fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |(_, n)| *n)
    }

    /// The bound of the bucket that holds the 99th percentile, in ms: "<=0.25" means 99%
    /// of the calls took at most 0.25 ms in the handler.
    fn p99_label(&self) -> String {
        let want = (self.count() as f64 * 0.99).ceil() as u64;
        let mut below = 0.0;
        for &(le, n) in &self.buckets {
            if n >= want {
                return if le.is_finite() {
                    format!("<={}", le * 1000.0)
                } else {
                    format!(">{}", below * 1000.0)
                };
            }
            below = le;
        }
        "-".into()
    }
}

/// Adds `n` calls to the bucket bounded by `le`, starting it if there is none.
fn add(buckets: &mut Vec<(f64, u64)>, le: f64, n: u64) {
    match buckets.iter_mut().find(|(b, _)| *b == le) {
        Some((_, m)) => *m += n,
        None => buckets.push((le, n)),
    }
}

/// Runs a measurement, noting the CPU time spent on it by the server process and by the
/// generator, whose clock `generator` reads ([`own_cpu`] or [`children_cpu`]), and what the
/// server's metrics say it handled meanwhile.
async fn metered<T>(
    target: &Target,
    generator: fn() -> Option<Duration>,
    f: impl std::future::Future<Output = T>,
) -> (T, Cost) {
    let server = target.pid;
    let seen = Handled::scrape(target.metrics).await;
    let before = (server.and_then(|p| cpu_time(Some(p))), generator());
    let out = f.await;
    let after = (server.and_then(|p| cpu_time(Some(p))), generator());
    let handled = match (seen, Handled::scrape(target.metrics).await) {
        (Some(a), Some(b)) => Some(b.since(&a)),
        _ => None,
    };
    let cpu = match (before, after) {
        ((s0, Some(c0)), (s1, Some(c1))) => Some(Cpu {
            server: s0.zip(s1).map(|(a, b)| b.saturating_sub(a)),
            client: c1.saturating_sub(c0),
        }),
        _ => None,
    };
    (out, Cost { cpu, handled })
}

/// CPU time this process has used so far.
fn own_cpu() -> Option<Duration> {
    cpu_time(None)
}

/// The auth service under test, with a database of its own (dropped on `stop`).
struct BenchServer {
    app: sdsim::Running,
    admin: AsyncPgConnection,
    db: String,
}

impl BenchServer {
    async fn start() -> Self {
        let cost: u32 = env_or("BCRYPT_COST", 12);
        let pg = std::env::var("SDSIM_PG_BASE")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
        let db = format!("sdsim_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&format!("{pg}/postgres"))
            .await
            .expect("PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE {db}"))
            .execute(&mut admin)
            .await
            .expect("create the bench database");

        let mut s = Settings::default();
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        s.auth.listen.grpc = any;
        s.auth.listen.http = any;
        s.database.url = Secret::new(format!("{pg}/{db}"));
        s.database.pool_size = 16;
        s.redis.url = Secret::new(redis);
        s.redis.prefix = format!("bench-{}:", uuid::Uuid::new_v4().simple());
        s.auth.jwt_secret = Secret::new("bench-secret-bench-secret-bench-secret-0123");
        s.auth.bcrypt_cost = cost;
        s.auth.limits.login_failures_per_account_ip = 0;
        s.auth.limits.login_failures_per_account = 0;
        s.auth.limits.login_per_ip_per_minute = 0;
        s.auth.limits.register_per_ip_per_hour = 0;
        let app = sdsim::Running::start(s, &[Service::Auth]).expect("start auth");
        Self { app, admin, db }
    }

    /// Its gRPC port, and the HTTP port serving `/metrics`.
    fn addrs(&self) -> ServiceAddrs {
        self.app.addrs(Service::Auth)
    }

    async fn stop(mut self) {
        drop(self.app);
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
            .execute(&mut self.admin)
            .await;
    }
}

/// Set in the child process that serves auth.
const SERVER_ROLE: &str = "AUTH_BENCH_ROLE";

/// The child: starts auth, prints its gRPC address, serves until its stdin closes (the
/// parent ended, however it ended), then drops its database.
fn serve_child() {
    use std::io::{Read, Write};
    // Logs as the `sdsim` binary does (run.sh sets SDSIM_LOG=warn).
    sdsim::init_logging();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt.block_on(BenchServer::start());
    let mut out = std::io::stdout();
    let addrs = server.addrs();
    writeln!(out, "{} {}", addrs.grpc, addrs.http).expect("stdout");
    out.flush().expect("stdout");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    rt.block_on(server.stop());
}

/// Where the server runs.
enum Server {
    Child(std::process::Child, ServiceAddrs),
    Inline(Box<BenchServer>),
}

impl Server {
    fn child() -> Self {
        use std::io::BufRead;
        let exe = std::env::current_exe().expect("own path");
        let mut child = std::process::Command::new(exe)
            .env(SERVER_ROLE, "server")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the auth server process");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("child stdout"))
            .read_line(&mut line)
            .expect("read the server's address");
        let addrs: Vec<std::net::SocketAddr> = line
            .split_whitespace()
            .filter_map(|a| a.parse().ok())
            .collect();
        let [grpc, http] = addrs[..] else {
            panic!("the server process printed {line:?}, not its two addresses");
        };
        Server::Child(child, ServiceAddrs { grpc, http })
    }

    fn addrs(&self) -> ServiceAddrs {
        match self {
            Server::Child(_, addrs) => *addrs,
            Server::Inline(s) => s.addrs(),
        }
    }

    /// The server's own process, when it has one.
    fn pid(&self) -> Option<u32> {
        match self {
            Server::Child(child, _) => Some(child.id()),
            Server::Inline(_) => None,
        }
    }

    async fn stop(self) {
        match self {
            Server::Child(mut child, _) => {
                drop(child.stdin.take());
                let _ = tokio::task::spawn_blocking(move || child.wait()).await;
            }
            Server::Inline(s) => s.stop().await,
        }
    }
}

fn main() {
    if std::env::var_os(SERVER_ROLE).is_some() {
        return serve_child();
    }
    let inline = std::env::var("BENCH_SERVER").is_ok_and(|v| v == "inline");
    let threads: usize = env_or("BENCH_CLIENT_THREADS", 2);
    // One thread: the generator's tasks never wake each other across threads (on two cores,
    // a multi-threaded generator's threads wake one another tens of thousands of times a
    // second, and the scheduler then starves Redis and PostgreSQL for hundreds of ms).
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    }
    .enable_all()
    .build()
    .expect("runtime");
    let server = if inline {
        Server::Inline(Box::new(rt.block_on(BenchServer::start())))
    } else {
        Server::child()
    };
    rt.block_on(async move {
        // On a worker, not this thread: calls are then spawned onto the same worker instead
        // of waking another thread for each one.
        let addrs = server.addrs();
        let target = Target {
            grpc: addrs.grpc,
            metrics: addrs.http,
            pid: server.pid(),
        };
        tokio::spawn(run(target)).await.expect("the benchmark");
        server.stop().await;
    });
}

/// `ValidateToken` at 2000/s while 32 logins hash at once, and the peer: the same open loop
/// with no logins (on a two-core VM, waking idle cores alone gives a tail of a few ms). The
/// two alternate, twice each, so that a noisy minute of the machine falls on both. Prints
/// the rows and returns them (no logins, logins hashing, the logins).
async fn hashing_rows<F, Fut>(
    target: &Target,
    chans: &[Channel],
    email: &str,
    password: &str,
    dur: Duration,
    validate: F,
) -> (Stats, Stats, Stats)
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let (mut quiet, mut busy, mut logins) = (Vec::new(), Vec::new(), Vec::new());
    let (mut quiet_seen, mut busy_seen) = (Vec::new(), Vec::new());
    let window = || open_loop(2_000, dur, Spacing::Batches, validate.clone());
    for _ in 0..2 {
        let (stats, cost) = metered(target, own_cpu, window()).await;
        quiet.push(stats);
        quiet_seen.push(cost.handled);
        let stop = Arc::new(AtomicBool::new(false));
        let mut hashing = Vec::new();
        let started = Instant::now();
        for w in 0..32 {
            let mut c = AuthServiceClient::new(chans[w % chans.len()].clone());
            let (stop, email, password) = (stop.clone(), email.to_string(), password.to_string());
            hashing.push(tokio::spawn(async move {
                let (mut errors, mut lat) = (0usize, Vec::new());
                while !AtomicBool::load(&stop, Ordering::Relaxed) {
                    let req = LoginRequest {
                        email: email.clone(),
                        password: password.clone(),
                        ..Default::default()
                    };
                    let t = Instant::now();
                    match c.login(req).await {
                        Ok(_) => lat.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (lat.len(), errors, lat)
            }));
        }
        // Every hashing thread busy before the clock starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (stats, cost) = metered(target, own_cpu, window()).await;
        busy.push(stats);
        busy_seen.push(cost.handled);
        stop.store(true, Ordering::Relaxed);
        let mut parts = Vec::new();
        for h in hashing {
            parts.extend(h.await.ok());
        }
        let these = Stats::merge(parts, started.elapsed().as_secs_f64());
        assert!(
            these.count > 0,
            "no login succeeded while hashing: the row would measure nothing"
        );
        logins.push(these);
    }
    let parts = |v: Vec<Stats>| {
        let secs = v.iter().map(|s| s.secs).sum();
        Stats::merge(
            v.into_iter().map(|s| (s.count, s.errors, s.lat)).collect(),
            secs,
        )
    };
    let (quiet, busy) = (parts(quiet), parts(busy));
    // The windows' CPU times are left out: the logins' share would blur them.
    let seen = |v: Vec<Option<Handled>>| Cost {
        cpu: None,
        handled: v
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().reduce(|a, b| a.plus(&b))),
    };
    row(
        "peer: ValidateToken at 2000/s, no logins",
        &quiet,
        &seen(quiet_seen),
    );
    row(
        "ValidateToken at 2000/s, 32 logins hashing",
        &busy,
        &seen(busy_seen),
    );
    // What the validations cost the logins (spare hashing threads yield to them).
    let logins = parts(logins);
    row(
        "  the logins meanwhile, 32 in flight",
        &logins,
        &Cost::default(),
    );
    (quiet, busy, logins)
}

async fn run(target: Target) {
    let (addr, pid) = (target.grpc, target.pid);
    let secs: u64 = env_or("BENCH_SECONDS", 5);
    let rate: u64 = env_or("BENCH_RATE", 20_000);
    let cost: u32 = env_or("BCRYPT_COST", 12);
    let dur = Duration::from_secs(secs);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let chans = channels(addr, env_or("BENCH_CHANNELS", 4)).await;
    let mut auth = AuthServiceClient::new(chans[0].clone());
    for _ in 0..100 {
        if HealthClient::new(chans[0].clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let email = "bench@example.com".to_string();
    let password = "a long enough benchmark passphrase".to_string();
    auth.register(RegisterRequest {
        email: email.clone(),
        password: password.clone(),
        first_name: "Bench".into(),
        last_name: "Mark".into(),
        ..Default::default()
    })
    .await
    .expect("register");
    let token = auth
        .login(LoginRequest {
            email: email.clone(),
            password: password.clone(),
            ..Default::default()
        })
        .await
        .expect("login")
        .into_inner()
        .access_token;

    println!(
        "auth benchmark: {cores} cores, {secs} s per measurement, bcrypt cost {cost}, server {}",
        if pid.is_none() {
            "in this process"
        } else {
            "in a child process"
        }
    );
    println!(
        "{:<44} {:>10} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>7}",
        "measurement",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "srv us",
        "gen us",
        "srv p99",
        "checks"
    );

    let validate = |chans: Vec<Channel>, token: String| {
        move |w: usize| {
            let mut c = AuthServiceClient::new(chans[w % chans.len()].clone());
            let token = token.clone();
            async move {
                c.validate_token(ValidateTokenRequest {
                    token,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().valid)
                .unwrap_or(false)
            }
        }
    };
    // BENCH_ONLY=hashing: only the validation-while-hashing rows (the noisiest figure, and
    // the one to rerun when tuning the bcrypt pool).
    let hashing = || {
        hashing_rows(
            &target,
            &chans,
            &email,
            &password,
            dur,
            validate(chans.clone(), token.clone()),
        )
    };
    if std::env::var("BENCH_ONLY").is_ok_and(|v| v == "hashing") {
        let (quiet, busy, _) = hashing().await;
        hashing_summary(&quiet, &busy);
        return;
    }

    let check = |chans: Vec<Channel>| {
        move |w: usize| {
            let mut c = HealthClient::new(chans[w % chans.len()].clone());
            async move {
                c.check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok()
            }
        }
    };
    let (health, health_cost) =
        metered(&target, own_cpu, closed_loop(32, dur, check(chans.clone()))).await;
    row(
        "peer: grpc.health.v1 Check, 32 in flight",
        &health,
        &health_cost,
    );
    let (health_fixed, health_fixed_cost) = metered(
        &target,
        own_cpu,
        open_loop(rate, dur, Spacing::Fine, check(chans.clone())),
    )
    .await;
    row(
        &format!("peer: the same at {rate}/s offered"),
        &health_fixed,
        &health_fixed_cost,
    );

    let (max, max_cost) = metered(
        &target,
        own_cpu,
        closed_loop(32, dur, validate(chans.clone(), token.clone())),
    )
    .await;
    row("ValidateToken, 32 in flight (max rate)", &max, &max_cost);
    let (fixed, fixed_cost) = metered(
        &target,
        own_cpu,
        open_loop(
            rate,
            dur,
            Spacing::Fine,
            validate(chans.clone(), token.clone()),
        ),
    )
    .await;
    row(
        &format!("ValidateToken at {rate}/s offered"),
        &fixed,
        &fixed_cost,
    );
    // The same two calls from a lighter generator, which must get the answers tonic gets.
    let health_answer = HealthClient::new(chans[0].clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner();
    let validate_answer = auth
        .validate_token(ValidateTokenRequest {
            token: token.clone(),
            ..Default::default()
        })
        .await
        .expect("validate")
        .into_inner();
    assert!(validate_answer.valid, "the bench's token is valid");
    let health_probe = Probe::new(
        "/grpc.health.v1.Health/Check",
        &HealthCheckRequest {
            service: String::new(),
        },
        &health_answer,
    );
    let validate_probe = Probe::new(
        "/auth.AuthService/ValidateToken",
        &ValidateTokenRequest {
            token: token.clone(),
            ..Default::default()
        },
        &validate_answer,
    );
    let h2_health = h2load_row(
        "peer: health, 32 in flight, from h2load",
        &target,
        &health_probe,
        32,
        dur,
    )
    .await;
    // Rate against tail: the highest rate whose p99 stays under 1 ms.
    let mut curve = Vec::new();
    for in_flight in [8, 16, 32] {
        let name = format!("ValidateToken, {in_flight} in flight, from h2load");
        if let Some(s) = h2load_row(&name, &target, &validate_probe, in_flight, dur).await {
            curve.push((in_flight, s));
        }
    }
    // The fixed rate again, from the lean h2 generator (paced.rs): the tail the server gives
    // at that rate when the generator leaves it most of the two cores.
    let conns: usize = env_or("BENCH_H2_CONNECTIONS", 2);
    let mut paced = Vec::new();
    for (name, probe) in [
        ("peer: health", &health_probe),
        ("ValidateToken", &validate_probe),
    ] {
        let (s, cost) = metered(
            &target,
            own_cpu,
            paced::open_loop(addr, probe, rate, dur, conns),
        )
        .await;
        match s {
            Ok(s) => {
                row(&format!("{name} at {rate}/s, from h2 (paced)"), &s, &cost);
                paced.push((s, cost));
            }
            Err(e) => println!("{name} from h2: no figures ({e})"),
        }
    }

    // The bcrypt bound: one hash at this cost, on this machine, now.
    let t = Instant::now();
    for _ in 0..3 {
        let _ = bcrypt::hash(&password, cost).unwrap();
    }
    let one_hash = t.elapsed().as_secs_f64() / 3.0;
    let bound = cores as f64 / one_hash;
    let logins = {
        let chans = chans.clone();
        let (email, password) = (email.clone(), password.clone());
        closed_loop(2 * cores, dur, move |w| {
            let mut c = AuthServiceClient::new(chans[w % chans.len()].clone());
            let req = LoginRequest {
                email: email.clone(),
                password: password.clone(),
                ..Default::default()
            };
            async move { c.login(req).await.is_ok() }
        })
        .await
    };
    row(
        &format!("Login, {} in flight", 2 * cores),
        &logins,
        &Cost::default(),
    );

    let (quiet, busy, busy_logins) = hashing().await;

    println!();
    println!(
        "ValidateToken max rate: {:.0}/s ({:.2}x the bare health RPC's {:.0}/s); goal >= 20000/s",
        max.rate(),
        max.rate() / health.rate(),
        health.rate()
    );
    // CPU per call, 32 in flight: what a validation costs beyond the bare RPC.
    let per_call = |s: &Stats, c: &Option<Cpu>, pick: fn(&Cpu) -> Option<Duration>| {
        c.as_ref()
            .and_then(pick)
            .map(|t| t.as_secs_f64() * 1e6 / (s.count + s.errors).max(1) as f64)
    };
    let server = |c: &Cpu| c.server;
    let both = |c: &Cpu| Some(c.client + c.server.unwrap_or_default());
    if let (Some(v), Some(h)) = (
        per_call(&max, &max_cost.cpu, server),
        per_call(&health, &health_cost.cpu, server),
    ) {
        println!(
            "ValidateToken server CPU: {v:.1} us/call against the bare health RPC's {h:.1} us ({:.2}x); both processes: {:.1} us against {:.1} us",
            v / h,
            per_call(&max, &max_cost.cpu, both).unwrap_or(f64::NAN),
            per_call(&health, &health_cost.cpu, both).unwrap_or(f64::NAN),
        );
    }
    // How much of the machine the generator and the server took together: near every core,
    // an open loop measures the machine's saturation, not the server's tail.
    let machine = |cost: &Cost| {
        cost.cpu.as_ref().map_or(String::new(), |c| {
            let used = c.client + c.server.unwrap_or_default();
            format!(
                "; generator and server kept {:.2} of {cores} cores busy",
                used.as_secs_f64() / dur.as_secs_f64()
            )
        })
    };
    println!(
        "ValidateToken p99 at {rate}/s offered: {:.3} ms (achieved {:.0}/s; the bare health RPC: {:.3} ms{}); goal < 1 ms",
        fixed.pct(0.99),
        fixed.rate(),
        health_fixed.pct(0.99),
        machine(&fixed_cost)
    );
    if let [(health, _), (validate, validate_cost)] = paced.as_slice() {
        println!(
            "ValidateToken p99 at {rate}/s offered from the paced h2 generator: {:.3} ms (achieved {:.0}/s, {} errors; the bare health RPC: {:.3} ms{}); goal < 1 ms",
            validate.pct(0.99),
            validate.rate(),
            validate.errors,
            health.pct(0.99),
            machine(validate_cost)
        );
    }
    let under = curve
        .iter()
        .filter(|(_, s)| s.errors == 0 && s.pct(0.99) < 1.0)
        .max_by(|a, b| a.1.rate().total_cmp(&b.1.rate()));
    for (in_flight, s) in &curve {
        println!(
            "  h2load, {in_flight} in flight: {:.0}/s, p99 {:.3} ms, max {:.3} ms",
            s.rate(),
            s.pct(0.99),
            s.pct(1.0)
        );
    }
    match under {
        Some((in_flight, s)) => println!(
            "ValidateToken highest rate with p99 < 1 ms (h2load, closed loop): {:.0}/s at {in_flight} in flight (p99 {:.3} ms); goal >= 20000/s",
            s.rate(),
            s.pct(0.99)
        ),
        None if curve.is_empty() => {}
        None => println!(
            "ValidateToken highest rate with p99 < 1 ms (h2load, closed loop): none of the {} measured; goal >= 20000/s",
            curve.len()
        ),
    }
    let h2_validate = curve.iter().find(|(n, _)| *n == 32).map(|(_, s)| s);
    if let (Some(v), Some(h)) = (h2_validate, &h2_health) {
        println!(
            "ValidateToken max rate from h2load: {:.0}/s ({:.2}x the bare health RPC's {:.0}/s); goal >= 20000/s",
            v.rate(),
            v.rate() / h.rate(),
            h.rate()
        );
    }
    println!(
        "Login: {:.2}/s against a bcrypt bound of {:.2}/s ({cores} cores / {:.0} ms per hash): {:.0}%; goal >= 90%",
        logins.rate(), bound, one_hash * 1000.0, 100.0 * logins.rate() / bound
    );
    println!(
        "Login while 2000 validations/s run: {:.2}/s ({:.0}% of the bound)",
        busy_logins.rate(),
        100.0 * busy_logins.rate() / bound
    );
    hashing_summary(&quiet, &busy);
    if let Some(kib) = pid.and_then(peak_memory_kib) {
        println!(
            "Server process peak memory (VmHWM, after every row): {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
}

/// The most resident memory a process has had, from /proc (Linux).
fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn hashing_summary(quiet: &Stats, busy: &Stats) {
    println!(
        "ValidateToken p99 while 32 logins hash: {:.3} ms against {:.3} ms with no logins ({:.2}x); goal < 5 ms; slowest calls {:.1} and {:.1} ms",
        busy.pct(0.99),
        quiet.pct(0.99),
        busy.pct(0.99) / quiet.pct(0.99),
        busy.pct(1.0),
        quiet.pct(1.0)
    );
}

#[cfg(test)]
mod tests {
    use super::Handled;
    use sdsim_runtime::metrics::Metrics;

    /// What the server's registry renders after `validations` (seconds, status code) and
    /// `checks` (outcome) were recorded, with a Login call that must not count.
    fn rendered(validations: &[(f64, &str)], checks: &[&str]) -> String {
        let m = Metrics::new();
        for (secs, code) in validations {
            m.grpc_server_seconds
                .with_label_values(&["auth", "ValidateToken", code])
                .observe(*secs);
        }
        m.grpc_server_seconds
            .with_label_values(&["auth", "Login", "OK"])
            .observe(0.3);
        for outcome in checks {
            m.auth_session_checks.with_label_values(&[outcome]).inc();
        }
        m.render()
    }

    #[test]
    fn reads_validations_and_checks_from_the_servers_exposition() {
        let text = rendered(
            &[(0.00005, "OK"), (0.0003, "OK"), (0.0003, "Unavailable")],
            &["live", "live", "error"],
        );
        let h = Handled::parse(&text).expect("parsed");
        assert_eq!(h.count(), 3, "every code counted, Login not: {text}");
        assert_eq!(h.checks, 3);
        let at = |le: f64| h.buckets.iter().find(|(b, _)| *b == le).map(|(_, n)| *n);
        assert_eq!(at(0.0001), Some(1));
        assert_eq!(at(0.0005), Some(3));
        assert_eq!(h.buckets.last().map(|(b, _)| *b), Some(f64::INFINITY));
    }

    #[test]
    fn the_difference_of_two_scrapes_is_what_happened_between_them() {
        let before = Handled::parse(&rendered(&[(0.2, "OK")], &["live"])).unwrap();
        let after = Handled::parse(&rendered(
            &[(0.2, "OK"), (0.00005, "OK"), (0.00005, "OK")],
            &["live", "ended"],
        ))
        .unwrap();
        let d = after.since(&before);
        assert_eq!((d.count(), d.checks), (2, 1));
        assert_eq!(d.p99_label(), "<=0.1");
        let both = d.plus(&before);
        assert_eq!((both.count(), both.checks), (3, 2));
    }

    #[test]
    fn p99_names_the_bucket_holding_the_99th_call() {
        // 98 fast calls and 2 slow ones: the 99th call is slow.
        let mut calls = vec![(0.00005, "OK"); 98];
        calls.extend([(0.003, "OK"), (0.003, "OK")]);
        let h = Handled::parse(&rendered(&calls, &[])).unwrap();
        assert_eq!(h.p99_label(), "<=5");
        // 99 fast ones and 1 slow: the 99th is fast.
        calls.pop();
        calls.insert(0, (0.00005, "OK"));
        let h = Handled::parse(&rendered(&calls, &[])).unwrap();
        assert_eq!(h.p99_label(), "<=0.1");
        // Past the last finite bound.
        let h = Handled::parse(&rendered(&[(9.0, "OK")], &[])).unwrap();
        assert_eq!(h.p99_label(), ">5000");
    }
}
