//! The project service's gRPC adapter. Its full contract is served now;
//! the RPCs whose logic has not landed yet answer UNIMPLEMENTED with a message saying so,
//! and HealthCheck reports the real state of the service and its dependencies.

use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::project as ppb;
use sdsim_runtime::health::HealthProbe;
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
