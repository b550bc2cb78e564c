//! Live runs on `/ws/simulation/{id}`: every window once to every watcher, on any gateway
//! instance, equal to the offline run's windows; resumed with `since`, also once the
//! stream has expired; strangers and unknown runs closed with 4004; a slow watcher cut off
//! (4008) while the others keep receiving.

use crate::helpers::*;
use reqwest::Method;
use sdsim_protocols::Service;
use serde_json::{json, Value};
use std::time::Duration;

/// A short design: `duration` simulated seconds in windows of `window` seconds.
fn design(duration: f64, window: f64) -> Value {
    let mut d: Value =
        serde_json::from_str(sdsim_engine::template("read_heavy_api_with_cache").unwrap()).unwrap();
    d["duration_s"] = json!(duration);
    d["window_s"] = json!(window);
    d
}

async fn start(s: &Stack, token: &str, design: &Value, seed: u64, speed: f64) -> String {
    let r = s
        .authed(Method::POST, "/api/simulations", token)
        .json(&json!({"design": design, "seed": seed, "speed": speed}))
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let b: Value = r.json().await.unwrap();
    assert_eq!(st, 201, "{b}");
    b["simulation"]["id"].as_str().unwrap().to_string()
}

async fn watch(ws_base: &str, run: &str, token: &str, since: Option<&str>) -> Ws {
    let url = match since {
        Some(s) => format!("{ws_base}/ws/simulation/{run}?since={s}"),
        None => format!("{ws_base}/ws/simulation/{run}"),
    };
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connect");
    let mut ws = Ws { socket };
    ws.authenticate(token).await;
    ws
}

/// Every frame until the server closes; the close code.
async fn drain(ws: &mut Ws, within: Duration) -> (Vec<Value>, Option<u16>) {
    let mut frames = Vec::new();
    loop {
        match ws.next(within).await {
            Next::Frame(f) => frames.push(f),
            Next::Closed(code, _) => return (frames, code),
            Next::Timeout => panic!("no end after {} frames", frames.len()),
        }
    }
}

/// The windows `sdsim sim run --windows --json` prints for the design and seed.
fn offline_windows(design: &Value, seed: u64) -> Vec<Value> {
    let path =
        std::env::temp_dir().join(format!("sdsim-live-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, design.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sdsim"))
        .args(["sim", "run", "--json", "--windows", "--seed"])
        .arg(seed.to_string())
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["windows"].as_array().unwrap().clone()
}

/// Asserts `frames` are windows `from..=to` in order, once each, then the end.
fn assert_windows(frames: &[Value], from: u64, to: u64, offline: &[Value], run: &str) {
    let (end, windows) = frames.split_last().expect("frames");
    assert_eq!(windows.len() as u64, to + 1 - from, "window count");
    for (f, n) in windows.iter().zip(from..) {
        assert_eq!(f["type"], "simulation.window", "{f}");
        assert_eq!(f["channel"], format!("simulation:stream:{run}"));
        assert_eq!(
            f["offset"],
            format!("{n}-0"),
            "offsets in order, none missed"
        );
        assert_eq!(
            f["data"],
            offline[(n - 1) as usize],
            "window {n} equals the offline one"
        );
    }
    assert_eq!(end["type"], "simulation.completed", "{end}");
    assert_eq!(end["offset"], format!("{}-0", offline.len() + 1));
    assert_eq!(end["data"]["windows"], offline.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_on_two_gateways_see_every_window_once_and_resume_with_since() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    // Finished streams expire fast here, so the resume from stored windows is seen.
    settings.simulation.stream_ttl_seconds = 2;
    settings.simulation.stream_maxlen = 10;
    settings.simulation.store_every_ms = 50;
    let s = Stack::start(settings.clone(), &Service::ALL);
    s.wait_ready().await;
    // A second gateway instance over the same PostgreSQL, Redis and backends.
    let mut second = settings.clone();
    *second.listen_mut(Service::Gateway) = sdsim_runtime::config::Listen::any();
    let g2 = Stack::start(second, &[Service::Gateway]);
    g2.wait_ready().await;

    let ada = signed_in(&s, "watcher").await;
    let (seed, d) = (11, design(30.0, 0.5));
    let offline = offline_windows(&d, seed);
    assert_eq!(offline.len(), 60);
    // The lifecycle on `simulation:events:*`, listened to from before the start.
    let mut events = redis::Client::open(redis_url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    events
        .psubscribe(format!("{}simulation:events:*", settings.redis.prefix))
        .await
        .unwrap();
    // 60 windows at 5x: about 6 s, so the run is still live when the feeds are counted.
    let run = start(&s, &ada, &d, seed, 5.0).await;

    let mut a = watch(&s.ws_base, &run, &ada, None).await;
    // A watcher that drops after 5 windows and comes back with `since` while the run is
    // live: exactly windows 6.., live.
    let mut e = watch(&s.ws_base, &run, &ada, None).await;
    let mut fe = Vec::new();
    while fe.len() < 5 {
        fe.push(e.frame(Duration::from_secs(10)).await);
    }
    drop(e);
    let mut e = watch(&s.ws_base, &run, &ada, Some("5-0")).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // Joins mid-run on the other instance: the windows so far, then the live ones.
    let mut b = watch(&g2.ws_base, &run, &ada, None).await;
    // One Redis read loop per watched run per gateway, whatever its watchers (two here).
    for (gateway, stack) in [("first", &s), ("second", &g2)] {
        let mut feeds = 0;
        for _ in 0..50 {
            let page = stack
                .metrics(stack.running.addrs(Service::Gateway).http)
                .await;
            feeds = page
                .lines()
                .find_map(|l| l.strip_prefix("sdsim_live_feeds "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1);
            assert!(
                feeds <= 1,
                "the {gateway} gateway reads the run {feeds} times"
            );
            if feeds == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(feeds, 1, "the {gateway} gateway reads the run once");
    }
    let ((fa, ca), (fb, cb), (rest_e, ce)) = tokio::join!(
        drain(&mut a, Duration::from_secs(30)),
        drain(&mut b, Duration::from_secs(30)),
        drain(&mut e, Duration::from_secs(30))
    );
    assert_eq!(
        (ca, cb, ce),
        (Some(1000), Some(1000), Some(1000)),
        "closed once the run ended"
    );
    assert_windows(&fa, 1, 60, &offline, &run);
    assert_windows(&fb, 1, 60, &offline, &run);
    assert_eq!(fe[..], fa[..5], "the first 5 windows before the drop");
    assert_windows(&rest_e, 6, 60, &offline, &run);
    // Started and completed were announced, once each.
    let mut seen = Vec::new();
    {
        use futures_util::StreamExt;
        let mut stream = events.on_message();
        while seen.len() < 2 {
            let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await
            else {
                break;
            };
            let v: Value = serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
            if v["simulation_id"] == run.as_str() {
                seen.push((msg.get_channel_name().to_string(), v["status"].clone()));
            }
        }
    }
    let p = &settings.redis.prefix;
    assert_eq!(
        seen,
        [
            (format!("{p}simulation:events:started"), json!("started")),
            (
                format!("{p}simulation:events:completed"),
                json!("completed")
            ),
        ]
    );

    // Resuming after offset 41: exactly windows 42.., from the stream (only 10 entries kept
    // live: the rest comes from the stored windows).
    let mut c = watch(&g2.ws_base, &run, &ada, Some("41-0")).await;
    let (fc, _) = drain(&mut c, Duration::from_secs(10)).await;
    assert_windows(&fc, 42, 60, &offline, &run);
    let mut c = watch(&s.ws_base, &run, &ada, Some("7-0")).await;
    let (fc7, _) = drain(&mut c, Duration::from_secs(10)).await;
    assert_windows(&fc7, 8, 60, &offline, &run);
    assert_eq!(fc7[41 - 7..], fa[41..], "the same bytes as the live frames");

    // Once the stream has expired, the same from PostgreSQL, the `since` in the auth frame.
    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{}simulation:stream:{run}", settings.redis.prefix);
    let mut gone = false;
    for _ in 0..100 {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        if exists == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the finished run's stream expires");
    let (socket, _) =
        tokio_tungstenite::connect_async(format!("{}/ws/simulation/{run}", s.ws_base))
            .await
            .unwrap();
    let mut d = Ws { socket };
    d.send(json!({"type": "auth", "token": ada, "since": "41-0"}))
        .await;
    assert_eq!(d.frame(Duration::from_secs(5)).await["type"], "auth_ok");
    let (fd, code) = drain(&mut d, Duration::from_secs(10)).await;
    assert_eq!(code, Some(1000));
    assert_eq!(
        fd, fc,
        "after expiry: the same frames, from the stored windows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_unknown_runs_get_4004_and_a_slow_watcher_is_cut_off_alone() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    // Room for a reader that keeps up with a run at full speed, not for one that stopped.
    settings.gateway.ws_max_pending_frames = 1_024;
    settings.gateway.ws_max_pending_bytes = 2 << 20;
    // The reader that stopped answers no ping: under a loaded machine the run may outlast
    // the default 30 s, which would drop it silently before it reads its 4008.
    settings.gateway.ws_client_timeout_ms = 300_000;
    let s = Stack::start(settings, &Service::ALL);
    s.wait_ready().await;
    let ada = signed_in(&s, "owner").await;
    let eve = signed_in(&s, "stranger").await;
    // Long enough to flood a socket: 8,000 windows of about 2 KB.
    let d = design(400.0, 0.05);
    let run = start(&s, &ada, &d, 5, 1.0).await;

    // Someone else's run, an unknown one and a malformed id look the same: 4004.
    for (id, token) in [
        (run.as_str(), eve.as_str()),
        ("5f0c6c3e-1d7b-4b8e-9a57-3d2f7c1e9b11", ada.as_str()),
        ("not-a-run", ada.as_str()),
    ] {
        let (socket, _) =
            tokio_tungstenite::connect_async(format!("{}/ws/simulation/{id}", s.ws_base))
                .await
                .unwrap();
        let mut w = Ws { socket };
        w.send(json!({"type": "auth", "token": token})).await;
        w.expect_close(4004, Duration::from_secs(5)).await;
    }
    // A since that is no offset: 1008 naming it.
    let (socket, _) = tokio_tungstenite::connect_async(format!(
        "{}/ws/simulation/{run}?since=yesterday",
        s.ws_base
    ))
    .await
    .unwrap();
    let mut w = Ws { socket };
    w.send(json!({"type": "auth", "token": ada})).await;
    let reason = w.expect_close(1008, Duration::from_secs(5)).await;
    assert!(reason.contains("since"), "{reason}");
    // A since past the run's newest entry, or past any offset, is refused the same way. Let
    // in first, it would start the run's feed on this gateway at that offset, and the two
    // watchers below would wait there with it for entries that do not exist.
    for since in ["999999-0", "18446744073709551615"] {
        let (socket, _) = tokio_tungstenite::connect_async(format!(
            "{}/ws/simulation/{run}?since={since}",
            s.ws_base
        ))
        .await
        .unwrap();
        let mut w = Ws { socket };
        w.send(json!({"type": "auth", "token": ada})).await;
        // (An offset that parses is signed in first, then compared with the stream.)
        let reason = loop {
            match w.next(Duration::from_secs(5)).await {
                Next::Frame(f) if f["type"] == "auth_ok" => continue,
                Next::Closed(Some(1008), reason) => break reason,
                other => panic!("since={since}: expected close 1008, got {other:?}"),
            }
        };
        assert!(reason.contains("since"), "{since}: {reason}");
    }

    // Two watchers join; one stops reading. Then the run goes as fast as it can.
    let mut fast = watch(&s.ws_base, &run, &ada, None).await;
    let mut slow = {
        // A small receive buffer, so the kernel does not hold the whole run for it.
        let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let tcp = sock.connect(addr).await.unwrap();
        let (socket, _) = tokio_tungstenite::client_async(
            format!("{}/ws/simulation/{run}", s.ws_base),
            tokio_tungstenite::MaybeTlsStream::Plain(tcp),
        )
        .await
        .unwrap();
        let mut w = Ws { socket };
        w.authenticate(&ada).await;
        w
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = s
        .authed(Method::PUT, &format!("/api/simulations/{run}/speed"), &ada)
        .json(&json!({"speed": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (frames, code) = drain(&mut fast, Duration::from_secs(60)).await;
    assert_eq!(code, Some(1000), "the reader gets to the end");
    let (last, windows) = frames.split_last().unwrap();
    assert_eq!(last["type"], "simulation.completed");
    assert_eq!(windows.len(), 8_000, "every window, none dropped");
    for (f, n) in windows.iter().zip(1..) {
        assert_eq!(f["offset"], format!("{n}-0"));
    }
    // The one that did not read was cut off with 4008 somewhere before the end.
    let (got, code) = drain(&mut slow, Duration::from_secs(30)).await;
    assert_eq!(code, Some(4008), "after {} frames", got.len());
    assert!(got.len() < 8_000, "{}", got.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_share_closes_that_persons_watch_of_the_projects_runs() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let owner = signed_in(&s, "owner").await;
    let (viewer_email, other_email) = (unique_email("viewer"), unique_email("other"));
    let mut tokens = Vec::new();
    for email in [&viewer_email, &other_email] {
        tokens.push(verified(&s, email).await);
    }
    let (viewer, other) = (&tokens[0], &tokens[1]);
    let r = s
        .authed(Method::POST, "/api/projects", &owner)
        .json(&json!({"name": "Watched", "template_id": "three-tier-web-app", "is_public": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let project = r.json::<Value>().await.unwrap()["project"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for email in [&viewer_email, &other_email] {
        let r = s
            .authed(
                Method::POST,
                &format!("/api/projects/{project}/shares"),
                &owner,
            )
            .json(&json!({"email": email, "role": "viewer"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A real-time run of the saved project, watched by both viewers.
    let r = s
        .authed(Method::POST, "/api/simulations", &owner)
        .json(&json!({"project_id": project, "speed": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let run = r.json::<Value>().await.unwrap()["simulation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut v = watch(&s.ws_base, &run, viewer, None).await;
    let mut o = watch(&s.ws_base, &run, other, None).await;
    // And by someone it is not shared with, while it is public.
    let reader = signed_in(&s, "reader").await;
    let mut p = watch(&s.ws_base, &run, &reader, None).await;
    assert_eq!(
        v.frame(Duration::from_secs(5)).await["type"],
        "simulation.window"
    );
    assert_eq!(
        p.frame(Duration::from_secs(5)).await["type"],
        "simulation.window"
    );
    // Made private: the public reader's watch closes with 4004; the shared viewers' stay.
    let r = s
        .authed(Method::PATCH, &format!("/api/projects/{project}"), &owner)
        .json(&json!({"is_public": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let closed = loop {
        match p.next(Duration::from_secs(5)).await {
            Next::Frame(f) => assert_eq!(f["type"], "simulation.window"),
            Next::Closed(code, _) => break code,
            Next::Timeout => panic!("the public reader's watch stayed open"),
        }
    };
    assert_eq!(closed, Some(4004));

    let r = s
        .authed(
            Method::DELETE,
            &format!("/api/projects/{project}/shares?email={viewer_email}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Their watch closes with 4004 (after the frames already on their way).
    let closed = loop {
        match v.next(Duration::from_secs(5)).await {
            Next::Frame(f) => assert_eq!(f["type"], "simulation.window"),
            Next::Closed(code, _) => break code,
            Next::Timeout => panic!("the revoked watch stayed open"),
        }
    };
    assert_eq!(closed, Some(4004));
    // And a new one is refused; the other viewer keeps watching.
    let (socket, _) =
        tokio_tungstenite::connect_async(format!("{}/ws/simulation/{run}", s.ws_base))
            .await
            .unwrap();
    let mut again = Ws { socket };
    again.send(json!({"type": "auth", "token": viewer})).await;
    again.expect_close(4004, Duration::from_secs(5)).await;
    for _ in 0..2 {
        assert_eq!(
            o.frame(Duration::from_secs(5)).await["type"],
            "simulation.window"
        );
    }
    let r = s
        .authed(
            Method::POST,
            &format!("/api/simulations/{run}/stop"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "stopping is asked for");
    let (frames, code) = drain(&mut o, Duration::from_secs(10)).await;
    assert_eq!(code, Some(1000));
    assert_eq!(frames.last().unwrap()["type"], "simulation.stopped");
}

#[derive(diesel::QueryableByName)]
struct Owner {
    #[diesel(sql_type = diesel::sql_types::Text)]
    owner: String,
}

/// The process running a watched run (with chaos injected into it) is killed with SIGKILL:
/// the other simulation instance takes the run over within 2 s (default lease), re-simulates
/// it to the last window streamed and goes on; each of two watchers sees every window once,
/// and the report equals, byte for byte, that of a replay that never stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_process_dies_goes_on_on_another_instance() {
    use diesel_async::{AsyncConnection, AsyncPgConnection};
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    // The second watcher is read only once the run is over (the first is read up to the
    // kill, then the takeover is awaited): it answers no ping until then, which under the
    // test default (3 s) can drop it with 1001 before it reads its frames (CI saw it).
    settings.gateway.ws_client_timeout_ms = 60_000;
    let logs = std::env::temp_dir().join(format!("sdsim-lease-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&logs).unwrap();
    // The default lease (1.5 s): the bound below is the one a user gets.
    let mut sims: Vec<ServiceProcess> = ["a", "b"]
        .iter()
        .map(|n| {
            ServiceProcess::spawn_with(
                "simulation",
                &settings,
                free_addr(),
                free_addr(),
                &logs.join(format!("{n}.log")),
                &[],
            )
        })
        .collect();
    for p in &sims {
        p.wait_healthy().await;
    }
    let s = Stack::start(
        settings.clone(),
        &[Service::Gateway, Service::Auth, Service::Project],
    );
    s.wait_ready().await;
    let ada = signed_in(&s, "survivor").await;
    // 120 windows at 10x: about 6 s.
    let run = start(&s, &ada, &design(60.0, 0.5), 3, 10.0).await;
    let mut w = watch(&s.ws_base, &run, &ada, None).await;
    let mut w2 = watch(&s.ws_base, &run, &ada, None).await;
    chaos(&s, &ada, &run).await;
    let mut got = Vec::new();
    while got.len() < 30 {
        got.push(w.frame(Duration::from_secs(10)).await);
    }
    // Kill the instance that runs it.
    let mut pg = AsyncPgConnection::establish(&db.url).await.unwrap();
    let holder = owner_of(&mut pg, &run).await;
    let mut ids = Vec::new();
    for p in &sims {
        ids.push(instance_of(&s, p).await);
    }
    let victim = ids
        .iter()
        .position(|id| *id == holder)
        .expect("one of the two runs it");
    sims[victim].sigkill();
    let killed = std::time::Instant::now();
    loop {
        if owner_of(&mut pg, &run).await != holder {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(2),
            "not taken over within 2 s of the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("taken over {:?} after the kill", killed.elapsed());

    let ((rest, code), (all2, code2)) = tokio::join!(
        drain(&mut w, Duration::from_secs(30)),
        drain(&mut w2, Duration::from_secs(30))
    );
    got.extend(rest);
    assert_eq!((code, code2), (Some(1000), Some(1000)));
    assert_eq!(all2, got, "both watchers saw the same frames");
    let (end, windows) = got.split_last().unwrap();
    assert_eq!(end["type"], "simulation.completed", "{end}");
    assert_eq!(windows.len(), 120, "every window");
    for (f, n) in windows.iter().zip(1..) {
        assert_eq!(f["offset"], format!("{n}-0"), "every window once, in order");
    }
    same_as_replay(&s, &ada, &run, windows).await;
    drop(sims);
    let _ = std::fs::remove_dir_all(&logs);
}

/// Injects a crash of the database (before a kill: a replay must apply it too).
async fn chaos(s: &Stack, token: &str, run: &str) {
    let crash = json!({"type": "crash", "component": "database", "duration_s": 4});
    let r = s
        .authed(
            Method::POST,
            &format!("/api/simulations/{run}/chaos"),
            token,
        )
        .json(&crash)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

async fn owner_of(pg: &mut diesel_async::AsyncPgConnection, run: &str) -> String {
    use diesel_async::RunQueryDsl;
    let rows: Vec<Owner> = diesel::sql_query(format!(
        "SELECT owner_instance AS owner FROM simulation_schema.simulations WHERE id = '{run}'"
    ))
    .load(pg)
    .await
    .unwrap();
    rows[0].owner.clone()
}

async fn instance_of(s: &Stack, p: &ServiceProcess) -> String {
    let v: Value = s
        .http
        .get(format!("http://{}/health", p.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["instance_id"].as_str().unwrap().to_string()
}

/// A replay of `run` that never stopped gives the same windows, and the same report byte
/// for byte (as served: the raw text of the results' `report`).
async fn same_as_replay(s: &Stack, token: &str, run: &str, windows: &[Value]) {
    let r = s
        .authed(Method::POST, "/api/simulations", token)
        .json(&json!({"replay_of": run, "speed": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let replay = r.json::<Value>().await.unwrap()["simulation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rw = watch(&s.ws_base, &replay, token, None).await;
    let (again, _) = drain(&mut rw, Duration::from_secs(30)).await;
    let data = |frames: &[Value]| frames.iter().map(|f| f["data"].clone()).collect::<Vec<_>>();
    assert_eq!(
        data(&again[..windows.len()]),
        data(windows),
        "the same windows"
    );
    #[derive(serde::Deserialize)]
    struct Results {
        status: String,
        report: Box<serde_json::value::RawValue>,
    }
    let mut reports = Vec::new();
    for id in [run, replay.as_str()] {
        let r = s.authed(
            Method::GET,
            &format!("/api/simulations/{id}/results"),
            token,
        );
        let body = r.send().await.unwrap().text().await.unwrap();
        let results: Results = serde_json::from_str(&body).unwrap();
        assert_eq!(results.status, "completed");
        reports.push(results.report.get().to_string());
    }
    assert!(reports[0].len() > 100, "a report: {}", reports[0]);
    assert_eq!(reports[0], reports[1], "byte for byte");
}

/// The stream entries of run `id` and who wrote each.
async fn writers(prefix: &str, id: &str) -> Vec<(u64, String)> {
    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let r: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{prefix}simulation:stream:{id}"))
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    r.ids
        .iter()
        .filter(|e| e.get::<String>("type").as_deref() == Some("simulation.window"))
        .map(|e| {
            (
                e.id.split('-').next().unwrap().parse().unwrap(),
                e.get::<String>("by").unwrap_or_default(),
            )
        })
        .collect()
}

/// A holder stalled past its lease (SIGSTOP) loses its run to the other instance and, once
/// it runs again (SIGCONT), publishes not a single window more; a lone instance killed and
/// started again (a new process) goes on with the run it had (chaos injected before the
/// kill, the report a replay's byte for byte); and a run that cannot resume (its stored
/// design no longer validates, as after an engine change) ends as failed with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_holder_is_fenced_out_and_a_restarted_instance_resumes() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let db = TestDb::create().await;
    let settings = settings(&db);
    let logs = std::env::temp_dir().join(format!("sdsim-fence-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&logs).unwrap();
    let lease = [("SDSIM_SIMULATION__LEASE_MS", "600")];
    let spawn = |name: &str| {
        ServiceProcess::spawn_with(
            "simulation",
            &settings,
            free_addr(),
            free_addr(),
            &logs.join(format!("{name}.log")),
            &lease,
        )
    };
    let mut sims = vec![spawn("a"), spawn("b")];
    for p in &sims {
        p.wait_healthy().await;
    }
    let s = Stack::start(
        settings.clone(),
        &[Service::Gateway, Service::Auth, Service::Project],
    );
    s.wait_ready().await;
    let ada = signed_in(&s, "stalled").await;
    let mut pg = AsyncPgConnection::establish(&db.url).await.unwrap();

    let run = start(&s, &ada, &design(60.0, 0.5), 8, 10.0).await;
    let mut w = watch(&s.ws_base, &run, &ada, None).await;
    let mut got = Vec::new();
    while got.len() < 20 {
        got.push(w.frame(Duration::from_secs(10)).await);
    }
    let old = owner_of(&mut pg, &run).await;
    let holder = if instance_of(&s, &sims[0]).await == old {
        0
    } else {
        1
    };
    let pid = sims[holder].child.id() as i32;
    // SAFETY: a signal to a child process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let mut taken = false;
    for _ in 0..100 {
        if owner_of(&mut pg, &run).await != old {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(taken, "the other instance takes the run over");
    // The stalled holder cannot write now: what it wrote so far is all it may ever write.
    let before: Vec<u64> = writers(&settings.redis.prefix, &run)
        .await
        .into_iter()
        .filter(|(_, who)| *who == old)
        .map(|(n, _)| n)
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let (rest, code) = drain(&mut w, Duration::from_secs(30)).await;
    got.extend(rest);
    assert_eq!(code, Some(1000));
    let (end, windows) = got.split_last().unwrap();
    assert_eq!(end["type"], "simulation.completed", "{end}");
    assert_eq!(windows.len(), 120);
    for (f, n) in windows.iter().zip(1..) {
        assert_eq!(f["offset"], format!("{n}-0"), "every window once, in order");
    }
    let by = writers(&settings.redis.prefix, &run).await;
    assert_eq!(by.len(), 120);
    let after: Vec<u64> = by
        .iter()
        .filter(|(_, who)| *who == old)
        .map(|(n, _)| *n)
        .collect();
    assert!(before.len() >= 20, "the holder wrote the first windows");
    assert_eq!(after, before, "the old holder published after the takeover");
    assert!(
        by.iter().any(|(_, who)| *who != old),
        "the new owner wrote the rest"
    );

    // One instance left (the other killed), killed and started again: its run goes on,
    // with the chaos injected before the kill.
    sims.remove(holder).sigkill();
    let run = start(&s, &ada, &design(30.0, 0.5), 9, 10.0).await;
    let mut w = watch(&s.ws_base, &run, &ada, None).await;
    chaos(&s, &ada, &run).await;
    let mut got = Vec::new();
    while got.len() < 10 {
        got.push(w.frame(Duration::from_secs(10)).await);
    }
    sims.pop().unwrap().sigkill();
    let mut again = spawn("c");
    again.wait_healthy().await;
    let (rest, code) = drain(&mut w, Duration::from_secs(30)).await;
    got.extend(rest);
    assert_eq!(code, Some(1000));
    let (end, windows) = got.split_last().unwrap();
    assert_eq!(end["type"], "simulation.completed", "{end}");
    assert_eq!(windows.len(), 60);
    for (f, n) in windows.iter().zip(1..) {
        assert_eq!(f["offset"], format!("{n}-0"));
    }
    same_as_replay(&s, &ada, &run, windows).await;

    // A run whose stored design no longer validates when its instance comes back: failed,
    // with the reason, told to its watcher.
    let run = start(&s, &ada, &design(30.0, 0.5), 10, 10.0).await;
    let mut w = watch(&s.ws_base, &run, &ada, None).await;
    for _ in 0..3 {
        w.frame(Duration::from_secs(10)).await;
    }
    again.sigkill();
    diesel::sql_query(format!(
        "UPDATE simulation_schema.simulations \
         SET configuration = jsonb_set(configuration, '{{duration_s}}', '-1') WHERE id = '{run}'"
    ))
    .execute(&mut pg)
    .await
    .unwrap();
    let last = spawn("d");
    last.wait_healthy().await;
    let (rest, code) = drain(&mut w, Duration::from_secs(30)).await;
    let end = rest.last().expect("the run's end");
    assert_eq!(end["type"], "simulation.failed", "{end}");
    assert_eq!(code, Some(1000));
    // The gateway may still be learning that "d" replaced the killed "c" (discovery): ask
    // until the simulation service answers, for a few seconds (CI saw one answer without it).
    let mut status = Value::Null;
    for _ in 0..50 {
        let r = s
            .authed(Method::GET, &format!("/api/simulations/{run}"), &ada)
            .send()
            .await
            .unwrap();
        let ok = r.status().is_success();
        status = r.json().await.unwrap();
        if ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = &status["simulation"];
    assert_eq!(status["status"], "failed", "{status}");
    let error = status["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("could not be resumed") && error.contains("duration_s"),
        "the reason: {status}"
    );
    drop(last);
    let _ = std::fs::remove_dir_all(&logs);
}
