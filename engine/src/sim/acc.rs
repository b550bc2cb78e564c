//! Counters and latency histograms accumulated over a window and over the whole run.

use super::hist::Hist;

/// Counters of one component (or of end-to-end requests).
#[derive(Debug, Clone)]
pub(crate) struct Acc {
    pub arrivals: u64,
    pub completions: u64,
    pub drops: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub started: u64,
    pub sum_wait: f64,
    pub sum_resp: f64,
    /// Time integrals of busy servers and queue length (components only).
    pub busy_area: f64,
    pub queue_area: f64,
    /// Response times of completions, seconds.
    pub hist: Hist,
}

impl Acc {
    pub(crate) fn new() -> Self {
        Acc {
            arrivals: 0,
            completions: 0,
            drops: 0,
            errors: 0,
            timeouts: 0,
            started: 0,
            sum_wait: 0.0,
            sum_resp: 0.0,
            busy_area: 0.0,
            queue_area: 0.0,
            hist: Hist::default(),
        }
    }

    #[inline]
    pub(crate) fn complete(&mut self, resp_s: f64) {
        self.completions += 1;
        self.sum_resp += resp_s;
        self.hist.record(resp_s);
    }

    /// Adds `other` into `self` (window into total).
    pub(crate) fn absorb(&mut self, other: &Acc) {
        self.arrivals += other.arrivals;
        self.completions += other.completions;
        self.drops += other.drops;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.started += other.started;
        self.sum_wait += other.sum_wait;
        self.sum_resp += other.sum_resp;
        self.busy_area += other.busy_area;
        self.queue_area += other.queue_area;
        self.hist.add(&other.hist);
    }

    pub(crate) fn reset(&mut self) {
        self.arrivals = 0;
        self.completions = 0;
        self.drops = 0;
        self.errors = 0;
        self.timeouts = 0;
        self.started = 0;
        self.sum_wait = 0.0;
        self.sum_resp = 0.0;
        self.busy_area = 0.0;
        self.queue_area = 0.0;
        self.hist.reset();
    }

    pub(crate) fn mean_wait_ms(&self) -> Option<f64> {
        (self.started > 0).then(|| self.sum_wait / self.started as f64 * 1000.0)
    }

    pub(crate) fn mean_resp_ms(&self) -> Option<f64> {
        (self.completions > 0).then(|| self.sum_resp / self.completions as f64 * 1000.0)
    }

    pub(crate) fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.hist.quantile(q).map(|s| s * 1000.0)
    }
}
