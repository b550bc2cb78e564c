//! `GatewayService` on port 8001: lets backend services reach the WebSocket clients of this
//! gateway instance. A thin adapter over the [`Registry`].
//!
//! - `RegisterClient` attaches channels (`simulation:events:{name}`, `project:events:{name}`,
//!   `system:announcements`) to an open WebSocket session of this instance, checked to be the
//!   named user's; it answers once the subscriber listens on them, so an event published
//!   after the answer reaches the session. The families carry every project's or run's
//!   events of that kind: the calling backend, trusted on this internal port, decides who may
//!   receive them (the gateway does not know who may see which project or run).
//! - `UnregisterClient` ends such a session: it is removed at once (it receives nothing more,
//!   its channels are released) and closes with 1000 and the caller's reason once the events
//!   already queued for it are written.

use crate::outlet::{Deliver, Disconnect, CLOSE_UNREGISTERED};
use crate::registry::{Channel, ClientSummary, Registry, SUBSCRIBE_WAIT};
use sdsim_protocols::frames::EventFrame;
use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::gateway as pb;
use sdsim_protocols::proto::gateway::gateway_service_server::GatewayService;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::grpc::reply;
use sdsim_runtime::health::HealthProbe;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Channels one `RegisterClient` may name.
pub const MAX_SUBSCRIPTIONS_PER_REQUEST: usize = 64;
/// Longest channel name accepted.
pub const MAX_CHANNEL_LEN: usize = 128;
/// Longest `UnregisterClient` reason accepted (the close frame carries its first 123 bytes).
pub const MAX_REASON_CHARS: usize = 256;

#[derive(Clone)]
pub struct GatewayGrpc {
    pub registry: Registry,
    pub health: HealthProbe,
    pub instance_id: String,
    /// RouteMessage publishes here, so the user's sessions on every gateway get it.
    pub redis: redis::aio::ConnectionManager,
    pub ns: sdsim_protocols::names::Namespace,
}

fn info_pb(c: ClientSummary, instance: &str) -> pb::ClientInfo {
    pb::ClientInfo {
        client_id: c.client_id.to_string(),
        user_id: c.user_id,
        session_id: c.session_id,
        connection_type: "websocket".into(),
        endpoint: c.endpoint.into(),
        subscriptions: c.subscriptions,
        connected_at: c.connected_at.timestamp(),
        last_seen: chrono::Utc::now().timestamp(),
        remote_addr: c.remote_addr,
        gateway_instance: instance.into(),
    }
}

/// A frame from an RPC's type and JSON payload; the payload must be a JSON value.
fn frame(kind: &str, channel: String, payload: &[u8]) -> Result<Deliver, ServiceError> {
    if kind.is_empty() {
        return Err(ServiceError::invalid(
            "message_type",
            "message_type must not be empty",
        ));
    }
    let data: serde_json::Value = if payload.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(payload)
            .map_err(|e| ServiceError::invalid("payload", format!("payload must be JSON: {e}")))?
    };
    let f = EventFrame {
        kind: kind.to_string(),
        channel,
        offset: uuid::Uuid::new_v4().to_string(),
        data,
    };
    let text = serde_json::to_string(&f).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(Deliver(Arc::from(text)))
}

fn client_id(raw: &str) -> Result<uuid::Uuid, ServiceError> {
    if raw.is_empty() {
        return Err(ServiceError::invalid(
            "client_id",
            "client_id is required: the id of an open WebSocket session (GetConnectedClients)",
        ));
    }
    raw.parse().map_err(|_| {
        ServiceError::invalid(
            "client_id",
            format!("client_id {raw:?} is not a WebSocket session id (a UUID)"),
        )
    })
}

/// A channel a backend may attach to a session of `user_id`.
fn registrable(i: usize, name: &str, user_id: &str) -> Result<Channel, ServiceError> {
    let field = format!("subscriptions[{i}]");
    let allowed = "allowed: simulation:events:<name>, project:events:<name>, system:announcements";
    if name.is_empty() {
        return Err(ServiceError::invalid(
            &field,
            format!("{field} is empty; {allowed}"),
        ));
    }
    if name.len() > MAX_CHANNEL_LEN {
        return Err(ServiceError::invalid(
            &field,
            format!("{field} is longer than {MAX_CHANNEL_LEN} bytes"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(ServiceError::invalid(
            &field,
            format!("{field} {name:?} contains {c:?}; channel names use A-Z a-z 0-9 - _ . :"),
        ));
    }
    match Channel::parse(name) {
        Some(Channel::User(owner)) if owner == user_id => Ok(Channel::User(owner)),
        Some(Channel::User(_)) => Err(ServiceError::invalid(
            &field,
            format!("{field} {name:?} is another user's notification channel"),
        )),
        Some(c) => Ok(c),
        None => Err(ServiceError::invalid(
            &field,
            format!("{field} {name:?} is not a channel a client may subscribe to; {allowed}"),
        )),
    }
}

impl GatewayGrpc {
    async fn register(
        &self,
        r: pb::RegisterClientRequest,
    ) -> Result<pb::RegisterClientResponse, ServiceError> {
        let id = client_id(&r.client_id)?;
        if r.user_id.is_empty() {
            return Err(ServiceError::invalid(
                "user_id",
                "user_id is required: the user the session belongs to",
            ));
        }
        match r.connection_type.as_str() {
            "" | "websocket" => {}
            "http" => {
                return Err(ServiceError::invalid(
                    "connection_type",
                    "only WebSocket clients can be registered: an HTTP client has no open \
                     session on the gateway to deliver to; use \"websocket\"",
                ))
            }
            other => {
                return Err(ServiceError::invalid(
                    "connection_type",
                    format!("connection_type {other:?} is not \"websocket\" (or empty)"),
                ))
            }
        }
        if r.subscriptions.is_empty() {
            return Err(ServiceError::invalid(
                "subscriptions",
                "subscriptions must name at least one channel",
            ));
        }
        if r.subscriptions.len() > MAX_SUBSCRIPTIONS_PER_REQUEST {
            return Err(ServiceError::invalid(
                "subscriptions",
                format!(
                    "{} subscriptions; at most {MAX_SUBSCRIPTIONS_PER_REQUEST} per request",
                    r.subscriptions.len()
                ),
            ));
        }
        let channels = r
            .subscriptions
            .iter()
            .enumerate()
            .map(|(i, name)| registrable(i, name, &r.user_id))
            .collect::<Result<Vec<_>, _>>()?;
        let attached = self.registry.attach(id, &r.user_id, &channels)?;
        let listening = self
            .registry
            .resync(attached.new_here.clone(), SUBSCRIBE_WAIT)
            .await;
        let mut message = format!(
            "session {id} of user {} receives {} channel(s): {}",
            r.user_id,
            attached.summary.subscriptions.len(),
            attached.summary.subscriptions.join(", ")
        );
        if !listening {
            message.push_str(
                "; not yet subscribed on Redis (Redis unreachable or the subscriber \
                 restarting): delivery starts when the gateway resubscribes",
            );
        }
        Ok(pb::RegisterClientResponse {
            success: true,
            session_id: attached.summary.session_id,
            message,
        })
    }

    fn unregister(
        &self,
        r: pb::UnregisterClientRequest,
    ) -> Result<pb::UnregisterClientResponse, ServiceError> {
        let id = client_id(&r.client_id)?;
        if r.reason.chars().count() > MAX_REASON_CHARS {
            return Err(ServiceError::invalid(
                "reason",
                format!("reason is longer than {MAX_REASON_CHARS} characters"),
            ));
        }
        let found = self.registry.get(id).ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no open WebSocket session {id} on this gateway instance"
            ))
        })?;
        if !r.session_id.is_empty() && r.session_id != found.session_id {
            return Err(ServiceError::NotFound(format!(
                "WebSocket session {id} does not belong to auth session {}",
                r.session_id
            )));
        }
        // Gone meanwhile (closed by its client): as unknown.
        let (summary, outlet) = self.registry.evict(id).ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no open WebSocket session {id} on this gateway instance"
            ))
        })?;
        let reason = if r.reason.is_empty() {
            "unregistered by a backend service".to_string()
        } else {
            r.reason
        };
        tracing::info!(client = %id, user = %summary.user_id, %reason, "WebSocket session unregistered");
        outlet.disconnect.do_send(Disconnect {
            code: CLOSE_UNREGISTERED,
            reason,
            drain: true,
        });
        Ok(pb::UnregisterClientResponse {
            success: true,
            message: format!(
                "WebSocket session {id} of user {} is closing (code {CLOSE_UNREGISTERED})",
                summary.user_id
            ),
        })
    }

    /// Publishes the message on the user's notification channel: every gateway instance
    /// with a session of the user (this one included) delivers it to them.
    async fn route(
        &self,
        r: pb::RouteMessageRequest,
    ) -> Result<pb::RouteMessageResponse, ServiceError> {
        if r.target_user_id.is_empty() || r.target_user_id.len() > 64 {
            return Err(ServiceError::invalid(
                "target_user_id",
                "target_user_id must be a user id",
            ));
        }
        if r.message_type.is_empty() || r.message_type.len() > 64 {
            return Err(ServiceError::invalid(
                "message_type",
                "message_type must be 1 to 64 characters",
            ));
        }
        let data: serde_json::Value = if r.payload.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&r.payload).map_err(|e| {
                ServiceError::invalid("payload", format!("payload must be JSON: {e}"))
            })?
        };
        let source = if r.source_service.is_empty() {
            "unknown".to_string()
        } else {
            r.source_service
        };
        let envelope = sdsim_protocols::events::Envelope::new(
            r.message_type,
            source,
            Some(r.target_user_id.clone()),
            data,
        );
        let payload =
            serde_json::to_string(&envelope).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut conn = self.redis.clone();
        let gateways: i64 = redis::cmd("PUBLISH")
            .arg(self.ns.user_notifications(&r.target_user_id))
            .arg(payload)
            .query_async(&mut conn)
            .await
            .map_err(|e| ServiceError::Unavailable(format!("Redis: {e}")))?;
        Ok(pb::RouteMessageResponse {
            delivered: gateways > 0,
            // Gateway instances holding a session of the user (sessions are counted there).
            client_count: gateways as i32,
            message: format!(
                "published to {gateways} gateway instance(s) with a session of the user"
            ),
        })
    }
}

#[tonic::async_trait]
impl GatewayService for GatewayGrpc {
    async fn register_client(
        &self,
        req: Request<pb::RegisterClientRequest>,
    ) -> Result<Response<pb::RegisterClientResponse>, Status> {
        let res = self.register(req.into_inner()).await;
        reply(res)
    }

    async fn unregister_client(
        &self,
        req: Request<pb::UnregisterClientRequest>,
    ) -> Result<Response<pb::UnregisterClientResponse>, Status> {
        let res = self.unregister(req.into_inner());
        reply(res)
    }

    async fn route_message(
        &self,
        req: Request<pb::RouteMessageRequest>,
    ) -> Result<Response<pb::RouteMessageResponse>, Status> {
        let r = req.into_inner();
        let res = self.route(r).await;
        reply(res)
    }

    async fn broadcast_message(
        &self,
        req: Request<pb::BroadcastMessageRequest>,
    ) -> Result<Response<pb::BroadcastMessageResponse>, Status> {
        let r = req.into_inner();
        let channel = if r.channel.is_empty() {
            "system:announcements".to_string()
        } else {
            r.channel.clone()
        };
        let res = frame(&r.message_type, channel, &r.payload).map(|d| {
            let filter = (!r.channel.is_empty()).then_some(r.channel.as_str());
            let n = self.registry.broadcast(filter, &d);
            pb::BroadcastMessageResponse {
                client_count: n as i32,
                message: format!("delivered to {n} session(s)"),
            }
        });
        reply(res)
    }

    async fn get_connected_clients(
        &self,
        req: Request<pb::GetConnectedClientsRequest>,
    ) -> Result<Response<pb::GetConnectedClientsResponse>, Status> {
        let r = req.into_inner();
        let res = if r.limit < 0 {
            Err(ServiceError::invalid(
                "limit",
                "limit must be 0 (no limit) or positive",
            ))
        } else {
            let user = (!r.user_id.is_empty()).then_some(r.user_id.as_str());
            let (clients, total) = self.registry.list(user, r.limit as usize);
            Ok(pb::GetConnectedClientsResponse {
                clients: clients
                    .into_iter()
                    .map(|c| info_pb(c, &self.instance_id))
                    .collect(),
                total: total as i32,
            })
        };
        reply(res)
    }

    async fn get_client_info(
        &self,
        req: Request<pb::GetClientInfoRequest>,
    ) -> Result<Response<pb::GetClientInfoResponse>, Status> {
        let r = req.into_inner();
        let res = r
            .client_id
            .parse::<uuid::Uuid>()
            .map_err(|_| ServiceError::invalid("client_id", "client_id must be a UUID"))
            .map(|id| match self.registry.get(id) {
                Some(c) => pb::GetClientInfoResponse {
                    found: true,
                    client: Some(info_pb(c, &self.instance_id)),
                },
                None => pb::GetClientInfoResponse {
                    found: false,
                    client: None,
                },
            });
        reply(res)
    }

    async fn health_check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let res = self.health.check("gateway", true).await;
        reply(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_channels_are_the_event_families_and_announcements() {
        for ok in [
            "simulation:events:sim-1",
            "project:events:p_7.updated",
            "system:announcements",
            "notifications:user:u1",
        ] {
            assert!(registrable(0, ok, "u1").is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("", "is empty"),
            (
                "auth:events:login",
                "not a channel a client may subscribe to",
            ),
            ("simulation:stream:s1", "not a channel"),
            ("simulation:events:", "not a channel"),
            ("simulation:events:*", "contains '*'"),
            ("simulation:events:a b", "contains ' '"),
            ("notifications:user:u2", "another user's"),
        ] {
            let err = registrable(3, bad, "u1").unwrap_err();
            assert_eq!(err.field(), Some("subscriptions[3]"), "{bad}");
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
        let long = format!("project:events:{}", "x".repeat(MAX_CHANNEL_LEN));
        assert!(registrable(0, &long, "u1").is_err());
    }
}
