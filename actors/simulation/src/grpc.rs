//! The simulation service's gRPC adapter. Its full contract is served now;
//! the RPCs whose logic has not landed yet answer UNIMPLEMENTED with a message saying so,
//! and HealthCheck reports the real state of the service and its dependencies.

use crate::validation::Verdict;
use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::simulation as spb;
use sdsim_runtime::grpc::reply;
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
        req: Request<spb::ValidateConfigurationRequest>,
    ) -> Result<Response<spb::ValidateConfigurationResponse>, Status> {
        let r = req.into_inner();
        reply(crate::validation::validate(r.design_json).await.map(|v| {
            match v {
                Verdict::Valid { preview_json } => spb::ValidateConfigurationResponse {
                    valid: true,
                    problems: Vec::new(),
                    preview_json,
                },
                Verdict::Invalid(problems) => spb::ValidateConfigurationResponse {
                    valid: false,
                    problems: problems
                        .into_iter()
                        .map(|p| spb::ValidationProblem {
                            path: p.path,
                            message: p.message,
                        })
                        .collect(),
                    preview_json: String::new(),
                },
            }
        }))
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
