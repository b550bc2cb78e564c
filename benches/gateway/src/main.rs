//! The gateway's authenticated request path against its peers, measured in the same run on
//! the same machine, from one command (`benches/gateway/run.sh`):
//!
//! 1. `GET /api/auth/profile` (token validated through auth, then auth's GetProfile: three
//!    queries) on `sdsim up` (release, a child process), against (a) the monolith a user
//!    might write instead (the same JWT verified in-process, the same three queries) and
//!    (b) a bare actix-web route answering the same bytes: the ceiling;
//! 2. `PUT /api/auth/profile` (a write: the same UPDATE and reads) against the monolith
//!    doing the same SQL, and the bare route;
//! 3. where sdsim's CPU went during its read runs, thread by thread (from /proc): whether
//!    the request path uses every core or waits on one thread;
//! 4. that the answers stay fresh: a profile change and a revoked session are seen by the
//!    next request (no cache hides them).
//!
//! Load comes from `wrk` (a separate process, `-t1 -c32` by default), each target in turn,
//! alternated for `BENCH_ROUNDS` rounds, after a short warm-up of each.
//! Environment: SDSIM_BIN (the sdsim binary), SDSIM_PG_BASE, REDIS_URL, BENCH_SECONDS
//! (default 8), BENCH_CONNECTIONS (32), BENCH_ROUNDS (2).

mod peers;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";
const PASSWORD: &str = "a long enough password for the bench";

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `sdsim up` in a child process, every port on 127.0.0.1:0.
struct Sdsim {
    child: Child,
    http: SocketAddr,
}

impl Sdsim {
    fn start(bin: &str, database_url: &str, redis_url: &str, prefix: &str) -> Self {
        let mut cmd = Command::new(bin);
        cmd.arg("up")
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", redis_url)
            .env("SDSIM_REDIS__PREFIX", prefix)
            .env("SDSIM_AUTH__JWT_SECRET", SECRET)
            .env("SDSIM_AUTH__BCRYPT_COST", "8")
            .env("SDSIM_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for service in ["GATEWAY", "AUTH", "PROJECT", "SIMULATION"] {
            for port in ["GRPC", "HTTP"] {
                cmd.env(format!("SDSIM_{service}__LISTEN__{port}"), "127.0.0.1:0");
            }
        }
        let mut child = cmd.spawn().expect("start sdsim up");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // `sdsim: gateway    gRPC 127.0.0.1:x  HTTP 127.0.0.1:y`
                if line.starts_with("sdsim: gateway") {
                    if let Some(http) = line.split("HTTP ").nth(1) {
                        let _ = tx.send(http.trim().to_string());
                    }
                } else if line.contains("ERROR") || line.contains("error") {
                    eprintln!("sdsim: {line}");
                }
            }
        });
        let http = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("sdsim printed its gateway address")
            .parse()
            .expect("an address");
        Self { child, http }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sdsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One wrk run's figures.
#[derive(Debug, Clone, Default)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    errors: u64,
}

fn millis(v: &str) -> f64 {
    let v = v.trim();
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn parse_wrk(out: &str) -> Run {
    let mut r = Run::default();
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            r.p50_ms = millis(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            r.p99_ms = millis(v);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            r.errors = v
                .split(',')
                .filter_map(|p| p.split_whitespace().last())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum();
        }
    }
    r
}

/// wrk against `url` for `seconds`, with `script` (a Lua file) when given.
fn wrk(url: &str, token: &str, seconds: u64, connections: u32, script: Option<&str>) -> Run {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
        "-H",
        &format!("Authorization: Bearer {token}"),
    ]);
    if let Some(s) = script {
        cmd.args(["-s", s]);
    }
    let out = cmd.arg(url).output().expect("run wrk (apt install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    parse_wrk(&text)
}

/// CPU time (clock ticks) of each thread of `pid`, by `name/tid` (names are cut to 15
/// characters by the kernel, so several threads can share one).
fn thread_ticks(pid: u32) -> BTreeMap<String, u64> {
    let mut by_thread = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_thread;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = format!(
            "{}/{}",
            &stat[open + 1..close],
            t.file_name().to_string_lossy()
        );
        let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // Fields 14 and 15 of the line (utime, stime) are 11 and 12 after the name.
        let ticks = rest
            .get(11)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + rest
                .get(12)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        by_thread.insert(name, ticks);
    }
    by_thread
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

struct Targets {
    bare: String,
    monolith: String,
    sdsim: String,
}

fn print_rows(title: &str, rows: &[(&'static str, usize, Run)]) {
    println!("\n{title}");
    println!(
        "{:<10} {:>5} {:>10} {:>8} {:>8} {:>8}",
        "target", "round", "req/s", "p50 ms", "p99 ms", "non-2xx"
    );
    for (name, round, r) in rows {
        println!(
            "{:<10} {:>5} {:>10.0} {:>8.2} {:>8.2} {:>8}",
            name,
            round,
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.non_2xx + r.errors
        );
    }
}

fn summary(rows: &[(&'static str, usize, Run)], goal_ratio: Option<f64>) {
    let mean = |name: &str| {
        let v: Vec<&Run> = rows.iter().filter(|r| r.0 == name).map(|r| &r.2).collect();
        let n = v.len().max(1) as f64;
        (
            v.iter().map(|r| r.rps).sum::<f64>() / n,
            v.iter().map(|r| r.p99_ms).fold(0.0, f64::max),
        )
    };
    let (bare, _) = mean("bare");
    let (mono, mono_p99) = mean("monolith");
    let (sdsim, sdsim_p99) = mean("sdsim");
    println!(
        "sdsim / monolith: {:.2}x{}   sdsim / bare: {:.3}x   worst p99: sdsim {:.2} ms (goal < 10), monolith {:.2} ms",
        sdsim / mono,
        goal_ratio.map_or(String::new(), |g| format!(" (goal >= {g})")),
        sdsim / bare,
        sdsim_p99,
        mono_p99
    );
}

#[actix_rt::main]
async fn main() {
    let bin = std::env::var("SDSIM_BIN").unwrap_or_else(|_| "target/release/sdsim".into());
    let pg_base = std::env::var("SDSIM_PG_BASE")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let seconds: u64 = env_or("BENCH_SECONDS", 8);
    let connections: u32 = env_or("BENCH_CONNECTIONS", 32);
    let rounds: usize = env_or("BENCH_ROUNDS", 2);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    // A database of its own, migrated by sdsim at start.
    let db = format!(
        "sdsim_bench_gateway_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let psql = |sql: &str| {
        let ok = Command::new("psql")
            .args([&format!("{pg_base}/postgres"), "-qAtc", sql])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "psql: {sql}");
    };
    psql(&format!("CREATE DATABASE {db}"));
    let database_url = format!("{pg_base}/{db}");
    let prefix = format!("bench-{db}:");
    let sdsim = Sdsim::start(&bin, &database_url, &redis_url, &prefix);
    let base = format!("http://{}", sdsim.http);
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let ok = http
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "sdsim did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
    let r = http
        .post(format!("{base}/api/auth/register"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "register: {}",
        r.text().await.unwrap_or_default()
    );
    let login: serde_json::Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("a token").to_string();
    let profile_url = format!("{base}/api/auth/profile");
    let body = http
        .get(&profile_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    // The peers, in this process.
    let db_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(2))
        .enable_all()
        .build()
        .unwrap();
    let bare = peers::bare(Arc::new(body.to_vec())).unwrap();
    let monolith = peers::monolith(&database_url, SECRET, db_runtime.handle().clone()).unwrap();
    let targets = Targets {
        bare: format!("http://{}/api/auth/profile", bare.addr),
        monolith: format!("http://{}/api/auth/profile", monolith.addr),
        sdsim: profile_url.clone(),
    };
    // The monolith answers the same user.
    let mono: serde_json::Value = http
        .get(&targets.monolith)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mono["user"]["email"], email, "{mono}");

    let script_dir = std::env::temp_dir().join(format!("sdsim-bench-{db}"));
    std::fs::create_dir_all(&script_dir).unwrap();
    let put = script_dir.join("put.lua");
    std::fs::write(
        &put,
        "wrk.method = \"PUT\"\nwrk.body = '{\"first_name\":\"Grace\"}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .unwrap();
    let put = put.display().to_string();

    println!(
        "gateway bench: {cores} cores, wrk -t1 -c{connections}, {seconds} s per run, {rounds} rounds"
    );
    let order: [(&'static str, &str); 3] = [
        ("bare", &targets.bare),
        ("monolith", &targets.monolith),
        ("sdsim", &targets.sdsim),
    ];
    let run = |url: String, script: Option<String>, secs: u64| {
        let token = token.clone();
        tokio::task::spawn_blocking(move || wrk(&url, &token, secs, connections, script.as_deref()))
    };
    // Warm-up: pools, connections, caches.
    for (_, url) in order {
        run(url.to_string(), None, 2).await.unwrap();
    }

    let ticks = clock_ticks();
    let mut reads = Vec::new();
    let mut sdsim_threads: BTreeMap<String, u64> = BTreeMap::new();
    let mut sdsim_seconds = 0.0;
    for round in 1..=rounds {
        for (name, url) in order {
            let before = (name == "sdsim").then(|| (thread_ticks(sdsim.pid()), Instant::now()));
            let r = run(url.to_string(), None, seconds).await.unwrap();
            if let Some((before, at)) = before {
                sdsim_seconds += at.elapsed().as_secs_f64();
                for (thread, t) in thread_ticks(sdsim.pid()) {
                    let d = t.saturating_sub(before.get(&thread).copied().unwrap_or(0));
                    *sdsim_threads.entry(thread).or_insert(0) += d;
                }
            }
            reads.push((name, round, r));
        }
    }
    print_rows(
        &format!("GET /api/auth/profile (authenticated read), {connections} connections"),
        &reads,
    );
    summary(&reads, Some(0.5));

    let mut writes = Vec::new();
    for round in 1..=rounds {
        for (name, url) in order {
            let r = run(url.to_string(), Some(put.clone()), seconds)
                .await
                .unwrap();
            writes.push((name, round, r));
        }
    }
    print_rows(
        &format!(
            "PUT /api/auth/profile (write: the same UPDATE and reads), {connections} connections"
        ),
        &writes,
    );
    summary(&writes, None);

    println!("\nsdsim's CPU during its read runs, by thread (% of one core; {cores} cores in all)");
    let mut threads: Vec<(String, u64)> = sdsim_threads.into_iter().collect();
    threads.sort_by_key(|t| std::cmp::Reverse(t.1));
    let total: u64 = threads.iter().map(|t| t.1).sum();
    for (name, t) in threads.iter().take(10) {
        println!(
            "  {:<28} {:>6.1}%",
            name,
            *t as f64 / ticks / sdsim_seconds * 100.0
        );
    }
    println!(
        "  {:<28} {:>6.1}%",
        "all threads",
        total as f64 / ticks / sdsim_seconds * 100.0
    );

    // Fresh answers: a change and a revocation are seen by the very next request.
    let put_now = http
        .put(&targets.sdsim)
        .bearer_auth(&token)
        .json(&serde_json::json!({"first_name": "Katherine"}))
        .send()
        .await
        .unwrap();
    assert!(put_now.status().is_success());
    let seen: serde_json::Value = http
        .get(&targets.sdsim)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh_profile = seen["user"]["first_name"] == "Katherine";
    let out = http
        .post(format!("{base}/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success());
    let after = http
        .get(&targets.sdsim)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    println!(
        "\nfresh answers: profile change seen by the next read: {}; revoked session refused by the next read: {} ({})",
        if fresh_profile { "yes" } else { "NO" },
        if after.status() == 401 { "yes" } else { "NO" },
        after.status()
    );

    bare.handle.stop(false).await;
    monolith.handle.stop(false).await;
    drop(sdsim);
    let _ = std::fs::remove_dir_all(&script_dir);
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    // Not dropped here: dropping a runtime inside another blocks.
    db_runtime.shutdown_background();
}
