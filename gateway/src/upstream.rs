//! The gateway's clients of the backend services, over the process's [`Mesh`]: every call
//! goes to the least-loaded healthy instance through its pool and circuit breaker, and a
//! call that finds its instance gone is retried on another one when the retry rule allows
//! (`sdsim_protocols::rpc`: never sent, or idempotent). While every
//! instance of a service is failing, calls are refused at once (503 with Retry-After).

use crate::tokens::TokenCache;
use sdsim_protocols::proto::auth::auth_service_client::AuthServiceClient;
use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::project::project_service_client::ProjectServiceClient;
use sdsim_protocols::proto::simulation::simulation_service_client::SimulationServiceClient;
use sdsim_protocols::rpc::SESSIONS_CHANGED_HEADER;
use sdsim_protocols::Service;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::mesh::Mesh;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// A project client that carries designs up to the size every party enforces.
fn project_client(ch: Channel) -> ProjectServiceClient<Channel> {
    use sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES;
    ProjectServiceClient::new(ch)
        .max_decoding_message_size(MAX_DESIGN_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_DESIGN_MESSAGE_BYTES)
}

/// A simulation client that carries designs up to the same size.
fn simulation_client(ch: Channel) -> SimulationServiceClient<Channel> {
    use sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES;
    SimulationServiceClient::new(ch)
        .max_decoding_message_size(MAX_DESIGN_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_DESIGN_MESSAGE_BYTES)
}

#[derive(Clone)]
pub struct Upstreams {
    mesh: Mesh,
    /// Validations the gateway trusts for a moment; dropped when auth says a call ended
    /// sessions or changed permissions (see [`crate::tokens`]).
    tokens: Arc<TokenCache>,
}

/// Makes an RPC through [`Upstreams`]: `rpc!(up, auth, "Login", login, request)`.
#[macro_export]
macro_rules! rpc {
    ($up:expr, $client:ident, $method:literal, $rpc:ident, $req:expr) => {{
        let req = $req;
        $up.$client($method, move |mut c| {
            let r = sdsim_runtime::request_id::request(req.clone());
            async move { c.$rpc(r).await }
        })
    }};
}

impl Upstreams {
    /// The gateway calls auth, project and simulation: the mesh keeps pools to them.
    pub fn new(mesh: Mesh, tokens: Arc<TokenCache>) -> Self {
        for s in [Service::Auth, Service::Project, Service::Simulation] {
            mesh.want(s);
        }
        Self { mesh, tokens }
    }

    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// One call to `service` with a typed client made from each attempt's channel.
    async fn via<C, T, F, Fut>(
        &self,
        service: Service,
        method: &'static str,
        client: fn(Channel) -> C,
        mut f: F,
    ) -> Result<T, ServiceError>
    where
        F: FnMut(C) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.mesh
            .call(service, method, move |ch| f(client(ch)))
            .await
    }

    pub async fn auth<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T, ServiceError>
    where
        F: FnMut(AuthServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        // Before anyone sees the answer: a call that ended sessions or changed permissions
        // drops the validations this gateway trusts, so the next request is checked afresh.
        let tokens = self.tokens.clone();
        let mut f = f;
        let stamped = move |c| {
            let answer = f(c);
            let tokens = tokens.clone();
            async move {
                let res = answer.await;
                let meta = match &res {
                    Ok(r) => r.metadata(),
                    Err(s) => s.metadata(),
                };
                if meta.contains_key(SESSIONS_CHANGED_HEADER) {
                    tokens.clear();
                }
                res
            }
        };
        self.via(Service::Auth, method, AuthServiceClient::new, stamped)
            .await
    }

    pub async fn project<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T, ServiceError>
    where
        F: FnMut(ProjectServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.via(Service::Project, method, project_client, f).await
    }

    pub async fn simulation<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T, ServiceError>
    where
        F: FnMut(SimulationServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.via(Service::Simulation, method, simulation_client, f)
            .await
    }

    /// The `HealthCheck` RPC of a backend: the first of its instances to answer within
    /// `deadline` (breakers bypassed: health must see the real state).
    pub async fn health(
        &self,
        target: Service,
        deadline: Duration,
    ) -> Result<HealthCheckResponse, ServiceError> {
        let req = HealthCheckRequest {
            calling_service: "gateway".into(),
        };
        self.mesh
            .first_ok(target, deadline, |ch| {
                let req = req.clone();
                async move {
                    match target {
                        Service::Auth => AuthServiceClient::new(ch).health_check(req).await,
                        Service::Project => ProjectServiceClient::new(ch).health_check(req).await,
                        _ => SimulationServiceClient::new(ch).health_check(req).await,
                    }
                }
            })
            .await
    }
}
