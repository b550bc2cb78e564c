//! The simulator agrees with queueing theory, within 99% batch-means confidence intervals
//! computed from the run itself, at utilisations up to 0.95.
//!
//! Sample sizes are kept modest so the suite stays quick in debug builds; the release
//! benchmark (`benches/engine`) checks M/M/c on far longer runs.

mod common;

use common::{assert_agrees, design, run_batches, series};
use sdsim_engine::analysis::queueing::{mg1_wait, mmc_wait, mmck_blocking};
use sdsim_engine::{analytic_preview, run_design};
use serde_json::json;

/// One client feeding one station with `servers` servers.
fn single_station(
    rate: f64,
    servers: u32,
    service: serde_json::Value,
    queue: serde_json::Value,
    duration: f64,
) -> sdsim_engine::Design {
    design(json!({
        "name": "single station",
        "duration_s": duration,
        "components": [
            { "name": "src", "kind": "client", "traffic": { "type": "open", "rate": rate } },
            { "name": "q", "kind": "service", "servers": servers, "service_time": service, "queue_capacity": queue }
        ],
        "connections": [ { "from": "src", "to": "q" } ]
    }))
}

fn wait_ms(c: &sdsim_engine::ComponentWindow) -> f64 {
    c.mean_wait_ms.unwrap_or(f64::NAN)
}

#[test]
fn mm1_at_utilisation_0_9_matches_theory() {
    // lambda 900/s, mean service 1 ms: rho 0.9, Wq = rho / (mu - lambda) = 9 ms.
    let d = single_station(
        900.0,
        1,
        json!({"dist": "exponential", "mean_ms": 1.0}),
        json!("unbounded"),
        880.0,
    );
    let ws = run_batches(&d, 1, 20, 2);
    let wq = mmc_wait(900.0, 1000.0, 1).unwrap_or(f64::NAN) * 1000.0;
    assert_agrees("M/M/1 wait ms", &series(&ws, "q", wait_ms), wq, 0.15);
    assert_agrees(
        "M/M/1 utilisation",
        &series(&ws, "q", |c| c.utilisation),
        0.9,
        0.02,
    );
    assert_agrees(
        "M/M/1 L",
        &series(&ws, "q", |c| c.mean_in_system),
        0.9 / 0.1,
        0.15,
    );
}

#[test]
fn mmc_matches_erlang_c() {
    // 4 servers, lambda 3,600/s, mean service 1 ms: rho 0.9.
    let d = single_station(
        3600.0,
        4,
        json!({"dist": "exponential", "mean_ms": 1.0}),
        json!("unbounded"),
        240.0,
    );
    let ws = run_batches(&d, 2, 20, 2);
    let wq = mmc_wait(3600.0, 1000.0, 4).unwrap_or(f64::NAN) * 1000.0;
    assert_agrees(
        "M/M/4 wait ms (Erlang C)",
        &series(&ws, "q", wait_ms),
        wq,
        0.15,
    );
    assert_agrees(
        "M/M/4 utilisation",
        &series(&ws, "q", |c| c.utilisation),
        0.9,
        0.02,
    );
}

#[test]
fn md1_matches_pollaczek_khinchine() {
    // Deterministic 1 ms service at lambda 900/s: Wq = rho s / (2 (1 - rho)) = 4.5 ms.
    let d = single_station(
        900.0,
        1,
        json!({"dist": "deterministic", "mean_ms": 1.0}),
        json!("unbounded"),
        600.0,
    );
    let ws = run_batches(&d, 3, 20, 2);
    let wq = mg1_wait(900.0, 0.001, 0.0).unwrap_or(f64::NAN) * 1000.0;
    assert_agrees("M/D/1 wait ms", &series(&ws, "q", wait_ms), wq, 0.15);
}

#[test]
fn m_erlang_1_matches_pollaczek_khinchine() {
    // Erlang-3 service (scv 1/3) at rho 0.85.
    let d = single_station(
        850.0,
        1,
        json!({"dist": "erlang", "mean_ms": 1.0, "k": 3}),
        json!("unbounded"),
        400.0,
    );
    let ws = run_batches(&d, 4, 20, 2);
    let wq = mg1_wait(850.0, 0.001, 1.0 / 3.0).unwrap_or(f64::NAN) * 1000.0;
    assert_agrees("M/E3/1 wait ms", &series(&ws, "q", wait_ms), wq, 0.15);
}

#[test]
fn mm1k_drop_probability_matches_theory() {
    // One server and room for 4 waiting (K = 5) at rho 0.95.
    let d = single_station(
        950.0,
        1,
        json!({"dist": "exponential", "mean_ms": 1.0}),
        json!(4),
        100.0,
    );
    let ws = run_batches(&d, 5, 20, 1);
    let drops: Vec<f64> = ws
        .iter()
        .map(|w| {
            let c = &w.components[1];
            c.drops as f64 / c.arrivals as f64
        })
        .collect();
    let p = mmck_blocking(950.0, 1000.0, 1, 5).unwrap_or(f64::NAN);
    assert_agrees("M/M/1/5 drop probability", &drops, p, 0.1);
}

#[test]
fn tandem_jackson_network_matches_product_form() {
    // A: 1 server 1 ms (rho 0.8); B: 2 servers 2 ms (rho 0.8). 10 ms of network between.
    let d = design(json!({
        "duration_s": 300,
        "components": [
            { "name": "src", "kind": "client", "traffic": { "type": "open", "rate": 800 } },
            { "name": "a", "kind": "service", "servers": 1, "service_time": {"dist": "exponential", "mean_ms": 1.0} },
            { "name": "b", "kind": "service", "servers": 2, "service_time": {"dist": "exponential", "mean_ms": 2.0} }
        ],
        "connections": [ { "from": "src", "to": "a" }, { "from": "a", "to": "b", "latency_ms": 10 } ]
    }));
    let ws = run_batches(&d, 6, 20, 2);
    let ra = mmc_wait(800.0, 1000.0, 1).unwrap_or(f64::NAN) * 1000.0 + 1.0;
    let rb = mmc_wait(800.0, 500.0, 2).unwrap_or(f64::NAN) * 1000.0 + 2.0;
    assert_agrees(
        "tandem a response ms",
        &series(&ws, "a", |c| c.mean_response_ms.unwrap_or(f64::NAN)),
        ra,
        0.2,
    );
    assert_agrees(
        "tandem b response ms",
        &series(&ws, "b", |c| c.mean_response_ms.unwrap_or(f64::NAN)),
        rb,
        0.2,
    );
    let e2e: Vec<f64> = ws
        .iter()
        .map(|w| w.end_to_end.mean_response_ms.unwrap_or(f64::NAN))
        .collect();
    assert_agrees("tandem end to end ms", &e2e, ra + rb + 10.0, 0.2);
    let preview = analytic_preview(&d);
    let pe = preview.end_to_end_response_ms.unwrap_or(f64::NAN);
    assert!((pe - (ra + rb + 10.0)).abs() < 1e-9, "preview {pe}");
}

/// Branching with feedback: src -> a; a -> b (0.6) or c (0.4); b exits half the time
/// and feeds back to a otherwise; c exits. Traffic equations: la = 560 + 0.5 lb,
/// lb = 0.6 la, lc = 0.4 la, so la = 800, lb = 480, lc = 320.
fn branching() -> sdsim_engine::Design {
    design(json!({
        "duration_s": 300,
        "components": [
            { "name": "src", "kind": "client", "traffic": { "type": "open", "rate": 560 } },
            { "name": "a", "kind": "service", "servers": 1, "service_time": {"dist": "exponential", "mean_ms": 1.0} },
            { "name": "b", "kind": "service", "servers": 1, "service_time": {"dist": "exponential", "mean_ms": 1.5}, "exit_probability": 0.5 },
            { "name": "c", "kind": "service", "servers": 2, "service_time": {"dist": "exponential", "mean_ms": 4.0} }
        ],
        "connections": [
            { "from": "src", "to": "a" },
            { "from": "a", "to": "b", "probability": 0.6 },
            { "from": "a", "to": "c", "probability": 0.4 },
            { "from": "b", "to": "a" }
        ]
    }))
}

#[test]
fn branching_jackson_network_with_feedback_matches_product_form() {
    let d = branching();
    let ws = run_batches(&d, 7, 20, 2);
    for (name, lambda, mu, c) in [
        ("a", 800.0, 1000.0, 1),
        ("b", 480.0, 1000.0 / 1.5, 1),
        ("c", 320.0, 250.0, 2),
    ] {
        let arrivals = series(&ws, name, |w| w.arrivals as f64);
        let dt = ws[0].end_s - ws[0].start_s;
        let rates: Vec<f64> = arrivals.iter().map(|a| a / dt).collect();
        assert_agrees(&format!("{name} arrival rate"), &rates, lambda, 0.05);
        let r = mmc_wait(lambda, mu, c).unwrap_or(f64::NAN) * 1000.0 + 1000.0 / mu;
        let resp = series(&ws, name, |w| w.mean_response_ms.unwrap_or(f64::NAN));
        assert_agrees(&format!("{name} response ms"), &resp, r, 0.2);
    }
    // The preview solves the same traffic equations.
    let p = analytic_preview(&d);
    let rates: Vec<f64> = p.components.iter().map(|c| c.arrival_rate).collect();
    for (got, want) in rates.iter().zip([800.0, 480.0, 320.0]) {
        assert!((got - want).abs() < 1e-6, "preview rates {rates:?}");
    }
}

#[test]
fn littles_law_holds_on_every_component() {
    // L = lambda W on each station of the branching network and of a template with
    // replicas, balancers, caches and non-exponential service.
    let mut designs = vec![branching()];
    for id in ["three_tier_web_app", "read_heavy_api_with_cache"] {
        let mut d = sdsim_engine::validate_json(sdsim_engine::template(id).unwrap_or_default())
            .unwrap_or_else(|p| panic!("{p:?}"));
        d.duration_s = 5.0;
        designs.push(d);
    }
    for d in designs {
        let r = run_design(&d, Some(8)).unwrap_or_else(|e| panic!("{e}"));
        for c in &r.components {
            let w = c.mean_response_ms.unwrap_or(0.0) / 1000.0;
            let l = c.throughput * w;
            assert!(
                c.errors == 0 && c.drops == 0,
                "{}: test needs a loss-free run",
                c.name
            );
            assert!(
                (c.mean_in_system - l).abs() <= 0.02 * l + 0.05,
                "{}: L {} vs lambda W {}",
                c.name,
                c.mean_in_system,
                l
            );
        }
    }
}
