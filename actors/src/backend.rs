//! The project and simulation services' gRPC adapters. Their full contracts are served now;
//! the RPCs whose logic has not landed yet answer UNIMPLEMENTED with a message saying so,
//! and HealthCheck reports the real state of the service and its dependencies.

use crate::health::HealthProbe;
use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::project as ppb;
use sdsim_protocols::proto::simulation as spb;
use tonic::{Request, Response, Status};

fn later<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "{what} is part of the contract but not implemented yet"
    )))
}

#[derive(Clone, Debug)]
pub struct ProjectGrpc {
    pub health: HealthProbe,
}

#[tonic::async_trait]
impl ppb::project_service_server::ProjectService for ProjectGrpc {
    async fn create_project(
        &self,
        _: Request<ppb::CreateProjectRequest>,
    ) -> Result<Response<ppb::CreateProjectResponse>, Status> {
        later("CreateProject")
    }
    async fn get_project(
        &self,
        _: Request<ppb::GetProjectRequest>,
    ) -> Result<Response<ppb::GetProjectResponse>, Status> {
        later("GetProject")
    }
    async fn update_project(
        &self,
        _: Request<ppb::UpdateProjectRequest>,
    ) -> Result<Response<ppb::UpdateProjectResponse>, Status> {
        later("UpdateProject")
    }
    async fn delete_project(
        &self,
        _: Request<ppb::DeleteProjectRequest>,
    ) -> Result<Response<ppb::DeleteProjectResponse>, Status> {
        later("DeleteProject")
    }
    async fn list_projects(
        &self,
        _: Request<ppb::ListProjectsRequest>,
    ) -> Result<Response<ppb::ListProjectsResponse>, Status> {
        later("ListProjects")
    }
    async fn share_project(
        &self,
        _: Request<ppb::ShareProjectRequest>,
    ) -> Result<Response<ppb::ShareProjectResponse>, Status> {
        later("ShareProject")
    }
    async fn get_project_permissions(
        &self,
        _: Request<ppb::GetProjectPermissionsRequest>,
    ) -> Result<Response<ppb::GetProjectPermissionsResponse>, Status> {
        later("GetProjectPermissions")
    }
    async fn get_template(
        &self,
        _: Request<ppb::GetTemplateRequest>,
    ) -> Result<Response<ppb::GetTemplateResponse>, Status> {
        later("GetTemplate")
    }
    async fn list_templates(
        &self,
        _: Request<ppb::ListTemplatesRequest>,
    ) -> Result<Response<ppb::ListTemplatesResponse>, Status> {
        later("ListTemplates")
    }
    async fn join_collaboration(
        &self,
        _: Request<ppb::JoinCollaborationRequest>,
    ) -> Result<Response<ppb::JoinCollaborationResponse>, Status> {
        later("JoinCollaboration")
    }
    async fn leave_collaboration(
        &self,
        _: Request<ppb::LeaveCollaborationRequest>,
    ) -> Result<Response<ppb::LeaveCollaborationResponse>, Status> {
        later("LeaveCollaboration")
    }
    async fn health_check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(self.health.check("project", true).await))
    }
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
