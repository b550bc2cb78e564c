//! The mesh against real tonic servers on port 0 and a real Redis: pools grow under load and
//! shrink after the cooldown, the global cap holds while channels move to the higher-priority
//! pool, and routing survives Redis going away.
//!
//! Each test runs its own servers, its own mesh and (where Redis is needed) its own
//! `redis-server` on a free port, so that it can stop and restart it.

use sdsim_protocols::names::Namespace;
use sdsim_protocols::Service;
use sdsim_runtime::config::MeshSettings;
use sdsim_runtime::discovery::{Directory, InstanceInfo, Registrar, View};
use sdsim_runtime::mesh::Mesh;
use sdsim_runtime::metrics::Metrics;
use sdsim_runtime::supervision::{Strategy, Supervisor, SupervisorSpec, TreeView};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// A gRPC server with the standard health service, on 127.0.0.1:0.
async fn health_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, service) = tonic_health::server::health_reporter();
    let task = tokio::spawn(async move {
        let _keep = _reporter;
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(sdsim_runtime::server::incoming(listener))
            .await;
    });
    (addr, task)
}

fn settings() -> MeshSettings {
    MeshSettings {
        min_channels: 2,
        max_channels: 6,
        scale_interval_ms: 50,
        scale_up_rate: 100.0,
        call_timeout_ms: 2_000,
        ..MeshSettings::default()
    }
}

struct Running {
    mesh: Mesh,
    metrics: Arc<Metrics>,
    _root: actix::Addr<Supervisor>,
}

/// A mesh and its router (plus `extra` children) under a supervisor, as in a process.
fn start(
    s: &MeshSettings,
    statics: BTreeMap<Service, Vec<String>>,
    view: View,
    extra: Vec<sdsim_runtime::supervision::ChildSpec>,
) -> Running {
    let metrics = Metrics::new();
    let mesh = Mesh::new(
        s,
        statics,
        view,
        Duration::from_millis(100),
        metrics.clone(),
        None,
    )
    .unwrap();
    let mut spec = SupervisorSpec::new("test", "mesh", Strategy::OneForOne)
        .child(mesh.router(Duration::from_millis(50)));
    for c in extra {
        spec = spec.child(c);
    }
    let root = Supervisor::start_root(spec, TreeView::new(), metrics.clone(), || {});
    Running {
        mesh,
        metrics,
        _root: root,
    }
}

async fn check(mesh: &Mesh, service: Service) -> Result<(), String> {
    mesh.call(service, "Check", |ch| {
        let mut c = HealthClient::new(ch);
        async move {
            c.check(HealthCheckRequest {
                service: String::new(),
            })
            .await
        }
    })
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Calls `service` about `per_second` times a second until `stop` is set; counts failures.
fn load(
    mesh: &Mesh,
    service: Service,
    per_second: u64,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
) {
    let mesh = mesh.clone();
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let (m, f) = (mesh.clone(), failures.clone());
            actix_rt::spawn(async move {
                if check(&m, service).await.is_err() {
                    f.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
}

fn channels(mesh: &Mesh, service: Service) -> usize {
    mesh.targets(service).iter().map(|t| t.pool.len()).sum()
}

async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn a_pool_grows_within_500_ms_of_the_trigger_and_shrinks_after_the_cooldown() {
    let (addr, _server) = health_server().await;
    let s = MeshSettings {
        scale_down_cooldown_ms: 300,
        // This test is about the rate trigger: a slow call on a loaded machine (CI shares
        // two cores) must not grow the pool through the latency trigger instead.
        scale_up_latency_ms: 10_000.0,
        ..settings()
    };
    let statics = BTreeMap::from([(Service::Auth, vec![format!("http://{addr}")])]);
    let r = start(&s, statics, View::default(), vec![]);
    r.mesh.want(Service::Auth);
    wait_for("the static target", Duration::from_secs(2), || {
        channels(&r.mesh, Service::Auth) == 2
    })
    .await;
    // A trickle does not grow it.
    for _ in 0..20 {
        check(&r.mesh, Service::Auth).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(channels(&r.mesh, Service::Auth), 2);

    // 400 calls/s: over the 100/s trigger.
    let (stop, failures) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let started = Instant::now();
    load(&r.mesh, Service::Auth, 400, stop.clone(), failures.clone());
    wait_for(
        "the pool to grow past its minimum",
        Duration::from_secs(2),
        || channels(&r.mesh, Service::Auth) > 2,
    )
    .await;
    let grew_after = started.elapsed();
    wait_for(
        "the pool to reach its maximum",
        Duration::from_secs(3),
        || channels(&r.mesh, Service::Auth) == 6,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        channels(&r.mesh, Service::Auth),
        6,
        "never above the maximum"
    );
    let target = r.mesh.targets(Service::Auth).remove(0);
    let ups: Vec<_> = target
        .events()
        .into_iter()
        .filter(|e| e.direction == "up")
        .collect();
    assert_eq!(ups.len(), 4, "{ups:?}");
    for e in &ups {
        assert_eq!(e.trigger, "rate");
        let ms = e.serving_after_ms.unwrap();
        assert!(ms <= 500.0, "a channel served {ms} ms after its trigger");
    }
    assert!(
        grew_after < Duration::from_secs(1),
        "grew after {grew_after:?}"
    );

    // Load stops: after the cooldown it shrinks, one channel per cooldown, to the minimum.
    stop.store(true, Ordering::Relaxed);
    wait_for(
        "the pool to shrink to its minimum",
        Duration::from_secs(5),
        || channels(&r.mesh, Service::Auth) == 2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        channels(&r.mesh, Service::Auth),
        2,
        "never below the minimum"
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    let m = r.metrics.render();
    assert!(
        m.contains(
            "sdsim_pool_scale_events_total{direction=\"up\",service=\"auth\",trigger=\"rate\"} 4"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "sdsim_pool_scale_events_total{direction=\"down\",service=\"auth\",trigger=\"idle\"} 4"
        ),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "sdsim_pool_channels{{instance=\"{addr}\",service=\"auth\"}} 2"
        )),
        "{m}"
    );
}

#[actix_rt::test]
async fn the_global_cap_holds_and_channels_move_to_the_higher_priority_pool() {
    let (auth, _a) = health_server().await;
    let (sim, _s) = health_server().await;
    let s = MeshSettings {
        max_channels: 8,
        global_max_channels: 8,
        scale_down_cooldown_ms: 60_000,
        ..settings()
    };
    let statics = BTreeMap::from([
        (Service::Auth, vec![auth.to_string()]),
        (Service::Simulation, vec![sim.to_string()]),
    ]);
    let r = start(&s, statics, View::default(), vec![]);
    r.mesh.want(Service::Auth);
    r.mesh.want(Service::Simulation);
    wait_for("both pools", Duration::from_secs(2), || {
        channels(&r.mesh, Service::Auth) == 2 && channels(&r.mesh, Service::Simulation) == 2
    })
    .await;

    // The cap is watched all along.
    let over = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    {
        let (mesh, over, done) = (r.mesh.clone(), over.clone(), done.clone());
        actix_rt::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if mesh.channels().0 > 8 {
                    over.store(true, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }

    // Simulation (low priority) grows until the cap: 8 - auth's 2 = 6, then is refused.
    let failures = Arc::new(AtomicUsize::new(0));
    let stop_sim = Arc::new(AtomicBool::new(false));
    load(
        &r.mesh,
        Service::Simulation,
        400,
        stop_sim.clone(),
        failures.clone(),
    );
    wait_for("simulation to fill the cap", Duration::from_secs(3), || {
        channels(&r.mesh, Service::Simulation) == 6
    })
    .await;
    wait_for(
        "a refused request to be counted",
        Duration::from_secs(2),
        || {
            r.metrics
                .render()
                .contains("sdsim_pool_refused_total{service=\"simulation\"}")
        },
    )
    .await;
    assert_eq!(r.mesh.channels(), (8, 8));

    // Now auth (highest priority) needs more: it takes simulation's channels.
    let stop_auth = Arc::new(AtomicBool::new(false));
    load(
        &r.mesh,
        Service::Auth,
        400,
        stop_auth.clone(),
        failures.clone(),
    );
    wait_for(
        "auth to take simulation's channels",
        Duration::from_secs(3),
        || channels(&r.mesh, Service::Auth) == 6 && channels(&r.mesh, Service::Simulation) == 2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Simulation never takes them back, and never goes below its minimum.
    assert_eq!(channels(&r.mesh, Service::Auth), 6);
    assert_eq!(channels(&r.mesh, Service::Simulation), 2);
    assert_eq!(r.mesh.channels(), (8, 8));
    stop_sim.store(true, Ordering::Relaxed);
    stop_auth.store(true, Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    assert!(!over.load(Ordering::Relaxed), "the cap was exceeded");
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    let m = r.metrics.render();
    assert!(
        m.contains("sdsim_pool_rebalanced_total{from=\"simulation\",to=\"auth\"} 4"),
        "{m}"
    );
    assert!(m.contains("sdsim_pool_channels_total 8"), "{m}");
    let snap = r.mesh.snapshot();
    assert_eq!(snap["channels"]["total"], 8, "{snap}");
    let sim_events = snap["services"]["simulation"]["targets"][0]["pool"]["events"].to_string();
    assert!(sim_events.contains("rebalance"), "{sim_events}");
}

/// A `redis-server` of the test's own, which it can stop and start again on the same port.
struct RedisProcess {
    port: u16,
    child: Option<std::process::Child>,
}

impl RedisProcess {
    fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (deploy/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            child: Some(child),
        }
    }

    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn instance(service: Service, id: &str, addr: SocketAddr) -> InstanceInfo {
    let now = chrono::Utc::now().timestamp();
    InstanceInfo {
        service: service.to_string(),
        instance_id: id.into(),
        grpc_addr: addr.to_string(),
        http_addr: String::new(),
        status: "serving".into(),
        version: "test".into(),
        started_at: now,
        heartbeat_at: now,
        load: 0,
    }
}

#[actix_rt::test]
async fn with_redis_stopped_calls_go_on_and_discovery_recovers_when_it_returns() {
    let mut redis = RedisProcess::start();
    let conn = sdsim_runtime::events::connection_manager(&redis.url(), Duration::from_millis(300))
        .unwrap();
    let ns = Namespace::new(format!("mesh-test-{}:", std::process::id()));
    let (a, _a) = health_server().await;
    let (b, _b) = health_server().await;
    let view = View::default();
    let registrar = |id: &str, addr| {
        Registrar::child(
            conn.clone(),
            ns.clone(),
            instance(Service::Auth, id, addr),
            Duration::from_millis(1_000),
            Duration::from_millis(200),
            None,
        )
    };
    let metrics_for_dir = Metrics::new();
    let directory = Directory::child(
        conn.clone(),
        ns.clone(),
        vec!["auth".into()],
        view.clone(),
        metrics_for_dir,
        Duration::from_millis(100),
    );
    // `a` is also on the static list; `b` is known through discovery only.
    let statics = BTreeMap::from([(Service::Auth, vec![a.to_string()])]);
    let r = start(
        &settings(),
        statics,
        view.clone(),
        vec![directory, registrar("auth-a", a), registrar("auth-b", b)],
    );
    r.mesh.want(Service::Auth);
    let addrs = |m: &Mesh| -> Vec<String> {
        m.targets(Service::Auth)
            .iter()
            .map(|t| t.address.clone())
            .collect()
    };
    let mut both = vec![a.to_string(), b.to_string()];
    both.sort();
    wait_for(
        "both instances from discovery",
        Duration::from_secs(3),
        || addrs(&r.mesh) == both,
    )
    .await;

    redis.stop();
    wait_for(
        "discovery to notice Redis is gone",
        Duration::from_secs(3),
        || r.mesh.snapshot()["discovery"]["fresh"] == false,
    )
    .await;
    // Routing goes on: the last view and the static list.
    for _ in 0..100 {
        check(&r.mesh, Service::Auth).await.unwrap();
    }
    assert_eq!(addrs(&r.mesh), both);
    for t in r.mesh.targets(Service::Auth) {
        assert!(t.pool.counters().calls > 0, "{} got no calls", t.address);
    }

    // Redis returns (empty: it kept nothing): the instances register again on their next
    // heartbeat, a new one is found, and the view is fresh again.
    let redis = RedisProcess::start_on(redis.port);
    let (c, _c) = health_server().await;
    let late = Supervisor::start_root(
        SupervisorSpec::new("test", "late", Strategy::OneForOne).child(registrar("auth-c", c)),
        TreeView::new(),
        r.metrics.clone(),
        || {},
    );
    let mut all = vec![a.to_string(), b.to_string(), c.to_string()];
    all.sort();
    wait_for(
        "discovery to recover with the new instance",
        Duration::from_secs(5),
        || addrs(&r.mesh) == all && r.mesh.snapshot()["discovery"]["fresh"] == true,
    )
    .await;
    for _ in 0..30 {
        check(&r.mesh, Service::Auth).await.unwrap();
    }
    drop((late, redis));
}

/// A health server that counts the calls it gets and answers each with `answer`.
#[derive(Clone)]
struct Counting {
    calls: Arc<AtomicUsize>,
    unavailable: bool,
}

#[tonic::async_trait]
impl tonic_health::pb::health_server::Health for Counting {
    async fn check(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<tonic_health::pb::HealthCheckResponse>, tonic::Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.unavailable {
            // The instance got the call and failed it as an instance does when it is going
            // away: the work may or may not have been done.
            return Err(tonic::Status::unavailable("shutting down"));
        }
        Ok(tonic::Response::new(
            tonic_health::pb::HealthCheckResponse { status: 1 },
        ))
    }

    type WatchStream = std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<tonic_health::pb::HealthCheckResponse, tonic::Status>,
                > + Send,
        >,
    >;

    async fn watch(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("watch"))
    }
}

async fn counting_server(
    unavailable: bool,
) -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = Counting {
        calls: calls.clone(),
        unavailable,
    };
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(tonic_health::pb::health_server::HealthServer::new(svc))
            .serve_with_incoming(sdsim_runtime::server::incoming(listener))
            .await;
    });
    (addr, calls, task)
}

/// `method` of auth (whose idempotency `sdsim_protocols::rpc` declares), made as a health
/// check.
async fn call_as(mesh: &Mesh, method: &'static str) -> Result<(), String> {
    mesh.call(Service::Auth, method, |ch| {
        let mut c = HealthClient::new(ch);
        async move {
            c.check(HealthCheckRequest {
                service: String::new(),
            })
            .await
        }
    })
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[actix_rt::test]
async fn a_call_that_may_have_reached_a_server_is_retried_elsewhere_only_if_idempotent() {
    let (failing, failing_calls, _a) = counting_server(true).await;
    let (healthy, healthy_calls, _b) = counting_server(false).await;
    let statics = BTreeMap::from([(
        Service::Auth,
        vec![format!("http://{failing}"), format!("http://{healthy}")],
    )]);
    // A breaker that never opens here, so the failing instance keeps being picked.
    let mut s = settings();
    s.breaker.min_calls = 10_000;
    let r = start(&s, statics, View::default(), vec![]);
    r.mesh.want(Service::Auth);
    wait_for("both targets", Duration::from_secs(2), || {
        r.mesh.targets(Service::Auth).len() == 2 && channels(&r.mesh, Service::Auth) == 4
    })
    .await;

    // Login is not idempotent: a call the failing instance got is never sent again.
    const N: usize = 40;
    let mut failed = 0;
    for _ in 0..N {
        if call_as(&r.mesh, "Login").await.is_err() {
            failed += 1;
        }
    }
    let (a, b) = (
        failing_calls.swap(0, Ordering::SeqCst),
        healthy_calls.swap(0, Ordering::SeqCst),
    );
    assert_eq!(a + b, N, "every Login reached exactly one instance");
    assert_eq!(failed, a, "every Login the failing instance got failed");
    assert!(a > 0, "the failing instance was never picked in {N} calls");

    // GetProfile is: every call that failed there is answered by the other instance.
    for _ in 0..N {
        call_as(&r.mesh, "GetProfile").await.unwrap();
    }
    let (a, b) = (
        failing_calls.load(Ordering::SeqCst),
        healthy_calls.load(Ordering::SeqCst),
    );
    assert_eq!(
        b, N,
        "every GetProfile was answered by the healthy instance"
    );
    assert!(a > 0, "the failing instance was never tried");
}

#[actix_rt::test]
async fn a_refused_connection_sends_even_a_non_idempotent_call_elsewhere() {
    let (gone, gone_calls, server) = counting_server(false).await;
    let (healthy, healthy_calls, _b) = counting_server(false).await;
    let statics = BTreeMap::from([(
        Service::Auth,
        vec![format!("http://{gone}"), format!("http://{healthy}")],
    )]);
    let mut s = settings();
    s.breaker.min_calls = 10_000;
    // The refused retries are outside the budget: none is left for calls that may have
    // reached a server.
    s.retry_budget_ratio = 0.0;
    s.retry_budget_min_per_second = 0.0;
    let r = start(&s, statics, View::default(), vec![]);
    r.mesh.want(Service::Auth);
    wait_for("both targets", Duration::from_secs(2), || {
        channels(&r.mesh, Service::Auth) == 4
    })
    .await;
    // The instance dies: its connections close, and reconnecting is refused.
    server.abort();
    let _ = server.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    const N: usize = 40;
    for i in 0..N {
        call_as(&r.mesh, "Login")
            .await
            .unwrap_or_else(|e| panic!("Login {i} failed: {e}"));
    }
    assert_eq!(gone_calls.load(Ordering::SeqCst), 0);
    assert_eq!(healthy_calls.load(Ordering::SeqCst), N);
}
