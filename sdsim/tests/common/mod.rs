//! Harness of the black-box tests: a fresh PostgreSQL database and Redis prefix per test, the
//! real services on port 0 in their own thread, and HTTP/WebSocket clients.
//!
//! PostgreSQL and Redis are real servers: `SDSIM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`, a role allowed to create databases) and
//! `SDSIM_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`). `deploy/test.sh` starts them.
#![allow(dead_code)]

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{SinkExt, StreamExt};
use sdsim::Running;
use sdsim_actors::config::{Secret, Settings};
use sdsim_protocols::Service;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

pub fn postgres_base() -> String {
    std::env::var("SDSIM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_string()
}

pub fn redis_url() -> String {
    std::env::var("SDSIM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// A database of its own, dropped at the end of the test.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("sdsim_test_{}", uuid::Uuid::new_v4().simple());
        let admin = format!("{}/postgres", postgres_base());
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot reach PostgreSQL at {admin}: {e} (run deploy/test.sh)")
            });
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = format!("{}/{name}", postgres_base());
        Self { name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = format!("{}/postgres", postgres_base());
        // Drop on a thread of its own: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = AsyncPgConnection::establish(&admin).await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

/// Settings for a test: everything on 127.0.0.1:0, short timeouts, cheap bcrypt.
pub fn settings(db: &TestDb) -> Settings {
    let mut s = Settings::default();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    s.listen.gateway_http = any;
    s.listen.gateway_grpc = any;
    s.listen.auth_grpc = any;
    s.listen.auth_http = any;
    s.listen.project_grpc = any;
    s.listen.project_http = any;
    s.listen.simulation_grpc = any;
    s.listen.simulation_http = any;
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
    s.gateway.upstream_connect_timeout_ms = 500;
    s.gateway.upstream_timeout_ms = 5_000;
    s.gateway.max_body_bytes = 4 * 1024;
    s.gateway.workers = 2;
    s.admin.fault_injection = true;
    // Generous abuse limits; the tests of the limits set their own.
    s.auth.limits.login_failures_per_account_ip = 1_000;
    s.auth.limits.login_failures_per_account = 10_000;
    s.auth.limits.login_per_ip_per_minute = 10_000;
    s.auth.limits.register_per_ip_per_hour = 10_000;
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

pub struct Ws {
    pub socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// What the server did next.
#[derive(Debug)]
pub enum Next {
    Frame(serde_json::Value),
    Closed(Option<u16>, String),
    Timeout,
}

impl Ws {
    pub async fn send(&mut self, v: serde_json::Value) {
        self.socket
            .send(Message::text(v.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, t: &str) {
        self.socket
            .send(Message::text(t.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON frame or close, skipping pings.
    pub async fn next(&mut self, within: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Next::Timeout,
                Ok(None) => return Next::Closed(None, "stream ended".into()),
                Ok(Some(Err(e))) => return Next::Closed(None, e.to_string()),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => {
                    return Next::Frame(serde_json::from_str(t.as_str()).expect("JSON frame"))
                }
                Message::Close(Some(c)) => {
                    return Next::Closed(Some(u16::from(c.code)), c.reason.to_string())
                }
                Message::Close(None) => return Next::Closed(None, String::new()),
                _ => continue,
            }
        }
    }

    pub async fn frame(&mut self, within: Duration) -> serde_json::Value {
        match self.next(within).await {
            Next::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    pub async fn expect_close(&mut self, code: u16, within: Duration) -> String {
        match self.next(within).await {
            Next::Closed(Some(c), reason) if c == code => reason,
            other => panic!("expected close {code}, got {other:?}"),
        }
    }

    pub async fn authenticate(&mut self, token: &str) -> serde_json::Value {
        self.send(serde_json::json!({"type": "auth", "token": token}))
            .await;
        let f = self.frame(Duration::from_secs(5)).await;
        assert_eq!(f["type"], "auth_ok", "{f}");
        f
    }
}

/// A correctly signed access token with chosen claims (for expired / wrong-audience tokens).
pub fn forge_token(claims: serde_json::Value, secret: &str, kid: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

pub fn claims_for(login: &serde_json::Value, exp_offset: i64) -> serde_json::Value {
    let now = chrono_now();
    serde_json::json!({
        "sub": login["user"]["id"], "sid": login["session_id"], "email": login["user"]["email"],
        "adm": false, "iat": now - 7200, "nbf": now - 7200, "exp": now + exp_offset,
        "iss": "sdsim-auth", "aud": "sdsim", "jti": uuid::Uuid::new_v4().to_string(),
    })
}

pub fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
