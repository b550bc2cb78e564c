//! The gateway: the REST and WebSocket front door on port 8000, and `GatewayService` on 8001.
//!
//! ```text
//! gateway (one_for_one)
//! ├── notifications  (NotificationSubscriber: Redis pub/sub in, to session actors)
//! ├── grpc           (:8001 GatewayService + health + reflection)
//! └── http           (:8000 REST, /ws/notifications, /health, /metrics, /admin/supervision)
//!       └── one WsSession actor per WebSocket connection (lives with its connection)
//! ```
//!
//! - [`http`]: routes and handlers; [`body`]: the JSON extractor; [`error`]: JSON errors and
//!   the only mapping of service errors to HTTP statuses.
//! - [`ws`]: the WebSocket session actor; [`registry`]: sessions by user;
//!   [`subscriber`]: the Redis pub/sub subscriber.
//! - [`upstream`]: tonic clients of the backends; [`grpc`]: the GatewayService adapter.
#![forbid(unsafe_code)]

pub mod body;
pub mod error;
pub mod grpc;
pub mod http;
pub mod registry;
pub mod subscriber;
pub mod upstream;
pub mod ws;

use sdsim_actors::grpc::with_standard_services;
use sdsim_actors::server::{GrpcServer, HttpServer};
use sdsim_actors::services::Shared;
use sdsim_actors::slot::Slot;
use sdsim_actors::supervision::{Strategy, SupervisorSpec};
use sdsim_protocols::proto;
use std::net::TcpListener;
use std::sync::Arc;

pub use upstream::Upstreams;

/// The gateway's supervision tree.
pub fn gateway_tree(
    shared: &Shared,
    grpc: TcpListener,
    http: TcpListener,
) -> Result<SupervisorSpec, String> {
    let g = &shared.settings.gateway;
    let upstream = Upstreams::new(shared.mesh.clone());
    let redis_client = redis::Client::open(shared.settings.redis.url.expose())
        .map_err(|e| format!("redis.url: {e}"))?;
    let registry = registry::Registry::new();
    let subscriber = Slot::new();
    let state = http::GatewayState {
        upstream,
        registry: registry.clone(),
        subscriber: subscriber.clone(),
        settings: g.clone(),
        metrics: shared.metrics.clone(),
        view: shared.view.clone(),
        probe: shared.probe(true),
        instance_id: shared.instance_id.clone(),
        fault_injection: shared.settings.admin.fault_injection,
        instances: shared.instances.clone(),
    };
    let adapter = grpc::GatewayGrpc {
        registry: registry.clone(),
        metrics: shared.metrics.clone(),
        health: shared.probe(true),
        instance_id: shared.instance_id.clone(),
        redis: shared.redis.clone(),
        ns: shared.ns.clone(),
    };
    let registrar = shared.registrar("gateway", &grpc, &http);
    let routes = Arc::new(move || {
        let mut b = tonic::service::Routes::builder();
        b.add_service(
            proto::gateway::gateway_service_server::GatewayServiceServer::new(adapter.clone()),
        );
        with_standard_services(b, &["gateway.GatewayService"]).routes()
    });
    Ok(shared
        .spec("gateway", Strategy::OneForOne)
        .child(registrar)
        .child(subscriber::NotificationSubscriber::child(
            redis_client,
            registry,
            shared.ns.clone(),
            shared.metrics.clone(),
            subscriber,
        ))
        .child(GrpcServer::child(
            "grpc",
            grpc,
            routes,
            shared.grpc_runtime.clone(),
        ))
        .child(HttpServer::child("http", http, http::http_factory(state))))
}
