//! The API's rate limits, counted in Redis and so shared by every gateway instance: per user
//! and kind of request, and per address; 429 with `Retry-After` and the `RateLimit-*`
//! headers past them.

use crate::helpers::*;
use reqwest::Method;
use sdsim_protocols::Service;
use serde_json::json;
use std::time::Duration;

/// Waits, if needed, so the test runs within one minute's window.
async fn fresh_window() {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if s > 45 {
        tokio::time::sleep(Duration::from_secs(61 - s)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_per_user_and_kind_are_shared_by_every_gateway() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    settings.gateway.rate_limits = sdsim_gateway::limits::RateLimits {
        reads_per_minute: 100,
        writes_per_minute: 4,
        run_starts_per_minute: 0,
        per_address_per_minute: 0,
    };
    let s = Stack::start(settings.clone(), &Service::ALL);
    s.wait_ready().await;
    let mut second = settings.clone();
    *second.listen_mut(Service::Gateway) = sdsim_runtime::config::Listen::any();
    let g2 = Stack::start(second, &[Service::Gateway]);
    g2.wait_ready().await;
    let email = unique_email("limited");
    s.register(&email, "a long enough password").await;
    let ada = s.login(&email, "a long enough password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let other = unique_email("other");
    s.register(&other, "a long enough password").await;
    let bob = s.login(&other, "a long enough password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    fresh_window().await;
    let write = |stack: &Stack, token: &str| {
        stack
            .authed(Method::POST, "/api/projects", token)
            .json(&json!({"name": "Limited"}))
            .send()
    };
    // Four writes, two through each instance: all pass, the headers counting down.
    let mut left = Vec::new();
    for stack in [&s, &g2, &s, &g2] {
        let r = write(stack, &ada).await.unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["ratelimit-limit"], "4");
        left.push(
            r.headers()["ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(left, ["3", "2", "1", "0"]);
    // The fifth, on either instance, is refused with when to come back.
    let r = write(&g2, &ada).await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    assert_error(&r.json().await.unwrap(), "rate_limited");
    // Reads are another kind, and Bob another user.
    let r = s
        .authed(Method::GET, "/api/projects", &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["ratelimit-limit"], "100");
    assert_eq!(write(&s, &bob).await.unwrap().status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_past_its_limit_is_refused_before_any_work() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    settings.gateway.rate_limits.per_address_per_minute = 5;
    let s = Stack::start(settings, &Service::ALL);
    s.wait_ready().await;
    fresh_window().await;
    let mut codes = Vec::new();
    for _ in 0..7 {
        let r = s
            .http
            .post(s.url("/api/auth/login"))
            .json(&json!({"email": "nobody@example.com", "password": "whatever it is"}))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, [401, 401, 401, 401, 401, 429, 429]);
    // The same route spelled percent-encoded is the same route, limited alike.
    let r = s
        .http
        .post(s.url("/%61pi/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "whatever it is"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Operator endpoints are not the API's: never limited.
    let r = s.http.get(s.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
