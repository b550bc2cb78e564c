//! `GET /health`: every backend and Redis, in one answer. 200 while the gateway can serve
//! (every backend answers), `"degraded"` when something it can do without (Redis: live
//! events) is down; 503 when a backend is down. Load balancers should ask `/readyz`.

use super::json_resource;
use crate::state::GatewayState;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use sdsim_protocols::Service;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The routes of this area in the OpenAPI document: `GET /health`, and the operator endpoints
/// every process serves (registered by `sdsim_runtime::admin::configure_common`, described by
/// the handler-less functions at the end of this file).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        health,
        livez,
        readyz,
        metrics,
        admin_supervision,
        admin_instances,
        admin_mesh,
        crash_child
    ),
    components(schemas(HealthBody, Component, BackendHealth, DependencyHealth))
)]
pub(crate) struct Api;

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(json_resource("/health").route(web::get().to(health)));
}

/// The services the gateway calls: it is ready when each has an instance that answers.
pub const BACKENDS: [Service; 3] = [Service::Auth, Service::Project, Service::Simulation];
/// The longest a backend's health check may take before it counts as down.
const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

/// A backend service's state: healthy with its instance, or what is wrong.
// Closed (no other fields), so that the spec tells a backend from a dependency.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BackendHealth {
    healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uptime_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// A dependency's state (PostgreSQL, Redis): `detail` is `null` when healthy.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DependencyHealth {
    healthy: bool,
    latency_ms: f64,
    detail: Option<String>,
}

/// A backend service or a dependency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = HealthComponent)]
#[serde(untagged)]
enum Component {
    Backend(BackendHealth),
    Dependency(DependencyHealth),
}

/// The gateway's health and that of everything it calls.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct HealthBody {
    /// `ok`; `degraded` (only Redis, which it can do without, is down); `down` (a backend or
    /// another dependency is down: 503).
    status: &'static str,
    /// `gateway`.
    service: &'static str,
    instance_id: String,
    version: &'static str,
    uptime_seconds: u64,
    /// Open WebSocket connections on this instance.
    websocket_sessions: usize,
    /// The names of the components that are down.
    down: Vec<String>,
    /// Each backend service (auth, project, simulation) and dependency, by name.
    components: BTreeMap<String, Component>,
}

/// The gateway's health: every backend service (auth, project, simulation) and dependency
/// (Redis), in one answer. Load balancers should ask `/readyz`.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "The gateway can serve (`status` ok, or degraded when only Redis is down)", body = HealthBody),
        (status = 503, description = "A backend or a critical dependency is down (`status` down; named in `down`)", body = HealthBody,
            headers(("Retry-After" = u64, description = "Seconds to wait (5)"))),
    ))]
async fn health(req: actix_web::HttpRequest, state: web::Data<GatewayState>) -> HttpResponse {
    // Why a part is down (addresses, error text) is for operators; anyone may see what is.
    let operator = super::extract::ClientOrigin::of(&req, &state.settings)
        .ip
        .parse()
        .is_ok_and(|ip| state.settings.is_operator(ip));
    let deadline = HEALTH_DEADLINE;
    let up = &state.upstream;
    let (auth, project, simulation, deps) = futures_util::join!(
        up.health(Service::Auth, deadline),
        up.health(Service::Project, deadline),
        up.health(Service::Simulation, deadline),
        state.probe.dependencies(),
    );
    let mut components = BTreeMap::new();
    let mut down = Vec::new();
    for (service, res) in BACKENDS.iter().zip([auth, project, simulation]) {
        let name = service.as_str();
        let entry = match res {
            Ok(h) if h.status == "SERVING" => BackendHealth {
                healthy: true,
                instance_id: Some(h.instance_id),
                version: Some(h.version),
                uptime_seconds: Some(h.uptime_seconds),
                detail: None,
            },
            Ok(h) => {
                let failing: Vec<String> = h
                    .dependencies
                    .iter()
                    .filter(|d| !d.healthy)
                    .map(|d| format!("{}: {}", d.name, d.detail))
                    .collect();
                BackendHealth {
                    detail: Some(format!(
                        "{name} reports {}; failing: {}",
                        h.status,
                        failing.join(", ")
                    )),
                    instance_id: Some(h.instance_id),
                    ..BackendHealth::default()
                }
            }
            Err(e) => BackendHealth {
                detail: Some(e.to_string()),
                ..BackendHealth::default()
            },
        };
        if !entry.healthy {
            down.push(name.to_string());
        }
        components.insert(name.to_string(), Component::Backend(entry));
    }
    for d in deps {
        if !d.healthy {
            down.push(d.name.clone());
        }
        components.insert(
            d.name.clone(),
            Component::Dependency(DependencyHealth {
                healthy: d.healthy,
                latency_ms: (d.latency_ms * 1000.0).round() / 1000.0,
                detail: (!d.detail.is_empty()).then_some(d.detail),
            }),
        );
    }
    let critical_down = down.iter().any(|d| sdsim_runtime::health::is_critical(d));
    let body = HealthBody {
        status: match (down.is_empty(), critical_down) {
            (true, _) => "ok",
            (false, false) => "degraded",
            (false, true) => "down",
        },
        service: "gateway",
        instance_id: state.instance_id.clone(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.probe.started.elapsed().as_secs(),
        websocket_sessions: state.registry.len(),
        down,
        components: if operator {
            components
        } else {
            components
                .into_iter()
                .map(|(name, mut c)| {
                    match &mut c {
                        Component::Backend(b) => b.detail = None,
                        Component::Dependency(d) => d.detail = None,
                    }
                    (name, c)
                })
                .collect()
        },
    };
    if !critical_down {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(body)
    }
}

// The operator endpoints of every process, registered by
// `sdsim_runtime::admin::configure_common` (their handlers are closures in that crate):
// described here, for the OpenAPI document only.

/// Liveness: whether the process's supervision tree is running (restart the process if not).
#[utoipa::path(get, path = "/livez", tag = "operations",
    responses(
        (status = 200, description = "`{\"status\": \"alive\"}`", body = serde_json::Value),
        (status = 503, description = "`{\"status\": \"dead\", \"detail\": \"...\"}`: the supervisor gave up or is not running", body = serde_json::Value),
    ))]
#[allow(dead_code)]
fn livez() {}

/// Readiness: whether this process should get traffic (not draining, and everything it needs
/// answers).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`", body = serde_json::Value),
        (status = 503, description = "`{\"status\": \"not_ready\", \"failing\": [\"...\"]}`: draining, or what does not answer", body = serde_json::Value,
            headers(("Retry-After" = u64, description = "Seconds to wait (1)"))),
    ))]
#[allow(dead_code)]
fn readyz() {}

/// The process's metrics, in the Prometheus text exposition format (version 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Every metric of the process", body = String, content_type = "text/plain"),
    ))]
#[allow(dead_code)]
fn metrics() {}

/// The process's live supervision tree.
#[utoipa::path(get, path = "/admin/supervision", tag = "operations",
    responses(
        (status = 200, description = "`{\"supervisors\": [...]}`: each root supervisor (`name`, `service`, `strategy`, `max_restarts`, `period_seconds`, `recent_restarts`, `gave_up`) with its `children` (`id`, `kind`, `restart`, `status`, `restarts`, `generation`, `last_exit`), nested supervisors inlined under `supervisor`", body = serde_json::Value),
    ))]
#[allow(dead_code)]
fn admin_supervision() {}

/// Discovery's view: the instances of each service this process knows.
#[utoipa::path(get, path = "/admin/instances", tag = "operations",
    responses(
        (status = 200, description = "`{\"services\": {\"<service>\": [{\"service\", \"instance_id\", \"grpc_addr\", \"http_addr\", \"status\", \"version\", \"started_at\", \"heartbeat_at\", \"load\"}]}}`", body = serde_json::Value),
    ))]
#[allow(dead_code)]
fn admin_instances() {}

/// The calls this process makes: discovery freshness, the channel budget, and each called
/// service's retry budget and targets (pools, breakers).
#[utoipa::path(get, path = "/admin/mesh", tag = "operations",
    responses(
        (status = 200, description = "`{\"discovery\": {\"fresh\", \"last_refresh_ms_ago\"}, \"channels\": {\"total\", \"cap\"}, \"services\": {\"<service>\": {\"priority\", \"retry_budget_tokens\", \"static\", \"targets\": [...]}}}`", body = serde_json::Value),
    ))]
#[allow(dead_code)]
fn admin_mesh() {}

/// Makes a supervised actor panic, to watch its supervisor restart it. Exists only when
/// `admin.fault_injection` is on (otherwise 404).
#[utoipa::path(post, path = "/admin/supervision/{supervisor}/{child}/crash", tag = "operations",
    params(
        ("supervisor" = String, Path, description = "The supervisor's name (see GET /admin/supervision)"),
        ("child" = String, Path, description = "The child's id"),
    ),
    responses(
        (status = 202, description = "`{\"crashed\": {\"supervisor\", \"child\"}}`", body = serde_json::Value),
        (status = 404, description = "No such supervisor or child, or fault injection is off", body = crate::http::openapi::ErrorBody),
    ))]
#[allow(dead_code)]
fn crash_child() {}
