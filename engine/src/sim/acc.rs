//! Counters and latency histograms accumulated over a window and over the whole run.

use hdrhistogram::Histogram;

use crate::error::EngineError;

/// Largest latency the histograms resolve, ns (about 2.8 hours); longer ones saturate.
const MAX_NS: u64 = 10_000_000_000_000;

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
    /// Response times of completions, ns, 2 significant digits.
    pub hist: Histogram<u64>,
}

impl Acc {
    pub(crate) fn new() -> Result<Self, EngineError> {
        let hist = Histogram::new_with_bounds(1, MAX_NS, 2)
            .map_err(|e| EngineError::Internal(format!("histogram: {e}")))?;
        Ok(Acc {
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
            hist,
        })
    }

    #[inline]
    pub(crate) fn complete(&mut self, resp_s: f64) {
        self.completions += 1;
        self.sum_resp += resp_s;
        let ns = (resp_s * 1e9) as u64;
        self.hist.saturating_record(ns.max(1));
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
        if other.hist.len() > 0 {
            // Both histograms have the same bounds, so adding cannot fail; if it ever
            // did, percentiles would only be less complete.
            let _ = self.hist.add(&other.hist);
        }
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
        if self.hist.len() > 0 {
            self.hist.reset();
        }
    }

    pub(crate) fn mean_wait_ms(&self) -> Option<f64> {
        (self.started > 0).then(|| self.sum_wait / self.started as f64 * 1000.0)
    }

    pub(crate) fn mean_resp_ms(&self) -> Option<f64> {
        (self.completions > 0).then(|| self.sum_resp / self.completions as f64 * 1000.0)
    }

    pub(crate) fn quantile_ms(&self, q: f64) -> Option<f64> {
        (self.hist.len() > 0).then(|| self.hist.value_at_quantile(q) as f64 / 1e6)
    }
}
