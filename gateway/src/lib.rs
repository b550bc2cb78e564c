//! The gateway: the REST and WebSocket front door on port 8000, and `GatewayService` on 8001.
//! Its supervision tree is drawn in ARCHITECTURE.md. It depends on `sdsim-runtime` and
//! `sdsim-protocols` only: it reaches the services over the mesh, never their crates.
//!
//! Layout (no module imports another in a circle):
//! - [`http`]: the REST routes, a module per area, with the [`http::extract::AuthUser`]
//!   extractor every protected route takes; [`body`]: the JSON extractor; [`error`]: JSON
//!   errors and the only mapping of service errors to HTTP statuses.
//! - [`state`]: what handlers and sessions share; [`settings`]: `[gateway]`.
//! - [`outlet`]: the messages and counters that carry frames to sessions and channel changes
//!   to the subscriber (imports none of the modules below).
//! - [`ws`]: the WebSocket session actor; [`registry`]: sessions by user and channel;
//!   [`subscriber`]: the Redis pub/sub subscriber, reached through a `Recipient<Resync>`.
//! - [`feeds`]: live runs to their `/ws/simulation/{id}` watchers (one Redis stream reader
//!   per watched run).
//! - [`collab`]: live collaboration to its `/ws/collaboration/{project_id}` members;
//!   [`access`]: one listener for lost project access, closing the sockets that depended on it.
//! - [`limits`]: rate limits per user, kind of request and address, counted in Redis.
//! - [`upstream`]: typed clients of the backends over the mesh; [`grpc`]: the
//!   `GatewayService` adapter.
#![forbid(unsafe_code)]

pub mod access;
pub mod body;
pub mod collab;
pub mod error;
pub mod feeds;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod outlet;
pub mod registry;
pub mod settings;
pub mod sockets;
pub mod state;
pub mod subscriber;
pub mod tokens;
pub mod upstream;
pub mod ws;

use sdsim_protocols::proto::gateway::gateway_service_server::GatewayServiceServer;
use sdsim_runtime::probes::ReadyCheck;
use sdsim_runtime::service::{routes, standard_tree, Shared};
use sdsim_runtime::supervision::SupervisorSpec;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Close code of the WebSockets of a gateway that is stopping (going away): the client
/// reconnects, to another instance.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The longest a backend may take to answer a readiness check.
const READY_DEADLINE: Duration = Duration::from_secs(1);

pub use settings::GatewaySettings;
pub use upstream::Upstreams;

/// The gateway's supervision tree (drawn in ARCHITECTURE.md).
pub fn tree(
    shared: &Shared,
    g: &GatewaySettings,
    grpc: TcpListener,
    http: TcpListener,
) -> Result<SupervisorSpec, String> {
    let tokens = Arc::new(tokens::TokenCache::new(Duration::from_millis(
        g.token_cache_ms,
    )));
    let upstream = Upstreams::new(shared.mesh.clone(), tokens.clone());
    let redis_client = redis::Client::open(shared.settings.redis.url.expose())
        .map_err(|e| format!("redis.url: {e}"))?;
    let registry = registry::Registry::new();
    // Ready when every service the gateway calls has an instance that answers.
    let ready: ReadyCheck = {
        let upstream = upstream.clone();
        Arc::new(move || {
            let upstream = upstream.clone();
            Box::pin(async move {
                let checks = http::health::BACKENDS.map(|s| {
                    let upstream = upstream.clone();
                    async move {
                        match upstream.health(s, READY_DEADLINE).await {
                            Ok(h) if h.status == "SERVING" => None,
                            Ok(h) => Some(format!("{s}: {}", h.status)),
                            Err(e) => Some(format!("{s}: {e}")),
                        }
                    }
                });
                let failing: Vec<String> = futures_util::future::join_all(checks)
                    .await
                    .into_iter()
                    .flatten()
                    .collect();
                if failing.is_empty() {
                    Ok(())
                } else {
                    Err(failing)
                }
            })
        })
    };
    let feeds = feeds::Feeds::new(
        redis_client.clone(),
        shared.redis.clone(),
        shared.ns.clone(),
        upstream.clone(),
        shared
            .grpc_runtime
            .clone()
            .unwrap_or_else(tokio::runtime::Handle::current),
        shared.metrics.live_feeds.clone(),
    );
    let collab = collab::Collab::new(
        redis_client.clone(),
        shared.redis.clone(),
        shared.ns.clone(),
        upstream.clone(),
        shared
            .grpc_runtime
            .clone()
            .unwrap_or_else(tokio::runtime::Handle::current),
    );
    let events_runtime = shared
        .grpc_runtime
        .clone()
        .unwrap_or_else(tokio::runtime::Handle::current);
    // Sessions ended and permissions changed through other gateways.
    let sockets = std::sync::Arc::new(sockets::SessionSockets::default());
    access::watch_sessions(
        redis_client.clone(),
        &shared.ns,
        &events_runtime,
        tokens,
        sockets.clone(),
    );
    // Lost access to a project closes the live sockets that depended on it.
    {
        let (feeds, collab) = (feeds.clone(), collab.clone());
        access::watch(
            redis_client.clone(),
            &shared.ns,
            &events_runtime,
            vec![
                std::sync::Arc::new(move |p: &str, u: Option<&str>| feeds.lost_access(p, u)),
                std::sync::Arc::new(move |p: &str, u: Option<&str>| collab.lost_access(p, u)),
            ],
        );
    }
    // The close codes operators alert on exist from the start, at zero.
    for code in ["1000", "1001", "1011", "4001", "4004", "4008", "4009"] {
        shared.metrics.ws_closed.with_label_values(&[code]);
    }
    for endpoint in ws::ENDPOINTS {
        shared.metrics.ws_sessions.with_label_values(&[endpoint]);
    }
    for kind in ws::FRAME_TYPES {
        shared.metrics.ws_frames_sent.with_label_values(&[kind]);
    }
    for family in [
        "notifications:user",
        "system:announcements",
        "simulation:events",
        "project:events",
    ] {
        shared.metrics.events_received.with_label_values(&[family]);
    }
    // Draining: every WebSocket is told to go (1001) so its client reconnects elsewhere.
    {
        let registry = registry.clone();
        let feeds = feeds.clone();
        let collab = collab.clone();
        shared.drain.on_drain(move || {
            let n = registry.close_all(CLOSE_GOING_AWAY, "server shutting down")
                + feeds.close_all(CLOSE_GOING_AWAY, "server shutting down")
                + collab.close_all(CLOSE_GOING_AWAY, "server shutting down");
            tracing::info!(sessions = n, "draining: WebSockets closed with 1001");
        });
    }
    let state = state::GatewayState {
        upstream,
        registry: registry.clone(),
        feeds,
        collab,
        sockets,
        limiter: limits::Limiter::new(
            g.rate_limits.clone(),
            shared.redis.clone(),
            shared.ns.clone(),
        ),
        settings: g.clone(),
        metrics: shared.metrics.clone(),
        view: shared.view.clone(),
        // The gateway owns no data: PostgreSQL is not its dependency.
        probe: shared.probe(false),
        instance_id: shared.instance_id.clone(),
        fault_injection: shared.settings.admin.fault_injection,
        instances: shared.instances.clone(),
        probes: shared.probes("gateway", ready),
    };
    let adapter = grpc::GatewayGrpc {
        registry: registry.clone(),
        health: shared.probe(true),
        instance_id: shared.instance_id.clone(),
        redis: shared.redis.clone(),
        ns: shared.ns.clone(),
    };
    let routes = routes(&["gateway.GatewayService"], move |b| {
        b.add_service(GatewayServiceServer::new(adapter.clone()));
    });
    let children = vec![subscriber::NotificationSubscriber::child(
        redis_client,
        registry,
        shared.ns.clone(),
        shared.metrics.clone(),
    )];
    Ok(standard_tree(
        shared,
        "gateway",
        children,
        routes,
        grpc,
        http,
        Some(http::http_factory(
            state,
            Duration::from_millis(shared.settings.shutdown.grace_ms),
        )),
    ))
}
