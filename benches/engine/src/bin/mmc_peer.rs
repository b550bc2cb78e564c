//! Runs one M/M/c model in the sdsim engine and prints one JSON line: requests simulated
//! per second of wall time and the mean wait's error against Erlang C.
//!
//! Usage: `mmc_peer [lambda] [mu] [c] [customers] [seed]` (defaults 3.6 1 4 2000000 1,
//! rates per second; the engine sees them scaled to milliseconds, which changes nothing
//! but the time unit).

use std::time::Instant;

use sdsim_bench_engine::mmc_design;
use sdsim_engine::analysis::queueing::mmc_wait;
use sdsim_engine::run_design;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lambda: f64 = arg(&args, 1, 3.6);
    let mu: f64 = arg(&args, 2, 1.0);
    let c: u32 = arg(&args, 3, 4);
    let customers: u64 = arg(&args, 4, 2_000_000);
    let seed: u64 = arg(&args, 5, 1);
    // Time unit: one model second is one engine millisecond, so that the engine's
    // realistic-scale limits (a day of service time at most) never bind.
    let design = match mmc_design(lambda * 1000.0, mu * 1000.0, c, customers) {
        Ok(d) => d,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let report = match run_design(&design, Some(seed)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let wall = start.elapsed().as_secs_f64();
    let station = report.components.first();
    let wait = station.and_then(|s| s.mean_wait_ms).unwrap_or(f64::NAN); // model seconds
    let theory = mmc_wait(lambda, mu, c).unwrap_or(f64::NAN);
    let line = serde_json::json!({
        "simulator": "sdsim",
        "customers": station.map_or(0, |s| s.completions),
        "requests_simulated": report.requests_simulated(),
        "wall_s": wall,
        "requests_per_s": report.requests_simulated() as f64 / wall,
        "mean_wait": wait,
        "erlang_c_wait": theory,
        "mean_wait_rel_error": (wait - theory).abs() / theory,
    });
    println!("{line}");
}
