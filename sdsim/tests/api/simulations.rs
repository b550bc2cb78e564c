//! Simulations through the gateway: checking a design before running it.

use crate::helpers::call as req;
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

/// The engine run offline as the service runs it: window by window (the design's window,
/// 1 s by default) with the same seed.
fn offline_report(design: &Value, seed: u64) -> Value {
    let d: sdsim_engine::Design = serde_json::from_value(design.clone()).unwrap();
    let window = d.window_s.unwrap_or(1.0);
    let mut sim = sdsim_engine::Simulation::new(&d, Some(seed)).unwrap();
    while !sim.is_finished() {
        sim.advance(window);
    }
    serde_json::to_value(sim.report()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_equals_the_offline_engine_run_of_the_same_design_and_seed() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = signed_in(&s, "runner").await;
    let design: Value =
        serde_json::from_str(sdsim_engine::template("read_heavy_api_with_cache").unwrap()).unwrap();

    // An inline design, as fast as it goes, with a seed past i64 (given back as given).
    let seed = u64::MAX - 6;
    let (st, b) = req(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"design": design, "seed": seed})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["simulation"]["seed"], json!(seed), "{b}");
    let id = b["simulation"]["id"].as_str().unwrap().to_string();
    let done = settled(&s, &ada, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"], 100);
    let (st, r) = req(
        &s,
        Method::GET,
        &format!("/api/simulations/{id}/results"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        r["report"],
        offline_report(&design, seed),
        "the service's report is the engine's"
    );

    // The same report as CSV: a header, a row per component, then end to end.
    let csv = s
        .authed(
            Method::GET,
            &format!("/api/simulations/{id}/results?format=csv"),
            &ada,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let report = &r["report"];
    let comps = report["components"].as_array().unwrap();
    assert_eq!(lines.len(), comps.len() + 2, "{text}");
    assert!(
        lines[0].starts_with("component,kind,arrivals,completions,drops"),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{},{},{},",
            comps[0]["name"].as_str().unwrap(),
            comps[0]["kind"].as_str().unwrap(),
            comps[0]["arrivals"]
        )),
        "{text}"
    );
    assert!(
        lines[lines.len() - 1].starts_with(&format!(
            "end_to_end,,{},{},",
            report["end_to_end"]["arrivals"], report["end_to_end"]["completions"]
        )),
        "{text}"
    );
    let (st, b) = req(
        &s,
        Method::GET,
        &format!("/api/simulations/{id}/results?format=xlsx"),
        &ada,
        None,
    )
    .await;
    assert_eq!((st, &b["error"]["field"]), (422, &json!("format")), "{b}");

    // A saved project, at its version 1: the same as the engine on that version's design.
    let (st, p) = req(
        &s,
        Method::POST,
        "/api/projects",
        &ada,
        Some(json!({"name": "Run me", "template_id": "three-tier-web-app"})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let pid = p["project"]["id"].as_str().unwrap();
    let (st, b) = req(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"project_id": pid, "version": 1, "seed": 3})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["simulation"]["project_id"], pid);
    let id = b["simulation"]["id"].as_str().unwrap().to_string();
    assert_eq!(settled(&s, &ada, &id).await["status"], "completed");
    let (_, r) = req(
        &s,
        Method::GET,
        &format!("/api/simulations/{id}/results"),
        &ada,
        None,
    )
    .await;
    assert_eq!(r["report"], offline_report(&p["project"]["design"], 3));

    // Not theirs: 404, like an unknown run; a project they cannot see: 404.
    let bob = signed_in(&s, "other").await;
    let (st, _) = req(
        &s,
        Method::GET,
        &format!("/api/simulations/{id}"),
        &bob,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = req(
        &s,
        Method::GET,
        &format!("/api/simulations/{}", uuid::Uuid::new_v4()),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = req(
        &s,
        Method::POST,
        "/api/simulations",
        &bob,
        Some(json!({"project_id": pid})),
    )
    .await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_run_stops_when_asked_and_bad_starts_are_named() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = signed_in(&s, "stopper").await;
    let design: Value =
        serde_json::from_str(sdsim_engine::template("three_tier_web_app").unwrap()).unwrap();
    // Real time: a 60 s design runs for a minute unless stopped.
    let (st, b) = req(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"design": design, "speed": 1})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let id = b["simulation"]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let (_, live) = req(
        &s,
        Method::GET,
        &format!("/api/simulations/{id}"),
        &ada,
        None,
    )
    .await;
    assert_eq!(live["simulation"]["status"], "running", "{live}");
    let at = live["simulation"]["simulated_seconds"].as_f64().unwrap();
    assert!((0.5..10.0).contains(&at), "paced at real time: {live}");
    let (st, _) = req(
        &s,
        Method::POST,
        &format!("/api/simulations/{id}/stop"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 202);
    let done = settled(&s, &ada, &id).await;
    assert_eq!(done["status"], "stopped", "{done}");
    let (st, r) = req(
        &s,
        Method::GET,
        &format!("/api/simulations/{id}/results"),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 200, "a stopped run keeps what it simulated");
    assert!(r["report"]["simulated_s"].as_f64().unwrap() < 60.0, "{r}");
    let (st, b) = req(
        &s,
        Method::POST,
        &format!("/api/simulations/{id}/stop"),
        &ada,
        None,
    )
    .await;
    assert_eq!(
        (st, &b["error"]["code"]),
        (409, &json!("not_running")),
        "{b}"
    );

    let mut broken = design.clone();
    broken["components"][0]["kind"] = json!("teleporter");
    for (body, field) in [
        (json!({"design": broken}), "design"),
        (json!({"design": design, "speed": -1}), "speed"),
        (json!({"design": design, "speed": 1e9}), "speed"),
        // So slow its pace would be past any duration (it panicked the run's thread).
        (json!({"design": design, "speed": 1e-30}), "speed"),
        (
            json!({"design": design, "window_seconds": 99999}),
            "window_seconds",
        ),
        (json!({}), "design"),
    ] {
        let (st, b) = req(
            &s,
            Method::POST,
            "/api/simulations",
            &ada,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (st, &b["error"]["field"]),
            (422, &json!(field)),
            "{body}: {b}"
        );
    }
    let (_, b) = req(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"design": broken})),
    )
    .await;
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("$.components[0]"),
        "{b}"
    );
    // A window override is held to the engine's limits like the design's own window: a
    // long design with a fine window would be millions of windows.
    let mut long = design.clone();
    long["duration_s"] = json!(1_000_000);
    long["window_s"] = json!(100);
    let (st, b) = req(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"design": long, "window_seconds": 0.01, "speed": 0})),
    )
    .await;
    assert_eq!((st, &b["error"]["field"]), (422, &json!("design")), "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("window_s"),
        "{b}"
    );
}

/// Pause holds the simulated clock, resume and a new speed carry on, and none of it changes
/// what the run computes: its report still equals the offline run of the same seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_pauses_resumes_and_changes_speed_without_changing_its_result() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = signed_in(&s, "pacer").await;
    let eve = signed_in(&s, "pacer-stranger").await;
    let design: Value =
        serde_json::from_str(sdsim_engine::template("three_tier_web_app").unwrap()).unwrap();
    let (st, b) = req(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"design": design, "speed": 1, "seed": 11})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let id = b["simulation"]["id"].as_str().unwrap().to_string();
    let at = |path: &str| format!("/api/simulations/{id}{path}");
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;

    let (st, b) = req(&s, Method::POST, &at("/pause"), &ada, None).await;
    assert_eq!(
        (st, &b["simulation"]["status"]),
        (200, &json!("paused")),
        "{b}"
    );
    // A window under way may still land; after that the clock stands still.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let (_, b1) = req(&s, Method::GET, &at(""), &ada, None).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let (_, b2) = req(&s, Method::GET, &at(""), &ada, None).await;
    assert_eq!(b2["simulation"]["status"], "paused", "{b2}");
    assert_eq!(
        b1["simulation"]["simulated_seconds"], b2["simulation"]["simulated_seconds"],
        "a paused run does not advance"
    );
    let held = b2["simulation"]["simulated_seconds"].as_f64().unwrap();
    assert!(held < 60.0, "{b2}");

    // Someone else's run does not exist for them; bad speeds are named.
    for path in ["/pause", "/resume"] {
        let (st, _) = req(&s, Method::POST, &at(path), &eve, None).await;
        assert_eq!(st, 404, "{path}");
    }
    let (st, _) = req(
        &s,
        Method::PUT,
        &at("/speed"),
        &eve,
        Some(json!({"speed": 5})),
    )
    .await;
    assert_eq!(st, 404);
    for body in [json!({"speed": -1}), json!({"speed": 1e9})] {
        let (st, b) = req(&s, Method::PUT, &at("/speed"), &ada, Some(body.clone())).await;
        assert_eq!(
            (st, &b["error"]["field"]),
            (422, &json!("speed")),
            "{body}: {b}"
        );
    }
    let (st, b) = req(
        &s,
        Method::PUT,
        &at("/speed"),
        &ada,
        Some(json!({"speed": "fast"})),
    )
    .await;
    assert_eq!(st, 422, "{b}");

    let (st, b) = req(&s, Method::DELETE, &at(""), &ada, None).await;
    assert_eq!(
        (st, &b["error"]["code"]),
        (409, &json!("still_running")),
        "{b}"
    );
    let (st, b) = req(&s, Method::POST, &at("/resume"), &ada, None).await;
    assert_eq!(
        (st, &b["simulation"]["status"]),
        (200, &json!("running")),
        "{b}"
    );
    // As fast as it goes: the remaining simulated minute takes far less than a minute.
    let (st, b) = req(
        &s,
        Method::PUT,
        &at("/speed"),
        &ada,
        Some(json!({"speed": 0})),
    )
    .await;
    assert_eq!((st, &b["simulation"]["speed"]), (200, &json!(0.0)), "{b}");
    let done = settled(&s, &ada, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let (st, r) = req(&s, Method::GET, &at("/results"), &ada, None).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["report"], offline_report(&design, 11));

    // A finished run cannot be paused, resumed or re-paced.
    for (method, path, body) in [
        (Method::POST, "/pause", None),
        (Method::POST, "/resume", None),
        (Method::PUT, "/speed", Some(json!({"speed": 2}))),
    ] {
        let (st, b) = req(&s, method, &at(path), &ada, body).await;
        assert_eq!(
            (st, &b["error"]["code"]),
            (409, &json!("not_running")),
            "{path}: {b}"
        );
    }

    // Deleted with its results: only by its owner, and once.
    let (st, _) = req(&s, Method::DELETE, &at(""), &eve, None).await;
    assert_eq!(st, 404);
    let (st, b) = req(&s, Method::DELETE, &at(""), &ada, None).await;
    assert_eq!(st, 204, "{b}");
    for path in ["", "/results"] {
        let (st, _) = req(&s, Method::GET, &at(path), &ada, None).await;
        assert_eq!(st, 404, "{path}");
    }
    let (st, _) = req(&s, Method::DELETE, &at(""), &ada, None).await;
    assert_eq!(st, 404);
}

/// Each user's runs, newest first, in pages that neither overlap nor skip; bad paging is
/// named; nobody sees anyone else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_history_is_paged_newest_first_and_private() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = signed_in(&s, "historian").await;
    let eve = signed_in(&s, "historian-stranger").await;
    let design: Value =
        serde_json::from_str(sdsim_engine::template("three_tier_web_app").unwrap()).unwrap();
    let mut started = Vec::new();
    for seed in [1, 2, 3] {
        let (st, b) = req(
            &s,
            Method::POST,
            "/api/simulations",
            &ada,
            Some(json!({"design": design, "seed": seed})),
        )
        .await;
        assert_eq!(st, 201, "{b}");
        started.push(b["simulation"]["id"].as_str().unwrap().to_string());
    }
    started.reverse();
    let (st, first) = req(&s, Method::GET, "/api/simulations?page_size=2", &ada, None).await;
    assert_eq!(st, 200, "{first}");
    let token = first["next_page_token"].as_str().expect("a next page");
    let (_, second) = req(
        &s,
        Method::GET,
        &format!("/api/simulations?page_size=2&page_token={token}"),
        &ada,
        None,
    )
    .await;
    assert!(second["next_page_token"].is_null(), "{second}");
    let ids: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|p| p["simulations"].as_array().unwrap().clone())
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, started, "newest first, each once");
    assert_eq!(first["simulations"][0]["seed"], 3, "{first}");

    let (_, theirs) = req(&s, Method::GET, "/api/simulations", &eve, None).await;
    assert_eq!(theirs["simulations"], json!([]), "{theirs}");
    let (st, none) = req(
        &s,
        Method::GET,
        &format!("/api/simulations?project_id={}", uuid::Uuid::new_v4()),
        &ada,
        None,
    )
    .await;
    assert_eq!(st, 404, "an unknown project: {none}");
    for (q, field) in [
        ("page_size=1000", "page_size"),
        ("page_token=garbage", "page_token"),
        ("project_id=seven", "project_id"),
        ("colour=red", "colour"),
    ] {
        let (st, b) = req(
            &s,
            Method::GET,
            &format!("/api/simulations?{q}"),
            &ada,
            None,
        )
        .await;
        assert_eq!((st, &b["error"]["field"]), (422, &json!(field)), "{q}: {b}");
    }
}

/// Who may do what with a run of a saved project: whoever may view the project watches it;
/// its starter and the project's owner and editors control it; a reader of a public project
/// who is not a member is refused (403); someone who cannot see the project sees no run (404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_watch_and_control_a_run_of_a_saved_project() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let mut tokens = Vec::new();
    let mut emails = Vec::new();
    for who in ["r-owner", "r-editor", "r-viewer", "r-reader"] {
        let email = unique_email(who);
        tokens.push(verified(&s, &email).await);
        emails.push(email);
    }
    let (owner, editor, viewer, reader) = (&tokens[0], &tokens[1], &tokens[2], &tokens[3]);
    let public = new_project(&s, owner, true).await;
    let private = new_project(&s, owner, false).await;
    for (email, role) in [(&emails[1], "editor"), (&emails[2], "viewer")] {
        let (st, b) = req(
            &s,
            Method::POST,
            &format!("/api/projects/{public}/shares"),
            owner,
            Some(json!({"email": email, "role": role})),
        )
        .await;
        assert_eq!(st, 200, "{b}");
    }
    // Anyone who may view the project may start a run of it; the reader too (it is public).
    let (st, run) = start_run(&s, viewer, &public).await;
    assert_eq!(st, 201);
    assert_eq!(start_run(&s, reader, &private).await.0, 404);
    let (st, hidden) = start_run(&s, owner, &private).await;
    assert_eq!(st, 201);

    // (what, method, path below the run, body, expected for owner, editor, viewer (the
    // starter), reader) on the running run of the public project.
    type Op = (&'static str, Method, &'static str, Option<Value>, [u16; 4]);
    let ops: Vec<Op> = vec![
        ("status", Method::GET, "", None, [200, 200, 200, 200]),
        ("pause", Method::POST, "/pause", None, [200, 200, 200, 403]),
        (
            "resume",
            Method::POST,
            "/resume",
            None,
            [200, 200, 200, 403],
        ),
        (
            "speed",
            Method::PUT,
            "/speed",
            Some(json!({"speed": 2})),
            [200, 200, 200, 403],
        ),
        (
            "delete while live",
            Method::DELETE,
            "",
            None,
            [409, 409, 409, 403],
        ),
    ];
    for (what, method, path, body, expected) in ops {
        for (i, token) in tokens.iter().enumerate() {
            let (st, b) = req(
                &s,
                method.clone(),
                &format!("/api/simulations/{run}{path}"),
                token,
                body.clone(),
            )
            .await;
            assert_eq!(st, expected[i], "{what} by user {i}: {b}");
        }
    }
    // The private project's run: only its owner's; the others cannot see it.
    for token in [editor, viewer, reader] {
        for (method, path) in [(Method::GET, ""), (Method::POST, "/pause")] {
            let (st, _) = req(
                &s,
                method,
                &format!("/api/simulations/{hidden}{path}"),
                token,
                None,
            )
            .await;
            assert_eq!(st, 404, "{path}");
        }
    }
    // An editor stops the viewer's run; the reader may then read its results but not
    // delete it; the editor may.
    let (st, _) = req(
        &s,
        Method::POST,
        &format!("/api/simulations/{run}/stop"),
        editor,
        None,
    )
    .await;
    assert_eq!(st, 202);
    let (st, _) = req(
        &s,
        Method::POST,
        &format!("/api/simulations/{hidden}/stop"),
        owner,
        None,
    )
    .await;
    assert_eq!(st, 202);
    let done = settled(&s, viewer, &run).await;
    assert_eq!(done["status"], "stopped", "{done}");
    let (st, r) = req(
        &s,
        Method::GET,
        &format!("/api/simulations/{run}/results"),
        reader,
        None,
    )
    .await;
    assert_eq!(st, 200, "{r}");
    // A project's run history is everyone's who may view it, whoever started the runs; a
    // project someone cannot see has none for them.
    for who in [owner, editor, viewer, reader] {
        let (st, h) = req(
            &s,
            Method::GET,
            &format!("/api/simulations?project_id={public}"),
            who,
            None,
        )
        .await;
        assert_eq!(st, 200, "{h}");
        let ids: Vec<&str> = h["simulations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [run.as_str()], "{h}");
    }
    let (st, _) = req(
        &s,
        Method::GET,
        &format!("/api/simulations?project_id={private}"),
        reader,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = req(
        &s,
        Method::DELETE,
        &format!("/api/simulations/{run}"),
        reader,
        None,
    )
    .await;
    assert_eq!(st, 403);
    // Its starter keeps a run only while they may see its project: made private and no longer
    // shared with the viewer who started it, the run is gone for them (and for the reader),
    // not only for others; the owner and the editor still have it.
    let (st, b) = req(
        &s,
        Method::PATCH,
        &format!("/api/projects/{public}"),
        owner,
        Some(json!({"is_public": false})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = req(
        &s,
        Method::DELETE,
        &format!("/api/projects/{public}/shares?email={}", emails[2]),
        owner,
        None,
    )
    .await;
    assert!(st == 200 || st == 204, "unshare: {st} {b}");
    for (who, token, expected) in [
        ("the starter", viewer, 404),
        ("the reader", reader, 404),
        ("the owner", owner, 200),
        ("the editor", editor, 200),
    ] {
        for path in ["", "/results"] {
            let (st, b) = req(
                &s,
                Method::GET,
                &format!("/api/simulations/{run}{path}"),
                token,
                None,
            )
            .await;
            assert_eq!(st, expected, "GET {path} by {who}: {b}");
        }
    }
    let (st, _) = req(
        &s,
        Method::POST,
        "/api/simulations",
        viewer,
        Some(json!({"replay_of": run})),
    )
    .await;
    assert_eq!(st, 404, "a replay by the starter who lost the project");
    let (st, h) = req(&s, Method::GET, "/api/simulations", viewer, None).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(
        h["simulations"],
        json!([]),
        "nor is it in their own runs: {h}"
    );
    let (st, _) = req(
        &s,
        Method::DELETE,
        &format!("/api/simulations/{run}"),
        editor,
        None,
    )
    .await;
    assert_eq!(st, 204);
}

async fn new_project(s: &Stack, owner: &str, public: bool) -> String {
    let body = json!({"name": "Runs", "template_id": "three-tier-web-app", "is_public": public});
    let (st, p) = req(s, Method::POST, "/api/projects", owner, Some(body)).await;
    assert_eq!(st, 201, "{p}");
    p["project"]["id"].as_str().unwrap().to_string()
}

/// Starts a real-time run of a saved project; its status and id.
async fn start_run(s: &Stack, token: &str, project: &str) -> (u16, String) {
    let body = json!({"project_id": project, "speed": 1});
    let (st, b) = req(s, Method::POST, "/api/simulations", token, Some(body)).await;
    (
        st,
        b["simulation"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// A long run's series is read back in pages at its end and downsampled as one: 5,000
/// windows of 14 series (more than one page of stored windows) keep 1,000 points each,
/// and their counts add up to the report's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_runs_series_is_stored_downsampled_in_pages() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = signed_in(&s, "series").await;
    let mut components = vec![json!({"name": "users", "kind": "client",
                                      "traffic": {"type": "open", "rate": 20}})];
    let mut connections = Vec::new();
    for i in 0..12 {
        components.push(json!({"name": format!("s{i}"), "kind": "service"}));
        let from = if i == 0 {
            "users".to_string()
        } else {
            format!("s{}", i - 1)
        };
        connections.push(json!({"from": from, "to": format!("s{i}")}));
    }
    let design = json!({"name": "long", "duration_s": 50, "window_s": 0.01,
                        "components": components, "connections": connections});
    let (st, b) = req(
        &s,
        Method::POST,
        "/api/simulations",
        &ada,
        Some(json!({"design": design, "seed": 2})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let id = b["simulation"]["id"].as_str().unwrap().to_string();
    assert_eq!(settled(&s, &ada, &id).await["status"], "completed");
    let (_, r) = req(
        &s,
        Method::GET,
        &format!("/api/simulations/{id}/results"),
        &ada,
        None,
    )
    .await;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Sums {
        #[diesel(sql_type = diesel::sql_types::Text)]
        component_id: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        points: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        arrivals: i64,
    }
    let mut pg = AsyncPgConnection::establish(&db.url).await.unwrap();
    let sums: Vec<Sums> = diesel::sql_query(format!(
        "SELECT component_id, count(*) AS points, sum(arrivals)::int8 AS arrivals \
         FROM simulation_schema.performance_metrics WHERE simulation_id = '{id}' \
         GROUP BY component_id ORDER BY component_id"
    ))
    .load(&mut pg)
    .await
    .unwrap();
    assert_eq!(sums.len(), 14, "the client, 12 services and end to end");
    assert!(
        sums.iter().all(|x| x.points == 1_000),
        "5,000 windows in 1,000 buckets"
    );
    let e2e = sums.iter().find(|x| x.component_id.is_empty()).unwrap();
    assert_eq!(json!(e2e.arrivals), r["report"]["end_to_end"]["arrivals"]);
    let last = sums.iter().find(|x| x.component_id == "s11").unwrap();
    let reported = r["report"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "s11")
        .unwrap();
    assert_eq!(json!(last.arrivals), reported["arrivals"]);
}
