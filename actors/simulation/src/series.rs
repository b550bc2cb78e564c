//! A finished run's per-window series for `performance_metrics`, bounded: a run of more
//! than [`MAX_POINTS`] windows is downsampled into that many buckets of consecutive windows.
//! In a bucket, counts (arrivals, completions, drops, errors) add up; utilisation, queue
//! length and throughput are averaged; the latency percentiles are the bucket's worst, so a
//! spike never disappears in a long run. End to end is the component `""`. (The exact
//! windows, as streamed, stay in `simulation_windows` for watchers to resume from.)

use serde_json::Value;

/// Points per component a run keeps in `performance_metrics`.
pub const MAX_POINTS: usize = 1_000;

/// One point of one component's series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub component: String,
    pub start_s: f64,
    pub end_s: f64,
    pub arrivals: i64,
    pub completions: i64,
    pub drops: i64,
    pub errors: i64,
    pub utilisation: f64,
    pub queue_length: f64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

fn int(v: &Value, k: &str) -> i64 {
    v[k].as_i64().unwrap_or(0)
}

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

/// The series of `windows` (the engine's windows as JSON, in order), at most `max_points`
/// points per component.
pub fn downsample(windows: &[Value], max_points: usize) -> Vec<Point> {
    let per = windows.len().div_ceil(max_points.max(1)).max(1);
    let mut out = Vec::new();
    for bucket in windows.chunks(per) {
        let (Some(first), Some(last)) = (bucket.first(), bucket.last()) else {
            continue;
        };
        let (start_s, end_s) = (num(first, "start_s"), num(last, "end_s"));
        let n = bucket.len() as f64;
        // Components by name, in the first window's order; then end to end.
        let mut names: Vec<String> = first["components"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.push(String::new());
        for name in names {
            let rows: Vec<&Value> = bucket
                .iter()
                .filter_map(|w| {
                    if name.is_empty() {
                        Some(&w["end_to_end"])
                    } else {
                        w["components"]
                            .as_array()?
                            .iter()
                            .find(|c| c["name"].as_str() == Some(&name))
                    }
                })
                .collect();
            let sum = |k: &str| rows.iter().map(|r| int(r, k)).sum::<i64>();
            let mean = |k: &str| rows.iter().map(|r| num(r, k)).sum::<f64>() / n;
            let worst = |k: &str| rows.iter().map(|r| num(r, k)).fold(0.0, f64::max);
            out.push(Point {
                component: name,
                start_s,
                end_s,
                arrivals: sum("arrivals"),
                completions: sum("completions"),
                drops: sum("drops"),
                errors: sum("errors"),
                utilisation: mean("utilisation"),
                queue_length: mean("mean_queue_length"),
                throughput: mean("throughput"),
                p50_ms: worst("p50_ms"),
                p95_ms: worst("p95_ms"),
                p99_ms: worst("p99_ms"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn window(i: usize, p99: f64) -> Value {
        json!({
            "index": i, "start_s": i as f64, "end_s": (i + 1) as f64,
            "components": [{"name": "api", "arrivals": 10, "completions": 9, "drops": 1,
                            "errors": 0, "utilisation": 0.5, "mean_queue_length": 1.0,
                            "throughput": 9.0, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": p99}],
            "end_to_end": {"arrivals": 10, "completions": 9, "drops": 1, "errors": 0,
                           "throughput": 9.0, "p50_ms": 5.0, "p95_ms": 6.0, "p99_ms": p99}
        })
    }

    #[test]
    fn short_runs_keep_every_window() {
        let w: Vec<Value> = (0..10).map(|i| window(i, 3.0)).collect();
        let s = downsample(&w, 1_000);
        assert_eq!(s.len(), 20, "10 windows × (api + end to end)");
        assert_eq!(s[0].component, "api");
        assert_eq!(s[1].component, "");
        assert_eq!((s[2].start_s, s[2].end_s), (1.0, 2.0));
    }

    #[test]
    fn long_runs_are_bucketed_with_sums_means_and_the_worst_latency() {
        let w: Vec<Value> = (0..100)
            .map(|i| window(i, if i == 37 { 900.0 } else { 3.0 }))
            .collect();
        let s = downsample(&w, 10);
        let api: Vec<&Point> = s.iter().filter(|p| p.component == "api").collect();
        assert_eq!(api.len(), 10);
        assert_eq!((api[3].start_s, api[3].end_s), (30.0, 40.0));
        assert_eq!(api[3].arrivals, 100, "counts add up");
        assert_eq!(api[3].utilisation, 0.5, "rates are averaged");
        assert_eq!(api[3].p99_ms, 900.0, "the spike is kept");
        assert_eq!(api[4].p99_ms, 3.0);
    }
}
