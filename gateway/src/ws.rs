//! `/ws/notifications`: one [`WsSession`] actor per WebSocket connection.
//!
//! Life of a session:
//! 1. Connected, not authenticated. The token comes from an `Authorization: Bearer` header
//!    (checked at once) or from the first frame `{"type":"auth","token":...}`. Any other first
//!    frame, an invalid token, or no token within `gateway.ws_auth_timeout_ms` closes the
//!    socket with 4001.
//! 2. Authenticated: registered in the [`Registry`]; the user's first session on this
//!    instance makes the subscriber listen on `notifications:user:{id}`. Events arrive as
//!    [`Deliver`] messages and go out as text frames. The socket is closed with 4009 when the
//!    access token expires (the client reconnects with a fresh one).
//! 3. Throughout: the server pings every `ws_ping_interval_ms`; a client silent for
//!    `ws_client_timeout_ms` is dropped. `{"type":"ping"}` is answered with a pong frame.
//!
//! Sessions are not supervised: a session lives and dies with its connection, and a client
//! reconnects. Its `stopped` always unregisters it.

use crate::http::GatewayState;
use crate::registry::ClientSummary;
use crate::subscriber::{Subscribe, Unsubscribe};
use actix::prelude::*;
use actix_web_actors::ws;
use sdsim_actors::error::ServiceError;
use sdsim_protocols::frames::{close_codes, ClientFrame, ServerFrame};
use sdsim_protocols::proto::auth::ValidateTokenRequest;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const ENDPOINT_NOTIFICATIONS: &str = "/ws/notifications";

/// A frame to send to a client, already serialized (shared by every recipient).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<str>);

struct Authed {
    user_id: String,
}

pub struct WsSession {
    id: Uuid,
    state: GatewayState,
    remote_addr: String,
    header_token: Option<String>,
    last_heard: Instant,
    auth: Option<Authed>,
    authenticating: bool,
}

impl WsSession {
    pub fn new(state: GatewayState, remote_addr: String, header_token: Option<String>) -> Self {
        Self {
            id: Uuid::new_v4(),
            state,
            remote_addr,
            header_token,
            last_heard: Instant::now(),
            auth: None,
            authenticating: false,
        }
    }

    fn close(ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &str) {
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::from(code),
            description: Some(reason.to_string()),
        }));
        ctx.stop();
    }

    fn send(&self, ctx: &mut ws::WebsocketContext<Self>, frame: &ServerFrame) {
        if let Ok(text) = serde_json::to_string(frame) {
            let kind = match frame {
                ServerFrame::AuthOk { .. } => "auth_ok",
                ServerFrame::Pong { .. } => "pong",
                ServerFrame::Error { .. } => "error",
            };
            self.state
                .metrics
                .ws_frames_sent
                .with_label_values(&[kind])
                .inc();
            ctx.text(text);
        }
    }

    fn authenticate(&mut self, token: String, ctx: &mut ws::WebsocketContext<Self>) {
        self.authenticating = true;
        let upstream = self.state.upstream.clone();
        let fut = async move {
            let req = ValidateTokenRequest {
                token,
                calling_service: "gateway".into(),
                request_id: Uuid::new_v4().to_string(),
            };
            crate::rpc!(upstream, auth, "ValidateToken", validate_token, req).await
        };
        // wait(): no other frame is handled until the answer is in.
        ctx.wait(fut.into_actor(self).map(|res, act, ctx| {
            act.authenticating = false;
            match res {
                Ok(v) if v.valid => act.authenticated(v.user_id, v.session_id, v.expires_at, ctx),
                Ok(v) => {
                    let reason = crate::http::token_error_message(&v.error);
                    Self::close(ctx, close_codes::UNAUTHENTICATED, reason);
                }
                Err(ServiceError::Unavailable(m)) => {
                    tracing::warn!(error = %m, "WebSocket authentication: auth unavailable");
                    // 1013: try again later.
                    Self::close(ctx, 1013, "authentication service unavailable; retry");
                }
                Err(e) => {
                    tracing::error!(error = %e, "WebSocket authentication failed");
                    Self::close(ctx, 1011, "authentication failed");
                }
            }
        }));
    }

    fn authenticated(
        &mut self,
        user_id: String,
        session_id: String,
        expires_at: i64,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let summary = ClientSummary {
            client_id: self.id,
            user_id: user_id.clone(),
            session_id: session_id.clone(),
            endpoint: ENDPOINT_NOTIFICATIONS,
            remote_addr: self.remote_addr.clone(),
            connected_at: chrono::Utc::now(),
            subscriptions: vec![
                format!("notifications:user:{user_id}"),
                "system:announcements".to_string(),
            ],
        };
        let first = self.state.registry.add(summary, ctx.address());
        if first {
            match self.state.subscriber.get() {
                Some(sub) => sub.do_send(Subscribe(user_id.clone())),
                None => tracing::debug!("subscriber restarting; it resubscribes from the registry"),
            }
        }
        self.auth = Some(Authed {
            user_id: user_id.clone(),
        });
        self.send(
            ctx,
            &ServerFrame::AuthOk {
                user_id,
                session_id,
            },
        );
        let left = expires_at - chrono::Utc::now().timestamp();
        let left = Duration::from_secs(left.max(0) as u64);
        ctx.run_later(left, |_, ctx| {
            Self::close(
                ctx,
                close_codes::TOKEN_EXPIRED,
                "access token expired; reconnect with a fresh token",
            );
        });
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let frame = serde_json::from_str::<ClientFrame>(text);
        match (frame, self.auth.is_some()) {
            (Ok(ClientFrame::Ping { id }), _) => self.send(ctx, &ServerFrame::Pong { id }),
            (Ok(ClientFrame::Auth { .. }), true) => self.send(
                ctx,
                &ServerFrame::Error {
                    code: "already_authenticated".into(),
                    message: "this connection is already authenticated".into(),
                },
            ),
            (Ok(ClientFrame::Auth { token }), false) => {
                if !self.authenticating {
                    self.authenticate(token, ctx);
                }
            }
            (Err(_), false) => Self::close(
                ctx,
                close_codes::UNAUTHENTICATED,
                r#"the first frame must be {"type":"auth","token":"<access token>"}"#,
            ),
            (Err(e), true) => self.send(
                ctx,
                &ServerFrame::Error {
                    code: "bad_frame".into(),
                    message: format!("unrecognised frame: {e}"),
                },
            ),
        }
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.state
            .metrics
            .ws_sessions
            .with_label_values(&[ENDPOINT_NOTIFICATIONS])
            .inc();
        let g = &self.state.settings;
        let timeout = Duration::from_millis(g.ws_client_timeout_ms);
        ctx.run_interval(
            Duration::from_millis(g.ws_ping_interval_ms),
            move |act, ctx| {
                if act.last_heard.elapsed() > timeout {
                    tracing::debug!(client = %act.id, "WebSocket client timed out");
                    Self::close(ctx, 1001, "client stopped answering pings");
                    return;
                }
                ctx.ping(b"");
            },
        );
        match self.header_token.take() {
            Some(token) => self.authenticate(token, ctx),
            None => {
                ctx.run_later(Duration::from_millis(g.ws_auth_timeout_ms), |act, ctx| {
                    if act.auth.is_none() {
                        Self::close(ctx, close_codes::UNAUTHENTICATED, "authentication timeout");
                    }
                });
            }
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        tracing::debug!(
            client = %self.id,
            user = ?self.auth.as_ref().map(|a| &a.user_id),
            "WebSocket session ended"
        );
        self.state
            .metrics
            .ws_sessions
            .with_label_values(&[ENDPOINT_NOTIFICATIONS])
            .dec();
        if let Some((user, last)) = self.state.registry.remove(self.id) {
            if last {
                if let Some(sub) = self.state.subscriber.get() {
                    sub.do_send(Unsubscribe(user));
                }
            }
        }
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        if self.auth.is_some() {
            self.state
                .metrics
                .ws_frames_sent
                .with_label_values(&["event"])
                .inc();
            ctx.text(&*msg.0);
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let msg = match item {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(client = %self.id, error = %e, "WebSocket protocol error");
                Self::close(ctx, 1002, "protocol error");
                return;
            }
        };
        self.last_heard = Instant::now();
        match msg {
            ws::Message::Ping(b) => ctx.pong(&b),
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Text(t) => self.on_text(&t, ctx),
            ws::Message::Binary(_) => {
                if self.auth.is_none() {
                    Self::close(
                        ctx,
                        close_codes::UNAUTHENTICATED,
                        "the first frame must be a JSON auth frame",
                    );
                } else {
                    self.send(
                        ctx,
                        &ServerFrame::Error {
                            code: "bad_frame".into(),
                            message: "binary frames are not supported; send JSON text".into(),
                        },
                    );
                }
            }
            ws::Message::Continuation(_) => {}
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
        }
    }
}
