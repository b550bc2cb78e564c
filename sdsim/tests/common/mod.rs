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

/// How an [`SmtpSink`] speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// Plain SMTP; advertises AUTH but not STARTTLS (a server that would take a password in
    /// the clear).
    None,
    /// Offers STARTTLS with its own certificate.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// One mail as the sink received it.
#[derive(Debug)]
pub struct Received {
    /// Headers and body as sent (see [`decode_mail`]).
    pub raw: String,
    /// Whether the session was encrypted when the mail was sent.
    pub tls: bool,
    /// The decoded `AUTH PLAIN` response (`\0user\0password`), if the client logged in.
    pub auth: Option<String>,
}

/// A real SMTP listener on 127.0.0.1 that accepts every mail and hands it over, optionally
/// over TLS with a freshly made self-signed certificate for 127.0.0.1.
pub struct SmtpSink {
    pub port: u16,
    /// The certificate a client must trust (PEM), for TLS sinks.
    pub cert_pem: Option<String>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Received>,
    /// Every AUTH line seen on an unencrypted session (must stay empty).
    pub cleartext_auth: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

enum SmtpEnd<S> {
    Closed,
    StartTls(S),
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on(0).await.expect("bind an SMTP sink")
    }

    /// On a chosen port; None if it is taken.
    pub async fn start_on(port: u16) -> Option<Self> {
        Self::start_with(port, SinkTls::None).await
    }

    pub async fn start_with(port: u16, mode: SinkTls) -> Option<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .ok()?;
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (acceptor, cert_pem) = match mode {
            SinkTls::None => (None, None),
            SinkTls::StartTls | SinkTls::Implicit => {
                let (a, pem) = tls_acceptor();
                (Some(a), Some(pem))
            }
        };
        let cleartext_auth = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = cleartext_auth.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, acceptor, seen) = (tx.clone(), acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    if mode == SinkTls::Implicit {
                        let Some(a) = acceptor else { return };
                        if let Ok(tls) = a.accept(stream).await {
                            smtp_session(tls, true, false, true, &tx, &seen).await;
                        }
                        return;
                    }
                    let offer = acceptor.is_some();
                    if let SmtpEnd::StartTls(plain) =
                        smtp_session(stream, false, offer, true, &tx, &seen).await
                    {
                        if let Some(a) = acceptor {
                            if let Ok(tls) = a.accept(plain).await {
                                // After STARTTLS the client speaks first (EHLO again).
                                smtp_session(tls, true, false, false, &tx, &seen).await;
                            }
                        }
                    }
                });
            }
        });
        Some(Self {
            port,
            cert_pem,
            rx,
            cleartext_auth,
        })
    }

    /// The next mail's headers and decoded text, within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<String> {
        Some(decode_mail(&self.next_received(within).await?.raw))
    }

    /// The next mail as received (with how it came), within `within`.
    pub async fn next_received(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.rx.recv()).await.ok()?
    }
}

/// A TLS acceptor with a new self-signed certificate for 127.0.0.1, and that certificate.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
        ck.cert.pem(),
    )
}

/// One SMTP conversation until QUIT, a dropped connection, or STARTTLS (then the raw stream
/// comes back to be wrapped). A new connection is greeted (`greet`).
async fn smtp_session<S>(
    stream: S,
    tls: bool,
    offer_starttls: bool,
    greet: bool,
    tx: &tokio::sync::mpsc::UnboundedSender<Received>,
    cleartext_auth: &std::sync::Mutex<Vec<String>>,
) -> SmtpEnd<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use base64::Engine;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut io = BufReader::new(stream);
    if greet {
        let _ = io.get_mut().write_all(b"220 sink ESMTP\r\n").await;
    }
    let mut auth = None;
    let mut data: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        match io.read_line(&mut line).await {
            Ok(0) | Err(_) => return SmtpEnd::Closed,
            Ok(_) => {}
        }
        let text = line.trim_end_matches(['\r', '\n']).to_string();
        if let Some(buf) = data.as_mut() {
            if text == "." {
                let raw = data.take().unwrap();
                let _ = tx.send(Received {
                    raw,
                    tls,
                    auth: auth.clone(),
                });
                let _ = io.get_mut().write_all(b"250 OK queued\r\n").await;
            } else {
                buf.push_str(text.strip_prefix('.').unwrap_or(&text));
                buf.push_str("\r\n");
            }
            continue;
        }
        let mut words = text.split(' ');
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" if offer_starttls && !tls => b"250-sink\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            "EHLO" => b"250-sink\r\n250 AUTH PLAIN\r\n",
            "HELO" => b"250 sink\r\n",
            "STARTTLS" if offer_starttls && !tls => {
                let _ = io.get_mut().write_all(b"220 ready for TLS\r\n").await;
                return SmtpEnd::StartTls(io.into_inner());
            }
            "AUTH" => {
                if !tls {
                    cleartext_auth.lock().unwrap().push(text.clone());
                }
                let plain = words.nth(1).unwrap_or("");
                auth = base64::engine::general_purpose::STANDARD
                    .decode(plain)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                b"235 2.7.0 authenticated\r\n"
            }
            "DATA" => {
                data = Some(String::new());
                b"354 go ahead\r\n"
            }
            "QUIT" => {
                let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                return SmtpEnd::Closed;
            }
            _ => b"250 OK\r\n",
        };
        let _ = io.get_mut().write_all(reply).await;
    }
}

/// Undoes the transfer encoding lettre chose (quoted-printable or base64) so tests can read
/// the text.
pub fn decode_mail(raw: &str) -> String {
    use base64::Engine;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let lower = head.to_ascii_lowercase();
    let text = if lower.contains("content-transfer-encoding: base64") {
        let compact: String = body.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    } else if lower.contains("content-transfer-encoding: quoted-printable") {
        body.replace("=\r\n", "").replace("=3D", "=")
    } else {
        body.to_string()
    };
    format!("{head}\r\n\r\n{text}")
}

/// The `token=` value of the first link in a mail.
pub fn token_in(mail: &str) -> String {
    let start = mail.find("token=").expect("a link with a token") + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
