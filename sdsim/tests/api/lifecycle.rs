//! The life of a process as an operator and a load balancer see it, with `sdsim up` in a
//! process of its own and the default settings: `/livez` and `/readyz` on every HTTP port;
//! Redis going away degrades (`/health` names it) without making anything unready, and
//! logins keep working and keep being throttled; SIGTERM drains: unready at once,
//! WebSockets closed with 1001, in-flight requests finished, discovery left, exit 0.

use crate::helpers::*;
use sdsim_protocols::Service;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "a long enough password";

/// `sdsim up` in a child process, every port on 127.0.0.1:0; killed when dropped.
struct UpProcess {
    child: Child,
    /// HTTP address by service name.
    http: BTreeMap<String, SocketAddr>,
}

impl UpProcess {
    fn spawn(db: &TestDb, redis_url: &str, prefix: &str, bcrypt_cost: u32) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sdsim"));
        cmd.arg("up")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SDSIM_LOG", "info")
            .env("DATABASE_URL", &db.url)
            .env("REDIS_URL", redis_url)
            .env("SDSIM_REDIS__PREFIX", prefix)
            .env("SDSIM_AUTH__JWT_SECRET", JWT_SECRET)
            .env("SDSIM_AUTH__BCRYPT_COST", bcrypt_cost.to_string())
            .env(
                "SDSIM_AUTH__MAIL__OUTBOX_DIR",
                std::env::temp_dir().join("sdsim-lifecycle-outbox"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for service in ["GATEWAY", "AUTH", "PROJECT", "SIMULATION"] {
            for port in ["GRPC", "HTTP"] {
                cmd.env(format!("SDSIM_{service}__LISTEN__{port}"), "127.0.0.1:0");
            }
        }
        let mut child = cmd.spawn().expect("start sdsim up");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                // `sdsim: gateway    gRPC 127.0.0.1:x  HTTP 127.0.0.1:y`
                if let Some(rest) = line.strip_prefix("sdsim: ") {
                    let mut words = rest.split_whitespace();
                    if let (Some(name), Some("gRPC"), Some(_), Some("HTTP"), Some(http)) = (
                        words.next(),
                        words.next(),
                        words.next(),
                        words.next(),
                        words.next(),
                    ) {
                        let _ = tx.send((name.to_string(), http.to_string()));
                    }
                }
            }
        });
        let mut http = BTreeMap::new();
        while http.len() < 4 {
            let (name, addr) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("sdsim up printed its addresses");
            http.insert(name, addr.parse().unwrap());
        }
        Self { child, http }
    }

    fn url(&self, service: &str, path: &str) -> String {
        format!("http://{}{path}", self.http[service])
    }

    /// Waits until every service says it is ready.
    async fn wait_ready(&self) {
        let c = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        for service in self.http.keys() {
            loop {
                let st = c.get(self.url(service, "/readyz")).send().await;
                if st.is_ok_and(|r| r.status() == 200) {
                    break;
                }
                assert!(Instant::now() < deadline, "{service} never became ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn status_and_json(c: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let r = c.get(url).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or_default())
}

async fn post(
    c: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_and_redis_away_degrades_without_unreadying() {
    let db = TestDb::create().await;
    let redis_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = Command::new("redis-server")
        .args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (deploy/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", redis_port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let up = UpProcess::spawn(&db, &format!("redis://127.0.0.1:{redis_port}/"), "", 4);
    up.wait_ready().await;
    let c = reqwest::Client::new();
    for service in ["gateway", "auth", "project", "simulation"] {
        let (st, body) = status_and_json(&c, &up.url(service, "/livez")).await;
        assert_eq!(
            (st, &body["status"]),
            (200, &serde_json::json!("alive")),
            "{service}"
        );
        let (st, body) = status_and_json(&c, &up.url(service, "/readyz")).await;
        assert_eq!(st, 200, "{service}: {body}");
    }
    let email = unique_email("redis-away");
    let (st, _) = post(
        &c,
        up.url("gateway", "/api/auth/register"),
        serde_json::json!({"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "L"}),
    )
    .await;
    assert_eq!(st, 201);

    // Redis goes away.
    redis.kill().unwrap();
    redis.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for service in ["gateway", "auth", "project", "simulation"] {
        let (st, body) = status_and_json(&c, &up.url(service, "/readyz")).await;
        assert_eq!(st, 200, "{service} unready without Redis: {body}");
    }
    let (st, health) = status_and_json(&c, &up.url("gateway", "/health")).await;
    assert_eq!(st, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["down"], serde_json::json!(["redis"]), "{health}");
    assert_eq!(health["components"]["auth"]["healthy"], true, "{health}");
    let (st, health) = status_and_json(&c, &up.url("auth", "/health")).await;
    assert_eq!(
        (st, &health["status"]),
        (200, &serde_json::json!("degraded")),
        "{health}"
    );

    // Logins work, and guessing is still throttled (counted in the auth process).
    let login = serde_json::json!({"email": email, "password": PASSWORD});
    let (st, body) = post(&c, up.url("gateway", "/api/auth/login"), login.clone()).await;
    assert_eq!(st, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let r = c
        .get(up.url("gateway", "/api/auth/profile"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let wrong = serde_json::json!({"email": email, "password": "not the password at all"});
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            post(&c, up.url("gateway", "/api/auth/login"), wrong.clone())
                .await
                .0,
        );
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 429],
        "lockout without Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_exits_0() {
    let db = TestDb::create().await;
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    // bcrypt cost 12: a login takes a few hundred ms, long enough to be in flight.
    let mut up = UpProcess::spawn(&db, &redis_url(), &prefix, 12);
    up.wait_ready().await;
    let c = reqwest::Client::new();
    let email = unique_email("drain");
    let (st, _) = post(
        &c,
        up.url("gateway", "/api/auth/register"),
        serde_json::json!({"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "L"}),
    )
    .await;
    assert_eq!(st, 201);
    let login = serde_json::json!({"email": email, "password": PASSWORD});
    let (st, body) = post(&c, up.url("gateway", "/api/auth/login"), login.clone()).await;
    assert_eq!(st, 200);
    let token = body["access_token"].as_str().unwrap().to_string();
    let (socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/notifications", up.http["gateway"]))
            .await
            .unwrap();
    let mut ws = Ws { socket };
    ws.authenticate(&token).await;
    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let registered = |redis: &mut redis::aio::MultiplexedConnection| {
        let mut r = redis.clone();
        let pattern = format!("{prefix}services:*");
        async move {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut r)
                .await
                .unwrap();
            keys
        }
    };
    assert_eq!(
        registered(&mut redis).await.len(),
        4,
        "every service registered"
    );

    // A login in flight when SIGTERM arrives.
    let in_flight = tokio::spawn({
        let (c, url) = (c.clone(), up.url("gateway", "/api/auth/login"));
        async move { post(&c, url, login).await.0 }
    });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let term = Command::new("kill")
        .args(["-TERM", &up.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    // Unready at once, while it finishes what it has.
    let mut saw_unready = false;
    for _ in 0..20 {
        if let Ok(r) = c.get(up.url("gateway", "/readyz")).send().await {
            if r.status() == 503 {
                saw_unready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_unready, "/readyz never said 503 while draining");
    // The WebSocket is told to go away.
    ws.expect_close(1001, Duration::from_secs(5)).await;
    let _ = ws.socket.close(None).await;
    // The request in flight finished.
    assert_eq!(in_flight.await.unwrap(), 200, "the in-flight login was cut");
    // Exit 0, and nothing left in discovery.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = up.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "sdsim did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(
        registered(&mut redis).await,
        Vec::<String>::new(),
        "left in discovery"
    );
}

/// A request's id (the client's `X-Request-Id`, or one the gateway makes) comes back in the
/// answer and is on the log lines the request causes in the next hop's process (gRPC
/// metadata), which logs JSON lines when asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_follows_the_request_into_the_next_process() {
    let db = TestDb::create().await;
    let settings = settings(&db);
    let log = std::env::temp_dir().join(format!("sdsim-rid-{}.log", uuid::Uuid::new_v4().simple()));
    let auth = ServiceProcess::spawn_with(
        "auth",
        &settings,
        free_addr(),
        free_addr(),
        &log,
        &[("SDSIM_LOG", "info"), ("SDSIM_LOG_FORMAT", "json")],
    );
    auth.wait_healthy().await;
    let s = Stack::start(
        settings.clone(),
        &[
            sdsim_protocols::Service::Gateway,
            sdsim_protocols::Service::Project,
            sdsim_protocols::Service::Simulation,
        ],
    );
    s.wait_ready().await;
    let id = format!("req-{}", uuid::Uuid::new_v4().simple());
    let r = s
        .http
        .post(s.url("/api/auth/register"))
        .header("x-request-id", &id)
        .json(&serde_json::json!({
            "email": unique_email("rid"), "password": "a long enough password",
            "first_name": "Ada", "last_name": "Lovelace"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-request-id"], id.as_str());
    // Without one, the gateway makes one.
    let r = s.http.get(s.url("/health")).send().await.unwrap();
    let made = r.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(made.len(), 36, "{made}");
    // The auth process logged the registration as part of that request, as JSON.
    let mut line = None;
    for _ in 0..50 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        line = text
            .lines()
            .find(|l| l.contains("account registered"))
            .map(str::to_string);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = line.expect("the registration is logged");
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert!(line.contains(&id), "the request id is on the line: {v}");
    drop(auth);
    let _ = std::fs::remove_file(&log);
}

/// The id goes on past the first backend: the gateway calls simulation, which calls the
/// project service (in a process of its own here) for a saved design; that call is logged
/// under the same request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_follows_every_hop() {
    let db = TestDb::create().await;
    let settings = settings(&db);
    let log =
        std::env::temp_dir().join(format!("sdsim-rid2-{}.log", uuid::Uuid::new_v4().simple()));
    let project = ServiceProcess::spawn_with(
        "project",
        &settings,
        free_addr(),
        free_addr(),
        &log,
        &[
            ("SDSIM_LOG", "warn,sdsim_runtime=debug"),
            ("SDSIM_LOG_FORMAT", "json"),
        ],
    );
    project.wait_healthy().await;
    let s = Stack::start(
        settings.clone(),
        &[
            sdsim_protocols::Service::Gateway,
            sdsim_protocols::Service::Auth,
            sdsim_protocols::Service::Simulation,
        ],
    );
    s.wait_ready().await;
    let token = signed_in(&s, "hops").await;
    let (st, p) = call(
        &s,
        reqwest::Method::POST,
        "/api/projects",
        &token,
        Some(serde_json::json!({"name": "Hops", "template_id": "three-tier-web-app"})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let id = format!("req-{}", uuid::Uuid::new_v4().simple());
    let r = s
        .authed(reqwest::Method::POST, "/api/simulations", &token)
        .header("x-request-id", &id)
        .json(&serde_json::json!({"project_id": p["project"]["id"], "speed": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Gateway -> simulation -> project: the project process logged its GetProject under it.
    let mut found = false;
    for _ in 0..50 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.contains(&id) && l.contains("GetProject") && l.contains("rpc answered"))
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "the project process logged the call under {id}");
    drop(project);
    let _ = std::fs::remove_file(&log);
}

/// The gateway's port is also the public API's: its operator endpoints answer only peers of
/// `gateway.operator_networks` (loopback among the defaults); health stays open to all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_endpoints_answer_operator_networks_only() {
    let db = TestDb::create().await;
    let mut closed = settings(&db);
    closed.gateway.operator_networks = vec!["10.0.0.0/8".into()];
    let s = Stack::start(closed, &Service::ALL);
    s.wait_ready().await;
    for path in [
        "/metrics",
        "/admin/mesh",
        "/admin/instances",
        "/admin/supervision",
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(
            r.status(),
            404,
            "{path} from loopback, not an operator network"
        );
        // Spelled percent-encoded, it is the same path.
        let encoded = path.replacen("/a", "/%61", 1).replacen("/m", "/%6d", 1);
        let r = s.http.get(s.url(&encoded)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{encoded}");
    }
    for path in ["/health", "/readyz", "/livez"] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // With the defaults (loopback included), the same peer reads them; behind a trusted
    // proxy, the client it forwards is the one that counts.
    let db2 = TestDb::create().await;
    let mut proxied = settings(&db2);
    proxied.gateway.trusted_proxies = vec!["127.0.0.1".into()];
    let open = Stack::start(proxied, &Service::ALL);
    open.wait_ready().await;
    let r = open.http.get(open.url("/admin/mesh")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = open
        .http
        .get(open.url("/admin/mesh"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "a public client through the proxy");
}
