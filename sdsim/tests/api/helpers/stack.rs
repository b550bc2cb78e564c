//! The services on port 0 in their own thread ([`Stack`]), their settings, and REST helpers.

use super::*;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

/// Settings for a test: everything on 127.0.0.1:0, short timeouts, cheap bcrypt.
pub fn settings(db: &TestDb) -> Settings {
    let mut s = Settings::default();
    for service in Service::ALL {
        *s.listen_mut(service) = Listen::any();
    }
    s.database.url = Secret::new(db.url.clone());
    s.database.pool_size = 4;
    s.redis.url = Secret::new(redis_url());
    s.redis.prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    s.auth.jwt_secret = Secret::new(JWT_SECRET);
    // Cost 8 (~15 ms a hash): cheap, yet far above an unknown e-mail's lookup, so the
    // timing test can tell a skipped hash.
    s.auth.bcrypt_cost = 8;
    s.gateway.ws_auth_timeout_ms = 1_000;
    s.gateway.ws_ping_interval_ms = 500;
    s.gateway.ws_client_timeout_ms = 3_000;
    s.mesh.connect_timeout_ms = 500;
    s.mesh.call_timeout_ms = 5_000;
    s.mesh.min_channels = 2;
    s.gateway.max_body_bytes = 4 * 1024;
    s.gateway.workers = 2;
    s.admin.fault_injection = true;
    s.auth.mail.outbox_dir = std::env::temp_dir()
        .join(format!(
            "sdsim-test-outbox-{}",
            uuid::Uuid::new_v4().simple()
        ))
        .display()
        .to_string();
    // Generous abuse limits; the tests of the limits set their own.
    s.auth.limits.login_failures_per_account_ip = 1_000;
    s.auth.limits.login_failures_per_account = 10_000;
    s.auth.limits.login_per_ip_per_minute = 10_000;
    s.auth.limits.register_per_ip_per_hour = 10_000;
    // Every test's requests come from one address: the API's rate limits are off unless a
    // test of them sets its own.
    s.gateway.rate_limits = sdsim_gateway::limits::RateLimits {
        reads_per_minute: 0,
        writes_per_minute: 0,
        run_starts_per_minute: 0,
        per_address_per_minute: 0,
    };
    s.supervision.backoff_base_ms = 10;
    s.supervision.backoff_max_ms = 200;
    s
}

/// A running stack and clients for it.
pub struct Stack {
    pub running: Running,
    pub base: String,
    pub ws_base: String,
    pub http: reqwest::Client,
    pub settings: Settings,
}

impl Stack {
    pub fn start(settings: Settings, services: &[Service]) -> Self {
        let running = Running::start(settings.clone(), services).expect("start sdsim");
        // The gateway when it runs here, else the first service's HTTP port.
        let front = if services.contains(&Service::Gateway) {
            Service::Gateway
        } else {
            services[0]
        };
        let gw = running.addrs(front).http;
        Self {
            running,
            base: format!("http://{gw}"),
            ws_base: format!("ws://{gw}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            settings,
        }
    }

    /// All four services, waiting until the gateway answers.
    pub async fn up(db: &TestDb) -> Self {
        let s = Self::start(settings(db), &Service::ALL);
        s.wait_ready().await;
        s
    }

    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.http.get(format!("{}/health", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the stack did not become healthy");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `url` (any port, e.g. a backend's admin endpoint) and its JSON body.
    pub async fn get_json(&self, url: &str) -> serde_json::Value {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn register(&self, email: &str, password: &str) -> serde_json::Value {
        let (status, body) = self
            .post_json(
                "/api/auth/register",
                serde_json::json!({
                    "email": email, "password": password,
                    "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical"
                }),
            )
            .await;
        assert_eq!(status, 201, "register: {body}");
        body
    }

    /// Verifies `email`'s address as its owner would: asks for the mail (with `token`, the
    /// account's access token) and follows its link.
    pub async fn verify(&self, email: &str, token: &str) {
        let r = self
            .authed(
                reqwest::Method::POST,
                "/api/auth/verify-email/request",
                token,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "verification not sent to {email}");
        let outbox = self.settings.auth.mail.outbox_dir.clone();
        for _ in 0..200 {
            for mail in mails_in(&outbox, email) {
                if !mail.contains("verify-email?token=") {
                    continue;
                }
                let (st, _) = self
                    .post_json(
                        "/api/auth/verify-email",
                        serde_json::json!({ "token": token_in(&mail) }),
                    )
                    .await;
                if st == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{email} could not be verified");
    }

    pub async fn login(&self, email: &str, password: &str) -> serde_json::Value {
        let (status, body) = self
            .post_json(
                "/api/auth/login",
                serde_json::json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(status, 200, "login: {body}");
        body
    }

    pub async fn ws(&self) -> Ws {
        let (socket, _) =
            tokio_tungstenite::connect_async(format!("{}/ws/notifications", self.ws_base))
                .await
                .expect("WebSocket connect");
        Ws { socket }
    }

    pub async fn ws_with_header(&self, token: &str) -> Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("{}/ws/notifications", self.ws_base)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("WebSocket connect");
        Ws { socket }
    }

    /// An authenticated request builder.
    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    /// `GET /api/auth/profile` with `token`: status and body.
    pub async fn profile(&self, token: &str) -> (u16, serde_json::Value) {
        let r = self
            .authed(reqwest::Method::GET, "/api/auth/profile", token)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or_default())
    }

    pub async fn metrics(&self, http: SocketAddr) -> String {
        self.http
            .get(format!("http://{http}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// The shape every REST error must have.
pub fn assert_error(body: &serde_json::Value, code: &str) {
    let e = &body["error"];
    assert!(e.is_object(), "no error object in {body}");
    assert_eq!(e["code"], code, "unexpected error: {body}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without message: {body}"
    );
    assert!(e.get("field").is_some(), "error without field key: {body}");
}

/// The mails the outbox `outbox` holds for `to`, decoded.
pub fn mails_in(outbox: &str, to: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir(outbox) {
        for entry in dir.flatten() {
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if raw
                .to_lowercase()
                .contains(&format!("to: {}", to.to_lowercase()))
            {
                found.push(decode_mail(&raw));
            }
        }
    }
    found
}
