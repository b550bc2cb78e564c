//! Prometheus metrics of one process. Each process (or each app under test) owns its own
//! [`Metrics`]: nothing is registered in a global registry, so two apps in one test binary
//! never mix their counters.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::Arc;

/// A function run before each scrape (see [`Metrics::on_scrape`]).
type ScrapeHook = Box<dyn Fn(&Metrics) + Send + Sync>;

pub struct Metrics {
    pub registry: Registry,
    /// `sdsim_supervisor_restarts_total{service,supervisor,child,reason}`
    pub supervisor_restarts: IntCounterVec,
    /// `sdsim_grpc_server_handled_seconds{service,method,code}`
    pub grpc_server_seconds: HistogramVec,
    /// `sdsim_grpc_server_in_flight{service}`: requests being handled now
    pub grpc_in_flight: IntGaugeVec,
    /// `sdsim_grpc_client_seconds{target,method,outcome}`
    pub grpc_client_seconds: HistogramVec,
    /// `sdsim_http_request_duration_seconds{method,route,status}`
    pub http_request_seconds: HistogramVec,
    /// `sdsim_websocket_sessions{endpoint}`
    pub ws_sessions: IntGaugeVec,
    /// `sdsim_websocket_frames_sent_total{type}`
    pub ws_frames_sent: IntCounterVec,
    /// `sdsim_websocket_closed_total{code}`: sessions the server closed, by close code
    pub ws_closed: IntCounterVec,
    /// `sdsim_simulation_runs_finished_total{outcome}`: runs ended (completed, stopped,
    /// failed), by the instance that ended them
    pub runs_finished: IntCounterVec,
    /// `sdsim_events_published_total{channel,outcome}`
    pub events_published: IntCounterVec,
    /// `sdsim_events_received_total{channel}`
    pub events_received: IntCounterVec,
    /// `sdsim_db_pool_connections{state}` (open, idle, max, waiting), read at each scrape
    /// in a process that owns data (see [`Metrics::on_scrape`]).
    pub db_pool_connections: IntGaugeVec,
    /// `sdsim_circuit_breaker_state{service,instance}`: 0 closed, 1 open, 2 half-open
    pub breaker_state: IntGaugeVec,
    /// `sdsim_circuit_breaker_calls_total{service,instance,outcome}`
    pub breaker_calls: IntCounterVec,
    /// `sdsim_circuit_breaker_transitions_total{service,instance,to}`
    pub breaker_transitions: IntCounterVec,
    /// `sdsim_pool_channels{service,instance}`
    pub pool_channels: IntGaugeVec,
    /// `sdsim_pool_utilisation_ratio{service,instance}`
    pub pool_utilisation: GaugeVec,
    /// `sdsim_pool_queue{service,instance}`: callers waiting for a channel
    pub pool_queue: IntGaugeVec,
    /// `sdsim_pool_scale_events_total{service,direction,trigger}`
    pub pool_scale_events: IntCounterVec,
    /// `sdsim_pool_scale_up_seconds{service}`: from the trigger to the new channel serving
    pub pool_scale_up_seconds: HistogramVec,
    /// `sdsim_pool_refused_total{service}`: channels the global cap refused
    pub pool_refused: IntCounterVec,
    /// `sdsim_pool_rebalanced_total{from,to}`: channels moved to a higher-priority pool
    pub pool_rebalanced: IntCounterVec,
    /// `sdsim_pool_channels_total`: channels of every pool of this process
    pub pool_channels_total: IntGauge,
    /// `sdsim_mesh_retries_total{service,outcome}` (retried, budget_exhausted)
    pub mesh_retries: IntCounterVec,
    /// `sdsim_discovery_changes_total{service,change}` (added, removed) in the routing table
    pub discovery_changes: IntCounterVec,
    /// `sdsim_auth_session_checks_total{outcome}` (live, ended, error): token validations
    /// that had to ask Redis/PostgreSQL whether the session is live (cache misses and
    /// refreshes; concurrent ones share one check)
    pub auth_session_checks: IntCounterVec,
    /// `sdsim_discovery_instances{service}`
    pub discovered_instances: IntGaugeVec,
    /// `sdsim_process_start_time_seconds`
    pub start_time: IntGauge,
    /// Redis stream reads open on a gateway: one XREAD loop per run watched there.
    pub live_feeds: IntGauge,
    /// Read before each scrape (gauges of state owned elsewhere, e.g. the database pool).
    scrape_hooks: std::sync::Mutex<Vec<ScrapeHook>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let supervisor_restarts = counter(
            "sdsim_supervisor_restarts_total",
            "Restarts of supervised children, by reason (panic, failure, normal, sibling_restart).",
            &["service", "supervisor", "child", "reason"],
        );
        let grpc_server_seconds = histogram(
            "sdsim_grpc_server_handled_seconds",
            "Time to handle a gRPC request, by method and status code.",
            &["service", "method", "code"],
        );
        let grpc_in_flight = gauge(
            "sdsim_grpc_server_in_flight",
            "gRPC requests being handled now (the load an instance registers).",
            &["service"],
        );
        let grpc_client_seconds = histogram(
            "sdsim_grpc_client_seconds",
            "Time of outgoing gRPC calls, by target service, method and outcome.",
            &["target", "method", "outcome"],
        );
        let http_request_seconds = histogram(
            "sdsim_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route pattern and status.",
            &["method", "route", "status"],
        );
        let ws_sessions = gauge(
            "sdsim_websocket_sessions",
            "Open WebSocket sessions, by endpoint.",
            &["endpoint"],
        );
        let ws_frames_sent = counter(
            "sdsim_websocket_frames_sent_total",
            "Frames sent to WebSocket clients, by frame type.",
            &["type"],
        );
        let ws_closed = counter(
            "sdsim_websocket_closed_total",
            "WebSocket sessions closed by the server, by close code (4001, 4008, 4009, ...).",
            &["code"],
        );
        let runs_finished = counter(
            "sdsim_simulation_runs_finished_total",
            "Simulation runs ended, by outcome (completed, stopped, failed).",
            &["outcome"],
        );
        let events_published = counter(
            "sdsim_events_published_total",
            "Events published on Redis, by channel family and outcome.",
            &["channel", "outcome"],
        );
        let events_received = counter(
            "sdsim_events_received_total",
            "Events received from Redis, by channel family.",
            &["channel"],
        );
        let db_pool_connections = gauge(
            "sdsim_db_pool_connections",
            "PostgreSQL pool of this process: connections open, idle, its max, and requests \
             waiting for one.",
            &["state"],
        );
        let breaker_state = gauge(
            "sdsim_circuit_breaker_state",
            "Circuit breaker state per target instance: 0 closed, 1 open, 2 half-open.",
            &["service", "instance"],
        );
        let breaker_calls = counter(
            "sdsim_circuit_breaker_calls_total",
            "Calls through a circuit breaker, by outcome (success, failure, rejected).",
            &["service", "instance", "outcome"],
        );
        let breaker_transitions = counter(
            "sdsim_circuit_breaker_transitions_total",
            "Circuit breaker state changes, by the state entered.",
            &["service", "instance", "to"],
        );
        let pool_channels = gauge(
            "sdsim_pool_channels",
            "gRPC channels (HTTP/2 connections) in the pool of a target instance.",
            &["service", "instance"],
        );
        let pool_utilisation = GaugeVec::new(
            Opts::new(
                "sdsim_pool_utilisation_ratio",
                "In-flight calls over the capacity of a target instance's pool.",
            ),
            &["service", "instance"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(pool_utilisation.clone()))
            .expect("unique metric");
        let pool_queue = gauge(
            "sdsim_pool_queue",
            "Callers waiting for a channel of a target instance's pool.",
            &["service", "instance"],
        );
        let pool_scale_events = counter(
            "sdsim_pool_scale_events_total",
            "Pool size changes, by direction (up, down) and trigger (utilisation, queue, rate, latency, idle, rebalance).",
            &["service", "direction", "trigger"],
        );
        let pool_scale_up_seconds = histogram(
            "sdsim_pool_scale_up_seconds",
            "Time from a scale-up trigger to the new channel serving.",
            &["service"],
        );
        let pool_refused = counter(
            "sdsim_pool_refused_total",
            "Channels a pool asked for and the global cap refused.",
            &["service"],
        );
        let pool_rebalanced = counter(
            "sdsim_pool_rebalanced_total",
            "Channels moved from a lower-priority pool to a higher-priority one at the global cap.",
            &["from", "to"],
        );
        let pool_channels_total = IntGauge::new(
            "sdsim_pool_channels_total",
            "Channels of every pool of this process (bounded by mesh.global_max_channels).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(pool_channels_total.clone()))
            .expect("unique metric");
        let mesh_retries = counter(
            "sdsim_mesh_retries_total",
            "Retries of idempotent calls on another instance (retried), or not made because the retry budget was spent (budget_exhausted).",
            &["service", "outcome"],
        );
        let discovery_changes = counter(
            "sdsim_discovery_changes_total",
            "Instances added to or removed from this process's routing table.",
            &["service", "change"],
        );
        let auth_session_checks = counter(
            "sdsim_auth_session_checks_total",
            "Session checks behind token validation (Redis, then PostgreSQL), by outcome.",
            &["outcome"],
        );
        let discovered_instances = gauge(
            "sdsim_discovery_instances",
            "Instances of each service this process knows of (from Redis discovery).",
            &["service"],
        );
        let start_time = IntGauge::new(
            "sdsim_process_start_time_seconds",
            "Unix time at which this process started.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(start_time.clone()))
            .expect("unique metric");
        start_time.set(chrono::Utc::now().timestamp());
        let live_feeds = IntGauge::new(
            "sdsim_live_feeds",
            "Live run streams read from Redis by this gateway: one XREAD loop per watched run, \
             whatever its number of watchers.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(live_feeds.clone()))
            .expect("unique metric");
        Arc::new(Self {
            registry,
            supervisor_restarts,
            grpc_server_seconds,
            grpc_in_flight,
            grpc_client_seconds,
            http_request_seconds,
            ws_sessions,
            ws_frames_sent,
            ws_closed,
            runs_finished,
            events_published,
            events_received,
            db_pool_connections,
            breaker_state,
            breaker_calls,
            breaker_transitions,
            pool_channels,
            pool_utilisation,
            pool_queue,
            pool_scale_events,
            pool_scale_up_seconds,
            pool_refused,
            pool_rebalanced,
            pool_channels_total,
            mesh_retries,
            discovery_changes,
            auth_session_checks,
            discovered_instances,
            start_time,
            live_feeds,
            scrape_hooks: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Runs `hook` before each scrape, to set gauges from state this registry does not own.
    pub fn on_scrape(&self, hook: impl Fn(&Metrics) + Send + Sync + 'static) {
        self.scrape_hooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(hook));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        // A hook must not scrape (the lock is not reentrant); one that panicked leaves the
        // others running.
        for hook in self
            .scrape_hooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            hook(self);
        }
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            return format!("# error encoding metrics: {e}\n");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The family of a channel name, for metric labels (never the full name: user ids would
/// explode the label cardinality).
pub fn channel_family(channel: &str) -> &str {
    let mut parts = channel.splitn(3, ':');
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => {
            let end = a.len() + 1 + b.len();
            &channel[..end]
        }
        _ => channel,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn channel_family_drops_ids() {
        assert_eq!(
            super::channel_family("notifications:user:123"),
            "notifications:user"
        );
        assert_eq!(super::channel_family("auth:events:login"), "auth:events");
        assert_eq!(super::channel_family("plain"), "plain");
    }
}
