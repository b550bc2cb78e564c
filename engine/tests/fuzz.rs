//! Property tests: random documents and random designs never make validation or a run
//! panic or run forever, and every run accounts for all of its requests.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use sdsim_engine::model::{
    Balancer, Chaos, Component, Connection, Design, Pattern, QueueCapacity, Routing, ServiceTime,
    Traffic,
};
use sdsim_engine::{analytic_preview, validate, validate_json, Simulation};

const KINDS: &[&str] = &[
    "web_server",
    "api_server",
    "postgresql",
    "redis",
    "nginx_lb",
    "cdn",
    "service",
    "message_queue",
    "microservice",
    "object_storage",
];

/// A kind: mostly real, sometimes a client in the middle, rarely nonsense.
fn kind() -> impl Strategy<Value = &'static str> {
    prop_oneof![40 => prop::sample::select(KINDS), 1 => Just("client"), 1 => Just("bogus")]
}

/// A count, rarely zero.
fn count(max: u32) -> impl Strategy<Value = u32> {
    prop_oneof![40 => 1..max, 1 => Just(0)]
}

/// Mostly sensible numbers, sometimes the nasty ones.
fn num() -> impl Strategy<Value = f64> {
    prop_oneof![
        400 => 0.05f64..20.0,
        1 => Just(0.0),
        1 => Just(-1.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(1e300),
    ]
}

/// Mostly probabilities, sometimes not.
fn prob() -> impl Strategy<Value = f64> {
    prop_oneof![
        200 => 0.0f64..1.0,
        1 => Just(f64::NAN),
        1 => Just(-0.5),
        1 => Just(2.0),
    ]
}

fn service() -> impl Strategy<Value = ServiceTime> {
    prop_oneof![
        num().prop_map(|m| ServiceTime::Exponential { mean_ms: m }),
        num().prop_map(|m| ServiceTime::Deterministic { mean_ms: m }),
        (num(), num()).prop_map(|(m, cv)| ServiceTime::Lognormal {
            mean_ms: m,
            cv: cv / 5.0
        }),
        (num(), count(5)).prop_map(|(m, k)| ServiceTime::Erlang { mean_ms: m, k }),
        (num(), num()).prop_map(|(a, b)| ServiceTime::Uniform {
            min_ms: a,
            max_ms: a + b
        }),
    ]
}

fn traffic() -> impl Strategy<Value = Traffic> {
    prop_oneof![
        (num(), prob(), num()).prop_map(|(r, a, p)| Traffic::Open {
            rate: r * 20.0,
            pattern: Pattern::Wave {
                amplitude: a,
                period_s: p
            },
        }),
        (num(), num()).prop_map(|(r, t)| Traffic::Open {
            rate: r * 20.0,
            pattern: Pattern::Ramp {
                to_rate: t * 20.0,
                start_s: 0.0,
                end_s: None
            },
        }),
        (num(), num(), num()).prop_map(|(r, p, a)| Traffic::Open {
            rate: r * 20.0,
            pattern: Pattern::Spike {
                peak_rate: p * 50.0,
                at_s: a / 10.0,
                duration_s: 0.5
            },
        }),
        num().prop_map(|r| Traffic::Open {
            rate: r * 20.0,
            pattern: Pattern::Constant
        }),
        (count(50), num()).prop_map(|(u, t)| Traffic::Closed {
            users: u,
            think_time_ms: t
        }),
    ]
}

fn component(i: usize) -> impl Strategy<Value = Component> {
    (
        (
            kind(),
            prop::option::weighted(0.3, count(6)),
            prop::option::weighted(0.5, service()),
            prop::option::weighted(0.3, 0u64..5),
            prop::option::weighted(0.2, num()),
        ),
        (
            prop::option::weighted(0.2, prob()),
            prop::option::weighted(0.3, count(4)),
            prop::option::weighted(0.3, prob().prop_map(|p| p * 0.9)),
            traffic(),
            prop::sample::select(vec![
                Routing::Probabilistic,
                Routing::RoundRobin,
                Routing::LeastConnections,
                Routing::Random,
            ]),
            prop::sample::select(vec![
                Balancer::RoundRobin,
                Balancer::LeastConnections,
                Balancer::Random,
            ]),
        ),
    )
        .prop_map(
            move |(
                (kind, servers, st, q, timeout),
                (fail, replicas, exit, traffic, routing, balancer),
            )| {
                // The first component is the client; a few later ones may be too.
                let kind = if i == 0 { "client" } else { kind };
                let is_client = kind == "client";
                Component {
                    name: format!("c{i}"),
                    kind: kind.to_string(),
                    servers,
                    service_time: st,
                    queue_capacity: q.map(QueueCapacity::Finite),
                    timeout_ms: timeout,
                    failure_probability: fail,
                    replicas,
                    balancer: Some(balancer),
                    routing: Some(routing),
                    exit_probability: if is_client { None } else { exit },
                    hit_ratio: None,
                    traffic: is_client.then_some(traffic),
                }
            },
        )
}

fn chaos(n: usize) -> impl Strategy<Value = Chaos> {
    let name = (0..n.max(1)).prop_map(|i| format!("c{i}"));
    prop_oneof![
        (name.clone(), num(), prop::option::of(num())).prop_map(|(c, a, d)| Chaos::Crash {
            component: c,
            replica: None,
            at_s: a / 10.0,
            duration_s: d.map(|d| d / 10.0)
        }),
        (name.clone(), num(), num()).prop_map(|(c, m, r)| Chaos::RandomCrash {
            component: c,
            mtbf_s: m / 10.0,
            mttr_s: r / 10.0
        }),
        (name.clone(), num(), num()).prop_map(|(c, a, e)| Chaos::Latency {
            component: c,
            at_s: a / 10.0,
            duration_s: 1.0,
            extra_ms: e
        }),
        (name.clone(), num(), prob()).prop_map(|(c, a, p)| Chaos::Errors {
            component: c,
            at_s: a / 10.0,
            duration_s: 1.0,
            probability: p
        }),
        (name.clone(), name.clone(), num()).prop_map(|(a, b, t)| Chaos::Partition {
            from: a,
            to: b,
            at_s: t / 10.0,
            duration_s: 0.5
        }),
        (num(), num()).prop_map(|(a, m)| Chaos::TrafficSpike {
            source: None,
            at_s: a / 10.0,
            duration_s: 0.5,
            multiplier: m / 5.0
        }),
    ]
}

fn design() -> impl Strategy<Value = Design> {
    (2usize..7)
        .prop_flat_map(|n| {
            let comps: Vec<_> = (0..n).map(component).collect();
            // Extra connections on top of a chain c0 -> c1 -> ... that gives every design a path.
            let extra = prop::collection::vec(
                (
                    0..n,
                    0..n,
                    prop::option::weighted(0.2, prob()),
                    prop::option::weighted(0.5, num()),
                ),
                0..n,
            );
            let chaos = prop::collection::vec(chaos(n), 0..3);
            (comps, extra, chaos, num(), any::<u64>())
        })
        .prop_map(|(components, extra, chaos, duration, seed)| {
            let n = components.len();
            let mut connections: Vec<Connection> = (0..n - 1)
                .map(|i| Connection {
                    from: format!("c{i}"),
                    to: format!("c{}", i + 1),
                    probability: None,
                    latency_ms: None,
                })
                .collect();
            connections.extend(extra.into_iter().map(|(f, t, p, l)| Connection {
                from: format!("c{f}"),
                to: format!("c{t}"),
                probability: p,
                latency_ms: l,
            }));
            Design {
                name: "fuzz".into(),
                description: String::new(),
                seed: Some(seed),
                duration_s: duration / 5.0,
                window_s: Some(0.25),
                max_events: Some(200_000),
                components,
                connections,
                chaos,
                alerts: Vec::new(),
            }
        })
}

/// Checks one design: validation, preview and (if valid) a full run must neither panic
/// nor run forever, and every request must be accounted for.
fn check_design(d: &Design) -> Result<(), TestCaseError> {
    // Through JSON too, where non-finite numbers cannot even be written.
    if let Ok(text) = serde_json::to_string(d) {
        let _ = validate_json(&text);
    }
    let _ = analytic_preview(d);
    if validate(d).is_ok() {
        let mut sim = Simulation::new(d, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut steps = 0;
        while !sim.is_finished() {
            sim.advance(0.25);
            steps += 1;
            prop_assert!(steps < 10_000, "the run does not end");
        }
        let r = sim.report();
        let e = &r.end_to_end;
        prop_assert!(e.completions + e.drops + e.errors <= e.arrivals);
        let _ = r.to_string();
    }
    Ok(())
}

/// Runs `f` on a thread with a large stack: proptest's strategy trees for designs this
/// rich need more than the 2 MiB of a test thread in debug builds. The engine itself is
/// checked on a default-sized stack (see `designs_run_on_a_small_stack`).
fn big_stack(f: impl FnOnce() + Send + 'static) {
    let handle = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    if let Err(p) = handle.join() {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn random_designs_validate_and_run_to_an_end() {
    big_stack(|| {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 256,
            ..ProptestConfig::default()
        });
        if let Err(e) = runner.run(&design(), |d| check_design(&d)) {
            panic!("{e}");
        }
    });
}

#[test]
fn designs_run_on_a_small_stack() {
    // Generate on a big stack, then validate and run on a 1 MiB one: a run actor's
    // thread must never overflow.
    let designs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = designs.clone();
    big_stack(move || {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for _ in 0..64 {
            if let Ok(tree) = design().new_tree(&mut runner) {
                if let Ok(mut v) = out.lock() {
                    v.push(tree.current());
                }
            }
        }
    });
    let designs: Vec<Design> = designs.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(designs.len(), 64);
    let handle = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let mut valid = 0;
            for d in &designs {
                if let Err(e) = check_design(d) {
                    panic!("{e}");
                }
                match validate(d) {
                    Ok(()) => valid += 1,
                    Err(p) if std::env::var_os("SDSIM_SHOW").is_some() => eprintln!("{}", p[0]),
                    Err(_) => {}
                }
            }
            eprintln!(
                "{valid} of {} random designs were valid and ran",
                designs.len()
            );
            assert!(
                valid >= 4,
                "the generator must also produce runnable designs"
            );
            for (_, json) in sdsim_engine::templates() {
                if let Ok(mut d) = validate_json(json) {
                    d.duration_s = 1.0;
                    let _ = sdsim_engine::run_design(&d, None);
                }
            }
        })
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    assert!(handle.join().is_ok());
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = validate_json(&s);
    }

    #[test]
    fn json_built_from_the_vocabulary_never_panics(
        keys in prop::collection::vec(prop::sample::select(vec![
            "duration_s", "components", "connections", "chaos", "name", "kind", "traffic",
            "rate", "type", "open", "closed", "from", "to", "probability", "servers", "x"]), 0..12),
        nums in prop::collection::vec(num(), 0..12),
    ) {
        // A crude document from design words and nasty numbers, nested a little.
        let mut obj = serde_json::Map::new();
        for (i, k) in keys.iter().enumerate() {
            let n = nums.get(i).copied().unwrap_or(1.0);
            let v = match i % 4 {
                0 => serde_json::json!(n),
                1 => serde_json::json!([{ "name": k, "kind": "service", "rate": n }]),
                2 => serde_json::json!({ "type": k, "rate": n }),
                _ => serde_json::json!(k),
            };
            obj.insert((*k).to_string(), v);
        }
        let _ = validate_json(&serde_json::Value::Object(obj).to_string());
    }
}
