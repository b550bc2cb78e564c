//! The gateway's circuit breaker for a backend: failures open it, calls are then refused at
//! once, and it closes through half-open once the backend is back.

use crate::helpers::*;
use sdsim_protocols::Service;
use std::time::Duration;

const PASSWORD: &str = "a long enough password";

/// The breaker state of the auth instance at `addr`: 0 closed, 1 open, 2 half-open.
fn state(metrics: &str, addr: &str) -> Option<i64> {
    let prefix = format!("sdsim_circuit_breaker_state{{instance=\"{addr}\",service=\"auth\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The gateway's metrics once `ready` holds of them (at most 2 s): the breaker's gauge and
/// transition counts follow it through its watching actor, a message later.
async fn metrics_when(s: &Stack, gw: std::net::SocketAddr, ready: impl Fn(&str) -> bool) -> String {
    let mut m = s.metrics(gw).await;
    for _ in 0..40 {
        if ready(&m) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        m = s.metrics(gw).await;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_failures_and_closes_when_the_backend_returns() {
    let db = TestDb::create().await;
    let base = settings(&db);
    let auth = Stack::start(base.clone(), &[Service::Auth]);
    let auth_addr = auth.running.addrs(Service::Auth);
    let mut rest = base.clone();
    rest.upstream.auth = format!("http://{}", auth_addr.grpc);
    rest.mesh.breaker.min_calls = 4;
    rest.mesh.breaker.open_ms = 700;
    rest.mesh.breaker.half_open_calls = 2;
    let addr = auth_addr.grpc.to_string();
    let s = Stack::start(
        rest,
        &[Service::Gateway, Service::Project, Service::Simulation],
    );
    s.wait_ready().await;
    let gw = s.running.addrs(Service::Gateway).http;
    let email = unique_email("breaker");
    s.register(&email, PASSWORD).await;
    let login = || {
        s.post_json(
            "/api/auth/login",
            serde_json::json!({"email": email, "password": PASSWORD}),
        )
    };

    drop(auth);
    // One success (the registration) and then failures: at the 4th call (min_calls) 3 of 4
    // failed, over the 50% threshold, and the breaker opens.
    let mut failed_calls = 0;
    loop {
        let (st, b) = login().await;
        assert_eq!(st, 503, "{b}");
        if b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circuit open")
        {
            break; // refused without trying
        }
        failed_calls += 1;
        assert!(failed_calls <= 10, "the breaker never opened");
    }
    assert_eq!(failed_calls, 3);
    // While open: an immediate 503 naming the circuit, with Retry-After.
    let t = std::time::Instant::now();
    let r = s
        .http
        .post(s.url("/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "circuit_open", "{body}");
    assert!(took < Duration::from_millis(500), "refusal took {took:?}");
    // No call is made meanwhile, so nothing moves the breaker itself.
    let m = metrics_when(&s, gw, |m| state(m, &addr) == Some(1)).await;
    assert_eq!(state(&m, &addr), Some(1), "{m}");
    assert!(
        m.contains(&format!(
            "sdsim_circuit_breaker_calls_total{{instance=\"{addr}\",outcome=\"rejected\",service=\"auth\"}} 2"
        )),
        "{m}"
    );

    // Auth comes back on the same address; after the open wait, trial calls close the breaker.
    let mut again = base.clone();
    again.auth.listen.grpc = auth_addr.grpc;
    again.auth.listen.http = auth_addr.http;
    let _auth = Stack::start(again, &[Service::Auth]);
    tokio::time::sleep(Duration::from_millis(900)).await;
    for _ in 0..2 {
        let (st, b) = login().await;
        assert_eq!(st, 200, "{b}");
    }
    let half_open = format!(
        "sdsim_circuit_breaker_transitions_total{{instance=\"{addr}\",service=\"auth\",to=\"half_open\"}} 1"
    );
    let m = metrics_when(&s, gw, |m| {
        state(m, &addr) == Some(0) && m.contains(&half_open)
    })
    .await;
    assert_eq!(state(&m, &addr), Some(0), "{m}");
    assert!(m.contains(&half_open), "{m}");
    // Client errors are answers, not failures: they never open it.
    for _ in 0..6 {
        let (st, _) = s
            .post_json(
                "/api/auth/login",
                serde_json::json!({"email": email, "password": "wrong password!"}),
            )
            .await;
        assert_eq!(st, 401);
    }
    let m = s.metrics(gw).await;
    assert_eq!(state(&m, &addr), Some(0), "{m}");
}
