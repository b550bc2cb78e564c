//! The WebSocket endpoints' upgrade: `GET /ws/notifications`, `GET /ws/simulation/{id}` and
//! `GET /ws/collaboration/{project_id}` (`?since=<offset>` to resume); the session itself is
//! the [`crate::ws::WsSession`] actor.

use super::extract::{bearer_token, ClientOrigin};
use super::json_resource;
use crate::error::ApiError;
use crate::state::GatewayState;
use crate::ws::{Endpoint, WsSession};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(json_resource("/ws/notifications").route(web::get().to(notifications)))
        .service(json_resource("/ws/simulation/{id}").route(web::get().to(simulation)))
        .service(
            json_resource("/ws/collaboration/{project_id}").route(web::get().to(collaboration)),
        );
}

#[derive(Debug, serde::Deserialize)]
struct WatchQuery {
    #[serde(default)]
    since: Option<String>,
}

async fn simulation(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    origin: ClientOrigin,
    path: web::Path<String>,
    query: crate::body::ApiQuery<WatchQuery>,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let endpoint = Endpoint::Simulation {
        run: path.into_inner(),
        since: query.into_inner().since,
    };
    upgrade(state, req, origin, endpoint, stream)
}

async fn collaboration(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    origin: ClientOrigin,
    path: web::Path<String>,
    query: crate::body::ApiQuery<WatchQuery>,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let endpoint = Endpoint::Collaboration {
        project: path.into_inner(),
        since: query.into_inner().since,
    };
    upgrade(state, req, origin, endpoint, stream)
}

async fn notifications(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    origin: ClientOrigin,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    upgrade(state, req, origin, Endpoint::Notifications, stream)
}

fn upgrade(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    origin: ClientOrigin,
    endpoint: Endpoint,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    // A malformed header is refused before the upgrade, with JSON like every REST error.
    let token = bearer_token(&req)?;
    let session = WsSession::new(state.get_ref().clone(), endpoint, origin.ip, token);
    actix_web_actors::ws::start(session, &req, stream).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_upgrade_required",
            format!("this endpoint speaks WebSocket only: {e}"),
        )
        .into()
    })
}
