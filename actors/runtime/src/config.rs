//! The settings every process shares (database, Redis, supervision, discovery, the mesh,
//! admin endpoints), the listen addresses type each service embeds in its own section, and
//! [`Secret`]. Each service crate owns its own section (`sdsim_auth::AuthSettings`,
//! `sdsim_gateway::GatewaySettings`, ...); the binary composes them into one file
//! (`sdsim/src/settings.rs`).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A secret value (a password, a signing key, a URL with credentials). It never prints:
/// `Debug`, `Display` and `Serialize` all give [`Secret::REDACTED`] (or `""` when unset), so
/// `sdsim config`, logs and error messages cannot leak it. Only [`Secret::expose`] reads it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// What a set secret prints as.
    pub const REDACTED: &'static str = "<redacted>";

    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn shown(&self) -> &'static str {
        if self.0.is_empty() {
            ""
        } else {
            Self::REDACTED
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({:?})", self.shown())
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

/// Where one service listens: its gRPC port and its HTTP port (REST and WebSocket for the
/// gateway; health, metrics and admin for the others). Each service's section embeds one
/// (`[auth.listen]`, `SDSIM_AUTH__LISTEN__GRPC=0.0.0.0:9000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

impl Listen {
    /// The given ports on 127.0.0.1 (the defaults: nothing is exposed unless configured).
    pub fn local(grpc: u16, http: u16) -> Self {
        Self {
            grpc: SocketAddr::from(([127, 0, 0, 1], grpc)),
            http: SocketAddr::from(([127, 0, 0, 1], http)),
        }
    }

    /// Port 0 on 127.0.0.1 for both (tests).
    pub fn any() -> Self {
        Self::local(0, 0)
    }
}

/// What the runtime of every service needs: the shared connections and how the process
/// supervises, registers and calls.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub supervision: SupervisionSettings,
    pub admin: AdminSettings,
    pub discovery: DiscoverySettings,
    pub mesh: MeshSettings,
    pub shutdown: ShutdownSettings,
}

/// How a process stops (SIGTERM, Ctrl-C): it turns unready, closes its WebSockets with 1001,
/// lets in-flight requests finish for at most `grace_ms`, leaves discovery and exits 0.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    pub grace_ms: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self { grace_ms: 10_000 }
    }
}

/// How this process calls other services: channel pools per target instance and their scaler,
/// the global channel cap, circuit breakers, retries (see `actors/runtime/src/mesh/`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshSettings {
    /// Deadline of one call, retries included.
    pub call_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Channels (HTTP/2 connections) per target instance: always this many warm...
    pub min_channels: usize,
    /// ...and at most this many under load.
    pub max_channels: usize,
    /// Calls a channel carries at once before callers queue for one.
    pub channel_concurrency: usize,
    /// How often each pool's scaler looks at its measurements.
    pub scale_interval_ms: u64,
    /// Scale up when utilisation (in-flight calls over capacity) is above this...
    pub scale_up_utilisation: f64,
    /// ...or more callers than this wait for a channel...
    pub scale_up_queue: usize,
    /// ...or the pool carries more calls per second than this...
    pub scale_up_rate: f64,
    /// ...or the latency (EWMA) is above this...
    pub scale_up_latency_ms: f64,
    /// ...and the error rate is below this (more channels do not help a failing target).
    pub scale_up_max_error_rate: f64,
    /// Scale down when utilisation is below this and the queue below `scale_down_queue`...
    pub scale_down_utilisation: f64,
    pub scale_down_queue: usize,
    /// ...and the last scale action is at least this old.
    pub scale_down_cooldown_ms: u64,
    /// Channels of all pools of this process together; past it a pool of a higher-priority
    /// service (auth > project > simulation > gateway) takes one from a lower-priority pool.
    pub global_max_channels: usize,
    /// Attempts of an idempotent call (each on another instance).
    pub retry_attempts: u32,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Retries allowed per call made (0.1: at most 10% more calls), plus a floor per second.
    pub retry_budget_ratio: f64,
    pub retry_budget_min_per_second: f64,
    /// A vanished instance's breaker is remembered this long (it comes back half-open).
    pub forget_after_ms: u64,
    /// One circuit breaker per target instance.
    pub breaker: BreakerSettings,
}

impl Default for MeshSettings {
    fn default() -> Self {
        Self {
            call_timeout_ms: 5_000,
            connect_timeout_ms: 1_000,
            min_channels: 5,
            max_channels: 20,
            channel_concurrency: 100,
            scale_interval_ms: 100,
            scale_up_utilisation: 0.8,
            scale_up_queue: 10,
            scale_up_rate: 100.0,
            scale_up_latency_ms: 50.0,
            scale_up_max_error_rate: 0.05,
            scale_down_utilisation: 0.3,
            scale_down_queue: 2,
            scale_down_cooldown_ms: 300_000,
            global_max_channels: 1_000,
            retry_attempts: 3,
            retry_backoff_ms: 10,
            retry_backoff_max_ms: 200,
            retry_budget_ratio: 0.1,
            retry_budget_min_per_second: 10.0,
            forget_after_ms: 60_000,
            breaker: BreakerSettings::default(),
        }
    }
}

/// Registration of this process's instances in Redis, and its view of the others.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoverySettings {
    /// An instance that stops renewing disappears after this long.
    pub ttl_ms: u64,
    pub heartbeat_ms: u64,
    /// How often the view of other instances is read again.
    pub refresh_ms: u64,
    /// Host others should dial; empty: the listen address (127.0.0.1 for 0.0.0.0).
    pub advertise_host: String,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        Self {
            ttl_ms: 10_000,
            heartbeat_ms: 3_000,
            refresh_ms: 500,
            advertise_host: String::new(),
        }
    }
}

/// Operator endpoints on each service's HTTP port.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Allow `POST /admin/supervision/{supervisor}/{child}/crash` (chaos drills, tests).
    /// Off by default: never expose it where clients can reach it.
    pub fault_injection: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub pool_size: usize,
    /// Longest wait for a connection before a request fails with 503.
    pub acquire_timeout_ms: u64,
    /// A pooled connection unused for this long is checked (`SELECT 1`) before it is handed
    /// out; one used more recently is handed out as is (see `sdsim_schema::pool`).
    pub verify_idle_ms: u64,
    /// Apply pending migrations when a service starts.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("postgres://postgres@127.0.0.1:5432/sdsim"),
            pool_size: 16,
            acquire_timeout_ms: 2_000,
            verify_idle_ms: 5_000,
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    pub url: Secret,
    /// Prepended to every key and channel (isolates deployments and tests).
    pub prefix: String,
    pub timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("redis://127.0.0.1:6379/"),
            prefix: String::new(),
            timeout_ms: 1_000,
        }
    }
}

/// Circuit breaker settings (see `actors/runtime/src/breaker.rs`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    pub window_ms: u64,
    /// Failures (and slow calls) over calls in the window at which the breaker opens.
    pub failure_rate: f64,
    pub min_calls: u32,
    pub slow_call_ms: u64,
    /// How long it stays open before trial calls.
    pub open_ms: u64,
    pub half_open_calls: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            window_ms: 10_000,
            failure_rate: 0.5,
            min_calls: 10,
            slow_call_ms: 2_000,
            open_ms: 5_000,
            half_open_calls: 3,
        }
    }
}

impl BreakerSettings {
    pub fn config(&self) -> crate::breaker::BreakerConfig {
        crate::breaker::BreakerConfig {
            window: std::time::Duration::from_millis(self.window_ms.max(1_000)),
            failure_rate: self.failure_rate,
            min_calls: self.min_calls,
            slow_call: std::time::Duration::from_millis(self.slow_call_ms),
            open_for: std::time::Duration::from_millis(self.open_ms),
            half_open_calls: self.half_open_calls,
        }
    }
}

/// The static list of each service's instances: gRPC URLs, comma-separated (e.g.
/// `http://10.0.0.5:9000,http://10.0.0.6:9000`). Empty means "the listen address". Calls use
/// it when discovery knows no instance of the service or Redis is unreachable.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    pub auth: String,
    pub project: String,
    pub simulation: String,
    pub gateway: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionSettings {
    pub max_restarts: u32,
    pub period_seconds: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub backoff_jitter: f64,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            max_restarts: 10,
            period_seconds: 60,
            backoff_base_ms: 50,
            backoff_max_ms: 10_000,
            backoff_jitter: 0.2,
        }
    }
}

impl SupervisionSettings {
    pub fn intensity(&self) -> crate::supervision::Intensity {
        crate::supervision::Intensity {
            max_restarts: self.max_restarts,
            period: std::time::Duration::from_secs(self.period_seconds.max(1)),
        }
    }
    pub fn backoff(&self) -> crate::supervision::Backoff {
        crate::supervision::Backoff {
            base: std::time::Duration::from_millis(self.backoff_base_ms),
            max: std::time::Duration::from_millis(self.backoff_max_ms.max(self.backoff_base_ms)),
            jitter: self.backoff_jitter.clamp(0.0, 1.0),
        }
    }
}

/// Problems with the runtime's settings, each naming the setting.
pub fn validate(s: &RuntimeSettings, errors: &mut Vec<String>) {
    let b = &s.mesh.breaker;
    if !(b.failure_rate > 0.0 && b.failure_rate <= 1.0)
        || b.min_calls == 0
        || b.half_open_calls == 0
    {
        errors.push(
            "mesh.breaker: failure_rate must be in (0, 1], min_calls and half_open_calls at least 1"
                .into(),
        );
    }
    let m = &s.mesh;
    if m.min_channels == 0 || m.max_channels < m.min_channels {
        errors.push(
            "mesh.min_channels must be at least 1 and mesh.max_channels at least mesh.min_channels"
                .into(),
        );
    }
    if m.channel_concurrency == 0 || m.scale_interval_ms == 0 || m.global_max_channels == 0 {
        errors.push(
            "mesh.channel_concurrency, mesh.scale_interval_ms and mesh.global_max_channels must be positive"
                .into(),
        );
    }
    if m.scale_down_utilisation >= m.scale_up_utilisation || m.scale_down_queue > m.scale_up_queue {
        errors.push(
            "mesh.scale_down_utilisation must be below mesh.scale_up_utilisation and mesh.scale_down_queue at most mesh.scale_up_queue (else pools flap)"
                .into(),
        );
    }
    if m.call_timeout_ms == 0 || m.connect_timeout_ms == 0 || m.retry_attempts == 0 {
        errors.push(
            "mesh.call_timeout_ms, mesh.connect_timeout_ms and mesh.retry_attempts must be positive"
                .into(),
        );
    }
    if !(0.0..=1.0).contains(&m.retry_budget_ratio) || m.retry_budget_min_per_second < 0.0 {
        errors.push(
            "mesh.retry_budget_ratio must be in [0, 1] and mesh.retry_budget_min_per_second at least 0"
                .into(),
        );
    }
    let d = &s.discovery;
    if d.heartbeat_ms == 0 || d.ttl_ms < 2 * d.heartbeat_ms || d.refresh_ms == 0 {
        errors.push(
            "discovery.ttl_ms must be at least twice discovery.heartbeat_ms (> 0), and discovery.refresh_ms > 0"
                .into(),
        );
    }
    if s.database.pool_size == 0 {
        errors.push("database.pool_size must be at least 1".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2-very-secret");
        for shown in [
            format!("{s:?}"),
            format!("{s}"),
            serde_json::to_string(&s).unwrap(),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains(Secret::REDACTED), "{shown}");
        }
        assert_eq!(s.expose(), "hunter2-very-secret");
        assert_eq!(serde_json::to_string(&Secret::default()).unwrap(), "\"\"");
        let back: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back.expose(), "abc");
    }

    #[test]
    fn settings_that_hold_secrets_print_none() {
        let mut s = RuntimeSettings::default();
        s.database.url = Secret::new("postgres://u:pa55word@db/x");
        s.redis.url = Secret::new("redis://:r3dispass@cache/");
        let debug = format!("{s:?}");
        let json = serde_json::to_string(&s).unwrap();
        for out in [debug, json] {
            assert!(
                !out.contains("pa55word") && !out.contains("r3dispass"),
                "{out}"
            );
        }
    }
}
