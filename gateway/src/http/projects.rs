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

/// The routes of this area in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        import,
        create,
        list,
        get,
        update,
        delete,
        restore,
        purge,
        versions,
        version,
        diff,
        rollback,
        fork,
        save_as_template,
        share,
        unshare,
        permissions,
        transfer,
        create_link,
        list_links,
        revoke_link,
        join,
        leave,
        collaborators,
        analytics,
        open_link,
        fork_link,
        export,
        templates,
        template
    ),
    components(schemas(
        ListScope,
        ListSort,
        ShareRole,
        PermissionRole,
        LinkAccess,
        ProblemView,
        ProjectView,
        ProjectBody,
        CreateBody,
        Summary,
        ListBody,
        UpdateBody,
        Deleted,
        Purged,
        VersionView,
        VersionsBody,
        VersionBody,
        RollbackBody,
        TemplateView,
        TemplatesBody,
        TemplateBody,
        ForkBody,
        ImportBody,
        ShareBody,
        ShareAnswer,
        PermissionView,
        PermissionsBody,
        TransferBody,
        LinkBody,
        LinkView,
        LinksBody,
        Revoked,
        Presence,
        Left,
        AnalyticsView,
        NewTemplateBody
    ))
)]
pub(crate) struct Api;

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

/// A problem the engine finds in a design.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DesignProblem)]
struct ProblemView {
    /// The JSON path of the part at fault.
    path: String,
    message: String,
}

/// A project as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct ProjectView {
    id: String,
    name: String,
    description: String,
    owner_id: String,
    tags: Vec<String>,
    is_public: bool,
    /// Goes up by one on every change; the `ETag` of the answer.
    version: i32,
    /// The engine design (a draft may be incomplete).
    #[schema(value_type = Object, nullable)]
    design: Box<RawValue>,
    /// Where the editor draws each component; `null` when there is none yet.
    #[schema(value_type = Object, nullable)]
    layout: Box<RawValue>,
    /// The engine's problems with the design (a draft may have many); empty when it runs.
    problems: Vec<ProblemView>,
    /// The caller's role: `owner`, `editor` or `viewer`.
    access_level: String,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// When it went to the trash; `null` when it is not there.
    deleted_at: Option<String>,
    /// The template it was created from.
    template_id: Option<String>,
    /// The project it is a fork of.
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

/// A project (its version is the `ETag` of the answer).
#[derive(Serialize, utoipa::ToSchema)]
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

/// A new project: empty, from a template, or from a design.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateProjectBody)]
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
    #[schema(value_type = Option<Object>)]
    design: Option<Value>,
    /// The editor's layout of the design.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    layout: Option<Value>,
}

/// Creates a project: empty, from a template, or from a design.
#[utoipa::path(post, path = "/api/projects", tag = "projects",
    request_body = CreateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A field is invalid, or the template does not exist (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// The values of the API's fixed-choice strings, for the document only: the handlers read
/// strings and name a wrong one in a 422.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ListScope {
    Mine,
    Shared,
    Public,
    Trash,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ListSort {
    Updated,
    Name,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ShareRole {
    Viewer,
    Editor,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum PermissionRole {
    Owner,
    Editor,
    Viewer,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum LinkAccess {
    View,
    Fork,
}

/// Which projects, in what order, one page at a time.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `mine` (the default), `shared`, `public` or `trash`.
    #[serde(default)]
    #[param(value_type = Option<ListScope>)]
    scope: String,
    /// Words to look for in the name.
    #[serde(default)]
    search: String,
    /// Only projects with this tag.
    #[serde(default)]
    tag: String,
    /// `updated` (the default, newest first) or `name`.
    #[serde(default)]
    #[param(value_type = Option<ListSort>)]
    sort: String,
    /// 1 to 100; 20 when absent.
    #[serde(default)]
    page_size: i32,
    /// The `next_page_token` of the previous page.
    #[serde(default)]
    page_token: String,
}

/// A project in a list (without its design).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectSummary)]
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

/// A page of projects.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectList)]
struct ListBody {
    projects: Vec<Summary>,
    /// Pass as `page_token` for the next page; absent on the last.
    next_page_token: Option<String>,
}

/// The caller's projects (or those shared with them, public ones, or the trash), a page at a time.
#[utoipa::path(get, path = "/api/projects", tag = "projects",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of projects", body = ListBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A bad scope, sort, page_size or page_token (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A project with its design; its version is the `ETag`.
#[utoipa::path(get, path = "/api/projects/{id}", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// The changes to a project; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateProjectBody)]
struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Replaces every tag.
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Only the owner may change it.
    #[serde(default)]
    is_public: Option<bool>,
    /// A new design (needs If-Match).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    design: Option<Value>,
    /// A new layout (needs If-Match).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    layout: Option<Value>,
    /// What this save is (shown in the history).
    #[serde(default)]
    message: String,
    /// A named save: never replaced by a later autosave.
    #[serde(default)]
    named: bool,
}

/// Changes a project. A change of the design or layout must send the version it is based on
/// as `If-Match` (428 without it); a stale one is refused with 412, nothing written.
#[utoipa::path(patch, path = "/api/projects/{id}", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag of the version this change is based on (e.g. \"7\"): required when the design or layout changes, checked whenever sent"),
    ),
    request_body = UpdateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 400, description = "If-Match is not a project ETag", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller may only view it, or only its owner may change is_public", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is in the trash (`in_trash`), has live edits not saved yet (`live_session`), or has as many versions as it may keep (`version_limit`)", body = crate::http::openapi::ErrorBody),
        (status = 412, description = "Someone saved first: If-Match is not the current version (in `error.current_version` and the ETag); nothing was written", body = crate::http::openapi::ErrorBody,
            headers(("ETag" = String, description = "The current version"))),
        (status = 422, description = "A field is invalid (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = 428, description = "The design or layout changes without If-Match", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A deletion.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectDeleted)]
struct Deleted {
    /// False when it was in the trash already.
    deleted: bool,
    /// Where it went: it can be restored from the trash until it is purged.
    in_trash: bool,
}

/// Moves a project to the trash (it can be restored until it is purged).
#[utoipa::path(delete, path = "/api/projects/{id}", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "In the trash", body = Deleted),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may delete it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// Takes a project out of the trash.
#[utoipa::path(post, path = "/api/projects/{id}/restore", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The restored project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may restore it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is not in the trash (`not_in_trash`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A deletion for good.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectPurged)]
struct Purged {
    purged: bool,
}

/// Deletes a project in the trash for good, with its versions and shares.
#[utoipa::path(post, path = "/api/projects/{id}/purge", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Gone for good", body = Purged),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may purge it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is not in the trash: delete it first (`not_in_trash`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A saved version of a project's design.
#[derive(Serialize, utoipa::ToSchema)]
struct VersionView {
    version: i32,
    author_id: String,
    /// What the save was.
    message: String,
    /// A named save (an autosave within a few minutes replaces the previous unnamed one).
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

/// A page of versions, newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct VersionsQuery {
    /// Versions older than this one (the previous page's `next_before`).
    #[serde(default)]
    before: i32,
    /// 1 to 100; 20 when absent.
    #[serde(default)]
    page_size: i32,
}

/// A page of a project's versions, newest first.
#[derive(Serialize, utoipa::ToSchema)]
struct VersionsBody {
    versions: Vec<VersionView>,
    /// Pass as `before` for older versions; absent on the last page.
    next_before: Option<i32>,
}

/// A project's saved versions, newest first.
#[utoipa::path(get, path = "/api/projects/{id}/versions", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        VersionsQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of versions", body = VersionsBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A bad page_size (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// One version with its design.
#[derive(Serialize, utoipa::ToSchema)]
struct VersionBody {
    version: VersionView,
    #[schema(value_type = Object, nullable)]
    design: Box<RawValue>,
    #[schema(value_type = Object, nullable)]
    layout: Box<RawValue>,
    /// The engine's problems with this design.
    problems: Vec<ProblemView>,
}

/// One saved version of a project, with its design.
#[utoipa::path(get, path = "/api/projects/{id}/versions/{version}", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("version" = i32, Path, description = "The version number"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The version", body = VersionBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project or version", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// The two versions to compare.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DiffQuery {
    /// The older version.
    from: i32,
    /// The newer version.
    to: i32,
}

/// What changed between two versions of a project's design.
#[utoipa::path(get, path = "/api/projects/{id}/diff", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        DiffQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{from, to, diff}`: the two versions and the difference: `diff.fields` (top-level fields changed, with `from` and `to`), `diff.components` (`added`, `removed`, `renamed`, `changed`) and `diff.connections`", body = serde_json::Value),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project or version", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "from or to is missing or not a number", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// The version to go back to (it becomes a new version).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: i32,
}

/// Makes an old version's design the current one, as a new version (history is never
/// rewritten). `If-Match` is required: a stale one is refused with 412, nothing written.
#[utoipa::path(post, path = "/api/projects/{id}/rollback", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag of the version this rollback is based on (e.g. \"7\"); required"),
    ),
    request_body = RollbackBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project at its new version", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 400, description = "If-Match is not a project ETag", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller may only view it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project or version", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is in the trash, has live edits not saved yet, or has as many versions as it may keep", body = crate::http::openapi::ErrorBody),
        (status = 412, description = "Someone saved first: If-Match is not the current version (in `error.current_version` and the ETag); nothing was written", body = crate::http::openapi::ErrorBody,
            headers(("ETag" = String, description = "The current version"))),
        (status = 428, description = "If-Match is missing", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A design to start a project from.
#[derive(Serialize, utoipa::ToSchema)]
struct TemplateView {
    id: String,
    name: String,
    description: String,
    category: String,
    /// One of sdsim's own (no author).
    is_system: bool,
    is_public: bool,
    author_id: Option<String>,
    /// The engine design.
    #[schema(value_type = Object, nullable)]
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

/// Which templates.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TemplatesQuery {
    /// Only this category; every one when absent.
    #[serde(default)]
    category: String,
}

/// The templates the caller may use.
#[derive(Serialize, utoipa::ToSchema)]
struct TemplatesBody {
    templates: Vec<TemplateView>,
}

/// The templates the caller may start a project from: sdsim's, public ones and their own.
#[utoipa::path(get, path = "/api/templates", tag = "projects",
    params(TemplatesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The templates", body = TemplatesBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A template.
#[derive(Serialize, utoipa::ToSchema)]
struct TemplateBody {
    template: TemplateView,
}

/// A template with its design.
#[utoipa::path(get, path = "/api/templates/{id}", tag = "projects",
    params(("id" = String, Path, description = "The template's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The template", body = TemplateBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such template", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A copy of a project for the caller (`{}` for the current design).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ForkProjectBody)]
struct ForkBody {
    /// The version to copy; absent: the current design.
    #[serde(default)]
    version: i32,
    /// The fork's name; absent: the project's name and "(fork)".
    #[serde(default)]
    name: String,
}

/// Copies a project (its current design or an old version) into a new one of the caller's.
#[utoipa::path(post, path = "/api/projects/{id}/fork", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = ForkBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The fork", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project or version", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The name is invalid", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// What the export holds.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// With the version history.
    #[serde(default)]
    versions: bool,
}

/// A project as one self-contained JSON document (a download), for `POST /api/projects/import`.
#[utoipa::path(get, path = "/api/projects/{id}/export", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ExportQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project document (its design, layout and details, with its versions when asked)", body = serde_json::Value, headers(("Content-Disposition" = String, description = "attachment; filename=\"<id>.sdsim.json\""))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A project to create from a document.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImportProjectBody)]
struct ImportBody {
    /// A project document (from export) or a bare engine design.
    #[schema(value_type = Object)]
    document: Value,
    /// The new project's name; absent: the document's.
    #[serde(default)]
    name: String,
}

/// Creates a project from a document: an export, or a bare engine design.
#[utoipa::path(post, path = "/api/projects/import", tag = "projects",
    request_body = ImportBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The document is not a project document or a design (the part at fault in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// Whom to share the project with (a person without an account gets an invitation).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    email: String,
    /// `viewer` or `editor`.
    #[schema(value_type = ShareRole)]
    role: String,
}

/// What was done, in words.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ShareResult)]
struct ShareAnswer {
    message: String,
}

/// Shares a project with someone by e-mail (an invitation when they have no account yet).
#[utoipa::path(post, path = "/api/projects/{id}/shares", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = ShareBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Shared", body = ShareAnswer),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may share it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is in the trash (`in_trash`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A bad e-mail address or role, or the caller's own address", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct UnshareQuery {
    /// A person's or an invitation's e-mail address.
    #[serde(default)]
    email: Option<String>,
    /// The account id of an accepted share.
    #[serde(default)]
    user_id: Option<String>,
}

/// Ends someone's access: `?email=` or `?user_id=`, one of them.
#[utoipa::path(delete, path = "/api/projects/{id}/shares", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        UnshareQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Unshared", body = ShareAnswer),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may unshare it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or it is not shared with them", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "Neither or both of email and user_id, or a bad one", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// Someone the project is shared with.
#[derive(Serialize, utoipa::ToSchema)]
struct PermissionView {
    user_id: Option<String>,
    email: Option<String>,
    /// `owner` (the project's owner comes first), `editor` or `viewer`.
    #[schema(value_type = PermissionRole)]
    role: String,
    /// An invitation not accepted yet (no account id).
    pending: bool,
    granted_by: Option<String>,
    granted_at: Option<String>,
}

/// Who has access to a project.
#[derive(Serialize, utoipa::ToSchema)]
struct PermissionsBody {
    /// The caller's own role.
    access_level: String,
    permissions: Vec<PermissionView>,
}

/// Who has access to a project, and the caller's own role.
#[utoipa::path(get, path = "/api/projects/{id}/permissions", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The shares and invitations", body = PermissionsBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller's role does not allow this", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// The new owner: someone the project is shared with (the old owner becomes an editor).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    user_id: String,
}

/// Gives a project to someone it is shared with; the old owner stays as an editor.
#[utoipa::path(post, path = "/api/projects/{id}/owner", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = TransferBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project with its new owner", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may give it away", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The person is its owner already, or it is not shared with them", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A new share link.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    /// `view` (open and fork) or `fork` (fork only).
    #[schema(value_type = LinkAccess)]
    access: String,
    /// Absent or 0: never expires.
    #[serde(default)]
    expires_in_seconds: i64,
}

/// A share link: anyone signed in who has it may open or fork the project.
#[derive(Serialize, utoipa::ToSchema)]
struct LinkView {
    id: String,
    #[schema(value_type = LinkAccess)]
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

/// Creates a share link; its token is shown in this answer only.
#[utoipa::path(post, path = "/api/projects/{id}/links", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = LinkBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The link, with its token and path", body = LinkView),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may create links", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A bad access or expiry, or too many links (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A project's share links (without their tokens).
#[derive(Serialize, utoipa::ToSchema)]
struct LinksBody {
    links: Vec<LinkView>,
}

/// A project's share links (their tokens are not kept).
#[utoipa::path(get, path = "/api/projects/{id}/links", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The links", body = LinksBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may see its links", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A revocation.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LinkRevoked)]
struct Revoked {
    /// False when it was revoked already.
    revoked: bool,
}

/// Revokes a share link: opening it answers 410 from now on.
#[utoipa::path(delete, path = "/api/projects/{id}/links/{link_id}", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("link_id" = String, Path, description = "The link's id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may revoke links", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project or link", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// Opens a project through a share link (`view` links).
#[utoipa::path(get, path = "/api/links/{token}", tag = "projects",
    params(("token" = String, Path, description = "The link's token")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The link lets the caller fork the project, not open it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such link, or its project is gone", body = crate::http::openapi::ErrorBody),
        (status = 410, description = "The link was revoked or has expired", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// Forks the project of a share link into a new one of the caller's.
#[utoipa::path(post, path = "/api/links/{token}/fork", tag = "projects",
    params(("token" = String, Path, description = "The link's token")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The fork", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such link, or its project is gone", body = crate::http::openapi::ErrorBody),
        (status = 410, description = "The link was revoked or has expired", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// Who is in a project now.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CollaborationPresence)]
struct Presence {
    /// The caller's new collaboration session (only when joining).
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    /// The people in the project now (user ids).
    present: Vec<String>,
}

/// Joins a project's collaboration: a session and who is there now (edits go over
/// `/ws/collaboration/{project_id}`).
#[utoipa::path(post, path = "/api/projects/{id}/collaboration", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The session and who is present", body = Presence),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A departure.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CollaborationLeft)]
struct Left {
    /// False when the session had ended already.
    left: bool,
}

/// Leaves a collaboration session.
#[utoipa::path(delete, path = "/api/projects/{id}/collaboration/{session_id}", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("session_id" = String, Path, description = "The session `POST .../collaboration` answered"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Left", body = Left),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The session id is not a UUID", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// Who is in a project now.
#[utoipa::path(get, path = "/api/projects/{id}/collaborators", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The people present", body = Presence),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A project's counts.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectAnalytics)]
struct AnalyticsView {
    views: i64,
    forks: i64,
    runs: i64,
    versions: i32,
    collaborators_now: i32,
}

/// A project's views, forks, runs, versions and people present.
#[utoipa::path(get, path = "/api/projects/{id}/analytics", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The counts", body = AnalyticsView),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller's role does not allow this", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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

/// A template made of a project's design; absent fields: the project's.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
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

/// Makes a template of a project's design.
#[utoipa::path(post, path = "/api/projects/{id}/template", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = NewTemplateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new template", body = TemplateBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "Only its owner may make a template of it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A field is invalid (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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
