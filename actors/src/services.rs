//! The supervision trees of the backend services (auth, project, simulation).
//!
//! ```text
//! auth (one_for_one)                 project (one_for_one)      simulation (one_for_one)
//! ├── event_bridge   (Redis out)     ├── grpc  (:10000)         ├── grpc  (:11000)
//! ├── accounts       (AuthActor)     └── http  (:10001)         └── http  (:11001)
//! ├── grpc           (:9000)
//! └── http           (:9001)
//! ```

use crate::admin::{self, AdminState};
use crate::auth::grpc::AuthGrpc;
use crate::auth::service::{AuthActor, AuthCore};
use crate::auth::tokens::TokenService;
use crate::backend::{ProjectGrpc, SimulationGrpc};
use crate::config::Settings;
use crate::events::{EventBridge, EventSink};
use crate::grpc::with_standard_services;
use crate::health::HealthProbe;
use crate::metrics::Metrics;
use crate::server::{GrpcServer, HttpServer};
use crate::slot::Slot;
use crate::supervision::{ChildSpec, Strategy, SupervisorSpec, TreeView};
use redis::aio::ConnectionManager;
use sdsim_protocols::names::Namespace;
use sdsim_protocols::proto;
use sdsim_schema::DbPool;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every service of a process shares.
#[derive(Clone)]
pub struct Shared {
    pub settings: Settings,
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

/// The auth service's tree. `secret` is the resolved JWT key.
pub fn auth_tree(
    shared: &Shared,
    secret: &[u8],
    grpc: TcpListener,
    http: TcpListener,
) -> Result<SupervisorSpec, String> {
    let s = &shared.settings.auth;
    let dummy_hash = AuthCore::dummy_hash(s.bcrypt_cost)?;
    let bridge_slot: Slot<EventBridge> = Slot::new();
    let core = Arc::new(AuthCore {
        pool: shared.pool.clone(),
        tokens: TokenService::new(s, secret),
        bcrypt_cost: s.bcrypt_cost,
        dummy_hash,
        events: EventSink::new(bridge_slot.clone()),
        redis: shared.redis.clone(),
        ns: shared.ns.clone(),
        limits: crate::auth::limits::Limits {
            redis: shared.redis.clone(),
            ns: shared.ns.clone(),
            config: s.limits.clone(),
        },
        min_password_score: s.min_password_score,
        validated: crate::auth::cache::ValidationCache::new(Duration::from_millis(
            s.validation_cache_ms,
        )),
        checks: Default::default(),
        session_checks: shared.metrics.auth_session_checks.clone(),
        hashing: Arc::new(crate::auth::hasher::Hasher::for_machine(
            s.max_concurrent_hashes,
        )?),
        mail: s.mail.clone(),
    });
    let actor_slot: Slot<AuthActor> = Slot::new();
    let adapter = AuthGrpc {
        slot: actor_slot.clone(),
        core: core.clone(),
        metrics: shared.metrics.clone(),
        health: shared.probe(true),
    };
    let routes = Arc::new(move || {
        let mut b = tonic::service::Routes::builder();
        b.add_service(proto::auth::auth_service_server::AuthServiceServer::new(
            adapter.clone(),
        ));
        with_standard_services(b, &["auth.AuthService"]).routes()
    });
    let registrar = shared.registrar("auth", &grpc, &http);
    Ok(shared
        .spec("auth", Strategy::OneForOne)
        .child(EventBridge::child(
            shared.redis.clone(),
            shared.metrics.clone(),
            bridge_slot,
        ))
        .child(AuthActor::child(core, actor_slot))
        .child(crate::auth::mailer::MailWorker::child(
            shared.redis.clone(),
            shared.ns.clone(),
            s.mail.clone(),
        ))
        .child(registrar)
        .child(GrpcServer::child(
            "grpc",
            grpc,
            routes,
            shared.grpc_runtime.clone(),
        ))
        .child(HttpServer::child(
            "http",
            http,
            admin::http_factory(admin_state(shared, "auth", true)),
        )))
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
    }
}

/// A backend tree that serves `routes` on gRPC and the admin endpoints on HTTP.
fn backend_tree(
    shared: &Shared,
    service: &'static str,
    routes: crate::server::RouterFactory,
    grpc: TcpListener,
    http: TcpListener,
) -> SupervisorSpec {
    let registrar = shared.registrar(service, &grpc, &http);
    shared
        .spec(service, Strategy::OneForOne)
        .child(registrar)
        .child(GrpcServer::child(
            "grpc",
            grpc,
            routes,
            shared.grpc_runtime.clone(),
        ))
        .child(HttpServer::child(
            "http",
            http,
            admin::http_factory(admin_state(shared, service, true)),
        ))
}

pub fn project_tree(shared: &Shared, grpc: TcpListener, http: TcpListener) -> SupervisorSpec {
    let adapter = ProjectGrpc {
        health: shared.probe(true),
    };
    let routes = Arc::new(move || {
        let mut b = tonic::service::Routes::builder();
        b.add_service(
            proto::project::project_service_server::ProjectServiceServer::new(adapter.clone()),
        );
        with_standard_services(b, &["project.ProjectService"]).routes()
    });
    backend_tree(shared, "project", routes, grpc, http)
}

pub fn simulation_tree(shared: &Shared, grpc: TcpListener, http: TcpListener) -> SupervisorSpec {
    let adapter = SimulationGrpc {
        health: shared.probe(true),
    };
    let routes = Arc::new(move || {
        let mut b = tonic::service::Routes::builder();
        b.add_service(
            proto::simulation::simulation_service_server::SimulationServiceServer::new(
                adapter.clone(),
            ),
        );
        with_standard_services(b, &["simulation.SimulationService"]).routes()
    });
    backend_tree(shared, "simulation", routes, grpc, http)
}
