//! The design model: what users describe, as serde types.
//!
//! A design is a set of components (each of a catalogue kind, any figure overridable),
//! connections between them (who forwards to whom, with what probability and network
//! latency), traffic carried by `client` components, chaos to inject, alert rules, a seed
//! and a duration. `engine/README.md` walks through an annotated example.
//!
//! Requests flow through the design as jobs through a queueing network: a request enters
//! at a client's connection, is served at each component it visits, then either finishes
//! there (no outgoing connection, `exit_probability`, or a cache hit) or is forwarded along
//! one outgoing connection.

use serde::{Deserialize, Serialize};

/// A whole system design, ready to validate and simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Design {
    /// A name shown in reports.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Seed of the random stream; a seed given to the run overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Simulated time to run, seconds.
    pub duration_s: f64,
    /// Length of a metrics window for full runs, seconds (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
    /// Upper bound on simulation events; the run stops early, saying so, when it is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u64>,
    /// The components, in the order reports list them.
    pub components: Vec<Component>,
    /// Directed connections `from` -> `to`.
    #[serde(default)]
    pub connections: Vec<Connection>,
    /// Failures and disturbances to inject.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chaos: Vec<Chaos>,
    /// Alert rules evaluated on each window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertRule>,
}

/// One component. Every `Option` left out takes the kind's catalogue default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Unique name, used by connections, chaos and reports.
    pub name: String,
    /// A kind from the catalogue (`web_server`, `postgresql`, `redis`, `client`, ...).
    pub kind: String,
    /// Servers (threads, cores, connections) per replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<u32>,
    /// Service-time distribution; default exponential with the kind's latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<ServiceTime>,
    /// Waiting room per replica: a number, or "unbounded".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_capacity: Option<QueueCapacity>,
    /// A request that waited longer than this in the queue is abandoned (an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
    /// Probability that a served request fails here (an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_probability: Option<f64>,
    /// Identical replicas, each with its own servers and queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// How requests for this component are spread over its replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<Balancer>,
    /// How a served request picks one of the outgoing connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
    /// Probability that a served request finishes here instead of going on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_probability: Option<f64>,
    /// For caches: the share of requests answered here (the rest go on as misses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hit_ratio: Option<f64>,
    /// For clients: the workload they generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
}

/// Service-time distributions; every mean is in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceTime {
    /// Memoryless (M): coefficient of variation 1.
    Exponential {
        /// Mean, ms.
        mean_ms: f64,
    },
    /// Constant (D).
    Deterministic {
        /// The constant, ms.
        mean_ms: f64,
    },
    /// Log-normal with the given mean and coefficient of variation.
    Lognormal {
        /// Mean, ms.
        mean_ms: f64,
        /// Standard deviation divided by the mean.
        cv: f64,
    },
    /// Erlang-k: sum of k exponential phases, cv = 1/sqrt(k).
    Erlang {
        /// Mean, ms.
        mean_ms: f64,
        /// Number of phases.
        k: u32,
    },
    /// Uniform between two bounds.
    Uniform {
        /// Lower bound, ms.
        min_ms: f64,
        /// Upper bound, ms.
        max_ms: f64,
    },
}

impl ServiceTime {
    /// Mean service time in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        match *self {
            ServiceTime::Exponential { mean_ms }
            | ServiceTime::Deterministic { mean_ms }
            | ServiceTime::Lognormal { mean_ms, .. }
            | ServiceTime::Erlang { mean_ms, .. } => mean_ms,
            ServiceTime::Uniform { min_ms, max_ms } => (min_ms + max_ms) / 2.0,
        }
    }

    /// Squared coefficient of variation (variance / mean^2).
    pub fn scv(&self) -> f64 {
        match *self {
            ServiceTime::Exponential { .. } => 1.0,
            ServiceTime::Deterministic { .. } => 0.0,
            ServiceTime::Lognormal { cv, .. } => cv * cv,
            ServiceTime::Erlang { k, .. } => 1.0 / f64::from(k.max(1)),
            ServiceTime::Uniform { min_ms, max_ms } => {
                let m = (min_ms + max_ms) / 2.0;
                if m > 0.0 {
                    (max_ms - min_ms).powi(2) / 12.0 / (m * m)
                } else {
                    0.0
                }
            }
        }
    }
}

/// A queue size: finite (arrivals to a full queue are dropped) or unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueueCapacity {
    /// At most this many requests wait (per replica).
    Finite(u64),
    /// No limit.
    Unbounded(Unbounded),
}

/// The word "unbounded".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unbounded {
    /// No limit.
    Unbounded,
}

/// Spreading requests over the replicas of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancer {
    /// Take the live replicas in turn.
    RoundRobin,
    /// The live replica with the fewest requests in it.
    LeastConnections,
    /// A live replica chosen uniformly at random.
    Random,
}

/// Choosing one outgoing connection for a served request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// By each connection's `probability` (even split when none is given).
    Probabilistic,
    /// The connections in turn.
    RoundRobin,
    /// The target with the fewest requests in it.
    LeastConnections,
    /// Uniformly at random.
    Random,
}

/// A directed connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Sending component.
    pub from: String,
    /// Receiving component.
    pub to: String,
    /// With probabilistic routing: the share of forwarded requests taking this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// One-way network latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

/// A client's workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Traffic {
    /// Poisson arrivals at `rate` requests/s, shaped over time by `pattern`.
    Open {
        /// Base rate, requests per second.
        rate: f64,
        /// How the rate changes over time (constant when left out).
        #[serde(default)]
        pattern: Pattern,
    },
    /// `users` users, each sending a request, waiting for its answer, then thinking.
    Closed {
        /// Number of users.
        users: u32,
        /// Mean think time (exponential), ms.
        think_time_ms: f64,
    },
}

/// The shape of an open workload's rate over time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pattern {
    /// `rate` throughout.
    #[default]
    Constant,
    /// Linear from `rate` at `start_s` to `to_rate` at `end_s`, flat outside.
    Ramp {
        /// Rate reached at the end of the ramp.
        to_rate: f64,
        /// Start of the ramp, s (default 0).
        #[serde(default)]
        start_s: f64,
        /// End of the ramp, s (default: the duration).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_s: Option<f64>,
    },
    /// `peak_rate` between `at_s` and `at_s + duration_s`, `rate` otherwise.
    Spike {
        /// Rate during the spike.
        peak_rate: f64,
        /// Start, s.
        at_s: f64,
        /// Length, s.
        duration_s: f64,
    },
    /// `rate * (1 + amplitude * sin(2 pi t / period_s))`.
    Wave {
        /// Relative amplitude in [0, 1].
        amplitude: f64,
        /// Period, s.
        period_s: f64,
    },
    /// A daily curve: `rate * (1 + amplitude * cos(2 pi (t - peak_at_s) / period_s))`.
    Diurnal {
        /// Relative amplitude in [0, 1].
        amplitude: f64,
        /// Length of a "day", s (default 86,400).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        period_s: Option<f64>,
        /// Time of the daily peak, s (default half a period).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peak_at_s: Option<f64>,
    },
}

/// A failure or disturbance to inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Chaos {
    /// The component (or one replica) stops at `at_s`: queued and in-service requests
    /// fail, new ones are refused; it recovers after `duration_s` (never if left out).
    Crash {
        /// Target component.
        component: String,
        /// Only this replica (0-based); all replicas when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
        /// When, s.
        at_s: f64,
        /// Down time, s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<f64>,
    },
    /// Each replica fails after exponential up times (mean `mtbf_s`) and recovers after
    /// exponential repair times (mean `mttr_s`).
    RandomCrash {
        /// Target component.
        component: String,
        /// Mean time between failures, s.
        mtbf_s: f64,
        /// Mean time to repair, s.
        mttr_s: f64,
    },
    /// Adds `extra_ms` to every service at the component.
    Latency {
        /// Target component.
        component: String,
        /// When, s.
        at_s: f64,
        /// For how long, s.
        duration_s: f64,
        /// Added service time, ms.
        extra_ms: f64,
    },
    /// Served requests fail with `probability` (on top of `failure_probability`).
    Errors {
        /// Target component.
        component: String,
        /// When, s.
        at_s: f64,
        /// For how long, s.
        duration_s: f64,
        /// Failure probability while active.
        probability: f64,
    },
    /// Requests between the two components (either direction) fail.
    Partition {
        /// One side.
        from: String,
        /// Other side.
        to: String,
        /// When, s.
        at_s: f64,
        /// For how long, s.
        duration_s: f64,
    },
    /// Multiplies the rate of one client (all clients when left out).
    TrafficSpike {
        /// Target client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        /// When, s.
        at_s: f64,
        /// For how long, s.
        duration_s: f64,
        /// Rate multiplier (closed workloads: think time divided by it).
        multiplier: f64,
    },
    /// The cache's hit ratio falls to `hit_ratio` (default 0) for a while.
    CacheMissStorm {
        /// Target cache.
        component: String,
        /// When, s.
        at_s: f64,
        /// For how long, s.
        duration_s: f64,
        /// Hit ratio during the storm.
        #[serde(default)]
        hit_ratio: f64,
    },
}

/// A metric an alert rule can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertMetric {
    /// Busy share of the servers, 0..1.
    Utilisation,
    /// Time-average number waiting.
    QueueLength,
    /// Median response, ms.
    P50Ms,
    /// 95th percentile response, ms.
    P95Ms,
    /// 99th percentile response, ms.
    P99Ms,
    /// Mean response, ms.
    MeanResponseMs,
    /// Completions per second.
    Throughput,
    /// Errors / arrivals.
    ErrorRate,
    /// Drops / arrivals.
    DropRate,
}

/// Fires when `metric` stays above (or below) a threshold for `for_s` seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Shown when it fires.
    pub name: String,
    /// Watched component; end to end when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The metric.
    pub metric: AlertMetric,
    /// Fire when the metric is above this...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// ...or below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// For at least this long, s (0: at once).
    #[serde(default)]
    pub for_s: f64,
}
