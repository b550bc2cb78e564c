//! The gateway's authenticated request path against its peers, measured in the same run on
//! the same machine, from one command (`benches/gateway/run.sh`):
//!
//! 1. `GET /api/auth/profile` (token validated through auth, or trusted by the gateway for
//!    a moment, then auth's GetProfile: the user and their roles, two queries) on `sdsim up`
//!    (release, a child process), against (a) the monolith a user might write instead (the
//!    same JWT verified in-process, the same two queries) and
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

use sdsim_bench_gateway::*;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

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

    let setup = Setup::new("gateway", &bin, &pg_base, &redis_url).await;
    let (sdsim, base, http, token) = (
        &setup.sdsim,
        setup.base.clone(),
        setup.http.clone(),
        setup.token.clone(),
    );
    let database_url = setup.database_url.clone();
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
    let mine: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(mono["user"]["email"], mine["user"]["email"], "{mono}");

    let script_dir = std::env::temp_dir().join(format!("sdsim-bench-{}", setup.db));
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

    // Fresh answers: a change and a revocation are seen by the very next request. First let
    // the requests wrk left in flight finish: a late PUT of its own would overwrite ours.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
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
    let _ = std::fs::remove_dir_all(&script_dir);
    setup.finish();
    // Not dropped here: dropping a runtime inside another blocks.
    db_runtime.shutdown_background();
}
