//! Admission: a user's runs going at once are capped across instances (429 with
//! Retry-After); an instance runs so many at once and queues the rest, in order, each
//! knowing its place; a queued run can be stopped before it starts.

use crate::helpers::*;
use reqwest::Method;
use sdsim_protocols::Service;
use serde_json::{json, Value};
use std::time::Duration;

async fn call(
    s: &Stack,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut r = s.authed(method, path, token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let st = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (st, r.json().await.unwrap_or_default(), retry)
}

async fn signed_in(s: &Stack, tag: &str) -> String {
    let email = unique_email(tag);
    s.register(&email, "a long enough password").await;
    s.login(&email, "a long enough password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn status(s: &Stack, token: &str, id: &str) -> Value {
    call(
        s,
        Method::GET,
        &format!("/api/simulations/{id}"),
        token,
        None,
    )
    .await
    .1["simulation"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_beyond_a_users_cap_are_refused_and_beyond_the_instances_wait_in_line() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    settings.simulation.max_runs_per_user = 2;
    settings.simulation.max_running = 1;
    let s = Stack::start(settings, &Service::ALL);
    s.wait_ready().await;
    let (ada, bob) = (signed_in(&s, "ada").await, signed_in(&s, "bob").await);
    let design: Value =
        serde_json::from_str(sdsim_engine::template("three_tier_web_app").unwrap()).unwrap();
    // Real time: each runs a minute unless stopped.
    let body = json!({"design": design, "speed": 1});
    let start = |token: String| {
        let body = body.clone();
        let s = &s;
        async move { call(s, Method::POST, "/api/simulations", &token, Some(body)).await }
    };

    let (st, first, _) = start(ada.clone()).await;
    assert_eq!(
        (st, &first["simulation"]["status"]),
        (201, &json!("running")),
        "{first}"
    );
    let first = first["simulation"]["id"].as_str().unwrap().to_string();
    let (st, second, _) = start(ada.clone()).await;
    assert_eq!(st, 201, "{second}");
    assert_eq!(
        second["simulation"]["status"], "pending",
        "the instance is full"
    );
    assert_eq!(second["simulation"]["queue_position"], 1);
    let second = second["simulation"]["id"].as_str().unwrap().to_string();
    // Ada has two going (one waiting counts): a third is refused, with when to retry.
    let (st, b, retry) = start(ada.clone()).await;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{b}"
    );
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() > 0));
    // Bob is behind Ada's second.
    let (st, third, _) = start(bob.clone()).await;
    assert_eq!(st, 201);
    assert_eq!(third["simulation"]["queue_position"], 2);
    let third = third["simulation"]["id"].as_str().unwrap().to_string();
    // A waiting run is controlled like a running one only by stopping it.
    let (st, _, _) = call(
        &s,
        Method::POST,
        &format!("/api/simulations/{second}/pause"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 409);

    // The first ends: the second takes its place, Bob's moves up.
    let (st, _, _) = call(
        &s,
        Method::POST,
        &format!("/api/simulations/{first}/stop"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 202);
    let mut now = Value::Null;
    for _ in 0..100 {
        now = status(&s, &ada, &second).await;
        if now["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(now["status"], "running", "{now}");
    assert!(now["started_at"].is_string());
    assert_eq!(status(&s, &bob, &third).await["queue_position"], 1);

    // Bob stops his before it starts: it ends at once, with no results.
    let (st, _, _) = call(
        &s,
        Method::POST,
        &format!("/api/simulations/{third}/stop"),
        &bob,
        None,
    )
    .await;
    assert_eq!(st, 202);
    let gone = status(&s, &bob, &third).await;
    assert_eq!(gone["status"], "stopped", "{gone}");
    assert!(gone.get("queue_position").is_none(), "{gone}");
    let (st, _, _) = call(
        &s,
        Method::GET,
        &format!("/api/simulations/{third}/results"),
        &bob,
        None,
    )
    .await;
    assert_eq!(st, 409);
    // And the place it would have had is nobody's: Ada's second still runs alone.
    let (st, _, _) = call(
        &s,
        Method::POST,
        &format!("/api/simulations/{second}/stop"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 202);
}
