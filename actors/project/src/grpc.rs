//! The project service's gRPC adapter: proto in, a call to [`ProjectCore`] on the task that
//! received it (every core), proto out. Proto types stop here.

use crate::access;
use crate::core::{self, Caller, Changes, Creation, Listing, ProjectCore, ProjectView};
use crate::store::{Scope, Sort, TemplateRow, VersionRow};
use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_protocols::proto::project as ppb;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::grpc::reply;
use sdsim_runtime::health::HealthProbe;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct ProjectGrpc {
    pub core: Arc<ProjectCore>,
    pub health: HealthProbe,
    /// This instance's open live documents (their versions while edited here).
    pub live_docs: sdsim_runtime::slot::Slot<crate::live_docs::LiveDocs>,
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

fn project_pb(v: ProjectView) -> ppb::Project {
    let r = v.row;
    ppb::Project {
        project_id: r.id.to_string(),
        name: r.name,
        description: r.description,
        owner_id: r.owner_id.to_string(),
        tags: r.tags,
        is_public: r.is_public,
        version: r.version,
        design_json: r.configuration.to_string(),
        layout_json: r.layout.to_string(),
        problems: v
            .problems
            .into_iter()
            .map(|p| ppb::DesignProblem {
                path: p.path,
                message: p.message,
            })
            .collect(),
        access_level: access::level(v.role).into(),
        created_at: ts(r.created_at),
        updated_at: ts(r.updated_at),
        deleted_at: r.deleted_at.map_or(0, ts),
        template_id: r.template_id.map(|t| t.to_string()).unwrap_or_default(),
        forked_from: r.forked_from.map(|t| t.to_string()).unwrap_or_default(),
    }
}

fn version_pb(v: &VersionRow) -> ppb::VersionInfo {
    ppb::VersionInfo {
        version: v.version,
        author_id: v.author_id.to_string(),
        message: v.change_summary.clone(),
        named: v.named,
        created_at: ts(v.created_at),
        updated_at: ts(v.updated_at),
    }
}

/// The largest design `ListTemplates` carries, and all of them together.
const LISTED_DESIGN_BYTES: usize = 256 << 10;
const LISTED_DESIGNS_BYTES: usize = 2 << 20;

fn template_pb(t: TemplateRow) -> ppb::Template {
    ppb::Template {
        template_id: t.slug,
        name: t.name,
        description: t.description,
        category: t.category,
        is_system: t.is_system,
        author_id: t.author_id.map(|a| a.to_string()).unwrap_or_default(),
        configuration_json: t.configuration.to_string(),
        created_at: ts(t.created_at),
        is_public: t.is_public,
    }
}

fn link_pb(l: crate::links::Link) -> ppb::ShareLink {
    ppb::ShareLink {
        link_id: l.row.id.to_string(),
        token: l.token.unwrap_or_default(),
        access: l.row.access,
        created_at: ts(l.row.created_at),
        expires_at: l.row.expires_at.map_or(0, ts),
        revoked: l.row.revoked_at.is_some(),
        project_id: l.row.project_id.to_string(),
    }
}

fn caller_of(c: Option<ppb::Caller>) -> Result<Caller, ServiceError> {
    let c = c.unwrap_or_default();
    core::caller(&c.user_id, c.is_admin)
}

impl ProjectGrpc {
    async fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<Response<T>, Status> {
        reply(f.await)
    }
}

#[tonic::async_trait]
impl ppb::project_service_server::ProjectService for ProjectGrpc {
    async fn create_project(
        &self,
        req: Request<ppb::CreateProjectRequest>,
    ) -> Result<Response<ppb::CreateProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.user_id, false)?;
            let v = self
                .core
                .create(
                    caller,
                    Creation {
                        name: r.name,
                        description: r.description,
                        tags: r.tags,
                        is_public: r.is_public,
                        template: r.template_id,
                        design: r.design_json,
                        layout: r.layout_json,
                    },
                )
                .await?;
            let p = project_pb(v);
            Ok(ppb::CreateProjectResponse {
                project_id: p.project_id.clone(),
                name: p.name.clone(),
                status: "active".into(),
                created_at: p.created_at,
                template_used: p.template_id.clone(),
                project: Some(p),
            })
        })
        .await
    }

    async fn get_project(
        &self,
        req: Request<ppb::GetProjectRequest>,
    ) -> Result<Response<ppb::GetProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.user_id, r.is_admin)?;
            let (mut view, unsaved) = match self.core.get_live(caller, &r.project_id).await {
                // Perhaps shared with the caller's address before they had an account.
                Err(ServiceError::NotFound(m)) => {
                    if self.core.claim_invitations(caller, &r.email).await? > 0 {
                        self.core.get_live(caller, &r.project_id).await?
                    } else {
                        return Err(ServiceError::NotFound(m));
                    }
                }
                other => other?,
            };
            // Edits of a live session not yet saved are saved first, so the answer has them.
            if unsaved && self.core.settle_live(&r.project_id).await? {
                view = self.core.get(caller, &r.project_id).await?;
            }
            if view.role != crate::access::Role::Owner {
                self.core.count(view.row.id, crate::presence::Count::View);
            }
            let p = project_pb(view);
            Ok(ppb::GetProjectResponse {
                project_id: p.project_id.clone(),
                name: p.name.clone(),
                description: p.description.clone(),
                owner_id: p.owner_id.clone(),
                configuration: Default::default(),
                collaborators: Vec::new(),
                created_at: p.created_at,
                updated_at: p.updated_at,
                status: if p.deleted_at > 0 {
                    "deleted"
                } else {
                    "active"
                }
                .into(),
                is_public: p.is_public,
                version: p.version,
                project: Some(p),
            })
        })
        .await
    }

    async fn update_project(
        &self,
        req: Request<ppb::UpdateProjectRequest>,
    ) -> Result<Response<ppb::UpdateProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.user_id, r.is_admin)?;
            let v = self
                .core
                .update(
                    caller,
                    &r.project_id,
                    Changes {
                        name: r.name,
                        description: r.description,
                        tags: r.set_tags.then_some(r.tags),
                        is_public: r.is_public,
                        design: r.design_json,
                        layout: r.layout_json,
                        expected_version: r.expected_version,
                        message: r.change_summary,
                        named: r.named,
                    },
                )
                .await?;
            let p = project_pb(v);
            Ok(ppb::UpdateProjectResponse {
                project_id: p.project_id.clone(),
                version: p.version,
                updated_at: p.updated_at,
                project: Some(p),
            })
        })
        .await
    }

    async fn delete_project(
        &self,
        req: Request<ppb::DeleteProjectRequest>,
    ) -> Result<Response<ppb::DeleteProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.user_id, r.is_admin)?;
            let deleted = self.core.delete(caller, &r.project_id).await?;
            Ok(ppb::DeleteProjectResponse { deleted })
        })
        .await
    }

    async fn list_projects(
        &self,
        req: Request<ppb::ListProjectsRequest>,
    ) -> Result<Response<ppb::ListProjectsResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.user_id, false)?;
            if r.scope == "shared" {
                self.core.claim_invitations(caller, &r.email).await?;
            }
            let scope = match r.scope.as_str() {
                "" | "mine" => Scope::Mine,
                "shared" => Scope::Shared,
                "public" => Scope::Public,
                "trash" => Scope::Trash,
                other => {
                    return Err(ServiceError::invalid(
                        "scope",
                        format!("scope must be mine, shared, public or trash, not {other:?}"),
                    ))
                }
            };
            let sort = match r.sort.as_str() {
                "" | "updated" => Sort::Updated,
                "name" => Sort::Name,
                other => {
                    return Err(ServiceError::invalid(
                        "sort",
                        format!("sort must be updated or name, not {other:?}"),
                    ))
                }
            };
            let page = self
                .core
                .list(
                    caller,
                    Listing {
                        scope,
                        search: &r.search,
                        tag: &r.tag,
                        sort,
                        page_size: r.page_size,
                        token: &r.page_token,
                    },
                )
                .await?;
            Ok(ppb::ListProjectsResponse {
                total: page.items.len() as i32,
                projects: page
                    .items
                    .into_iter()
                    .map(|(row, role)| ppb::ProjectSummary {
                        project_id: row.id.to_string(),
                        name: row.name,
                        description: row.description,
                        owner_id: row.owner_id.to_string(),
                        status: row.status,
                        is_public: row.is_public,
                        updated_at: ts(row.updated_at),
                        access_level: access::level(role).into(),
                        tags: row.tags,
                        version: row.version,
                        deleted_at: row.deleted_at.map_or(0, ts),
                    })
                    .collect(),
                next_page_token: page.next,
            })
        })
        .await
    }

    async fn share_project(
        &self,
        req: Request<ppb::ShareProjectRequest>,
    ) -> Result<Response<ppb::ShareProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.owner_id, r.is_admin)?;
            let message = if r.revoke && r.share_with_email.is_empty() {
                self.core
                    .unshare_user(caller, &r.project_id, &r.share_with_user_id)
                    .await?
            } else {
                self.core
                    .share(
                        caller,
                        &r.project_id,
                        &r.share_with_email,
                        &r.access_level,
                        r.revoke,
                    )
                    .await?
            };
            Ok(ppb::ShareProjectResponse {
                shared: !r.revoke,
                share_id: String::new(),
                message,
            })
        })
        .await
    }

    async fn get_project_permissions(
        &self,
        req: Request<ppb::GetProjectPermissionsRequest>,
    ) -> Result<Response<ppb::GetProjectPermissionsResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.user_id, r.is_admin)?;
            let (role, list) = self.core.permissions(caller, &r.project_id).await?;
            Ok(ppb::GetProjectPermissionsResponse {
                project_id: r.project_id.clone(),
                access_level: access::level(role).into(),
                permissions: list
                    .into_iter()
                    .map(|p| ppb::ProjectPermission {
                        pending: p.user_id.is_none(),
                        user_id: p.user_id.map(|u| u.to_string()).unwrap_or_default(),
                        access_level: p.level,
                        granted_at: ts(p.granted_at),
                        granted_by: p.granted_by.map(|u| u.to_string()).unwrap_or_default(),
                        email: p.email.unwrap_or_default(),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn transfer_ownership(
        &self,
        req: Request<ppb::TransferOwnershipRequest>,
    ) -> Result<Response<ppb::ProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let v = self
                .core
                .transfer(caller, &r.project_id, &r.new_owner_id)
                .await?;
            Ok(ppb::ProjectResponse {
                project: Some(project_pb(v)),
            })
        })
        .await
    }

    async fn get_template(
        &self,
        req: Request<ppb::GetTemplateRequest>,
    ) -> Result<Response<ppb::GetTemplateResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            Ok(ppb::GetTemplateResponse {
                template: Some(template_pb(
                    self.core
                        .template(&r.template_id, r.user_id.parse().ok())
                        .await?,
                )),
            })
        })
        .await
    }

    async fn list_templates(
        &self,
        req: Request<ppb::ListTemplatesRequest>,
    ) -> Result<Response<ppb::ListTemplatesResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            // Designs ride along for previews while they fit a budget; past it (or when one
            // is large) a template is listed without its design, which GetTemplate gives.
            // Templates are anyone's to publish: the list must stay one message.
            let mut budget = LISTED_DESIGNS_BYTES;
            let templates = self
                .core
                .templates(&r.category, r.user_id.parse().ok())
                .await?
                .into_iter()
                .map(|t| {
                    let mut t = template_pb(t);
                    let n = t.configuration_json.len();
                    if n <= LISTED_DESIGN_BYTES && n <= budget {
                        budget -= n;
                    } else {
                        t.configuration_json = String::new();
                    }
                    t
                })
                .collect();
            Ok(ppb::ListTemplatesResponse {
                templates,
                next_page_token: String::new(),
            })
        })
        .await
    }

    async fn save_as_template(
        &self,
        req: Request<ppb::SaveAsTemplateRequest>,
    ) -> Result<Response<ppb::GetTemplateResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            // As a fork or an export: the live session's edits first (checked who may see it
            // before touching it).
            self.core.get(caller, &r.project_id).await?;
            self.core.settle_live(&r.project_id).await?;
            let t = self
                .core
                .save_as_template(
                    caller,
                    &r.project_id,
                    &r.name,
                    &r.description,
                    &r.category,
                    r.is_public,
                )
                .await?;
            Ok(ppb::GetTemplateResponse {
                template: Some(template_pb(t)),
            })
        })
        .await
    }

    async fn join_collaboration(
        &self,
        req: Request<ppb::JoinCollaborationRequest>,
    ) -> Result<Response<ppb::JoinCollaborationResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.user_id, r.is_admin)?;
            let j = self
                .core
                .join_live(caller, &r.project_id, &r.gateway_instance)
                .await?;
            if let (Some(docs), Ok(pid)) = (self.live_docs.get(), r.project_id.parse()) {
                docs.do_send(crate::live_docs::Opened(pid));
            }
            Ok(ppb::JoinCollaborationResponse {
                collaboration_session_id: j.session.to_string(),
                active_users: j.present.iter().map(|u| u.to_string()).collect(),
                stream_key: self.core.ns.collaboration_stream(&r.project_id),
                last_offset: j.doc.seq.to_string(),
                role: crate::access::level(j.role).to_string(),
                design_json: j.doc.design.to_string(),
                layout_json: j.doc.layout.to_string(),
                version: j.doc.based_on_version,
            })
        })
        .await
    }

    async fn touch_collaboration(
        &self,
        req: Request<ppb::LeaveCollaborationRequest>,
    ) -> Result<Response<ppb::LeaveCollaborationResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.user_id, false)?;
            let left = self.core.touch(caller, &r.collaboration_session_id).await?;
            Ok(ppb::LeaveCollaborationResponse { left })
        })
        .await
    }

    async fn apply_edit(
        &self,
        req: Request<ppb::ApplyEditRequest>,
    ) -> Result<Response<ppb::ApplyEditResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let (seq, duplicate) = self
                .core
                .apply_edit(caller, &r.project_id, &r.client_id, r.edit_id, &r.ops_json)
                .await?;
            Ok(ppb::ApplyEditResponse { seq, duplicate })
        })
        .await
    }

    async fn get_edits(
        &self,
        req: Request<ppb::GetEditsRequest>,
    ) -> Result<Response<ppb::GetEditsResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let (edits, complete) = self
                .core
                .edits_after(caller, &r.project_id, r.after, r.upto)
                .await?;
            Ok(ppb::GetEditsResponse {
                edits: edits
                    .into_iter()
                    .map(|e| ppb::Edit {
                        seq: e.seq,
                        user_id: e.user_id.to_string(),
                        client_id: e.client_id,
                        edit_id: e.edit_id,
                        ops_json: e.ops.to_string(),
                    })
                    .collect(),
                complete,
            })
        })
        .await
    }

    async fn leave_collaboration(
        &self,
        req: Request<ppb::LeaveCollaborationRequest>,
    ) -> Result<Response<ppb::LeaveCollaborationResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = core::caller(&r.user_id, false)?;
            let left = self
                .core
                .leave(caller, &r.project_id, &r.collaboration_session_id)
                .await?;
            if let (true, Some(docs), Ok(pid)) = (left, self.live_docs.get(), r.project_id.parse())
            {
                docs.do_send(crate::live_docs::Closed(pid));
            }
            Ok(ppb::LeaveCollaborationResponse { left })
        })
        .await
    }

    async fn list_collaborators(
        &self,
        req: Request<ppb::ProjectRef>,
    ) -> Result<Response<ppb::JoinCollaborationResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let present = self.core.collaborators(caller, &r.project_id).await?;
            Ok(ppb::JoinCollaborationResponse {
                collaboration_session_id: String::new(),
                active_users: present.iter().map(|u| u.to_string()).collect(),
                stream_key: self.core.ns.collaboration_stream(&r.project_id),
                ..Default::default()
            })
        })
        .await
    }

    async fn get_project_analytics(
        &self,
        req: Request<ppb::ProjectRef>,
    ) -> Result<Response<ppb::ProjectAnalytics>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let a = self.core.analytics(caller, &r.project_id).await?;
            Ok(ppb::ProjectAnalytics {
                project_id: r.project_id.clone(),
                views: a.views,
                forks: a.forks,
                runs: a.runs,
                versions: a.versions as i32,
                collaborators_now: a.collaborators_now as i32,
            })
        })
        .await
    }

    async fn restore_project(
        &self,
        req: Request<ppb::ProjectRef>,
    ) -> Result<Response<ppb::ProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let v = self.core.restore(caller, &r.project_id).await?;
            Ok(ppb::ProjectResponse {
                project: Some(project_pb(v)),
            })
        })
        .await
    }

    async fn purge_project(
        &self,
        req: Request<ppb::ProjectRef>,
    ) -> Result<Response<ppb::PurgeProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let purged = self.core.purge(caller, &r.project_id).await?;
            Ok(ppb::PurgeProjectResponse { purged })
        })
        .await
    }

    async fn list_versions(
        &self,
        req: Request<ppb::ListVersionsRequest>,
    ) -> Result<Response<ppb::ListVersionsResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let (rows, next) = self
                .core
                .versions(caller, &r.project_id, r.before_version, r.page_size)
                .await?;
            Ok(ppb::ListVersionsResponse {
                versions: rows.iter().map(version_pb).collect(),
                next_before_version: next,
            })
        })
        .await
    }

    async fn get_version(
        &self,
        req: Request<ppb::GetVersionRequest>,
    ) -> Result<Response<ppb::VersionResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let v = self.core.version(caller, &r.project_id, r.version).await?;
            Ok(ppb::VersionResponse {
                info: Some(version_pb(&v)),
                problems: core::problems(&v.configuration)
                    .into_iter()
                    .map(|p| ppb::DesignProblem {
                        path: p.path,
                        message: p.message,
                    })
                    .collect(),
                design_json: v.configuration.to_string(),
                layout_json: v.layout.to_string(),
            })
        })
        .await
    }

    async fn diff_versions(
        &self,
        req: Request<ppb::DiffVersionsRequest>,
    ) -> Result<Response<ppb::DiffVersionsResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let d = self
                .core
                .diff(caller, &r.project_id, r.from_version, r.to_version)
                .await?;
            Ok(ppb::DiffVersionsResponse {
                diff_json: serde_json::to_string(&d)
                    .map_err(|e| ServiceError::Internal(format!("diff: {e}")))?,
            })
        })
        .await
    }

    async fn rollback_project(
        &self,
        req: Request<ppb::RollbackProjectRequest>,
    ) -> Result<Response<ppb::ProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let v = self
                .core
                .rollback(caller, &r.project_id, r.to_version, r.expected_version)
                .await?;
            Ok(ppb::ProjectResponse {
                project: Some(project_pb(v)),
            })
        })
        .await
    }

    async fn fork_project(
        &self,
        req: Request<ppb::ForkProjectRequest>,
    ) -> Result<Response<ppb::ProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            if r.version == 0 {
                self.core.get(caller, &r.project_id).await?;
                self.core.settle_live(&r.project_id).await?;
            }
            let v = self
                .core
                .fork(caller, &r.project_id, r.version, &r.name)
                .await?;
            Ok(ppb::ProjectResponse {
                project: Some(project_pb(v)),
            })
        })
        .await
    }

    async fn export_project(
        &self,
        req: Request<ppb::ExportProjectRequest>,
    ) -> Result<Response<ppb::ExportProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            self.core.get(caller, &r.project_id).await?;
            self.core.settle_live(&r.project_id).await?;
            let document_json = self
                .core
                .export(caller, &r.project_id, r.include_versions)
                .await?;
            Ok(ppb::ExportProjectResponse { document_json })
        })
        .await
    }

    async fn import_project(
        &self,
        req: Request<ppb::ImportProjectRequest>,
    ) -> Result<Response<ppb::ProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let v = self.core.import(caller, &r.document_json, &r.name).await?;
            Ok(ppb::ProjectResponse {
                project: Some(project_pb(v)),
            })
        })
        .await
    }

    async fn create_share_link(
        &self,
        req: Request<ppb::CreateShareLinkRequest>,
    ) -> Result<Response<ppb::ShareLink>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let link = self
                .core
                .create_link(caller, &r.project_id, &r.access, r.expires_in_seconds)
                .await?;
            Ok(link_pb(link))
        })
        .await
    }

    async fn list_share_links(
        &self,
        req: Request<ppb::ProjectRef>,
    ) -> Result<Response<ppb::ListShareLinksResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let links = self.core.list_links(caller, &r.project_id).await?;
            Ok(ppb::ListShareLinksResponse {
                links: links.into_iter().map(link_pb).collect(),
            })
        })
        .await
    }

    async fn revoke_share_link(
        &self,
        req: Request<ppb::RevokeShareLinkRequest>,
    ) -> Result<Response<ppb::RevokeShareLinkResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let revoked = self
                .core
                .revoke_link(caller, &r.project_id, &r.link_id)
                .await?;
            Ok(ppb::RevokeShareLinkResponse { revoked })
        })
        .await
    }

    async fn open_share_link(
        &self,
        req: Request<ppb::OpenShareLinkRequest>,
    ) -> Result<Response<ppb::ProjectResponse>, Status> {
        let r = req.into_inner();
        self.run(async {
            let caller = caller_of(r.caller)?;
            let v = self.core.open_link(caller, &r.token, r.fork).await?;
            Ok(ppb::ProjectResponse {
                project: Some(project_pb(v)),
            })
        })
        .await
    }

    async fn health_check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(self.health.check("project", true).await))
    }
}
