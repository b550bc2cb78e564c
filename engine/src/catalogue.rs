//! The catalogue of component kinds and their default profiles.
//!
//! A profile turns a published "throughput at latency" figure into a queueing station:
//! by Little's law a component that sustains `X` requests/s at a mean service time `S`
//! keeps `c = X * S` requests in service, so it is modelled as `c` servers each with mean
//! service time `S`. Web server 15,000 req/s at 2 ms is therefore 30 servers of 2 ms.

use serde::Serialize;

/// What a kind of component is for; decides defaults such as the routing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Generates traffic (a client population); has no queue of its own.
    Source,
    /// Spreads requests over its connections (load balancers, gateways).
    Balancer,
    /// Answers part of the requests itself (`hit_ratio`), forwards the misses.
    Cache,
    /// Any other processing station.
    Station,
}

/// Default figures for one kind of component.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The `kind` string used in designs.
    pub kind: &'static str,
    /// A human name.
    pub label: &'static str,
    /// What the kind is for.
    pub role: Role,
    /// Throughput of one replica at full load, requests per second.
    pub capacity_per_s: f64,
    /// Mean service time in milliseconds.
    pub latency_ms: f64,
    /// Waiting room per replica (requests beyond it are dropped); `None` is unbounded.
    pub queue_capacity: Option<u64>,
    /// Default cache hit ratio for caches.
    pub hit_ratio: Option<f64>,
}

impl Profile {
    /// Servers per replica implied by throughput and latency (at least one).
    pub fn servers(&self) -> u32 {
        ((self.capacity_per_s * self.latency_ms / 1000.0).round() as u32).max(1)
    }
}

const fn p(
    kind: &'static str,
    label: &'static str,
    role: Role,
    capacity_per_s: f64,
    latency_ms: f64,
    queue_capacity: Option<u64>,
    hit_ratio: Option<f64>,
) -> Profile {
    Profile {
        kind,
        label,
        role,
        capacity_per_s,
        latency_ms,
        queue_capacity,
        hit_ratio,
    }
}

/// Every kind a design may use.
pub const CATALOGUE: &[Profile] = &[
    p(
        "client",
        "client / traffic source",
        Role::Source,
        0.0,
        0.0,
        None,
        None,
    ),
    p(
        "web_server",
        "web server",
        Role::Station,
        15_000.0,
        2.0,
        Some(1_000),
        None,
    ),
    p(
        "api_server",
        "API server",
        Role::Station,
        8_000.0,
        5.0,
        Some(1_000),
        None,
    ),
    p(
        "microservice",
        "microservice",
        Role::Station,
        5_000.0,
        3.0,
        Some(1_000),
        None,
    ),
    p(
        "postgresql",
        "PostgreSQL",
        Role::Station,
        5_000.0,
        3.0,
        Some(500),
        None,
    ),
    p(
        "mongodb",
        "MongoDB",
        Role::Station,
        8_000.0,
        4.0,
        Some(500),
        None,
    ),
    p(
        "redis",
        "Redis cache",
        Role::Cache,
        100_000.0,
        0.1,
        Some(10_000),
        Some(0.8),
    ),
    p(
        "nginx_lb",
        "NGINX load balancer",
        Role::Balancer,
        50_000.0,
        0.5,
        Some(10_000),
        None,
    ),
    p(
        "api_gateway",
        "API gateway",
        Role::Balancer,
        20_000.0,
        2.0,
        Some(5_000),
        None,
    ),
    p(
        "cdn",
        "CDN edge",
        Role::Cache,
        200_000.0,
        0.1,
        Some(100_000),
        Some(0.9),
    ),
    p(
        "message_queue",
        "message queue",
        Role::Station,
        100_000.0,
        1.0,
        Some(1_000_000),
        None,
    ),
    p(
        "object_storage",
        "object storage",
        Role::Station,
        5_000.0,
        20.0,
        Some(10_000),
        None,
    ),
    p(
        "service",
        "generic single-server station",
        Role::Station,
        1_000.0,
        1.0,
        None,
        None,
    ),
];

/// The profile of `kind`, if the catalogue has it.
pub fn profile(kind: &str) -> Option<&'static Profile> {
    CATALOGUE.iter().find(|p| p.kind == kind)
}

/// All kind names, for error messages.
pub fn kinds() -> Vec<&'static str> {
    CATALOGUE.iter().map(|p| p.kind).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_profiles_map_to_servers_by_littles_law() {
        let servers = |k: &str| profile(k).map(Profile::servers);
        assert_eq!(servers("web_server"), Some(30));
        assert_eq!(servers("api_server"), Some(40));
        assert_eq!(servers("microservice"), Some(15));
        assert_eq!(servers("postgresql"), Some(15));
        assert_eq!(servers("redis"), Some(10));
        assert_eq!(servers("mongodb"), Some(32));
        assert_eq!(servers("nginx_lb"), Some(25));
        assert_eq!(servers("api_gateway"), Some(40));
        assert_eq!(servers("cdn"), Some(20));
        assert_eq!(servers("service"), Some(1));
    }
}
