//! The WebSocket endpoints' upgrade: `GET /ws/notifications` (the session itself is the
//! [`crate::ws::WsSession`] actor).

use super::extract::{bearer_token, ClientOrigin};
use super::json_resource;
use crate::error::ApiError;
use crate::state::GatewayState;
use crate::ws::WsSession;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(json_resource("/ws/notifications").route(web::get().to(notifications)));
}

async fn notifications(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    origin: ClientOrigin,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    // A malformed header is refused before the upgrade, with JSON like every REST error.
    let token = bearer_token(&req)?;
    let session = WsSession::new(state.get_ref().clone(), origin.ip, token);
    actix_web_actors::ws::start(session, &req, stream).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_upgrade_required",
            format!("this endpoint speaks WebSocket only: {e}"),
        )
        .into()
    })
}
