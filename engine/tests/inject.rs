//! Chaos injected into a running simulation: applied at the current simulated time, with
//! the effect the same entry has in a design, and deterministic (the same injections at the
//! same times of the same design and seed give the same run, byte for byte).

use sdsim_engine::{template, validate_injection, Chaos, Design, Simulation};

fn design() -> Design {
    let mut d: Design =
        serde_json::from_str(template("read_heavy_api_with_cache").unwrap()).unwrap();
    d.duration_s = 20.0;
    d
}

fn crash(component: &str, duration: Option<f64>) -> Chaos {
    serde_json::from_value(serde_json::json!({
        "type": "crash", "component": component, "at_s": 0, "duration_s": duration
    }))
    .unwrap()
}

/// Runs in 1 s windows, injecting each entry after the window that ends at its time.
fn run(injections: &[(f64, Chaos)]) -> (String, Vec<String>) {
    let d = design();
    let mut sim = Simulation::new(&d, Some(9)).unwrap();
    let mut windows = Vec::new();
    while !sim.is_finished() {
        for (at, c) in injections {
            if sim.now() == *at {
                let applied = sim.inject(c.clone()).unwrap();
                let v = serde_json::to_value(&applied).unwrap();
                if v["type"] != "random_crash" {
                    assert_eq!(v["at_s"], serde_json::json!(at), "applied now: {v}");
                }
            }
        }
        windows.push(serde_json::to_string(&sim.advance(1.0)).unwrap());
    }
    (serde_json::to_string(&sim.report()).unwrap(), windows)
}

#[test]
fn an_injected_crash_takes_effect_at_once_and_replays_identically() {
    let plain = run(&[]);
    let crashed = run(&[(5.0, crash("database", Some(5.0)))]);
    assert_eq!(
        crashed,
        run(&[(5.0, crash("database", Some(5.0)))]),
        "replay"
    );
    // Before the injection, nothing differs; after it, the database fails requests.
    assert_eq!(plain.1[..5], crashed.1[..5]);
    let errors = |w: &str| {
        serde_json::from_str::<serde_json::Value>(w).unwrap()["end_to_end"]["errors"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(errors(&plain.1[6]), 0);
    assert!(errors(&crashed.1[6]) > 0, "{}", crashed.1[6]);
    // It recovers after its duration.
    assert_eq!(errors(&crashed.1[15]), 0, "{}", crashed.1[15]);
    assert_ne!(plain.0, crashed.0);
}

#[test]
fn every_kind_can_be_injected_and_replays_identically() {
    let kinds = [
        serde_json::json!({"type": "latency", "component": "api", "at_s": 0, "duration_s": 3, "extra_ms": 50}),
        serde_json::json!({"type": "errors", "component": "api", "at_s": 0, "duration_s": 3, "probability": 0.2}),
        serde_json::json!({"type": "partition", "from": "api", "to": "cache", "at_s": 0, "duration_s": 3}),
        serde_json::json!({"type": "traffic_spike", "at_s": 0, "duration_s": 3, "multiplier": 2}),
        serde_json::json!({"type": "cache_miss_storm", "component": "cache", "at_s": 0, "duration_s": 3, "hit_ratio": 0}),
        serde_json::json!({"type": "random_crash", "component": "api", "mtbf_s": 2, "mttr_s": 0.5}),
    ];
    let plain = run(&[]);
    for k in kinds {
        let c: Chaos = serde_json::from_value(k.clone()).unwrap();
        let once = run(&[(4.0, c.clone())]);
        assert_eq!(once, run(&[(4.0, c)]), "{k}");
        assert_ne!(once.1[4..], plain.1[4..], "{k} has an effect");
    }
}

#[test]
fn an_injection_is_checked_like_the_designs_own_chaos() {
    let d = design();
    assert_eq!(
        validate_injection(&d, &crash("database", Some(5.0))),
        Ok(())
    );
    let problems = validate_injection(&d, &crash("nowhere", Some(-1.0))).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"$.component"), "{problems:?}");
    assert!(paths.contains(&"$.duration_s"), "{problems:?}");
    let mut sim = Simulation::new(&d, None).unwrap();
    assert!(sim.inject(crash("nowhere", None)).is_err());
}
