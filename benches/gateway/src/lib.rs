//! What the gateway and project benches share: `sdsim up` in a child process on a database
//! of its own with a signed-in user ([`Setup`]), `wrk` runs and their figures, CPU by
//! thread from /proc, the tables they print, and the peers ([`peers`]).

pub mod peers;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";
pub const PASSWORD: &str = "a long enough password for the bench";

pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `sdsim up` in a child process, every port on 127.0.0.1:0.
pub struct Sdsim {
    child: Child,
    pub http: SocketAddr,
}

impl Sdsim {
    pub fn start(bin: &str, database_url: &str, redis_url: &str, prefix: &str) -> Self {
        let mut cmd = Command::new(bin);
        cmd.arg("up")
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", redis_url)
            .env("SDSIM_REDIS__PREFIX", prefix)
            .env("SDSIM_AUTH__JWT_SECRET", SECRET)
            .env("SDSIM_AUTH__BCRYPT_COST", "8")
            // The request path itself is measured, not the API's rate limits.
            .env("SDSIM_GATEWAY__RATE_LIMITS__READS_PER_MINUTE", "0")
            .env("SDSIM_GATEWAY__RATE_LIMITS__WRITES_PER_MINUTE", "0")
            .env("SDSIM_GATEWAY__RATE_LIMITS__RUN_STARTS_PER_MINUTE", "0")
            .env("SDSIM_GATEWAY__RATE_LIMITS__PER_ADDRESS_PER_MINUTE", "0")
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

    pub fn pid(&self) -> u32 {
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
pub struct Run {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
    pub errors: u64,
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

pub fn parse_wrk(out: &str) -> Run {
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
pub fn wrk(url: &str, token: &str, seconds: u64, connections: u32, script: Option<&str>) -> Run {
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
pub fn thread_ticks(pid: u32) -> BTreeMap<String, u64> {
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

pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub struct Targets {
    pub bare: String,
    pub monolith: String,
    pub sdsim: String,
}

pub fn print_rows(title: &str, rows: &[(&'static str, usize, Run)]) {
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

pub fn summary(rows: &[(&'static str, usize, Run)], goal_ratio: Option<f64>) {
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
    // The goals are the read's (issue 17); a write is measured against the monolith only.
    println!(
        "sdsim / monolith: {:.2}x{}   sdsim / bare: {:.3}x   worst p99: sdsim {:.2} ms{}, monolith {:.2} ms",
        sdsim / mono,
        goal_ratio.map_or(String::new(), |g| format!(" (goal >= {g})")),
        sdsim / bare,
        sdsim_p99,
        if goal_ratio.is_some() { " (goal < 10)" } else { "" },
        mono_p99
    );
}

/// A bench's world: a database of its own, `sdsim up` on it, a registered, signed-in user.
pub struct Setup {
    pub db: String,
    pub pg_base: String,
    pub database_url: String,
    pub sdsim: Sdsim,
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
}

impl Setup {
    pub async fn new(tag: &str, bin: &str, pg_base: &str, redis_url: &str) -> Self {
        let db = format!(
            "sdsim_bench_{tag}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        psql(pg_base, &format!("CREATE DATABASE {db}"));
        let database_url = format!("{pg_base}/{db}");
        let prefix = format!("bench-{db}:");
        let sdsim = Sdsim::start(bin, &database_url, redis_url, &prefix);
        let base = format!("http://{}", sdsim.http);
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ok = http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "sdsim did not become ready"
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
        Self {
            db,
            pg_base: pg_base.to_string(),
            database_url,
            sdsim,
            base,
            http,
            token,
        }
    }

    /// Stops sdsim and drops the database.
    pub fn finish(self) {
        drop(self.sdsim);
        psql(
            &self.pg_base,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
        );
    }
}

/// Runs `sql` on the server's `postgres` database.
pub fn psql(pg_base: &str, sql: &str) {
    let ok = Command::new("psql")
        .args([&format!("{pg_base}/postgres"), "-qAtc", sql])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "psql: {sql}");
}
