//! Black-box tests of the first end-to-end slice: real PostgreSQL, Redis, gRPC and HTTP on
//! port 0, the four services started exactly as `sdsim up` starts them.

use crate::helpers::*;
use sdsim_protocols::Service;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_and_profile_through_the_gateway() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("ada");

    let reg = s.register(&email, "correct horse battery staple").await;
    assert_eq!(reg["user"]["email"], email.to_lowercase());
    assert_eq!(reg["user"]["first_name"], "Ada");
    assert_eq!(reg["user"]["company"], "Analytical");
    assert!(reg["user"].get("password_hash").is_none());

    // E-mail addresses are compared case-insensitively.
    let login = s
        .login(&email.to_uppercase(), "correct horse battery staple")
        .await;
    let token = login["access_token"].as_str().unwrap();
    assert_eq!(login["token_type"], "Bearer");
    assert!(login["expires_in"].as_i64().unwrap() > 0);
    assert!(!login["refresh_token"].as_str().unwrap().is_empty());
    assert_eq!(login["user"]["id"], reg["user"]["id"]);

    let r = s
        .http
        .get(s.url("/api/auth/profile"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let profile: serde_json::Value = r.json().await.unwrap();
    assert_eq!(profile["user"]["id"], reg["user"]["id"]);
    assert_eq!(profile["user"]["email"], email.to_lowercase());
    assert!(profile["user"]["last_login"].is_string(), "{profile}");

    // Every call went over gRPC to auth and is in the gateway's metrics.
    let m = s.metrics(s.running.addrs(Service::Gateway).http).await;
    assert!(
        m.contains(
            "sdsim_grpc_client_seconds_count{method=\"Login\",outcome=\"ok\",target=\"auth\"} 1"
        ),
        "{m}"
    );
    assert!(m.contains("route=\"/api/auth/profile\""), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_email_is_409_and_credentials_fail_alike() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("dup");
    s.register(&email, "a long enough password").await;

    let (status, body) = s
        .post_json(
            "/api/auth/register",
            serde_json::json!({"email": email.to_uppercase(), "password": "another password 1",
                               "first_name": "B", "last_name": "C"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_error(&body, "email_taken");
    assert_eq!(body["error"]["field"], "email");

    // Wrong password and unknown e-mail: the same 401, in about the same time.
    let attempt = |email: String| {
        let s = &s;
        async move {
            let start = Instant::now();
            let (status, body) = s
                .post_json(
                    "/api/auth/login",
                    serde_json::json!({"email": email, "password": "wrong password!"}),
                )
                .await;
            (status, body, start.elapsed())
        }
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..7 {
        let (st1, b1, t1) = attempt(email.clone()).await;
        let (st2, b2, t2) = attempt(unique_email("nobody")).await;
        assert_eq!((st1, st2), (401, 401));
        assert_eq!(b1, b2, "the two failures must be indistinguishable");
        assert_error(&b1, "invalid_credentials");
        known.push(t1);
        unknown.push(t2);
    }
    known.sort();
    unknown.sort();
    let (mk, mu) = (known[3].as_secs_f64(), unknown[3].as_secs_f64());
    // Both pay one bcrypt hash: an unknown e-mail that skipped it would take a fraction.
    assert!(
        mu > mk * 0.5 && mu < mk * 2.0,
        "median wrong-password {mk:.4}s vs unknown-email {mu:.4}s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_named_4xx_never_a_500() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let raw = |path: &str, ct: &str, body: Vec<u8>| {
        let req = s
            .http
            .post(s.url(path))
            .header("content-type", ct.to_string())
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };

    // Malformed JSON.
    let (st, b) = raw(
        "/api/auth/register",
        "application/json",
        b"{\"email\": ".to_vec(),
    )
    .await;
    assert_eq!(st, 400);
    assert_error(&b, "malformed_json");
    let (st, b) = raw("/api/auth/login", "application/json", b"".to_vec()).await;
    assert_eq!(st, 400);
    assert_error(&b, "malformed_json");

    // Missing and mistyped fields, named.
    let (st, b) = s
        .post_json("/api/auth/login", serde_json::json!({"email": "a@b.co"}))
        .await;
    assert_eq!(st, 422, "{b}");
    assert_error(&b, "invalid_input");
    assert_eq!(b["error"]["field"], "password");
    let (st, b) = s
        .post_json(
            "/api/auth/register",
            serde_json::json!({"email": 42, "password": "x", "first_name": "a", "last_name": "b"}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["error"]["field"], "email");
    let (st, b) = s
        .post_json(
            "/api/auth/login",
            serde_json::json!(["not", "an", "object"]),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_error(&b, "invalid_input");

    // Values the auth service refuses, named by field.
    let (st, b) = s
        .post_json("/api/auth/register", serde_json::json!({"email": "not-an-email", "password": "long enough pass", "first_name": "a", "last_name": "b"}))
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["error"]["field"], "email");
    let (st, b) = s
        .post_json("/api/auth/register", serde_json::json!({"email": unique_email("short"), "password": "short", "first_name": "a", "last_name": "b"}))
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["error"]["field"], "password");
    let long = "p".repeat(73);
    let (st, b) = s
        .post_json("/api/auth/register", serde_json::json!({"email": unique_email("long"), "password": long, "first_name": "a", "last_name": "b"}))
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["error"]["field"], "password");

    // An over-long body (the limit is 4 KiB in tests), declared or not.
    let big = serde_json::json!({"email": "a@b.co", "password": "x".repeat(8 * 1024)});
    let (st, b) = s.post_json("/api/auth/login", big).await;
    assert_eq!(st, 413, "{b}");
    assert_error(&b, "payload_too_large");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..16).map(|_| Ok(vec![b' '; 1024])).collect();
    let r = s
        .http
        .post(s.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // Not JSON at all.
    let (st, b) = raw("/api/auth/login", "text/plain", b"email=a".to_vec()).await;
    assert_eq!(st, 415);
    assert_error(&b, "unsupported_media_type");

    // Unknown route and wrong method.
    let r = s.http.get(s.url("/api/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_error(&r.json().await.unwrap(), "route_not_found");
    let r = s.http.get(s.url("/api/auth/login")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_error(&r.json().await.unwrap(), "method_not_allowed");

    // Nothing above was a 5xx (`/health` may have said 503 while the stack was starting:
    // the services start side by side, each on its own arbiter).
    let m = s.metrics(s.running.addrs(Service::Gateway).http).await;
    let five: Vec<&str> = m
        .lines()
        .filter(|l| l.contains("status=\"5") && !l.contains("route=\"/health\""))
        .collect();
    assert!(five.is_empty(), "a 5xx was answered:\n{}", five.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_expired_or_tampered_tokens_are_401() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("tok");
    s.register(&email, "a long enough password").await;
    let login = s.login(&email, "a long enough password").await;
    let token = login["access_token"].as_str().unwrap().to_string();

    let profile = |auth: Option<String>| {
        let mut req = s.http.get(s.url("/api/auth/profile"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move {
            let r = req.send().await.unwrap();
            let www = r.headers().get("www-authenticate").is_some();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
                www,
            )
        }
    };
    let (st, b, www) = profile(None).await;
    assert_eq!((st, www), (401, true));
    assert_error(&b, "missing_token");
    let (st, b, _) = profile(Some("Basic dXNlcjpwYXNz".into())).await;
    assert_eq!(st, 401);
    assert_error(&b, "invalid_authorization");
    let (st, b, _) = profile(Some("Bearer not.a.token".into())).await;
    assert_eq!(st, 401);
    assert_error(&b, "token_malformed");

    // Tampered: the payload changed, the signature kept.
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let forged = forge_token(
        claims_for(&login, 600),
        "another-secret-another-secret-0123456789",
        "k1",
    );
    parts[1] = forged.split('.').nth(1).unwrap().to_string();
    let (st, b, _) = profile(Some(format!("Bearer {}", parts.join(".")))).await;
    assert_eq!(st, 401);
    assert_error(&b, "token_bad_signature");
    // Signed with another key.
    let (st, b, _) = profile(Some(format!("Bearer {forged}"))).await;
    assert_eq!(st, 401);
    assert_error(&b, "token_bad_signature");
    // Correctly signed but expired.
    let expired = forge_token(claims_for(&login, -3600), JWT_SECRET, "k1");
    let (st, b, _) = profile(Some(format!("Bearer {expired}"))).await;
    assert_eq!(st, 401);
    assert_error(&b, "token_expired");
    // And the real token still works.
    let (st, _, _) = profile(Some(format!("Bearer {token}"))).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_open_websocket_hears_about_a_new_login() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("ws");
    s.register(&email, "a long enough password").await;
    let first = s.login(&email, "a long enough password").await;
    let token = first["access_token"].as_str().unwrap();
    let user_id = first["user"]["id"].as_str().unwrap().to_string();

    // One socket authenticated by its first frame, one by its Authorization header.
    let mut a = s.ws().await;
    let ok = a.authenticate(token).await;
    assert_eq!(ok["user_id"], user_id);
    let mut b = s.ws_with_header(token).await;
    let ok = b.frame(WAIT).await;
    assert_eq!(ok["type"], "auth_ok", "{ok}");
    // Application-level ping.
    a.send(serde_json::json!({"type": "ping", "id": "p1"}))
        .await;
    let pong = a.frame(WAIT).await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("pong"), Some("p1"))
    );
    // Unknown frames after auth are refused without closing.
    a.send_text("{\"type\":\"dance\"}").await;
    assert_eq!(a.frame(WAIT).await["type"], "error");

    // The user logs in somewhere else.
    let r = s
        .http
        .post(s.url("/api/auth/login"))
        .header("user-agent", "sdsim-test-phone/2.0")
        .json(&serde_json::json!({"email": email, "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let second: serde_json::Value = r.json().await.unwrap();

    for ws in [&mut a, &mut b] {
        let ev = ws.frame(WAIT).await;
        assert_eq!(ev["type"], "auth.login", "{ev}");
        assert_eq!(ev["channel"], format!("notifications:user:{user_id}"));
        assert!(!ev["offset"].as_str().unwrap().is_empty());
        assert_eq!(ev["data"]["user_id"], user_id);
        assert_eq!(ev["data"]["session_id"], second["session_id"]);
        assert_eq!(ev["data"]["user_agent"], "sdsim-test-phone/2.0");
        assert_eq!(ev["data"]["ip"], "127.0.0.1");
        assert!(
            ev["data"]["at"].as_str().is_some_and(|t| t.contains('T')),
            "{ev}"
        );
    }

    // Another user's login is not seen.
    let other = unique_email("other");
    s.register(&other, "a long enough password").await;
    s.login(&other, "a long enough password").await;
    assert!(matches!(
        a.next(Duration::from_millis(500)).await,
        Next::Timeout
    ));

    // The gateway's gRPC service sees both sessions.
    use sdsim_protocols::proto::gateway::gateway_service_client::GatewayServiceClient;
    let gw = s.running.addrs(Service::Gateway).grpc;
    let mut client = GatewayServiceClient::connect(format!("http://{gw}"))
        .await
        .unwrap();
    let clients = client
        .get_connected_clients(
            sdsim_protocols::proto::gateway::GetConnectedClientsRequest {
                user_id: user_id.clone(),
                limit: 0,
            },
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(clients.total, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_without_a_valid_token_is_closed_4001() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("ws401");
    s.register(&email, "a long enough password").await;
    let login = s.login(&email, "a long enough password").await;
    let token = login["access_token"].as_str().unwrap();

    // Garbage, tampered, foreign-key and expired tokens in the first frame.
    let mut tampered: Vec<String> = token.split('.').map(String::from).collect();
    tampered[2] = tampered[2].chars().rev().collect();
    let bad = [
        "garbage".to_string(),
        tampered.join("."),
        forge_token(
            claims_for(&login, 600),
            "another-secret-another-secret-0123456789",
            "k1",
        ),
        forge_token(claims_for(&login, -3600), JWT_SECRET, "k1"),
    ];
    for t in &bad {
        let mut ws = s.ws().await;
        ws.send(serde_json::json!({"type": "auth", "token": t}))
            .await;
        ws.expect_close(4001, WAIT).await;
    }
    // A bad token in the header.
    let mut ws = s.ws_with_header("garbage").await;
    ws.expect_close(4001, WAIT).await;
    // A first frame that is not auth.
    let mut ws = s.ws().await;
    ws.send(serde_json::json!({"type": "subscribe", "channel": "x"}))
        .await;
    ws.expect_close(4001, WAIT).await;
    // Silence: closed once the auth timeout (1 s in tests) passes.
    let mut ws = s.ws().await;
    let start = Instant::now();
    let reason = ws.expect_close(4001, WAIT).await;
    assert!(reason.contains("timeout"), "{reason}");
    assert!(start.elapsed() >= Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backend_is_a_quick_503_and_named_by_health() {
    let db = TestDb::create().await;
    let base = settings(&db);
    // auth in a process of its own; the rest in another, pointed at it.
    let auth = Stack::start(base.clone(), &[Service::Auth]);
    let auth_grpc = auth.running.addrs(Service::Auth).grpc;
    let mut rest_settings = base.clone();
    rest_settings.upstream.auth = format!("http://{auth_grpc}");
    let rest = Stack::start(
        rest_settings,
        &[Service::Gateway, Service::Project, Service::Simulation],
    );
    rest.wait_ready().await;
    let email = unique_email("down");
    rest.register(&email, "a long enough password").await;

    drop(auth); // stops the auth service and closes its ports

    let r = rest.http.get(rest.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let h: serde_json::Value = r.json().await.unwrap();
    assert_eq!(h["status"], "down");
    assert_eq!(h["down"], serde_json::json!(["auth"]), "{h}");
    assert_eq!(h["components"]["auth"]["healthy"], false);
    assert_eq!(h["components"]["project"]["healthy"], true);
    assert_eq!(h["components"]["redis"]["healthy"], true);
    // The gateway owns no data: PostgreSQL is not its dependency.
    assert!(h["components"].get("postgres").is_none(), "{h}");
    // And it is not ready: a load balancer sends its traffic elsewhere.
    let r = rest.http.get(rest.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let ready: serde_json::Value = r.json().await.unwrap();
    let failing = ready["failing"].to_string();
    assert!(failing.contains("auth"), "{ready}");
    assert!(!failing.contains("project"), "{ready}");

    let start = Instant::now();
    let r = rest
        .http
        .post(rest.url("/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    let took = start.elapsed();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let b: serde_json::Value = r.json().await.unwrap();
    assert_error(&b, "unavailable");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("auth"),
        "{b}"
    );
    // Refused at once, not after the 5 s call deadline (the connect timeout is 0.5 s).
    assert!(took < Duration::from_secs(2), "503 took {took:?}");
    let r = rest
        .http
        .get(rest.url("/api/auth/profile"))
        .bearer_auth("x.y.z")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_actor_is_restarted_and_counted() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let gw_http = s.running.addrs(Service::Gateway).http;
    let auth_http = s.running.addrs(Service::Auth).http;
    let email = unique_email("panic");
    s.register(&email, "a long enough password").await;
    let login = s.login(&email, "a long enough password").await;
    let token = login["access_token"].as_str().unwrap();
    let mut ws = s.ws().await;
    ws.authenticate(token).await;

    // Before any restart, the counters operators alert on already exist, at zero (so
    // `rate()` and `absent()` over them mean what they say).
    let sim_http = s.running.addrs(Service::Simulation).http;
    for (http, line) in [
        (gw_http, "sdsim_supervisor_restarts_total{child=\"notifications\",reason=\"panic\",service=\"gateway\",supervisor=\"gateway\"} 0"),
        (auth_http, "sdsim_supervisor_restarts_total{child=\"accounts\",reason=\"panic\",service=\"auth\",supervisor=\"auth\"} 0"),
        (sim_http, "sdsim_supervisor_restarts_total{child=\"run\",reason=\"panic\",service=\"simulation\",supervisor=\"runs\"} 0"),
        (gw_http, "sdsim_websocket_closed_total{code=\"4008\"} 0"),
        // The process's PostgreSQL pool, read at each scrape: its cap is the setting.
        (
            auth_http,
            &*format!(
                "sdsim_db_pool_connections{{state=\"max\"}} {}",
                s.settings.database.pool_size
            ),
        ),
        (auth_http, "sdsim_db_pool_connections{state=\"waiting\"} 0"),
    ] {
        let text = s.metrics(http).await;
        assert!(text.contains(line), "{line} missing from {http}/metrics");
    }

    // Crash the gateway's Redis subscriber and auth's accounts actor.
    for (http, sup, child) in [
        (gw_http, "gateway", "notifications"),
        (auth_http, "auth", "accounts"),
    ] {
        let r = s
            .http
            .post(format!(
                "http://{http}/admin/supervision/{sup}/{child}/crash"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{sup}/{child}");
    }
    let r = s
        .http
        .post(format!(
            "http://{gw_http}/admin/supervision/gateway/nope/crash"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    for (http, sup, child) in [
        (gw_http, "gateway", "notifications"),
        (auth_http, "auth", "accounts"),
    ] {
        let line = format!(
            "sdsim_supervisor_restarts_total{{child=\"{child}\",reason=\"panic\",service=\"{sup}\",supervisor=\"{sup}\"}} 1"
        );
        let mut found = false;
        for _ in 0..100 {
            if s.metrics(http).await.contains(&line) {
                found = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(found, "{line} not in /metrics:\n{}", s.metrics(http).await);
        // Running again after its backoff, with one restart on record.
        let mut last = serde_json::Value::Null;
        for _ in 0..100 {
            let tree: serde_json::Value = s
                .get_json(&format!("http://{http}/admin/supervision"))
                .await;
            let root = tree["supervisors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == sup)
                .unwrap();
            last = root["children"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == child)
                .unwrap()
                .clone();
            if last["status"] == "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(last["status"], "running", "{last}");
        assert_eq!(last["restarts"], 1, "{last}");
        assert_eq!(last["last_exit"], "panic", "{last}");
    }

    // Both restarted actors work: a new login (auth's accounts actor) reaches the open
    // socket (through the gateway's resubscribed Redis subscriber).
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.login(&email, "a long enough password").await;
    let ev = ws.frame(WAIT).await;
    assert_eq!(ev["type"], "auth.login", "{ev}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_grpc_validates_tokens_and_gives_user_context() {
    use sdsim_protocols::proto::auth::auth_service_client::AuthServiceClient;
    use sdsim_protocols::proto::auth::{GetUserContextRequest, ValidateTokenRequest};
    use sdsim_protocols::proto::common::HealthCheckRequest;
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("grpc");
    let reg = s.register(&email, "a long enough password").await;
    let login = s.login(&email, "a long enough password").await;
    let user_id = reg["user"]["id"].as_str().unwrap().to_string();

    let addr = s.running.addrs(Service::Auth).grpc;
    let mut auth = AuthServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let v = auth
        .validate_token(ValidateTokenRequest {
            token: login["access_token"].as_str().unwrap().into(),
            calling_service: "test".into(),
            request_id: "r1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v.valid);
    assert_eq!(v.user_id, user_id);
    assert_eq!(v.session_id, login["session_id"].as_str().unwrap());
    assert!(v.expires_at > chrono_now());

    let bad = auth
        .validate_token(ValidateTokenRequest {
            token: "x.y.z".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!bad.valid);
    assert_eq!(bad.error, "token_malformed");

    let ctx = auth
        .get_user_context(GetUserContextRequest {
            user_id: user_id.clone(),
            calling_service: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ctx.email, email.to_lowercase());
    assert!(ctx.is_active);
    assert!(ctx.roles.iter().any(|r| r == "member"), "{:?}", ctx.roles);
    assert!(!ctx.permissions.is_empty());

    // Bad ids are INVALID_ARGUMENT naming the field; unknown ones NOT_FOUND.
    let e = auth
        .get_user_context(GetUserContextRequest {
            user_id: "nope".into(),
            calling_service: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(e.metadata().get("x-sdsim-error-field").unwrap(), "user_id");
    let e = auth
        .get_user_context(GetUserContextRequest {
            user_id: uuid::Uuid::new_v4().to_string(),
            calling_service: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    let h = auth
        .health_check(HealthCheckRequest {
            calling_service: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.status, "SERVING");
    assert!(h
        .dependencies
        .iter()
        .any(|d| d.name == "postgres" && d.healthy));
    assert!(h
        .dependencies
        .iter()
        .any(|d| d.name == "redis" && d.healthy));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_login_is_published_on_auth_events_login() {
    use futures_util::StreamExt;
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("event");
    let reg = s.register(&email, "a long enough password").await;

    let client = redis::Client::open(redis_url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    let channel = format!("{}auth:events:login", s.settings.redis.prefix);
    pubsub.subscribe(&channel).await.unwrap();

    let login = s.login(&email, "a long enough password").await;
    let msg = tokio::time::timeout(WAIT, pubsub.on_message().next())
        .await
        .expect("an event within 5 s")
        .unwrap();
    let env: sdsim_protocols::events::Envelope =
        serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(env.kind, "auth.login");
    assert_eq!(env.source, "auth");
    assert_eq!(env.user_id.as_deref(), reg["user"]["id"].as_str());
    assert_eq!(env.data["session_id"], login["session_id"]);
    assert_eq!(env.data["email"], email.to_lowercase());
    assert_eq!(env.data["ip"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_server_pings_and_drops_a_silent_client() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let db = TestDb::create().await;
    let s = Stack::up(&db).await; // ping every 0.5 s, client timeout 3 s
    let email = unique_email("ping");
    s.register(&email, "a long enough password").await;
    let login = s.login(&email, "a long enough password").await;
    let token = login["access_token"].as_str().unwrap();

    let mut live = s.ws().await;
    live.authenticate(token).await;
    let mut silent = s.ws().await;
    silent.authenticate(token).await;

    // The live client reads (and so answers pings) for longer than the client timeout.
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(4_500);
    while let Ok(Some(msg)) = tokio::time::timeout_at(until, live.socket.next()).await {
        match msg.unwrap() {
            Message::Ping(_) => pings += 1,
            Message::Close(c) => panic!("a live client was closed: {c:?}"),
            _ => {}
        }
    }
    assert!(pings >= 5, "only {pings} pings in 4.5 s");

    // The silent one never answered: the server dropped it (with close 1001, which the
    // client may not get to read: answering the queued pings can hit the closed socket).
    use sdsim_protocols::proto::gateway::gateway_service_client::GatewayServiceClient;
    let gw = s.running.addrs(Service::Gateway).grpc;
    let mut client = GatewayServiceClient::connect(format!("http://{gw}"))
        .await
        .unwrap();
    let clients = client
        .get_connected_clients(
            sdsim_protocols::proto::gateway::GetConnectedClientsRequest {
                user_id: login["user"]["id"].as_str().unwrap().into(),
                limit: 0,
            },
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(clients.total, 1, "the silent client is still registered");
    match silent.next(WAIT).await {
        Next::Closed(Some(code), reason) => {
            assert_eq!(code, 1001);
            assert!(reason.contains("ping"), "{reason}");
        }
        Next::Closed(None, _) => {}
        other => panic!("the silent client was not dropped: {other:?}"),
    }
}
