//! Simulations through the gateway: checking a design before running it.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_design_is_checked_and_previewed_before_any_run() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("validate");
    s.register(&email, "a long enough password").await;
    let token = s.login(&email, "a long enough password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |body: Value| {
        let r = s
            .authed(Method::POST, "/api/simulations/validate", &token)
            .json(&body);
        async move {
            let r = r.send().await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or_default())
        }
    };
    let design: Value =
        serde_json::from_str(sdsim_engine::template("three_tier_web_app").unwrap()).unwrap();
    let (st, b) = post(json!({"design": design})).await;
    assert_eq!((st, &b["valid"]), (200, &json!(true)), "{b}");
    let comps = b["preview"]["components"].as_array().unwrap();
    assert!(
        comps.iter().all(|c| c["utilisation"].as_f64().is_some()),
        "{b}"
    );
    // Every problem with its path; no preview.
    let mut broken = design.clone();
    broken["components"][1]["kind"] = json!("teleporter");
    broken["duration_s"] = json!(-1);
    let (st, b) = post(json!({"design": broken})).await;
    assert_eq!(
        (st, &b["valid"], &b["preview"]),
        (200, &json!(false), &Value::Null),
        "{b}"
    );
    let paths: Vec<&str> = b["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.iter().any(|p| p.starts_with("$.components[1]")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("$.duration_s")),
        "{paths:?}"
    );
    // No token: 401; no design: 422 naming it.
    let r = s
        .http
        .post(s.url("/api/simulations/validate"))
        .json(&json!({"design": design}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (st, b) = post(json!({})).await;
    assert_eq!(st, 422, "{b}");
}
