//! Helpers shared by the integration tests: designs from JSON, batch-means intervals.

#![allow(dead_code)]

use sdsim_engine::{validate_json, Design, Simulation, WindowMetrics};

/// Parses a design, failing the test with every problem listed.
pub fn design(v: serde_json::Value) -> Design {
    match validate_json(&v.to_string()) {
        Ok(d) => d,
        Err(p) => panic!("invalid test design: {p:?}"),
    }
}

/// Runs `design` in `batches` equal windows and returns the windows after `warmup` of them.
pub fn run_batches(
    design: &Design,
    seed: u64,
    batches: usize,
    warmup: usize,
) -> Vec<WindowMetrics> {
    let mut sim = match Simulation::new(design, Some(seed)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let dt = design.duration_s / (batches + warmup) as f64;
    let mut out = Vec::new();
    for i in 0..batches + warmup {
        let w = sim.advance(dt);
        if i >= warmup {
            out.push(w);
        }
    }
    assert!(sim.is_finished());
    out
}

/// Two-sided 99% Student t quantile (Cornish-Fisher expansion; within 0.2% for df >= 10).
fn t99(df: f64) -> f64 {
    let z: f64 = 2.575_829;
    z + (z.powi(3) + z) / (4.0 * df)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * df * df)
}

/// Mean and 99% confidence half-width of batch means.
pub fn ci99(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    assert!(xs.len() >= 10, "need at least 10 batches");
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, t99(n - 1.0) * (var / n).sqrt())
}

/// Asserts that theory lies in the batch-means interval and that the interval is tight
/// enough (`max_rel` of the theory) for the check to mean something.
pub fn assert_agrees(what: &str, batches: &[f64], theory: f64, max_rel: f64) {
    let (mean, half) = ci99(batches);
    eprintln!("{what}: sim {mean:.5} +- {half:.5}, theory {theory:.5}");
    assert!(
        (mean - theory).abs() <= half,
        "{what}: theory {theory} outside the 99% interval {mean} +- {half}"
    );
    assert!(
        half <= max_rel * theory.abs(),
        "{what}: interval +- {half} too wide to test {theory}"
    );
}

/// Values of one component's metric per window.
pub fn series(
    ws: &[WindowMetrics],
    comp: &str,
    f: impl Fn(&sdsim_engine::ComponentWindow) -> f64,
) -> Vec<f64> {
    ws.iter()
        .map(|w| {
            let c = w.components.iter().find(|c| c.name == comp);
            match c {
                Some(c) => f(c),
                None => panic!("no component {comp}"),
            }
        })
        .collect()
}
