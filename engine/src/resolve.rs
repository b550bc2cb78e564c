//! Effective parameters of each component: the design's overrides over the kind's profile.
//!
//! Validation, the analytic preview and the simulator all read components through
//! [`resolve`], so they agree on every default.

use crate::catalogue::{self, Role};
use crate::model::{Balancer, Component, QueueCapacity, Routing, ServiceTime, Traffic};

/// A component with every default filled in.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What the kind is for.
    pub role: Role,
    /// Servers per replica.
    pub servers: u32,
    /// Replicas.
    pub replicas: u32,
    /// Service-time distribution.
    pub service: ServiceTime,
    /// Waiting room per replica; `None` is unbounded.
    pub queue_capacity: Option<u64>,
    /// Queue timeout, seconds (infinite when none).
    pub timeout_s: f64,
    /// Failure probability of a served request.
    pub failure_probability: f64,
    /// Replica balancing.
    pub balancer: Balancer,
    /// Choice among outgoing connections.
    pub routing: Routing,
    /// Probability of finishing here (cache hit or exit), before any connection is used.
    pub exit_probability: f64,
    /// The workload, for clients.
    pub traffic: Option<Traffic>,
}

/// Resolves a component whose kind is in the catalogue; `None` for an unknown kind.
pub fn resolve(c: &Component) -> Option<Resolved> {
    let prof = catalogue::profile(&c.kind)?;
    let service = c.service_time.clone().unwrap_or(ServiceTime::Exponential {
        mean_ms: prof.latency_ms,
    });
    let routing = c.routing.unwrap_or(match prof.role {
        Role::Balancer => Routing::RoundRobin,
        _ => Routing::Probabilistic,
    });
    let exit_probability = c
        .hit_ratio
        .or(c.exit_probability)
        .or(prof.hit_ratio)
        .unwrap_or(0.0);
    Some(Resolved {
        role: prof.role,
        servers: c.servers.unwrap_or_else(|| prof.servers()),
        replicas: c.replicas.unwrap_or(1),
        service,
        queue_capacity: match c.queue_capacity {
            Some(QueueCapacity::Finite(n)) => Some(n),
            Some(QueueCapacity::Unbounded(_)) => None,
            None => prof.queue_capacity,
        },
        timeout_s: c.timeout_ms.map_or(f64::INFINITY, |t| t / 1000.0),
        failure_probability: c.failure_probability.unwrap_or(0.0),
        balancer: c.balancer.unwrap_or(Balancer::RoundRobin),
        routing,
        exit_probability,
        traffic: c.traffic.clone(),
    })
}
