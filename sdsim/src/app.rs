//! Building and running the services of one process.
//!
//! [`Application::bind`] binds every listener of the chosen services first (port 0 works, and
//! a port in use is reported before anything starts); [`Application::run`] then migrates the
//! database, connects the pools and starts one root supervisor per service. Services in the
//! same process still call each other over gRPC on loopback, so `sdsim up` runs exactly the
//! code path of four separate processes.

use crate::settings::Settings;
use sdsim_protocols::names::Namespace;
use sdsim_protocols::Service;
use sdsim_runtime::events::connection_manager_on;
use sdsim_runtime::metrics::Metrics;
use sdsim_runtime::service::Shared;
use sdsim_runtime::supervision::{Shutdown, Supervisor, SupervisorSpec, TreeView};
use sdsim_schema::migrate::{self, Direction};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// The gRPC and HTTP addresses a service listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAddrs {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

struct Bound {
    grpc: TcpListener,
    http: TcpListener,
}

pub struct Application {
    settings: Settings,
    bound: BTreeMap<Service, Bound>,
    addrs: BTreeMap<Service, ServiceAddrs>,
}

fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, String> {
    let l =
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("cannot configure the {what} listener: {e}"))?;
    Ok(l)
}

impl Application {
    /// Binds the listeners of `services` as configured in each one's `listen` section.
    pub fn bind(settings: Settings, services: &[Service]) -> Result<Self, String> {
        let mut bound = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for &s in services {
            let l = settings.listen(s);
            let grpc = bind(&format!("{s}.listen.grpc"), l.grpc)?;
            let http = bind(&format!("{s}.listen.http"), l.http)?;
            let a = ServiceAddrs {
                grpc: grpc.local_addr().map_err(|e| e.to_string())?,
                http: http.local_addr().map_err(|e| e.to_string())?,
            };
            addrs.insert(s, a);
            bound.insert(s, Bound { grpc, http });
        }
        Ok(Self {
            settings,
            bound,
            addrs,
        })
    }

    /// The bound addresses, by service.
    pub fn addresses(&self) -> BTreeMap<Service, ServiceAddrs> {
        self.addrs.clone()
    }

    /// The static list of `service`'s instances: configured (comma-separated URLs), else this
    /// process's own listener, else the configured listen address.
    fn upstream_urls(&self, service: Service) -> Vec<String> {
        let u = &self.settings.upstream;
        let configured = match service {
            Service::Gateway => &u.gateway,
            Service::Auth => &u.auth,
            Service::Project => &u.project,
            Service::Simulation => &u.simulation,
        };
        if !configured.trim().is_empty() {
            return configured
                .split(',')
                .map(|u| u.trim().to_string())
                .collect();
        }
        let addr = match self.addrs.get(&service) {
            Some(a) => a.grpc,
            None => self.settings.listen(service).grpc,
        };
        if addr.port() == 0 {
            return Vec::new(); // not running here and no fixed address: discovery only
        }
        let host = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        vec![format!("http://{host}")]
    }

    /// Runs the services until `shutdown` resolves or a root supervisor gives up (an error).
    /// Must be called inside an actix `System`.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        let started = Instant::now();
        let settings = self.settings.clone();
        let instance_id = if settings.instance_id.is_empty() {
            format!("sdsim-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
        } else {
            settings.instance_id.clone()
        };
        let db_url = settings.database.url.expose().to_string();
        let backends = [Service::Auth, Service::Project, Service::Simulation];
        if settings.database.migrate_on_start && backends.iter().any(|s| self.bound.contains_key(s))
        {
            let applied = migrate::run(&db_url, Direction::Up)
                .await
                .map_err(|e| format!("cannot migrate the database: {e}"))?;
            if !applied.is_empty() {
                tracing::info!(migrations = ?applied, "database migrated");
            }
        }
        // gRPC connections are served on every core; actors stay on this thread.
        let grpc_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .max(2),
            )
            .thread_name("sdsim-grpc")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the gRPC runtime: {e}"))?;
        let grpc_handle = grpc_runtime.handle().clone();
        // Dropped without blocking, whichever way this function returns.
        let grpc_runtime = BackgroundRuntime(Some(grpc_runtime));
        let pool = sdsim_schema::pool::build(
            &db_url,
            settings.database.pool_size,
            Duration::from_millis(settings.database.acquire_timeout_ms),
            Duration::from_millis(settings.database.verify_idle_ms),
            Some(grpc_handle.clone()),
        )
        .map_err(|e| format!("database.url: {e}"))?;
        // The Redis connection's I/O runs on the gRPC runtime (every core), not on this
        // actors' thread.
        let redis = connection_manager_on(
            &grpc_handle,
            settings.redis.url.expose(),
            Duration::from_millis(settings.redis.timeout_ms),
        )
        .await
        .map_err(|e| format!("redis.url: {e}"))?;
        let instances = sdsim_runtime::discovery::View::default();
        let metrics = Metrics::new();
        if backends.iter().any(|s| self.bound.contains_key(s)) {
            let pool = pool.clone();
            metrics.on_scrape(move |m| {
                for (state, n) in pool.usage() {
                    m.db_pool_connections
                        .with_label_values(&[state])
                        .set(n as i64);
                }
            });
        }
        let refresh = Duration::from_millis(settings.discovery.refresh_ms);
        let mesh = sdsim_runtime::mesh::Mesh::new(
            &settings.mesh,
            Service::ALL
                .iter()
                .map(|&s| (s, self.upstream_urls(s)))
                .collect(),
            instances.clone(),
            refresh,
            metrics.clone(),
            Some(grpc_handle.clone()),
        )?;
        let shared = Shared {
            settings: settings.runtime(),
            instance_id: instance_id.clone(),
            metrics,
            view: TreeView::new(),
            ns: Namespace::new(settings.redis.prefix.clone()),
            started,
            pool,
            redis,
            grpc_runtime: Some(grpc_handle),
            instances,
            mesh,
            drain: sdsim_runtime::probes::Drain::new(),
        };

        let (gave_up_tx, mut gave_up_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let on_give_up = |name: String| {
            let tx = gave_up_tx.clone();
            move || {
                let _ = tx.send(name);
            }
        };
        // The process's view of every service's instances, and its routes to them; started
        // first, so the static routes exist before any server answers. Its actors only
        // reconcile state now and then: the system arbiter is enough.
        let mesh_spec = shared
            .spec("mesh", sdsim_runtime::supervision::Strategy::OneForOne)
            .child(sdsim_runtime::discovery::Directory::child(
                shared.redis.clone(),
                shared.ns.clone(),
                Service::ALL.iter().map(|s| s.to_string()).collect(),
                shared.instances.clone(),
                shared.metrics.clone(),
                refresh,
            ))
            .child(shared.mesh.router(ROUTER_INTERVAL));
        let mut roots = vec![(
            None,
            Supervisor::start_root(
                mesh_spec,
                shared.view.clone(),
                shared.metrics.clone(),
                on_give_up("mesh".into()),
            ),
        )];
        // Each service's tree runs on an arbiter (thread) of its own, so in `sdsim up` no
        // service's actor work waits behind another's. The tree is built there too: its
        // start functions are not Send.
        let mut arbiters = Vec::new();
        for (service, b) in std::mem::take(&mut self.bound) {
            let arbiter = actix_rt::Arbiter::new();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (shared, settings) = (shared.clone(), settings.clone());
            let give_up = on_give_up(service.to_string());
            let spawned = arbiter.spawn_fn(move || {
                let root = service_tree(service, &shared, &settings, b).map(|spec| {
                    Supervisor::start_root(
                        spec,
                        shared.view.clone(),
                        shared.metrics.clone(),
                        give_up,
                    )
                });
                let _ = tx.send(root);
            });
            if !spawned {
                return Err(format!("cannot start the {service} service's arbiter"));
            }
            let root = rx
                .await
                .map_err(|_| format!("the {service} service's arbiter stopped while starting"))??;
            roots.push((Some(service), root));
            arbiters.push(arbiter);
        }
        for (s, a) in &self.addrs {
            tracing::info!(service = %s, grpc = %a.grpc, http = %a.http, instance = %instance_id, "service started");
        }

        let outcome = tokio::select! {
            _ = shutdown => Ok(()),
            Some(name) = gave_up_rx.recv() => Err(format!(
                "the {name} supervisor gave up (restart intensity exceeded); see the log"
            )),
        };
        // Draining: unready at once (load balancers stop sending new work), WebSockets told
        // to go with 1001; a moment for those close frames and for the next readiness probe;
        // then the trees stop, servers last-in first-out: in-flight requests finish (at most
        // the grace time), the registrars leave discovery.
        let grace = Duration::from_millis(settings.shutdown.grace_ms);
        tracing::info!(grace_ms = grace.as_millis() as u64, "draining");
        shared.drain.start();
        tokio::time::sleep(DRAIN_NOTICE.min(grace)).await;
        tracing::info!("shutting down");
        // The gateway first: its in-flight requests still call the services behind it.
        let deadline = Instant::now() + grace;
        let (front, back): (Vec<_>, Vec<_>) = roots
            .into_iter()
            .partition(|(service, _)| *service == Some(Service::Gateway));
        for group in [front, back] {
            let names: Vec<String> = group
                .iter()
                .filter_map(|(s, _)| s.map(|s| s.to_string()))
                .collect();
            for (_, root) in group.iter().rev() {
                root.do_send(Shutdown);
            }
            // Until every server of the group has finished its in-flight requests.
            while names
                .iter()
                .any(|n| shared.drain.servers(Some(n.as_str())) > 0)
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for arbiter in arbiters {
            arbiter.stop();
        }
        drop(grpc_runtime);
        outcome
    }
}

/// The supervision tree of `service`, from its own crate.
fn service_tree(
    service: Service,
    shared: &Shared,
    settings: &Settings,
    b: Bound,
) -> Result<SupervisorSpec, String> {
    Ok(match service {
        Service::Gateway => sdsim_gateway::tree(shared, &settings.gateway, b.grpc, b.http)?,
        Service::Auth => sdsim_auth::tree(shared, &settings.auth, b.grpc, b.http)?,
        Service::Project => sdsim_project::tree(shared, &settings.project, b.grpc, b.http),
        Service::Simulation => sdsim_simulation::tree(shared, &settings.simulation, b.grpc, b.http),
    })
}

/// Dropping a runtime inside another would block: this one lets its threads wind down alone,
/// on every path out of [`Application::run`].
struct BackgroundRuntime(Option<tokio::runtime::Runtime>);

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r.shutdown_background();
        }
    }
}

/// Between turning unready and stopping the servers: time for WebSocket close frames to go
/// out and for a load balancer's next readiness probe.
const DRAIN_NOTICE: Duration = Duration::from_millis(500);

/// How often the mesh's router brings its targets in line with discovery.
const ROUTER_INTERVAL: Duration = Duration::from_millis(100);

/// A set of services running on their own thread and actix `System`; stops when dropped.
/// This is how tests (and embedders) run sdsim in-process.
pub struct Running {
    addrs: BTreeMap<Service, ServiceAddrs>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Running {
    /// Binds on the calling thread (so errors and addresses come back at once) and runs
    /// the services on a new thread.
    pub fn start(settings: Settings, services: &[Service]) -> Result<Self, String> {
        let app = Application::bind(settings, services)?;
        let addrs = app.addresses();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sdsim-app".into())
            .spawn(move || {
                actix_rt::System::new().block_on(app.run(async move {
                    let _ = rx.await;
                }))
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(Self {
            addrs,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn addrs(&self, service: Service) -> ServiceAddrs {
        self.addrs[&service]
    }

    /// Whether the services are still running (false after a give-up or a start error).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the services and waits for them; the run's outcome.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), String> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| "the sdsim thread panicked".to_string())?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
