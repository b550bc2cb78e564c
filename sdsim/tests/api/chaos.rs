//! Chaos injected into a running run through REST, stored with the run, and a replay of the
//! run (same design, seed, window and injections at the same simulated times) giving the
//! identical report.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_injected_live_is_stored_and_a_replay_gives_the_identical_report() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = signed_in(&s, "chaos").await;
    let eve = signed_in(&s, "stranger").await;
    let mut design: Value =
        serde_json::from_str(sdsim_engine::template("read_heavy_api_with_cache").unwrap()).unwrap();
    design["duration_s"] = json!(30);
    let (st, b) = call(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"design": design, "seed": 4, "speed": 10, "window_seconds": 0.5})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let id = b["simulation"]["id"].as_str().unwrap().to_string();
    let chaos = format!("/api/simulations/{id}/chaos");
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Bad entries name what is wrong; a stranger does not see the run.
    for (body, field) in [
        (
            json!({"type": "crash", "component": "nowhere"}),
            "chaos.component",
        ),
        (
            json!({"type": "latency", "component": "api", "duration_s": -1, "extra_ms": 5}),
            "chaos.duration_s",
        ),
        (json!({"type": "teleport", "component": "api"}), "chaos"),
        (json!("crash"), ""),
    ] {
        let (st, b) = call(&s, Method::POST, &chaos, &ada, Some(body.clone())).await;
        let named = b["error"]["field"].as_str().unwrap_or_default();
        assert_eq!((st, named), (422, field), "{body}: {b}");
        assert!(b["error"]["message"].is_string(), "{b}");
    }
    let crash = json!({"type": "crash", "component": "database", "duration_s": 3});
    let (st, _) = call(&s, Method::POST, &chaos, &eve, Some(crash.clone())).await;
    assert_eq!(st, 404);

    // Two injections, one while paused (it applies at once, at the paused time).
    let (st, first) = call(&s, Method::POST, &chaos, &ada, Some(crash.clone())).await;
    assert_eq!(st, 200, "{first}");
    let at = first["at_s"].as_f64().unwrap();
    assert!(at > 0.0 && at < 30.0, "{first}");
    assert_eq!(
        (at * 2.0).fract(),
        0.0,
        "applied at a window boundary: {first}"
    );
    assert_eq!(first["chaos"]["at_s"], json!(at));
    let pause = format!("/api/simulations/{id}/pause");
    assert_eq!(call(&s, Method::POST, &pause, &ada, None).await.0, 200);
    let spike = json!({"type": "traffic_spike", "duration_s": 2, "multiplier": 3});
    let (st, second) = call(&s, Method::POST, &chaos, &ada, Some(spike)).await;
    assert_eq!(st, 200, "{second}");
    assert!(second["at_s"].as_f64().unwrap() >= at);
    let resume = format!("/api/simulations/{id}/resume");
    assert_eq!(call(&s, Method::POST, &resume, &ada, None).await.0, 200);

    let run = settled(&s, &ada, &id).await;
    assert_eq!(run["status"], "completed", "{run}");
    let injected = run["chaos"].as_array().unwrap();
    assert_eq!(injected.len(), 2, "{run}");
    assert_eq!(injected[0]["at_s"], json!(at));
    assert_eq!(injected[0]["chaos"], first["chaos"]);
    assert_eq!(injected[1]["chaos"], second["chaos"]);
    // Chaos on a finished run is a conflict.
    let (st, _) = call(&s, Method::POST, &chaos, &ada, Some(crash.clone())).await;
    assert_eq!(st, 409);

    let (_, original) = call(
        &s,
        Method::GET,
        &format!("/api/simulations/{id}/results"),
        &ada,
        None,
    )
    .await;
    // The chaos changed the run: the same design and seed without it differ.
    let d: sdsim_engine::Design = serde_json::from_value(design.clone()).unwrap();
    let mut calm = sdsim_engine::Simulation::new(&d, Some(4)).unwrap();
    while !calm.is_finished() {
        calm.advance(0.5);
    }
    let calm = serde_json::to_value(calm.report()).unwrap();
    assert_eq!(calm["seed"], original["report"]["seed"]);
    assert_ne!(
        calm, original["report"],
        "the injected chaos shows in the report"
    );

    // The replay, as fast as it goes: the identical report, and the same injections.
    let (st, b) = call(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"replay_of": id, "speed": 0})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let replay = b["simulation"]["id"].as_str().unwrap().to_string();
    let again = settled(&s, &ada, &replay).await;
    assert_eq!(again["status"], "completed");
    assert_eq!(again["chaos"], run["chaos"]);
    assert_eq!(
        (again["seed"].clone(), again["window_seconds"].clone()),
        (json!(4), json!(0.5))
    );
    let (_, replayed) = call(
        &s,
        Method::GET,
        &format!("/api/simulations/{replay}/results"),
        &ada,
        None,
    )
    .await;
    assert_eq!(
        replayed["report"], original["report"],
        "byte for byte the same run"
    );

    // The series is stored per component and end to end, one point per window here (a run
    // this short is not downsampled).
    {
        use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut pg = AsyncPgConnection::establish(&db.url).await.unwrap();
        let c: Vec<Count> = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM simulation_schema.performance_metrics \
             WHERE simulation_id = '{id}' AND component_id = ''"
        ))
        .load(&mut pg)
        .await
        .unwrap();
        assert_eq!(c[0].n, 60, "30 s in windows of 0.5 s");
    }

    // The analysis in words; the starter was told of the end in their inbox.
    let (st, analysis) = call(
        &s,
        Method::GET,
        &format!("/api/simulations/{id}/analysis"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 200, "{analysis}");
    let first_bottleneck = &analysis["bottlenecks"][0];
    assert!(
        first_bottleneck["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{analysis}"
    );
    assert_eq!(
        analysis["analysis"]["bottlenecks"][0]["message"],
        first_bottleneck["description"]
    );
    assert_eq!(
        call(
            &s,
            Method::GET,
            &format!("/api/simulations/{id}/analysis"),
            &eve,
            None
        )
        .await
        .0,
        404
    );
    let mut told = Value::Null;
    for _ in 0..100 {
        let (_, inbox) = call(&s, Method::GET, "/api/notifications", &ada, None).await;
        if let Some(n) = inbox["notifications"].as_array().and_then(|l| {
            l.iter()
                .find(|n| n["data"]["simulation_id"] == json!(id))
                .cloned()
        }) {
            told = n;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(told["type"], "simulation.completed", "{told}");
    assert_eq!(told["link"], format!("/runs/{id}"));

    // Compared side by side: the replay changes nothing; the same design and seed without
    // the chaos differ, in words.
    let compare = |a: &str, b: &str| format!("/api/simulations/compare?a={a}&b={b}");
    let (st, same) = call(&s, Method::GET, &compare(&id, &replay), &ada, None).await;
    assert_eq!(st, 200, "{same}");
    assert_eq!(same["summary"], json!(["no figure changed by 5% or more"]));
    assert_eq!(same["same_seed"], true);
    assert_eq!(same["end_to_end"]["p99_ms"]["change"], json!(0.0));
    let (st, b) = call(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"design": design, "seed": 4, "speed": 0, "window_seconds": 0.5})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let calm_run = b["simulation"]["id"].as_str().unwrap().to_string();
    settled(&s, &ada, &calm_run).await;
    let (st, diff) = call(&s, Method::GET, &compare(&calm_run, &id), &ada, None).await;
    assert_eq!(st, 200, "{diff}");
    let words = diff["summary"].to_string();
    assert!(!words.contains("no figure changed"), "{diff}");
    assert!(diff["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "database" && c["in"] == "both"));
    // Someone else's run, an unknown one, a missing one: 404, 404, 422.
    assert_eq!(
        call(&s, Method::GET, &compare(&id, &replay), &eve, None)
            .await
            .0,
        404
    );
    let unknown = "5f0c6c3e-1d7b-4b8e-9a57-3d2f7c1e9b11";
    assert_eq!(
        call(&s, Method::GET, &compare(&id, unknown), &ada, None)
            .await
            .0,
        404
    );
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("/api/simulations/compare?a={id}"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 422);

    // A replay names nothing else; a stranger cannot replay what they cannot see.
    let (st, b) = call(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"replay_of": id, "design": design})),
    )
    .await;
    assert_eq!(
        (st, &b["error"]["field"]),
        (422, &json!("replay_of")),
        "{b}"
    );
    let (st, _) = call(
        &s,
        Method::POST,
        "/api/simulations",
        &eve,
        Some(json!({"replay_of": id})),
    )
    .await;
    assert_eq!(st, 404);
}

/// A run that panics (fault injection) ends as failed with its reason, is counted under the
/// `runs` supervisor, and touches no other run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_panics_fails_alone_and_is_counted() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = signed_in(&s, "panic").await;
    let design: Value =
        serde_json::from_str(sdsim_engine::template("three_tier_web_app").unwrap()).unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (st, b) = call(
            &s,
            Method::POST,
            "/api/simulations",
            &ada,
            Some(json!({"design": design, "speed": 5})),
        )
        .await;
        assert_eq!(st, 201, "{b}");
        runs.push(b["simulation"]["id"].as_str().unwrap().to_string());
    }
    let sim_http = s.running.addrs(sdsim_protocols::Service::Simulation).http;
    let line = "sdsim_supervisor_restarts_total{child=\"run\",reason=\"panic\",service=\"simulation\",supervisor=\"runs\"}";
    let count = |text: String| {
        text.lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or_default()
    };
    let before = count(s.metrics(sim_http).await);
    let (st, b) = call(
        &s,
        Method::POST,
        &format!("/api/simulations/{}/fault", runs[0]),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let failed = settled(&s, &ada, &runs[0]).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("asked to panic"),
        "{failed}"
    );
    assert_eq!(count(s.metrics(sim_http).await), before + 1, "counted once");
    // The other run goes on, and can still be controlled.
    let other = format!("/api/simulations/{}", runs[1]);
    let (_, b) = call(&s, Method::GET, &other, &ada, None).await;
    assert_eq!(b["simulation"]["status"], "running", "{b}");
    let (st, _) = call(&s, Method::POST, &format!("{other}/stop"), &ada, None).await;
    assert_eq!(st, 202);
    assert_eq!(settled(&s, &ada, &runs[1]).await["status"], "stopped");
}
