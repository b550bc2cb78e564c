//! The gateway's settings (`[gateway]`, `[gateway.listen]`) and their checks.

use sdsim_protocols::ports;
use sdsim_runtime::config::Listen;
use serde::{Deserialize, Serialize};

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
    /// Origins (`https://app.example.com`) whose pages may call the API from a browser
    /// (CORS); none by default: only the console, served from the same origin.
    pub cors_origins: Vec<String>,
    /// Where the gateway listens: HTTP (REST and WebSocket) and gRPC (`GatewayService`).
    pub listen: Listen,
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
            cors_origins: Vec::new(),
            listen: Listen::local(ports::GATEWAY_GRPC, ports::GATEWAY_HTTP),
        }
    }
}

/// Problems with the gateway settings, each naming the setting.
pub fn validate(s: &GatewaySettings, errors: &mut Vec<String>) {
    if s.ws_max_pending_bytes < 64 * 1024 || s.ws_max_pending_frames < 16 {
        errors.push(
            "gateway.ws_max_pending_bytes must be at least 65536 and gateway.ws_max_pending_frames at least 16"
                .into(),
        );
    }
    for o in &s.cors_origins {
        let ok = (o.starts_with("https://") || o.starts_with("http://"))
            && !o.trim_end_matches('/').contains(['*', ' '])
            && o.split("://")
                .nth(1)
                .is_some_and(|h| !h.is_empty() && !h.contains('/'));
        if !ok {
            errors.push(format!(
                "gateway.cors_origins: {o:?} is not an origin like https://app.example.com (scheme and host, no path, no wildcard)"
            ));
        }
    }
    if s.max_body_bytes < 1024 {
        errors.push("gateway.max_body_bytes must be at least 1024".into());
    }
    if s.ws_ping_interval_ms == 0 || s.ws_client_timeout_ms <= s.ws_ping_interval_ms {
        errors.push(
            "gateway.ws_client_timeout_ms must be greater than gateway.ws_ping_interval_ms (> 0)"
                .into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_must_be_origins() {
        let mut s = GatewaySettings {
            cors_origins: vec![
                "https://app.example.com".into(),
                "http://localhost:5173".into(),
            ],
            ..Default::default()
        };
        let mut errors = Vec::new();
        validate(&s, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        for bad in [
            "*",
            "app.example.com",
            "https://*.example.com",
            "https://a.example/path",
            "https://",
        ] {
            s.cors_origins = vec![bad.into()];
            let mut errors = Vec::new();
            validate(&s, &mut errors);
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains("gateway.cors_origins") && e.contains(bad)),
                "{bad}: {errors:?}"
            );
        }
    }
}
