//! Validation lists every problem at once with its JSON path, and hostile input is
//! rejected with a clear message.

use sdsim_engine::{validate_json, Problem};
use serde_json::json;

fn problems(v: &str) -> Vec<Problem> {
    match validate_json(v) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

fn has(ps: &[Problem], path: &str, words: &str) -> bool {
    ps.iter()
        .any(|p| p.path == path && p.message.contains(words))
}

#[test]
fn every_problem_is_listed_with_its_path() {
    let doc = json!({
        "duration_s": 10,
        "components": [
            { "name": "users", "kind": "client", "traffic": { "type": "open", "rate": -5 } },
            { "name": "web", "kind": "web_sever" },
            { "name": "db", "kind": "postgresql", "servers": 0 },
            { "name": "a", "kind": "service", "service_time": { "dist": "gamma", "mean_ms": 1 } },
            { "name": "lb", "kind": "service" }
        ],
        "connections": [
            { "from": "users", "to": "lb" },
            { "from": "lb", "to": "db", "probability": 0.5 },
            { "from": "lb", "to": "ghost", "probability": 0.3 },
            { "from": "lb", "to": "web", "probability": 0.1 }
        ]
    });
    let ps = problems(&doc.to_string());
    for p in &ps {
        eprintln!("{p}");
    }
    assert!(has(&ps, "$.components[0].traffic.rate", "greater than 0"));
    assert!(has(&ps, "$.components[1].kind", "unknown kind 'web_sever'"));
    assert!(has(&ps, "$.components[2].servers", "between 1"));
    assert!(has(&ps, "$.components[3]", "unknown variant `gamma`"));
    assert!(has(&ps, "$.connections[2].to", "connects to nothing"));
    assert!(has(&ps, "$.components[4].routing", "sum to 0.6"));
    assert!(ps.len() >= 6);
    // Display is "path: message", and problems serialize for API clients.
    assert!(ps[0].to_string().starts_with("$."));
    assert!(serde_json::to_string(&ps)
        .unwrap_or_default()
        .contains("\"path\""));
}

#[test]
fn a_loop_that_never_exits_is_found() {
    let doc = json!({
        "duration_s": 10,
        "components": [
            { "name": "c", "kind": "client", "traffic": { "type": "open", "rate": 10 } },
            { "name": "a", "kind": "service" },
            { "name": "b", "kind": "service" }
        ],
        "connections": [ { "from": "c", "to": "a" }, { "from": "a", "to": "b" }, { "from": "b", "to": "a" } ]
    });
    let ps = problems(&doc.to_string());
    assert!(has(&ps, "$.components[1]", "can never finish"), "{ps:?}");
    assert!(has(&ps, "$.components[2]", "can never finish"), "{ps:?}");
    // An exit anywhere in the loop makes it fine.
    let mut ok = doc.clone();
    ok["components"][2]["exit_probability"] = json!(0.1);
    assert!(validate_json(&ok.to_string()).is_ok());
}

#[test]
fn hostile_documents_get_clear_errors() {
    // Not JSON, not an object, NaN-like and huge numbers, deep nesting.
    assert!(has(&problems("{"), "$", "not valid JSON"));
    assert!(has(&problems("[1,2]"), "$", "must be a JSON object"));
    assert!(has(
        &problems(r#"{"duration_s": NaN, "components": []}"#),
        "$",
        "not valid JSON"
    ));
    assert!(has(
        &problems(r#"{"duration_s": 1e999, "components": []}"#),
        "$",
        "not valid JSON"
    ));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(has(&problems(&deep), "$", "recursion limit"));
    let huge = json!({ "duration_s": 1e300, "components": [
        { "name": "c", "kind": "client", "traffic": { "type": "open", "rate": 1e300 } },
        { "name": "s", "kind": "service", "servers": 4000000000u64, "replicas": 4000000000u64 } ],
        "connections": [ { "from": "c", "to": "s", "latency_ms": 1e300 } ] });
    let ps = problems(&huge.to_string());
    assert!(has(&ps, "$.duration_s", "at most"));
    assert!(has(&ps, "$.components[0].traffic.rate", "at most"));
    assert!(has(&ps, "$.components[1].servers", "between"));
    assert!(has(&ps, "$.connections[0].latency_ms", "at most"));
    // Millions of components: one clear problem, no attempt to parse them all.
    let many = format!(
        r#"{{"duration_s": 1, "components": [{}]}}"#,
        vec!["{}"; 1_000_000].join(",")
    );
    assert!(has(&problems(&many), "$.components", "the limit is"));
    // Unknown fields are named rather than silently ignored.
    assert!(has(
        &problems(r#"{"duration_s": 1, "components": [], "colour": 1}"#),
        "$.colour",
        "unknown field"
    ));
}

#[test]
fn too_much_work_is_refused_before_running() {
    let doc = json!({
        "duration_s": 2_000_000,
        "components": [
            { "name": "c", "kind": "client", "traffic": { "type": "open", "rate": 100_000_000 } },
            { "name": "s", "kind": "service" } ],
        "connections": [ { "from": "c", "to": "s" } ],
        "window_s": 100
    });
    let ps = problems(&doc.to_string());
    assert!(has(&ps, "$.duration_s", "requests; the limit"), "{ps:?}");
}

#[test]
fn chaos_and_alerts_are_checked() {
    let doc = json!({
        "duration_s": 10,
        "components": [
            { "name": "c", "kind": "client", "traffic": { "type": "closed", "users": 5, "think_time_ms": 10 } },
            { "name": "s", "kind": "service", "replicas": 2 } ],
        "connections": [ { "from": "c", "to": "s" } ],
        "chaos": [
            { "type": "crash", "component": "s", "replica": 2, "at_s": 1 },
            { "type": "cache_miss_storm", "component": "s", "at_s": 1, "duration_s": 1 },
            { "type": "partition", "from": "s", "to": "nowhere", "at_s": 1, "duration_s": 0 }
        ],
        "alerts": [ { "name": "x", "metric": "p99_ms", "for_s": 1 } ]
    });
    let ps = problems(&doc.to_string());
    assert!(has(&ps, "$.chaos[0].replica", "numbered from 0"), "{ps:?}");
    assert!(has(&ps, "$.chaos[1].component", "not a cache"), "{ps:?}");
    assert!(has(&ps, "$.chaos[2].to", "targets nothing"), "{ps:?}");
    assert!(
        has(&ps, "$.chaos[2].duration_s", "greater than 0"),
        "{ps:?}"
    );
    assert!(has(&ps, "$.alerts[0]", "exactly one"), "{ps:?}");
}

#[test]
fn a_flood_of_problems_is_listed_in_part_and_each_is_short() {
    use sdsim_engine::{MAX_PROBLEMS, MAX_PROBLEM_CHARS};
    // 500 components, each with an unknown key of 2 KB: every one is a problem, and the
    // message would quote the key.
    let key = "k".repeat(2_000);
    let components: Vec<_> = (0..500)
        .map(|i| json!({ "name": format!("c{i}"), "kind": "service", key.clone(): 1 }))
        .collect();
    let ps = problems(&json!({ "components": components }).to_string());
    assert_eq!(ps.len(), MAX_PROBLEMS, "{:?}", &ps[..3]);
    let last = ps.last().unwrap();
    assert_eq!(last.path, "$");
    assert!(last.message.contains("more problems"), "{last}");
    for p in &ps {
        assert!(
            p.path.len() <= MAX_PROBLEM_CHARS + '…'.len_utf8(),
            "{}",
            p.path.len()
        );
        assert!(
            p.message.len() <= MAX_PROBLEM_CHARS + '…'.len_utf8(),
            "{}",
            p.message.len()
        );
    }
    assert!(ps.iter().any(|p| p.message.ends_with('…')), "{:?}", &ps[0]);
}

#[test]
fn the_design_name_and_alert_names_are_bounded() {
    let long = "n".repeat(201);
    let doc = json!({
        "name": long,
        "duration_s": 10,
        "components": [
            { "name": "users", "kind": "client", "traffic": { "type": "open", "rate": 5 } },
            { "name": "web", "kind": "web_server" }
        ],
        "connections": [{ "from": "users", "to": "web" }],
        "alerts": [{ "name": long, "metric": "utilisation", "above": 0.9 }]
    });
    let ps = problems(&doc.to_string());
    assert!(has(&ps, "$.name", "limited to 200 bytes"), "{ps:?}");
    assert!(
        has(&ps, "$.alerts[0].name", "limited to 200 bytes"),
        "{ps:?}"
    );
}
