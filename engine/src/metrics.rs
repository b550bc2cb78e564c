//! What one window of simulated time measured: per component and end to end.
//!
//! Latencies are milliseconds; a statistic with nothing to measure (no completion in the
//! window) is `None` (`null` in JSON) rather than a misleading zero.

use serde::Serialize;

/// Metrics of one window, as returned by [`crate::Simulation::advance`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowMetrics {
    /// 0-based window number.
    pub index: u64,
    /// Window start, simulated seconds.
    pub start_s: f64,
    /// Window end, simulated seconds.
    pub end_s: f64,
    /// One entry per component, in design order (clients included, with zero load).
    pub components: Vec<ComponentWindow>,
    /// Requests from entry to exit.
    pub end_to_end: EndToEndWindow,
    /// Alerts that fired or resolved during the window.
    pub alerts: Vec<AlertEvent>,
    /// True once the run has reached its duration (or stopped early).
    pub finished: bool,
}

/// One component during one window (all replicas together).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentWindow {
    /// Component name.
    pub name: String,
    /// Requests that reached it.
    pub arrivals: u64,
    /// Requests it served successfully.
    pub completions: u64,
    /// Requests turned away by a full queue.
    pub drops: u64,
    /// Requests that failed here (failures, timeouts, crashes, partitions, no live replica).
    pub errors: u64,
    /// Of the errors: requests that waited longer than the timeout.
    pub timeouts: u64,
    /// Time-average share of servers busy, 0..1.
    pub utilisation: f64,
    /// Time-average number of requests waiting.
    pub mean_queue_length: f64,
    /// Time-average number waiting or in service (L in Little's law).
    pub mean_in_system: f64,
    /// Requests waiting at the end of the window.
    pub queue_length: u64,
    /// Completions per second.
    pub throughput: f64,
    /// Mean wait in queue of requests whose service started in the window.
    pub mean_wait_ms: Option<f64>,
    /// Mean time from arrival to end of service of completions.
    pub mean_response_ms: Option<f64>,
    /// Median response.
    pub p50_ms: Option<f64>,
    /// 95th percentile response.
    pub p95_ms: Option<f64>,
    /// 99th percentile response.
    pub p99_ms: Option<f64>,
    /// Replicas up at the end of the window.
    pub replicas_up: u32,
}

/// Requests from the client to their end, during one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndToEndWindow {
    /// Requests sent by clients.
    pub arrivals: u64,
    /// Requests answered successfully.
    pub completions: u64,
    /// Requests dropped by a full queue somewhere.
    pub drops: u64,
    /// Requests that failed somewhere.
    pub errors: u64,
    /// Requests alive at the end of the window.
    pub in_flight: u64,
    /// Successful answers per second.
    pub throughput: f64,
    /// Mean latency of successful requests.
    pub mean_response_ms: Option<f64>,
    /// Median latency.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency.
    pub p99_ms: Option<f64>,
}

/// An alert rule changing state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    /// Rule name.
    pub rule: String,
    /// Watched component (`None`: end to end).
    pub component: Option<String>,
    /// "firing" or "resolved".
    pub state: &'static str,
    /// When, simulated seconds.
    pub at_s: f64,
    /// The metric's value in the window that changed the state.
    pub value: f64,
}
