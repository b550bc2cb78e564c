//! The WebSocket endpoints: one [`WsSession`] actor per connection, on `/ws/notifications`,
//! `/ws/simulation/{id}` (a run's windows, [`crate::feeds`]) and
//! `/ws/collaboration/{project_id}` (a project's live session, [`crate::collab`]: edits go to
//! the project service one at a time per session, in the order sent, and each is acked once
//! committed).
//!
//! Life of a session:
//! 1. Connected, not authenticated. The token comes from an `Authorization: Bearer` header
//!    (checked at once) or from the first frame `{"type":"auth","token":...}`. Any other first
//!    frame, an invalid token, or no token within `gateway.ws_auth_timeout_ms` closes the
//!    socket with 4001.
//! 2. Authenticated: registered in the [`Registry`]; the user's first session on this
//!    instance makes the subscriber listen on `notifications:user:{id}`, and
//!    `RegisterClient` can attach more channels (`simulation:events:*`, `project:events:*`).
//!    Events arrive as [`Deliver`] messages and go out as text frames. The socket is closed
//!    with 4009 when the access token expires (the client reconnects with a fresh one), and
//!    with 1000 and the caller's reason when a backend calls `UnregisterClient`
//!    ([`crate::outlet::CLOSE_UNREGISTERED`]).
//! 3. Throughout: the server pings every `ws_ping_interval_ms`; a client silent for
//!    `ws_client_timeout_ms` is dropped. `{"type":"ping"}` is answered with a pong frame.
//!
//! # Slow clients
//!
//! `WebsocketContext` (actix-web-actors) has no bounded write buffer and says nothing of what
//! it holds: `ctx.text` appends to a queue that is handed to the HTTP/1 dispatcher whole at
//! its next poll. And the dispatcher polls the session (the actor runs *inside* the response
//! body stream) only while its own write buffer is under 32 KiB, so when a client stops
//! reading, the actor stops running altogether and every [`Deliver`] piles up in its
//! (unbounded, `do_send`) mailbox. The session cannot watch itself, so:
//! - the sender counts: every frame is admitted through the session's [`Backlog`] (bytes and
//!   frames sent to the actor and not yet handed to the socket), in the [`Registry`], before
//!   it is sent; the frame that would take a session over `gateway.ws_max_pending_bytes` or
//!   `gateway.ws_max_pending_frames` is refused, the session is evicted from the registry at once (no
//!   more frames, its channels released) and told to close with 4008;
//! - the actor hands frames to the socket at the pace it drains: events wait in the actor's
//!   own queue and a pump, polled each time the dispatcher polls the body, moves at most
//!   [`FLUSH_BATCH_BYTES`] per poll into the context. So the backlog really is "not yet taken
//!   by the socket", give or take 32 KiB + one batch in the dispatcher's buffer.
//!
//! Memory per stalled session is thus bounded by the limits, plus that buffer and the kernel's
//! socket buffers. The close frame itself can only be written once the socket drains: a client
//! that never reads again keeps its (bounded) connection until TCP or the client gives up,
//! since actix-web has no write timeout to abort a response body.
//!
//! Sessions are not supervised: a session lives and dies with its connection, and a client
//! reconnects. Its `stopped` always unregisters it.

use crate::error::token_error_message;
use crate::outlet::{Backlog, Deliver, Disconnect, Outlet};
use crate::registry::{Channel, ClientSummary, SUBSCRIBE_WAIT};
use crate::state::GatewayState;
use actix::prelude::*;
use actix_web_actors::ws;
use sdsim_protocols::frames::{close_codes, ClientFrame, ServerFrame};
use sdsim_protocols::proto::auth::ValidateTokenRequest;
use sdsim_runtime::error::ServiceError;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const ENDPOINT_NOTIFICATIONS: &str = "/ws/notifications";
pub const ENDPOINT_SIMULATION: &str = "/ws/simulation";
pub const ENDPOINT_COLLABORATION: &str = "/ws/collaboration";
/// Every endpoint label of `sdsim_websocket_sessions` (exported from the start, at zero).
pub const ENDPOINTS: [&str; 3] = [
    ENDPOINT_NOTIFICATIONS,
    ENDPOINT_SIMULATION,
    ENDPOINT_COLLABORATION,
];
/// Every type label of `sdsim_websocket_frames_sent_total`: the session's own frames and
/// the events it relays.
pub const FRAME_TYPES: [&str; 4] = ["auth_ok", "pong", "error", "event"];

/// Most edits of one session waiting for the project service.
const MAX_QUEUED_EDITS: usize = 256;
/// Largest presence (selection and pointer) a client may send.
const MAX_PRESENCE_BYTES: usize = 1024;
/// Presence frames closer together than this are dropped (20 a second at most).
const PRESENCE_EVERY: Duration = Duration::from_millis(50);

/// What a session is for.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// `/ws/notifications`: the user's events.
    Notifications,
    /// `/ws/simulation/{id}`: one run's windows, after offset `since` (see [`crate::feeds`]).
    Simulation { run: String, since: Option<String> },
    /// `/ws/collaboration/{project_id}`: the project's live session (see [`crate::collab`]).
    Collaboration {
        project: String,
        since: Option<String>,
    },
}

impl Endpoint {
    fn label(&self) -> &'static str {
        match self {
            Endpoint::Notifications => ENDPOINT_NOTIFICATIONS,
            Endpoint::Simulation { .. } => ENDPOINT_SIMULATION,
            Endpoint::Collaboration { .. } => ENDPOINT_COLLABORATION,
        }
    }
}

/// Event bytes handed to the socket per poll of the session, at least one frame.
pub const FLUSH_BATCH_BYTES: usize = 32 << 10;

/// Longest close reason a close frame can carry (125-byte control frame, 2 for the code).
const MAX_CLOSE_REASON: usize = 123;

struct Authed {
    user_id: String,
}

/// A member of a project's live session, once joined.
struct Live {
    project: Uuid,
    me: crate::collab::Presence,
    /// The project service's collaboration session.
    session: String,
    role: String,
    /// Edits waiting for the project service, in the order sent; one in flight at a time.
    edits: VecDeque<(String, i64, serde_json::Value)>,
    in_flight: bool,
    last_presence: Option<Instant>,
}

pub struct WsSession {
    id: Uuid,
    endpoint: Endpoint,
    /// The run this session watches, once it does.
    watching: Option<Uuid>,
    state: GatewayState,
    remote_addr: String,
    header_token: Option<String>,
    last_heard: Instant,
    auth: Option<Authed>,
    authenticating: bool,
    backlog: Arc<Backlog>,
    /// Events received and not yet handed to the socket.
    outbox: VecDeque<Arc<str>>,
    /// Close once the outbox is written (UnregisterClient).
    closing: Option<(u16, String)>,
    /// Who the token says this is: e-mail address, and whether an admin.
    identity: Option<(String, bool)>,
    /// `/ws/collaboration`: the live session joined.
    live: Option<Live>,
    /// The auth session this socket signed in with (in [`crate::sockets`] while open).
    signed_in: Option<String>,
}

impl WsSession {
    pub fn new(
        state: GatewayState,
        endpoint: Endpoint,
        remote_addr: String,
        header_token: Option<String>,
    ) -> Self {
        let backlog = Arc::new(Backlog::new(
            state.settings.ws_max_pending_bytes,
            state.settings.ws_max_pending_frames,
        ));
        Self {
            id: Uuid::new_v4(),
            endpoint,
            watching: None,
            state,
            remote_addr,
            header_token,
            last_heard: Instant::now(),
            auth: None,
            authenticating: false,
            backlog,
            outbox: VecDeque::new(),
            closing: None,
            identity: None,
            live: None,
            signed_in: None,
        }
    }

    /// Closes with `code` and `reason` (cut to what a close frame carries); once only.
    fn close(
        metrics: &sdsim_runtime::metrics::Metrics,
        ctx: &mut ws::WebsocketContext<Self>,
        code: u16,
        reason: &str,
    ) {
        if Self::closing_down(ctx) {
            return;
        }
        metrics
            .ws_closed
            .with_label_values(&[&code.to_string()])
            .inc();
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::from(code),
            description: Some(reason[..end].to_string()),
        }));
        ctx.stop();
    }

    /// Hands queued events to the socket, at most [`FLUSH_BATCH_BYTES`] (and at least one
    /// frame) per call; closes once empty if an unregister is pending.
    fn flush(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let mut written = 0;
        while written < FLUSH_BATCH_BYTES {
            let Some(frame) = self.outbox.pop_front() else {
                break;
            };
            written += frame.len();
            self.backlog.release(frame.len());
            self.state
                .metrics
                .ws_frames_sent
                .with_label_values(&["event"])
                .inc();
            ctx.text(&*frame);
        }
        if self.outbox.is_empty() {
            if let Some((code, reason)) = self.closing.take() {
                Self::close(&self.state.metrics, ctx, code, &reason);
            }
        }
    }

    fn closing_down(ctx: &ws::WebsocketContext<Self>) -> bool {
        matches!(ctx.state(), ActorState::Stopping | ActorState::Stopped)
    }

    /// Drops everything queued and closes with 4008.
    fn too_slow(&mut self, reason: &str, ctx: &mut ws::WebsocketContext<Self>) {
        for frame in self.outbox.drain(..) {
            self.backlog.release(frame.len());
        }
        if Self::closing_down(ctx) {
            return;
        }
        Self::close(&self.state.metrics, ctx, close_codes::TOO_SLOW, reason);
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
                Ok(v) if v.valid => {
                    act.identity = Some((v.email.clone(), v.is_admin));
                    act.authenticated(v.user_id, v.session_id, v.expires_at, ctx)
                }
                Ok(v) => {
                    let reason = token_error_message(&v.error);
                    Self::close(
                        &act.state.metrics,
                        ctx,
                        close_codes::UNAUTHENTICATED,
                        reason,
                    );
                }
                Err(ServiceError::Unavailable(m)) => {
                    tracing::warn!(error = %m, "WebSocket authentication: auth unavailable");
                    // 1013: try again later.
                    Self::close(
                        &act.state.metrics,
                        ctx,
                        1013,
                        "authentication service unavailable; retry",
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "WebSocket authentication failed");
                    Self::close(&act.state.metrics, ctx, 1011, "authentication failed");
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
        // Closed with 4001 as soon as its session ends anywhere (sign-out, revocation).
        self.state
            .sockets
            .add(&session_id, self.id, ctx.address().recipient());
        self.signed_in = Some(session_id.clone());
        let left = expires_at - chrono::Utc::now().timestamp();
        let left = Duration::from_secs(left.max(0) as u64);
        ctx.run_later(left, |act, ctx| {
            Self::close(
                &act.state.metrics,
                ctx,
                close_codes::TOKEN_EXPIRED,
                "access token expired; reconnect with a fresh token",
            );
        });
        match self.endpoint.clone() {
            Endpoint::Simulation { run, since } => {
                self.watch(user_id, session_id, run, since, ctx);
                return;
            }
            Endpoint::Collaboration { project, since } => {
                self.collaborate(user_id, session_id, project, since, ctx);
                return;
            }
            Endpoint::Notifications => {}
        }
        let summary = ClientSummary {
            client_id: self.id,
            user_id: user_id.clone(),
            session_id: session_id.clone(),
            endpoint: ENDPOINT_NOTIFICATIONS,
            remote_addr: self.remote_addr.clone(),
            connected_at: chrono::Utc::now(),
            subscriptions: vec![
                Channel::User(user_id.clone()).name(),
                Channel::Announcements.name(),
            ],
        };
        let addr = ctx.address();
        let outlet = Outlet {
            deliver: addr.clone().recipient(),
            disconnect: addr.recipient(),
            backlog: self.backlog.clone(),
        };
        // The user's first session here makes the registry tell the subscriber. `auth_ok`
        // waits (at most SUBSCRIBE_WAIT) until the user's channel is subscribed on Redis, so
        // whatever is published once the client holds `auth_ok` reaches it; frames
        // delivered meanwhile wait in the mailbox and follow `auth_ok`.
        self.state.registry.add(summary, outlet);
        self.auth = Some(Authed {
            user_id: user_id.clone(),
        });
        let registry = self.state.registry.clone();
        let channels = vec![Channel::User(user_id.clone()).name()];
        let subscribed = async move { registry.resync(channels, SUBSCRIBE_WAIT).await };
        ctx.wait(subscribed.into_actor(self).map(|listening, act, ctx| {
            if !listening {
                tracing::warn!(
                    client = %act.id,
                    "not yet subscribed on Redis; delivery starts when the gateway resubscribes"
                );
            }
            act.send(
                ctx,
                &ServerFrame::AuthOk {
                    user_id,
                    session_id,
                },
            );
        }));
    }

    /// `/ws/simulation/{id}`: a run the user may view is watched from after `since`; any
    /// other run, known or not, closes with 4004.
    fn watch(
        &mut self,
        user_id: String,
        session_id: String,
        run: String,
        since: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let since = match crate::feeds::parse_since(since.as_deref().unwrap_or_default()) {
            Ok(n) => n,
            Err(message) => {
                // 1008: policy violation (a malformed request).
                Self::close(&self.state.metrics, ctx, 1008, &message);
                return;
            }
        };
        self.auth = Some(Authed {
            user_id: user_id.clone(),
        });
        let upstream = self.state.upstream.clone();
        let call = sdsim_protocols::proto::simulation::GetSimulationStatusRequest {
            simulation_id: run.clone(),
            user_id: user_id.clone(),
        };
        let fut = async move {
            crate::rpc!(
                upstream,
                simulation,
                "GetSimulationStatus",
                get_simulation_status,
                call
            )
            .await
        };
        ctx.wait(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(status) => {
                let Ok(id) = status.simulation_id.parse::<Uuid>() else {
                    Self::close(&act.state.metrics, ctx, 1011, "bad simulation id");
                    return;
                };
                act.send(
                    ctx,
                    &ServerFrame::AuthOk {
                        user_id: user_id.clone(),
                        session_id,
                    },
                );
                act.watching = Some(id);
                let addr = ctx.address();
                act.state.feeds.watch(
                    id,
                    since,
                    crate::feeds::Watcher {
                        id: act.id,
                        user_id,
                        project_id: (!status.project_id.is_empty())
                            .then(|| status.project_id.clone()),
                        outlet: Outlet {
                            deliver: addr.clone().recipient(),
                            disconnect: addr.recipient(),
                            backlog: act.backlog.clone(),
                        },
                    },
                );
            }
            Err(
                ServiceError::NotFound(_)
                | ServiceError::Forbidden(_)
                | ServiceError::Invalid { .. },
            ) => Self::close(
                &act.state.metrics,
                ctx,
                close_codes::NOT_FOUND,
                &format!("no simulation {run}"),
            ),
            Err(ServiceError::Unavailable(m)) => {
                tracing::warn!(error = %m, "watch: simulation service unavailable");
                Self::close(
                    &act.state.metrics,
                    ctx,
                    1013,
                    "simulation service unavailable; retry",
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "watch: the run's status failed");
                Self::close(&act.state.metrics, ctx, 1011, "cannot watch this run now");
            }
        }));
    }

    /// `/ws/collaboration/{id}`: a project the user may view is joined (the document, or
    /// the edits after `since`, then every edit live); any other closes with 4004.
    fn collaborate(
        &mut self,
        user_id: String,
        session_id: String,
        project: String,
        since: Option<String>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let since = match since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => {
                    let message =
                        format!("since must be an offset this stream gave, like 17 (got {s:?})");
                    Self::close(&self.state.metrics, ctx, 1008, &message);
                    return;
                }
            },
        };
        let Ok(pid) = project.parse::<Uuid>() else {
            let reason = format!("no project {project}");
            Self::close(&self.state.metrics, ctx, close_codes::NOT_FOUND, &reason);
            return;
        };
        self.auth = Some(Authed {
            user_id: user_id.clone(),
        });
        let (email, is_admin) = self.identity.clone().unwrap_or_default();
        let me = crate::collab::Presence {
            session: self.id.to_string(),
            user_id: user_id.clone(),
            name: email,
            colour: crate::collab::colour_of(&user_id),
        };
        let collab = self.state.collab.clone();
        let instance = self.state.instance_id.clone();
        let user = user_id.clone();
        let fut = async move {
            collab
                .join(pid, &user, is_admin, &instance, since, me)
                .await
        };
        ctx.wait(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(joined) => {
                act.send(
                    ctx,
                    &ServerFrame::AuthOk {
                        user_id: user_id.clone(),
                        session_id,
                    },
                );
                for f in &joined.frames {
                    ctx.text(&**f);
                }
                let me = joined.me;
                let addr = ctx.address();
                act.state.collab.attach(
                    pid,
                    crate::collab::Member {
                        id: act.id,
                        user_id,
                        session: me.session.clone(),
                        outlet: Outlet {
                            deliver: addr.clone().recipient(),
                            disconnect: addr.recipient(),
                            backlog: act.backlog.clone(),
                        },
                    },
                    joined.seq,
                );
                act.state.collab.publish_presence(
                    pid,
                    &me,
                    serde_json::Value::Null,
                    serde_json::Value::Null,
                );
                act.live = Some(Live {
                    project: pid,
                    me,
                    session: joined.session,
                    role: joined.role,
                    edits: VecDeque::new(),
                    in_flight: false,
                    last_presence: None,
                });
                ctx.run_interval(crate::collab::REFRESH, |act, ctx| act.refresh(ctx));
            }
            Err(
                ServiceError::NotFound(_)
                | ServiceError::Forbidden(_)
                | ServiceError::Invalid { .. },
            ) => Self::close(
                &act.state.metrics,
                ctx,
                close_codes::NOT_FOUND,
                &format!("no project {project}"),
            ),
            Err(ServiceError::Unavailable(m)) => {
                tracing::warn!(error = %m, "collaboration: project service unavailable");
                Self::close(
                    &act.state.metrics,
                    ctx,
                    1013,
                    "project service unavailable; retry",
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "collaboration: join failed");
                Self::close(
                    &act.state.metrics,
                    ctx,
                    1011,
                    "cannot join this project now",
                );
            }
        }));
    }

    /// The socket is alive: presence and the project service's session stay fresh.
    fn refresh(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let (Some(live), Some(auth)) = (&self.live, &self.auth) else {
            return;
        };
        self.state
            .collab
            .refresh_presence(live.project, live.me.session.clone());
        let upstream = self.state.upstream.clone();
        let call = sdsim_protocols::proto::project::LeaveCollaborationRequest {
            project_id: live.project.to_string(),
            user_id: auth.user_id.clone(),
            collaboration_session_id: live.session.clone(),
        };
        ctx.spawn(
            async move {
                let _ = crate::rpc!(
                    upstream,
                    project,
                    "TouchCollaboration",
                    touch_collaboration,
                    call
                )
                .await;
            }
            .into_actor(self),
        );
    }

    /// An error frame about one edit (the socket stays open).
    fn edit_error(ctx: &mut ws::WebsocketContext<Self>, code: &str, message: &str, edit_id: i64) {
        let f = serde_json::json!({
            "type": "error", "code": code, "message": message, "edit_id": edit_id,
        });
        ctx.text(f.to_string());
    }

    /// An edit from the client: refused at once if this person may only watch, else queued
    /// behind this session's earlier edits.
    fn on_edit(
        &mut self,
        client_id: String,
        edit_id: i64,
        ops: serde_json::Value,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(live) = self.live.as_mut() else {
            Self::edit_error(
                ctx,
                "bad_frame",
                "edit frames are for /ws/collaboration/{project_id}, once joined",
                edit_id,
            );
            return;
        };
        if !matches!(live.role.as_str(), "owner" | "editor") {
            let message = format!(
                "you may view project {} but not edit it (ask its owner to make you an editor)",
                live.project
            );
            Self::edit_error(ctx, "read_only", &message, edit_id);
            return;
        }
        if live.edits.len() >= MAX_QUEUED_EDITS {
            let message =
                format!("more than {MAX_QUEUED_EDITS} edits are waiting; wait for their acks");
            Self::edit_error(ctx, "too_many_edits", &message, edit_id);
            return;
        }
        live.edits.push_back((client_id, edit_id, ops));
        self.next_edit(ctx);
    }

    /// Sends the oldest waiting edit to the project service, unless one is in flight.
    fn next_edit(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let (Some(live), Some(auth)) = (self.live.as_mut(), self.auth.as_ref()) else {
            return;
        };
        if live.in_flight {
            return;
        }
        let Some((client_id, edit_id, ops)) = live.edits.front().cloned() else {
            return;
        };
        live.in_flight = true;
        let project = live.project;
        let (_, is_admin) = self.identity.clone().unwrap_or_default();
        let call = sdsim_protocols::proto::project::ApplyEditRequest {
            caller: Some(sdsim_protocols::proto::project::Caller {
                user_id: auth.user_id.clone(),
                is_admin,
            }),
            project_id: project.to_string(),
            client_id: client_id.clone(),
            edit_id,
            ops_json: ops.to_string(),
        };
        let upstream = self.state.upstream.clone();
        let fut =
            async move { crate::rpc!(upstream, project, "ApplyEdit", apply_edit, call).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let Some(live) = act.live.as_mut() else {
                return;
            };
            live.in_flight = false;
            match res {
                Ok(r) => {
                    live.edits.pop_front();
                    let f = serde_json::json!({
                        "type": "collaboration.ack",
                        "channel": format!("collaboration:stream:{project}"),
                        "offset": r.seq.to_string(),
                        "data": {"client_id": client_id, "edit_id": edit_id, "duplicate": r.duplicate},
                    });
                    ctx.text(f.to_string());
                }
                Err(ServiceError::Forbidden(m)) => {
                    live.edits.pop_front();
                    live.role = "viewer".into();
                    Self::edit_error(ctx, "read_only", &m, edit_id);
                }
                Err(ServiceError::Invalid { field, message }) => {
                    live.edits.pop_front();
                    Self::edit_error(ctx, "invalid_edit", &format!("{field}: {message}"), edit_id);
                }
                Err(ServiceError::NotFound(_)) => {
                    Self::close(
                        &act.state.metrics,
                        ctx,
                        close_codes::NOT_FOUND,
                        &format!("no project {project}"),
                    );
                    return;
                }
                Err(ServiceError::Conflict { code, message, .. }) => {
                    live.edits.pop_front();
                    Self::edit_error(ctx, &code, &message, edit_id);
                }
                Err(e) => {
                    // Not applied (the project service is down or restarting): kept, and
                    // tried again shortly; the client has no ack meanwhile.
                    tracing::warn!(error = %e, %project, "edit not applied yet; retrying");
                    ctx.run_later(Duration::from_millis(500), |act, ctx| act.next_edit(ctx));
                    return;
                }
            }
            act.next_edit(ctx);
        }));
    }

    /// Where this person's pointer is and what they selected, to the others.
    fn on_presence(
        &mut self,
        selection: serde_json::Value,
        pointer: serde_json::Value,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(live) = self.live.as_mut() else {
            self.send(
                ctx,
                &ServerFrame::Error {
                    code: "bad_frame".into(),
                    message: "presence frames are for /ws/collaboration/{project_id}, once joined"
                        .into(),
                },
            );
            return;
        };
        let size = selection.to_string().len() + pointer.to_string().len();
        if size > MAX_PRESENCE_BYTES {
            let message = format!(
                "a presence is at most {MAX_PRESENCE_BYTES} bytes of selection and pointer, not {size}"
            );
            self.send(
                ctx,
                &ServerFrame::Error {
                    code: "bad_frame".into(),
                    message,
                },
            );
            return;
        }
        if live
            .last_presence
            .is_some_and(|t| t.elapsed() < PRESENCE_EVERY)
        {
            return;
        }
        live.last_presence = Some(Instant::now());
        self.state
            .collab
            .publish_presence(live.project, &live.me, selection, pointer);
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let frame = serde_json::from_str::<ClientFrame>(text);
        match (frame, self.auth.is_some()) {
            (
                Ok(ClientFrame::Edit {
                    client_id,
                    edit_id,
                    ops,
                }),
                true,
            ) => self.on_edit(client_id, edit_id, ops, ctx),
            (Ok(ClientFrame::Presence { selection, pointer }), true) => {
                self.on_presence(selection, pointer, ctx)
            }
            (Ok(ClientFrame::Edit { .. } | ClientFrame::Presence { .. }), false) => Self::close(
                &self.state.metrics,
                ctx,
                close_codes::UNAUTHENTICATED,
                r#"the first frame must be {"type":"auth","token":"<access token>"}"#,
            ),
            (Ok(ClientFrame::Ping { id }), _) => self.send(ctx, &ServerFrame::Pong { id }),
            (Ok(ClientFrame::Auth { .. }), true) => self.send(
                ctx,
                &ServerFrame::Error {
                    code: "already_authenticated".into(),
                    message: "this connection is already authenticated".into(),
                },
            ),
            (Ok(ClientFrame::Auth { token, since }), false) => {
                if let (
                    Endpoint::Simulation { since: at, .. }
                    | Endpoint::Collaboration { since: at, .. },
                    Some(since),
                ) = (&mut self.endpoint, since)
                {
                    *at = Some(since);
                }
                if !self.authenticating {
                    self.authenticate(token, ctx);
                }
            }
            (Err(_), false) => Self::close(
                &self.state.metrics,
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
            .with_label_values(&[self.endpoint.label()])
            .inc();
        let g = &self.state.settings;
        let timeout = Duration::from_millis(g.ws_client_timeout_ms);
        ctx.run_interval(
            Duration::from_millis(g.ws_ping_interval_ms),
            move |act, ctx| {
                if act.last_heard.elapsed() > timeout {
                    tracing::debug!(client = %act.id, "WebSocket client timed out");
                    Self::close(
                        &act.state.metrics,
                        ctx,
                        1001,
                        "client stopped answering pings",
                    );
                    return;
                }
                ctx.ping(b"");
            },
        );
        ctx.spawn(Pump);
        match self.header_token.take() {
            Some(token) => self.authenticate(token, ctx),
            None => {
                ctx.run_later(Duration::from_millis(g.ws_auth_timeout_ms), |act, ctx| {
                    if act.auth.is_none() {
                        Self::close(
                            &act.state.metrics,
                            ctx,
                            close_codes::UNAUTHENTICATED,
                            "authentication timeout",
                        );
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
            .with_label_values(&[self.endpoint.label()])
            .dec();
        if let Some(session) = self.signed_in.take() {
            self.state.sockets.remove(&session, self.id);
        }
        match (&self.endpoint, self.watching) {
            (Endpoint::Simulation { .. }, Some(run)) => self.state.feeds.leave(run, self.id),
            (Endpoint::Simulation { .. }, None) => {}
            (Endpoint::Collaboration { .. }, _) => {
                if let (Some(live), Some(auth)) = (self.live.take(), self.auth.as_ref()) {
                    let collab = &self.state.collab;
                    collab.leave(live.project, self.id);
                    collab.publish_left(
                        live.project,
                        live.me.session.clone(),
                        auth.user_id.clone(),
                    );
                    let upstream = self.state.upstream.clone();
                    let call = sdsim_protocols::proto::project::LeaveCollaborationRequest {
                        project_id: live.project.to_string(),
                        user_id: auth.user_id.clone(),
                        collaboration_session_id: live.session,
                    };
                    actix::spawn(async move {
                        let _ = crate::rpc!(
                            upstream,
                            project,
                            "LeaveCollaboration",
                            leave_collaboration,
                            call
                        )
                        .await;
                    });
                }
            }
            // Releases the channels only this session needed (the registry tells the
            // subscriber).
            (Endpoint::Notifications, _) => {
                self.state.registry.remove(self.id);
            }
        }
    }
}

/// Runs [`WsSession::flush`] each time the session is polled, i.e. each time the HTTP
/// dispatcher has room in its write buffer and polls the response body; asks to be polled
/// again while events are left, so a reading client gets them at the speed it reads.
struct Pump;

impl ActorFuture<WsSession> for Pump {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut WsSession,
        ctx: &mut ws::WebsocketContext<WsSession>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        if !act.outbox.is_empty() {
            act.flush(ctx);
            if !act.outbox.is_empty() {
                task.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        if self.auth.is_none() || self.closing.is_some() {
            self.backlog.release(msg.0.len());
            return;
        }
        if self.backlog.overflowed() {
            self.backlog.release(msg.0.len());
            self.too_slow(&Disconnect::too_slow().reason, ctx);
            return;
        }
        // Written by the pump, which runs right after the mailbox in this same poll.
        self.outbox.push_back(msg.0);
    }
}

impl Handler<Disconnect> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: Disconnect, ctx: &mut Self::Context) {
        if msg.code == close_codes::TOO_SLOW {
            self.too_slow(&msg.reason, ctx);
        } else if msg.drain {
            self.closing = Some((msg.code, msg.reason));
            self.flush(ctx);
        } else {
            Self::close(&self.state.metrics, ctx, msg.code, &msg.reason);
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let msg = match item {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(client = %self.id, error = %e, "WebSocket protocol error");
                Self::close(&self.state.metrics, ctx, 1002, "protocol error");
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
                        &self.state.metrics,
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
