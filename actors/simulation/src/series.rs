//! A finished run's per-window series for `performance_metrics`, bounded: a run of more
//! than [`MAX_POINTS`] windows is downsampled into that many buckets of consecutive windows.
//! In a bucket, counts (arrivals, completions, drops, errors) add up; utilisation, queue
//! length and throughput are averaged; the latency percentiles are the bucket's worst, so a
//! spike never disappears in a long run. End to end is the component `""`. (The exact
//! windows, as streamed, stay in `simulation_windows` for watchers to resume from.)

use serde_json::Value;
use std::collections::HashMap;

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
    let mut series = Series::new(windows.len(), max_points);
    for w in windows {
        series.push(w);
    }
    series.finish()
}

/// The series built a window at a time, so a run of any length is read in pages: `total`
/// windows go into at most `max_points` buckets of consecutive windows.
#[derive(Debug)]
pub struct Series {
    per: usize,
    /// Components by name, in the first window's order; end to end is the last, `""`.
    names: Vec<String>,
    /// Where each name is in `names`, for a window whose order differs.
    index: HashMap<String, usize>,
    bucket: Vec<Sums>,
    in_bucket: usize,
    start_s: f64,
    end_s: f64,
    out: Vec<Point>,
}

/// One component's figures over the windows of the current bucket.
#[derive(Debug, Clone, Default)]
struct Sums {
    arrivals: i64,
    completions: i64,
    drops: i64,
    errors: i64,
    utilisation: f64,
    queue_length: f64,
    throughput: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
}

impl Sums {
    fn add(&mut self, v: &Value) {
        self.arrivals += int(v, "arrivals");
        self.completions += int(v, "completions");
        self.drops += int(v, "drops");
        self.errors += int(v, "errors");
        self.utilisation += num(v, "utilisation");
        self.queue_length += num(v, "mean_queue_length");
        self.throughput += num(v, "throughput");
        self.p50_ms = self.p50_ms.max(num(v, "p50_ms"));
        self.p95_ms = self.p95_ms.max(num(v, "p95_ms"));
        self.p99_ms = self.p99_ms.max(num(v, "p99_ms"));
    }
}

impl Series {
    /// A series of `total` windows kept in at most `max_points` points per component.
    pub fn new(total: usize, max_points: usize) -> Self {
        Series {
            per: total.div_ceil(max_points.max(1)).max(1),
            names: Vec::new(),
            index: HashMap::new(),
            bucket: Vec::new(),
            in_bucket: 0,
            start_s: 0.0,
            end_s: 0.0,
            out: Vec::new(),
        }
    }

    /// Adds the next window.
    pub fn push(&mut self, w: &Value) {
        let comps = w["components"].as_array().map_or(&[][..], Vec::as_slice);
        if self.in_bucket == 0 {
            if self.names.is_empty() {
                // The first window names the components.
                self.names = comps
                    .iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect();
                self.names.push(String::new());
                for (k, n) in self.names.iter().enumerate() {
                    self.index.entry(n.clone()).or_insert(k);
                }
            }
            self.bucket = vec![Sums::default(); self.names.len()];
            self.start_s = num(w, "start_s");
        }
        let e2e = self.names.len() - 1;
        for (k, c) in comps.iter().enumerate() {
            let Some(name) = c["name"].as_str() else {
                continue;
            };
            // Windows keep the first one's order: matched by position, by name otherwise.
            let at = if k < e2e && self.names[k] == name {
                Some(k)
            } else {
                self.index.get(name).copied().filter(|&i| i < e2e)
            };
            if let Some(i) = at {
                self.bucket[i].add(c);
            }
        }
        self.bucket[e2e].add(&w["end_to_end"]);
        self.end_s = num(w, "end_s");
        self.in_bucket += 1;
        if self.in_bucket == self.per {
            self.close();
        }
    }

    fn close(&mut self) {
        let n = self.in_bucket as f64;
        self.in_bucket = 0;
        for (name, s) in self.names.iter().zip(std::mem::take(&mut self.bucket)) {
            self.out.push(Point {
                component: name.clone(),
                start_s: self.start_s,
                end_s: self.end_s,
                arrivals: s.arrivals,
                completions: s.completions,
                drops: s.drops,
                errors: s.errors,
                utilisation: s.utilisation / n,
                queue_length: s.queue_length / n,
                throughput: s.throughput / n,
                p50_ms: s.p50_ms,
                p95_ms: s.p95_ms,
                p99_ms: s.p99_ms,
            });
        }
    }

    /// The points of the buckets closed so far, handed over (the series goes on).
    pub fn take_points(&mut self) -> Vec<Point> {
        std::mem::take(&mut self.out)
    }

    /// The points not yet taken, bucket by bucket, each bucket's components in order, then
    /// end to end.
    pub fn finish(mut self) -> Vec<Point> {
        if self.in_bucket > 0 {
            self.close();
        }
        self.out
    }
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

    #[test]
    fn a_window_in_another_order_is_matched_by_name() {
        let mut w: Vec<Value> = (0..2).map(|i| window(i, 3.0)).collect();
        let db = json!({"name": "db", "arrivals": 4, "p99_ms": 7.0});
        if let Some(l) = w[0]["components"].as_array_mut() {
            l.push(db.clone());
        }
        if let Some(l) = w[1]["components"].as_array_mut() {
            l.insert(0, db);
        }
        let s = downsample(&w, 1);
        let names: Vec<&str> = s.iter().map(|p| p.component.as_str()).collect();
        assert_eq!(names, ["api", "db", ""]);
        assert_eq!((s[0].arrivals, s[1].arrivals, s[1].p99_ms), (20, 8, 7.0));
        assert_eq!((s[0].start_s, s[0].end_s), (0.0, 2.0));
    }

    #[test]
    fn pages_give_the_same_series_as_one_read() {
        let w: Vec<Value> = (0..25).map(|i| window(i, i as f64)).collect();
        let mut paged = Series::new(w.len(), 7);
        let mut points = Vec::new();
        for page in w.chunks(3) {
            for x in page {
                paged.push(x);
            }
            points.extend(paged.take_points());
        }
        points.extend(paged.finish());
        assert_eq!(points, downsample(&w, 7));
        assert_eq!(downsample(&w, 7).len(), 7 * 2);
    }
}
