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

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(json_resource("/health").route(web::get().to(health)));
}

/// The services the gateway calls: it is ready when each has an instance that answers.
pub const BACKENDS: [Service; 3] = [Service::Auth, Service::Project, Service::Simulation];
/// The longest a backend's health check may take before it counts as down.
const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

/// A backend service's state: healthy with its instance, or what is wrong.
#[derive(Debug, Default, Serialize)]
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
#[derive(Debug, Serialize)]
struct DependencyHealth {
    healthy: bool,
    latency_ms: f64,
    detail: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Component {
    Backend(BackendHealth),
    Dependency(DependencyHealth),
}

#[derive(Debug, Serialize)]
struct HealthBody {
    status: &'static str,
    service: &'static str,
    instance_id: String,
    version: &'static str,
    uptime_seconds: u64,
    websocket_sessions: usize,
    down: Vec<String>,
    components: BTreeMap<String, Component>,
}

async fn health(state: web::Data<GatewayState>) -> HttpResponse {
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
        components,
    };
    if !critical_down {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(body)
    }
}
