//! `/api/projects/*` and `/api/templates/*`: designs people save, version and find again.
//! The gateway authenticates and calls the project service; the rules live there.
//!
//! Optimistic concurrency: every answer carrying a project has its version as the `ETag`;
//! a change of the design or layout must send it back as `If-Match` (428 without it), and a
//! stale one is refused with 412 and the current version, nothing written.

use super::extract::AuthUser;
use super::json_resource;
use crate::body::{ApiJson, BodyLimit};
use crate::error::ApiError;
use crate::rpc;
use crate::state::GatewayState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES;
use sdsim_protocols::proto::project as pb;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// The routes of this area. Bodies that carry a design may be as large as a design.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let big = BodyLimit(MAX_DESIGN_MESSAGE_BYTES);
    cfg.service(
        json_resource("/api/projects/import")
            .app_data(big)
            .route(web::post().to(import)),
    )
    .service(
        json_resource("/api/projects")
            .app_data(big)
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(
        json_resource("/api/projects/{id}")
            .app_data(big)
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(json_resource("/api/projects/{id}/restore").route(web::post().to(restore)))
    .service(json_resource("/api/projects/{id}/purge").route(web::post().to(purge)))
    .service(json_resource("/api/projects/{id}/versions").route(web::get().to(versions)))
    .service(json_resource("/api/projects/{id}/versions/{version}").route(web::get().to(version)))
    .service(json_resource("/api/projects/{id}/diff").route(web::get().to(diff)))
    .service(json_resource("/api/projects/{id}/rollback").route(web::post().to(rollback)))
    .service(json_resource("/api/projects/{id}/fork").route(web::post().to(fork)))
    .service(json_resource("/api/projects/{id}/template").route(web::post().to(save_as_template)))
    .service(
        json_resource("/api/projects/{id}/shares")
            .route(web::post().to(share))
            .route(web::delete().to(unshare)),
    )
    .service(json_resource("/api/projects/{id}/permissions").route(web::get().to(permissions)))
    .service(json_resource("/api/projects/{id}/owner").route(web::post().to(transfer)))
    .service(
        json_resource("/api/projects/{id}/links")
            .route(web::post().to(create_link))
            .route(web::get().to(list_links)),
    )
    .service(
        json_resource("/api/projects/{id}/links/{link_id}").route(web::delete().to(revoke_link)),
    )
    .service(json_resource("/api/projects/{id}/collaboration").route(web::post().to(join)))
    .service(
        json_resource("/api/projects/{id}/collaboration/{session_id}")
            .route(web::delete().to(leave)),
    )
    .service(json_resource("/api/projects/{id}/collaborators").route(web::get().to(collaborators)))
    .service(json_resource("/api/projects/{id}/analytics").route(web::get().to(analytics)))
    .service(json_resource("/api/links/{token}").route(web::get().to(open_link)))
    .service(json_resource("/api/links/{token}/fork").route(web::post().to(fork_link)))
    .service(json_resource("/api/projects/{id}/export").route(web::get().to(export)))
    .service(json_resource("/api/templates").route(web::get().to(templates)))
    .service(json_resource("/api/templates/{id}").route(web::get().to(template)));
}

fn timestamp(secs: i64) -> Option<String> {
    super::views::timestamp(secs)
}

#[derive(Serialize)]
struct ProblemView {
    path: String,
    message: String,
}

/// A project as the API shows it.
#[derive(Serialize)]
struct ProjectView {
    id: String,
    name: String,
    description: String,
    owner_id: String,
    tags: Vec<String>,
    is_public: bool,
    version: i32,
    design: Box<RawValue>,
    layout: Box<RawValue>,
    /// The engine's problems with the design (a draft may have many); empty when it runs.
    problems: Vec<ProblemView>,
    access_level: String,
    created_at: Option<String>,
    updated_at: Option<String>,
    deleted_at: Option<String>,
    template_id: Option<String>,
    forked_from: Option<String>,
}

/// A JSON document from a service, passed through as it is (a design can be megabytes:
/// parsing it only to print it again would cost every read).
/// An empty document (a list item, a draft without a layout) is `null`; one that is not
/// JSON (never written by the services) is logged and shown as `null` too.
pub(super) fn raw(text: String) -> Box<RawValue> {
    if text.is_empty() {
        return RawValue::NULL.to_owned();
    }
    RawValue::from_string(text).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a service sent a document that is not JSON");
        RawValue::NULL.to_owned()
    })
}

fn problems(p: Vec<pb::DesignProblem>) -> Vec<ProblemView> {
    p.into_iter()
        .map(|p| ProblemView {
            path: p.path,
            message: p.message,
        })
        .collect()
}

impl From<pb::Project> for ProjectView {
    fn from(p: pb::Project) -> Self {
        Self {
            design: raw(p.design_json),
            layout: raw(p.layout_json),
            problems: problems(p.problems),
            id: p.project_id,
            name: p.name,
            description: p.description,
            owner_id: p.owner_id,
            tags: p.tags,
            is_public: p.is_public,
            version: p.version,
            access_level: p.access_level,
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
            deleted_at: timestamp(p.deleted_at),
            template_id: (!p.template_id.is_empty()).then_some(p.template_id),
            forked_from: (!p.forked_from.is_empty()).then_some(p.forked_from),
        }
    }
}

#[derive(Serialize)]
struct ProjectBody {
    project: ProjectView,
}

/// A project answer: the body and its version as the `ETag`.
fn project_response(status: StatusCode, p: Option<pb::Project>) -> HttpResponse {
    let p = p.unwrap_or_default();
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", p.version)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ProjectBody { project: p.into() })
}

fn caller(user: &AuthUser) -> pb::Caller {
    pb::Caller {
        user_id: user.user_id.clone(),
        is_admin: is_admin(user),
    }
}

fn is_admin(user: &AuthUser) -> bool {
    user.is_admin || user.permissions.iter().any(|p| p == "admin:projects")
}

/// The version an `If-Match` header names (`"7"`, `W/"7"` or `7`); 0 when absent.
fn if_match(req: &HttpRequest) -> Result<i32, ApiError> {
    let Some(v) = req.headers().get(header::IF_MATCH) else {
        return Ok(0);
    };
    let text = v.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<i32>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_if_match",
            "If-Match must be the project's ETag, as a GET answered it (e.g. \"7\")",
        )
        .field("If-Match")
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    is_public: bool,
    /// A template's id (from `/api/templates`).
    #[serde(default)]
    template_id: Option<String>,
    /// An engine design to start from (a draft is fine).
    #[serde(default)]
    design: Option<Value>,
    #[serde(default)]
    layout: Option<Value>,
}

async fn create(
    state: web::Data<GatewayState>,
    user: AuthUser,
    body: ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::CreateProjectRequest {
        user_id: user.user_id,
        name: b.name,
        description: b.description,
        template_id: b.template_id.unwrap_or_default(),
        configuration: Default::default(),
        is_public: b.is_public,
        design_json: b.design.map(|d| d.to_string()).unwrap_or_default(),
        layout_json: b.layout.map(|l| l.to_string()).unwrap_or_default(),
        tags: b.tags,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "CreateProject", create_project, call).await?;
    Ok(project_response(StatusCode::CREATED, res.project))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    search: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page_size: i32,
    #[serde(default)]
    page_token: String,
}

#[derive(Serialize)]
struct Summary {
    id: String,
    name: String,
    description: String,
    owner_id: String,
    tags: Vec<String>,
    is_public: bool,
    version: i32,
    access_level: String,
    updated_at: Option<String>,
    deleted_at: Option<String>,
}

#[derive(Serialize)]
struct ListBody {
    projects: Vec<Summary>,
    /// Pass as `page_token` for the next page; absent on the last.
    next_page_token: Option<String>,
}

async fn list(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let call = pb::ListProjectsRequest {
        user_id: user.user_id,
        page_size: q.page_size,
        page_token: q.page_token,
        include_shared: false,
        email: user.email.clone(),
        search: q.search,
        scope: q.scope,
        tag: q.tag,
        sort: q.sort,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListProjects", list_projects, call).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ListBody {
            projects: res
                .projects
                .into_iter()
                .map(|p| Summary {
                    id: p.project_id,
                    name: p.name,
                    description: p.description,
                    owner_id: p.owner_id,
                    tags: p.tags,
                    is_public: p.is_public,
                    version: p.version,
                    access_level: p.access_level,
                    updated_at: timestamp(p.updated_at),
                    deleted_at: timestamp(p.deleted_at),
                })
                .collect(),
            next_page_token: (!res.next_page_token.is_empty()).then_some(res.next_page_token),
        }))
}

async fn get(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::GetProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        email: user.email.clone(),
        user_id: user.user_id,
        include_configuration: true,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "GetProject", get_project, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    is_public: Option<bool>,
    #[serde(default)]
    design: Option<Value>,
    #[serde(default)]
    layout: Option<Value>,
    /// What this save is (shown in the history).
    #[serde(default)]
    message: String,
    /// A named save: never replaced by a later autosave.
    #[serde(default)]
    named: bool,
}

async fn update(
    state: web::Data<GatewayState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: ApiJson<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(&req)?;
    let b = body.0;
    let call = pb::UpdateProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        user_id: user.user_id,
        name: b.name,
        description: b.description,
        configuration: Default::default(),
        is_public: b.is_public,
        expected_version: expected,
        change_summary: b.message,
        design_json: b.design.map(|d| d.to_string()),
        layout_json: b.layout.map(|l| l.to_string()),
        set_tags: b.tags.is_some(),
        tags: b.tags.unwrap_or_default(),
        named: b.named,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "UpdateProject", update_project, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

#[derive(Serialize)]
struct Deleted {
    deleted: bool,
    /// Where it went: it can be restored from the trash until it is purged.
    in_trash: bool,
}

async fn delete(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::DeleteProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        user_id: user.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "DeleteProject", delete_project, call).await?;
    Ok(HttpResponse::Ok().json(Deleted {
        deleted: res.deleted,
        in_trash: true,
    }))
}

async fn restore(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "RestoreProject", restore_project, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

#[derive(Serialize)]
struct Purged {
    purged: bool,
}

async fn purge(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "PurgeProject", purge_project, call).await?;
    Ok(HttpResponse::Ok().json(Purged { purged: res.purged }))
}

#[derive(Serialize)]
struct VersionView {
    version: i32,
    author_id: String,
    message: String,
    named: bool,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<pb::VersionInfo> for VersionView {
    fn from(v: pb::VersionInfo) -> Self {
        Self {
            version: v.version,
            author_id: v.author_id,
            message: v.message,
            named: v.named,
            created_at: timestamp(v.created_at),
            updated_at: timestamp(v.updated_at),
        }
    }
}

#[derive(Debug, Deserialize)]
struct VersionsQuery {
    #[serde(default)]
    before: i32,
    #[serde(default)]
    page_size: i32,
}

#[derive(Serialize)]
struct VersionsBody {
    versions: Vec<VersionView>,
    /// Pass as `before` for older versions; absent on the last page.
    next_before: Option<i32>,
}

async fn versions(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<VersionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ListVersionsRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        page_size: q.page_size,
        before_version: q.before,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListVersions", list_versions, call).await?;
    Ok(HttpResponse::Ok().json(VersionsBody {
        versions: res.versions.into_iter().map(Into::into).collect(),
        next_before: (res.next_before_version > 0).then_some(res.next_before_version),
    }))
}

#[derive(Serialize)]
struct VersionBody {
    version: VersionView,
    design: Box<RawValue>,
    layout: Box<RawValue>,
    problems: Vec<ProblemView>,
}

async fn version(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, version) = path.into_inner();
    let call = pb::GetVersionRequest {
        caller: Some(caller(&user)),
        project_id,
        version,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "GetVersion", get_version, call).await?;
    Ok(HttpResponse::Ok().json(VersionBody {
        version: res.info.unwrap_or_default().into(),
        design: raw(res.design_json),
        layout: raw(res.layout_json),
        problems: problems(res.problems),
    }))
}

#[derive(Debug, Deserialize)]
struct DiffQuery {
    from: i32,
    to: i32,
}

async fn diff(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::DiffVersionsRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        from_version: q.from,
        to_version: q.to,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "DiffVersions", diff_versions, call).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(format!(
            "{{\"from\":{},\"to\":{},\"diff\":{}}}",
            q.from, q.to, res.diff_json
        )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: i32,
}

async fn rollback(
    state: web::Data<GatewayState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: ApiJson<RollbackBody>,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(&req)?;
    if expected == 0 {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "a rollback must say which version it is based on (If-Match)",
        )
        .field("If-Match"));
    }
    let call = pb::RollbackProjectRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        to_version: body.0.version,
        expected_version: expected,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "RollbackProject", rollback_project, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

#[derive(Serialize)]
struct TemplateView {
    id: String,
    name: String,
    description: String,
    category: String,
    is_system: bool,
    is_public: bool,
    author_id: Option<String>,
    design: Box<RawValue>,
}

impl From<pb::Template> for TemplateView {
    fn from(t: pb::Template) -> Self {
        Self {
            design: raw(t.configuration_json),
            id: t.template_id,
            name: t.name,
            description: t.description,
            category: t.category,
            is_system: t.is_system,
            is_public: t.is_public,
            author_id: (!t.author_id.is_empty()).then_some(t.author_id),
        }
    }
}

#[derive(Debug, Deserialize)]
struct TemplatesQuery {
    #[serde(default)]
    category: String,
}

#[derive(Serialize)]
struct TemplatesBody {
    templates: Vec<TemplateView>,
}

async fn templates(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: web::Query<TemplatesQuery>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ListTemplatesRequest {
        category: q.into_inner().category,
        user_id: user.user_id,
        ..Default::default()
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListTemplates", list_templates, call).await?;
    Ok(HttpResponse::Ok().json(TemplatesBody {
        templates: res.templates.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Serialize)]
struct TemplateBody {
    template: TemplateView,
}

async fn template(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::GetTemplateRequest {
        template_id: path.into_inner(),
        user_id: user.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "GetTemplate", get_template, call).await?;
    Ok(HttpResponse::Ok().json(TemplateBody {
        template: res.template.unwrap_or_default().into(),
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForkBody {
    /// The version to copy; absent: the current design.
    #[serde(default)]
    version: i32,
    #[serde(default)]
    name: String,
}

async fn fork(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<ForkBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::ForkProjectRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        version: b.version,
        name: b.name,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ForkProject", fork_project, call).await?;
    Ok(project_response(StatusCode::CREATED, res.project))
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    /// With the version history.
    #[serde(default)]
    versions: bool,
}

async fn export(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let project_id = path.into_inner();
    let call = pb::ExportProjectRequest {
        caller: Some(caller(&user)),
        project_id: project_id.clone(),
        include_versions: q.versions,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ExportProject", export_project, call).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{project_id}.sdsim.json\""),
        ))
        .body(res.document_json))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    /// A project document (from export) or a bare engine design.
    document: Value,
    #[serde(default)]
    name: String,
}

async fn import(
    state: web::Data<GatewayState>,
    user: AuthUser,
    body: ApiJson<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::ImportProjectRequest {
        caller: Some(caller(&user)),
        document_json: b.document.to_string(),
        name: b.name,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ImportProject", import_project, call).await?;
    Ok(project_response(StatusCode::CREATED, res.project))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    email: String,
    /// `viewer` or `editor`.
    role: String,
}

#[derive(Serialize)]
struct ShareAnswer {
    message: String,
}

async fn share(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<ShareBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::ShareProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        owner_id: user.user_id,
        share_with_user_id: String::new(),
        share_with_email: b.email,
        access_level: b.role,
        revoke: false,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ShareProject", share_project, call).await?;
    Ok(HttpResponse::Ok().json(ShareAnswer {
        message: res.message,
    }))
}

/// Whose share ends: `email` (a person or an invitation), or `user_id` (an accepted share,
/// as the permissions list names it).
#[derive(Debug, Deserialize)]
struct UnshareQuery {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

async fn unshare(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<UnshareQuery>,
) -> Result<HttpResponse, ApiError> {
    let (email, user_id) = match q.into_inner() {
        UnshareQuery {
            email: Some(e),
            user_id: None,
        } => (e, String::new()),
        UnshareQuery {
            email: None,
            user_id: Some(u),
        } => (String::new(), u),
        _ => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "say whose share ends: ?email=<address> or ?user_id=<account id>, one of them",
            )
            .field("email"))
        }
    };
    let call = pb::ShareProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        owner_id: user.user_id,
        share_with_user_id: user_id,
        share_with_email: email,
        access_level: String::new(),
        revoke: true,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ShareProject", share_project, call).await?;
    Ok(HttpResponse::Ok().json(ShareAnswer {
        message: res.message,
    }))
}

#[derive(Serialize)]
struct PermissionView {
    user_id: Option<String>,
    email: Option<String>,
    role: String,
    pending: bool,
    granted_by: Option<String>,
    granted_at: Option<String>,
}

#[derive(Serialize)]
struct PermissionsBody {
    /// The caller's own role.
    access_level: String,
    permissions: Vec<PermissionView>,
}

async fn permissions(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::GetProjectPermissionsRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        user_id: user.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(
        up,
        project,
        "GetProjectPermissions",
        get_project_permissions,
        call
    )
    .await?;
    Ok(HttpResponse::Ok().json(PermissionsBody {
        access_level: res.access_level,
        permissions: res
            .permissions
            .into_iter()
            .map(|p| PermissionView {
                user_id: (!p.user_id.is_empty()).then_some(p.user_id),
                email: (!p.email.is_empty()).then_some(p.email),
                role: p.access_level,
                pending: p.pending,
                granted_by: (!p.granted_by.is_empty()).then_some(p.granted_by),
                granted_at: timestamp(p.granted_at),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    user_id: String,
}

async fn transfer(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<TransferBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::TransferOwnershipRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        new_owner_id: body.0.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "TransferOwnership", transfer_ownership, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    /// `view` (open and fork) or `fork` (fork only).
    access: String,
    /// Absent or 0: never expires.
    #[serde(default)]
    expires_in_seconds: i64,
}

#[derive(Serialize)]
struct LinkView {
    id: String,
    access: String,
    /// Only in the answer that created the link: it is not kept in clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// The path a signed-in person opens (`GET`) or forks (`POST .../fork`).
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    created_at: Option<String>,
    expires_at: Option<String>,
    revoked: bool,
}

impl From<pb::ShareLink> for LinkView {
    fn from(l: pb::ShareLink) -> Self {
        let token = (!l.token.is_empty()).then_some(l.token);
        Self {
            path: token.as_ref().map(|t| format!("/api/links/{t}")),
            token,
            id: l.link_id,
            access: l.access,
            created_at: timestamp(l.created_at),
            expires_at: timestamp(l.expires_at),
            revoked: l.revoked,
        }
    }
}

async fn create_link(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<LinkBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::CreateShareLinkRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        access: b.access,
        expires_in_seconds: b.expires_in_seconds,
    };
    let up = &state.upstream;
    let link = rpc!(up, project, "CreateShareLink", create_share_link, call).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(LinkView::from(link)))
}

#[derive(Serialize)]
struct LinksBody {
    links: Vec<LinkView>,
}

async fn list_links(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListShareLinks", list_share_links, call).await?;
    Ok(HttpResponse::Ok().json(LinksBody {
        links: res.links.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Serialize)]
struct Revoked {
    revoked: bool,
}

async fn revoke_link(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, link_id) = path.into_inner();
    let call = pb::RevokeShareLinkRequest {
        caller: Some(caller(&user)),
        project_id,
        link_id,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "RevokeShareLink", revoke_share_link, call).await?;
    Ok(HttpResponse::Ok().json(Revoked {
        revoked: res.revoked,
    }))
}

async fn open_link(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::OpenShareLinkRequest {
        caller: Some(caller(&user)),
        token: path.into_inner(),
        fork: false,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "OpenShareLink", open_share_link, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

async fn fork_link(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::OpenShareLinkRequest {
        caller: Some(caller(&user)),
        token: path.into_inner(),
        fork: true,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "OpenShareLink", open_share_link, call).await?;
    Ok(project_response(StatusCode::CREATED, res.project))
}

#[derive(Serialize)]
struct Presence {
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    /// The people in the project now (user ids).
    present: Vec<String>,
}

async fn join(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::JoinCollaborationRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        user_id: user.user_id,
        gateway_instance: state.instance_id.clone(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "JoinCollaboration", join_collaboration, call).await?;
    Ok(HttpResponse::Created().json(Presence {
        session_id: Some(res.collaboration_session_id),
        present: res.active_users,
    }))
}

#[derive(Serialize)]
struct Left {
    left: bool,
}

async fn leave(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, session) = path.into_inner();
    let call = pb::LeaveCollaborationRequest {
        project_id,
        user_id: user.user_id,
        collaboration_session_id: session,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "LeaveCollaboration", leave_collaboration, call).await?;
    Ok(HttpResponse::Ok().json(Left { left: res.left }))
}

async fn collaborators(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListCollaborators", list_collaborators, call).await?;
    Ok(HttpResponse::Ok().json(Presence {
        session_id: None,
        present: res.active_users,
    }))
}

#[derive(Serialize)]
struct AnalyticsView {
    views: i64,
    forks: i64,
    runs: i64,
    versions: i32,
    collaborators_now: i32,
}

async fn analytics(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let a = rpc!(
        up,
        project,
        "GetProjectAnalytics",
        get_project_analytics,
        call
    )
    .await?;
    Ok(HttpResponse::Ok().json(AnalyticsView {
        views: a.views,
        forks: a.forks,
        runs: a.runs,
        versions: a.versions,
        collaborators_now: a.collaborators_now,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTemplateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    is_public: bool,
}

async fn save_as_template(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<NewTemplateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::SaveAsTemplateRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        name: b.name,
        description: b.description,
        category: b.category,
        is_public: b.is_public,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "SaveAsTemplate", save_as_template, call).await?;
    Ok(HttpResponse::Created().json(TemplateBody {
        template: res.template.unwrap_or_default().into(),
    }))
}
