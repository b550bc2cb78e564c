//! The gateway's REST API and WebSocket endpoints on port 8000, a module per area:
//!
//! | module | routes |
//! | --- | --- |
//! | [`auth`] | `/api/auth/*`: register, login, refresh, logout, profile, password, sessions, e-mail verification, password reset |
//! | [`admin`] | `/api/admin/*`: users, roles, locks, sessions, the audit log |
//! | [`notifications`] | `/api/notifications`: the inbox; `/api/notifications/read` |
//! | [`simulations`] | `/api/simulations/validate`: a design's problems and analytic preview |
//! | [`projects`] | `/api/projects/*`, `/api/templates/*`, `/api/links/*`: designs and trash; its parts: versions and diffs, templates, forks, import and export, sharing and links, presence and analytics |
//! | [`websocket`] | `GET /ws/notifications` |
//! | [`console`] | `/` and every other path: the web page (embedded assets), never under `/api/` |
//! | [`health`] | `GET /health`: every backend, PostgreSQL and Redis; 503 naming what is down |
//! | (runtime) | `GET /metrics`, `/admin/supervision`, `/admin/instances`, `/admin/mesh` |
//!
//! [`extract`] holds what handlers take from a request ([`extract::AuthUser`]: the token
//! validated through auth (or the gateway's moment of trust, [`crate::tokens`]), which every protected route takes; [`extract::ClientOrigin`]),
//! [`views`] the typed JSON answers. Every error is JSON (see [`crate::error`]); unknown
//! routes and methods too.

pub mod admin;
pub mod auth;
pub mod console;
pub mod extract;
pub mod health;
pub mod notifications;
pub mod openapi;
pub mod projects;
pub mod simulations;
pub mod throttle;
pub mod views;
pub mod websocket;

use crate::body::BodyLimit;
use crate::error::ApiError;
use crate::state::GatewayState;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse};
use sdsim_runtime::admin::configure_common;
use sdsim_runtime::server::HttpFactory;
use std::sync::Arc;
use std::time::Instant;

/// The factory of the gateway's HTTP server (called again at each restart).
/// `grace`: how long in-flight requests may take to finish when it stops.
pub fn http_factory(state: GatewayState, grace: std::time::Duration) -> HttpFactory {
    Arc::new(move |listener| {
        let state = state.clone();
        let workers = match state.settings.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let server = actix_web::HttpServer::new(move || app(state.clone()))
            .workers(workers)
            // Live WebSocket frames are small and frequent: send each at once, not after
            // the previous one is acknowledged (Nagle).
            .tcp_nodelay(true)
            .disable_signals()
            .shutdown_timeout(grace.as_secs().max(1))
            .listen(listener)?
            .run();
        Ok(server)
    })
}

fn app(
    state: GatewayState,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let metrics = state.metrics.clone();
    let view = state.view.clone();
    let fault_injection = state.fault_injection;
    let instances = state.instances.clone();
    let mesh = state.upstream.mesh().clone();
    let probes = state.probes.clone();
    let limit = BodyLimit(state.settings.max_body_bytes);
    let cors = cors(&state.settings.cors_origins);
    let limiter = state.limiter.clone();
    let gateway_settings = state.settings.clone();
    App::new()
        .app_data(web::Data::new(state))
        .app_data(limit)
        // A path segment of the wrong type (`/versions/abc`) names nothing: a JSON 404.
        .app_data(web::PathConfig::default().error_handler(|err, req| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("nothing at {}: {err}", req.path()),
            )
            .field("path")
            .into()
        }))
        // Rate limits: the address's before any work, the user's in `AuthUser`.
        .wrap(throttle::Throttle {
            limiter,
            settings: gateway_settings,
        })
        .wrap_fn({
            let metrics = metrics.clone();
            move |req, srv| {
                let start = Instant::now();
                let method = req.method().to_string();
                let metrics = metrics.clone();
                // The request's id (the client's X-Request-Id, or one made here): on every log
                // line of every hop (gRPC metadata), and in the answer.
                let id = sdsim_runtime::request_id::accept(
                    req.headers()
                        .get(sdsim_runtime::request_id::HEADER)
                        .and_then(|v| v.to_str().ok()),
                );
                let span = tracing::info_span!("http", request_id = %id, %method, path = %logged_path(req.path()));
                let fut = {
                    let _in = span.enter();
                    srv.call(req)
                };
                let fut = sdsim_runtime::request_id::scope(
                    id.clone(),
                    tracing::Instrument::instrument(fut, span),
                );
                async move {
                    let mut res = fut.await?;
                    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&id) {
                        res.headers_mut().insert(
                            actix_web::http::header::HeaderName::from_static(
                                sdsim_runtime::request_id::HEADER,
                            ),
                            v,
                        );
                    }
                    let route = res
                        .request()
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_string());
                    metrics
                        .http_request_seconds
                        .with_label_values(&[&method, &route, res.status().as_str()])
                        .observe(start.elapsed().as_secs_f64());
                    Ok(res)
                }
            }
        })
        // Each layer of the stack says why it is there: the state and body limit every
        // handler reads; JSON errors for bad query strings; the latency of every request by
        // route; then the areas; then the operator endpoints every process has.
        // Outermost: CORS answers preflights before anything else runs; then the security
        // headers every answer has (the console's pages set their own CSP first).
        .wrap(
            actix_web::middleware::DefaultHeaders::new()
                .add((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .add((actix_web::http::header::REFERRER_POLICY, "no-referrer"))
                .add((actix_web::http::header::X_FRAME_OPTIONS, "DENY"))
                .add((
                    actix_web::http::header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; frame-ancestors 'none'",
                )),
        )
        .wrap(actix_web::middleware::Condition::new(
            cors.is_some(),
            cors.unwrap_or_default(),
        ))
        .configure(auth::configure)
        .configure(admin::configure)
        .configure(projects::configure)
        .configure(notifications::configure)
        .configure(simulations::configure)
        .configure(websocket::configure)
        .configure(health::configure)
        .configure(openapi::configure)
        .configure(|cfg| {
            configure_common(cfg, metrics, view, instances, mesh, fault_injection, probes)
        })
        // Last: every path no route above matched (the page, or a JSON 404 under the API).
        .configure(console::configure)
        .default_service(web::to(not_found))
}

/// CORS for the configured origins (`gateway.cors_origins`), none by default. Cookies are
/// never allowed cross-origin (the console's refresh cookie is same-site only).
fn cors(origins: &[String]) -> Option<actix_cors::Cors> {
    if origins.is_empty() {
        return None;
    }
    use actix_web::http::header;
    let mut c = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static(sdsim_runtime::request_id::HEADER),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            header::HeaderName::from_static(sdsim_runtime::request_id::HEADER),
        ])
        .block_on_origin_mismatch(false)
        .max_age(600);
    for o in origins {
        c = c.allowed_origin(o.trim_end_matches('/'));
    }
    Some(c)
}

/// A resource whose wrong-method answer is a JSON 405.
pub(crate) fn json_resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|req: HttpRequest| async move {
        ApiError::method_not_allowed(req.method().as_str(), req.path()).error_response_json()
    }))
}

pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::route_not_found(req.path()).error_response_json()
}

impl ApiError {
    pub(crate) fn error_response_json(&self) -> HttpResponse {
        actix_web::ResponseError::error_response(self)
    }
}

/// The path a request is routed by: percent-decoded as the router decodes it (`/%61pi` is
/// `/api`), so limits and reserved prefixes see what the routes see.
pub fn routed_path(req: &HttpRequest) -> &str {
    req.match_info().as_str()
}

/// A request's path for the log: a share link's token (a secret, stored only hashed) is
/// masked.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/api/links/", "/links/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            return format!("{prefix}…{tail}").into();
        }
    }
    path.into()
}

#[cfg(test)]
mod path_tests {
    use super::logged_path;

    #[test]
    fn share_link_tokens_stay_out_of_the_log() {
        assert_eq!(logged_path("/api/links/s3cret/fork"), "/api/links/…/fork");
        assert_eq!(logged_path("/links/s3cret"), "/links/…");
        assert_eq!(
            logged_path("/api/projects/1/links/2"),
            "/api/projects/1/links/2"
        );
    }
}
