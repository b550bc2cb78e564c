//! The gateway's clients of the backend services: one lazily connecting tonic channel per
//! service, with a connect timeout and a per-call deadline, so that a stopped backend makes a
//! call fail in milliseconds (connection refused) or at worst after the connect timeout,
//! never hang. Every call is timed in `sdsim_grpc_client_seconds{target,method,outcome}`.
//!
//! (Discovery, self-scaling pools and circuit breakers per instance replace the single
//! channel in the mesh issue; callers keep this interface.)

use sdsim_actors::breaker::{Breaker, BreakerConfig, State};
use sdsim_actors::error::ServiceError;
use sdsim_actors::metrics::Metrics;
use sdsim_protocols::proto::auth::auth_service_client::AuthServiceClient;
use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::project::project_service_client::ProjectServiceClient;
use sdsim_protocols::proto::simulation::simulation_service_client::SimulationServiceClient;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// gRPC URLs of the backends, e.g. `http://127.0.0.1:9000`.
#[derive(Debug, Clone)]
pub struct UpstreamUrls {
    pub auth: String,
    pub project: String,
    pub simulation: String,
}

#[derive(Clone)]
pub struct Upstreams {
    pub auth: AuthServiceClient<Channel>,
    pub project: ProjectServiceClient<Channel>,
    pub simulation: SimulationServiceClient<Channel>,
    metrics: Arc<Metrics>,
    timeout: Duration,
    /// One circuit breaker per backend service: while it is open, calls fail at once.
    breakers: Arc<[(&'static str, Breaker); 3]>,
}

fn channel(name: &str, url: &str, connect: Duration, timeout: Duration) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("upstream.{name}: invalid URL {url:?}: {e}"))?
        .connect_timeout(connect)
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(endpoint.connect_lazy())
}

impl Upstreams {
    /// Channels connect on first use and reconnect by themselves; building them never fails
    /// because a backend is down, only on a malformed URL.
    pub fn new(
        urls: &UpstreamUrls,
        connect_timeout: Duration,
        timeout: Duration,
        breaker: BreakerConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        for t in ["auth", "project", "simulation"] {
            metrics.breaker_state.with_label_values(&[t]).set(0);
        }
        Ok(Self {
            auth: AuthServiceClient::new(channel("auth", &urls.auth, connect_timeout, timeout)?),
            project: ProjectServiceClient::new(channel(
                "project",
                &urls.project,
                connect_timeout,
                timeout,
            )?),
            simulation: SimulationServiceClient::new(channel(
                "simulation",
                &urls.simulation,
                connect_timeout,
                timeout,
            )?),
            metrics,
            timeout,
            breakers: Arc::new([
                ("auth", Breaker::new(breaker)),
                ("project", Breaker::new(breaker)),
                ("simulation", Breaker::new(breaker)),
            ]),
        })
    }

    fn breaker(&self, target: &str) -> Option<&Breaker> {
        self.breakers
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, b)| b)
    }

    /// Runs one call to `target`, bounded by the call deadline, timed and mapped to a
    /// [`ServiceError`] (a refused connection is `Unavailable` naming the service).
    pub async fn call<T, Fut>(
        &self,
        target: &'static str,
        method: &'static str,
        fut: Fut,
    ) -> Result<T, ServiceError>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let breaker = self.breaker(target);
        if let Some(b) = breaker {
            if let Err(r) = b.try_acquire() {
                self.metrics
                    .breaker_calls
                    .with_label_values(&[target, "rejected"])
                    .inc();
                return Err(ServiceError::Unavailable(format!(
                    "the {target} service is failing; calls are suspended for {} ms (circuit open)",
                    r.retry_after.as_millis().max(1)
                )));
            }
            self.metrics
                .breaker_state
                .with_label_values(&[target])
                .set(b.state().code());
        }
        let res = self.call_unguarded(target, method, fut).await;
        if let Some(b) = breaker {
            // The service answered (even "no") unless it was unavailable or broken.
            let failed = matches!(
                res,
                Err(ServiceError::Unavailable(_)) | Err(ServiceError::Internal(_))
            );
            let took = self.last_call_time(&res);
            let state = b.record(failed, took);
            let outcome = if failed { "failure" } else { "success" };
            self.metrics
                .breaker_calls
                .with_label_values(&[target, outcome])
                .inc();
            self.metrics
                .breaker_state
                .with_label_values(&[target])
                .set(state.code());
            if state == State::Open && failed {
                tracing::warn!(%target, "circuit breaker open");
            }
        }
        res.map(|(v, _)| v)
    }

    fn last_call_time<T>(&self, res: &Result<(T, Duration), ServiceError>) -> Duration {
        match res {
            Ok((_, d)) => *d,
            Err(_) => Duration::ZERO,
        }
    }

    /// One timed call without the breaker (health checks must see the real state).
    async fn call_unguarded<T, Fut>(
        &self,
        target: &'static str,
        method: &'static str,
        fut: Fut,
    ) -> Result<(T, Duration), ServiceError>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let start = Instant::now();
        let res = match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(match ServiceError::from_status(&status) {
                ServiceError::Unavailable(m) => {
                    ServiceError::Unavailable(format!("the {target} service is unavailable: {m}"))
                }
                other => other,
            }),
            Err(_) => Err(ServiceError::Unavailable(format!(
                "the {target} service did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        };
        let outcome = match &res {
            Ok(_) => "ok",
            Err(ServiceError::Unavailable(_)) => "unavailable",
            Err(ServiceError::Internal(_)) => "error",
            Err(_) => "rejected",
        };
        let took = start.elapsed();
        self.metrics
            .grpc_client_seconds
            .with_label_values(&[target, method, outcome])
            .observe(took.as_secs_f64());
        res.map(|v| (v, took))
    }

    /// The `HealthCheck` RPC of one backend, bounded by `deadline`.
    pub async fn health(
        &self,
        target: &'static str,
        deadline: Duration,
    ) -> Result<HealthCheckResponse, ServiceError> {
        let req = HealthCheckRequest {
            calling_service: "gateway".into(),
        };
        let fut = async {
            match target {
                "auth" => self.auth.clone().health_check(req).await,
                "project" => self.project.clone().health_check(req).await,
                _ => self.simulation.clone().health_check(req).await,
            }
        };
        match tokio::time::timeout(deadline, self.call_unguarded(target, "HealthCheck", fut)).await
        {
            Ok(r) => r.map(|(v, _)| v),
            Err(_) => Err(ServiceError::Unavailable(format!(
                "the {target} service did not answer its health check within {} ms",
                deadline.as_millis()
            ))),
        }
    }
}
