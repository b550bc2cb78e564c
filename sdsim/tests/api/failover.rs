//! Two auth instances in their own processes behind a gateway; one is killed with SIGKILL
//! under steady load. With the default mesh and discovery settings no request fails at all:
//! the refused instance is ejected at once and calls go to the other. Discovery drops it, and
//! started again on the same address it is found again and serves.

use crate::helpers::*;
use sdsim_protocols::Service;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "a long enough password";

/// A metric's value on the gateway, summed over the lines that contain every `part`.
fn metric(m: &str, name: &str, parts: &[&str]) -> f64 {
    m.lines()
        .filter(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_instance_killed_under_load_is_routed_around_and_found_again() {
    let db = TestDb::create().await;
    let mut s = settings(&db);
    s.discovery.ttl_ms = 1_500;
    s.discovery.heartbeat_ms = 300;
    s.discovery.refresh_ms = 100;
    s.mesh.breaker.min_calls = 5;
    s.mesh.breaker.open_ms = 500;
    s.mesh.breaker.half_open_calls = 2;
    let logs =
        std::env::temp_dir().join(format!("sdsim-failover-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&logs).unwrap();

    // Auth A first (it migrates the database), then B.
    let a = ServiceProcess::spawn("auth", &s, free_addr(), free_addr(), &logs.join("a.log"));
    a.wait_healthy().await;
    let (b_grpc, b_http) = (free_addr(), free_addr());
    let mut b = ServiceProcess::spawn("auth", &s, b_grpc, b_http, &logs.join("b.log"));
    b.wait_healthy().await;
    // The gateway (with project and simulation) knows auth through discovery only.
    let gw = Stack::start(
        s.clone(),
        &[Service::Gateway, Service::Project, Service::Simulation],
    );
    gw.wait_ready().await;
    let gw_http = gw.running.addrs(Service::Gateway).http;
    let (a_addr, b_addr) = (a.grpc.to_string(), b_grpc.to_string());

    let email = unique_email("failover");
    gw.register(&email, PASSWORD).await;
    let token = gw.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Steady load: four clients reading the profile (ValidateToken + GetProfile) in a loop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (outcomes, clients) = profile_load(&gw.base, &token, stop.clone());
    // Both instances take calls.
    let start = Instant::now();
    loop {
        let m = gw.metrics(gw_http).await;
        let ok = |addr: &str| {
            metric(
                &m,
                "sdsim_circuit_breaker_calls_total",
                &[&format!("instance=\"{addr}\""), "outcome=\"success\""],
            )
        };
        if ok(&a_addr) > 20.0 && ok(&b_addr) > 20.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "both instances never took calls:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    b.sigkill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // After at most 2 s, nothing fails (in fact retries on A hide the loss from the start).
    let failed_late: Vec<(Duration, u16)> = outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, st)| *t > killed + Duration::from_secs(2) && *st != 200)
        .map(|(t, st)| (t.duration_since(killed), *st))
        .collect();
    assert!(
        failed_late.is_empty(),
        "requests failed 2 s after the kill: {failed_late:?}"
    );
    let served_late = outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, st)| *t > killed + Duration::from_secs(2) && *st == 200)
        .count();
    assert!(
        served_late > 50,
        "only {served_late} requests in the last second"
    );
    let failed_total = outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, st)| *t > killed && *st != 200)
        .count();
    eprintln!("requests failed after the kill: {failed_total}");

    // The dead instance was ejected at its first refused connection (no breaker needed to
    // see a certainty), and discovery dropped it (its TTL is 1.5 s).
    let mesh: serde_json::Value = gw.get_json(&gw.url("/admin/mesh")).await;
    let targets = mesh["services"]["auth"]["targets"].as_array().unwrap();
    let routable: Vec<String> = targets
        .iter()
        .filter(|t| t["routable"] == true)
        .map(|t| t["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(routable, vec![a_addr.clone()], "{mesh}");
    let dead = targets
        .iter()
        .find(|t| t["address"] == b_addr.as_str())
        .expect("the dead instance is remembered (forget_after_ms)");
    assert!(dead["refusals_in_a_row"].as_u64().unwrap() >= 1, "{dead}");
    let instances: serde_json::Value = gw.get_json(&gw.url("/admin/instances")).await;
    let auth_instances = instances["services"]["auth"].as_array().unwrap();
    assert_eq!(auth_instances.len(), 1, "{instances}");
    assert_eq!(auth_instances[0]["grpc_addr"], a_addr.as_str());

    // B comes back on the same address: found again (discovery), probed once its ejection
    // is over, and it serves again.
    let _b2 = ServiceProcess::spawn("auth", &s, b_grpc, b_http, &logs.join("b2.log"));
    let back = Instant::now();
    let served = |m: &str| {
        metric(
            m,
            "sdsim_circuit_breaker_calls_total",
            &[&format!("instance=\"{b_addr}\""), "outcome=\"success\""],
        )
    };
    let before = served(&gw.metrics(gw_http).await);
    loop {
        let m = gw.metrics(gw_http).await;
        if served(&m) > before + 20.0 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "B takes no calls after coming back:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mesh: serde_json::Value = gw.get_json(&gw.url("/admin/mesh")).await;
    let b_target = mesh["services"]["auth"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["address"] == b_addr.as_str())
        .cloned()
        .unwrap();
    assert_eq!(b_target["ejected"], false, "{b_target}");
    assert_eq!(b_target["breaker"]["state"], "closed", "{b_target}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let failed_after_recovery = outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, st)| *t > back && *st != 200)
        .count();
    assert_eq!(
        failed_after_recovery, 0,
        "requests failed while B came back"
    );
    let _ = std::fs::remove_dir_all(&logs);
}

/// What each request ended with: when, and its status (0 for a transport error).
type Outcomes = Arc<Mutex<Vec<(Instant, u16)>>>;

/// Four clients reading the profile through the gateway in a loop until `stop`; each
/// outcome is recorded.
fn profile_load(
    base: &str,
    token: &str,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Outcomes, Vec<tokio::task::JoinHandle<()>>) {
    let outcomes: Outcomes = Arc::default();
    let clients = (0..4)
        .map(|_| {
            let (base, token, outcomes, stop) = (
                base.to_string(),
                token.to_string(),
                outcomes.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let st = match http
                        .get(format!("{base}/api/auth/profile"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    outcomes.lock().unwrap().push((Instant::now(), st));
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    (outcomes, clients)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_default_settings_killing_one_of_two_auth_instances_fails_no_request() {
    let db = TestDb::create().await;
    let mut s = settings(&db);
    // The defaults a user runs with: no tuned breaker, discovery or mesh.
    s.mesh = sdsim_runtime::config::MeshSettings::default();
    s.discovery = sdsim_runtime::config::DiscoverySettings::default();
    let logs =
        std::env::temp_dir().join(format!("sdsim-failover-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&logs).unwrap();
    let a = ServiceProcess::spawn("auth", &s, free_addr(), free_addr(), &logs.join("a.log"));
    a.wait_healthy().await;
    let mut b = ServiceProcess::spawn("auth", &s, free_addr(), free_addr(), &logs.join("b.log"));
    b.wait_healthy().await;
    let gw = Stack::start(
        s.clone(),
        &[Service::Gateway, Service::Project, Service::Simulation],
    );
    gw.wait_ready().await;
    let gw_http = gw.running.addrs(Service::Gateway).http;
    let (a_addr, b_addr) = (a.grpc.to_string(), b.grpc.to_string());
    let email = unique_email("failover-defaults");
    gw.register(&email, PASSWORD).await;
    let token = gw.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (outcomes, clients) = profile_load(&gw.base, &token, stop.clone());
    // Both instances take calls (discovery found both).
    let start = Instant::now();
    loop {
        let m = gw.metrics(gw_http).await;
        let ok = |addr: &str| {
            metric(
                &m,
                "sdsim_circuit_breaker_calls_total",
                &[&format!("instance=\"{addr}\""), "outcome=\"success\""],
            )
        };
        if ok(&a_addr) > 20.0 && ok(&b_addr) > 20.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "both instances never took calls:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    b.sigkill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let all = outcomes.lock().unwrap().clone();
    let failed: Vec<(i128, u16)> = all
        .iter()
        .filter(|(_, st)| *st != 200)
        .map(|(t, st)| {
            let ms = if *t >= killed {
                t.duration_since(killed).as_millis() as i128
            } else {
                -(killed.duration_since(*t).as_millis() as i128)
            };
            (ms, *st)
        })
        .collect();
    let after_kill = all.iter().filter(|(t, _)| *t > killed).count();
    assert!(
        after_kill > 100,
        "only {after_kill} requests after the kill"
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed (ms after the kill, status): {failed:?}",
        failed.len(),
        all.len()
    );
    // The dead instance is out of rotation.
    let mesh: serde_json::Value = gw.get_json(&gw.url("/admin/mesh")).await;
    let dead = mesh["services"]["auth"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["address"] == b_addr.as_str())
        .cloned();
    if let Some(dead) = dead {
        assert!(
            dead["ejected"] == true || dead["routable"] == false,
            "{dead}"
        );
    }
    let _ = std::fs::remove_dir_all(&logs);
}
