//! The HTTP port of a backend service: `/health`, `/livez`, `/readyz` (see
//! [`crate::probes`]), `/metrics`, `/admin/supervision` (the
//! process's live supervision tree as JSON), `/admin/instances` (discovery's view),
//! `/admin/mesh` (pools, breakers and targets of the calls this process makes), and, when `admin.fault_injection` is on,
//! `POST /admin/supervision/{supervisor}/{child}/crash` to make a supervised actor panic.

use crate::health::HealthProbe;
use crate::metrics::Metrics;
use crate::probes::Probes;
use crate::server::HttpFactory;
use crate::supervision::TreeView;
use actix_web::{web, App, HttpResponse};
use std::sync::Arc;

#[derive(Clone)]
pub struct AdminState {
    pub service: &'static str,
    pub metrics: Arc<Metrics>,
    pub view: TreeView,
    pub probe: HealthProbe,
    pub fault_injection: bool,
    pub instances: crate::discovery::View,
    pub mesh: crate::mesh::Mesh,
    pub probes: Probes,
}

/// Registers `/livez`, `/readyz`, `/metrics` and `/admin/supervision` (and, with
/// `fault_injection`, the crash endpoint) on any actix-web app.
pub fn configure_common(
    cfg: &mut web::ServiceConfig,
    metrics: Arc<Metrics>,
    view: TreeView,
    instances: crate::discovery::View,
    mesh: crate::mesh::Mesh,
    fault_injection: bool,
    probes: Probes,
) {
    let p = probes.clone();
    cfg.route(
        "/livez",
        web::get().to(move || {
            let p = p.clone();
            async move {
                match p.live() {
                    Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "alive"})),
                    Err(why) => HttpResponse::ServiceUnavailable()
                        .json(serde_json::json!({"status": "dead", "detail": why})),
                }
            }
        }),
    );
    cfg.route(
        "/readyz",
        web::get().to(move || {
            let p = probes.clone();
            async move {
                match p.ready().await {
                    Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
                    Err(why) => HttpResponse::ServiceUnavailable()
                        .insert_header(("Retry-After", "1"))
                        .json(serde_json::json!({"status": "not_ready", "failing": why})),
                }
            }
        }),
    );
    cfg.route(
        "/admin/mesh",
        web::get().to(move || {
            let m = mesh.clone();
            async move { HttpResponse::Ok().json(m.snapshot()) }
        }),
    );
    cfg.route(
        "/admin/instances",
        web::get().to(move || {
            let i = instances.clone();
            async move { HttpResponse::Ok().json(serde_json::json!({ "services": i.to_json() })) }
        }),
    );
    if fault_injection {
        let v = view.clone();
        cfg.route(
            "/admin/supervision/{supervisor}/{child}/crash",
            web::post().to(move |path: web::Path<(String, String)>| {
                let v = v.clone();
                async move {
                    let (supervisor, child) = path.into_inner();
                    match v.inject_fault(&supervisor, &child).await {
                        Ok(()) => HttpResponse::Accepted().json(serde_json::json!({
                            "crashed": {"supervisor": supervisor, "child": child}
                        })),
                        Err(message) => HttpResponse::NotFound().json(serde_json::json!({
                            "error": {"code": "not_found", "message": message, "field": "child"}
                        })),
                    }
                }
            }),
        );
    }
    let m = metrics.clone();
    cfg.route(
        "/metrics",
        web::get().to(move || {
            let m = m.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("text/plain; version=0.0.4; charset=utf-8")
                    .body(m.render())
            }
        }),
    );
    cfg.route(
        "/admin/supervision",
        web::get().to(move || {
            let v = view.clone();
            async move { HttpResponse::Ok().json(v.to_json()) }
        }),
    );
}

async fn health(state: web::Data<AdminState>) -> HttpResponse {
    let report = state.probe.check(state.service, true).await;
    let deps: Vec<serde_json::Value> = report
        .dependencies
        .iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name, "healthy": d.healthy, "detail": d.detail, "latency_ms": d.latency_ms
            })
        })
        .collect();
    let all_up = report.dependencies.iter().all(|d| d.healthy);
    let body = serde_json::json!({
        "status": match (report.status == "SERVING", all_up) {
            (true, true) => "ok",
            (true, false) => "degraded",
            (false, _) => "down",
        },
        "service": report.service,
        "instance_id": report.instance_id,
        "version": report.version,
        "uptime_seconds": report.uptime_seconds,
        "dependencies": deps,
    });
    if report.status == "SERVING" {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

/// The factory of a backend service's admin HTTP server.
pub fn http_factory(state: AdminState) -> HttpFactory {
    Arc::new(move |listener| {
        let state = state.clone();
        let server = actix_web::HttpServer::new(move || {
            let s = state.clone();
            App::new()
                .app_data(web::Data::new(s.clone()))
                .route("/health", web::get().to(health))
                .configure(|cfg| {
                    configure_common(
                        cfg,
                        s.metrics.clone(),
                        s.view.clone(),
                        s.instances.clone(),
                        s.mesh.clone(),
                        s.fault_injection,
                        s.probes.clone(),
                    )
                })
        })
        .workers(1)
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        Ok(server)
    })
}
