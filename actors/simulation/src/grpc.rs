//! The simulation service's gRPC adapter. Its full contract is served now;
//! the RPCs whose logic has not landed yet answer UNIMPLEMENTED with a message saying so,
//! and HealthCheck reports the real state of the service and its dependencies.

use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::simulation as spb;
use sdsim_runtime::health::HealthProbe;
use tonic::{Request, Response, Status};

fn later<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "{what} is part of the contract but not implemented yet"
    )))
}

#[derive(Clone, Debug)]
pub struct SimulationGrpc {
    pub health: HealthProbe,
}

#[tonic::async_trait]
impl spb::simulation_service_server::SimulationService for SimulationGrpc {
    async fn start_simulation(
        &self,
        _: Request<spb::StartSimulationRequest>,
    ) -> Result<Response<spb::StartSimulationResponse>, Status> {
        later("StartSimulation")
    }
    async fn stop_simulation(
        &self,
        _: Request<spb::StopSimulationRequest>,
    ) -> Result<Response<spb::StopSimulationResponse>, Status> {
        later("StopSimulation")
    }
    async fn get_simulation_status(
        &self,
        _: Request<spb::GetSimulationStatusRequest>,
    ) -> Result<Response<spb::GetSimulationStatusResponse>, Status> {
        later("GetSimulationStatus")
    }
    async fn get_simulation_results(
        &self,
        _: Request<spb::GetSimulationResultsRequest>,
    ) -> Result<Response<spb::GetSimulationResultsResponse>, Status> {
        later("GetSimulationResults")
    }
    async fn get_live_metrics(
        &self,
        _: Request<spb::GetLiveMetricsRequest>,
    ) -> Result<Response<spb::GetLiveMetricsResponse>, Status> {
        later("GetLiveMetrics")
    }
    async fn get_performance_analysis(
        &self,
        _: Request<spb::GetPerformanceAnalysisRequest>,
    ) -> Result<Response<spb::GetPerformanceAnalysisResponse>, Status> {
        later("GetPerformanceAnalysis")
    }
    async fn validate_configuration(
        &self,
        _: Request<spb::ValidateConfigurationRequest>,
    ) -> Result<Response<spb::ValidateConfigurationResponse>, Status> {
        later("ValidateConfiguration")
    }
    async fn get_simulation_history(
        &self,
        _: Request<spb::GetSimulationHistoryRequest>,
    ) -> Result<Response<spb::GetSimulationHistoryResponse>, Status> {
        later("GetSimulationHistory")
    }
    async fn health_check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(self.health.check("simulation", true).await))
    }
}
