//! Two finished runs side by side (for example two versions of a design under the same
//! seed): per component (matched by name) and end to end, each figure in both, what changed
//! and by how much, and the changes that matter in words.

use serde_json::{json, Map, Value};

/// The end-to-end figures compared.
const END_TO_END: [&str; 8] = [
    "throughput",
    "mean_response_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "completions",
    "errors",
    "drops",
];

/// The per-component figures compared.
const COMPONENT: [&str; 9] = [
    "utilisation",
    "throughput",
    "mean_response_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_queue_length",
    "errors",
    "drops",
];

/// Relative changes below this are not worth a sentence.
const NOTABLE: f64 = 0.05;

/// One figure in both runs: `{a, b, change, ratio}` (`ratio` is null when `a` is 0; a
/// figure a run lacks is null).
fn figure(a: Option<f64>, b: Option<f64>) -> Value {
    let change = a.zip(b).map(|(a, b)| b - a);
    let ratio = a.zip(b).and_then(|(a, b)| (a != 0.0).then(|| b / a));
    json!({ "a": a, "b": b, "change": change, "ratio": ratio })
}

fn figures(a: &Value, b: &Value, names: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .map(|n| (n.to_string(), figure(a[*n].as_f64(), b[*n].as_f64())))
        .collect()
}

fn unit(metric: &str) -> (&'static str, f64) {
    match metric {
        m if m.ends_with("_ms") => (" ms", 1.0),
        "throughput" => (" req/s", 1.0),
        "utilisation" => ("%", 100.0),
        _ => ("", 1.0),
    }
}

/// "p99_ms went from 51.4 ms to 35.2 ms (-31%)", when the change is notable.
fn sentence(subject: &str, metric: &str, f: &Value) -> Option<(f64, String)> {
    let (a, b) = (f["a"].as_f64()?, f["b"].as_f64()?);
    let rel = if a != 0.0 {
        (b - a) / a.abs()
    } else if b != 0.0 {
        1.0
    } else {
        0.0
    };
    if rel.abs() < NOTABLE {
        return None;
    }
    let (u, k) = unit(metric);
    let pct = if a != 0.0 {
        format!(" ({:+.0}%)", rel * 100.0)
    } else {
        String::new()
    };
    Some((
        rel.abs(),
        format!(
            "{subject}: {metric} went from {:.1}{u} to {:.1}{u}{pct}",
            a * k,
            b * k
        ),
    ))
}

/// The comparison of run `a` (report `ra`) with run `b` (report `rb`); `runs` are the two
/// runs' summaries, passed through.
pub fn compare(run_a: Value, ra: &Value, run_b: Value, rb: &Value) -> Value {
    let end_to_end = figures(&ra["end_to_end"], &rb["end_to_end"], &END_TO_END);
    let empty = Vec::new();
    let list_a = ra["components"].as_array().unwrap_or(&empty);
    let list_b = rb["components"].as_array().unwrap_or(&empty);
    let find = |list: &[Value], name: &str| list.iter().find(|c| c["name"] == name).cloned();
    let mut names: Vec<String> = list_a
        .iter()
        .chain(list_b)
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let mut notes: Vec<(f64, String)> = END_TO_END
        .iter()
        .filter_map(|m| sentence("end to end", m, &end_to_end[*m]))
        .map(|(w, s)| (w + 10.0, s)) // end to end first
        .collect();
    let mut components = Vec::new();
    for name in names {
        let (ca, cb) = (find(list_a, &name), find(list_b, &name));
        let side = match (&ca, &cb) {
            (Some(_), Some(_)) => "both",
            (Some(_), None) => "a",
            _ => "b",
        };
        let metrics = figures(
            ca.as_ref().unwrap_or(&Value::Null),
            cb.as_ref().unwrap_or(&Value::Null),
            &COMPONENT,
        );
        match side {
            "a" => notes.push((5.0, format!("'{name}' is only in the first run"))),
            "b" => notes.push((5.0, format!("'{name}' is only in the second run"))),
            _ => notes.extend(
                ["utilisation", "p99_ms", "errors", "drops"]
                    .iter()
                    .filter_map(|m| sentence(&format!("'{name}'"), m, &metrics[*m])),
            ),
        }
        components.push(json!({ "name": name, "in": side, "metrics": metrics }));
    }
    notes.sort_by(|x, y| y.0.total_cmp(&x.0));
    let summary: Vec<String> = if notes.is_empty() {
        vec!["no figure changed by 5% or more".into()]
    } else {
        notes.into_iter().take(12).map(|(_, s)| s).collect()
    };
    json!({
        "a": run_a,
        "b": run_b,
        "same_seed": ra["seed"] == rb["seed"],
        "end_to_end": end_to_end,
        "components": components,
        "summary": summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(p99: f64, util: f64, extra: bool) -> Value {
        let mut comps =
            vec![json!({"name": "api", "utilisation": util, "p99_ms": p99, "errors": 0})];
        if extra {
            comps.push(json!({"name": "cache", "utilisation": 0.1}));
        }
        json!({"seed": 1, "end_to_end": {"p99_ms": p99, "throughput": 100.0, "errors": 0}, "components": comps})
    }

    #[test]
    fn figures_changes_and_words() {
        let c = compare(
            json!({"id": "a"}),
            &report(50.0, 0.9, false),
            json!({"id": "b"}),
            &report(25.0, 0.45, true),
        );
        assert_eq!(c["end_to_end"]["p99_ms"]["change"], json!(-25.0));
        assert_eq!(c["end_to_end"]["p99_ms"]["ratio"], json!(0.5));
        assert_eq!(c["end_to_end"]["errors"]["ratio"], Value::Null, "a is 0");
        assert_eq!(c["components"][1]["in"], "b");
        assert_eq!(c["same_seed"], true);
        let summary: Vec<&str> = c["summary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(
            summary[0],
            "end to end: p99_ms went from 50.0 ms to 25.0 ms (-50%)"
        );
        assert!(
            summary.contains(&"'api': utilisation went from 90.0% to 45.0% (-50%)"),
            "{summary:?}"
        );
        assert!(
            summary.contains(&"'cache' is only in the second run"),
            "{summary:?}"
        );
        assert!(
            !summary.iter().any(|s| s.contains("throughput")),
            "unchanged: {summary:?}"
        );
    }

    #[test]
    fn identical_runs_say_so() {
        let r = report(10.0, 0.5, false);
        let c = compare(json!({}), &r, json!({}), &r);
        assert_eq!(c["summary"], json!(["no figure changed by 5% or more"]));
    }
}
