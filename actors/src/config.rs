//! Settings of every service. The binary fills them from a TOML file and `SDSIM_*` environment
//! variables (see `sdsim/src/settings.rs`); every port, URL and limit lives here.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A secret that never prints.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Unique id of this process in the mesh; random when empty.
    pub instance_id: String,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub gateway: GatewaySettings,
    /// Where each service listens (gRPC and HTTP).
    pub listen: ListenSettings,
    /// Where the other services are reached (gRPC URLs). Defaults to the listen addresses.
    pub upstream: UpstreamSettings,
    pub supervision: SupervisionSettings,
    pub admin: AdminSettings,
    pub discovery: DiscoverySettings,
    pub mesh: MeshSettings,
}

/// How this process calls other services: channel pools per target instance and their scaler,
/// the global channel cap, circuit breakers, retries (see `actors/src/mesh/`).
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
    /// Apply pending migrations when a service starts.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("postgres://postgres@127.0.0.1:5432/sdsim"),
            pool_size: 16,
            acquire_timeout_ms: 2_000,
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HMAC key of access tokens (HS256). Must be at least 32 bytes.
    pub jwt_secret: Secret,
    /// `kid` header of the tokens signed with `jwt_secret`.
    pub jwt_key_id: String,
    /// Keys that signed before `jwt_secret` (key rotation): tokens they signed still verify
    /// until the key is removed from this list (retired). Nothing new is signed with them.
    pub previous_keys: Vec<JwtKey>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl_seconds: i64,
    pub refresh_ttl_seconds: i64,
    /// bcrypt cost (4..=31). 12 takes about 0.3 s of a core per hash.
    pub bcrypt_cost: u32,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Least zxcvbn strength (0..=4) of a new password; 3 means "safely unguessable".
    pub min_password_score: u8,
    /// bcrypt hashes running at once; 0 means one per core.
    pub max_concurrent_hashes: usize,
    /// How long a validated session is trusted in-process before Redis is asked again;
    /// bounds how late another instance's revocation is seen (keep it under 1000).
    pub validation_cache_ms: u64,
    pub limits: AuthLimits,
    pub mail: MailSettings,
}

/// Outgoing mail (verification and password-reset links).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `file`: write each mail to `outbox_dir` as a .eml file and log the link (local use);
    /// `smtp`: send through `smtp_host:smtp_port`.
    pub transport: String,
    pub outbox_dir: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_timeout_ms: u64,
    /// `none`: plain SMTP (a relay on loopback); `opportunistic`: STARTTLS when the server
    /// offers it; `starttls`: STARTTLS or no delivery (submission, port 587); `tls`: TLS from
    /// the first byte (SMTPS, port 465). The certificate is always verified against the
    /// system's roots plus `smtp_ca_file`.
    pub smtp_tls: String,
    /// Extra trusted roots (PEM), e.g. a private CA; empty: the system's roots only.
    pub smtp_ca_file: String,
    /// SMTP AUTH credentials; only ever sent over TLS (`starttls` or `tls`).
    pub smtp_username: String,
    pub smtp_password: Secret,
    pub from: String,
    /// Where links in mails point (the web app or the gateway).
    pub public_url: String,
    /// How long a verification or reset link works.
    pub token_ttl_seconds: i64,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: "file".into(),
            outbox_dir: ".local/outbox".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_timeout_ms: 10_000,
            smtp_tls: "none".into(),
            smtp_ca_file: String::new(),
            smtp_username: String::new(),
            smtp_password: Secret::default(),
            from: "sdsim <no-reply@sdsim.local>".into(),
            public_url: "http://127.0.0.1:8000".into(),
            token_ttl_seconds: 3_600,
        }
    }
}

/// A verification-only signing key.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKey {
    pub kid: String,
    pub secret: Secret,
}

/// Abuse limits, counted in Redis so they hold across every instance.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthLimits {
    /// Failed logins allowed for one account from one address per lockout window; past it,
    /// that address is locked out of that account until the window ends.
    pub login_failures_per_account_ip: u32,
    /// Failed logins allowed for one account from all addresses per window (distributed
    /// guessing); past it the account is locked for at most the window.
    pub login_failures_per_account: u32,
    /// The window, counted from the first failure (continued attempts do not extend it, so
    /// nobody can keep a real user locked out for longer than this).
    pub login_lockout_seconds: u64,
    /// Login attempts per client address per minute, whatever the account.
    pub login_per_ip_per_minute: u32,
    /// Registrations per client address per hour.
    pub register_per_ip_per_hour: u32,
    /// Token refreshes per client address per minute.
    pub refresh_per_ip_per_minute: u32,
    /// Verification and password-reset requests per client address per hour.
    pub mail_per_ip_per_hour: u32,
}

impl Default for AuthLimits {
    fn default() -> Self {
        Self {
            login_failures_per_account_ip: 5,
            login_failures_per_account: 50,
            login_lockout_seconds: 300,
            login_per_ip_per_minute: 60,
            register_per_ip_per_hour: 30,
            refresh_per_ip_per_minute: 120,
            mail_per_ip_per_hour: 20,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: Secret::default(),
            jwt_key_id: "k1".into(),
            previous_keys: Vec::new(),
            issuer: "sdsim-auth".into(),
            audience: "sdsim".into(),
            access_ttl_seconds: 15 * 60,
            refresh_ttl_seconds: 30 * 24 * 3600,
            bcrypt_cost: 12,
            leeway_seconds: 5,
            min_password_score: 3,
            max_concurrent_hashes: 0,
            validation_cache_ms: 500,
            limits: AuthLimits::default(),
            mail: MailSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Time a WebSocket client has to authenticate.
    pub ws_auth_timeout_ms: u64,
    pub ws_ping_interval_ms: u64,
    /// A client silent for this long is dropped.
    pub ws_client_timeout_ms: u64,
    /// Event bytes a WebSocket session may have waiting (sent to it, not yet taken by its
    /// socket) before it is closed with 4008 (too slow).
    pub ws_max_pending_bytes: usize,
    /// Event frames a session may have waiting before it is closed with 4008.
    pub ws_max_pending_frames: usize,
    /// actix-web worker threads; 0 means one per core.
    pub workers: usize,
    /// Trust `X-Forwarded-For` from the load balancer for the client address.
    pub trust_forwarded_for: bool,
}

/// Circuit breaker settings (see `actors/src/breaker.rs`).
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

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            ws_auth_timeout_ms: 5_000,
            ws_ping_interval_ms: 10_000,
            ws_client_timeout_ms: 30_000,
            ws_max_pending_bytes: 4 << 20,
            ws_max_pending_frames: 4096,
            workers: 0,
            trust_forwarded_for: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenSettings {
    pub gateway_http: SocketAddr,
    pub gateway_grpc: SocketAddr,
    pub auth_grpc: SocketAddr,
    pub auth_http: SocketAddr,
    pub project_grpc: SocketAddr,
    pub project_http: SocketAddr,
    pub simulation_grpc: SocketAddr,
    pub simulation_http: SocketAddr,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Default for ListenSettings {
    fn default() -> Self {
        use sdsim_protocols::ports::*;
        Self {
            gateway_http: local(GATEWAY_HTTP),
            gateway_grpc: local(GATEWAY_GRPC),
            auth_grpc: local(AUTH_GRPC),
            auth_http: local(AUTH_HTTP),
            project_grpc: local(PROJECT_GRPC),
            project_http: local(PROJECT_HTTP),
            simulation_grpc: local(SIMULATION_GRPC),
            simulation_http: local(SIMULATION_HTTP),
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

/// Problems with a [`Settings`], each naming the setting.
pub fn validate(s: &Settings) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
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
    if !(4..=31).contains(&s.auth.bcrypt_cost) {
        errors.push(format!(
            "auth.bcrypt_cost must be between 4 and 31, got {}",
            s.auth.bcrypt_cost
        ));
    }
    let mut kids = vec![s.auth.jwt_key_id.as_str()];
    for (i, k) in s.auth.previous_keys.iter().enumerate() {
        if k.secret.expose().len() < 32 {
            errors.push(format!(
                "auth.previous_keys[{i}].secret must be at least 32 bytes"
            ));
        }
        if k.kid.is_empty() || kids.contains(&k.kid.as_str()) {
            errors.push(format!(
                "auth.previous_keys[{i}].kid must be non-empty and differ from every other key id"
            ));
        }
        kids.push(&k.kid);
    }
    if !matches!(s.auth.mail.transport.as_str(), "file" | "smtp") {
        errors.push(format!(
            "auth.mail.transport must be \"file\" or \"smtp\", got {:?}",
            s.auth.mail.transport
        ));
    }
    let mail = &s.auth.mail;
    if !matches!(
        mail.smtp_tls.as_str(),
        "none" | "opportunistic" | "starttls" | "tls"
    ) {
        errors.push(format!(
            "auth.mail.smtp_tls must be \"none\", \"opportunistic\", \"starttls\" or \"tls\", got {:?}",
            mail.smtp_tls
        ));
    }
    if (!mail.smtp_username.is_empty() || !mail.smtp_password.is_empty())
        && !matches!(mail.smtp_tls.as_str(), "starttls" | "tls")
    {
        errors.push(
            "auth.mail.smtp_username and smtp_password need auth.mail.smtp_tls = \"starttls\" or \"tls\": credentials are never sent in the clear"
                .into(),
        );
    }
    if mail.smtp_username.is_empty() != mail.smtp_password.is_empty() {
        errors.push("auth.mail.smtp_username and smtp_password go together".into());
    }
    if mail.transport == "smtp" && !mail.smtp_ca_file.is_empty() {
        if let Err(e) = crate::auth::mailer::read_ca_file(&mail.smtp_ca_file) {
            errors.push(format!("auth.mail.smtp_ca_file: {e}"));
        }
    }
    if mail.from.parse::<lettre::message::Mailbox>().is_err() {
        errors.push(format!(
            "auth.mail.from is not a mail address: {:?}",
            mail.from
        ));
    }
    if s.auth.validation_cache_ms >= 1000 {
        errors.push(
            "auth.validation_cache_ms must be below 1000 (revocation is promised within 1 s)"
                .into(),
        );
    }
    if s.auth.min_password_score > 4 {
        errors.push(format!(
            "auth.min_password_score must be between 0 and 4, got {}",
            s.auth.min_password_score
        ));
    }
    if !s.auth.jwt_secret.is_empty() && s.auth.jwt_secret.expose().len() < 32 {
        errors.push("auth.jwt_secret must be at least 32 bytes".into());
    }
    if s.auth.access_ttl_seconds <= 0 || s.auth.refresh_ttl_seconds <= s.auth.access_ttl_seconds {
        errors.push(
            "auth.access_ttl_seconds must be positive and below auth.refresh_ttl_seconds".into(),
        );
    }
    if s.gateway.ws_max_pending_bytes < 64 * 1024 || s.gateway.ws_max_pending_frames < 16 {
        errors.push(
            "gateway.ws_max_pending_bytes must be at least 65536 and gateway.ws_max_pending_frames at least 16"
                .into(),
        );
    }
    if s.gateway.max_body_bytes < 1024 {
        errors.push("gateway.max_body_bytes must be at least 1024".into());
    }
    if s.gateway.ws_ping_interval_ms == 0
        || s.gateway.ws_client_timeout_ms <= s.gateway.ws_ping_interval_ms
    {
        errors.push(
            "gateway.ws_client_timeout_ms must be greater than gateway.ws_ping_interval_ms (> 0)"
                .into(),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
