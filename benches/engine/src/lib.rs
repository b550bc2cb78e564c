//! Shared pieces of the engine benchmarks.
//!
//! Layout: `src/bin/mmc_peer.rs` runs one M/M/c model and prints one JSON line (the peer
//! comparison in `run.sh` runs the same model in SimPy and Ciw); `benches/large_template.rs`
//! is the criterion benchmark of the engine alone on the `large_platform` template.

#![forbid(unsafe_code)]

use sdsim_engine::{validate_json, Design, Problem};

/// The M/M/c model of the peer comparison as an sdsim design: one client sending
/// `lambda` requests/s to a station of `c` servers with exponential service of rate `mu`,
/// unbounded queue, for as long as `customers` arrivals take on average.
pub fn mmc_design(lambda: f64, mu: f64, c: u32, customers: u64) -> Result<Design, Vec<Problem>> {
    let duration = customers as f64 / lambda;
    let doc = serde_json::json!({
        "name": format!("M/M/{c}"),
        "duration_s": duration,
        // Few windows: the benchmark measures the engine, not per-window bookkeeping.
        "window_s": duration / 20.0,
        "components": [
            { "name": "arrivals", "kind": "client", "traffic": { "type": "open", "rate": lambda } },
            { "name": "station", "kind": "service", "servers": c,
              "service_time": { "dist": "exponential", "mean_ms": 1000.0 / mu },
              "queue_capacity": "unbounded" }
        ],
        "connections": [ { "from": "arrivals", "to": "station" } ]
    });
    validate_json(&doc.to_string())
}
