//! `GatewayService` on port 8001: lets backend services reach the WebSocket clients of this
//! gateway instance. A thin adapter over the [`Registry`].

use crate::registry::{ClientSummary, Registry};
use crate::ws::Deliver;
use sdsim_actors::error::ServiceError;
use sdsim_actors::grpc::RpcTimer;
use sdsim_actors::health::HealthProbe;
use sdsim_actors::metrics::Metrics;
use sdsim_protocols::frames::EventFrame;
use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::gateway as pb;
use sdsim_protocols::proto::gateway::gateway_service_server::GatewayService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct GatewayGrpc {
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
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

impl GatewayGrpc {
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
        _: Request<pb::RegisterClientRequest>,
    ) -> Result<Response<pb::RegisterClientResponse>, Status> {
        let t = RpcTimer::start(&self.metrics, "gateway", "RegisterClient");
        t.finish(Err(ServiceError::Unimplemented(
            "RegisterClient (clients register by opening /ws/notifications)".into(),
        )))
    }

    async fn unregister_client(
        &self,
        _: Request<pb::UnregisterClientRequest>,
    ) -> Result<Response<pb::UnregisterClientResponse>, Status> {
        let t = RpcTimer::start(&self.metrics, "gateway", "UnregisterClient");
        t.finish(Err(ServiceError::Unimplemented(
            "UnregisterClient (clients unregister by closing their WebSocket)".into(),
        )))
    }

    async fn route_message(
        &self,
        req: Request<pb::RouteMessageRequest>,
    ) -> Result<Response<pb::RouteMessageResponse>, Status> {
        let t = RpcTimer::start(&self.metrics, "gateway", "RouteMessage");
        let r = req.into_inner();
        let res = self.route(r).await;
        t.finish(res)
    }

    async fn broadcast_message(
        &self,
        req: Request<pb::BroadcastMessageRequest>,
    ) -> Result<Response<pb::BroadcastMessageResponse>, Status> {
        let t = RpcTimer::start(&self.metrics, "gateway", "BroadcastMessage");
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
        t.finish(res)
    }

    async fn get_connected_clients(
        &self,
        req: Request<pb::GetConnectedClientsRequest>,
    ) -> Result<Response<pb::GetConnectedClientsResponse>, Status> {
        let t = RpcTimer::start(&self.metrics, "gateway", "GetConnectedClients");
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
        t.finish(res)
    }

    async fn get_client_info(
        &self,
        req: Request<pb::GetClientInfoRequest>,
    ) -> Result<Response<pb::GetClientInfoResponse>, Status> {
        let t = RpcTimer::start(&self.metrics, "gateway", "GetClientInfo");
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
        t.finish(res)
    }

    async fn health_check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let t = RpcTimer::start(&self.metrics, "gateway", "HealthCheck");
        let res = self.health.check("gateway", true).await;
        t.finish(Ok(res))
    }
}
