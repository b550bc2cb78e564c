//! `sdsim serve <service>` as a process of its own, for tests that kill one.

use super::*;
use std::process::{Child, Command, Stdio};

/// A free port on 127.0.0.1 (bound and released; good enough for a test).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One service in its own process, on fixed addresses (so it can come back on them);
/// killed when dropped.
pub struct ServiceProcess {
    pub child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

impl ServiceProcess {
    pub fn spawn(
        service: &str,
        s: &Settings,
        grpc: SocketAddr,
        http: SocketAddr,
        log: &std::path::Path,
    ) -> Self {
        Self::spawn_with(service, s, grpc, http, log, &[])
    }

    /// As [`ServiceProcess::spawn`], with more `SDSIM_*` settings.
    pub fn spawn_with(
        service: &str,
        s: &Settings,
        grpc: SocketAddr,
        http: SocketAddr,
        log: &std::path::Path,
        extra: &[(&str, &str)],
    ) -> Self {
        let log = std::fs::File::create(log).unwrap();
        let upper = service.to_uppercase();
        let child = Command::new(env!("CARGO_BIN_EXE_sdsim"))
            .args(["serve", service])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SDSIM_LOG", "warn")
            .env("SDSIM_DATABASE__URL", s.database.url.expose())
            .env("SDSIM_DATABASE__POOL_SIZE", "4")
            .env("SDSIM_REDIS__URL", s.redis.url.expose())
            .env("SDSIM_REDIS__PREFIX", &s.redis.prefix)
            .env("SDSIM_AUTH__JWT_SECRET", s.auth.jwt_secret.expose())
            .env("SDSIM_AUTH__BCRYPT_COST", s.auth.bcrypt_cost.to_string())
            .env(
                "SDSIM_AUTH__MAIL__OUTBOX_DIR",
                std::env::temp_dir().join("sdsim-process-outbox"),
            )
            .env(format!("SDSIM_{upper}__LISTEN__GRPC"), grpc.to_string())
            .env(format!("SDSIM_{upper}__LISTEN__HTTP"), http.to_string())
            .env("SDSIM_DISCOVERY__TTL_MS", s.discovery.ttl_ms.to_string())
            .env(
                "SDSIM_DISCOVERY__HEARTBEAT_MS",
                s.discovery.heartbeat_ms.to_string(),
            )
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start sdsim serve {service}: {e}"));
        Self { child, grpc, http }
    }

    /// Waits until it says it is ready.
    pub async fn wait_healthy(&self) {
        let c = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = c.get(format!("http://{}/readyz", self.http)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the service at {} did not become ready", self.grpc);
    }

    /// SIGKILL: no goodbye, no deregistration.
    pub fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
