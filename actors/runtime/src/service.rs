//! What every service of a process shares ([`Shared`]) and the standard shape of a service's
//! tree ([`standard_tree`]): the service's own children, then its registrar, its gRPC server
//! and its HTTP admin server. The trees themselves are drawn in ARCHITECTURE.md.

use crate::admin::{self, AdminState};
use crate::config::RuntimeSettings;
use crate::grpc::with_standard_services;
use crate::health::HealthProbe;
use crate::metrics::Metrics;
use crate::server::{GrpcServer, HttpServer, RouterFactory, Timing};
use crate::supervision::{ChildSpec, Strategy, SupervisorSpec, TreeView};
use redis::aio::ConnectionManager;
use sdsim_protocols::names::Namespace;
use sdsim_schema::DbPool;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every service of a process shares.
#[derive(Clone)]
pub struct Shared {
    pub settings: RuntimeSettings,
    pub instance_id: String,
    pub metrics: Arc<Metrics>,
    pub view: TreeView,
    pub ns: Namespace,
    pub started: Instant,
    pub pool: DbPool,
    pub redis: ConnectionManager,
    /// The multi-threaded runtime gRPC servers run on (None: the actors' runtime).
    pub grpc_runtime: Option<tokio::runtime::Handle>,
    /// The live view of instances (filled by the process's discovery directory).
    pub instances: crate::discovery::View,
    /// How this process calls other services (pools, breakers, routing).
    pub mesh: crate::mesh::Mesh,
    /// Set when the process starts stopping: every service turns unready.
    pub drain: crate::probes::Drain,
}

impl Shared {
    pub fn probe(&self, with_db: bool) -> HealthProbe {
        HealthProbe {
            instance_id: self.instance_id.clone(),
            started: self.started,
            pool: with_db.then(|| self.pool.clone()),
            redis: Some(self.redis.clone()),
            timeout: Duration::from_millis(self.settings.redis.timeout_ms.max(100)),
        }
    }

    /// `/livez` and `/readyz` of `service`, ready when `ready` says so.
    pub fn probes(
        &self,
        service: &'static str,
        ready: crate::probes::ReadyCheck,
    ) -> crate::probes::Probes {
        crate::probes::Probes {
            service,
            view: self.view.clone(),
            drain: self.drain.clone(),
            ready,
        }
    }

    /// The readiness of a service that owns data: PostgreSQL answers.
    pub fn needs_postgres(&self) -> crate::probes::ReadyCheck {
        crate::probes::needs_postgres(
            self.pool.clone(),
            Duration::from_millis(self.settings.database.acquire_timeout_ms.clamp(100, 2_000)),
        )
    }

    pub fn spec(&self, service: &str, strategy: Strategy) -> SupervisorSpec {
        SupervisorSpec::new(service, service, strategy)
            .intensity(self.settings.supervision.intensity())
            .backoff(self.settings.supervision.backoff())
    }

    /// The registrar child of a service listening on `grpc` and `http`.
    pub fn registrar(&self, service: &str, grpc: &TcpListener, http: &TcpListener) -> ChildSpec {
        let d = &self.settings.discovery;
        let advertise = |l: &TcpListener| -> String {
            let Ok(addr) = l.local_addr() else {
                return String::new();
            };
            let host = if !d.advertise_host.is_empty() {
                d.advertise_host.clone()
            } else if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            };
            format!("{host}:{}", addr.port())
        };
        let now = chrono::Utc::now().timestamp();
        crate::discovery::Registrar::child(
            self.redis.clone(),
            self.ns.clone(),
            crate::discovery::InstanceInfo {
                service: service.to_string(),
                instance_id: self.instance_id.clone(),
                grpc_addr: advertise(grpc),
                http_addr: advertise(http),
                status: "serving".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                started_at: now,
                heartbeat_at: now,
                load: 0,
            },
            Duration::from_millis(d.ttl_ms),
            Duration::from_millis(d.heartbeat_ms),
            Some(self.metrics.grpc_in_flight.with_label_values(&[service])),
        )
    }
}

pub fn admin_state(shared: &Shared, service: &'static str, with_db: bool) -> AdminState {
    AdminState {
        service,
        metrics: shared.metrics.clone(),
        view: shared.view.clone(),
        probe: shared.probe(with_db),
        fault_injection: shared.settings.admin.fault_injection,
        instances: shared.instances.clone(),
        mesh: shared.mesh.clone(),
        probes: shared.probes(service, shared.needs_postgres()),
    }
}

/// The gRPC routes of a service: what `add` registers (the service's own server), plus the
/// standard health and reflection services naming `names` (e.g. `"auth.AuthService"`).
pub fn routes(
    names: &'static [&'static str],
    add: impl Fn(&mut tonic::service::RoutesBuilder) + Send + Sync + 'static,
) -> RouterFactory {
    Arc::new(move || {
        let mut b = tonic::service::Routes::builder();
        add(&mut b);
        with_standard_services(b, names).routes()
    })
}

/// The standard tree of a service: `children` (the service's own actors, started first so
/// the servers' first requests find them), its registrar, `routes` on gRPC and `http` (the
/// admin endpoints when `None`) on HTTP. One_for_one: a child's crash touches no other.
pub fn standard_tree(
    shared: &Shared,
    service: &'static str,
    children: Vec<ChildSpec>,
    routes: RouterFactory,
    grpc: TcpListener,
    http: TcpListener,
    http_factory: Option<crate::server::HttpFactory>,
) -> SupervisorSpec {
    let registrar = shared.registrar(service, &grpc, &http);
    let http_factory =
        http_factory.unwrap_or_else(|| admin::http_factory(admin_state(shared, service, true)));
    let mut spec = shared.spec(service, Strategy::OneForOne);
    for child in children {
        spec = spec.child(child);
    }
    spec.child(registrar)
        .child(GrpcServer::child(
            "grpc",
            grpc,
            routes,
            Timing::new(shared.metrics.clone(), service),
            shared.drain.clone(),
            shared.grpc_runtime.clone(),
        ))
        .child(HttpServer::child(
            "http",
            service,
            http,
            http_factory,
            shared.drain.clone(),
        ))
}
