//! The mesh's cost per call, against a bare tonic channel, in the same run and against the
//! same server: a `grpc.health.v1` server on loopback (it does almost nothing, so the
//! client path dominates), called
//!
//! - sequentially (one caller): the latency a single call pays, and the difference is the
//!   mesh's overhead per call (routing, breaker, pool permit, metrics);
//! - by `BENCH_CONCURRENCY` callers at once: throughput, where the pool's several HTTP/2
//!   connections compete with one multiplexed connection.
//!
//! Prints a ratio mesh / bare for each. Both clients run on the same multi-threaded runtime;
//! the server runs on its own.

use sdsim_protocols::Service;
use sdsim_runtime::config::MeshSettings;
use sdsim_runtime::mesh::Mesh;
use sdsim_runtime::metrics::Metrics;
use sdsim_runtime::supervision::{Strategy, Supervisor, SupervisorSpec, TreeView};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

#[derive(Clone)]
enum Client {
    Bare(Channel),
    Mesh(Mesh),
}

impl Client {
    async fn call(&self) {
        match self {
            Client::Bare(ch) => {
                HealthClient::new(ch.clone())
                    .check(request())
                    .await
                    .expect("bare call");
            }
            Client::Mesh(m) => {
                m.call(Service::Auth, "Check", |ch| {
                    let mut c = HealthClient::new(ch);
                    async move { c.check(request()).await }
                })
                .await
                .expect("mesh call");
            }
        }
    }
}

struct Run {
    per_call_us: f64,
    p99_us: f64,
    per_second: f64,
}

/// `calls` calls split over `callers` concurrent loops on `rt`.
fn measure(rt: &tokio::runtime::Runtime, client: &Client, calls: usize, callers: usize) -> Run {
    rt.block_on(async {
        // Warm up connections.
        for _ in 0..200 {
            client.call().await;
        }
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..callers {
            let c = client.clone();
            let n = calls / callers;
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(n);
                for _ in 0..n {
                    let t = Instant::now();
                    c.call().await;
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                lat
            }));
        }
        let mut all = Vec::with_capacity(calls);
        for t in tasks {
            all.extend(t.await.expect("caller"));
        }
        let wall = start.elapsed();
        all.sort_unstable();
        let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)] as f64 / 1e3;
        let mean = all.iter().sum::<u64>() as f64 / all.len() as f64 / 1e3;
        Run {
            per_call_us: mean,
            p99_us: p99,
            per_second: all.len() as f64 / wall.as_secs_f64(),
        }
    })
}

fn main() {
    let calls: usize = env_or("BENCH_CALLS", 10_000);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);

    // The server, on a runtime of its own.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    server_rt.spawn(async move {
        let (reporter, service) = tonic_health::server::health_reporter();
        let _keep = reporter;
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(sdsim_runtime::server::incoming(listener))
            .await
            .expect("server");
    });

    // The clients' runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let bare = {
        let _g = rt.enter();
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("url")
            .tcp_nodelay(true)
            .connect_lazy()
    };

    // Meshes with three pool configurations: their actors on an actix system of their own
    // thread, their channels on `rt`. One channel isolates the mesh's own cost per call; a
    // fixed five and the default (5, scaling to 20 under load) show what the pool size does.
    let configs: Vec<(&'static str, usize, usize)> = vec![
        ("mesh, pool fixed at 1", 1, 1),
        ("mesh, pool fixed at 5", 5, 5),
        ("mesh, default pool 5-20", 5, 20),
    ];
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = rt.handle().clone();
    let cfgs = configs.clone();
    std::thread::spawn(move || {
        let sys = actix_rt::System::new();
        sys.block_on(async move {
            let mut meshes = Vec::new();
            for (_, min, max) in cfgs {
                let settings = MeshSettings {
                    min_channels: min,
                    max_channels: max,
                    ..MeshSettings::default()
                };
                let metrics = Metrics::new();
                let mesh = Mesh::new(
                    &settings,
                    BTreeMap::from([(Service::Auth, vec![addr.to_string()])]),
                    Default::default(),
                    Duration::from_millis(500),
                    metrics.clone(),
                    Some(handle.clone()),
                )
                .expect("mesh");
                mesh.want(Service::Auth);
                let spec = SupervisorSpec::new("bench", "mesh", Strategy::OneForOne)
                    .child(mesh.router(Duration::from_millis(100)));
                std::mem::forget(Supervisor::start_root(
                    spec,
                    TreeView::new(),
                    metrics,
                    || {},
                ));
                meshes.push(mesh);
            }
            tx.send(meshes).expect("send");
            std::future::pending::<()>().await;
        });
    });
    let meshes = rx.recv().expect("meshes");
    for m in &meshes {
        while m.targets(Service::Auth).is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    println!("mesh benchmark: grpc.health Check on loopback, {calls} calls per run, 2 cores shared by server and client");
    let bare = Client::Bare(bare);
    let avg = |a: Run, b: Run| Run {
        per_call_us: (a.per_call_us + b.per_call_us) / 2.0,
        p99_us: (a.p99_us + b.p99_us) / 2.0,
        per_second: (a.per_second + b.per_second) / 2.0,
    };
    for (label, callers) in [("sequential", 1), ("concurrent", concurrency)] {
        println!("{label}, {callers} caller(s):");
        for ((name, _, _), mesh) in configs.iter().zip(&meshes) {
            let meshc = Client::Mesh(mesh.clone());
            // Interleaved, to share the machine's noise fairly.
            let b1 = measure(&rt, &bare, calls, callers);
            let m1 = measure(&rt, &meshc, calls, callers);
            let b2 = measure(&rt, &bare, calls, callers);
            let m2 = measure(&rt, &meshc, calls, callers);
            let (b, m) = (avg(b1, b2), avg(m1, m2));
            println!(
                "  {name:<24} {:>7.1} us/call, p99 {:>7.1} us, {:>7.0} calls/s ({} channels) | bare channel {:>7.1} us/call, p99 {:>7.1} us, {:>7.0} calls/s",
                m.per_call_us,
                m.p99_us,
                m.per_second,
                mesh.targets(Service::Auth)[0].pool.len(),
                b.per_call_us,
                b.p99_us,
                b.per_second,
            );
            println!(
                "  {:<24} overhead per call {:+.1} us; latency ratio mesh/bare {:.3}; throughput ratio mesh/bare {:.3}",
                "",
                m.per_call_us - b.per_call_us,
                m.per_call_us / b.per_call_us,
                m.per_second / b.per_second
            );
        }
    }
}
