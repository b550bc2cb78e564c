//! gRPC plumbing every service shares: the standard health and reflection services, and how
//! an adapter answers.

use crate::error::ServiceError;
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

/// An adapter's answer: the value, or the domain error as a status (code and field in its
/// metadata). Timing and counting happen in the server's [`crate::server::Timing`] layer.
pub fn reply<T>(result: Result<T, ServiceError>) -> Result<tonic::Response<T>, tonic::Status> {
    result.map(tonic::Response::new).map_err(|e| e.to_status())
}
