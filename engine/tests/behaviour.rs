//! Behaviour users rely on: reproducible runs, step-by-step windows, chaos effects,
//! alerts, closed workloads, routing policies and the analysis.

use sdsim_engine::{run_design, template, validate_json, Design, Simulation};
use serde_json::json;

fn design(v: serde_json::Value) -> Design {
    validate_json(&v.to_string()).unwrap_or_else(|p| panic!("{p:?}"))
}

fn tpl(id: &str, secs: f64) -> Design {
    let mut d = validate_json(template(id).unwrap_or_default()).unwrap_or_else(|p| panic!("{p:?}"));
    d.duration_s = secs;
    d
}

#[test]
fn same_design_and_seed_give_byte_identical_results() {
    let d = tpl("chaos_day", 20.0);
    let a = serde_json::to_string(&run_design(&d, Some(5)).unwrap_or_else(|e| panic!("{e}")));
    let b = serde_json::to_string(&run_design(&d, Some(5)).unwrap_or_else(|e| panic!("{e}")));
    let c = serde_json::to_string(&run_design(&d, Some(6)).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(a.as_ref().ok(), b.as_ref().ok());
    assert_ne!(a.ok(), c.ok());
}

#[test]
fn windows_add_up_to_the_whole_run() {
    let d = tpl("three_tier_web_app", 6.0);
    let mut sim = Simulation::new(&d, Some(1)).unwrap_or_else(|e| panic!("{e}"));
    let mut arrivals = 0;
    let mut windows = 0;
    while !sim.is_finished() {
        let w = sim.advance(0.5);
        assert!((w.end_s - w.start_s - 0.5).abs() < 1e-9);
        arrivals += w.end_to_end.arrivals;
        windows += 1;
    }
    assert_eq!(windows, 12);
    let r = sim.report();
    assert_eq!(arrivals, r.end_to_end.arrivals);
    assert_eq!(r.requests_simulated(), arrivals);
    // Stepping in other window sizes gives the very same run.
    let full = run_design(&d, Some(1)).unwrap_or_else(|e| panic!("{e}"));
    // (Sums are added in a different order, so means may differ in the last bit.)
    let (f, s) = (&full.end_to_end, &r.end_to_end);
    assert_eq!(
        (f.arrivals, f.completions, f.p99_ms),
        (s.arrivals, s.completions, s.p99_ms)
    );
    let (fm, sm) = (
        f.mean_response_ms.unwrap_or(0.0),
        s.mean_response_ms.unwrap_or(1.0),
    );
    assert!((fm - sm).abs() < 1e-9 * fm);
    // A silly step is an empty window, not a panic.
    assert_eq!(sim.advance(f64::NAN).end_to_end.arrivals, 0);
}

fn two_tier(chaos: serde_json::Value, alerts: serde_json::Value) -> Design {
    design(json!({
        "duration_s": 10,
        "components": [
            { "name": "users", "kind": "client", "traffic": { "type": "open", "rate": 1000 } },
            { "name": "web", "kind": "web_server", "replicas": 2 },
            { "name": "cache", "kind": "redis", "hit_ratio": 0.9 },
            { "name": "db", "kind": "postgresql" }
        ],
        "connections": [
            { "from": "users", "to": "web" }, { "from": "web", "to": "cache" }, { "from": "cache", "to": "db" }
        ],
        "chaos": chaos,
        "alerts": alerts
    }))
}

fn window_sums(d: &Design, from: f64, to: f64, name: &str) -> (u64, u64, u64) {
    let mut sim = Simulation::new(d, Some(3)).unwrap_or_else(|e| panic!("{e}"));
    let (mut arr, mut err, mut up_min) = (0, 0, u64::MAX);
    while !sim.is_finished() {
        let w = sim.advance(0.5);
        if w.start_s >= from && w.end_s <= to {
            let c = w
                .components
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("{name}"));
            arr += c.arrivals;
            err += c.errors;
            up_min = up_min.min(u64::from(c.replicas_up));
        }
    }
    (arr, err, up_min)
}

#[test]
fn a_crashed_component_fails_requests_until_it_recovers() {
    let d = two_tier(
        json!([{ "type": "crash", "component": "web", "at_s": 2, "duration_s": 3 }]),
        json!([]),
    );
    let (arr, err, up) = window_sums(&d, 2.0, 5.0, "web");
    assert!(arr > 2000 && err >= arr - 5, "{arr} {err}");
    assert_eq!(up, 0);
    let (arr, err, _) = window_sums(&d, 6.0, 10.0, "web");
    assert!(arr > 3000 && err == 0, "{arr} {err}");
    // One replica down: the balancer uses the other one, nothing fails.
    let d = two_tier(
        json!([{ "type": "crash", "component": "web", "replica": 1, "at_s": 2, "duration_s": 3 }]),
        json!([]),
    );
    let (arr, err, up) = window_sums(&d, 2.5, 5.0, "web");
    assert!(arr > 2000 && err == 0 && up == 1, "{arr} {err} {up}");
}

#[test]
fn cache_miss_storm_sends_load_to_the_database() {
    let d = two_tier(
        json!([{ "type": "cache_miss_storm", "component": "cache", "at_s": 4, "duration_s": 2 }]),
        json!([]),
    );
    let (before, _, _) = window_sums(&d, 0.0, 2.0, "db");
    let (during, _, _) = window_sums(&d, 4.0, 6.0, "db");
    assert!(before > 100 && during > 5 * before, "{before} {during}");
}

#[test]
fn partitions_errors_latency_and_spikes_show_in_the_windows() {
    let d = two_tier(
        json!([
            { "type": "partition", "from": "web", "to": "cache", "at_s": 1, "duration_s": 1 },
            { "type": "errors", "component": "db", "at_s": 3, "duration_s": 1, "probability": 1.0 },
            { "type": "latency", "component": "web", "at_s": 5, "duration_s": 1, "extra_ms": 50 },
            { "type": "traffic_spike", "at_s": 7, "duration_s": 1, "multiplier": 4 }
        ]),
        json!([{ "name": "slow", "metric": "p50_ms", "above": 20, "for_s": 0.5 }]),
    );
    let mut sim = Simulation::new(&d, Some(9)).unwrap_or_else(|e| panic!("{e}"));
    let mut ws = Vec::new();
    while !sim.is_finished() {
        ws.push(sim.advance(1.0));
    }
    let cache_err = ws[1].components[2].errors;
    assert!(cache_err > 900, "partition: {cache_err}");
    assert!(ws[3].components[3].errors > 50 && ws[3].components[3].completions == 0);
    assert!(ws[5].components[1].mean_response_ms.unwrap_or(0.0) > 50.0);
    assert!(ws[7].end_to_end.arrivals > 3 * ws[6].end_to_end.arrivals);
    let fired: Vec<_> = ws.iter().flat_map(|w| w.alerts.iter()).collect();
    assert!(
        fired
            .iter()
            .any(|a| a.state == "firing" && (a.at_s - 6.0).abs() < 1e-9),
        "{fired:?}"
    );
    assert!(fired.iter().any(|a| a.state == "resolved"), "{fired:?}");
}

#[test]
fn timeouts_abandon_requests_that_wait_too_long() {
    let d = design(json!({
        "duration_s": 5,
        "components": [
            { "name": "c", "kind": "client", "traffic": { "type": "open", "rate": 1500 } },
            { "name": "s", "kind": "service", "timeout_ms": 20, "queue_capacity": "unbounded" } ],
        "connections": [ { "from": "c", "to": "s" } ]
    }));
    let r = run_design(&d, Some(2)).unwrap_or_else(|e| panic!("{e}"));
    let s = &r.components[0];
    assert!(s.timeouts > 1000 && s.timeouts == s.errors, "{s:?}");
    assert!(s.mean_wait_ms.unwrap_or(f64::MAX) <= 20.0);
    assert!(r.analysis.bottlenecks[0].message.contains("timed out"));
}

#[test]
fn closed_users_are_limited_by_think_time_and_response() {
    let d = tpl("closed_loop_users", 5.0);
    let r = run_design(&d, Some(4)).unwrap_or_else(|e| panic!("{e}"));
    // Interactive response time law: X = N / (Z + R).
    let x = r.end_to_end.throughput;
    let resp = r.end_to_end.mean_response_ms.unwrap_or(0.0) / 1000.0;
    let law = 400.0 / (0.1 + resp);
    assert!((x - law).abs() < 0.05 * law, "X {x} vs N/(Z+R) {law}");
}

#[test]
fn least_connections_and_round_robin_spread_load() {
    for policy in ["round_robin", "least_connections", "random"] {
        let d = design(json!({
            "duration_s": 5,
            "components": [
                { "name": "c", "kind": "client", "traffic": { "type": "open", "rate": 3000 } },
                { "name": "lb", "kind": "nginx_lb", "routing": policy },
                { "name": "a", "kind": "service", "servers": 4 },
                { "name": "b", "kind": "service", "servers": 4 },
                { "name": "w", "kind": "web_server", "replicas": 3, "balancer": policy } ],
            "connections": [ { "from": "c", "to": "lb" }, { "from": "lb", "to": "a" }, { "from": "lb", "to": "b" },
                             { "from": "c", "to": "w" } ]
        }));
        let r = run_design(&d, Some(1)).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (
            r.components[1].arrivals as f64,
            r.components[2].arrivals as f64,
        );
        assert!((a - b).abs() < 0.05 * (a + b), "{policy}: {a} vs {b}");
    }
}

#[test]
fn the_analysis_names_the_bottleneck_and_forecasts_saturation() {
    let d = tpl("write_heavy_with_queue", 60.0);
    let r = run_design(&d, None).unwrap_or_else(|e| panic!("{e}"));
    let top = &r.analysis.bottlenecks[0];
    assert_eq!(top.component, "database");
    assert_eq!(top.severity, "critical");
    assert!(top.suggestion.contains("replicas"));
    assert!(r
        .analysis
        .trends
        .iter()
        .any(|t| t.component == "api" && t.metric == "utilisation" && t.direction == "rising"));
    assert!(r.analysis.alerts.iter().any(|a| a.rule == "writes dropped"));
    let text = r.to_string();
    assert!(
        text.contains("database") && text.contains("end to end"),
        "{text}"
    );
    // Under a steady ramp the API's time to saturation is forecast.
    let api = r
        .analysis
        .forecasts
        .iter()
        .find(|f| f.component == "workers");
    assert!(api.is_some_and(|f| f.saturation_load_factor.is_some()));
}

#[test]
fn anomalies_are_found_in_a_spike() {
    let d = design(json!({
        "duration_s": 40,
        "components": [
            { "name": "c", "kind": "client", "traffic": { "type": "open", "rate": 500,
              "pattern": { "shape": "spike", "peak_rate": 3000, "at_s": 20, "duration_s": 1 } } },
            { "name": "s", "kind": "service", "servers": 4, "service_time": { "dist": "exponential", "mean_ms": 1 } } ],
        "connections": [ { "from": "c", "to": "s" } ]
    }));
    let r = run_design(&d, Some(1)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.analysis.anomalies.iter().any(|a| a.component == "s"
            && a.metric == "throughput"
            && (a.at_s - 21.0).abs() < 1e-9),
        "{:?}",
        r.analysis.anomalies
    );
}

#[test]
fn the_event_budget_stops_a_run_and_says_so() {
    let mut d = tpl("three_tier_web_app", 10.0);
    d.max_events = Some(10_000);
    let r = run_design(&d, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(r
        .stopped_early
        .as_deref()
        .is_some_and(|s| s.contains("event budget")));
    assert!(r.events <= 10_000);
}

#[test]
fn a_flapping_alert_log_is_bounded_and_counts_what_it_left_out() {
    // A thousand rules on a noisy metric, each flipping at most every 0.1 s window: tens of
    // thousands of events. The windows carry every one; the report keeps the first thousand.
    let rules: Vec<_> = (0..1000)
        .map(|i| json!({ "name": format!("r{i}"), "component": "web", "metric": "throughput", "above": 1000, "for_s": 0 }))
        .collect();
    let mut d = two_tier(json!([]), json!(rules));
    d.window_s = Some(0.1);
    let mut sim = Simulation::new(&d, Some(4)).unwrap_or_else(|e| panic!("{e}"));
    let mut streamed = 0u64;
    while !sim.is_finished() {
        streamed += sim.advance(0.1).alerts.len() as u64;
    }
    let r = sim.report();
    assert!(streamed > 5_000, "{streamed}");
    assert_eq!(r.analysis.alerts.len(), 1_000);
    assert_eq!(
        r.analysis.alerts.len() as u64 + r.analysis.omitted.alerts,
        streamed
    );
    assert_eq!(r.analysis.alerts[0].state, "firing");
}
