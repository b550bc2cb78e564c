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
    /// Trust `X-Forwarded-For` from any peer for the client address (only when every peer is
    /// the load balancer); prefer `trusted_proxies`.
    pub trust_forwarded_for: bool,
    /// The load balancers (IPs or CIDRs, `10.0.0.0/8`, `::1`) whose `X-Forwarded-For` is
    /// trusted for the client address; from any other peer it is ignored.
    pub trusted_proxies: Vec<String>,
    /// Peers (IPs or CIDRs) that may reach the operator endpoints on the gateway's HTTP port
    /// (`/metrics`, `/admin/*`; the port is also the public API's): loopback and private
    /// networks by default (and 100.64/10, some clusters' pod networks), where Prometheus and
    /// operators are; anyone else gets 404. Behind a trusted proxy (`trusted_proxies`), the
    /// address it forwards is the one checked.
    /// `["0.0.0.0/0", "::/0"]` opens them to all.
    pub operator_networks: Vec<String>,
    /// Origins (`https://app.example.com`) whose pages may call the API from a browser
    /// (CORS); none by default: only the console, served from the same origin.
    pub cors_origins: Vec<String>,
    /// How long an accepted token is trusted without asking auth again (see
    /// [`crate::tokens`]); 0 asks auth on every request. With `auth.validation_cache_ms` it
    /// must stay under a second: a revoked session is refused everywhere within one.
    pub token_cache_ms: u64,
    /// Requests per minute per user (by kind) and per address, shared by every instance.
    pub rate_limits: crate::limits::RateLimits,
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
            trusted_proxies: Vec::new(),
            operator_networks: [
                "127.0.0.0/8",
                "::1",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "100.64.0.0/10",
                "fc00::/7",
            ]
            .map(String::from)
            .to_vec(),
            cors_origins: Vec::new(),
            token_cache_ms: 250,
            rate_limits: Default::default(),
            listen: Listen::local(ports::GATEWAY_GRPC, ports::GATEWAY_HTTP),
        }
    }
}

impl GatewaySettings {
    /// Whether `ip` is in `operator_networks`.
    pub fn is_operator(&self, ip: std::net::IpAddr) -> bool {
        self.operator_networks
            .iter()
            .filter_map(|c| Cidr::parse(c))
            .any(|c| c.contains(ip))
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
    for (setting, list) in [
        ("trusted_proxies", &s.trusted_proxies),
        ("operator_networks", &s.operator_networks),
    ] {
        for p in list {
            if Cidr::parse(p).is_none() {
                errors.push(format!(
                    "gateway.{setting}: {p:?} is not an IP address or a CIDR like 10.0.0.0/8"
                ));
            }
        }
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

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: std::net::IpAddr,
    len: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `192.168.1.7` (a /32), `::1`, `fd00::/8`.
    pub fn parse(s: &str) -> Option<Self> {
        let (ip, len) = match s.trim().split_once('/') {
            Some((ip, len)) => (ip, Some(len.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let mut net: std::net::IpAddr = ip.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let mut len = len.unwrap_or(max);
        if len > max {
            return None;
        }
        // An IPv4-mapped network is the IPv4 network (addresses are compared that way).
        if let std::net::IpAddr::V6(v6) = net {
            if let Some(v4) = v6.to_ipv4_mapped() {
                if len < 96 {
                    return None;
                }
                net = std::net::IpAddr::V4(v4);
                len -= 96;
            }
        }
        Some(Self { net, len })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let bits = |a: std::net::IpAddr| -> (u128, u32) {
            match a {
                std::net::IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                std::net::IpAddr::V6(v) => match v.to_ipv4_mapped() {
                    Some(v4) => (u128::from(u32::from(v4)), 32),
                    None => (u128::from(v), 128),
                },
            }
        };
        let ((n, nw), (a, aw)) = (bits(self.net), bits(ip));
        if nw != aw {
            return false;
        }
        let shift = nw.saturating_sub(u32::from(self.len));
        shift >= nw || (n >> shift) == (a >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_are_networks() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.9.9.9".parse().unwrap()), "v4-mapped");
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        // An IPv4-mapped network is its IPv4 network (a /104 is a /8), not everything.
        let mapped = Cidr::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.contains("10.1.2.3".parse().unwrap()));
        assert!(!mapped.contains("11.0.0.1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "nope",
            "10.0.0.0/x",
            "",
            "::ffff:10.0.0.0/95",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

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
