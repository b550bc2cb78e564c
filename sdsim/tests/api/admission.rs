//! Admission: a user's runs going at once are capped across instances (429 with
//! Retry-After); an instance runs so many at once and queues the rest, in order, each
//! knowing its place; a queued run can be stopped before it starts.

use crate::helpers::*;
use reqwest::Method;
use sdsim_protocols::Service;
use serde_json::{json, Value};
use std::time::Duration;

async fn call_with_retry(
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

async fn status(s: &Stack, token: &str, id: &str) -> Value {
    call_with_retry(
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
        async move { call_with_retry(s, Method::POST, "/api/simulations", &token, Some(body)).await }
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
    let (st, _, _) = call_with_retry(
        &s,
        Method::POST,
        &format!("/api/simulations/{second}/pause"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 409);

    // The first ends: the second takes its place, Bob's moves up.
    let (st, _, _) = call_with_retry(
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
    let (st, _, _) = call_with_retry(
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
    let (st, _, _) = call_with_retry(
        &s,
        Method::GET,
        &format!("/api/simulations/{third}/results"),
        &bob,
        None,
    )
    .await;
    assert_eq!(st, 409);
    // And the place it would have had is nobody's: Ada's second still runs alone.
    let (st, _, _) = call_with_retry(
        &s,
        Method::POST,
        &format!("/api/simulations/{second}/stop"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 202);
}

#[derive(diesel::QueryableByName)]
struct Owner {
    #[diesel(sql_type = diesel::sql_types::Text)]
    owner: String,
}

/// With two simulation instances, a run lives on one; stop, pause, resume, speed and chaos
/// reach it whichever instance the gateway calls (the others forward to its owner), and its
/// status says where it is from either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controls_reach_a_run_whichever_instance_gets_them() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let db = TestDb::create().await;
    let settings = settings(&db);
    let s = Stack::start(settings.clone(), &Service::ALL);
    s.wait_ready().await;
    let logs = std::env::temp_dir().join(format!("sdsim-fwd-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&logs).unwrap();
    let other = ServiceProcess::spawn(
        "simulation",
        &settings,
        free_addr(),
        free_addr(),
        &logs.join("b.log"),
    );
    other.wait_healthy().await;
    // Both instances known to the gateway, each with a channel (a target without one takes
    // no call): waited for, not slept on (under load the second may take seconds).
    let mut ready = 0;
    for _ in 0..200 {
        let mesh: Value = s.get_json(&s.url("/admin/mesh")).await;
        ready = mesh["services"]["simulation"]["targets"]
            .as_array()
            .map_or(0, |t| {
                t.iter()
                    .filter(|t| t["routable"] == true && t["pool"]["channels"].as_u64() > Some(0))
                    .count()
            });
        if ready >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ready, 2,
        "both simulation instances routable from the gateway"
    );
    let ada = signed_in(&s, "fwd").await;
    let design: Value =
        serde_json::from_str(sdsim_engine::template("three_tier_web_app").unwrap()).unwrap();
    let mut pg = AsyncPgConnection::establish(&db.url).await.unwrap();
    let mut runs = Vec::new();
    let mut owners = std::collections::BTreeSet::new();
    // Eight runs, or ten (the user's cap) until both instances have one: the gateway picks
    // at random between two idle instances.
    while runs.len() < 8 || (owners.len() < 2 && runs.len() < 10) {
        let (st, b, _) = call_with_retry(
            &s,
            Method::POST,
            "/api/simulations",
            &ada,
            Some(json!({"design": design, "speed": 1})),
        )
        .await;
        assert_eq!(st, 201, "{b}");
        let id = b["simulation"]["id"].as_str().unwrap().to_string();
        let o: Vec<Owner> = diesel::sql_query(format!(
            "SELECT owner_instance AS owner FROM simulation_schema.simulations WHERE id = '{id}'"
        ))
        .load(&mut pg)
        .await
        .unwrap();
        owners.insert(o[0].owner.clone());
        runs.push(id);
    }
    assert_eq!(
        owners.len(),
        2,
        "the runs spread over both instances: {owners:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for id in &runs {
        let path = |p: &str| format!("/api/simulations/{id}{p}");
        let (st, b, _) = call_with_retry(&s, Method::POST, &path("/pause"), &ada, None).await;
        assert_eq!(
            (st, &b["simulation"]["status"]),
            (200, &json!("paused")),
            "{id}: {b}"
        );
        assert!(
            b["simulation"]["simulated_seconds"].as_f64().unwrap() > 0.0,
            "{b}"
        );
        let crash = json!({"type": "crash", "component": "database", "duration_s": 1});
        let (st, b, _) =
            call_with_retry(&s, Method::POST, &path("/chaos"), &ada, Some(crash)).await;
        assert_eq!(st, 200, "{id}: {b}");
        let (st, b, _) = call_with_retry(
            &s,
            Method::PUT,
            &path("/speed"),
            &ada,
            Some(json!({"speed": 2})),
        )
        .await;
        assert_eq!(
            (st, &b["simulation"]["speed"]),
            (200, &json!(2.0)),
            "{id}: {b}"
        );
        let (st, b, _) = call_with_retry(&s, Method::POST, &path("/resume"), &ada, None).await;
        assert_eq!(
            (st, &b["simulation"]["status"]),
            (200, &json!("running")),
            "{id}: {b}"
        );
        let (st, b, _) = call_with_retry(&s, Method::POST, &path("/stop"), &ada, None).await;
        assert_eq!(st, 202, "{id}: {b}");
    }
    for id in &runs {
        let mut now = Value::Null;
        for _ in 0..100 {
            now = status(&s, &ada, id).await;
            if now["status"] == "stopped" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(now["status"], "stopped", "{now}");
        assert_eq!(now["chaos"].as_array().unwrap().len(), 1, "{now}");
    }
    drop(other);
    let _ = std::fs::remove_dir_all(&logs);
}

/// The runs of a project purged for good go with it (swept by the simulation service's
/// keeper); other runs stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_of_a_purged_project_go_with_it() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    settings.simulation.janitor_interval_s = 1;
    let s = Stack::start(settings, &Service::ALL);
    s.wait_ready().await;
    let ada = signed_in(&s, "purger").await;
    let (st, p, _) = call_with_retry(
        &s,
        Method::POST,
        "/api/projects",
        &ada,
        Some(json!({"name": "Short-lived", "template_id": "three-tier-web-app"})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let project = p["project"]["id"].as_str().unwrap().to_string();
    let design: Value =
        serde_json::from_str(sdsim_engine::template("three_tier_web_app").unwrap()).unwrap();
    let mut runs = Vec::new();
    for body in [
        json!({"project_id": project, "speed": 0}),
        json!({"design": design, "speed": 0}),
    ] {
        let (st, b, _) =
            call_with_retry(&s, Method::POST, "/api/simulations", &ada, Some(body)).await;
        assert_eq!(st, 201, "{b}");
        runs.push(b["simulation"]["id"].as_str().unwrap().to_string());
    }
    for id in &runs {
        for _ in 0..200 {
            if status(&s, &ada, id).await["status"] == "completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let path = format!("/api/projects/{project}");
    assert_eq!(
        call_with_retry(&s, Method::DELETE, &path, &ada, None)
            .await
            .0,
        200
    );
    // In the trash, its runs stay (it can be restored).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(status(&s, &ada, &runs[0]).await["status"], "completed");
    let (st, b, _) = call_with_retry(&s, Method::POST, &format!("{path}/purge"), &ada, None).await;
    assert!(st == 200 || st == 204, "{st} {b}");
    let mut gone = false;
    for _ in 0..100 {
        let (st, _, _) = call_with_retry(
            &s,
            Method::GET,
            &format!("/api/simulations/{}", runs[0]),
            &ada,
            None,
        )
        .await;
        if st == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the purged project's run is deleted");
    assert_eq!(
        status(&s, &ada, &runs[1]).await["status"],
        "completed",
        "others stay"
    );
}
