//! gRPC plumbing every service shares: the standard health and reflection services, and the
//! per-method metrics of the adapters.

use crate::error::ServiceError;
use crate::metrics::Metrics;
use std::time::Instant;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;

/// Adds `grpc.health.v1.Health` (SERVING for "" and for each of `services`) and server
/// reflection (v1 and v1alpha, so grpcurl and grpcio clients of either era work).
pub fn with_standard_services(
    mut builder: RoutesBuilder,
    services: &[&'static str],
) -> RoutesBuilder {
    let (reporter, health) = tonic_health::server::health_reporter();
    let names: Vec<&'static str> = services.to_vec();
    tokio::spawn(async move {
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        for name in names {
            reporter
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
    });
    builder.add_service(health);
    // Reflection lists exactly what this port serves: the service, health and reflection.
    let reflection = || {
        let mut b = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(sdsim_protocols::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection");
        for name in services {
            b = b.with_service_name(*name);
        }
        b
    };
    match reflection().build_v1() {
        Ok(svc) => {
            builder.add_service(svc);
        }
        Err(e) => tracing::error!(error = %e, "cannot build reflection v1"),
    }
    match reflection().build_v1alpha() {
        Ok(svc) => {
            builder.add_service(svc);
        }
        Err(e) => tracing::error!(error = %e, "cannot build reflection v1alpha"),
    }
    builder
}

/// Times one RPC and records it under `sdsim_grpc_server_handled_seconds`.
pub struct RpcTimer<'a> {
    metrics: &'a Metrics,
    service: &'static str,
    method: &'static str,
    start: Instant,
    in_flight: prometheus::IntGauge,
}

impl Drop for RpcTimer<'_> {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

impl<'a> RpcTimer<'a> {
    pub fn start(metrics: &'a Metrics, service: &'static str, method: &'static str) -> Self {
        let in_flight = metrics.grpc_in_flight.with_label_values(&[service]);
        in_flight.inc();
        Self {
            metrics,
            service,
            method,
            start: Instant::now(),
            in_flight,
        }
    }

    /// Records the outcome and converts a domain error into a status.
    pub fn finish<T>(
        &self,
        result: Result<T, ServiceError>,
    ) -> Result<tonic::Response<T>, tonic::Status> {
        let code = match &result {
            Ok(_) => "OK".to_string(),
            Err(e) => format!("{:?}", e.to_status().code()),
        };
        self.metrics
            .grpc_server_seconds
            .with_label_values(&[self.service, self.method, &code])
            .observe(self.start.elapsed().as_secs_f64());
        result.map(tonic::Response::new).map_err(|e| e.to_status())
    }
}
