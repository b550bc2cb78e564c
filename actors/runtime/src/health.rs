//! Health of a service and of what it depends on (PostgreSQL, Redis).

use sdsim_protocols::proto::common::{DependencyHealth, HealthCheckResponse};
use sdsim_schema::DbPool;
use std::time::{Duration, Instant};

/// Probes a service's dependencies with short deadlines.
#[derive(Clone)]
pub struct HealthProbe {
    pub instance_id: String,
    pub started: Instant,
    pub pool: Option<DbPool>,
    pub redis: Option<redis::aio::ConnectionManager>,
    pub timeout: Duration,
}

impl std::fmt::Debug for HealthProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthProbe")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

impl HealthProbe {
    pub async fn dependencies(&self) -> Vec<DependencyHealth> {
        let mut deps = Vec::new();
        if let Some(pool) = &self.pool {
            let start = Instant::now();
            let res = tokio::time::timeout(self.timeout, sdsim_schema::pool::ping(pool)).await;
            deps.push(dep(
                "postgres",
                start,
                res.map_err(|_| "timed out".to_string())
                    .and_then(|r| r.map_err(|e| e.to_string())),
            ));
        }
        if let Some(redis) = &self.redis {
            let start = Instant::now();
            let mut conn = redis.clone();
            let res = tokio::time::timeout(self.timeout, async move {
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .map(|_| ())
            })
            .await;
            deps.push(dep(
                "redis",
                start,
                res.map_err(|_| "timed out".to_string())
                    .and_then(|r| r.map_err(|e| e.to_string())),
            ));
        }
        deps
    }

    /// The standard HealthCheck answer: SERVING when the service's actor is up and every
    /// dependency it cannot work without answers. Redis is not one: auth and CRUD keep
    /// working without it, so its absence is reported (degraded) but not fatal.
    pub async fn check(&self, service: &str, actor_up: bool) -> HealthCheckResponse {
        let deps = self.dependencies().await;
        let ok = actor_up && deps.iter().all(|d| d.healthy || !is_critical(&d.name));
        HealthCheckResponse {
            status: if ok { "SERVING" } else { "NOT_SERVING" }.into(),
            service: service.into(),
            instance_id: self.instance_id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_seconds: self.started.elapsed().as_secs() as i64,
            dependencies: deps,
        }
    }
}

/// Whether a service cannot serve without this dependency.
pub fn is_critical(dependency: &str) -> bool {
    dependency != "redis"
}

fn dep(name: &str, start: Instant, res: Result<(), String>) -> DependencyHealth {
    DependencyHealth {
        name: name.into(),
        healthy: res.is_ok(),
        detail: res.err().unwrap_or_default(),
        latency_ms: start.elapsed().as_secs_f64() * 1000.0,
    }
}
